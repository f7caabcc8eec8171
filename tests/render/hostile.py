"""Hostile names and texts, a state built from them, and checkers for HTML, SVG and DOT.

Shared by the consumer checks (tests/render/test_export_consumers.py) and the fuzz test
(tests/render/test_hostile_fuzz.py).
"""

from __future__ import annotations

import keyword
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Literal

from hypothesis import strategies as st
from pydantic import BaseModel, create_model

from germinate_nb import State, TaskExecutor, Workflow

# Task names are identifiers, but these are reserved words of Mermaid or DOT (`end` breaks a
# flowchart when used as a bare id), identifiers in right-to-left scripts, a 10,000-character
# name, and names that look like the generated Mermaid ids.
RESERVED = [
    "end",
    "graph",
    "style",
    "click",
    "subgraph",
    "classDef",
    "default",
    "linkStyle",
    "flowchart",
    "direction",
    "call",
    "href",
    "node",
    "edge",
    "digraph",
    "strict",
    "t0",
    "t1",
]
UNICODE_NAMES = ["אבג", "مرحبا", "名前", "é_ß", "x\u0301"]
LONG_NAME = "n" + "x" * 9_999
HOSTILE_NAMES = [*RESERVED, *UNICODE_NAMES, LONG_NAME]

# Arbitrary text: condition names, Literal values, docstrings, field values, error messages.
HOSTILE_TEXTS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\"double\" and 'single' quotes",
    "line one\nline two\r\nline three",
    "$x^2$ and $$y$$ and $\\alpha$",
    "\\back\\slash\\ \\n \\\\",
    "\u200fright-to-left\u202e mark \u200e",
    "&amp; &lt; &#60; #quot; #35;",
    "{{ }} [ ] ( ) ; # % | ` -->",
    "end graph style click subgraph classDef default",
    "\x00nul \x1b[31mescape\x07",
    "]]> <![CDATA[ -->",
    "y" * 10_000,
]
HOSTILE_CHARS = list("<>&\"'\n\r\t$\\`#;%|{}[]()=-/ ") + [
    "\u200f",
    "\u202e",
    "\u200e",
    "\x00",
    "\x1b",
    "a",
    "é",
    "א",
    "ع",
]

identifiers = st.one_of(
    st.sampled_from(HOSTILE_NAMES),
    st.text(
        alphabet=st.sampled_from(list("abxz_09") + ["א", "ع", "é", "名"]), min_size=1, max_size=12
    ),
).filter(lambda s: s.isidentifier() and not keyword.iskeyword(s))

texts = st.one_of(
    st.sampled_from(HOSTILE_TEXTS),
    st.text(alphabet=st.sampled_from(HOSTILE_CHARS), min_size=1, max_size=40),
)


class Plain(BaseModel):
    x: int = 0


def literal_model(values: Sequence[str]) -> type[BaseModel]:
    """A model whose required field ``choice`` is a ``Literal`` of ``values``."""
    return create_model("Choice", choice=(Literal[tuple(dict.fromkeys(values))], ...))


def hostile_state(
    names: Sequence[str],
    *,
    literal_values: Sequence[str] = ("$x$",),
    source: str = "",
    state: str = "hostile",
) -> State:
    """A chain of tasks called ``names``; the last one needs a Literal field nobody provides.

    So ``validate()`` reports a schema gap whose message quotes the Literal values.
    """
    s = State(state)
    tasks = []
    for i, name in enumerate(names):
        last = i == len(names) - 1
        executor = TaskExecutor(
            f"{name}_executor",
            lambda input: input,
            input_schema=literal_model(literal_values) if last else Plain,
            output_schema=Plain,
            source=source or None,
        )
        tasks.append(s.define_task(name, executor))
    for parent, child in zip(tasks, tasks[1:], strict=False):
        parent >> child
    return s


def hostile_workflow(
    state: State, condition: str, name: str = "wf", version: str = "1"
) -> Workflow:
    """A workflow from ``state`` to a second state, through a condition called ``condition``."""
    wf = Workflow(name, version)
    other = State("other")
    wf.add_state(state, initial_state=True)
    wf.add_state(other)
    cond = state.condition(lambda: True, name=condition)
    (state & cond) >> other
    return wf


# -- checkers -----------------------------------------------------------------------------------

VOID = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "wbr", "source"}


class HtmlChecker(HTMLParser):
    """Parses HTML; records unbalanced tags, scripts, event attributes and the decoded text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object", "embed"):
            self.errors.append(f"<{tag}> element")
        for attr, _ in attrs:
            if attr.lower().startswith("on"):
                self.errors.append(f"event attribute {attr} on <{tag}>")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def check_html(markup: str) -> str:
    """Assert ``markup`` is balanced, script-free HTML; return its text (entities decoded)."""
    checker = HtmlChecker()
    checker.feed(markup)
    checker.close()
    assert not checker.errors, checker.errors
    assert not checker.stack, f"unclosed tags: {checker.stack}"
    return checker.text


def check_svg(svg: str) -> str:
    """Assert ``svg`` is XML with no script and no event attribute; return all its text."""
    root = ET.fromstring(svg)
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1].lower()
        assert tag not in ("script", "foreignobject", "iframe"), tag
        for attr in element.attrib:
            name = attr.rsplit("}", 1)[-1].lower()
            assert not name.startswith("on"), f"event attribute {attr} on <{tag}>"
            assert "javascript:" not in element.attrib[attr].lower()
    return "".join(root.itertext())


def dot_unquote(text: str) -> str:
    """The string a dot ID stands for (quotes and escapes removed)."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        body, out, i = text[1:-1], [], 0
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in '"\\':
                out.append(body[i + 1])
                i += 2
            else:
                out.append(body[i])
                i += 1
        return "".join(out)
    return text


def check_dot(dot: str) -> tuple[str, set[str], set[tuple[str, str]]]:
    """Parse ``dot`` with pydot; return the graph name, the node names and the edges."""
    import pydot

    graphs = pydot.graph_from_dot_data(dot)
    assert graphs, f"pydot cannot parse:\n{dot[:2000]}"
    (graph,) = graphs
    defaults = {"node", "edge", "graph"}  # unquoted: attribute statements, not tasks
    nodes = {dot_unquote(n.get_name()) for n in graph.get_nodes() if n.get_name() not in defaults}
    edges = {
        (dot_unquote(e.get_source()), dot_unquote(e.get_destination())) for e in graph.get_edges()
    }
    return dot_unquote(graph.get_name()), nodes, edges
