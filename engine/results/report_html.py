"""The HTML pieces of `nasapp report`'s page: one self-contained document (CSS inline, charts as inline SVG, no
script, nothing fetched: its Content-Security-Policy forbids any load, so the page opens offline and cannot call
out). Every text passed in is escaped here; callers pass plain strings, never markup (except charts' SVG).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from nasapp.engine.results.svg_charts import SvgChart

# No network, no script, no frame: styles inline, images only as inline SVG (or data: URLs).
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
SVG_NAMESPACE = ' xmlns="http://www.w3.org/2000/svg"'  # implied for SVG inside HTML

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 0 auto; max-width: 1000px; padding: 16px 24px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.muted { color: #666; } .note { background: #f6f6f6; border-left: 3px solid #bbb; padding: 6px 10px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.arch { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
figure.chart { margin: 8px 0 16px; } figure.chart svg { max-width: 100%; height: auto; border: 1px solid #eee; }
dl.record { display: grid; grid-template-columns: 20em 1fr; gap: 2px 16px; margin: 4px 0 12px; }
dl.record dt { color: #555; } dl.record dd { margin: 0; font-family: ui-monospace, monospace; font-size: 12px;
  word-break: break-all; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }
"""


def page(title: str, subtitle: str, sections: Iterable[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>"
            f"<h1>{escape(title)}</h1><p class=\"muted\">{escape(subtitle)}</p>\n"
            + "\n".join(sections) + "\n</body></html>\n")


def section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{escape(anchor)}"><h2>{escape(title)}</h2>{"".join(parts)}</section>'


def heading(text: str) -> str:
    return f"<h3>{escape(text)}</h3>"


def paragraph(text: str, note: bool = False) -> str:
    return f'<p class="note">{escape(text)}</p>' if note else f"<p>{escape(text)}</p>"


def chart(svg: SvgChart, name: str) -> str:
    """The chart inline; ``name`` goes into data-chart for tests and scripts."""
    return f'<figure class="chart" data-chart="{escape(name)}">{svg.svg.replace(SVG_NAMESPACE, "", 1)}</figure>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], kinds: Sequence[str] = ()) -> str:
    """A table of plain-text cells; ``kinds`` gives a class per column ("num", "arch" or "")."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            kind = kinds[i] if i < len(kinds) else ""
            cells.append(f'<td class="{kind}">{escape(cell)}</td>' if kind else f"<td>{escape(cell)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def record_list(values: dict[str, str]) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in values.items())
    return f'<dl class="record">{items}</dl>'


def details(summary: str, text: str) -> str:
    """``text`` as preformatted text, folded under ``summary``."""
    return folded(summary, f"<pre>{escape(text)}</pre>")


def folded(summary: str, markup: str) -> str:
    """``markup`` (made by this module) folded under ``summary``."""
    return f"<details><summary>{escape(summary)}</summary>{markup}</details>"
