"""Each model's outcome at the CI gate, read back from a report's rows and run: the JUnit and HTML reports say
per model what the exit code says for the pool (1: a model failed a gate, 3: a model could not be loaded or run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from suscli.results import Result


@dataclass(frozen=True)
class Outcome:
    status: str  # "error": not loaded or run (exit 3); "failure": failed a gate (exit 1); "passed"
    kind: str | None = None  # which gate: "memorized", "candidate", "threshold"; "load" for an error
    reason: str | None = None


def outcome(row: Result, run: dict[str, Any]) -> Outcome:
    """What the gates of `run` (--fail-on, --candidate, score's --max-susceptibility/--min-train-acc) say of `row`."""
    if not row.ok:
        return Outcome("error", "load", row.error or "could not be loaded or run")
    gate = run.get("gate") or {}
    if gate.get("fail_on") == "memorized" and row.region == 2:
        return Outcome("failure", "memorized", memorized_reason(row, run.get("thresholds")))
    if gate.get("candidate") == row.name and row.region != 1:
        return Outcome("failure", "candidate", f"candidate {row.name} is in region {row.region} ({row.verdict}), not region 1")
    if row.verdict and row.verdict.startswith("fail: "):
        return Outcome("failure", "threshold", row.verdict.removeprefix("fail: "))
    return Outcome("passed")


def memorized_reason(row: Result, thresholds: dict[str, Any] | None) -> str:
    """Why region 2: both numbers against both thresholds."""
    if not thresholds or row.train_acc is None or row.susceptibility is None:
        return "likely memorized noise (region 2)"
    return (
        f"likely memorized noise (region 2): training accuracy {100 * row.train_acc:.1f}% >= {100 * thresholds['train_acc']:.1f}% "
        f"and susceptibility {row.susceptibility:.4f} > {thresholds['susceptibility']:.4f} ({thresholds['source']} thresholds)"
    )


def gates(run: dict[str, Any]) -> list[str]:
    """The gates that were set, as the command line spells them."""
    gate = run.get("gate") or {}
    named = [
        f"--fail-on {gate['fail_on']}" if gate.get("fail_on") not in (None, "never") else None,
        f"--candidate {gate['candidate']}" if gate.get("candidate") else None,
        *(f"--{k.replace('_', '-')} {gate[k]}" for k in ("max_susceptibility", "min_train_acc") if gate.get(k) is not None),
    ]
    return [g for g in named if g]
