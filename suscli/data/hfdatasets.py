"""Hugging Face datasets as users keep them: a folder `Dataset.save_to_disk` wrote, or parquet files
(`Dataset.to_parquet`, a Hub dataset's `data/` shards). Read with the optional `datasets` extra.

The image and label columns are the ones the dataset's features say (an `Image` column, a `ClassLabel` column),
else found by their type and name, or named by --image-column/--label-column. Images stay where they are (the
memory-mapped arrow file, the parquet column) until decoded, by the same pipeline and cache as files
(suscli.data.embedded); an image stored as a path is read as that file. A row without an image is an unreadable image,
a row without a label (None, or ClassLabel's -1) is left out and counted.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import itertools
import json
import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suscli.data.embedded import Embedded, ImageRef
from suscli.errors import InputError, first_line
from suscli.extras import require
from suscli.files import MEMORY_MARGIN, available_memory, human_size
from suscli.data.tables import LABEL_COLUMNS, PATH_COLUMNS, parquet_bytes
from suscli.data.walk import is_hidden, is_image_name

_SHARD = re.compile(r"^(.+?)-(\d+)-of-(\d+)\.parquet$", re.IGNORECASE)  # the Hub's train-00000-of-00002.parquet
# The names of a dataset's splits, as Hugging Face's datasets finds them in file and folder names
# (data_files.SPLIT_KEYWORDS): training, then held-out (validation before test); a name or a word of it (`seg_train`)
SPLIT_KEYWORDS = (("train", "training"), ("validation", "valid", "dev", "val"), ("test", "testing", "eval", "evaluation"))
SPLIT_WORDS = re.compile(r"[-._ 0-9]+")
_REWRITE = "write it again with save_to_disk or to_parquet"
# Labellings a dataset may hold side by side (CIFAR-100's 100 classes and their 20 superclasses): taken where no column
# is named like a label, and the user asked which where the dataset holds both
GRAINS = ("fine_label", "coarse_label")
ROW_MEMORY = 512  # bytes of Python objects per row listed (its image reference, label, list slots), with room to spare


@dataclass
class Columns:
    """The image of every row, and its label (None where it has none): class ids, or class names (`by_name`)."""

    images: list[ImageRef]
    labels: list[Any] | None = None
    by_name: bool = False
    class_names: list[str] | None = None  # a ClassLabel column's names: the name of id i at index i
    notes: list[str] = field(default_factory=list)  # what of the dataset was not read
    written: dict[ImageRef, str] = field(default_factory=dict)  # an image a path names: the path as its cell writes it


def is_dataset(path: Path) -> bool:
    """A parquet file, a folder of parquet files (and no images or subfolders), or a folder `save_to_disk` wrote (a
    Dataset or a DatasetDict)."""
    if path.is_file():
        return path.suffix.lower() == ".parquet"
    if not path.is_dir():
        return False
    if (path / "dataset_dict.json").is_file() or ((path / "state.json").is_file() and (path / "dataset_info.json").is_file()):
        return True
    try:
        entries = [p for p in path.iterdir() if not is_hidden(p.name)]
    except OSError:  # unreadable: the folder walk counts it
        return False
    parquet = [p for p in entries if p.suffix.lower() == ".parquet" and p.is_file()]
    return bool(parquet) and not any(p.is_dir() or is_image_name(p.name) for p in entries)  # not a folder of images


def read_dataset(path: Path, *, image_column: str | None = None, label_column: str | None = None, labeled: bool = False) -> Columns:
    """The images (and labels, when `labeled`) of the dataset at `path`."""
    datasets = require("datasets", "datasets", "a Hugging Face dataset")
    import pyarrow as pa

    parquet = _is_parquet(path)
    table, features = _parquet(path, image_column, label_column, labeled) if parquet else _saved(path, datasets)
    notes = _missing_shards(path) if parquet else []
    if table.num_rows == 0:
        raise _empty(path)
    _check_memory(path, ROW_MEMORY * table.num_rows, f"listing its {table.num_rows} rows")
    name = _image_column(table.schema, features, image_column, path)
    try:
        images = _images(table.column(name), path, name, pa)
        if not labeled:
            return Columns(images, notes=notes)
        written: dict[ImageRef, str] = {
            image: text for image, text in zip(images, _texts(table.column(name), pa)) if isinstance(image, Path) and text
        }
        label = _label_column(table.schema, features, label_column, path)
        labels, by_name = _labels(table.column(label), path, label, pa)
    except pa.ArrowException as e:  # offsets or lengths that point outside the file: checked before any is used
        raise InputError(f"{path}: column is damaged ({type(e).__name__}: {first_line(e)})", fix=_REWRITE) from None
    return Columns(images, labels, by_name, None if by_name else _class_names(features.get(label), labels, path, label), notes, written)


def _missing_shards(path: Path) -> list[str]:
    """A note where the parquet files read are some of a sharded split's (one `train-00000-of-00004.parquet` given
    alone): the measurement is of those rows, not of the split its name says."""
    found = [m for f in _files(path) if (m := _SHARD.match(f.name))]
    if not found:
        return []
    total = max(int(m.group(3)) for m in found)
    held = len({int(m.group(2)) for m in found})
    if held >= total:
        return []
    part = "is one" if path.is_file() else f"holds {held}"
    return [f"{path} {part} of the {total} parquet files of split {found[0].group(1)}: the rest of the split is not measured"]


def _class_names(feature: Any, labels: list[Any], path: Path, name: str) -> list[str] | None:
    """A ClassLabel column's names, which say what its ids mean (a split that lacks a class numbers the others
    otherwise than the training split, and a model may name its classes in another order); None without any."""
    names = list(getattr(feature, "names", None) or []) if type(feature).__name__ == "ClassLabel" else []
    return class_label_names(names, labels, path, name)


def class_label_names(names: list[Any], labels: list[Any], path: Path, name: str) -> list[str] | None:
    """A ClassLabel's names (a dataset's feature, or those a metadata.parquet keeps), checked against the ids its
    column holds; None without any."""
    if not names:
        return None
    beyond = [v for v in labels if v is not None and v >= len(names)]
    if beyond:
        raise InputError(f"{path}: label column {name!r} holds id {beyond[0]}, but its ClassLabel names {len(names)} classes", fix=_REWRITE)
    return [str(n) for n in names]


def _is_parquet(path: Path) -> bool:
    return path.is_file() or not ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file())


def _saved(path: Path, datasets: Any) -> tuple[Any, dict]:
    """The arrow table (memory-mapped) and features of a `save_to_disk` folder."""
    if (path / "dataset_dict.json").is_file():
        splits = readable_parts(path)
        raise InputError(
            f"{path} is a DatasetDict with the splits {', '.join(s.name for s in splits) or '(none)'}",
            fix=f"point at the folder of the split to read: {either(splits)}" if splits else "point at one split's folder",
        )
    if _no_data_files(path):
        raise _empty(path)
    with _quiet(datasets):
        try:
            ds = datasets.load_from_disk(str(path))
        except Exception as e:  # datasets raises many types on a damaged folder (JSON, arrow, missing files)
            raise InputError(f"{path}: not a readable datasets folder ({type(e).__name__}: {first_line(e)})", fix=_REWRITE) from None
    if not isinstance(ds, datasets.Dataset):
        raise InputError(f"{path} is not one dataset", fix="point at one split's folder")
    return ds.data.table, dict(ds.features)


def _empty(path: Path) -> InputError:
    """A dataset of no rows (a filter or split that kept none) is read, but holds no images to measure."""
    return InputError(f"{path}: the dataset has no rows", fix="point at a dataset that holds images")


def _no_data_files(path: Path) -> bool:
    """Whether `state.json` lists no arrow files: save_to_disk writes none for a dataset of no rows, and datasets
    fails to load that folder with an IndexError."""
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable or damaged: load_from_disk says so
        return False
    return isinstance(state, dict) and state.get("_data_files") == []


def _parquet(path: Path, image_column: str | None, label_column: str | None, labeled: bool) -> tuple[Any, dict]:
    """The table of the image and label columns of parquet files, refused before reading when it would not fit in
    memory, and the features their schema records."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features

    files = _files(path)
    # a split's files: the Hub's shards by their split, and to_parquet's one file per split (train.parquet) by its name
    named = [m.group(1) if (m := _SHARD.match(f.name)) else f.stem for f in files]
    shards = collections.Counter(n for f, n in zip(files, named) if n != f.stem or split_kind(n) is not None)
    if len({kind if (kind := split_kind(n)) is not None else n for n in shards}) > 1:
        raise InputError(f"{path} holds the parquet files of the splits {', '.join(sorted(shards))}", fix=_one_split(shards))
    try:
        metas = [pq.ParquetFile(f).metadata for f in files]
        schema = pq.read_schema(files[0])
        try:
            features = dict(Features.from_arrow_schema(schema))
        except Exception:  # no or damaged Hugging Face metadata: the columns are found by their arrow types
            features = {}
        wanted = [_image_column(schema, features, image_column, path)]
        if labeled:
            wanted.append(_label_column(schema, features, label_column, path))
        need = MEMORY_MARGIN * sum(map(parquet_bytes, metas))  # of every column, the ones not read too
        _check_memory(path, need + ROW_MEMORY * sum(m.num_rows for m in metas), f"reading its columns {', '.join(wanted)}")
        wanted = list(dict.fromkeys(wanted))  # one column may be named for both
        table = pa.concat_tables([pq.read_table(f, columns=wanted) for f in files])
    except (pa.ArrowException, OSError, ValueError, KeyError) as e:  # KeyError: a file without the first file's columns
        raise InputError(f"{path}: not a readable parquet file ({type(e).__name__}: {first_line(e)})", fix=_REWRITE) from None
    return table, features


def split_kind(name: str) -> int | None:
    """Which of SPLIT_KEYWORDS a folder's or file's name is (0 training, 1 validation, 2 test), or None."""
    words = SPLIT_WORDS.split(name.lower())
    return next((kind for kind, keywords in enumerate(SPLIT_KEYWORDS) if any(w in keywords for w in words)), None)


def readable_parts(path: Path) -> list[Path]:
    """What of a dataset folder can be read as one set: a DatasetDict's split folders, or the folder itself."""
    if (path / "dataset_dict.json").is_file():
        return sorted(p for p in path.iterdir() if (p / "state.json").is_file())
    return [path]


def either(paths: list[Path]) -> str:
    """`a or b`, `a, b or c`: the choices a fix offers."""
    return _either([str(p) for p in paths])


def _either(choices: list[str]) -> str:
    return " or ".join(choices) if len(choices) < 3 else f"{', '.join(choices[:-1])} or {choices[-1]}"


def _one_split(shards: collections.Counter[str]) -> str:
    """How to read one split: its file, or, where a split is sharded, the folder of its files alone (one of them is
    part of the split)."""
    if max(shards.values()) == 1:
        return "point at the file of the split to read"
    held = ", ".join(f"{split}: {n} file{'s' if n > 1 else ''}" for split, n in sorted(shards.items()))
    return f"move the files of the split to read into a folder of their own and point at it ({held})"


def _check_memory(path: Path, need: int, doing: str) -> None:
    """Refuse, before doing it, what would not fit in the memory available (a huge file, or one whose header lies)."""
    free = available_memory()
    if free is not None and need > free:
        raise InputError(
            f"{path}: {doing} takes about {human_size(need)} of memory but {human_size(free)} is available; refused rather than swapping",
            fix="split it into smaller files, or free memory",
        )


def _files(path: Path) -> list[Path]:
    """The parquet files a file or folder names."""
    return [path] if path.is_file() else _parquet_files(path)


def _parquet_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".parquet" and p.is_file() and not p.name.startswith("."))


def _image_column(schema: Any, features: dict, given: str | None, path: Path) -> str:
    """The column the user names, else the one Image feature, else the one column of encoded images (a struct with
    `bytes`, or binary), else the one string column named like a path."""
    import pyarrow as pa

    names = schema.names
    if given:
        return _named(names, given, path, "--image-column")
    types = {n: schema.field(n).type for n in names}
    found = [n for n, f in features.items() if type(f).__name__ == "Image" and n in names]
    found = found or [n for n in names if _encoded(types[n], pa)]
    found = found or [n for n in names if n.lower() in PATH_COLUMNS and _string(types[n], pa)]
    return _one(found, names, path, "image", "--image-column")


def _label_column(schema: Any, features: dict, given: str | None, path: Path) -> str:
    """The column the user names, else the one ClassLabel feature, else the first column named like a label, else
    the one labelling of a fine/coarse pair."""
    names = schema.names
    if given:
        return _named(names, given, path, "--label-column")
    found = [n for n, f in features.items() if type(f).__name__ == "ClassLabel" and n in names]
    found = found or [n for k in LABEL_COLUMNS for n in names if n.lower() == k][:1]
    found = found or [n for n in names if n.lower() in GRAINS]
    return _one(found, names, path, "label", "--label-column")


def _named(names: list[str], given: str, path: Path, option: str) -> str:
    if given not in names:
        raise InputError(f"{path} has no column {given!r} (its columns: {', '.join(names)})", fix=f"check {option}")
    return given


def _one(found: list[str], names: list[str], path: Path, what: str, option: str) -> str:
    if len(found) == 1:
        return found[0]
    which = f"several {what} columns ({', '.join(found)})" if found else f"no {what} column (its columns: {', '.join(names)})"
    raise InputError(f"{path} has {which}", fix=f"name it with {option}")


def _encoded(t: Any, pa: Any) -> bool:
    """Encoded images: binary, or datasets' Image storage (a struct of `bytes` and `path`)."""
    return _binary(t, pa) or (pa.types.is_struct(t) and t.get_field_index("bytes") >= 0 and _binary(t.field("bytes").type, pa))


def _binary(t: Any, pa: Any) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t)


def _string(t: Any, pa: Any) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _images(column: Any, path: Path, name: str, pa: Any) -> list[ImageRef]:
    """Each row's image: its bytes in the column (read when decoded), else the file its path names."""
    import pyarrow.compute as pc

    column.validate(full=True)
    t = column.type
    if _binary(t, pa):
        data, paths = column, None
    elif _encoded(t, pa):
        data = pc.struct_field(column, "bytes")
        paths = pc.struct_field(column, "path") if t.get_field_index("path") >= 0 and _string(t.field("path").type, pa) else None
    elif _string(t, pa):
        data, paths = None, column
    else:
        raise InputError(f"{path}: column {name!r} holds {t}, not encoded images or paths", fix="name the image column with --image-column")
    cells = _Cells(data) if data is not None else lambda row: None
    held = pc.is_valid(data).to_pylist() if data is not None else [False] * len(column)
    named = paths.to_pylist() if paths is not None else [None] * len(column)
    base = path if path.is_dir() else path.parent
    return [Embedded(path, i, cells) if has or not _is_path(p) else _resolve(p, base) for i, (has, p) in enumerate(zip(held, named))]


def _texts(column: Any, pa: Any) -> list[str | None]:
    """Each row's image path as the column writes it (None where it holds none): reports name a file so, for a join
    with the dataset to find its row."""
    import pyarrow.compute as pc

    t = column.type
    if _string(t, pa):
        return column.to_pylist()
    if pa.types.is_struct(t) and t.get_field_index("path") >= 0 and _string(t.field("path").type, pa):
        return pc.struct_field(column, "path").to_pylist()
    return [None] * len(column)


def _labels(column: Any, path: Path, name: str, pa: Any) -> tuple[list[Any], bool]:
    """The label column's values, None for a row without one; class names when it holds strings. A column of booleans
    (a binary set's `is_cat`, as pandas keeps it) holds the ids 0 and 1, as int() reads False and True."""
    column.validate(full=True)
    if pa.types.is_dictionary(column.type):  # a pandas category column
        column = column.cast(column.type.value_type)
    t = column.type
    if pa.types.is_integer(t):
        return [v if v is not None and v >= 0 else None for v in column.to_pylist()], False
    if pa.types.is_boolean(t):  # refused as "holds bool, not class ids or names", the fix naming the column it found
        return [None if v is None else int(v) for v in column.to_pylist()], False
    if pa.types.is_floating(t):  # pandas stores an id column holding a missing value (NaN) as floats
        return _whole(column.to_pylist(), path, name), False
    if _string(t, pa):
        return [v.strip() if v and v.strip() else None for v in column.to_pylist()], True
    raise InputError(f"{path}: label column {name!r} holds {t}, not class ids or names", fix="name the label column with --label-column")


def _whole(values: list[float | None], path: Path, name: str) -> list[int | None]:
    """Class ids written as floats (3.0), None where missing (NaN) or negative as in an integer column; a value that
    is no whole number is no class id."""
    ids: list[int | None] = []
    for row, v in enumerate(values):
        if v is None or math.isnan(v) or v < 0:
            ids.append(None)
        elif v.is_integer():
            ids.append(int(v))
        else:
            raise InputError(f"{path}: label column {name!r} holds {v} in row {row + 1}, not a class id", fix="check --label-column")
    return ids


class _Cells:
    """Row i of a chunked binary column, found by bisection over the chunks' first rows (no copy of the column)."""

    def __init__(self, column: Any):
        self.chunks = column.chunks
        self.starts = list(itertools.accumulate([0] + [len(c) for c in self.chunks[:-1]]))

    def __call__(self, row: int) -> bytes | None:
        i = bisect.bisect_right(self.starts, row) - 1
        return self.chunks[i][row - self.starts[i]].as_py()


def _is_path(text: str | None) -> bool:
    return bool(text and "\0" not in text)


def _resolve(text: str, base: Path) -> Path:
    """A path a row names: relative to the dataset's folder when the file is there, else to the working directory."""
    p = Path(text)
    if p.is_absolute():
        return p
    return (base / p).resolve() if (base / p).exists() or not p.exists() else p.resolve()


@contextlib.contextmanager
def _quiet(datasets: Any) -> Iterator[None]:
    """datasets logs and warns on stderr; suscli reports a failure in one line of its own."""
    logging = datasets.utils.logging
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.set_verbosity(verbosity)
