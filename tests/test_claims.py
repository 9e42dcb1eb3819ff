"""What docs/rank.md and docs/score.md say about closing lines, verdicts and the JSON `choice`, one test per claim.

Each test first checks that the docs still say what it quotes, so that a change to either side fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suscli.measure.predictions import Predictions
from suscli.judge import verdict
from suscli.judge.regions import REGION_NAMES, Thresholds, thresholds
from suscli.results import Result
from suscli.judge.rules import RULES, choose
from tests.conftest import invoke, one_error_line, write_images
from tests.test_cli_rank import make_pool
from tests.test_rules import preds_from, row
from tests.test_verdict import NEARLY_CLEAN, NOISY, clean_learner, noisy_pool

DOCS = Path(__file__).resolve().parents[1] / "docs"
NOT_CONFIDENT = "no confident choice"
FIXED = Thresholds(susceptibility=1.0, train_acc=0.5, source="fixed")


def says(doc: str, text: str) -> None:
    """The doc holds `text`, whitespace aside."""
    squash = lambda s: " ".join(s.split())  # noqa: E731
    assert squash(text) in squash((DOCS / doc).read_text()), f"{doc} no longer says: {text}"


def agreeing(name: str, acc: float, zeta: float, wrong: range, confidence: float = 0.8, n: int = 1000, wrong_class: int = 1) -> Result:
    """A model that predicts class 0 on n images, except `wrong_class` on the images in `wrong` (the second class of
    each prediction is the next one: 1 after 0, and 0 after 2, which lets a right model outvote a wrong one)."""
    r = row(name, acc, zeta)
    r.details = {"predictions": preds_from([wrong_class if i in wrong else 0 for i in range(n)], confidence=confidence).encode()}
    r.train_n = n
    return r


def test_the_regions_table_names_the_verdicts_rows_carry() -> None:
    table = (DOCS / "rank.md").read_text().split("## Regions", 1)[1].split("## ", 1)[0]
    found = dict(re.findall(r"^\| ([1-4]) \|[^|]*\|[^|]*\| ([^|(]+?)\s*(?:\(.*)?\|$", table, re.M))
    assert {int(g): v for g, v in found.items()} == REGION_NAMES


def trained_on(r: Result, wrong: range, n: int = 1000) -> Result:
    """`r` with predictions on n training images, the first half labelled 0 and the rest 1: the label, except the
    other class on `wrong`. (Two classes: on one, no consensus could agree with the labels beyond chance.)"""
    labels = (np.arange(n) >= n // 2).astype(np.int64)
    pred = preds_from([1 - int(y) if i in wrong else int(y) for i, y in enumerate(labels)], confidence=0.9).with_labels(labels)
    r.details["train_predictions"] = pred.encode()
    return r


def test_the_example_closing_line_is_what_the_rule_writes() -> None:
    """The example in rank.md, rebuilt: 3 region-1 voters, the best two within noise on agreement; the pick fits
    more of the labels the consensus confirms."""
    text = (DOCS / "rank.md").read_text()
    example = " ".join(text.split("no confident choice**:")[1].split("\n\n")[1].split())
    rows = [
        trained_on(agreeing("cnn-bn-w16-wd5e-4-e12", 0.650, 0.1, range(33)), range(500, 502)),  # 96.7%: its 33 wrong images
        trained_on(agreeing("cnn-bn-w32-wd1e-3-e8", 0.643, 0.1, range(100, 127)), range(10)),  # 97.3%
        trained_on(agreeing("third", 0.600, 0.1, range(0), confidence=0.95), range(0)),
    ]  # sure of class 0: it outvotes one wrong model
    choice = choose(rows, "agreement", FIXED)
    assert choice.why == example and not choice.confident
    assert [r.name for r in choice.tied] == ["cnn-bn-w16-wd5e-4-e12", "cnn-bn-w32-wd1e-3-e8"]


def test_no_confident_choice_when_another_model_is_within_noise_on_agreement() -> None:
    says(
        "rank.md",
        "says plainly when the pool gives **no confident choice**: when any other model is within noise of the "
        "pick on agreement. It then names those models",
    )
    tied = [
        agreeing("a", 0.650, 0.1, range(33)),
        agreeing("b", 0.643, 0.1, range(100, 127)),
        agreeing("c", 0.600, 0.1, range(0), confidence=0.95),
    ]
    tied[0].train_acc = 0.95  # a far better fit does not make the choice confident: fitting noisy labels is no evidence
    choice = choose(tied, "agreement", FIXED)
    assert not choice.confident and NOT_CONFIDENT in choice.why and "b" in choice.why.split(NOT_CONFIDENT)[1]
    clear = [
        agreeing("a", 0.650, 0.1, range(0)),
        agreeing("b", 0.643, 0.1, range(100, 250)),
        agreeing("c", 0.600, 0.1, range(300, 450)),
        agreeing("d", 0.600, 0.1, range(600, 750)),
    ]  # a on every image, the others on 85%
    choice = choose(clear, "agreement", FIXED)
    assert choice.confident and NOT_CONFIDENT not in choice.why and choice.pick.name == "a" and [r.name for r in choice.tied] == ["a"]


def test_a_consensus_shaped_by_likely_memorizers_gives_no_confident_choice() -> None:
    says("rank.md", "and not when every model voted, likely memorizers among them")
    pool = [
        agreeing("a", 0.650, 0.1, range(0)),
        agreeing("b", 0.643, 0.1, range(100, 250)),
        agreeing("m1", 0.990, 1.5, range(300, 450)),  # region 2 at these thresholds: likely memorized noise
        agreeing("m2", 0.980, 2.0, range(600, 750)),
    ]  # region 1 holds 2 models, under MIN_VOTERS: every model votes, the memorizers too
    choice = choose(pool, "agreement", FIXED)
    assert [r.verdict for r in pool[2:]] == [verdict.MEMORIZED] * 2 and len(choice.voters) == 4
    assert choice.pick.name == "a" and "unlabeled images, clearly more than any other model" in choice.why  # a clear leader ...
    assert not choice.confident and "still no confident choice: every model voted, 2 of them called 'likely memorized noise'" in choice.why
    pool[2].susceptibility = pool[3].susceptibility = 0.2  # the same predictions in region 1, nobody flagged: confident
    choice = choose(pool, "agreement", FIXED)
    assert len(choice.voters) == 4 and choice.confident and NOT_CONFIDENT not in choice.why and choice.pick.name == "a"


def test_a_consensus_of_voters_all_called_memorizers_is_said_and_not_confident() -> None:
    """Every voter (the region-1 models) called 'likely memorized noise' by the fixed cut, a model outside region 1
    that did not vote: the pick, clearly ahead on agreement with the voters' consensus, was called a confident choice,
    and the line said only that the pick's own row reads 'likely memorized noise', not that every voter's does."""
    says("rank.md", "where every voter is itself called 'likely memorized noise'")
    from suscli.defaults import DEFAULT_BATCH_SIZE, DEFAULT_LR

    def memorizer(name: str, zeta: float, wrong: range) -> Result:
        r = agreeing(name, 0.9, zeta, wrong)
        r.details.update(lr=DEFAULT_LR, batch_size=DEFAULT_BATCH_SIZE, num_classes=3)  # the fixed cut's step: it flags them
        return r

    pool = [
        memorizer("a", 0.50, range(0)),
        memorizer("b", 0.55, range(100, 250)),
        memorizer("c", 0.60, range(300, 450)),
        memorizer("d", 0.65, range(600, 750)),
        agreeing("weak", 0.3, 0.1, range(500)),  # region 3: does not vote
    ]
    choice = choose(pool, "agreement", FIXED)
    assert choice.voters == ["a", "b", "c", "d"] and {r.verdict for r in pool[:4]} == {verdict.MEMORIZED}
    assert choice.pick.name == "a" and "unlabeled images, clearly more than any other model" in choice.why
    assert not choice.confident
    assert choice.why.endswith(
        "; still no confident choice: every voter (the 4 region-1 models) is itself called 'likely memorized noise': "
        "theirs is a consensus of memorizers, whose predictions carry the wrong labels they fitted, so agreeing with it "
        "is no sure sign of accuracy on clean labels"
    ), choice.why
    pool.pop()  # every model voted, all of them flagged: said once, of the voters, not also as "4 of them called"
    choice = choose(pool, "agreement", FIXED)
    assert not choice.confident and "every voter (the 4 region-1 models) is itself called" in choice.why
    assert "every model voted" not in choice.why
    pool[0].susceptibility = 0.2  # one voter not flagged: the consensus is not the memorizers' alone, and the pick is it
    choice = choose(pool, "agreement", FIXED)
    assert pool[0].verdict != verdict.MEMORIZED and "every voter" not in choice.why


def test_without_training_accuracy_the_choice_is_never_confident() -> None:
    says("rank.md", "the closing line says the choice is not confident without training accuracy")
    rows = [
        agreeing(name, 0.0, zeta, wrong, wrong_class=2)
        for name, zeta, wrong in (("clear", 0.1, range(0)), ("b", 0.2, range(300)), ("c", 0.3, range(500, 900)))
    ]
    for r in rows:
        r.train_acc = None
    choice = choose(rows, "agreement", None)
    assert choice.pick.name == "clear" and "unlabeled images, clearly more than any other model" in choice.why  # a clear leader ...
    assert not choice.confident and NOT_CONFIDENT in choice.why and "--train-data" in choice.why  # ... and still no confident choice


def test_without_training_accuracy_the_rank_json_says_not_confident(tmp_path: Path) -> None:
    says("rank.md", "The JSON report carries it as `choice: {rule, pick, confident}` beside the `recommendation` text")
    pool = make_pool(tmp_path / "pool")
    images = tmp_path / "images"
    write_images(images, 120)  # enough images for the best agreement to be clearly the best
    res = invoke("rank", pool, "-d", images, "-f", "json", "--batches", "2", "--batch-size", "8")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert "clearly more than any other model" in doc["recommendation"]
    assert doc["choice"]["confident"] is False and NOT_CONFIDENT in doc["recommendation"]
    assert res.stderr.strip().splitlines()[-1] == doc["recommendation"]


def test_without_predictions_the_agreement_rule_falls_back_to_regions_and_says_so() -> None:
    says("rank.md", "make the agreement rule fall back to the regions rule, and the closing line says so")
    choice = choose([row("a", 0.9, 0.1), row("b", 0.6, 0.3), row("c", 0.95, 0.9)], "agreement", FIXED)
    assert "regions rule" in choice.why


def test_the_regions_rule_ships_the_first_unflagged_model_of_region_1_or_says_there_is_none() -> None:
    says("rank.md", "The closing line recommends the first model of region 1 that is not flagged, or says that there is none")
    choice = choose([row("a", 0.9, 0.1), row("b", 0.95, 0.2)], "regions", FIXED)
    assert choice.pick.name == "b" and choice.why.startswith("ship b") and choice.confident
    choice = choose([row("a", 0.2, 0.1), row("b", 0.9, 2.0)], "regions", FIXED)
    assert choice.pick is None and "no model in region 1" in choice.why and not choice.confident
    flagged = row("c", 0.99, 0.5)
    flagged.details = {"lr": 0.01, "batch_size": 32}  # measured at the default step: the fixed cut 0.44 applies
    choice = choose([row("a", 0.9, 0.1), flagged], "regions", Thresholds(1.0, 0.5, "fixed"))
    assert choice.pick.name == "a" and "1 flagged as likely memorized noise: c" in choice.why


def test_the_regions_rule_without_training_accuracy_recommends_nothing() -> None:
    says("rank.md", "With `--rule regions` and no training accuracy the table is ordered by susceptibility and no model is recommended")
    rows = [row("a", None, 0.3), row("b", None, 0.1)]
    choice = choose(rows, "regions", None)
    assert [r.name for r in choice.ranked] == ["b", "a"] and choice.pick is None and not choice.why.startswith("ship")


@pytest.mark.parametrize("rule", ["agreement", "train-acc", "susceptibility", "pareto"])
def test_a_pick_outside_region_1_is_explained(rule: str) -> None:
    says(
        "rank.md",
        'When another rule picks a model whose row says "underfit" or "likely memorized noise", the closing '
        "line says so and that the rule does not rank by region",
    )
    t = Thresholds(susceptibility=0.5, train_acc=0.5, source="fixed")
    rows = [
        agreeing("fit", 0.9, 0.4, range(200)),
        agreeing("memorizer", 0.99, 0.9, range(100, 250)),
        agreeing("underfit", 0.3, 0.1, range(0)),
        agreeing("other", 0.6, 0.45, range(300, 400)),
    ]
    choice = choose(rows, rule, t)
    if choice.pick.region != 1:
        assert f"its row says '{choice.pick.verdict}' (region {choice.pick.region}): the {rule} rule does not rank by region" in choice.why
    if rule == "agreement":
        assert choice.pick.name == "underfit"  # every image on the consensus: the agreement rule's pick, in region 3
        # the clear lead is said of the agreement, before the region's clause (it ended that clause, where it meant nothing)
        assert "unlabeled images, clearly more than any other model; its row says 'underfit'" in choice.why, choice.why


def test_a_pick_that_fits_the_clean_signal_is_explained_not_called_underfit() -> None:
    expected = (
        "its row says 'fits the clean signal' (region 3): its training accuracy is under the pool's threshold but about "
        "what its labels allow without fitting their noise (1 minus the label-noise estimate)"
    )
    says("rank.md", f"`{expected}`")
    pool = noisy_pool()
    choice = choose(pool, "agreement", thresholds(pool))
    assert choice.pick.verdict == verdict.FITS_CLEAN and f"; {expected}" in choice.why and "underfit" not in choice.why


def test_the_verdict_reasons_rank_md_quotes_are_what_the_verdict_writes() -> None:
    text = " ".join((DOCS / "rank.md").read_text().split())
    fits = verdict.judge(clean_learner(), zeta=1.0, acc=0.75, noise=NOISY)
    assert fits.word == verdict.FITS_CLEAN and f"`{fits.why}`" in text
    clean = verdict.judge(row("m", 0.99, 3.4), 1.0, 0.75, NEARLY_CLEAN)  # region 2
    quoted = clean.why.split("(the flag it would get otherwise:")[0]
    assert clean.word == verdict.UNCLEAR and f"`{quoted}(the flag it would get otherwise: ...)`" in text


def test_a_pool_mixing_numbers_of_classes_gets_one_line_and_exit_3(tmp_path: Path, image_folder: Path) -> None:
    says("rank.md", "such a pool is scored and stored, but gets no regions and no model to ship, and exits 3 with one line that says so")
    pool = make_pool(tmp_path / "mixed", n=2, num_classes=3)
    make_pool(tmp_path / "five", n=1, num_classes=5)
    (tmp_path / "five" / "m0.safetensors").rename(pool / "five.safetensors")
    res = invoke("rank", pool, "-d", image_folder, "-f", "json", "--batches", "2", "--batch-size", "8")
    line = one_error_line(res, 3, "error: no model to ship: the pool mixes models with 3 and 5 classes")
    doc = json.loads(res.stdout)
    assert doc["choice"]["pick"] is None and doc["thresholds"] is None and line.startswith(f"error: {doc['recommendation']}")
    assert len((pool / "suscli-results.jsonl").read_text().splitlines()) == 3  # scored and stored


def test_ci_md_gives_each_refused_report_path_its_own_exit_code(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """ci.md put one "(exit 2)" after both a report folder that does not exist and a report on the results file:
    the first exits 3, as an output path that cannot be written does everywhere (score.md's exit codes)."""
    says("ci.md", "The folders of `--html` and `--junit` must exist (a typo is not created silently) and be writable (exit 3)")
    says("ci.md", "each output needs a file of its own, never the results file's nor one the inputs are read from")
    says("ci.md", "an image or label file of `--data`, `--train-data`, `--val-data`) (exit 2)")
    pool = make_pool(tmp_path / "pool", n=2)
    args = ("rank", pool, "-d", image_folder, "--train-data", train_folder)
    one_error_line(invoke(*args, "--html", tmp_path / "nope" / "r.html"), 3, "the folder", "does not exist")
    one_error_line(invoke(*args, "--junit", pool / "suscli-results.jsonl"), 2, "is the same file as the results file")


def test_score_verdict_of_a_model_alone_follows_the_fixed_cuts() -> None:
    says("score.md", '"susceptible" above 0.44, "low susceptibility" at or below 0.17, "unclear" between')
    says("score.md", "| 1 | a gate failed (the report is still written) |")  # end to end: tests/test_cli_score.py::test_gates
    words = []
    for zeta in (0.9, 0.1, 0.3):
        r = row("m", 0.5, zeta)
        r.details = {"lr": 0.01, "batch_size": 32, "num_classes": 10}
        words.append(verdict.judge(r, None, None).word)
    assert words == ["susceptible", "low susceptibility", "unclear"]


# --- every choice, whatever the rule and the pool: its words, its pick and its flag agree ----------------------


@st.composite
def pools(draw) -> tuple[list[Result], Thresholds | None]:
    n = draw(st.integers(2, 6))
    images = 40
    with_acc = draw(st.booleans())
    rows = []
    for i in range(n):
        top1 = draw(st.lists(st.integers(0, 2), min_size=images, max_size=images))
        r = row(f"m{i}", draw(st.floats(0, 1)) if with_acc else None, draw(st.floats(0, 1)))
        if draw(st.integers(0, 9)) > 0:  # now and then a row without predictions
            r.details = {
                "predictions": Predictions(
                    np.array([[c, (c + 1) % 3] for c in top1]), np.tile([0.7, 0.3], (images, 1)).astype(np.float32), 3
                ).encode()
            }
        r.train_n = images
        rows.append(r)
    t = Thresholds(draw(st.floats(0, 1)), draw(st.floats(0, 1)), "fixed") if with_acc and draw(st.booleans()) else None
    return rows, t


@settings(max_examples=60, deadline=None)
@given(pool=pools(), rule=st.sampled_from(RULES))
def test_every_choice_says_what_its_flag_says(pool, rule) -> None:
    rows, t = pool
    choice = choose(rows, rule, t)
    if choice.pick is None:
        assert not choice.confident and not choice.why.startswith("ship")
        return
    assert choice.pick is choice.ranked[0] and choice.why.startswith(f"ship {choice.pick.name}")
    assert choice.confident == (NOT_CONFIDENT not in choice.why)
    if choice.pick.region not in (None, 1):
        assert f"its row says '{choice.pick.verdict}' (region {choice.pick.region})" in choice.why
    if all(r.train_acc is None for r in rows):
        assert not choice.confident


def test_models_that_never_agree_give_no_consensus_to_choose_by() -> None:
    """Two models that disagree on every image: each one's consensus is the other's, agreement 0%, and the line said
    'predicts the consensus ... on 0.0%' and shipped one as if the pool had a consensus."""
    rows = [agreeing("a", 0.9, 0.1, range(500)), agreeing("b", 0.9, 0.1, range(500, 1000))]
    choice = choose(rows, "agreement", FIXED)
    assert [r.agreement for r in rows] == [0.0, 0.0] and not choice.confident
    assert "is not clearly above what guessing gives (33.3% at 3 classes): the models share no consensus to choose by" in choice.why


def test_a_pick_below_the_best_agreement_of_models_sharing_no_consensus_says_why_it_comes_first() -> None:
    """Three models guessing on 300 images: agreements 41.0%, 37.0% and 35.7%, all within the noise of chance, so all
    three are near-ties and the one that fits its training labels best comes first. The line shipped it "on 35.7%",
    then named "the best agreement, 41.0%", another model's, without saying why the pick came first."""
    rng = np.random.default_rng(3)
    rows = [row(n, acc, 0.1, list(rng.integers(0, 3, 300))) for n, acc in (("a", 0.7), ("b", 0.8), ("c", 0.9))]
    choice = choose(rows, "agreement", FIXED)
    assert [round(r.agreement, 3) for r in rows] == [0.41, 0.37, 0.357] and choice.pick is rows[2] and not choice.confident
    assert "the models share no consensus to choose by" in choice.why
    assert choice.why.endswith("; of the 3 models within the noise of the best agreement it fits its training labels best (90.0%)")


def test_a_near_tie_that_fits_every_label_is_said_to_come_first_for_it() -> None:
    """Three near-ties on agreement; one fits every training label, the 100 the consensus contradicts too, so it fits
    the confirmed ones best and the order puts it first. The line said only that it "fits best the training labels the
    consensus confirms (100.0%)": a fine-tuned memorizer was shipped so from a user's pool of four ResNet-20s, with
    nothing in the line to say that it also fitted every label the consensus doubts (docs/validation.md, "A near-tie
    that fits every label")."""
    rows = [
        trained_on(agreeing("fits-all", 1.0, 0.1, range(30)), range(0)),
        trained_on(agreeing("b", 0.89, 0.1, range(20)), [*range(100), 500]),
        trained_on(agreeing("c", 0.89, 0.1, range(25)), [*range(100), 501]),
    ]
    choice = choose(rows, "agreement", FIXED)
    assert choice.pick is rows[0] and not choice.confident and len(choice.tied) == 3
    assert [round(r.fits_contradicted, 3) for r in rows] == [1.0, 0.0, 0.0]
    assert choice.why.endswith(
        "; of them it fits best the training labels the consensus confirms (100.0%), and it fits 100.0% of those the "
        "consensus contradicts, the others at most 0.0%: this order puts a model that fits every label first, right "
        "labels or wrong"
    ), choice.why
    # a near-tie order that a fit on every label does not win says nothing of it
    assert "every label" not in choose(rows, "agreement", FIXED, tie_break="memorization").why


def fitted_on(name: str, acc: float, zeta: float, right: list[bool], n_unlabeled: int = 1000) -> Result:
    """A model on 600 training images labelled 0, 1, 2 in turn that predicts the label where `right` says so and the
    next class elsewhere; on the unlabeled images it predicts class 0 except on the first tenth of those `right` misses."""
    labels = np.arange(600) % 3
    r = agreeing(name, acc, zeta, range(int(n_unlabeled * (1 - np.mean(right)) / 10)), n=n_unlabeled)
    top1 = [int(y) if ok else int(y + 1) % 3 for y, ok in zip(labels, right)]
    r.details["train_predictions"] = preds_from(top1, confidence=0.9).with_labels(labels).encode()
    r.train_n = 600
    return r


def test_the_pick_is_warned_of_a_weak_consensus_only_when_it_was_chosen_by_one() -> None:
    """Labels clean, every fitted model in region 2 (the pool's mean susceptibility sits under them all): the labels are
    judged by the two underfit models, whose consensus names them barely more often than chance, while the pick was
    chosen by the consensus of all five, which names every label. The closing line said the pick's consensus named
    the labels barely more often than chance and could put first 'a model that learned nothing they say', of a model
    that fits all its labels (a `suscli demo` pool trained on clean labels)."""
    says(
        "rank.md",
        "The `ship` line then ends \"on the training images the models' consensus names the given labels barely more often than chance",
    )
    fitted = [fitted_on(f"fit{i}", 1.0, 0.5 + i / 100, [True] * 600) for i in range(3)]
    weak = [fitted_on(f"weak{i}", 0.45, 0.01, [(k + 7 * i) % 20 < 9 for k in range(600)]) for i in range(2)]
    rows = fitted + weak
    choice = choose(rows, "agreement", Thresholds(susceptibility=0.3, train_acc=0.5, source="pool mean"))
    assert choice.labels is not None and choice.labels.weak is not None  # the label check: the two underfit models
    assert sorted(choice.labels.voter_names) == ["weak0", "weak1"] and choice.pick.name.startswith("fit")
    assert "barely more often than chance" not in choice.why
    # where the pick's consensus is the label check's, the warning stands
    alone = choose(weak + [fitted_on("weak2", 0.45, 0.01, [(k + 3) % 20 < 9 for k in range(600)])], "agreement", FIXED)
    assert alone.labels is not None and alone.labels.weak is not None and "barely more often than chance" in alone.why
