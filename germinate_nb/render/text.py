"""Graphviz dot and Mermaid text for a state's DAG, with statuses as styles.

Any name is safe here: dot strings are quoted and escaped, Mermaid node ids are generated
(``t0``, ``t1``...) and task names only appear in quoted, entity-escaped labels, so a task called
``end`` or ``graph`` (reserved words of both languages) cannot break the diagram.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping

from germinate_nb.core.state import State
from germinate_nb.core.validate import Problem

__all__ = ["STATUS_COLORS", "to_dot", "to_mermaid"]

STATUS_COLORS = {
    "pending": "#d0d7de",
    "running": "#f2c94c",
    "succeeded": "#2da44e",
    "failed": "#cf222e",
    "skipped": "#8c959f",
    "cached": "#54aeff",
    "cancelled": "#bf8700",
}
PROBLEM_COLOR = "#d1242f"
MUTED = "#57606a"
"""Outlines, arrows and secondary labels (a mid grey that reads on white and on dark)."""


def _problem_edges(problems: Iterable[Problem]) -> set[tuple[str, str]]:
    return {edge for p in problems for edge in p.edges}


def _quote(text: str) -> str:
    r"""A dot string: quoted, with backslashes, quotes and line breaks escaped.

    >>> print(_quote('say "hi" \\o/'))
    "say \"hi\" \\o/"
    >>> print(_quote("two\nlines"))
    "two\nlines"
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")
    return '"' + escaped + '"'


# Characters that Mermaid reads as syntax, markup or math inside a quoted label: written as
# Mermaid entity codes (``#35;``), which it turns back into the character when it draws.
_MERMAID_SPECIAL = frozenset('"#&<>`$\\[](){}|;%')


def _mermaid_label(text: str) -> str:
    r"""A quoted Mermaid label showing ``text`` literally.

    Line breaks stay line breaks; control characters, which no one can see, are shown as
    escapes (``\x1b``).

    >>> _mermaid_label('a "b" <c>')
    '"a #34;b#34; #60;c#62;"'
    >>> _mermaid_label("x\ty")
    '"x#92;ty"'
    """
    out: list[str] = []
    for ch in text.replace("\r\n", "\n").replace("\r", "\n"):
        if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cs"):
            out.extend(f"#{ord(c)};" if c == "\\" else c for c in repr(ch)[1:-1])
        elif ch in _MERMAID_SPECIAL or not ch.isprintable():
            out.append(f"#{ord(ch)};")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def to_dot(
    state: State,
    statuses: Mapping[str, str] | None = None,
    problems: Iterable[Problem] = (),
) -> str:
    """Graphviz dot source, left to right, nodes filled by status, problem edges in red.

    Examples
    --------
    >>> from germinate_nb import State, TaskExecutor, use_registry
    >>> with use_registry():
    ...     s = State("s")
    ...     a, b = (s.define_task(n, TaskExecutor(n + "_executor", print)) for n in "ab")
    ...     _ = a >> b
    ...     print(to_dot(s, {"a": "succeeded"}))
    digraph "s" {
      rankdir=LR;
      node [shape=box, style="rounded,filled", fontname="Helvetica"];
      "a" [fillcolor="#2da44e"];
      "b" [fillcolor="#d0d7de"];
      "a" -> "b";
    }
    """
    statuses = statuses or {}
    bad = _problem_edges(problems)
    lines = [
        f"digraph {_quote(state.name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
    ]
    for task in state.tasks:
        color = STATUS_COLORS.get(statuses.get(task.name, "pending"), STATUS_COLORS["pending"])
        lines.append(f'  {_quote(task.name)} [fillcolor="{color}"];')
    for task in state.tasks:
        for parent in task.parents:
            style = (
                f' [color="{PROBLEM_COLOR}", penwidth=2]' if (parent.name, task.name) in bad else ""
            )
            lines.append(f"  {_quote(parent.name)} -> {_quote(task.name)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(
    state: State,
    statuses: Mapping[str, str] | None = None,
    problems: Iterable[Problem] = (),
) -> str:
    """Mermaid flowchart source (``flowchart LR``) with one class per status.

    Node ids are generated (``t0``, ``t1``... in declaration order); the task names are the
    nodes' quoted labels.

    Examples
    --------
    >>> from germinate_nb import State, TaskExecutor, use_registry
    >>> with use_registry():
    ...     s = State("s")
    ...     a, end = (s.define_task(n, TaskExecutor(n + "_executor", print)) for n in ("a", "end"))
    ...     _ = a >> end
    ...     print(to_mermaid(s).splitlines()[:4])
    ['flowchart LR', '  t0["a"]', '  t1["end"]', '  t0 --> t1']
    """
    statuses = statuses or {}
    bad = _problem_edges(problems)
    ids = {task.name: f"t{i}" for i, task in enumerate(state.tasks)}
    lines = ["flowchart LR"]
    for task in state.tasks:
        lines.append(f"  {ids[task.name]}[{_mermaid_label(task.name)}]")
    edge_index = 0
    red: list[int] = []
    for task in state.tasks:
        for parent in task.parents:
            if parent.name not in ids:  # a parent from another state (a validation problem)
                ids[parent.name] = f"t{len(ids)}"
                lines.append(f"  {ids[parent.name]}[{_mermaid_label(parent.name)}]")
            lines.append(f"  {ids[parent.name]} --> {ids[task.name]}")
            if (parent.name, task.name) in bad:
                red.append(edge_index)
            edge_index += 1
    for status, color in STATUS_COLORS.items():
        members = [ids[t.name] for t in state.tasks if statuses.get(t.name, "pending") == status]
        if members:
            lines.append(f"  classDef {status} fill:{color},stroke:{MUTED}")
            lines.append(f"  class {','.join(members)} {status}")
    if red:
        lines.append(
            f"  linkStyle {','.join(map(str, red))} stroke:{PROBLEM_COLOR},stroke-width:2px"
        )
    return "\n".join(lines) + "\n"
