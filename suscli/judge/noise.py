"""What a pool's consensus says about the training labels: how many look wrong, and how many each model fits.

The training-accuracy pass keeps every model's top classes on every training image (suscli.measure.accuracy). Where
the models that resist noise agree on a class other than the given label, that label is contradicted. The share
of contradicted labels estimates the noise rate of the training set; a model's fit on the contradicted labels
(how often it predicts the given, contradicted label) estimates how much of the noise it memorized, without
clean labels. docs/validation.md measures both against the truth on the zoo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from suscli.measure.predictions import Predictions

BOOTSTRAP = 200  # resamples of the voters for the interval
BOOTSTRAP_IMAGES = 5000  # images the resamples are drawn on: the voters' spread does not need them all
CHUNK = 4096  # images per dense (images, classes) block: 16 MB at 1,000 classes
SEED = 0
_NO_LABELS = "training predictions without their given labels"


@dataclass(frozen=True)
class NoiseEstimate:
    rate: float  # share of training labels the voters' consensus contradicts
    low: float  # 95% bootstrap interval over the voters and the images
    high: float
    images: int
    voters: int

    def as_dict(self) -> dict:
        return {"rate": self.rate, "low": self.low, "high": self.high, "images": self.images, "voters": self.voters}


def consensus(preds: Sequence[Predictions], rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per image (of `rows`, default all), the class with the highest summed probability over `preds`, and its
    share of that sum. Dense in blocks of CHUNK images, so a 1.3M-image training set never needs (images,
    classes) memory at once."""
    n = preds[0].classes.shape[0] if rows is None else len(rows)
    cls = np.empty(n, dtype=np.int64)
    share = np.empty(n, dtype=np.float32)
    for start in range(0, n, CHUNK):
        idx = np.arange(start, min(start + CHUNK, n)) if rows is None else rows[start : start + CHUNK]
        total = np.zeros((len(idx), preds[0].num_classes), dtype=np.float32)
        at = np.arange(len(idx))[:, None]
        for p in preds:
            np.add.at(total, (at, p.classes[idx]), p.probs[idx])
        best = total.argmax(-1)
        mass = total.sum(-1)
        cls[start : start + len(idx)] = best
        share[start : start + len(idx)] = total[np.arange(len(idx)), best] / np.where(mass > 0, mass, 1)
    return cls, share


def contradicted(preds: Sequence[Predictions]) -> np.ndarray:
    """Per training image, whether the consensus of `preds` names another class than its given label."""
    return consensus(preds)[0] != given_labels(preds)


def estimate_noise(
    preds: Sequence[Predictions], resamples: int = BOOTSTRAP, seed: int = SEED, agreed: np.ndarray | None = None
) -> NoiseEstimate:
    """The share of training labels that the consensus of `preds` (the voters) contradicts, with a bootstrap
    interval over which models happen to vote (and over the images: the draws are on a seeded sample). `agreed`
    is that consensus class per image when the caller has it already."""
    labels = given_labels(preds)
    rate = float(((consensus(preds)[0] if agreed is None else agreed) != labels).mean())
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(labels), size=min(len(labels), BOOTSTRAP_IMAGES), replace=False))
    draws = []
    for _ in range(resamples):
        who = rng.integers(0, len(preds), len(preds))
        images = rng.choice(sample, size=len(sample))
        draws.append(float((consensus([preds[i] for i in who], images)[0] != labels[images]).mean()))
    low, high = np.quantile(draws, [0.025, 0.975]) if draws else (rate, rate)
    return NoiseEstimate(rate, float(min(low, rate)), float(max(high, rate)), len(labels), len(preds))


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
