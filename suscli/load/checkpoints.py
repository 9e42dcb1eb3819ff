"""Loading and saving checkpoints: the one module that knows file formats.

Loading follows timm's `_helpers.py`: dispatch on the file type, read pickles with `weights_only=True` and
never fall back to unsafe loading unless the user says they trust the file, unwrap nested and EMA state
dicts, and strip wrapper prefixes (`module.`, `_orig_mod.`, `model.`) in one place. The architecture for a
state dict is named separately (suscli.load.arch) and resolved from, highest first: the file itself (TorchScript,
torch.export, a trusted pickled module), `arch=` (a per-model choice), the sidecar JSON, the safetensors
metadata, `default_arch=` (the CLI's --arch), then what the training tool recorded (suscli.load.sources: timm's args,
a Hugging Face config, Lightning's hyper-parameters, torchvision's reference args). Without `trust`, nothing a file
carries runs: no pickled object beyond plain-data classes allowed by name, no pickle inside a torch.export archive,
no architecture the file names unless it is a model builder (a file.py spec is one by design; docs/reliability.md).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import inspect
import json
import logging
import math
import os
import pickle
import sys
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from suscli.data.images import PRESETS
from suscli.load import configs, sources
from suscli.load.arch import build_model, infer_num_classes
from suscli.errors import InputError, UsageError
from suscli.load.exported import ExportedModel
from suscli.files import MEMORY_MARGIN, available_memory, human_size, replacing
from suscli.load.pickles import refused_callable
from suscli.load.sources import Folder

METADATA_KEY = "suscli"  # safetensors metadata is str -> str: all our fields live under this key as one JSON string
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".th", ".bin", ".ckpt", ".pt2", ".pth.tar")  # .pth.tar: timm's train.py
_SUFFIX_LIST = ", ".join(CHECKPOINT_SUFFIXES)
_ARCH_KEYS = ("arch", "arch_kwargs")  # stored with the weights, but they describe the spec, not the model

# Where training scripts nest the weights, plain weights first: an EMA copy is used only when it is all there is,
# or when asked for (ema=True, --ema).
# timm, torchvision's references, scripts beside model_state_dict or model; `shadow`: a hand-written EMA helper's
# {"decay": ..., "shadow": {name: tensor}}, often of the parameters alone. An SWA average: the SWA authors' train.py
# saves `swa_state_dict` beside `state_dict`; torch's docs name the AveragedModel `swa_model`.
_SWA_KEYS = ("swa_state_dict", "swa_model")
_EMA_KEYS = (
    "state_dict_ema", "model_ema", "ema_state_dict", "ema", "ema_model", "model_ema_state_dict", "ema_model_state_dict", "shadow", *_SWA_KEYS
)  # fmt: skip
_SHADOW = "shadow"
_WEIGHT_KEYS = ("state_dict", "model_state_dict", "model", "net", *_EMA_KEYS)
_EMA_FIRST = tuple(dict.fromkeys(_EMA_KEYS + _WEIGHT_KEYS))
_EMA_PYTORCH, _EMA_PYTORCH_ONLINE = "ema_model.", "online_model."  # ema-pytorch's EMA: the EMA copy, the network it follows
# Plain-data classes that training tools save beside the weights (timm's and torchvision's `args`), allowed to the
# weights_only unpickler by their exact name for the length of one load: their subclasses are other globals and
# stay refused, and nothing here can run code when rebuilt.
PLAIN_DATA_GLOBALS = (argparse.Namespace,)
_WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.")  # DataParallel/DDP, torch.compile, Lightning
_MAX_NESTING = 3  # how deep _find_state_dict looks for nested weights
_MAX_STACKED = 3  # how many wrapper prefixes _strip_prefixes peels off one key
_TRUST_FIX = "pass --trust-checkpoint only if you trust where the file came from, or re-save its weights with suscli.save"
_CORRUPT_FIX = "the file may be truncated or corrupt: save or download it again"
_FOLDER_FIX = (
    f"pass a file ending in {_SUFFIX_LIST}, or a Hugging Face model folder (config.json with model.safetensors "
    "or pytorch_model.bin); suscli rank and track take a folder of checkpoints"
)
# Entries of a torch.export archive that torch.export.load unpickles with plain pickle or loads as native code.
_EXPORT_CODE = {
    "/data/aotinductor/": "compiled AOTInductor code",
    "/data/constants/opaque_obj_": "pickled Python objects",
    "/data/constants/custom_obj_": "pickled TorchScript objects",
}

# The readers below (torch.load, torch.jit.load, torch.export.load) turn corrupt bytes into almost any exception:
# fuzzing truncated and bit-flipped files gave RuntimeError, UnpicklingError, EOFError, OSError, KeyError,
# IndexError, AssertionError, AttributeError, TypeError, UnicodeDecodeError, struct.error and BadZipFile. So each
# reader call sits alone in a `try` that turns any Exception into an InputError, and suscli's own logic stays
# outside those blocks, where its bugs still raise.


def save(model: nn.Module, path: str | Path, *, arch: str, arch_kwargs: dict[str, Any] | None = None, **meta: Any) -> Path:
    """Write `model`'s state dict as safetensors, with what suscli needs to rebuild it in the metadata.

    `arch` is an architecture spec (`torchvision:resnet18`, `package.module:factory`, `file.py:factory`);
    `meta` may carry fields suscli reads (num_classes, classes, preset, mean, std, image_size, epoch) and any other
    JSON-serializable values, which are kept as they are. `classes` (the name of class i at index i) lets training
    labels given by name be mapped to the model's ids (suscli.data.labels).
    """
    path = Path(path)
    text = _metadata(path, {"arch": arch, "arch_kwargs": dict(arch_kwargs or {}), **meta})
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path, binary=True) as f:  # a kill leaves no half-written model, and no temporary file for ever
            f.write(safetensors_bytes(_untie(state), metadata={METADATA_KEY: text}))
    except OSError as e:  # a folder of that name, no permission, a full disk
        raise InputError(f"cannot write {path}: {e.strerror or e}", fix="choose a writable path for the model") from None
    return path


def _metadata(path: Path, fields: dict[str, Any]) -> str:
    """The fields as the JSON that save writes, refused now where loading the file would refuse them: a tensor, numpy
    number or Path is no JSON, and an image_size of "32" or a preset suscli does not know would fail only when the
    checkpoint is scored, maybe many epochs later."""
    try:
        text = json.dumps(fields, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise UsageError(
            f"suscli.save({path}): the metadata must be JSON values: {e}",
            fix="pass plain numbers, strings, lists and dicts (int(x), str(path), x.tolist())",
        ) from None
    try:
        _parse_fields(text, f"suscli.save({path})", fix="")
    except InputError as e:
        raise UsageError(e.message) from None
    return text


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


@dataclass
class Checkpoint:
    """A loaded model and what is known about it."""

    path: Path
    model: nn.Module  # on CPU, eval() mode
    arch: str  # the spec used, or "torchscript", "torch.export", "pickled nn.Module"
    arch_source: str  # "file", "manifest", "sidecar", "metadata" or "--arch"
    meta: dict[str, Any]  # suscli fields from the sidecar and metadata (sidecar wins), less arch and arch_kwargs
    sha256: str
    num_classes: int | None
    notes: list[str] = field(default_factory=list)  # non-fatal remarks for the report


@dataclass
class _ArchChoice:
    source: str
    spec: str
    kwargs: dict[str, Any]
    base_dir: Path | None = None  # where a relative file.py spec is looked up first
    load: Callable[[], nn.Module] | None = None  # builds the model with its weights (a training tool's own loading)
    refused: InputError | None = None  # why this choice cannot be followed, raised only if it wins


_USER_SOURCES = {"manifest": "manifest arch", "--arch": "--arch"}


def load_checkpoint(
    path: str | Path,
    *,
    arch: str | None = None,
    arch_kwargs: dict[str, Any] | None = None,
    default_arch: str | None = None,
    default_arch_kwargs: dict[str, Any] | None = None,
    num_classes: int | None = None,
    trust: bool = False,
    ema: bool = False,
) -> Checkpoint:
    """Load any supported checkpoint into a CPU model in eval mode, or raise one InputError that says how to fix it.

    `path` is a file, or a folder that is one checkpoint (Hugging Face). With `ema`, the EMA weights a training
    checkpoint holds beside the plain ones are used (timm's `state_dict_ema`, torchvision's `model_ema`, ema-pytorch's
    `ema_model.`, torch_ema's and diffusers' averages, an EMA helper's `shadow`, a LightningModule's own copy, the
    average of Lightning's WeightAveraging or StochasticWeightAveraging).
    """
    path = Path(path)
    folder = sources.checkpoint_folder(path) if path.is_dir() else None
    _check_path(path, folder)
    stored = _stored_fields(path)
    meta = {k: v for _, fields in reversed(stored) for k, v in fields.items() if k not in _ARCH_KEYS}
    if named := next((source for source, fields in stored if "classes" in fields), None):
        meta["classes_source"] = f"its suscli {named}"  # over a training tool's, as its classes are
    if folder is not None:
        contents, kind = None, None
        for file in folder.weights:  # a pickle a tool would unpickle is read by suscli's safe reader first
            if checkpoint_suffix(file) != ".safetensors":
                _torch_load(file, trust)
            else:
                _safetensors_header(file)  # a damaged file is said to be one, not a config that does not fit
    else:
        contents, kind = _read(path, trust)
    if isinstance(contents, Mapping) and isinstance(contents.get("epoch"), int):
        meta.setdefault("epoch", contents["epoch"])  # training checkpoints (Lightning, timm) record it beside the weights
    nested = _nested_module(contents, ema)
    if nested is not None:  # torch.save({"model": model, "epoch": 3}): only a trusted load could unpickle the module
        contents = nested[1]
    found = sources.recognize(path, contents) if not isinstance(contents, nn.Module) else None

    choices = [
        _ArchChoice(source, fields["arch"], fields.get("arch_kwargs") or {}, base_dir=path.parent)
        for source, fields in stored
        if fields.get("arch")
    ]
    if arch:
        choices.insert(0, _ArchChoice("manifest", arch, arch_kwargs or {}))
    if default_arch:
        choices.append(_ArchChoice("--arch", default_arch, default_arch_kwargs or {}))
    if found is not None and found.arch is not None:
        a = found.arch
        choices.append(_ArchChoice(a.source, a.spec, a.kwargs, load=a.load, refused=a.refused))

    if isinstance(contents, nn.Module):
        kind = kind or "pickled nn.Module"
        notes = _ignored_choices(_ArchChoice("file", kind, {}), choices) + _to_eval(contents, kind)
        if nested is not None and nested[0] in _EMA_KEYS:
            notes += _ema_notes(nested[:1], ema)
        else:
            notes += [f"the model pickled under {nested[0]!r}"] if nested is not None else []
            notes += _ema_notes((), ema)  # --ema, and the file holds no EMA copy
        classes = num_classes or meta.get("num_classes") or infer_num_classes(contents.state_dict())
        return Checkpoint(path, contents, kind, "file", meta, file_sha256(path), classes, notes + _in_float32(contents))

    if not choices:
        _weights(path, contents, folder, trust, ema)  # a file without weights says so first
        if folder is None and (lacks := sources.folder_lacks(path.parent)):  # save_pretrained's weights, config.json lost
            raise InputError(
                f"{path}: a state dict holds no architecture; its folder is not a whole checkpoint folder: {lacks.message}", fix=lacks.fix
            )
        raise InputError(
            f"{path}: a state dict holds no architecture",
            fix="pass --arch torchvision:NAME | timm:NAME | module:factory | file.py:factory, or save with suscli.save",
        )
    winner = choices[0]
    if winner.refused is not None:
        raise InputError(f"{path}: {winner.refused.message}", fix=winner.refused.fix)
    if winner.source not in _USER_SOURCES and winner.load is None and not trust and winner.spec not in (arch, default_arch):
        _vet_stored_arch(path, winner)  # a spec the file names; a layout's own loader (`load`) is suscli's code
    notes = _ignored_choices(winner, choices) + (found.notes if found else [])
    if found is not None:
        meta = {**found.meta, **meta}  # suscli's own fields (sidecar, metadata) over what the tool recorded
    if winner.load is not None:
        try:
            model = winner.load()
        except InputError as e:
            raise InputError(f"{path}: {e.message}", fix=e.fix) from e
        if ema:
            notes.append(f"--ema: {found.tool if found else 'this'} checkpoint holds no EMA weights; its plain weights were used")
        classes = num_classes or meta.get("num_classes") or infer_num_classes(model.state_dict())
    else:
        state, where = _weights(path, contents, folder, trust, ema)
        shadow = None  # torch_ema's or diffusers' averages, put into the model's parameters once it is loaded
        swa = None  # StochasticWeightAveraging's average, put into the model's parameters once it is loaded
        if found is not None and found.averaged is not None:
            state, note = _averaged(path, contents, found.averaged, ema)
            notes.append(note)
        elif found is not None and found.swa is not None:
            swa, said = _swa_average(path, contents, *found.swa, ema)
            notes += [said] if said else []
        elif found is not None and found.ema_prefix is not None:
            state, note = _module_ema(state, found.ema_prefix, ema)
            notes.append(note)
        elif (wrapped := _ema_pytorch(state, where, ema)) is not None:
            state, note = wrapped
            notes.append(note)
        elif (shadow := _torch_ema(contents, where)) is not None:
            notes.append(_ema_beside(shadow[0]) if not ema else f"{_SHADOW_NOTE.format(shadow[0], shadow[2], '/'.join(where))}: --ema")
        elif ema and (filled := _shadow_filled(contents, state, where)) is not None:
            state, note = filled
            notes.append(note)
        else:
            notes += _ema_notes(where, ema, contents, state)
        inferred = None
        if num_classes is None and meta.get("num_classes") is None:
            inferred = infer_num_classes(state)
        classes = num_classes or meta.get("num_classes") or inferred
        try:
            try:
                model = build_model(winner.spec, winner.kwargs, num_classes=classes, base_dir=winner.base_dir)
            except InputError as e:
                raise InputError(f"{path}: {e.message} (arch from {winner.source})", fix=e.fix) from e
            notes += _load_weights(path, winner.spec, model, state, inferred, found.prefixes if found else ())
            if ema and shadow is not None:
                _copy_shadow(path, winner.spec, model, *shadow)
            if swa is not None:
                _swa_parameters(path, winner.spec, model, swa, found.prefixes if found else ())
        except InputError as e:
            raise _overriding(e, winner, choices) from e
    defaults = sources.arch_defaults(winner.spec, model)
    implied = sorted(k for k in defaults if k not in meta)  # what only the architecture says, not this checkpoint
    meta = {**defaults, **meta, **({"implied": implied, "implied_by": f"the defaults of {winner.spec}"} if implied else {})}
    model.eval()
    return Checkpoint(path, model, winner.spec, winner.source, meta, file_sha256(path), classes, notes)


def _weights(
    path: Path, contents: object, folder: Folder | None, trust: bool, ema: bool
) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """The state dict of a file, or of a folder's weight files read together, and the keys it was nested under."""
    if folder is not None:
        merged: dict[str, torch.Tensor] = {}
        for file in folder.weights:
            part, _ = _read(file, trust)
            found = _find_state_dict(part, ema)
            if found is None:
                raise InputError(f"{file}: holds no state dict (found {_describe(part)})", fix=_CORRUPT_FIX)
            merged.update(found[0])
        contents = merged
    found = _find_state_dict(contents, ema)
    if found is None and (alone := _shadow_params(contents)) is not None:
        raise InputError(
            f"{path}: holds {alone[1]}'s EMA averages alone: {len(alone[0])} tensors without names or buffers, no model weights",
            fix="save them beside the model's weights as {'model': model.state_dict(), 'ema': ema.state_dict()}, which --ema reads, "
            "or save the model's state dict after ema.copy_to(model.parameters())",
        )
    if found is None:
        raise InputError(
            f"{path}: holds no state dict (found {_describe(contents)})",
            fix="expected a mapping of names to tensors, at the top or under 'state_dict', 'model', 'model_state_dict' or 'net'",
        )
    return found


def _nested_module(contents: object, ema: bool) -> tuple[str, nn.Module] | None:
    """A whole model a training script pickled into its checkpoint dict, and its key, tried as weights are
    (`_WEIGHT_KEYS`, EMA keys first with `ema`); None when the file holds a state dict or nothing such. With `ema`,
    an EMA copy pickled whole wins over plain weights saved as a state dict beside it."""
    if not isinstance(contents, Mapping):
        return None
    found = _find_state_dict(contents, ema)
    if found is None:
        keys = _EMA_FIRST if ema else _WEIGHT_KEYS
    elif ema and not any(k in _EMA_KEYS for k in found[1]):
        keys = _EMA_KEYS
    else:
        return None
    return next(((k, v) for k in keys if isinstance(v := contents.get(k), nn.Module)), None)


def _in_float32(model: nn.Module) -> list[str]:
    """A whole model saved in another floating dtype (bfloat16 or float16 after half-precision training, float64)
    turned float32, as its weights become when a state dict of them loads into a float32 network: float32 images
    do not enter it otherwise, and in half precision the loss one small step moves rounds away."""
    other = sorted(
        {
            str(t.dtype).removeprefix("torch.")
            for t in (*model.parameters(), *model.buffers())
            if t.is_floating_point() and t.dtype != torch.float32
        }
    )
    if not other:
        return []
    model.float()
    return [f"weights in {' and '.join(other)}, measured in float32 (as a state dict of them would be)"]


def _ema_notes(where: tuple[str, ...], ema: bool, contents: object = None, keys: Collection[str] = ()) -> list[str]:
    """Which weights were used, when they are not the plain ones or when EMA weights were asked for (an EMA key in
    `where`, or the `keys` of an AveragedModel's state dict); and, when the plain ones were used by default, the EMA
    weights beside them in `contents` that --ema would measure instead (a timm or torchvision reference run's: the
    EMA copy is often the one a run keeps as its best)."""
    why = "--ema" if ema else "the file holds no plain model weights"
    if any(k in _EMA_KEYS for k in where):
        return [f"using {_averaged_kind(where)} from {'/'.join(where)!r}: {why}"]
    if "n_averaged" in keys and any(k.startswith("module.") for k in keys):  # torch's AveragedModel (EMA or SWA)
        return [f"using the averaged weights of an AveragedModel (under 'module.', beside 'n_averaged'): {why}"]
    if ema and keys and all(k.startswith("module.") for k in keys):  # DataParallel's, or timm's ModelEmaV2/V3 saved alone
        return [
            "--ema: the file holds one set of weights, under 'module.' (as DataParallel saves a model, and timm's ModelEmaV2/V3 its EMA copy); they were used"
        ]
    if ema:
        return ["--ema: the file holds no EMA weights; its plain weights were used"]
    beside = next((k for k in _EMA_KEYS if isinstance(contents, Mapping) and _ema_loadable(contents.get(k))), None)
    return [_ema_beside(beside)] if beside else []


def _ema_loadable(value: object) -> bool:
    """Whether --ema would measure what an EMA key holds: a model pickled whole, or weights _find_state_dict finds
    (not, say, an EMA helper's decay and step count alone)."""
    return isinstance(value, nn.Module) or _find_state_dict(value, ema=True) is not None


def _averaged_kind(where: tuple[str, ...]) -> str:
    """What a note calls the averaged copy under `where`: an SWA average is no exponential moving average."""
    return "SWA weights" if any(k in _SWA_KEYS for k in where) else "EMA weights"


def _ema_beside(where: str) -> str:
    """The note on plain weights measured by default from a file that also holds an EMA copy, under `where`."""
    return f"the file also holds {_averaged_kind((where,))} under {where!r}: --ema would measure them"


def _module_ema(state: dict[str, torch.Tensor], prefix: str, ema: bool) -> tuple[dict[str, torch.Tensor], str]:
    """With `ema`, the EMA copy a module keeps under `prefix` beside its network (a LightningModule's
    `ema_model.module.*`), else the state as it is; and a note that says which was used."""
    if not ema:
        return state, _ema_beside(prefix)
    return _keep_metadata({k: v for k, v in state.items() if k.startswith(prefix)}, state), f"using EMA weights under {prefix!r}: --ema"


def _averaged(path: Path, contents: object, keys: tuple[str, str], ema: bool) -> tuple[dict[str, torch.Tensor], str]:
    """The plain weights, or with `ema` the averaged ones, of a file whose tool keeps them under `keys` (Lightning's
    WeightAveraging: the average as `state_dict`, the network's own weights as `current_model_state`)."""
    plain, averaged = keys
    key = averaged if ema else plain
    found = _find_state_dict(contents.get(key)) if isinstance(contents, Mapping) else None
    if found is None:
        raise InputError(f"{path}: holds no state dict under {key!r}", fix=_CORRUPT_FIX)
    if ema:
        return found[0], f"using the averaged weights from {averaged!r} (Lightning's WeightAveraging): --ema"
    why = f"(Lightning's WeightAveraging; the plain weights are its {plain!r})"
    return found[0], f"the file also holds averaged weights under {averaged!r} {why}: --ema would measure them"


def _swa_average(path: Path, contents: object, key: str, epochs: int, ema: bool) -> tuple[dict[str, torch.Tensor] | None, str | None]:
    """With `ema`, the `average_model_state` that Lightning's StochasticWeightAveraging keeps under `callbacks`/`key`
    (None before it has averaged an epoch: it is then the network as training began); and a note on the weights used."""
    name = "Lightning's StochasticWeightAveraging"
    average = f"the average of {name} over {epochs} epoch{'s' if epochs != 1 else ''}"
    if not ema:
        return None, f"the file also holds {average}: --ema would measure it" if epochs else None
    if not epochs:
        return None, f"--ema: {name} has averaged no epoch yet; its plain weights were used"
    saved = contents.get("callbacks", {}).get(key, {}) if isinstance(contents, Mapping) else {}
    found = _find_state_dict(saved.get("average_model_state"))
    if found is None:
        raise InputError(f"{path}: holds no state dict under callbacks/{key!r}/'average_model_state'", fix=_CORRUPT_FIX)
    return found[0], f"using {average} (its parameters; the buffers, BatchNorm statistics among them, from 'state_dict'): --ema"


def _swa_parameters(path: Path, spec: str, model: nn.Module, average: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> None:
    """Put StochasticWeightAveraging's averaged parameters into the model loaded with the module's own weights, as its
    `transfer_weights` does: the buffers it keeps are the network's as training began (Lightning re-estimates
    BatchNorm's statistics only after the last epoch, in the module), so the module's own are kept."""
    own = dict(model.named_parameters())
    stripped, _ = _strip_prefixes(average, set(model.state_dict()), prefixes)
    wrong = [k for k, p in own.items() if k not in stripped or stripped[k].shape != p.shape]
    if wrong:
        raise InputError(
            f"{path}: the average of StochasticWeightAveraging does not fit {spec}: {len(wrong)} parameters missing or of "
            f"another shape{_few(wrong)}",
            fix="leave out --ema to measure the module's own weights",
        )
    _copy_parameters(
        [(p, stripped[name]) for name, p in own.items()], f"{path}: the average of StochasticWeightAveraging does not load into {spec}"
    )


def _copy_parameters(pairs: list[tuple[nn.Parameter, torch.Tensor]], failure: str) -> None:
    """Copy each average into its parameter (checked for shape by the caller); `failure` begins the one-line error of
    what a shape check cannot see, e.g. a dtype that cannot be copied."""
    try:
        with torch.no_grad():
            for p, average in pairs:
                p.copy_(average)
    except RuntimeError as e:
        raise InputError(f"{failure} ({_first_line(e)})", fix=_CORRUPT_FIX) from e


# torch_ema's ExponentialMovingAverage, and diffusers' EMAModel after it, keep no names: their state dict holds the averages
# of the parameters they were given (`model.parameters()`), in their order, and no buffers. diffusers' counts its
# `optimization_step`, torch_ema its `num_updates`.
_SHADOW_NOTE = "using EMA weights from {!r} ({}'s averages of the parameters, the buffers from {!r})"


def _torch_ema(contents: object, where: tuple[str, ...]) -> tuple[str, list[torch.Tensor], str] | None:
    """The key, the `shadow_params` and the library of torch_ema's `ExponentialMovingAverage.state_dict()` or diffusers'
    `EMAModel.state_dict()` saved beside the plain weights found under `where`; None when the file holds none."""
    if not isinstance(contents, Mapping) or any(k in _EMA_KEYS for k in where):
        return None
    return next(((key, *found) for key in _EMA_KEYS if (found := _shadow_params(contents.get(key))) is not None), None)


def _shadow_params(saved: object) -> tuple[list[torch.Tensor], str] | None:
    """The `shadow_params` of torch_ema's or diffusers' EMA state dict, and the library that wrote it; None for anything else."""
    if not isinstance(saved, Mapping):
        return None
    shadow = saved.get("shadow_params")
    if not isinstance(shadow, list) or not shadow or not all(isinstance(t, torch.Tensor) for t in shadow):
        return None
    return shadow, "diffusers' EMAModel" if "optimization_step" in saved else "torch_ema"


def _shadow_filled(contents: object, shadow: dict[str, torch.Tensor], where: tuple[str, ...]) -> tuple[dict[str, torch.Tensor], str] | None:
    """An EMA helper's `shadow` found under `where` that names only some of the plain weights beside it (helpers
    written by hand often copy `named_parameters()` and leave the buffers): the plain weights with the shadow's
    tensors in their place, as the helper's own `apply_shadow` does, and a note; None when it is not that."""
    if not where or where[-1] != _SHADOW:
        return None
    plain = _find_state_dict(contents)
    if plain is None or any(k in _EMA_KEYS for k in plain[1]) or not set(shadow) < set(plain[0]):
        return None
    rest = len(plain[0]) - len(shadow)
    filled = _keep_metadata({**plain[0], **shadow}, plain[0])
    return (
        filled,
        f"using EMA weights from {'/'.join(where)!r} (an EMA helper's shadow copies; the {rest} tensors it lacks from {'/'.join(plain[1])!r}): --ema",
    )


def _copy_shadow(path: Path, spec: str, model: nn.Module, key: str, shadow: list[torch.Tensor], tool: str) -> None:
    """Put torch_ema's (or diffusers') averages into the model's parameters as its `copy_to(model.parameters())` does, after
    checking what its zip would not: one average of the same shape for each parameter."""
    params = list(model.named_parameters())
    wrong = next((f"{name}: average {_shape(s)} vs model {_shape(p)}" for (name, p), s in zip(params, shadow) if p.shape != s.shape), None)
    if len(params) != len(shadow) or wrong:
        raise InputError(
            f"{path}: the EMA averages under {key!r} ({tool}) do not fit {spec}: "
            + (f"{len(shadow)} averages for {len(params)} parameters" if len(params) != len(shadow) else f"first shape differs at {wrong}"),
            fix=f"{tool} keeps the parameters it was given in order: pass the architecture whose parameters() they were, or leave out --ema",
        )
    _copy_parameters(
        [(p, s) for (_, p), s in zip(params, shadow)], f"{path}: the EMA averages under {key!r} ({tool}) do not load into {spec}"
    )


def _ema_pytorch(state: dict[str, torch.Tensor], where: tuple[str, ...], ema: bool) -> tuple[dict[str, torch.Tensor], str] | None:
    """The weights of ema-pytorch's `EMA.state_dict()` (its `initted` and `step` counters, the EMA copy under
    `ema_model.`, the network it follows under `online_model.` unless include_online_model=False), and a note that
    says which were used: the EMA copy with `ema` or when it is all there is. None when `state` is not one."""
    if "initted" not in state or not any(k.startswith(_EMA_PYTORCH) for k in state):
        return None
    online = any(k.startswith(_EMA_PYTORCH_ONLINE) for k in state)
    prefix = _EMA_PYTORCH if ema or not online else _EMA_PYTORCH_ONLINE
    picked = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    under = "/".join((*where, _EMA_PYTORCH))
    if not ema and online:
        note = _ema_beside(under)
    else:
        note = f"using EMA weights under {under!r}: {'--ema' if ema else 'the file holds no plain model weights'}"
    return _keep_metadata(picked, state, prefix), note


def read_metadata(path: str | Path) -> dict[str, Any]:
    """suscli's fields (arch, arch_kwargs, num_classes, preset, ...) from the sidecar and safetensors header, without
    reading any tensor; the sidecar wins where both have a field. {} when neither has any."""
    return {k: v for _, fields in reversed(_stored_fields(Path(path))) for k, v in fields.items()}


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the file, read in chunks so large checkpoints do not sit in memory twice. A checkpoint folder
    hashes the names and hashes of the files that decide its model (not a Trainer's optimizer state beside them)."""
    path = Path(path)
    if path.is_dir():
        folder = sources.checkpoint_folder(path)
        if folder is None:
            raise InputError(f"{path}: is a directory, not a checkpoint", fix=_FOLDER_FIX)
        lines = "".join(f"{f.relative_to(path).as_posix()}\0{file_sha256(f)}\n" for f in sorted(folder.files))
        return hashlib.sha256(lines.encode()).hexdigest()
    if not path.exists():
        raise _missing(path)  # a manifest's or a pool's entry is hashed before it is loaded
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror or e})", fix="check the file's permissions") from e
    return digest.hexdigest()


def checkpoint_suffix(path: str | Path) -> str | None:
    """The checkpoint type a file name ends in (".pth.tar" for timm's `last.pth.tar`), or None."""
    name = Path(path).name.lower()
    return next((s for s in sorted(CHECKPOINT_SUFFIXES, key=len, reverse=True) if name.endswith(s)), None)


def sidecar_path(path: str | Path) -> Path:
    """`<dir>/<stem>.suscli.json` (model.pt -> model.suscli.json): suscli's fields for formats without metadata."""
    path = Path(path)
    return path.with_name(path.stem + ".suscli.json")


def _missing(path: Path) -> InputError:
    """A checkpoint that is not there: a link whose target is gone says where it pointed."""
    if path.is_symlink():
        return InputError(
            f"{path}: is a link to {os.readlink(path)}, which does not exist", fix="link it to the checkpoint again, or remove it"
        )
    return InputError(f"{path}: no such file", fix="check the path")


def _check_path(path: Path, folder: Folder | None) -> None:
    if not path.exists():
        raise _missing(path)
    if path.is_dir():
        if folder is None:
            if lacks := sources.folder_lacks(path):
                raise InputError(f"{path}: is not a checkpoint folder: {lacks.message}", fix=lacks.fix)
            raise InputError(f"{path}: is a directory, not a checkpoint", fix=_FOLDER_FIX)
        size = sum(f.stat().st_size for f in folder.weights)
    else:
        if checkpoint_suffix(path) is None:
            suffix = path.suffix or "(no suffix)"
            raise InputError(f"{path}: unknown checkpoint type {suffix!r}", fix=f"expected one of {_SUFFIX_LIST}")
        size = path.stat().st_size
        if size == 0:
            raise InputError(f"{path}: file is empty", fix=_CORRUPT_FIX)
    free = available_memory()
    if free is not None and MEMORY_MARGIN * size > free:
        raise InputError(
            f"{path}: loading this {human_size(size)} checkpoint takes about {human_size(MEMORY_MARGIN * size)} of memory "
            f"(the tensors read and the model they fill) but {human_size(free)} is available; refused rather than swapping",
            fix="free memory or run on a machine with more",
        )


def _stored_fields(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """suscli's fields per source, highest precedence first; sources without fields are left out."""
    found = []
    side = sidecar_path(path)
    if side.is_file():
        try:
            text = side.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{side}: cannot be read ({e})", fix="fix or delete the sidecar file") from e
        found.append(("sidecar", _parse_fields(text, f"{side}", "fix or delete the sidecar file")))
    if path.is_file() and path.suffix.lower() == ".safetensors":
        header = _safetensors_header(path)
        if METADATA_KEY in header:
            where = f"{path}: metadata {METADATA_KEY!r}"
            found.append(("metadata", _parse_fields(header[METADATA_KEY], where, "re-save it with suscli.save")))
    return [(source, fields) for source, fields in found if fields]


def _safetensors_header(path: Path) -> dict[str, str]:
    """A safetensors file's metadata, read without any tensor; safetensors checks that the header covers the file."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}  # None when the file was written without metadata
    except (SafetensorError, OSError) as e:
        raise _unreadable_safetensors(path, e) from e


def _parse_fields(text: str, where: str, fix: str) -> dict[str, Any]:
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{where} is not valid JSON ({e})", fix=fix) from e
    if not isinstance(fields, dict):
        raise InputError(f"{where} is not a JSON object", fix=fix)
    if not isinstance(fields.get("arch", ""), str) or not isinstance(fields.get("arch_kwargs", {}), dict):
        raise InputError(f"{where}: 'arch' must be a string and 'arch_kwargs' an object", fix=fix)
    for key, (kind, fits) in _FIELDS.items():
        if fields.get(key) is not None and not fits(fields[key]):
            raise InputError(f"{where}: {key!r} must be {kind}, not {json.dumps(fields[key])[:40]}", fix=fix)
    return fields


def _count(value: object, least: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _numbers(value: object, positive: bool = False) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v > 0 or not positive) for v in value)
    )


# The fields suscli reads from a sidecar or safetensors metadata, checked as they are read: a file written by hand or
# by other code may hold any JSON there, and a size of "big" or a std of 0 would fail far from its cause.
_FIELDS: dict[str, tuple[str, Callable[[object], bool]]] = {
    "num_classes": ("a whole number above 0", _count),
    "image_size": ("a whole number above 0", _count),
    "epoch": ("a whole number from 0", lambda v: _count(v, 0)),
    "mean": ("a list of numbers", _numbers),
    "std": ("a list of numbers above 0", lambda v: _numbers(v, positive=True)),
    "crop_pct": ("a number above 0 and at most 1", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1),
    "preset": (f"one of {', '.join(PRESETS)}", lambda v: v in PRESETS),
}


def _read(path: Path, trust: bool) -> tuple[object, str | None]:
    """The file's contents, and "torchscript" or "torch.export" for those archives (None otherwise)."""
    if path.suffix.lower() == ".safetensors":
        try:
            return load_file(str(path), device="cpu"), None
        except (SafetensorError, OSError) as e:
            raise _unreadable_safetensors(path, e) from e
    names = _zip_names(path)
    kind = _archive_kind(names)
    if kind == "torchscript":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; its files are still around
                return torch.jit.load(str(path), map_location="cpu"), kind
        except Exception as e:  # corrupt bytes: see the note on readers at the top
            raise InputError(f"{path}: not a readable TorchScript archive ({_reason(e)})", fix=_CORRUPT_FIX) from e
    if kind == "torch.export":
        risky = next(((what, n) for n in names for part, what in _EXPORT_CODE.items() if part in "/" + n), None)
        if risky and not trust:
            raise InputError(
                f"{path}: torch.export archive holds {risky[0]} ({risky[1]}), which can run code when loaded; refused", fix=_TRUST_FIX
            )
        try:
            with open(path, "rb") as f, _export_guard(trust):  # a file object: torch.export.load insists on a .pt2 name otherwise
                graph = torch.export.load(f).module()
        except Exception as e:  # corrupt bytes, or an AOTInductor package rather than an exported program
            if refused := refused_callable(e):
                raise InputError(_refusal(path, "torch.export archive ", refused), fix=_TRUST_FIX) from e
            raise InputError(
                f"{path}: not a loadable torch.export archive ({_reason(e)})", fix="re-export it with torch.export.save"
            ) from e
        return ExportedModel(graph, path), kind
    return _torch_load(path, trust), None


def _zip_names(path: Path) -> list[str]:
    """Entries of a zip archive; none for a legacy torch.save file or a damaged zip (torch.load reports which)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):  # ValueError: undecodable names in a damaged zip
        return []


def _archive_kind(names: list[str]) -> str | None:
    """TorchScript and torch.export archives are zips like torch.save's, told apart by their entries."""
    if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("/archive_format") for n in names):
        return "torch.export"
    return None


@contextlib.contextmanager
def _export_guard(trust: bool) -> Iterator[None]:
    """torch.export.load falls back to unpickling with weights_only=False (sample inputs, pickled tensors, older
    layouts): torch's TORCH_FORCE_WEIGHTS_ONLY_LOAD makes every torch.load inside it safe unless the user trusts the
    file. Its logs and warnings (a traceback among them) are muted: the failure becomes one InputError line."""
    saved = {k: os.environ.get(k) for k in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")}
    loggers = [logging.getLogger(name) for name in ("torch.export", "torch._export")]
    levels = [log.level for log in loggers]
    if not trust:
        os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
        os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    for log in loggers:
        log.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _plain_data() -> contextlib.AbstractContextManager:
    """PLAIN_DATA_GLOBALS, and OmegaConf's containers as inert stand-ins (suscli.load.configs), allowed to
    torch.load(weights_only=True) for one load (torch >= 2.5; before, refused)."""
    allow = getattr(torch.serialization, "safe_globals", None)
    return allow([*PLAIN_DATA_GLOBALS, *configs.SAFE_GLOBALS]) if allow else contextlib.nullcontext()


def _torch_load(path: Path, trust: bool) -> object:
    try:
        with warnings.catch_warnings(), _plain_data():  # torch warns on stderr about odd pickles; a failure is reported below
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        with _plain_data():  # a global this load allowed is not the one that refused it
            refused = refused_callable(e, path)
        if refused is None:
            raise _unreadable_torch(path, e) from e
        if not trust:
            raise InputError(_refusal(path, "", refused), fix=_TRUST_FIX) from e
    except Exception as e:  # corrupt bytes: see the note on readers at the top
        raise _unreadable_torch(path, e) from e
    try:
        contents = torch.load(path, map_location="cpu", weights_only=False)  # the user vouched for this file
    except Exception as e:  # arbitrary unpickling code ran and failed, e.g. the model's class is not importable here
        raise InputError(
            f"{path}: could not be unpickled even with --trust-checkpoint ({_reason(e)})",
            fix="make the module that defines the model importable, or re-save its weights with suscli.save",
        ) from e
    return contents


def _find_state_dict(contents: object, ema: bool = False, depth: int = 0) -> tuple[dict[str, torch.Tensor], tuple[str, ...]] | None:
    """The weights and the keys they were nested under: a mapping of names to tensors, found by trying
    `_WEIGHT_KEYS` in order (EMA keys first with `ema`) at each level down to `_MAX_NESTING` levels."""
    if not isinstance(contents, Mapping) or not contents:
        return None
    if all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in contents.items()):
        return _keep_metadata(dict(contents), contents), ()
    if depth == _MAX_NESTING:
        return None
    for key in _EMA_FIRST if ema else _WEIGHT_KEYS:
        found = _find_state_dict(contents.get(key), ema, depth + 1)
        if found is not None:
            return found[0], (key, *found[1])
    return None


def _keep_metadata(state: dict[str, torch.Tensor], source: Mapping[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
    """`state` with the `_metadata` torch.save kept on `source` (module versions, which decide how a module loads
    its keys: BatchNorm before version 2 had no num_batches_tracked), its module paths relative to `prefix`."""
    metadata = getattr(source, "_metadata", None)
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) and isinstance(v, Mapping) for k, v in metadata.items()):
        return state  # absent, or not what torch writes: modules then load as files without it (version unknown)
    module = prefix[:-1]
    kept = {k[len(prefix) :]: v for k, v in metadata.items() if not prefix or k == module or k.startswith(prefix)}
    out: OrderedDict[str, torch.Tensor] = OrderedDict(state)
    out._metadata = kept  # type: ignore[attr-defined]  # where torch's own state_dict() keeps it
    return out


def _strip_prefixes(
    state: dict[str, torch.Tensor], wanted: set[str], extra: tuple[str, ...] = ()
) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Strip wrapper prefixes, possibly stacked (`module._orig_mod.`), when that brings the keys closer to `wanted`.

    Keys outside a stripped prefix are dropped (a Lightning module may hold more than its `model.`), which is
    safe only because the model's own strict loading must then accept the result. `extra` adds prefixes a
    layout knows of (a LightningModule's attribute names). The candidate closest to `wanted` is returned, so a
    key-mismatch message shows the most useful difference.
    """
    best, best_diff = state, len(set(state) ^ wanted)
    best_chain: tuple[str, ...] = ()
    frontier: list[tuple[dict[str, torch.Tensor], tuple[str, ...]]] = [(state, ())]
    prefixes = _WRAPPER_PREFIXES + tuple(p for p in extra if p not in _WRAPPER_PREFIXES)
    for _ in range(_MAX_STACKED):
        if best_diff == 0:
            break
        next_frontier = []
        for candidate, chain in frontier:
            for prefix in prefixes:
                stripped = {k[len(prefix) :]: v for k, v in candidate.items() if k.startswith(prefix)}
                if not stripped:
                    continue
                stripped = _keep_metadata(stripped, candidate, prefix)
                diff = len(set(stripped) ^ wanted)
                if diff < best_diff:
                    best, best_chain, best_diff = stripped, (*chain, prefix), diff
                next_frontier.append((stripped, (*chain, prefix)))
        frontier = next_frontier
    return best, best_chain


def _load_weights(
    path: Path, spec: str, model: nn.Module, state: dict[str, torch.Tensor], inferred: int | None, prefixes: tuple[str, ...] = ()
) -> list[str]:
    """Load `state` into `model` as the model's own strict `load_state_dict` would (BatchNorm fills in the
    num_batches_tracked that files saved before PyTorch 0.4.1 lack), saying exactly which keys or shapes do not fit.

    The tensors whose shapes fit are loaded with strict=False, which reports the keys torch would refuse; only
    those, and shapes that differ, are errors. On an error the half-loaded model is dropped with the exception.
    """
    own = model.state_dict()
    given = len(state)
    state, chain = _strip_prefixes(state, set(own), prefixes)
    after = f" after stripping {' + '.join(map(repr, chain))}" if chain else ""
    fix = "pass the architecture and --arch-kwargs the checkpoint was trained with"
    wrong = {k for k, v in state.items() if k in own and v.shape != own[k].shape}
    try:
        result = model.load_state_dict(_keep_metadata({k: v for k, v in state.items() if k not in wrong}, state), strict=False)
    except RuntimeError as e:  # what the shape check cannot see, e.g. a dtype that cannot be copied
        raise InputError(f"{path}: weights do not load into {spec} ({_first_line(e)})", fix=fix) from e
    refused_missing, refused_unexpected = set(result.missing_keys) - wrong, set(result.unexpected_keys)
    missing = [k for k in own if k in refused_missing]
    unexpected = [k for k in state if k in refused_unexpected]
    if missing or unexpected:
        buffers = {name for name, _ in model.named_buffers()}
        if not unexpected and set(missing) <= buffers and not buffers & set(state):  # an EMA helper's shadow, say
            fix = (
                "the file holds the parameters without the buffers (BatchNorm statistics): save model.state_dict(), which "
                "holds both, or save these beside it as an EMA copy, which --ema reads"
            )
        raise InputError(
            f"{path}: weights do not fit {spec}{after}: {len(missing)} missing keys{_few(missing)}, "
            f"{len(unexpected)} unexpected keys{_few(unexpected)}",
            fix=fix,
        )
    if wrong:
        shapes = [f"{k}: checkpoint {_shape(state[k])} vs model {_shape(v)}" for k, v in own.items() if k in wrong]
        if inferred is not None:
            fix += f"; num_classes={inferred} was inferred from the weights: set num_classes in --arch-kwargs if wrong"
        raise InputError(f"{path}: weights do not fit {spec}{after}: {len(wrong)} tensors differ in shape{_few(shapes)}", fix=fix)
    if not chain:
        return []
    dropped = f", ignored {given - len(state)} keys outside it" if given > len(state) else ""
    return [f"stripped prefix {' + '.join(map(repr, chain))}{dropped}"]


def _vet_stored_arch(path: Path, choice: _ArchChoice) -> None:
    """An architecture named by the file itself was chosen by whoever made the file, and building it calls code:
    `subprocess:run` with `{"args": [...]}` as arch_kwargs would run any command. Without --trust-checkpoint (or
    --arch/a manifest naming the same spec) it is followed only to a model builder: torchvision's registry or a
    callable outside the standard library that is an nn.Module class or a function declared to return one. A
    `file.py` it names is refused: importing the file runs it, and it may have arrived with the checkpoint."""
    module_name, _, name = choice.spec.rpartition(":")
    if module_name in ("", "torchvision", "timm"):
        return  # registries of model builders; "": build_model says what a spec looks like
    if module_name.endswith(".py"):
        raise InputError(
            f"{path}: its {choice.source} names the Python file architecture {choice.spec!r}; importing "
            "that file runs it, and a file that came with the checkpoint may do anything, so it is refused",
            fix=f"pass --arch {choice.spec} if you trust that file, or --trust-checkpoint if you trust where the checkpoint came from",
        )
    refused = InputError(
        f"{path}: its {choice.source} names the architecture {choice.spec!r}, which is not a model class or a function "
        "declared to return one; building it could run any code the file's author chose, so it is refused",
        fix=f"pass --arch {choice.spec} if you trust that code, or --trust-checkpoint if you trust where the file came from",
    )
    parts = module_name.split(".")
    if parts[0] in sys.stdlib_module_names or "__main__" in parts:
        raise refused  # importing some standard modules acts (antigravity, this); none of them builds a model
    try:
        factory = getattr(importlib.import_module(module_name), name, None)
    except Exception:  # build_model names the import failure and its fix
        return
    if inspect.isclass(factory):
        if not issubclass(factory, nn.Module):
            raise refused
        return
    try:
        returned = get_type_hints(factory).get("return") if inspect.isfunction(factory) else None
    except Exception:  # an annotation that cannot be resolved says nothing
        returned = None
    if not (inspect.isclass(returned) and issubclass(returned, nn.Module)):
        raise refused


def _overriding(e: InputError, winner: _ArchChoice, choices: Iterable[_ArchChoice]) -> InputError:
    """`e`, saying so when the user's architecture that failed overrode the one the training tool recorded (an
    --arch meant for a pool's plain state dicts applies to its Lightning and Hugging Face files too)."""
    recorded = next((c for c in choices if c.source not in (*_USER_SOURCES, "sidecar", "metadata") and c.spec != winner.spec), None)
    if winner.source not in _USER_SOURCES or recorded is None:
        return e
    return InputError(
        e.message,
        fix=f"{_USER_SOURCES[winner.source]} {winner.spec} was used over the {recorded.source}'s {recorded.spec}: leave it out "
        "for this file (a rank manifest gives each model its own arch)",
    )


def _ignored_choices(winner: _ArchChoice, choices: Iterable[_ArchChoice]) -> list[str]:
    """Say when a user's choice (arch= or --arch) lost to a higher source that names a different architecture, and
    when the user's choice overrode what the training tool recorded (the user wins, the report says so)."""
    said = f"the file holds a {winner.spec} model" if winner.source == "file" else f"{winner.source} says {winner.spec}"
    notes = [
        f"{_USER_SOURCES[c.source]} {c.spec}{f' {_kwargs(c.kwargs)}' if c.kwargs else ''} ignored: {said}"
        + (f" {_kwargs(winner.kwargs)}" if c.spec == winner.spec and winner.kwargs else "")
        for c in choices
        if c.source in _USER_SOURCES and c is not winner and (c.spec != winner.spec or c.kwargs and c.kwargs != winner.kwargs)
    ]
    if winner.source in _USER_SOURCES:
        notes += [
            f"{_USER_SOURCES[winner.source]} {winner.spec} used: the {c.source} says {c.spec}"
            for c in choices
            if c.source not in (*_USER_SOURCES, "sidecar", "metadata") and c.spec != winner.spec
        ]
    return notes


def _kwargs(kwargs: Mapping[str, Any]) -> str:
    """Arch kwargs as a note shows them: with num_classes=5,width=16."""
    return "with " + ",".join(f"{k}={json.dumps(v)}" for k, v in kwargs.items())


def _to_eval(model: nn.Module, kind: str) -> list[str]:
    model.eval()  # an ExportedModel switches its graph's batch norms (suscli.load.exported)
    return []


def _describe(contents: object) -> str:
    if isinstance(contents, Mapping):
        if not contents:
            return "an empty dict"
        keys = ", ".join(map(repr, list(contents)[:5])) + (", ..." if len(contents) > 5 else "")
        return f"a {type(contents).__name__} with keys {keys}"
    return f"a {type(contents).__name__}"


def _few(items: list[str], n: int = 3) -> str:
    if not items:
        return ""
    return f" ({', '.join(items[:n])}{', ...' if len(items) > n else ''})"


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) if t.ndim else "scalar"


def _unreadable_safetensors(path: Path, e: Exception) -> InputError:
    """A .safetensors file safetensors cannot read: a torch file or a pickle under that name is said to be one, not
    called damaged."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        head = b""
    kind = (
        "a zip archive (torch.save's format)" if head == b"PK" else "a pickle (torch.save's legacy format)" if head[:1] == b"\x80" else None
    )
    if kind:
        return InputError(
            f"{path}: is {kind}, not a safetensors file",
            fix="rename it to .pt, which suscli reads with weights-only loading, or save it with suscli.save",
        )
    return InputError(f"{path}: not a readable safetensors file ({_first_line(e)})", fix=_CORRUPT_FIX)


def _unreadable_torch(path: Path, e: Exception) -> InputError:
    """A file torch.load cannot read: a safetensors file under a torch name is said to be one, not called damaged."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        head = b""
    if len(head) == 9 and head[8:] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= path.stat().st_size - 8:
        return InputError(
            f"{path}: is a safetensors file, not a PyTorch checkpoint",
            fix=f"rename it to {path.name[: -len(checkpoint_suffix(path) or path.suffix)]}.safetensors, which suscli reads as such",
        )
    return InputError(f"{path}: not a readable PyTorch checkpoint ({_reason(e)})", fix=_CORRUPT_FIX)


def _refusal(path: Path, what: str, callable_name: str) -> str:
    """A pickle refused for what it imports, called that: nothing about it is damaged, and nothing in it ran."""
    return (
        f"{path}: {what}holds pickled Python objects: it imports {callable_name}, a callable that weights-only loading "
        "does not allow, since unpickling would call it; refused, nothing in the file was run"
    )


def _reason(e: BaseException) -> str:
    """The informative line of a reader's exception; torch wraps weights-only failures in paragraphs of advice."""
    text = str(e)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    elif text.startswith("Weights only load failed"):
        text = "\n".join(line for line in text.splitlines()[1:] if not line.startswith("Check the documentation"))
    return f"{type(e).__name__}: {_first_line(text)}"


def _first_line(e: BaseException | str, limit: int = 160) -> str:
    """The first non-empty line, cut at a word (never mid-word) when longer than `limit`."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0]
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + " ..."
