"""HTML of the static report: one self-contained page per file (inline CSS and JavaScript, no
network), tables whose headers sort on click, and provenance on every number."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#f3f3f3;cursor:pointer;user-select:none;white-space:nowrap}th small{font-weight:normal;color:#666}
td:first-child,th:first-child{text-align:left}th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}.ci{color:#777;font-size:.85em}.flag{color:#a60}
.note{color:#555;font-size:.9em}.media{display:flex;gap:1em;flex-wrap:wrap;align-items:flex-start}
figure{margin:0}figcaption{font-size:.85em;color:#555}code{background:#f6f6f6;padding:0 .2em}
img.strip{max-width:100%;border:1px solid #ddd}
"""

SORT_JS = """
function cellKey(td){const v=td.dataset.value;return v===undefined||v===''?null:(isNaN(+v)?v:+v);}
function sortTable(table,i,th){
  const better=th.dataset.better||'up';
  const cur=th.getAttribute('aria-sort');
  const first=better==='down'?'ascending':'descending';
  const dir=cur?(cur==='ascending'?'descending':'ascending'):first;
  table.querySelectorAll('th').forEach(h=>h.removeAttribute('aria-sort'));
  th.setAttribute('aria-sort',dir);
  const s=dir==='ascending'?1:-1;const body=table.tBodies[0];
  const rows=Array.from(body.rows);
  rows.sort((a,b)=>{const x=cellKey(a.cells[i]),y=cellKey(b.cells[i]);
    if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
    if(typeof x==='number'&&typeof y==='number')return s*(x-y);return s*String(x).localeCompare(String(y));});
  rows.forEach(r=>body.appendChild(r));
}
document.querySelectorAll('table.sortable').forEach(t=>{
  t.querySelectorAll('thead th').forEach((th,i)=>th.addEventListener('click',()=>sortTable(t,i,th)));});
"""


def esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def page(title: str, body: str, up: str | None = None) -> str:
    nav = f'<p><a href="{esc(up)}">&larr; leaderboard</a></p>' if up else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head>'
            f"<body>{nav}<h1>{esc(title)}</h1>\n{body}\n<script>{SORT_JS}</script></body></html>\n")


@dataclass
class HCell:
    """One number: the shown text, the sort key and where it comes from."""

    text: str
    value: float | None = None
    ci: str = ""
    provenance: str = ""
    flag: bool = False


@dataclass
class HColumn:
    header: str
    protocol: str = ""
    better: bool | None = None


@dataclass
class HTable:
    caption: str
    columns: list[HColumn]
    rows: list[tuple[str, str | None, list[HCell]]] = field(default_factory=list)  # label, link, cells
    table_id: str = ""


def render_table(t: HTable) -> str:
    head = "<th>Model</th>" + "".join(
        f'<th data-better="{"up" if c.better else "down" if c.better is False else "none"}">{esc(c.header)}'
        + (f"<br><small>{esc(c.protocol)}</small>" if c.protocol else "") + "</th>" for c in t.columns)
    body = []
    for label, link, cells in t.rows:
        name = f'<a href="{esc(link)}">{esc(label)}</a>' if link else esc(label)
        tds = [f'<td data-value="{esc(label)}">{name}</td>']
        for c in cells:
            value = "" if c.value is None or math.isnan(c.value) else repr(c.value)
            ci = f' <span class="ci">{esc(c.ci)}</span>' if c.ci else ""
            cls = ' class="flag"' if c.flag else ""
            tds.append(f'<td data-value="{value}" title="{esc(c.provenance)}"{cls}>{esc(c.text)}{ci}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    ident = f' id="{esc(t.table_id)}"' if t.table_id else ""
    return (f'<table class="sortable"{ident}><caption>{esc(t.caption)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def definition_list(items: Sequence[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def video(src: str, caption: str) -> str:
    """A clip as WebM (VP9/Opus, plays in every Chromium/Firefox build) with the H.264 mp4 ``src`` as
    the second source (Safari, and players that lack VP9)."""
    webm = src.rsplit(".", 1)[0] + ".webm"
    return (f'<figure><video controls muted loop playsinline preload="auto" width="256">'
            f'<source src="{esc(webm)}" type="video/webm"><source src="{esc(src)}" type="video/mp4"></video>'
            f"<figcaption>{esc(caption)}</figcaption></figure>")
