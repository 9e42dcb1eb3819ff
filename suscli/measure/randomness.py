"""Whether a model's forward is random where the measurement needs it fixed.

Dropout modules are switched off by their mode (suscli.measure.susceptibility.train_without_dropout), but a forward
that calls `F.dropout(x, p)` (training=True by default) drops units in eval mode too, and one that calls
`F.dropout(x, p, training=self.training)` does in the training-mode step. Seeded, the numbers still repeat, so nothing
showed it: two passes of one small batch under different random states do, for the cost of four forwards.

Whether a forward is random is a property of its code and settings, not of its weights: a run's checkpoints of one
network (`Network`) are checked once (`Checked`), each row still carrying the note.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from suscli.measure.batched import eager, hooked, plain_attributes, same_attributes
from suscli.measure.susceptibility import (
    KeptBuffers,
    kept_buffers,
    logits_of,
    own_modules,
    preserved_modes,
    put_back_buffers,
    train_without_dropout,
)

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
    seen: Checked | None = None,
) -> str | None:
    """A note where `model`'s forward is random in eval mode (what predictions and accuracies use), or in the training
    mode of the susceptibility step with its dropout modules off; None where it is one network, or where the check
    cannot run (out of GPU memory: it is a warning, not part of the measurement). At most `most` images, the
    measurement's batch size: a batch the user shrank to fit the GPU is the largest known to fit. The model's modes,
    buffers (BatchNorm's running statistics) and the global RNG are left as they were. `seen`: what this run's
    earlier checks found; a network checked there on a batch of the same shape is not checked again (four forwards
    per checkpoint added up over a run's checkpoints: docs/performance.md, "A run of one network")."""
    x = transform(inputs[: min(CHECKED, most)].to(device))
    network = Network.of(model, x) if seen is not None else None
    if seen is not None and network is not None and (found := seen.found(network)) is not None:
        return found[0]
    try:
        note = check_forward(model, x)
    except torch.cuda.OutOfMemoryError:  # not known: a later checkpoint checks again
        return None
    if seen is not None and network is not None:
        seen.add(network, note)
    return note


def check_forward(model: nn.Module, x: torch.Tensor) -> str | None:
    """random_forward's four forwards of the batch `x`, as it describes them; a CUDA out-of-memory error raises."""
    buffers = kept_buffers(model)
    rng = torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else [])
    with torch.no_grad(), preserved_modes(model), own_modules(model), rng:
        try:
            model.eval()
            if _differ(model, x, buffers):
                return EVAL_RANDOM
            train_without_dropout(model)
            if len(x) > 1 and _differ(model, x, buffers):  # BatchNorm takes no training-mode batch of one
                return TRAIN_RANDOM
        finally:
            put_back_buffers(buffers)
    return None


@dataclass(frozen=True, eq=False)  # compared by same(): a setting may lack a plain equality (an array)
class Network:
    """What a forward runs besides its weights: every module's class, settings (plain_attributes) and place, the
    tensors' names, shapes, dtypes and devices, and the batch checked. Two models that share it run the same code
    on the same kind of batch, so their forwards are random alike. Holds no weights: a run keeps no model alive
    (a network whose settings reach a module or a tensor has none, _holds_state)."""

    layers: tuple[tuple[str, type], ...]
    settings: tuple[dict[str, object], ...]
    tensors: tuple[tuple[str, torch.Size, torch.dtype, torch.device, bool], ...]
    batch: tuple[torch.Size, torch.dtype, torch.device]

    @classmethod
    def of(cls, model: nn.Module, x: torch.Tensor) -> Network | None:
        """`model`'s network on the batch `x`; None where code beside its classes' may run (a TorchScript or fx graph,
        whose code is its file's, or hooks), or where a setting reaches a module or a tensor, which kept would keep
        every checkpoint's weights alive until the run ended; such a model is then checked every time."""
        modules = list(model.named_modules())
        if not eager(model) or any(hooked(m) for _, m in modules):
            return None
        settings = tuple(plain_attributes(m) for _, m in modules)
        if any(_holds_state(v, set()) for s in settings for v in s.values()):
            return None
        tensors = [*model.named_parameters(), *model.named_buffers()]
        return cls(
            layers=tuple((name, type(m)) for name, m in modules),
            settings=settings,
            tensors=tuple((name, t.shape, t.dtype, t.device, t.requires_grad) for name, t in tensors),
            batch=(x.shape, x.dtype, x.device),
        )

    def same(self, other: Network) -> bool:
        return (self.layers, self.tensors, self.batch) == (other.layers, other.tensors, other.batch) and all(
            same_attributes(a, b) for a, b in zip(self.settings, other.settings)
        )


def _holds_state(value: object, seen: set[int]) -> bool:
    """Whether a setting reaches a module or a tensor: a plain list of the model's layers, a tensor beside its
    buffers, a bound method or a closure over the model, each in a container or a functools.partial. `seen`: the
    containers walked, as a setting may hold itself."""
    if id(value) in seen:
        return False
    seen.add(id(value))
    if isinstance(value, (nn.Module, torch.Tensor, types.MethodType)):
        return True
    if isinstance(value, types.FunctionType):
        inner = [_contents(c) for c in value.__closure__ or ()]
    elif isinstance(value, functools.partial):
        inner = [value.func, *value.args, *value.keywords.values()]
    elif isinstance(value, dict):
        inner = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        inner = list(value)
    else:
        return False
    return any(_holds_state(v, seen) for v in inner)


def _contents(cell: types.CellType) -> object:
    """What a closure's cell holds; None for one not yet assigned, whose reading raises."""
    try:
        return cell.cell_contents
    except ValueError:
        return None


class Checked:
    """What random_forward found of each network a run (a track's checkpoints, a pool) has checked."""

    def __init__(self) -> None:
        self._found: list[tuple[Network, str | None]] = []

    def found(self, network: Network) -> tuple[str | None] | None:
        """(note,) where a network the same as `network` was checked, None where none was."""
        return next(((note,) for seen, note in self._found if seen.same(network)), None)

    def add(self, network: Network, note: str | None) -> None:
        self._found.append((network, note))


def _differ(model: nn.Module, x: torch.Tensor, buffers: KeptBuffers) -> bool:
    """Whether two passes of `x` under different random states give logits further apart than TOLERANCE of their scale.
    Each pass starts from the model's own buffers: a forward that updates one it reads (a running center) is not random."""
    outs = []
    for seed in (1, 2):
        put_back_buffers(buffers)
        torch.manual_seed(seed)
        outs.append(logits_of(model(x)).float())
    a, b = outs
    return bool((a - b).abs().max() > TOLERANCE * a.abs().max().clamp(min=1e-6))
