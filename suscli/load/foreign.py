"""Checkpoints of kinds suscli cannot measure as they are, named for what they are, with the way to one it can.

A PEFT adapter holds the few weights it adds to a base model, not the model; torch.distributed.checkpoint's sharded
folder needs its `.metadata` unpickled; DeepSpeed's ZeRO-3 partitions the weights over its ranks' shards; an ONNX
graph is exported for inference and takes no gradient step. Each was "is a directory, not a checkpoint", "unknown
checkpoint type" or "a state dict holds no architecture", which named none of them. Everything here reads file
names and JSON only: nothing is unpickled.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from suscli.errors import InputError

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
    if path.is_dir():
        return _peft(path, path) or _dcp(path, path) or _deepspeed_folder(path)
    if is_onnx(path):
        return InputError(
            f"{path}: is an ONNX model, which suscli cannot measure: the measurement takes a gradient step on the "
            "model's weights, and an ONNX graph is exported for inference, without gradients",
            fix="score the PyTorch checkpoint it was exported from: its state dict with --arch, or a file suscli.save wrote",
        )
    if path.name in (*_PEFT_WEIGHTS, PEFT_CONFIG):
        return _peft(path.parent, path)
    if path.suffix == ".distcp" or path.name == _DCP_METADATA:
        return _dcp(path.parent, path)
    if match := DEEPSPEED_SHARD.match(path.name):
        return _deepspeed_shard(path, match.group(1))
    return None


def is_onnx(path: Path) -> bool:
    """An ONNX graph, by its name: a pool says it left one out, as a run's export beside its checkpoint."""
    return path.suffix.lower() == ".onnx" and not path.is_dir()


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
        f"{path}: {part}is a torch.distributed.checkpoint folder (FSDP's sharded save: {len(shards)} .distcp file(s) and "
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
