"""The import layers: graph -> core -> execution -> render -> notebook / cli, never upward."""

from __future__ import annotations

import ast
from pathlib import Path

import germinate_nb

PACKAGE = Path(germinate_nb.__file__).parent
# graph is the bottom layer (pure algorithms over adjacency mappings); errors.py is shared.
LAYERS = {"graph": 0, "core": 1, "execution": 2, "render": 3, "notebook": 4, "cli": 4}
# The one deliberate exception, imported when called: RunResult.timeline() is the convenience the
# run-feedback issue asks for ("result.timeline() returning a matplotlib figure"); it hands the
# result to render.timeline, which reads only the result.
ALLOWED = {("execution/result.py", "germinate_nb.render.timeline")}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "germinate_nb" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def test_no_module_imports_an_upper_layer():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(("germinate_nb", *path.relative_to(PACKAGE).with_suffix("").parts))
        own = _layer(module)
        if own is None:
            continue
        for line, imported in _imports(path):
            other = _layer(imported)
            where = path.relative_to(PACKAGE).as_posix()
            if other is not None and other > own and (where, imported) not in ALLOWED:
                upward.append(f"{where}:{line} imports {imported}")
    assert upward == []


def test_errors_module_imports_no_layer_at_run_time():
    tree = ast.parse((PACKAGE / "errors.py").read_text(encoding="utf-8"))
    runtime = [
        node
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and any(_layer(n) is not None for n in [getattr(node, "module", None) or ""])
    ]
    assert runtime == []


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from germinate_nb.execution.runner import run\n")
    assert _imports(bad) == [(2, "germinate_nb.execution.runner")]
    assert _layer("germinate_nb.execution.runner") > _layer("germinate_nb.core.state")
