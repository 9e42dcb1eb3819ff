"""--val-data: held-out images with their (noisy) labels, one eval pass per model; accuracy, interval, gap and hits."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import suscli
from suscli.data.images import decode_images
from suscli.errors import UsageError
from suscli.data.imagesets import list_images
from suscli.measure.accuracy import decode_hits, wilson_interval
from tests.conftest import invoke, tiny_cnn, write_images
from tests.test_cli_rank import make_pool

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
        pixels = decode_images(list_images(sub), image_size=8).pixels.float() / 255.0
        with torch.no_grad():
            hits += (model.eval()(pixels).argmax(-1) == want[sub.name]).tolist()
    return np.array(hits)


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
    plain = suscli.score(tmp_path / "m.safetensors", image_folder, train_folder, settings=SMALL).rows[0]
    assert plain.val_acc is None and plain.gap is None and "val_hits" not in plain.details  # without it, as before
    assert (plain.susceptibility, plain.train_acc) == (row.susceptibility, row.train_acc)


def test_a_held_out_class_the_training_set_lacks_is_an_error(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    write_images(tmp_path / "odd" / "class_9", 3)
    make_pool(tmp_path / "pool", n=1)
    res = invoke(
        "score", tmp_path / "pool" / "m0.safetensors", "-d", image_folder, "--train-data", train_folder, "--val-data", tmp_path / "odd"
    )
    assert res.exit_code != 0 and "class_9" in res.output


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
    res = invoke(*common, "-f", "json", "--model-batch", "4", "--results", tmp_path / "r.jsonl")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["data"]["val_images"] == 14
    for r in doc["results"]:
        assert r["val_n"] == 14 and 0 <= r["val_acc_low"] <= r["val_acc"] <= r["val_acc_high"] <= 1
        assert r["gap"] == pytest.approx(r["train_acc"] - r["val_acc"])
        alone = suscli.score(pool / f"{r['name']}.safetensors", image_folder, train_folder, settings=SMALL, val_data=val_folder).rows[0]
        assert r["val_acc"] == alone.val_acc and r["details"]["val_hits"] == alone.details["val_hits"]
    res = invoke(*common, "-f", "csv", "--results", tmp_path / "r.jsonl")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert {"val_acc", "val_acc_low", "val_acc_high", "val_n", "gap"} <= rows[0].keys() and all(r["val_n"] == "14" for r in rows)
    res = invoke(*common, "-f", "markdown", "--results", tmp_path / "r.jsonl")
    assert res.exit_code == 0, res.output
    assert "held-out acc" in res.stdout and "gap" in res.stdout and "n=14" in res.stdout


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


def test_track_measures_every_epoch_on_the_held_out_set(tmp_path: Path, image_folder: Path, train_folder: Path, val_folder: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for epoch in (1, 2, 3):
        torch.manual_seed(epoch)
        suscli.save(
            tiny_cnn(3), run / f"epoch_{epoch}.safetensors", arch="tests.conftest:tiny_cnn", arch_kwargs={"num_classes": 3}, image_size=8
        )
    report = suscli.track(run, image_folder, train_folder, settings=SMALL, val_data=val_folder)
    assert [r.val_n for r in report.rows] == [14, 14, 14]
    with pytest.raises(UsageError, match="--val-data"):
        suscli.track(log=tmp_path / "x.jsonl", val_data=val_folder)
