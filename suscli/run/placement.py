"""Where a model runs: moved to its device, as every pass calls it, in the layout its convolutions run fastest in."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from suscli.measure.susceptibility import unwrapped


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


def _channels_last(transform: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """`transform`, with image batches handed on in channels_last layout to match the model's weights."""

    def apply(batch: torch.Tensor) -> torch.Tensor:
        x = transform(batch)
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

    return apply
