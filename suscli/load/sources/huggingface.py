"""Hugging Face transformers: a folder that `save_pretrained` or a Trainer wrote (`checkpoint-N/` inside its
output_dir) is one checkpoint: `config.json`, the weights (`model.safetensors`, sharded safetensors with their
index, or `pytorch_model.bin`), `preprocessor_config.json` and, from a Trainer, `trainer_state.json`.

The model is `AutoModelForImageClassification.from_pretrained(folder)`: offline, and never with remote code (a
config that maps its model to code of its own, `auto_map`, or names a model type transformers does not define is
refused). transformers loads the weights itself, since its files and its modules may name them differently.
Classes come from `id2label`, preprocessing from preprocessor_config.json (for a Trainer checkpoint that holds none,
its run folder's: _processor_file), the epoch from trainer_state.json.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from suscli.data.images import INTERPOLATIONS, SQUARE_ONLY
from suscli.errors import InputError, first_line, plural, shown
from suscli.extras import require
from suscli.files import written_name
from suscli.load.safe_read import sidecar_path
from suscli.load.sources.interface import Arch, Folder, Found, Layout, numbers, whole

# Weight files in the order transformers prefers them: single file, then its sharded form.
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_PROCESSOR = "preprocessor_config.json"
_TRAINER_CHECKPOINT = re.compile(r"checkpoint-\d+")  # the folders a Trainer saves in its output_dir
_NO_REMOTE_CODE = "pass --arch with a local implementation of that model"
_RESAMPLE = {r.value: name for name, r in INTERPOLATIONS.items()}  # `resample` is PIL's code for its filter
# What an int `size` means depends on the processor class (its `default_to_square`, transformers 5; the
# `get_size_dict(size, default_to_square=...)` of its __init__ in transformers 4): the whole image to size x size, or
# the shorter side to size. These are the processors of transformers' image classifiers; another class's int size is
# read as the shorter side, with a note. An int `crop_size` is a square in every class.
_SQUARE = frozenset(
    f"{name}ImageProcessor"
    for name in ("Beit", "DeiT", "Donut", "EfficientNet", "Gemma3", "ImageGPT", "Perceiver", "PPLCNet", "Pvt", "Segformer")
    + ("Siglip2", "ViT")
)
_SHORTEST = frozenset(
    f"{name}ImageProcessor"
    for name in ("Bit", "CLIP", "ConvNext", "Levit", "MobileNetV1", "MobileNetV2", "MobileViT", "PoolFormer", "Siglip", "TextNet")
)
# Steps of a processor class that its file may not say. MobileViT's (apple/mobilevit-*) never normalizes, whatever
# image_mean its file holds, and reverses the channels to BGR unless its `do_flip_channel_order` is false (true where the
# file has none, the class's default); PP-LCNet's reverses them always, after normalizing (suscli.data.images
# CHANNEL_ORDERS). LeViT's resizes the shorter side to int(256 / 224 * shortest_edge), not to shortest_edge, before its
# center crop.
_NEVER_NORMALIZES = frozenset({"MobileViTImageProcessor"})
_FLIPS: dict[str, str | None] = {"MobileViTImageProcessor": "do_flip_channel_order", "PPLCNetImageProcessor": None}  # flag turning it off
_LEVIT = "LevitImageProcessor"
# EfficientNet's processor divides by image_std once more after normalizing (or, where it does not normalize, in its
# place) unless its file's `include_top` is false: google/efficientnet-* models take pixels over std squared.
_DIVIDES_AGAIN = "EfficientNetImageProcessor"
# The processor class of a config.json `model_type`, for a preprocessor_config.json that names none, as
# AutoImageProcessor looks it up (IMAGE_PROCESSOR_MAPPING_NAMES, transformers/models/auto/image_processing_auto.py):
# the model types of transformers 5's image classifiers (MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES) whose class is in
# _SQUARE or _SHORTEST, and transformers 4's nat and van. A table rather than transformers' own mapping: the folder is
# read without importing transformers, and the pixels of a checkpoint do not change with the version installed.
_MODEL_TYPES = {
    model_type: f"{name}ImageProcessor"
    for name, types in (
        ("Beit", "beit data2vec-vision"),
        ("Bit", "bit dinov2 focalnet hiera"),
        ("CLIP", "clip metaclip_2"),
        ("ConvNext", "convnext convnextv2 cvt regnet resnet van"),
        ("DeiT", "deit"),
        ("Donut", "donut-swin"),
        ("EfficientNet", "efficientnet"),
        ("Gemma3", "shieldgemma2"),
        ("ImageGPT", "imagegpt"),
        ("Levit", "levit"),
        ("MobileNetV1", "mobilenet_v1"),
        ("MobileNetV2", "mobilenet_v2"),
        ("MobileViT", "mobilevit mobilevitv2"),
        ("Perceiver", "perceiver"),
        ("PoolFormer", "poolformer"),
        ("PPLCNet", "pp_lcnet"),
        ("Pvt", "pvt pvt_v2"),
        ("Segformer", "segformer"),
        ("Siglip", "siglip"),
        ("Siglip2", "siglip2"),
        ("TextNet", "textnet"),
        ("ViT", "dinat ijepa nat swiftformer swin swinv2 vit vit_msn"),
    )
    for model_type in types.split()
}


# What save_pretrained of transformers' TensorFlow and Flax models writes in place of PyTorch weights
_OTHER_WEIGHTS = {
    "tf_model.h5": "TensorFlow",
    "tf_model.h5.index.json": "TensorFlow",
    "flax_model.msgpack": "Flax",
    "flax_model.msgpack.index.json": "Flax",
}


def folder(path: Path) -> Folder | None:
    if not (path / "config.json").is_file():
        return None
    name = next((n for n in _WEIGHTS if (path / n).is_file()), None)
    if name is None:
        return None
    weights = _shards(path / name) if name.endswith(".index.json") else [path / name]
    processor, state = _processor_file(path), path / "trainer_state.json"
    files = [path / "config.json", *weights, *([processor] if processor else []), *([state] if state.is_file() else [])]
    return Folder(path, weights, files, _epoch(path / "trainer_state.json"))


def lacking(path: Path) -> InputError | None:
    """Weights saved by save_pretrained without their config.json (which names the model), or a config.json
    without weights: the half of a Hugging Face folder that is there, and the half that is not."""
    config = (path / "config.json").is_file()
    name = next((n for n in _WEIGHTS if (path / n).is_file()), None)
    fix = "copy the files save_pretrained wrote for this model beside it, or save it again"
    if name and not config:
        return InputError(f"it holds {name} but no config.json, which names a Hugging Face folder's model", fix=fix)
    if config and not name:
        other = next((f"{kind} weights ({n})" for n, kind in _OTHER_WEIGHTS.items() if (path / n).is_file()), None)
        if other:  # save_pretrained of a TFAutoModel or FlaxAutoModel: the model's weights, for another framework
            return InputError(
                f"it holds {other} but no PyTorch weights ({', '.join(_WEIGHTS)}): suscli measures PyTorch models",
                fix="save the PyTorch model's weights beside config.json (its save_pretrained writes model.safetensors); transformers 4 "
                f"loads them into it with from_pretrained('{path}', from_tf=True) (from_flax=True for Flax weights)",
            )
        return InputError(f"it holds config.json but no weights ({', '.join(_WEIGHTS)})", fix=fix)
    return None


def recognize(path: Path, contents: object) -> Found | None:
    if contents is not None or not path.is_dir() or folder(path) is None:
        return None
    config = _json(path / "config.json")
    found = Found("Hugging Face transformers")
    labels = config.get("id2label")
    if isinstance(labels, dict) and labels and set(labels) == {str(i) for i in range(len(labels))}:
        found.meta["classes"] = [str(labels[str(i)]) for i in range(len(labels))]
        found.meta["num_classes"] = len(labels)
        found.meta["classes_source"] = "config.json's id2label"
    processor = _processor_file(path)
    if processor is not None and processor.parent != path:
        found.notes.append(f"preprocessing from the run folder's {_PROCESSOR} ({processor}): the checkpoint holds none")
    found.meta.update(_preprocessing(processor, path, config, found.notes))
    found.meta["crop_offset"] = "floor"  # its processors' center_crop starts at (side - crop) // 2, torchvision's rounds
    epoch = _epoch(path / "trainer_state.json")
    if epoch is not None:
        found.meta["epoch"] = epoch
    names = config.get("architectures")
    name = names[0] if isinstance(names, list) and names and isinstance(names[0], str) else str(config.get("model_type"))
    refused = None
    if "auto_map" in config:
        refused = InputError(
            "its config.json maps the model to code of its own (auto_map), which would run on loading; "
            "suscli never runs code a checkpoint brings",
            fix=_NO_REMOTE_CODE,
        )
    refused = refused or _not_single_label(config.get("problem_type"))
    found.arch = Arch(f"transformers:{name}", "config.json", load=functools.partial(_load, path, config), refused=refused)
    return found


def _not_single_label(problem: object) -> InputError | None:
    """A model config.json says is trained with a sigmoid per class or a regression loss: its head was read as a
    softmax classifier's logits, a multi-label model's measured with one random class per image and cross-entropy, a
    regression's one output as a binary classifier's logit, numbers that are not what the method defines."""
    if problem not in ("multi_label_classification", "regression"):
        return None
    return InputError(
        f"its config.json says problem_type {problem!r}: suscli measures single-label classifiers, trained with softmax "
        "cross-entropy, and neither its susceptibility nor its accuracy on one label per image is defined for this head",
        fix="score a single-label classifier (problem_type single_label_classification)",
    )


def _load(path: Path, config: dict[str, Any]) -> nn.Module:
    """AutoModelForImageClassification from the folder, offline; any weight it had to leave unfilled is an error."""
    transformers = require("transformers", "hf", "a Hugging Face checkpoint")
    from transformers import CONFIG_MAPPING, AutoModelForImageClassification

    model_type = config.get("model_type")
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        raise InputError(
            f"its config.json names the model type {model_type!r}, which transformers {transformers.__version__} "
            "does not define; its code would have to come with the checkpoint, and suscli never runs such code",
            fix=f"upgrade transformers if it is a newer model type, or {_NO_REMOTE_CODE}",
        )
    with _quiet(transformers):
        try:
            model, info = AutoModelForImageClassification.from_pretrained(
                path, local_files_only=True, trust_remote_code=False, output_loading_info=True, ignore_mismatched_sizes=True
            )  # a shape that differs is then listed in `info`, and refused below with the keys named
        except Exception as e:  # transformers' own refusal: a config without an image classifier, shapes that differ, ...
            raise InputError(
                f"transformers cannot load it as an image classifier ({type(e).__name__}: {first_line(e)})",
                fix="check that config.json and the weights belong together",
            ) from e
    unfilled = {k: sorted(map(_key, v)) for k in ("missing_keys", "mismatched_keys", "unexpected_keys") if (v := info.get(k))}
    if unfilled:
        described = ", ".join(f"{len(v)} {k.replace('_', ' ')} ({shown(v, 3)})" for k, v in unfilled.items())
        raise InputError(
            f"weights do not fit {type(model).__name__}: {described}", fix="check that config.json and the weights belong together"
        )
    return model.float().eval()


def _key(entry: object) -> str:
    """A key of transformers' loading info: a name, or for a mismatched one (name, file's shape, model's shape)."""
    if isinstance(entry, tuple) and len(entry) == 3:
        name, given, own = entry
        return f"{name}: checkpoint {'x'.join(map(str, given))} vs model {'x'.join(map(str, own))}"
    return str(entry)


@contextlib.contextmanager
def _quiet(transformers: ModuleType) -> Iterator[None]:
    """transformers logs and draws progress bars on stderr; suscli reports a failure in one line of its own."""
    logging = transformers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def _shards(index: Path) -> list[Path]:
    """The shard files an index names, each a file in the same folder (never a path leading elsewhere)."""
    weight_map = _json(index).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise InputError(f"{index}: has no weight_map", fix="save the model again with save_pretrained")
    names = list(dict.fromkeys(map(str, weight_map.values())))
    outside = [n for n in names if Path(n).name != n or n in ("", ".", "..")]
    if outside:
        raise InputError(
            f"{index}: names shard {outside[0]!r}, which is not a file in its folder", fix="save the model again with save_pretrained"
        )
    missing = [n for n in names if not (index.parent / n).is_file()]
    if missing:
        raise InputError(f"{index}: shard {missing[0]} is missing", fix="copy every shard the index names")
    return [index.parent / n for n in names]


def _rescaled(cfg: dict[str, Any], out: dict[str, Any], notes: list[str]) -> None:
    """A processor that does not scale pixels by 1/255 (`do_rescale` false, another `rescale_factor`, EfficientNet's
    `rescale_offset`) feeds (x * factor - offset - mean) / std for pixels x of 0-255; suscli's are x / 255, which give
    the same inputs with the mean (plus the offset) and std divided by 255 * factor: folded into them here, exactly.
    Noted as "suscli does" before, it was not what the model saw: a processor feeding 0-255 pixels minus a 0-255
    mean was then refused for its 0-255 mean, and a 1/127.5 scale read inputs at half their scale."""
    rescale = cfg.get("do_rescale", True) is not False
    factor = cfg.get("rescale_factor", 1 / 255) if rescale else 1.0
    offset = 1.0 if rescale and cfg.get("rescale_offset") is True else 0.0
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 0:
        notes.append(f"preprocessor_config.json's rescale_factor {factor!r} is not a positive number; suscli scales pixels by 1/255")
        return
    if abs(factor * 255 - 1) <= 1e-6 and not offset:
        return
    if "mean" not in out:  # the processor class's default mean and std, which the file does not give
        notes.append("preprocessor_config.json does not scale pixels by 1/255 and names no mean and std; suscli scales by 1/255")
        return
    k = 255 * factor
    out["mean"] = [(m + offset) / k for m in out["mean"]]
    out["std"] = [s / k for s in out["std"]]
    notes.append(
        f"preprocessor_config.json scales pixels by {factor:g}{' and subtracts 1' if offset else ''}, not 1/255: its mean and "
        "std are rescaled to suscli's 0-1 pixels, which gives the model the same inputs"
    )


def _processor_file(path: Path) -> Path | None:
    """The preprocessor_config.json of a model folder: its own, or, for a Trainer checkpoint (a checkpoint-N folder)
    that holds none, the one in its run folder (the output_dir): a Trainer not given processing_class saves none in its
    checkpoints, and the processor is saved once, to the output_dir. Only the direct parent, and only for a checkpoint-N:
    models saved side by side under a folder are not one run, and a trainer_state.json does not make one (save_model
    and save_state write the final model and one into the output_dir itself, whose parent is not its run)."""
    own = path / _PROCESSOR
    if own.is_file():
        return own
    path = path.absolute()  # `.` inside the checkpoint: its name and its parent
    run = path.parent / _PROCESSOR
    return run if _TRAINER_CHECKPOINT.fullmatch(path.name) and run.is_file() else None


def _preprocessing(file: Path | None, path: Path, config: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """suscli's fields from an image processor's config: mean/std when it normalizes, the interpolation (`resample`),
    the input size, resize mode and crop: `size` {height, width} stretches the whole image to that square (then
    `crop_size` crops its center); `shortest_edge` resizes the shorter side, then `crop_size` (after PoolFormer's
    `crop_pct` scaled the side), or ConvNeXt's `crop_pct` below 384 px, crops; ConvNeXt's at 384 px or more stretches.
    An int `size` is either, as the processor class reads it (_size_dict); an int `crop_size` is a square, and a list
    `size` or `crop_size` is [height, width] in every processor. The steps some classes add (_NEVER_NORMALIZES, _FLIPS,
    LeViT's larger resize) are followed. `path` is the model's folder, `config` its config.json."""
    if file is None:
        return {}
    cfg = _json(file)
    named = _processor_class(cfg, config)
    out: dict[str, Any] = {}
    if cfg.get("do_normalize", True) is False or named in _NEVER_NORMALIZES:
        out["mean"], out["std"] = [0.0], [1.0]
    elif numbers(cfg.get("image_mean")) and numbers(cfg.get("image_std")):
        out["mean"], out["std"] = numbers(cfg["image_mean"]), numbers(cfg["image_std"])
    again = numbers(cfg.get("image_std")) if named == _DIVIDES_AGAIN and cfg.get("include_top", True) is not False else None
    if again is not None and "std" in out:
        std = out["std"]
        if len(std) == 1:
            std = std * len(again)
        if len(std) == len(again):
            out["std"] = [a * b for a, b in zip(std, again)]
    _rescaled(cfg, out, notes)
    resample = cfg.get("resample")
    if isinstance(resample, int) and not isinstance(resample, bool) and resample in _RESAMPLE:
        out["interpolation"] = _RESAMPLE[resample]
    flag = _FLIPS.get(named, "")
    if named in _FLIPS and (flag is None or cfg.get(flag, True)):  # a null flag is false to the processor too
        out["channel_order"] = "BGR"
    size = _size_dict(cfg, named, config.get("model_type"), path, notes)
    crop = _sides(cfg.get("crop_size")) if cfg.get("do_center_crop", True) else None
    crop = {"height": crop, "width": crop} if whole(crop) else crop  # an int crop_size is a square in every processor
    crop = crop["height"] if isinstance(crop, dict) and whole(crop.get("height")) and crop.get("height") == crop.get("width") else None
    shortest = whole(size.get("shortest_edge")) if isinstance(size, dict) else None
    pct = cfg.get("crop_pct") if isinstance(cfg.get("crop_pct"), float) and 0 < cfg["crop_pct"] <= 1 else None
    if named == _LEVIT and shortest:  # its resize, which reads no crop_pct: crop / that side lands back on it (resize_side)
        shortest, pct = int((256 / 224) * shortest), None
    if isinstance(size, dict) and whole(size.get("height")) and size.get("height") == size.get("width"):
        out["image_size"], out["resize"] = size["height"], "stretch"  # the whole image to height x width
        if crop and crop < size["height"]:  # DeiT's: stretched to 256, then the center 224
            out["image_size"], out["crop_pct"] = crop, crop / size["height"]
    elif shortest and crop:  # PoolFormer's crop_pct: the shorter side to int(shortest_edge / crop_pct), then the crop
        out["image_size"], out["crop_pct"] = crop, min(1.0, crop / (int(shortest / pct) if pct else shortest))
    elif shortest:
        out["image_size"] = shortest
        if pct and shortest < 384:  # ConvNeXt's rule: the shorter side to shortest_edge / crop_pct, then the center crop
            out["crop_pct"] = pct
        elif pct:  # and at 384 px or more, ConvNeXt's processor warps the whole image to the square, cropping nothing
            out["resize"] = "stretch"
    elif isinstance(size, dict) and whole(size.get("height")) and whole(size.get("width")):
        out["input_shape"] = [size["height"], size["width"]]  # for the error of a model that needs it (suscli.run.model.needed_shape)
        notes.append(
            f"preprocessor_config.json's size is {size['height']}x{size['width']} (height x width), not square: {SQUARE_ONLY} (their side: --image-size)"
        )
    elif size is not None:
        notes.append(f"preprocessor_config.json's size {cfg.get('size')} is not square: pass --image-size")
    return out


def _sides(value: object) -> object:
    """A list `size` or `crop_size` (some older files) as {height, width}, as get_size_dict reads it in every processor."""
    if isinstance(value, list) and len(value) == 2:
        return {"height": value[0], "width": value[1]}
    return value


def _processor_class(cfg: dict[str, Any], config: dict[str, Any]) -> str:
    """The processor class, found where AutoImageProcessor looks for it: `image_processor_type`, or the older
    `feature_extractor_type` with FeatureExtractor read as ImageProcessor; where the file names neither, config.json's
    `image_processor_type`, then the class of its `model_type` (_MODEL_TYPES); "" where none is found."""
    named = cfg.get("image_processor_type") or str(cfg.get("feature_extractor_type") or "").replace("FeatureExtractor", "ImageProcessor")
    model_type = config.get("model_type")
    if not named:
        named = config.get("image_processor_type") or (_MODEL_TYPES.get(model_type) if isinstance(model_type, str) else None)
    return str(named or "").removesuffix("Fast").removesuffix("Pil")  # the same class in transformers' other backends


def _size_dict(cfg: dict[str, Any], named: str, model_type: object, path: Path, notes: list[str]) -> object:
    """`size` as a dict, as the processor class `named` (_processor_class) reads it: an int is {height, width} for the
    classes of _SQUARE, {shortest_edge} for those of _SHORTEST, and {shortest_edge} with a note for any other (a class
    suscli does not know, or none found: `model_type` is config.json's), saying how to have it stretch in the sidecar of
    the model's folder `path`."""
    size = _sides(cfg.get("size"))
    if not whole(size):
        return size
    if named in _SQUARE:
        return {"height": size, "width": size}
    sidecar = sidecar_path(path)
    if named not in _SHORTEST and "resize" not in _sidecar_fields(sidecar):  # a sidecar's resize wins: no note then
        why = (
            f"{named} is not a processor suscli knows"
            if named
            else f"it names no processor class, and suscli knows none for config.json's model_type {model_type!r}"
        )
        notes.append(
            f"preprocessor_config.json's size {size} read as the shorter side ({why}): if its processor resizes the "
            f'whole image to {size}x{size}, put {{"resize": "stretch"}} in {sidecar.name} beside the folder'
        )
    return {"shortest_edge": size}


def _sidecar_fields(file: Path) -> dict[str, Any]:
    """The fields of a .suscli.json sidecar, {} where there is none or it cannot be read (loading it says why)."""
    try:
        fields = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return fields if isinstance(fields, dict) else {}


def _epoch(file: Path) -> int | None:
    """The Trainer's epoch count when it saved, if it is whole (checkpoints saved mid-epoch have none)."""
    try:
        epoch = json.loads(file.read_text(encoding="utf-8")).get("epoch")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return int(epoch) if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) and float(epoch).is_integer() else None


def trainer_log(path: Path) -> tuple[int, list[Any]] | None:
    """A Trainer checkpoint folder's global step and log history (its trainer_state.json), None without them. A
    run resumed from checkpoint-N carries N's history on, so two checkpoints of one run agree up to the earlier's step."""
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    step, log = (state.get("global_step"), state.get("log_history")) if isinstance(state, dict) else (None, None)
    if not isinstance(step, int) or isinstance(step, bool) or not isinstance(log, list):
        return None
    return step, log


def recorded_best(output_dir: Path) -> tuple[Path, str, Path | None] | None:
    """The best checkpoint a Trainer's output_dir records (`best_model_checkpoint`, kept where metric_for_best_model
    is set, the model load_best_model_at_end loads) in the trainer_state.json of its latest save, the root's
    (save_state) among them: the save whose record it is, the path as written, and the checkpoint folder of that name
    in output_dir (None where it holds none). The path is the training machine's, absolute or relative to where it
    ran: a run folder moved or copied keeps it, so the folder is found by its name. None where no save records one."""
    saves = [output_dir, *(p for p in output_dir.iterdir() if p.is_dir() and _TRAINER_CHECKPOINT.fullmatch(p.name))]
    records = [(*record, p) for p in saves if (record := best_record(p)) is not None]
    if not records:
        return None
    _, written, source = max(records)
    best = output_dir / written_name(written)
    return source, written, best if _TRAINER_CHECKPOINT.fullmatch(best.name) and folder(best) is not None else None


def output_dir_refusal(path: Path) -> InputError | None:
    """A Trainer's output_dir given as one checkpoint: which of its checkpoint-N folders to score, the best it
    recorded where it holds it (recorded_best). It said "is a directory, not a checkpoint", naming file suffixes."""
    saves = [p for p in path.iterdir() if p.is_dir() and _TRAINER_CHECKPOINT.fullmatch(p.name) and folder(p) is not None]
    if not saves:
        return None
    found = recorded_best(path)
    best = found[2] if found is not None else None
    latest = max(saves, key=lambda p: int(p.name.removeprefix("checkpoint-")))
    pick = f"its best checkpoint, {best} (best_model_checkpoint in trainer_state.json)" if best else f"one of them (the latest: {latest})"
    return InputError(
        f"{path}: is a Hugging Face Trainer's output_dir, a run of {len(saves)} checkpoint-N {plural(len(saves), 'folder')}, not one checkpoint",
        fix=f"score {pick}, or every epoch with suscli track {path}",
    )


def best_record(path: Path) -> tuple[int, str] | None:
    """A Trainer save's global step and the best_model_checkpoint its trainer_state.json records; None without both."""
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    step, best = (state.get("global_step"), state.get("best_model_checkpoint")) if isinstance(state, dict) else (None, None)
    if not isinstance(step, int) or isinstance(step, bool) or not isinstance(best, str) or not best.strip("\\/"):
        return None
    return step, best


def _json(file: Path) -> dict[str, Any]:
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{file}: cannot be read as JSON ({first_line(e)})", fix="save the model again with save_pretrained") from e
    if not isinstance(value, dict):
        raise InputError(f"{file}: is not a JSON object", fix="save the model again with save_pretrained")
    return value


LAYOUT = Layout("Hugging Face transformers", recognize, folder=folder, lacking=lacking)
