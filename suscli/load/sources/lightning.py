"""Lightning: the `.ckpt` files a `Trainer.fit` writes with ModelCheckpoint (`epoch=N-step=M.ckpt`, `last.ckpt`),
holding the LightningModule's `state_dict` (the model under its attribute, `model.`, `net.` or the like), `epoch`
and `hyper_parameters` (what the module's `save_hyperparameters()` recorded).

The hyper-parameters name the architecture when one of `arch`, `architecture`, `model_name`, `backbone` or
`model` is a string: a suscli spec as it is, or a bare name that exactly one of torchvision's and timm's
registries defines. Reading these files needs no Lightning: they are torch files of plain data, and hyper-parameters
that are an OmegaConf DictConfig (a Hydra-configured project's) are read as plain data too (suscli.load.configs), without
omegaconf.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import torch

from suscli.errors import InputError
from suscli.load import configs
from suscli.load.sources.interface import Arch, Found, Layout, epoch_number, plain_records, whole

# An attribute holding an EMA copy of the network under its `module.` (torch's AveragedModel, timm's ModelEma*), or
# as a plain copy of another attribute's network: `ema_model`, `model_ema`, `ema`, `net_ema`. ema-pytorch's `EMA`, under any name, holds its copy under `ema_model.` instead.
_EMA_NAME = re.compile(r"(^|_)ema(_|\.)")
_EMA_PYTORCH = "ema_model."
# Lightning's WeightAveraging callbacks (EMAWeightAveraging among them) save the average as the `state_dict` and
# move the network's own weights to `current_model_state`.
_CURRENT = "current_model_state"
# StochasticWeightAveraging keeps its average in its own callback state, under a key that starts with its class name.
_SWA = "StochasticWeightAveraging"
_NAME_KEYS = ("arch", "architecture", "model_name", "backbone", "model")
_SOURCE = "Lightning checkpoint"


def recognize(path: Path, contents: object) -> Found | None:
    if not isinstance(contents, Mapping) or "pytorch-lightning_version" not in contents:
        return None
    state = contents.get("state_dict")
    keys = [k for k in state if isinstance(k, str) and "." in k] if isinstance(state, Mapping) else []
    prefixes = tuple(sorted({k.split(".", 1)[0] + "." for k in keys}))
    ema = next((p for p in prefixes if _EMA_NAME.search(p) and (any(k.startswith(p + "module.") for k in keys) or _copy(p, keys))), None)
    if ema is None and (ema := next((p for p in prefixes if _ema_pytorch(p, keys)), None)):  # the copy is under its `ema_model.`
        ema, prefixes = ema + _EMA_PYTORCH, (*prefixes, _EMA_PYTORCH)
    found = Found("Lightning", prefixes=prefixes, ema_prefix=ema)
    if isinstance(contents.get(_CURRENT), Mapping) and "averaging_state" in contents:  # WeightAveraging's, EMAWeightAveraging's
        found.averaged = (_CURRENT, "state_dict")
    found.swa = _swa(contents.get("callbacks"))
    hparams = configs.plain(contents.get("hyper_parameters"))  # a Hydra run's is an OmegaConf DictConfig
    if not isinstance(hparams, Mapping):
        return found
    name = next((hparams[k].strip() for k in _NAME_KEYS if isinstance(hparams.get(k), str) and hparams[k].strip()), None)
    if name:
        found.arch = _arch(name)
    if whole(hparams.get("num_classes")):
        found.meta["num_classes"] = hparams["num_classes"]
    return found


def _copy(prefix: str, keys: list[str]) -> bool:
    """Whether the attribute under `prefix` holds the same keys as another attribute: a copy of that network, as a
    module that updates its own EMA copy (`self.net_ema = copy.deepcopy(self.net)`) keeps it."""
    under = {k[len(prefix) :] for k in keys if k.startswith(prefix)}
    others = {k.split(".", 1)[0] + "." for k in keys} - {prefix}
    return any({k[len(other) :] for k in keys if k.startswith(other)} == under for other in others)


def _swa(callbacks: object) -> tuple[str, int] | None:
    """The key of StochasticWeightAveraging's state under `callbacks` and how many epochs its `average_model_state`
    holds (0 before its first epoch: the average is then the network as it was when training began)."""
    if not isinstance(callbacks, Mapping):
        return None
    for key, state in callbacks.items():
        if (
            isinstance(key, str)
            and key.startswith(_SWA)
            and isinstance(state, Mapping)
            and isinstance(state.get("average_model_state"), Mapping)
        ):
            count: object = state.get("n_averaged")  # an int in today's Lightning; AveragedModel's own buffer is a tensor
            if isinstance(count, torch.Tensor) and count.ndim == 0:
                count = count.item()
            return key, whole(count) or 0
    return None


def _ema_pytorch(prefix: str, keys: list[str]) -> bool:
    """Whether the attribute under `prefix` is ema-pytorch's `EMA`: its `initted` counter beside its `ema_model.`
    copy of the network (with the network it follows under `online_model.`, the module's own network again)."""
    return prefix + "initted" in keys and any(k.startswith(prefix + _EMA_PYTORCH) for k in keys)


def _arch(name: str) -> Arch:
    """A spec as it is; a bare name resolved in the one registry that has it, or refused (if it would be used)."""
    if ":" in name:
        return Arch(name, _SOURCE)
    import torchvision.models

    timm = _timm()
    registries = [
        r
        for r, has in (("torchvision", name in torchvision.models.list_models()), ("timm", timm is not None and timm.is_model(name)))
        if has
    ]
    if len(registries) == 1:
        return Arch(f"{registries[0]}:{name}", _SOURCE)
    if registries:
        refused = InputError(
            f"its hyper_parameters name the architecture {name!r}, which both torchvision and timm define",
            fix=f"pass --arch torchvision:{name} or --arch timm:{name}",
        )
    else:
        missing = "" if timm else " (timm is not installed: pip install 'suscli[timm]')"
        refused = InputError(
            f"its hyper_parameters name the architecture {name!r}, which neither torchvision nor timm defines{missing}",
            fix="pass --arch with the architecture it was trained with",
        )
    return Arch(name, _SOURCE, refused=refused)


def _timm() -> ModuleType | None:
    try:
        import timm
    except ImportError:
        return None
    return timm


# Where in its epoch ModelCheckpoint saved a file, from the fit loop's batch counters (save_point).
END, LAST_BATCH, MID_EPOCH = "end", "last batch", "mid-epoch"


def save_point(path: Path) -> str | None:
    """Where in its epoch a Lightning checkpoint was saved, told by the fit loop's batch progress it records:
    END after the epoch's last batch completed (ModelCheckpoint's per-epoch save, at the end of the training epoch
    or of its validation); LAST_BATCH at the end of the last batch, before the epoch ended (an
    `every_n_train_steps` or `train_time_interval` save whose weights are the epoch's end weights all the same);
    MID_EPOCH during the epoch. Lightning 2.x names every such file `epoch=E-step=S` alike. None for a file
    without these records. Reads the small pickle of the torch zip, never its tensors."""
    progress = _progress(path)
    if not isinstance(progress, Mapping) or not isinstance(progress.get("is_last_batch"), bool):
        return None
    if not progress["is_last_batch"]:
        return MID_EPOCH
    current = progress.get("current")
    if isinstance(current, Mapping) and isinstance(current.get("completed"), int) and current["completed"] == current.get("ready"):
        return END
    return LAST_BATCH


def recorded_epoch(path: Path) -> int | None:
    """The `epoch` a Lightning checkpoint records (the trainer's current epoch when it was saved), read as
    save_point reads its counters; None for other files."""
    return epoch_number(_records(path).get("epoch"))


def recorded_step(path: Path) -> int | None:
    """The `global_step` a Lightning checkpoint records (optimizer steps taken when it was saved), read as
    save_point reads its counters; None for other files."""
    step = _records(path).get("global_step")
    return step if isinstance(step, int) and not isinstance(step, bool) and step >= 0 else None


def _progress(path: Path) -> object:
    """`loops.fit_loop["epoch_loop.batch_progress"]` of a Lightning checkpoint, or None."""
    loops = _records(path).get("loops")
    fit = loops.get("fit_loop") if isinstance(loops, Mapping) else None
    return fit.get("epoch_loop.batch_progress") if isinstance(fit, Mapping) else None


def _records(path: Path) -> Mapping:
    """The plain data of a Lightning checkpoint without its tensors; empty for other files."""
    contents = plain_records(path)
    return contents if "pytorch-lightning_version" in contents else {}


LAYOUT = Layout("Lightning", recognize, epoch=recorded_epoch)
