"""Render the report's parts as HTML (one self-contained page that opens from disk) and as Markdown.

A part is a titled list of blocks (paragraph, table, images, preformatted text, cards, missing); both
renderers walk the same blocks, so the two files always say the same thing. Every text goes through
``html.escape`` (HTML) or a cell escape (Markdown).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote


@dataclass
class Part:
    """One section of one teacher (or of the whole report): ``status`` is ok or missing."""

    key: str
    title: str
    blocks: list[tuple] = field(default_factory=list)
    status: str = "ok"

    def missing(self, text: str) -> Part:
        self.status = "missing"
        self.blocks.append(("missing", text))
        return self


# ---- HTML ---------------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;
color:#222;line-height:1.4}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.5em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:1em}.card{border:1px solid #ccc;
border-radius:6px;padding:.6em 1em;background:#fafafa}.card h4{margin:.1em 0 .4em}
.card table{font-size:.85em;width:100%;table-layout:fixed}.card th{width:55%;overflow-wrap:anywhere}
.card td{overflow-wrap:anywhere}
.missing{color:#8a4b00;background:#fff4e0;border-left:4px solid #e0a040;padding:.4em .8em}
.imgs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}figure{margin:0}figcaption{font-size:.85em;color:#555}
img{max-width:100%;border:1px solid #eee}pre{background:#f6f6f6;padding:.6em;font-size:.85em;white-space:pre-wrap;
overflow-wrap:anywhere}
nav a{margin-right:1em}.note{color:#555;font-size:.85em}
"""

# Marks every image with data-ok="1" (loaded, non-empty) or "0" once the page has loaded: a browser test
# reads the marks back from the DOM. Harmless to a reader.
_IMG_CHECK = """window.addEventListener('load', function () {
  var imgs = document.images, bad = 0;
  for (var i = 0; i < imgs.length; i++) {
    var ok = imgs[i].complete && imgs[i].naturalWidth > 0;
    imgs[i].setAttribute('data-ok', ok ? '1' : '0');
    if (!ok) bad++;
  }
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-broken-images', bad);
});"""


def e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _src(path: str) -> str:
    return e(quote(path))


def _html_block(b: tuple) -> str:
    kind = b[0]
    if kind == "p":
        return f"<p>{e(b[1])}</p>"
    if kind == "note":
        return f'<p class="note">{e(b[1])}</p>'
    if kind == "missing":
        return f'<p class="missing">{e(b[1])}</p>'
    if kind == "pre":
        return f"<pre>{e(b[1])}</pre>"
    if kind == "h":
        return f"<h3>{e(b[1])}</h3>"
    if kind == "table":
        head, rows = b[1], b[2]
        out = ["<table><thead><tr>", *[f"<th>{e(h)}</th>" for h in head], "</tr></thead><tbody>"]
        for row in rows:
            out.append("<tr>" + "".join(_cell(v) for v in row) + "</tr>")
        out.append("</tbody></table>")
        return "".join(out)
    if kind == "imgs":
        figs = [f'<figure><img src="{_src(p)}" alt="{e(cap)}" loading="eager"><figcaption>{e(cap)}</figcaption></figure>'
                for p, cap in b[1]]
        return '<div class="imgs">' + "".join(figs) + "</div>"
    if kind == "cards":
        out = ['<div class="cards">']
        for card in b[1]:
            out.append(f'<div class="card" data-model="{e(card["name"])}"><h4>{e(card["title"])}</h4><table>')
            out.extend(f"<tr><th>{e(k)}</th>{_cell(v)}</tr>" for k, v in card["rows"])
            out.append("</table>")
            out.extend(f'<p class="note">{e(n)}</p>' for n in card.get("notes", []))
            out.append("</div>")
        out.append("</div>")
        return "".join(out)
    raise ValueError(f"unknown block kind {kind!r}")


def _cell(v: Any) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f'<td class="num">{e(fmt(v))}</td>'
    return f"<td>{e(v)}</td>"


def fmt(v: Any) -> str:
    """Numbers for people: integers with thousands separators, floats to 4 significant digits."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


def html_page(title: str, intro: list[tuple], teachers: list[tuple[str, str, list[Part]]], tail: list[Part]) -> str:
    """The whole page: ``teachers`` is [(label, slug, parts)], ``tail`` the report-wide parts."""
    nav = "".join(f'<a href="#t-{e(slug)}">{e(label)}</a>' for label, slug, _ in teachers)
    nav += "".join(f'<a href="#{e(p.key)}">{e(p.title)}</a>' for p in tail)
    body = [f"<h1>{e(title)}</h1>", *[_html_block(b) for b in intro], f"<nav>{nav}</nav>"]
    for label, slug, parts in teachers:
        body.append(f'<section class="teacher" id="t-{e(slug)}" data-teacher="{e(label)}"><h2>{e(label)}</h2>')
        for p in parts:
            body.append(f'<section class="part" id="{e(slug)}-{e(p.key)}" data-part="{e(p.key)}" '
                        f'data-status="{e(p.status)}"><h3>{e(p.title)}</h3>')
            body.extend(_html_block(b) for b in p.blocks)
            body.append("</section>")
        body.append("</section>")
    for p in tail:
        body.append(f'<section class="part" id="{e(p.key)}" data-part="{e(p.key)}" data-status="{e(p.status)}">'
                    f"<h2>{e(p.title)}</h2>")
        body.extend(_html_block(b) for b in p.blocks)
        body.append("</section>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{e(title)}</title><style>{_CSS}</style><script>{_IMG_CHECK}</script></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


# ---- Markdown -----------------------------------------------------------------------------------------
def _md_cell(v: Any) -> str:
    text = fmt(v) if not isinstance(v, str) else v
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|")


def _md_block(b: tuple) -> str:
    kind = b[0]
    if kind in ("p", "note"):
        return str(b[1])
    if kind == "missing":
        return f"> **{b[1]}**"
    if kind == "pre":
        return "```\n" + str(b[1]).replace("```", "'''") + "\n```"
    if kind == "h":
        return f"#### {b[1]}"
    if kind == "table":
        head, rows = b[1], b[2]
        lines = ["| " + " | ".join(_md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
        return "\n".join(lines)
    if kind == "imgs":
        return "\n\n".join(f"![{_md_cell(cap)}]({quote(p)})" for p, cap in b[1])
    if kind == "cards":
        keys: list[str] = []
        for card in b[1]:
            keys += [k for k, _ in card["rows"] if k not in keys]
        lines = ["| model | " + " | ".join(_md_cell(k) for k in keys) + " |", "|" + "---|" * (len(keys) + 1)]
        for card in b[1]:
            d = dict(card["rows"])
            lines.append(f"| {_md_cell(card['title'])} | " + " | ".join(_md_cell(d.get(k, "")) for k in keys) + " |")
        notes = [f"- {card['title']}: {n}" for card in b[1] for n in card.get("notes", [])]
        return "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "")
    raise ValueError(f"unknown block kind {kind!r}")


def markdown_page(title: str, intro: list[tuple], teachers: list[tuple[str, str, list[Part]]], tail: list[Part]) -> str:
    out = [f"# {title}", *[_md_block(b) for b in intro]]
    for label, _, parts in teachers:
        out.append(f"## {label}")
        for p in parts:
            out.append(f"### {p.title}")
            out.extend(_md_block(b) for b in p.blocks)
    for p in tail:
        out.append(f"## {p.title}")
        out.extend(_md_block(b) for b in p.blocks)
    return "\n\n".join(out) + "\n"
