"""timm: the checkpoints its train.py writes through timm.utils.CheckpointSaver (`checkpoint-N.pth.tar`,
`last.pth.tar`, `model_best.pth.tar`: `state_dict`, `state_dict_ema`, `epoch`, `arch` and the run's `args`, an
argparse.Namespace) with `args.yaml` beside them, and the preprocessing a `timm:NAME` architecture implies.

The model is rebuilt the way train.py built it (`create_model(args.model, in_chans, num_classes, global_pool,
bn_eps, **args.model_kwargs)`, never pretrained); drop rates are left out, since they change no weight. The
preprocessing is timm's data config, `resolve_data_config(args, model=model)`: the run's `input_size`/`img_size`,
`mean`, `std` and `crop_pct`, else the model's own defaults. Class names come from the run's `--class-map` text
file (one name per line, line i naming class i), where it can still be found.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from suscli.data.images import INTERPOLATIONS, SQUARE_ONLY
from suscli.data.labels import AS_STRINGS, BY_NAME, NATURAL
from suscli.errors import InputError
from suscli.load.sources.interface import Arch, Folder, Found, Layout, epoch_number, numbers, plain_records, recorded_args, whole


# The weight files timm's save_for_hf (and push_to_hub) writes beside its config.json, safetensors first.
_HUB_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def folder(path: Path) -> Folder | None:
    """A folder timm's `save_for_hf`/`push_to_hub` wrote: config.json naming the `architecture` (no transformers
    `model_type`), and the weights."""
    config = _hub_config(path)
    weights = next((path / n for n in _HUB_WEIGHTS if (path / n).is_file()), None)
    if config is None or weights is None:
        return None
    return Folder(path, [weights], [path / "config.json", weights])


def _hub_config(path: Path) -> dict[str, Any] | None:
    """config.json as timm writes it for the Hub, or None (absent, unreadable, or another library's)."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(config, dict) or "model_type" in config or not isinstance(config.get("architecture"), str):
        return None
    return config


def _recognize_hub(path: Path) -> Found | None:
    """The model as timm's load_model_config_from_hf rebuilds it: create_model(architecture, **model_args) with the
    config's num_classes; the preprocessing from its pretrained_cfg; class names from label_names."""
    config = _hub_config(path) if folder(path) is not None else None
    if config is None:
        return None
    notes: list[str] = []
    cfg = config.get("pretrained_cfg")
    found = Found("timm", meta=data_config(cfg if isinstance(cfg, Mapping) else {}, notes), notes=notes)
    kwargs = dict(config["model_args"]) if isinstance(config.get("model_args"), Mapping) else {}
    if whole(config.get("num_classes")):
        kwargs["num_classes"] = found.meta["num_classes"] = config["num_classes"]
    found.arch = Arch(f"timm:{config['architecture']}", "config.json", kwargs=kwargs)
    labels = config.get("label_names")
    if isinstance(labels, list) and labels and all(isinstance(n, str) for n in labels) and len(labels) == kwargs.get("num_classes"):
        found.meta.update(classes=labels, classes_source="config.json's label_names")
    return found


def _saver_layout(contents: Mapping) -> bool:
    """Whether a checkpoint's contents (or its records) are laid out as timm's CheckpointSaver writes them: the model's
    name under `arch` beside its `state_dict`."""
    return isinstance(contents.get("arch"), str) and "state_dict" in contents


def recognize(path: Path, contents: object) -> Found | None:
    if contents is None and path.is_dir():
        return _recognize_hub(path)
    if not isinstance(contents, Mapping):
        return None
    if _saver_layout(contents):
        args, source = recorded_args(contents.get("args")), "timm checkpoint"
        if args is None:
            args, source = _args_yaml(path.parent), "args.yaml"
        if args is None:  # without its args CheckpointSaver's `arch` is the model's class name ('resnet'), and PyTorch's
            return None  # ImageNet example saves these keys with a torchvision model's name: neither names timm:ARCH
    elif contents and all(isinstance(v, torch.Tensor) for v in contents.values()):  # weights alone (clean_checkpoint.py)
        args, source = _args_yaml(path.parent), "args.yaml"
        if not (args and isinstance(args.get("model"), str) and "opt" in args):  # train.py's --opt: not any run's args.yaml
            return None
    else:
        return None
    args = args or {}
    notes: list[str] = []
    found = Found("timm", meta=data_config(args, notes), notes=notes)
    name = args.get("model") if isinstance(args.get("model"), str) else contents.get("arch")
    if isinstance(name, str) and name:
        found.arch = _named(name, source, _model_kwargs(args), notes)
    if whole(args.get("num_classes")):
        found.meta["num_classes"] = args["num_classes"]
    found.meta.update(_class_map(args, path.parent))
    if args:
        found.meta.update(_class_order(args, found.meta))
    return found


def _named(name: str, source: str, kwargs: dict[str, Any], notes: list[str]) -> Arch:
    """train.py's `--model` as a spec, read as timm's create_model reads it: `timm/resnet18.a1_in1k` is
    `resnet18.a1_in1k`; `hf-hub:ORG/REPO` names its architecture only in the Hub's config.json, which suscli does
    not download: REPO is taken when it is a timm model name (timm's own repositories, `timm/resnet18.a1_in1k`),
    the weights then having to fit it."""
    scheme, sep, path = name.replace("hf_hub", "hf-hub", 1).partition(":")
    if not sep or scheme == "timm":
        return Arch(f"timm:{(path if sep else name).rsplit('/', 1)[-1]}", source, kwargs=kwargs)
    repo = path.rsplit("/", 1)[-1]
    if scheme == "hf-hub" and _is_timm_model(repo):
        notes.append(f"timm's {name} read as timm:{repo}, its repository's name (the Hub's config.json is not downloaded)")
        return Arch(f"timm:{repo}", source, kwargs=kwargs)
    refused = InputError(
        f"its args name the model {name!r}, whose architecture only that model's config.json names, which suscli does not fetch",
        fix="pass --arch timm:NAME with the architecture of that model",
    )
    return Arch(name, source, refused=refused)


def _is_timm_model(name: str) -> bool:
    try:
        import timm
    except ImportError:
        return False
    return bool(timm.is_model(name))


def _class_order(args: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """How the run numbered the class folders it trained on (suscli.data.labels.folder_ids): by its class map's names;
    as sorted strings when it read them with torchvision's ImageFolder (`--dataset torch/folder`); else, for train.py's
    default dataset (a folder, read by timm's own reader), naturally: class_2 before class_10. Nothing for a dataset
    that is not a folder (hfds/, tfds/, wds/), or a class map that could not be read."""
    if isinstance(args.get("class_map"), str) and args["class_map"]:
        return {"class_order": BY_NAME} if "classes" in meta else {}
    dataset = args.get("dataset")
    prefix, sep, name = (dataset if isinstance(dataset, str) else "").partition("/")  # train.py's default: ''
    if not sep:
        return {"class_order": NATURAL, "class_order_source": "timm's folder reader"}
    if prefix.lower() == "torch" and name.lower() in ("folder", "image_folder"):
        return {"class_order": AS_STRINGS}
    return {}


MAX_CLASS_MAP = 16 << 20  # bytes: ImageNet-21k's 21,841 names take 0.2 MiB


def _class_map(args: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Class names from train.py's `--class-map` file, which timm reads as given, then under the data folder; here
    also by its name beside the checkpoint. Only a .txt map with one name per class: a .pkl one would have to be
    unpickled. Where it cannot be read, why (`classes_unread`), for the labels' note (suscli.data.labels)."""
    name = args.get("class_map")
    if not isinstance(name, str) or not name:
        return {}
    if not name.lower().endswith(".txt"):
        return {"classes_unread": f"timm's class map {name} is not a .txt file"}
    for place in _class_map_places(args, folder):
        try:
            names = [line.strip() for line in place.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if whole(args.get("num_classes")) not in (None, len(names)):
            return {"classes_unread": f"timm's class map {place} names {len(names)} classes, the run {args['num_classes']}"}
        return {"classes": names, "classes_source": f"timm's class map {place}"}
    return {"classes_unread": f"timm's class map {name} was not found as given, in the data folder or beside the checkpoint"}


def _class_map_places(args: Mapping[str, Any], folder: Path) -> list[Path]:
    """The files a .txt `--class-map` may be read from, in the order timm looks (as given, then under the data folder),
    then by its name beside the checkpoint: those that are there and not too large to be one."""
    name = args.get("class_map")
    if not isinstance(name, str) or not name.lower().endswith(".txt"):
        return []
    data_dir = given if isinstance(given := args.get("data_dir"), str) else ""
    places = [Path(name)] if Path(name).is_absolute() else [Path(name), Path(data_dir, name)]
    found = []
    for place in [*places, folder / Path(name).name]:
        try:
            if place.is_file() and place.stat().st_size <= MAX_CLASS_MAP:
                found.append(place)
        except (OSError, ValueError):
            continue
    return found


def companions(path: Path) -> list[Path]:
    """The files `recognize` reads beside checkpoint file `path`: args.yaml where the file does not record the run's
    args (a cleaned checkpoint, weights alone), and the class map those args name. args.yaml decides the model, its
    mean, std, input size and crop; the class map the classes training labels by name are mapped by."""
    records = plain_records(path)
    args = recorded_args(records.get("args")) if _saver_layout(records) else None
    files = []
    if args is None and (path.parent / "args.yaml").is_file():
        files.append(path.parent / "args.yaml")
        args = _args_yaml(path.parent)
    return files + (_class_map_places(args, path.parent) if args else [])


def _args_yaml(folder: Path) -> dict[str, Any] | None:
    """train.py's `args.yaml` in the run's folder (yaml.safe_dump of its args), read with yaml.safe_load."""
    file = folder / "args.yaml"
    if not file.is_file():
        return None
    try:
        import yaml  # PyYAML comes with timm

        return recorded_args(yaml.safe_load(file.read_text(encoding="utf-8")))
    except Exception:  # no PyYAML, or not a YAML mapping: this folder's args.yaml is not timm's
        return None


def _model_kwargs(args: dict[str, Any]) -> dict[str, Any]:
    """The create_model arguments of train.py that shape the weights."""
    kwargs: dict[str, Any] = {}
    size = args.get("input_size")
    in_chans = whole(args.get("in_chans")) or (whole(size[0]) if isinstance(size, (list, tuple)) and size else None)
    if in_chans:
        kwargs["in_chans"] = in_chans
    if whole(args.get("num_classes")):
        kwargs["num_classes"] = args["num_classes"]
    if isinstance(args.get("gp"), str):
        kwargs["global_pool"] = args["gp"]
    if isinstance(args.get("bn_eps"), float):
        kwargs["bn_eps"] = args["bn_eps"]
    if isinstance(args.get("model_kwargs"), Mapping):
        kwargs.update(args["model_kwargs"])
    return kwargs


def data_config(args: Mapping[str, Any], notes: list[str]) -> dict[str, Any]:
    """suscli's preprocessing fields from a timm data config (resolve_data_config's keys); what it lacks stays unset."""
    out: dict[str, Any] = {}
    size = args.get("input_size")
    if isinstance(size, (list, tuple)) and len(size) == 3 and all(whole(s) for s in size):
        if size[1] == size[2]:
            out["image_size"] = size[1]
        else:
            out["input_shape"] = [size[1], size[2]]  # for the error of a model that needs it (suscli.run.model.needed_shape)
            notes.append(f"timm's input size is {size[1]}x{size[2]} (height x width), not square: {SQUARE_ONLY} (their side: --image-size)")
    elif whole(args.get("img_size")):
        out["image_size"] = args["img_size"]
    if numbers(args.get("mean")) and numbers(args.get("std")):
        out["mean"], out["std"] = numbers(args["mean"]), numbers(args["std"])
    crop = args.get("crop_pct")
    if isinstance(crop, float) and 0 < crop <= 1:
        out["crop_pct"] = crop
    if isinstance(args.get("interpolation"), str) and args["interpolation"] in INTERPOLATIONS:  # a list would not hash
        out["interpolation"] = args["interpolation"]
    if args.get("crop_mode") == "squash":  # the whole image to a square of size/crop_pct, then the center crop
        out["resize"] = "stretch"
    elif args.get("crop_mode") not in (None, "center"):
        notes.append(f"timm's crop_mode {args['crop_mode']!r} is not suscli's: images are resized and center-cropped")
    return out


def defaults(spec: str, model: nn.Module) -> dict[str, Any]:
    """The data config of a model built from a `timm:NAME` spec: its pretrained config's input size, mean, std
    and crop, which timm's own scripts use when the run does not say."""
    if not spec.startswith("timm:"):
        return {}
    from timm.data import resolve_data_config

    return data_config(resolve_data_config(_built_size(model), model=model), [])


def _built_size(model: nn.Module) -> dict[str, Any]:
    """The input size a model was built for where it is fixed (a ViT's patch embedding, built with `img_size=32`),
    as timm's scripts pass `--img-size`: the pretrained config's 224 fed a ViT built for 32 px images 224 px ones,
    which it refused ("Input height (224) doesn't match model (32)") or, built with a dynamic size, was measured on."""
    size = getattr(getattr(model, "patch_embed", None), "img_size", None)
    if isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size):
        return {"input_size": (3, *size)}
    return {}


def recorded_epoch(path: Path) -> int | None:
    """The `epoch` a CheckpointSaver file records, read without its tensors: the N of its `checkpoint-N.pth.tar`,
    which `last.pth.tar` and `model_best.pth.tar` do not name."""
    records = plain_records(path)
    return epoch_number(records.get("epoch")) if _saver_layout(records) else None


LAYOUT = Layout("timm", recognize, folder=folder, defaults=defaults, epoch=recorded_epoch, companions=companions)
