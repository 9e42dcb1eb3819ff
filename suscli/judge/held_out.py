"""What held-out labels (--val-data) say about a pool: which pairs of models the paired test separates, the order
that leaves, and how held-out accuracy and the label-free order are weighed for the pairs it leaves.

Plain functions of per-image hits (1 where a model's top-1 matches the held-out label); the choice that uses them
is suscli.judge.rules. docs/validation.md measures them at 25 to 2,000 noisy labels on every zoo pool.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from suscli.measure.accuracy import PAIRED_ALPHA, decode_hits, mcnemar_p
from suscli.results import Result


def val_hits_of(row: Result) -> np.ndarray | None:
    """The row's per-image hits on the held-out images (--val-data); None when it has none or they are damaged."""
    data = row.details.get("val_hits") if isinstance(row.details, dict) else None
    try:
        return decode_hits(data) if isinstance(data, dict) else None
    except (ValueError, KeyError, TypeError):
        return None


def held_out_order(beats: np.ndarray, given: list[int]) -> list[int]:
    """The models (indices of `beats`, held_out_beats's matrix) in the order that the held-out set decides where it
    can: repeatedly the first model in the `given` order (best first) that no model left beats. A beaten model never
    comes before its winner; models the set cannot tell apart keep the given order. Acyclic, since a model beats only
    models with fewer hits."""
    left, out = list(given), []
    while left:
        free = next(j for j in left if not beats[left, j].any())
        out.append(free)
        left.remove(free)
    return out


# Seeded halvings of the held-out images whose mean rank correlation is held-out accuracy's split-half reliability
SPLITS = 20
SPLIT_SEED = 0
MIN_MODELS = 3  # fewer models and a rank correlation says little: the label-free order orders the pairs the test leaves


@dataclass(frozen=True)
class Blend:
    """How held-out accuracy and the label-free order are weighed where the paired test leaves pairs of models.

    Held-out accuracy is read as the clean ranking plus noise that shrinks with the images: its reliability is the
    rank correlation of its two halves, stepped up to all the images (Spearman-Brown), and its correlation with the
    clean ranking the root of that. The label-free order's correlation with the clean ranking is then its correlation
    with held-out accuracy over that root, taken one standard error high (on Fisher's z; the standard error is the
    spread of the same correlation over the halves, a half set's, about 1.4 times the whole set's: the scales 0.71
    and 0 were measured and trade tau at 25 labels for tau at 2,000, docs/validation.md): where the held-out set is
    too small to tell, the label-free order keeps the benefit of the doubt. The weights are the two predictors' least-squares
    weights for the clean ranking (standardized ranks). docs/validation.md measures it at 25 to 2,000 held-out labels."""

    reliability: float  # of held-out accuracy's ranking, on all the held-out images
    agreement: float  # Spearman correlation of held-out accuracy with the label-free order (NaN where not computed)
    held_out: float  # weight of held-out accuracy's standardized ranks
    label_free: float  # weight of the label-free order's

    def as_dict(self) -> dict[str, float]:
        return {"reliability": self.reliability, "agreement": self.agreement, "held_out": self.held_out, "label_free": self.label_free}


LABEL_FREE = Blend(0.0, float("nan"), 0.0, 1.0)


def blend(hits: Sequence[np.ndarray], splits: int = SPLITS, seed: int = SPLIT_SEED) -> Blend:
    """The weights of held-out accuracy and the label-free order (`hits` given in that order, best first) for the
    pairs the paired test leaves (Blend says why)."""
    h = np.stack(list(hits)).astype(np.float64)
    models, images = h.shape
    acc = h.mean(1)
    if models < MIN_MODELS or images < 2 or np.ptp(acc) == 0:
        return LABEL_FREE
    place = -np.arange(models, dtype=np.float64)
    rng = np.random.default_rng(seed)
    halves, on_half = [], []
    for _ in range(splits):
        order = rng.permutation(images)
        one, two = h[:, order[: images // 2]].mean(1), h[:, order[images // 2 :]].mean(1)
        halves.append(spearman(one, two))
        on_half += [fisher_z(spearman(place, one)), fisher_z(spearman(place, two))]
    half = max(float(np.mean(halves)), 0.0)
    reliability = min(2 * half / (1 + half), 0.999)
    agreement = spearman(acc, place)
    if reliability == 0:
        return dataclasses.replace(LABEL_FREE, agreement=agreement)
    # one standard error high, the half sets' (Blend says why not the whole set's)
    high = math.tanh(fisher_z(agreement) + float(np.std(on_half)))
    label_free = high / math.sqrt(reliability)  # the label-free order's correlation with the clean ranking
    if abs(agreement) > 1 - 1e-9:
        # one ranking (or its reverse): the least-squares weights have no single answer, and either order alone is it
        return Blend(reliability, agreement, *((0.0, 1.0) if agreement > 0 else (1.0, 0.0)))
    if label_free >= 1:
        return Blend(reliability, agreement, 0.0, 1.0)
    if label_free <= 0:
        return Blend(reliability, agreement, 1.0, 0.0)
    w_held, w_free = np.linalg.solve([[1.0, agreement], [agreement, 1.0]], [math.sqrt(reliability), label_free])
    return Blend(reliability, agreement, float(w_held), float(w_free))


def blended_order(hits: Sequence[np.ndarray], weights: Blend) -> list[int]:
    """The models (indices of `hits`, given in the label-free order) best first by the weighted sum of their
    standardized ranks; ties keep the label-free order."""
    acc = np.stack(list(hits)).mean(1)
    place = -np.arange(len(acc), dtype=np.float64)
    score = weights.held_out * standard_ranks(acc) + weights.label_free * standard_ranks(place)
    return sorted(range(len(acc)), key=lambda i: (-score[i], i))


def fisher_z(r: float) -> float:
    """Fisher's z of a correlation, kept finite at +-1."""
    return math.atanh(float(np.clip(r, -0.999, 0.999)))


def standard_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks (ties share their mean rank), centred and scaled to unit variance; zeros when every value is equal."""
    r = pd.Series(x).rank().to_numpy()
    sd = r.std()
    return (r - r.mean()) / sd if sd > 0 else np.zeros_like(r)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (ties share their mean rank); 0 where either side is constant, which says nothing."""
    return float(np.mean(standard_ranks(x) * standard_ranks(y)))


def held_out_beats(hits: Sequence[np.ndarray]) -> np.ndarray:
    """[i, j]: the held-out set shows model i better than model j (more images right, and the paired McNemar test at
    PAIRED_ALPHA on the images only one of them gets right). Every pair's counts come from one matrix product."""
    h = np.stack(list(hits)).astype(np.int64)
    only = h @ (1 - h).T  # only[i, j]: the images model i gets right and model j wrong
    right = h.sum(1)
    n = len(h)
    return np.array(
        [[right[i] > right[j] and mcnemar_p(int(only[i, j]), int(only[j, i])) < PAIRED_ALPHA for j in range(n)] for i in range(n)]
    )
