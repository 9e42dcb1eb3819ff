"""Whether a model's forward is random where the measurement needs it fixed.

Dropout modules are switched off by their mode (suscli.measure.susceptibility.train_without_dropout), but a forward
that calls `F.dropout(x, p)` (training=True by default) drops units in eval mode too, and one that calls
`F.dropout(x, p, training=self.training)` does in the training-mode step. Seeded, the numbers still repeat, so nothing
showed it: two passes of one small batch under different random states do, for the cost of four forwards.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from suscli.measure.susceptibility import logits_of, own_modules, preserved_modes, train_without_dropout

CHECKED = 16  # images in the batch passed twice: enough for a dropout to show, cheap beside the measurement
# How far two passes may differ and still be one network: a GPU's nondeterministic kernels (atomic adds, cuDNN's
# algorithm choice) change the order of float32 sums, a rounding far below this; a dropout moves logits by percents.
TOLERANCE = 1e-3

EVAL_RANDOM = (
    "the model's outputs differ between two eval-mode passes over the same images (a functional dropout, F.dropout(x, p) "
    "with its default training=True, or another random op in its forward): its predictions, accuracies and "
    "susceptibility are of a randomly thinned network; they repeat only because the measurement is seeded"
)
TRAIN_RANDOM = (
    "the model's forward is random in training mode outside its dropout modules (a functional dropout, "
    "F.dropout(x, p, training=self.training), or another random op): the step's loss before and after is taken on "
    "differently thinned networks, which adds noise to its susceptibility"
)


def random_forward(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    most: int = CHECKED,
) -> str | None:
    """A note where `model`'s forward is random in eval mode (what predictions and accuracies use), or in the training
    mode of the susceptibility step with its dropout modules off; None where it is one network, or where the check
    cannot run (out of GPU memory: it is a warning, not part of the measurement). At most `most` images, the
    measurement's batch size: a batch the user shrank to fit the GPU is the largest known to fit. The model's modes,
    buffers (BatchNorm's running statistics) and the global RNG are left as they were."""
    x = transform(inputs[: min(CHECKED, most)].to(device))
    buffers = list(model.buffers())
    saved = [b.detach().clone() for b in buffers]
    rng = torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])
    with torch.no_grad(), preserved_modes(model), own_modules(model), rng:
        try:
            model.eval()
            if _differ(model, x):
                return EVAL_RANDOM
            train_without_dropout(model)
            if len(x) > 1 and _differ(model, x):  # BatchNorm takes no training-mode batch of one
                return TRAIN_RANDOM
        except torch.cuda.OutOfMemoryError:
            return None
        finally:
            for b, s in zip(buffers, saved):
                b.copy_(s)
    return None


def _differ(model: nn.Module, x: torch.Tensor) -> bool:
    """Whether two passes of `x` under different random states give logits further apart than TOLERANCE of their scale."""
    outs = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        outs.append(logits_of(model(x)).float())
    a, b = outs
    return bool((a - b).abs().max() > TOLERANCE * a.abs().max().clamp(min=1e-6))
