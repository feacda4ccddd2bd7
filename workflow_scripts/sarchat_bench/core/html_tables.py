"""Tables as small self-contained HTML pages, for the Snakemake report: it shows an HTML result
inside the page, where a .md or .csv result is only a download. A click on a column heading
sorts by that column (numbers as numbers; missing values last)."""

from __future__ import annotations

import html
import math
import os

from sarchat_bench.core.io import atomic_output

STYLE = """body{font-family:system-ui,sans-serif;margin:1em;color:#222}
h1{font-size:1.15em}p.note{max-width:70em;font-size:.9em;color:#444}
table{border-collapse:collapse;font-size:.85em}th,td{border:1px solid #ccc;padding:.25em .5em}
th{background:#eef;cursor:pointer;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafafa}"""

SORT_SCRIPT = """document.querySelectorAll("table.sortable th").forEach((th, col) =>
 th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], rows = Array.from(body.rows);
  const down = th.dataset.order !== "asc"; th.dataset.order = down ? "asc" : "desc";
  const key = r => { const t = r.cells[col].textContent.trim(), n = parseFloat(t);
    return t === "" || t === "\\u2013" ? null : (isNaN(n) ? t : n); };
  rows.sort((a, b) => { const x = key(a), y = key(b);
    if (x === null) return 1; if (y === null) return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * (down ? 1 : -1); });
  rows.forEach(r => body.appendChild(r)); }));"""


def _cell(value, number_format: str = ".2f") -> tuple[str, bool]:
    """The cell's text and whether it is a number (numpy's numbers are floats and ints too)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2013", True
    if isinstance(value, float):
        return format(value, number_format), True
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value), True
    return html.escape(str(value)), False


def table_html(table, title: str, note: str = "", formats: dict | None = None) -> str:
    """A standalone page with `table` (a pandas DataFrame or a list of row dicts) as a sortable
    table, numbers with two decimals unless `formats` gives a column another format spec.
    Duck-typed, so that the dataset statistics do not import pandas for it."""
    formats = formats or {}
    if hasattr(table, "to_dict"):
        columns, records = list(table.columns), table.to_dict("records")
    else:
        columns, records = list(table[0]) if table else [], table
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    rows = []
    for record in records:
        cells = (_cell(record.get(c), formats.get(c, ".2f")) for c in columns)
        rows.append("<tr>" + "".join(f'<td class="num">{t}</td>' if num else f"<td>{t}</td>" for t, num in cells)
                    + "</tr>")
    note_html = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{note_html}"
            f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f"<script>{SORT_SCRIPT}</script></body></html>\n")


def write_table_html(path: str | os.PathLike, table, title: str, note: str = "", formats: dict | None = None) -> None:
    with atomic_output(path, "w") as out:
        out.write(table_html(table, title, note, formats))
