"""--val-data: held-out images with their (noisy) labels, one eval pass per model; accuracy, interval, gap and hits."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import binom

import suscli
import suscli.measure.sampling
from suscli.data.images import decode_images
from suscli.errors import InputError, UsageError
from suscli.data.imagesets import list_images
from suscli.judge.rules import choose
from suscli.load.checkpoints import load_checkpoint
from suscli.measure.accuracy import decode_hits, encode_hits, gap, mcnemar_p, training_accuracy, wilson_interval
from suscli.measure.batched import training_accuracy_many
from suscli.results import Result
from suscli.run.audit import VAL_NUMBERING
from suscli.run.store import fingerprint
from suscli.run.epochs import held_out_epoch, held_out_line, recommendation
from suscli.views.columns import display_columns
from suscli.views.formats import markdown_text
from tests.conftest import cli_json, invoke, one_error_line, tiny_cnn, write_images
from tests.test_cli_rank import ARCH, make_pool
from tests.test_rules import preds_from

FAST = ("--batches", "2", "--batch-size", "8")
SMALL = suscli.Settings(suscli.SusceptibilityConfig(batches=2, batch_size=8), train_samples=None)


@pytest.fixture
def val_folder(tmp_path: Path) -> Path:
    """Held-out images of two of the three training classes: class_1 is missing, so its own sorted folders would
    number class_2 as 1; the training set's folders number it 2."""
    for c in (0, 2):
        write_images(tmp_path / "val" / f"class_{c}", 7, seed=40 + c)
    return tmp_path / "val"


def hits_by_hand(model: torch.nn.Module, folder: Path) -> np.ndarray:
    """Per held-out image, whether the model predicts its class folder's class (pixels scaled to [0, 1], as a
    checkpoint without normalization is fed)."""
    want, hits = {"class_0": 0, "class_2": 2}, []
    for sub in sorted(folder.iterdir()):
        pixels = decode_images(list_images(sub), 8).pixels.float() / 255.0
        with torch.no_grad():
            hits += (model.eval()(pixels).argmax(-1) == want[sub.name]).tolist()
    return np.array(hits)


def softmax_by_hand(model: torch.nn.Module, folder: Path) -> np.ndarray:
    """Per held-out image, in the order of hits_by_hand, the model's softmax."""
    out = []
    for sub in sorted(folder.iterdir()):
        pixels = decode_images(list_images(sub), 8).pixels.float() / 255.0
        with torch.no_grad():
            out.append(model.eval()(pixels).softmax(-1).numpy())
    return np.concatenate(out)


def test_held_out_accuracy_equals_a_count_by_hand(tmp_path: Path, image_folder: Path, train_folder: Path, val_folder: Path) -> None:
    torch.manual_seed(3)
    model = tiny_cnn(3)
    suscli.save(model, tmp_path / "m.safetensors", arch="tests.conftest:tiny_cnn", arch_kwargs={"num_classes": 3}, image_size=8)
    row = suscli.score(tmp_path / "m.safetensors", image_folder, train_folder, settings=SMALL, val_data=val_folder).rows[0]
    hits = hits_by_hand(model, val_folder)
    assert row.val_n == 14 and row.val_acc == hits.sum() / 14
    assert (row.val_acc_low, row.val_acc_high) == pytest.approx(wilson_interval(int(hits.sum()), 14))
    assert row.train_acc is not None and row.gap == pytest.approx(row.train_acc - row.val_acc)
    assert row.gap_low is not None and row.gap_high is not None and row.gap_low < row.gap < row.gap_high
    assert decode_hits(row.details["val_hits"]).tolist() == hits.tolist()  # in the order of the held-out listing
    # the details' counts carried a census's interval (low = high = the accuracy) beside the row's Wilson interval
    assert (row.details["val_acc"]["low"], row.details["val_acc"]["high"]) == (row.val_acc_low, row.val_acc_high)
    assert row.details["val_acc"]["correct"] == hits.sum() and row.details["val_acc"]["total"] == 14
    plain = suscli.score(tmp_path / "m.safetensors", image_folder, train_folder, settings=SMALL).rows[0]
    assert plain.val_acc is None and plain.gap is None and "val_hits" not in plain.details  # without it, as before
    assert (plain.susceptibility, plain.train_acc) == (row.susceptibility, row.train_acc)


def test_the_held_out_pass_is_called_held_out_accuracy_in_progress_and_errors(
    tmp_path: Path, image_folder: Path, train_folder: Path, val_folder: Path
) -> None:
    """The held-out pass runs the training-accuracy code; the progress display and its errors name it for what it is."""
    make_pool(tmp_path / "pool", n=1)
    seen: list[str] = []
    suscli.score(
        tmp_path / "pool" / "m0.safetensors", image_folder, train_folder, settings=SMALL, val_data=val_folder,
        progress=lambda what, done, total: seen.append(what),
    )  # fmt: skip
    assert "held-out accuracy" in seen and "training accuracy" in seen
    assert seen.index("held-out accuracy") > max(i for i, w in enumerate(seen) if w == "training accuracy")  # the last pass
    model = tiny_cnn(3)
    with pytest.raises(InputError, match="^held-out accuracy needs as many labels as images"):
        training_accuracy(model, torch.zeros(2, 3, 8, 8), torch.zeros(3, dtype=torch.long), what="held-out accuracy")
    with pytest.raises(InputError, match="^held-out accuracy needs as many labels as images"):
        training_accuracy_many([model, tiny_cnn(3)], torch.zeros(2, 3, 8, 8), torch.zeros(3, dtype=torch.long), what="held-out accuracy")


def test_a_held_out_set_that_cannot_be_read_is_named_as_held_out_not_training_data(tmp_path: Path, image_folder: Path) -> None:
    make_pool(tmp_path / "pool", n=1)
    write_images(tmp_path / "one" / "class_0", 3)
    for given, words in (
        (tmp_path / "missing", "labelled images not found"),
        (tmp_path / "one", "a single class folder (class_0); a set of one class cannot measure accuracy"),
    ):
        res = invoke("score", tmp_path / "pool" / "m0.safetensors", "-d", image_folder, "--val-data", given)
        assert res.exit_code == 3 and words in res.stderr and "--val-data" in res.stderr, res.output
        assert "--train-data" not in res.stderr and "training" not in res.stderr


def test_a_held_out_class_the_training_set_lacks_is_an_error(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    write_images(tmp_path / "odd" / "class_9", 3)
    make_pool(tmp_path / "pool", n=1)
    res = invoke(
        "score", tmp_path / "pool" / "m0.safetensors", "-d", image_folder, "--train-data", train_folder, "--val-data", tmp_path / "odd"
    )
    assert res.exit_code != 0 and "class_9" in res.output


def test_a_held_out_class_the_training_folders_lack_is_refused_once_before_any_model(
    tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """The training set's class folders number every model's held-out labels alike, so a class they lack fails
    them all: rank and track printed the same error in every row, and stderr said only "2 model(s) could not be
    scored (see their rows)". Now it is one line naming the class, before any model is loaded."""
    write_images(tmp_path / "odd" / "class_0", 3)
    write_images(tmp_path / "odd" / "class_9", 3, seed=5)
    pool = make_pool(tmp_path / "pool", n=2)
    (tmp_path / "run").mkdir()
    for i, m in enumerate(sorted(pool.glob("*.safetensors")), start=1):
        shutil.copy(m, tmp_path / "run" / f"epoch_{i}.safetensors")
    for command, models in (("rank", pool), ("track", tmp_path / "run")):
        res = invoke(command, models, "-d", image_folder, "--train-data", train_folder, "--val-data", tmp_path / "odd", *FAST)
        one_error_line(res, 3, "class folder class_9 is not among the training set's classes", "--val-data needs the classes")
        assert not (models / "suscli-results.jsonl").exists()


def test_held_out_images_of_another_size_or_colour_than_the_training_images_are_noted(
    tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """The demo's test set made 64 px grayscale read 30.4% held-out accuracy for the 92.6% of the same images as
    they were, and its labels decided, for a memorizer, without a word on why. Images like the training images, or
    a set of many sizes, get no note."""
    for c in range(2):
        write_images(tmp_path / "gray" / f"class_{c}", 3, size=16, mode="L", seed=60 + c)
        write_images(tmp_path / "like" / f"class_{c}", 3, seed=70 + c)
        write_images(tmp_path / "mixed" / f"class_{c}", 1, size=8 + 8 * c, mode="L", seed=80 + c)
    model = make_pool(tmp_path / "pool", n=1) / "m0.safetensors"

    def notes(val: str) -> list[str]:
        row = suscli.score(model, image_folder, train_folder, settings=SMALL, val_data=tmp_path / val).rows[0]
        assert row.val_n == (2 if val == "mixed" else 6)
        return [n for n in row.notes if n.startswith("held-out images are")]

    assert notes("gray") == [
        "held-out images are 16x16 grayscale, training images 8x8 colour (the first 20 of each): held-out accuracy "
        "measures the model on images unlike those it learned from"
    ]
    assert notes("like") == notes("mixed") == []


def constant(first: int, classes: list[str] | None, path: Path) -> Path:
    """A 3-class checkpoint that predicts class `first` for every image, naming its classes `classes` (or none)."""
    from tests.test_labels import constant as model

    meta = {"classes": classes} if classes else {}
    return suscli.save(model(first), path, arch="tests.conftest:tiny_cnn", num_classes=3, image_size=8, **meta)


NAMED = ["class_1", "class_0", "class_2"]  # the model's own class names: class_0 is its id 1, class_2 its id 2


def test_held_out_folders_without_training_folders_are_numbered_by_the_models_class_names(
    tmp_path: Path, image_folder: Path, val_folder: Path
) -> None:
    """val_folder holds class_0 and class_2 only: by its own sorted folders class_2 would be id 1. Without --train-data
    (or with one labelled by id) the checkpoint's class names number them, in score, rank (measured together) and track."""
    pool = tmp_path / "pool"
    says_2 = constant(2, NAMED, pool / "a.safetensors")
    constant(0, NAMED, pool / "b.safetensors")
    ids_csv = tmp_path / "train.csv"  # training labels as class ids: no folders to number the held-out set by
    ids_csv.write_text("".join(f"{p},{i % 3}\n" for i, p in enumerate(sorted(image_folder.rglob("*.png")))))
    for extra in ((), ("--train-data", ids_csv)):
        row = cli_json("score", says_2, "-d", image_folder, "--val-data", val_folder, *extra)["results"][0]
        assert (row["val_acc"], row["val_n"]) == (0.5, 14)  # the 7 images of class_2, its id 2
    rows = {r["name"]: r for r in cli_json("rank", pool, "-d", image_folder, "--val-data", val_folder, "--model-batch", "2")["results"]}
    assert (rows["a"]["val_acc"], rows["b"]["val_acc"]) == (0.5, 0.0)  # no image is of its id 0 (class_1)
    run = tmp_path / "run"
    constant(2, NAMED, run / "epoch_1.safetensors")
    constant(0, NAMED, run / "epoch_2.safetensors")
    assert [r.val_acc for r in suscli.track(run, image_folder, settings=SMALL, val_data=val_folder).rows] == [0.5, 0.0]
    write_images(val_folder / "zebra", 2)
    one_error_line(
        invoke("score", says_2, "-d", image_folder, "--val-data", val_folder, *FAST), 3, "class folder zebra names no class of the model"
    )


def test_held_out_folders_nothing_can_number_are_refused(tmp_path: Path, image_folder: Path, val_folder: Path) -> None:
    """A model that names no classes, two held-out class folders of its three, no training folders: refused in one line
    that says why and what to pass; as many folders as the model's classes are numbered as ImageFolder numbers them."""
    pool = tmp_path / "pool"  # epochs of a run, for track too
    model = constant(2, None, pool / "epoch_1.safetensors")
    constant(0, None, pool / "epoch_2.safetensors")
    lines = [one_error_line(invoke("score", model, "-d", image_folder, "--val-data", val_folder, *FAST), 3)]
    ranked = invoke("rank", pool, "-d", image_folder, "--val-data", val_folder, "-f", "json", *FAST)  # each model's row says why
    assert ranked.exit_code == 3, ranked.output
    lines += [r["error"] for r in json.loads(ranked.stdout)["results"]]
    lines += [r.error or "" for r in suscli.track(pool, image_folder, settings=SMALL, val_data=val_folder).rows]
    assert len(lines) == 5
    for line in lines:
        assert "2 class folders for the model's 3 classes cannot be numbered" in line and "names no classes" in line, line
        assert "--train-data as class folders" in line and "path,label CSV of class ids" in line
    write_images(val_folder / "class_1", 3, seed=41)  # as many folders as classes: sorted, class_2 is id 2
    row = cli_json("score", model, "-d", image_folder, "--val-data", val_folder)["results"][0]
    assert (row["val_acc"], row["val_n"]) == (7 / 17, 17)
    write_images(val_folder / "class_3", 2)  # one more than the model has: named
    one_error_line(
        invoke("score", model, "-d", image_folder, "--val-data", val_folder, *FAST),
        3,
        "class folder class_3 is beyond the model's 3 classes",
    )


def test_rank_reports_held_out_accuracy_in_json_csv_and_table(
    tmp_path: Path, image_folder: Path, train_folder: Path, val_folder: Path
) -> None:
    """Every model of the pool (measured together on the batched path) gets the held-out numbers; JSON and CSV carry
    them, the table shows them; the batched path gives the numbers of the single-model path."""
    pool = make_pool(tmp_path / "pool")
    common = (
        "rank",
        pool,
        "-d",
        image_folder,
        "--train-data",
        train_folder,
        "--val-data",
        val_folder,
        "--batches",
        "2",
        "--batch-size",
        "8",
    )
    res = invoke(
        *common, "-f", "json", "--per-image", "--model-batch", "4", "--results", tmp_path / "r.jsonl", "--plot", tmp_path / "r.png"
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(res.stdout)
    assert doc["data"]["val_images"] == 14
    held = doc["choice"]["held_out"]  # the choice was made on the held-out hits: the pick leads, or is tied with the leader
    assert held["n"] == 14 and doc["choice"]["pick"] == held["pick"] == doc["results"][0]["name"]
    assert held["pick"] in held["within_noise"] and "held-out images" in doc["recommendation"]
    weights = held["weights"]  # how held-out accuracy and the label-free order were weighed, as the closing line says
    assert set(weights) == {"reliability", "agreement", "held_out", "label_free"} and held["undecided_by"] in (
        "label-free order",
        "held-out accuracy",
        "both",
    )
    assert (held["undecided_by"] == "label-free order") == (weights["held_out"] == 0)
    for r in doc["results"]:
        assert r["val_n"] == 14 and 0 <= r["val_acc_low"] <= r["val_acc"] <= r["val_acc_high"] <= 1
        assert r["gap"] == pytest.approx(r["train_acc"] - r["val_acc"])
        alone = suscli.score(pool / f"{r['name']}.safetensors", image_folder, train_folder, settings=SMALL, val_data=val_folder).rows[0]
        assert r["val_acc"] == alone.val_acc and r["details"]["val_hits"] == alone.details["val_hits"]
    # the voters' consensus on the held-out labels, computed here from their softmax (3 classes: all kept)
    noise = doc["label_noise"]
    summed = sum(softmax_by_hand(load_checkpoint(pool / f"{name}.safetensors").model, val_folder) for name in noise["voter_names"])
    want = {"class_0": 0, "class_2": 2}
    held_labels = np.array([want[sub.name] for sub in sorted(val_folder.iterdir()) for _ in list_images(sub)])
    assert noise["held_out"]["images"] == 14 and noise["held_out"]["voters"] == len(noise["voter_names"])
    assert noise["held_out"]["rate"] == pytest.approx(float((summed.argmax(1) != held_labels).mean()))
    # raised where the held-out share is clearly above the training interval (binomial tail under 2.5%), and the
    # consensus is not too weak to read
    training_high = noise["high"] if noise["training_high"] is None else noise["training_high"]
    contradicted = int((summed.argmax(1) != held_labels).sum())
    weak = noise["not_enough_evidence"] is not None and "Cohen's kappa" in noise["not_enough_evidence"]
    raised = not weak and binom.sf(contradicted - 1, 14, training_high) < 0.025
    assert (noise["training_high"] is not None) == raised
    assert noise["high"] == (noise["held_out"]["high"] if raised else training_high)
    res = invoke(*common, "-f", "csv", "--results", tmp_path / "r.jsonl")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert {"val_acc", "val_acc_low", "val_acc_high", "val_n", "gap"} <= rows[0].keys() and all(r["val_n"] == "14" for r in rows)
    summary = tmp_path / "summary.md"  # GitHub's step summary: the Markdown table and the closing line, held-out numbers in both
    res = invoke(*common, "-f", "markdown", "--results", tmp_path / "r.jsonl", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert res.exit_code == 0, res.output
    assert "held-out acc" in res.stdout and "gap" in res.stdout and "n=14" in res.stdout
    for r in doc["results"]:  # the gap with its interval, as JSON gives it: a gap is read against it
        assert f"{100 * r['gap']:+.1f} pts [{100 * r['gap_low']:+.1f}, {100 * r['gap_high']:+.1f}]" in res.stdout
    assert summary.read_text().startswith(res.stdout) and doc["recommendation"] in summary.read_text()
    res = invoke(*common, "--html", tmp_path / "r.html", "--results", tmp_path / "r.jsonl")
    assert res.exit_code == 0, res.output
    page = (tmp_path / "r.html").read_text()
    assert "held-out acc" in page and "held-out accuracy" in page and "of 14 held-out images" in page
    res = invoke(*common, "-f", "junit", "--results", tmp_path / "r.jsonl")
    assert res.exit_code == 0, res.output
    assert (
        len(re.findall(r"; held-out accuracy [0-9.]+% \[[0-9., ]+\] of 14 images; gap [-+0-9.]+ points \[[-+0-9., ]+\]", res.stdout)) == 4
    )


def test_results_measured_without_the_held_out_set_are_not_reused_with_it(
    tmp_path: Path, image_folder: Path, train_folder: Path, val_folder: Path
) -> None:
    pool = make_pool(tmp_path / "pool", n=2)
    common = ("rank", pool, "-d", image_folder, "--train-data", train_folder, "--batches", "2", "--batch-size", "8", "-f", "json")
    first = invoke(*common)
    assert first.exit_code == 0, first.output
    assert all(r["val_acc"] is None for r in json.loads(first.stdout)["results"])
    second = invoke(*common, "--val-data", val_folder)
    assert second.exit_code == 0, second.output
    doc = json.loads(second.stdout)
    assert doc["counts"]["reused"] == 0 and all(r["val_n"] == 14 for r in doc["results"])
    third = invoke(*common, "--val-data", val_folder)  # the same held-out set: reused, with its numbers
    again = json.loads(third.stdout)
    assert again["counts"]["reused"] == 2 and [r["val_acc"] for r in again["results"]] == [r["val_acc"] for r in doc["results"]]
    fourth = json.loads(invoke(*common).stdout)  # and without it, the first results again
    assert fourth["counts"]["reused"] == 2 and all(r["val_acc"] is None for r in fourth["results"])


def test_results_of_the_old_held_out_numbering_are_measured_again(
    tmp_path: Path, image_folder: Path, train_folder: Path, val_folder: Path
) -> None:
    """Held-out results written before class folders were numbered by name (no val_numbering in their settings, as
    an earlier suscli wrote them) may hold accuracies on wrongly numbered labels, and those of version 2 lack the top
    classes the held-out noise reading needs: neither is reused, and the rerun has the reading."""
    pool = make_pool(tmp_path / "pool", n=2)
    common = ("rank", pool, "-d", image_folder, "--train-data", train_folder, "--val-data", val_folder, "--batches", "2", "-f", "json")
    assert invoke(*common).exit_code == 0
    results = pool / "suscli-results.jsonl"
    written = results.read_text()
    for earlier in (None, 2):
        records = [json.loads(line) for line in written.splitlines()]
        for record in records:  # as the earlier version wrote them
            assert record["settings"].pop("val_numbering") == VAL_NUMBERING
            if earlier is not None:
                record["settings"]["val_numbering"] = earlier
                del record["result"]["details"]["val_predictions"]
            record["fingerprint"] = fingerprint(record["settings"])
        results.write_text("".join(json.dumps(r) + "\n" for r in records))
        again = invoke(*common)
        assert again.exit_code == 0, again.output
        doc = json.loads(again.stdout)
        said = "numbering of held-out classes differs" if earlier is None else "holds results of an earlier suscli"
        assert doc["counts"]["reused"] == 0 and said in again.stderr
        assert doc["label_noise"]["held_out"]["images"] == 14


def make_run(run: Path) -> Path:
    """Epochs 1-3 of a run: tiny models of different seeds, so that their held-out accuracies differ."""
    run.mkdir()
    for epoch in (1, 2, 3):
        torch.manual_seed(epoch)
        suscli.save(
            tiny_cnn(3), run / f"epoch_{epoch}.safetensors", arch="tests.conftest:tiny_cnn", arch_kwargs={"num_classes": 3}, image_size=8
        )
    return run


def test_track_measures_every_epoch_on_the_held_out_set(tmp_path: Path, image_folder: Path, train_folder: Path, val_folder: Path) -> None:
    run = make_run(tmp_path / "run")
    report = suscli.track(run, image_folder, train_folder, settings=SMALL, val_data=val_folder)
    assert [r.val_n for r in report.rows] == [14, 14, 14]
    best = max(report.rows, key=lambda r: (r.val_acc, -r.epoch))  # the earliest of the most accurate on held-out labels
    held = report.run["held_out"]
    assert (held["epoch"], held["val_acc"], held["n"]) == (best.epoch, best.val_acc, 14)
    assert report.keep is not None and held["keep_epoch"] == report.keep.epoch
    closing = report.lines[-1]
    assert closing.startswith(f"keep epoch {report.keep.epoch}") and f"by held-out accuracy, epoch {best.epoch}" in closing
    assert f"{100 * best.val_acc:.1f}% of 14 held-out images" in closing
    assert ("the same epoch" in closing) == (best is report.keep) and "held_out" not in suscli.track(
        run, image_folder, train_folder, settings=SMALL
    ).run
    with pytest.raises(UsageError, match="--val-data"):
        suscli.track(log=tmp_path / "x.jsonl", val_data=val_folder)
    assert [r.held_out_best for r in report.rows] == [r is best for r in report.rows]
    assert all(r.held_out_best is None for r in suscli.track(run, image_folder, train_folder, settings=SMALL).rows)


def test_track_marks_both_epochs_to_keep_in_every_view(tmp_path: Path, image_folder: Path, train_folder: Path, val_folder: Path) -> None:
    """The keep rule's epoch and the held-out set's: `keep` and `held_out_best` in JSON, CSV and load_results, the
    `keep` column of the table, Markdown and HTML, a line of the epoch's JUnit testcase."""
    run = make_run(tmp_path / "run")
    common = ("track", run, "-d", image_folder, "--train-data", train_folder, "--val-data", val_folder, *FAST)
    res = invoke(*common, "-f", "json", "-o", tmp_path / "track.json", "--plot", tmp_path / "track.png")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "track.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads((tmp_path / "track.json").read_text())
    rows = doc["results"]
    best = [r["epoch"] for r in rows if r["held_out_best"]]
    kept = [r["epoch"] for r in rows if r["keep"]]
    assert best == [doc["held_out"]["epoch"]] and kept == [doc["recommendation"]["epoch"]]
    assert all(r["held_out_best"] is False for r in rows if r["epoch"] not in best)
    frame = suscli.load_results(tmp_path / "track.json")
    assert frame["held_out_best"].tolist() == [r["held_out_best"] for r in rows]
    table = list(csv.DictReader(io.StringIO(invoke(*common, "-f", "csv").stdout)))
    assert [r["held_out_best"] for r in table] == [str(r["held_out_best"]) for r in rows]

    def marker(epoch: int) -> str:
        return ", ".join(w for w, on in (("keep", epoch in kept), ("best held-out", epoch in best)) if on)

    summary = tmp_path / "summary.md"  # GitHub's step summary: track's table and its closing line, as rank's
    res = invoke(*common, "-f", "markdown", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert summary.read_text().startswith(res.stdout) and doc["recommendation"]["text"] in summary.read_text()
    markdown = res.stdout.splitlines()
    header = [c.strip() for c in markdown[2].strip("|").split("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in markdown[4:] if line.startswith("| epoch_")]
    assert [c[header.index("keep")] for c in cells] == [marker(r["epoch"]) for r in rows]
    assert "best held-out" in invoke(*common, "-f", "table").stdout
    page = invoke(*common, "-f", "html").stdout
    assert "best held-out" in page and "by held-out accuracy" in page and "by the --keep train-acc rule" in page  # the rule named
    junit = invoke(*common, "-f", "junit").stdout
    assert junit.count("the epoch with the highest held-out accuracy") == 1 and junit.count("the epoch to keep (--keep train-acc)") == 1
    assert junit.count("; zeta ") == sum(r["zeta"] is not None for r in rows)  # the run's own number, on each epoch it has


def ranked_row(name: str, zeta: float, top1: list[int], hits: np.ndarray | None) -> Result:
    """A measured row with predictions on the unlabeled images and, when given, its hits on 200 held-out images."""
    details = {"predictions": preds_from(top1).encode()}
    if hits is not None:
        details["val_hits"] = encode_hits(hits)
    return Result(name=name, path=name, train_acc=0.9, susceptibility=zeta, details=details, val_acc=None if hits is None else hits.mean())


def held_out_hits(right: int, first: int = 0, n: int = 200) -> np.ndarray:
    """`right` of `n` held-out images right, a run of them from `first` (wrapping)."""
    hits = np.zeros(n, dtype=bool)
    hits[[(first + i) % n for i in range(right)]] = True
    return hits


TRUTH = [0, 1, 2] * 20  # 60 unlabeled images: a agrees with the others' consensus most, so the label-free order puts it first
TOP1 = {"a": TRUTH, "b": TRUTH[:50] + [1] * 10, "c": TRUTH[:48] + [2] * 12, "d": TRUTH[:40] + [1] * 20}


def pool_rows(hits: dict[str, np.ndarray] | None) -> list[Result]:
    return [ranked_row(k, 0.1 + i / 100, top1, None if hits is None else hits[k]) for i, (k, top1) in enumerate(TOP1.items())]


def test_the_held_out_set_decides_when_it_separates_the_leader() -> None:
    label_free = choose(pool_rows(None), "agreement", None)
    assert label_free.pick is not None and label_free.pick.name == "a" and label_free.held_out is None
    hits = {"a": held_out_hits(120), "b": held_out_hits(180, 20), "c": held_out_hits(110), "d": held_out_hits(100)}
    choice = choose(pool_rows(hits), "agreement", None)
    assert choice.pick is not None and choice.pick.name == "b" and choice.confident
    assert [r.name for r in choice.ranked] == ["b", "a", "c", "d"] and [r.name for r in choice.tied] == ["b"]
    assert "90.0% of 200 held-out images" in choice.why and "the held-out labels decide" in choice.why
    assert choice.held_out is not None and choice.held_out["decisive"] and choice.held_out["label_free_pick"] == "a"


def test_a_held_out_pick_the_verdict_flags_says_so_in_its_line() -> None:
    """The held-out labels rank by accuracy on new images, not by verdict: when they pick a model whose row says
    'likely memorized noise' (as on the fine-tuned zoo, whose memorizers test best), the line says both."""
    from suscli.judge.rules import _with_held_out
    from suscli.judge.verdict import MEMORIZED
    from suscli.measure.accuracy import encode_hits

    rows = pool_rows(None)
    label_free = choose(rows, "agreement", None)
    hits = {"a": held_out_hits(120), "b": held_out_hits(180, 20), "c": held_out_hits(110), "d": held_out_hits(100)}
    for r in rows:
        r.details["val_hits"] = encode_hits(hits[r.name])
        r.verdict = MEMORIZED if r.name == "b" else None
    choice = _with_held_out(label_free, "agreement")
    assert choice.pick is not None and choice.pick.name == "b" and choice.confident
    assert choice.why.endswith(
        "the held-out labels decide; its row says 'likely memorized noise', yet no model is clearly more accurate on the held-out labels"
    )


def test_the_label_free_order_breaks_the_ties_the_held_out_set_leaves() -> None:
    """b leads by 4 images, which a paired test cannot call: a and b are the tied set. b's errors fall on other images
    than a's, so the halves of the held-out set disagree on the two and the label-free order (a first) orders them;
    c and d are clearly below b."""
    hits = {"a": held_out_hits(150), "b": held_out_hits(154, 46), "c": held_out_hits(100), "d": held_out_hits(90)}
    choice = choose(pool_rows(hits), "agreement", None)
    assert choice.pick is not None and choice.pick.name == "a" and not choice.confident
    assert [r.name for r in choice.tied] == ["a", "b"] and [r.name for r in choice.ranked] == ["a", "b", "c", "d"]
    assert "75.0% of 200 held-out images" in choice.why and "b leads with 77.0%" in choice.why and "no confident choice" in choice.why
    same = {k: held_out_hits(150) for k in TOP1}  # a held-out set that tells no model apart: the label-free order, unchanged
    tied = choose(pool_rows(same), "agreement", None)
    assert [r.name for r in tied.ranked] == [r.name for r in choose(pool_rows(None), "agreement", None).ranked]
    assert not tied.confident and len(tied.tied) == 4


def ordered_pool(images: int, reverse: bool = True) -> list[Result]:
    """12 models with held-out accuracies in the reverse of their label-free order (or in that order): the k-th in
    that order is right on 50% + 2k points (72% - 2k) of `images` held-out images (independent errors, seeded). On
    4,000 images a paired test calls models 4 or more points apart, not neighbours."""
    tops = {f"m{k}": TRUTH[: 60 - 2 * k] + [(c + 1) % 3 for c in TRUTH[60 - 2 * k :]] for k in range(12)}
    bare = [ranked_row(name, 0.1 + k / 100, top1, None) for k, (name, top1) in enumerate(tops.items())]
    order = [r.name for r in choose(bare, "agreement", None).ranked]
    draws = np.random.default_rng(0).random((12, 4000))
    return [
        ranked_row(
            name, 0.1 + k / 100, top1, draws[k, :images] < (0.50 + 0.02 * order.index(name) if reverse else 0.72 - 0.02 * order.index(name))
        )
        if images
        else row
        for k, ((name, top1), row) in enumerate(zip(tops.items(), bare))
    ]


def test_held_out_accuracy_orders_what_the_test_leaves_when_it_predicts_itself_better() -> None:
    """4,000 held-out images: on every halving, held-out accuracy on one half predicts the other half's better than the
    label-free order (its reverse) does, so it orders the pairs the paired test leaves, and the pick is its leader."""
    rows = ordered_pool(4000)
    choice = choose(rows, "agreement", None)
    assert choice.held_out is not None and choice.held_out["undecided_by"] == "held-out accuracy"
    accuracy = sorted(rows, key=lambda r: -(r.val_acc or 0.0))
    assert [r.name for r in choice.ranked] == [r.name for r in accuracy]  # neighbours too, which the test leaves
    assert choice.pick is not None and choice.pick.name == accuracy[0].name
    accuracy[1].details["val_hits"] = accuracy[0].details["val_hits"]  # a twin of the leader: the pick is not decisive
    twin = choose(rows, "agreement", None)
    assert twin.held_out is not None and not twin.confident and twin.held_out["undecided_by"] == "held-out accuracy"
    assert (
        "held-out accuracy alone puts it first of the models that no model beats on the held-out set (held-out accuracy's split-half reliability"
        in twin.why
    )
    assert twin.why.count("the label-free order adds nothing") == 1
    # the same accuracies in the label-free order: held-out accuracy on a half does not predict the other half better
    # than that order does, which keeps the pairs the test leaves
    right = choose(ordered_pool(4000, reverse=False), "agreement", None)
    assert right.held_out is not None and right.held_out["undecided_by"] == "label-free order"
    assert [r.name for r in right.ranked] == [r.name for r in choose(ordered_pool(0), "agreement", None).ranked]


def test_the_held_out_line_names_three_of_a_large_tied_set_and_counts_the_rest() -> None:
    """A held-out set too small to tell 12 models apart: the closing line names 3 of the 11 others and counts the rest,
    as the label-free line does, and the JSON report's held_out.within_noise keeps every name. It named all of them:
    on a pool of 100 near-equal models one line on stderr (and in the Markdown and HTML reports) held 99 names."""
    choice = choose(ordered_pool(20), "agreement", None)
    assert choice.held_out is not None and len(choice.held_out["within_noise"]) == 12 and len(choice.tied) == 12
    held_line = choice.why.split(". Label-free: ")[0]
    others = [r.name for r in choice.tied if r is not choice.pick]
    assert "the held-out set cannot tell 11 other models from it (paired McNemar test, 95%): " in held_line
    assert f"{', '.join(others[:3])} and 8 more;" in held_line and others[3] not in held_line


def model_hits(accuracies: list[float], images: int, seed: int = 0) -> list[np.ndarray]:
    """Per model, independent hits on `images` held-out images at its accuracy (seeded)."""
    draws = np.random.default_rng(seed).random((len(accuracies), images))
    return [d < a for d, a in zip(draws, accuracies)]


def test_the_blend_is_the_least_squares_weighting_computed_independently() -> None:
    """Split-half reliability, Spearman-Brown, the label-free order's correlation taken one standard error high (the
    spread of its Fisher z over the halves), and the least-squares weights, recomputed here with scipy on the same
    seeded halvings."""
    from scipy.stats import spearmanr

    from suscli.judge.held_out import SPLIT_SEED, SPLITS, blend

    acc = [0.60, 0.66, 0.58, 0.64, 0.55, 0.62, 0.52, 0.57, 0.50, 0.54, 0.47, 0.49]  # in the label-free order
    hits = model_hits(acc, 600)
    got = blend(hits)
    h = np.stack(hits).astype(float)
    rng = np.random.default_rng(SPLIT_SEED)
    halves, z = [], []
    for _ in range(SPLITS):
        order = rng.permutation(600)
        one, two = h[:, order[:300]].mean(1), h[:, order[300:]].mean(1)
        halves.append(spearmanr(one, two).statistic)
        z += [np.arctanh(spearmanr(one, -np.arange(12)).statistic), np.arctanh(spearmanr(two, -np.arange(12)).statistic)]
    r = np.mean(halves)
    reliability = 2 * r / (1 + r)
    agreement = spearmanr(h.mean(1), -np.arange(12)).statistic
    free = np.tanh(np.arctanh(agreement) + np.std(z)) / np.sqrt(reliability)
    w_held = (np.sqrt(reliability) - agreement * free) / (1 - agreement**2)
    w_free = (free - agreement * np.sqrt(reliability)) / (1 - agreement**2)
    assert got.reliability == pytest.approx(reliability) and got.agreement == pytest.approx(agreement)
    assert 0 < got.held_out and 0 < got.label_free  # the case where both count
    assert (got.held_out, got.label_free) == (pytest.approx(w_held), pytest.approx(w_free))


def test_few_labels_leave_the_order_to_the_label_free_evidence_and_many_to_the_held_out_set() -> None:
    """The same 12 models, whose label-free order is only roughly right: on 25 held-out images the held-out set's
    halves barely agree and the label-free order keeps the pairs the test leaves; on 4,000 the held-out set ranks the
    pool reliably and weighs more than the label-free order, which still counts."""
    from suscli.judge.held_out import blend, blended_order

    acc = [0.60, 0.66, 0.58, 0.64, 0.55, 0.62, 0.52, 0.57, 0.50, 0.54, 0.47, 0.49]  # in the label-free order
    few, many = blend(model_hits(acc, 25)), blend(model_hits(acc, 4000))
    assert (few.held_out, few.label_free) == (0.0, 1.0) and few.reliability < 0.5
    assert blended_order(model_hits(acc, 25), few) == list(range(12))
    assert many.reliability > 0.95 and many.held_out > many.label_free > 0
    assert blended_order(model_hits(acc, 4000), many)[:2] == [1, 3]  # the two most accurate, in their order


def test_a_held_out_order_the_label_free_order_matches_exactly_is_weighed_without_error() -> None:
    """Four models far apart on 1,000 held-out images, in the label-free order: every halving ranks them the same, so
    held-out accuracy and the label-free order are one ranking (agreement 1) and their least-squares weights have no
    single answer; the label-free order alone orders them, as where it agrees closely. Reversed, held-out accuracy
    alone does. (rank --val-data on such a pool ended in "internal error: LinAlgError: Singular matrix".)"""
    from suscli.judge.held_out import blend, blended_order

    same = model_hits([0.95, 0.8, 0.6, 0.2], 1000)
    weights = blend(same)
    assert weights.agreement == pytest.approx(1.0) and (weights.held_out, weights.label_free) == (0.0, 1.0)
    assert blended_order(same, weights) == [0, 1, 2, 3]
    reverse = blend(same[::-1])
    assert reverse.agreement == pytest.approx(-1.0) and (reverse.held_out, reverse.label_free) == (1.0, 0.0)


def test_mcnemar_p_is_the_exact_binomial_test() -> None:
    from scipy.stats import binomtest

    for b, c in [(0, 0), (3, 0), (10, 2), (40, 60), (7, 7), (1000, 1100)]:
        want = 1.0 if b + c == 0 else binomtest(min(b, c), b + c, 0.5).pvalue
        assert mcnemar_p(b, c) == pytest.approx(want, rel=1e-9)


def test_track_sets_the_held_out_epoch_beside_the_kept_one() -> None:
    def epoch(e: int, hits: np.ndarray) -> Result:
        return Result(
            name=f"epoch_{e}", path="", epoch=e, train_acc=0.5 + e / 10, susceptibility=0.1, zeta=0.1,
            val_acc=float(hits.mean()), val_n=len(hits), details={"val_hits": encode_hits(hits)},
        )  # fmt: skip

    rows = [epoch(0, held_out_hits(199)), epoch(1, held_out_hits(180)), epoch(2, held_out_hits(180, 7)), epoch(3, held_out_hits(120))]
    rows[0].held_out_best = True  # a mark left from an earlier run goes
    held = held_out_epoch(rows, rows[3])  # never the initialization; the earliest of equals
    assert held is not None and (held["epoch"], held["n"], held["separated"]) == (1, 200, True)
    assert held["p"] == mcnemar_p(60, 0) and [r.held_out_best for r in rows] == [False, True, False, False]
    line = recommendation(rows, rows[3], "train-acc", held)
    assert (
        "by held-out accuracy, epoch 1 (90.0% of 200 held-out images), clearly above epoch 3's 60.0% "
        f"(30.0 points; paired McNemar test, p = {mcnemar_p(60, 0):.2g} < 0.05)"
    ) in line
    trained_0 = held_out_epoch(rows, rows[3], count_epoch_0=True)  # epoch 0 trained (--count-epoch-0): a candidate too
    assert trained_0 is not None and trained_0["epoch"] == 0 and rows[0].held_out_best
    close = held_out_epoch(rows, rows[2])  # 7 images only epoch 1 gets right, 7 only epoch 2
    assert close is not None and close["separated"] is False and close["p"] == 1.0
    assert "not separated by the held-out set from epoch 2's 90.0% (0.0 points; paired McNemar test, p = 1 >= 0.05)" in held_out_line(close)
    rows[3].keep = True
    keep_column = dict(display_columns(rows))["keep"]
    assert keep_column == ["", "best held-out", "", "keep"]
    rows[1].keep, rows[3].keep = True, False
    assert dict(display_columns(rows))["keep"] == ["", "keep, best held-out", "", ""]
    del rows[3].details["val_hits"]  # hits not on the same images: the accuracies and the difference, no test
    apart = held_out_epoch(rows, rows[3])
    assert apart is not None and apart["separated"] is None and apart["p"] is None
    assert "30.0 points above epoch 3's 60.0% (no paired test" in held_out_line(apart)
    assert "the same epoch" in held_out_line(held_out_epoch(rows, rows[1]) or {}) and held_out_epoch(rows[:1], None) is None
    same = held_out_epoch(rows, rows[1])  # the JSON report's held_out had no keep_val_acc, separated or p here
    assert same is not None and (same["keep_val_acc"], same["separated"], same["p"]) == (0.9, None, None)


def test_held_out_hits_on_some_models_only_leave_the_label_free_choice_and_say_so() -> None:
    hits = {"a": held_out_hits(120), "b": held_out_hits(180, 20), "c": held_out_hits(110), "d": held_out_hits(100)}
    rows = pool_rows(hits)
    del rows[1].details["val_hits"]
    choice = choose(rows, "agreement", None)
    assert choice.pick is not None and choice.pick.name == "a" and choice.held_out is None
    assert "the held-out labels were not used" in choice.why


def with_majority(rows: list[Result], label: str | int, share: float) -> list[Result]:
    """`rows` whose held-out set's commonest label is `label`, `share` of its images (as score_checkpoint keeps it)."""
    for r in rows:
        r.details["val_majority"] = {"class": label, "share": share}
    return rows


def test_a_pick_no_clearer_than_answering_the_commonest_held_out_label_says_so() -> None:
    """On 90% 'ok' held-out labels a pool at 89.2-90.2% shipped its best as if it were better than anything, which a
    model answering 'ok' on every image scored 89.4%: the line now says no model clearly beats that, and the choice
    is not confident even where the held-out set separates the pick from every other model."""
    hits = {"a": held_out_hits(120), "b": held_out_hits(180, 20), "c": held_out_hits(110), "d": held_out_hits(100)}
    plain = choose(pool_rows(hits), "agreement", None)
    choice = choose(with_majority(pool_rows(hits), "ok", 0.895), "agreement", None)  # b's 90.0%: P(X >= 180) = 0.47
    assert choice.pick is not None and choice.pick.name == "b" and plain.confident and not choice.confident
    assert choice.why == (
        f"{plain.why}; still no confident choice: no model is clearly more accurate on the held-out labels than answering 'ok' "
        "for every image (89.5% of 200)"
    )
    assert choice.held_out is not None and choice.held_out["decisive"]
    assert choice.held_out["baseline"] == {"class": "ok", "share": 0.895, "clearly_beaten": False}
    # a tied pick under a leader that beats it: a leads at 75.0% (P = 0.07 at 70%), b at 77.0% (P = 0.017)
    hits = {"a": held_out_hits(150), "b": held_out_hits(154, 46), "c": held_out_hits(100), "d": held_out_hits(90)}
    tied = choose(with_majority(pool_rows(hits), 1, 0.7), "agreement", None)
    assert tied.pick is not None and tied.pick.name == "a" and not tied.confident
    assert (
        "; it is not clearly more accurate on the held-out labels than answering class 1 for every image (70.0% of 200). Label-free:"
        in tied.why
    )


def test_a_balanced_held_out_set_or_rows_without_its_commonest_label_change_nothing() -> None:
    """About 1 / classes on balanced labels: a pick well above it reads as before; rows stored before the commonest
    label was kept (or with it damaged) say nothing of it."""
    hits = {"a": held_out_hits(120), "b": held_out_hits(180, 20), "c": held_out_hits(110), "d": held_out_hits(100)}
    plain = choose(pool_rows(hits), "agreement", None)
    assert plain.held_out is not None and plain.held_out["baseline"] is None
    balanced = choose(with_majority(pool_rows(hits), "cat", 0.34), "agreement", None)
    assert balanced.why == plain.why and balanced.confident and balanced.held_out is not None
    assert balanced.held_out["baseline"] == {"class": "cat", "share": 0.34, "clearly_beaten": True}
    damaged = choose(with_majority(pool_rows(hits), "cat", 1.5), "agreement", None)
    assert damaged.why == plain.why and damaged.held_out is not None and damaged.held_out["baseline"] is None


def test_a_pick_stored_without_the_commonest_label_is_weighed_against_the_one_the_other_rows_hold() -> None:
    """Every row of a choice holds hits on the same held-out images, so any row's commonest label is the pick's: a pick
    reused from a results file an earlier release wrote (no val_majority) beside rows measured now was shipped as the
    held-out labels' confident choice, the check skipped, as if no row held the label."""
    hits = {"a": held_out_hits(120), "b": held_out_hits(180, 20), "c": held_out_hits(110), "d": held_out_hits(100)}
    rows = with_majority(pool_rows(hits), "ok", 0.895)
    del next(r for r in rows if r.name == "b").details["val_majority"]  # the pick, stored before it was kept
    choice = choose(rows, "agreement", None)
    assert choice.pick is not None and choice.pick.name == "b" and not choice.confident
    assert choice.held_out is not None and choice.held_out["baseline"] == {"class": "ok", "share": 0.895, "clearly_beaten": False}


def test_rank_says_what_answering_the_commonest_held_out_label_scores_and_reads_it_back(
    tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """9 of 10 held-out images are class_0: no model can clearly beat 90.0% on 10 images. Measured together and alone,
    each row keeps that label and share; the results file gives the same line again, and rows stored without it (an
    earlier release's) give the line without the clause."""
    write_images(tmp_path / "val" / "class_0", 9, seed=40)
    write_images(tmp_path / "val" / "class_2", 1, seed=42)
    pool = make_pool(tmp_path / "pool")
    common = ("rank", pool, "-d", image_folder, "--train-data", train_folder, "--val-data", tmp_path / "val", *FAST, "-f", "json")
    first = invoke(*common, "--model-batch", "4")
    assert first.exit_code == 0, first.output
    doc = json.loads(first.stdout)
    said = "than answering 'class_0' for every image (90.0% of 10)"
    assert said in doc["recommendation"] and not doc["choice"]["confident"]
    assert doc["choice"]["held_out"]["baseline"] == {"class": "class_0", "share": 0.9, "clearly_beaten": False}
    alone = suscli.score(pool / "m0.safetensors", image_folder, train_folder, settings=SMALL, val_data=tmp_path / "val").rows[0]
    assert alone.details["val_majority"] == {"class": "class_0", "share": 0.9}
    again = json.loads(invoke(*common).stdout)
    assert again["counts"]["reused"] == 4 and again["recommendation"] == doc["recommendation"]
    results = pool / "suscli-results.jsonl"
    records = [json.loads(line) for line in results.read_text().splitlines()]
    for record in records:
        del record["result"]["details"]["val_majority"]
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    older = json.loads(invoke(*common).stdout)
    assert older["counts"]["reused"] == 4 and older["choice"]["held_out"]["baseline"] is None
    clause = rf"; (still no confident choice: )?no model is clearly more accurate on the held-out labels {re.escape(said)}"
    assert older["recommendation"] == re.sub(clause, "", doc["recommendation"]) != doc["recommendation"]


def test_the_gap_follows_the_training_sample_as_it_grows(
    tmp_path: Path, image_folder: Path, val_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the adaptive training sample (first stage of 8 of 45 images here), every row's gap is its training accuracy
    on the sample it settled on minus its held-out accuracy, with the interval of those two intervals."""
    for c in range(3):
        write_images(tmp_path / "big-train" / f"class_{c}", 15, seed=20 + c)
    monkeypatch.setattr(suscli.measure.sampling, "START", 8)
    pool = make_pool(tmp_path / "pool")
    settings = suscli.Settings(suscli.SusceptibilityConfig(batches=2, batch_size=8))
    report = suscli.rank(pool, image_folder, tmp_path / "big-train", settings=settings, val_data=val_folder)
    assert report.run["train_sample"]["population"] == 45 and report.run["train_sample"]["sizes_tried"][-1] > 8  # it grew
    for r in report.rows:
        assert r.train_acc is not None and r.val_acc is not None and r.gap == pytest.approx(r.train_acc - r.val_acc)
        want = gap((r.train_acc, r.train_acc_low, r.train_acc_high), (r.val_acc, r.val_acc_low, r.val_acc_high))
        assert (r.gap_low, r.gap_high) == pytest.approx(want[1:])


def test_held_out_images_that_are_training_images_are_left_out_and_noted(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """A held-out list naming three training files (by another path) and two new images. The three were measured
    with the others, their accuracy a training accuracy: with the training set itself as --val-data, the demo pool's
    closing line shipped its worst memorizer, "clearly above every other model's" on held-out labels (100.0% of
    1,500), and a resisting model's held-out accuracy read lower with them. Now they are left out, and said so."""
    fresh = write_images(tmp_path / "new", 2, seed=77)
    listed = [*(train_folder / "class_0").iterdir()][:3]
    lines = (
        ["path,label"] + [f"../train/class_0/../class_0/{p.name},0" for p in listed] + [f"../new/{p.name},{i}" for i, p in enumerate(fresh)]
    )
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "val.csv").write_text("\n".join(lines) + "\n")
    pool = make_pool(tmp_path / "pool", n=2)
    model = pool / "m0.safetensors"
    row = suscli.score(model, image_folder, train_folder, settings=SMALL, val_data=tmp_path / "lists" / "val.csv").rows[0]
    assert row.val_n == 2
    note = next(n for n in row.notes if n.startswith("3 of 5 held-out images are also training images"))
    assert note.endswith("left out, since their accuracy is a training accuracy")
    (tmp_path / "lists" / "new.csv").write_text("\n".join(lines[:1] + lines[-2:]) + "\n")
    clean = suscli.score(model, image_folder, train_folder, settings=SMALL, val_data=tmp_path / "lists" / "new.csv").rows[0]
    assert not any("also training images" in n for n in clean.notes)
    assert (row.val_acc, row.val_acc_low, row.gap) == (clean.val_acc, clean.val_acc_low, clean.gap)  # the two new images alone
    assert row.details["val_hits"] == clean.details["val_hits"]
    everything = invoke("rank", pool, "-d", image_folder, "--train-data", train_folder, "--val-data", train_folder, *FAST)
    one_error_line(everything, 3, "all 18 of its images are training images", "pass images the models did not train on")
    with pytest.raises(InputError, match="--val-data takes"):  # a layout error names the option it is about
        suscli.score(model, image_folder, train_folder, settings=SMALL, val_data=tmp_path / "new")


def test_held_out_images_are_checked_against_every_training_image_not_only_the_sample(
    tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """With --train-samples N the training set read was the sample alone: the training set itself as --val-data
    was measured as held out, all but the N sampled images, and its note said only N of them were training images."""
    model = make_pool(tmp_path / "pool", n=1) / "m0.safetensors"
    sampled = suscli.Settings(suscli.SusceptibilityConfig(batches=2, batch_size=8), train_samples=4)
    with pytest.raises(InputError, match="all 18 of its images are training images"):
        suscli.score(model, image_folder, train_folder, settings=sampled, val_data=train_folder)


def test_hard_links_to_training_images_are_training_images(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """A held-out split made with `cp -al` (hard links: the training files themselves under new names) was measured
    as held out, since only resolved paths were compared."""
    for sub in train_folder.iterdir():
        (tmp_path / "linked" / sub.name).mkdir(parents=True)
        for f in sub.iterdir():
            os.link(f, tmp_path / "linked" / sub.name / f"copy-{f.name}")
    model = make_pool(tmp_path / "pool", n=1) / "m0.safetensors"
    with pytest.raises(InputError, match="all 18 of its images are training images"):
        suscli.score(model, image_folder, train_folder, settings=SMALL, val_data=tmp_path / "linked")


def test_copies_of_training_images_under_other_names_are_left_out(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """A held-out folder made with `cp` (new files, new names, the same bytes) from three training images, beside two
    new images: the copies were measured as held out, their accuracy a training accuracy. Now they are left out
    with a note naming a copy and its original, and the numbers are those of the two new images alone; a held-out
    set of copies alone is refused."""
    for c in range(2):
        write_images(tmp_path / "new" / f"class_{c}", 1, seed=90 + c)
    shutil.copytree(tmp_path / "new", tmp_path / "val")
    for f in sorted((train_folder / "class_0").iterdir())[:3]:
        shutil.copy(f, tmp_path / "val" / "class_0" / f"copied-{f.name}")
    model = make_pool(tmp_path / "pool", n=1) / "m0.safetensors"
    row = suscli.score(model, image_folder, train_folder, settings=SMALL, val_data=tmp_path / "val").rows[0]
    alone = suscli.score(model, image_folder, train_folder, settings=SMALL, val_data=tmp_path / "new").rows[0]
    assert row.val_n == alone.val_n == 2
    assert (row.val_acc, row.val_acc_low, row.val_acc_high, row.gap) == (alone.val_acc, alone.val_acc_low, alone.val_acc_high, alone.gap)
    note = next(n for n in row.notes if n.startswith("3 of 5 held-out images are copies of training images, byte for byte"))
    assert "copied-img_000.png, a copy of " in note and note.endswith("left out, since their accuracy is a training accuracy")
    assert not any("copies" in n for n in alone.notes)
    shutil.copytree(train_folder, tmp_path / "copy")
    every = invoke("score", model, "-d", image_folder, "--train-data", train_folder, "--val-data", tmp_path / "copy", *FAST)
    one_error_line(every, 3, "all 18 of its images are copies of training images", "pass images the models did not train on")


def test_an_empty_held_out_file_is_unreadable_not_a_copy_of_an_empty_training_file(
    tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """A download that failed leaves a file of 0 bytes, often in the training and the held-out folders alike: the
    held-out one was left out as "a copy of" the training one, byte for byte, and not counted as unreadable. An
    empty file holds no image to copy; it is an unreadable held-out image, as in a set without one in training."""
    for c in range(2):
        write_images(tmp_path / "val" / f"class_{c}", 2, seed=90 + c)
    (train_folder / "class_0" / "failed.jpg").write_bytes(b"")
    (tmp_path / "val" / "class_1" / "failed.jpg").write_bytes(b"")
    model = make_pool(tmp_path / "pool", n=1) / "m0.safetensors"
    row = suscli.score(model, image_folder, train_folder, settings=SMALL, val_data=tmp_path / "val").rows[0]
    assert row.val_n == 4
    assert not any("copies of training images" in n for n in row.notes), row.notes
    assert f"1 unreadable held-out image skipped, first: {tmp_path / 'val' / 'class_1' / 'failed.jpg'}" in row.notes


def test_a_rerun_with_other_images_left_out_reuses_no_row_and_no_note(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """The same held-out images, then with copies of training images beside them, then alone again: each kept set
    is the same, so the rows of the first run were reused by the second without the note that 3 of its 5 images
    were left out (n=2 for 5 passed, said nowhere), and the rows of the second by the third, with a note naming
    copies in a folder the third run was not given."""
    for c in range(2):
        write_images(tmp_path / "new" / f"class_{c}", 1, seed=90 + c)
    shutil.copytree(tmp_path / "new", tmp_path / "val")
    for f in sorted((train_folder / "class_0").iterdir())[:3]:
        shutil.copy(f, tmp_path / "val" / "class_0" / f"copied-{f.name}")
    pool = make_pool(tmp_path / "pool", n=2)

    def notes_of(val: Path) -> list[list[str]]:
        report = suscli.rank(pool, image_folder, train_folder, settings=SMALL, val_data=val)
        assert all(r.val_n == 2 for r in report.rows)
        return [[n for n in r.notes if "held-out images" in n] for r in report.rows]

    assert notes_of(tmp_path / "new") == [[], []]
    copied = notes_of(tmp_path / "val")
    assert all(len(n) == 1 and n[0].startswith("3 of 5 held-out images are copies of training images") for n in copied)
    assert notes_of(tmp_path / "new") == [[], []]


def test_a_held_out_class_name_the_model_lacks_asks_to_check_the_held_out_labels(tmp_path: Path, image_folder: Path) -> None:
    """Held-out labels by class name, one the model does not know: the fix told the user to check the training set,
    which was not given or not at fault."""
    model = constant(2, NAMED, tmp_path / "m.safetensors")
    images = sorted(image_folder.rglob("*.png"))[:4]
    (tmp_path / "val.csv").write_text(
        "path,label\n" + "".join(f"{p},{n}\n" for p, n in zip(images, ["class_0", "Class_2", "class_1", "class_2"]))
    )
    line = one_error_line(invoke("score", model, "-d", image_folder, "--val-data", tmp_path / "val.csv", *FAST), 3, "class 'Class_2'")
    assert "check that the held-out set is labelled with the model's classes" in line and "training" not in line, line


def test_held_out_class_names_numbered_in_sorted_order_say_so(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """A model naming no classes, training labels by class id and held-out labels by class name: the names were
    numbered in their sorted order without a word, where the training set's names get a note saying so, and a
    model whose ids follow another order read a wrong held-out accuracy as right."""
    model = constant(0, None, tmp_path / "m.safetensors")
    files = sorted(train_folder.rglob("*.png"))
    (tmp_path / "train.csv").write_text("path,label\n" + "".join(f"{p},{p.parent.name[-1]}\n" for p in files))
    (tmp_path / "val.csv").write_text(
        "path,label\n" + "".join(f"{p},class_{i % 3}\n" for i, p in enumerate(sorted(image_folder.rglob("*.png"))[:6]))
    )
    row = suscli.score(model, image_folder, tmp_path / "train.csv", settings=SMALL, val_data=tmp_path / "val.csv").rows[0]
    assert row.val_n == 6
    assert [n for n in row.notes if n.startswith("held-out class names numbered in sorted order")]
    named = constant(0, NAMED, tmp_path / "named.safetensors")  # its own names number them: nothing to say
    row = suscli.score(named, image_folder, tmp_path / "train.csv", settings=SMALL, val_data=tmp_path / "val.csv").rows[0]
    assert not [n for n in row.notes if "numbered in sorted order" in n]


def test_a_held_out_image_listed_twice_is_counted_once(tmp_path: Path, image_folder: Path, train_folder: Path, val_folder: Path) -> None:
    """A held-out CSV listing each of 4 images 10 times (splits concatenated, or a file appended to twice) was measured
    as 40 images: n=40 and an interval as narrow as 40 images give, for the evidence of 4."""
    images = sorted(val_folder.rglob("*.png"))[:2] + sorted(val_folder.rglob("*.png"))[-2:]
    once = "path,label\n" + "".join(f"{p},{p.parent.name[-1]}\n" for p in images)
    (tmp_path / "once.csv").write_text(once)
    (tmp_path / "ten.csv").write_text(once + once.split("\n", 1)[1] * 9)
    model = make_pool(tmp_path / "pool", n=1) / "m0.safetensors"
    want = suscli.score(model, image_folder, train_folder, settings=SMALL, val_data=tmp_path / "once.csv").rows[0]
    row = suscli.score(model, image_folder, train_folder, settings=SMALL, val_data=tmp_path / "ten.csv").rows[0]
    assert (row.val_n, row.val_acc, row.val_acc_low, row.val_acc_high) == (4, want.val_acc, want.val_acc_low, want.val_acc_high)
    assert row.details["val_hits"] == want.details["val_hits"]
    assert any(n.startswith(f"{tmp_path / 'ten.csv'}: 36 of 40 rows repeat an image and label listed before") for n in row.notes), row.notes


def test_a_held_out_class_name_differing_only_in_case_says_so(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """Held-out labels written CLASS_0 for the training set's class_0 (or the model's own names): refused, as names
    are compared exactly, and the line now says which known class the name differs from only in case."""
    images = sorted(image_folder.rglob("*.png"))[:4]
    (tmp_path / "val.csv").write_text(
        "path,label\n" + "".join(f"{p},{n}\n" for p, n in zip(images, ["CLASS_0", "class_1", "Class_2", "class_1"]))
    )
    named = constant(2, NAMED, tmp_path / "named.safetensors")
    plain = make_pool(tmp_path / "pool", n=1) / "m0.safetensors"
    for model, train in ((named, ()), (plain, ("--train-data", train_folder))):
        res = invoke("score", model, "-d", image_folder, *train, "--val-data", tmp_path / "val.csv", *FAST)
        one_error_line(res, 3, "'CLASS_0' differs from the class 'class_0' only in case")


def test_a_held_out_set_none_of_whose_images_decode_is_named(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """Said only "none of the 2 image files under FOLDER could be decoded", for score and each row of rank: a folder
    that may hold the training or unlabeled images too."""
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_text("not an image")
    (tmp_path / "val.csv").write_text("path,label\na.png,0\nb.png,1\n")
    pool = make_pool(tmp_path / "pool", n=2)
    line = one_error_line(invoke("score", pool / "m0.safetensors", "-d", image_folder, "--val-data", tmp_path / "val.csv", *FAST))
    assert line.startswith(f"error: held-out set {tmp_path / 'val.csv'}: none of the 2 image files"), line
    for batch in ("1", "2"):  # one model at a time, and together (vmap)
        given = ("--val-data", tmp_path / "val.csv", "--model-batch", batch, "-f", "json")
        res = invoke("rank", pool, "-d", image_folder, "--train-data", train_folder, *given, *FAST)
        assert res.exit_code == 3 and all(r["error"].startswith("held-out set") for r in json.loads(res.stdout)["results"]), res.output


def test_an_unlabeled_or_training_set_none_of_whose_images_decode_is_named_with_the_first_error(
    tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """Said "none of the 2 image files under train/a could be decoded": the first file's folder, not the set given
    (a training set of class folders a and b), and no reason. Now the set as given, and the first file's error."""
    for folder in ("bad/a", "bad/b"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "x.png").write_text("not an image")
    bad, first = tmp_path / "bad", tmp_path / "bad" / "a" / "x.png"
    pool = make_pool(tmp_path / "pool", n=2)
    reason = f"none of the 2 image files could be decoded, the first ({first}): UnidentifiedImageError: cannot identify"
    line = one_error_line(invoke("score", pool / "m0.safetensors", "-d", bad, *FAST), 3, reason)
    assert line.startswith(f"error: unlabeled set {bad}: none of the 2"), line
    line = one_error_line(invoke("score", pool / "m0.safetensors", "-d", image_folder, "--train-data", bad, *FAST), 3, reason)
    assert line.startswith(f"error: training set {bad}: none of the 2"), line
    (tmp_path / "val.csv").write_text(f"path,label\n{first},0\n{bad / 'b' / 'x.png'},1\n")
    given = ("-d", image_folder, "--val-data", tmp_path / "val.csv", *FAST)
    line = one_error_line(invoke("score", pool / "m0.safetensors", *given), 3, reason)
    assert line.startswith(f"error: held-out set {tmp_path / 'val.csv'}: none of the 2"), line
    for batch in ("1", "2"):  # one model at a time, and together (vmap)
        res = invoke("rank", pool, "-d", image_folder, "--train-data", bad, "--model-batch", batch, "-f", "json", *FAST)
        errors = [r["error"] for r in json.loads(res.stdout)["results"]]
        assert res.exit_code == 3 and all(e.startswith(f"training set {bad}: {reason}") for e in errors), res.output
        res = invoke("rank", pool, "-d", bad, "--model-batch", batch, "-f", "json", *FAST)
        errors = [r["error"] for r in json.loads(res.stdout)["results"]]
        assert res.exit_code == 3 and all(e.startswith(f"unlabeled set {bad}: {reason}") for e in errors), res.output


def test_a_held_out_set_no_model_has_the_classes_of_is_said_once(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """Held-out class ids beyond every model's classes printed the same two-line error, naming each model's file, in
    every row of rank's table, and closed on "3 model(s) could not be scored (see their rows)"."""
    files = write_images(tmp_path / "held", 10, seed=40)
    labels = tmp_path / "val.csv"
    labels.write_text("path,label\n" + "".join(f"{p},{i % 5}\n" for i, p in enumerate(files)))
    make_pool(tmp_path / "pool", n=3)
    res = invoke("rank", tmp_path / "pool", "-d", image_folder, "--train-data", train_folder, "--val-data", labels, "-f", "markdown", *FAST)
    said = f"on the held-out set {labels}: the held-out labels go up to 4 but the model has 3 classes"
    table = "\n".join(line for line in res.stdout.splitlines() if line.startswith("|"))
    assert res.exit_code == 3 and table.count(said) == 1 and table.count("the same error as m0") == 2, res.output
    ending = f"error: 3 models could not be scored, all alike: {said}"
    assert ending in res.stderr and res.stdout.rstrip().splitlines()[-1].startswith(markdown_text(ending))


@pytest.mark.parametrize("batch", ["1", "2"])
def test_labels_beyond_the_models_classes_are_refused_before_anything_is_measured(
    batch: str, tmp_path: Path, image_folder: Path, train_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held-out (or training) class ids beyond the 3 classes the checkpoints name were found only in the accuracy
    pass, after susceptibility and predictions; models measured together (--model-batch 2) were then measured
    again one at a time. Now the labels are checked against each checkpoint's class count before any measurement."""
    import suscli.run.audit
    import suscli.run.model

    measured: list[str] = []
    for module, name in ((suscli.run.model, "measure_susceptibility"), (suscli.run.audit, "measure_many")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k: measured.append(_name) or _real(*a, **k))
    files = write_images(tmp_path / "held", 10, seed=40)
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{p},{i % 5}\n" for i, p in enumerate(files)))
    pool = make_pool(tmp_path / "pool", n=2)
    common = ("rank", pool, "-d", image_folder, "--model-batch", batch, "--no-cache", *FAST)
    res = invoke(*common, "--train-data", train_folder, "--val-data", labels)
    said = f"on the held-out set {labels}: the held-out labels go up to 4 but the model has 3 classes"
    assert res.exit_code == 3 and f"error: 2 models could not be scored, all alike: {said}" in res.stderr, res.output
    res = invoke(*common, "--train-data", labels, "-f", "json")
    errors = [r["error"] for r in json.loads(res.stdout)["results"]]
    said = f"on the training set {labels}: the training labels go up to 4 but the model has 3 classes ("
    assert res.exit_code == 3 and [e.startswith(said) for e in errors] == [True] * 2
    assert measured == []


def test_training_labels_no_model_has_the_classes_of_are_said_once(tmp_path: Path, image_folder: Path) -> None:
    """Training class ids beyond every model's classes gave each row an error naming its own checkpoint file, so the
    rows' errors differed and stderr closed on "3 model(s) could not be scored (see their rows)"."""
    files = write_images(tmp_path / "train", 10, seed=41)
    labels = tmp_path / "train.csv"
    labels.write_text("path,label\n" + "".join(f"{p},{i % 5}\n" for i, p in enumerate(files)))
    make_pool(tmp_path / "pool", n=3)
    res = invoke("rank", tmp_path / "pool", "-d", image_folder, "--train-data", labels, "-f", "markdown", *FAST)
    said = f"on the training set {labels}: the training labels go up to 4 but the model has 3 classes"
    table = "\n".join(line for line in res.stdout.splitlines() if line.startswith("|"))
    assert res.exit_code == 3 and table.count(said) == 1 and table.count("the same error as m0") == 2, res.output
    ending = f"error: 3 models could not be scored, all alike: {said}"
    assert ending in res.stderr and res.stdout.rstrip().splitlines()[-1].startswith(markdown_text(ending))


_AUX_HEAD_NET = """from torch import nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.ReLU())
        self.fc = nn.Linear(16, 3)
        self.coarse = nn.Linear(16, 2)  # an auxiliary head training uses; the forward gives the classifier's logits
    def forward(self, x):
        return self.fc(self.body(x))
def net():
    return Net()
"""


def test_labels_within_the_models_outputs_are_measured_where_the_checkpoint_names_fewer_classes(
    tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """The class count inferred from a checkpoint's last 2-D weight is a guess: an auxiliary 2-class head declared
    after the 3-class classifier. The labels were checked against it before measuring, and the model refused as
    "the training labels go up to 2 but the model has 2 classes", though its passes measure it on its 3 logits."""
    (tmp_path / "net.py").write_text(_AUX_HEAD_NET)
    torch.manual_seed(0)
    namespace: dict = {}
    exec(_AUX_HEAD_NET, namespace)
    torch.save(namespace["net"]().state_dict(), tmp_path / "m.pt")
    res = invoke(
        "score", tmp_path / "m.pt", "-d", image_folder, "--train-data", train_folder, "--arch", f"{tmp_path / 'net.py'}:net", "-f", "json"
    )
    row = json.loads(res.stdout)["results"][0]
    assert res.exit_code == 0 and row["status"] == "ok" and row["train_acc"] is not None, res.output
    assert any("the model outputs 3 classes, where --num-classes or its file said 2" in n for n in row["notes"]), row["notes"]


def test_a_held_out_folders_rows_are_reused_for_a_list_of_its_ids_in_any_order_not_for_one_of_its_names(
    tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """The held-out images are put in their folder's order, so a list of them backwards is the folder's set where it
    gives the labels as the folder does (ids, the folders' sorted order); class names are labels given another way."""
    for c in range(3):
        write_images(tmp_path / "val" / f"class_{c}", 4, seed=50 + c)
    images = sorted((tmp_path / "val").rglob("*.png"))
    (tmp_path / "ids.csv").write_text("path,label\n" + "".join(f"{p},{p.parent.name[-1]}\n" for p in reversed(images)))
    (tmp_path / "names.csv").write_text("path,label\n" + "".join(f"{p},{p.parent.name}\n" for p in reversed(images)))
    common = ("rank", make_pool(tmp_path / "pool"), "-d", image_folder, "--train-data", train_folder, *FAST, "-f", "json")
    assert invoke(*common, "--val-data", tmp_path / "val").exit_code == 0
    for listed, reused in (("ids.csv", 4), ("names.csv", 0)):
        res = invoke(*common, "--val-data", tmp_path / listed)
        assert res.exit_code == 0 and json.loads(res.stdout)["counts"]["reused"] == reused, (listed, res.output)


def test_a_held_out_list_in_another_order_reads_what_its_folder_reads(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """The split halves that weigh held-out accuracy and the bootstrap of the held-out noise interval draw images by
    position: a CSV listing a folder's images backwards read other weights and another interval than the folder."""
    rng = np.random.default_rng(7)
    for c in range(3):  # class c: channel c brighter, by a random amount
        (tmp_path / "val" / f"class_{c}").mkdir(parents=True)
        for i in range(20):
            pixels = rng.integers(0, 160, (8, 8, 3))
            pixels[..., c] += rng.integers(0, 96)
            Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "val" / f"class_{c}" / f"img_{i:03d}.png")
    images = sorted((tmp_path / "val").rglob("*.png"), key=lambda p: p.as_posix().split("/"))
    (tmp_path / "backwards.csv").write_text("path,label\n" + "".join(f"{p},{p.parent.name[-1]}\n" for p in reversed(images)))
    for i in range(6):  # each reads the channels' means, through its own amount of noise: accuracies that differ
        torch.manual_seed(i)
        model = tiny_cnn(3).eval()
        with torch.no_grad():
            model[0].weight.zero_(), model[0].bias.zero_()
            for c in range(3):
                model[0].weight[c, c, 1, 1] = 1.0
            model[6].weight.copy_(torch.kron(torch.eye(3, 4), torch.ones(1, 4)) + 0.4 * i * torch.randn(3, 16))
        suscli.save(model, tmp_path / "pool" / f"m{i}.safetensors", arch=ARCH, arch_kwargs={"num_classes": 3}, image_size=8)
    docs = []
    for val in (tmp_path / "val", tmp_path / "backwards.csv"):
        res = invoke(
            "rank",
            tmp_path / "pool",
            "-d",
            image_folder,
            "--train-data",
            train_folder,
            "--val-data",
            val,
            "-f",
            "json",
            "--per-image",
            *FAST,
            "--fresh",
        )
        assert res.exit_code == 0, res.output
        docs.append(json.loads(res.stdout))
    folder, listed = docs
    assert 0 < folder["choice"]["held_out"]["weights"]["reliability"] < 1  # weights drawn from the halves, not a fixed case
    for doc, named in ((folder, "class_0"), (listed, 0)):  # the same commonest label, by the folder's name or the list's id
        baseline = doc["choice"]["held_out"].pop("baseline")
        assert (baseline["class"], baseline["share"]) == (named, pytest.approx(1 / 3))
    assert listed["choice"] == folder["choice"] and listed["label_noise"] == folder["label_noise"]
    assert [r["details"]["val_hits"] for r in listed["results"]] == [r["details"]["val_hits"] for r in folder["results"]]
