"""The data and models behind `suscli demo`: a procedural image set with label noise and a small pool of models.

Nothing is downloaded. `build_demo` draws images of ten procedural classes (Gabor patches: five orientations
times two spatial frequencies, at a random position, phase, size, contrast and colour, plus pixel noise),
replaces a fraction of the training labels with uniformly random classes, trains the recipe's models on those
noisy labels, and writes everything `suscli rank` needs:

    root/data/unlabeled/*.png          images no model was trained on (susceptibility is measured on these)
    root/data/train/<class>/*.png      the training images under their NOISY labels (training accuracy)
    root/data/test/<class>/*.png       held-out images under their clean labels (never used by suscli)
    root/models/<name>.safetensors     checkpoints saved with suscli.save (architecture, normalization)
    root/demo.json                     the recipe and, per model, clean test accuracy and memorized fraction

The pool is built so that the method has something to find. Three models learn the classes and resist the
noise (weight decay, a few epochs); two memorize the noisy labels (the same architectures without weight decay,
trained long with small batches: they fit almost every mislabeled image and lose clean test accuracy); three
are stopped far too early (underfit). The underfit ones are needed for the pool-mean thresholds to work as the
method intends: with 40% noise a model that ignores the noise fits only about 64% of the noisy labels, so
without them the memorizers would pull the mean training accuracy above every noise-resistant model.
Measured on a shared 2-core machine (seeds 0-3), susceptibility at a fixed step of 0.01, 0.03 or 0.1 put the
three noise-resistant models in region 1, the two memorizers in region 2 and the underfit ones in region 3.
"""

from __future__ import annotations

import contextlib
import json
import re
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from suscli import models as zoo
from suscli.load.checkpoints import save
from suscli.errors import InputError, plural
from suscli.files import write_atomic
from suscli.data.images import normalizer

Progress = Callable[[str, int, int], None]  # (stage, done, total), as elsewhere in suscli

NUM_CLASSES = 10
ORIENTATIONS = 5  # 0, 36, 72, 108, 144 degrees
FREQUENCIES = (("coarse", 0.16), ("fine", 0.30))  # cycles per pixel at 16x16, scaled with the image size
# Class names sort in class-id order (ImageFolder numbers sorted folder names), so folder = label.
CLASS_NAMES = tuple(f"{fname}-{k * 180 // ORIENTATIONS:03d}" for fname, _ in FREQUENCIES for k in range(ORIENTATIONS))
PIXEL_NOISE = 0.05  # std of the Gaussian pixel noise, on a 0..1 scale


@dataclass(frozen=True)
class ModelSpec:
    """One model of the pool: an architecture from suscli.models and how it is trained (SGD, momentum 0.9,
    cosine schedule per step). `intent` is what the recipe means it to do; it is written to demo.json only."""

    name: str
    factory: str  # a function in suscli.models
    kwargs: dict[str, Any]
    epochs: int
    lr: float
    weight_decay: float
    batch_size: int = 64
    intent: str = "resist"  # "resist" (learns the classes), "memorize" (fits the noisy labels), "underfit"


@dataclass(frozen=True)
class DemoRecipe:
    n_train: int
    n_unlabeled: int
    n_test: int
    image_size: int
    noise: float  # fraction of training labels replaced by a uniformly random class (so ~0.9 of those are wrong)
    models: tuple[ModelSpec, ...]
    seed: int = 0

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d["models"] = [asdict(m) for m in self.models]
        return d


_ARCH_PREFIX = {"bn_cnn": "cnn-bn", "plain_cnn": "cnn", "resnet": "resnet", "mlp": "mlp"}


def named_spec(
    factory: str, width: int, epochs: int, lr: float, weight_decay: float, batch_size: int, intent: str, **kwargs: Any
) -> ModelSpec:
    """A ModelSpec named after its configuration, e.g. cnn-bn-w16-wd5e-4-e12 (the name says how, not what for)."""
    wd = f"wd{weight_decay:.0e}".replace("e-0", "e-") if weight_decay else "nowd"
    name = f"{_ARCH_PREFIX[factory]}-w{width}-{wd}-e{epochs}"
    return ModelSpec(name, factory, {"width": width, **kwargs}, epochs, lr, weight_decay, batch_size, intent)


def _pool() -> tuple[ModelSpec, ...]:
    """Three models that learn the classes, two that memorize the noisy labels, three stopped early (enough of
    them that the pool's mean training accuracy falls below what a noise-resistant model reaches)."""
    return (
        # learn the structure: weight decay, few epochs
        named_spec("bn_cnn", 16, 12, 0.05, 5e-4, 64, "resist"),
        named_spec("bn_cnn", 32, 8, 0.05, 1e-3, 64, "resist"),
        named_spec("resnet", 8, 10, 0.05, 5e-4, 64, "resist", blocks=1),
        # memorize: the same architectures without weight decay, trained long with small batches
        named_spec("bn_cnn", 16, 40, 0.05, 0.0, 32, "memorize"),
        named_spec("resnet", 8, 30, 0.05, 0.0, 32, "memorize", blocks=1),
        # stopped far too early
        named_spec("bn_cnn", 8, 2, 0.01, 5e-4, 64, "underfit"),
        named_spec("plain_cnn", 16, 3, 0.01, 0.0, 32, "underfit"),
        named_spec("mlp", 128, 3, 0.01, 5e-4, 64, "underfit"),
    )


# FULL: about 20 s of training on one thread (measured on a loaded 2-core machine); SMALL: about 15 s, for tests.
# SMALL keeps the same pool on 1000 training images: fewer than that and the resnet trained with weight decay
# starts to memorize too (by 800 images, with 1.5x the epochs, it fit 60-75% of the mislabeled images).
FULL = DemoRecipe(n_train=1500, n_unlabeled=1000, n_test=1000, image_size=16, noise=0.4, models=_pool())
SMALL = DemoRecipe(n_train=1000, n_unlabeled=512, n_test=500, image_size=16, noise=0.4, models=_pool())


@dataclass
class DemoOutput:
    root: Path
    models: Path  # folder of checkpoints: the pool for `suscli rank`
    unlabeled: Path
    train: Path
    test: Path
    records: list[dict]  # per model, in recipe order
    mislabeled: float = 0.0  # the share of training labels that are wrong: what rank's label-noise estimate estimates


def make_images(n: int, recipe: DemoRecipe, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n procedural images (uint8, (n, 3, S, S)) and their clean class ids (n,), the same for the same seed.

    Class k is a Gabor patch with orientation (k mod 5) * 36 degrees (+-6) and the coarse or fine spatial
    frequency (+-10%), at a random position, phase, envelope size and contrast, in a random pair of colours,
    plus pixel noise: a small convolutional net learns it from a thousand images to 90-98% clean accuracy;
    it is not linearly separable, and fully connected nets generalize it far worse.
    """
    s = recipe.image_size
    scale = s / 16
    g = torch.Generator().manual_seed(seed)

    def u(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g)

    labels = torch.randint(NUM_CLASSES, (n,), generator=g)
    theta = (labels % ORIENTATIONS).float() * (math.pi / ORIENTATIONS) + (u(n) - 0.5) * 0.2
    base = torch.tensor([f for _, f in FREQUENCIES])[labels // ORIENTATIONS]
    freq = base / scale * (0.9 + 0.2 * u(n))
    phase = u(n) * 2 * math.pi
    cx, cy = (4 + 8 * u(n)) * scale, (4 + 8 * u(n)) * scale
    sigma = (4 + 3 * u(n)) * scale
    contrast = 0.7 + 0.3 * u(n)
    background = 0.25 + 0.5 * u(n, 3)
    direction = torch.randn(n, 3, generator=g)
    direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-6) * (0.5 + 0.3 * u(n, 1))

    ys, xs = torch.meshgrid(torch.arange(s, dtype=torch.float32), torch.arange(s, dtype=torch.float32), indexing="ij")
    xs, ys = xs[None], ys[None]
    col = lambda t: t[:, None, None]  # noqa: E731
    along = xs * col(torch.cos(theta)) + ys * col(torch.sin(theta))
    wave = torch.cos(2 * math.pi * col(freq) * along + col(phase))
    envelope = torch.exp(-((xs - col(cx)) ** 2 + (ys - col(cy)) ** 2) / (2 * col(sigma) ** 2))
    pattern = col(contrast) * wave * envelope  # in [-1, 1]
    img = background[:, :, None, None] + 0.5 * direction[:, :, None, None] * pattern[:, None]
    img = img + PIXEL_NOISE * torch.randn(img.shape, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), labels


def noisy_labels(labels: torch.Tensor, noise: float, seed: int) -> torch.Tensor:
    """Replace each label with probability `noise` by a uniformly random class (which may be the same one)."""
    g = torch.Generator().manual_seed(seed)
    replace = torch.rand(len(labels), generator=g) < noise
    random = torch.randint(NUM_CLASSES, (len(labels),), generator=g)
    return torch.where(replace, random, labels)


def channel_stats(pixels: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images on the 0..1 scale, rounded to 4 decimals (stored in metadata)."""
    x = pixels.float() / 255
    return [round(v, 4) for v in x.mean((0, 2, 3)).tolist()], [round(v, 4) for v in x.std((0, 2, 3)).tolist()]


def build_model(spec: ModelSpec, recipe: DemoRecipe) -> tuple[nn.Module, dict[str, Any]]:
    """The untrained model and the arch kwargs that rebuild it (what the checkpoint stores)."""
    kwargs = {**spec.kwargs, "num_classes": NUM_CLASSES}
    if spec.factory == "mlp":
        kwargs["image_size"] = recipe.image_size
    return getattr(zoo, spec.factory)(**kwargs), kwargs


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: ModelSpec, seed: int, progress: Progress | None = None) -> None:
    """SGD with momentum 0.9 on (normalized x, y), cosine-annealed per step from spec.lr to 0; seeded shuffles."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=0.9, weight_decay=spec.weight_decay)
    steps_per_epoch = math.ceil(len(x) / spec.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=spec.epochs * steps_per_epoch)
    model.train()
    for epoch in range(spec.epochs):
        order = torch.randperm(len(x), generator=g)
        for start in range(0, len(x), spec.batch_size):
            idx = order[start : start + spec.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if progress:
            progress(f"train {spec.name}", epoch + 1, spec.epochs)
    model.eval()


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    model.eval()
    with torch.inference_mode():
        return torch.cat([model(x[i : i + batch_size]).argmax(-1) for i in range(0, len(x), batch_size)])


def write_pngs(folder: Path, pixels: torch.Tensor, labels: torch.Tensor | None = None, prefix: str = "img") -> None:
    """One PNG per image: folder/<prefix>_NNNNN.png, or folder/<class>/<prefix>_NNNNN.png when labels are given."""
    arr = pixels.permute(0, 2, 3, 1).contiguous().numpy()
    width = max(5, len(str(len(arr) - 1)))
    for name in CLASS_NAMES if labels is not None else ():
        (folder / name).mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(len(arr)):
        sub = folder / CLASS_NAMES[int(labels[i])] if labels is not None else folder
        Image.fromarray(np.ascontiguousarray(arr[i]), "RGB").save(sub / f"{prefix}_{i:0{width}d}.png", compress_level=1)


def build_demo(
    root: Path, recipe: DemoRecipe = FULL, progress: Progress | None = None, threads: int | None = 1, overwrite: bool = False
) -> DemoOutput:
    """Make the data, train the recipe's models on the noisy labels, save them; see the module docstring.

    `root` must be absent or hold no data/ or models/ with files in them; with `overwrite`, those of an earlier
    demo (a folder with demo.json) are deleted first, and anything else is still refused.

    `threads`: torch CPU threads while training (None: torch's default). One by default: these models are so
    small that a second thread gains little, and when other processes compete for the cores OpenMP's
    spin-waiting made two threads 10-30x slower than one (measured on a shared 2-core machine).
    """
    root = Path(root)
    _prepare(root, overwrite)
    with torch_threads(threads):
        return _build(root, recipe, progress)


def _prepare(root: Path, overwrite: bool) -> None:
    used = check_folder(root, overwrite)
    for p in used:
        shutil.rmtree(p)
    if used:
        (root / "demo.json").unlink()


def check_folder(root: Path, overwrite: bool) -> list[Path]:
    """The folders of an earlier demo in `root` that a new one replaces (none in a new or empty folder), or the error
    that leaves `root` as it is: checked before anything is said or drawn, so that nothing claims to replace it first."""
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} is a file, not a folder", fix="give a new or empty folder for the demo")
    used = [p for p in (root / "data", root / "models") if p.exists() and any(p.iterdir())]
    if not used:
        return []
    if not overwrite:
        raise InputError(f"{used[0]} already holds files", fix="choose a new or empty folder, or overwrite an earlier demo")
    if not (root / "demo.json").is_file():
        raise InputError(
            f"{root} holds {used[0].name}/ but no demo.json: not a demo folder, so nothing is deleted", fix="choose a new or empty folder"
        )
    foreign = [f for f in sorted(p for d in used for p in d.rglob("*")) if f.is_file() and not _demo_wrote(root, f)]
    if foreign:
        raise InputError(
            f"{root} holds an earlier demo and {len(foreign)} {plural(len(foreign), 'file')} it did not write, first: {foreign[0].relative_to(root)}; "
            "nothing is deleted",
            fix="move them out of the folder, or choose a new or empty folder",
        )
    return used


_DEMO_IMAGE = re.compile(r"img_\d+\.png")


def _demo_wrote(root: Path, path: Path) -> bool:
    """Whether an earlier demo wrote `path`, which a new one may then replace: its images, its models (by the names
    its demo.json lists, with what a killed save left of them) and the results file `suscli rank` keeps beside them.
    Anything else is the user's."""
    parts = path.relative_to(root).parts
    if parts[0] == "data":
        placed = (len(parts) == 3 and parts[1] == "unlabeled") or (
            len(parts) == 4 and parts[1] in ("train", "test") and parts[2] in CLASS_NAMES
        )
        return placed and bool(_DEMO_IMAGE.fullmatch(parts[-1]))
    try:
        names = {m["name"] for m in json.loads((root / "demo.json").read_text(encoding="utf-8"))["models"]}
    except (OSError, ValueError, KeyError, TypeError):
        names = set()
    ours = {"suscli-results.jsonl", *(f"{n}.safetensors" for n in names)}
    cut = re.fullmatch(r"\.(.+)\.[a-z0-9_]+\.tmp", parts[-1])  # the temporary file of a save a kill cut short (suscli.files)
    return len(parts) == 2 and (parts[1] in ours or (cut is not None and cut.group(1) in ours))


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with n torch CPU threads (None: leave the setting alone), then restore the setting."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _build(root: Path, recipe: DemoRecipe, progress: Progress | None) -> DemoOutput:
    data = root / "data"
    out = DemoOutput(root, root / "models", data / "unlabeled", data / "train", data / "test", [])
    seed = recipe.seed
    train_px, clean = make_images(recipe.n_train, recipe, seed * 4)
    test_px, test_y = make_images(recipe.n_test, recipe, seed * 4 + 1)
    unlabeled_px, _ = make_images(recipe.n_unlabeled, recipe, seed * 4 + 2)
    noisy = noisy_labels(clean, recipe.noise, seed * 4 + 3)
    wrong = noisy != clean

    # demo.json first, naming the models to come: a demo interrupted halfway (Ctrl-C, a kill) is still this demo's
    # folder, which the next one replaces, rather than a folder of someone else's files that it must refuse
    started = {"recipe": recipe.summary(), "models": [{"name": ms.name} for ms in recipe.models], "finished": False}
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(root / "demo.json", json.dumps(started, indent=2) + "\n", "--out")
    steps = 3
    write_pngs(out.unlabeled, unlabeled_px)
    if progress:
        progress("write images", 1, steps)
    write_pngs(out.train, train_px, noisy)
    if progress:
        progress("write images", 2, steps)
    write_pngs(out.test, test_px, test_y)
    if progress:
        progress("write images", 3, steps)

    mean, std = channel_stats(train_px)
    x = normalizer(mean, std)(train_px)
    x_test = normalizer(mean, std)(test_px)
    for i, ms in enumerate(recipe.models):
        torch.manual_seed(seed * 1000 + i)
        model, arch_kwargs = build_model(ms, recipe)
        start = time.perf_counter()
        train(model, x, noisy, ms, seed * 1000 + i, progress)
        seconds = time.perf_counter() - start
        pred = predict(model, x)
        record = {
            "name": ms.name,
            "intent": ms.intent,
            "arch": f"suscli.models:{ms.factory}",
            "arch_kwargs": arch_kwargs,
            "epochs": ms.epochs,
            "lr": ms.lr,
            "weight_decay": ms.weight_decay,
            "batch_size": ms.batch_size,
            "train_acc": float((pred == noisy).float().mean()),  # against the noisy labels it was trained on
            "train_acc_clean": float((pred == clean).float().mean()),
            "memorized": float((pred[wrong] == noisy[wrong]).float().mean()) if wrong.any() else 0.0,
            "test_acc": float((predict(model, x_test) == test_y).float().mean()),  # clean labels: the ground truth
            "train_seconds": round(seconds, 2),
        }
        save(
            model,
            out.models / f"{ms.name}.safetensors",
            arch=f"suscli.models:{ms.factory}",
            arch_kwargs=arch_kwargs,
            num_classes=NUM_CLASSES,
            mean=mean,
            std=std,
            image_size=recipe.image_size,
            classes=list(CLASS_NAMES),
            noise=recipe.noise,
            epochs=ms.epochs,
            lr=ms.lr,
            weight_decay=ms.weight_decay,
            batch_size=ms.batch_size,
            momentum=0.9,
            schedule="cosine",
            seed=seed,
            n_train=recipe.n_train,
            dataset="suscli demo (procedural Gabor patches, 10 classes)",
        )
        out.records.append(record)

    out.mislabeled = float(wrong.float().mean())
    summary = {
        "recipe": recipe.summary(),
        "classes": list(CLASS_NAMES),
        "mean": mean,
        "std": std,
        "mislabeled": out.mislabeled,
        "models": out.records,
    }
    write_atomic(root / "demo.json", json.dumps(summary, indent=2) + "\n", "--out")
    return out
