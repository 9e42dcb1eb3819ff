"""Checkpoints as training tools write them: one layout per ecosystem, asked in a fixed order by the loader.

suscli.load.checkpoints reads every file safely (suscli.load.safe_read) and then asks these layouts, most specific
first, what the tool recorded beside the weights; a file no layout claims is read the native way (suscli's own
metadata, a plain or nested state dict). Adding an ecosystem is one new module with a LAYOUT, listed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from suscli.errors import InputError

from suscli.load.sources import huggingface, lightning, timm, torchvision_references
from suscli.load.sources.interface import Arch, Folder, Found, Layout

# A timm or torchvision-references file is also a dict of weights and more; Lightning's is told by its version key.
# timm's Hub folders hold a config.json and weights, as Hugging Face's do: timm is asked first, and claims only its own.
LAYOUTS: tuple[Layout, ...] = (timm.LAYOUT, huggingface.LAYOUT, torchvision_references.LAYOUT, lightning.LAYOUT)

__all__ = [
    "LAYOUTS",
    "Arch",
    "Folder",
    "Found",
    "Layout",
    "arch_defaults",
    "checkpoint_folder",
    "companion_files",
    "folder_lacks",
    "recognize",
    "recorded_epoch",
]


def checkpoint_folder(path: Path) -> Folder | None:
    """The folder as one checkpoint, if a layout claims it (a Hugging Face model folder); None otherwise."""
    for layout in LAYOUTS:
        if layout.folder is not None and (found := layout.folder(path)) is not None:
            return found
    return None


def companion_files(path: Path) -> list[Path]:
    """The files beside checkpoint file `path` that its layout reads and that decide its numbers (timm's args.yaml and
    class map), in a fixed order; none for a folder, whose own files are its identity (Folder.files)."""
    if path.is_dir():
        return []
    return [f for layout in LAYOUTS if layout.companions is not None for f in layout.companions(path)]


def folder_lacks(path: Path) -> InputError | None:
    """Why a folder that looks like one checkpoint is not one (weights without their config.json), if a layout says."""
    return next((why for layout in LAYOUTS if layout.lacking is not None and (why := layout.lacking(path))), None)


def recorded_epoch(path: Path) -> int | None:
    """The epoch a training tool recorded in a file whose name does not give it (Lightning's `last.ckpt`, timm's
    `last.pth.tar`), read without its tensors, where the tool numbers its other files by that epoch; else None."""
    return next((epoch for layout in LAYOUTS if layout.epoch is not None and (epoch := layout.epoch(path)) is not None), None)


def recognize(path: Path, contents: object) -> Found | None:
    """What the first layout that claims the file (or the folder, with `contents` None) says about it."""
    for layout in LAYOUTS:
        if (found := layout.recognize(path, contents)) is not None:
            return found
    return None


def arch_defaults(spec: str, model: nn.Module) -> dict[str, Any]:
    """Preprocessing the architecture itself implies (timm's data config), below anything a file or the user says."""
    out: dict[str, Any] = {}
    for layout in LAYOUTS:
        if layout.defaults is not None:
            out = {**layout.defaults(spec, model), **out}
    return out
