"""torchvision's classification reference script: checkpoints in its format (model, model_ema, optimizer,
lr_scheduler, epoch, args), scored, ranked and tracked with no --arch, --mean, --std or --image-size, and compared
with the same model loaded by hand."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
import torchvision
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from typer.testing import CliRunner

from suscli.cli import app
from suscli.data.images import PRESETS
from suscli.load.checkpoints import load_checkpoint
from tests.conftest import by_hand, cli_json, image_sets

ARCH = "mobilenet_v3_small"


def reference_args() -> argparse.Namespace:
    """The script's parsed arguments for `train.py --model mobilenet_v3_small --val-resize-size 32 --val-crop-size 32
    --train-crop-size 32 --model-ema --output-dir out` (the fields that matter here, and a few more)."""
    return argparse.Namespace(
        data_path="data",
        model=ARCH,
        device="cpu",
        batch_size=4,
        epochs=2,
        opt="sgd",
        lr=0.05,
        lr_scheduler="steplr",
        output_dir="out",
        interpolation="bilinear",
        val_resize_size=32,
        val_crop_size=32,
        train_crop_size=32,
        model_ema=True,
        model_ema_steps=1,
        model_ema_decay=0.5,
        weights=None,
        start_epoch=0,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """The output dir after two epochs: model_0.pth, model_1.pth and checkpoint.pth, saved as the script saves them."""
    root = tmp_path_factory.mktemp("torchvision")
    image_sets(root)
    out = root / "out"
    out.mkdir()
    args = reference_args()
    torch.manual_seed(0)
    model = torchvision.models.get_model(args.model, weights=args.weights, num_classes=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30)
    model_ema = AveragedModel(
        model, multi_avg_fn=get_ema_multi_avg_fn(args.model_ema_decay), use_buffers=True
    )  # utils.ExponentialMovingAverage
    for epoch in range(args.epochs):
        model.train()
        loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model_ema.update_parameters(model)
        lr_scheduler.step()
        checkpoint = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "lr_scheduler": lr_scheduler.state_dict(),
            "epoch": epoch,
            "args": args,
            "model_ema": model_ema.state_dict(),
        }
        torch.save(checkpoint, out / f"model_{epoch}.pth")
        torch.save(checkpoint, out / "checkpoint.pth")
    return out


def torchvision_by_hand(path: Path, root: Path, ema: bool = False) -> float:
    checkpoint = torch.load(path, weights_only=False)
    model = torchvision.models.get_model(ARCH, num_classes=3)
    if ema:
        averaged = AveragedModel(model, use_buffers=True)
        averaged.load_state_dict(checkpoint["model_ema"])
        model = averaged.module
    else:
        model.load_state_dict(checkpoint["model"])
    imagenet = PRESETS["imagenet"]
    return by_hand(model, root / "unlabeled", mean=imagenet.mean, std=imagenet.std, image_size=32)


def test_score_track_and_rank_without_flags(run: Path, tmp_path: Path) -> None:
    root = run.parent
    row = cli_json("score", run / "model_1.pth", "-d", root / "unlabeled", "--train-data", root / "train")["results"][0]
    assert (row["arch"], row["details"]["arch_source"], row["epoch"]) == (f"torchvision:{ARCH}", "torchvision reference checkpoint", 1)
    assert row["details"]["preprocess"] == {
        "image_size": 32,
        "mean": list(PRESETS["imagenet"].mean),
        "std": list(PRESETS["imagenet"].std),
        "crop_pct": 1.0,
        "resize": "crop",
        "interpolation": "bilinear",
        "crop_offset": "round",  # CenterCrop's
        "channel_order": "RGB",
    }
    assert row["notes"] == ["the file also holds EMA weights under 'model_ema': --ema would measure them"]
    tracked = cli_json("track", run, "-d", root / "unlabeled", "--train-data", root / "train", "--results", tmp_path / "t.jsonl")
    assert [r["epoch"] for r in tracked["results"]] == [0, 1]  # checkpoint.pth has no number: skipped
    ranked = cli_json("rank", run, "-d", root / "unlabeled", "--train-data", root / "train", "--results", tmp_path / "r.jsonl")
    assert sorted(r["name"] for r in ranked["results"]) == ["checkpoint", "model_0", "model_1"]
    for r in [row] + tracked["results"] + ranked["results"]:
        assert r["susceptibility"] == pytest.approx(torchvision_by_hand(Path(r["path"]), root), rel=1e-5), r["name"]


def test_ema_weights_on_request(run: Path, tmp_path: Path) -> None:
    root = run.parent
    row = cli_json("score", run / "model_1.pth", "-d", root / "unlabeled", "--ema")["results"][0]
    assert row["notes"] == ["using EMA weights from 'model_ema': --ema", "stripped prefix 'module.', ignored 1 keys outside it"]
    assert row["susceptibility"] == pytest.approx(torchvision_by_hand(run / "model_1.pth", root, ema=True), rel=1e-5)
    assert row["susceptibility"] != pytest.approx(torchvision_by_hand(run / "model_1.pth", root), rel=1e-5)
    plain = ["rank", run, "-d", root / "unlabeled", "--results", tmp_path / "r.jsonl", "--batches", "1"]
    assert CliRunner().invoke(app, [str(a) for a in plain]).exit_code == 0
    res = CliRunner().invoke(app, [str(a) for a in plain + ["--ema"]])  # other weights: not the same results
    assert res.exit_code == 2 and "holds results measured with other parameters (--ema differs)" in res.stderr


def test_the_runs_interpolation_is_the_one_its_images_are_resized_with(run: Path, tmp_path: Path) -> None:
    """The script's --interpolation (bicubic in many of torchvision's recipes) was not read: every image was resized
    bilinear, another view than the one the model was evaluated on."""
    checkpoint = torch.load(run / "model_1.pth", weights_only=False)
    checkpoint["args"].interpolation = "bicubic"
    torch.save(checkpoint, tmp_path / "model_1.pth")
    row = cli_json("score", tmp_path / "model_1.pth", "-d", run.parent / "unlabeled")["results"][0]
    assert row["details"]["preprocess"]["interpolation"] == "bicubic"


def test_an_interpolation_that_is_not_a_name_is_not_read(run: Path, tmp_path: Path) -> None:
    """args whose interpolation is a list ended the load in "TypeError: unhashable type: 'list'"; it names no filter,
    so the script's default, bilinear, is used."""
    checkpoint = torch.load(run / "model_1.pth", weights_only=False)
    checkpoint["args"].interpolation = ["bicubic"]
    torch.save(checkpoint, tmp_path / "model_1.pth")
    checkpoint = load_checkpoint(tmp_path / "model_1.pth")
    assert "interpolation" not in checkpoint.meta and checkpoint.meta["image_size"] == 32
