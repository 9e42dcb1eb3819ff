"""The adaptive training sample (suscli.measure.sampling): nested and seeded, grown only while decisions change, the same
numbers as the full pass where it is the whole set, and resumed without measuring anything twice."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

import suscli
import suscli.data.images
import suscli.measure.accuracy
import suscli.run.audit
import suscli.run.rank
import suscli.measure.sampling
from suscli.measure.accuracy import wilson_interval
from suscli.measure.predictions import Predictions
from suscli.data.images import ImageSource
from suscli.results import Result
from suscli.measure.sampling import Decisions, seeded_order, settle, stage_sizes, view
from tests.conftest import invoke, one_error_line, write_images
from tests.test_cli_rank import make_pool

START = 8  # the first stage in these tests: 8, 16, 32, then the whole set of 45


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    return make_pool(tmp_path / "pool")


@pytest.fixture
def big_train(tmp_path: Path) -> Path:
    """45 labelled images: more than the first stage, so that the sample can grow."""
    for c in range(3):
        write_images(tmp_path / "big-train" / f"class_{c}", 15, seed=20 + c)
    return tmp_path / "big-train"


@pytest.fixture
def small_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suscli.measure.sampling, "START", START)


def rank(pool: Path, images: Path, train: Path, *extra: object) -> tuple[dict, str]:
    res = invoke(
        "rank", pool, "-d", images, "--train-data", train, "-f", "json", "--per-image", "--batches", "2", "--batch-size", "8", *extra
    )
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), res.stderr


def accuracies(doc: dict) -> dict[str, tuple]:
    return {r["name"]: (r["train_acc"], r["train_acc_low"], r["train_acc_high"], r["train_n"]) for r in doc["results"]}


def test_the_order_is_seeded_nested_and_doubles_to_the_whole_set() -> None:
    assert seeded_order(45, 0, start=8) == seeded_order(45, 0, start=8)
    assert seeded_order(45, 0, start=8) != seeded_order(45, 1, start=8)
    assert sorted(seeded_order(45, 3, start=8)) == list(range(45))
    assert seeded_order(8, 3, start=8) == list(range(8))  # the whole set in one stage: the listing's own order
    assert stage_sizes(45, 8) == [8, 16, 32, 45]
    assert stage_sizes(5, 8) == [5]
    assert stage_sizes(64, 8) == [8, 16, 32, 64]


def test_settle_stops_once_the_decisions_repeat_and_else_reaches_the_whole_set() -> None:
    sizes = [8, 16, 32, 64, 100]
    rows = lambda n: [Result(name="m", path="m", train_n=n)]  # noqa: E731
    said = {8: "a", 16: "b", 32: "b", 64: "b", 100: "b"}
    decide = lambda r: Decisions(pick=said[r[0].train_n])  # noqa: E731
    assert settle(sizes, rows, decide, patience=1) == 32
    assert settle(sizes, rows, decide, patience=2) == 64
    assert settle(sizes, rows, lambda r: Decisions(pick=str(r[0].train_n))) == 100  # always changing: the whole set
    assert settle(sizes, rows, lambda r: None) == 8  # nothing depends on training accuracy


def test_interval_coverage_by_simulation() -> None:
    """The 95% Wilson interval of a seeded sample holds the whole set's accuracy about 95% of the time (and the
    bound is exactly 1 when every image is predicted as labelled, so a perfect fit is inside its interval)."""
    rng = np.random.default_rng(0)
    for p, n in ((0.9, 200), (0.6, 500), (0.97, 1000)):
        population = rng.random(20_000) < p
        truth = population.mean()
        held = []
        for _ in range(400):
            sample = population[rng.choice(len(population), n, replace=False)]
            low, high = wilson_interval(int(sample.sum()), n)
            held.append(low <= truth <= high)
        assert 0.92 <= np.mean(held) <= 0.98, (p, n, np.mean(held))
    for n in (250, 1000, 4000):
        assert wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0


def test_a_view_of_a_grown_row_is_the_row_measured_on_fewer_images() -> None:
    """Growth appends, a view cuts: the row seen at 3 of its 5 images is the measurement of those 3 alone."""
    classes = np.array([[0, 1], [1, 0], [2, 1], [0, 2], [1, 2]])
    labels = np.array([0, 0, 2, 1, 1])
    hits = classes[:, 0] == labels
    preds = Predictions(classes, np.full(classes.shape, 0.5, dtype=np.float32), 3, labels)
    first = suscli.measure.accuracy.from_counts(
        int(hits[:3].sum()), 3, 10, 512, predictions=Predictions(classes[:3], preds.probs[:3], 3, labels[:3]), hits=hits[:3]
    )
    rest = suscli.measure.accuracy.from_counts(
        int(hits[3:].sum()), 2, 10, 512, predictions=Predictions(classes[3:], preds.probs[3:], 3, labels[3:]), hits=hits[3:]
    )
    row = Result(
        name="m",
        path="m",
        train_acc=first.value,
        train_n=3,
        details={
            "train_acc": first.as_dict(),
            "train_predictions": first.predictions.encode(),
            "train_hits": suscli.measure.accuracy.encode_hits(first.hits),
        },
    )
    suscli.measure.sampling.begin(row, 3, [])
    grown = suscli.measure.sampling.extended(row, rest, 6, [5])  # position 5 of the order was unreadable
    assert (grown.train_n, grown.train_acc, suscli.measure.sampling.listed(grown)) == (5, hits.mean(), 6)
    assert grown.details["train_predictions"] == preds.encode()
    seen = view(grown, 3)
    assert (seen.train_acc, seen.train_acc_low, seen.train_acc_high, seen.train_n) == (row.train_acc, first.low, first.high, 3)
    assert seen.details["train_predictions"] == row.details["train_predictions"]
    assert view(grown, 6) is grown


def test_a_set_within_the_first_stage_gives_the_full_pass(pool: Path, image_folder: Path, train_folder: Path) -> None:
    """18 training images, the default first stage of 1,000: auto is the full pass, number for number."""
    auto, said = rank(pool, image_folder, train_folder)
    full, _ = rank(pool, image_folder, train_folder, "--train-samples", "all")
    assert accuracies(auto) == accuracies(full) and all(r["train_n"] == 18 for r in auto["results"])
    assert [r["details"]["train_predictions"] for r in auto["results"]] == [r["details"]["train_predictions"] for r in full["results"]]
    assert full["settings"]["train_samples"] is None and auto["settings"]["train_samples"] == "auto"
    assert "seeded sample" not in said


def test_all_is_the_full_pass_of_before(pool: Path, image_folder: Path, big_train: Path, small_start: None) -> None:
    """--train-samples all measures every image, with no interval, whatever the first stage."""
    full, _ = rank(pool, image_folder, big_train, "--train-samples", "all")
    by_api = suscli.score(
        pool / "m0.safetensors",
        image_folder,
        big_train,
        settings=suscli.Settings(suscli.SusceptibilityConfig(batches=2, batch_size=8), train_samples=None),
    ).rows[0]
    m0 = next(r for r in full["results"] if r["name"] == "m0")
    assert (m0["train_acc"], m0["train_n"]) == (by_api.train_acc, 45) and m0["train_acc_low"] == m0["train_acc_high"]


def test_the_sample_is_seeded_and_grows_while_the_decisions_change(
    pool: Path, image_folder: Path, big_train: Path, small_start: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same seed, same sample, same numbers; a different seed, another sample. Decisions that change at every size
    grow the sample to the whole set, where it gives the full pass's accuracy."""
    one, said = rank(pool, image_folder, big_train, "--results", tmp_path / "a.jsonl")
    two, _ = rank(pool, image_folder, big_train, "--results", tmp_path / "b.jsonl")
    other, _ = rank(pool, image_folder, big_train, "--results", tmp_path / "c.jsonl", "--seed", "1")
    assert accuracies(one) == accuracies(two) and accuracies(one) != accuracies(other)
    info = one["train_sample"]
    assert info["population"] == 45 and info["sizes_tried"] == [8, 16, 32, 45][: len(info["sizes_tried"])]
    sizes = {r["train_n"] for r in one["results"]}
    assert sizes == {info["images"]} and info["listed"] == info["sizes_tried"][-1]
    if info["listed"] < 45:
        assert all(r["train_acc_low"] < r["train_acc_high"] for r in one["results"]) and "seeded sample" in said
    flips = iter(range(100))
    monkeypatch.setattr(suscli.run.rank, "pool_decisions", lambda rows, *a: Decisions(pick=str(next(flips))))
    grown, said = rank(pool, image_folder, big_train, "--results", tmp_path / "d.jsonl")
    full, _ = rank(pool, image_folder, big_train, "--train-samples", "all", "--results", tmp_path / "e.jsonl")
    assert grown["train_sample"]["sizes_tried"] == [8, 16, 32, 45] and accuracies(grown) == accuracies(full)
    assert "on all 45 training images: the sample grew to the whole set" in said


def test_a_rerun_measures_nothing_again(
    pool: Path, image_folder: Path, big_train: Path, small_start: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grown rows are in the results file: a rerun reuses them at the size they reached, measuring nothing."""
    flips = iter(range(2))
    monkeypatch.setattr(suscli.run.rank, "pool_decisions", lambda rows, *a: Decisions(pick=str(next(flips, 1))))
    first, _ = rank(pool, image_folder, big_train)
    assert first["train_sample"]["listed"] == 32  # picks 0, 1, 1: settled at the third stage

    def no_measuring(*args: object, **kwargs: object) -> None:
        raise AssertionError("measured again")

    for module in (suscli.run.audit, suscli.run.model):
        monkeypatch.setattr(module, "training_accuracy", no_measuring)
    monkeypatch.setattr(suscli.run.audit, "training_accuracy_many", no_measuring)
    monkeypatch.setattr(suscli.run.rank, "pool_decisions", lambda rows, *a: Decisions(pick={8: "0"}.get(rows[0].train_n, "1")))
    again, _ = rank(pool, image_folder, big_train)
    assert again["counts"]["reused"] == 4 and accuracies(again) == accuracies(first)


def test_the_results_file_holds_each_model_once_per_stage_it_reached(
    pool: Path, image_folder: Path, big_train: Path, small_start: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each row is stored once as measured on the first stage and once per stage it grew to: a first-stage row stored
    before it was marked as one was stored again once marked, doubling the file's heaviest records."""
    flips = iter(range(2))
    monkeypatch.setattr(suscli.run.rank, "pool_decisions", lambda rows, *a: Decisions(pick=str(next(flips, 1))))
    doc, _ = rank(pool, image_folder, big_train, "--results", tmp_path / "r.jsonl")
    stages = doc["train_sample"]["sizes_tried"]
    records = [json.loads(line)["result"] for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    per_model = {r["name"]: sorted(x["train_n"] for x in records if x["name"] == r["name"]) for r in doc["results"]}
    assert len(stages) > 1 and all(n == stages for n in per_model.values()), (stages, per_model)


def test_score_without_a_gate_on_training_accuracy_stops_at_the_first_stage(
    pool: Path, image_folder: Path, big_train: Path, small_start: None
) -> None:
    res = invoke(
        "score", pool / "m1.safetensors", "-d", image_folder, "--train-data", big_train, "-f", "json", "--batches", "2", "--batch-size", "8"
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["results"][0]["train_n"] == START and doc["train_sample"]["sizes_tried"] == [START]
    assert "no decision depends on it" in res.stderr
    table = invoke(
        "score",
        pool / "m1.safetensors",
        "-d",
        image_folder,
        "--train-data",
        big_train,
        "-f",
        "markdown",
        "--batches",
        "2",
        "--batch-size",
        "8",
    )
    low, high = doc["results"][0]["train_acc_low"], doc["results"][0]["train_acc_high"]
    assert f"[{100 * low:.1f}, {100 * high:.1f}] n={START}" in table.stdout  # the interval and the images it rests on


def test_bad_train_samples_is_a_usage_error(pool: Path, image_folder: Path, train_folder: Path) -> None:
    res = invoke("rank", pool, "-d", image_folder, "--train-data", train_folder, "--train-samples", "half")
    one_error_line(res, 2, "--train-samples takes auto, all or a positive number")


def test_samples_above_the_set_size_say_that_every_image_is_measured(pool: Path, image_folder: Path, train_folder: Path) -> None:
    """--samples or --train-samples above what the set lists measures every image: a user who asked for 5,000 is told
    how many there were, on stderr (score and rank alike), and the numbers are those of no sample."""
    sized = ("--samples", "5000", "--train-samples", "100")
    doc, said = rank(pool, image_folder, train_folder, *sized)
    assert "--samples 5,000 is more than the 24 images" in said and "all 24 are measured" in said
    assert "--train-samples 100 is more than the 18 images" in said and "all 18 are measured" in said
    whole, quiet = rank(pool, image_folder, train_folder, "--train-samples", "all")
    assert "more than" not in quiet
    assert accuracies(doc) == accuracies(whole)
    model = sorted(pool.iterdir())[0]
    res = invoke("score", model, "-d", image_folder, "--train-data", train_folder, *sized, "--batches", "2", "--batch-size", "8")
    assert res.exit_code == 0, res.output
    assert "all 24 are measured" in res.stderr and "all 18 are measured" in res.stderr


def test_suspects_are_the_sampled_images_with_their_own_labels(
    pool: Path, image_folder: Path, big_train: Path, small_start: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--suspects names the images the sampled predictions are on: each path's class folder is its given label.
    The pool's decisions are held still so that the sample stops short of the whole set (this tiny random pool's
    verdicts change between sizes, which rightly grows it to every image)."""
    monkeypatch.setattr(suscli.run.rank, "pool_decisions", lambda rows, *a: Decisions(pick="the same"))
    suspects = tmp_path / "suspects.csv"
    doc, _ = rank(pool, image_folder, big_train, "--suspects", suspects)
    lines = suspects.read_text().splitlines()[1:]
    assert lines and len(lines) <= doc["train_sample"]["images"] < 45
    for line in lines:
        path, given, given_class, *_ = line.split(",")
        assert Path(path).parent.name == f"class_{given}" == given_class


def test_suspects_skip_an_unreadable_training_image_of_a_sample_that_grows(
    pool: Path, image_folder: Path, big_train: Path, small_start: None, tmp_path: Path
) -> None:
    """The sample records where its unreadable images were, so --suspects skips one, as training accuracy does, and
    every other line still names its own image (its class folder is its given label). rank.md said this exits 3."""
    for c in range(3):  # among the first images of the seeded order, whichever stage it stops at
        for i in range(3):
            (big_train / f"class_{c}" / f"{i}-broken.png").write_bytes(b"not an image")
    suspects = tmp_path / "suspects.csv"
    doc, _ = rank(pool, image_folder, big_train, "--suspects", suspects)
    assert doc["train_sample"]["listed"] > doc["train_sample"]["images"]  # broken images among those it measured
    lines = suspects.read_text().splitlines()[1:]
    assert lines and not any("-broken" in line for line in lines)
    for line in lines:
        path, given, given_class, *_ = line.split(",")
        assert Path(path).parent.name == f"class_{given}" == given_class


@pytest.mark.parametrize("batch", ["1", "2"])
def test_a_stage_none_of_whose_images_decode_is_skipped_not_every_rows_error(
    batch: str, pool: Path, image_folder: Path, big_train: Path, small_start: None
) -> None:
    """The sample's second stage (positions 8-15 of the seeded order) all unreadable: each stage is decoded on its own,
    and "none of the 8 image files could be decoded" ended every row in an error, the first stage's measurements
    lost. A set's last stage can be a few images (1,003 images: 1,000, then 3). The stage's images are now skipped,
    as unreadable images among readable ones are, and the rows keep what the readable images gave."""
    from suscli.data.images import labeled_source

    listing = labeled_source(big_train)
    for position in seeded_order(len(listing.paths), 0, START)[START : 2 * START]:
        Path(listing.paths[position]).write_bytes(b"not an image")
    doc, _ = rank(pool, image_folder, big_train, "--model-batch", batch)
    assert all(r["status"] == "ok" for r in doc["results"]), [r.get("error") for r in doc["results"]]
    sample = doc["train_sample"]
    assert sample["sizes_tried"][:2] == [START, 2 * START] and sample["listed"] >= 2 * START
    assert {r["train_n"] for r in doc["results"]} == {sample["images"]} and sample["images"] <= sample["listed"] - START


def test_the_note_on_unreadable_training_images_counts_every_stage_measured(
    pool: Path, image_folder: Path, big_train: Path, small_start: None
) -> None:
    """One unreadable image in the sample's first stage (position 0 of the seeded order) and two in its second (8, 9):
    each row's note said "1 unreadable training image(s) skipped", the first stage's alone, while the row was measured
    on both and `train_sample` held 3 fewer images than it listed. The note counts every image skipped where the row
    was measured, and names the first of them."""
    from suscli.data.images import labeled_source
    from suscli.files import printable

    listing = labeled_source(big_train)
    order = seeded_order(len(listing.paths), 0, START)
    for position in (order[0], order[START], order[START + 1]):
        Path(listing.paths[position]).write_bytes(b"not an image")
    doc, _ = rank(pool, image_folder, big_train)
    sample = doc["train_sample"]
    assert sample["listed"] >= 2 * START and sample["listed"] - sample["images"] == 3, sample
    for row in doc["results"]:
        said = [n for n in row["notes"] if "unreadable training image" in n]
        assert said == [f"3 unreadable training images skipped, first: {printable(listing.paths[order[0]])}"], row["notes"]


def test_suspects_skip_an_unreadable_image_of_a_training_set_measured_whole(
    pool: Path, image_folder: Path, big_train: Path, tmp_path: Path
) -> None:
    """Measured whole (--train-samples all, or a set of at most the first stage), one unreadable training image made
    --suspects exit 3 ("45 training images were predicted but 46 are listed"); it now gives the list the same set
    without that file gives."""
    clean, broken = tmp_path / "clean.csv", tmp_path / "broken.csv"
    rank(pool, image_folder, big_train, "--train-samples", "all", "--suspects", clean)
    (big_train / "class_1" / "00-broken.png").write_bytes(b"not an image")
    doc, _ = rank(pool, image_folder, big_train, "--train-samples", "all", "--suspects", broken)
    assert "1 unreadable training image skipped" in " ".join(doc["results"][0]["notes"])
    assert broken.read_text().splitlines() == clean.read_text().splitlines()


def test_track_measures_every_epoch_on_the_same_sample(tmp_path: Path, image_folder: Path, big_train: Path, small_start: None) -> None:
    run = make_pool(tmp_path / "run", n=3)
    for i, f in enumerate(sorted(run.glob("*.safetensors"))):
        f.rename(run / f"epoch_{i + 1}.safetensors")
    res = invoke("track", run, "-d", image_folder, "--train-data", big_train, "-f", "json", "--batches", "2", "--batch-size", "8")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    sizes = {r["train_n"] for r in doc["results"]}
    assert sizes == {doc["train_sample"]["images"]} and doc["train_sample"]["sizes_tried"][0] == START
    assert doc["recommendation"]["epoch"] is not None


def test_an_interrupted_growth_resumes_with_the_images_not_yet_measured(
    pool: Path, image_folder: Path, big_train: Path, small_start: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the sample grows: the models grown so far are kept, and the rerun measures only what is
    missing (each chunk of the stages once per model), ending with the numbers of an uninterrupted run."""
    monkeypatch.setattr(suscli.run.rank, "pool_decisions", lambda rows, *a: Decisions(pick=str(rows[0].train_n)))  # grows to 45
    real = suscli.run.audit.training_accuracy
    measured: list[int] = []

    def counted(model, inputs, *args, **kwargs):
        if len(measured) == 6:  # 4 models grown to 16, 2 to 32: interrupted
            raise KeyboardInterrupt
        measured.append(len(inputs))
        return real(model, inputs, *args, **kwargs)

    monkeypatch.setattr(suscli.run.audit, "training_accuracy", counted)
    # on the CPU, whose default --model-batch 1 grows one model at a time (CUDA's 8 grows them together, counted below)
    res = invoke(
        "rank", pool, "-d", image_folder, "--train-data", big_train, "-f", "json", "--batches", "2", "--batch-size", "8", "--device", "cpu"
    )
    assert res.exit_code == 130 and "rerun the same command to resume" in res.stderr
    assert measured == [8] * 4 + [16] * 2  # the chunks 8-16 of every model, 16-32 of two
    measured.clear()
    again, _ = rank(pool, image_folder, big_train, "--device", "cpu")
    assert sorted(measured) == sorted([16] * 2 + [13] * 4)  # 16-32 of the other two, then 32-45 of all four
    full, _ = rank(pool, image_folder, big_train, "--train-samples", "all")
    assert again["counts"]["reused"] == 4 and accuracies(again) == accuracies(full)
    # a row stored at a count that is no stage (a pool measured with another first stage) grows to the next stage first
    assert suscli.measure.sampling.NestedSample(ImageSource([]), stage_sizes(45, 8)).boundaries(20, 45) == [(20, 32), (32, 45)]


def test_model_batch_grows_models_together_with_the_same_numbers(
    pool: Path, image_folder: Path, big_train: Path, small_start: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--model-batch 4 grows the 4 models of one architecture in one vmap per batch: the counts of one at a time."""
    monkeypatch.setattr(suscli.run.rank, "pool_decisions", lambda rows, *a: Decisions(pick=str(rows[0].train_n)))  # grows to 45
    real = suscli.run.audit.training_accuracy_many
    together: list[int] = []

    def counted(models, *args, **kwargs):
        together.append(len(models))
        return real(models, *args, **kwargs)

    monkeypatch.setattr(suscli.run.audit, "training_accuracy_many", counted)
    one, _ = rank(pool, image_folder, big_train, "--results", tmp_path / "one.jsonl", "--device", "cpu")  # CUDA's default batches 8
    assert together == []
    four, _ = rank(pool, image_folder, big_train, "--results", tmp_path / "four.jsonl", "--model-batch", "4", "--device", "cpu")
    assert together == [4] * 4  # the first stage, then the chunks 8-16, 16-32 and 32-45
    assert accuracies(four) == accuracies(one) and four["train_sample"] == one["train_sample"]


SLOWER = 0.4  # seconds added to each measurement of training accuracy


def slowed_down(measure):
    def slow(*args, **kwargs):
        time.sleep(SLOWER)
        return measure(*args, **kwargs)

    return slow


def test_a_grown_row_counts_the_time_its_growth_took(
    pool: Path, image_folder: Path, big_train: Path, small_start: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row's seconds (and its JUnit testcase's time) cover the stages its training sample grew through, not only the
    first: growing at least SLOWER s slower adds at least each row's share of that time."""
    monkeypatch.setattr(suscli.run.rank, "pool_decisions", lambda rows, *a: Decisions(pick=str(next(flips))))
    flips = iter(range(100))
    quick, _ = rank(pool, image_folder, big_train, "--results", tmp_path / "a.jsonl")
    for name in ("training_accuracy", "training_accuracy_many"):  # one model grown alone, or several together
        monkeypatch.setattr(suscli.run.audit, name, slowed_down(getattr(suscli.run.audit, name)))
    flips = iter(range(100))
    slowed, _ = rank(pool, image_folder, big_train, "--results", tmp_path / "b.jsonl")
    assert slowed["train_sample"]["sizes_tried"] == quick["train_sample"]["sizes_tried"] == [8, 16, 32, 45]
    rows = len(slowed["results"])
    for a, b in zip(quick["results"], slowed["results"]):
        assert b["seconds"] - a["seconds"] >= 3 * SLOWER / rows - 0.05, (a["seconds"], b["seconds"])


def test_a_pool_of_broken_checkpoints_claims_no_training_sample(
    image_folder: Path, big_train: Path, small_start: None, tmp_path: Path
) -> None:
    """Nothing was measured: the closing lines said 'training accuracy on all 0 training images: the sample grew to the
    whole set'."""
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("a.safetensors", "b.pt"):
        (broken / name).write_bytes(b"not a checkpoint")
    res = invoke("rank", broken, "-d", image_folder, "--train-data", big_train, "-f", "json")
    assert res.exit_code == 3 and [r["status"] for r in json.loads(res.stdout)["results"]] == ["error", "error"], res.output
    assert "training accuracy on" not in res.stderr and "2 models could not be scored" in res.stderr


def test_a_pool_where_every_model_failed_tries_no_larger_sample(
    tmp_path: Path, image_folder: Path, big_train: Path, small_start: None
) -> None:
    """With no model measured, the decisions (none) were equal at every stage, and the report listed every stage as tried."""
    (tmp_path / "broken").mkdir()
    for name in ("a", "b"):
        (tmp_path / "broken" / f"{name}.safetensors").write_bytes(b"not a checkpoint")
    res = invoke("rank", tmp_path / "broken", "-d", image_folder, "--train-data", big_train, "-f", "json")
    assert res.exit_code == 3, res.output
    assert json.loads(res.stdout)["train_sample"]["sizes_tried"] == [START]


def test_a_stage_that_would_not_fit_in_memory_stops_the_sample_at_the_stage_before(
    pool: Path, big_train: Path, small_start: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next stage's images refused for memory turned every model into an error row, losing the stages measured;
    now the sample stops at the last stage that fitted, says why, and a rerun with the memory grows it further."""
    few = tmp_path / "few"
    write_images(few, 8)
    monkeypatch.setattr(suscli.run.rank, "pool_decisions", lambda rows, *a: Decisions(pick=str(rows[0].train_n)))  # always grows
    monkeypatch.setattr(suscli.data.images, "available_memory", lambda: 2 * 12 * 3 * 8 * 8)  # 12 images of 3x8x8: 8 fit, 16 do not
    args = ("rank", pool, "-d", few, "--train-data", big_train, "-f", "json", "--batches", "1", "--batch-size", "8")
    res = invoke(*args, "--results", tmp_path / "r.jsonl")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [r["status"] for r in doc["results"]] == ["ok"] * 4 and {r["train_n"] for r in doc["results"]} == {16}
    info = doc["train_sample"]
    assert info["sizes_tried"] == [8, 16] and info["listed"] == 16 and info["stopped"].startswith("decoding 16 images at 8x8")
    assert "16 of 45 training images: the sample stopped growing, because decoding 16 images" in " ".join(res.stderr.split())
    monkeypatch.setattr(suscli.data.images, "available_memory", lambda: None)
    again = invoke(*args, "--results", tmp_path / "r.jsonl")
    grown = json.loads(again.stdout)
    assert again.exit_code == 0 and grown["train_sample"]["listed"] == 45 and grown["train_sample"]["stopped"] is None
