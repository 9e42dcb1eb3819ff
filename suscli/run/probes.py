"""What the labelled images say of a model's preprocessing where nothing recorded it: the normalization, the
channel order, the input size and the center crop, each probed on a few images (suscli.measure.normalization) and
said as a note on the row."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from suscli.measure.accuracy import Accuracy
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
from suscli.load.checkpoints import Checkpoint
from suscli.load.safe_read import sidecar_path
from suscli.errors import SuscliError
from suscli.data.images import PRESETS, ImageSource, Preprocess, Sizing, normalizer
from suscli.run.placement import on_device
from suscli.run.settings import Settings


# What every probe reads: the labelled images' pixels as measured, their labels as the model's class ids, which set they
# are ("training", "held-out"), and the model's accuracy on them as measured, whose per-image hits spare a pass
Labelled = tuple[torch.Tensor, torch.Tensor, str, Accuracy | None]


def normalization_noted(
    notes: list[str],
    checkpoint: Checkpoint,
    model: nn.Module,
    prep: Preprocess,
    labelled: Labelled | None,
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
    labelled: Labelled,
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
    labelled: Labelled | None,
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
    labelled: Labelled | None,
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
