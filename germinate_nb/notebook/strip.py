"""The explorer's phase strip: one row per phase, with a toggle per task while the DAG is small.

Above ``TOGGLE_CAP`` tasks the strip is compact: each row shows its phase's counts by status and
opens (one phase at a time) to a page of at most ``PAGE`` toggles, so no widget is made per task
beyond a fixed number. Phase numbers are the state's global phases everywhere.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import ipywidgets as widgets

from germinate_nb.render.text import STATUS_COLORS

__all__ = ["PAGE", "TOGGLE_CAP", "PhaseStrip"]

TOGGLE_CAP = 150
"""Up to this many tasks, every task has a toggle; above, the strip is compact."""
PAGE = 40
"""Toggles shown at once for an opened phase of a compact strip."""
LIGHT_TEXT = frozenset(("succeeded", "failed"))
"""Statuses whose colour is dark enough for white text."""
SELECTED_BORDER = "2px solid var(--jp-brand-color1, #0969da)"
CHANGED_BORDER = "2px dashed var(--jp-warn-color1, #9a6700)"


class PhaseStrip(widgets.VBox):
    """Rows of phases; ``on_select(name)`` is called when a task's toggle is clicked."""

    def __init__(self, on_select: Callable[[str], Any]) -> None:
        super().__init__(layout={"max_height": "260px", "overflow": "auto"})
        self.add_class("germinate-phase-strip")
        self._on_select = on_select
        self.layers: list[list[str]] = []
        self.compact = False
        self.opened: int | None = None  # the open phase of a compact strip
        self.page = 0
        self._statuses: Mapping[str, str] = {}
        self._marks: Mapping[str, str] = {}
        self._selected = ""
        self._phase_of: dict[str, int] = {}
        self._buttons: dict[str, widgets.Button] = {}
        self._summaries: list[widgets.HTML] = []
        self._openers: list[widgets.Button] = []

    # -- building ------------------------------------------------------------------------------

    def rebuild(
        self,
        layers: list[list[str]],
        statuses: Mapping[str, str],
        marks: Mapping[str, str],
        selected: str,
    ) -> None:
        """Lay the rows out again (the DAG's structure changed)."""
        self.layers = layers
        self._statuses, self._marks, self._selected = statuses, marks, selected
        self._phase_of = {n: i for i, layer in enumerate(layers) for n in layer}
        total = sum(len(layer) for layer in layers)
        self.compact = total > TOGGLE_CAP
        if self.compact and selected in self._phase_of:
            self.opened = self._phase_of[selected]
            self.page = self.layers[self.opened].index(selected) // PAGE
        elif self.opened is not None and self.opened >= len(layers):
            self.opened, self.page = None, 0
        self._layout_rows()

    def _layout_rows(self) -> None:
        rows: list[widgets.Widget] = []
        buttons: dict[str, widgets.Button] = {}
        self._summaries, self._openers = [], []
        for i, layer in enumerate(self.layers):
            label = widgets.HTML(f"<b>phase {i + 1}</b>", layout={"width": "70px"})
            shown = layer
            items: list[widgets.Widget] = [label]
            if self.compact:
                summary = widgets.HTML(self._summary(layer))
                opener = widgets.Button(
                    description="hide" if self.opened == i else f"show {len(layer)}",
                    layout={"width": "auto"},
                    tooltip=f"Show the tasks of phase {i + 1}",
                )
                opener.on_click(lambda _b, i=i: self._toggle_phase(i))
                self._summaries.append(summary)
                self._openers.append(opener)
                items += [summary, opener]
                shown = layer[self.page * PAGE : (self.page + 1) * PAGE] if self.opened == i else []
            for name in shown:
                button = self._buttons.get(name) or self._make_button(name)
                self._style(button, name)
                buttons[name] = button
                items.append(button)
            if self.compact and self.opened == i and len(layer) > PAGE:
                items += self._pager(i, len(layer))
            rows.append(widgets.HBox(items, layout={"flex_flow": "row wrap"}))
        self._buttons = buttons
        self.children = rows

    def _pager(self, phase: int, size: int) -> list[widgets.Widget]:
        pages = -(-size // PAGE)
        back = widgets.Button(description="‹", layout={"width": "32px"}, disabled=self.page == 0)
        more = widgets.Button(
            description="›", layout={"width": "32px"}, disabled=self.page >= pages - 1
        )
        back.on_click(lambda _b: self._turn(-1))
        more.on_click(lambda _b: self._turn(1))
        where = widgets.HTML(f"page {self.page + 1}/{pages}")
        return [back, where, more]

    def _turn(self, step: int) -> None:
        self.page = max(0, self.page + step)
        self._layout_rows()

    def _toggle_phase(self, phase: int) -> None:
        self.opened, self.page = (None, 0) if self.opened == phase else (phase, 0)
        self._layout_rows()

    def _make_button(self, name: str) -> widgets.Button:
        button = widgets.Button(description=name, tooltip=name, layout={"width": "auto"})
        button.add_class("germinate-task")
        button.on_click(lambda _b, name=name: self._on_select(name))
        return button

    # -- updating ------------------------------------------------------------------------------

    def update(
        self,
        statuses: Mapping[str, str],
        marks: Mapping[str, str],
        selected: str,
        changed: Iterable[str] | None = None,
    ) -> None:
        """Restyle the toggles of ``changed`` tasks (all when None) and the phase counts."""
        previous = self._selected
        self._statuses, self._marks, self._selected = statuses, marks, selected
        if self.compact and selected and selected in self._phase_of:
            phase = self._phase_of[selected]
            page = self.layers[phase].index(selected) // PAGE
            if (phase, page) != (self.opened, self.page):
                self.opened, self.page = phase, page
                self._layout_rows()
                return
        names = set(self._buttons) if changed is None else set(changed) | {previous, selected}
        for name in names:
            button = self._buttons.get(name)
            if button is not None:
                self._style(button, name)
        if self.compact:
            touched = {self._phase_of[n] for n in names if n in self._phase_of}
            for i in touched if changed is not None else range(len(self.layers)):
                value = self._summary(self.layers[i])
                if self._summaries[i].value != value:
                    self._summaries[i].value = value

    def _summary(self, layer: list[str]) -> str:
        counts: dict[str, int] = {}
        for name in layer:
            status = self._statuses.get(name, "pending")
            counts[status] = counts.get(status, 0) + 1
        chips = " ".join(
            f"<span title='{n} {html.escape(s)}' style='color:{STATUS_COLORS.get(s, '#8c959f')}'>"
            f"●</span>{n}"
            for s, n in sorted(counts.items())
        )
        return f"<span style='white-space:nowrap'>{chips}</span>"

    def _style(self, button: widgets.Button, name: str) -> None:
        status = self._statuses.get(name, "pending")
        # one message per trait that really changes: this runs for every task event
        classes = tuple(c for c in button._dom_classes if not c.startswith("germinate-status-"))
        classes += (f"germinate-status-{status.replace(' ', '-')}",)
        if button._dom_classes != classes:
            button._dom_classes = classes
        color = STATUS_COLORS.get(status, "#eaeef2")
        if button.style.button_color != color:
            button.style.button_color = color
            # the status colours are fixed: so is the text on them, in light and dark themes
            button.style.text_color = "#ffffff" if status in LIGHT_TEXT else "#1f2328"
        if name == self._selected:
            border = SELECTED_BORDER
        elif self._marks.get(name):
            border = CHANGED_BORDER
        else:
            border = ""
        if (button.layout.border or "") != border:
            button.layout.border = border
        changed = ", code changed since its last run" if self._marks.get(name) else ""
        tip = f"{name} ({status}{changed})"
        if button.tooltip != tip:
            button.tooltip = tip

    @property
    def buttons(self) -> dict[str, widgets.Button]:
        """The task toggles on display, by task name."""
        return dict(self._buttons)
