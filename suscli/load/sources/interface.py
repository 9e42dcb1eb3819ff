"""What a layout answers about a checkpoint written by a training tool: the interface every adapter implements.

A layout looks at a file's contents (or at a folder) and says "not mine" (None) or what the tool recorded beside
the weights: the architecture, the preprocessing, the epoch. The loader (suscli.load.checkpoints) stays the one door:
it reads the file safely, asks the layouts in order, and builds and fills the model.
"""

from __future__ import annotations

import argparse
import functools
import math
import pickle
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from suscli.errors import InputError
from suscli.files import file_version


@dataclass
class Arch:
    """An architecture a training tool recorded, as a suscli spec (suscli.load.arch) built and filled by the loader,
    or with `load`, a function that builds the model and loads its weights the tool's own way (transformers renames
    keys between its file and module layouts)."""

    spec: str  # shown in reports; built with suscli.load.arch.build_model unless `load` is set
    source: str  # where it was read, e.g. "timm checkpoint", "config.json"
    kwargs: dict[str, Any] = field(default_factory=dict)
    load: Callable[[], nn.Module] | None = None
    refused: InputError | None = None  # raised only if this architecture would be used (the user's --arch wins first)


@dataclass
class Found:
    """What a file written by a training tool says about the model in it, beyond the weights."""

    tool: str  # "timm", "Hugging Face transformers", "Lightning", "torchvision references"
    arch: Arch | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # suscli's fields: num_classes, mean, std, image_size, crop_pct, epoch, classes
    prefixes: tuple[str, ...] = ()  # attribute prefixes the weights may carry (a LightningModule's `net.`)
    ema_prefix: str | None = None  # the prefix of an EMA copy kept beside the network (a LightningModule's `ema_model.`)
    averaged: tuple[str, str] | None = None  # the keys of the plain and the averaged weights, where a tool moved them
    swa: tuple[str, int] | None = None  # Lightning's StochasticWeightAveraging: its key under `callbacks`, epochs averaged
    notes: list[str] = field(default_factory=list)


@dataclass
class Folder:
    """A folder that is one checkpoint (a Hugging Face `save_pretrained` or Trainer `checkpoint-N/` folder)."""

    path: Path
    weights: list[Path]  # the files that hold the weights, read together as one state dict
    files: list[Path]  # every file that decides the model: its identity (sha256) is theirs
    epoch: int | None = None


@dataclass(frozen=True)
class Layout:
    """One ecosystem's checkpoints: `recognize` reads a loaded file (contents None for a folder it claimed),
    `folder` claims folders that are one checkpoint, `defaults` gives the preprocessing an architecture implies,
    `lacking` says what a folder that `folder` did not claim lacks to be one."""

    name: str
    recognize: Callable[[Path, object], Found | None]
    folder: Callable[[Path], Folder | None] | None = None
    defaults: Callable[[str, nn.Module], dict[str, Any]] | None = None
    lacking: Callable[[Path], InputError | None] | None = None  # why a folder that looks like one checkpoint is not one
    epoch: Callable[[Path], int | None] | None = None  # the epoch a file records, where the tool numbers its files by it
    # the files beside a checkpoint file that `recognize` reads and that decide its numbers (architecture, preprocessing,
    # class names): a model's key in a results file holds their bytes (suscli.run.audit.model_key)
    companions: Callable[[Path], list[Path]] | None = None


def recorded_args(value: object) -> dict[str, Any] | None:
    """A training script's recorded arguments as a dict: an argparse.Namespace (timm's and torchvision's `args`)
    or a mapping (args.yaml); None for anything else."""
    if isinstance(value, argparse.Namespace):
        return vars(value)
    if isinstance(value, Mapping):
        return dict(value)
    return None


def numbers(value: object) -> list[float] | None:
    """`value` as a list of 1 or 3 numbers (a mean or std), or None."""
    if (
        isinstance(value, (list, tuple))
        and len(value) in (1, 3)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        return [float(v) for v in value]
    return None


def whole(value: object) -> int | None:
    """`value` as a positive int (a size, a class count), or None; True and 3.5 are not."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def epoch_number(value: object) -> int | None:
    """A recorded epoch as an int: an int from 0, a whole float (a Trainer's `state.epoch`, 4.0), or a one-value
    tensor of either (`torch.tensor(4)`, a loop counting on the device); None for a number that is no epoch (4.5,
    -1, True), which is then no epoch rather than a wrong one."""
    if isinstance(value, RecordedScalar):  # a tensor's value in records read without their tensors
        value = value.value()
    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or value.dtype == torch.bool or value.is_complex():
            return None
        value = value.item()
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class _Stub:
    """Stands for any object the pickle builds: nothing is imported and nothing is run."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def append(self, item: object) -> None:
        pass

    def extend(self, items: object) -> None:
        pass


# The storages whose one value a 0-d tensor in a checkpoint's records is read from (an epoch as torch.tensor(4)), by
# the name torch pickles them under, with their struct format; any other storage (bool, half) is read as nothing.
_SCALARS = {
    "LongStorage": "q",
    "IntStorage": "i",
    "ShortStorage": "h",
    "CharStorage": "b",
    "ByteStorage": "B",
    "DoubleStorage": "d",
    "FloatStorage": "f",
}


class _Storage(_Stub):
    """A torch storage class the records name: the struct format of its values, where _SCALARS knows it."""

    format: str | None = None


@dataclass(frozen=True)
class _StorageEntry:
    """Where a one-value storage's bytes lie in the archive, and their struct format (byte order first)."""

    entry: str
    format: str


@dataclass(frozen=True)
class RecordedScalar:
    """A 0-d tensor among a checkpoint's records (`"epoch": torch.tensor(4)`): its one value is read from its entry in
    the archive only when asked (epoch_number), so the records are read without any tensor's data."""

    path: Path
    entry: str
    format: str

    def value(self) -> float | None:
        """The number, or None where the archive no longer holds it (a copy without the tensors' data)."""
        try:
            with zipfile.ZipFile(self.path) as archive:
                data = archive.read(self.entry)
            return struct.unpack(self.format, data[: struct.calcsize(self.format)])[0]
        except (OSError, KeyError, zipfile.BadZipFile, struct.error):
            return None


class _Records(pickle.Unpickler):
    """Plain data as it is, every class and function a _Stub, every tensor's storage None (never read); a 0-d tensor
    of a number type a RecordedScalar, read only if asked."""

    def __init__(self, stream: IO[bytes], path: Path, archive: zipfile.ZipFile, folder: str) -> None:
        super().__init__(stream)
        self.path, self.folder = path, folder
        order = archive.read(f"{folder}byteorder") if f"{folder}byteorder" in archive.namelist() else b"little"
        self.order = ">" if order.strip() == b"big" else "<"

    def find_class(self, module: str, name: str) -> type:
        if (module, name) == ("argparse", "Namespace"):  # a training script's args (timm's): plain data, kept
            return argparse.Namespace
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._rebuild_tensor  # type: ignore[return-value]
        if module == "torch" and name in _SCALARS:
            return type(name, (_Storage,), {"format": _SCALARS[name]})
        return _Stub

    def persistent_load(self, pid: object) -> _StorageEntry | None:
        """("storage", type, key, location, count): where a one-value storage of a number type lies, else None."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[4] == 1 and isinstance(pid[2], str)):
            return None
        kind = pid[1]
        if not (isinstance(kind, type) and issubclass(kind, _Storage) and kind.format):
            return None
        return _StorageEntry(f"{self.folder}data/{pid[2]}", self.order + kind.format)

    def _rebuild_tensor(self, storage: object, offset: object, size: object, *rest: object) -> object:
        """torch._utils._rebuild_tensor_v2 for the records: a 0-d tensor of a one-value storage is a RecordedScalar,
        any other tensor a _Stub."""
        if isinstance(storage, _StorageEntry) and offset == 0 and size == ():
            return RecordedScalar(self.path, storage.entry, storage.format)
        return _Stub()


def plain_records(path: Path) -> Mapping:
    """The plain data of a torch checkpoint (torch's zip format) without its tensors, for the records a tool keeps
    beside the weights (epoch, loop counters); empty for other files. Reads the small pickle only, once per version
    of the file: a run's epochs ask each file for several of its records (save point, epoch, step)."""
    version = file_version(path)
    return {} if version is None else _read_records(path, version)


def optimizer_state(contents: object) -> bool:
    """Whether `contents` is a torch.optim optimizer's state_dict ('state' and 'param_groups', a list of groups): a
    training script saves it beside the weights under a name of its own (`optim_3.pt`), and it holds no model."""
    return isinstance(contents, Mapping) and set(contents) == {"state", "param_groups"} and isinstance(contents["param_groups"], list)


@functools.lru_cache(maxsize=1024)
def _read_records(path: Path, version: tuple[int, int, int, int]) -> Mapping:
    """plain_records of one version of a file (suscli.files.file_version): a file written again is read again, also
    where the rewrite kept its size and modification time, which was read as the old epoch."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if name is None:
                return {}
            with archive.open(name) as stream:
                contents = _Records(stream, path, archive, name.removesuffix("data.pkl")).load()
    except Exception:  # a damaged or foreign file: not one this reads; its load says what it is
        return {}
    return contents if isinstance(contents, Mapping) else {}
