"""The candidate noise estimators of benchmarks/evaluate_noise.py on small examples worked out by hand."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from suscli.measure.predictions import Predictions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
evaluate_noise = importlib.import_module("evaluate_noise")  # an import error fails the tests, never skips them


def _preds(tops: list[list[tuple[int, float, int, float]]], labels: list[int] | None = None) -> list[Predictions]:
    """One Predictions per voter from (class, prob, class, prob) per image: its two kept classes."""
    out = []
    for rows in tops:
        classes = np.array([[a, b] for a, _, b, _ in rows])
        probs = np.array([[p, q] for _, p, _, q in rows], dtype=np.float32)
        out.append(Predictions(classes, probs, 3, None if labels is None else np.array(labels)))
    return out


# 3 voters, 4 training images labelled 0, 1, 2, 0. Summed kept probabilities: image 0 names class 0 (1.7), image 1
# class 1 (2.2), image 2 class 0 (1.5 against 1.2 for its label 2), image 3 class 1 (1.6 against 1.1 for its label
# 0): the consensus contradicts 2 of 4 labels, s = 0.5.
TRAIN = [
    [(0, 0.7, 1, 0.2), (1, 0.6, 0, 0.3), (0, 0.5, 2, 0.4), (1, 0.8, 0, 0.1)],
    [(0, 0.6, 2, 0.3), (1, 0.7, 2, 0.2), (0, 0.6, 2, 0.3), (1, 0.5, 0, 0.4)],
    [(1, 0.5, 0, 0.4), (1, 0.9, 0, 0.05), (2, 0.5, 0, 0.4), (0, 0.6, 1, 0.3)],
]
# 2 unlabeled images: the consensus names class 0 (2.0) and class 1 (1.7). Voter 0 agrees with it once, voter 1
# twice, voter 2 once: mean agreement 2/3, e = 1/3.
UNLABELED = [
    [(0, 0.9, 1, 0.1), (2, 0.5, 1, 0.4)],
    [(0, 0.8, 2, 0.1), (1, 0.6, 2, 0.3)],
    [(1, 0.6, 0, 0.3), (1, 0.7, 0, 0.2)],
]


def _votes() -> Any:
    return evaluate_noise.Votes.of(_preds(TRAIN, [0, 1, 2, 0]), _preds(UNLABELED))


def test_consensus_share_and_its_correction_for_the_voters_disagreement() -> None:
    v, every, images, unl = _votes(), np.arange(3), np.arange(4), np.arange(2)
    assert evaluate_noise.consensus_share(v, every, images, unl) == pytest.approx(0.5)
    assert evaluate_noise.voter_disagreement(v, every, unl) == pytest.approx(1 / 3)
    assert evaluate_noise.corrected(v, every, images, unl) == pytest.approx((0.5 - 1 / 3) / (1 - 1 / 3))  # 0.25
    # voter 1 drawn three times: its own top classes contradict labels 2 and 3, and it always agrees with itself
    assert evaluate_noise.corrected(v, np.array([1, 1, 1]), images, unl) == pytest.approx(0.5)


def test_dawid_skene_with_unanimous_voters_calls_the_label_they_all_contradict_wrong() -> None:
    truth = np.arange(10) % 3
    labels = truth.copy()
    labels[4] = (truth[4] + 1) % 3  # one wrong label in ten
    voter = [[(int(c), 0.9, int((c + 1) % 3), 0.05) for c in truth]]
    v = evaluate_noise.Votes.of(_preds(voter * 4, labels.tolist()), _preds([[(0, 1.0, 1, 0.0)]] * 4))
    assert evaluate_noise.dawid_skene(v, np.arange(4), np.arange(10), np.arange(1)) == pytest.approx(0.1, abs=1e-3)


def test_calibrated_noise_reads_no_noise_where_confident_voters_name_every_label() -> None:
    truth = np.arange(30) % 3
    voter = [[(int(c), 0.9, int((c + 1) % 3), 0.05) for c in truth]]
    v = evaluate_noise.Votes.of(_preds(voter * 2, truth.tolist()), _preds([[(0, 1.0, 1, 0.0)]] * 2))
    assert evaluate_noise.calibrated_noise(v, np.arange(2), np.arange(30), np.arange(1)) < 0.01
