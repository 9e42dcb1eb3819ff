"""Decoding and normalizing images: the one module that touches pixels (what --data and --train-data name is
found by suscli.data.imagesets).

Images are decoded once into a uint8 tensor at the size a model needs and shared by every model that needs
the same size and channel count; normalization (and a model's BGR channel order) happens per batch, because models
in one pool may differ.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import random
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from suscli.data.cache import entry_key, entry_path, load_entry, save_entry
from suscli.data.embedded import Embedded, ImageRef
from suscli.errors import InputError, MemoryRefused, UsageError, plural
from suscli.files import MEMORY_MARGIN, available_memory, human_size, printable
from suscli.data.imagesets import Listing, read_labeled, read_unlabeled

Progress = Callable[[str, int, int], None]  # (stage, done, total)
# What to do about a set too large to decode in memory: the options that sample it (the held-out set has its own)
SAMPLE_FIX = "measure on a seeded subset: --samples N for --data, --train-samples N for --train-data"


# How an image is brought to the model's side, as the model's own tool did: "crop" resizes the shorter side to
# size/crop_pct and center-crops (torchvision, timm, a Hugging Face `shortest_edge`); "stretch" resizes the whole
# image to a square of that side, aspect ratio not kept, then center-crops (a Hugging Face `size` of height and
# width, timm's crop_mode "squash").
RESIZES = ("crop", "stretch")
# Every decode is a square of one side: a model whose tool records, or whose config names, an input shape that is not
# square (32x64) is told so, since --image-size, one side, cannot help it (docs/score.md, Preprocessing).
SQUARE_ONLY = "suscli feeds square images only"
# PIL's resampling filters by the names timm uses; a Hugging Face processor's `resample` is PIL's code for one.
INTERPOLATIONS = {r.name.lower(): r for r in Image.Resampling}
# Where the center crop starts when the margin it leaves is odd: "round" is torchvision's CenterCrop (timm's too),
# int(round(margin / 2)) with Python's round, half to even (a margin of 3 starts at 2, of 5 at 2, of 7 at 4); "floor"
# is Hugging Face's image processors', margin // 2 (1, 2 and 3).
CROP_OFFSETS = ("round", "floor")
# The order of the colour channels a model takes: decoded images are RGB; "BGR" reverses them after normalization (the
# mean and std are the RGB image's, per channel), as the image processors of Hugging Face's MobileViT and PP-LCNet do.
# A step of the per-model transform (normalizer), not of the decode: models that differ in it share the decoded pixels.
CHANNEL_ORDERS = ("RGB", "BGR")
# PIL's own Image.MAX_IMAGE_PIXELS: what bounds a resize's memory where a program lifted that limit (set it to None)
PIL_PIXELS = 1024 * 1024 * 1024 // 4 // 3
# The decode cache's name for the scan of a set's EXIF orientations (upright_set), in place of a transform's
ORIENTATION_SCAN = "EXIF orientation"
# EXIF's Orientation tag (PIL.ExifTags.Base.Orientation, which Pillow 9.0 to 9.2 do not have)
ORIENTATION = 0x0112

# PIL logs why it refuses some damaged files ("More samples per pixel than can be decoded: 131") as errors before it
# raises; with no handler anywhere Python printed them to stderr, a second line beside suscli's own for an image that is
# only counted as unreadable. A handler of PIL's own keeps them off stderr; a program that configures logging still
# gets them, as they go on to its handlers.
logging.getLogger("PIL").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class Sizing:
    """The decode's part of a Preprocess: how an image is brought to the model's side (RESIZES, INTERPOLATIONS,
    CROP_OFFSETS). Everything that changes the decoded pixels but the channels, so what the decode cache is keyed on;
    models that differ only in normalization or channel order share one decode."""

    image_size: int
    crop_pct: float = 1.0
    resize: str = "crop"
    interpolation: str = "bilinear"
    crop_offset: str = "round"

    @classmethod
    def of(cls, sizing: "Sizing | int") -> "Sizing":
        """`sizing` itself, or for a side alone (an int, numpy's too) whole images at that side."""
        return sizing if isinstance(sizing, Sizing) else cls(int(sizing))

    def check(self) -> None:
        if self.resize not in RESIZES or self.interpolation not in INTERPOLATIONS or self.crop_offset not in CROP_OFFSETS:
            raise UsageError(
                f"unknown resize {self.resize!r}, interpolation {self.interpolation!r} or crop offset {self.crop_offset!r}",
                fix=f"resize is one of {', '.join(RESIZES)}; interpolation one of {', '.join(INTERPOLATIONS)}; crop offset "
                f"one of {', '.join(CROP_OFFSETS)}",
            )

    def transform(self, channels: int) -> str:
        """Its name in the decode cache's key (suscli.data.cache.entry_key). Every crop started at "floor" before the
        offset was chosen, so a floor crop is named as it was then (within one cache FORMAT its entries stay valid),
        and "round" is named."""
        offset = "" if self.crop_offset == "floor" else f" {self.crop_offset}"
        return f"{self.image_size} {channels} {self.crop_pct!r} {self.resize} {self.interpolation}{offset}"


@dataclass(frozen=True)
class Preprocess:
    """How raw pixels become model inputs: resize (`resize`, with `interpolation`) to size/crop_pct, center-crop,
    normalize, then put the channels in `channel_order`."""

    image_size: int | None
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    crop_pct: float = 1.0
    resize: str = "crop"
    interpolation: str = "bilinear"
    crop_offset: str = "round"
    channel_order: str = "RGB"

    @classmethod
    def from_record(cls, record: dict) -> "Preprocess":
        """The preprocessing a result records (details.preprocess); one stored before resize and interpolation were
        recorded was the default of both, one stored before crop_offset was recorded was cropped at "floor", and one
        stored before channel_order was recorded was fed RGB."""
        resize, interpolation = record.get("resize", "crop"), record.get("interpolation", "bilinear")
        mean, std, offset = tuple(record["mean"]), tuple(record["std"]), record.get("crop_offset", "floor")
        order = record.get("channel_order", "RGB")
        return cls(record["image_size"], mean, std, record["crop_pct"], resize, interpolation, offset, order)

    @property
    def side(self) -> int:
        """The input side once chosen: every preprocessing a model is measured with has one (only a preset may not)."""
        if self.image_size is None:
            raise ValueError("no image size chosen")
        return self.image_size

    @property
    def sizing(self) -> Sizing:
        """What the decode does (Sizing); the rest, normalizer(), is applied per model."""
        return Sizing(self.side, self.crop_pct, self.resize, self.interpolation, self.crop_offset)

    def normalizer(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The per-model step from decoded pixels to inputs (normalizer): what models sharing the decoded pixels differ in."""
        return normalizer(self.mean, self.std, self.channel_order)


PRESETS: dict[str, Preprocess] = {
    # CIFAR-10 training-set channel statistics, as used by most CIFAR training scripts
    "cifar10": Preprocess(32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    # torchvision's ImageNet weights: resize 256, center crop 224
    "imagenet": Preprocess(224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), crop_pct=0.875),
    "none": Preprocess(None),
}


@dataclass
class DecodedImages:
    """Pixels of the images that could be read, in the order of `paths`."""

    pixels: torch.Tensor  # (N, C, H, W) uint8
    paths: list[ImageRef]
    kept: list[int]  # index into the listed files of each decoded image
    unreadable: list[tuple[ImageRef, str]] = field(default_factory=list)


def seeded_subset(n_items: int, n: int | None, seed: int) -> list[int]:
    """Indices of a seeded random subset of size n (all items when n is None or too large), in sorted order."""
    if n is None or n >= n_items:
        return list(range(n_items))
    if n <= 0:
        raise UsageError(f"sample size must be positive, got {n}")
    return sorted(random.Random(seed).sample(range(n_items), n))


class _RowBytes(io.BytesIO):
    """The bytes of an image held in a dataset, shown as its row: PIL's errors name a file object by its repr, which
    for a BytesIO is a memory address ("cannot identify image file <_io.BytesIO object at 0x7f...>")."""

    def __init__(self, item: Embedded) -> None:
        super().__init__(item.read())
        self.item = item

    def __repr__(self) -> str:
        return repr(printable(self.item))


def _opened(item: ImageRef) -> Path | io.BytesIO:
    """What PIL opens: the file, or the bytes of an image held in a dataset."""
    return _RowBytes(item) if isinstance(item, Embedded) else item


def _decode_one(path: ImageRef, sizing: Sizing, channels: int, upright: bool) -> np.ndarray:
    size, resample = sizing.image_size, INTERPOLATIONS[sizing.interpolation]
    short = resize_side(size, sizing.crop_pct)
    with Image.open(_opened(path)) as img:
        # JPEG: decoded at a reduced scale when much larger, never below the side it is resized to (both sides at
        # least `short`), which it would then be enlarged to
        img.draft("RGB" if channels == 3 else "L", (short, short))
        img = _upright(img) if upright else img
        img = img.convert("RGB" if channels == 3 else "L")
        w, h = img.size
        if (w, h, short) != (size, size, size):  # at the input size, resize and crop change nothing only when crop_pct is 1
            rw, rh = _resized(w, h, size, short, sizing.resize)
            left, top = center_offset(rw - size, sizing.crop_offset), center_offset(rh - size, sizing.crop_offset)
            if rw * rh <= max(w * h, Image.MAX_IMAGE_PIXELS or PIL_PIXELS):  # as much memory as the largest image PIL decodes
                img = img.resize((rw, rh), resample).crop((left, top, left + size, top + size))
            else:  # a sliver of an image, resized whole, takes gigabytes (a 1x100,000 PNG of 370 bytes: 20 GB at 224 px)
                box = (left * w / rw, top * h / rh, (left + size) * w / rw, (top + size) * h / rh)
                img = img.resize((size, size), resample, box=box)  # only the part the crop keeps
        arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _upright(img: Image.Image) -> Image.Image:
    """An image turned as its EXIF orientation says, as the `datasets` library's Image feature (from its release 2.19)
    turns a dataset's images when it decodes them for training (a phone's portrait photo, stored sideways);
    torchvision's loader, which the files of folders and lists are read as, does not."""
    if img.getexif().get(ORIENTATION) is None:
        return img
    return ImageOps.exif_transpose(img)


def upright_set(listing: Listing, items: Sequence[ImageRef], cache_dir: Path | None = None) -> bool:
    """Whether a set's images (`items`, those of `listing` measured) are decoded turned by their EXIF orientation: a
    dataset's always, as the datasets library decodes them; those of a Hugging Face ImageFolder, which that library
    loads for training too, where one of them carries an orientation that turns it. Decoded as stored, a set with none
    is the same pixels, and keeps the decode cache entries and the data identity (a results file's rows) it had.
    The answer is kept in `cache_dir` as a decode cache entry of its own, keyed by the files' identities: read from
    every image's header (60-70 us an image), it cost every run that much where the pixels came from the cache."""
    if listing.upright or not listing.imagefolder:
        return listing.upright
    where = None if cache_dir is None else entry_path(cache_dir, entry_key(items, ORIENTATION_SCAN))
    kept = None if where is None else load_entry(where)
    if kept is not None and isinstance(kept.get("upright"), bool):
        return kept["upright"]
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        turned = any(pool.map(_sideways, items))
    if where is not None:
        save_entry(where, {"upright": turned})
    return turned


def _sideways(path: ImageRef) -> bool:
    """Whether an image's EXIF orientation turns it (2 to 8; 1 is as stored), read from its header alone: PIL's own
    PNG reader decodes the whole image to find an EXIF chunk after the pixels, which writers put before them."""
    try:
        with warnings.catch_warnings(), Image.open(_opened(path)) as img:
            warnings.simplefilter("ignore")
            return Image.Image.getexif(img).get(ORIENTATION, 1) in range(2, 9)
    except Exception:  # unreadable: decoding counts it
        return False


def resize_side(size: int, crop_pct: float) -> int:
    """The side resized to before the center crop of `size`, rounded down as timm (math.floor), torchvision and Hugging
    Face (int) do: rounding to nearest resized a 32 px input at crop 0.875 to 37 px where they resize to 36. The
    tolerance lets a ratio stored as crop / size (a Hugging Face processor's) land back on its size, not one below."""
    return math.floor(size / crop_pct + 1e-6)


def center_offset(margin: int, rule: str) -> int:
    """Where the center crop starts in a side `margin` pixels longer than it, by `rule` (CROP_OFFSETS)."""
    return margin // 2 if rule == "floor" else int(round(margin / 2.0))


def _resized(w: int, h: int, size: int, short: int, resize: str) -> tuple[int, int]:
    """The (width, height) a w x h image is resized to before the center crop of `size`: its shorter side to `short`
    and the longer in proportion, rounded down as torchvision's Resize and Hugging Face's do, or a square of `short`
    ("stretch")."""
    if resize == "stretch":
        return short, short
    shorter = min(w, h)
    return max(size, short * w // shorter), max(size, short * h // shorter)


def check_channels(channels: int) -> None:
    """Refuse a first layer of another channel count than images are decoded to (an RGBA or RGB-plus-depth network)."""
    if channels not in (1, 3):
        raise InputError(f"the model's first layer takes {channels} channels; suscli feeds images as 1 (grayscale) or 3 (RGB)")


def decode_images(
    paths: Sequence[ImageRef],
    sizing: Sizing | int,
    *,
    channels: int = 3,
    strict: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
    memory_fix: str = SAMPLE_FIX,
    upright: bool = False,
) -> DecodedImages:
    """Decode `paths` as `sizing` says (an int: that side, whole images) into one uint8 tensor, in parallel threads
    (PIL releases the GIL while decoding).

    Files that cannot be decoded are skipped and listed in `unreadable`, unless `strict`. With `cache_dir`,
    an earlier decode of the same unchanged files with the same transform is read back instead (suscli.data.cache),
    and a new decode is stored there for the next run. `memory_fix` is what to do when they would not fit in memory.
    `upright`: images turned by their EXIF orientation (a dataset's, as the datasets library decodes them).
    """
    sizing = Sizing.of(sizing)
    sizing.check()
    image_size = sizing.image_size
    check_channels(channels)
    need, free = MEMORY_MARGIN * len(paths) * channels * image_size**2, available_memory()
    if free is not None and need > free:
        raise MemoryRefused(
            f"decoding {len(paths):,} images at {image_size}x{image_size} takes about {human_size(need)} of memory but "
            f"{human_size(free)} is available; refused rather than swapping",
            fix=memory_fix,
        )
    if cache_dir is None:
        return _decode_all(paths, sizing, channels, strict, workers, progress, upright)
    where = entry_path(cache_dir, entry_key(paths, sizing.transform(channels) + (" upright" if upright else "")))
    decoded = _from_entry(load_entry(where), paths, image_size, channels)
    if decoded is None:
        decoded = _decode_all(paths, sizing, channels, strict, workers, progress, upright)
        kept = set(decoded.kept)  # the unreadable files, in the order they are listed in
        save_entry(
            where,
            {
                "pixels": decoded.pixels,
                "kept": torch.tensor(decoded.kept, dtype=torch.int64),
                "unreadable": torch.tensor([i for i in range(len(paths)) if i not in kept], dtype=torch.int64),
                "errors": [e for _, e in decoded.unreadable],
            },
        )
        return decoded
    if strict and decoded.unreadable:
        raise _strict_error(*decoded.unreadable[0])
    if progress:
        progress("decode images (cached)", len(paths), len(paths))
    return decoded


def _decode_all(
    paths: Sequence[ImageRef],
    sizing: Sizing,
    channels: int,
    strict: bool,
    workers: int | None,
    progress: Progress | None,
    upright: bool = False,
) -> DecodedImages:
    """Every image decoded as `sizing` says (turned by its EXIF orientation when `upright`), on `workers` threads."""
    out = np.empty((len(paths), channels, sizing.image_size, sizing.image_size), dtype=np.uint8)
    kept: list[int] = []
    unreadable: list[tuple[ImageRef, str]] = []

    def work(i: int) -> tuple[int, str | None]:
        try:
            out[i] = _decode_one(paths[i], sizing, channels, upright)
            return i, None
        except Exception as e:  # PIL turns damaged bytes into many types (fuzzing a TIFF gave TypeError): all unreadable
            return i, f"{type(e).__name__}: {e}".splitlines()[0]

    workers = workers or min(8, os.cpu_count() or 1)
    # PIL warns on stderr about damaged metadata and images of 1-2x Image.MAX_IMAGE_PIXELS (larger ones it refuses:
    # unreadable files). Such an image is decoded anyway (one at full size per thread) or counted as unreadable.
    with warnings.catch_warnings(), ThreadPoolExecutor(workers) as pool:
        warnings.simplefilter("ignore")
        for done, (i, err) in enumerate(pool.map(work, range(len(paths))), start=1):
            if err is None:
                kept.append(i)
            else:
                if strict:
                    raise _strict_error(paths[i], err)
                unreadable.append((paths[i], err))
            if progress and (done % 256 == 0 or done == len(paths)):
                progress("decode images", done, len(paths))
    if not kept:
        raise _none_decoded(len(paths), unreadable)
    pixels = torch.from_numpy(out[kept] if len(kept) < len(paths) else out)
    return DecodedImages(pixels=pixels, paths=[paths[i] for i in kept], kept=kept, unreadable=unreadable)


def _header_size(path: ImageRef) -> tuple[int, int] | None:
    found = _header(path)
    return found[0] if found else None


def _header(path: ImageRef) -> tuple[tuple[int, int], str] | None:
    """An image's size and PIL mode, read from its header."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # before the file is opened: PIL warns of a bomb or a truncated TIFF as it opens one
            with Image.open(_opened(path)) as img:
                return img.size, img.mode
    except Exception:  # unreadable: decoding counts it, or fails on it with --strict
        return None


GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}
DEEP_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}  # PIL's convert clips their values above 255 to white


def deep_note(paths: Sequence[ImageRef], origin: Path, most: int = 20) -> list[str]:
    """A note for each kind of deep image among the first `most` of a set: floating-point (PIL's mode F), and 16-bit
    (or 32-bit) grayscale. They are read as ImageFolder's loader reads them (docs/score.md, Pixels), every float cut to
    a whole number (values from 0 to 1 all black) and every value above 255 clipped to white, and a model trained on
    them through a loader that scales them (torchvision's decode_image, OpenCV, a float TIFF times 255) was measured
    on nearly blank images without a word. A set mixing the kinds got the float note alone. Their headers alone are
    read, as common_look reads them."""
    modes = [mode for _, mode in filter(None, map(_header, paths[:most]))]
    floats = [mode for mode in modes if mode == "F"]
    deep = [mode for mode in modes if mode in DEEP_MODES]
    readable = "readable " if len(modes) < min(len(paths), most) else ""  # "1 of the 13 images" of a folder of 15
    counted = f"of the {'first ' if len(paths) > most else ''}{len(modes)} {readable}images of {printable(origin)}"
    notes = []
    if floats:
        notes.append(
            f"{len(floats)} {counted} are floating-point grayscale (PIL mode F): read as torchvision's ImageFolder reads them, every "
            "value cut to a whole number from 0 to 255 (values from 0 to 1 reach the model black); if it was trained on "
            "them scaled to 8 bits, convert them so first (times 255)"
        )
    if deep:
        notes.append(
            f"{len(deep)} {counted} are 16- or 32-bit grayscale (PIL mode {deep[0]}): "
            "read as torchvision's ImageFolder reads them, every value above 255 clipped to white (a set "
            "that uses the deeper range reaches the model nearly blank); if it was trained on them scaled to 8 bits, convert them so first (their high byte)"
        )
    return notes


def common_look(paths: Sequence[ImageRef], most: int = 20) -> tuple[tuple[int, int], bool] | None:
    """The size and whether colour (not gray) shared by the first `most` readable images of a set, or None where they
    differ (a set of many sizes): a set unlike another in both is told apart by a look at a few headers."""
    looks = {(size, mode not in GRAY_MODES) for size, mode in filter(None, map(_header, paths[:most]))}
    return looks.pop() if len(looks) == 1 else None


class NoneDecoded(InputError):
    """Every image of a set unreadable: an error for a set, but for one stage of a growing sample (a part of the set,
    maybe of a few images) only its images skipped (run.audit)."""


def _none_decoded(count: int, unreadable: list[tuple[ImageRef, str]]) -> InputError:
    """Every image unreadable: the first file and its decoder's error, which says why (a set of class folders
    was named by its first folder alone, and no reason given). The caller names the set (named_set)."""
    first = f", the first ({printable(unreadable[0][0])}): {unreadable[0][1]}" if unreadable else ""
    return NoneDecoded(f"none of the {count:,} image files could be decoded{first}", fix="check that they are valid images")


def named_set(kind: str, source: ImageSource) -> contextlib.AbstractContextManager[None]:
    """Errors in decoding `source` named by the set as it was given ("training set data/train: ..."): a decoder's
    error names one file, whose folder may be one class folder of the set, or hold another set's images too."""
    return _prefixed(f"{kind} {printable(source.origin)}" if source.origin else kind)


@contextlib.contextmanager
def _prefixed(where: str) -> Iterator[None]:
    try:
        yield
    except InputError as e:  # its own class kept (NoneDecoded, MemoryRefused), for a caller that tells them apart
        raise type(e)(f"{where}: {e.message}", fix=e.fix) from None


def _strict_error(path: ImageRef, err: str) -> InputError:
    return InputError(f"cannot decode image {path}: {err}", fix="remove the file, or drop --strict to skip unreadable images")


def _from_entry(entry: dict | None, paths: Sequence[ImageRef], image_size: int, channels: int) -> DecodedImages | None:
    """A cache entry as DecodedImages; None unless it is consistent with these files and this transform."""
    if entry is None:
        return None
    try:
        pixels, kept, bad, errors = entry["pixels"], entry["kept"].tolist(), entry["unreadable"].tolist(), entry["errors"]
        consistent = (
            pixels.dtype == torch.uint8
            and tuple(pixels.shape) == (len(kept), channels, image_size, image_size)
            and sorted(kept + bad) == list(range(len(paths)))
            and len(errors) == len(bad)
            and all(isinstance(e, str) for e in errors)
        )
    except (KeyError, AttributeError, TypeError):
        return None
    if not consistent or not kept:
        return None
    return DecodedImages(pixels=pixels, paths=[paths[i] for i in kept], kept=kept, unreadable=[(paths[i], e) for i, e in zip(bad, errors)])


def normalizer(mean: Sequence[float], std: Sequence[float], channel_order: str = "RGB") -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 (B, C, H, W) -> float32 normalized; channel statistics broadcast to the image's channel count. With
    `channel_order` "BGR" the three channels are then reversed (CHANNEL_ORDERS); a grayscale image has one to reverse."""
    if channel_order not in CHANNEL_ORDERS:
        raise UsageError(f"unknown channel order {channel_order!r}", fix=f"channel order is one of {', '.join(CHANNEL_ORDERS)}")

    def apply(batch: torch.Tensor) -> torch.Tensor:
        c = batch.shape[1]
        m = torch.tensor(_fit_channels(mean, c), dtype=torch.float32, device=batch.device).view(1, c, 1, 1)
        s = torch.tensor(_fit_channels(std, c), dtype=torch.float32, device=batch.device).view(1, c, 1, 1)
        out = (batch.float() / 255.0 - m) / s
        return out.flip(1) if channel_order == "BGR" else out

    return apply


def _fit_channels(values: Sequence[float], channels: int) -> list[float]:
    values = list(values)
    if len(values) == channels:
        return values
    if len(values) == 1:
        return values * channels
    if channels == 1 and len(values) == 3:  # grayscale input, RGB statistics: use their average
        return [sum(values) / len(values)]
    raise UsageError(f"normalization has {len(values)} values but the images have {channels} {plural(channels, 'channel')}")


@dataclass
class ImageSource:
    """A set of images (with labels for a training set), decoded on first use and then shared.

    Every model that needs the same size and channel count reuses one decoded tensor, so a pool of models
    costs one decode, not one per model.
    """

    paths: list[ImageRef]  # image files, or images held in a dataset file
    labels: list[int] | None = None
    population: int = 0  # files listed before sampling
    strict: bool = False
    cache_dir: Path | None = None  # on-disk cache of decoded images (suscli.data.cache); None: decode every run
    origin: Path | None = None  # the folder, list or dataset the images were listed from, for messages
    label_names: list[str] | None = None  # labels given by class name: label i is label_names[i] (suscli.data.labels)
    notes: list[str] = field(default_factory=list)  # what the listing left out, and why: shown on every row
    folders: list[str] | None = None  # labels of class folders: label i is folders[i] (suscli.data.labels.folder_ids)
    empty_folders: list[str] = field(default_factory=list)  # class folders holding no image, which keep their ids
    names_order: str | None = None  # how label_names number the labels where not sorted (a dataset's ClassLabel)
    memory_fix: str = SAMPLE_FIX  # what to do when the set would not fit in memory: the option that samples it
    upright: bool = False  # a dataset's images, turned by their EXIF orientation as the datasets library decodes them
    written: dict[ImageRef, str] = field(default_factory=dict)  # a label file's images, each as its row writes the path
    _cache: dict[tuple, tuple[torch.Tensor, torch.Tensor | None, list[tuple[ImageRef, str]]]] = field(default_factory=dict, repr=False)
    _sizes: set[tuple[int, int]] | None = field(default=None, repr=False)

    def subset(self, positions: Sequence[int], population: int) -> "ImageSource":
        """The images at `positions` (a sample, or the whole listing in another order), with the listing's labels and
        settings, drawn from a set of `population`; decoded afresh, on first use."""
        return ImageSource(
            [self.paths[i] for i in positions],
            None if self.labels is None else [self.labels[i] for i in positions],
            population=population,
            strict=self.strict,
            cache_dir=self.cache_dir,
            origin=self.origin,
            label_names=self.label_names,
            folders=self.folders,
            empty_folders=self.empty_folders,
            names_order=self.names_order,
            notes=self.notes,
            memory_fix=self.memory_fix,
            upright=self.upright,
            written=self.written,
        )

    def sizes(self) -> set[tuple[int, int]]:
        """The (width, height) of every readable image, from the file headers alone (nothing is decoded)."""
        if self._sizes is None:
            with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
                self._sizes = {size for size in pool.map(_header_size, self.paths) if size is not None}
        return self._sizes

    def decoded(
        self, sizing: Sizing | int, channels: int, device: torch.device | None = None, progress: Progress | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, list[tuple[ImageRef, str]]]:
        """(uint8 pixels on `device`, labels of the decoded images or None, unreadable images), decoded once per
        `sizing` (a Preprocess's .sizing; an int: that side, whole images) and channel count."""
        sizing = Sizing.of(sizing)
        key = (sizing, channels, str(device or "cpu"))
        if key not in self._cache:
            cpu_key = (sizing, channels, "cpu")
            if cpu_key not in self._cache:
                d = decode_images(
                    self.paths,
                    sizing,
                    channels=channels,
                    strict=self.strict,
                    progress=progress,
                    cache_dir=self.cache_dir,
                    memory_fix=self.memory_fix,
                    upright=self.upright,
                )
                labels = torch.tensor([self.labels[i] for i in d.kept]) if self.labels is not None else None
                self._cache[cpu_key] = (d.pixels, labels, d.unreadable)
            pixels, labels, unreadable = self._cache[cpu_key]
            if device is not None and device.type != "cpu":
                self._cache[key] = (pixels.to(device), None if labels is None else labels.to(device), unreadable)
        return self._cache[key]


def unlabeled_source(
    source: str | Path,
    *,
    samples: int | None = None,
    seed: int = 0,
    strict: bool = False,
    cache_dir: Path | None = None,
    image_column: str | None = None,
) -> ImageSource:
    """The unlabeled images susceptibility is measured on (suscli.data.imagesets: a folder, a list, a dataset), or a
    seeded subset of them."""
    listing = read_unlabeled(Path(source), image_column)
    keep = seeded_subset(len(listing.items), samples, seed)
    items = [listing.items[i] for i in keep]
    return ImageSource(
        items,
        population=len(listing.items),
        strict=strict,
        cache_dir=cache_dir,
        origin=Path(source),
        notes=listing.notes + deep_note(items, Path(source)),
        upright=upright_set(listing, items, cache_dir),
    )


def labeled_source(
    source: str | Path,
    *,
    samples: int | None = None,
    seed: int = 0,
    strict: bool = False,
    cache_dir: Path | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
) -> ImageSource:
    """The training set with its own labels (suscli.data.imagesets: class folders, a label CSV, a dataset), maybe
    subsampled."""
    listing = read_labeled(Path(source), image_column, label_column)
    keep = seeded_subset(len(listing.items), samples, seed)
    labels = listing.labels or []
    items = [listing.items[i] for i in keep]
    return ImageSource(
        items,
        [labels[i] for i in keep],
        population=len(listing.items),
        strict=strict,
        cache_dir=cache_dir,
        origin=Path(source),
        label_names=listing.label_names,
        folders=listing.folders,
        empty_folders=listing.empty_folders,
        names_order=listing.names_order,
        notes=listing.notes + deep_note(items, Path(source)),
        upright=upright_set(listing, items, cache_dir),
        written=listing.written,
    )
