"""Averaged weights a checkpoint holds beside its plain ones: EMA copies and SWA averages, in each tool's layout.

The plain weights are measured unless the averaged ones are asked for (ema=True, --ema) or are all the file holds;
the notes say which were used, and name an average beside the plain weights that --ema would measure instead.
Layouts: an EMA key (timm's `state_dict_ema`, torchvision's `model_ema`, an EMA helper's `shadow`, an SWA
`swa_state_dict`), ema-pytorch's `ema_model.`, torch_ema's and diffusers' unnamed averages of the parameters, a
LightningModule's own copy, and the averages of Lightning's WeightAveraging and StochasticWeightAveraging.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import torch
from torch import nn

from suscli.errors import InputError, first_line
from suscli.load.safe_read import CORRUPT_FIX
from suscli.load.state_dicts import EMA_KEYS, SWA_KEYS, few, find_state_dict, keep_metadata, shape, strip_prefixes

_SHADOW = "shadow"  # a hand-written EMA helper's key, one of EMA_KEYS: {"decay": ..., "shadow": {name: tensor}}
_EMA_PYTORCH, _EMA_PYTORCH_ONLINE = "ema_model.", "online_model."  # ema-pytorch's EMA: the EMA copy, the network it follows


def ema_notes(where: tuple[str, ...], ema: bool, contents: object = None, keys: Collection[str] = ()) -> list[str]:
    """Which weights were used, when they are not the plain ones or when EMA weights were asked for (an EMA key in
    `where`, or the `keys` of an AveragedModel's state dict); and, when the plain ones were used by default, the EMA
    weights beside them in `contents` that --ema would measure instead (a timm or torchvision reference run's: the
    EMA copy is often the one a run keeps as its best)."""
    why = "--ema" if ema else "the file holds no plain model weights"
    if any(k in EMA_KEYS for k in where):
        return [f"using {_averaged_kind(where)} from {'/'.join(where)!r}: {why}"]
    if "n_averaged" in keys and any(k.startswith("module.") for k in keys):  # torch's AveragedModel (EMA or SWA)
        return [f"using the averaged weights of an AveragedModel (under 'module.', beside 'n_averaged'): {why}"]
    if ema and keys and all(k.startswith("module.") for k in keys):  # DataParallel's, or timm's ModelEmaV2/V3 saved alone
        return [
            "--ema: the file holds one set of weights, under 'module.' (as DataParallel saves a model, and timm's ModelEmaV2/V3 its EMA copy); they were used"
        ]
    if ema:
        return ["--ema: the file holds no EMA weights; its plain weights were used"]
    beside = next((k for k in EMA_KEYS if isinstance(contents, Mapping) and _ema_loadable(contents.get(k))), None)
    return [ema_beside(beside)] if beside else []


def _ema_loadable(value: object) -> bool:
    """Whether --ema would measure what an EMA key holds: a model pickled whole, or weights find_state_dict finds
    (not, say, an EMA helper's decay and step count alone)."""
    return isinstance(value, nn.Module) or find_state_dict(value, ema=True) is not None


def _averaged_kind(where: tuple[str, ...]) -> str:
    """What a note calls the averaged copy under `where`: an SWA average is no exponential moving average."""
    return "SWA weights" if any(k in SWA_KEYS for k in where) else "EMA weights"


def ema_beside(where: str) -> str:
    """The note on plain weights measured by default from a file that also holds an EMA copy, under `where`."""
    return f"the file also holds {_averaged_kind((where,))} under {where!r}: --ema would measure them"


def module_ema(state: dict[str, torch.Tensor], prefix: str, ema: bool) -> tuple[dict[str, torch.Tensor], str]:
    """With `ema`, the EMA copy a module keeps under `prefix` beside its network (a LightningModule's
    `ema_model.module.*`), else the state as it is; and a note that says which was used."""
    if not ema:
        return state, ema_beside(prefix)
    return keep_metadata({k: v for k, v in state.items() if k.startswith(prefix)}, state), f"using EMA weights under {prefix!r}: --ema"


def averaged(path: Path, contents: object, keys: tuple[str, str], ema: bool) -> tuple[dict[str, torch.Tensor], str]:
    """The plain weights, or with `ema` the averaged ones, of a file whose tool keeps them under `keys` (Lightning's
    WeightAveraging: the average as `state_dict`, the network's own weights as `current_model_state`)."""
    plain, averaged = keys
    key = averaged if ema else plain
    found = find_state_dict(contents.get(key)) if isinstance(contents, Mapping) else None
    if found is None:
        raise InputError(f"{path}: holds no state dict under {key!r}", fix=CORRUPT_FIX)
    if ema:
        return found[0], f"using the averaged weights from {averaged!r} (Lightning's WeightAveraging): --ema"
    why = f"(Lightning's WeightAveraging; the plain weights are its {plain!r})"
    return found[0], f"the file also holds averaged weights under {averaged!r} {why}: --ema would measure them"


def swa_average(path: Path, contents: object, key: str, epochs: int, ema: bool) -> tuple[dict[str, torch.Tensor] | None, str | None]:
    """With `ema`, the `average_model_state` that Lightning's StochasticWeightAveraging keeps under `callbacks`/`key`
    (None before it has averaged an epoch: it is then the network as training began); and a note on the weights used."""
    name = "Lightning's StochasticWeightAveraging"
    average = f"the average of {name} over {epochs} epoch{'s' if epochs != 1 else ''}"
    if not ema:
        return None, f"the file also holds {average}: --ema would measure it" if epochs else None
    if not epochs:
        return None, f"--ema: {name} has averaged no epoch yet; its plain weights were used"
    saved = contents.get("callbacks", {}).get(key, {}) if isinstance(contents, Mapping) else {}
    found = find_state_dict(saved.get("average_model_state"))
    if found is None:
        raise InputError(f"{path}: holds no state dict under callbacks/{key!r}/'average_model_state'", fix=CORRUPT_FIX)
    return found[0], f"using {average} (its parameters; the buffers, BatchNorm statistics among them, from 'state_dict'): --ema"


def swa_parameters(path: Path, spec: str, model: nn.Module, average: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> None:
    """Put StochasticWeightAveraging's averaged parameters into the model loaded with the module's own weights, as its
    `transfer_weights` does: the buffers it keeps are the network's as training began (Lightning re-estimates
    BatchNorm's statistics only after the last epoch, in the module), so the module's own are kept."""
    own = dict(model.named_parameters())
    stripped, _ = strip_prefixes(average, set(model.state_dict()), prefixes)
    wrong = [k for k, p in own.items() if k not in stripped or stripped[k].shape != p.shape]
    if wrong:
        raise InputError(
            f"{path}: the average of StochasticWeightAveraging does not fit {spec}: {len(wrong)} parameters missing or of "
            f"another shape{few(wrong)}",
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
        raise InputError(f"{failure} ({first_line(e)})", fix=CORRUPT_FIX) from e


# torch_ema's ExponentialMovingAverage, and diffusers' EMAModel after it, keep no names: their state dict holds the averages
# of the parameters they were given (`model.parameters()`), in their order, and no buffers. diffusers' counts its
# `optimization_step`, torch_ema its `num_updates`.
SHADOW_NOTE = "using EMA weights from {!r} ({}'s averages of the parameters, the buffers from {!r})"


def torch_ema(contents: object, where: tuple[str, ...]) -> tuple[str, list[torch.Tensor], str] | None:
    """The key, the `shadow_params` and the library of torch_ema's `ExponentialMovingAverage.state_dict()` or diffusers'
    `EMAModel.state_dict()` saved beside the plain weights found under `where`; None when the file holds none."""
    if not isinstance(contents, Mapping) or any(k in EMA_KEYS for k in where):
        return None
    return next(((key, *found) for key in EMA_KEYS if (found := shadow_params(contents.get(key))) is not None), None)


def shadow_params(saved: object) -> tuple[list[torch.Tensor], str] | None:
    """The `shadow_params` of torch_ema's or diffusers' EMA state dict, and the library that wrote it; None for anything else."""
    if not isinstance(saved, Mapping):
        return None
    shadow = saved.get("shadow_params")
    if not isinstance(shadow, list) or not shadow or not all(isinstance(t, torch.Tensor) for t in shadow):
        return None
    return shadow, "diffusers' EMAModel" if "optimization_step" in saved else "torch_ema"


def shadow_filled(contents: object, shadow: dict[str, torch.Tensor], where: tuple[str, ...]) -> tuple[dict[str, torch.Tensor], str] | None:
    """An EMA helper's `shadow` found under `where` that names only some of the plain weights beside it (helpers
    written by hand often copy `named_parameters()` and leave the buffers): the plain weights with the shadow's
    tensors in their place, as the helper's own `apply_shadow` does, and a note; None when it is not that."""
    if not where or where[-1] != _SHADOW:
        return None
    plain = find_state_dict(contents)
    if plain is None or any(k in EMA_KEYS for k in plain[1]) or not set(shadow) < set(plain[0]):
        return None
    rest = len(plain[0]) - len(shadow)
    filled = keep_metadata({**plain[0], **shadow}, plain[0])
    return (
        filled,
        f"using EMA weights from {'/'.join(where)!r} (an EMA helper's shadow copies; the {rest} tensors it lacks from {'/'.join(plain[1])!r}): --ema",
    )


def copy_shadow(path: Path, spec: str, model: nn.Module, key: str, shadow: list[torch.Tensor], tool: str) -> None:
    """Put torch_ema's (or diffusers') averages into the model's parameters as its `copy_to(model.parameters())` does, after
    checking what its zip would not: one average of the same shape for each parameter."""
    params = list(model.named_parameters())
    wrong = next((f"{name}: average {shape(s)} vs model {shape(p)}" for (name, p), s in zip(params, shadow) if p.shape != s.shape), None)
    if len(params) != len(shadow) or wrong:
        raise InputError(
            f"{path}: the EMA averages under {key!r} ({tool}) do not fit {spec}: "
            + (f"{len(shadow)} averages for {len(params)} parameters" if len(params) != len(shadow) else f"first shape differs at {wrong}"),
            fix=f"{tool} keeps the parameters it was given in order: pass the architecture whose parameters() they were, or leave out --ema",
        )
    _copy_parameters(
        [(p, s) for (_, p), s in zip(params, shadow)], f"{path}: the EMA averages under {key!r} ({tool}) do not load into {spec}"
    )


def ema_pytorch(state: dict[str, torch.Tensor], where: tuple[str, ...], ema: bool) -> tuple[dict[str, torch.Tensor], str] | None:
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
        note = ema_beside(under)
    else:
        note = f"using EMA weights under {under!r}: {'--ema' if ema else 'the file holds no plain model weights'}"
    return keep_metadata(picked, state, prefix), note
