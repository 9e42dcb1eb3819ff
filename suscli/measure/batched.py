"""Measuring several models of one architecture at once: torch.func over their stacked weights.

A pool often holds many models of one architecture, and on a GPU one small model leaves most of the device
idle. Here the models' parameters and buffers are stacked (`torch.func.stack_module_state`) and one `vmap` of
a `functional_call` computes every model's step and both losses, or its training-accuracy forwards, at once.
The numbers are those of `measure_susceptibility` and `training_accuracy`, one model at a time, within float
tolerance (tests/test_batched.py). Where an architecture does not allow it (a forward that calls `.item()` or
branches on a tensor's value, an op vmap has no rule for), that group is measured one model at a time instead.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from suscli.measure.accuracy import CPU_BATCH_SIZE, TRAIN_TOP_K, Accuracy, from_counts, gathered, training_accuracy
from suscli.measure.predictions import Predictions, top_k
from suscli.measure.devices import cpu_batch
from suscli.measure.steps import step_size
from suscli.measure.susceptibility import (
    Progress,
    Susceptibility,
    SusceptibilityConfig,
    _device_of,
    batch_indices,
    check_not_probabilities,
    check_output_graph,
    reproducible_fp32,
    logits_of,
    measure_susceptibility,
    random_labels,
    summarize,
    train_without_dropout,
)

Transform = Callable[[torch.Tensor], torch.Tensor]
Tensors = dict[str, torch.Tensor]


def default_model_batch(device: torch.device) -> int:
    """Models measured together unless asked otherwise: several on CUDA, where one small model leaves the GPU
    idle; one elsewhere, since a few CPU cores are already busy with one model and batching does not help."""
    return 8 if device.type == "cuda" else 1


def batchable(a: nn.Module, b: nn.Module) -> bool:
    """Whether `b` can run in one vmap with `a`. functional_call runs `a`'s code and settings with `b`'s tensors,
    so all else must match: every submodule's class and plain attributes (a stride, BatchNorm's eps), the
    parameters' and buffers' names, shapes, dtypes, devices and requires_grad, the top-level train/eval flag
    (stack_module_state asks for it); and no hooks, which would run for `a` only. TorchScript and torch.export
    models never are: functional_call cannot swap a ScriptModule's parameters, and vmap cannot run a graph's
    symbolic shapes (the attempt failed every time, after torch had warned on stderr)."""
    if a.training != b.training or not (eager(a) and eager(b)):
        return False
    tensors = [(dict(m.named_parameters()), dict(m.named_buffers())) for m in (a, b)]
    for mine, theirs in zip(*tensors):
        if mine.keys() != theirs.keys() or any(
            (x.shape, x.dtype, x.device, x.requires_grad) != (y.shape, y.dtype, y.device, y.requires_grad)
            for x, y in ((mine[k], theirs[k]) for k in mine)
        ):
            return False
    subs = [list(m.named_modules()) for m in (a, b)]
    return len(subs[0]) == len(subs[1]) and all(
        n == o and type(x) is type(y) and not hooked(x) and not hooked(y) and _same_attributes(x, y) for (n, x), (o, y) in zip(*subs)
    )


def groups(models: Sequence[nn.Module], keys: Sequence[object] | None = None) -> list[list[int]]:
    """Indices of `models` in groups that can run in one vmap (and have equal `keys`), in the order given."""
    found: list[list[int]] = []
    for i, model in enumerate(models):
        for group in found:
            j = group[0]
            if (keys is None or keys[j] == keys[i]) and batchable(models[j], model):
                group.append(i)
                break
        else:
            found.append([i])
    return found


def measure_many(
    models: list[nn.Module],
    inputs: torch.Tensor,
    *,
    config: SusceptibilityConfig = SusceptibilityConfig(),
    transform: Transform | None = None,
    device: torch.device | str | None = None,
    num_classes: int | None = None,
    progress: Progress | None = None,
) -> list[Susceptibility]:
    """`measure_susceptibility` of each model (same labels, batches, modes and step), each batchable group in one
    vmap. The models are not touched: the forwards run on a copy on the 'meta' device with stacked tensors."""
    found: dict[int, Susceptibility] = {}
    for group in groups(models):
        members = [models[i] for i in group]
        one_at_a_time = len(members) == 1 or not _accepted(inputs, config)
        try:
            with reproducible_fp32():
                results = None if one_at_a_time else _measure_together(members, inputs, config, transform, device, num_classes, progress)
        except Exception:  # vmap could not run these models: the reference path, which raises any input error its own way
            results = None
        if results is None:
            results = [
                measure_susceptibility(
                    m, inputs, config=config, num_classes=num_classes, transform=transform, device=device, progress=progress
                )
                for m in members
            ]
        for i, result in zip(group, results):
            found[i] = result
    return [found[i] for i in range(len(models))]  # the groups hold every index


def training_accuracy_many(
    models: list[nn.Module],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    population: int | None = None,
    batch_size: int | None = None,
    transform: Transform | None = None,
    device: torch.device | str | None = None,
    progress: Progress | None = None,
    what: str = "training accuracy",
) -> list[Accuracy]:
    """`training_accuracy` of each model, each batchable group's eval-mode forwards in one vmap. A group that
    fails is counted one model at a time, so that any error is the reference's own. `what` names the pass, as there.

    On CUDA every model is counted alone: one model's batch of 2,048 images already fills the GPU, and stacking
    models only multiplies the memory. Measured on an H200 (docs/performance.md): 4 ResNet-50s at 224 px together
    took 4.0x the time of the same forwards one model at a time and 97 GB of GPU memory against 12 GB; 16 ResNet-20s
    at 32 px, 1.6x."""
    found: dict[int, Accuracy] = {}
    cuda = bool(models) and (torch.device(device) if device is not None else _device_of(models[0])).type == "cuda"
    for group in groups(models):
        members = [models[i] for i in group]
        one_at_a_time = cuda or len(members) == 1 or len(inputs) != len(labels) or len(inputs) == 0  # the reference refuses the latter
        try:
            counted = None if one_at_a_time else _count_together(members, inputs, labels, batch_size, transform, device, progress, what)
        except Exception:  # vmap could not run these models, or memory ran out: the reference path
            counted = None
        if counted is None:
            results = [
                training_accuracy(
                    m,
                    inputs,
                    labels,
                    population=population,
                    batch_size=batch_size,
                    transform=transform,
                    device=device,
                    progress=progress,
                    what=what,
                )
                for m in members
            ]
        else:
            correct, used, preds, hits = counted
            results = [from_counts(c, len(inputs), population, used, predictions=p, hits=h) for c, p, h in zip(correct, preds, hits)]
        for i, result in zip(group, results):
            found[i] = result
    return [found[i] for i in range(len(models))]  # the groups hold every index


def _measure_together(
    models: list[nn.Module],
    inputs: torch.Tensor,
    config: SusceptibilityConfig,
    transform: Transform | None,
    device: torch.device | str | None,
    num_classes: int | None,
    progress: Progress | None,
) -> list[Susceptibility]:
    """The measurement of suscli.measure.susceptibility for batchable `models`, with one vmap per pass."""
    device = torch.device(device) if device is not None else _device_of(models[0])
    transform = transform or (lambda x: x)
    n, batch_size = len(inputs), min(config.batch_size, len(inputs))
    base, trainable, fixed = _functional(models)
    first = transform(inputs[:2].to(device))
    if num_classes is None:
        base.eval()
        with torch.no_grad():
            probe = _logits(base)(trainable, fixed, first)
        check_not_probabilities(probe)
        num_classes = probe.shape[-1]
    check_output_graph(models[0], first)  # one architecture: one output
    labels = random_labels(n, num_classes, config.seed)
    train_without_dropout(base)

    def loss(params: Tensors, state: Tensors, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits_of(functional_call(base, (params, state), (x,))), y)

    loss_and_grads = vmap(grad_and_value(loss), in_dims=(0, 0, None, None))
    before: list[list[float]] = []
    after: list[list[float]] = []
    for b, idx in enumerate(batch_indices(n, config.batches, batch_size, config.seed)):
        x = transform(inputs[idx].to(device, non_blocking=True))
        y = labels[idx].to(device)
        # every batch starts from the checkpoints' buffers; BatchNorm updates this copy in place, as in the reference
        state = {k: v.clone() for k, v in fixed.items()}
        grads, loss_before = loss_and_grads(trainable, state, x, y)
        with torch.no_grad():
            stepped = {k: torch.sub(p, grads[k], alpha=step_size(config.lr, p.dtype)) for k, p in trainable.items()}  # as sgd_step
            loss_after = vmap(loss, in_dims=(0, 0, None, None))(stepped, state, x, y)
        before.append(loss_before.tolist())
        after.append(loss_after.tolist())
        if progress:
            progress("susceptibility", b + 1, config.batches)
    return [
        summarize([row[i] for row in before], [row[i] for row in after], batch_size, num_classes, config, n) for i in range(len(models))
    ]


def _count_together(
    models: list[nn.Module],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int | None,
    transform: Transform | None,
    device: torch.device | str | None,
    progress: Progress | None,
    what: str = "training accuracy",
) -> tuple[list[int], int, list[Predictions], list[np.ndarray]] | None:
    """Correct predictions of each of `models`, the batch size used, each model's top classes per image and which
    images it predicts as labelled; None when the labels go beyond the models' classes, for the reference path to raise its error."""
    target = torch.device(device) if device is not None else _device_of(models[0])  # not CUDA: see training_accuracy_many
    transform = transform or (lambda x: x)
    batch_size = min(batch_size or cpu_batch(CPU_BATCH_SIZE, inputs), len(inputs))
    base, trainable, fixed = _functional(models)
    base.eval()
    forward = _logits(base)
    top_label = int(labels.max())
    correct = torch.zeros(len(models), dtype=torch.long, device=target)
    kept: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in models]
    hits: list[torch.Tensor] = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            logits = forward(trainable, fixed, transform(inputs[start : start + batch_size].to(target, non_blocking=True)))
            if top_label >= logits.shape[-1]:
                return None
            hit = logits.argmax(-1) == labels[start : start + batch_size].to(target)
            correct += hit.sum(-1)
            hits.append(hit.cpu())
            for mine, model_logits in zip(kept, logits):
                mine.append(top_k(model_logits, TRAIN_TOP_K))
            if progress:
                progress(what, min(start + batch_size, len(inputs)), len(inputs))
    per_model = torch.cat(hits, dim=1).numpy()
    return correct.tolist(), batch_size, [gathered(batches, int(logits.shape[-1]), labels) for batches in kept], list(per_model)


def _functional(models: list[nn.Module]) -> tuple[nn.Module, Tensors, Tensors]:
    """A copy of the first model on the 'meta' device, to run with the stacked tensors, and those tensors:
    the parameters stepped (every floating-point one, frozen ones too, as measure_susceptibility steps them) apart
    from the rest (buffers)."""
    params, buffers = stack_module_state(models)
    trainable = {k: p.detach() for k, p in params.items() if p.requires_grad or p.is_floating_point()}
    fixed = {**{k: p.detach() for k, p in params.items() if k not in trainable}, **buffers}
    return copy.deepcopy(models[0]).to("meta"), trainable, fixed


def _logits(base: nn.Module) -> Callable[[Tensors, Tensors, torch.Tensor], torch.Tensor]:
    """Every model's logits on one batch of inputs: (models, batch, classes)."""
    return vmap(lambda params, state, x: logits_of(functional_call(base, (params, state), (x,))), in_dims=(0, 0, None))


def _accepted(inputs: torch.Tensor, config: SusceptibilityConfig) -> bool:
    """What measure_susceptibility accepts; anything else goes to it, to be refused with its own error."""
    return len(inputs) > 0 and config.batches >= 1 and config.batch_size >= 1 and config.lr > 0


def eager(model: nn.Module) -> bool:
    """Whether `model` runs Python modules' code: a TorchScript or fx graph's code is its file's, whatever its class."""
    return not any(isinstance(m, (torch.jit.ScriptModule, fx.GraphModule)) for m in model.modules())


def hooked(m: nn.Module) -> bool:
    """Whether hooks run around `m`'s forward or backward: code of their own, beside its class's."""
    return bool(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks)


def plain_attributes(m: nn.Module) -> dict[str, object]:
    """What vars() holds beyond the private state and the train/eval flag: a module's settings (a stride, BatchNorm's
    eps, a functional dropout's p), which its forward reads beside its tensors."""
    return {k: v for k, v in vars(m).items() if not k.startswith("_") and k != "training"}


def same_attributes(mine: dict[str, object], theirs: dict[str, object]) -> bool:
    """Whether two modules' plain_attributes are equal, where known: a value without a plain equality is not."""
    return mine.keys() == theirs.keys() and all(_same(mine[k], theirs[k]) for k in mine)


def _same_attributes(a: nn.Module, b: nn.Module) -> bool:
    return same_attributes(plain_attributes(a), plain_attributes(b))


def _same(x: object, y: object) -> bool:
    if x is y:
        return True
    if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
        return (
            isinstance(x, torch.Tensor)
            and isinstance(y, torch.Tensor)
            and (x.shape, x.dtype, x.device) == (y.shape, y.dtype, y.device)
            and torch.equal(x, y)
        )
    try:
        return bool(x == y)
    except Exception:  # a value without a plain equality (an array, a list of tensors): not known to be equal
        return False
