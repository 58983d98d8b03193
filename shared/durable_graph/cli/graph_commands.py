"""`durable-graph graph GRAPH --format mermaid|svg`: the picture of a graph, as the explorer
draws it.

`mermaid` prints Mermaid flowchart text (GitHub and most Markdown viewers render it). `svg` lays
that text out with the Mermaid vendored in the package (`durable_graph/api/static/`), run in a
headless Chromium through Playwright: we never lay a graph out ourselves. Both need only the
graph's import path; nothing is read from a store.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from durable_graph.drawing import mermaid, shape_of
from durable_graph.errors import UserError
from durable_graph.loader import load_graph

CHROMIUM_ENV = "DURABLE_GRAPH_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
RENDER_TIMEOUT_MS = 30_000


class SvgUnavailable(UserError):
    code = "svg_unavailable"


def register(sub: Any) -> None:
    graph = sub.add_parser("graph", help="draw a graph: Mermaid text, or SVG laid out by Mermaid")
    graph.add_argument("graph", help="import path, e.g. examples.email_approval:graph")
    graph.add_argument("--format", choices=("mermaid", "svg"), default="mermaid")
    graph.add_argument("--out", type=Path, help="write to this file instead of stdout")
    graph.set_defaults(handler=cmd_graph)


def cmd_graph(args: argparse.Namespace) -> int:
    compiled = load_graph(args.graph)
    text = mermaid(shape_of(compiled.spec, args.graph))
    result = text if args.format == "mermaid" else render_svg(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(result, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(result)
    return 0


def mermaid_script() -> str:
    """The vendored Mermaid bundle (version and licence in `api/static/VENDORED.md`)."""
    return (
        resources.files("durable_graph")
        .joinpath("api", "static", "mermaid.min.js")
        .read_text("utf-8")
    )


def render_svg(text: str) -> str:
    """Lay `text` out with the vendored Mermaid in headless Chromium; an SVG document."""
    chromium = os.environ.get(CHROMIUM_ENV, DEFAULT_CHROMIUM)
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        raise SvgUnavailable(
            "--format svg needs Playwright (pip install playwright) and a Chromium; "
            "--format mermaid needs neither"
        ) from None
    if not Path(chromium).exists():
        raise SvgUnavailable(
            f"--format svg needs a Chromium at {chromium} (set {CHROMIUM_ENV}); "
            "--format mermaid needs none"
        )
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(
                executable_path=chromium,
                headless=True,
                args=["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
        except Error as exc:
            raise SvgUnavailable(f"could not start Chromium at {chromium}: {exc}") from None
        try:
            page = browser.new_page()
            page.set_content("<!doctype html><html><body></body></html>")
            page.add_script_tag(content=mermaid_script())
            svg: str = page.evaluate(
                """async (text) => {
                    // SVG text labels (no HTML in foreignObject): the file renders as an
                    // image anywhere, e.g. in a README.
                    mermaid.initialize({ startOnLoad: false, securityLevel: "strict",
                                         theme: "neutral", flowchart: { htmlLabels: false } });
                    const { svg } = await mermaid.render("graph", text);
                    return svg;
                }""",
                text,
            )
        finally:
            browser.close()
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + svg + "\n"
