"""Every export is read back by its real consumer, for hostile task and condition names.

- Mermaid: the ``mermaid`` package's own parser (and renderer), in headless Chromium. The package
  comes from the npm registry: ``npm ci --prefix tests/resources/mermaid`` (``.ci/run`` does it).
- DOT: pydot's parser.
- SVG: an XML parser, plus no script and no event attribute; PNG: it is written at all.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import matplotlib
import pytest

from germinate_nb.render.export import export_state
from germinate_nb.render.mpl import draw_workflow, figure_png, figure_svg
from germinate_nb.render.text import to_dot, to_mermaid
from tests.e2e.lab import ARGS, CHROMIUM
from tests.render.hostile import (
    HOSTILE_CHARS,
    HOSTILE_NAMES,
    HOSTILE_TEXTS,
    RESERVED,
    UNICODE_NAMES,
    check_dot,
    check_svg,
    hostile_state,
    hostile_workflow,
)

MERMAID_DIR = Path(__file__).resolve().parents[1] / "resources" / "mermaid"
MERMAID_BUNDLE = MERMAID_DIR / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
STATUSES = ["pending", "running", "succeeded", "failed", "skipped", "cached", "cancelled"]

PARSE = """async (text) => {
  try { await mermaid.parse(text); return null; }
  catch (err) { return String((err && err.message) || err); }
}"""
RENDER_LABELS = """async (text) => {
  const id = "g" + Math.random().toString(36).slice(2);
  const { svg } = await mermaid.render(id, text);
  const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
  return Array.from(doc.querySelectorAll("g.node")).map((n) => n.textContent);
}"""


def all_names_state(**options):
    return hostile_state(HOSTILE_NAMES, literal_values=HOSTILE_TEXTS, **options)


def statuses_for(names, seed=0):
    rng = random.Random(seed)
    return {n: rng.choice(STATUSES) for n in names}


def sample_states(fresh_registry):
    """A fixed sample: every hostile name, plus states drawn at random from the alphabets."""
    from germinate_nb import TaskRegistry

    rng = random.Random(16)
    states = []
    for i in range(6):
        TaskRegistry.default().clear()
        pool = RESERVED + UNICODE_NAMES + [f"n{i}_{j}" for j in range(3)]
        names = rng.sample(pool, rng.randint(1, 6))
        values = ["".join(rng.choices(HOSTILE_CHARS, k=rng.randint(1, 20))) for _ in range(3)]
        s = hostile_state(names, literal_values=values, state=f"s{i}")
        states.append((s, to_mermaid(s, statuses_for(names, i), s.validate())))
    return states


# -- Mermaid, in the browser -------------------------------------------------------------------


@pytest.fixture(scope="module")
def mermaid_page():
    """A blank page in headless Chromium with mermaid's browser bundle loaded (once per module)."""
    if not MERMAID_BUNDLE.exists():
        pytest.fail(
            f"{MERMAID_BUNDLE} is missing: install the Mermaid checker with "
            "`npm ci --prefix tests/resources/mermaid` (.ci/run does it)."
        )
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.set_content("<!doctype html><html><body></body></html>")
            page.add_script_tag(content=MERMAID_BUNDLE.read_text(encoding="utf-8"))
            page.evaluate("mermaid.initialize({startOnLoad: false, securityLevel: 'strict'})")
            yield page
        finally:
            browser.close()


def test_mermaid_parser_rejects_a_bare_end_id(mermaid_page):
    """The check can fail: a task called `end` written as a bare node id breaks the flowchart."""
    assert mermaid_page.evaluate(PARSE, 'flowchart LR\n  a["a"]\n  b["b"]\n  a --> b\n') is None
    raw = 'flowchart LR\n  a["a"]\n  end["end"]\n  a --> end\n'
    error = mermaid_page.evaluate(PARSE, raw)
    assert error is not None and "Parse error" in error


def test_mermaid_export_of_hostile_names_parses(mermaid_page):
    s = all_names_state()
    problems = s.validate()
    assert problems  # the Literal values are quoted in a problem: red edges, linkStyle
    for seed in range(3):
        text = to_mermaid(s, statuses_for(HOSTILE_NAMES, seed), problems)
        assert mermaid_page.evaluate(PARSE, text) is None, text[:3000]
    assert mermaid_page.evaluate(PARSE, export_state(s, "mermaid")) is None


def test_mermaid_export_of_random_states_parses(mermaid_page, fresh_registry):
    for s, text in sample_states(fresh_registry):
        assert mermaid_page.evaluate(PARSE, text) is None, (s.name, text)


def test_mermaid_draws_every_name_literally(mermaid_page):
    names = [n for n in HOSTILE_NAMES if n != HOSTILE_NAMES[-1]]  # without the 10,000 characters
    s = hostile_state(names)
    labels = mermaid_page.evaluate(RENDER_LABELS, to_mermaid(s, statuses_for(names)))
    assert sorted(labels) == sorted(names)


def test_mermaid_labels_decode_to_any_text(mermaid_page):
    """Labels are entity-escaped: Mermaid draws quotes, <, $, # ... as the characters."""
    from germinate_nb.render.text import _mermaid_label

    texts = [t for t in HOSTILE_TEXTS if len(t) < 1000]
    text = "flowchart LR\n" + "".join(f"  t{i}[{_mermaid_label(t)}]\n" for i, t in enumerate(texts))
    labels = mermaid_page.evaluate(RENDER_LABELS, text)
    # line breaks come back as "\n", control characters as escapes, the rest as written
    expected = [
        re.sub(r"[\x00-\x09\x0b-\x1f]", lambda m: repr(m.group())[1:-1], t.replace("\r\n", "\n"))
        for t in texts
    ]
    assert labels == expected


# -- DOT, with pydot --------------------------------------------------------------------------


def test_dot_parser_rejects_a_broken_string():
    """The check can fail: a quote that is not escaped breaks the dot source."""
    import pydot

    assert pydot.graph_from_dot_data('digraph "s" { "a" -> "b"; }')
    assert not pydot.graph_from_dot_data('digraph "s" { "a"b" -> "c"; }')


def test_dot_export_of_hostile_names_parses_and_round_trips():
    s = all_names_state()
    problems = s.validate()
    dot = to_dot(s, statuses_for(HOSTILE_NAMES), problems)
    name, nodes, edges = check_dot(dot)
    assert name == "hostile"
    assert nodes == set(HOSTILE_NAMES)
    assert edges == set(zip(HOSTILE_NAMES, HOSTILE_NAMES[1:], strict=False))
    assert check_dot(export_state(s, "dot"))[1] == set(HOSTILE_NAMES)


# -- SVG and PNG ------------------------------------------------------------------------------


def test_svg_export_is_safe_xml_and_shows_names_literally():
    names = [*RESERVED, *UNICODE_NAMES]
    s = hostile_state(names, literal_values=["$x^2$", "<script>alert(1)</script>", "a & b"])
    text = check_svg(export_state(s, "svg"))
    for name in names:
        assert name in text
    # the problem message quotes the Literal values, drawn as written (no mathtext)
    assert "$x^2$" in text and "<script>alert(1)</script>" in text and "a & b" in text


def test_svg_of_workflow_shows_condition_and_names_literally():
    s = hostile_state(["end"])
    wf = hostile_workflow(s, '$\\frac{1}{0}$ <b>"go"</b>', name="$wf$ & <co>", version="1$")
    text = check_svg(figure_svg(draw_workflow(wf, current="hostile")))
    assert '$\\frac{1}{0}$ <b>"go"</b>' in text
    assert "workflow $wf$ & <co> v1$" in text
    assert figure_png(draw_workflow(wf))[:4] == b"\x89PNG"


def test_control_characters_are_shown_as_escapes_in_svg():
    """A NUL or an ESC cannot be in XML: they are drawn as their escapes."""
    wf = hostile_workflow(hostile_state(["a"]), "\x00nul \x1b[31mred")
    text = check_svg(figure_svg(draw_workflow(wf)))
    assert "\\x00nul \\x1b[31mred" in text


def test_every_format_exports_the_hostile_state():
    s = all_names_state()
    assert export_state(s, "png")[:8] == b"\x89PNG\r\n\x1a\n"
    check_svg(export_state(s, "svg"))


def test_user_rcparams_cannot_turn_on_tex_or_mathtext():
    """With text.usetex on (and no TeX installed here), our figures are still drawn as written."""
    s = hostile_state(["end", "graph"], literal_values=["$x$", "100%", "a_b^c"])
    with matplotlib.rc_context({"text.usetex": True, "text.parse_math": True}):
        assert export_state(s, "png")[:4] == b"\x89PNG"
        text = check_svg(export_state(s, "svg"))
        wf = hostile_workflow(s, "$a$")
        assert figure_png(draw_workflow(wf))[:4] == b"\x89PNG"
    assert "a_b^c" in text
