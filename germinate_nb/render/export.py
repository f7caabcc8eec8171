"""Export a state's DAG as png, svg, dot or mermaid (imports matplotlib only for images)."""

from __future__ import annotations

from pathlib import Path

from germinate_nb.core.state import State
from germinate_nb.render.text import to_dot, to_mermaid

__all__ = ["FORMATS", "export_state", "format_for_path", "write_export"]

FORMATS = {
    "png": "png",
    "svg": "svg",
    "dot": "dot",
    "gv": "dot",
    "mmd": "mermaid",
    "mermaid": "mermaid",
}


def export_state(state: State, fmt: str, statuses: dict[str, str] | None = None) -> str | bytes:
    """The state's DAG in ``fmt`` (png bytes; svg, dot, mermaid text)."""
    problems = state.validate()
    if fmt == "dot":
        return to_dot(state, statuses, problems)
    if fmt == "mermaid":
        return to_mermaid(state, statuses, problems)
    from germinate_nb.render.mpl import draw_state, figure_png, figure_svg

    fig = draw_state(state, statuses=statuses, problems=problems)
    if fmt == "png":
        return figure_png(fig)
    if fmt == "svg":
        return figure_svg(fig)
    msg = f"unknown format '{fmt}': use png, svg, dot or mermaid."
    raise ValueError(msg)


def format_for_path(path: str) -> str:
    """The export format a file name asks for (by its suffix)."""
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix not in FORMATS:
        msg = f"cannot tell the format of '{path}' from its suffix: use .png, .svg, .dot or .mmd."
        raise ValueError(msg)
    return FORMATS[suffix]


def write_export(data: str | bytes, path: str | Path) -> None:
    """Write what :func:`export_state` returned (png bytes, or text) to ``path``."""
    target = Path(path)
    if isinstance(data, bytes):
        target.write_bytes(data)
    else:
        target.write_text(data, encoding="utf-8")
