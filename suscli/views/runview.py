"""What the JUnit and HTML reports read back from a run's record (the JSON report's run-level part): what was
audited, the closing line, and every setting as a flat name-value pair."""

from __future__ import annotations

from typing import Any

from suscli.results import Result


def subject(rows: list[Result], run: dict[str, Any]) -> str | None:
    """The pool, run or log audited; score's one checkpoint."""
    return run.get("pool") or run.get("run") or run.get("log") or (rows[0].path if len(rows) == 1 else None)


def closing(run: dict[str, Any]) -> str | None:
    """The closing line: rank's recommendation, or the text of track's."""
    line = run.get("recommendation")
    return line.get("text") if isinstance(line, dict) else line


# Tables, not settings: up to 100 x 100 numbers that the HTML report draws in their own section and JUnit leaves out.
NOT_FLAT = ("label_noise.noise_matrix",)


def flat(run: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Every scalar under its dotted name (settings.susceptibility.lr), lists joined with ', ', None as ''; the
    tables of NOT_FLAT left out."""
    out: list[tuple[str, str]] = []
    for key, value in run.items():
        name = f"{prefix}{key}"
        if name in NOT_FLAT:
            continue
        if isinstance(value, dict):
            out += flat(value, f"{name}.")
        elif isinstance(value, list):
            out.append((name, ", ".join("" if v is None else str(v) for v in value)))
        else:
            out.append((name, "" if value is None else str(value)))
    return out


def keep_rule(run: dict[str, Any]) -> str:
    """track's --keep rule by name ('train-acc'), from the run's `rule` ('train-acc: keep the epoch ...'); '' elsewhere."""
    rule = run.get("rule")
    return rule.split(":", 1)[0] if isinstance(rule, str) else ""
