"""Scoring one loaded checkpoint: choose its preprocessing, measure susceptibility and training accuracy, make its
row. suscli.run.score, .rank and .track build on it; `Settings` decides the numbers of every audit."""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from suscli.measure.devices import resolve_device
from suscli.measure.accuracy import Accuracy, check_label_range, encode_hits, gap, held_out, training_accuracy
from suscli.measure.predictions import Predictions, predict
from suscli.measure.normalization import (
    CHANNELS_UNKNOWN,
    NO_NORMALIZATION,
    SIZE_ELSEWHERE,
    as_measured,
    channel_order_hint,
    combined_hint,
    crop_hint,
    hits_of,
    mean_std_flags,
    normalization_hint,
    PROBE_IMAGES,
    probe_positions,
    second_positions,
    size_hint,
)
from suscli.measure.randomness import Checked, random_forward
from suscli.load.checkpoints import Checkpoint, off_scale_mean, sidecar_path
from suscli.load.safe_read import checkpoint_stem
from suscli.errors import InputError, SuscliError, UsageError, plural, require_type, shown, summary_line
from suscli.files import printable
from suscli.data.embedded import ImageRef
from suscli.data.images import PRESETS, ImageSource, Preprocess, Sizing, check_channels, named_set, normalizer
from suscli.data.labels import case_hint, counted_from_one, folder_ids, held_out_ids, id_table, known_classes, numbered_names
from suscli.results import Result
from suscli.defaults import ADAPTIVE
from suscli.measure.susceptibility import (
    DEFAULT_BATCH_SIZE,
    Susceptibility,
    SusceptibilityConfig,
    check_finite,
    check_logits_item,
    logits_of,
    measure_susceptibility,
    plain,
    preserved_modes,
    unwrapped,
)
from suscli.measure.untrained import untrained_susceptibility
from suscli.judge.verdict import at_cuts_step, wants_untrained

Progress = Callable[[str, int, int], None]


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
        require_pixel_mean("mean", self.mean, self.std)
        for value in self.std or ():
            require_number("std", value, low=0, above=True)
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


def require_pixel_mean(name: str, mean: Sequence[float] | None, std: Sequence[float] | None = None) -> None:
    """A UsageError where option `name`'s mean lies outside 0 to 1, the scale of the pixels it is subtracted from
    (off_scale_mean says what to give instead)."""
    if fix := off_scale_mean(list(mean or ()), list(std or ()), f"{name} ", "--std " if name == "--mean" else "std "):
        shown = ",".join(f"{m:g}" for m in mean or ())
        raise UsageError(f"{name} {shown} is not on the scale of the pixels it is subtracted from: suscli scales them to 0-1", fix=fix)


def require_number(
    name: str, value: object, low: float | None = None, high: float | None = None, *, whole: bool = False, above: bool = False
) -> None:
    """A UsageError unless `value` is None or a finite number within the bounds (above `low` where `above`): the bounds
    the command line's option has, for the value given in Python, where a nan gate passed every model and a
    training accuracy of 65 (a percentage) failed every one."""
    if value is None:
        return
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and (isinstance(value, numbers.Integral) or not whole):
        x = float(value)
        if math.isfinite(x) and (low is None or x > low or (x == low and not above)) and (high is None or x <= high):
            return
    if low is not None and high is not None:
        bounds = f" from {low:g} to {high:g}"
    elif low is not None:
        bounds = f" above {low:g}" if above else f" of at least {low:g}"
    else:
        bounds = f" of at most {high:g}" if high is not None else ""
    raise UsageError(f"{name} takes {'a whole' if whole else 'a finite'} number{bounds}, got {value!r}")


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
    settings: Settings, meta: dict, images: Sequence[ImageSource] = (), named: int | None = None
) -> tuple[Preprocess, list[str]]:
    """Preprocessing for one model. Explicit options beat the checkpoint's metadata, which beats nothing.

    Normalization: --mean/--std, else --preset, else the checkpoint's mean/std, else its preset, else none.
    Image size: --image-size, else the checkpoint's image_size, else the preset's, else the size every one of
    `images` has; where none is, the error's fix offers `named`, the size the model's own config names
    (configured_size). The crop, resize mode, interpolation and crop offset: the preset's when given, else the checkpoint's. Where an option overrides
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
        size, note = _common_size(images, named)
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


def _common_size(images: Sequence[ImageSource], named: int | None) -> tuple[int, str]:
    """The side of the images when all are square and of one size: the model then sees them as they are, and the note
    says whether the size the model's config names (`named`) agrees ("nothing names the model's input size" was said of
    a ViT whose config.json names it). Otherwise a
    UsageError, whose fix names the size the model's config names (`named`): a Hugging Face model saved without its
    image processor was "the image size is unknown", and --preset imagenet then failed on 224 px for a 160 px ViT."""
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
    why = "" if not sizes else f" and the images are {seen}, not square" if len(sizes) == 1 else f" and the images differ in size ({seen})"
    fix = f"pass --image-size {named}, the size the model's config names" if named else "pass --image-size"
    raise UsageError(f"the image size is unknown{why}", fix=f"{fix}, or --preset cifar10|imagenet")


_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def input_channels(model: nn.Module, image_size: int) -> int:
    """Channels the model's first layer expects: a conv's in_channels, or an MLP's in_features / pixels. The first
    layer is the first one a forward reaches (first_layer), else the first one declared: declared order alone took a
    classifier declared before the convolutions (`self.fc` first in __init__) for the first layer, and fed a
    grayscale network RGB images ("expected input[2, 3, 32, 32] to have 1 channels")."""
    layers = [m for m in model.modules() if isinstance(m, _LAYERS)]
    first = first_layer(model, layers, image_size) or next(iter(layers), None)
    if isinstance(first, nn.Linear):
        c, rest = divmod(first.in_features, image_size * image_size)
        return c if rest == 0 and c in (1, 3) else 3
    return first.in_channels if first is not None else 3


class _Reached(Exception):
    """Stops first_layer's forward at the first layer it reaches."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer


def first_layer(model: nn.Module, layers: list[nn.Module], image_size: int) -> nn.Module | None:
    """The first of `layers` that an eval forward of one blank RGB image reaches, stopped before that layer runs (so
    before its channel count can refuse the image); None where the forward fails before reaching one."""

    def reached(layer: nn.Module, _: object) -> None:
        raise _Reached(layer)

    weight = next((p for p in model.parameters() if p.is_floating_point()), None)
    if weight is None or not layers:
        return None
    hooks = [m.register_forward_pre_hook(reached) for m in layers]
    try:
        with preserved_modes(model), torch.no_grad(), torch.random.fork_rng(devices=[]):
            model.eval()
            model(torch.zeros(1, 3, image_size, image_size, dtype=weight.dtype, device=weight.device))
    except _Reached as e:
        return e.layer
    except Exception:  # a forward that fails before any layer: the declared order decides
        return None
    finally:
        for hook in hooks:
            hook.remove()
    return None


def score_checkpoint(
    checkpoint: Checkpoint,
    data: ImageSource,
    train: ImageSource | None = None,
    *,
    val: ImageSource | None = None,
    settings: Settings = Settings(),
    device: torch.device | None = None,
    progress: Progress | None = None,
    name: str | None = None,
    predictions: bool = True,
    checked: Checked | None = None,
) -> Result:
    """Susceptibility and training accuracy of a loaded checkpoint, and its accuracy on the held-out images `val`
    (--val-data) when given. Input problems raise SuscliError. `predictions`: also its top classes on the unlabeled
    images (details["predictions"]), what a pool's decisions read (suscli.judge.rules); one checkpoint judged alone
    reads none of them, and they cost an eval pass over every unlabeled image (suscli.run.score). `checked`: the
    networks a pool's earlier models showed random or not (suscli.measure.randomness), not checked again."""
    start = time.perf_counter()
    device = device or resolve_device()
    images = [s for s in (data, train, val) if s is not None]
    prep, notes = preprocessing(settings, checkpoint.meta, images, configured_size(checkpoint.model))
    notes += source_notes(data, train) + (val.notes if val is not None else [])
    val_map = val_ids(checkpoint, val, train)
    ids, mapping = label_ids(checkpoint, train)
    notes += mapping + sorted_val_note(checkpoint, val, train)
    model, transform = on_device(checkpoint.model, prep.normalizer(), device)
    channels = input_channels(model, prep.side)
    try:
        check_channels(channels)
    except InputError as e:  # which model: in a pool's row, or a script's loop over checkpoints, the path is the clue
        raise InputError(f"{checkpoint.path}: {e.message}", fix=e.fix) from None
    with named_set("unlabeled set", data):
        pixels, _, unreadable = data.decoded(prep.sizing, channels, device, progress)
    bad = None
    try:
        labels_in_range(checkpoint, model, transform(pixels[:2].to(device)), train, ids, val, val_map)
        try:
            sus = measure_susceptibility(
                model, pixels, config=settings.susceptibility, transform=transform, device=device, progress=progress
            )
        except torch.cuda.OutOfMemoryError:  # the batch size is part of the measurement: never shrunk behind the user's back
            raise InputError(
                f"{checkpoint.path}: out of GPU memory measuring susceptibility with batches of "
                f"{min(settings.susceptibility.batch_size, len(pixels))} images",
                fix="pass a smaller --batch-size, the same for every model compared",
            ) from None
        except InputError as e:  # a model whose outputs are no class logits, a BatchNorm step on one image: which model
            raise InputError(f"{checkpoint.path}: {e.message}", fix=e.fix) from None
        check_finite(sus)
        checked_logits(checkpoint, model, sus, pixels, transform, device)
        val_map = counted_val_ids(val_map, checkpoint, val, train, sus.num_classes)
        random = random_forward(model, pixels, transform=transform, device=device, most=sus.batch_size, seen=checked)
        notes += [random] if random else []
        preds = predict(model, pixels, transform=transform, device=device) if predictions else None
        reference = untrained_reference(model, sus, pixels, settings=settings, inputs=(prep, channels), transform=transform, device=device)
        acc = None
        if train is not None:
            with named_set("training set", train):
                train_pixels, labels, bad = train.decoded(prep.sizing, channels, device, progress)
            labels = model_labels(labels, ids)
            with training_errors(train):
                acc = training_accuracy(
                    model, train_pixels, labels, population=train.population, transform=transform, device=device, progress=progress
                )
        val_acc, val_bad = None, None
        if val is not None:
            with named_set("held-out set", val):
                val_pixels, val_labels, val_bad = val.decoded(prep.sizing, channels, device, progress)
            val_labels = model_labels(val_labels, val_map)
            with held_out_errors(val):
                val_acc = training_accuracy(
                    model,
                    val_pixels,
                    val_labels,
                    transform=transform,
                    device=device,
                    progress=progress,
                    what="held-out accuracy",
                )
        labelled = (train_pixels, labels, "training", acc) if train is not None else None
        if labelled is None and val is not None:
            labelled = (val_pixels, val_labels, "held-out", val_acc)
        notes = normalization_noted(notes, checkpoint, model, prep, labelled, device, settings.susceptibility.seed)
        source = train if train is not None else val  # the labelled images, as `labelled` holds them decoded
        if (fed := unrecorded_size(settings, checkpoint.meta)) is not None and labelled is not None:
            own = own_size_pixels(prep, source, len(labelled[0]), channels, device, settings.susceptibility.seed)
            notes = size_noted(notes, model, transform, prep, labelled, own, fed, device)
        if (by := unrecorded_crop(settings, checkpoint.meta, notes)) is not None and labelled is not None:
            whole = whole_pixels(prep, source, len(labelled[0]), channels, device, settings.susceptibility.seed)
            notes = crop_noted(notes, model, transform, prep, labelled, whole, by, sidecar_path(checkpoint.path).name, device)
    # Shape errors from a model that does not fit these images, or device errors. Models check their input size too:
    # timm's and torchvision's ViTs with torch._assert (AssertionError), transformers' with ValueError; one that
    # indexes a fixed position (x[:, :, 39]) raises IndexError on smaller images.
    except (RuntimeError, torch.jit.Error, AssertionError, ValueError, IndexError) as e:
        first = summary_line(e) or type(e).__name__  # a TorchScript model's message carries its interpreter's traceback
        named = configured_size(checkpoint.model)
        raise InputError(
            f"{checkpoint.path}: the model failed on {prep.image_size}x{prep.image_size} images with {channels} {plural(channels, 'channel')}: {first}",
            fix=f"pass --image-size {named}, the size its config names"
            if named not in (None, prep.image_size)
            else "check --arch, --image-size and --preset",
        ) from None
    return scored_row(
        checkpoint,
        sus,
        acc,
        preds,
        settings=settings,
        prep=prep,
        channels=channels,
        notes=notes,
        images=len(pixels),
        unreadable=unreadable,
        train_unreadable=bad,
        seconds=time.perf_counter() - start,
        name=name,
        val=val_acc,
        val_unreadable=val_bad,
        untrained=reference,
    )


def checked_logits(
    checkpoint: Checkpoint,
    model: nn.Module,
    sus: Susceptibility,
    pixels: torch.Tensor,
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
) -> None:
    """Where the classes measured are not those the checkpoint names, an InputError if the model's output holds the
    logits in another place than the first (check_logits_item); a file's count and a whole model's outputs may
    differ otherwise, and the row then says so (scored_row). `model` is the checkpoint's, as on_device placed it."""
    said = checkpoint.num_classes
    if said is not None and said not in (sus.num_classes, 1):
        try:
            check_logits_item(model, transform(pixels[:2].to(device)), said)
        except InputError as e:
            raise InputError(f"{checkpoint.path}: {e.message}", fix=e.fix) from None


def untrained_reference(
    model: nn.Module,
    sus: Susceptibility,
    pixels: torch.Tensor,
    *,
    settings: Settings,
    inputs: tuple,
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
) -> dict | None:
    """What `model`'s network reads untrained, where the verdict reads it (suscli.judge.verdict.off_scale); None elsewhere."""
    if not wants_untrained(sus.mean, sus.config.lr, sus.batch_size, sus.num_classes):
        return None
    return untrained_susceptibility(model, pixels, config=settings.susceptibility, transform=transform, device=device, inputs=inputs)


def model_labels(labels: torch.Tensor | None, ids: torch.Tensor | None) -> torch.Tensor:
    """A labelled set's decoded labels as the model's class ids (through `ids` when the set names its classes)."""
    if labels is None:
        raise ValueError("a labelled image set decoded without labels")
    return labels if ids is None else ids.to(labels.device)[labels]


def source_notes(data: ImageSource, train: ImageSource | None) -> list[str]:
    """What listing the images left out (links skipped, dataset rows without a label): a note on every row, once where
    --data and --train-data name the same set."""
    return list(dict.fromkeys(data.notes + (train.notes if train is not None else [])))


def label_ids(checkpoint: Checkpoint, train: ImageSource | None) -> tuple[torch.Tensor | None, list[str]]:
    """For a training set labelled by class name, or by class folders its tool may have numbered otherwise, this model's
    id of each label (suscli.data.labels) and the note on where the mapping comes from; (None, []) otherwise."""
    if train is None:
        return None, []
    origin = f"{checkpoint.path} on {train.origin or 'the training set'}"
    if train.label_names is None and train.folders is None:  # class ids, read as written
        labels = train.labels or []
        hint = numbered_names(checkpoint.meta, labels) or counted_from_one(labels, checkpoint.num_classes, beyond=False)
        return None, [hint] if hint else []
    if train.label_names is None and train.folders is not None:
        ids, notes = folder_ids(train.folders, checkpoint.meta, origin)
        return ids, notes + _fewer_classes(checkpoint, train.folders, "class folders")
    ids, notes = id_table(train.label_names, checkpoint.meta, origin, train.names_order)
    return ids, notes + _fewer_classes(checkpoint, train.label_names or [], "class names")


def _fewer_classes(checkpoint: Checkpoint, names: Sequence[str], what: str) -> list[str]:
    """A training set naming fewer classes than the model has, where the model names none of its own: the set's
    names are numbered 0..K-1 among themselves, which is right only if they are the model's first K classes."""
    count = checkpoint.num_classes
    if not names or count is None or len(names) >= count or known_classes(checkpoint.meta) is not None:
        return []
    return [
        f"the model has {count} classes but the training set's {len(names)} {what} are numbered 0-{len(names) - 1} among "
        f"themselves: if they are not the model's first {len(names)} classes, its training accuracy is wrong (pass a "
        "path,label CSV of the model's class ids)"
    ]


def val_ids(
    checkpoint: Checkpoint, val: ImageSource | None, train: ImageSource | None, num_classes: int | None = None
) -> torch.Tensor | None:
    """The model's id of each held-out label, as label_ids gives it for the training set. A held-out set may lack a
    class, and its own sorted class folders (or class names) would then number the others wrongly: it is numbered by
    the training set's class folders or class names where the training set has them (a class the training set lacks
    is an InputError), else by the model's own class names, else as a training set's only where it has as many
    classes as the model (`num_classes`, the checkpoint's by default): suscli.data.labels.held_out_ids."""
    if val is None:
        return None
    names, own = _held_out_names(checkpoint, val, train)
    if names is None:  # labelled by class id
        return label_ids(checkpoint, val)[0]
    if own is None:
        count = num_classes or checkpoint.num_classes
        return held_out_ids(names, checkpoint.meta, count, f"held-out set {val.origin or ''}", folders=val.label_names is None)
    at = training_classes(val, own)
    train_ids, _ = label_ids(checkpoint, train)
    index = [at[n] for n in names]
    return torch.tensor(index, dtype=torch.int64) if train_ids is None else train_ids[index]


def _held_out_names(
    checkpoint: Checkpoint, val: ImageSource, train: ImageSource | None
) -> tuple[Sequence[str] | None, Sequence[str] | None]:
    """The held-out set's class names or folders (None where it is labelled by id), and the training set's that
    number them (None where the model's own names or the sorted order do): val_ids's two questions."""
    names = val.label_names if val.label_names is not None else val.folders
    own = None if train is None else train.label_names if train.label_names is not None else train.folders
    if train is not None and train.label_names is not None and known_classes(checkpoint.meta) is not None:
        own = None  # the training set's names map through the model's (id_table), as the held-out set's then do
    return names, own


def sorted_val_note(checkpoint: Checkpoint, val: ImageSource | None, train: ImageSource | None) -> list[str]:
    """The note where held-out class names or folders are numbered in their sorted order (or the order the set gives
    them) because neither the model nor the training set names its classes (val_ids): a guess, as a training set's is,
    which its rows said and the held-out set's did not (names beside a training CSV of ids read as right, whatever the
    ids meant)."""
    if val is None or known_classes(checkpoint.meta) is not None:
        return []
    names, own = _held_out_names(checkpoint, val, train)
    if names is None or own is not None:
        return []
    what = "class names" if val.label_names is not None else "class folders"
    order = val.names_order or "sorted order, as torchvision's ImageFolder"  # a dataset's ClassLabel, a one-hot table's columns
    return [
        f"held-out {what} numbered in {order} (neither the model nor the training set "
        "names its classes): if the model's ids are in another order, held-out accuracy is wrong (pass --val-data as a "
        "path,label CSV of class ids)"
    ]


def training_classes(val: ImageSource, own: Sequence[str]) -> dict[str, int]:
    """The training set's id of each of its class names (`own`), once every class the held-out set names is one of
    them: else an InputError, which the same training set's class folders raise for every model alike, so that
    suscli.run.inputs.val_source raises it once, before any model, rather than in each row."""
    names = (val.label_names if val.label_names is not None else val.folders) or []
    at = {name: i for i, name in enumerate(own)}
    missing = [n for n in names if n not in at]
    if missing:
        kind = plural(len(missing), "class name" if val.label_names is not None else "class folder")
        raise InputError(
            f"held-out set {val.origin or ''}: {kind} {', '.join(missing[:3])} {plural(len(missing), 'is', 'are')} not among the training set's classes"
            + case_hint(missing, own),
            fix="--val-data needs the classes of --train-data, by the same names",
        )
    return at


def counted_val_ids(
    val_map: torch.Tensor | None, checkpoint: Checkpoint, val: ImageSource | None, train: ImageSource | None, num_classes: int
) -> torch.Tensor | None:
    """`val_map` (val_ids before measuring, so that a bad held-out set stops the run before it costs anything), made
    again where the model's output counts other classes than its checkpoint said: the refusals depend on the count."""
    if val is None or num_classes == checkpoint.num_classes:
        return val_map
    return val_ids(checkpoint, val, train, num_classes)


def labels_in_range(
    checkpoint: Checkpoint,
    model: nn.Module,
    probe: torch.Tensor,
    train: ImageSource | None,
    ids: torch.Tensor | None,
    val: ImageSource | None,
    val_map: torch.Tensor | None,
) -> None:
    """Before anything is measured, the error the accuracy passes would raise where the training or held-out labels
    (as the model's ids, through `ids` and `val_map`) go beyond the model's classes: found in the pass, it came after
    susceptibility and predictions, and a batched group's models were then measured again one at a time. The classes
    are counted as the passes count them, on the model's logits for `probe` (two of the images, as it is fed them),
    not as the checkpoint names them: a count inferred from its last 2-D weight (an auxiliary head declared after
    the classifier) refused a model the passes measure."""
    labelled = [s for s in (train, val) if s is not None and s.labels]
    classes = output_classes(model, probe) if labelled else None
    if classes is None:
        return
    if train is not None and train.labels:
        with training_errors(train), _hinted(checkpoint, train, ids, classes):
            beyond = _names_beyond(train, ids, classes)
            check_label_range(_top_label(train, ids), classes, beyond, _empty_before(train, beyond))
    if val is not None and val.labels:
        val_map = counted_val_ids(val_map, checkpoint, val, train, classes)
        with held_out_errors(val), _hinted(checkpoint, val, val_map, classes):
            check_label_range(_top_label(val, val_map), classes)


@contextlib.contextmanager
def _hinted(checkpoint: Checkpoint, labelled: ImageSource, ids: torch.Tensor | None, classes: int) -> Iterator[None]:
    """A label range error of a set labelled by class id, with numbered_names's hint where the model's class names are
    numbers other than their ids: "the labels go up to 3 but the model has 3 classes", for ratings 1 to 3 that are
    the model's class names, said nothing of them; else counted_from_one's, where the ids run 1 to the class count
    (Oxford-IIIT Pet's CLASS-ID)."""
    try:
        yield
    except InputError as e:
        named = ids is None and labelled.label_names is None and labelled.folders is None
        labels = labelled.labels or []
        hint = (numbered_names(checkpoint.meta, labels) or counted_from_one(labels, classes, beyond=True)) if named else None
        raise InputError(f"{e.message}; {hint}" if hint else e.message, fix=e.fix) from None


def output_classes(model: nn.Module, probe: torch.Tensor) -> int | None:
    """The classes the model's logits count (a single logit is two, logits_of), from one eval forward; None where its
    output holds no logits, which measuring then says, naming the model."""
    with preserved_modes(model), torch.inference_mode():
        model.eval()
        try:
            return int(logits_of(model(probe)).shape[-1])
        except InputError:
            return None


def _names_beyond(labelled: ImageSource, ids: torch.Tensor | None, classes: int) -> list[str]:
    """The class names (a label file's, or class folders) that a labelled set numbers at `classes` or above."""
    names = labelled.label_names if labelled.label_names is not None else labelled.folders or []
    mapped = model_labels(torch.arange(len(names)), ids).tolist() if names else []
    return [n for n, i in zip(names, mapped) if i >= classes]


def _empty_before(labelled: ImageSource, beyond: list[str]) -> list[str]:
    """The class folders without images numbered before the last of the class folders `beyond` the model's classes:
    each keeps its id, so each pushes those after it one id further."""
    folders = labelled.folders or []
    if not beyond or beyond[-1] not in folders:
        return []
    last = folders.index(beyond[-1])
    return [name for name in labelled.empty_folders if folders.index(name) < last]


def _top_label(labelled: ImageSource, ids: torch.Tensor | None) -> int:
    """The highest of a labelled set's listed labels, as the model's class id."""
    return int(model_labels(torch.tensor(labelled.labels), ids).max())


@contextlib.contextmanager
def training_errors(train: ImageSource) -> Iterator[None]:
    """An error in the training-accuracy pass (labels beyond the model's classes) names the label folder or CSV, not
    the model: the row names the model, and a pool's models that fail alike share one message, which the report then
    says once (views.columns, views.formats.gate_lines), as held_out_errors does."""
    try:
        yield
    except InputError as e:
        where = f"on the training set {train.origin}" if train.origin else "on the training set"
        raise InputError(f"{where}: {e.message}", fix=e.fix) from None


@contextlib.contextmanager
def held_out_errors(val: ImageSource) -> Iterator[None]:
    """An error in the held-out pass (labels beyond the model's classes) names the held-out set; the row names the model,
    and a pool's models that fail alike share one message, which the report then says once (views.columns)."""
    try:
        yield
    except InputError as e:
        raise InputError(
            f"on the held-out set {val.origin or ''}: {e.message}".replace("training labels", "held-out labels"),
            fix="check that --val-data is labelled with the classes the model was trained on",
        ) from None


def on_device(
    model: nn.Module, transform: Callable[[torch.Tensor], torch.Tensor], device: torch.device
) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    """`model` moved to `device` (in place), as every pass calls it, model(x): a forward that takes its input by
    keyword only is called by that keyword (measure.susceptibility.unwrapped), and `transform` to feed it there.

    cuDNN's convolutions run fastest in channels_last, so on CUDA both switch to it; the CPU keeps its layout and
    so exactly its numbers. (A 5-D weight, Conv3d, has no channels_last layout.)
    """
    model = unwrapped(model.to(device))
    if device.type == "cuda" and all(t.dim() != 5 for t in [*model.parameters(), *model.buffers()]):
        model = model.to(memory_format=torch.channels_last)
        transform = _channels_last(transform)
    return model, transform


def normalization_noted(
    notes: list[str],
    checkpoint: Checkpoint,
    model: nn.Module,
    prep: Preprocess,
    labelled: tuple[torch.Tensor, torch.Tensor, str, Accuracy | None] | None,
    device: torch.device,
    seed: int,
) -> list[str]:
    """`notes` with what the labelled images (pixels, the model's labels, which set, the model's accuracy on them as
    measured, whose per-image hits spare the probes a pass) point to
    (suscli.measure.normalization): the "no normalization known" note says which common normalization, where one
    clearly fits better; where nothing records the checkpoint's channel order, a note says where the reversed order
    fits clearly better, read with the normalization in use; where neither is known, one note names the combination
    of the two that fits best, since the best normalization read in RGB need not be a BGR model's own. As they were
    without labels."""
    if labelled is None:
        return notes
    pixels, labels, what, acc = labelled
    measured = acc.hits if acc is not None else None

    def transform_for(mean: Sequence[float], std: Sequence[float], order: str) -> Callable[[torch.Tensor], torch.Tensor]:
        return on_device(model, normalizer(mean, std, order), device)[1]

    unknown = "channel_order" not in checkpoint.meta
    if NO_NORMALIZATION in notes and unknown and int(pixels.shape[1]) == 3:
        both = combined_hint(
            model,
            pixels,
            labels,
            transform_for,
            device=device,
            seed=seed,
            sidecar=sidecar_path(checkpoint.path).name,
            what=what,
            measured=measured,
        )
        if both is None:
            return notes
        which, hint = both
        if which == CHANNELS_UNKNOWN:
            return [*notes, f"{CHANNELS_UNKNOWN}; {hint}"]
        return [f"{n}; {hint}" if n == NO_NORMALIZATION else n for n in notes]
    if NO_NORMALIZATION in notes:  # the channel order is recorded, or grayscale images have none
        pointed = normalization_hint(
            model,
            pixels,
            labels,
            lambda m, s: transform_for(m, s, prep.channel_order),
            device=device,
            seed=seed,
            what=what,
            measured=measured,
        )
        return [f"{n}; {pointed}" if n == NO_NORMALIZATION else n for n in notes] if pointed else notes
    if unknown:
        order = channel_order_hint(
            model,
            pixels,
            labels,
            lambda o: transform_for(prep.mean, prep.std, o),
            device=device,
            seed=seed,
            sidecar=sidecar_path(checkpoint.path).name,
            what=what,
            measured=measured,
        )
        notes = [*notes, f"{CHANNELS_UNKNOWN}; {order}"] if order else notes
    return notes


def unrecorded_size(settings: Settings, meta: dict) -> str | None:
    """What set the input size where nothing recorded for the checkpoint says it: "--image-size N", "--preset P" or
    the architecture's defaults (timm's data config). None where the checkpoint records it, or the images gave it."""
    if meta.get("image_size") is not None and "image_size" not in (meta.get("implied") or ()):
        return None
    if settings.image_size:
        return f"--image-size {settings.image_size}"
    if settings.preset and PRESETS[settings.preset].image_size:
        return f"--preset {settings.preset}"
    return str(meta.get("implied_by") or "the architecture's defaults") if meta.get("image_size") is not None else None


Positioned = tuple[list[int], torch.Tensor]  # positions in the labelled pixels, those images decoded again (own size, whole)
# the probe's (probe_positions), and a second look's (second_positions), decoded only where one is taken, then kept
OwnSize = tuple[list[int], torch.Tensor, Callable[[], Positioned | None]]


def own_size_pixels(
    prep: Preprocess, source: ImageSource | None, count: int, channels: int, device: torch.device, seed: int
) -> OwnSize | None:
    """The probed images of the labelled set (probe_positions among the `count` decoded) decoded at their own
    size, where every one shares one square size other than the model's: what size_noted reads. Only those images are
    decoded again, once for the models sharing `prep` (those of a second look where one is taken); None where the
    images are of the model's size or of several."""
    if source is None or count == 0:
        return None
    sizes = source.sizes()
    if len(sizes) != 1:
        return None
    ((width, height),) = sizes
    if width != height or width == prep.side:
        return None
    return _probed_again(prep, source, count, Sizing(width), channels, device, seed)


def whole_pixels(
    prep: Preprocess, source: ImageSource | None, count: int, channels: int, device: torch.device, seed: int
) -> OwnSize | None:
    """The probed images of the labelled set decoded as measured but whole (crop_pct 1.0: the same size, resize and
    interpolation), what crop_noted reads; once for the models sharing `prep`, as own_size_pixels."""
    if source is None or count == 0 or prep.crop_pct >= 1:
        return None
    sizing = prep.sizing
    whole = Sizing(sizing.image_size, 1.0, sizing.resize, sizing.interpolation, sizing.crop_offset)
    return _probed_again(prep, source, count, whole, channels, device, seed)


def _probed_again(
    prep: Preprocess, source: ImageSource, count: int, sizing: Sizing, channels: int, device: torch.device, seed: int
) -> OwnSize | None:
    """The probed images among the `count` of `source` decoded as measured (with `prep`), decoded again with `sizing`,
    and a second look's, decoded only where one is taken, then kept; None where any of them fails to decode so."""
    unreadable = {ref for ref, _ in source.decoded(prep.sizing, channels, device)[2]}  # decoded already: cached
    kept = [i for i, ref in enumerate(source.paths) if ref not in unreadable]

    def again(idx: list[int]) -> Positioned | None:
        probe = source.subset([kept[i] for i in idx], len(source.paths))
        pixels, _, bad = probe.decoded(sizing, channels, device)
        return (idx, pixels) if not bad and len(pixels) == len(idx) else None

    probed = again(probe_positions(count, seed))
    wider = functools.cache(lambda: again(second_positions(count, seed)) if count > PROBE_IMAGES else None)
    return (*probed, wider) if probed is not None else None


# a probe's note from the probed images as measured, decoded again, their labels, the hits as measured, a second look
Hint = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray, Callable[[], tuple[np.ndarray, np.ndarray] | None]], str | None]


def _reread(
    notes: list[str],
    model: nn.Module,
    transform: Callable[[torch.Tensor], torch.Tensor],
    labelled: tuple[torch.Tensor, torch.Tensor, str, Accuracy | None],
    again: OwnSize,
    device: torch.device,
    hint: Hint,
) -> list[str]:
    """`notes` and the note `hint(measured, again, labels, now, wider)` gives on the probed images as measured and
    decoded again (`again`), the hits as measured, and a second look's hits both ways; the size and crop probes'
    common part. A model that fails on the images decoded again gets no note: it was measured."""
    pixels, labels, _, acc = labelled
    idx, other, more = again
    at = torch.tensor(idx)
    measured = acc.hits if acc is not None else None  # as measured: read already

    def wider() -> tuple[np.ndarray, np.ndarray] | None:  # a second look: these images decoded again, and as measured
        seen = more()
        if seen is None:
            return None
        idx, other = seen
        y = labels[torch.tensor(idx).to(labels.device)]
        x = pixels[torch.tensor(idx).to(pixels.device)]
        return hits_of(model, other, y, transform, device), as_measured(measured, idx, model, x, y, transform, device)

    try:
        x, y = pixels[at.to(pixels.device)], labels[at.to(labels.device)]
        now = as_measured(measured, idx, model, x, y, transform, device)
        said = hint(x, other, y, now, wider)
    except (SuscliError, RuntimeError, torch.jit.Error, AssertionError, ValueError, IndexError):
        return notes
    return notes + [said] if said else notes


def size_noted(
    notes: list[str],
    model: nn.Module,
    transform: Callable[[torch.Tensor], torch.Tensor],
    prep: Preprocess,
    labelled: tuple[torch.Tensor, torch.Tensor, str, Accuracy | None] | None,
    own: OwnSize | None,
    fed: str | None,
    device: torch.device,
) -> list[str]:
    """`notes` and, where the input size came from an option or a preset (`fed`, unrecorded_size) and the labelled
    images predict clearly more of their labels at their own size (`own`, own_size_pixels), a note saying so and what
    to pass (suscli.measure.normalization.size_hint). A model that fails at that size gets no note: it was measured."""
    if labelled is None or own is None or fed is None:
        return notes
    what, side = labelled[2], own[1].shape[-1]
    fix = (
        f"pass {mean_std_flags(prep.mean, prep.std)} instead of {fed}, which sets the size"
        if fed.startswith("--preset")
        else f"pass --image-size {side}"
    )
    return _reread(
        notes,
        model,
        transform,
        labelled,
        own,
        device,
        lambda x, own_pixels, y, now, wider: size_hint(
            model, x, own_pixels, y, now, transform, device=device, fed=fed, fix=fix, what=what, wider=wider
        ),
    )


def unrecorded_crop(settings: Settings, meta: dict, notes: Sequence[str]) -> str | None:
    """Who set a center crop (crop_pct below 1) that nothing recorded for the checkpoint and no option sets: the
    architecture's defaults (timm's data config, `implied_by`), as timm's own eval transform takes them for a run whose
    train.py left crop_pct unset. None where the crop is recorded, a --preset chose it, there is none, or the row
    already says its labels point to the images' own size (read whole too)."""
    if settings.preset or "crop_pct" not in (meta.get("implied") or ()) or not float(meta.get("crop_pct") or 1) < 1:
        return None
    if any(n.startswith(SIZE_ELSEWHERE) for n in notes):
        return None
    return str(meta.get("implied_by") or "the architecture's defaults")


def crop_noted(
    notes: list[str],
    model: nn.Module,
    transform: Callable[[torch.Tensor], torch.Tensor],
    prep: Preprocess,
    labelled: tuple[torch.Tensor, torch.Tensor, str, Accuracy | None] | None,
    whole: OwnSize | None,
    by: str | None,
    sidecar: str,
    device: torch.device,
) -> list[str]:
    """`notes` and, where the center crop came from the architecture's defaults alone (`by`, unrecorded_crop) and the
    labelled images predict clearly more of their labels read whole (`whole`, whole_pixels), a note saying so and the
    sidecar field that records the crop (suscli.measure.normalization.crop_hint)."""
    if labelled is None or whole is None or by is None:
        return notes
    what = labelled[2]
    fix = f'add {{"crop_pct": 1.0}} to {sidecar} beside the checkpoint'
    return _reread(
        notes,
        model,
        transform,
        labelled,
        whole,
        device,
        lambda x, uncropped, y, now, wider: crop_hint(
            model, uncropped, y, now, transform, device=device, crop_pct=prep.crop_pct, by=by, fix=fix, what=what, wider=wider
        ),
    )


def configured_size(model: nn.Module) -> int | None:
    """The input size a model's own config names (a Hugging Face ViT's `config.image_size`), for the fix of a model
    that fails on the images' size: not used to resize, since a CNN's config may name a size it was never trained at."""
    for m in model.modules():
        size = getattr(getattr(m, "config", None), "image_size", None)
        if isinstance(size, (list, tuple)) and len(size) == 2 and size[0] == size[1]:
            size = size[0]
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            return size
    return None


TRAIN_SKIPPED = re.compile(r"\d+ unreadable training image(?:s|\(s\))? skipped, first: .*", re.DOTALL)  # and an older row's "(s)"


def train_skipped_note(count: int, first: ImageRef) -> str:
    """A row's note on the training images it skipped as unreadable (TRAIN_SKIPPED finds it again: a growing sample
    recounts it at each stage, suscli.run.audit)."""
    return f"{count} unreadable training {plural(count, 'image')} skipped, first: {printable(first)}"


def scored_row(
    checkpoint: Checkpoint,
    sus: Susceptibility,
    acc: Accuracy | None,
    preds: Predictions | None,
    *,
    settings: Settings,
    prep: Preprocess,
    channels: int,
    notes: list[str],
    images: int,
    unreadable: list[tuple[ImageRef, str]],
    train_unreadable: list[tuple[ImageRef, str]] | None,
    seconds: float,
    name: str | None = None,
    val: Accuracy | None = None,
    val_unreadable: list[tuple[ImageRef, str]] | None = None,
    untrained: dict | None = None,
) -> Result:
    """The row of a measured model, with its notes: one function for models measured alone or together (`untrained`:
    what its network reads untrained, where it was measured; `preds`: its predictions on the unlabeled images, None
    where they were not made, and the row then holds no "predictions" key)."""
    notes = list(notes)
    if val_unreadable:
        notes.append(
            f"{len(val_unreadable)} unreadable held-out {plural(len(val_unreadable), 'image')} skipped, first: {printable(val_unreadable[0][0])}"
        )
    heldout = held_out(val) if val is not None else None
    between = gap((acc.value, acc.low, acc.high), heldout) if acc is not None and heldout is not None else None
    if unreadable:
        notes.append(f"{len(unreadable)} unreadable {plural(len(unreadable), 'image')} skipped, first: {printable(unreadable[0][0])}")
    if train_unreadable:
        notes.append(train_skipped_note(len(train_unreadable), train_unreadable[0][0]))
    if acc is not None and acc.halvings:
        notes.append(
            f"training-accuracy batch halved {acc.halvings} {plural(acc.halvings, 'time')} to {acc.batch_size} after CUDA ran out of memory"
        )
    if sus.batch_size < settings.susceptibility.batch_size:
        notes.append(_capped(sus.batch_size, settings.susceptibility))
    notes += _class_count_notes(checkpoint.num_classes, sus.num_classes)
    return Result(
        name=name or checkpoint_stem(checkpoint.path),
        path=str(checkpoint.path),
        arch=checkpoint.arch,
        epoch=checkpoint.meta.get("epoch"),
        susceptibility=sus.mean,
        susceptibility_sem=sus.sem,
        train_acc=acc.value if acc else None,
        train_acc_low=acc.low if acc else None,
        train_acc_high=acc.high if acc else None,
        train_n=acc.total if acc else None,
        val_acc=heldout[0] if heldout else None,
        val_acc_low=heldout[1] if heldout else None,
        val_acc_high=heldout[2] if heldout else None,
        val_n=val.total if val else None,
        gap=between[0] if between else None,
        gap_low=between[1] if between else None,
        gap_high=between[2] if between else None,
        sha256=checkpoint.sha256,
        seconds=round(seconds, 3),
        notes=checkpoint.notes + notes,
        details={
            "r": sus.r,
            "loss_before": sus.loss_before,
            "loss_after": sus.loss_after,
            "batch_size": sus.batch_size,
            "lr": sus.config.lr,  # with batch_size: whether the verdict's fixed cuts apply (suscli.judge.verdict)
            "num_classes": sus.num_classes,
            **({"untrained": untrained} if untrained is not None else {}),  # the fixed cuts' domain (suscli.judge.verdict)
            "images": images,
            "unreadable_images": len(unreadable),
            "preprocess": asdict(prep),
            "channels": channels,
            "arch_source": checkpoint.arch_source,
            # a rerun measures the model again once one of these files changed (suscli.run.audit.cached_row)
            **({"arch_sources": checkpoint.sources} if checkpoint.sources else {}),
            **({"classes": checkpoint.meta["classes"]} if checkpoint.meta.get("classes") else {}),  # a Hugging Face config's id2label
            # how its tool numbered class folders (suscli.data.labels.folder_ids): the class names of a report (suscli.run.inputs)
            **({"class_order": checkpoint.meta.get("class_order")} if acc is not None else {}),
            "train_acc": acc.as_dict() if acc else None,
            # top-k on the unlabeled images: the agreement rule (suscli.judge.rules); `score` makes them only when asked
            **({"predictions": preds.encode()} if preds is not None else {}),
            # top-k on the training images with their given labels: what the pool's consensus contradicts (suscli.judge.noise)
            "train_predictions": acc.predictions.encode() if acc and acc.predictions is not None else None,
            "train_hits": encode_hits(acc.hits) if acc and acc.hits is not None else None,  # per image: predicted as labelled
            # per held-out image: predicted as labelled (--val-data), what the paired comparisons of suscli.judge.rules read
            # the counts with the row's interval: every held-out image was measured, yet they are a sample (held_out)
            **(
                {
                    "val_acc": {**val.as_dict(), "low": heldout[1], "high": heldout[2]},
                    "val_hits": encode_hits(val.hits) if val.hits is not None else None,
                    # top-k with the held-out labels: what the voters' consensus reads of labels no model fitted
                    "val_predictions": val.predictions.encode() if val.predictions is not None else None,
                }
                if val and heldout
                else {}
            ),
        },
    )


def _capped(batch_size: int, asked: SusceptibilityConfig) -> str:
    """The note on a batch capped by the number of unlabeled images: where it moves the default step, which the
    verdict's fixed cuts were measured at, the row loses them, and the note says why rather than leave a bare "-"."""
    note = f"batch size capped at {batch_size}, the number of unlabeled images"
    if at_cuts_step(asked.lr, asked.batch_size):
        note += f": the verdict's fixed cuts, measured at batch size {DEFAULT_BATCH_SIZE}, do not apply (measure {DEFAULT_BATCH_SIZE} unlabeled images or more)"
    return note


def _class_count_notes(said: int | None, measured: int) -> list[str]:
    """What the row says of the classes the random labels were drawn over, where they are not those the checkpoint
    or --num-classes said: a single logit read as a binary classifier's two (logits_of), or a whole model's outputs,
    which rule."""
    if said == 1 and measured == 2:
        return [
            "the model outputs one logit per image (a binary classifier, as BCEWithLogitsLoss trains one): read as the "
            "logits (0, z) of classes 0 and 1, since sigmoid(z) = softmax(0, z)[1]"
        ]
    if said is not None and said != measured:
        return [
            f"the model outputs {measured} classes, where --num-classes or its file said {said}: random labels were drawn over its {measured}"
        ]
    return []


def _channels_last(transform: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """`transform`, with image batches handed on in channels_last layout to match the model's weights."""

    def apply(batch: torch.Tensor) -> torch.Tensor:
        x = transform(batch)
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

    return apply


def failed(path: str | Path, error: SuscliError, name: str | None = None) -> Result:
    """The row of a model that could not be scored: it stays in every report, with its reason."""
    return Result(name=name or checkpoint_stem(path), path=str(path), status="error", error=error.line())
