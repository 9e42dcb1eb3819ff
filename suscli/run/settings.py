"""What decides an audit's numbers (Settings, stored with every result) and the preprocessing each model gets
from them and its checkpoint; the checks that options given in Python get as the command line's do."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import ParamSpec, TypeVar

import torch

from suscli.measure.normalization import (
    NO_NORMALIZATION,
)
from suscli.load.checkpoints import off_scale_mean
from suscli.errors import InputError, UsageError, require_number, require_type, shown
from suscli.data.images import PRESETS, SQUARE_ONLY, ImageSource, Preprocess
from suscli.defaults import ADAPTIVE
from suscli.measure.susceptibility import SusceptibilityConfig, plain


@dataclass(frozen=True)
class Settings:
    """Everything that decides the numbers; stored with every result so that it can be reproduced."""

    susceptibility: SusceptibilityConfig = field(default_factory=SusceptibilityConfig)
    samples: int | None = None  # unlabeled images used (seeded subset); None = all
    train_samples: int | str | None = ADAPTIVE  # training images for accuracy: "auto" (as on the command line), N, None = all
    preset: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    image_size: int | None = None
    strict: bool = False

    def __post_init__(self) -> None:
        """The checks the command line's options make, for Settings made in Python: a mean without its std, or an
        image_size of 0, was silently not used, and a negative one failed deep inside the resize."""
        require_type("Settings susceptibility", self.susceptibility, SusceptibilityConfig)
        if self.preset is not None and self.preset not in PRESETS:
            raise UsageError(f"unknown preset {self.preset!r}", fix=f"use one of {', '.join(PRESETS)}")
        if (self.mean is None) != (self.std is None):
            raise UsageError("mean and std go together", fix="give both, or a preset")
        for value in self.mean or ():
            require_number("mean", value)
        require_channel_values({"mean": self.mean, "std": self.std})
        require_pixel_mean("mean", self.mean, self.std)
        for value in self.std or ():
            require_number("std", value, low=0, above=True)
        if isinstance(self.image_size, (tuple, list)):  # (height, width), as torch writes shapes
            raise UsageError(f"image_size takes the side of a square ({SQUARE_ONLY}), got {self.image_size!r}")
        require_number("image_size", self.image_size, low=1, whole=True)
        require_number("samples", self.samples, low=1, whole=True)
        if self.train_samples == "all":  # the command line's spelling of None
            object.__setattr__(self, "train_samples", None)
        elif isinstance(self.train_samples, str) and self.train_samples != ADAPTIVE:
            raise UsageError(f"train_samples takes {ADAPTIVE!r}, 'all', a number or None (every image), got {self.train_samples!r}")
        if not isinstance(self.train_samples, str):
            require_number("train_samples", self.train_samples, low=1, whole=True)
        # numpy's numbers pass the checks but not json.dumps, which writes the results key and every report
        for name in ("samples", "train_samples", "image_size"):
            object.__setattr__(self, name, plain(getattr(self, name)))
        for name in ("mean", "std"):
            if (values := getattr(self, name)) is not None:
                object.__setattr__(self, name, tuple(float(v) for v in values))

    def as_dict(self) -> dict:
        return asdict(self)


def require_channel_values(given: Mapping[str, Sequence[float] | None]) -> None:
    """A UsageError where a mean or std (by its name in `given`) holds other than 1 or 3 values: suscli feeds images of
    1 or 3 channels, and two values for a grayscale model were averaged to one without a word."""
    for name, values in given.items():
        if values is not None and len(values) not in (1, 3):
            raise UsageError(f"{name} has {len(values)} values: give 1 (every channel) or 3 (R, G, B)")


def require_pixel_mean(name: str, mean: Sequence[float] | None, std: Sequence[float] | None = None) -> None:
    """A UsageError where option `name`'s mean lies outside 0 to 1, the scale of the pixels it is subtracted from
    (off_scale_mean says what to give instead)."""
    if fix := off_scale_mean(list(mean or ()), list(std or ()), f"{name} ", "--std " if name == "--mean" else "std "):
        shown = ",".join(f"{m:g}" for m in mean or ())
        raise UsageError(f"{name} {shown} is not on the scale of the pixels it is subtracted from: suscli scales them to 0-1", fix=fix)


# Where a list of paths goes instead, by argument: a list in Python is the natural try, and the fix for a model in
# memory that require_paths gives other values does not apply to it.
_MANIFEST = 'a manifest, models.json holding [{"path": "a.safetensors"}, ...] (docs/rank.md, "The pool")'
_LISTS = {
    "checkpoint": f"score measures one checkpoint; for several, suscli.rank a folder of them or {_MANIFEST}",
    "pool": f"pass a folder of the checkpoints, or {_MANIFEST}",
    "run": 'pass the run\'s folder, or a manifest, run.json holding [{"path": "e1.safetensors", "epoch": 1}, ...]',
    "data": "pass a folder of the images, or a .txt file listing their paths one a line (path,label CSV for labels)",
}


def require_paths(required: Mapping[str, object], optional: Mapping[str, object] | None = None) -> None:
    """A UsageError unless each value is a path (or None, where optional): score, rank and track read files, and a
    model or tensors in memory (the natural first try in a notebook) raised "TypeError: expected str, bytes or
    os.PathLike object"."""
    for name, value in [*required.items(), *(optional or {}).items()]:
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, os.PathLike)) for v in value):
            raise UsageError(f"{name} takes one path, got a {type(value).__name__} of {len(value)}", fix=_LISTS.get(name, _LISTS["data"]))
        if (value is not None or name in required) and not isinstance(value, (str, os.PathLike)):
            raise UsageError(
                f"{name} takes a path, got {type(value).__name__}",
                fix="for a model and inputs in memory, use suscli.measure_susceptibility(model, inputs)",
            )


def preprocessing(
    settings: Settings,
    meta: dict,
    images: Sequence[ImageSource] = (),
    named: int | None = None,
    channels: Callable[[int], int] | None = None,
) -> tuple[Preprocess, list[str]]:
    """Preprocessing for one model. Explicit options beat the checkpoint's metadata, which beats nothing.

    Normalization: --mean/--std, else --preset, else the checkpoint's mean/std, else its preset, else none.
    Image size: --image-size, else the checkpoint's image_size, else the preset's, else the size every one of
    `images` has; where none is, the error's fix offers `named`, the size the model's own config names
    (configured_size), and the presets unless `channels` (the channels the model takes, fed images of a side) says
    the model takes 1. The crop, resize mode, interpolation and crop offset: the preset's when given, else the checkpoint's. Where an option overrides
    what the checkpoint says, a note says so. The channel order is the checkpoint's (RGB where it records none), with
    or without a preset: a model that takes BGR takes it whatever the images' statistics.
    """
    notes: list[str] = []
    preset_name = settings.preset or meta.get("preset")
    if preset_name is not None and preset_name not in PRESETS:
        raise UsageError(f"unknown preset {preset_name!r}", fix=f"use one of {', '.join(PRESETS)}")
    preset = PRESETS[preset_name or "none"]
    if not (settings.mean or settings.preset) and (fix := off_scale_mean(meta.get("mean"), meta.get("std"))):
        raise InputError(
            f"the checkpoint's mean {meta['mean']} is not on the scale of the pixels it is subtracted from: suscli scales them to 0-1",
            fix=f"{fix} (options beat the checkpoint's metadata)",
        )
    mean = settings.mean or (None if settings.preset else meta.get("mean")) or preset.mean
    std = settings.std or (None if settings.preset else meta.get("std")) or preset.std
    if not (settings.mean or settings.preset or meta.get("mean") or meta.get("preset")):
        notes.append(NO_NORMALIZATION)
    notes += _overridden(settings, meta, mean, std)
    crop = preset.crop_pct if settings.preset else meta.get("crop_pct") or preset.crop_pct
    resize, interpolation, offset = (
        (preset.resize, preset.interpolation, preset.crop_offset) if settings.preset else _resizing(meta, preset)
    )
    implied = set(meta.get("implied") or ())  # the architecture's defaults (timm's data config): below a --preset too
    recorded = None if settings.preset and preset.image_size and "image_size" in implied else meta.get("image_size")
    size = settings.image_size or recorded or preset.image_size
    if not size:
        size, note = _common_size(images, named, channels)
        notes.append(note)
    elif recorded is None and not settings.image_size and meta.get("image_size") not in (None, size):
        notes.append(f"--preset {settings.preset} used: {meta['implied_by']} say image size {meta['image_size']}")
    elif not settings.image_size and "image_size" in implied:
        notes.append(f"image size {size} from {meta['implied_by']}: nothing recorded for this checkpoint says it")
    order = meta.get("channel_order") or "RGB"
    return Preprocess(int(size), tuple(mean), tuple(std), float(crop), resize, interpolation, offset, order), notes


def _resizing(meta: dict, preset: Preprocess) -> tuple[str, str, str]:
    """The resize mode, interpolation and crop offset the checkpoint's tool records, the preset's (bilinear, shorter
    side, torchvision's rounded offset) where it records none."""
    return (
        meta.get("resize") or preset.resize,
        meta.get("interpolation") or preset.interpolation,
        meta.get("crop_offset") or preset.crop_offset,
    )


def _overridden(settings: Settings, meta: dict, mean: Sequence[float], std: Sequence[float]) -> list[str]:
    """Notes for the options that override what the checkpoint says (the user wins, the report shows both)."""
    said, notes = _stats(meta.get("mean"), meta.get("std")), []
    who = _sayer(meta, "mean")
    if said and (settings.mean or settings.preset) and said != _stats(mean, std):
        option = "--mean/--std" if settings.mean else f"--preset {settings.preset}"
        notes.append(f"{option} used: {who} {said}")
    elif settings.preset and meta.get("preset") not in (None, settings.preset):
        notes.append(f"--preset {settings.preset} used: the checkpoint says preset {meta['preset']}")
    if settings.image_size and meta.get("image_size") not in (None, settings.image_size):
        notes.append(f"--image-size {settings.image_size} used: {_sayer(meta, 'image_size')} {meta['image_size']}")
    return notes


def _sayer(meta: dict, key: str) -> str:
    """Who gave `key`: the checkpoint, or the architecture's defaults (timm's data config), which it only implies."""
    return f"{meta['implied_by']} say" if key in (meta.get("implied") or ()) else "the checkpoint says"


def _stats(mean: Sequence[float] | None, std: Sequence[float] | None) -> str | None:
    if not mean or not std:
        return None
    return f"mean {','.join(f'{v:g}' for v in mean)}, std {','.join(f'{v:g}' for v in std)}"


def _common_size(images: Sequence[ImageSource], named: int | None, channels: Callable[[int], int] | None) -> tuple[int, str]:
    """The side of the images when all are square and of one size: the model then sees them as they are, and the note
    says whether the size the model's config names (`named`) agrees ("nothing names the model's input size" was said of
    a ViT whose config.json names it). Otherwise a
    UsageError, whose fix names the size the model's config names (`named`): a Hugging Face model saved without its
    image processor was "the image size is unknown", and --preset imagenet then failed on 224 px for a 160 px ViT.
    The presets are offered where they fit the model (_presets)."""
    sizes = sorted(set().union(*(source.sizes() for source in images))) if images else []
    if len(sizes) == 1 and sizes[0][0] == sizes[0][1]:
        side = sizes[0][0]
        taken = f"image size {side} taken from the images (all {side}x{side})"
        if named == side:
            return side, f"{taken}, the size the model's config names"
        if named is not None:
            return (
                side,
                f"{taken}; the model's config names {named}, not used to resize (pass --image-size {named} if it was trained at that size)",
            )
        return side, f"{taken}: nothing names the model's input size"
    seen = shown([f"{w}x{h}" for w, h in sizes], 3)
    why = (
        ""
        if not sizes
        else f" and the images are {seen} (width x height), not square"
        if len(sizes) == 1
        else f" and the images differ in size ({seen})"
    )
    fix = (
        f"pass --image-size {named}, the size the model's config names"
        if named
        else "pass --image-size N, the side the model takes: each image's shorter side is resized to N and its center cropped"
    )
    raise UsageError(f"the image size is unknown{why}", fix=f"{fix}{_presets(sizes, channels)}")


def _presets(sizes: list[tuple[int, int]], channels: Callable[[int], int] | None) -> str:
    """The presets the unknown-size error offers: they set CIFAR-10's and ImageNet's RGB statistics, which fit no
    model whose first layer takes 1 channel (asked of it fed the smallest side of `sizes`), so that one is offered none."""
    if sizes and channels is not None and channels(min(min(size) for size in sizes)) == 1:
        return ""
    return ", or --preset cifar10|imagenet"


P = ParamSpec("P")
R = TypeVar("R")


def as_the_command(command: Callable[P, R]) -> Callable[P, R]:
    """`command` (score, rank, track) run in torch's state as the command line has it (torch_as_the_command)."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with torch_as_the_command():
            return command(*args, **kwargs)

    return run


@contextlib.contextmanager
def torch_as_the_command() -> Iterator[None]:
    """Outside any inference_mode or autocast the caller opened, with float32 as the default dtype, then the caller's
    settings back: called where a loop or a notebook evaluates (inside `torch.inference_mode()`), every checkpoint
    loaded into inference tensors that the step cannot update, and each row was an error; under a default dtype of
    float64 its network was built in float64 and failed on the float32 images; under the loop's CPU autocast the
    accuracy passes ran in bfloat16 (a training accuracy of 0.65 read 0.649), and rank stored that number in its
    results file. The default dtype is one setting for the whole process: another thread of the caller's creating
    tensors meanwhile gets float32 too."""
    before = torch.get_default_dtype()
    autocast = [torch.autocast(d, enabled=False) for d in ("cpu", "cuda") if d == "cpu" or torch.cuda.is_available()]
    torch.set_default_dtype(torch.float32)
    try:
        with torch.inference_mode(False), contextlib.ExitStack() as stack:
            for off in autocast:
                stack.enter_context(off)
            yield
    finally:
        torch.set_default_dtype(before)
