"""Regions, thresholds and ordering on a pool with known values."""

from __future__ import annotations

import pytest

from suscli.errors import UsageError
from suscli.judge.regions import Thresholds, rank, recommendation, region, thresholds
from suscli.results import Result


def row(name: str, acc: float | None, zeta: float | None, status: str = "ok") -> Result:
    return Result(name=name, path=name, status=status, train_acc=acc, susceptibility=zeta, error=None if status == "ok" else "boom")


POOL = [row("a", 0.9, 0.1), row("b", 0.95, 0.5), row("c", 0.5, 0.05), row("d", 0.6, 0.6), row("e", 0.8, 0.2)]
# mean acc 0.75, mean zeta 0.29: a, e -> 1; b -> 2; c -> 3; d -> 4


def test_mean_thresholds_and_regions() -> None:
    t = thresholds(POOL)
    assert t.train_acc == pytest.approx(0.75) and t.susceptibility == pytest.approx(0.29) and t.source == "pool mean"
    assert {r.name: region(r.train_acc, r.susceptibility, t) for r in POOL} == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 1}


def test_median_and_fixed_thresholds() -> None:
    t = thresholds(POOL, "median")
    assert (t.train_acc, t.susceptibility) == (0.8, 0.2)
    t = thresholds(POOL, "mean", susceptibility=0.15)
    assert t.susceptibility == 0.15 and t.train_acc == pytest.approx(0.75) and "fixed susceptibility" in t.source
    t = thresholds([row("x", 0.9, 0.1)], "mean", 0.2, 0.5)
    assert t == Thresholds(0.2, 0.5, "fixed")
    with pytest.raises(UsageError):
        thresholds(POOL, "mode")


def test_pool_of_one_has_no_regions_without_fixed_thresholds() -> None:
    assert thresholds([row("x", 0.9, 0.1)]) is None
    assert thresholds([row("x", None, 0.1), row("y", None, 0.2)]) is None  # no training accuracy


def test_ordering_region_then_accuracy_then_susceptibility_failures_last() -> None:
    pool = [*POOL, row("f", None, None, status="error"), row("g", 0.8, 0.15)]
    t = thresholds(pool)
    ranked = rank(pool, t)
    assert [r.name for r in ranked] == ["a", "g", "e", "b", "c", "d", "f"]
    assert [r.region for r in ranked] == [1, 1, 1, 2, 3, 4, None]
    assert ranked[3].verdict == "likely memorized noise" and ranked[0].verdict == "fits, resists noise"


def test_without_regions_lowest_susceptibility_first() -> None:
    pool = [row("a", None, 0.3), row("b", None, 0.1)]
    ranked = rank(pool, None)
    assert [r.name for r in ranked] == ["b", "a"] and ranked[0].region is None
    assert "lowest susceptibility: b" in recommendation(ranked, None)
    assert recommendation(ranked, None).startswith("no regions (need --train-data and 2+ distinct models")  # no training accuracy


def test_recommendation_names_the_model_and_the_flagged_ones() -> None:
    t = thresholds(POOL)
    line = recommendation(rank(list(POOL), t), t)
    assert line.startswith("ship a:") and "flagged as likely memorized noise: b" in line
    none_in_1 = [row("a", 0.9, 0.5), row("b", 0.5, 0.1)]
    t2 = thresholds(none_in_1)
    assert recommendation(rank(none_in_1, t2), t2).startswith("no model in region 1")


def test_the_ship_line_of_one_model_in_region_1_speaks_of_one() -> None:
    """One model in region 1 (a pool of one with fixed thresholds, or one model above both) was shipped as "the highest
    training accuracy of the 1 model in region 1"."""
    t = Thresholds(0.3, 0.85, "fixed")
    line = recommendation(rank(list(POOL), t), t)
    assert line.startswith("ship a:") and line.endswith("the only model in region 1; 1 flagged as likely memorized noise: b")
    t = thresholds(POOL)
    assert "the highest training accuracy of the 2 models in region 1;" in recommendation(rank(list(POOL), t), t)
    t = Thresholds(0.7, 0.85, "fixed")  # a and b in region 1, b flagged (as fitting the labels the pool contradicts)
    ranked = rank([row(r.name, r.train_acc, r.susceptibility) for r in POOL], t)  # POOL's own rows stay unflagged
    next(r for r in ranked if r.name == "b").verdict = "likely memorized noise"
    assert recommendation(ranked, t).endswith("the only model in region 1 that is not flagged; 1 flagged as likely memorized noise: b")
