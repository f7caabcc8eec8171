"""Export a state's DAG as png, svg, dot or mermaid (imports matplotlib only for images)."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from germinate_nb.core.state import State
from germinate_nb.errors import OutputPathError
from germinate_nb.render.text import to_dot, to_mermaid

__all__ = ["FORMATS", "check_output_path", "export_state", "format_for_path", "write_export"]

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


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """Check that a file can be written at ``path`` before any work is done for it.

    Nothing is left behind: an existing file is opened for appending (not changed), otherwise
    a probe file is created in its folder and removed.

    Parameters
    ----------
    path
        Where the export will be written.

    Returns
    -------
    Path
        The path, absolute.

    Raises
    ------
    OutputPathError
        With one line saying what is wrong and how to fix it: the folder does not exist, a part
        of the path is a file, the path is a folder, or the folder cannot be written.
    """
    shown = os.fspath(path)
    if "\0" in shown:
        msg = f"cannot write {shown!r}: the path contains a NUL byte. Choose another file name."
        raise OutputPathError(msg, path=shown)
    target = Path(shown).absolute()
    parent = target.parent
    try:
        if target.is_dir():
            msg = (
                f"cannot write {shown}: it is a directory. "
                f"Give a file name, e.g. {os.path.join(shown, 'dag.png')}."
            )
            raise OutputPathError(msg, path=shown)
        blocker = next((p for p in (parent, *parent.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            msg = (
                f"cannot write {shown}: {blocker} is a file, not a directory. "
                "Choose a path inside a directory."
            )
            raise OutputPathError(msg, path=shown)
        if not parent.is_dir():
            msg = (
                f"cannot write {shown}: directory {parent} does not exist. "
                f"Create it first (mkdir -p {parent}) or choose another path."
            )
            raise OutputPathError(msg, path=shown)
        if target.exists():
            with target.open("ab"):
                pass
        else:
            fd, probe = tempfile.mkstemp(prefix=".germinate-probe-", dir=parent)
            os.close(fd)
            os.unlink(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        if err.errno in (errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS):
            reason = f"directory {parent} does not accept new files ({reason})"
        msg = f"cannot write {shown}: {reason}. Choose a path in a directory you can write to."
        raise OutputPathError(msg, path=shown) from None
    return target


def write_export(data: str | bytes, path: str | Path) -> None:
    """Write what :func:`export_state` returned (png bytes, or text) to ``path``.

    Raises
    ------
    OutputPathError
        When the file cannot be written (one line naming the path and the reason).
    """
    target = Path(path)
    try:
        if isinstance(data, bytes):
            target.write_bytes(data)
        else:
            target.write_text(data, encoding="utf-8", errors="backslashreplace")
    except OSError as err:
        msg = f"cannot write {path}: {err.strerror or err}. Choose another path."
        raise OutputPathError(msg, path=str(path)) from None
