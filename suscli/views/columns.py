"""The human-facing columns of a report, shared by the Rich table, Markdown and the HTML page."""

from __future__ import annotations

import math
from typing import Any

from suscli.results import Result


NUMERIC_COLUMNS = ("epoch", "train acc", "held-out acc", "gap", "susceptibility", "zeta", "agreement", "fits contradicted", "region")


def finite(value: Any) -> Any:
    """None for a number that is not finite: a standard error over one batch is nan, and every view shows it as
    none rather than as 'nan' (the JSON report writes null)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _fmt(value: Any, digits: int = 4) -> str:
    value = finite(value)
    if value is None:
        return "-"
    if isinstance(value, float):  # a step far too large reads -1.9e19: in fixed point, 20 digits of width
        return f"{value:.{digits}f}" if abs(value) < 1e6 else f"{value:.{digits}g}"
    return str(value)


def _pct(value: float | None) -> str:
    value = finite(value)
    return "-" if value is None else f"{100 * value:.1f}%"


def display_columns(rows: list[Result]) -> list[tuple[str, list[str]]]:
    """The human-facing columns, shared by the Rich table and Markdown."""
    ranked = any(r.region is not None for r in rows)
    tracked = any(r.zeta is not None for r in rows)
    cols: list[tuple[str, list[str]]] = [("model", [r.name for r in rows])]
    if tracked:
        cols.append(("epoch", [_fmt(r.epoch) for r in rows]))
    cols.append(("arch", [_fmt(r.arch) for r in rows]))
    cols.append(("train acc", [_pct(r.train_acc) + _interval(r) for r in rows]))
    if any(r.val_acc is not None for r in rows):  # --val-data
        cols.append(("held-out acc", [_pct(r.val_acc) + _val_interval(r) for r in rows]))
        cols.append(("gap", ["-" if r.gap is None else f"{100 * r.gap:+.1f} pts" + gap_interval(r) for r in rows]))
    cols.append(
        (
            "susceptibility",
            [_fmt(r.susceptibility) + ("" if finite(r.susceptibility_sem) is None else f" ± {_fmt(r.susceptibility_sem)}") for r in rows],
        )
    )
    if tracked:
        cols.append(("zeta", [_fmt(r.zeta) for r in rows]))
    if any(r.agreement is not None for r in rows):
        cols.append(("agreement", [_pct(r.agreement) for r in rows]))
    if any(r.fits_contradicted is not None for r in rows):
        cols.append(("fits contradicted", [_pct(r.fits_contradicted) for r in rows]))
    if ranked:
        cols.append(("region", [_fmt(r.region) for r in rows]))
    if any(r.keep or r.held_out_best for r in rows):  # track: the --keep rule's epoch, and with --val-data held-out accuracy's
        cols.append(("keep", [keep_marker(r) for r in rows]))
    cols.append(("verdict", [r.verdict or ("error" if not r.ok else "-") for r in rows]))
    notes = _notes(rows)
    if any(notes):
        cols.append(("notes", notes))
    return cols


def _notes(rows: list[Result]) -> list[str]:
    """Each row's error, else its notes. An error an earlier row has (a held-out set none of a pool's models has
    the classes of) is said in full once and named briefly after, not repeated down the table."""
    first: dict[str, str] = {}
    notes = []
    for r in rows:
        if r.error and r.error in first:
            notes.append(f"the same error as {first[r.error]}")
        else:
            notes.append(r.error or "; ".join(r.notes))
            first.setdefault(r.error or "", r.name)
    return notes


def keep_marker(r: Result) -> str:
    """suscli track's mark on an epoch: "keep" where the --keep rule keeps it, "best held-out" where held-out
    accuracy would (--val-data: early stopping), both where the two agree."""
    return ", ".join(word for word, marked in (("keep", r.keep), ("best held-out", r.held_out_best)) if marked)


def _interval(r: Result) -> str:
    if r.train_acc is None or r.train_acc_low is None or r.train_acc_high is None or r.train_acc_low == r.train_acc_high:
        return ""
    n = f" n={r.train_n:,}" if r.train_n else ""
    return f" [{100 * r.train_acc_low:.1f}, {100 * r.train_acc_high:.1f}]{n}"


def gap_interval(r: Result) -> str:
    """The gap's 95% interval: a gap is read against it (a model that fits its training labels no better than labels
    it never saw has an interval that holds 0). The table's, Markdown's and JUnit's, as JSON, CSV and HTML give it."""
    if r.gap_low is None or r.gap_high is None:
        return ""
    return f" [{100 * r.gap_low:+.1f}, {100 * r.gap_high:+.1f}]"


def _val_interval(r: Result) -> str:
    if r.val_acc is None or r.val_acc_low is None or r.val_acc_high is None:
        return ""
    return f" [{100 * r.val_acc_low:.1f}, {100 * r.val_acc_high:.1f}] n={r.val_n:,}"
