"""Images reach a model as its own tool prepared them: the pixels suscli feeds a Hugging Face model are its image
processor's, and a timm model's are its data config's transform, on photos that are not square."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from suscli.data.images import ImageSource
from suscli.load.checkpoints import load_checkpoint
from suscli.run.settings import Settings, preprocessing

transformers = pytest.importorskip("transformers")
timm = pytest.importorskip("timm")


def photos(folder: Path, sizes: list[tuple[int, int]]) -> list[Path]:
    """Noisy gradients of the given (width, height): any other view of them gives other pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng, paths = np.random.default_rng(0), []
    for i, (w, h) in enumerate(sizes):
        ramp = np.linspace(0, 1, w)[None, :, None] * 0.5 + np.linspace(0, 1, h)[:, None, None] * 0.3
        pixels = (255 * (ramp + 0.2 * rng.random((h, w, 3)))).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"p{i}.png")
        paths.append(folder / f"p{i}.png")
    return paths


def processed(processor: Any, paths: list[Path]) -> torch.Tensor:
    """The pixel values a Hugging Face image processor gives the photos at `paths`, as one tensor."""
    return torch.tensor(np.stack(processor(images=[Image.open(p).convert("RGB") for p in paths])["pixel_values"]))


def fed(meta: dict, paths: list[Path]) -> torch.Tensor:
    """The normalized pixels suscli feeds a model whose checkpoint says `meta`."""
    prep, _ = preprocessing(Settings(), meta)
    pixels, _, _ = ImageSource(list(paths)).decoded(prep.sizing, 3)
    return prep.normalizer()(pixels)


@pytest.mark.parametrize("resample", [2, 3])
def test_a_vit_sees_its_image_processors_pixels(tmp_path: Path, resample: int) -> None:
    """ViTImageProcessor's `size` {height, width} resizes the whole photo to that square (aspect ratio not kept), with
    its `resample`; suscli resized the shorter side and cropped the center, bilinear, so the model saw another view."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ViTForImageClassification(config).save_pretrained(tmp_path / "vit")
    processor = ViTImageProcessor(size={"height": 32, "width": 32}, resample=resample, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor.save_pretrained(tmp_path / "vit")
    paths = photos(tmp_path / "photos", [(48, 36), (30, 50), (100, 20)])
    theirs = processed(processor, paths)
    ours = fed(load_checkpoint(tmp_path / "vit").meta, paths)
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() <= 2.01 / 255 / 0.5  # rounding: a level or two, where a view apart is ~100


def test_deits_stretch_then_crop_is_read(tmp_path: Path) -> None:
    """DeiT's processor stretches to `size` 40x40, then crops the center `crop_size` 32: its input is 32, not 40."""
    from transformers import DeiTImageProcessor, ViTConfig, ViTForImageClassification

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ViTForImageClassification(config).save_pretrained(tmp_path / "deit")
    processor = DeiTImageProcessor(size={"height": 40, "width": 40}, crop_size={"height": 32, "width": 32}, resample=3)
    processor.save_pretrained(tmp_path / "deit")
    paths = photos(tmp_path / "photos", [(48, 36), (30, 50)])
    theirs = processed(processor, paths)
    ours = fed(load_checkpoint(tmp_path / "deit").meta, paths)
    assert ours.shape == theirs.shape == (2, 3, 32, 32)
    assert (ours - theirs).abs().max().item() <= 1.01 / 255 / min(processor.image_std)


@pytest.mark.parametrize("crop_mode", ["center", "squash"])
def test_a_timm_model_sees_its_data_configs_pixels(tmp_path: Path, crop_mode: str) -> None:
    """timm's data config says bicubic for many models (and crop_mode "squash" for some); suscli resized bilinear. timm
    resizes to floor(32 / 0.875) = 36 px, where suscli rounded to 37 (and the longer side to nearest): pixels apart.
    torchvision's CenterCrop starts the crop of a 7 px margin at round(3.5) = 4, where suscli started it at 3."""
    from timm.data import create_transform, resolve_data_config

    from suscli.load.sources.timm import data_config

    model = timm.create_model("test_resnet", num_classes=3)
    model.pretrained_cfg = {**model.pretrained_cfg, "input_size": (3, 32, 32), "crop_pct": 0.875, "interpolation": "bicubic"}
    model.pretrained_cfg["crop_mode"] = crop_mode
    cfg = resolve_data_config({}, model=model)
    paths = photos(tmp_path / "photos", [(64, 96), (96, 64), (48, 36), (30, 50), (36, 39)])  # 36x39: a margin of 7
    theirs = torch.stack([create_transform(**cfg)(Image.open(p).convert("RGB")) for p in paths])
    ours = fed(data_config(cfg, []), paths)
    assert (ours - theirs).abs().max().item() <= 1e-5


@pytest.mark.parametrize("size", [{"shortest_edge": 37}, {"shortest_edge": 32}])
def test_a_shortest_edge_is_rounded_down_as_the_processor_does(tmp_path: Path, size: dict) -> None:
    """A processor that resizes the shorter side (DeiT's to 37, then a 32 px crop; ConvNeXt's to int(32 / 0.875) = 36)
    makes the longer side int(...): suscli rounded both to nearest, so the crop took another part of the photo."""
    from transformers import ConvNextImageProcessor, DeiTImageProcessor, ViTConfig, ViTForImageClassification

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ViTForImageClassification(config).save_pretrained(tmp_path / "model")
    if size["shortest_edge"] == 37:
        processor = DeiTImageProcessor(size=size, crop_size={"height": 32, "width": 32}, resample=3)
    else:
        processor = ConvNextImageProcessor(size=size, crop_pct=0.875, resample=3)
    processor.save_pretrained(tmp_path / "model")
    # 37x39 resized to a shorter side of 37, 36x39 to 36: a margin of 7, which the processor crops from 3, not round(3.5)
    paths = photos(tmp_path / "photos", [(48, 36), (30, 50), (100, 20), (37, 39), (36, 39)])
    theirs = processed(processor, paths)
    ours = fed(load_checkpoint(tmp_path / "model").meta, paths)
    assert ours.shape == theirs.shape == (5, 3, 32, 32)
    assert (ours - theirs).abs().max().item() <= 1.01 / 255 / min(processor.image_std)  # a level: the processor's float rescale


@pytest.mark.parametrize("kind", ["convnext-384", "poolformer"])
def test_a_processors_own_crop_pct_rule_is_followed(tmp_path: Path, kind: str) -> None:
    """ConvNeXt's processor (its default `shortest_edge` 384 among them) warps the whole photo to the square at 384 px
    or more, where suscli resized the shorter side and cropped; PoolFormer's resizes the shorter side to
    int(shortest_edge / crop_pct) before its `crop_size`, where suscli resized it to `shortest_edge`, then cropped nothing."""
    from transformers import ConvNextImageProcessor, PoolFormerImageProcessor, ViTConfig, ViTForImageClassification

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ViTForImageClassification(config).save_pretrained(tmp_path / "model")
    if kind == "convnext-384":
        processor, side = ConvNextImageProcessor(size={"shortest_edge": 384}, crop_pct=0.875, resample=3), 384
    else:
        processor, side = PoolFormerImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, crop_pct=0.875), 32
    processor.save_pretrained(tmp_path / "model")
    paths = photos(tmp_path / "photos", [(480, 400), (300, 500), (100, 20)])
    theirs = processed(processor, paths)
    ours = fed(load_checkpoint(tmp_path / "model").meta, paths)
    assert ours.shape == theirs.shape == (3, 3, side, side)
    assert (ours - theirs).abs().max().item() <= 2.01 / 255 / min(processor.image_std)  # a level or two: their bicubic


def _int_sized(folder: Path, kind: str) -> None:
    """preprocessor_config.json with an int `size` (and `crop_size`), as older transformers wrote it and as many files
    on the Hub still hold it: ViT's a square, DeiT's as its feature extractor wrote it, MobileNetV1's and ConvNeXt's
    a shorter side; `-unnamed`, the same file without its image_processor_type (the class then comes from config.json's
    model_type); DeiT's `-list`, [height, width] lists for `size` and `crop_size`, as some older files hold them."""
    from transformers import ConvNextImageProcessor, MobileNetV1ImageProcessor, ViTImageProcessor

    stats = {"image_mean": [0.5, 0.4, 0.3], "image_std": [0.2, 0.25, 0.3]}
    if kind.startswith("deit"):  # as facebook/deit-*'s file: no image_processor_type, size (256 there) and crop_size ints
        size, crop = ([40, 40], [32, 32]) if kind == "deit-list" else (40, 32)
        cfg = {"feature_extractor_type": "DeiTFeatureExtractor", "do_resize": True, "size": size, "resample": 3}
        (folder / "preprocessor_config.json").write_text(json.dumps({**cfg, "do_center_crop": True, "crop_size": crop, **stats}))
        return
    name = kind.removesuffix("-unnamed")
    processor = {
        "vit": ViTImageProcessor(resample=2, **stats),
        "mobilenet_v1": MobileNetV1ImageProcessor(crop_size={"height": 32, "width": 32}, resample=3, **stats),
        "convnext": ConvNextImageProcessor(crop_pct=0.875, resample=3, **stats),
    }[name]
    processor.save_pretrained(folder)
    cfg = json.loads((folder / "preprocessor_config.json").read_text())
    cfg["size"] = {"vit": 32, "mobilenet_v1": 36, "convnext": 32}[name]
    cfg.update({"crop_size": 32} if name == "mobilenet_v1" else {})
    if kind.endswith("-unnamed"):
        del cfg["image_processor_type"]
    (folder / "preprocessor_config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("kind", ["vit", "deit", "mobilenet_v1", "convnext", "vit-unnamed", "convnext-unnamed", "deit-list"])
def test_an_int_size_is_read_as_its_processor_class_reads_it(tmp_path: Path, kind: str) -> None:
    """An int `size` is the whole image to size x size for ViT's and DeiT's processors, the shorter side for
    MobileNetV1's and ConvNeXt's; suscli read every one as the shorter side, so a ViT saw a crop of the photo. An int
    `crop_size` (DeiT's 224 of 256, MobileNetV1's) is a square in every processor; suscli ignored it, and fed 40 px
    where the model takes 32. The processor is the one transformers builds from the file itself: for a file naming no
    class, the one config.json's model_type maps to, where suscli read the shorter side with a note (a ViT a crop of the
    photo). A list size is [height, width]; suscli said it was not square and fed the photos as they were."""
    from transformers import AutoImageProcessor, ConvNextConfig, ConvNextForImageClassification, ViTConfig, ViTForImageClassification

    if kind.startswith("convnext"):
        config = ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1])
        ConvNextForImageClassification(config).save_pretrained(tmp_path / "model")
    else:
        config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
        ViTForImageClassification(config).save_pretrained(tmp_path / "model")
    _int_sized(tmp_path / "model", kind)
    processor = AutoImageProcessor.from_pretrained(tmp_path / "model")
    paths = photos(tmp_path / "photos", [(48, 36), (30, 50), (100, 20), (37, 39), (36, 39)])
    theirs = processed(processor, paths)
    checkpoint = load_checkpoint(tmp_path / "model")
    ours = fed(checkpoint.meta, paths)
    assert ours.shape == theirs.shape == (5, 3, 32, 32)
    assert (ours - theirs).abs().max().item() <= 2.01 / 255 / min(processor.image_std)  # a level or two: their bicubic
    assert checkpoint.meta.get("resize") == ("stretch" if kind.startswith(("vit", "deit")) else None)  # None: the shorter side
    assert checkpoint.notes == []  # each a class suscli knows


def _mobilevit(folder: Path) -> None:
    from transformers import MobileViTConfig, MobileViTForImageClassification

    config = MobileViTConfig(
        image_size=32,
        hidden_sizes=[16, 16, 16],
        neck_hidden_sizes=[8, 8, 8, 8, 8, 8, 16],
        num_attention_heads=2,
        num_labels=3,
    )
    MobileViTForImageClassification(config).save_pretrained(folder)


@pytest.mark.parametrize("flip", ["saved", "absent", "false"])
def test_a_mobilevit_sees_its_processors_bgr_pixels(tmp_path: Path, flip: str) -> None:
    """MobileViT's processor (apple/mobilevit-*) reverses the channels to BGR (`do_flip_channel_order`, true by default:
    also where its file has none, as older files may) and never normalizes, though its file holds image_mean 0.5;
    suscli fed RGB, normalized by 0.5, so the model saw other colours. With the flag false its processor feeds RGB."""
    from transformers import AutoImageProcessor, MobileViTImageProcessor

    _mobilevit(tmp_path / "mobilevit")
    processor = MobileViTImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32})  # its other defaults
    processor.save_pretrained(tmp_path / "mobilevit")
    file = tmp_path / "mobilevit" / "preprocessor_config.json"
    cfg = json.loads(file.read_text())
    assert cfg["do_flip_channel_order"] is True and cfg["image_mean"] == [0.5] * 3  # what save_pretrained writes
    if flip != "saved":
        del cfg["do_flip_channel_order"]
        file.write_text(json.dumps({**cfg, **({"do_flip_channel_order": False} if flip == "false" else {})}))
    processor = AutoImageProcessor.from_pretrained(tmp_path / "mobilevit")  # as the file reads
    paths = photos(tmp_path / "photos", [(48, 36), (30, 50), (100, 20), (37, 39), (36, 39)])
    theirs = processed(processor, paths)
    checkpoint = load_checkpoint(tmp_path / "mobilevit")
    ours = fed(checkpoint.meta, paths)
    assert ours.shape == theirs.shape == (5, 3, 32, 32)
    assert (ours - theirs).abs().max().item() <= 2.01 / 255  # a level or two: their bicubic; RGB for BGR is ~50 levels apart
    assert checkpoint.meta.get("channel_order", "RGB") == ("RGB" if flip == "false" else "BGR") and checkpoint.notes == []


def test_a_pp_lcnet_reverses_the_channels_after_normalizing(tmp_path: Path) -> None:
    """PP-LCNet's processor always reverses the channels to BGR, after normalizing them with its image_mean (in the RGB
    image's order): the mean of R, 0.406 there, ends on the last channel. Square photos: its resize of the shorter side
    (rounded to nearest) and suscli's reading of its `size` as the whole image agree on them."""
    from transformers import PPLCNetConfig, PPLCNetForImageClassification, PPLCNetImageProcessor

    PPLCNetForImageClassification(PPLCNetConfig(num_labels=3)).save_pretrained(tmp_path / "lcnet")
    processor = PPLCNetImageProcessor(size={"height": 36, "width": 36}, resize_short=36, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(tmp_path / "lcnet")
    paths = photos(tmp_path / "photos", [(36, 36), (50, 50), (20, 20)])
    theirs = processed(processor, paths)
    ours = fed(load_checkpoint(tmp_path / "lcnet").meta, paths)
    assert ours.shape == theirs.shape == (3, 3, 32, 32)
    assert (ours - theirs).abs().max().item() <= 2.01 / 255 / min(processor.image_std)


def test_a_levit_is_resized_larger_before_its_crop(tmp_path: Path) -> None:
    """LeViT's processor resizes the shorter side to int(256 / 224 * shortest_edge), 36 for 32, before its 32 px center
    crop; suscli resized it to 32 and cropped nothing, a wider view."""
    from transformers import LevitConfig, LevitForImageClassification, LevitImageProcessor

    config = LevitConfig(
        image_size=32,
        hidden_sizes=[16, 32],
        num_attention_heads=[1, 2],
        depths=[1, 1],
        key_dim=[8, 8],
        attention_ratio=[2, 2],
        mlp_ratio=[2, 2],
        down_ops=[["Subsample", 8, 1, 4, 2, 2]],
        num_labels=3,
    )
    LevitForImageClassification(config).save_pretrained(tmp_path / "levit")
    processor = LevitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})  # its other defaults
    processor.save_pretrained(tmp_path / "levit")
    # 36x39 resized to a shorter side of 36: a margin of 3, which the processor crops from 1
    paths = photos(tmp_path / "photos", [(48, 36), (30, 50), (100, 20), (36, 39), (64, 64)])
    theirs = processed(processor, paths)
    checkpoint = load_checkpoint(tmp_path / "levit")
    ours = fed(checkpoint.meta, paths)
    assert ours.shape == theirs.shape == (5, 3, 32, 32)
    assert (ours - theirs).abs().max().item() <= 2.01 / 255 / min(processor.image_std)  # a level or two: their bicubic
    assert checkpoint.meta.get("channel_order", "RGB") == "RGB"


@pytest.mark.parametrize(
    "options",
    [
        {"do_rescale": False, "image_mean": [123.675, 116.28, 103.53], "image_std": [58.395, 57.12, 57.375]},  # 0-255 pixels
        {"rescale_factor": 1 / 127.5, "image_mean": [1.0] * 3, "image_std": [1.0] * 3},  # -1 to 1
        {"do_rescale": False, "do_normalize": False},  # the raw 0-255 pixels
    ],
    ids=["0-255 mean", "1/127.5", "raw"],
)
def test_a_processor_that_does_not_scale_by_1_255_is_fed_its_own_pixels(tmp_path: Path, options: dict) -> None:
    """A processor that feeds 0-255 pixels minus a 0-255 mean (do_rescale false) was refused for its 0-255 mean, and one
    that scales by 1/127.5 was fed pixels at half their scale, noted as "suscli does" scale by 1/255: its rescale is
    folded into the mean and std, exactly."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ViTForImageClassification(config).save_pretrained(tmp_path / "vit")
    processor = ViTImageProcessor(size={"height": 32, "width": 32}, **options)
    processor.save_pretrained(tmp_path / "vit")
    paths = photos(tmp_path / "photos", [(32, 32), (48, 36)])
    theirs = processed(processor, paths)
    checkpoint = load_checkpoint(tmp_path / "vit")
    ours = fed(checkpoint.meta, paths)
    scale = 255 / 2 if "rescale_factor" in options else 255 if options.get("do_rescale") is False else 1
    std = np.array(options.get("image_std", [1.0]))[:, None, None] / scale  # a grey level on the model's scale
    assert ours.shape == theirs.shape
    assert ((ours - theirs).abs() / torch.tensor(1 / 255 / std, dtype=torch.float32)).max().item() <= 2.01  # a level or two
    assert checkpoint.notes[-1].startswith("preprocessor_config.json scales pixels by ")


@pytest.mark.parametrize(
    "options",
    [
        {},  # google/efficientnet-*'s: include_top, true by the class's default, divides by image_std twice
        {"include_top": False},
        {"rescale_factor": 1 / 127.5, "rescale_offset": True, "do_normalize": False},  # -1 to 1, then over image_std
        {"rescale_factor": 1 / 127.5, "rescale_offset": True, "include_top": False},
    ],
    ids=["default", "no top", "offset, not normalized", "offset, no top"],
)
def test_an_efficientnet_sees_its_processors_pixels(tmp_path: Path, options: dict) -> None:
    """EfficientNet's processor divides by image_std once more after normalizing, or in its place (`include_top`,
    true unless its file says false), and subtracts 1 after scaling with `rescale_offset`: suscli fed the pixels over
    std once, at 1/255, so the model saw them at about half their scale."""
    from transformers import EfficientNetImageProcessor, ViTConfig, ViTForImageClassification

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ViTForImageClassification(config).save_pretrained(tmp_path / "model")
    std = [0.47853944, 0.4732864, 0.47434163]  # google/efficientnet-b0's
    processor = EfficientNetImageProcessor(
        size={"height": 32, "width": 32}, do_center_crop=False, image_mean=[0.485, 0.456, 0.406], image_std=std, **options
    )
    processor.save_pretrained(tmp_path / "model")
    paths = photos(tmp_path / "photos", [(32, 32), (40, 40)])
    theirs = processed(processor, paths)
    ours = fed(load_checkpoint(tmp_path / "model").meta, paths)
    level = options.get("rescale_factor", 1 / 255) / min(std) ** (2 if options.get("include_top", True) else 1)  # one grey level
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() <= 2.01 * level


@pytest.mark.parametrize(
    "edit, note",
    [
        ({"rescale_factor": "1/255"}, "rescale_factor '1/255' is not a positive number; suscli scales pixels by 1/255"),
        ({"rescale_factor": 0}, "rescale_factor 0 is not a positive number; suscli scales pixels by 1/255"),
        ({"do_rescale": False, "image_mean": None}, "does not scale pixels by 1/255 and names no mean and std; suscli scales by 1/255"),
    ],
)
def test_a_rescale_that_cannot_be_folded_is_said(tmp_path: Path, edit: dict, note: str) -> None:
    """A rescale_factor that is no positive number, or another scale with no mean and std in the file to fold it into
    (the processor class's defaults): pixels / 255, with a note saying why, not another scale guessed silently."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ViTForImageClassification(config).save_pretrained(tmp_path / "vit")
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.25] * 3).save_pretrained(tmp_path / "vit")
    file = tmp_path / "vit" / "preprocessor_config.json"
    cfg = {**json.loads(file.read_text()), **edit}
    file.write_text(json.dumps({k: v for k, v in cfg.items() if v is not None}))
    checkpoint = load_checkpoint(tmp_path / "vit")
    assert note in checkpoint.notes[-1]
    assert (checkpoint.meta.get("mean"), checkpoint.meta.get("std")) == ((None, None) if "image_mean" in edit else ([0.5] * 3, [0.25] * 3))
