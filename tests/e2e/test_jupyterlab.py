"""End-to-end: the explorer in JupyterLab, in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    REPO,
    copy_notebook,
    open_notebook,
    run_all,
    task_button,
    wait_for_statuses,
)
from tests.e2e.lab import write_notebook

pytestmark = pytest.mark.e2e

MODELS = (
    "from pydantic import BaseModel\nfrom germinate_nb import State, explore\n"
    "class X(BaseModel):\n    x: int = 1\n"
)


def click_explorer_button(page, label):
    explorer = page.locator(".germinate-explorer").first
    explorer.locator("button.widget-button", has_text=re.compile(rf"^\s*{label}\s*$")).click()


def test_quickstart_run_all_then_run_button(page, lab, tmp_path):
    name = copy_notebook(lab, REPO / "notebooks" / "quickstart.ipynb")
    open_notebook(page, lab, name)
    run_all(page)
    page.wait_for_selector(".germinate-explorer .germinate-task", timeout=60_000)
    tasks = ["tokenize", "count", "summarize", "shout"]
    # the notebook's own runs (its last one reused tokenize and count) reached the explorer
    wait_for_statuses(
        page,
        {"tokenize": "cached", "count": "cached", "summarize": "succeeded", "shout": "succeeded"},
    )
    click_explorer_button(page, "Clear cache")
    click_explorer_button(page, "Run")
    wait_for_statuses(page, dict.fromkeys(tasks, "succeeded"))
    task_button(page, "count").click()
    details = page.locator(".germinate-explorer .germinate-details").first
    details.locator("text=output value").wait_for(timeout=20_000)
    text = details.inner_text()
    assert "longest" in text and "'germinate'" in text and re.search(r"\bn\s+9\b", text)
    shot = tmp_path / "quickstart.png"
    page.locator(".germinate-explorer").first.screenshot(path=shot)
    target = os.environ.get("GERMINATE_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target)


def test_failing_task_shows_failed_skipped_and_message(page, lab, tmp_path):
    name = write_notebook(
        lab.root,
        "failing.ipynb",
        [
            MODELS + "s = State('failing')",
            "@s.task()\ndef boom(input: X) -> X:\n    raise ValueError('the <b>sky</b> fell')\n"
            "@s.task()\ndef after(input: X) -> X:\n    return input\nboom >> after",
            "explore(s)",
        ],
    )
    open_notebook(page, lab, name)
    run_all(page)
    page.wait_for_selector(".germinate-explorer .germinate-task", timeout=60_000)
    click_explorer_button(page, "Run")
    wait_for_statuses(page, {"boom": "failed", "after": "skipped"})
    task_button(page, "boom").click()
    error = page.locator(".germinate-explorer .germinate-task-error").first
    error.wait_for(timeout=20_000)
    assert "ValueError: the <b>sky</b> fell" in error.inner_text()
    page.locator(".germinate-explorer").first.screenshot(path=tmp_path / "failing.png")


def test_stop_cancels_and_kernel_stays_usable(page, lab, tmp_path):
    name = write_notebook(
        lab.root,
        "slow.ipynb",
        [
            MODELS + "import asyncio\ns = State('slow')",
            "@s.task()\nasync def wait(input: X) -> X:\n"
            "    await asyncio.sleep(60)\n    return input\n"
            "@s.task()\ndef later(input: X) -> X:\n    return input\nwait >> later",
            "explore(s)",
            "print('kernel alive', 40 + 2)",
        ],
    )
    open_notebook(page, lab, name)
    run_all(page)
    page.wait_for_selector(".germinate-explorer .germinate-task", timeout=60_000)
    page.locator("text=kernel alive 42").wait_for(timeout=30_000)
    click_explorer_button(page, "Run")
    wait_for_statuses(page, {"wait": "running", "later": "pending"}, 30)
    click_explorer_button(page, "Stop")
    wait_for_statuses(page, {"wait": "cancelled", "later": "cancelled"}, 30)
    page.locator(".jp-Cell").last.click()
    page.keyboard.press("Escape")
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run Selected Cell", exact=False).first.click()
    rerun = page.locator(".jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-prompt", has_text="[5]")
    )
    rerun.wait_for(timeout=30_000)
    assert "kernel alive 42" in rerun.inner_text()
    page.locator(".germinate-explorer").first.screenshot(path=tmp_path / "stopped.png")


def test_magic_cell_after_explorer_updates_it_in_place(page, lab, tmp_path):
    name = write_notebook(
        lab.root,
        "live.ipynb",
        [
            MODELS + "s = State('live')\n@s.task()\ndef first(input: X) -> X:\n    return input",
            "explore(s)",
            "%%germinate_task second --state live --after first --output X\nX(x=input.x + 1)",
            "from germinate_nb import TaskRegistry\n"
            "print('observers:', len(TaskRegistry.default().run_observers))",
        ],
    )
    open_notebook(page, lab, name)
    run_all(page)
    page.wait_for_selector(".germinate-explorer .germinate-task", timeout=60_000)
    wait_for_statuses(page, {"first": "pending", "second": "pending"}, 30)
    assert page.locator(".germinate-explorer").count() == 1
    click_explorer_button(page, "Run")
    wait_for_statuses(page, {"first": "succeeded", "second": "succeeded"})
    page.locator(".germinate-explorer").first.screenshot(path=tmp_path / "live.png")
    # re-running the explorer's cell replaces it: the old explorer stops following runs
    page.locator(".jp-CodeCell").nth(1).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Shift+Enter")
    page.wait_for_timeout(1500)
    last = page.locator(".jp-CodeCell").nth(3)
    last.locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Shift+Enter")
    last.locator(".jp-InputArea-prompt", has_text="[6]").wait_for(timeout=30_000)
    assert "observers: 1" in last.locator(".jp-OutputArea").inner_text()
    assert page.locator(".germinate-explorer").count() == 1
