"""max_workers: sync tasks share that many worker slots, handed on without a lock."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from germinate_nb import State, TaskStatus, run
from germinate_nb.execution.local import LocalBackend
from tests.execution.conftest import X


class Gauge:
    """How many tasks run at once, and the most ever."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def slots_back(backend: LocalBackend, within: float = 3.0) -> bool:
    """Have all of ``backend``'s slots come back (and no more)? A thread puts its slot back
    just after the run's last outcome, so ``run()`` may return a moment before."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if backend._slots == [True] * backend.max_workers and not backend._running:
            return True
        time.sleep(0.005)
    return False


def layered_state(
    name: str, width: int, layers: int, body: Callable[[], None], most_parents: int, seed: int
) -> State:
    """``layers`` layers of ``width`` tasks ``t<layer>_<i>``, each running ``body()`` and adding 1
    to its input, each depending on 1 to ``most_parents`` tasks of the layer above."""
    s = State(name)
    rng = random.Random(seed)
    above: list = []
    for layer in range(layers):
        here = []
        for i in range(width):

            def task(input: X) -> X:
                body()
                return X(x=input.x + 1)

            task.__name__ = f"t{layer}_{i}"
            t = s.task()(task)
            if above:
                t.add_parents(rng.sample(above, k=rng.randint(1, most_parents)))
            here.append(t)
        above = here
    return s


@pytest.mark.parametrize("workers", [1, 2, 3, 7])
def test_sync_tasks_never_run_more_at_once_than_max_workers(workers):
    gauge = Gauge()

    def busy() -> None:
        with gauge:
            time.sleep(0.02)

    s = layered_state(f"slots{workers}", width=12, layers=4, body=busy, most_parents=2, seed=7)
    backend = LocalBackend(max_workers=workers) if workers > 1 else None
    result = run(s, {"x": 0}, echo=False, max_workers=workers, backend=backend)
    assert result.ok, result.errors
    assert len(result.by_status("succeeded")) == 48
    assert result.outputs["t3_0"] == X(x=4)
    assert gauge.peak <= workers
    if workers > 1:
        assert gauge.peak == workers  # 12 ready at once: every slot is used
        assert slots_back(backend)  # every slot came back


def test_many_tiny_tasks_on_many_threads_all_run_once():
    # 2,000 no-op tasks on 32 threads: the slots pass from thread to thread with no lock, so
    # a lost hand-over would leave a task pending (the run would hang) or run one twice
    seen: list[str] = []
    s = layered_state(
        "tiny_many",
        width=50,
        layers=40,
        body=lambda: seen.append(threading.current_thread().name),
        most_parents=3,
        seed=3,
    )
    backend = LocalBackend()
    for _ in range(3):
        seen.clear()
        result = run(s, {"x": 0}, echo=False, backend=backend)
        assert result.ok
        assert len(seen) == 2000
        assert len(result.by_status("succeeded")) == 2000
        assert slots_back(backend)


def test_a_task_given_up_on_passes_its_slot_and_the_others_still_keep_the_limit():
    # max_workers=2: two tasks get stuck past their timeout; their slots pass on, so the
    # other ten run (two at a time, never more) while the stuck threads go on
    gauge = Gauge()
    release = threading.Event()
    s = State("slot_handover")

    for i in range(2):

        def stuck(input: X) -> X:
            release.wait(5)
            return input

        stuck.__name__ = f"stuck{i}"
        s.task(timeout=0.2)(stuck)
    for i in range(10):

        def quick(input: X) -> X:
            with gauge:
                time.sleep(0.02)
            return X(x=input.x + 1)

        quick.__name__ = f"quick{i}"
        s.task()(quick)

    backend = LocalBackend(max_workers=2)
    t0 = time.perf_counter()
    result = run(s, {"x": 0}, echo=False, backend=backend)
    took = time.perf_counter() - t0
    release.set()
    assert took < 2.0, took
    assert sorted(result.by_status("failed")) == ["stuck0", "stuck1"]
    assert len(result.by_status("succeeded")) == 10
    assert gauge.peak <= 2
    assert slots_back(backend)  # the two handed on came back, and none twice


def test_timeouts_racing_task_ends_never_lose_or_double_a_slot():
    # tasks ending right at their timeout: the thread and the give-up race for the slot;
    # exactly one of them hands it on, every time
    s = State("slot_race")
    for i in range(24):

        def edge(input: X, _i: int = i) -> X:
            time.sleep(0.01 + (_i % 5) * 0.001)
            return input

        edge.__name__ = f"edge{i}"
        s.task(timeout=0.012)(edge)
    for _ in range(5):
        backend = LocalBackend(max_workers=3)
        result = run(s, {"x": 0}, echo=False, backend=backend)
        statuses = {tr.status for tr in result.task_runs.values()}
        assert statuses <= {TaskStatus.SUCCEEDED, TaskStatus.FAILED}
        assert slots_back(backend)  # once the given-up threads have returned


class RacyQueue(deque):
    """A wait queue that runs ``hook`` once, right when a holder finds it empty."""

    hook = None

    def popleft(self):
        try:
            return super().popleft()
        except IndexError:
            hook, self.hook = self.hook, None
            if hook is not None:
                hook()
            raise


def fake_job(name: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, echo_tails=None, abandoned=False)


def test_a_job_queued_just_as_the_last_free_holder_lets_go_is_still_run():
    # every slot is held (this thread's and a stuck one's); a job is queued right after this
    # holder found the queue empty, so starting a thread for it finds no free slot: the
    # holder must look again after putting its slot back, or the job waits forever
    backend = LocalBackend(max_workers=2)
    ran: list[str] = []
    backend._run_sync = lambda job, lane, passthrough: ran.append(job.name)
    backend._waiting = waiting = RacyQueue()
    backend._slots.clear()
    waiting.hook = lambda: backend._submit_sync([fake_job("late")])
    backend._runner("lane")
    assert ran == ["late"]
    assert not waiting
    assert backend._slots == [True]  # this holder's slot; the stuck one's is still held


def test_a_slot_is_handed_on_once_when_a_task_is_given_up_on_as_it_ends():
    # the give-up comes while the task's thread still runs it: the give-up hands the slot on
    # (to the waiting job, on a new thread) and the old thread stops, not taking a job too
    backend = LocalBackend(max_workers=2)
    ran: list[str] = []
    started: list[int] = []
    stuck = fake_job("stuck")

    def run_sync(job, lane, passthrough):
        ran.append(job.name)
        if job is stuck:
            backend._waiting.append(fake_job("next"))
            backend._abandon(job)

    backend._run_sync = run_sync
    backend._slots[:] = []  # both held: the stuck task's thread and another busy one
    backend._start_runners = lambda most: started.append(most) or backend._slots.pop()
    backend._waiting.append(stuck)
    backend._runner("lane")
    assert ran == ["stuck"]  # the old thread did not go on to "next"
    assert started == [1]  # the give-up started one thread for it, with the stuck one's slot
    assert stuck.abandoned
    assert backend._slots == []  # that slot is now held by the new thread, and only by it


def test_an_attempt_given_up_on_ending_beside_the_next_attempt_leaves_it_cancellable():
    # attempt 1 runs past its timeout and returns while attempt 2 runs: attempt 2 must still be
    # found running (by its own job, not by the task's name), so its timeout gives it up too
    s = State("two_attempts")
    release = threading.Event()
    lanes: list[str] = []

    @s.task(timeout=0.1, retries=1, retry_delay=0.02)
    def t(input: X) -> X:
        from germinate_nb import current_task

        lanes.append(threading.current_thread().name)
        if current_task().attempt == 1:
            time.sleep(0.16)  # given up on at 0.1 s; returns while attempt 2 runs
        else:
            release.wait(5)
        return input

    backend = LocalBackend(max_workers=2)
    result = run(s, {"x": 0}, echo=False, backend=backend)
    release.set()
    tr = result.task_runs["t"]
    assert [a.status for a in tr.attempts] == ["timed out", "timed out"]
    assert "attempt 2 ran past its timeout of 0.1 s (its thread goes on in the background" in (
        tr.error.message
    )
    assert result.background == ["t"]
    assert len(set(lanes)) == 2 and tr.lane == lanes[1]  # the thread of the attempt that counts
    assert slots_back(backend)  # and nothing is left marked running


def test_a_worker_thread_survives_a_failing_work_item_and_says_so(monkeypatch):
    from germinate_nb.execution.local import WorkerPool

    seen: list[str] = []
    reported = threading.Event()

    def hook(args):
        seen.append(repr(args.exc_value))
        reported.set()

    monkeypatch.setattr(threading, "excepthook", hook)
    pool = WorkerPool()
    lanes: list[str] = []

    def bad(lane: str) -> None:
        lanes.append(lane)
        raise KeyError("bug")

    pool.submit(bad)
    assert reported.wait(2)
    time.sleep(0.05)
    done = threading.Event()
    pool.submit(lambda lane: (lanes.append(lane), done.set()))
    # the pool counts one thread, idle: the item goes to it, so it must still be alive
    assert done.wait(2), "the work went to a thread that had died"
    assert seen == ["KeyError('bug')"]
    assert lanes[0] == lanes[1] and pool.threads == 1 and pool._busy == 0
