"""Agreement with a pool's consensus, and the selection rules built on it (suscli.measure.predictions, suscli.judge.rules)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from suscli.measure.predictions import Predictions, agreement_with_consensus, difference_is_clear, predict
from suscli.judge.regions import Thresholds, thresholds
from suscli.results import Result
from suscli.judge.rules import RULES, _voters, choose, pareto_layers


def preds_from(top1: list[int], num_classes: int = 3, confidence: float = 0.8) -> Predictions:
    """Top-2 predictions whose first class is `top1[i]` with probability `confidence`, the next class the rest."""
    classes = np.array([[c, (c + 1) % num_classes] for c in top1])
    probs = np.tile([confidence, 1 - confidence], (len(top1), 1)).astype(np.float32)
    return Predictions(classes, probs, num_classes)


def row(name: str, acc: float, zeta: float, top1: list[int] | None = None, **kw) -> Result:
    details = {"predictions": preds_from(top1).encode()} if top1 is not None else {}
    return Result(name=name, path=name, train_acc=acc, susceptibility=zeta, details=details, **kw)


def test_predictions_round_trip_through_json_form():
    p = Predictions(np.array([[2, 0], [1, 2]]), np.array([[0.7, 0.2], [0.5, 0.25]], dtype=np.float32), 3)
    q = Predictions.decode(p.encode())
    assert (q.classes == p.classes).all() and np.allclose(q.probs, p.probs, atol=1e-3) and q.num_classes == 3


def test_predictions_keep_class_ids_past_int16():
    p = Predictions(np.array([[39_999, 7]]), np.array([[0.6, 0.1]], dtype=np.float32), 40_000)
    assert (Predictions.decode(p.encode()).classes == p.classes).all()
    damaged = {**p.encode(), "classes_dtype": "<f8"}
    with pytest.raises(ValueError):
        Predictions.decode(damaged)


def test_predict_matches_softmax_topk_and_restores_modes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.Dropout(0.5))
    model.train()
    x = torch.randn(300, 3, 2, 2)
    p = predict(model, x, k=3)
    assert all(m.training for m in model.modules())
    model.eval()
    expected = model(x).softmax(-1).topk(3, dim=-1)
    assert (p.classes == expected.indices.numpy()).all()
    assert np.allclose(p.probs, expected.values.detach().numpy(), atol=1e-6)


def test_agreement_leaves_each_voter_out_of_its_own_consensus():
    # 4 images, 3 classes. Hand count, consensus = class with the highest summed top-2 probability of the others.
    a, b, c = [0, 1, 2, 0], [0, 1, 1, 1], [0, 2, 2, 0]
    preds = [preds_from(a), preds_from(b), preds_from(c)]
    got = agreement_with_consensus(preds, [True, True, True])

    def consensus(others):
        votes = np.zeros((4, 3))
        for top1 in others:
            for i, k in enumerate(top1):
                votes[i, k] += 0.8
                votes[i, (k + 1) % 3] += 0.2
        return votes.argmax(1)

    expected = [float((np.array(m) == consensus([o for o in (a, b, c) if o is not m])).mean()) for m in (a, b, c)]
    assert got == pytest.approx(expected)


def test_agreement_with_a_subset_of_voters():
    truth = [0, 1, 2, 0, 1, 2]
    good1, good2, bad = truth, truth, [1, 2, 0, 1, 2, 0]
    got = agreement_with_consensus([preds_from(good1), preds_from(good2), preds_from(bad)], [True, True, False])
    assert got == [1.0, 1.0, 0.0]


def test_agreement_refuses_predictions_on_different_images():
    with pytest.raises(ValueError):
        agreement_with_consensus([preds_from([0, 1]), preds_from([0, 1, 2])], [True, True])


def test_difference_is_clear_scales_with_the_number_of_images():
    assert not difference_is_clear(0.70, 0.68, 1000)
    assert difference_is_clear(0.70, 0.60, 1000)
    assert difference_is_clear(0.70, 0.68, 100_000)


def test_pareto_layers():
    rows = [row("a", 0.9, 0.1), row("b", 0.8, 0.05), row("c", 0.7, 0.2), row("d", 0.95, 0.5)]
    layer = pareto_layers(rows)
    assert [layer[id(r)] for r in rows] == [0, 0, 1, 0]


T = Thresholds(susceptibility=0.5, train_acc=0.5, source="fixed")


def pool() -> list[Result]:
    truth = [0, 1, 2] * 200
    wrong = [1, 2, 0] * 200
    half = truth[:300] + wrong[300:]
    mostly = truth[:540] + wrong[540:]
    return [
        row("r1-a", 0.80, 0.10, truth),  # region 1: the three voters, 90% agreement each (leave-one-out)
        row("r1-b", 0.70, 0.20, truth),
        row("r1-c", 0.60, 0.30, mostly),
        row("mem", 0.99, 0.90, half),  # region 2: fits its labels, memorizes
        row("weak", 0.30, 0.05, wrong),  # region 3
        Result(name="broken", path="broken", status="error", error="unreadable"),
    ]


def test_agreement_rule_orders_by_agreement_with_region_one():
    choice = choose(pool(), "agreement", T)
    names = [r.name for r in choice.ranked]
    assert names[:4] == ["r1-a", "r1-b", "r1-c", "mem"]  # the first three tied at 90%: the better fit first
    assert names[-2:] == ["weak", "broken"]
    assert choice.pick.name == "r1-a" and "consensus of the 3 region-1 models (its own vote left out) on 90.0%" in choice.why
    assert {r.name: r.region for r in choice.ranked}["mem"] == 2  # regions are still set


def test_the_closing_line_says_whose_consensus_the_pick_was_compared_with() -> None:
    """A voter is compared with the other voters' consensus, a model that did not vote with all of theirs: the line
    said "the consensus of the 4 region-1 models" of a voter compared with 3 of them."""
    truth = [0, 1, 2] * 200
    voters = [
        row(f"r1-{i}", 0.6 + 0.05 * i, 0.1, [(t + 1) % 3 if 60 * i <= k < 60 * (i + 1) else t for k, t in enumerate(truth)])
        for i in range(4)
    ]
    choice = choose([*voters, row("not-a-voter", 0.45, 0.05, truth)], "agreement", T)
    assert choice.voters == [r.name for r in voters] and choice.pick.name == "not-a-voter"
    assert choice.why.startswith("ship not-a-voter: it predicts the consensus of the 4 region-1 models on 100.0% of the 600")
    choice = choose(voters, "agreement", T)
    assert "the consensus of the 4 region-1 models (its own vote left out) on 90.0%" in choice.why


def test_with_two_voters_the_closing_line_names_the_other_voter() -> None:
    """Two voters: each is compared with the other's predictions, which the line called "the consensus of all 2 models
    (its own vote left out)"."""
    truth = [0, 1, 2] * 200
    two = [row("a", 0.8, 0.1, truth), row("b", 0.7, 0.1, [(t + 1) % 3 if k < 60 else t for k, t in enumerate(truth)])]
    choice = choose(two, "agreement", T)
    assert choice.voters == ["a", "b"]
    assert choice.why.startswith(f"ship {choice.pick.name}: it predicts what the other voter, ")
    assert f"the other voter, {'b' if choice.pick.name == 'a' else 'a'}, predicts on 90.0% of the 600" in choice.why


def test_agreement_rule_says_when_it_is_not_confident():
    rows = pool()
    rows[1].train_acc = 0.8  # r1-a and r1-b now tie on both agreement and training accuracy
    rows[1].train_n = rows[0].train_n = 100
    choice = choose(rows, "agreement", T)
    assert not choice.confident and "no confident choice" in choice.why


def test_agreement_rule_falls_back_to_regions_without_predictions():
    rows = [row("a", 0.9, 0.1), row("b", 0.6, 0.3), row("c", 0.95, 0.9)]
    choice = choose(rows, "agreement", T)
    assert choice.pick.name == "a" and "regions rule" in choice.why


@pytest.mark.parametrize("rule,first", [("regions", "r1-a"), ("train-acc", "mem"), ("susceptibility", "weak"), ("pareto", "mem")])
def test_other_rules(rule, first):
    choice = choose(pool(), rule, T)
    assert choice.ranked[0].name == first and choice.ranked[-1].name == "broken"


def test_every_rule_is_known_and_unknown_rules_are_refused():
    for rule in RULES:
        choose(pool(), rule, T)
    with pytest.raises(ValueError):
        choose(pool(), "vibes", T)


def test_without_training_accuracy_every_model_votes_and_susceptibility_breaks_ties():
    rows = pool()
    for r in rows:
        r.train_acc = None
    choice = choose(rows, "agreement", None)
    assert "all 5 models" in choice.why and choice.ranked[-1].name == "broken"
    lead = [r for r in choice.ranked if r.ok][:2]
    assert lead[0].agreement >= lead[1].agreement or lead[0].susceptibility <= lead[1].susceptibility


def test_no_thresholds_and_no_predictions_means_no_choice():
    rows = [row("a", 0.9, 0.1), row("b", 0.6, 0.3)]
    choice = choose(rows, "agreement", None)
    assert choice.pick is None and not choice.confident and "regions rule" in choice.why


def guessing_pool() -> list[Result]:
    """Region 1 holds only `a`; `m` memorizes; `g` guesses (10% at 10 classes)."""
    pool = [row("a", 0.9, 0.1), row("m", 0.95, 0.5), row("u1", 0.6, 0.12), row("u2", 0.55, 0.15), row("g", 0.1, 0.02)]
    for r in pool:
        r.details["num_classes"] = 10
    return pool


def test_a_model_at_chance_does_not_judge_the_training_labels():
    # region 1 holds only `a`, so the label check falls back to every model outside region 2; `g` says nothing of
    # the labels, so it is left out: the other three still vote
    pool = guessing_pool()
    chosen, who = _voters(pool, thresholds(pool), "resisting")
    assert chosen == [True, False, True, True, False] and who == "the 3 non-region-2 models"
    # with only one other model above chance left, the two that know something vote, not the guesser
    chosen, who = _voters([pool[0], pool[1], pool[2], pool[4]], thresholds(pool), "resisting")
    assert chosen == [True, False, True, False] and who == "the 2 non-region-2 models"


def test_when_the_pool_votes_for_the_choice_a_model_at_chance_does_not():
    # region 1 holds only `a`, too few voters for the ship choice, so the pool votes, less the guesser `g`: an
    # untrained model voting had the highest agreement on a 2-class pool, a near-tie of the pick
    pool = guessing_pool()
    chosen, who = _voters(pool, thresholds(pool), "region1")
    assert chosen == [True, True, True, True, False] and who == "the 4 models above chance"
    # fewer than three above chance: every model votes, as without training accuracy
    chosen, who = _voters([pool[0], pool[1], pool[4]], thresholds(pool), "region1")
    assert chosen == [True, True, True] and who == "all 3 models"


def test_a_pick_whose_labels_point_to_another_normalization_is_not_confident() -> None:
    """Where every model's labels point to another normalization than measured, the pool has nothing better to count:
    the choice names them, and shipping one is never a confident choice."""
    from suscli.judge.rules import Choice, _normalization_said
    from suscli.measure.normalization import NO_NORMALIZATION

    off = row("off", 0.9, 0.1, notes=[f"{NO_NORMALIZATION}; with ImageNet's mean and std it predicts ..."])
    also = row("also", 0.8, 0.2, notes=[f"{NO_NORMALIZATION}; with CIFAR-10's mean and std it predicts ..."])
    said = _normalization_said(Choice([off, also], off, "ship off", True), [])
    assert not said.confident and said.why.startswith("ship off; the labels of 2 of the 2 models (off, also) point to another")
    assert said.why.endswith("and the pool's numbers read them as measured: rank again as their notes say")
    plain = row("plain", 0.8, 0.2, notes=[NO_NORMALIZATION])
    assert _normalization_said(Choice([plain], plain, "ship plain", True), []).why == "ship plain"


def test_models_fed_other_inputs_than_trained_are_said_ranked_where_they_are() -> None:
    """The closing line said such models "are ranked last", yet a model that could not be scored comes after them:
    it says where they are, after the models counted."""
    from suscli.measure.normalization import NO_NORMALIZATION

    said = f"{NO_NORMALIZATION}; with ImageNet's mean and std it predicts 171 of 200 ..."
    good = [row(f"m{i}", acc, zeta, [0] * 8 + [1] * 8) for i, (acc, zeta) in enumerate(((0.9, 0.1), (0.8, 0.12), (0.7, 0.3)))]
    failed = Result(name="broken", path="broken", status="error", error="could not be loaded")
    pool = [*good, row("off", 0.26, 0.05, [1] * 16, notes=[said]), failed]
    choice = choose(pool, "agreement", thresholds(pool))
    assert [r.name for r in choice.ranked][-2:] == ["off", "broken"]
    assert "ranked last" not in choice.why and "they are ranked after the models counted, left out of" in choice.why


def test_models_fed_other_inputs_than_trained_are_left_out_of_the_pool_and_ranked_last() -> None:
    """A model whose labels point to another normalization than measured read 26% of its training labels (the public
    ResNet-20 on [0, 1] pixels) and still set the pool's mean training accuracy, voted in the consensus the others
    were ordered by, and could be shipped. Such rows now keep their numbers and are left out of the thresholds, the
    voters and the choice, ranked after the models counted; the closing line names them."""
    from suscli.judge.regions import counted, misfed
    from suscli.measure.normalization import NO_NORMALIZATION

    said = f"{NO_NORMALIZATION}; with ImageNet's mean and std it predicts 171 of 200 ..."
    good = [row(f"m{i}", acc, zeta, [0] * 8 + [1] * 8) for i, (acc, zeta) in enumerate(((0.9, 0.1), (0.8, 0.12), (0.7, 0.3)))]
    off = row("off", 0.26, 0.05, [1] * 16, notes=[said])
    pool = [*good, off]
    assert misfed(pool) == [off] and counted(pool) == good
    t = thresholds(pool)
    assert t is not None and t.train_acc == pytest.approx(0.8)  # (0.9 + 0.8 + 0.7) / 3: not pulled down to 0.665 by off
    chosen, _ = _voters(pool, t, "all")
    assert chosen == [True, True, True, False]
    choice = choose(pool, "agreement", t)
    assert [r.name for r in choice.ranked][-1] == "off" and choice.pick is not None and choice.pick.name != "off"
    assert off.agreement is not None and off.verdict == "unclear"  # its own numbers and verdict stay
    assert "off" not in choice.voters and "(off)" in choice.why and "ranked after the models counted, left out of" in choice.why
    # every model fed other inputs: none is left out, and the pick among them is not confident
    alone = [row(n, acc, 0.1, [0] * 16, notes=[said]) for n, acc in (("a", 0.3), ("b", 0.2))]
    assert misfed(alone) == [] and len(counted(alone)) == 2
    assert choose(alone, "agreement", thresholds(alone)).confident is False


def test_the_closing_line_counts_the_models_within_the_noise_in_words_that_agree() -> None:
    """The closing line said "1 other model(s) are within the noise of the best agreement" in every demo and CI log:
    one model is, two models are."""
    truth = [0, 1, 2] * 200

    def off(lo: int, hi: int) -> list[int]:  # the truth but for images lo to hi, each read as the next class
        return [(t + 1) % 3 if lo <= k < hi else t for k, t in enumerate(truth)]

    apart = [row(n, None, 0.3, off(120 * i, 120 * (i + 1))) for i, n in enumerate("cde")]  # 80%: clearly below
    one = choose([row("a", None, 0.1, truth), row("b", None, 0.2, truth), *apart], "agreement", None)
    assert "no confident choice: 1 other model is within the noise of the best agreement (100.0%): b;" in one.why
    two = choose([row("a", None, 0.1, truth), row("b", None, 0.2, truth), row("f", None, 0.25, truth), *apart], "agreement", None)
    assert "no confident choice: 2 other models are within the noise of the best agreement (100.0%): b, f;" in two.why
