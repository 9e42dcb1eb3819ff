"""What held-out labels (--val-data) say about a pool: which pairs of models the paired test separates, the order
that leaves, and whether held-out accuracy predicts itself better than the label-free order does.

Plain functions of per-image hits (1 where a model's top-1 matches the held-out label); the choice that uses them
is suscli.judge.rules. docs/validation.md measures them at 25 to 2,000 noisy labels on every zoo pool.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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


# Seeded halvings of the held-out images for accuracy_predicts_better: 2 x 5 comparisons, each of which held-out
# accuracy must win
SPLITS = 5
SPLIT_SEED = 0


def accuracy_predicts_better(hits: Sequence[np.ndarray], splits: int = SPLITS, seed: int = SPLIT_SEED) -> bool:
    """Whether held-out accuracy should order the pairs the paired test leaves, instead of the label-free order (`hits`
    given in that order, best first). Over `splits` seeded halvings of the images, held-out accuracy on one half and
    the label-free order are each scored by Kendall's tau-b with held-out accuracy on the other half, both ways round,
    over every pair: a label-free order that the held-out set contradicts where it can tell is not trusted where it
    cannot. True only when held-out accuracy scores higher in every comparison. Where the label-free order is wrong
    and the held-out set is large enough to show it, this gives the held-out set the last word (on the zoo's
    fine-tuned pool it lifted tau with clean accuracy from 0.76 to 0.94 with 2,000 labels); with few labels a half's
    chance leads rarely win every comparison, and the label-free order keeps what it adds there (docs/validation.md)."""
    h = np.stack(list(hits)).astype(np.float64)
    if h.shape[1] < 2:
        return False
    place = -np.arange(len(h), dtype=np.float64)  # the label-free order: earlier is higher
    rng = np.random.default_rng(seed)
    for _ in range(splits):
        half = rng.permutation(h.shape[1])
        one, two = half[: len(half) // 2], half[len(half) // 2 :]
        for fit, check in ((one, two), (two, one)):
            target = h[:, check].mean(1)
            first = held_out_first(h[:, fit].mean(1), place)
            if not kendall_tau(first, target) > kendall_tau(place, target):
                return False
    return True


def held_out_first(acc: np.ndarray, place: np.ndarray) -> np.ndarray:
    """The order held-out accuracy gives, as a score: higher accuracy first, equal accuracies in the label-free order
    (`place`, higher first), as held_out_order would order them. Without the tie-break, models tied on a few images
    would score as if the tie were a prediction."""
    score = np.empty(len(acc))
    score[np.lexsort((place, acc))] = np.arange(len(acc))
    return score


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of two sequences: concordant minus discordant pairs over the root of the pairs untied in each
    (ties count in neither direction; NaN when either side ties every pair)."""
    sx, sy = np.sign(x[:, None] - x[None, :]), np.sign(y[:, None] - y[None, :])
    untied = float((sx != 0).sum()) * float((sy != 0).sum())
    return float((sx * sy).sum() / np.sqrt(untied)) if untied > 0 else float("nan")


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
