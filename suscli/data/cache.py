"""The on-disk cache of decoded images: a second run over the same files skips decoding.

An entry is one `torch.save` file of plain tensors, strings and lists, named by a hash of everything that
decides its pixels: each file's path, size, modification and status-change times (a chmod that makes a file
readable again changes the latter), or for an image held in a dataset file the hash of its bytes, the transform (image size, channels, crop, resize mode, interpolation, crop offset) and the PIL version that
decoded it. It is written to a temporary file and renamed into place, and read with
`weights_only=True`, so a damaged or foreign file can never run code: it is treated as a miss and rewritten.
The cache is an optimization only: no failure to read or write it stops a run. Beside decoded images, an entry may
hold something else read from the files alone, under its own name in place of the transform: whether a Hugging Face
ImageFolder's images are turned by their EXIF orientation (suscli.data.images.upright_set).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import PIL
import torch

from suscli.data.embedded import Embedded, ImageRef
from suscli.files import remove_stale, replacing, writable

FORMAT = 4  # bump when the entry layout or the decoding changes (2: slivers resized in part, suscli.data.images;
# 3: resized sides rounded down, as the tools do, where they were rounded to nearest; an image at the input size
# resized and cropped when crop_pct < 1; 4: a JPEG decoded at a reduced scale no smaller than the side it is resized
# to, where it could be decoded at the input size and enlarged)


def default_cache_dir() -> Path:
    """$SUSCLI_CACHE_DIR, else $XDG_CACHE_HOME/suscli, else ~/.cache/suscli."""
    if env := os.environ.get("SUSCLI_CACHE_DIR"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "suscli"


def unwritable(cache_dir: Path) -> str | None:
    """Why no entry can be written in `cache_dir` (it, or a folder above it, is a file; it cannot be written), or None
    where one can: every write then failed without a word, and each run decoded again. Nothing is created here: the
    folder is made by the first entry written, which a run that reuses every result never writes."""
    place = next((p for p in (cache_dir, *cache_dir.parents) if os.path.exists(p)), None)  # no error where one is unreadable
    if place is None:
        return None
    if not os.path.isdir(place):
        return f"{place} is a file, not a folder"
    if not writable(place):
        return "no file can be created in it" if place == cache_dir else f"no folder can be created in {place}"
    return None


def entry_key(paths: Sequence[ImageRef], transform: str) -> str:
    """Hash of the files' identities (absolute path, size, mtime, ctime; the bytes' hash for an image in a dataset)
    and of `transform`, the decode's own name for what it does to them (suscli.data.images.Sizing.transform): a
    touched file, another transform, or another PIL, gives another entry."""
    h = hashlib.sha256(f"suscli-images {FORMAT} {PIL.__version__} {transform}\n".encode())
    for p in paths:
        if isinstance(p, Embedded):  # the same bytes decode the same wherever the dataset lies
            h.update(f"embedded\0{p.digest}\n".encode())
            continue
        try:
            st = os.stat(p)
            stamp = f"{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}"
        except (OSError, ValueError):  # ValueError: a name no file can have (a NUL)
            stamp = "-1"  # missing now: its error is part of the entry; a file that appears changes the key
        h.update(f"{os.path.abspath(p)}\0{stamp}\n".encode(errors="surrogateescape"))  # a name's bytes, UTF-8 or not
    return h.hexdigest()[:32]


def entry_path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / f"images-{key}.pt"


def load_entry(path: Path) -> dict | None:
    """The entry's contents, or None when it is missing, damaged or not an entry (a miss, never an error)."""
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # missing, truncated, not a torch file, or refused by the weights-only unpickler
        return None
    return entry if isinstance(entry, dict) and entry.get("format") == FORMAT else None


def save_entry(path: Path, entry: dict) -> bool:
    """Write `entry` atomically (temporary file, fsync, rename); False when it could not be written (no space,
    read-only folder), which only means the next run decodes again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(path.parent, r"images-[0-9a-f]+\.pt")  # any entry's, so that files since changed leave none for ever
        need = sum(v.numel() * v.element_size() for v in entry.values() if isinstance(v, torch.Tensor))
        if shutil.disk_usage(path.parent).free < 2 * need:  # leave room for everything else on the disk
            return False
        with replacing(path, binary=True) as f:
            torch.save({**entry, "format": FORMAT}, f)
        return True
    except (OSError, RuntimeError):  # torch.save reports a full disk as RuntimeError
        return False
