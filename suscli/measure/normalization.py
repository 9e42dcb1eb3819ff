"""Which common input normalization a model's own labels point to, where nothing says which it was trained with.

A plain state dict records no mean and std. Measured on pixels scaled to [0, 1], a model trained on normalized
images reads its training accuracy near chance and a susceptibility of inputs it never saw: the public CIFAR
ResNet-20 (trained on ImageNet's mean and std) predicted 26% of its training labels so, for 92% normalized. With
labels at hand, a couple of hundred images tell, by a paired test on the same images, whether one of the
normalizations training scripts commonly use fits the model clearly better. The same images tell whether a model
fed RGB, where nothing records its channel order, reads them clearly better reversed: one trained on images read
with OpenCV (BGR). The row's numbers are left as measured; the note says what to pass or record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from suscli.data.images import PRESETS, seeded_subset
from suscli.measure.accuracy import PAIRED_ALPHA, paired_separates, training_accuracy

Transform = Callable[[torch.Tensor], torch.Tensor]

# said where no option, checkpoint or sidecar names a mean and std; with labelled images, normalization_hint adds
# which common normalization they point to, after "; "
NO_NORMALIZATION = "no normalization known (no --preset, --mean/--std or checkpoint metadata): pixels scaled to [0, 1]"

# said, with what the reversed order reads after "; ", where nothing records a model's channel order and the labelled
# images point to BGR (channel_order_hint)
CHANNELS_UNKNOWN = "fed RGB: nothing records its channel order"
REVERSED = "the channels reversed (BGR, as OpenCV reads images)"  # how the notes name the reversed order

# begins the note saying that the labelled images' own size fits a model clearly better than the size it was fed
SIZE_ELSEWHERE = "its labels point to the images' own size"
# begins the note saying that the labelled images read whole fit a model clearly better than with the center crop
# that only its architecture's defaults set (crop_hint)
CROP_ELSEWHERE = "its labels point to the whole image"
# what the verdict, the choice, the gate and the noise line say of a row with any of these notes (points_elsewhere)
POINT_ELSEWHERE = "point to another input normalization, channel order, size or crop than the one measured"

PROBE_IMAGES = 200  # labelled images each candidate is read on: a wrong normalization costs tens of points, plain there
LEVEL = 1e-3  # the paired test's level, for the best of up to three candidates
# where no candidate is clearly better on the PROBE_IMAGES but the best is below SUGGESTIVE there, that one alone is read
# again on up to SECOND_IMAGES seeded images holding them (second_positions), and noted only if clearly better there:
# a wrong channel order can cost a model fewer points than 200 images tell apart at LEVEL
SUGGESTIVE = 0.05
SECOND_IMAGES = 1000
Hits = tuple[np.ndarray, np.ndarray]  # per-image hits of a reading and of the inputs as measured, on the same images
# (what the note calls it, mean, std) by the images' channel count: what training scripts commonly normalize with
CANDIDATES: dict[int, list[tuple[str, tuple[float, ...], tuple[float, ...]]]] = {
    3: [
        ("ImageNet's mean and std", PRESETS["imagenet"].mean, PRESETS["imagenet"].std),
        ("CIFAR-10's mean and std", PRESETS["cifar10"].mean, PRESETS["cifar10"].std),
        ("mean and std 0.5 (pixels in [-1, 1])", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ],
    1: [
        ("MNIST's mean and std", (0.1307,), (0.3081,)),
        ("mean and std 0.5 (pixels in [-1, 1])", (0.5,), (0.5,)),
    ],
}


def normalization_hint(
    model: nn.Module,
    pixels: torch.Tensor,
    labels: torch.Tensor,
    transform_for: Callable[[Sequence[float], Sequence[float]], Transform],
    *,
    device: torch.device,
    seed: int,
    what: str = "training",
    measured: np.ndarray | None = None,
) -> str | None:
    """The sentence to add to "no normalization known" where a common normalization makes the model predict clearly
    more of its labels (exact McNemar, LEVEL) on PROBE_IMAGES seeded images of `pixels` (uint8, the decoded set):
    which one, the counts under it and as measured, and the options to pass. None where none does. Where the channel
    order is unknown too, combined_hint reads them instead.
    `transform_for(mean, std)` gives the model's input transform for that normalization; `measured`, the per-image hits
    of the pass that measured the row on `pixels` (in [0, 1]), spares the probe that pass."""
    candidates = CANDIDATES.get(int(pixels.shape[1]), [])
    if not candidates or len(pixels) == 0:
        return None
    idx, x, y = _probed(pixels, labels, seed)
    unit = transform_for((0.0,), (1.0,))
    now = as_measured(measured, idx, model, x, y, unit, device)
    readings = [hits_of(model, x, y, transform_for(mean, std), device) for _, mean, std in candidates]
    best = pointed_to(
        readings,
        now,
        lambda k: _wider(model, pixels, labels, transform_for(*candidates[k][1:]), unit, device=device, seed=seed, measured=measured),
    )
    if best is None:
        return None
    k, (found, now), better = best
    name, mean, std = candidates[k]
    # those the same images cannot tell from it (ImageNet's and CIFAR-10's statistics are close)
    alike = [f"{candidates[j][0]}: {int(readings[j].sum())}" for j in better if j != k and not _clearly(found, readings[j], PAIRED_ALPHA)]
    flags = mean_std_flags(mean, std)
    return (
        f"with {name} it predicts {int(found.sum())} of {len(found):,} {what} images as labelled, against {int(now.sum())} as measured"
        + (f" ({'; '.join(alike)}, which these images do not tell apart)" if alike else "")
        + f": if it was trained on normalized images, pass the mean and std it was trained with ({flags} for {name})"
    )


def channel_order_hint(
    model: nn.Module,
    pixels: torch.Tensor,
    labels: torch.Tensor,
    transform_for: Callable[[str], Transform],
    *,
    device: torch.device,
    seed: int,
    sidecar: str,
    what: str = "training",
    measured: np.ndarray | None = None,
) -> str | None:
    """The sentence to add to CHANNELS_UNKNOWN where the channels reversed (BGR, as OpenCV's imread gives them) make a
    model fed RGB predict clearly more of its labels (exact McNemar, LEVEL) on the PROBE_IMAGES seeded images
    normalization_hint reads, with the normalization in use (where none is known, combined_hint reads both): the
    counts both ways and the sidecar field to write. None where they do not, and for grayscale images, which have no
    order. `transform_for(order)` gives the model's input transform in that order; `measured`, the per-image hits of
    the pass that measured the row on `pixels` as fed, spares the probe that pass."""
    if int(pixels.shape[1]) != 3 or len(pixels) == 0:
        return None
    idx, x, y = _probed(pixels, labels, seed)
    fed = as_measured(measured, idx, model, x, y, transform_for("RGB"), device)
    best = pointed_to(
        [hits_of(model, x, y, transform_for("BGR"), device)],
        fed,
        lambda _: _wider(model, pixels, labels, transform_for("BGR"), transform_for("RGB"), device=device, seed=seed, measured=measured),
    )
    if best is None:
        return None
    _, (reversed_, fed), _ = best
    return _reversed_sentence(reversed_, fed, what, sidecar)


def combined_hint(
    model: nn.Module,
    pixels: torch.Tensor,
    labels: torch.Tensor,
    transform_for: Callable[[Sequence[float], Sequence[float], str], Transform],
    *,
    device: torch.device,
    seed: int,
    sidecar: str,
    what: str = "training",
    measured: np.ndarray | None = None,
) -> tuple[str, str] | None:
    """Where neither the normalization nor the channel order is known: every common normalization read in both
    orders, and [0, 1] reversed, on the PROBE_IMAGES seeded images, since a model trained on BGR images normalized
    reads every RGB candidate badly and the best of them need not be its own. The note to extend (NO_NORMALIZATION,
    or CHANNELS_UNKNOWN where only the order differs) and the sentence naming the combination under which the model
    predicts clearly more of its labels (exact McNemar, LEVEL) than as measured, with those the images do not tell
    apart from it and the fixes; None where none does. `transform_for(mean, std, order)` gives the model's input
    transform; `measured`, the per-image hits of the pass that measured the row ([0, 1], RGB), spares that pass."""
    if int(pixels.shape[1]) != 3 or len(pixels) == 0:
        return None
    candidates = CANDIDATES[3]
    idx, x, y = _probed(pixels, labels, seed)
    unit = transform_for((0.0,), (1.0,), "RGB")
    now = as_measured(measured, idx, model, x, y, unit, device)
    # ties go to the earlier: the order as fed before the reversed, [0, 1] before a normalization
    combos: list[tuple[tuple[str, tuple[float, ...], tuple[float, ...]] | None, str]] = [(c, "RGB") for c in candidates]
    combos += [(None, "BGR"), *((c, "BGR") for c in candidates)]

    def transform(k: int) -> Transform:
        norm, order = combos[k]
        return transform_for(*((norm[1], norm[2]) if norm is not None else ((0.0,), (1.0,))), order)

    readings = [hits_of(model, x, y, transform(k), device) for k in range(len(combos))]
    best = pointed_to(
        readings, now, lambda k: _wider(model, pixels, labels, transform(k), unit, device=device, seed=seed, measured=measured)
    )
    if best is None:
        return None
    k, (found, now), better = best
    count, seen = int(found.sum()), len(found)
    norm, order = combos[k]

    def called(j: int) -> str:
        other, other_order = combos[j]
        if other is None:
            return "the channels reversed, pixels in [0, 1]"
        return other[0] + (", the channels reversed" if other_order == "BGR" else ", the channels as fed" if order == "BGR" else "")

    alike = [f"{called(j)}: {int(readings[j].sum())}" for j in better if j != k and not _clearly(found, readings[j], PAIRED_ALPHA)]
    said = f" ({'; '.join(alike)}, which these images do not tell apart)" if alike else ""
    add = f'add {{"channel_order": "BGR"}} to {sidecar} beside the checkpoint'
    if norm is None:  # as channel_order_hint words it
        return CHANNELS_UNKNOWN, _reversed_sentence(found, now, what, sidecar, said)
    name, flags = norm[0], mean_std_flags(norm[1], norm[2])
    return NO_NORMALIZATION, (
        f"with {name}{f' and {REVERSED}' if order == 'BGR' else ''} it predicts {count} of {seen:,} {what} images as "
        f"labelled, against {int(now.sum())} as measured{said}: if it was trained on normalized images"
        f"{' read so' if order == 'BGR' else ''}, pass the mean and std it was trained with ({flags} for {name})"
        + (f" and {add}" if order == "BGR" else "")
    )


def probe_positions(count: int, seed: int) -> list[int]:
    """The positions, among `count` decoded labelled images, of the PROBE_IMAGES seeded ones every probe reads (the
    size probe decodes these again at their own size), so that all their counts are of the same images."""
    return seeded_subset(count, PROBE_IMAGES, seed)


def second_positions(count: int, seed: int) -> list[int]:
    """The positions of the up to SECOND_IMAGES seeded images a second look reads: probe_positions and, drawn seeded
    from the others, as many more, so that the images that suggested the reading are among those that decide it."""
    first = probe_positions(count, seed)
    taken = set(first)
    rest = [i for i in range(count) if i not in taken]
    return sorted(first + [rest[i] for i in seeded_subset(len(rest), SECOND_IMAGES - PROBE_IMAGES, seed)])


def pointed_to(readings: Sequence[np.ndarray], now: np.ndarray, wider: Callable[[int], Hits | None]) -> tuple[int, Hits, list[int]] | None:
    """What every probe notes: the reading (its position in `readings`, per-image hits on the PROBE_IMAGES) with the
    most hits among those clearly more than `now`, the inputs as measured (exact McNemar, LEVEL), the hits it is told
    by (its, and as measured), and the positions of all those clearly more; ties go to the earlier. Where none is,
    the reading with the most hits, if suggestive (below SUGGESTIVE), is read again on up to SECOND_IMAGES images
    (`wider(k)`: its hits and those as measured there; None where no more images were decoded) and kept only if
    clearly more there, at LEVEL: the note needs that test, whatever the first 200 suggested. None otherwise."""
    better = [k for k, found in enumerate(readings) if _clearly(found, now, LEVEL)]
    if better:
        k = max(better, key=lambda j: int(readings[j].sum()))
        return k, (readings[k], now), better
    k = max(range(len(readings)), key=lambda j: int(readings[j].sum()))
    if not _clearly(readings[k], now, SUGGESTIVE) or (more := wider(k)) is None or not _clearly(*more, LEVEL):
        return None
    return k, more, [k]


def _wider(
    model: nn.Module,
    pixels: torch.Tensor,
    labels: torch.Tensor,
    transform: Transform,
    unit: Transform,
    *,
    device: torch.device,
    seed: int,
    measured: np.ndarray | None,
) -> Hits | None:
    """A second look's hits (pointed_to): `transform`'s and the inputs' as measured (`unit`: their transform) on the
    second_positions of the decoded `pixels`, those as measured off the row's own pass where given. None where no more
    than the probed were decoded."""
    idx = second_positions(len(pixels), seed)
    if len(idx) <= PROBE_IMAGES:
        return None
    at = torch.tensor(idx)
    x, y = pixels[at], labels[at]
    return hits_of(model, x, y, transform, device), as_measured(measured, idx, model, x, y, unit, device)


def mean_std_flags(mean: Sequence[float], std: Sequence[float]) -> str:
    """The options that give a model this normalization, as a note tells the user to pass them."""
    return f"--mean {','.join(f'{v:g}' for v in mean)} --std {','.join(f'{v:g}' for v in std)}"


def _probed(pixels: torch.Tensor, labels: torch.Tensor, seed: int) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """The probed images' positions (probe_positions), pixels and labels."""
    idx = probe_positions(len(pixels), seed)
    at = torch.tensor(idx)
    return idx, pixels[at], labels[at]


def as_measured(
    measured: np.ndarray | None, idx: list[int], model: nn.Module, x: torch.Tensor, y: torch.Tensor, unit: Transform, device: torch.device
) -> np.ndarray:
    """The hits of the inputs as measured on the images `x` (positions `idx` of the decoded set): the measuring
    pass's own (`measured`), which read the same model, inputs and labels, so no pass again; else a pass through
    `unit`, their transform."""
    return np.asarray(measured, dtype=bool)[idx] if measured is not None else hits_of(model, x, y, unit, device)


def _reversed_sentence(found: np.ndarray, fed: np.ndarray, what: str, sidecar: str, said: str = "") -> str:
    """The channel-order note's sentence: the counts read reversed and as fed (`said`: the readings the images do not
    tell apart), and the sidecar field to write."""
    return (
        f"with {REVERSED} it predicts {int(found.sum())} of {len(found):,} {what} images as labelled, against {int(fed.sum())} "
        f'as fed{said}: if it was trained on images read so, add {{"channel_order": "BGR"}} to {sidecar} beside the checkpoint'
    )


def hits_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor, transform: Transform, device: torch.device) -> np.ndarray:
    """Which of the images `x` the model predicts as labelled `y`, fed through `transform`."""
    acc = training_accuracy(model, x, y, transform=transform, device=device)
    assert acc.hits is not None
    return acc.hits


def size_hint(
    model: nn.Module,
    measured: torch.Tensor,
    own: torch.Tensor,
    labels: torch.Tensor,
    now: np.ndarray,
    transform: Transform,
    *,
    device: torch.device,
    fed: str,
    fix: str,
    what: str = "training",
    wider: Callable[[], Hits | None] = lambda: None,
) -> str | None:
    """The note (SIZE_ELSEWHERE) where the model predicts clearly more of `labels` (exact McNemar, LEVEL) on the same
    images decoded at their own size (`own`) than as measured (`measured`), with the same normalization: a size that
    came from a preset or an option (`fed`: which) upscales CIFAR's 32 px to 224, and the public ResNet-20 then read
    chance; `fix`: the options to pass; `now`: the hits as measured (as_measured);
    `wider`: the hits at their own size and as measured on up to SECOND_IMAGES images, a second look (pointed_to).
    None where their own size does not fit clearly better."""
    read = _read_again(model, own, labels, now, transform, device, wider)
    if read is None:
        return None
    found, now = read
    side, at = own.shape[-1], measured.shape[-1]
    return (
        f"{SIZE_ELSEWHERE}: at {side}x{side} it predicts {int(found.sum())} of {len(found):,} {what} images as labelled, "
        f"against {int(now.sum())} at the {at}x{at} measured (the size {fed} sets; nothing recorded for this checkpoint "
        f"says it): if it was trained at {side} px, {fix}"
    )


def crop_hint(
    model: nn.Module,
    whole: torch.Tensor,
    labels: torch.Tensor,
    now: np.ndarray,
    transform: Transform,
    *,
    device: torch.device,
    crop_pct: float,
    by: str,
    fix: str,
    what: str = "training",
    wider: Callable[[], Hits | None] = lambda: None,
) -> str | None:
    """The note (CROP_ELSEWHERE) where the model predicts clearly more of `labels` (exact McNemar, LEVEL) on the same
    images read whole (`whole`: crop_pct 1.0, the same size, normalization and order) than as measured, center-cropped
    to `crop_pct` by an architecture's defaults (`by`: whose), which nothing recorded for the checkpoint says: a timm
    run whose train.py left crop_pct unset, trained whole by its own loop, is read with its defaults' crop, and a
    model that reads the edges of its images then reads chance. `fix`: what to write; `now`: the hits as measured
    (as_measured); `wider`: the hits read whole and as measured on up to SECOND_IMAGES images, a second look
    (pointed_to). None where whole images do not fit clearly better."""
    read = _read_again(model, whole, labels, now, transform, device, wider)
    if read is None:
        return None
    found, now = read
    return (
        f"{CROP_ELSEWHERE}: uncropped it predicts {int(found.sum())} of {len(found):,} {what} images as labelled, against "
        f"{int(now.sum())} with the center crop {crop_pct:g} that {by} set (nothing recorded for this checkpoint says it): "
        f"if it was trained on whole images, {fix}"
    )


def _read_again(
    model: nn.Module,
    again: torch.Tensor,
    labels: torch.Tensor,
    now: np.ndarray,
    transform: Transform,
    device: torch.device,
    wider: Callable[[], Hits | None],
) -> Hits | None:
    """The size and crop probes' one reading: the images decoded again (`again`: at their own size, or whole) against
    the hits as measured (`now`), with a second look (`wider`) where suggestive (pointed_to); the hits both ways that
    tell it, or None where it does not fit clearly better."""
    best = pointed_to([hits_of(model, again, labels, transform, device)], now, lambda _: wider())
    return None if best is None else best[1]


def _clearly(a: np.ndarray, b: np.ndarray, level: float) -> bool:
    """Whether the hits `a` are clearly more than `b` on the same images (exact McNemar at `level`)."""
    return int(a.sum()) > int(b.sum()) and paired_separates(a, b, level)


def points_elsewhere(notes: Sequence[str]) -> bool:
    """Whether a row's notes say its labels point to another normalization, channel order, input size or crop than the
    one it was measured with."""
    return any(n.startswith((f"{NO_NORMALIZATION}; ", f"{CHANNELS_UNKNOWN}; ", SIZE_ELSEWHERE, CROP_ELSEWHERE)) for n in notes)
