"""Each model's outcome at the CI gate, read back from a report's rows and run: the JUnit and HTML reports say
per model what the exit code says for the pool (1: a model failed a gate, 3: a model could not be loaded or run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from suscli.errors import UsageError, plural
from suscli.judge.regions import MIN_POOL, Thresholds, misfed
from suscli.judge.verdict import LOW_SUSCEPTIBILITY, MEMORIZED, MISMEASURED, PAIR, SUSCEPTIBLE, UNCLEAR, overshot
from suscli.results import Result

FAIL_ON = ("never", "memorized")  # rank's --fail-on


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
    if gate.get("fail_on") == "memorized" and row.verdict == MEMORIZED:
        return Outcome("failure", "memorized", f"{MEMORIZED}: {row.verdict_why}")
    if why := gate.get("not_judged"):  # a pool without regions: the gate passed no model, it could not judge them
        judged = unjudged(gate.get("fail_on") or "never", row.name if gate.get("candidate") == row.name else None, why)
        if judged:
            return Outcome("failure", "not-judged", "; ".join(judged))
    if gate.get("candidate") == row.name and (reason := candidate_failure(row)):
        return Outcome("failure", "candidate", reason)
    if failures := threshold_failures(row, gate.get("max_susceptibility"), gate.get("min_train_acc")):
        return Outcome("failure", "threshold", "; ".join(failures))
    return Outcome("passed")


def candidate_failure(row: Result) -> str | None:
    """Why `row` fails --candidate: not loaded or run, measured on inputs its labels say are unlike its training's
    (its region is of those numbers), outside region 1, or flagged by the verdict; None when it passes. A row that
    could not be loaded has no region, which is no reason to give."""
    if not row.ok:
        return f"candidate {row.name} could not be loaded or run: {row.error}"
    if row.verdict_why == MISMEASURED:
        return f"candidate {row.name} cannot be judged: {MISMEASURED}"
    if raised := overshot(row):  # its region is of a number the step's size set
        return f"candidate {row.name} cannot be judged: {raised}"
    if row.region != 1:
        return f"candidate {row.name} is in region {row.region} ({row.verdict or row.error}), not region 1"
    if row.verdict == MEMORIZED:
        return f"candidate {row.name} is in region 1 but its verdict is '{MEMORIZED}' ({row.verdict_why})"
    return None


def threshold_failures(row: Result, max_susceptibility: float | None, min_train_acc: float | None) -> list[str]:
    """score's gates: --max-susceptibility and --min-train-acc (the caller checks that training accuracy exists). A
    negative susceptibility (verdict.overshot) failed no maximum: the gate passed a step that measured nothing."""
    failures = []
    if max_susceptibility is not None and (raised := overshot(row)):  # below any maximum, and no reading of the model
        failures.append(f"--max-susceptibility {max_susceptibility} cannot judge it: {raised}")
    elif max_susceptibility is not None and row.susceptibility is not None and row.susceptibility > max_susceptibility:
        failures.append(f"susceptibility {row.susceptibility:.4f} > --max-susceptibility {max_susceptibility}")
    if min_train_acc is not None and row.train_acc is not None and row.train_acc < min_train_acc:
        failures.append(f"training accuracy {row.train_acc:.4f} < --min-train-acc {min_train_acc}")
    return failures


def pool_failures(ranked: list[Result], fail_on: str, candidate: str | None, t: Thresholds | None) -> list[str]:
    """rank's gates: --fail-on memorized (any model flagged) and --candidate (that model in region 1, not flagged).
    Without regions a gate is a usage error, unless models that could not be loaded or run left the pool too small:
    the run then exits 3 with their rows and reasons, and the gate fails as not judged."""
    failures = []
    short = shortfall(ranked)
    if fail_on == "memorized":
        if t is None and short:
            failures += unjudged(fail_on, None, short)
        elif t is None:
            raise needs_regions("--fail-on memorized")
        flagged = [r.name for r in ranked if r.verdict == MEMORIZED]
        if flagged:
            failures.append(f"{len(flagged)} {plural(len(flagged), 'model')} likely memorized noise: {', '.join(flagged)}")
    if candidate is not None:
        row = next(r for r in ranked if r.name == candidate)
        if t is None and short:
            failures += unjudged("never", candidate, short)
        elif t is None:
            raise needs_regions("--candidate")
        elif reason := candidate_failure(row):
            failures.append(reason)
    return failures


def flags_none(ranked: list[Result], fail_on: str) -> str | None:
    """Why --fail-on memorized passes a pool where it could flag no model: every scored model is "unclear" or judged
    as a model alone (a pool of two, a consensus at chance), so a green gate says nothing of memorization there; None
    where a verdict of the pool was given, or no gate is set."""
    scored = [r for r in ranked if r.ok]
    if fail_on != "memorized" or not scored or not all(_flags_nothing(r) for r in scored):
        return None
    which = (
        f"could flag none of the {len(scored)} models: each is '{UNCLEAR}' or judged as a model alone (their rows say why)"
        if len(scored) > 1
        else f"could not flag its one model: it is '{UNCLEAR}' or judged as a model alone (its row says why)"
    )
    return f"--fail-on memorized passes, but it {which}, so the pass says nothing of memorization here"


def _flags_nothing(row: Result) -> bool:
    """Whether `row`'s verdict is one no pool evidence gave: a model alone's, "unclear", or any verdict of a pool of two."""
    return row.verdict in (UNCLEAR, SUSCEPTIBLE, LOW_SUSCEPTIBILITY, None) or (row.verdict_why or "").startswith(PAIR)


def needs_regions(gate: str) -> UsageError:
    """The usage error of `gate` ("--fail-on memorized" or "--candidate") on a pool that has no regions. Either gate
    without --train-data is refused before this (rank), so what is missing here is models or thresholds alone."""
    return UsageError(f"{gate} needs regions", fix=f"rank {MIN_POOL}+ models, or fix both thresholds")


def shortfall(ranked: list[Result]) -> str | None:
    """Why a pool has no regions where checkpoints that could not be loaded or run, or models measured on inputs
    unlike their training's (regions.misfed, left out of the thresholds), left it too small; None where every model
    was scored and counted."""
    scored = sum(r.ok for r in ranked)
    placed = all(r.train_acc is not None for r in ranked if r.ok)  # without training accuracy nothing has regions
    off = len(misfed(ranked)) if placed else 0
    if scored == len(ranked) and not off:
        return None
    lost = [f"{len(ranked) - scored} of the {len(ranked)} models could not be scored"] if scored < len(ranked) else []
    if off:
        lost.append(f"the labels of {off} of the {len(ranked)} models point to other inputs than measured (left out)")
    return f"{' and '.join(lost)}, and regions need {MIN_POOL}+"


def unjudged(fail_on: str, candidate: str | None, why: str) -> list[str]:
    """The gates set on a pool that has no regions, each failed as not judged, and why."""
    named = [f"--fail-on {fail_on}" if fail_on != "never" else None, f"--candidate {candidate}" if candidate else None]
    return [f"{gate} cannot be judged: {why}" for gate in named if gate]


def gates(run: dict[str, Any]) -> list[str]:
    """The gates that were set, as the command line spells them."""
    gate = run.get("gate") or {}
    named = [
        f"--fail-on {gate['fail_on']}" if gate.get("fail_on") not in (None, "never") else None,
        f"--candidate {gate['candidate']}" if gate.get("candidate") else None,
        *(f"--{k.replace('_', '-')} {gate[k]}" for k in ("max_susceptibility", "min_train_acc") if gate.get(k) is not None),
    ]
    return [g for g in named if g]
