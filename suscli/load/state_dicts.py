"""Where a checkpoint's weights sit in what its file holds: the keys training scripts nest them under, the wrapper
prefixes on their names, and torch's `_metadata` beside them.

The loader (suscli.load.checkpoints) and the averaged copies (suscli.load.averages) both look for weights this way,
so a layout is unwrapped in one place.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from suscli.errors import shown

# Where training scripts nest the weights, plain weights first: an EMA copy is used only when it is all there is,
# or when asked for (ema=True, --ema).
# timm, torchvision's references, scripts beside model_state_dict or model; `shadow`: a hand-written EMA helper's
# {"decay": ..., "shadow": {name: tensor}}, often of the parameters alone. An SWA average: the SWA authors' train.py
# saves `swa_state_dict` beside `state_dict`; torch's docs name the AveragedModel `swa_model`.
SWA_KEYS = ("swa_state_dict", "swa_model")
EMA_KEYS = (
    "state_dict_ema", "model_ema", "ema_state_dict", "ema", "ema_model", "model_ema_state_dict", "ema_model_state_dict", "shadow", *SWA_KEYS
)  # fmt: skip
_WEIGHT_KEYS = ("state_dict", "model_state_dict", "model", "net", *EMA_KEYS, "module")  # module: DeepSpeed's model states
_EMA_FIRST = tuple(dict.fromkeys(EMA_KEYS + _WEIGHT_KEYS))
_WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.")  # DataParallel/DDP, torch.compile, Lightning
_MAX_NESTING = 3  # how deep find_state_dict looks for nested weights
_MAX_STACKED = 3  # how many wrapper prefixes strip_prefixes peels off one key


def find_state_dict(contents: object, ema: bool = False, depth: int = 0) -> tuple[dict[str, torch.Tensor], tuple[str, ...]] | None:
    """The weights and the keys they were nested under: a mapping of names to tensors, found by trying
    `_WEIGHT_KEYS` in order (EMA keys first with `ema`) at each level down to `_MAX_NESTING` levels."""
    if not isinstance(contents, Mapping) or not contents:
        return None
    tensors = {k: v for k, v in contents.items() if isinstance(v, torch.Tensor)}
    if tensors and all(isinstance(k, str) for k in contents) and all(k in tensors or is_record(v) for k, v in contents.items()):
        return keep_metadata(tensors, contents), ()  # records beside the tensors left out (records_beside)
    if depth == _MAX_NESTING:
        return None
    for key in _EMA_FIRST if ema else _WEIGHT_KEYS:
        found = find_state_dict(contents.get(key), ema, depth + 1)
        if found is not None:
            return found[0], (key, *found[1])
    return None


def is_record(value: object) -> bool:
    """A value a script put into a state dict beside the weights that is plainly none (`sd["epoch"] = 3`,
    `sd["classes"] = [...]`): a number, a name, None, or a list of them. model.load_state_dict refuses such keys as
    unexpected; suscli loads the tensors and reads the records as a file's records (the epoch)."""
    plain = (bool, int, float, str, type(None))
    return isinstance(value, plain) or (isinstance(value, (list, tuple)) and all(isinstance(v, plain) for v in value))


def records_beside(contents: object, where: tuple[str, ...]) -> list[str]:
    """The names of the records find_state_dict left out of the state dict it found under the keys `where`."""
    for key in where:
        contents = contents.get(key) if isinstance(contents, Mapping) else None
    if not isinstance(contents, Mapping):
        return []
    return sorted(k for k, v in contents.items() if not isinstance(v, torch.Tensor))


def keep_metadata(state: dict[str, torch.Tensor], source: Mapping[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
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


@dataclass(frozen=True)
class Stripped:
    """A prefix strip_prefixes took off the keys: off the front of every key, or (`inside`) a wrapper's name taken out
    of the keys that held it, which the notes and errors say, as the user would look for it in neither place."""

    prefix: str
    inside: bool = False


def strip_prefixes(
    state: dict[str, torch.Tensor], wanted: set[str], extra: tuple[str, ...] = ()
) -> tuple[dict[str, torch.Tensor], tuple[Stripped, ...]]:
    """Strip wrapper prefixes, possibly stacked (`module._orig_mod.`), when that brings the keys closer to `wanted`;
    also a first name all keys share (a wrapper module's attribute, `backbone.`).

    Keys outside a stripped prefix are dropped (a Lightning module may hold more than its `model.`), which is
    safe only because the model's own strict loading must then accept the result. `extra` adds prefixes a
    layout knows of (a LightningModule's attribute names). The candidate closest to `wanted` is returned, so a
    key-mismatch message shows the most useful difference. Where none fits, the wrappers' names are also taken
    out wherever keys hold them (unwrapped), and the prefixes tried again on what is left.
    """
    best, chain = _stripped(state, wanted, extra)
    if set(best) == wanted:
        return best, chain
    unwrapped, names = _unwrapped(state)
    if names:
        other, other_chain = _stripped(unwrapped, wanted, extra)
        if len(set(other) ^ wanted) < len(set(best) ^ wanted):
            return other, (*(Stripped(name, inside=True) for name in names), *other_chain)
    return best, chain


_WRAPPER_NAMES = ("module", "_orig_mod")  # the attribute DataParallel/DDP and torch.compile keep the wrapped module in


def wrapped_module(model: nn.Module) -> nn.Module:
    """The module that torch.compile, DataParallel or DistributedDataParallel wraps, however deeply: the one whose
    parameters and state dict keys are the architecture's own (the wrappers add `_orig_mod.` and `module.`)."""
    while True:
        if isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        elif isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        else:
            return model


def stripped_chain(chain: tuple[Stripped, ...]) -> str:
    """The prefixes strip_prefixes took off, as a note or an error names them: 'module.' + '_orig_mod.'."""
    return " + ".join(f"{p.prefix!r}{' where keys had it' if p.inside else ''}" for p in chain)


def _unwrapped(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """`state` with the wrappers' names taken out of every key that holds one, at any depth: a part of the model
    compiled or wrapped on its own (`model.backbone = torch.compile(model.backbone)` saves `backbone._orig_mod.0.weight`
    beside `head.weight`), or a state dict whose keys only some carry `module.`. Also the names taken out, in the
    order met; none where that would give two keys one name."""
    names: dict[str, None] = {}

    def unwrap(key: str) -> str:
        parts = key.split(".")
        kept = [p for p in parts[:-1] if p not in _WRAPPER_NAMES]
        names.update(dict.fromkeys(f"{p}." for p in parts[:-1] if p in _WRAPPER_NAMES))
        return ".".join([*kept, parts[-1]])

    out = {unwrap(k): v for k, v in state.items()}
    if not names or len(out) < len(state):
        return state, ()
    metadata = getattr(state, "_metadata", None)
    if isinstance(metadata, Mapping):
        kept = OrderedDict(out)
        kept._metadata = {".".join(p for p in k.split(".") if p not in _WRAPPER_NAMES): v for k, v in metadata.items()}  # type: ignore[attr-defined]
        return kept, tuple(names)
    return out, tuple(names)


def _stripped(
    state: dict[str, torch.Tensor], wanted: set[str], extra: tuple[str, ...]
) -> tuple[dict[str, torch.Tensor], tuple[Stripped, ...]]:
    """The candidate of stacked wrapper prefixes stripped off `state`'s keys closest to `wanted` (strip_prefixes)."""
    best, best_diff = state, len(set(state) ^ wanted)
    best_chain: tuple[Stripped, ...] = ()
    frontier: list[tuple[dict[str, torch.Tensor], tuple[Stripped, ...]]] = [(state, ())]
    prefixes = _WRAPPER_PREFIXES + tuple(p for p in extra if p not in _WRAPPER_PREFIXES)
    for _ in range(_MAX_STACKED):
        if best_diff == 0:
            break
        next_frontier = []
        for candidate, chain in frontier:
            for prefix in (*prefixes, *_shared_attribute(candidate, prefixes)):
                stripped = {k[len(prefix) :]: v for k, v in candidate.items() if k.startswith(prefix)}
                if not stripped:
                    continue
                stripped = keep_metadata(stripped, candidate, prefix)
                diff = len(set(stripped) ^ wanted)
                longer = (*chain, Stripped(prefix))
                if diff < best_diff:
                    best, best_chain, best_diff = stripped, longer, diff
                next_frontier.append((stripped, longer))
        frontier = next_frontier
    return best, best_chain


def _shared_attribute(state: Mapping[str, torch.Tensor], known: tuple[str, ...]) -> tuple[str, ...]:
    """The first name of every key, where all share it (a script's wrapper module holding the whole network as
    `self.backbone`): a prefix like the wrappers', tried only where nothing of the network would be left outside it."""
    head = next(iter(state), "").partition(".")[0] + "."
    if head == "." or head in known or not all(k.startswith(head) and len(k) > len(head) for k in state):
        return ()
    return (head,)


def nested_module(contents: object, ema: bool) -> tuple[str, nn.Module] | None:
    """A whole model a training script pickled into its checkpoint dict, and its key, tried as weights are
    (`_WEIGHT_KEYS`, EMA keys first with `ema`); None when the file holds a state dict or nothing such. With `ema`,
    an EMA copy pickled whole wins over plain weights saved as a state dict beside it."""
    if not isinstance(contents, Mapping):
        return None
    found = find_state_dict(contents, ema)
    if found is None:
        keys = _EMA_FIRST if ema else _WEIGHT_KEYS
    elif ema and not any(k in EMA_KEYS for k in found[1]):
        keys = EMA_KEYS
    else:
        return None
    return next(((k, v) for k in keys if isinstance(v := contents.get(k), nn.Module)), None)


def few(items: list[str], n: int = 3) -> str:
    """' (a, b, c, ...)' after a count in a message; '' for none."""
    return f" ({shown(items, n)})" if items else ""


def shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) if t.ndim else "scalar"


def weights_sha256(model: nn.Module) -> str | None:
    """SHA-256 of the weights `model` holds as loaded: each entry of its state dict (buffers too), by name, with its
    dtype, shape and bytes. The same weights saved as a .pt and a .safetensors, saved again, or beside an optimizer
    differ in their files' bytes but not in this, which tells a pool's copies apart from its models
    (suscli.judge.regions.first_of). None where an entry is no plain tensor (a quantized module's packed
    parameters): the file's own hash then decides alone."""
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        if not isinstance(value, torch.Tensor) or value.is_quantized or value.layout != torch.strided or value.is_meta:
            return None
        digest.update(f"{name}\0{value.dtype}\0{tuple(value.shape)}\n".encode())
        digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
