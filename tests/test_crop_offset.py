"""Where the center crop starts when the margin it leaves is odd: as the checkpoint's tool starts it. torchvision's
CenterCrop (timm's too) starts at int(round(margin / 2)), half to even; Hugging Face's processors at margin // 2. A
margin of 27 starts at 14 in one and 13 in the other: a view one pixel apart, which suscli took for every model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from suscli.data.images import ImageSource, Preprocess, Sizing, center_offset, decode_images
from suscli.load.checkpoints import load_checkpoint, save
from suscli.models import bn_cnn
from suscli.run.settings import Settings, preprocessing

ARCH, KWARGS = "suscli.models:bn_cnn", {"width": 2}
SIZE, SHORT = 16, 20  # crop_pct 0.8: the shorter side to 20, then the center 16


def photo(path: Path, w: int, h: int) -> Path:
    """Noise, so that a view one pixel apart gives other pixels."""
    rng = np.random.default_rng(w * 1000 + h)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def odd_margins(folder: Path) -> list[Path]:
    """Photos whose resized longer side (20 * 86 // 40 = 43) leaves a margin of 27 to the 16 px crop."""
    folder.mkdir(parents=True, exist_ok=True)
    return [photo(folder / "tall.png", 40, 86), photo(folder / "wide.png", 86, 40)]


def torchvisions(paths: list[Path], resize: int | tuple[int, int] = SHORT) -> torch.Tensor:
    """torchvision's Resize and CenterCrop, as its reference script and timm evaluate."""
    look = transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(SIZE), transforms.PILToTensor()])
    return torch.stack([look(Image.open(p).convert("RGB")) for p in paths])


def floored(paths: list[Path]) -> torch.Tensor:
    """The same resize, the crop started at margin // 2, as Hugging Face's center_crop starts it."""
    out = []
    for p in paths:
        img = Image.open(p).convert("RGB")
        w, h = img.size
        rw, rh = SHORT * w // min(w, h), SHORT * h // min(w, h)
        left, top = (rw - SIZE) // 2, (rh - SIZE) // 2
        resized = img.resize((rw, rh), Image.Resampling.BILINEAR).crop((left, top, left + SIZE, top + SIZE))
        out.append(torch.from_numpy(np.asarray(resized).transpose(2, 0, 1).copy()))
    return torch.stack(out)


def fed(checkpoint_path: Path, paths: list[Path], **load: object) -> tuple[Preprocess, torch.Tensor]:
    prep, _ = preprocessing(Settings(), load_checkpoint(checkpoint_path, **load).meta)
    return prep, ImageSource(paths).decoded(prep.sizing, 3)[0]


def test_the_two_rules_part_on_these_photos(tmp_path: Path) -> None:
    paths = odd_margins(tmp_path / "photos")
    assert [center_offset(m, "round") for m in (3, 5, 7, 27)] == [2, 2, 4, 14]
    assert [center_offset(m, "floor") for m in (3, 5, 7, 27)] == [1, 2, 3, 13]
    assert not torch.equal(torchvisions(paths), floored(paths))


def _state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return bn_cnn(num_classes=3, **KWARGS).state_dict()


@pytest.mark.parametrize("kind", ["suscli.save", "sidecar", "torchvision references", "Lightning", "timm"])
def test_a_checkpoint_not_of_hugging_face_is_cropped_as_torchvisions_center_crop(tmp_path: Path, kind: str) -> None:
    paths = odd_margins(tmp_path / "photos")
    state = _state()
    if kind == "suscli.save":
        path = tmp_path / "m.safetensors"
        model = bn_cnn(num_classes=3, **KWARGS)
        model.load_state_dict(state)
        save(model, path, arch=ARCH, arch_kwargs=KWARGS, image_size=SIZE, crop_pct=SIZE / SHORT)
    else:
        path = tmp_path / ("m.ckpt" if kind == "Lightning" else "m.pth")
        if kind == "sidecar":
            torch.save(state, path)
        elif kind == "torchvision references":
            args = argparse.Namespace(model="resnet18", val_crop_size=SIZE, val_resize_size=SHORT, interpolation="bilinear")
            torch.save({"model": state, "epoch": 0, "args": args, "lr_scheduler": {}}, path)
        elif kind == "Lightning":
            torch.save({"pytorch-lightning_version": "2.5.0", "state_dict": {f"net.{k}": v for k, v in state.items()}}, path)
        else:
            args = argparse.Namespace(model="test_resnet", num_classes=3, input_size=[3, SIZE, SIZE], crop_pct=SIZE / SHORT)
            torch.save({"arch": "test_resnet", "state_dict": state, "epoch": 0, "args": args}, path)
        if kind in ("sidecar", "Lightning"):  # nothing in the file says the size and crop
            path.with_suffix(".suscli.json").write_text(json.dumps({"image_size": SIZE, "crop_pct": SIZE / SHORT}))
    prep, pixels = fed(path, paths, arch=ARCH, arch_kwargs=KWARGS)
    assert (prep.crop_offset, prep.side, prep.crop_pct) == ("round", SIZE, SIZE / SHORT)
    assert torch.equal(pixels, torchvisions(paths))


def test_a_hugging_face_checkpoint_is_cropped_at_the_floor(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        image_size=SIZE, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    transformers.ViTForImageClassification(config).save_pretrained(tmp_path / "vit")
    processor = {"size": {"shortest_edge": SHORT}, "crop_size": {"height": SIZE, "width": SIZE}, "resample": 2}
    (tmp_path / "vit" / "preprocessor_config.json").write_text(json.dumps(processor))
    paths = odd_margins(tmp_path / "photos")
    prep, pixels = fed(tmp_path / "vit", paths)
    assert (prep.crop_offset, prep.side, prep.crop_pct) == ("floor", SIZE, SIZE / SHORT)
    assert torch.equal(pixels, floored(paths))
    sized, _ = preprocessing(Settings(preset="imagenet", image_size=SIZE), load_checkpoint(tmp_path / "vit").meta)
    assert sized.crop_offset == "round"  # a preset is torchvision's recipe, its crop too


def test_a_record_from_before_the_offset_was_recorded_reads_as_the_floor_it_was_cropped_at() -> None:
    record = {"image_size": SIZE, "mean": [0.0] * 3, "std": [1.0] * 3, "crop_pct": 1.0, "resize": "crop", "interpolation": "bilinear"}
    assert Preprocess.from_record(record).crop_offset == "floor"
    assert Preprocess.from_record({**record, "crop_offset": "round"}).crop_offset == "round"


@pytest.mark.parametrize("resize", ["crop", "stretch"])
def test_the_part_of_a_sliver_that_is_resized_alone_is_the_part_the_crop_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resize: str
) -> None:
    """An image whose resized size would pass PIL's pixel limit resizes only the box the crop keeps (the sliver path):
    the box starts where the crop does, by the same rule. A 9x23 photo is resized to 20x51 (crop, a margin of 35) or
    19x19 (stretch, a margin of 3); a limit of 300 pixels sends both the box's way. PIL's box resize rounds its
    weights apart from the whole one's: a level at most, where a view one pixel off is tens of levels apart."""
    path = photo(tmp_path / "sliver.png", 9, 23)
    crop_pct = SIZE / SHORT if resize == "crop" else SIZE / 19
    whole = {o: decode_images([path], Sizing(SIZE, crop_pct=crop_pct, resize=resize, crop_offset=o)).pixels for o in ("round", "floor")}
    assert torch.equal(whole["round"], torchvisions([path], SHORT if resize == "crop" else (19, 19)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)
    boxes: list[object] = []
    resized = Image.Image.resize
    monkeypatch.setattr(Image.Image, "resize", lambda self, *a, **k: boxes.append(k.get("box")) or resized(self, *a, **k))
    for offset, other in (("round", "floor"), ("floor", "round")):
        boxed = decode_images([path], Sizing(SIZE, crop_pct=crop_pct, resize=resize, crop_offset=offset)).pixels.int()
        assert (boxed - whole[offset].int()).abs().max().item() <= 1, offset
        assert (boxed - whole[other].int()).abs().max().item() > 20, offset
    assert len(boxes) == 2 and None not in boxes  # both decoded by the box
