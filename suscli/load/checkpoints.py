"""Loading and saving checkpoints: the one door a checkpoint goes through to become a model.

Loading follows timm's `_helpers.py`: the file is read by suscli.load.safe_read (dispatch on the file type, pickles
read with `weights_only=True`, never unsafe loading unless the user says they trust the file), its weights are found
under nested keys and wrapper prefixes (`module.`, `_orig_mod.`, `model.`) by suscli.load.state_dicts, and an EMA or
SWA copy is picked by suscli.load.averages. The architecture for a state dict is named separately (suscli.load.arch)
and resolved from, highest first: the file itself (TorchScript, torch.export, a trusted pickled module), `arch=` (a
per-model choice), the sidecar JSON, the safetensors metadata, `default_arch=` (the CLI's --arch), then what the
training tool recorded (suscli.load.sources: timm's args, a Hugging Face config, Lightning's hyper-parameters,
torchvision's reference args). Without `trust`, nothing a file carries runs: no pickled object beyond plain-data
classes allowed by name, no pickle inside a torch.export archive, no architecture the file names unless it is a model
builder (a file.py spec is one by design; docs/reliability.md).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from suscli.data.images import CHANNEL_ORDERS, CROP_OFFSETS, INTERPOLATIONS, PRESETS, RESIZES
from suscli.load import averages, foreign, sources
from suscli.load.sources.huggingface import output_dir_refusal
from suscli.load.arch import auxiliary_heads, build_model, infer_num_classes, source_record, spec_file
from suscli.errors import InputError, UsageError, first_line, plural, shown
from suscli.files import MEMORY_MARGIN, available_memory, human_size, replacing
from suscli.load.safe_read import (
    CHECKPOINT_SUFFIXES,
    CORRUPT_FIX,
    checkpoint_suffix,
    nameable,
    read,
    safetensors_header,
    sidecar_path,
    torch_load,
)
from suscli.load.sources import Folder
from suscli.load.sources.interface import epoch_number, optimizer_state
from suscli.load.state_dicts import (
    EMA_KEYS,
    few,
    find_state_dict,
    is_record,
    keep_metadata,
    nested_module,
    records_beside,
    shape,
    strip_prefixes,
    stripped_chain,
    weights_sha256,
    wrapped_module,
)

METADATA_KEY = "suscli"  # safetensors metadata is str -> str: all our fields live under this key as one JSON string
_SUFFIX_LIST = ", ".join(CHECKPOINT_SUFFIXES)
_ARCH_KEYS = ("arch", "arch_kwargs")  # stored with the weights, but they describe the spec, not the model
_FOLDER_FIX = (
    f"pass a file ending in {_SUFFIX_LIST}, or a Hugging Face model folder (config.json with model.safetensors "
    "or pytorch_model.bin); suscli rank and track take a folder of checkpoints"
)


def save(model: nn.Module, path: str | Path, *, arch: str, arch_kwargs: dict[str, Any] | None = None, **meta: Any) -> Path:
    """Write `model`'s state dict as safetensors, with what suscli needs to rebuild it in the metadata.

    `arch` is an architecture spec (`torchvision:resnet18`, `package.module:factory`, `file.py:factory`);
    `meta` may carry fields suscli reads (num_classes, classes, preset, mean, std, image_size, crop_pct, resize,
    interpolation, crop_offset, channel_order, epoch) and any other JSON-serializable values, which are kept as they are. `classes` (the name of class i at index i) lets training
    labels given by name be mapped to the model's ids (suscli.data.labels). The file name must end in .safetensors:
    under another (`m.pt`) every later load read it as what its name says and refused it, and a pool or run folder
    found no checkpoint in a file without a suffix.
    """
    if not isinstance(model, nn.Module):  # a state dict, as torch.save takes it: "'dict' object has no attribute 'state_dict'"
        raise UsageError(
            f"suscli.save takes the model (a torch.nn.Module), got {type(model).__name__}",
            fix="pass the model itself; a state dict: load it into its architecture first (model.load_state_dict(state))",
        )
    path = Path(path)
    if checkpoint_suffix(path) != ".safetensors":
        raise UsageError(
            f"suscli.save({path}) writes safetensors: the file name must end in .safetensors", fix=f"save to {_safetensors_name(path)}"
        )
    text = _metadata(path, {"arch": arch, "arch_kwargs": dict(arch_kwargs or {}), **meta})
    if fix := off_scale_mean(meta.get("mean"), meta.get("std"), "mean=", "std="):
        raise UsageError(f"suscli.save({path}): mean {meta['mean']} is not on the 0-1 scale of the pixels it is subtracted from", fix=fix)
    # the architecture's own keys: a compiled or DataParallel model's `_orig_mod.` and `module.` fit no architecture
    state = {k: v.detach().cpu().contiguous() for k, v in wrapped_module(model).state_dict().items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path, binary=True) as f:  # a kill leaves no half-written model, and no temporary file for ever
            f.write(safetensors_bytes(_untie(state), metadata={METADATA_KEY: text}))
    except OSError as e:  # a folder of that name, no permission, a full disk
        raise InputError(f"cannot write {path}: {e.strerror or e}", fix="choose a writable path for the model") from None
    return path


def off_scale_mean(mean: object, std: object, mean_name: str = "--mean ", std_name: str = "--std ") -> str | None:
    """Where a mean lies outside 0-1, the scale of the pixels suscli subtracts it from, the fix naming what to give
    instead (as `mean_name` and `std_name` spell it); None where it is on that scale or not a list of numbers (which the
    fields' own check refuses). A 0-255 mean (OpenCV's and MMPretrain's 123.675,116.28,103.53) turned every image into a
    flat field near -2, with no word said."""
    if not isinstance(mean, list) or not _numbers(mean) or all(0 <= m <= 1 for m in mean):
        return None
    if not all(0 <= m <= 255 for m in mean):
        return "give each channel's mean from 0 to 1"
    scaled = ",".join(f"{m / 255:.4g}" for m in mean)
    with_std = f" {std_name}{','.join(f'{s / 255:.4g}' for s in std)}" if isinstance(std, list) and _numbers(std) else ""
    return f"divide the mean and the std by 255: {mean_name}{scaled}{with_std}"


def _safetensors_name(path: Path) -> Path:
    """`path` with its checkpoint suffix (`.pt`, `.pth.tar`), if any, replaced by .safetensors."""
    suffix = checkpoint_suffix(path)
    return path.with_name((path.name[: -len(suffix)] if suffix else path.name) + ".safetensors")


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
    # the user's source files its architecture was built from, with their sha256 (suscli.load.arch.source_record)
    sources: list[dict[str, str]] = field(default_factory=list)
    # the weights' own hash as loaded (state_dicts.weights_sha256): one for every file of the same weights
    weights_sha256: str | None = None


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
    path = nameable(Path(path))
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
                torch_load(file, trust)
            else:
                safetensors_header(file)  # a damaged file is said to be one, not a config that does not fit
    else:
        contents, kind = read(path, trust)
    if isinstance(contents, Mapping) and (epoch := epoch_number(contents.get("epoch"))) is not None:
        meta.setdefault("epoch", epoch)  # training checkpoints (Lightning, timm) record it beside the weights
    nested = nested_module(contents, ema)
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
        if nested is not None and nested[0] in EMA_KEYS:
            notes += averages.ema_notes(nested[:1], ema)
        else:
            notes += [f"the model pickled under {nested[0]!r}"] if nested is not None else []
            notes += averages.ema_notes((), ema)  # --ema, and the file holds no EMA copy
        classes = num_classes or meta.get("num_classes") or infer_num_classes(contents.state_dict())
        notes += _in_float32(contents)
        return Checkpoint(path, contents, kind, "file", meta, file_sha256(path), classes, notes, weights_sha256=weights_sha256(contents))

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
    built: list[Path] = []
    if winner.load is not None:
        try:
            with torch.random.fork_rng(devices=[]):  # as build_model: the caller's RNG stays put
                model = winner.load()
        except InputError as e:
            raise InputError(f"{path}: {e.message}", fix=e.fix) from e
        if ema:
            notes.append(f"--ema: {found.tool if found else 'this'} checkpoint holds no EMA weights; its plain weights were used")
        classes = num_classes or meta.get("num_classes") or infer_num_classes(model.state_dict())
    else:
        state, where = _weights(path, contents, folder, trust, ema)
        if records := records_beside(contents, where):
            many = len(records) > 1
            notes.append(
                f"left out {len(records)} value{'s' if many else ''} of the state dict that {'are no tensors' if many else 'is no tensor'}, "
                f"{'records' if many else 'a record'} beside the weights: {shown([repr(r) for r in records], 3)}"
            )
        shadow = None  # torch_ema's or diffusers' averages, put into the model's parameters once it is loaded
        swa = None  # StochasticWeightAveraging's average, put into the model's parameters once it is loaded
        if found is not None and found.averaged is not None:
            state, note = averages.averaged(path, contents, found.averaged, ema)
            notes.append(note)
        elif found is not None and found.swa is not None:
            swa, said = averages.swa_average(path, contents, *found.swa, ema)
            notes += [said] if said else []
        elif found is not None and found.ema_prefix is not None:
            state, note = averages.module_ema(state, found.ema_prefix, ema)
            notes.append(note)
        elif (wrapped := averages.ema_pytorch(state, where, ema)) is not None:
            state, note = wrapped
            notes.append(note)
        elif (shadow := averages.torch_ema(contents, where)) is not None:
            notes.append(
                averages.ema_beside(shadow[0])
                if not ema
                else f"{averages.SHADOW_NOTE.format(shadow[0], shadow[2], '/'.join(where))}: --ema"
            )
        elif ema and (filled := averages.shadow_filled(contents, state, where)) is not None:
            state, note = filled
            notes.append(note)
        else:
            notes += averages.ema_notes(where, ema, contents, state)
        inferred = None
        if num_classes is None and meta.get("num_classes") is None and "num_classes" not in winner.kwargs:
            inferred = infer_num_classes(state)
        classes = _kwargs_classes(winner.kwargs) or num_classes or meta.get("num_classes") or inferred
        said = _classes_said(winner, num_classes, stored)
        try:
            _check_num_classes(path, num_classes, winner, said)
            try:
                kwargs = {**auxiliary_heads(winner.spec, state), **winner.kwargs}
                model = build_model(winner.spec, kwargs, num_classes=classes, base_dir=winner.base_dir, sources=built)
            except InputError as e:
                raise InputError(f"{path}: {e.message} (arch from {winner.source})", fix=e.fix) from e
            notes += _load_weights(path, winner.spec, model, state, inferred, said, found.prefixes if found else ())
            notes += _loaded_in_float32(state, model)
            if ema and shadow is not None:
                averages.copy_shadow(path, winner.spec, model, *shadow)
            if swa is not None:
                averages.swa_parameters(path, winner.spec, model, swa, found.prefixes if found else ())
        except InputError as e:
            raise _overriding(e, winner, choices) from e
    defaults = sources.arch_defaults(winner.spec, model)
    implied = sorted(k for k in defaults if k not in meta)  # what only the architecture says, not this checkpoint
    meta = {**defaults, **meta, **({"implied": implied, "implied_by": f"the defaults of {winner.spec}"} if implied else {})}
    model.eval()
    return Checkpoint(
        path, model, winner.spec, winner.source, meta, file_sha256(path), classes, notes, source_record(built), weights_sha256(model)
    )


def _weights(
    path: Path, contents: object, folder: Folder | None, trust: bool, ema: bool
) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """The state dict of a file, or of a folder's weight files read together, and the keys it was nested under."""
    if folder is not None:
        merged: dict[str, torch.Tensor] = {}
        for file in folder.weights:
            part, _ = read(file, trust)
            found = find_state_dict(part, ema)
            if found is None:
                raise InputError(f"{file}: holds no state dict (found {_describe(part)})", fix=CORRUPT_FIX)
            merged.update(found[0])
        contents = merged
    found = find_state_dict(contents, ema)
    if found is None and (alone := averages.shadow_params(contents)) is not None:
        raise InputError(
            f"{path}: holds {alone[1]}'s EMA averages alone: {len(alone[0])} tensors without names or buffers, no model weights",
            fix="save them beside the model's weights as {'model': model.state_dict(), 'ema': ema.state_dict()}, which --ema reads, "
            "or save the model's state dict after ema.copy_to(model.parameters())",
        )
    if found is None and (stray := _stray_value(contents)) is not None:
        raise InputError(
            f"{path}: holds a state dict whose {stray[0]!r} is {_describe(stray[1])}, neither a tensor nor a record (a number or name)",
            fix=f"save the weights apart from it, as {{'state_dict': model.state_dict(), {stray[0]!r}: ...}}",
        )
    if found is None and folder is None and contents == {} and path.suffix.lower() == ".safetensors":  # flat: no key to nest under
        fields = sorted(safetensors_header(path))
        kept = f" (its metadata alone: {', '.join(fields)})" if fields else ""
        raise InputError(
            f"{path}: holds no tensors{kept}",
            fix="save the model's weights in it: safetensors.torch.save_file(model.state_dict(), PATH, metadata=...)",
        )
    if found is None and optimizer_state(contents):
        raise InputError(
            f"{path}: holds an optimizer's state (torch.optim's state_dict: 'state' and 'param_groups'), not a model's weights",
            fix="pass the model's checkpoint, saved beside it with torch.save(model.state_dict(), PATH)",
        )
    if found is None:
        raise InputError(
            f"{path}: holds no state dict (found {_describe(contents)})",
            fix="expected a mapping of names to tensors, at the top or under 'state_dict', 'model', 'model_state_dict' or 'net'",
        )
    return found


def _in_float32(model: nn.Module) -> list[str]:
    """A whole model saved in another floating dtype (bfloat16 or float16 after half-precision training, float64)
    turned float32, as its weights become when a state dict of them loads into a float32 network: float32 images
    do not enter it otherwise, and in half precision the loss one small step moves rounds away."""
    other = _not_float32((*model.parameters(), *model.buffers()))
    if not other:
        return []
    model.float()
    return [f"weights in {other}, measured in float32 (as a state dict of them would be)"]


def _loaded_in_float32(state: Mapping[str, object], model: nn.Module) -> list[str]:
    """The note _in_float32 gives a whole model, for a state dict of another floating dtype loaded into a float32
    network: its weights were rounded or widened to float32 as the whole model's are, which loaded without a word."""
    if _not_float32(model.state_dict().values()):  # a network that is not float32 throughout measures as it is
        return []
    other = _not_float32(state.values())
    return [f"weights in {other}, measured in float32 (loaded into the network, built in float32)"] if other else []


def _not_float32(tensors: Iterable[object]) -> str:
    """The floating dtypes other than float32 among `tensors`, as "bfloat16 and float16"; "" where none."""
    found = {
        str(t.dtype).removeprefix("torch.")
        for t in tensors
        if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype != torch.float32
    }
    return " and ".join(sorted(found))


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
            raise foreign.refusal(path) or InputError(f"{path}: is a directory, not a checkpoint", fix=_FOLDER_FIX)
        # a file beside the folder (a Trainer run folder's preprocessor_config.json) is named by its path from it, ../
        lines = "".join(f"{Path(os.path.relpath(f, path)).as_posix()}\0{file_sha256(f)}\n" for f in sorted(folder.files))
        return hashlib.sha256(lines.encode()).hexdigest()
    if not path.exists():
        raise _missing(path)  # a manifest's or a pool's entry is hashed before it is loaded
    st = path.stat()
    identity = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if (known := _DIGESTS.get(identity)) is None:
        known = _DIGESTS[identity] = _read_digest(path)
    return known


# The digests this process has read, by the file's identity (as the decode cache keys images: a file written again or
# chmod-ed is read again): a run hashes each checkpoint to look up its stored results, then again as it loads it.
_DIGESTS: dict[tuple[str, int, int, int, int, int], str] = {}


def _read_digest(path: Path) -> str:
    """The file's SHA-256, read in chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror or e})", fix="check the file's permissions") from e
    return digest.hexdigest()


def companion_files(path: str | Path) -> list[Path]:
    """The files besides the checkpoint and its sidecar that loading it reads and that decide its numbers: the .py file
    an architecture its sidecar or metadata names is built from, and the files its layout reads (timm's args.yaml and
    class map: suscli.load.sources.companion_files). A model's key in a results file holds their bytes."""
    path = Path(path)
    try:
        stored = _stored_fields(path)
    except InputError:  # a sidecar or metadata that cannot be read: loading it says why
        stored = []
    named = [spec_file(fields.get("arch"), base_dir=path.parent) for _, fields in stored]
    return [*dict.fromkeys(f for f in named if f is not None), *sources.companion_files(path)]


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
    if folder is None and (why := foreign.refusal(path)) is not None:  # a PEFT adapter, FSDP's shards, an ONNX graph
        raise why
    if path.is_dir():
        if folder is None:
            if lacks := sources.folder_lacks(path):
                raise InputError(f"{path}: is not a checkpoint folder: {lacks.message}", fix=lacks.fix)
            raise output_dir_refusal(path) or InputError(f"{path}: is a directory, not a checkpoint", fix=_FOLDER_FIX)
        size = sum(f.stat().st_size for f in folder.weights)
    else:
        if checkpoint_suffix(path) is None:
            suffix = path.suffix or "(no suffix)"
            raise InputError(f"{path}: unknown checkpoint type {suffix!r}", fix=f"expected one of {_SUFFIX_LIST}")
        size = path.stat().st_size
        if size == 0:
            raise InputError(f"{path}: file is empty", fix=CORRUPT_FIX)
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
        header = safetensors_header(path)
        if METADATA_KEY in header:
            where = f"{path}: metadata {METADATA_KEY!r}"
            found.append(("metadata", _parse_fields(header[METADATA_KEY], where, "re-save it with suscli.save")))
    return [(source, fields) for source, fields in found if fields]


def _parse_fields(text: str, where: str, fix: str) -> dict[str, Any]:
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{where} is not valid JSON ({e})", fix=fix) from e
    if not isinstance(fields, dict):
        raise InputError(f"{where} is not a JSON object", fix=fix)
    if not isinstance(fields.get("arch", ""), str) or not isinstance(fields.get("arch_kwargs", {}), dict):
        raise InputError(f"{where}: 'arch' must be a string and 'arch_kwargs' an object", fix=fix)
    for key in _WHOLE:
        if isinstance(fields.get(key), float) and fields[key].is_integer():
            fields[key] = int(fields[key])  # 32.0: a count computed as a float, which releases before this check read as 32
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


_WHOLE = ("num_classes", "image_size", "epoch")  # the whole-number fields


# The fields suscli reads from a sidecar or safetensors metadata, checked as they are read: a file written by hand or
# by other code may hold any JSON there, and a size of "big" or a std of 0 would fail far from its cause.
_FIELDS: dict[str, tuple[str, Callable[[object], bool]]] = {
    "num_classes": ("a whole number above 0", _count),
    "image_size": ("a whole number above 0", _count),
    "epoch": ("a whole number from 0", lambda v: _count(v, 0)),
    "mean": ("a list of numbers", _numbers),  # on the pixels' 0-1 scale too where it is used (off_scale_mean)
    "std": ("a list of numbers above 0", lambda v: _numbers(v, positive=True)),
    "crop_pct": ("a number above 0 and at most 1", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1),
    "preset": (f"one of {', '.join(PRESETS)}", lambda v: isinstance(v, str) and v in PRESETS),
    "resize": (f"one of {', '.join(RESIZES)}", lambda v: isinstance(v, str) and v in RESIZES),
    "interpolation": (f"one of {', '.join(INTERPOLATIONS)}", lambda v: isinstance(v, str) and v in INTERPOLATIONS),
    "crop_offset": (f"one of {', '.join(CROP_OFFSETS)}", lambda v: isinstance(v, str) and v in CROP_OFFSETS),
    "channel_order": (f"one of {', '.join(CHANNEL_ORDERS)}", lambda v: isinstance(v, str) and v in CHANNEL_ORDERS),
}


def _kwargs_classes(kwargs: dict[str, Any]) -> int | None:
    """The class count the arch kwargs build the model with (build_model passes them over --num-classes and the file's
    count): the checkpoint's count where they give one. It was left unknown, so a forward returning (features, logits)
    was measured on its features with `--arch-kwargs num_classes=3`, where without it the features were refused."""
    count = kwargs.get("num_classes")
    return count if _count(count) else None


def _check_num_classes(path: Path, num_classes: int | None, winner: _ArchChoice, said: str | None) -> None:
    """--num-classes against the count the arch kwargs build the model with, which win over it (build_model): where
    they differ one of the two is wrong, and the option was dropped without a word (the model measured at the file's
    count, the row silent on it), so that is refused, naming both."""
    built = _kwargs_classes(winner.kwargs)
    if num_classes is None or built is None or built == num_classes:
        return
    raise InputError(
        f"{path}: --num-classes says {num_classes} classes, but {said or f'num_classes in the arch kwargs of its {winner.source}'} says {built}",
        fix=f"drop --num-classes or make it {built}",
    )


def _classes_said(winner: _ArchChoice, num_classes: int | None, stored: list[tuple[str, dict[str, Any]]]) -> str | None:
    """Who set the class count the model is built with (arch kwargs, then --num-classes, then suscli's fields, as
    build_model and load_checkpoint take them), so that a count the weights contradict is blamed on what said it,
    not on the architecture; None when the weights or a training tool gave it."""
    places = {"--arch": "--arch-kwargs", "manifest": "the manifest's arch_kwargs"}
    places |= {source: f"its suscli {source}'s arch_kwargs" for source in ("sidecar", "metadata")}
    if "num_classes" in winner.kwargs:
        return f"num_classes in {places[winner.source]}" if winner.source in places else None
    if num_classes is not None:
        return "--num-classes"
    named = next((source for source, fields in stored if "num_classes" in fields), None)
    return f"num_classes in its suscli {named}" if named else None


def _load_weights(
    path: Path,
    spec: str,
    model: nn.Module,
    state: dict[str, torch.Tensor],
    inferred: int | None,
    said: str | None = None,
    prefixes: tuple[str, ...] = (),
) -> list[str]:
    """Load `state` into `model` as the model's own strict `load_state_dict` would (BatchNorm fills in the
    num_batches_tracked that files saved before PyTorch 0.4.1 lack), saying exactly which keys or shapes do not fit.
    An output layer that differs in its class count is blamed on `said`, the option or field that gave the count.

    The tensors whose shapes fit are loaded with strict=False, which reports the keys torch would refuse; only
    those, and shapes that differ, are errors. On an error the half-loaded model is dropped with the exception.
    """
    own = model.state_dict()
    given = len(state)
    state, chain = strip_prefixes(state, set(own), prefixes)
    after = f" after stripping {stripped_chain(chain)}" if chain else ""
    fix = "pass the architecture and --arch-kwargs the checkpoint was trained with"
    wrong = {k for k, v in state.items() if k in own and v.shape != own[k].shape}
    try:
        result = model.load_state_dict(keep_metadata({k: v for k, v in state.items() if k not in wrong}, state), strict=False)
    except RuntimeError as e:  # what the shape check cannot see, e.g. a dtype that cannot be copied
        raise InputError(f"{path}: weights do not load into {spec} ({first_line(e)})", fix=fix) from e
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
            f"{path}: weights do not fit {spec}{after}: {len(missing)} missing {plural(len(missing), 'key')}{few(missing)}, "
            f"{len(unexpected)} unexpected {plural(len(unexpected), 'key')}{few(unexpected)}",
            fix=fix,
        )
    if wrong:
        shapes = [f"{k}: checkpoint {shape(state[k])} vs model {shape(v)}" for k, v in own.items() if k in wrong]
        differ = f"{len(wrong)} {plural(len(wrong), 'tensor differs', 'tensors differ')} in shape{few(shapes)}"
        weights, built = infer_num_classes(state), infer_num_classes(own)
        if said is not None and weights is not None and built is not None and weights != built:
            wider = any(state[k].shape[1:] != own[k].shape[1:] for k in wrong)  # not the class count alone: a width too
            raise InputError(
                f"{path}: {said} says {built} classes, but the output layer of the weights has {weights}: {differ}",
                fix=f"drop {said} or make it {weights}" + (f"; other layers differ too: {fix}" if wider else ""),
            )
        fix = _input_channels_fix(spec, state, own, wrong) or fix
        if inferred is not None:
            fix += f"; num_classes={inferred} was inferred from the weights: set num_classes in --arch-kwargs if wrong"
        raise InputError(f"{path}: weights do not fit {spec}{after}: {differ}", fix=fix)
    if not chain:
        return []
    dropped = f", ignored {given - len(state)} keys outside it" if given > len(state) else ""
    return [f"stripped prefix {stripped_chain(chain)}{dropped}"]


def _input_channels_fix(spec: str, state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], wrong: set[str]) -> str | None:
    """The fix where a convolution differs only in taking 1 input channel against 3 (or 3 against 1): the network's
    first layer, made for grayscale images. "Pass the architecture the checkpoint was trained with" sent a user with
    the right one away: torchvision's ResNet-18 takes no argument for its input channels, and a grayscale one is
    built by replacing its first layer (`model.conv1 = nn.Conv2d(1, 64, ...)`)."""
    for key in wrong:
        got, built = state[key].shape, own[key].shape
        if len(got) >= 3 and len(got) == len(built) and {got[1], built[1]} == {1, 3} and got[:1] + got[2:] == built[:1] + built[2:]:
            return (
                f"its first layer takes {got[1]} input {plural(got[1], 'channel')} where {spec} as built takes {built[1]}: "
                f"set its input channels in --arch-kwargs (timm: in_chans={got[1]}; suscli.models: in_channels={got[1]}), or, "
                "where the layer was replaced after the network was built, pass a file.py:factory that builds it with that layer"
            )
    return None


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


def _stray_value(contents: object) -> tuple[str, object] | None:
    """The first value that keeps a mapping of mostly tensors from being a state dict: neither a tensor nor a record
    (an optimizer's state put beside the weights), where the mapping holds more tensors than such values."""
    if not isinstance(contents, Mapping) or not all(isinstance(k, str) for k in contents):
        return None
    strays = [k for k, v in contents.items() if not isinstance(v, torch.Tensor) and not is_record(v)]
    tensors = sum(isinstance(v, torch.Tensor) for v in contents.values())
    return (strays[0], contents[strays[0]]) if strays and tensors > len(strays) else None


def _describe(contents: object) -> str:
    name = type(contents).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"  # "an OrderedDict"
    if isinstance(contents, Mapping):
        if not contents:
            return "an empty dict"
        return f"{article} {name} with keys {shown([repr(k) for k in contents])}"
    return f"{article} {name}"
