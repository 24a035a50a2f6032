"""Rendering a report document to one self-contained HTML file or Markdown plus PNGs.

A document is a title and a list of :class:`Section`; each section holds
blocks: a paragraph (``str``), a table (``pandas.DataFrame``) or a
:class:`Figure`. The renderers know nothing of runs or metrics.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fedunlearn.io import atomic_write_bytes, atomic_write_text
from fedunlearn.study.summary import to_markdown


@dataclass(frozen=True)
class Figure:
    name: str
    png: bytes
    caption: str


Block = str | pd.DataFrame | Figure


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    blocks: tuple[Block, ...]


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #c0392b;padding-bottom:.3em}h2{font-size:1.25em;margin-top:2em}
nav a{margin-right:1em}table{border-collapse:collapse;font-size:.85em;margin:1em 0;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
.meta{color:#666;font-size:.9em}
"""


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_block(block: Block) -> str:
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        cap = html.escape(block.caption)
        return f'<figure><img src="data:image/png;base64,{data}" alt="{cap}"><figcaption>{cap}</figcaption></figure>'
    if isinstance(block, pd.DataFrame):
        return _html_table(block)
    return f"<p>{html.escape(block)}</p>"


def render_html(title: str, meta: str, sections: list[Section]) -> str:
    """One HTML file: CSS inline, figures as base64 PNG, no external asset."""
    nav = " ".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    parts = [
        f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>'
        + "".join(_html_block(b) for b in s.blocks)
        + "</section>"
        for s in sections
    ]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p class="meta">{html.escape(meta)}</p><nav>{nav}</nav>'
        + "".join(parts)
        + "</body></html>\n"
    )


def write_html(out: Path, title: str, meta: str, sections: list[Section]) -> Path:
    atomic_write_text(out, render_html(title, meta, sections))
    return out


def write_markdown(out: Path, title: str, meta: str, sections: list[Section]) -> Path:
    """``out`` (Markdown) and its figures beside it as ``<stem>-<figure>.png``."""
    lines = [f"# {title}", "", f"_{meta}_", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, Figure):
                png = out.with_name(f"{out.stem}-{b.name}.png")
                atomic_write_bytes(png, b.png)
                lines += [f"![{b.caption}]({png.name})", "", f"_{b.caption}_", ""]
            elif isinstance(b, pd.DataFrame):
                lines += [to_markdown(b), ""]
            else:
                lines += [b, ""]
    atomic_write_text(out, "\n".join(lines))
    return out
