"""Which device the work runs on: one check for the command line's --device and the Python API's device=, so that a
device this machine lacks is one line naming what it has, not PyTorch's "Found no NVIDIA driver" from deep inside."""

from __future__ import annotations

import torch

from suscli.errors import UsageError


def resolve_device(
    spec: str | torch.device = "auto", *, fix: str = "use auto or cpu: --device on the command line, Inputs(device=...) in Python"
) -> torch.device:
    """`auto` takes a CUDA GPU, then Apple's MPS, then the CPU; an explicit device must exist (`fix` says what to
    pass instead: the option or the keyword the caller gave it by)."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise UsageError(f"unknown device {spec!r}", fix="use auto, cpu, cuda, cuda:N or mps") from None
    missing = device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count())
    if missing or (device.type == "mps" and not torch.backends.mps.is_available()):
        here = available()
        raise UsageError(
            f"device {device} is not available: this machine has {', '.join(here)}{' only' if len(here) == 1 else ''}", fix=fix
        )
    return device


def available() -> list[str]:
    """The devices this machine has, by the names torch.device takes."""
    gpus = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return ["cpu", *gpus, *(["mps"] if torch.backends.mps.is_available() else [])]
