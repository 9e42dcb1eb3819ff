"""Training accuracy: how well the model fits the (possibly noisy) labels it was trained with."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from suscli.errors import InputError
from suscli.susceptibility import logits_of, preserved_modes

Progress = Callable[[str, int, int], None]


@dataclass
class Accuracy:
    correct: int
    total: int
    population: int  # size of the labelled set the images were drawn from
    low: float  # 95% Wilson interval; equal to the value when every image was used
    high: float

    @property
    def value(self) -> float:
        return self.correct / self.total

    @property
    def sampled(self) -> bool:
        return self.total < self.population

    def as_dict(self) -> dict:
        return {**asdict(self), "value": self.value, "sampled": self.sampled}


def wilson_interval(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion: well behaved near 0 and 1, unlike the normal one."""
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def training_accuracy(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    population: int | None = None,
    batch_size: int = 512,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str | None = None,
    progress: Progress | None = None,
) -> Accuracy:
    """Accuracy of `model` (eval mode, no gradients) on `inputs` against `labels`.

    `population` is the size of the set `inputs` were sampled from; when it is larger than len(inputs), the
    result is an estimate and carries its binomial interval.
    """
    if len(inputs) != len(labels) or len(inputs) == 0:
        raise InputError(f"training accuracy needs as many labels as images, got {len(labels)} labels for {len(inputs)} images")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    transform = transform or (lambda x: x)
    correct = 0
    with preserved_modes(model):
        model.eval()
        with torch.inference_mode():
            for start in range(0, len(inputs), batch_size):
                x = transform(inputs[start : start + batch_size].to(device, non_blocking=True))
                y = labels[start : start + batch_size].to(device)
                logits = logits_of(model(x))
                if start == 0 and int(labels.max()) >= logits.shape[-1]:
                    raise InputError(
                        f"the training labels go up to {int(labels.max())} but the model has {logits.shape[-1]} classes",
                        fix="check that --train-data is the set this model was trained on (class ids = sorted folder names)",
                    )
                correct += int((logits.argmax(-1) == y).sum())
                if progress:
                    progress("training accuracy", min(start + batch_size, len(inputs)), len(inputs))
    total = len(inputs)
    population = max(population or total, total)
    low, high = wilson_interval(correct, total) if population > total else (correct / total, correct / total)
    return Accuracy(correct=correct, total=total, population=population, low=low, high=high)
