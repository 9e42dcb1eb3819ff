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
    device = known_device(spec)
    missing = device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count())
    if missing or (device.type == "mps" and not torch.backends.mps.is_available()):
        here = available()
        raise UsageError(
            f"device {device} is not available: this machine has {', '.join(here)}{' only' if len(here) == 1 else ''}", fix=fix
        )
    return device


def known_device(spec: str | torch.device) -> torch.device:
    """`spec` as a device suscli runs on (cpu, cuda, cuda:N, mps), whether or not this machine has it; `cpu:0` is the
    cpu. torch.device takes every type torch knows: xpu and hip ended in an internal error ("Torch not compiled with
    XPU enabled"), meta in a model failing on the images, and cpu:0 in a KeyError of the decode cache."""
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps") or (device.type == "cpu" and device.index not in (None, 0)):
        raise UsageError(f"unknown device {str(spec)!r}", fix="use auto, cpu, cuda, cuda:N or mps")
    return torch.device("cpu") if device.type == "cpu" else device


def available() -> list[str]:
    """The devices this machine has, by the names torch.device takes."""
    gpus = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return ["cpu", *gpus, *(["mps"] if torch.backends.mps.is_available() else [])]


def widest_float(device: torch.device) -> torch.dtype:
    """The dtype to sum many float32 values in: float64, except on Apple's MPS, which has none ("Cannot convert a MPS
    Tensor to float64 dtype"), where float32 it is."""
    return torch.float32 if device.type == "mps" else torch.float64


SMALL_SIDE = 32  # images up to 32x32 go in CPU batches of their full size
MIN_CPU_BATCH = 16


def cpu_batch(most: int, inputs: torch.Tensor) -> int:
    """`most` images a CPU batch where they are 32x32 or smaller; fewer larger ones, about as many pixels a batch, at
    least MIN_CPU_BATCH. On the CPU nothing halves a batch that does not fit (CUDA's out-of-memory error does): the
    kernel's OOM killer ends the run. A torchvision ResNet-50's eval forward at 224 px held 1.0 GB at 16 images and
    1.5 GB at 64, about 10 MB more an image, so some 6 GB at 512 (the training-accuracy batch). At 32 px and below,
    the sizes, and so exactly the numbers, are those of before."""
    pixels = int(inputs.shape[-1] * inputs.shape[-2]) if inputs.dim() >= 3 else 1
    return max(min(most, most * SMALL_SIDE**2 // max(pixels, 1)), min(most, MIN_CPU_BATCH))
