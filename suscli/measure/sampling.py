"""Training accuracy on a nested, seeded sample that grows only while growing changes a decision the user sees.

Why: the training-accuracy pass is nearly all of an audit's cost, and it grows with the training set, while the
decisions it feeds (each model's region and verdict, the order of the table, the model to ship, a gate) rarely need every
image. Every model sees the same images, the first n of one seeded order of the labelled set, so that models are
compared on paired samples; n starts at START and doubles. After each doubling the decisions are made again, and
the sample stops growing once they come out the same as at the size before (PATIENCE times in a row), or when it
holds the whole set. docs/performance.md gives the measurements that chose START and PATIENCE.

A result row holds the first `listed` images of the order (details["train_sample"]: that count and the positions
of the unreadable ones; details["train_hits"] and ["train_predictions"]: per image, whether the model predicts
the given label and its top classes). So a row can be seen at any smaller size (`view`), grows by measuring the
new chunk alone (`extended`), and a rerun measures nothing twice.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from suscli.measure.accuracy import Accuracy, decode_hits, encode_hits, from_counts, gap
from suscli.measure.predictions import Predictions
from suscli.data.images import ImageSource
from suscli.results import Result
from suscli.defaults import START

PATIENCE = 1  # doublings in a row that must leave every decision unchanged: idem
RECORD = "train_sample"


@dataclass(frozen=True)
class Decisions:
    """What the user sees that training accuracy can change; equal decisions at two sizes stop the growth."""

    regions: tuple[tuple[str, int | None], ...] = ()
    verdicts: tuple[tuple[str, str | None], ...] = ()  # suscli.judge.verdict: its words can change where the regions do not
    order: tuple[str, ...] = ()
    pick: str | None = None
    gates: tuple[bool, ...] = ()


def seeded_order(population: int, seed: int, start: int = START) -> list[int]:
    """The order in which the listed images join the sample: a seeded permutation, or the listing's own order when
    the first stage holds every image (the sample is then the full pass itself)."""
    if population <= start:
        return list(range(population))
    return random.Random(seed).sample(range(population), population)


def stage_sizes(population: int, start: int = START) -> list[int]:
    """start, 2 start, 4 start, ... and the whole set last."""
    if start < 1:
        raise ValueError(f"the first stage needs at least one image, got {start}")
    sizes = []
    n = start
    while n < population:
        sizes.append(n)
        n *= 2
    return sizes + [population]


def settle(
    sizes: list[int], view: Callable[[int], list[Result]], decide: Callable[[list[Result]], Decisions | None], patience: int = PATIENCE
) -> int:
    """The sample size to report: the first of `sizes` whose decisions equal those of the `patience` sizes before
    it, else the last. `view(n)` gives the rows measured on the first n images (measuring what is missing);
    `decide` returns None when no decision depends on training accuracy, which stops at the first size."""
    previous: Decisions | None = None
    unchanged = 0
    for n in sizes:
        current = decide(copy.deepcopy(view(n)))
        if current is None:
            return n
        unchanged = unchanged + 1 if current == previous else 0
        if unchanged >= patience:
            return n
        previous = current
    return sizes[-1]


@dataclass
class NestedSample:
    """The labelled set in its seeded order, cut into the chunks the stages add; each chunk is an ImageSource of
    its own, decoded once and shared by every model (and cached on disk by its files, like any source)."""

    ordered: ImageSource  # every listed image, in the order they join the sample; never decoded as a whole
    sizes: list[int]
    stopped: str | None = None  # why the sample stopped short of where the decisions would have taken it
    _chunks: dict[tuple[int, int], ImageSource] = field(default_factory=dict, repr=False)

    @property
    def population(self) -> int:
        return len(self.ordered.paths)

    def chunk(self, lo: int, hi: int) -> ImageSource:
        """The images at positions lo..hi-1 of the order."""
        if (lo, hi) not in self._chunks:
            self._chunks[(lo, hi)] = self.ordered.subset(range(lo, hi), self.population)
        return self._chunks[(lo, hi)]

    def boundaries(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The chunks that take a row from lo to hi images: the stages' own, so that each is decoded once."""
        cuts = [lo] + [s for s in self.sizes if lo < s < hi] + [hi]
        return list(zip(cuts, cuts[1:]))

    def paths_at(self, size: int, skipped: list[int]) -> list:
        """The readable images of the first `size`, in the order the rows' predictions hold them."""
        gone = set(skipped)
        return [p for i, p in enumerate(self.ordered.paths[:size]) if i not in gone]


def nested_sample(listing: ImageSource, seed: int, start: int | None = None) -> NestedSample:
    """The sample of `listing` (the whole labelled set as listed) for `seed`, first stage `start` (default START)."""
    start = start or START
    order = seeded_order(len(listing.paths), seed, start)
    return NestedSample(listing.subset(order, len(listing.paths)), stage_sizes(len(listing.paths), start))


def measured(row: Result) -> bool:
    """Whether the row has training accuracy to grow or cut (a failed row, or one without --train-data, has not)."""
    details = row.details if isinstance(row.details, dict) else {}
    return row.ok and row.train_acc is not None and details.get("train_acc") is not None and details.get("train_hits") is not None


def listed(row: Result) -> int | None:
    """Images of the order the row was measured on (unreadable ones included); None before `begin`."""
    record = row.details.get(RECORD) if isinstance(row.details, dict) else None
    return int(record["listed"]) if isinstance(record, dict) else None


def skipped(row: Result) -> list[int]:
    """Positions in the order of the unreadable images among those the row was measured on."""
    return list(row.details[RECORD]["skipped"])


def begin(row: Result, size: int, unreadable: list[int]) -> None:
    """Mark a row measured on the first `size` images of the order, of which those at `unreadable` were skipped."""
    row.details[RECORD] = {"listed": size, "skipped": sorted(unreadable)}


def extended(row: Result, acc: Accuracy, size: int, unreadable: list[int]) -> Result:
    """`row` grown by the measurement `acc` of the images after its own, up to `size` (`unreadable`: positions
    skipped among them): counts and per-image predictions appended, nothing measured again."""
    grown = copy.deepcopy(row)
    before = row.details["train_acc"]
    total = from_counts(
        before["correct"] + acc.correct,
        before["total"] + acc.total,
        acc.population,
        acc.batch_size,
        before.get("halvings", 0) + acc.halvings,
    )
    preds = _joined(_predictions(row), acc.predictions)
    hits = np.concatenate([_hits(row), acc.hits if acc.hits is not None else np.zeros(0, dtype=bool)])
    _set(grown, total, preds, hits)
    begin(grown, size, skipped(row) + unreadable)
    return grown


def passed_over(row: Result, size: int, unreadable: list[int]) -> Result:
    """`row` grown to `size` over images none of which could be decoded (`unreadable`: all after its own): skipped,
    its counts and predictions as they were."""
    grown = copy.deepcopy(row)
    begin(grown, size, skipped(row) + unreadable)
    return grown


def view(row: Result, size: int) -> Result:
    """The row as measured on the first `size` images of the order (a copy; the row itself when it holds no more)."""
    have = listed(row)
    if have is None or size >= have:
        return row
    gone = [i for i in skipped(row) if i < size]
    used = size - len(gone)
    hits = _hits(row)[:used]
    acc = row.details["train_acc"]
    total = from_counts(int(hits.sum()), used, acc["population"], acc["batch_size"], acc.get("halvings", 0))
    preds = _predictions(row)
    cut = None
    if preds is not None and preds.labels is not None:
        cut = Predictions(preds.classes[:used], preds.probs[:used], preds.num_classes, preds.labels[:used])
    seen = copy.deepcopy(row)
    _set(seen, total, cut, hits)
    begin(seen, size, gone)
    return seen


def _hits(row: Result) -> np.ndarray:
    return decode_hits(row.details["train_hits"])


def _predictions(row: Result) -> Predictions | None:
    data = row.details.get("train_predictions")
    return Predictions.decode(data) if isinstance(data, dict) else None


def _joined(a: Predictions | None, b: Predictions | None) -> Predictions | None:
    if a is None or b is None or a.labels is None or b.labels is None:
        return None
    return Predictions(
        np.concatenate([a.classes, b.classes]),
        np.concatenate([a.probs, b.probs]),
        max(a.num_classes, b.num_classes),
        np.concatenate([a.labels, b.labels]),
    )


def _set(row: Result, acc: Accuracy, preds: Predictions | None, hits: np.ndarray) -> None:
    """Write an accuracy, its predictions and hits into `row` as scoring.scored_row does."""
    row.train_acc, row.train_acc_low, row.train_acc_high, row.train_n = acc.value, acc.low, acc.high, acc.total
    if row.val_acc is not None and row.val_acc_low is not None and row.val_acc_high is not None:  # the gap follows the training accuracy
        row.gap, row.gap_low, row.gap_high = gap((acc.value, acc.low, acc.high), (row.val_acc, row.val_acc_low, row.val_acc_high))
    row.details["train_acc"] = acc.as_dict()
    row.details["train_predictions"] = None if preds is None else preds.encode()
    row.details["train_hits"] = encode_hits(hits)
