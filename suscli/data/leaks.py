"""Held-out images that are not held out: the same file as a training image (its path, a hard link), a byte-for-byte
copy of one under another name, or an image listed twice. The first two measure a training accuracy, the last
counts one image as two; the held-out set (--val-data) leaves them out."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence

from suscli.data.embedded import Embedded, ImageRef
from suscli.data.images import seeded_subset

# Training files read to look for copies before reading them all: a held-out set holding copies of a share f of the
# training images is found with probability 1 - (1 - f) ** PROBE (0.95 at f = 0.3%, 0.63 at 0.1%); a set made by
# copying training files in bulk is always found. Every training file is read only once a copy is found.
PROBE = 1000


def image_identity(p: ImageRef) -> tuple:
    """What makes two listed images one: the same file, wherever its path leads (a hard link's other name included: a
    split made with `cp -al` is the same files under new names), or the same row of the same dataset file. A copy
    of an image under another name is another file (copies, below)."""
    if isinstance(p, Embedded):
        return ("row", os.path.realpath(p.origin), p.row)
    try:
        st = os.stat(p)
    except (OSError, ValueError):  # missing, or a name no file can have (a NUL): its path is all there is
        return ("file", os.path.realpath(p))
    # a file system without inode numbers reports 0 for every file: the path then
    return ("inode", st.st_dev, st.st_ino) if st.st_ino else ("file", os.path.realpath(p))


def overlap(train: Sequence[ImageRef], val: Sequence[ImageRef]) -> list[int]:
    """The positions of the held-out images that are training images too (image_identity)."""
    seen = {image_identity(p) for p in train}
    return [i for i, p in enumerate(val) if image_identity(p) in seen]


def repeats(val: Sequence[ImageRef], skip: set[int]) -> list[int]:
    """The positions of the held-out rows, outside `skip`, that list an image a row before them lists (image_identity):
    counted again, a repeat would count as new evidence, narrowing the interval and the paired test's p-value."""
    seen: set[tuple] = set()
    out = []
    for i, p in enumerate(val):
        if i in skip:
            continue
        key = image_identity(p)
        if key in seen:
            out.append(i)
        seen.add(key)
    return out


def copies(train: Sequence[ImageRef], val: Sequence[ImageRef], skip: set[int], seed: int) -> dict[int, int]:
    """The held-out images, outside `skip`, whose bytes are a training image's: {held-out position: training
    position}. A copy made with `cp` or under a new name is another file with the same bytes. Files are compared
    by size first, and only those of a size both sets hold are read; a seeded probe of PROBE training files goes
    first, so a held-out set without copies costs the reading of at most that many training files."""
    sizes = {i: _size(val[i]) for i in range(len(val)) if i not in skip}
    probe = seeded_subset(len(train), PROBE, seed)
    found = _same_bytes(train, probe, val, sizes)
    if found and len(probe) < len(train):
        found = _same_bytes(train, range(len(train)), val, sizes)
    return found


def _same_bytes(
    train: Sequence[ImageRef], positions: Iterable[int], val: Sequence[ImageRef], sizes: dict[int, int | None]
) -> dict[int, int]:
    """{held-out position: training position} for the held-out images (of `sizes`) whose bytes equal one of the
    training images at `positions`."""
    train_sizes = {j: _size(train[j]) for j in positions}
    shared = (set(train_sizes.values()) & set(sizes.values())) - {None}
    digests: dict[bytes, int] = {}
    for j, s in train_sizes.items():
        if s in shared and (d := _digest(train[j])) is not None:
            digests.setdefault(d, j)
    out = {}
    for i, s in sizes.items():
        if s in shared and (d := _digest(val[i])) in digests:
            out[i] = digests[d]
    return out


def _size(p: ImageRef) -> int | None:
    """Bytes of the encoded image; None when it cannot be read or is empty (the decoder says why, later): a file of
    0 bytes (a download that failed) holds no image, and one in each set is no copy of a training image."""
    try:
        size = len(p.read()) if isinstance(p, Embedded) else os.stat(p).st_size
    except (OSError, ValueError):
        return None
    return size or None


def _digest(p: ImageRef) -> bytes | None:
    try:
        data = p.read() if isinstance(p, Embedded) else p.read_bytes()
    except (OSError, ValueError):
        return None
    return hashlib.blake2b(data, digest_size=16).digest()
