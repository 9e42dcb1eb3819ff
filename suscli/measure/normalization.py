"""Which common input normalization a model's own labels point to, where nothing says which it was trained with.

A plain state dict records no mean and std. Measured on pixels scaled to [0, 1], a model trained on normalized
images reads its training accuracy near chance and a susceptibility of inputs it never saw: the public CIFAR
ResNet-20 (trained on ImageNet's mean and std) predicted 26% of its training labels so, for 92% normalized. With
labels at hand, a couple of hundred images tell, by a paired test on the same images, whether one of the
normalizations training scripts commonly use fits the model clearly better. The row's numbers are left as
measured; the note says what to pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from suscli.data.images import PRESETS, seeded_subset
from suscli.measure.accuracy import PAIRED_ALPHA, mcnemar_p, training_accuracy

Transform = Callable[[torch.Tensor], torch.Tensor]

# said where no option, checkpoint or sidecar names a mean and std; with labelled images, normalization_hint adds
# which common normalization they point to, after "; "
NO_NORMALIZATION = "no normalization known (no --preset, --mean/--std or checkpoint metadata): pixels scaled to [0, 1]"

# begins the note saying that the labelled images' own size fits a model clearly better than the size it was fed
SIZE_ELSEWHERE = "its labels point to the images' own size"

PROBE_IMAGES = 200  # labelled images each candidate is read on: a wrong normalization costs tens of points, plain there
LEVEL = 1e-3  # the paired test's level, for the best of up to three candidates
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
) -> str | None:
    """The sentence to add to "no normalization known" where a common normalization makes the model predict clearly
    more of its labels (exact McNemar, LEVEL) on PROBE_IMAGES seeded images of `pixels` (uint8, the decoded set):
    which one, the counts under it and as measured, and the options to pass. None where none does.
    `transform_for(mean, std)` gives the model's input transform for that normalization."""
    candidates = CANDIDATES.get(int(pixels.shape[1]), [])
    if not candidates or len(pixels) == 0:
        return None
    idx = torch.tensor(seeded_subset(len(pixels), PROBE_IMAGES, seed))
    x, y = pixels[idx], labels[idx]

    def hits(mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
        acc = training_accuracy(model, x, y, transform=transform_for(mean, std), device=device)
        assert acc.hits is not None
        return torch.from_numpy(acc.hits)

    now = hits((0.0,), (1.0,))
    better = []  # (hits, candidate, per image) of those that fit clearly better than [0, 1]
    for k, (_, mean, std) in enumerate(candidates):
        found = hits(mean, std)
        if _clearly(found, now, LEVEL):
            better.append((int(found.sum()), k, found))
    if not better:
        return None
    count, k, found = max(better, key=lambda b: b[0])
    name, mean, std = candidates[k]
    # those the same images cannot tell from it (ImageNet's and CIFAR-10's statistics are close)
    alike = [f"{candidates[j][0]}: {c}" for c, j, other in better if j != k and not _clearly(found, other, PAIRED_ALPHA)]
    flags = f"--mean {','.join(f'{v:g}' for v in mean)} --std {','.join(f'{v:g}' for v in std)}"
    return (
        f"with {name} it predicts {count} of {len(idx)} {what} images as labelled, against {int(now.sum())} as measured"
        + (f" ({'; '.join(alike)}, which these images do not tell apart)" if alike else "")
        + f": if it was trained on normalized images, pass the mean and std it was trained with ({flags} for {name})"
    )


def size_hint(
    model: nn.Module,
    measured: torch.Tensor,
    own: torch.Tensor,
    labels: torch.Tensor,
    transform: Transform,
    *,
    device: torch.device,
    fed: str,
    fix: str,
    what: str = "training",
) -> str | None:
    """The note (SIZE_ELSEWHERE) where the model predicts clearly more of `labels` (exact McNemar, LEVEL) on the same
    images decoded at their own size (`own`) than as measured (`measured`), with the same normalization: a size that
    came from a preset or an option (`fed`: which) upscales CIFAR's 32 px to 224, and the public ResNet-20 then read
    chance; `fix`: the options to pass. None where their own size does not fit clearly better."""

    def hits(pixels: torch.Tensor) -> torch.Tensor:
        acc = training_accuracy(model, pixels, labels, transform=transform, device=device)
        assert acc.hits is not None
        return torch.from_numpy(acc.hits)

    now, found = hits(measured), hits(own)
    if not _clearly(found, now, LEVEL):
        return None
    side, at = own.shape[-1], measured.shape[-1]
    return (
        f"{SIZE_ELSEWHERE}: at {side}x{side} it predicts {int(found.sum())} of {len(labels)} {what} images as labelled, "
        f"against {int(now.sum())} at the {at}x{at} measured (the size {fed} sets; nothing recorded for this checkpoint "
        f"says it): if it was trained at {side} px, {fix}"
    )


def _clearly(a: torch.Tensor, b: torch.Tensor, level: float) -> bool:
    """Whether the hits `a` are clearly more than `b` on the same images (exact McNemar at `level`)."""
    gained, lost = int((a & ~b).sum()), int((b & ~a).sum())
    return gained > lost and mcnemar_p(gained, lost) < level


def points_elsewhere(notes: Sequence[str]) -> bool:
    """Whether a row's notes say its labels point to another normalization, or input size, than the one it was
    measured with."""
    return any(n.startswith((f"{NO_NORMALIZATION}; ", SIZE_ELSEWHERE)) for n in notes)
