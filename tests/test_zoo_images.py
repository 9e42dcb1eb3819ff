"""The benchmark zoo's image handling at sizes other than CIFAR's 32 px (benchmarks/zoo/train_zoo.py's augment,
benchmarks/zoo/arch_check.py's upsample): the 32-px behaviour is kept, a larger image is shifted in proportion, and
the training-time upsampling matches what suscli decodes at that size."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from suscli.data.images import decode_images

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "zoo"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
train_zoo = pytest.importorskip("train_zoo")


def _positions(b: int, size: int) -> torch.Tensor:
    """b copies of an image whose channel 0 holds row + 1 and channel 1 col + 1 (0 is the zero padding)."""
    ramp = torch.arange(1, size + 1, dtype=torch.uint8)
    x = torch.zeros(b, 3, size, size, dtype=torch.uint8)
    x[:, 0] = ramp[:, None]
    x[:, 1] = ramp[None, :]
    return x


@pytest.mark.parametrize("size, pad", [(32, 4), (64, 8)])
def test_augment_shifts_by_an_eighth_of_the_side_and_flips(size: int, pad: int) -> None:
    out = train_zoo.augment(_positions(400, size), torch.Generator().manual_seed(0))
    assert out.shape == (400, 3, size, size) and out.dtype == torch.uint8
    c = size // 2  # the centre pixel is inside the image at any shift
    shift_y = out[:, 0, c, c].long() - (c + 1)
    step = out[:, 1, c, c + 1].long() - out[:, 1, c, c].long()  # +1 as it was, -1 flipped
    assert set(step.tolist()) == {1, -1}
    shift_x = torch.where(step > 0, out[:, 1, c, c].long() - (c + 1), out[:, 1, c, c].long() - (size - c))
    assert set(shift_y.tolist()) == set(shift_x.tolist()) == set(range(-pad, pad + 1))


def test_augment_at_32_draws_as_it_always_did() -> None:
    """One randint(0, 9) for both offsets, then one rand for the flips: the same seed gives the same crops as before."""
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    out = train_zoo.augment(x, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    dy, dx = torch.randint(0, 9, (2, 6), generator=g)
    flip = torch.rand(6, generator=g) < 0.5
    padded = F.pad(x, (4, 4, 4, 4))
    for i in range(6):
        crop = padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32]
        assert torch.equal(out[i], crop.flip(-1) if flip[i] else crop)


def test_upsample_is_what_suscli_decodes_at_that_size(tmp_path: Path) -> None:
    cifar = pytest.importorskip("cifar")
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "img.png")  # lossless: only the resizing differs
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].contiguous()
    assert cifar.upsample(x, 8) is x
    up = cifar.upsample(x, 16)
    decoded = decode_images([tmp_path / "img.png"], 16).pixels
    assert up.shape == decoded.shape == (1, 3, 16, 16) and up.dtype == torch.uint8
    assert int((up.int() - decoded.int()).abs().max()) <= 1  # rounding only


def test_a_zoo_at_64_px_sizes_the_mlp_for_it_and_keeps_the_32_px_model_ids() -> None:
    at_32 = train_zoo.build_configs(12, (8, 20, 40), seed=0)
    at_64 = train_zoo.build_configs(12, (8, 20, 40), seed=0, image_size=64)
    assert [c.model_id for c in at_32 if c.arch != "mlp"] == [c.model_id for c in at_64 if c.arch != "mlp"]
    mlps = [c for c in at_64 if c.arch == "mlp"]
    assert mlps and all(c.arch_kwargs["image_size"] == 64 and "i64-" in c.model_id for c in mlps)
    assert all("image_size" not in c.arch_kwargs for c in at_32)
    assert mlps[0].build(10)(torch.zeros(2, 3, 64, 64)).shape == (2, 10)


def test_the_deep_zoo_trains_resnet20_and_resnet56_with_a_memorizing_and_a_regularized_corner() -> None:
    deep = train_zoo.build_configs(10, (8, 20, 40), seed=0, archs=train_zoo.DEEP_ARCHS)
    assert len({c.model_id for c in deep}) == 10 and {c.arch for c in deep} == {"resnet"}
    assert {c.arch_kwargs["blocks"] for c in deep} == {3, 9} and {c.arch_kwargs["width"] for c in deep} == {16}
    assert deep[0].model_id == "resnet-w16b9-lr0.1-wd0-e40-noaug" and deep[1].model_id == "resnet-w16b9-lr0.1-wd5e-3-e8-aug"
    depth = {b: sum(1 for m in c.build(10).modules() if isinstance(m, torch.nn.Conv2d)) for b, c in ((3, deep[2]), (9, deep[0]))}
    assert depth[3] == 19 + 2 and depth[9] == 55 + 2  # ResNet-20 and -56: 19 and 55 convolutions, plus two 1x1 shortcuts


def test_deep_blocks_picks_other_depths_and_the_deepest_takes_the_corners() -> None:
    args = train_zoo.parse_args(["--out", "x", "--deep", "--deep-blocks", "5,3", "--seed", "1"])
    deep = train_zoo.build_configs(8, (8, 20, 40), seed=args.seed, archs=train_zoo.deep_archs(args.deep_blocks))
    assert {c.arch_kwargs["blocks"] for c in deep} == {3, 5} and len({c.model_id for c in deep}) == 8
    assert deep[0].model_id == "resnet-w16b5-lr0.1-wd0-e40-noaug" and deep[1].model_id == "resnet-w16b5-lr0.1-wd5e-3-e8-aug"
    convs = sum(1 for m in deep[0].build(10).modules() if isinstance(m, torch.nn.Conv2d))
    assert convs == 31 + 2  # ResNet-32: 31 convolutions, plus two 1x1 shortcuts
    assert train_zoo.parse_args(["--out", "x", "--deep"]).deep_blocks == train_zoo.DEEP_BLOCKS


def test_label_smoothing_reaches_the_loss_and_the_plan_and_hard_labels_stay_as_before() -> None:
    args = train_zoo.parse_args(["--out", "x", "--label-smoothing", "0.1"])
    assert train_zoo.plan(args)["label_smoothing"] == 0.1
    assert "label_smoothing" not in train_zoo.plan(train_zoo.parse_args(["--out", "x"]))  # other zoos' plans unchanged
    with pytest.raises(SystemExit):
        train_zoo.parse_args(["--out", "x", "--label-smoothing", "1"])

    def first_loss(smoothing: float) -> float:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
        x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
        y = torch.arange(16) % 10
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        return train_zoo.train_epoch(model, opt, x, y, False, torch.Generator().manual_seed(0), label_smoothing=smoothing)

    hard = first_loss(0.0)
    assert first_loss(0.0) == hard and first_loss(0.1) != hard
