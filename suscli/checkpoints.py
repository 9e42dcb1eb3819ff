"""Loading and saving checkpoints: the one module that knows file formats.

(Being extended: loading of every format lands here.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

METADATA_KEY = "suscli"  # safetensors metadata is str -> str: all our fields live under this key as one JSON string


def save(model: nn.Module, path: str | Path, *, arch: str, arch_kwargs: dict[str, Any] | None = None, **meta: Any) -> Path:
    """Write `model`'s state dict as safetensors, with what suscli needs to rebuild it in the metadata.

    `arch` is an architecture spec (`torchvision:resnet18`, `package.module:factory`, `file.py:factory`);
    `meta` may carry fields suscli reads (num_classes, preset, mean, std, image_size, epoch) and any other
    JSON-serializable values, which are kept as they are.
    """
    path = Path(path)
    fields = {"arch": arch, "arch_kwargs": dict(arch_kwargs or {}), **meta}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(_untie(state), str(tmp), metadata={METADATA_KEY: json.dumps(fields, sort_keys=True)})
    tmp.replace(path)
    return path


def _untie(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors that share memory (tied weights): store each one on its own."""
    seen: set[int] = set()
    out = {}
    for k, v in state.items():
        ptr = v.untyped_storage().data_ptr() if v.numel() else -1
        out[k] = v.clone() if ptr in seen else v
        if ptr != -1:
            seen.add(ptr)
    return out
