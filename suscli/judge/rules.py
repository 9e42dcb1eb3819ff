"""Selection rules: from a scored pool to an order, a model to ship and the reason, or no confident choice.

The paper's rule splits the pool at the mean training accuracy and susceptibility (suscli.judge.regions). The others
are compared with it on the zoo in docs/validation.md, which is where the default comes from. None uses clean
labels or knows the noise rate: only training accuracy on the noisy labels, susceptibility and the predictions
on the unlabeled images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

from suscli.judge.held_out import Blend, blend, blended_order, held_out_beats, held_out_order, val_hits_of
from suscli.measure.accuracy import paired_separates
from suscli.measure.normalization import POINT_ELSEWHERE, points_elsewhere
from suscli.measure.predictions import (
    Predictions,
    agreement_with_consensus,
    difference_is_clear,
    train_predictions_of,
    val_predictions_of,
)
from suscli.judge.cost import MOST, FitCost, fit_cost
from suscli.judge.noise import (
    NoiseEstimate,
    NoiseMatrix,
    clearly_above,
    consensus,
    consensus_and_label,
    contradicted,
    estimate_noise,
    fit_on,
    given_labels,
    noise_matrix,
    noise_words,
    weak_consensus,
    weak_out_of_sample,
    with_held_out,
)
from suscli.judge.regions import (
    Thresholds,
    counted,
    distinct,
    first_of,
    misfed,
    other_models,
    pool_classes,
    rank,
    recommendation,
    region,
    same_words,
    thresholds,
)
from suscli.judge.verdict import FITS_CLEAN, MEMORIZED, UNDERFIT, UNDERFIT_SUSCEPTIBLE, above_chance
from suscli.measure.sampling import Decisions
from suscli.results import Result
from suscli.defaults import DEFAULT_RULE, RULES
from suscli.errors import first_few, plural

MIN_VOTERS = 3  # fewer voters than this and the whole pool votes
# Who votes for the consensus: region 1 (fits and resists random labels), every model not in region 2, the half
# of the pool that fits the fewest labels the whole pool's consensus contradicts, or all.
VOTERS = ("region1", "resisting", "not-region2", "low-memorization", "agreeing", "agreeing-low-memorization", "all")
DEFAULT_VOTERS = "region1"
# How near-ties on agreement are ordered: training accuracy (fit), fit on the labels the consensus does not
# contradict (clean-fit), least fit on the labels it contradicts (memorization), least susceptible, or agreement.
TIE_BREAKS = ("fit", "clean-fit", "memorization", "susceptibility", "none")
DEFAULT_TIE_BREAK = "clean-fit"
DEFAULT_NOISE_VOTERS = "resisting"  # whose consensus on the training images judges the labels
FLAWED = (MEMORIZED, UNDERFIT, UNDERFIT_SUSCEPTIBLE)  # verdicts a pick's closing line mentions when held-out labels chose it

_T = TypeVar("_T")


@dataclass(frozen=True)
class LabelCheck:
    """The voters' consensus on the training images."""

    estimate: NoiseEstimate  # the share of training labels it contradicts
    consensus: np.ndarray  # per training image: the consensus class
    share: np.ndarray  # and its share of the voters' summed probability
    labels: np.ndarray  # the given labels
    num_classes: int  # of the models' predictions
    label_share: np.ndarray  # per training image: the voters' mean probability of its given label
    cost: FitCost | None = None  # what fitting the contradicted labels costs on the unlabeled images
    weak: str | None = None  # why the consensus says nothing of the labels: it names them about as often as chance
    voter_names: tuple[str, ...] = ()  # the models whose consensus it is (not always the ship choice's voters)

    def suspects(self) -> np.ndarray:
        """The contradicted training images, surest first: by how little the voters believe the given label against
        the class they name, each belief over what the voters give that class's labels on average (class_belief:
        the voters believe some classes' labels less, right or wrong, and their images crowded the list's top), then
        by the consensus's share, then by image. Measured against the uncalibrated ratio, the share alone and
        cleanlab's list in docs/validation.md."""
        wrong = np.flatnonzero(self.contradicted)
        typical = self.class_belief()
        label = self.label_share[wrong] / typical[self.labels[wrong]]
        named = self.share[wrong] / typical[self.consensus[wrong]]
        return wrong[np.lexsort((-self.share[wrong], label / np.maximum(named, 1e-12)))]

    def class_belief(self) -> np.ndarray:
        """Per class id, the voters' mean probability of the given label over the training images labelled with it
        (confident learning's per-class threshold); the mean over every image for a class no image is labelled with."""
        size = max(self.num_classes, int(self.labels.max(initial=-1)) + 1, int(self.consensus.max(initial=-1)) + 1)
        count = np.bincount(self.labels, minlength=size)
        total = np.bincount(self.labels, weights=self.label_share, minlength=size)
        overall = float(self.label_share.mean()) if len(self.label_share) else 1.0
        return np.maximum(np.where(count > 0, total / np.maximum(count, 1), overall), 1e-12)

    @property
    def contradicted(self) -> np.ndarray:
        return self.consensus != self.labels

    def matrix(self) -> NoiseMatrix:
        """Per class: which given labels the images of each consensus class carry (suscli.judge.noise.NoiseMatrix)."""
        return noise_matrix(self.consensus, self.labels, self.num_classes)


@dataclass
class Choice:
    ranked: list[Result]  # best first; unscored and failed models last
    pick: Result | None  # the model to ship
    why: str  # one line: why this model, or why none
    confident: bool  # False when the pool does not separate the pick from another model
    tied: list[Result] = field(default_factory=list)  # the models the data do not separate from the pick, pick first
    labels: LabelCheck | None = None  # what the voters' consensus says about the training labels
    voters: list[str] = field(default_factory=list)  # the models whose consensus the agreement is measured against
    held_out: dict | None = None  # with --val-data: the held-out leader, its accuracy and n, and whom the set cannot separate from it


def choose(
    rows: list[Result],
    rule: str,
    t: Thresholds | None,
    voters: str = DEFAULT_VOTERS,
    tie_break: str = DEFAULT_TIE_BREAK,
    noise_voters: str = DEFAULT_NOISE_VOTERS,
) -> Choice:
    """Order `rows` by `rule` and pick the model to ship; every row also gets its region from `t`.

    agreement: models ordered by how often they predict, on the unlabeled images, the consensus of the voters
    (`voters`, see VOTERS). The models whose agreement is not clearly below the best one's are the near-ties;
    they come first, ordered by `tie_break` (see TIE_BREAKS); without training accuracy every model votes and the
    least susceptible near-tie comes first. regions: the paper's order (suscli.judge.regions.rank). pareto: models that
    no other beats on both training accuracy and susceptibility first. train-acc, susceptibility: one number alone.
    """
    classes = pool_classes(rows)
    if len(classes) > 1:
        return Choice(
            rank(rows, None),
            None,
            f"no model to ship: the pool mixes models with {' and '.join(map(str, classes))} "
            "classes, and susceptibility (a loss drop on random labels over all classes) is not comparable across "
            "them, so no regions were drawn",
            False,
        )
    who, mask = annotate_agreement(rows, t, voters) if rule == "agreement" else ("", [])
    labels = _label_check(rows, t, noise_voters, rule == "agreement")  # before the verdicts: they use it and fits_contradicted
    by_region = rank(rows, t, labels.estimate if labels else None)  # region and verdict on every row, whatever the rule
    off = {id(r) for r in misfed(rows)}  # ordered after the rest (_normalization_said): not chosen among
    inside = [r for r in rows if id(r) not in off]
    kept = [m for r, m in zip(_measured(rows), mask) if id(r) not in off]  # they never vote (regions.counted)
    choice = _by_rule(inside, rule, t, [r for r in by_region if id(r) not in off], (who, kept), tie_break)
    choice.labels = labels
    if rule == "agreement" and labels is not None and choice.pick is not None and labels.weak and _ship_consensus_weak(rows, mask, labels):
        choice.why += (
            "; on the training images the models' consensus names the given labels barely more often than chance "
            "(label noise, below), so agreement with the consensus can put first a model that learned nothing they say"
        )
    return _normalization_said(_with_held_out(choice, rule), [r for r in by_region if id(r) in off])


def _normalization_said(choice: Choice, off: list[Result]) -> Choice:
    """The choice, saying which models' labels point to another input normalization, channel order, size or crop than the one
    they were measured with (suscli.measure.normalization): their numbers are likely of inputs unlike their training's.
    `off` (regions.misfed): those the pool left out of its thresholds, consensus and choice, ranked after the models
    it counted. Where every measured model's labels point elsewhere, nothing was left out: the pool's numbers read them
    as measured, and its pick is not confident."""
    if off:
        ids = {id(r) for r in off}
        ranked = [r for r in choice.ranked if id(r) not in ids]
        scored = {id(r) for r in _measured(ranked)}  # after the last model counted, before the unscored and failed ones
        at = max((i + 1 for i, r in enumerate(ranked) if id(r) in scored), default=0)
        choice.ranked = ranked[:at] + off + ranked[at:]
    measured = _measured(choice.ranked)
    named = off or [r for r in measured if points_elsewhere(r.notes)]
    if not named:
        return choice
    shown = first_few([r.name for r in named])
    said = (
        ", so their numbers are likely of inputs unlike their training's: they are ranked after the models counted, left out of the pool's "
        "thresholds, consensus and choice; rank them again as their notes say"
        if off
        else ", and the pool's numbers read them as measured: rank again as their notes say"
    )
    choice.why += f"; the labels of {len(named)} of the {len(measured)} models ({shown}) {POINT_ELSEWHERE}{said}"
    if choice.pick is not None and not off:
        choice.confident = False
    return choice


def _ship_consensus_weak(rows: list[Result], mask: list[bool], labels: LabelCheck) -> bool:
    """Whether the consensus the pick was chosen by names the training labels barely more often than chance. It is the
    label check's own where the same models vote; where they differ (a clean pool whose fitted models all sit in
    region 2, judged by two underfit ones), the label check's weak consensus says nothing of the one the pick agrees
    with, which may name nearly every label."""
    voters = [r for r, v in zip(_measured(rows), mask) if v]
    preds = _every([train_predictions_of(r) for r in voters])
    if tuple(r.name for r in voters) == labels.voter_names or not preds:
        return labels.weak is not None
    try:
        given = given_labels(preds)
    except ValueError:
        return labels.weak is not None
    return weak_consensus(consensus(preds)[0], given) is not None


def _with_held_out(choice: Choice, rule: str) -> Choice:
    """The choice made with held-out labels, when every measured model has its hits on the same held-out images.

    The held-out set decides every pair of models it can tell apart (exact paired McNemar test on the images only one
    of the two gets right, 95%); what it cannot is ordered by held-out accuracy and the label-free order
    (`choice.ranked`, the rule's) weighed by how well each predicts the clean ranking (held_out.blend: with a few
    labels mostly the label-free order, with many mostly held-out accuracy). The pick is the first model in that order
    that no model beats on the held-out set (held_out_order); the tied set is the pick and the models the set cannot
    tell from it. Confident only when the set separates the pick from every other model and its accuracy is clearly above
    answering the commonest held-out label on every image (_against_majority); label-free evidence never overrules a
    decisive held-out comparison. docs/validation.md measures it against held-out accuracy alone and the label-free
    order at 25 to 2,000 noisy labels on every zoo pool. Without hits: `choice`."""
    measured = _measured(choice.ranked)
    hits = [val_hits_of(r) for r in measured]
    known = _every(hits)
    if len(distinct(measured)) < 2 or not any(h is not None for h in hits):  # copies of one model: nothing to choose
        return choice
    if known is None or len({len(h) for h in known}) != 1 or len(known[0]) == 0:
        choice.why += (
            "; the held-out labels were not used: some models have no held-out hits, or hits on other images "
            "(results from before --val-data, or images unreadable at one model's size); rerun with --fresh"
        )
        return choice
    place = {id(r): i for i, r in enumerate(choice.ranked)}  # the label-free order
    beats = held_out_beats(known)
    weights = blend(known)
    by_held_out = [measured[i] for i in held_out_order(beats, blended_order(known, weights))]
    of = {id(r): h for r, h in zip(measured, known)}
    share = {id(r): float(h.mean()) for r, h in zip(measured, known)}
    lead = max(measured, key=lambda r: (int(of[id(r)].sum()), -place[id(r)]))
    pick = by_held_out[0]
    tied = [r for r in by_held_out if r is pick or not paired_separates(of[id(pick)], of[id(r)])]
    rivals = other_models(pick, tied, measured)  # a copy of the pick is no other model
    ids = {id(r) for r in measured}
    ranked = by_held_out + [r for r in choice.ranked if id(r) not in ids]
    n = len(of[id(pick)])
    acc = f"{100 * share[id(pick)]:.1f}% of {n:,} held-out images"
    # a pick the verdict calls a memorizer or underfit: the held-out labels rank by accuracy on new images, not by verdict
    note = (
        f"; its row says '{pick.verdict}', yet no model is clearly more accurate on the held-out labels" if pick.verdict in FLAWED else ""
    )
    same = same_words(pick, measured)
    majority = _majority(measured)
    beaten, guess = _against_majority(of[id(pick)], of[id(lead)], majority) if majority else (True, "")
    if not rivals:
        doubt = f"; still no confident choice: {guess}" if guess else ""  # the paired test decided: said confident before
        why = (
            f"ship {pick.name}: the highest held-out accuracy ({acc}), clearly above every other model's on the same "
            f"images (paired McNemar test, 95%): the held-out labels decide{note}{same}{doubt}"
        )
    else:
        others = first_few([r.name for r in rivals])  # every name is in held_out.within_noise
        lead_words = "" if not other_models(pick, [lead], measured) else f"; {lead.name} leads with {100 * share[id(lead)]:.1f}%"
        order_words = _order_words(weights, rule)
        why = (
            f"ship {pick.name}: held-out accuracy {acc}{lead_words}; no confident choice: the held-out set cannot tell "
            f"{len(rivals)} other {plural(len(rivals), 'model')} from it (paired McNemar test, 95%): {others}; {order_words}{note}{same}{f'; {guess}' if guess else ''}. "
            f"Label-free: {choice.why}"
        )
    held = {
        "leader": lead.name,
        "pick": pick.name,
        "val_acc": share[id(pick)],
        "n": n,
        "within_noise": [r.name for r in tied],
        "decisive": not rivals,
        "label_free_pick": choice.pick.name if choice.pick else None,
        "undecided_by": _undecided_by(weights),
        "weights": weights.as_dict(),
        # what answering the commonest held-out label on every image scores; None where no row holds it (stored before it was kept)
        "baseline": {**majority, "clearly_beaten": beaten} if majority else None,
    }
    return Choice(ranked, pick, why, not rivals and beaten, tied, choice.labels, choice.voters, held)


def _majority(rows: list[Result]) -> dict | None:
    """The held-out set's commonest label and its share of the held-out images (details.val_majority,
    suscli.run.label_ids.commonest_label), from the first of `rows` that holds it: their hits are on the same images, so
    a pick reused from a row stored by an earlier release is weighed against the label the rows measured now hold.
    None where no row holds it whole."""
    return next((data for data in map(_held_majority, rows) if data is not None), None)


def _held_majority(row: Result) -> dict | None:
    """The row's details.val_majority; None where it lacks it (stored by an earlier release) or it is damaged."""
    data = row.details.get("val_majority") if isinstance(row.details, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("class"), (str, int)) or not isinstance(data.get("share"), (int, float)):
        return None
    return data if 0 <= data["share"] <= 1 else None  # a share out of range is no share: damaged


def _against_majority(pick: np.ndarray, lead: np.ndarray, majority: dict) -> tuple[bool, str]:
    """Whether the pick's held-out hits clearly beat answering the commonest held-out label on every image (exact
    one-sided binomial test at 2.5%, as every "clearly above" of noise.clearly_above), and where not, the words saying so: of every model where the leader does not beat
    it either. Where 90% of the held-out labels are one class, a model naming it on every image scores 90%, and a pick
    no more accurate than that was shipped as the held-out labels' confident choice without a word."""
    n, share = len(pick), float(majority["share"])
    if clearly_above(int(pick.sum()), n, share):
        return True, ""
    label = majority["class"]
    named = f"'{label}'" if isinstance(label, str) else f"class {label}"
    who = "it is not" if clearly_above(int(lead.sum()), n, share) else "no model is"
    return False, f"{who} clearly more accurate on the held-out labels than answering {named} for every image ({100 * share:.1f}% of {n:,})"


def _undecided_by(weights: Blend) -> str:
    """What ordered the pairs the paired test left: the JSON report's `choice.held_out.undecided_by`."""
    if weights.held_out == 0:
        return "label-free order"
    return "held-out accuracy" if weights.label_free == 0 else "both"


def _order_words(weights: Blend, rule: str) -> str:
    """How the closing line says what ordered the models the held-out set cannot tell apart."""
    first = "first of the models that no model beats on the held-out set"
    by = _undecided_by(weights)
    if by == "label-free order":
        return f"the label-free order ({rule} rule) puts it {first}"
    evidence = f"held-out accuracy's split-half reliability {weights.reliability:.2f}, its rank correlation with the label-free order {weights.agreement:.2f}"
    if by == "held-out accuracy":
        return f"held-out accuracy alone puts it {first} ({evidence}: the label-free order adds nothing)"
    return (
        f"held-out accuracy and the label-free order ({rule} rule), weighted {weights.held_out:.2f} and "
        f"{weights.label_free:.2f} (regression weights, which need not sum to 1) by how well each predicts the clean "
        f"ranking ({evidence}), put it {first}"
    )


def _by_rule(
    rows: list[Result], rule: str, t: Thresholds | None, by_region: list[Result], voted: tuple[str, list[bool]], tie_break: str
) -> Choice:
    """choose's order and pick once the rows carry their region, verdict and agreement."""
    if not any(r.ok for r in rows):  # why a rule could not choose is moot: "no model could be scored", and only that
        return Choice(by_region, None, recommendation(by_region, t), False)
    who, mask = voted
    if rule == "agreement":
        placed = _measured(rows)  # the rows `mask` says voted or not
        measured = [r for r in placed if r.agreement is not None]
        if len(measured) >= 2:
            fit = t is not None and all(r.train_acc is not None for r in measured)
            # every voter is itself a likely memorizer: said of the voters (below), whether or not every model voted
            memorizers = any(mask) and all(r.verdict == MEMORIZED for r, m in zip(placed, mask) if m)
            # every model voted (too few were chosen to), the likely memorizers with them
            firsts = {id(r): id(f) for r, f in zip(placed, first_of(placed))}
            once = {i for i, f in firsts.items() if i == f}  # a copy never votes: "every model voted" is of the models, once each
            every = all(m for r, m in zip(placed, mask) if id(r) in once)
            flagged = sum(r.verdict == MEMORIZED for r in placed if id(r) in once) if every and not memorizers else 0
            voter_ids = {id(r) for r, m in zip(placed, mask) if m}
            # a voter is compared with the others' consensus (agreement_with_consensus), and so is a copy of one
            own_vote_out = {i for i, f in firsts.items() if f in voter_ids} if len(voter_ids) > 1 else set()
            if len(voter_ids) == 2:  # the consensus a voter is compared with is the other voter's predictions: named
                other = {i: next(r.name for r in placed if id(r) in voter_ids and id(r) != firsts[i]) for i in own_vote_out}
                who_for = {i: f"what the other voter, {name}, predicts" for i, name in other.items()}
            else:
                who_for = {i: f"the consensus of {who} (its own vote left out)" for i in own_vote_out}
            choice = _agreement_choice(rows, measured, who, tie_break if fit else "susceptibility", fit, flagged, who_for)
            choice.voters = [r.name for r, m in zip(placed, mask) if m]
            return _voted_by_memorizers(choice, who) if memorizers else choice
        # said as a fallback: the user may never have named a rule, and "regions rule" alone did not say why one applied
        rule, note = "regions", f" (the agreement rule fell back to the regions rule: {who})"
    else:
        note = ""
    scored = _scored(rows)
    if not scored or t is None:
        return Choice(by_region, None, recommendation(by_region, t) + note, False)
    if rule == "regions":
        first = [r for r in by_region if r.ok and r.region == 1 and r.verdict != MEMORIZED]
        return Choice(by_region, first[0] if first else None, recommendation(by_region, t) + note, bool(first))
    if rule == "train-acc":
        ranked = _order(rows, lambda r: -_train_acc(r))
        return _top(ranked, rule, f"the highest training accuracy ({ranked[0].train_acc:.3f})")
    if rule == "susceptibility":
        ranked = _order(rows, lambda r: r.susceptibility)
        return _top(ranked, rule, f"the lowest susceptibility ({ranked[0].susceptibility:.4f})")
    if rule == "pareto":
        layer = pareto_layers(scored)
        ranked = _order(rows, lambda r: (layer[id(r)], -_train_acc(r)))
        front = len(distinct([r for r in scored if layer[id(r)] == 0]))  # a copy is no other model of the front
        return _top(
            ranked,
            rule,
            f"the highest training accuracy of the {front} {plural(front, 'model')} that no other model beats on both training accuracy and susceptibility",
        )
    raise ValueError(f"unknown rule {rule!r}; rules: {', '.join(RULES)}")


def _label_check(rows: list[Result], t: Thresholds | None, noise_voters: str, agreeing: bool) -> LabelCheck | None:
    """annotate_labels over the models the rule measured (with agreement under the agreement rule), whatever the rule."""
    measured = [r for r in _measured(rows) if r.agreement is not None or not agreeing]
    return annotate_labels(measured, _voters(measured, t, noise_voters)[0]) if len(measured) >= 2 else None


def predictions_of(row: Result) -> Predictions | None:
    """The row's predictions on the unlabeled images; None when it has none or they are damaged (a results file
    edited by hand or cut short)."""
    data = row.details.get("predictions") if isinstance(row.details, dict) else None
    try:
        return Predictions.decode(data) if isinstance(data, dict) else None
    except (ValueError, KeyError, TypeError):
        return None


def annotate_agreement(rows: list[Result], t: Thresholds | None, voters: str = DEFAULT_VOTERS) -> tuple[str, list[bool]]:
    """Set each measured row's `agreement` with the consensus of the voters on the unlabeled images. Returns who
    voted, in words, and which of the measured rows voted (all False when agreement could not be measured)."""
    scored = _measured(rows)
    if len(scored) < 2:
        return "fewer than 2 models were measured", [False] * len(scored)
    if len(distinct(scored)) < 2:  # a model agrees with a consensus of itself alone: 100%, and the ties are its copies
        return f"the {len(scored)} models measured hold the same weights", [False] * len(scored)
    if len(counted(scored)) < 2:
        off = len(misfed(scored))
        return (
            f"the labels of {off} of the {len(scored)} models point to other inputs than measured, which leaves too few to "
            "agree on the unlabeled images"
        ), [False] * len(scored)
    read = [predictions_of(r) for r in scored]
    preds = _every(read)
    if preds is None:
        missing = [r.name for r, p in zip(scored, read) if p is None]
        return (
            f"{len(missing)} {plural(len(missing), 'model')} {plural(len(missing), 'has', 'have')} no readable predictions on the unlabeled images, e.g. {missing[0]} (results "
            "from a tracker log, an older suscli or a damaged results file; rerun with --fresh to measure them)"
        ), [False] * len(scored)
    if len({p.num_classes for p in preds}) > 1:
        return "the models predict different numbers of classes", [False] * len(scored)
    if len({p.classes.shape[0] for p in preds}) > 1:
        return "the models' predictions are on different images", [False] * len(scored)
    chosen, who = _voters(scored, t, voters)
    agreement = dict(zip(map(id, scored), agreement_with_consensus(preds, chosen)))
    for r, first in zip(scored, first_of(scored)):  # a copy agrees as the row it copies: else with a consensus holding itself
        r.agreement = agreement[id(first)]
    return who, chosen


def _voters(scored: list[Result], t: Thresholds | None, voters: str) -> tuple[list[bool], str]:
    """Which models vote, by the `voters` rule, each model's weights once: a copy of a voter's checkpoint under another
    name (regions.distinct) does not vote, since it adds no evidence and would make the voters agree more than they do;
    nor does a model measured on inputs its labels say are unlike its training's (regions.counted)."""
    once = counted(scored)
    chosen, who = _chosen_voters(once, t, voters)
    votes = {id(r): c for r, c in zip(once, chosen)}
    return [votes.get(id(r), False) for r in scored], who


def _chosen_voters(scored: list[Result], t: Thresholds | None, voters: str) -> tuple[list[bool], str]:
    """Which of `scored` (no two the same checkpoint) vote, by the `voters` rule; the whole pool when the rule leaves
    fewer than MIN_VOTERS, except that `resisting` (who judges the training labels) keeps 2 models outside region 2
    rather than let the likely memorizers vote (in a 3-run pool they confirmed their own wrong labels: 0.1%
    contradicted for about 35%). `resisting` also leaves out models no better than guessing (verdict.above_chance):
    they carry no evidence about the labels, and one voting beside a single region-1 model widened the interval on
    a 100-class pool to 0-100% for 32% wrong."""
    if voters not in VOTERS:
        raise ValueError(f"unknown voters {voters!r}; choose from {', '.join(VOTERS)}")
    placed = t if t is not None and all(r.train_acc is not None for r in scored) else None  # thresholds every model can be placed by
    fit = placed is not None
    chosen = [False] * len(scored)
    if placed is not None and voters in ("region1", "not-region2", "resisting"):
        regions = [region(_train_acc(r), _susceptibility(r), placed) for r in scored]
        chosen = [g == 1 for g in regions] if voters != "not-region2" else [g != 2 for g in regions]
        what = "region-1" if voters != "not-region2" else "non-region-2"
        if voters == "resisting":  # a model no better than guessing says nothing of the labels: its votes only add noise
            informed = [above_chance(r) for r in scored]
            chosen = [c and i for c, i in zip(chosen, informed)]
            if sum(chosen) < MIN_VOTERS:  # region 1 too small: all but the likely memorizers
                chosen, what = [g != 2 and i for g, i in zip(regions, informed)], "non-region-2"
                if sum(chosen) >= 2:  # even fewer than MIN_VOTERS: memorizers' votes would confirm the noise they fitted
                    return chosen, f"the {sum(chosen)} {what} models"
    elif fit and voters == "low-memorization":
        estimates = _memorization_estimates(scored)
        if estimates is not None:
            cut = float(np.median(estimates))
            chosen = [e <= cut for e in estimates]
        what = "least-memorizing"
    elif voters in ("agreeing", "agreeing-low-memorization"):
        preds = _every([predictions_of(r) for r in scored])
        if preds is not None:
            agree = agreement_with_consensus(preds, [True] * len(scored))
            cut = float(np.median(agree))
            chosen = [a >= cut for a in agree]
        what = "most-agreeing"
        estimates = _memorization_estimates(scored) if voters == "agreeing-low-memorization" and fit else None
        if estimates is not None:
            cut = float(np.median(estimates))
            chosen = [c and e <= cut for c, e in zip(chosen, estimates)]
            what = "most-agreeing, least-memorizing"
    if sum(chosen) < MIN_VOTERS:  # the rule leaves too few: the pool votes, less its models no better than guessing
        # (not for `resisting`: there the memorizers' votes come back with it, and on a 5-model pool of 32.1% wrong
        # labels the interval without the guessers read 0.0-31.8%, with them 0.0-33.5%)
        informed = [above_chance(r) for r in scored] if fit and voters != "resisting" else []
        if MIN_VOTERS <= sum(informed) < len(scored):
            return informed, f"the {sum(informed)} models above chance"
        return [True] * len(scored), f"all {len(scored)} models"
    return chosen, f"the {sum(chosen)} {what} models"


def _memorization_estimates(scored: list[Result]) -> list[float] | None:
    """Each model's fit on the training labels that the whole pool's consensus contradicts (None without
    training predictions): the first pass that picks the voters of the second."""
    preds = _every([train_predictions_of(r) for r in scored])
    if preds is None:
        return None
    try:
        wrong = contradicted(preds)
    except ValueError:
        return None
    return _every([fit_on(p, wrong) for p in preds])


def annotate_labels(measured: list[Result], voted: list[bool]) -> LabelCheck | None:
    """What the voters' consensus says about the training labels: the noise-rate estimate, and on every row its
    fit on the labels the consensus contradicts (`fits_contradicted`). None without training predictions."""
    preds = _every([train_predictions_of(r) for r in measured])
    if preds is None or not any(voted):
        return None
    voters = [p for p, v in zip(preds, voted) if v]
    voter_rows = [r for r, v in zip(measured, voted) if v]
    seen = _every([predictions_of(r) for r in voter_rows])  # the voters on the unlabeled images
    if seen is not None and len({(p.classes.shape[0], p.num_classes) for p in seen}) > 1:
        seen = None  # not one set of images: the interval keeps its bootstrap low end
    try:
        labels = given_labels(preds)
        cls, share, on_label = consensus_and_label(voters)
        estimate = estimate_noise(voters, agreed=cls, unlabeled=seen)
    except ValueError:
        return None
    wrong = cls != labels
    for r, p in zip(measured, preds):
        r.fits_contradicted = fit_on(p, wrong)
        r.clean_fit = fit_on(p, ~wrong)
    unlabeled = predictions_of(measured[0])
    cost = fit_cost(measured, unlabeled.classes.shape[0]) if unlabeled is not None else None
    weak = weak_consensus(cls, labels)
    if weak is not None:
        estimate = replace(estimate, doubt=weak)
    elif cost is not None and cost.free:
        estimate = replace(estimate, doubt=cost.why(), free_fit=True)
    elif cost is not None and cost.pair:  # nothing shows a cost, nor its absence: no reading either way
        estimate = replace(estimate, doubt=cost.why())
    off = [r.name for r in voter_rows if points_elsewhere(r.notes)]
    if off:  # their predictions are of inputs likely unlike their training's: the cause to fix, before any other doubt
        estimate = replace(
            estimate,
            doubt=f"the labels of {len(off)} of the {len(voter_rows)} voters {POINT_ELSEWHERE}, so their consensus is of inputs "
            "likely unlike their training's",
            free_fit=False,
        )
    held, unread = _held_out_reading(voter_rows, seen)
    if held is not None:  # a consensus too weak to read either set of labels reads nothing off the held-out ones
        estimate = with_held_out(estimate, held) if weak is None and unread is None else replace(estimate, held_out=held)
    if weak is None and not off:  # a weak or misfed consensus says its own reason
        estimate = replace(estimate, unread=unread)
    return LabelCheck(estimate, cls, share, labels, voters[0].num_classes, on_label, cost, weak, tuple(r.name for r in voter_rows))


def _held_out_reading(voters: list[Result], seen: list[Predictions] | None) -> tuple[NoiseEstimate | None, str | None]:
    """The voters' consensus on the held-out labels (--val-data), read as the training labels are (estimate_noise),
    and why it names them too rarely for any reading (weak_out_of_sample; None when it does not); (None, None) unless
    every voter has predictions on one set of held-out images with the same labels."""
    preds = _every([val_predictions_of(r) for r in voters])
    if preds is None:
        return None, None
    try:
        labels = given_labels(preds)  # first: it refuses predictions on other images or labels
        agreed = consensus(preds)[0]  # once, for both readings
        return estimate_noise(preds, agreed=agreed, unlabeled=seen), weak_out_of_sample(agreed, labels)
    except ValueError:  # not one set of images or labels (rows measured against other held-out data)
        return None, None


def pareto_layers(rows: list[Result]) -> dict[int, int]:
    """Non-dominated sorting on (higher training accuracy, lower susceptibility), by id(row): 0 is the front."""
    layer: dict[int, int] = {}
    left = list(rows)
    depth = 0
    while left:
        front = [r for r in left if not any(_dominates(o, r) for o in left)]
        for r in front:
            layer[id(r)] = depth
        left = [r for r in left if id(r) not in layer]
        depth += 1
    return layer


def _dominates(o: Result, r: Result) -> bool:
    """Whether `o` is at least as good as `r` on both training accuracy (higher) and susceptibility (lower), and better on one."""
    (o_acc, o_zeta), (r_acc, r_zeta) = (_train_acc(o), _susceptibility(o)), (_train_acc(r), _susceptibility(r))
    return o_acc >= r_acc and o_zeta <= r_zeta and (o_acc > r_acc or o_zeta < r_zeta)


def _every(items: list[_T | None]) -> list[_T] | None:
    """`items` when none of them is None, else None."""
    known = [x for x in items if x is not None]
    return known if len(known) == len(items) else None


def _train_acc(r: Result) -> float:
    """The training accuracy of a scored row (_scored keeps only rows that have one)."""
    assert r.train_acc is not None
    return r.train_acc


def _susceptibility(r: Result) -> float:
    """The susceptibility of a measured row (_measured keeps only rows that have one)."""
    assert r.susceptibility is not None
    return r.susceptibility


def _agreement(r: Result) -> float:
    """The agreement of a row the agreement rule ranks (_by_rule gives it only rows that have one)."""
    assert r.agreement is not None
    return r.agreement


def _fits_contradicted(r: Result) -> float:
    """The fit on contradicted labels of a near-tie ordered by it (_usable picks that order only when every near-tie has one)."""
    assert r.fits_contradicted is not None
    return r.fits_contradicted


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
    best = ranked[0]
    return Choice(ranked, best, f"ship {best.name}: {reason}{_outside_region_1(best, rule)}{same_words(best, ranked)}", True)


def _agreement_choice(
    rows: list[Result], measured: list[Result], who: str, tie_break: str, fit: bool, flagged: int, who_for: dict[int, str]
) -> Choice:
    """Order by agreement; the near-ties (agreement not clearly below the best) come first, ordered by
    `tie_break` (`who_for`: what the rows compared with a consensus without their own vote, by id, were compared with). Confident only when no other model is a near-tie, so that the unlabeled images separate the pick
    from every other model, and not when every model voted, `flagged` of them called "likely memorized noise": as
    without training accuracy, agreeing best with a consensus that memorizers shape is no evidence of clean accuracy
    (a held-out deep zoo, where too few models were in region 1 to vote, shipped a model 3.5 points below the best
    so, docs/validation.md)."""
    by_agreement = sorted(measured, key=lambda r: (-_agreement(r), r.name))
    top = by_agreement[0]
    top_preds = predictions_of(top)
    assert top_preds is not None  # its agreement was measured on them
    n = top_preds.classes.shape[0]
    tied = [r for r in by_agreement if not difference_is_clear(_agreement(top), _agreement(r), n)]
    tie_break = _usable(tie_break, tied)
    key = _tie_key(tie_break)
    lead = sorted(tied, key=lambda r: (key(r), -_agreement(r), r.name))
    first = {id(r) for r in lead}
    ids = {id(r) for r in measured}
    ranked = lead + [r for r in by_agreement if id(r) not in first] + [r for r in _order(rows, lambda r: 0) if id(r) not in ids]
    best = ranked[0]
    rivals = other_models(best, lead, measured)  # a copy of the pick is no other model
    clear = ", clearly more than any other model" if not rivals else ""  # said of the agreement, before the region
    why = (
        f"ship {best.name}: it predicts {who_for.get(id(best), f'the consensus of {who}')} "
        f"on {100 * _agreement(best):.1f}% of the {n:,} unlabeled "
        f"images{clear}{_outside_region_1(best, 'agreement')}{same_words(best, measured)}"
    )
    chance = 1 / top_preds.num_classes
    if not difference_is_clear(_agreement(top), chance, n):  # two models that never agree: 0%, and no consensus at all
        why += (
            f"; no confident choice: the best agreement, {100 * _agreement(top):.1f}%, is not clearly above what guessing "
            f"gives ({100 * chance:.1f}% at {top_preds.num_classes} classes): the models share no consensus to choose by"
        )
        if best is not top:  # the best agreement the line names is another model's: say why the pick came first
            why += f"; of the {1 + len(rivals)} models within the noise of the best agreement it {TIE_WORDS[tie_break](best)}"
        return Choice(ranked, best, why, False, lead)
    if not rivals:
        if not fit:
            doubt = " without training accuracy (--train-data): every model voted, whether it fits its labels or not"
        elif flagged:
            doubt = (
                f": every model voted, {flagged} of them called '{MEMORIZED}', and agreeing with a consensus they shape says "
                "little about clean accuracy"
            )
        else:
            return Choice(ranked, best, why, True, lead)
        return Choice(ranked, best, why + "; still no confident choice" + doubt, False, lead)
    if len(distinct(measured)) == 2:  # one agreement for both: nothing label-free separates them (docs/rank.md, "A pool of two")
        order = f"as it {TIE_WORDS[tie_break](best)}" if tie_break != "none" else "by name"
        why += (
            f"; no confident choice: in a pool of two each model's consensus is the other's predictions, so both agree with "
            f"it on {100 * _agreement(top):.1f}% and the unlabeled images separate nothing; it comes first {order}, which "
            "does not show the more accurate of the two: held-out labels (--val-data) can"
        )
        return Choice(ranked, best, why, False, lead)
    others = first_few([r.name for r in rivals])
    why += (
        f"; no confident choice: {len(rivals)} other {plural(len(rivals), 'model')} {plural(len(rivals), 'is', 'are')} within the noise of the best agreement "
        f"({100 * _agreement(top):.1f}%): {others}; of them it {TIE_WORDS[tie_break](best)}{_fits_every_label(best, [best, *rivals], tie_break)}"
    )
    return Choice(ranked, best, why, False, lead)


def _fits_every_label(best: Result, lead: list[Result], tie_break: str) -> str:
    """Where the near-tie order rewards fitting the training labels (`fit`, `clean-fit`) and put first a model that
    fits most of the labels the consensus contradicts too, where the other near-ties do not: that it does, since the
    order cannot tell such a model from one that learned more (docs/validation.md, "A near-tie that fits every
    label": putting it last instead cost clean-label pools their best model)."""
    if tie_break not in ("fit", "clean-fit") or best.fits_contradicted is None or best.fits_contradicted <= MOST:
        return ""
    others = [r.fits_contradicted for r in lead if r is not best]
    most = max((f for f in others if f is not None), default=None)
    if most is None or None in others or most > MOST:
        return ""
    return (
        f", and it fits {100 * best.fits_contradicted:.1f}% of those the consensus contradicts, the others at most "
        f"{100 * most:.1f}%: this order puts a model that fits every label first, right labels or wrong"
    )


def _voted_by_memorizers(choice: Choice, who: str) -> Choice:
    """The choice where every voter (`who`) is itself called a likely memorizer: the pick agrees with a consensus of
    models that fitted their wrong labels, so it is no confident choice: no zoo pool measured how well such a
    consensus picks. The line said only that the pick's own row reads so, and called it confident."""
    lead = "; still no confident choice: " if choice.confident else "; and "
    choice.why += (
        f"{lead}every voter ({who}) is itself called '{MEMORIZED}': theirs is a consensus of memorizers, whose "
        "predictions carry the wrong labels they fitted, so agreeing with it is no sure sign of accuracy on clean labels"
    )
    choice.confident = False
    return choice


def _usable(tie_break: str, tied: list[Result]) -> str:
    """`tie_break`, or what stands in when a near-tie lacks its number: training accuracy for the fit on the
    confirmed labels (results without training predictions), else agreement itself."""
    for option in (tie_break, "fit", "none"):
        if all(_tie_key(option)(r) is not None for r in tied):
            return option
    return "none"


def _tie_key(tie_break: str) -> Callable[[Result], object]:
    """Sort key of a near-tie (smaller first) for each TIE_BREAKS entry; None where the row lacks the number."""
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"unknown tie-break {tie_break!r}; choose from {', '.join(TIE_BREAKS)}")
    return {
        "fit": lambda r: None if r.train_acc is None else -r.train_acc,
        "clean-fit": lambda r: None if r.clean_fit is None else -r.clean_fit,
        "memorization": lambda r: r.fits_contradicted,
        "susceptibility": lambda r: r.susceptibility,
        "none": lambda r: -r.agreement,
    }[tie_break]


TIE_WORDS: dict[str, Callable[[Result], str]] = {
    "fit": lambda r: f"fits its training labels best ({r.train_acc:.1%})",
    "clean-fit": lambda r: f"fits best the training labels the consensus confirms ({r.clean_fit:.1%})",
    "memorization": lambda r: f"fits the fewest training labels the consensus contradicts ({100 * _fits_contradicted(r):.1f}%)",
    "susceptibility": lambda r: f"is the least susceptible ({r.susceptibility:.4f})",
    "none": lambda r: f"agrees most ({100 * _agreement(r):.1f}%)",
}


def _outside_region_1(row: Result, rule: str) -> str:
    """Why the model to ship may have a row that says 'underfit' or 'likely memorized noise'; one outside region 1
    that fits what its noisy labels allow says so, not that the rule ignored its region."""
    if row.region == 1 and row.verdict == MEMORIZED:
        return f"; its row says '{MEMORIZED}' ({row.verdict_why}): the {rule} rule does not rank by verdict"
    if row.region in (None, 1):
        return ""
    if row.verdict == FITS_CLEAN:
        return (
            f"; its row says '{FITS_CLEAN}' (region {row.region}): its training accuracy is under the pool's threshold "
            "but about what its labels allow without fitting their noise (1 minus the label-noise estimate)"
        )
    return f"; its row says '{row.verdict}' (region {row.region}): the {rule} rule does not rank by region"


def pool_decisions(
    rows: list[Result], rule: str = DEFAULT_RULE, threshold_rule: str = "mean", zeta: float | None = None, acc: float | None = None
) -> Decisions:
    """rank's decisions (`rows` are changed): each model's region and verdict, the table's order and the model to
    ship. Its gates (--fail-on memorized, --candidate) follow from the regions and verdicts."""
    t = None if len(pool_classes(rows)) > 1 else thresholds(rows, threshold_rule, zeta, acc)
    choice = choose(rows, rule, t)
    return Decisions(
        regions=tuple((r.name, r.region) for r in rows),
        verdicts=tuple((r.name, r.verdict) for r in rows),
        order=tuple(r.name for r in choice.ranked),
        pick=choice.pick.name if choice.pick else None,
    )


def noise_line(check: LabelCheck) -> str:
    """The label-noise estimate in words, for stderr and the step summary (suscli.judge.noise.noise_words); where it
    is an estimate, also what the table's 'fits contradicted' column reads."""
    words = noise_words(check.estimate.as_dict())
    if check.estimate.declined:
        return f"label noise: {words}"
    return f"label noise: {words}; 'fits contradicted' is each model's fit on the training labels the consensus contradicts, an estimate of how much noise it memorized"
