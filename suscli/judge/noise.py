"""What a pool's consensus says about the training labels: how many look wrong, and how many each model fits.

The training-accuracy pass keeps every model's top classes on every training image (suscli.measure.accuracy). Where
the models that resist noise agree on a class other than the given label, that label is contradicted. The share
of contradicted labels estimates the noise rate of the training set; a model's fit on the contradicted labels
(how often it predicts the given, contradicted label) estimates how much of the noise it memorized, without
clean labels. docs/validation.md measures both against the truth on the zoo. Per class, the same consensus gives the
estimated noise matrix (`noise_matrix`): which class is labelled as which.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from suscli.measure.accuracy import binomial_mass
from suscli.measure.predictions import Predictions

BOOTSTRAP = 200  # resamples of the voters for the interval
BOOTSTRAP_IMAGES = 5000  # images the resamples are drawn on: the voters' spread does not need them all
CHUNK = 4096  # images per dense (images, classes) block: 16 MB at 1,000 classes
SEED = 0
ESTIMATES_KEPT = 8  # estimate_noise's answers kept for the same inputs: a stage's training and held-out readings
_ESTIMATES: dict[bytes, NoiseEstimate] = {}
MATRIX_CLASSES = 100  # a report carries the whole (classes, classes) matrix up to this many classes
TOP_CONFUSIONS = 20  # and the largest off-diagonal pairs at any size
_NO_LABELS = "training predictions without their given labels"
# Below this Cohen's kappa between the consensus class and the given label, the consensus agrees with the labels
# barely more often than their class frequencies alone would make it (0.2 is the top of "slight" agreement, Landis
# and Koch 1977). Voters that learned nothing the labels say, such as networks collapsed onto one class, then
# contradict most labels whatever their noise: 88% of labels that are 39% wrong (docs/validation.md, MobileNetV3).
# In the zoo's 12 pools it is 0.39-0.87.
KAPPA_FLOOR = 0.2
# The contradicted share is given as one figure for the share of wrong labels only where a voter leaves the voters'
# consensus on at most this share of the unlabeled images; elsewhere the report gives the interval alone. The share
# errs by the right labels the voters get wrong and the wrong labels they confirm, both of which grow with the
# voters' own errors. Measured on 18 zoo pools: where voters left their consensus on 22-52% of new images, the figure
# was 0-20 points off the truth (over 5 in 10 of 16 pools); on 6-7% (the two-class zoo), 1.2 and 1.6 points. No pool
# lay between: the cut is the round number in that gap. On a zoo trained after it was set, e 7.5% gave a figure 0.7
# points off and e 10.3% the interval alone (docs/validation.md, "One figure only where the voters agree").
POINT_MAX_DISAGREEMENT = 0.10


@dataclass(frozen=True)
class NoiseEstimate:
    """The share of training labels the voters' consensus contradicts, and an interval for the share that is wrong.

    The consensus share errs both ways: it counts as wrong the right labels the voters get wrong, and it misses
    the wrong labels they fitted. The second has no bound without clean labels; the first shows in how often the
    voters leave their own consensus on new images. So the interval runs from the share corrected for that
    (`corrected`, its 2.5% bootstrap quantile) to the 97.5% quantile of the contradicted share. Without the voters'
    predictions on the unlabeled images it is the contradicted share's own 95% bootstrap interval."""

    rate: float  # share of training labels the voters' consensus contradicts
    low: float
    high: float
    images: int
    voters: int
    # Why the contradicted share is not evidence of wrong labels in this pool (suscli.judge.cost); None when it is
    doubt: str | None = None
    # How often a voter leaves the voters' consensus on the unlabeled images, and the share of wrong labels if the
    # consensus were wrong on right labels that often and right on every wrong one: (rate - e) / (1 - e), at least 0
    voter_disagreement: float | None = None
    corrected: float | None = None
    # Set where the doubt is that fitting the contradicted labels costs nothing (suscli.judge.cost)
    free_fit: bool = False
    # With --val-data: the same voters' consensus on the held-out labels (with_held_out), and the training reading's
    # own high end where that consensus contradicted more labels and raised `high`
    held_out: NoiseEstimate | None = None
    training_high: float | None = None
    # With --val-data: why the consensus reads nothing of the share of wrong labels though the training labels' test
    # passed (weak_out_of_sample). Unlike `doubt` it declines the reading only: the verdicts keep their own tests
    unread: str | None = None

    @property
    def said(self) -> bool:
        """Whether the report gives the interval as an estimate of the share of wrong labels: `readable`, and the
        held-out labels do not show the consensus agreeing with labels at chance (`unread`)."""
        return self.readable and self.unread is None

    @property
    def declined(self) -> str | None:
        """Why the report gives no estimate of the share of wrong labels ("not enough evidence"), or why the share it
        gives is corrected ("no evidence"); None where the contradicted share is the estimate."""
        return self.unread or self.doubt

    @property
    def training_upper(self) -> float:
        """The high end of the training labels' own reading, before held-out labels raised it (with_held_out): the
        verdict's test of what a model that learned only the clean signal fits reads it, since the held-out end adds
        the voters' errors on new images (docs/validation.md measures both)."""
        return self.high if self.training_high is None else self.training_high

    @property
    def readable(self) -> bool:
        """Whether the interval is an estimate of the share of wrong labels by the training labels' tests: the pool
        shows the contradicted labels are evidence of wrong ones, or fitting them costs nothing and the voters'
        disagreement corrects for that. The verdicts read this; the report also declines where `unread` says why
        (`said`)."""
        return self.doubt is None or (self.free_fit and self.voter_disagreement is not None)

    @property
    def point_withheld(self) -> str | None:
        """Why the report gives the interval and no single figure for the share of wrong labels (the voters err too
        often for one, or nothing shows how often they err); None where it gives one, or reads nothing at all."""
        if not self.said:
            return None
        return why_no_figure(self.voter_disagreement) or (HELD_OUT_ABOVE if self.training_high is not None else None)

    @property
    def wrong_labels(self) -> float | None:
        """The one figure the report gives for the share of wrong labels: the contradicted share where the pool shows
        it is evidence of wrong labels; where fitting them costs nothing, so that they look like right labels the
        voters miss, the share corrected for the voters' own errors. None where the voters err too often for one
        figure (`point_withheld`: the interval is the estimate) or nothing can be read (a weak consensus)."""
        if not self.said or self.point_withheld:
            return None
        return self.rate if self.doubt is None else self.corrected

    def as_dict(self) -> dict:
        return {
            "wrong_labels": self.wrong_labels,
            "rate": self.rate,
            "low": self.low,
            "high": self.high,
            "images": self.images,
            "voters": self.voters,
            "not_enough_evidence": self.declined,
            "point_withheld": self.point_withheld,
            "voter_disagreement": self.voter_disagreement,
            "corrected": self.corrected,
            **(
                {
                    "held_out": {k: v for k, v in self.held_out.as_dict().items() if k in HELD_OUT_KEYS},
                    "training_high": self.training_high,
                }
                if self.held_out is not None
                else {}
            ),
        }


HELD_OUT_KEYS = ("rate", "low", "high", "images", "voters", "voter_disagreement", "corrected")
# Why the figure is withheld where the held-out labels raised the interval's high end (with_held_out)
HELD_OUT_ABOVE = (
    "the voters' consensus contradicts more of the held-out labels, which no model fitted, than the training labels' "
    "interval allows: the voters may have fitted wrong training labels that their consensus then confirms"
)


def clearly_above(k: int, n: int, share: float, level: float = 0.025) -> bool:
    """Whether `k` of `n` is clearly more than `share`: the exact binomial P(X >= k | n, share) is under `level` (the
    one-sided test a Clopper-Pearson interval's low end inverts; exact at any n, where Wilson's low end is too high at
    n of 1 to 5)."""
    if k == 0 or share >= 1:
        return False
    if share <= 0:
        return True
    return binomial_mass(range(k, n + 1), n, share) < level


def clearly_below(k: int, n: int, share: float, level: float = 0.025) -> bool:
    """Whether `k` of `n` is clearly less than `share`: the exact binomial P(X <= k | n, share) is under `level`
    (clearly_above's test, the other tail)."""
    if k >= n or share <= 0:
        return False
    if share >= 1:
        return True
    return binomial_mass(range(k + 1), n, share) < level


def with_held_out(estimate: NoiseEstimate, held: NoiseEstimate) -> NoiseEstimate:
    """The training reading beside the same voters' consensus on held-out labels (`held`: estimate_noise on their
    predictions of the held-out images). The held-out share errs one way only: no model fitted those labels, so no
    memorized wrong label is confirmed, and the voters' errors on new images only add to it (it read above the truth
    in every pool of docs/validation.md). The training interval's high end errs the other way where the voters
    memorized: a consensus of memorizers confirms the wrong labels they fitted (in pools where every model memorized
    it read 2.5-7.6 points under the truth). So where the held-out consensus contradicts more than the training
    interval allows, clearly (an exact one-sided binomial test over the held-out images rejects, at 2.5%, a share at the
    training interval's high end: a few hundred held-out labels drawn as noisy as the training ones read a few points
    apart by chance, and a handful of them can read anything),
    the interval runs up to the held-out one's high end, and no single figure is given. Assumes the held-out labels
    were made as the training labels were (a split of one labelled set)."""
    if not clearly_above(round(held.rate * held.images), held.images, estimate.high):
        return dataclasses.replace(estimate, held_out=held)
    return dataclasses.replace(estimate, held_out=held, high=max(estimate.high, held.high), training_high=estimate.high)


def why_no_figure(disagreement: float | None) -> str | None:
    """Why voters that leave their consensus on `disagreement` of the unlabeled images (None: unknown) give no single
    figure for the share of wrong labels (POINT_MAX_DISAGREEMENT); None where they give one."""
    if disagreement is None:
        return "nothing shows how often the voters err (they have no predictions on unlabeled images)"
    if disagreement > POINT_MAX_DISAGREEMENT:
        return (
            f"the voters leave their consensus on {100 * disagreement:.1f}% of the unlabeled images (over "
            f"{100 * POINT_MAX_DISAGREEMENT:g}%), and voters that err that often can put the share they contradict far from the share that is wrong"
        )
    return None


# What the reading cannot rule out where fitting the contradicted labels costs nothing: in a procedural pool where every
# model memorized, the voters among them, their consensus confirmed the wrong labels they had fitted alike, and the
# share of wrong labels (34.9%) was above the interval printed (7.1-27.3%; docs/validation.md, "rank's words on
# procedural pools it was never tuned on").
ALL_MEMORIZED = (
    "unless every model, the voters among them, fitted the same wrong labels: a consensus of memorizers confirms them, "
    "and the share is then higher"
)


def noise_words(noise: dict, dash: str = "-", quote: Callable[[str], str] = str) -> str:
    """The label-noise estimate in words, from NoiseEstimate.as_dict() (what the JSON report holds), after "label
    noise: ". The one wording of the closing line and of the HTML report, which passes its own dash and escapes the
    reasons (`quote`). The contradicted share as the estimate; where fitting the contradicted labels costs nothing,
    the share corrected for the voters' own errors, and why; where the consensus is too weak to read anything, the
    contradicted share without the claim, and why. Where the voters err too often for one figure (`point_withheld`),
    the interval alone is the estimate, and the line says why. With held-out labels, what their consensus reads
    (with_held_out) closes the line, and stands in for the caveat that every model may have memorized."""
    voters = noise["voters"]
    consensus = f"consensus of {voters} model{'' if voters == 1 else 's'} contradicts {100 * noise['rate']:.1f}% of the {noise['images']:,} training labels"
    interval = f"{100 * noise['low']:.1f}{dash}{100 * noise['high']:.1f}%"
    doubt, reads, e = noise.get("not_enough_evidence"), noise.get("wrong_labels"), noise.get("voter_disagreement")
    # a report written before the rule has no "point_withheld": read it by the same rule
    withheld = noise["point_withheld"] if "point_withheld" in noise else (why_no_figure(e) if not doubt or reads is not None else None)
    held = noise.get("held_out")
    # the held-out reading stands in for the caveat where it is within the training interval or has raised it
    training_high = noise.get("training_high")
    stands_in = (
        held is not None and not _above_by_chance(held, noise["high"], training_high) and not _below(held, noise["low"], training_high)
    )
    caveat = "" if stands_in else f", {ALL_MEMORIZED}"
    if doubt and withheld:
        words = (
            f"no evidence that the labels the consensus contradicts are wrong. The {consensus}, but {quote(doubt)}. The "
            f"share of wrong labels is in {interval}, its low end allowing for the voters' own errors{caveat}; no "
            f"single figure: {withheld}"
        )
    elif doubt and reads is not None and e is not None:
        words = (
            f"no evidence that the labels the consensus contradicts are wrong. The {consensus}, but {quote(doubt)}. Allowing for the voters' own errors (they "
            f"leave their consensus on {100 * e:.1f}% of the unlabeled images), the share of wrong labels reads "
            f"{100 * reads:.1f}% (interval {interval}){caveat}"
        )
    elif doubt:
        return f"not enough evidence. The {consensus}, but {quote(doubt)}; that share is not an estimate of wrong labels here"
    elif e is None:
        words = f"the {consensus} (95% interval {interval}); not an estimate of the share of wrong labels: {withheld}"
    elif withheld:
        words = (
            f"the share of wrong labels is in {interval}, its low end allowing for the voters' own errors; no single "
            f"figure: the {consensus}, but {withheld}"
        )
    else:
        words = (
            f"the {consensus} (interval {interval}, its low end allowing for the voters' own errors: they leave their "
            f"consensus on {100 * e:.1f}% of the unlabeled images): an estimate of the share of wrong labels"
        )
    return words if held is None else f"{words}. {held_out_words(held, noise['low'], noise['high'], noise.get('training_high'), dash)}"


def held_out_words(held: dict, low: float, high: float, training_high: float | None, dash: str = "-") -> str:
    """The sentence on the voters' consensus on the held-out labels (with_held_out), from the report's record: `low`
    and `high` the printed interval's ends, `training_high` the training interval's own where the held-out reading
    raised it."""
    n = held["images"]
    said = (
        f"On the {n:,} held-out label{'' if n == 1 else 's'}, which no model fitted, the same consensus contradicts "
        f"{100 * held['rate']:.1f}% (interval {100 * held['low']:.1f}{dash}{100 * held['high']:.1f}%"
    )
    if _above_by_chance(held, high, training_high):
        return f"{said}), above the training labels' interval, but by no more than chance on {n:,} held-out label{'' if n == 1 else 's'}"
    if _below(held, low, training_high):
        return (
            f"{said}), below the training labels' interval: held-out labels cleaner than the training ones, which leave "
            "the training reading as it is"
        )
    if training_high is None:
        return f"{said}): within what the training labels allow, so no sign that the voters fitted wrong training labels"
    return (
        f"{said}), above the {100 * training_high:.1f}% the training labels' interval ended at: the interval runs up to "
        "the held-out one's high end, since voters that memorized confirm the wrong training labels they fitted, and "
        "their errors on images they never saw only add to the held-out share"
    )


def _above_by_chance(held: dict, high: float, training_high: float | None) -> bool:
    """Whether the held-out labels' consensus contradicts more than the printed interval's high end, though not
    clearly more: with_held_out raised no end (`training_high` None), so the interval is the training labels' own."""
    return training_high is None and held["rate"] > high


def _below(held: dict, low: float, training_high: float | None) -> bool:
    """Whether the held-out labels' consensus contradicts less than the training interval's low end: held-out labels
    cleaner than the training ones (a clean test set), which say nothing of what the voters fitted."""
    return training_high is None and held["rate"] < low


@dataclass(frozen=True)
class NoiseMatrix:
    """How the given labels spread over each class the consensus names, the voters' estimate of the true class.

    Orientation: rows are the consensus class, columns the given label. `counts()[c, g]` is the number of training
    images whose consensus class is c and whose given label is g; `p_label_given_consensus()[c, g]` = P(given label
    g | consensus class c), each row summing to 1. The diagonal is the share of a class's images labelled as it; the
    rest of a row, where its labels went. cleanlab's `noise_matrix` (cleanlab.count.estimate_latent) is P(given
    label | true label) with the given label in rows and columns summing to 1: the transpose of
    `p_label_given_consensus()`, with the consensus standing in for the truth. It is the voters' consensus, not the
    truth: where the voters err, so does the matrix.

    Kept as its non-empty cells, so that 20,000 classes cost what the images do, not 20,000 squared."""

    num_classes: int
    consensus: np.ndarray  # per non-empty cell: the consensus class (its row)
    given: np.ndarray  # the given label (its column)
    images: np.ndarray  # and how many training images it holds

    def counts(self) -> np.ndarray:
        """The dense (classes, classes) counts, rows the consensus class: 80 KB at 100 classes, 8 MB at 1,000."""
        out = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        out[self.consensus, self.given] = self.images
        return out

    def consensus_totals(self) -> np.ndarray:
        """Per class, the training images whose consensus it is (the rows' sums)."""
        return np.bincount(self.consensus, weights=self.images, minlength=self.num_classes).astype(np.int64)

    def p_label_given_consensus(self) -> np.ndarray:
        """P(given label | consensus class), dense: each row of `counts()` over its sum; NaN in a row no image has."""
        totals = self.consensus_totals()[:, None]
        return np.where(totals > 0, self.counts() / np.maximum(totals, 1), np.nan)

    def top_confusions(self, most: int = TOP_CONFUSIONS) -> list[tuple[int, int, int, float]]:
        """The largest off-diagonal cells, as (consensus class, given label, images, share of the consensus class's
        images): most images first, then the larger share, then the lower class ids."""
        off = np.flatnonzero(self.consensus != self.given)
        c, g, n = self.consensus[off], self.given[off], self.images[off]
        share = n / self.consensus_totals()[c]
        order = np.lexsort((g, c, -share, -n))[:most]
        return [(int(c[i]), int(g[i]), int(n[i]), float(share[i])) for i in order]

    def as_dict(self, names: Sequence[str] | None = None, most: int = TOP_CONFUSIONS, full_up_to: int = MATRIX_CLASSES) -> dict:
        """The report's record: the `most` largest confusions, and with at most `full_up_to` classes the whole matrix
        (counts and P(given label | consensus class) rounded to 4 decimals) with the class names. `names[i]` is class
        i's name, '' where unknown."""
        k = self.num_classes
        named = list(names) if names is not None and len(names) == k else [""] * k
        totals = self.consensus_totals()
        out: dict = {
            "rows": "consensus class",
            "columns": "given label",
            "orientation": (
                "rows: the consensus class (the voters' estimate of the true class, not the truth); columns: the given "
                "label; p_label_given_consensus[c][g] = P(given label g | consensus class c), each row sums to 1 "
                "(cleanlab's noise_matrix is P(given label | true label) with columns summing to 1: the transpose)"
            ),
            "num_classes": k,
            "full": k <= full_up_to,
        }
        if k <= full_up_to:
            out |= {
                "classes": named,
                "consensus_totals": totals.tolist(),
                "counts": self.counts().tolist(),
                # a class the consensus never names has no row to speak of: None (JSON null), as the report shows it
                "p_label_given_consensus": [
                    [None if np.isnan(v) else v for v in row] for row in np.round(self.p_label_given_consensus(), 4).tolist()
                ],
            }
        else:
            out["note"] = (
                f"{k} classes: the whole matrix is kept up to {full_up_to} classes, so this holds only its {most} "
                "largest off-diagonal cells (top_confusions)"
            )
        out["top_confusions"] = [
            {
                "consensus": c,
                "consensus_class": named[c],
                "given": g,
                "given_class": named[g],
                "images": n,
                "of": int(totals[c]),
                "share": round(share, 4),
            }
            for c, g, n, share in self.top_confusions(most)
        ]
        return out


def noise_matrix(agreed: np.ndarray, labels: np.ndarray, num_classes: int) -> NoiseMatrix:
    """Count each (consensus class, given label) pair over the training images: `agreed` the consensus class of
    each image, `labels` its given label, both class ids below `num_classes`."""
    agreed, labels = np.asarray(agreed, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    if agreed.shape != labels.shape:
        raise ValueError("the consensus and the given labels are on different images")
    if agreed.size and (min(agreed.min(), labels.min()) < 0 or max(agreed.max(), labels.max()) >= num_classes):
        raise ValueError(f"class ids outside 0-{num_classes - 1}")
    cells, images = np.unique(agreed * num_classes + labels, return_counts=True)
    return NoiseMatrix(num_classes, cells // num_classes, cells % num_classes, images.astype(np.int64))


def consensus(preds: Sequence[Predictions], rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per image (of `rows`, default all), the class with the highest summed probability over `preds`, and its
    share of that sum. Dense in blocks of CHUNK images, so a 1.3M-image training set never needs (images,
    classes) memory at once."""
    cls, share, _ = _tally(preds, rows, None)
    return cls, share


def consensus_and_label(preds: Sequence[Predictions]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """consensus() on every training image, and the voters' mean probability of its given label: how much they still
    believe the label they contradict (suspects are ranked by it). A voter that did not keep the label among its top
    classes gives it an even part of the probability it left outside them, as cleanlab's inputs are rebuilt in
    benchmarks/evaluate_noise.py: a voter sure of its top classes leaves the label less."""
    return _tally(preds, None, given_labels(preds))


def _tally(preds: Sequence[Predictions], rows: np.ndarray | None, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = preds[0].classes.shape[0] if rows is None else len(rows)
    cls = np.empty(n, dtype=np.int64)
    share = np.empty(n, dtype=np.float32)
    on_label = np.zeros(n, dtype=np.float32)
    for start in range(0, n, CHUNK):
        idx = np.arange(start, min(start + CHUNK, n)) if rows is None else rows[start : start + CHUNK]
        total = np.zeros((len(idx), preds[0].num_classes), dtype=np.float32)
        at = np.arange(len(idx))[:, None]
        for p in preds:  # a row's top classes are distinct (Predictions): one addition a cell, as np.add.at made, at less cost
            total[at, p.classes[idx]] += p.probs[idx]
        best = total.argmax(-1)
        mass = np.where((m := total.sum(-1)) > 0, m, 1)
        here = slice(start, start + len(idx))
        cls[here] = best
        share[here] = total[np.arange(len(idx)), best] / mass
        if labels is not None:
            given = labels[idx]
            belief = total[np.arange(len(idx)), given]
            for p in preds:  # the label outside a voter's top classes: its share of what the voter left over
                kept = (p.classes[idx] == given[:, None]).any(1)
                rest = np.clip(1 - p.probs[idx].sum(1), 0, None) / max(p.num_classes - p.classes.shape[1], 1)
                belief += np.where(kept, 0, rest)
            on_label[here] = belief / len(preds)
    return cls, share, on_label


def contradicted(preds: Sequence[Predictions]) -> np.ndarray:
    """Per training image, whether the consensus of `preds` names another class than its given label."""
    return consensus(preds)[0] != given_labels(preds)


def estimate_noise(
    preds: Sequence[Predictions],
    resamples: int = BOOTSTRAP,
    seed: int = SEED,
    agreed: np.ndarray | None = None,
    unlabeled: Sequence[Predictions] | None = None,
) -> NoiseEstimate:
    """The share of training labels that the consensus of `preds` (the voters) contradicts, with a bootstrap
    interval over which models happen to vote (and over the images: the draws are on a seeded sample). `agreed`
    is that consensus class per image when the caller has it already. `unlabeled`, the same voters' predictions on
    the unlabeled images, lowers the interval's low end to what the voters' own errors leave (NoiseEstimate).

    The same inputs give the estimate made before (the last ESTIMATES_KEPT are kept): the adaptive sample makes the
    decisions again at every stage, each reading the held-out labels (--val-data) with what are usually the same
    voters, and rank's report then reads the last stage's training labels again."""
    labels = given_labels(preds)
    rate = float(((consensus(preds)[0] if agreed is None else agreed) != labels).mean())
    prints = [_fingerprint(p, unlabeled[i] if unlabeled else None) for i, p in enumerate(preds)]
    order = sorted(range(len(preds)), key=prints.__getitem__)
    shapes = [_layout(p, unlabeled[i] if unlabeled else None) for i, p in enumerate(preds)]
    key = _inputs_key(labels, rate, [(prints[i], shapes[i]) for i in order], preds[0].num_classes, resamples, seed)
    if key in _ESTIMATES:
        return _ESTIMATES[key]
    preds = [preds[i] for i in order]  # the draws pick voters by position: by their predictions, not the pool's order
    unlabeled = [unlabeled[i] for i in order] if unlabeled else unlabeled
    rng = np.random.default_rng(seed)
    unl_rng = np.random.default_rng(seed + 1)  # its own stream: the contradicted share's draws do not depend on it
    sample = np.sort(rng.choice(len(labels), size=min(len(labels), BOOTSTRAP_IMAGES), replace=False))
    n_unl = unlabeled[0].classes.shape[0] if unlabeled else 0
    unlabeled = unlabeled if n_unl else None  # no unlabeled images: nothing shows the voters' errors
    e = voter_disagreement(unlabeled) if unlabeled else None  # first: it refuses voters on different images
    # Every draw tallies the same images, the sample's and the unlabeled ones, for its own voters: laid out once
    on_sample, given = _Ballots.of(preds, sample), labels[sample]
    on_unlabeled = _Ballots.of(unlabeled) if unlabeled else None
    top1 = [p.top1() for p in unlabeled] if unlabeled else []
    draws, floors = [], []
    for _ in range(resamples):
        who = rng.integers(0, len(preds), len(preds))
        at = np.searchsorted(sample, rng.choice(sample, size=len(sample)))  # the images drawn, as places in the sample
        draws.append(float((on_sample.consensus(who)[at] != given[at]).mean()))
        if on_unlabeled is not None:
            rows = unl_rng.integers(0, n_unl, n_unl)
            cls = on_unlabeled.consensus(who)[rows]
            floors.append(corrected_share(draws[-1], _off_consensus((top1[i][rows] for i in who), cls)))
    low, high = np.quantile(draws, [0.025, 0.975]) if draws else (rate, rate)
    corrected = None
    if e is not None:
        corrected = corrected_share(rate, e)
        low = min(low, float(np.quantile(floors, 0.025)) if floors else corrected, corrected)
    estimate = NoiseEstimate(rate, float(min(low, rate)), float(max(high, rate)), len(labels), len(preds), None, e, corrected)
    while len(_ESTIMATES) >= ESTIMATES_KEPT:
        del _ESTIMATES[next(iter(_ESTIMATES))]  # the oldest
    _ESTIMATES[key] = estimate
    return estimate


def _inputs_key(labels: np.ndarray, rate: float, voters: list[tuple[bytes, tuple]], num_classes: int, resamples: int, seed: int) -> bytes:
    """What estimate_noise's answer depends on: the given labels, the contradicted share, each voter's predictions in
    the order the draws pick them (fingerprint and _layout) and the draws' settings."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((rate, num_classes, resamples, seed, BOOTSTRAP_IMAGES, [shape for _, shape in voters])).encode())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    for fingerprint, _ in voters:
        digest.update(fingerprint)
    return digest.digest()


@dataclass(frozen=True)
class _Ballots:
    """The voters' top classes on a fixed set of images as cells of a flat (images, classes) tally, per block of CHUNK
    images, laid out once: the bootstrap tallies the same images 200 times for other draws of voters, and gathering
    every voter's rows again for each draw took nearly all of its time."""

    cells: list[list[np.ndarray]]  # per block, per voter: (image in the block) * classes + class, one per top class
    probs: list[list[np.ndarray]]  # per block, per voter: those classes' probabilities, in the voter's own dtype
    images: int
    num_classes: int

    @classmethod
    def of(cls, preds: Sequence[Predictions], rows: np.ndarray | None = None) -> _Ballots:
        """The ballots of `preds` on the images of `rows` (default all), in that order."""
        n, width = (preds[0].classes.shape[0] if rows is None else len(rows)), preds[0].num_classes
        cells, probs = [], []
        for start in range(0, n, CHUNK):
            idx = slice(start, min(start + CHUNK, n)) if rows is None else rows[start : start + CHUNK]
            at = np.arange(min(CHUNK, n - start))[:, None] * width
            cells.append([(at + p.classes[idx]).ravel() for p in preds])
            probs.append([p.probs[idx].ravel() for p in preds])
        return cls(cells, probs, n, width)

    def consensus(self, who: np.ndarray) -> np.ndarray:
        """Per image, the consensus class of the voters at the positions `who` (repeats allowed): consensus() of
        those voters to the last bit, each cell summed from zero in the order of `who`."""
        out = np.empty(self.images, dtype=np.int64)
        for start, (cells, probs) in zip(range(0, self.images, CHUNK), zip(self.cells, self.probs)):
            total = np.zeros((min(CHUNK, self.images - start), self.num_classes), dtype=np.float32)
            flat = total.reshape(-1)
            for i in who:  # a row's top classes are distinct: one addition a cell, as _tally makes it
                flat[cells[i]] += probs[i]
            out[start : start + len(total)] = total.argmax(-1)
        return out


def _layout(pred: Predictions, unlabeled: Predictions | None) -> tuple:
    """The shapes and dtypes of a voter's arrays: where _fingerprint's bytes of one array end, and what it rounds."""
    return tuple((p.classes.shape, p.probs.shape, p.probs.dtype.str) for p in (pred, unlabeled) if p is not None)


def _fingerprint(pred: Predictions, unlabeled: Predictions | None) -> bytes:
    """A voter's place in estimate_noise's draws, from its predictions alone: the same interval whatever order the
    pool lists its models in (a folder sorted by name, a manifest, files renamed)."""
    digest = hashlib.blake2b(digest_size=16)
    for p in (pred, unlabeled) if unlabeled is not None else (pred,):
        digest.update(np.ascontiguousarray(p.classes, dtype=np.int64).tobytes())  # whatever dtypes they were read in
        digest.update(np.ascontiguousarray(p.probs, dtype=np.float32).tobytes())
    return digest.digest()


def voter_disagreement(preds: Sequence[Predictions], rows: np.ndarray | None = None) -> float:
    """How often a voter's top class differs from the voters' consensus on the images (of `rows`, default all; the
    unlabeled images): the voters' own error rate as far as their disagreement shows it, which their shared errors
    hide."""
    if len({(p.classes.shape[0], p.num_classes) for p in preds}) > 1:
        raise ValueError("the voters' predictions are on different images or classes")
    cls = consensus(preds, rows)[0]
    return _off_consensus(((p.top1() if rows is None else p.top1()[rows]) for p in preds), cls)


def _off_consensus(tops: Iterable[np.ndarray], cls: np.ndarray) -> float:
    """How often a voter's top class (each of `tops`, on the images of `cls`) differs from the consensus class, on
    average over the voters: voter_disagreement's number, which the bootstrap reads from a consensus it has."""
    return 1 - float(np.mean([top == cls for top in tops]))


def corrected_share(contradicted_share: float, disagreement: float) -> float:
    """The share of wrong labels if the consensus contradicted right labels as often as a voter leaves the consensus
    on new images and confirmed no wrong label: (s - e) / (1 - e), at least 0. A low end, not an estimate: the
    consensus's error on right labels stayed under e in 10 of the zoo's 12 pools, and where it did not (voters
    fine-tuned from one backbone, which err together) the wrong labels it confirms kept this under the truth
    (docs/validation.md)."""
    return max(0.0, (contradicted_share - disagreement) / (1 - disagreement)) if disagreement < 1 else 0.0


def chance_agreement(agreed: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Cohen's kappa between the consensus class and the given label per training image, and the share of images on
    which they would agree by chance: if the two were independent, with the class frequencies they have."""
    k = int(max(agreed.max(initial=0), labels.max(initial=0))) + 1
    n = max(len(labels), 1)
    expected = float(np.bincount(agreed, minlength=k) @ np.bincount(labels, minlength=k)) / n**2
    observed = float((agreed == labels).mean()) if len(labels) else 0.0
    return ((observed - expected) / (1 - expected) if expected < 1 else 0.0), expected


def weak_consensus(agreed: np.ndarray, labels: np.ndarray) -> str | None:
    """Why the consensus's contradictions say nothing of wrong labels when it hardly agrees with the labels beyond
    chance (KAPPA_FLOOR); None when it does."""
    kappa, expected = chance_agreement(agreed, labels)
    if kappa >= KAPPA_FLOOR:
        return None
    return (
        f"the consensus names the given label of {100 * float((agreed == labels).mean()):.1f}% of the training images, where "
        f"the classes' frequencies alone would give {100 * expected:.1f}% (Cohen's kappa {kappa:.2f} < {KAPPA_FLOOR}): the "
        "voters learned too little of what the labels say for their disagreement to single out wrong ones"
    )


def weak_out_of_sample(agreed: np.ndarray, labels: np.ndarray, level: float = 0.025) -> str | None:
    """Why the share the consensus contradicts is no estimate of wrong labels when, on held-out labels that no model
    fitted, it agrees with them clearly less than a Cohen's kappa of KAPPA_FLOOR would (the exact one-sided binomial
    test at `level`: a few held-out labels can read anything); None when it does not. On the training images voters
    that fit their labels agree with them however little they learned, and weak_consensus cannot see it: a pool of one
    Trainer run's checkpoints named 44.8% of its training labels (kappa 0.39) and 21.7% of its held-out ones."""
    kappa, expected = chance_agreement(agreed, labels)
    hits, n = int((agreed == labels).sum()), len(labels)
    if not n or not clearly_below(hits, n, expected + KAPPA_FLOOR * (1 - expected), level):
        return None
    return (
        f"on the {n:,} held-out labels, which no model fitted, the consensus names the given label of {100 * hits / n:.1f}%, "
        f"where the classes' frequencies alone would give {100 * expected:.1f}% (Cohen's kappa {kappa:.2f}, clearly under "
        f"{KAPPA_FLOOR}): on images no model fitted, the consensus and the labels agree too little for the share it "
        "contradicts to estimate the share that is wrong (the voters learned little, or most labels are wrong)"
    )


def fit_on(pred: Predictions, images: np.ndarray) -> float | None:
    """The share of the selected training images that a model predicts as labelled: on the labels the consensus
    contradicts, its estimated memorization; on those it confirms, its fit on the (likely) clean ones. None when
    nothing is selected."""
    if not images.any():
        return None
    return float((pred.top1()[images] == _labels_of(pred)[images]).mean())


def given_labels(preds: Sequence[Predictions]) -> np.ndarray:
    """The labels the training images were given, the same for every model's predictions (or ValueError)."""
    if not preds:
        raise ValueError(_NO_LABELS)
    every = [_labels_of(p) for p in preds]
    labels = every[0]
    if any(other.shape != labels.shape or not np.array_equal(other, labels) for other in every):
        raise ValueError("the models' training predictions are on different images or labels")
    if len({p.num_classes for p in preds}) > 1:
        raise ValueError("the models predict different numbers of classes")
    return labels


def _labels_of(pred: Predictions) -> np.ndarray:
    """The labels a model's training predictions carry (or ValueError: predictions on the unlabeled images)."""
    if pred.labels is None:
        raise ValueError(_NO_LABELS)
    return pred.labels
