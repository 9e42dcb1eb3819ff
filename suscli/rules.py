"""Selection rules: from a scored pool to an order, a model to ship and the reason, or no confident choice.

The paper's rule splits the pool at the mean training accuracy and susceptibility (suscli.ranking). The others
are compared with it on the zoo in docs/validation.md, which is where the default comes from. None uses clean
labels or knows the noise rate: only training accuracy on the noisy labels, susceptibility and the predictions
on the unlabeled images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from suscli.agreement import Predictions, agreement_with_consensus, difference_is_clear
from suscli.ranking import Thresholds, pool_classes, rank, recommendation, region
from suscli.results import Result

RULES = ("agreement", "regions", "pareto", "train-acc", "susceptibility")
DEFAULT_RULE = "agreement"  # the winner on the zoo (docs/validation.md, "Choosing the model to ship")
MIN_VOTERS = 3  # fewer region-1 models than this and the whole pool votes


@dataclass
class Choice:
    ranked: list[Result]  # best first; unscored and failed models last
    pick: Result | None  # the model to ship
    why: str  # one line: why this model, or why none
    confident: bool  # False when the pool does not separate the pick from another model


def choose(rows: list[Result], rule: str, t: Thresholds | None, voters: str = "region1", tie_break: bool = True) -> Choice:
    """Order `rows` by `rule` and pick the model to ship; every row also gets its region from `t`.

    agreement: models ordered by how often they predict, on the unlabeled images, the consensus of the models
    that fit their training set and resist random labels (region 1; `voters="all"`: every model). With
    `tie_break`, the models whose agreement is not clearly below the best one's come first, the best fit to its
    training labels first; without regions (no training accuracy) every model votes and the least susceptible of
    them comes first. regions: the paper's order (suscli.ranking.rank). pareto: models that no other beats
    on both training accuracy and susceptibility first. train-acc, susceptibility: one number alone.
    """
    classes = pool_classes(rows)
    if len(classes) > 1:
        return Choice(rank(rows, None), None, f"no model to ship: the pool mixes models with {' and '.join(map(str, classes))} "
                      "classes, and susceptibility (a loss drop on random labels over all classes) is not comparable across "
                      "them, so no regions were drawn", False)
    by_region = rank(rows, t)  # region and verdict on every row, whatever the rule
    if rule == "agreement":
        who = annotate_agreement(rows, t, voters)
        measured = [r for r in _measured(rows) if r.agreement is not None]
        if len(measured) >= 2:
            fit = t is not None and all(r.train_acc is not None for r in measured)
            return _agreement_choice(rows, measured, who, tie_break, fit)
        rule, note = "regions", f" (regions rule: {who})"
    else:
        note = ""
    scored = _scored(rows)
    if not scored or t is None:
        return Choice(by_region, None, recommendation(by_region, t) + note, False)
    if rule == "regions":
        first = [r for r in by_region if r.ok and r.region == 1]
        return Choice(by_region, first[0] if first else None, recommendation(by_region, t) + note, bool(first))
    if rule == "train-acc":
        ranked = _order(rows, lambda r: -r.train_acc)
        return _top(ranked, rule, f"the highest training accuracy ({ranked[0].train_acc:.3f})")
    if rule == "susceptibility":
        ranked = _order(rows, lambda r: r.susceptibility)
        return _top(ranked, rule, f"the lowest susceptibility ({ranked[0].susceptibility:.4f})")
    if rule == "pareto":
        layer = pareto_layers(scored)
        ranked = _order(rows, lambda r: (layer[id(r)], -r.train_acc))
        front = sum(1 for v in layer.values() if v == 0)
        return _top(ranked, rule, f"the highest training accuracy of the {front} model(s) that no other model beats on both "
                            "training accuracy and susceptibility")
    raise ValueError(f"unknown rule {rule!r}; rules: {', '.join(RULES)}")


def predictions_of(row: Result) -> Predictions | None:
    """The row's predictions on the unlabeled images; None when it has none or they are damaged (a results file
    edited by hand or cut short)."""
    data = row.details.get("predictions") if isinstance(row.details, dict) else None
    try:
        return Predictions.decode(data) if isinstance(data, dict) else None
    except (ValueError, KeyError, TypeError):
        return None


def annotate_agreement(rows: list[Result], t: Thresholds | None, voters: str = "region1") -> str:
    """Set each measured row's `agreement` with the consensus of region 1 when it holds MIN_VOTERS or more
    models, else (without regions, or with voters="all") of the whole pool. Returns who voted, in words."""
    scored = _measured(rows)
    if len(scored) < 2:
        return "fewer than 2 models were measured"
    preds = [predictions_of(r) for r in scored]
    missing = [r.name for r, p in zip(scored, preds) if p is None]
    if missing:
        return (f"{len(missing)} model(s) have no readable predictions on the unlabeled images, e.g. {missing[0]} (results "
                "from a tracker log, an older suscli or a damaged results file; rerun with --fresh to measure them)")
    if len({p.num_classes for p in preds}) > 1:
        return "the models predict different numbers of classes"
    if len({p.classes.shape[0] for p in preds}) > 1:
        return "the models' predictions are on different images"
    chosen = [voters == "region1" and t is not None and r.train_acc is not None and region(r.train_acc, r.susceptibility, t) == 1
              for r in scored]
    if sum(chosen) < MIN_VOTERS:
        chosen = [True] * len(scored)
        who = f"all {len(scored)} models"
    else:
        who = f"the {sum(chosen)} region-1 models"
    for r, a in zip(scored, agreement_with_consensus(preds, chosen)):
        r.agreement = a
    return who


def pareto_layers(rows: list[Result]) -> dict[int, int]:
    """Non-dominated sorting on (higher training accuracy, lower susceptibility), by id(row): 0 is the front."""
    layer: dict[int, int] = {}
    left = list(rows)
    depth = 0
    while left:
        front = [r for r in left if not any(
            o.train_acc >= r.train_acc and o.susceptibility <= r.susceptibility
            and (o.train_acc > r.train_acc or o.susceptibility < r.susceptibility) for o in left)]
        for r in front:
            layer[id(r)] = depth
        left = [r for r in left if id(r) not in layer]
        depth += 1
    return layer


def _measured(rows: list[Result]) -> list[Result]:
    return [r for r in rows if r.ok and r.susceptibility is not None]


def _scored(rows: list[Result]) -> list[Result]:
    return [r for r in _measured(rows) if r.train_acc is not None]


def _order(rows: list[Result], key: Callable[[Result], object]) -> list[Result]:
    scored = _scored(rows)
    ids = {id(r) for r in scored}
    rest = sorted((r for r in rows if id(r) not in ids), key=lambda r: (not r.ok, r.name))  # unscored, then failed
    return sorted(scored, key=lambda r: (key(r), r.name)) + rest


def _top(ranked: list[Result], rule: str, reason: str) -> Choice:
    return Choice(ranked, ranked[0], f"ship {ranked[0].name}: {reason}{_outside_region_1(ranked[0], rule)}", True)


def _agreement_choice(rows: list[Result], measured: list[Result], who: str, tie_break: bool, fit: bool) -> Choice:
    """Order by agreement; the models within noise of the best come first, by training accuracy (`fit`), or by
    susceptibility when there is no training accuracy."""
    second_key = (lambda r: -r.train_acc) if fit else (lambda r: r.susceptibility)
    by_agreement = sorted(measured, key=lambda r: (-r.agreement, second_key(r), r.name))
    top = by_agreement[0]
    n = predictions_of(top).classes.shape[0]
    tied = [r for r in by_agreement if not difference_is_clear(top.agreement, r.agreement, n)] if tie_break else [top]
    lead = sorted(tied, key=lambda r: (second_key(r), r.name))
    ids = {id(r) for r in measured}
    first = {id(r) for r in lead}
    ranked = lead + [r for r in by_agreement if id(r) not in first] + [r for r in _order(rows, lambda r: 0) if id(r) not in ids]
    best = ranked[0]
    why = (f"ship {best.name}: it predicts the consensus of {who} on {100 * best.agreement:.1f}% of the {n} unlabeled "
           f"images (a label-free estimate of clean accuracy){_outside_region_1(best, 'agreement')}")
    if len(lead) > 1:
        second = lead[1]
        why += f"; {len(lead)} models are within the noise of the best agreement ({100 * top.agreement:.1f}%)"
        if not fit:
            return Choice(ranked, best, why + f", and it is the least susceptible of them ({best.susceptibility:.4f}); no "
                                              f"confident choice over {second.name} without training accuracy (--train-data)", False)
        why += f", and it fits its training labels best of them ({best.train_acc:.3f})"
        if not difference_is_clear(best.train_acc, second.train_acc, best.train_n or n):
            return Choice(ranked, best, why + f"; no confident choice over {second.name} (training accuracy "
                                              f"{second.train_acc:.3f}, within the noise)", False)
        return Choice(ranked, best, why, True)
    runner = ranked[1]
    if runner.agreement is not None and not difference_is_clear(best.agreement, runner.agreement, n):
        return Choice(ranked, best, why + f"; no confident choice over {runner.name} ({100 * runner.agreement:.1f}%): "
                                          "the difference is within the noise of this many images", False)
    if not fit:
        return Choice(ranked, best, why + ", clearly the most of the pool; still no confident choice without training "
                                          "accuracy (--train-data): every model voted, whether it fits its labels or not", False)
    return Choice(ranked, best, why + ", clearly the most of the pool", True)


def _outside_region_1(row: Result, rule: str) -> str:
    """Why the model to ship may have a row that says 'underfit' or 'likely memorized noise'."""
    if row.region in (None, 1):
        return ""
    return f"; its row says '{row.verdict}' (region {row.region}): the {rule} rule does not rank by region"
