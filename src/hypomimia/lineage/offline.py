"""Report pages that open anywhere: no script, stylesheet or font fetched from the network.

Great Expectations' Data Docs load Bootstrap, bootstrap-table, jQuery, Font Awesome and Vega from
CDNs; without a network the index shows an unstyled page whose list of validation results is empty,
because that list is drawn by bootstrap-table's JavaScript from data embedded in the page.
:func:`make_offline` rewrites such pages in place: it removes every external script and stylesheet,
inlines a small stylesheet shipped with the package (``resources/offline_report.css``), renders the
bootstrap-table lists as plain HTML tables on the server side, drops the inline scripts that could
only run with those libraries, and shows every tab's content one after the other. Local links and
images (``static/``) are kept. :func:`external_refs` is what the tests (and anyone) use to check a page.
"""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

CSS = Path(__file__).resolve().parents[1] / "resources" / "offline_report.css"

# <script src="http..."> ... </script>, <link ... href="http..."> (also protocol-relative //host)
_EXTERNAL = r"""(?:https?:)?//[^"'\s>]+"""
_SCRIPT_SRC = re.compile(rf"""<script\b[^>]*\bsrc\s*=\s*["']{_EXTERNAL}["'][^>]*>\s*</script>""", re.I | re.S)
_LINK_HREF = re.compile(rf"""<link\b[^>]*\bhref\s*=\s*["']{_EXTERNAL}["'][^>]*/?>""", re.I | re.S)
_CSS_IMPORT = re.compile(rf"""@import\s+(?:url\()?\s*["']?{_EXTERNAL}["']?\)?;?""", re.I)
_CSS_URL = re.compile(rf"""url\(\s*["']?{_EXTERNAL}["']?\s*\)""", re.I)  # images, fonts in stylesheets
_IMG_SRC = re.compile(rf"""(<img\b[^>]*\bsrc\s*=\s*)["']{_EXTERNAL}["']""", re.I)
_INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.I | re.S)
_TABLE_CALL = re.compile(
    r"""\$\(\s*'#(?P<id>[\w-]+)'\s*\)\.bootstrapTable\(.*?columns:\s*(?P<columns>\[.*?\]),\s*data:\s*(?P<data>\[.*?\]),\s*toolbar:""",
    re.S,
)
_NEEDS_LIBS = ("bootstrapTable", "vegaEmbed", "$(", "jQuery")


def external_refs(page: str) -> list[str]:
    """Every script, stylesheet, CSS import, CSS url() or image a page (or a .css file) would fetch
    from another host."""
    found = []
    for rx in (_SCRIPT_SRC, _LINK_HREF, _CSS_IMPORT, _CSS_URL, _IMG_SRC):
        found += [m.group(0)[:160] for m in rx.finditer(page)]
    return found


def _cell(row: dict, field: str) -> str:
    value = row.get(field, "")
    text = value if isinstance(value, str) else html.escape(str(value))
    if field == "run_time" and row.get("_table_row_link_path"):  # the row's click target, as a link
        return f'<a href="{html.escape(row["_table_row_link_path"])}">{text}</a>'
    return text


def _static_table(columns: list[dict], rows: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(str(c.get('title', c['field'])))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(r, c['field'])}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>"


def _render_tables(page: str) -> str:
    """Fill each bootstrap-table ``<table id=...>`` with the rows its script would have drawn."""
    for m in _TABLE_CALL.finditer(page):
        try:
            columns, rows = ast.literal_eval(m.group("columns")), ast.literal_eval(m.group("data"))
        except (ValueError, SyntaxError):
            continue  # not a literal we can read: leave the table as it was
        rows = sorted(rows, key=lambda r: r.get("_run_time_sort", 0), reverse=True)
        table = re.compile(rf"""(<table\b[^>]*\bid="{re.escape(m.group("id"))}"[^>]*>)\s*</table>""", re.S)
        page = table.sub(
            lambda t, c=columns, r=rows: t.group(1) + _static_table(c, r) + "</table>", page, count=1
        )
    return page


def offline_page(page: str, css: str | None = None) -> str:
    """One page, rewritten to render completely without a network."""
    css = CSS.read_text(encoding="utf-8") if css is None else css
    page = _render_tables(page)
    page = _SCRIPT_SRC.sub("", page)
    page = _LINK_HREF.sub("", page)
    page = _CSS_IMPORT.sub("/* external import removed for offline viewing */", page)
    page = _CSS_URL.sub("none", page)
    page = _IMG_SRC.sub(r'\1""', page)
    page = _INLINE_SCRIPT.sub(lambda m: "" if any(s in m.group(1) for s in _NEEDS_LIBS) else m.group(0), page)
    style = f'<style id="hypomimia-offline">\n{css}\n</style>'
    if re.search(r"</head>", page, re.I):
        return re.sub(r"</head>", lambda _: style + "\n</head>", page, count=1, flags=re.I)
    return style + page


def offline_css(text: str) -> str:
    return _CSS_URL.sub("none", _CSS_IMPORT.sub("/* external import removed for offline viewing */", text))


def make_offline(root: Path) -> list[Path]:
    """Rewrite every ``*.html`` and ``*.css`` under ``root`` (a file or a folder) in place; return them."""
    root = Path(root)
    files = [root] if root.is_file() else sorted([*root.rglob("*.html"), *root.rglob("*.css")])
    css = CSS.read_text(encoding="utf-8")
    for p in files:
        text = p.read_text(encoding="utf-8")
        p.write_text(offline_css(text) if p.suffix == ".css" else offline_page(text, css), encoding="utf-8")
    return files
