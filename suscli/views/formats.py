"""Views of a list of result rows: a Rich table, JSON, CSV and Markdown (JUnit and HTML in their own modules).
Nothing here computes a number."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from suscli.defaults import Format
from suscli.errors import plural
from suscli.files import REPORT_ERRORS, visible
from suscli.judge.gate import outcome
from suscli.judge import verdict
from suscli.results import FLAT_COLUMNS, Result, nulled
from suscli.views.columns import NUMERIC_COLUMNS, display_columns
from suscli.views.frames import flat_frame
from suscli.views.widths import NAMES, fit, wrap

if TYPE_CHECKING:
    from suscli.judge.rules import LabelCheck
    from suscli.run.report import Report

PLAIN_WIDTH = 200  # a file or a pipe gets full-width rows rather than columns folded to 80 characters


# Per image, in a row's details: its top classes on the unlabeled and training images and whether it predicts each
# training label. The results file keeps them for every later decision; a report carries them only when asked.
PER_IMAGE = ("predictions", "train_predictions", "train_hits", "val_hits", "val_predictions")


def to_json(rows: list[Result], run: dict[str, Any], per_image: bool = False) -> str:
    """One JSON document: the run (command, settings, environment, summary) and every row, its per-image
    predictions only with `per_image` (about 30 KB a model at 1,000 images, 0.9 MB at 50,000)."""
    results = [r.as_dict() for r in rows]
    if not per_image:
        for row in results:
            row["details"] = {k: v for k, v in row["details"].items() if k not in PER_IMAGE}
    return _layout(nulled({**run, "results": results})) + "\n"


def _layout(value: Any, depth: int = 0) -> str:
    """json.dumps(value, indent=2), but a list of plain values on one line: one value a line made a 100-class noise
    matrix 20,000 lines (two thirds of its report) and each model's 1,000 class names 1,000 lines."""
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict) and value:
        items = (f"{inner}{json.dumps(k if isinstance(k, str) else json.dumps(k))}: {_layout(v, depth + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) and v for v in value):
        return "[\n" + ",\n".join(f"{inner}{_layout(v, depth + 1)}" for v in value) + f"\n{pad}]"
    return json.dumps(value, allow_nan=False)


def to_csv(rows: list[Result]) -> str:
    """One line per row; a whole-number column (region, epoch, train_n) stays whole where a failed row leaves it empty."""
    return csv_text(flat_frame([r.flat() for r in rows], FLAT_COLUMNS))


def csv_text(frame: pd.DataFrame) -> str:
    """`frame` as CSV with '\n' line ends. Python's csv module quotes a field holding a '\n' but not one holding a
    '\r' (only the line end's characters), which a reader takes for a line end: where a text cell holds a '\r' (a
    model name or file name can), every field is quoted."""
    texts = frame.select_dtypes(include=["object", "string"])
    carriage = any(isinstance(v, str) and "\r" in v for column in texts for v in texts[column])
    buf = io.StringIO()
    frame.to_csv(buf, index=False, lineterminator="\n", quoting=csv.QUOTE_ALL if carriage else csv.QUOTE_MINIMAL)
    return buf.getvalue()


def suspects_csv(check: LabelCheck, paths: list[str], names: Sequence[str] = ()) -> str:
    """The training images whose label the consensus contradicts, surest first (LabelCheck.suspects): path, given
    label (its id and class name), the consensus class (id and name), its share of the voters' probability and the
    given label's. `names[i]` is class i's name; '' where unknown."""
    order = check.suspects()
    named = list(names) if len(names) == check.num_classes else [""] * check.num_classes
    frame = pd.DataFrame(
        {
            "path": [paths[i] for i in order],
            "given_label": check.labels[order],
            "given_class": [named[c] for c in check.labels[order]],
            "consensus_label": check.consensus[order],
            "consensus_class": [named[c] for c in check.consensus[order]],
            "vote_share": np.round(check.share[order], 4),
            "label_share": np.round(check.label_share[order], 4),
        }
    )
    return csv_text(frame)


# What Markdown (GitHub's, in a step summary or a comment) would read as markup in a model name or a note: a cell's
# end (|), a backslash escaping the next character, HTML (<, &), code, emphasis and links; an underscore only where it
# can start or end emphasis (GitHub leaves epoch_12 alone), a ] only where a link's target follows (an interval's
# [30.6, 86.3] stays as it is). Each is written with a backslash, which shows it as text.
MARKDOWN_SPECIAL = re.compile(r"[\\`*<>&|~]|\](?=[(\[])|(?<![^\W_])_|_(?![^\W_])")
LINE_BREAK = re.compile(r"\r\n|[\r\n]")


def markdown_text(text: str) -> str:
    """`text` as one line of Markdown that shows it as it is: its specials escaped, line breaks as spaces (a break
    would end a table's row)."""
    return LINE_BREAK.sub(" ", MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(), text))


def to_markdown(rows: list[Result], title: str | None = None) -> str:
    head, body = _markdown_table(rows, title)
    return "\n".join([*head, *body]) + "\n"


def _markdown_table(rows: list[Result], title: str | None) -> tuple[list[str], list[str]]:
    """The title and header lines, and one line per row."""
    cols = display_columns(rows)
    head = [f"### {title}", ""] if title else []
    head.append("| " + " | ".join(name for name, _ in cols) + " |")
    head.append("|" + "|".join("---" for _ in cols) + "|")
    return head, ["| " + " | ".join(markdown_text(values[i]) for _, values in cols) + " |" for i in range(len(rows))]


def gate_lines(report: Report) -> list[str]:
    """How the run ends, in words: the models (track: epochs) that could not be scored, then the gates that failed or
    passed without being able to flag any model (the commands print them last on stderr, and the Markdown report ends with them: a CI job that failed on a gate
    points the reader there). Both: exit 3 wins over 1, but a flagged model is still flagged, as the JUnit and HTML
    reports say."""
    unit = "epoch" if report.command == "track" else "model"
    reasons = {r.error for r in report.skipped}
    rows = plural(len(report.skipped), "its row", "their rows")
    why = f", all alike: {reasons.pop()}" if len(report.skipped) > 1 and len(reasons) == 1 else f" (see {rows})"
    skipped = [f"error: {len(report.skipped)} {plural(len(report.skipped), unit)} could not be scored{why}"] if report.skipped else []
    blind = (report.run.get("gate") or {}).get("flags_none")  # a gate that passed where it could flag no model
    return [*skipped, *(f"gate failed: {failure}" for failure in report.failures), *([blind] if blind else [])]


def markdown_report(report: Report, limit: int | None = None) -> str:
    """-f markdown and the step summary: the table, then the closing lines (rank: the choice, the label noise; track:
    the epoch to keep) and how the run ended, each a paragraph of text, not markup (a line names models). The table
    alone, pasted into a pull request, left out the decision it was run for.

    With `limit` (bytes of UTF-8; GitHub drops a step summary over 1 MiB whole), a report that would not fit keeps its
    closing lines and as many rows as fit, those the reader must see first (_rows_first), in the report's
    order, under a line that says how many and where every row is."""
    head, body = _markdown_table(report.rows, report.title)
    lines = [markdown_text(line) for line in [*report.lines, *gate_lines(report)]]
    text = "\n".join([*head, *body]) + "\n" + "".join(f"\n{line}\n" for line in lines)
    if limit is None or len(text.encode("utf-8", REPORT_ERRORS)) <= limit:
        return text
    share = limit // 2 // max(1, len(lines))  # a line naming tens of thousands of models ends in "…"; the rows get half
    ends = "".join(f"\n{_cut(line, share)}\n" for line in lines)

    def size(line: str) -> int:
        return len(line.encode("utf-8", REPORT_ERRORS)) + 1

    note = (
        "{:,} of the " + f"{len(body):,} rows shown, as many as fit the size this report may take: the models that "
        "could not be scored, failed a gate or are the choice first, then the report's order; every row is in the full "
        "report (--output FILE, --html FILE, -f json)"
    )
    left = limit - sum(map(size, head)) - size(ends) - size(note) - 16  # 16: the count in the note, and its paragraph
    kept = set()
    for i in _rows_first(report):
        if size(body[i]) > left:
            break
        kept.add(i)
        left -= size(body[i])
    return "\n".join([*head, *(body[i] for i in sorted(kept))]) + "\n\n" + note.format(len(kept)) + "\n" + ends


def _rows_first(report: Report) -> list[int]:
    """The rows' indices, those a shortened report must keep first: the models that could not be scored or failed a
    gate, and the one to ship or keep; then the others, each in the report's order."""
    pick = report.choice.pick if report.choice else report.keep
    first = [
        i
        for i, r in enumerate(report.rows)
        if r is pick or r.keep or r.verdict == verdict.MEMORIZED or outcome(r, report.run).status != "passed"
    ]
    chosen = set(first)
    return first + [i for i in range(len(report.rows)) if i not in chosen]


def _cut(text: str, size: int) -> str:
    """`text` in at most `size` bytes of UTF-8, ending in "…" where it was cut (never inside an escape)."""
    data = text.encode("utf-8", REPORT_ERRORS)
    if len(data) <= size:
        return text
    return data[: max(0, size - 3)].decode("utf-8", "ignore").rstrip("\\") + "…"


def to_table(rows: list[Result], title: str | None = None, width: int = PLAIN_WIDTH, leave_out: bool = False) -> Table:
    """The rows as a Rich table `width` cells wide, no header, verdict or name cut inside a word. With `leave_out` (a
    terminal) the columns that matter least are left out where the others would not fit whole, and a line under the
    table names them and where to see them; a file or a pipe keeps every column."""
    columns = [(name, [visible(v) for v in values]) for name, values in display_columns(rows)]
    widths, left = fit(columns, width, leave_out)
    shown = [(name, values) for name, values in columns if name not in left]
    them = "it" if len(left) == 1 else "them"
    caption = f"left out to fit {width} columns: {', '.join(left)}; a wider terminal shows {them}, as do --output FILE, -f csv and -f json"
    table = Table(title=title, caption=caption if left else None, caption_justify="left", show_lines=False)
    for (name, _), size in zip(shown, widths):
        table.add_column(name, width=size, overflow="fold", justify="right" if name in NUMERIC_COLUMNS else "left")
    for i, r in enumerate(rows):
        style = (
            "red"
            if not r.ok or r.verdict == verdict.MEMORIZED
            else ("green" if r.verdict in (verdict.RESISTS, verdict.FITS_CLEAN) else None)
        )
        cells = (Text(wrap(values[i], size) if name in NAMES else values[i]) for (name, values), size in zip(shown, widths))
        table.add_row(*cells, style=style)  # text, not Rich markup: a name may hold [best]
    return table


def render(report: Report, fmt: Format, per_image: bool = False) -> str:
    """The report in `fmt` as text: what stdout shows when it is not a terminal, and what --output holds.

    One function for both, so that a saved report is never different from a printed one."""
    rows, run, title = report.rows, report.run, report.title
    if fmt == Format.json:
        return to_json(rows, run, per_image)
    if fmt == Format.csv:
        return to_csv(rows)
    if fmt == Format.markdown:
        return markdown_report(report)
    if fmt == Format.table:
        return plain_text(to_table(rows, title))
    if fmt == Format.junit:
        from suscli.views.junit import to_junit

        return to_junit(rows, run, title)
    if fmt == Format.html:  # imported here: jinja2 and matplotlib load only for this format
        from suscli.views.html import to_html

        return to_html(rows, run, title)
    raise ValueError(f"unknown format {fmt!r}")


def plain_text(table: Table) -> str:
    """A Rich table drawn without colour at PLAIN_WIDTH, as a string."""
    buffer = io.StringIO()
    Console(file=buffer, width=PLAIN_WIDTH, force_terminal=False, color_system=None).print(table)
    return buffer.getvalue()
