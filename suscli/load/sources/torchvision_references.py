"""torchvision's classification reference script (references/classification/train.py): `model_N.pth` and
`checkpoint.pth`, each holding `model` (and `model_ema`, an AveragedModel's `module.` weights), `optimizer`,
`lr_scheduler`, `epoch` and the run's `args` (an argparse.Namespace).

`args.model` names a torchvision model; the evaluation preprocessing is the script's: resize the shorter side to
`val_resize_size` with its `interpolation`, center-crop `val_crop_size`, normalize with ImageNet's statistics (the
script has no option for them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from suscli.data.images import INTERPOLATIONS, PRESETS
from suscli.data.labels import AS_STRINGS
from suscli.load.sources.interface import Arch, Found, Layout, recorded_args, whole


def recognize(path: Path, contents: object) -> Found | None:
    if not isinstance(contents, Mapping) or "state_dict" in contents or not ({"model", "model_ema"} & set(contents)):
        return None
    args = recorded_args(contents.get("args"))
    if not args or not isinstance(args.get("model"), str) or not ("val_crop_size" in args or "lr_scheduler" in contents):
        return None
    imagenet = PRESETS["imagenet"]
    found = Found(
        "torchvision references",
        Arch(f"torchvision:{args['model']}", "torchvision reference checkpoint"),
        meta={"mean": list(imagenet.mean), "std": list(imagenet.std), "class_order": AS_STRINGS},  # its ImageFolder's
    )
    crop, resize = whole(args.get("val_crop_size")), whole(args.get("val_resize_size"))
    if crop:
        found.meta["image_size"] = crop
        if resize and resize >= crop:
            found.meta["crop_pct"] = crop / resize
    interpolation = args.get("interpolation")  # --interpolation, bilinear by default, bicubic in many recipes
    if isinstance(interpolation, str) and interpolation in INTERPOLATIONS:
        found.meta["interpolation"] = interpolation
    return found


LAYOUT = Layout("torchvision references", recognize)
