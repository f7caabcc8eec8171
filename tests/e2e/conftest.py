"""A real JupyterLab server and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import shutil
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.lab import ARGS, CHROMIUM, Lab, start_lab

REPO = Path(__file__).resolve().parents[2]

__all__ = ["ARGS", "CHROMIUM", "REPO", "Lab", "copy_notebook", "open_notebook", "run_all"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    try:
        server = start_lab(tmp_path_factory.mktemp("lab"))
    except RuntimeError as err:
        pytest.fail(str(err))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """Playwright's sync API runs an event loop in this thread: keep it to the e2e module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, lab, request, tmp_path):
    context = browser.new_context(viewport={"width": 1600, "height": 1300})
    pg = context.new_page()
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        pg.screenshot(path=tmp_path / "failure.png")
        sys.stderr.write(f"screenshot of the failure: {tmp_path / 'failure.png'}\n")
    context.close()
    lab.shutdown_kernels()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def copy_notebook(lab: Lab, source: Path, name: str | None = None) -> str:
    name = name or source.name
    shutil.copy(source, lab.root / name)
    return name


def open_notebook(page, lab: Lab, name: str) -> None:
    """Open a notebook and wait until its kernel websocket has received a frame."""
    frames = {"n": 0}

    def on_ws(ws):
        if "/api/kernels/" in ws.url and "/channels" in ws.url:
            ws.on("framereceived", lambda _payload: frames.__setitem__("n", frames["n"] + 1))

    page.on("websocket", on_ws)
    # a workspace of its own, so tabs left open by an earlier test are not restored
    page.goto(lab.url(f"lab/workspaces/{uuid.uuid4().hex[:8]}/tree/{name}"))
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    deadline = time.time() + 60
    while frames["n"] == 0:
        if time.time() > deadline:
            raise AssertionError("the kernel websocket received no frame within 60 s")
        page.wait_for_timeout(100)
    deadline = time.time() + 60
    while not any(k.get("execution_state") == "idle" for k in lab.api("kernels")):
        if time.time() > deadline:
            raise AssertionError("the notebook's kernel never became idle")
        page.wait_for_timeout(100)


def run_all(page) -> None:
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def wait_for_statuses(page, expected: dict[str, str], timeout: float = 60) -> None:
    """Wait until each named task toggle carries germinate-status-<status>."""
    deadline = time.time() + timeout
    explorer = page.locator(".germinate-explorer").first
    last = {}
    while time.time() < deadline:
        last = {}
        for name in expected:
            button = explorer.locator(".germinate-task", has_text=name).first
            classes = (button.get_attribute("class") or "") if button.count() else ""
            last[name] = [c for c in classes.split() if c.startswith("germinate-status-")]
        if all(last[n] == [f"germinate-status-{s}"] for n, s in expected.items()):
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"statuses never became {expected}; last seen {last}")


def task_button(page, name: str):
    return (
        page.locator(".germinate-explorer .germinate-task")
        .filter(has_text=name)
        .filter(has_not_text=f"{name}_")
        .first
    )
