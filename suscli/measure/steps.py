"""The step on the random labels: the post-hoc plain SGD step (and a fixed-length one, for experiments), or a
training loop's own optimizer stepped and then put back as it was, state and gradients, bit for bit."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from suscli.errors import InputError, summary_line
from suscli.measure.devices import widest_float


# One update of `params` in place, given their gradients on a random-label batch (None: the loss does not use it).
Step = Callable[[list[nn.Parameter], tuple[torch.Tensor | None, ...]], None]


def step_size(lr: float, dtype: torch.dtype) -> float:
    """`lr` as a step on weights of `dtype`: beyond the largest number the dtype holds it is inf there, as that
    dtype's arithmetic would round it. torch refuses such an alpha ("value cannot be converted to type float without
    overflow"), which read as the model failing on its images; inf steps the weights to non-finite values, the step
    far too large that the row then says it is."""
    return lr if lr <= torch.finfo(dtype).max else math.inf


def sgd_step(lr: float) -> Step:
    """The post-hoc step: plain SGD with a fixed step size, no momentum, no weight decay."""

    def step(params: list[nn.Parameter], grads: tuple[torch.Tensor | None, ...]) -> None:
        for p, g in zip(params, grads):
            if g is not None:
                p.sub_(g, alpha=step_size(lr, p.dtype))

    return step


def normalized_step(length: float) -> Step:
    """A step of fixed length in weight space, lr * g / ||g||: the same distance for every model, whatever the
    scale of its gradients (benchmarks/evaluate_rules.py compares it with the plain step)."""

    def step(params: list[nn.Parameter], grads: tuple[torch.Tensor | None, ...]) -> None:
        norm = torch.sqrt(sum((g.to(widest_float(g.device)) ** 2).sum() for g in grads if g is not None)).item()
        for p, g in zip(params, grads):
            if g is not None and norm > 0:
                p.sub_(g, alpha=length / norm)

    return step


def unwrapped_optimizer(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The optimizer a trainer's wrapper holds (accelerate's AcceleratedOptimizer in `.optimizer`, the Hugging Face
    Trainer's; Lightning's LightningOptimizer in `._optimizer`), whose step is the plain one. The wrapper's step does
    the loop's work: under fp16 it unscales the gradients by the GradScaler's scale (the unscaled random-label step
    then read r about 6e-08 where the optimizer's own read 5e-03) and moves the scaler's growth counter; between
    accumulated batches it skips the step; Lightning's counts an optimizer step of the trainer."""
    while True:
        inner = next(
            (getattr(optimizer, a) for a in ("optimizer", "_optimizer") if isinstance(getattr(optimizer, a, None), torch.optim.Optimizer)),
            None,
        )
        if inner is None or inner is optimizer:
            return optimizer
        optimizer = inner


def optimizer_step(optimizer: torch.optim.Optimizer) -> Step:
    """The authors' in-training step: `optimizer.step()` itself, then its state put back as it was now.

    The state is put back in place (optimizer_state, put_back), not by `load_state_dict`, which casts every state
    tensor to its parameter's dtype: the float32 moments an optimizer keeps for bfloat16 weights (AnyPrecisionAdamW)
    came back rounded to bfloat16. Every optimized parameter's `.grad` is set aside for the step (so that only the
    random-label gradients move anything) and put back afterwards. The optimizer's own step runs, without the hooks
    on it or on every optimizer (_own_step).
    """
    saved = optimizer_state(optimizer)

    def step(params: list[nn.Parameter], grads: tuple[torch.Tensor | None, ...]) -> None:
        touched = {id(p): p for group in optimizer.param_groups for p in group["params"]} | {id(p): p for p in params}
        held = [(p, p.grad) for p in touched.values()]
        try:
            for p, _ in held:
                p.grad = None
            for p, g in zip(params, grads):
                p.grad = g
            try:
                _own_step(optimizer)
            except torch.cuda.OutOfMemoryError:
                raise
            except (TypeError, RuntimeError) as e:
                # LBFGS's step needs a closure that computes the loss again; SparseAdam's takes sparse gradients only
                raise InputError(
                    f"the optimizer's ({type(optimizer).__name__}) step failed on the random-label gradients: {summary_line(e)}",
                    fix="measure without optimizer= (the plain SGD step)",
                ) from e
        finally:
            for p, g in held:
                p.grad = g
            put_back(optimizer, saved)

    return step


def _own_step(optimizer: torch.optim.Optimizer) -> None:
    """`optimizer.step()` without what torch and the loop wrapped around it: the hooks on this optimizer and on all
    (an EMA updated by `register_step_post_hook` took the random-label weights, and kept them), and a scheduler's
    mark that the loop stepped (which hid its warning of a scheduler stepped first). torch wraps each optimizer
    class's step once to run the hooks (its `__wrapped__`); a scheduler wraps the instance's."""
    step = type(optimizer).step
    if getattr(step, "hooked", False):
        step = step.__wrapped__
    step(optimizer)


Kept = dict[str, tuple[object, object]]  # each value's object, and a copy of its value


OptimizerState = tuple[dict[object, Kept], list[Kept]]


def optimizer_state(optimizer: torch.optim.Optimizer) -> OptimizerState:
    """`optimizer`'s per-parameter state and its groups' settings, each value kept as its object and a copy."""
    state = {p: _kept(values) for p, values in optimizer.state.items()}
    return state, [_kept({k: v for k, v in g.items() if k != "params"}) for g in optimizer.param_groups]


def _kept(values: dict[str, object]) -> Kept:
    return {k: (v, v.detach().clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)) for k, v in values.items()}


def put_back(optimizer: torch.optim.Optimizer, saved: OptimizerState) -> None:
    """`optimizer`'s state as `optimizer_state` saved it: the same tensor objects, dtypes and values, and no state
    for a parameter that had none. So are its groups' settings: an lr given as a tensor (a compiled step's, which the
    loop's schedule fills in place) came back as a copy, and filling the loop's own tensor no longer moved the lr."""
    state, groups = saved
    for p in [p for p in optimizer.state if p not in state]:
        del optimizer.state[p]
    with torch.no_grad():
        for p, values in state.items():
            _put_back_values(optimizer.state[p], values)
        for group, settings in zip(optimizer.param_groups, groups):
            _put_back_values(group, settings, keep="params")


def _put_back_values(now: dict, values: Kept, keep: str | None = None) -> None:
    """`now` as `values` kept it: their tensor objects with their saved values copied in, copies of the rest; no key
    beside theirs (but `keep`)."""
    for k in [k for k in now if k != keep and k not in values]:
        del now[k]
    for k, (obj, value) in values.items():
        if isinstance(obj, torch.Tensor):
            obj.copy_(value)
            now[k] = obj
        else:
            now[k] = copy.deepcopy(value)
