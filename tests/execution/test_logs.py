"""Per-task log capture: TaskLog bounds, context-local routing of prints and logging, install."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import io
import json
import logging
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from germinate_nb.execution import logs
from germinate_nb.execution.logs import TaskLog, capture, install, is_installed, uninstall

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def routed(
    out: io.StringIO | None = None, err: io.StringIO | None = None
) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """StringIOs as the "original" streams, with install() over them, undone afterwards.

    Everything happens inside the test body: pytest swaps sys.stdout between test phases.
    """
    out = io.StringIO() if out is None else out
    err = io.StringIO() if err is None else err
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        install()
        yield out, err
    finally:
        uninstall()
        restored = sys.stdout is out and sys.stderr is err
        sys.stdout, sys.stderr = saved
    assert restored


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger that lets DEBUG through, restored afterwards."""
    lg = logging.getLogger("germinate_test")
    old = lg.level
    lg.setLevel(logging.DEBUG)
    yield lg
    lg.setLevel(old)


def expected_text(whole: str, limit: int) -> str:
    if len(whole) <= limit:
        return whole
    head = limit * 3 // 4
    tail = limit - head
    return f"{whole[:head]}\n… [{len(whole) - limit} characters truncated] …\n{whole[-tail:]}"


def run_script(code: str, timeout: float = 60) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON document last."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    doc["_stderr"] = proc.stderr
    return doc


# --- TaskLog ---------------------------------------------------------------------------------


def test_tasklog_keeps_everything_under_the_limit():
    log = TaskLog(limit=10)
    assert not log and log.text == "" and log.version == 0
    log.write("abc")
    log.write("")  # nothing written: no new version
    log.write("defghij")
    assert log.text == "abcdefghij"
    assert (log.size, log.version, log.truncated, bool(log)) == (10, 2, False, True)


def test_tasklog_truncation_keeps_head_and_tail_with_exact_counts():
    log = TaskLog(limit=100)  # head 75, tail 25
    log.write("a" * 70)
    log.write("b" * 50)
    log.write("c" * 30)
    assert log.truncated and log.size == 150 and log.version == 3
    assert log.text == "a" * 70 + "b" * 5 + "\n… [50 characters truncated] …\n" + "c" * 25


def test_tasklog_truncation_of_many_lines_keeps_first_and_last_lines():
    log = TaskLog(limit=1000)
    lines = [f"line {i:05d}\n" for i in range(10_000)]  # 11 characters each
    for line in lines:
        log.write(line)
    whole = "".join(lines)
    assert log.text == expected_text(whole, 1000)
    assert log.text.startswith("line 00000\n") and log.text.endswith("line 09999\n")
    assert f"[{len(whole) - 1000} characters truncated]" in log.text
    assert log.size == len(whole) == 110_000


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.text(max_size=30), max_size=40),
    limit=st.integers(min_value=1, max_value=60),
)
def test_tasklog_text_is_head_note_tail_for_any_writes(chunks, limit):
    log = TaskLog(limit=limit)
    for chunk in chunks:
        log.write(chunk)
    whole = "".join(chunks)
    assert log.text == expected_text(whole, limit)
    assert log.size == len(whole)
    assert log.truncated == (len(whole) > limit)
    assert log.version == sum(1 for c in chunks if c)


def test_tasklog_refuses_non_str_and_bad_limits():
    with pytest.raises(TypeError, match="TaskLog.write\\(\\) argument must be str, not bytes"):
        TaskLog().write(b"x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="TaskLog limit must be a positive int.*got 0"):
        TaskLog(limit=0)


def test_tasklog_pickles_and_keeps_truncating():
    log = TaskLog(limit=8)
    log.write("0123456789")
    copy = pickle.loads(pickle.dumps(log))
    assert (copy.text, copy.size, copy.version, copy.truncated) == (
        log.text,
        10,
        1,
        True,
    )
    copy.write("XY")
    assert copy.text == "012345\n… [4 characters truncated] …\nXY"
    small = pickle.loads(pickle.dumps(TaskLog()))
    small.write("ok")
    assert small.text == "ok"


def test_tasklog_concurrent_writes_are_all_counted():
    log = TaskLog(limit=10**7)

    def writer(i: int) -> None:
        for k in range(2000):
            log.write(f"{i}:{k}\n")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    lines = log.text.splitlines()
    assert len(lines) == 16_000 == len(set(lines))
    assert log.version == 16_000


# --- routing ---------------------------------------------------------------------------------


def test_two_threads_interleaved_print_and_logging_land_in_their_own_log(logger):
    barrier = threading.Barrier(2, timeout=10)
    task_logs = [TaskLog(), TaskLog()]

    def task(i: int) -> None:
        with capture(task_logs[i]):
            for k in range(500):
                barrier.wait()  # both threads write each line at the same moment
                print(f"t{i} print {k}")
                logger.info("t%d record %d", i, k)

    with routed() as (out, err):
        threads = [threading.Thread(target=task, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    for i, log in enumerate(task_logs):
        expected = []
        for k in range(500):
            expected += [f"t{i} print {k}", f"INFO germinate_test: t{i} record {k}"]
        assert log.text.splitlines() == expected
    assert out.getvalue() == "" and err.getvalue() == ""


def test_fifty_asyncio_tasks_on_one_loop_keep_prints_and_warnings_apart():
    warn = logging.getLogger("x")

    async def task(i: int, log: TaskLog) -> None:
        with capture(log):
            for k in range(5):
                print(f"task {i} line {k}")
                await asyncio.sleep(0)
                warn.warning("task %d warning %d", i, k)
                await asyncio.sleep(0)

    async def main(task_logs: list[TaskLog]) -> None:
        await asyncio.gather(*(task(i, log) for i, log in enumerate(task_logs)))

    task_logs = [TaskLog() for _ in range(50)]
    with routed() as (out, err):
        asyncio.run(main(task_logs))
    for i, log in enumerate(task_logs):
        expected = []
        for k in range(5):
            expected += [f"task {i} line {k}", f"WARNING x: task {i} warning {k}"]
        assert log.text.splitlines() == expected
    assert out.getvalue() == "" and err.getvalue() == ""


def test_nested_capture_writes_to_the_innermost_log(logger):
    outer, inner = TaskLog(), TaskLog()
    with routed():
        with capture(outer):
            print("before")
            with capture(inner) as got:
                assert got is inner
                print("inside")
                logger.warning("inside record")
            print("after")
    assert outer.text == "before\nafter\n"
    assert inner.text == "inside\nWARNING germinate_test: inside record\n"


def test_echo_off_keeps_text_out_of_the_original_streams():
    log = TaskLog()
    with routed() as (out, err):
        print("outside")
        with capture(log):
            print("to the log")
            print("error text", file=sys.stderr)
        print("outside again", file=sys.stderr)
    assert log.text == "to the log\nerror text\n"
    assert out.getvalue() == "outside\n"
    assert err.getvalue() == "outside again\n"


def test_echo_on_writes_to_the_log_and_the_original_streams():
    log = TaskLog()
    with routed() as (out, err):
        with capture(log, echo=True):
            print("shown twice")
            sys.stderr.write("warned\n")
    assert log.text == "shown twice\nwarned\n"
    assert out.getvalue() == "shown twice\n"
    assert err.getvalue() == "warned\n"


def test_echoed_lines_of_two_threads_never_mix_inside_a_line():
    # print() writes its text and its newline in two calls; force the worst interleaving
    a_wrote, b_wrote = threading.Event(), threading.Event()

    def a(log: TaskLog) -> None:
        with capture(log, echo=True):
            sys.stdout.write("line from a")
            a_wrote.set()
            assert b_wrote.wait(5)
            sys.stdout.write("\n")

    def b(log: TaskLog) -> None:
        assert a_wrote.wait(5)
        with capture(log, echo=True):
            sys.stdout.write("line from b")
            b_wrote.set()
            sys.stdout.write("\n")

    logs_ = [TaskLog(), TaskLog()]
    with routed() as (out, _):
        pairs = zip((a, b), logs_, strict=True)
        threads = [threading.Thread(target=f, args=(log,)) for f, log in pairs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
    assert out.getvalue() in ("line from b\nline from a\n", "line from a\nline from b\n")
    assert [log.text for log in logs_] == ["line from a\n", "line from b\n"]


def test_echo_holds_a_partial_line_until_a_newline_a_flush_or_the_end():
    log = TaskLog()
    with routed() as (out, err):
        with capture(log, echo=True):
            print("50%", end="")
            sys.stderr.write("warn")
            assert out.getvalue() == "" and err.getvalue() == ""
            sys.stdout.flush()  # a progress bar's refresh shows the partial line at once
            assert out.getvalue() == "50%" and err.getvalue() == ""
            print("\r100%", end="")
            assert out.getvalue() == "50%"
        assert out.getvalue() == "50%\r100%"  # the end of the capture writes what is held
        assert err.getvalue() == "warn"
    assert log.text == "50%warn\r100%"


def test_two_threads_of_one_capture_keep_their_own_partial_lines():
    # threads that share a task's context (copy_context().run) share its route
    a_wrote, b_done = threading.Event(), threading.Event()

    def a() -> None:
        sys.stdout.write("line from A")
        a_wrote.set()
        assert b_done.wait(5)
        sys.stdout.write("\n")

    def b() -> None:
        assert a_wrote.wait(5)
        sys.stdout.write("line from B")
        sys.stdout.write("\n")
        b_done.set()

    log = TaskLog()
    with routed() as (out, _):
        with capture(log, echo=True):
            threads = [
                threading.Thread(target=contextvars.copy_context().run, args=(f,)) for f in (a, b)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(5)
    assert out.getvalue() == "line from B\nline from A\n"


def test_a_nested_echoing_capture_keeps_the_order_of_the_text():
    with routed() as (out, _):
        with capture(TaskLog(), echo=True):
            print("step 1 ... ", end="")
            with capture(TaskLog(), echo=True):
                print("inner line")
            print("done")
    assert out.getvalue() == "step 1 ... inner line\ndone\n"


def test_a_long_line_without_newline_is_echoed_once_it_passes_the_hold_limit():
    log = TaskLog()
    with routed() as (out, _):
        with capture(log, echo=True):
            for _ in range(logs.ECHO_HOLD):
                sys.stdout.write("x")
            assert out.getvalue() == ""
            sys.stdout.write("y")  # one past the limit: what is held goes out
            assert out.getvalue() == "x" * logs.ECHO_HOLD + "y"
            sys.stdout.write("z\n")
    assert out.getvalue() == "x" * logs.ECHO_HOLD + "yz\n"
    assert log.text == out.getvalue()


def test_flush_with_a_closed_cell_stream_does_not_fail_the_task():
    closed = io.StringIO()
    closed.close()
    log = TaskLog()
    with routed(out=closed):
        with capture(log, echo=True):
            print("still logged", flush=True)
    assert log.text == "still logged\n"


def test_bytes_write_raises_type_error_like_a_stream():
    with routed():
        with capture(TaskLog()):
            with pytest.raises(TypeError, match=r"write\(\) argument must be str, not bytes"):
                sys.stdout.write(b"raw")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match=r"write\(\) argument must be str, not int"):
                sys.stderr.write(3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="string argument expected, got 'bytes'"):
            sys.stdout.write(b"raw")  # type: ignore[arg-type]  # outside: StringIO's own error


def test_writelines_and_str_subclasses_are_captured():
    class Tagged(str):
        pass

    log = TaskLog()
    with routed():
        with capture(log):
            sys.stdout.writelines(["a\n", Tagged("b\n")])
    assert log.text == "a\nb\n"


def test_logging_exc_info_writes_the_traceback(logger):
    def fails() -> None:
        raise KeyError("missing")

    log = TaskLog()
    with routed():
        with capture(log):
            try:
                fails()
            except KeyError:
                logger.exception("lookup failed for %s", "user")
            logger.error("no exception here", exc_info=False)
    text = log.text
    assert text.startswith("ERROR germinate_test: lookup failed for user\nTraceback")
    assert 'in fails\n    raise KeyError("missing")' in text
    assert text.endswith("KeyError: 'missing'\nERROR germinate_test: no exception here\n")


def test_logging_record_with_bad_args_does_not_break_the_task(logger):
    log = TaskLog()
    with routed():
        logging.raiseExceptions, saved = False, logging.raiseExceptions
        try:
            with capture(log):
                logger.warning("%d items", "not a number")
        finally:
            logging.raiseExceptions = saved
    assert log.text.startswith("WARNING germinate_test: %d items (message formatting failed: ")


def test_stderr_handler_created_after_install_does_not_duplicate_records(logger):
    """What logging.basicConfig() does: a StreamHandler on sys.stderr (our proxy)."""
    log, echoed = TaskLog(), TaskLog()
    with routed() as (out, err):
        handler = logging.StreamHandler()  # stream = sys.stderr = the proxy
        handler.setFormatter(logging.Formatter("H %(levelname)s %(message)s"))
        logging.getLogger().addHandler(handler)
        try:
            with capture(log):
                logger.info("once")
            assert err.getvalue() == ""  # echo off: the handler's copy goes nowhere
            with capture(echoed, echo=True):
                logger.info("echoed")
            logger.info("outside")
        finally:
            logging.getLogger().removeHandler(handler)
    assert log.text == "INFO germinate_test: once\n"
    assert echoed.text == "INFO germinate_test: echoed\n"
    assert err.getvalue() == "H INFO echoed\nH INFO outside\n"


def test_handler_on_a_non_propagating_logger_is_not_duplicated_either():
    lg = logging.getLogger("germinate_test.private")
    log = TaskLog()
    with routed() as (out, err):
        handler = logging.StreamHandler(sys.stdout)
        lg.addHandler(handler)
        lg.propagate = False
        try:
            with capture(log):
                lg.warning("private")
        finally:
            lg.removeHandler(handler)
            lg.propagate = True
    assert log.text == "WARNING germinate_test.private: private\n"
    assert out.getvalue() == ""


def test_logging_error_report_of_a_failing_handler_is_kept(logger):
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                raise RuntimeError("handler broke")
            except RuntimeError:
                self.handleError(record)

    log = TaskLog()
    with routed():
        handler = Broken()
        logger.addHandler(handler)
        try:
            with capture(log):
                logger.warning("hello")
        finally:
            logger.removeHandler(handler)
    assert log.text.startswith("WARNING germinate_test: hello\n--- Logging error ---\n")
    assert "RuntimeError: handler broke" in log.text


def test_make_log_record_inside_capture_is_not_a_log_line():
    log = TaskLog()
    with routed():
        with capture(log):
            record = logging.makeLogRecord({"msg": "from a socket", "name": "remote"})
    assert record.msg == "from a socket" and log.text == ""


def test_threads_started_by_a_task_write_to_the_normal_stream():
    """Documented: a new thread starts with an empty context, so it is not captured."""
    log = TaskLog()

    async def inside_loop() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(print, "to_thread")  # copies the context: captured
        await loop.run_in_executor(None, print, "run_in_executor")  # does not (Python 3.11)

    with routed() as (out, err):
        with capture(log):
            print("task itself")
            t = threading.Thread(target=print, args=("plain thread",))
            t.start()
            t.join(10)
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pool.submit(print, "pool.submit").result(10)
                ctx = contextvars.copy_context()
                pool.submit(ctx.run, print, "copied context").result(10)
            asyncio.run(inside_loop())
    assert log.text == "task itself\ncopied context\nto_thread\n"
    assert out.getvalue() == "plain thread\npool.submit\nrun_in_executor\n"


def test_capture_resets_routing_when_the_block_raises():
    log = TaskLog()
    with routed() as (out, err):
        with pytest.raises(ZeroDivisionError), capture(log):
            print("before")
            1 / 0  # noqa: B018
        print("after")
    assert log.text == "before\n"
    assert out.getvalue() == "after\n"


def test_capture_installs_on_first_use():
    out = io.StringIO()
    saved = sys.stdout
    sys.stdout = out
    try:
        uninstall()
        assert not is_installed()
        log = TaskLog()
        with capture(log):
            print("lazy")
        assert is_installed()
    finally:
        uninstall()
        stream, sys.stdout = sys.stdout, saved
    assert stream is out and log.text == "lazy\n" and out.getvalue() == ""


# --- install / uninstall ---------------------------------------------------------------------


def test_uninstall_restores_streams_and_record_factory():
    out, err = io.StringIO(), io.StringIO()
    factory = logging.getLogRecordFactory()
    with routed(out, err):
        install()  # idempotent: still one proxy layer
        assert is_installed()
        assert sys.stdout is not out and sys.stdout._germinate_target is out
        assert logging.getLogRecordFactory() is not factory
    assert not is_installed()
    assert logging.getLogRecordFactory() is factory


def test_a_library_wrapping_the_record_factory_after_install_keeps_working():
    original = logging.getLogRecordFactory()
    seen: list[str] = []
    log, after, again = TaskLog(), TaskLog(), TaskLog()
    with routed():
        ours = logging.getLogRecordFactory()

        def theirs(*args, **kwargs):  # a well-behaved library: chains the current factory
            record = ours(*args, **kwargs)
            seen.append(record.getMessage())
            return record

        logging.setLogRecordFactory(theirs)
        try:
            with capture(log):
                logging.getLogger("x").warning("one")
            uninstall()  # cannot unhook ours from inside theirs: it becomes a pass-through
            assert logging.getLogRecordFactory() is theirs and not is_installed()
            with capture(after):  # installs again: a new wrapper over theirs, no recursion
                logging.getLogger("x").warning("two")
            current = logging.getLogRecordFactory()
            assert current.germinate_previous is theirs
            install()
            assert logging.getLogRecordFactory() is current  # idempotent
            with capture(again):
                logging.getLogger("x").warning("three")
        finally:
            logging.setLogRecordFactory(original)
    assert seen == ["one", "two", "three"]
    assert log.text == "WARNING x: one\n"
    assert after.text == "WARNING x: two\n"  # once, though two of our wrappers are chained
    assert again.text == "WARNING x: three\n"


def test_install_again_after_a_library_replaced_the_record_factory():
    original = logging.getLogRecordFactory()
    lost, back = TaskLog(), TaskLog()
    with routed():
        logging.setLogRecordFactory(logging.LogRecord)  # not chaining ours
        try:
            with capture(lost):
                logging.getLogger("x").warning("not a record in the log")
            install()
            with capture(back):
                logging.getLogger("x").warning("captured again")
        finally:
            logging.setLogRecordFactory(original)
    assert lost.text == ""
    assert back.text == "WARNING x: captured again\n"


def test_install_from_many_threads_wraps_once():
    with routed() as (out, err):
        threads = [threading.Thread(target=install) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sys.stdout._germinate_target is out
        assert sys.stderr._germinate_target is err


def test_proxy_delegates_every_other_attribute():
    with tempfile.TemporaryFile("w+", encoding="utf-8") as real:
        with routed(out=real):  # type: ignore[arg-type]
            proxy = sys.stdout
            assert proxy.fileno() == real.fileno()
            assert proxy.encoding == "utf-8" and proxy.isatty() is False
            assert proxy.buffer is real.buffer and proxy.mode == "w+"
            proxy.custom_flag = 7  # set on the wrapped stream, as ipykernel does with OutStream
            assert real.custom_flag == 7  # type: ignore[attr-defined]
            print("passed through", flush=True)
            assert "germinate_nb routing stdout" in repr(proxy)
        real.seek(0)
        assert real.read() == "passed through\n"


def test_redirect_stdout_inside_a_task_wins_and_capture_resumes():
    log, buf = TaskLog(), io.StringIO()
    with routed():
        with capture(log):
            print("one")
            with contextlib.redirect_stdout(buf):
                print("user redirect")  # the user's explicit redirect is honoured
            print("two")
    assert log.text == "one\ntwo\n" and buf.getvalue() == "user redirect\n"


def test_install_again_routes_a_stream_that_replaced_the_proxy():
    log, replacement = TaskLog(), io.StringIO()
    with routed():
        proxy = sys.stdout
        sys.stdout = replacement  # e.g. %%capture or a new OutStream
        try:
            with capture(log):
                print("not lost")  # degrades: goes to the replacement, nothing crashes
            install()  # the engine calls install() at the start of each run
            with capture(log):
                print("captured again")
            uninstall()
            assert sys.stdout is replacement
        finally:
            sys.stdout = proxy
    assert replacement.getvalue() == "not lost\n"
    assert log.text == "captured again\n"


def test_install_leaves_a_none_stream_alone():
    """Where sys.stdout is None (pythonw, some daemons) print() is a no-op; logging still works."""
    log = TaskLog()
    saved = sys.stdout
    sys.stdout = None  # type: ignore[assignment]
    try:
        install()
        assert sys.stdout is None
        with capture(log):
            print("dropped by Python itself")
            logging.getLogger("x").warning("still captured")
    finally:
        uninstall()
        sys.stdout = saved
    assert log.text == "WARNING x: still captured\n"


def test_basic_config_last_resort_and_echo_in_a_fresh_interpreter():
    """logging.basicConfig() still configures logging after install(), and nothing doubles."""
    doc = run_script(
        """
        import io, json, logging, sys
        from germinate_nb.execution.logs import TaskLog, capture, install
        install()
        logging.getLogger("nohandler").warning("last resort outside")
        quiet = TaskLog()
        with capture(quiet):
            logging.getLogger("nohandler").warning("last resort inside")
        logging.basicConfig(level=logging.INFO, format="H %(levelname)s %(message)s")
        root = logging.getLogger()
        configured = [type(h).__name__ for h in root.handlers], root.level
        logging.info("outside")
        log, echoed = TaskLog(), TaskLog()
        with capture(log):
            logging.info("inside")
            print("printed")
        with capture(echoed, echo=True):
            logging.getLogger("app").info("echoed")
        sys.stdout.flush(); sys.stderr.flush()
        print(json.dumps({"configured": configured, "quiet": quiet.text, "log": log.text,
                          "echoed": echoed.text}))
        """
    )
    assert doc["configured"] == [["StreamHandler"], logging.INFO]
    assert doc["quiet"] == "WARNING nohandler: last resort inside\n"
    assert doc["log"] == "INFO root: inside\nprinted\n"
    assert doc["echoed"] == "INFO app: echoed\n"
    assert doc["_stderr"] == "last resort outside\nH INFO outside\nH INFO echoed\n"


@pytest.mark.dask
@pytest.mark.timeout(180)
def test_capture_works_in_a_dask_worker_process():
    distributed = pytest.importorskip("distributed")

    def remote_task() -> tuple[object, str]:
        from germinate_nb.execution.logs import TaskLog, capture, install

        install()  # on a worker, sys.stdout is whatever the nanny gave the process
        log = TaskLog()
        with capture(log):
            print("hello from the worker")
            logging.getLogger("worker").warning("careful")
        return log, type(sys.stdout._germinate_target).__name__

    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(lambda: sys.path.insert(0, str(ROOT)))
        log, target = client.submit(remote_task, pure=False).result(timeout=120)
    assert isinstance(log, TaskLog)
    assert log.text == "hello from the worker\nWARNING worker: careful\n"
    assert target  # the worker's own stream was wrapped, whatever it is


# --- a real kernel ---------------------------------------------------------------------------

KERNEL_CELL = """
import threading
from germinate_nb.execution.logs import TaskLog, capture, install
install()
logs_{tag} = [TaskLog(), TaskLog()]
def work_{tag}(i):
    with capture(logs_{tag}[i], echo={echo}):
        for k in range(3):
            print(f"{tag} thread {{i}} line {{k}}")
threads = [threading.Thread(target=work_{tag}, args=(i,)) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join(10)
import sys
sys.stdout.flush()  # the kernel sends thread output on its own schedule: flush before idle
"""


def _execute(kc, code: str, timeout: float = 30) -> tuple[str, list[dict]]:
    msg_id = kc.execute(code)
    streams, errors = [], []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            streams.append(content["text"])
        elif kind == "error":
            errors.append(content)
        elif kind == "status" and content["execution_state"] == "idle":
            break
    kc.get_shell_msg(timeout=timeout)
    # a thread's output may be flushed by the kernel's IO thread just after idle: take it too
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=0.5)
        except queue.Empty:
            break
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            streams.append(msg["content"]["text"])
    return "".join(streams), errors


@pytest.mark.kernel
@pytest.mark.timeout(180)
def test_real_kernel_cell_shows_thread_output_only_with_echo():
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    km, kc = start_new_kernel(startup_timeout=90, env=env)
    try:
        quiet, errors = _execute(kc, KERNEL_CELL.format(tag="quiet", echo=False))
        assert errors == []
        assert "thread" not in quiet
        shown, errors = _execute(kc, KERNEL_CELL.format(tag="shown", echo=True))
        assert errors == []
        for i in range(2):
            for k in range(3):
                assert f"shown thread {i} line {k}\n" in shown
        report, errors = _execute(
            kc,
            "import json, sys\n"
            "print(json.dumps([type(sys.stdout._germinate_target).__name__]"
            " + [log.text for log in logs_quiet + logs_shown]))",
        )
        assert errors == []
        target, *texts = json.loads(report)
        assert target == "OutStream"
        for n, (tag, i) in enumerate([("quiet", 0), ("quiet", 1), ("shown", 0), ("shown", 1)]):
            assert texts[n] == "".join(f"{tag} thread {i} line {k}\n" for k in range(3))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_module_exports_the_contract_names():
    assert logs.DEFAULT_LIMIT == 64_000
    assert set(logs.__all__) >= {"DEFAULT_LIMIT", "TaskLog", "capture", "install", "uninstall"}
