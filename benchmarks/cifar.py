"""CIFAR-10 (JPEG image folder) for the benchmarks: unpack once into a git-ignored cache, list, decode.

The archive is ../shared/data/cifar10-jpeg.tar.gz (see /work/shared/data/README.md); images never enter the
repository, only the cache folder `.cache/` that .gitignore excludes.
"""

from __future__ import annotations

import tarfile
from concurrent.futures import ThreadPoolExecutor
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# The shared data beside the checkout; SUSCLI_SHARED_DATA names it for a checkout elsewhere (a git worktree in /tmp)
SHARED_DATA = Path(os.environ.get("SUSCLI_SHARED_DATA") or REPO.parent / "shared" / "data")
DEFAULT_ARCHIVE = SHARED_DATA / "cifar10-jpeg.tar.gz"
DEFAULT_ROOT = REPO / ".cache" / "cifar10-jpeg"
DEFAULT_HUMAN_LABELS = SHARED_DATA / "cifar10n-labels.csv.gz"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def ensure_unpacked(root: Path = DEFAULT_ROOT, archive: Path = DEFAULT_ARCHIVE) -> Path:
    """Return `root` (holding train/ and test/), unpacking `archive` next to it first if it is missing.

    The archive's top folder is `cifar10-jpeg/`, so it is extracted into a temporary sibling and renamed into
    place: an interrupted unpack never leaves a half-filled `root` that a later run would trust.
    """
    root = Path(root)
    if (root / "train").is_dir() and (root / "test").is_dir():
        return root
    archive = Path(archive)
    if not archive.is_file():
        raise SystemExit(f"CIFAR-10 archive not found: {archive} (set SUSCLI_SHARED_DATA to the folder that holds it)")
    tmp = root.with_name(root.name + ".unpacking")
    tmp.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    inner = tmp / "cifar10-jpeg"
    (inner if inner.is_dir() else tmp).rename(root)
    if tmp.exists():
        tmp.rmdir()
    return root


def list_split(root: Path, split: str, classes: tuple[str, ...] = CLASSES) -> tuple[list[Path], np.ndarray]:
    """All images of `split` ('train' or 'test') of `classes` in a fixed order (class, then file name), with their
    ids: the position of their class in `classes` (CIFAR-10's ids for all ten). A group's images are its members'
    in the order they were given, all with the group's id."""
    paths: list[Path] = []
    labels: list[int] = []
    for cid, group in enumerate(members(classes)):
        for name in group:
            files = sorted((Path(root) / split / name).glob("*.jpg"))
            if not files:
                raise FileNotFoundError(f"no images in {Path(root) / split / name}")
            paths += files
            labels += [cid] * len(files)
    return paths, np.asarray(labels, dtype=np.int64)


def decode(paths: list[Path], threads: int = 4) -> torch.Tensor:
    """Decode images into one uint8 tensor (N, 3, H, W); JPEG decoding releases the GIL, so threads help."""

    def one(p: Path) -> np.ndarray:
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB"))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        arrays = list(pool.map(one, paths))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def balanced_sample(labels: np.ndarray, n: int, rng: np.random.Generator, exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of `n` items, n // classes per class (remainder to the first classes), none from `exclude`."""
    classes = np.unique(labels)
    allowed = np.ones(len(labels), dtype=bool)
    if exclude is not None:
        allowed[exclude] = False
    picked = []
    for i, c in enumerate(classes):
        k = n // len(classes) + (1 if i < n % len(classes) else 0)
        pool = np.flatnonzero((labels == c) & allowed)
        if k > len(pool):
            raise ValueError(f"class {c}: {k} images wanted, {len(pool)} available")
        picked.append(rng.choice(pool, size=k, replace=False))
    return np.sort(np.concatenate(picked))


def parse_classes(text: str) -> tuple[str, ...]:
    """'bird,cat,deer' -> ('bird', 'cat', 'deer'): a subset of CIFAR-10's classes, ids 0..k-1 in this order. An entry
    may also be a group, 'vehicle=airplane+automobile+ship+truck': one id for all of its members' images, named by
    the group. The entries are returned as written (spaces around names dropped); class_names and members read them."""
    entries = tuple(
        "=".join("+".join(m.strip() for m in side.split("+")) for side in e.split("=", 1)) for e in text.split(",") if e.strip()
    )
    want = f"want two or more distinct names of {', '.join(CLASSES)}, or groups name=class+class+..."
    if len(entries) < 2:
        raise ValueError(f"--classes {text!r}: {want}")
    for e in entries:
        name, sep, rest = e.partition("=")
        parts = rest.split("+") if sep else [name]
        if sep and (not name or "+" in name or name in CLASSES):
            raise ValueError(f"--classes {text!r}: a group's name must be new, not empty and not a CIFAR-10 class: {e!r}")
        unknown = [m for m in parts if m not in CLASSES]
        if unknown:
            raise ValueError(f"--classes {text!r}: {', '.join(map(repr, unknown))} in {e!r} not a CIFAR-10 class; {want}")
    names, flat = class_names(entries), covered(entries)
    if len(set(names)) != len(names) or len(set(flat)) != len(flat):
        raise ValueError(f"--classes {text!r}: a name or a class given twice; {want}")
    return entries


def class_names(classes: tuple[str, ...]) -> tuple[str, ...]:
    """The name of each id of `classes` (parse_classes' entries): the group's name, or the class itself."""
    return tuple(e.partition("=")[0] for e in classes)


def members(classes: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """The CIFAR-10 classes of each id of `classes` (parse_classes' entries): a group's members, or the class alone."""
    return tuple(tuple(e.partition("=")[2].split("+")) if "=" in e else (e,) for e in classes)


def covered(classes: tuple[str, ...]) -> tuple[str, ...]:
    """Every CIFAR-10 class whose images `classes` (parse_classes' entries) takes, groups' members included."""
    return tuple(name for group in members(classes) for name in group)


def is_grouped(classes: tuple[str, ...]) -> bool:
    """Whether some id of `classes` stands for a group of CIFAR-10 classes rather than one class."""
    return any("=" in e for e in classes)


def subset_ids(labels: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """CIFAR-10 class ids -> ids in `classes` (its order; a group's members all map to the group's id), -1 for a
    class outside it."""
    table = np.full(len(CLASSES), -1, dtype=np.int64)
    for i, group in enumerate(members(classes)):
        for name in group:
            table[CLASSES.index(name)] = i
    return table[np.asarray(labels, dtype=np.int64)]


def folder_ids(folders: list[str], classes: tuple[str, ...]) -> np.ndarray:
    """Ids in `classes` of images given by their class folder's name (train/<class>/NNNN.jpg), -1 outside it."""
    return subset_ids(np.array([CLASSES.index(f) for f in folders], dtype=np.int64), classes)


def zoo_classes(manifest: dict) -> tuple[str, ...]:
    """The classes a zoo (benchmarks/zoo/train_zoo.py's zoo.json) was trained on, ids in this order: all ten unless
    it was made with --classes (then its entries as written, groups included: see class_names and members)."""
    return tuple(manifest["data"].get("classes", CLASSES))


def read_human_labels(path: Path = DEFAULT_HUMAN_LABELS) -> pd.DataFrame:
    """CIFAR-10N (Wei et al., ICLR 2022): the clean label and the human ones of every training image, indexed
    by its path inside the image folder (train/<class>/NNNN.jpg)."""
    if not Path(path).is_file():
        raise SystemExit(f"CIFAR-10N label table not found: {path} (set SUSCLI_SHARED_DATA to the folder that holds it)")
    return pd.read_csv(path, index_col="path")


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float with the per-channel CIFAR-10 normalization."""
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x.float() / 255.0 - mean) / std


def upsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) images resized to size x size: bilinear (half-pixel centres, no antialiasing), rounded back
    to uint8; `x` itself when it already has that size."""
    if x.shape[-2:] == (size, size):
        return x
    y = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return y.round_().clamp_(0, 255).to(torch.uint8)
