"""Regions and ranking: turning (training accuracy, susceptibility) pairs of a pool into an ordered choice.

Forouzesh et al. (ICLR 2023) split a pool at the MEAN training accuracy and the MEAN susceptibility:
region 1 (fits the training set, resists random labels) is where the models that generalize are.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass

from suscli.judge import verdict
from suscli.errors import UsageError, apart, first_few, plural
from suscli.judge.noise import NoiseEstimate
from suscli.measure.normalization import points_elsewhere
from suscli.results import Result

# The paper's names of the regions (the plot's legend); the verdict column is suscli.judge.verdict's, which can differ.
REGION_NAMES = {
    1: verdict.RESISTS,  # train acc >= threshold, susceptibility <= threshold (the paper: recommended)
    2: verdict.MEMORIZED,  # train acc >= threshold, susceptibility > threshold
    3: verdict.UNDERFIT,  # train acc < threshold, susceptibility <= threshold
    4: verdict.UNDERFIT_SUSCEPTIBLE,  # train acc < threshold, susceptibility > threshold
}
RULES = ("mean", "median")
MIN_POOL = 2  # pool-relative thresholds need at least this many scored models


@dataclass(frozen=True)
class Thresholds:
    susceptibility: float
    train_acc: float
    source: str  # how they were set, e.g. "pool mean" or "fixed"

    @property
    def center(self) -> str | None:
        """ "mean" or "median" where the training-accuracy threshold is the pool's own, else None (fixed)."""
        rule = self.source.split(",")[0].removeprefix("pool ")
        return rule if self.source.startswith("pool") and rule in RULES and "train acc" not in self.source else None

    @property
    def pooled(self) -> bool:
        """Whether the susceptibility threshold is the pool's own mean or median (thresholds), which moves with the
        pool, rather than a value the user fixed."""
        return self.source.startswith("pool") and "susceptibility" not in self.source


def thresholds(
    rows: list[Result], rule: str = "mean", susceptibility: float | None = None, train_acc: float | None = None
) -> Thresholds | None:
    """Thresholds from the scored rows by `rule`, each replaced by a fixed value when given.

    None when they cannot be set: no training accuracy, or fewer than MIN_POOL models and no fixed values.
    """
    if rule not in RULES:
        raise UsageError(f"unknown threshold rule {rule!r}", fix=f"use one of {', '.join(RULES)}")
    scored = [(r.susceptibility, r.train_acc) for r in counted(rows) if r.ok and r.susceptibility is not None and r.train_acc is not None]
    if susceptibility is not None and train_acc is not None:
        return Thresholds(susceptibility, train_acc, "fixed")
    if len(scored) < MIN_POOL:
        return None
    center = statistics.fmean if rule == "mean" else statistics.median
    zeta = susceptibility if susceptibility is not None else center([z for z, _ in scored])
    acc = train_acc if train_acc is not None else center([a for _, a in scored])
    fixed = [name for name, v in (("susceptibility", susceptibility), ("train acc", train_acc)) if v is not None]
    return Thresholds(zeta, acc, f"pool {rule}" + (f", fixed {' and '.join(fixed)}" if fixed else ""))


def others(scored: list[Result], t: Thresholds | None, noise: NoiseEstimate | None) -> verdict.Others | None:
    """The training-accuracy threshold recomputed over the models that are not clear memorizers (verdict.Others), where
    the threshold is the pool's own and some clear memorizer holds it up; None otherwise, and where the label check
    finds no noise to memorize (no estimate, one it doubts, or labels read nearly clean): on clean labels the models
    that fit every label fit most of the few the consensus contradicts, and "clear memorizer" would name them.
    `scored`: the rows the thresholds were taken over (_scored). Called after the rows' fits on the contradicted labels
    are set, which clear_memorizer reads."""
    if t is None or t.center is None or not verdict.finds_noise(noise):
        return None
    clear = [verdict.clear_memorizer(r) for r in scored]  # once a row: it may decode the row's training predictions
    held = [r for r, c in zip(scored, clear) if c]
    rest = [r.train_acc for r, c in zip(scored, clear) if not c and r.train_acc is not None]
    if not held or not rest:
        return None
    center = statistics.fmean if t.center == "mean" else statistics.median
    return verdict.Others(center(rest), len(rest), tuple(r.name for r in held))


def _scored(rows: list[Result]) -> list[Result]:
    """The rows the pool's thresholds are taken over: measured, with training accuracy, each model's weights once, fed
    the inputs it was trained on as far as its labels tell (counted)."""
    return [r for r in counted(rows) if r.ok and r.susceptibility is not None and r.train_acc is not None]


def first_of(rows: list[Result]) -> list[Result]:
    """Per row, the first row that holds its weights, of the same architecture and read with the same preprocessing:
    itself, or the row it is a copy of (a file copied under another name; timm's model_best.pth.tar copies an epoch's
    file; the same state dict saved as a .pt and a .safetensors, saved again, or beside an optimizer). The weights
    match by their own hash (weights_sha256) or by their file's, which a row stored by an earlier release has alone.
    The same weights shown other pixels (a sidecar's or args.yaml's mean, size or crop) are another model with
    numbers of their own. Rows with neither hash are their own."""
    first: dict[tuple[str, str, str | None, str], Result] = {}
    found = []
    for r in rows:
        keys = [(kind, digest, r.arch, _reads(r)) for kind, digest in (("weights", r.weights_sha256), ("file", r.sha256)) if digest]
        own = next((first[k] for k in keys if k in first), r)
        for k in keys:
            first.setdefault(k, own)
        found.append(own)
    return found


def copies_of(row: Result, rows: list[Result]) -> list[Result]:
    """The rows of `rows` other than `row` that hold its weights (first_of): the same model under another name, so
    no tie with it that evidence could break, and none a closing line may call another model."""
    firsts = first_of(rows)
    own = next((f for r, f in zip(rows, firsts) if r is row), row)
    return [r for r, f in zip(rows, firsts) if f is own and r is not row]


def other_models(row: Result, among: list[Result], rows: list[Result]) -> list[Result]:
    """The rows of `among` that are other models than `row`: neither it nor one of its copies among `rows`
    (copies_of), which a closing line never counts as a rival of the model it names."""
    twins = {id(r) for r in copies_of(row, rows)}
    return [r for r in among if r is not row and id(r) not in twins]


def same_words(row: Result, rows: list[Result]) -> str:
    """What the closing line adds where the model it names has copies among `rows` (copies_of); "" where none."""
    twins = [r.name for r in copies_of(row, rows)]
    if not twins:
        return ""
    return (
        f"; {first_few(twins)} {plural(len(twins), 'holds', 'hold')} the same weights as {row.name}: "
        f"the same model, which {plural(len(twins), 'either file', 'any of their files')} ships"
    )


def _reads(row: Result) -> str:
    """How the row's checkpoint saw its images: its preprocessing and channels as recorded, in JSON, so that a row
    read back from a results file (its mean a list) reads as one measured now (a tuple)."""
    if not isinstance(row.details, dict):
        return ""
    return json.dumps([row.details.get("preprocess"), row.details.get("channels")], sort_keys=True, default=str)


def distinct(rows: list[Result]) -> list[Result]:
    """The rows less the copies (first_of): the pool-wide numbers (thresholds, the consensus) count a model's weights
    once, however many files hold them."""
    return [r for r, f in zip(rows, first_of(rows)) if f is r]


def misfed(rows: list[Result]) -> list[Result]:
    """The measured rows whose labels point to another input normalization, channel order, size or crop than the one they
    were measured with (suscli.measure.normalization): their numbers are likely of inputs unlike their training's, so
    the pool's thresholds, consensus and order leave them out, while some measured row remains. None where every
    measured row's do: the pool then has nothing better to count, and the choice says so."""
    measured = [r for r in rows if r.ok and r.susceptibility is not None]
    off = [r for r in measured if points_elsewhere(r.notes)]
    return off if len(off) < len(measured) else []


def counted(rows: list[Result]) -> list[Result]:
    """The rows the pool-wide numbers (thresholds, the consensus) count: each model's weights once (distinct), less
    the rows measured on inputs their labels say are unlike their training's (misfed)."""
    off = {id(r) for r in misfed(rows)}
    return [r for r in distinct(rows) if id(r) not in off]


def pool_classes(rows: list[Result]) -> list[int]:
    """The numbers of classes of the scored rows. More than one and susceptibility (a loss drop on random labels
    over all classes) is not comparable across the pool: no regions, no model to ship."""
    return sorted({n for r in rows if r.ok and isinstance(r.details, dict) and (n := r.details.get("num_classes")) is not None})


def region(train_acc: float, susceptibility: float, t: Thresholds) -> int:
    if train_acc >= t.train_acc:
        return 1 if susceptibility <= t.susceptibility else 2
    return 3 if susceptibility <= t.susceptibility else 4


def rank(rows: list[Result], t: Thresholds | None, noise: NoiseEstimate | None = None) -> list[Result]:
    """Assign region and verdict (suscli.judge.verdict, with the pool's label-noise estimate `noise` when there is
    one), then order: region 1 to 4, a region-1 model whose verdict is "likely memorized noise" after the rest of
    region 1; within a region, higher training accuracy first, then lower susceptibility; without regions, lower
    susceptibility first; failed models last.
    """
    for r in rows:
        if r.ok and t is not None and r.train_acc is not None and r.susceptibility is not None:
            r.region = region(r.train_acc, r.susceptibility, t)
        elif r.ok:
            r.region = None
    scored = _scored(rows)
    pair = t is not None and t.source != "fixed" and len(scored) == MIN_POOL
    zeta, acc = (t.susceptibility, t.train_acc) if t else (None, None)
    verdict.assign(rows, zeta, acc, noise, t.pooled if t else True, others(scored, t, noise), pair)

    def key(r: Result) -> tuple:
        if not r.ok:
            return (2, 0, 0, 0, r.name)
        acc = -(r.train_acc if r.train_acc is not None else 0.0)
        zeta = r.susceptibility if r.susceptibility is not None else float("inf")
        place = 1.5 if r.region == 1 and r.verdict == verdict.MEMORIZED else r.region or 0
        return (0 if r.region is not None else 1, place, acc, zeta, r.name)

    return sorted(rows, key=key)


def recommendation(ranked: list[Result], t: Thresholds | None) -> str:
    """The closing line: which model to ship and why, or why there is no confident choice."""
    scored = [r for r in ranked if r.ok]
    if not scored:
        return "no model could be scored"
    if t is None:
        best = min(scored, key=lambda r: r.susceptibility if r.susceptibility is not None else float("inf"))
        train_data = "--train-data and " if any(r.train_acc is None for r in scored) else ""  # given, it is not what is missing
        return (
            f"no regions (need {train_data}{MIN_POOL}+ distinct models, or --zeta-threshold and --acc-threshold); "
            f"lowest susceptibility: {best.name} ({best.susceptibility:.4f})"
        )
    first = [r for r in scored if r.region == 1 and r.verdict != verdict.MEMORIZED]
    flagged = [r.name for r in scored if r.verdict == verdict.MEMORIZED]
    memo = f"; {len(flagged)} flagged as likely memorized noise: {', '.join(flagged)}" if flagged else ""
    if not first:
        where = f"region 1 (train acc >= {t.train_acc:.3f} and susceptibility <= {t.susceptibility:.4f}, {t.source})"
        return f"no model in {where}{' that is not flagged' if any(r.region == 1 for r in scored) else ''}{memo}"
    best = first[0]
    # a flagged model in region 1 is no candidate: the count is of the others, and says so
    unflagged = (
        f" {plural(len(first), 'that is', 'that are')} not flagged"
        if any(r.region == 1 and r.verdict == verdict.MEMORIZED for r in scored)
        else ""
    )
    models = len(distinct(first))  # a copy is no other model of region 1
    among = "the only model" if models == 1 else f"the highest training accuracy of the {models} models"
    assert best.train_acc is not None and best.susceptibility is not None  # a region needs both
    acc, acc_cut = apart(best.train_acc, t.train_acc)
    s, s_cut = apart(best.susceptibility, t.susceptibility, 4)
    return (
        f"ship {best.name}: train acc {acc} >= {acc_cut} and susceptibility {s} <= {s_cut} ({t.source}), {among} in region 1"
        f"{unflagged}{memo}{same_words(best, scored)}"
    )
