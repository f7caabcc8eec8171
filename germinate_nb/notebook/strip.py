"""The explorer's phase strip: one row per phase, with a toggle per task while the DAG is small.

Above ``TOGGLE_CAP`` tasks the strip is compact: a table of each phase's counts by status, a
phase picker, and one page of at most ``PAGE`` toggles of the picked phase, so a DAG of any size
makes the same few widgets. Phase numbers are the state's global phases everywhere.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import ipywidgets as widgets

from germinate_nb.render.text import STATUS_COLORS

__all__ = ["PAGE", "TOGGLE_CAP", "PhaseStrip"]

TOGGLE_CAP = 150
"""Up to this many tasks, every task has a toggle; above, the strip is compact."""
PAGE = 40
"""Toggles shown at once for an opened phase of a compact strip."""
SUMMARY_ROWS = 60
"""Phases listed with their counts in a compact strip (the picker reaches every phase)."""
LIGHT_TEXT = frozenset(("succeeded", "failed"))
"""Statuses whose colour is dark enough for white text."""
SELECTED_BORDER = "2px solid var(--jp-brand-color1, #0969da)"
CHANGED_BORDER = "2px dashed var(--jp-warn-color1, #9a6700)"
_SEARCH_CLASSES = frozenset(("germinate-match", "germinate-nomatch"))


def _found_cell(count: int) -> str:
    """A compact strip's count of the search's matches in one phase (bold when any)."""
    return f"<td><b>{count}</b></td>" if count else "<td style='opacity:0.5'>0</td>"


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
        self._matches: frozenset[str] | None = None  # what the search names (None: no search)
        self._phase_of: dict[str, int] = {}
        self._buttons: dict[str, widgets.Button] = {}
        self._picker: widgets.Dropdown | None = None
        self._summary_box: widgets.HTML | None = None
        self._page_row: widgets.HBox | None = None
        self._slots: list[widgets.Button] = []  # a compact strip's toggles, reused page to page
        self._slot_names: dict[int, str] = {}  # id(slot) -> the task it shows
        self._pager_parts: list[widgets.Widget] = []

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
        compact = total > TOGGLE_CAP
        if compact != self.compact:
            self._buttons = {}  # a compact strip's toggles are relabelled slots, not per task
        self.compact = compact
        if self.compact and selected in self._phase_of:
            self.opened = self._phase_of[selected]
            self.page = self.layers[self.opened].index(selected) // PAGE
        elif self.opened is not None and self.opened >= len(layers):
            self.opened, self.page = None, 0
        self._layout_rows()

    def _layout_rows(self) -> None:
        if self.compact:
            self._layout_compact()
            return
        rows: list[widgets.Widget] = []
        buttons: dict[str, widgets.Button] = {}
        for i, layer in enumerate(self.layers):
            label = widgets.HTML(f"<b>phase {i + 1}</b>", layout={"width": "70px"})
            items: list[widgets.Widget] = [label]
            for name in layer:
                button = self._buttons.get(name) or self._make_button(name)
                self._style(button, name)
                buttons[name] = button
                items.append(button)
            rows.append(widgets.HBox(items, layout={"flex_flow": "row wrap", "flex": "0 0 auto"}))
        self._buttons = buttons
        self.children = rows

    def _layout_compact(self) -> None:
        """A fixed number of widgets: counts per phase, a phase picker, one page of toggles."""
        if self._picker is None:
            # in a column with a max height, flex items shrink to nothing by default: not these
            self._summary_box = widgets.HTML(layout={"flex": "0 0 auto"})
            self._picker = widgets.Dropdown(
                description="Tasks of", layout={"width": "260px", "flex": "0 0 auto"}
            )
            self._picker.observe(self._on_picker_change, names="value")
            self._page_row = widgets.HBox(layout={"flex_flow": "row wrap", "flex": "0 0 auto"})
        options = [("(pick a phase)", -1)] + [
            (f"phase {i + 1} ({len(layer)} tasks)", i) for i, layer in enumerate(self.layers)
        ]
        if list(self._picker.options) != options:
            self._picker.options = options
        self._picker.value = self.opened if self.opened is not None else -1
        self._summary_box.value = self._summaries_html()
        buttons: dict[str, widgets.Button] = {}
        items: list[widgets.Widget] = []
        if self.opened is not None:
            layer = self.layers[self.opened]
            for i, name in enumerate(layer[self.page * PAGE : (self.page + 1) * PAGE]):
                # the page's toggles are the same few widgets, relabelled: a click shows the
                # task at once, with no widget models to create in the browser
                button = self._slot(i)
                self._slot_names[id(button)] = name
                with button.hold_sync():  # one message per widget, not one per trait
                    if button.description != name:
                        button.description = name
                    self._style(button, name)
                buttons[name] = button
                items.append(button)
            if len(layer) > PAGE:
                items += self._pager(len(layer))
        self._buttons = buttons
        if list(self._page_row.children) != items:
            self._page_row.children = items
        parts = [self._picker, self._page_row, self._summary_box]  # the toggles first
        if list(self.children) != parts:
            self.children = parts

    def _slot(self, i: int) -> widgets.Button:
        while len(self._slots) <= i:
            button = widgets.Button(layout={"width": "auto"})
            button.add_class("germinate-task")
            button.on_click(lambda b: self._on_select(self._slot_names[id(b)]))
            self._slots.append(button)
        return self._slots[i]

    def _summaries_html(self) -> str:
        matches = self._matches
        rows = "".join(
            f"<tr><td style='white-space:nowrap'><b>phase {i + 1}</b></td>"
            f"<td>{len(layer)}</td><td>{self._summary(layer)}</td>"
            + ("" if matches is None else _found_cell(sum(n in matches for n in layer)))
            + "</tr>"
            for i, layer in enumerate(self.layers[:SUMMARY_ROWS])
        )
        more = (
            f"<tr><td colspan=3><i>... and {len(self.layers) - SUMMARY_ROWS} more phases (pick "
            "one below)</i></td></tr>"
            if len(self.layers) > SUMMARY_ROWS
            else ""
        )
        found = "" if matches is None else "<th>found</th>"
        return (
            "<table class='germinate-phase-counts'><thead><tr><th>phase</th><th>tasks</th>"
            f"<th>by status</th>{found}</tr></thead><tbody>{rows}{more}</tbody></table>"
        )

    def _on_picker_change(self, change: dict[str, Any]) -> None:
        value = change["new"]
        opened = None if value is None or value < 0 else int(value)
        if opened != self.opened:
            self.opened, self.page = opened, 0
            self._layout_compact()

    def _pager(self, size: int) -> list[widgets.Widget]:
        pages = -(-size // PAGE)
        if not self._pager_parts:
            back = widgets.Button(description="‹", layout={"width": "32px"})
            more = widgets.Button(description="›", layout={"width": "32px"})
            back.on_click(lambda _b: self._turn(-1))
            more.on_click(lambda _b: self._turn(1))
            self._pager_parts = [back, widgets.HTML(), more]
        back, where, more = self._pager_parts
        back.disabled = self.page == 0
        more.disabled = self.page >= pages - 1
        where.value = f"page {self.page + 1}/{pages}"
        return list(self._pager_parts)

    def _turn(self, step: int) -> None:
        self.page = max(0, self.page + step)
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
        if self.compact and self._summary_box is not None:
            value = self._summaries_html()
            if self._summary_box.value != value:
                self._summary_box.value = value

    def set_matches(self, matches: Collection[str] | None) -> None:
        """Show what the explorer's search names: other toggles dim, phases count their matches.

        ``None`` (no search) shows every toggle plainly; an empty collection dims them all.
        """
        found = None if matches is None else frozenset(matches)
        if found == self._matches:
            return
        self._matches = found
        for name, button in self._buttons.items():
            self._style(button, name)
        if self.compact and self._summary_box is not None:
            self._summary_box.value = self._summaries_html()

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
        classes = tuple(
            c
            for c in button._dom_classes
            if not c.startswith("germinate-status-") and c not in _SEARCH_CLASSES
        )
        classes += (f"germinate-status-{status.replace(' ', '-')}",)
        matches = self._matches
        if matches is not None:
            classes += ("germinate-match" if name in matches else "germinate-nomatch",)
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
