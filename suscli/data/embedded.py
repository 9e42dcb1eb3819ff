"""Images that are not files: encoded bytes held in a row of a dataset file (a Hugging Face `datasets` folder, a
parquet file). They are decoded, cached and named like files; their identity is a hash of their bytes, so the same
images are decoded once wherever the dataset lies and a changed dataset is never served from an old decode.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, eq=False)
class Embedded:
    """Row `row` of the dataset at `origin`; `cells(row)` reads its encoded image, None when the row holds none."""

    origin: Path
    row: int
    cells: Callable[[int], bytes | None]

    def __str__(self) -> str:
        return f"{self.origin}[{self.row}]"

    def read(self) -> bytes:
        data = self.cells(self.row)
        if data is None:
            raise ValueError("the row holds no image")
        return data

    @functools.cached_property
    def digest(self) -> str:
        """sha256 of the encoded image ('none' for a row without one): what decides its pixels."""
        data = self.cells(self.row)
        return "none" if data is None else hashlib.sha256(data).hexdigest()


ImageRef = Path | Embedded  # an image file, or an image inside a dataset file


def place(item: ImageRef) -> Path:
    """Where an image lies, for messages: the folder of a file, the dataset of a row."""
    return item.origin if isinstance(item, Embedded) else item.parent
