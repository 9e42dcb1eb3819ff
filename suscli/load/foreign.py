"""Checkpoints of kinds suscli cannot measure as they are, named for what they are, with the way to one it can.

A PEFT adapter holds the few weights it adds to a base model, not the model; torch.distributed.checkpoint's sharded
folder needs its `.metadata` unpickled; DeepSpeed's ZeRO-3 partitions the weights over its ranks' shards; an ONNX
graph is exported for inference and takes no gradient step; Keras, HDF5 and TensorFlow files are another
framework's. Each was "is a directory, not a checkpoint", "unknown checkpoint type" or "a state dict holds no
architecture", which named none of them. Everything here reads file names, JSON and an .h5's first bytes only:
nothing is unpickled.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from suscli.errors import InputError, plural

PEFT_CONFIG = "adapter_config.json"
_PEFT_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
_DCP_METADATA = ".metadata"
_DCP_CONVERT = "python -m torch.distributed.checkpoint.format_utils dcp_to_torch"
DEEPSPEED_MODEL = "mp_rank_00_model_states.pt"
# ZeRO's shards: the optimizer's state (bf16_ first with its BF16 optimizer) and, with ZeRO-3, the model's own, whose
# weights are partitioned away (deepspeed's engine names them so); ZeRO-1/2's model is the whole mp_rank_NN file.
DEEPSPEED_SHARD = re.compile(r"^(?:bf16_)?zero_pp_rank_\d+_mp_rank_\d+_(optim|model)_states\.pt$")


def refusal(path: Path) -> InputError | None:
    """Why the file or folder at `path` is a checkpoint suscli cannot measure as it is, and what to do; None where it
    is none of these."""
    if (kind := export_kind(path)) is not None:
        return InputError(f"{path}: is {EXPORTS[kind].one}, which suscli cannot measure: {EXPORTS[kind].why}", fix=EXPORTS[kind].fix)
    if path.is_dir():
        return _peft(path, path) or _dcp(path, path) or _deepspeed_folder(path)
    if path.name in (*_PEFT_WEIGHTS, PEFT_CONFIG):
        return _peft(path.parent, path)
    if path.suffix == ".distcp" or path.name == _DCP_METADATA:
        return _dcp(path.parent, path)
    if match := DEEPSPEED_SHARD.match(path.name):
        return _deepspeed_shard(path, match.group(1))
    return None


@dataclass(frozen=True)
class Export:
    """A kind of model file suscli cannot measure: how its error says so (one file), and how a pool's stderr line
    does (several, left out)."""

    one: str  # "an ONNX model"
    why: str
    fix: str
    unit: str  # "ONNX model", counted: "1 ONNX model", "2 ONNX models"
    pool_why: str
    pool_fix: str


_TORCH_FIX = "its state dict with --arch, or a file suscli.save wrote"
_PYTORCH = "suscli measures PyTorch models"
EXPORTS = {
    "ONNX": Export(
        "an ONNX model",
        "the measurement takes a gradient step on the model's weights, and an ONNX graph is exported for inference, without gradients",
        f"score the PyTorch checkpoint it was exported from: {_TORCH_FIX}",
        "ONNX model",
        "suscli cannot measure an ONNX graph, exported for inference without gradients",
        "score the PyTorch checkpoint each was exported from",
    ),
    "Keras": Export(
        "a Keras model",
        f"{_PYTORCH}, and this is Keras's format",
        f"score the model's PyTorch checkpoint: {_TORCH_FIX}",
        "Keras model",
        _PYTORCH,
        "score each model's PyTorch checkpoint",
    ),
    "HDF5": Export(
        "an HDF5 file (Keras's and TensorFlow's format for models and weights)",
        _PYTORCH,
        f"score the model's PyTorch checkpoint: {_TORCH_FIX}",
        "HDF5 file",
        f"{_PYTORCH}, and HDF5 is Keras's and TensorFlow's format",
        "score each model's PyTorch checkpoint",
    ),
    "TensorFlow": Export(
        "a TensorFlow SavedModel",
        f"{_PYTORCH}, and this is TensorFlow's format",
        f"score the model's PyTorch checkpoint: {_TORCH_FIX}",
        "TensorFlow model",
        _PYTORCH,
        "score each model's PyTorch checkpoint",
    ),
}
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def export_kind(path: Path) -> str | None:
    """The EXPORTS kind of a model file suscli cannot measure, by its name (and an .h5's first bytes): an ONNX graph,
    a Keras `.keras` archive, an HDF5 file as Keras's `model.save("m.h5")` writes, a TensorFlow SavedModel's
    `saved_model.pb` (or its folder). Each was "unknown checkpoint type" or "is a directory, not a checkpoint", and a
    pool left them out without a word. None for anything else."""
    if path.is_dir():
        return "TensorFlow" if (path / "saved_model.pb").is_file() else None
    suffix = path.suffix.lower()
    if suffix in (".onnx", ".keras"):
        return "ONNX" if suffix == ".onnx" else "Keras"
    if path.name == "saved_model.pb":
        return "TensorFlow"
    if suffix in (".h5", ".hdf5"):
        try:
            with open(path, "rb") as f:
                return "HDF5" if f.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE else None
        except OSError:
            return None
    return None


def _peft(folder: Path, path: Path) -> InputError | None:
    """A PEFT adapter, as `save_pretrained` of a PeftModel writes it: adapter_config.json beside adapter_model.*. Its
    config, given itself, is named as part of the adapter: it holds no weights at all."""
    config_file = folder / PEFT_CONFIG
    if not config_file.is_file() or not any((folder / name).is_file() for name in _PEFT_WEIGHTS):
        return None
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        config = {}
    config = config if isinstance(config, dict) else {}
    kind, base = config.get("peft_type"), config.get("base_model_name_or_path")
    kind = f" ({kind})" if isinstance(kind, str) and kind else ""
    named = isinstance(base, str) and base
    part = f"is part of {folder}, which " if path.name == PEFT_CONFIG else ""
    return InputError(
        f"{path}: {part}is a PEFT adapter{kind}{f' for {base}' if named else ''}, not a model: it holds only the weights the adapter "
        "adds to its base model",
        fix=f"merge it and save the whole model: PeftModel.from_pretrained(AutoModelForImageClassification.from_pretrained("
        f"'{base if named else 'BASE'}'), '{folder}').merge_and_unload().save_pretrained('merged'), with the base model's image "
        "processor saved there too, then score merged",
    )


def _dcp(folder: Path, path: Path) -> InputError | None:
    """A torch.distributed.checkpoint folder (FSDP's sharded save): `.metadata`, a pickle, beside `*.distcp` shards."""
    shards = sorted(folder.glob("*.distcp"))
    if not (folder / _DCP_METADATA).is_file() or not shards:
        return None
    part = "" if path == folder else f"is part of {folder}, which "
    return InputError(
        f"{path}: {part}is a torch.distributed.checkpoint folder (FSDP's sharded save: {len(shards)} .distcp {plural(len(shards), 'file')} and "
        f".metadata), which suscli does not read: its .metadata is a pickle, and suscli unpickles nothing a checkpoint brings",
        fix=f"convert it into one file with torch's own tool, if you trust it: {_DCP_CONVERT} {folder} model.pt, then score model.pt",
    )


def _deepspeed_folder(path: Path) -> InputError | None:
    """A DeepSpeed save_checkpoint folder (`latest` naming its `global_stepN/`), or one of its `global_stepN/`: its
    model is a file inside, which the folder's error names."""
    tag = path / "latest"
    step = path / tag.read_text(encoding="utf-8", errors="replace")[:200].strip() if tag.is_file() else path
    if (step / DEEPSPEED_MODEL).is_file():
        return InputError(f"{path}: is a DeepSpeed checkpoint folder, not a checkpoint", fix=f"score its model, {step / DEEPSPEED_MODEL}")
    shard = next((f for f in sorted(step.glob("*_model_states.pt")) if DEEPSPEED_SHARD.match(f.name)), None) if step.is_dir() else None
    return _deepspeed_shard(shard, "model") if shard is not None else None


def _deepspeed_shard(path: Path, kind: str) -> InputError:
    """A ZeRO shard: the optimizer's state, or ZeRO-3's partitioned model, neither a whole model."""
    whole = path.parent / DEEPSPEED_MODEL
    if kind == "optim" and whole.is_file():
        return InputError(f"{path}: is DeepSpeed's optimizer state (a ZeRO shard), not a model", fix=f"score the model beside it, {whole}")
    root = path.parent.parent
    what = "optimizer state (a ZeRO shard)" if kind == "optim" else "ZeRO-3 model states, whose weights are partitioned over the ranks"
    return InputError(
        f"{path}: is DeepSpeed's {what}, not a whole model",
        fix=f"gather the weights with the script DeepSpeed saves beside them: python {root / 'zero_to_fp32.py'} {root} fp32 "
        "(see its --help), then score what it writes with --arch",
    )
