"""Render a :class:`tfgbench.paper.PaperTable` as Markdown, LaTeX, CSV or HTML."""

from __future__ import annotations

import csv
import html
import io

from tfgbench.paper import PaperTable, PCell, PCol, fmt_value

FORMATS = ("md", "latex", "csv", "html")


def cell_text(cell: PCell, col: PCol, bold: tuple[str, str] = ("**", "**"), note: tuple[str, str] = ("(", ")")) -> str:
    """A cell as text: value (± std) [CI], bold markers, or the note letter of an empty cell."""
    if cell.text is not None:
        return cell.text
    if cell.value is None:
        return f"–{note[0]}{cell.note}{note[1]}" if cell.note else "–"
    text = fmt_value(cell.value, col.measure)
    if cell.std is not None:
        text += f" ± {fmt_value(cell.std, col.measure)}"
    if cell.bold:
        text = f"{bold[0]}{text}{bold[1]}"
    if cell.ci is not None:
        lo, hi = fmt_value(cell.ci[0], col.measure), fmt_value(cell.ci[1], col.measure)
        if lo and hi:
            text += f" [{lo}, {hi}]"
    return text


def _datasets(table: PaperTable) -> list[str]:
    return list(dict.fromkeys(c.dataset for c in table.columns if c.dataset))


def _headers(table: PaperTable) -> list[str]:
    multi = len(_datasets(table)) > 1
    out = []
    for c in table.columns:
        text = c.header
        if c.measure is not None and c.protocol and c.protocol != "wer/*":
            text += f" ({c.protocol})"
        if multi and c.dataset:
            text = f"{c.dataset}: {text}"
        out.append(text)
    return out


def _footer(table: PaperTable) -> list[str]:
    lines = []
    if table.ci:
        from tfgbench.stats import ci_note

        lines.append(ci_note(resamples=table.resamples))
    if table.bold_rule:
        lines.append(table.bold_rule)
    letters = [chr(ord("a") + i) if len(table.notes) <= 26 else str(i + 1) for i in range(len(table.notes))]
    lines += [f"({letter}) {text.rstrip('.')}." for letter, text in zip(letters, table.notes)]
    if table.sources:
        lines.append("Sources: " + "; ".join(table.sources) + ".")
    return lines


def render_paper(table: PaperTable, fmt: str = "md") -> str:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    return {"md": _md, "latex": _latex, "csv": _csv, "html": _html}[fmt](table)


def _body(table: PaperTable, **kw) -> list[list[str]]:
    return [[label, *[cell_text(table.cells.get((i, j), PCell()), c, **kw) for j, c in enumerate(table.columns)]]
            for i, (label, _) in enumerate(table.rows)]


def _md(table: PaperTable) -> str:
    from tabulate import tabulate

    text = tabulate(_body(table), ["Method", *_headers(table)], tablefmt="github", disable_numparse=True)
    return f"**{table.title}**\n\n{text}\n\n" + "\n\n".join(_footer(table)) + "\n"


def _tex(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"),
                 ("±", r"$\pm$"), ("✓", r"\checkmark{}"), ("×", r"$\times$"), ("–", "--"), ("`", "")):
        text = text.replace(a, b)
    return text


def _latex(table: PaperTable) -> str:
    cols = table.columns
    lines = [r"\begin{table}", r"\centering", r"\begin{tabular}{l" + "c" * len(cols) + "}", r"\hline"]
    datasets = _datasets(table)
    if len(datasets) > 1:
        spans = [(d, sum(1 for c in cols if c.dataset == d)) for d in datasets]
        lines.append(" & " + " & ".join(rf"\multicolumn{{{n}}}{{c}}{{{_tex(d)}}}" for d, n in spans) + r" \\")
    lines.append("Method & " + " & ".join(_tex(c.header) for c in cols) + r" \\")
    protos = [rf"{{\scriptsize {_tex(c.protocol)}}}" if c.measure is not None and c.protocol != "wer/*" else ""
              for c in cols]
    if any(protos):
        lines.append(" & " + " & ".join(protos) + r" \\")
    lines.append(r"\hline")
    for row in _body(table, bold=("\x00B", "\x00E"), note=("\x00S", "\x00T")):
        cells = [_tex(x).replace("\x00B", r"\textbf{").replace("\x00E", "}").replace("\x00S", r"$^{\mathrm{")
                 .replace("\x00T", "}}$") for x in row]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}", rf"\caption{{{_tex(table.title)}. " + _tex(" ".join(_footer(table)))
              + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _csv(table: PaperTable) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["table", "row", "model", "dataset", "column", "protocol", "evaluator_sha256", "value", "std",
                "ci_low", "ci_high", "bold", "text", "note"])
    for i, (label, spec) in enumerate(table.rows):
        for j, c in enumerate(table.columns):
            cell = table.cells.get((i, j), PCell())
            ci = cell.ci or ("", "")
            note = table.notes[ord(cell.note) - ord("a")] if cell.note and cell.note.isalpha() else \
                table.notes[int(cell.note) - 1] if cell.note else ""
            w.writerow([table.name, label, spec, c.dataset or "", c.label, c.protocol or "", c.evaluator or "",
                        "" if cell.value is None else repr(cell.value), "" if cell.std is None else repr(cell.std),
                        *[repr(x) if x != "" else "" for x in ci], int(cell.bold), cell.text or "", note])
    return out.getvalue()


def _html(table: PaperTable) -> str:
    e = html.escape
    datasets = _datasets(table)
    head = []
    if len(datasets) > 1:
        lead = sum(1 for c in table.columns if not c.dataset)
        spans = "".join(f'<th colspan="{sum(1 for c in table.columns if c.dataset == d)}">{e(d)}</th>'
                        for d in datasets)
        head.append(f"<tr><th></th>{'<th></th>' * lead}{spans}</tr>")
    head.append("<tr><th>Method</th>" + "".join(
        f"<th>{e(c.header)}" + (f"<br><small>{e(c.protocol)}</small>" if c.measure is not None and c.protocol
                                 and c.protocol != "wer/*" else "") + "</th>" for c in table.columns) + "</tr>")
    body = []
    for row in _body(table, bold=("\x00B", "\x00E"), note=("\x00S", "\x00F")):
        cells = [e(x).replace("\x00B", "<b>").replace("\x00E", "</b>").replace("\x00S", "<sup>")
                 .replace("\x00F", "</sup>") for x in row]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    foot = "".join(f"<p>{e(x)}</p>" for x in _footer(table))
    return (f"<table>\n<caption>{e(table.title)}</caption>\n<thead>\n" + "\n".join(head) + "\n</thead>\n<tbody>\n"
            + "\n".join(body) + "\n</tbody>\n</table>\n" + foot + "\n")
