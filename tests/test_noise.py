"""suscli.judge.noise: the consensus on the training images, checked against counts made by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from suscli.measure.predictions import Predictions, votes
from suscli.judge.noise import (
    HELD_OUT_ABOVE,
    POINT_MAX_DISAGREEMENT,
    NoiseEstimate,
    chance_agreement,
    clearly_above,
    clearly_below,
    consensus,
    consensus_and_label,
    contradicted,
    corrected_share,
    estimate_noise,
    fit_on,
    noise_matrix,
    noise_words,
    voter_disagreement,
    weak_consensus,
    with_held_out,
)


def one_hot(top1: list[int], labels: list[int], num_classes: int = 3) -> Predictions:
    """A model sure of `top1`, on images given `labels`."""
    classes = np.array([[c, (c + 1) % num_classes] for c in top1])
    probs = np.tile([1.0, 0.0], (len(top1), 1)).astype(np.float32)
    return Predictions(classes, probs, num_classes, np.array(labels))


LABELS = [0, 0, 1, 1, 2, 2, 0, 1, 2, 0]


@pytest.fixture(autouse=True)
def no_estimates_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test draws its own bootstraps: none kept from another test's identical inputs."""
    import suscli.judge.noise

    monkeypatch.setattr(suscli.judge.noise, "_ESTIMATES", {})


def forget_estimates() -> None:
    """Draw the next bootstrap again, where a test checks the draws themselves (seeded, the same in any order)."""
    import suscli.judge.noise

    suscli.judge.noise._ESTIMATES.clear()


def test_consensus_is_the_summed_probability_winner() -> None:
    a = Predictions(np.array([[0, 1], [2, 1]]), np.array([[0.6, 0.4], [0.5, 0.5]], dtype=np.float32), 3, np.array([0, 1]))
    b = Predictions(np.array([[1, 0], [1, 2]]), np.array([[0.7, 0.3], [0.9, 0.1]], dtype=np.float32), 3, np.array([0, 1]))
    cls, share = consensus([a, b])
    # image 0: class 0 gets 0.6 + 0.3, class 1 gets 0.4 + 0.7; image 1: class 1 gets 0.5 + 0.9
    assert cls.tolist() == [1, 1] and share == pytest.approx([1.1 / 2.0, 1.4 / 2.0])


def test_the_belief_left_in_a_label_spreads_what_a_voter_kept_outside_its_top_classes() -> None:
    """5 classes, the top 2 kept. Image 0 is labelled 4: voter a keeps it (0.1); voter b does not, and gives it an even
    part of the 0.2 it left outside its top 2 (0.2 / 3). Image 1 is labelled 0, which both keep."""
    labels = np.array([4, 0])
    a = Predictions(np.array([[1, 4], [0, 1]]), np.array([[0.9, 0.1], [0.5, 0.3]], dtype=np.float32), 5, labels)
    b = Predictions(np.array([[1, 2], [1, 0]]), np.array([[0.5, 0.3], [0.7, 0.3]], dtype=np.float32), 5, labels)
    cls, share, on_label = consensus_and_label([a, b])
    assert cls.tolist() == [1, 1] and share == pytest.approx([1.4 / 1.8, 1.0 / 1.8])
    assert on_label == pytest.approx([(0.1 + 0.2 / 3) / 2, (0.5 + 0.3) / 2])


def test_noise_rate_counts_the_labels_the_majority_contradicts() -> None:
    truth = [0, 0, 1, 2, 2, 2, 0, 1, 2, 1]  # labels 3 and 9 of LABELS are "wrong": the voters say 2 and 1
    voters = [one_hot(truth, LABELS), one_hot(truth, LABELS), one_hot(LABELS, LABELS)]  # two resist, one memorized
    assert contradicted(voters).tolist() == [a != b for a, b in zip(truth, LABELS)]
    est = estimate_noise(voters)
    assert est.rate == pytest.approx(2 / 10) and est.images == 10 and est.voters == 3
    assert est.low <= est.rate <= est.high
    forget_estimates()
    assert estimate_noise(voters) == est  # seeded: the same interval every time


def test_the_interval_allows_for_the_voters_own_errors() -> None:
    """Three voters on 10 training images (the consensus contradicts 2 labels) and 8 unlabeled ones, on which voter
    c leaves the consensus twice: e = 2 / 24. The low end is at most (0.2 - e) / (1 - e), the high end the same as
    without the unlabeled predictions."""
    truth = [0, 0, 1, 2, 2, 2, 0, 1, 2, 1]
    voters = [one_hot(truth, LABELS), one_hot(truth, LABELS), one_hot(LABELS, LABELS)]
    seen = [0, 1, 2, 0, 1, 2, 0, 1]
    other = [1, 1, 2, 0, 1, 2, 0, 0]  # differs from `seen` on images 0 and 7
    unlabeled = [
        Predictions(np.array([[c, (c + 1) % 3] for c in top]), np.tile([0.9, 0.1], (8, 1)).astype(np.float32), 3)
        for top in (seen, seen, other)
    ]
    plain, allowed = estimate_noise(voters), estimate_noise(voters, unlabeled=unlabeled)
    e = 2 / 24
    assert allowed.voter_disagreement == pytest.approx(e)
    assert allowed.corrected == pytest.approx((0.2 - e) / (1 - e))
    assert allowed.rate == plain.rate and allowed.high == plain.high  # the contradicted share's draws are unchanged
    assert allowed.low <= min(plain.low, allowed.corrected)
    assert plain.voter_disagreement is None and plain.corrected is None
    forget_estimates()
    assert estimate_noise(voters, unlabeled=unlabeled) == allowed  # seeded
    assert voter_disagreement(unlabeled[:2]) == 0.0  # voters that never disagree: no correction at all
    assert corrected_share(0.2, 0.0) == 0.2 and corrected_share(0.1, 0.3) == 0.0


def test_one_figure_only_where_the_voters_agree_on_new_images() -> None:
    """The contradicted share is the share of wrong labels only as far as the voters are right: with e up to
    POINT_MAX_DISAGREEMENT it is given as one figure; above it, or with nothing to measure e on, the interval alone,
    and the line says why. A weak consensus reads nothing either way."""
    sure = NoiseEstimate(0.3, 0.2, 0.35, 1000, 5, voter_disagreement=POINT_MAX_DISAGREEMENT, corrected=0.22)
    assert sure.wrong_labels == 0.3 and sure.point_withheld is None
    assert "an estimate of the share of wrong labels" in noise_words(sure.as_dict())

    unsure = NoiseEstimate(0.3, 0.0, 0.45, 1000, 5, voter_disagreement=0.25, corrected=0.067)
    d = unsure.as_dict()
    assert unsure.wrong_labels is None and d["wrong_labels"] is None and d["rate"] == 0.3
    assert d["point_withheld"] == (
        "the voters leave their consensus on 25.0% of the unlabeled images (over 10%), and voters that err that often "
        "can put the share they contradict far from the share that is wrong"
    )
    words = noise_words(d)
    assert words.startswith(
        "the share of wrong labels is in 0.0-45.0%, its low end allowing for the voters' own errors; no single figure: "
    )
    assert "consensus of 5 models contradicts 30.0% of the 1,000 training labels, but the voters leave" in words
    assert "an estimate of the share of wrong labels" not in words

    untold = NoiseEstimate(0.3, 0.27, 0.33, 1000, 5)  # no predictions on unlabeled images: no e
    assert untold.wrong_labels is None and "no predictions on unlabeled images" in untold.point_withheld
    assert noise_words(untold.as_dict()).startswith(
        "the consensus of 5 models contradicts 30.0% of the 1,000 training labels (95% interval 27.0-33.0%); not an estimate"
    )

    free = NoiseEstimate(0.25, 0.0, 0.44, 1000, 9, "fitting them costs nothing", 0.34, 0.0, free_fit=True)
    assert free.wrong_labels is None and "34.0%" in free.point_withheld
    words = noise_words(free.as_dict())
    assert words.startswith("no evidence that the labels the consensus contradicts are wrong. ")
    assert "The share of wrong labels is in 0.0-44.0%" in words and "no single figure" in words and "reads" not in words
    sure_free = NoiseEstimate(0.12, 0.0, 0.15, 1000, 9, "fitting them costs nothing", 0.08, 0.04, free_fit=True)
    assert sure_free.wrong_labels == 0.04 and "reads 4.0% (interval 0.0-15.0%)" in noise_words(sure_free.as_dict())
    # a pool of memorizers alone also costs nothing to fit: the interval holds only if the voters did not memorize
    for est in (free, sure_free):
        assert "unless every model, the voters among them, fitted the same wrong labels" in noise_words(est.as_dict())
    assert "unless every model" not in noise_words(unsure.as_dict())

    # a report written before the rule (no "point_withheld") reads the same
    for est in (unsure, untold, free, sure, sure_free):
        old = {k: v for k, v in est.as_dict().items() if k != "point_withheld"}
        old["wrong_labels"] = est.rate if est.doubt is None else est.corrected  # what it held then
        assert noise_words(old) == noise_words(est.as_dict())

    weak = NoiseEstimate(0.88, 0.87, 0.9, 1000, 8, "the consensus names the given label barely more often than chance", 0.4, 0.8)
    assert weak.wrong_labels is None and weak.point_withheld is None
    assert noise_words(weak.as_dict()).startswith("not enough evidence. ")


def test_held_out_labels_read_far_below_the_training_interval_are_not_called_within_it() -> None:
    """The demo's pool with its clean test set as --val-data: the training labels read 30.1-37.8% and the held-out ones
    0.4% (0.0-5.7%), which the line called "within what the training labels allow, so no sign that the voters fitted
    wrong training labels". It is below that interval: cleaner held-out labels, which say nothing either way of
    what the voters fitted, so the caveat on a consensus of memorizers stays where the line gives it."""
    train = NoiseEstimate(0.353, 0.301, 0.378, 1500, 3, voter_disagreement=0.035, corrected=0.33)
    below = with_held_out(train, NoiseEstimate(0.004, 0.0, 0.057, 1000, 3))
    assert (below.low, below.high, below.training_high) == (0.301, 0.378, None)
    words = noise_words(below.as_dict())
    assert "within what the training labels allow" not in words and "no sign" not in words, words
    assert words.endswith(
        "the same consensus contradicts 0.4% (interval 0.0-5.7%), below the training labels' interval: held-out labels "
        "cleaner than the training ones, which leave the training reading as it is"
    ), words
    free = NoiseEstimate(0.25, 0.1, 0.44, 1000, 9, "fitting them costs nothing", 0.34, 0.0, free_fit=True)
    free_below = noise_words(with_held_out(free, NoiseEstimate(0.004, 0.0, 0.057, 1000, 9)).as_dict())
    assert "unless every model, the voters among them, fitted the same wrong labels" in free_below, free_below


def test_held_out_labels_raise_the_high_end_only_when_their_consensus_clearly_contradicts_more() -> None:
    """The training interval 20-35% with one figure (30%). On 500 held-out labels the same consensus contradicts 33%:
    within it. At 37%, above it by a chance difference (binomial tail P = 0.18): the interval stands, and the line says
    so. At 45% it is clearly more (P < 1e-6): the high end becomes the held-out one's and the figure goes."""
    train = NoiseEstimate(0.30, 0.20, 0.35, 1000, 3, voter_disagreement=0.05, corrected=0.26)
    within = with_held_out(train, NoiseEstimate(0.33, 0.26, 0.40, 500, 3))
    assert noise_words(within.as_dict()).endswith(
        "On the 500 held-out labels, which no model fitted, the same consensus contradicts 33.0% (interval 26.0-40.0%): "
        "within what the training labels allow, so no sign that the voters fitted wrong training labels"
    )
    near = NoiseEstimate(0.37, 0.30, 0.42, 500, 3, voter_disagreement=0.06, corrected=0.33)
    kept = with_held_out(train, near)
    assert (kept.low, kept.high, kept.training_high, kept.wrong_labels) == (0.20, 0.35, None, 0.30)
    d = kept.as_dict()
    assert d["held_out"] == {
        "rate": 0.37,
        "low": 0.30,
        "high": 0.42,
        "images": 500,
        "voters": 3,
        "voter_disagreement": 0.06,
        "corrected": 0.33,
    }
    words = noise_words(d)
    assert words.startswith("the consensus of 3 models contradicts 30.0% of the 1,000 training labels (interval 20.0-35.0%")
    assert words.endswith(
        "On the 500 held-out labels, which no model fitted, the same consensus contradicts 37.0% (interval 30.0-42.0%), "
        "above the training labels' interval, but by no more than chance on 500 held-out labels"
    )

    above = NoiseEstimate(0.45, 0.33, 0.52, 500, 3, voter_disagreement=0.06, corrected=0.41)
    raised = with_held_out(train, above)
    assert (raised.low, raised.high, raised.training_high, raised.rate) == (0.20, 0.52, 0.35, 0.30)
    assert raised.wrong_labels is None and raised.point_withheld == HELD_OUT_ABOVE
    words = noise_words(raised.as_dict())
    assert words.startswith("the share of wrong labels is in 20.0-52.0%, its low end allowing for the voters' own errors; no single figure")
    assert "above the 35.0% the training labels' interval ended at" in words
    assert with_held_out(train, above) == raised  # no draws of its own: the same inputs, the same reading

    # where fitting the contradicted labels costs nothing, the held-out reading stands in for the caveat
    free = NoiseEstimate(0.12, 0.0, 0.15, 1000, 9, "fitting them costs nothing", 0.08, 0.04, free_fit=True)
    for held in (NoiseEstimate(0.13, 0.05, 0.2, 2000, 9), NoiseEstimate(0.36, 0.3, 0.4, 2000, 9)):
        words = noise_words(with_held_out(free, held).as_dict())
        assert "unless every model" not in words and "On the 2,000 held-out labels" in words
    assert with_held_out(free, NoiseEstimate(0.36, 0.3, 0.4, 2000, 9)).high == 0.4


def test_clearly_above_is_the_exact_one_sided_binomial_test() -> None:
    """P(X >= k | n, share) < 2.5%, checked against scipy's binomial tail; exact where Wilson's low end is not (one
    contradicted label of one is no evidence against a share of 15%)."""
    from scipy.stats import binom

    for k, n, share in [(1, 1, 0.15), (1, 3, 0.15), (3, 5, 0.1), (45, 100, 0.3), (60, 500, 0.09), (600, 2000, 0.28)]:
        assert clearly_above(k, n, share) == (binom.sf(k - 1, n, share) < 0.025), (k, n, share)
    assert not clearly_above(1, 1, 0.15) and clearly_above(1, 5, 0.0) and not clearly_above(0, 5, 0.0)
    assert not clearly_above(5, 5, 1.0)


def test_clearly_below_is_the_other_tail() -> None:
    """P(X <= k | n, share) < 2.5%, checked against scipy's binomial cdf: what weak_out_of_sample reads."""
    from scipy.stats import binom

    for k, n, share in [(0, 1, 0.5), (0, 12, 0.47), (2, 25, 0.28), (65, 300, 0.28), (90, 300, 0.28), (100, 300, 0.467)]:
        assert clearly_below(k, n, share) == (binom.cdf(k, n, share) < 0.025), (k, n, share)
    assert clearly_below(0, 5, 1.0) and not clearly_below(5, 5, 0.9) and not clearly_below(0, 5, 0.0)


def test_a_share_above_the_training_interval_by_chance_keeps_the_caveat() -> None:
    """2 of 5 held-out labels contradicted against a training interval ending at 15%: above it, yet not clearly (the
    exact test: P = 0.17), so the interval stands, the line says so, and the caveat on memorizers stays."""
    free = NoiseEstimate(0.10, 0.05, 0.15, 1000, 3, "fitting them costs nothing", 0.04, 0.07, free_fit=True)
    got = with_held_out(free, NoiseEstimate(0.4, 0.0, 0.8, 5, 3))
    assert got.high == 0.15 and got.training_high is None
    words = noise_words(got.as_dict())
    assert "unless every model, the voters among them, fitted the same wrong labels" in words
    assert words.endswith(
        "contradicts 40.0% (interval 0.0-80.0%), above the training labels' interval, but by no more than chance on 5 held-out labels"
    )
    one = noise_words(with_held_out(free, NoiseEstimate(0.0, 0.0, 0.0, 1, 3)).as_dict())
    assert "On the 1 held-out label, which no model fitted" in one


def test_a_consensus_of_memorizers_is_caught_by_the_held_out_labels() -> None:
    """Every voter fitted the training labels, the 3 wrong ones of 10 among them: their consensus contradicts none,
    and the training interval ends at 0. On held-out images they predict the true class, and the consensus
    contradicts the 3 wrong held-out labels of 10: the interval then reaches the 30% the labels hold."""
    truth = [0, 0, 1, 1, 2, 2, 0, 1, 2, 0]
    labels = [0, 1, 1, 2, 2, 0, 0, 1, 2, 0]  # 3 wrong
    memorized = [one_hot(labels, labels) for _ in range(3)]
    train = estimate_noise(memorized)
    assert train.high == 0.0
    held = estimate_noise([one_hot(truth, labels) for _ in range(3)])
    assert held.rate == pytest.approx(0.3)
    both = with_held_out(train, held)
    assert both.low <= 0.3 <= both.high and both.training_high == 0.0


def test_fit_on_labels_is_the_memorization_estimate() -> None:
    wrong = np.array([False, True, True, False])
    memorizer = one_hot([0, 1, 2, 0], [0, 1, 2, 0])
    resister = one_hot([0, 2, 2, 0], [0, 1, 2, 0])
    assert fit_on(memorizer, wrong) == 1.0 and fit_on(resister, wrong) == 0.5
    assert fit_on(memorizer, np.zeros(4, dtype=bool)) is None


def test_predictions_on_other_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="different images or labels"):
        contradicted([one_hot([0, 1], [0, 1]), one_hot([0, 1], [1, 1])])
    with pytest.raises(ValueError, match="without their given labels"):
        contradicted([Predictions(np.zeros((2, 1), dtype=int), np.ones((2, 1), dtype=np.float32), 3)])


def test_consensus_in_blocks_equals_the_dense_sum(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of images (what keeps a 1.3M-image training set in memory) give the dense answer."""
    import suscli.judge.noise

    rng = np.random.default_rng(0)
    preds = []
    for _ in range(4):
        probs = rng.dirichlet(np.ones(7), size=50).astype(np.float32)
        classes = np.argsort(-probs, axis=1)[:, :3]
        preds.append(Predictions(classes, np.take_along_axis(probs, classes, 1), 7, np.zeros(50, dtype=np.int64)))
    dense = sum(votes(p) for p in preds)
    monkeypatch.setattr(suscli.judge.noise, "CHUNK", 8)
    cls, share = consensus(preds)
    assert cls.tolist() == dense.argmax(-1).tolist()
    assert share == pytest.approx(dense.max(-1) / dense.sum(-1), rel=1e-5)


def test_noise_matrix_rows_are_the_consensus_and_sum_to_one() -> None:
    """The per-class picture on ten images counted by hand: rows the consensus class, columns the given label."""
    agreed = [0, 0, 0, 0, 1, 1, 1, 2, 2, 0, 2]
    given = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1, 3]  # class 3 is given once and never the consensus
    m = noise_matrix(np.array(agreed), np.array(given), 4)
    expect = np.array(
        [
            [2, 2, 1, 0],  # consensus 0: images 0, 1 (given 0), 2, 9 (given 1), 3 (given 2)
            [1, 2, 0, 0],  # consensus 1: image 6 given 0, images 4, 5 given 1
            [0, 0, 2, 1],  # consensus 2: images 7, 8 given 2, image 10 given 3
            [0, 0, 0, 0],  # never the consensus
        ]
    )
    assert m.counts().tolist() == expect.tolist() and m.consensus_totals().tolist() == [5, 3, 3, 0]
    p = m.p_label_given_consensus()
    assert p[:3] == pytest.approx(np.array([[0.4, 0.4, 0.2, 0], [1 / 3, 2 / 3, 0, 0], [0, 0, 2 / 3, 1 / 3]]))
    assert np.isnan(p[3]).all()  # P(given | a class no image has) is undefined, not 0
    # off the diagonal, most images first, then the larger share, then the lower ids
    assert m.top_confusions() == [(0, 1, 2, 0.4), (1, 0, 1, pytest.approx(1 / 3)), (2, 3, 1, pytest.approx(1 / 3)), (0, 2, 1, 0.2)]
    assert m.top_confusions(most=1) == [(0, 1, 2, 0.4)]


def test_noise_matrix_in_a_report_names_its_classes_and_stays_small_past_100_classes() -> None:
    m = noise_matrix(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
    doc = m.as_dict(["cat", "dog"])
    assert doc["rows"] == "consensus class" and doc["columns"] == "given label" and doc["full"]
    assert doc["classes"] == ["cat", "dog"] and doc["counts"] == [[1, 1], [0, 2]]
    assert doc["p_label_given_consensus"] == [[0.5, 0.5], [0.0, 1.0]] and doc["consensus_totals"] == [2, 2]
    assert doc["top_confusions"] == [
        {"consensus": 0, "consensus_class": "cat", "given": 1, "given_class": "dog", "images": 1, "of": 2, "share": 0.5}
    ]
    assert m.as_dict(None)["classes"] == ["", ""]  # names unknown: empty, the ids still there
    rng = np.random.default_rng(0)
    big = noise_matrix(rng.integers(0, 150, 3000), rng.integers(0, 150, 3000), 150)
    doc = big.as_dict(most=5)
    assert not doc["full"] and "counts" not in doc and "p_label_given_consensus" not in doc and "150 classes" in doc["note"]
    assert len(doc["top_confusions"]) == 5


def test_a_json_report_writes_a_100_class_matrix_and_1000_class_names_a_line_per_row() -> None:
    """One value a line made the 100-class matrix 20,000 lines, two thirds of a 316 KB report, and each model's
    1,000 class names 1,000 lines: a list of plain values is one line, the document the same."""
    import json

    from suscli.results import Result
    from suscli.views.formats import to_json

    rng = np.random.default_rng(0)
    run = {"label_noise": {"noise_matrix": noise_matrix(rng.integers(0, 100, 3000), rng.integers(0, 100, 3000), 100).as_dict()}}
    row = Result("m", "m.pt", details={"classes": [f"class_{i:04d}" for i in range(1000)], "r": [0.5, float("nan")]})
    text = to_json([row], run)
    doc = json.loads(text)
    assert doc["label_noise"] == json.loads(json.dumps(run))["label_noise"] and doc["results"][0]["details"]["r"] == [0.5, None]
    assert len(text.splitlines()) < 500 and doc["results"][0]["details"]["classes"][-1] == "class_0999"


def test_noise_matrix_refuses_ids_beyond_its_classes() -> None:
    with pytest.raises(ValueError, match="outside 0-2"):
        noise_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_chance_agreement_is_cohens_kappa_from_the_confusion_table() -> None:
    agreed = np.array([0, 0, 1, 1, 2, 2, 0, 1, 2, 0, 0, 0])
    labels = np.array([0, 1, 1, 1, 2, 0, 0, 2, 2, 0, 1, 0])
    table = np.zeros((3, 3))
    for a, g in zip(agreed, labels):
        table[a, g] += 1
    table /= table.sum()
    observed, chance = np.trace(table), float(table.sum(1) @ table.sum(0))
    kappa, expected = chance_agreement(agreed, labels)
    assert expected == pytest.approx(chance) and kappa == pytest.approx((observed - chance) / (1 - chance))


def test_a_consensus_at_chance_is_no_evidence_of_wrong_labels() -> None:
    """Voters collapsed onto one class contradict every label of the other classes, whatever the noise."""
    labels = np.arange(300) % 3
    assert weak_consensus(np.zeros(300, dtype=np.int64), labels).startswith(
        "the consensus names the given label of 33.3% of the training images"
    )
    assert "Cohen's kappa 0.00 < 0.2" in weak_consensus(np.zeros(300, dtype=np.int64), labels)
    learned = labels.copy()
    learned[::4] = (learned[::4] + 1) % 3  # 25% contradicted: kappa 0.62
    assert weak_consensus(learned, labels) is None and weak_consensus(labels, labels) is None


def test_the_interval_is_the_same_whatever_order_the_voters_come_in() -> None:
    """The bootstrap draws voters by position, so a pool listed in another order (a manifest, files renamed so they
    sort otherwise) drew other voters for the same seed: the demo pool's interval read 24.1-37.5% from its folder and
    24.2-37.6% from a manifest listing it backwards, its held-out high end 16.4% and 11.6%."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 300)

    def voter(n: int, given: np.ndarray | None) -> Predictions:
        p = rng.dirichlet(np.ones(10) * 0.3, n).astype(np.float32)
        top = np.argsort(-p, axis=1)[:, :3]
        return Predictions(top, np.take_along_axis(p, top, 1), 10, given)

    voters = [voter(300, labels) for _ in range(5)]
    unlabeled = [voter(80, None) for _ in range(5)]
    est = estimate_noise(voters, unlabeled=unlabeled)
    for order in ([4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        forget_estimates()
        assert estimate_noise([voters[i] for i in order], unlabeled=[unlabeled[i] for i in order]) == est


def test_suspects_weigh_each_belief_against_what_the_voters_give_that_class_on_average() -> None:
    """Voters believe some classes' labels less, right or wrong (cats against trucks): ranked by the raw belief, a
    hard class's right labels crowded the top of the list. Each belief is read over its class's mean (confident
    learning's per-class threshold), the consensus's share over its class's; computed here by hand."""
    from suscli.judge.noise import NoiseEstimate
    from suscli.judge.rules import LabelCheck

    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    consensus = np.array([0, 0, 2, 1, 1, 2, 2, 2])  # contradicts images 2 (labelled 0) and 5 (labelled 1)
    label_share = np.array([0.3, 0.4, 0.2, 0.9, 0.9, 0.3, 0.8, 0.8])
    share = np.array([0.5, 0.5, 0.6, 0.9, 0.9, 0.6, 0.8, 0.8])
    check = LabelCheck(NoiseEstimate(0.25, 0.1, 0.4, 8, 3), consensus, share, labels, 3, label_share)
    mean = {0: (0.3 + 0.4 + 0.2) / 3, 1: (0.9 + 0.9 + 0.3) / 3, 2: 0.8}
    assert np.allclose(check.class_belief(), [mean[0], mean[1], mean[2]])
    by_hand = {i: (label_share[i] / mean[labels[i]]) / (share[i] / mean[consensus[i]]) for i in (2, 5)}
    assert by_hand[5] < by_hand[2] and label_share[2] / share[2] < label_share[5] / share[5]  # the raw ratio ranks 2 first
    assert check.suspects().tolist() == [5, 2]


def seeded_pool(classes: int = 5, voters: int = 6, n: int = 300, n_unl: int = 90) -> tuple[list[Predictions], list[Predictions]]:
    """Voters that mostly name each image's true class, on 300 training images with 30% of their labels redrawn and
    90 unlabeled ones; probabilities rounded through float16 as a results file keeps them (so that sums tie), and the
    first voter listed twice (a repeated voter sums its votes twice)."""
    rng = np.random.default_rng(7)
    truth, seen = rng.integers(0, classes, n), rng.integers(0, classes, n_unl)
    labels = np.where(rng.random(n) < 0.3, rng.integers(0, classes, n), truth)

    def voter(rows: int, given: np.ndarray | None, k: int) -> Predictions:
        p = rng.dirichlet(np.ones(classes) * 0.5, rows)
        p[np.arange(rows), truth if given is not None else seen] += 0.6 + rng.random(rows)
        p = (p / p.sum(1, keepdims=True)).astype(np.float16).astype(np.float32)
        top = np.argsort(-p, axis=1, kind="stable")[:, :k]
        return Predictions(top, np.take_along_axis(p, top, 1), classes, given)

    train = [voter(n, labels, 3) for _ in range(voters)]
    unlabeled = [voter(n_unl, None, 4) for _ in range(voters)]
    return train + train[:1], unlabeled + unlabeled[:1]


@pytest.mark.parametrize(
    ("sampled", "chunk", "with_unlabeled", "expected"),
    [
        (
            200,
            64,
            True,
            ("0x1.c962fc962fc96p-3", "0x1.f2a3852d22e0fp-4", "0x1.0f5c28f5c28f6p-2", "0x1.ee1ee1ee1ee20p-6", "0x1.97ec8f2018223p-3"),
        ),
        (5000, 4096, False, ("0x1.c962fc962fc96p-3", "0x1.62d0e56041894p-3", "0x1.17fa89e60f04dp-2", None, None)),
        (
            5000,
            4096,
            True,
            ("0x1.c962fc962fc96p-3", "0x1.1b42727a28fd7p-3", "0x1.17fa89e60f04dp-2", "0x1.ee1ee1ee1ee20p-6", "0x1.97ec8f2018223p-3"),
        ),
    ],
)
def test_the_bootstrap_gives_the_same_interval_to_the_last_bit(
    monkeypatch: pytest.MonkeyPatch, sampled: int, chunk: int, with_unlabeled: bool, expected: tuple
) -> None:
    """The interval is quoted to the digit (docs/validation.md): a faster tally must sum each voter's votes in the
    same order and draw the same images, so these figures, made by the per-draw tally before it was laid out once
    for all draws, are kept bit for bit. Drawn on a sample of the images (200 of 300) and in blocks of 64 images, then
    on all of them in one block, with and without the unlabeled images' floor."""
    import suscli.judge.noise

    monkeypatch.setattr(suscli.judge.noise, "BOOTSTRAP_IMAGES", sampled)
    monkeypatch.setattr(suscli.judge.noise, "CHUNK", chunk)
    train, unlabeled = seeded_pool()
    est = estimate_noise(train, unlabeled=unlabeled if with_unlabeled else None)
    fields = (est.rate, est.low, est.high, est.voter_disagreement, est.corrected)
    assert tuple(None if v is None else v.hex() for v in fields) == expected
    assert (est.images, est.voters) == (300, 7)


def test_the_same_voters_and_labels_draw_their_bootstrap_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The adaptive sample makes its decisions again at every stage, each reading the held-out labels with what are
    usually the same voters, and rank's report reads the last stage's training labels again: the same inputs, in any
    order, give the estimate drawn before. Another label, probability, voter or number of resamples draws anew, the
    same as a first draw would."""
    import suscli.judge.noise

    drawn: list[int] = []

    class Counted(suscli.judge.noise._Ballots):
        @classmethod
        def of(cls, preds, rows=None):  # type: ignore[no-untyped-def]
            drawn.append(len(preds))
            return super().of(preds, rows)

    monkeypatch.setattr(suscli.judge.noise, "_Ballots", Counted)
    train, unlabeled = seeded_pool()
    est = estimate_noise(train, unlabeled=unlabeled)
    assert len(drawn) == 2  # the training images' ballots and the unlabeled images'
    assert estimate_noise(train[::-1], unlabeled=unlabeled[::-1]) is est and len(drawn) == 2

    relabeled = [p.with_labels(np.where(np.arange(300) == 0, (p.labels + 1) % 5, p.labels)) for p in train]
    probs = train[1].probs.copy()
    probs[0, 0] = np.nextafter(probs[0, 0], np.float32(1))  # the last bit of one probability
    nudged = [*train[:1], dataclasses.replace(train[1], probs=probs), *train[2:]]
    others = [
        lambda: estimate_noise(relabeled, unlabeled=unlabeled),
        lambda: estimate_noise(nudged, unlabeled=unlabeled),
        lambda: estimate_noise(train[:-1], unlabeled=unlabeled[:-1]),
        lambda: estimate_noise(train, unlabeled=unlabeled, resamples=50),
        lambda: estimate_noise(train),
    ]
    for read in others:
        before = len(drawn)
        first = read()
        assert len(drawn) > before  # drawn anew
        forget_estimates()
        assert read() == first  # as a first draw would be

    forget_estimates()
    est = estimate_noise(train, unlabeled=unlabeled)
    for n in range(suscli.judge.noise.ESTIMATES_KEPT - 1):
        estimate_noise(train, unlabeled=unlabeled, resamples=10 + n)
    before = len(drawn)
    assert estimate_noise(train, unlabeled=unlabeled) is est and len(drawn) == before  # kept beside 7 others
    estimate_noise(train, unlabeled=unlabeled, resamples=99)  # one more: the oldest is dropped
    before = len(drawn)
    assert estimate_noise(train, unlabeled=unlabeled) == est and len(drawn) > before
