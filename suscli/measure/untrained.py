"""The same network, untrained: what its architecture reads before it has learned anything.

Susceptibility at a fixed step depends on the architecture as well as on training: the zoo's small CNNs, MLPs and
ResNets read at most 0.042 untrained, the CIFAR ResNet-20 0.16, torchvision's ResNet-18 1.44, above the verdict's
fixed cut (docs/validation.md, "Which architectures the fixed cuts can judge"). The verdict (suscli.judge.verdict)
reads this to know whether its cuts say anything about a model's training. Untrained means every layer drawn afresh
by PyTorch's defaults (`reset_parameters`): a checkpoint holds weights, not how its library initialized them
(torchvision's ResNet-18 as torchvision draws it reads 0.43-0.57). It is measured once per architecture,
preprocessing, images and step in a process: a pool's models of one architecture share it.
"""

from __future__ import annotations

import copy
import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable

import torch
from torch import nn

from suscli.measure.susceptibility import SusceptibilityConfig, measure_susceptibility

SEED = 0  # the initialization drawn: the same for every model of an architecture, on every device
_KEPT = 64  # references remembered per process (one per architecture and inputs)
_cache: OrderedDict[tuple, dict] = OrderedDict()
_hashed: list[tuple[weakref.ref[torch.Tensor], int, str]] = []  # the images last hashed (images_digest)


def architecture(model: nn.Module) -> tuple:
    """What makes two models the same network: their layers' classes and their tensors' names, shapes and types."""
    layers = tuple(type(m).__qualname__ for m in model.modules())
    tensors = tuple((name, tuple(t.shape), str(t.dtype)) for name, t in (*model.named_parameters(), *model.named_buffers()))
    return layers, tensors


def not_reset(model: nn.Module) -> str | None:
    """The first parameter that no layer's `reset_parameters` draws afresh (a ViT's position embedding, a layer-scale
    factor), or None when every one is: then re-initializing by layers gives the untrained network."""
    reset = {id(p) for m in model.modules() if callable(getattr(m, "reset_parameters", None)) for p in m.parameters(recurse=False)}
    return next((name for name, p in model.named_parameters() if id(p) not in reset), None)


def untrained(model: nn.Module, seed: int = SEED) -> nn.Module:
    """A copy of `model` on the CPU with every layer re-initialized by PyTorch's defaults (BatchNorm's statistics too),
    drawn from `seed` without touching the global random state: the same weights on every machine."""
    fresh = copy.deepcopy(model).to("cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in fresh.modules():
            if callable(getattr(m, "reset_parameters", None)):
                m.reset_parameters()
    return fresh


def images_digest(pixels: torch.Tensor) -> str:
    """sha256 of `pixels`' bytes, hashed once while they are the same tensor, unchanged (its version counter): a run's
    checkpoints are measured on one decoded tensor (ImageSource.decoded), whose bytes were copied off the device and
    hashed again for each, 0.17 s for 1,000 images at 224 px on a CPU. An inference-mode tensor keeps no version: hashed."""
    version = None if pixels.is_inference() else pixels._version
    if _hashed and _hashed[0][0]() is pixels and version is not None and _hashed[0][1] == version:
        return _hashed[0][2]
    digest = hashlib.sha256(pixels.cpu().numpy().tobytes()).hexdigest()
    if version is not None:
        _hashed[:] = [(weakref.ref(pixels), version, digest)]
    return digest


def untrained_susceptibility(
    model: nn.Module,
    pixels: torch.Tensor,
    *,
    config: SusceptibilityConfig,
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    inputs: Hashable,
) -> dict:
    """{"susceptibility": ...} of `model`'s network untrained, on the images and step its own was measured with
    (`inputs`: what else decides the numbers, the preprocessing); {"unknown": why} where no re-initialization by
    layers exists (not_reset) or the untrained copy fails (out of memory beside the model): the model's own row stands."""
    key = (architecture(model), config, inputs, tuple(pixels.shape), images_digest(pixels))
    if key in _cache:
        _cache.move_to_end(key)
        return dict(_cache[key])
    missing = not_reset(model)
    if missing is not None:
        found: dict = {"unknown": f"its parameter {missing} belongs to no layer that re-initializes it"}
    else:
        try:
            fresh = untrained(model).to(device)
            found = {"susceptibility": measure_susceptibility(fresh, pixels, config=config, transform=transform, device=device).mean}
        except Exception as e:  # out of memory beside the model, a module deepcopy refuses: the row stands without it
            found = {"unknown": f"its untrained copy failed: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}"}
    _cache[key] = found
    while len(_cache) > _KEPT:
        _cache.popitem(last=False)
    return dict(found)
