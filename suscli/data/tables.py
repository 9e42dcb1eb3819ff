"""Image lists and label files as users keep them: a `path,label` CSV whose labels are class ids or class names,
a .txt with one image path per line (and a label after it, for labelled sets), a CSV with a path column; tab-separated as .tsv, and a .csv separated by ';' or
tabs where its header says so (Excel writes ';' where the comma is the decimal mark); JSON lines (.jsonl), one object
a row, as Hugging Face's ImageFolder keeps its metadata.jsonl. Each may be compressed with gzip, bz2 or xz, as datasets
are downloaded (`labels.csv.gz`), and is read as the file it holds. Paths are relative to the file's folder.

A bad row is an error naming it (a label file is small and hand-made: a typo must not silently drop an image or
shift a class); a file too large to read into memory is refused before it is read (a compressed one, as soon as what
it holds is read past what would fit).
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import itertools
import json
import lzma
import os
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from suscli.errors import InputError, first_line
from suscli.extras import require
from suscli.files import available_memory, human_size, printable
from suscli.data.labels import by_name

# Header names of a path column and a label column (any case); other names are given with --image-column/--label-column.
PATH_COLUMNS = ("path", "file", "filename", "file_name", "filepath", "file_path", "image", "image_path", "img", "img_path")
LABEL_COLUMNS = ("label", "labels", "class", "class_name", "target", "y", "category")
LIST_SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl")
# Compressions a list or label file may be in, by suffix (`labels.csv.gz`): read as the file it holds
COMPRESSIONS: dict[str, Callable[..., IO[Any]]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
# What reading a list may raise: a damaged compressed file raises EOFError (cut short), zlib.error or lzma.LZMAError,
# which are no OSError
UNREADABLE = (OSError, UnicodeDecodeError, EOFError, zlib.error, lzma.LZMAError)
# Roboflow's classification export: each split's folder (train/, valid/, test/) holds its images and this table of a
# `filename` column and one 0/1 column per class
ONE_HOT_FILE = "_classes.csv"

# Memory a row of a list takes in Python (a path object, strings, a list), per byte of the row in the file.
ROW_MEMORY = 24
# Rows naming files of one folder after which the folder is listed once, to tell its links, rather than each name
# looked up: a few rows from a folder of a million files must not list it
LISTED_AFTER = 32
# Why a labelled set (--train-data, --val-data) of a single class is refused
ONE_CLASS = "a set of one class cannot measure accuracy: a model that names that class for every image scores 100%"


@dataclass
class LabelRows:
    """A label file's rows: the files they name, each row's path as the file writes it, labels and class names."""

    paths: list[Path]  # resolved, links followed: one file named two ways is one image
    written: list[str]  # the path cell as written: reports name an image so, for a join with the file to find its row
    labels: list[int]
    names: list[str] | None
    column: str | None = None  # the label column as the header names it; None in a file without one


def label_rows(path: Path, image_column: str | None = None, label_column: str | None = None) -> LabelRows:
    """The rows of a label file: `path,label`, or any columns under a header naming the path and
    label columns. Labels are class ids when the first row's label is a whole number ('3', or '3.0' as pandas writes
    an id column with a missing value), else class names, numbered in sorted order (suscli.data.labels maps them to
    each model's own ids); a file mixing the two is an error, which blames row 1 when its label reads as a number
    ('-1', '2.5') and a later row's is a class id. A .txt holds `path label` lines, as Caffe's and MMPretrain's
    annotation files (ImageNet's train.txt, val.txt) do: the label is the line's last word, so a path may hold spaces."""
    txt = list_suffix(path) == ".txt"
    rows = [line.strip().rsplit(None, 1) for line in _lines(path, "label file")] if txt else _rows(path, "label file")
    layout = "'path label'" if txt else "'path,label'"
    # a .txt may begin with a header line too ('path label'): read as a row, its 'label' made the file one of class
    # names and the next row's class id was blamed ("expected a class name, as in the rows before it")
    header = _header(rows, path, image_column, label_column, labeled=True) if rows and not _names_a_file(rows, path) else None
    path_at, label_at, width = header if header else (0, 1, 2)
    if not header:
        _unknown_header(rows, path, path_at, labeled=True, sep=" " if txt else ",")
    if not header and label_column and not txt and rows and len(rows[0]) > width:
        # a file split from one of several label columns with its header left behind (`tail -n +2`): its first row
        # was blamed, "expected 'path,label'", the fix of a row
        raise InputError(
            f"{path}: its first row ({printable(','.join(rows[0]))}) is no header naming column {label_column!r}, so "
            f"--label-column names none of its {len(rows[0])} columns",
            fix="keep the header line (the columns' names) at the top of each file --label-column reads",
        )
    column = rows[0][label_at] if header else None
    rows = rows[1:] if header else rows
    named: list[str] = []
    values: list[str] = []
    by_id = None  # decided by the first row
    for line, row in enumerate(rows, start=1):
        label = row[label_at].strip() if len(row) == width else ""
        whole = _class_id(label) is not None
        by_id = whole if by_id is None else by_id
        if by_id is False and whole and len(row) == width and _is_path(row[path_at]) and _number(values[0]):
            raise InputError(  # the first row made the file one of class names; it meant a class id and wrote it wrong
                f"{path}: row 1's label {values[0]!r} is not a valid class id (a whole number, 0 or more), "
                f"yet row {line}'s label {label!r} is one",
                fix="fix row 1's label, or label every row by class name",
            )
        if len(row) != width or not label or whole != by_id or not _is_path(row[path_at]):
            kind = (
                "a class id or a class name"
                if line == 1
                else "a non-negative integer label"
                if by_id
                else "a class name, as in the rows before it"
            )
            raise InputError(
                f"{path}: row {line} is {(' ' if txt else ',').join(row)!r}, expected {layout} with {kind}", fix="fix or remove that row"
            )
        named.append(row[path_at])
        values.append(label)
    paths = listed_paths(path.parent, named)
    if not paths:
        raise InputError(f"label file {path} has no rows", fix=f"write one {layout} row per image")
    if len(set(values)) < 2:
        raise InputError(f"{path}: every row has label {values[0]}; {ONE_CLASS}")
    if by_id:
        return LabelRows(paths, named, [int(v.partition(".")[0]) for v in values], None, column)  # each a _class_id
    if all(_number(v) for v in values):  # numbered as sorted strings, '10.5' would come before '2.5'
        raise InputError(
            f"{path}: every label is a number, yet none is a class id (a whole number, 0 or more): row 1's is {values[0]!r}",
            fix="write each label as its class id (0, 1, ...) or its class name",
        )
    labels, names = by_name(values)
    return LabelRows(paths, named, labels, names, column)


def unlabeled_lines(path: Path) -> list[str] | None:
    """A .txt's lines where each is a path alone, no label after it (Food-101's `apple_pie/1005649`, ImageNet-style
    `n01440764/n01440764_10026.JPEG` lists), a first line naming a path column left out; None for any other file."""
    if list_suffix(path) != ".txt":
        return None
    try:  # a `path label` file, the usual .txt, is told by its first row, and read whole once, by label_rows
        with _open(path) as f:
            first = list(itertools.islice((line.strip() for line in f if line.strip() and not line.startswith("#")), 2))
    except UNREADABLE as e:
        raise _unreadable(path, "label file", e) from None
    if first and first[0].lower() in PATH_COLUMNS:
        first = first[1:]
    if first and len(first[0].split()) > 1:
        return None
    lines = [line.strip() for line in _lines(path, "label file")]
    if lines and lines[0].lower() in PATH_COLUMNS:
        lines = lines[1:]
    return lines if lines and all(len(line.split()) == 1 for line in lines) else None


def one_hot_rows(path: Path, image_column: str | None = None, label_column: str | None = None) -> LabelRows | None:
    """The rows of a one-hot label table, as Roboflow's `_classes.csv`: a path column and one 0/1 column per class (` cat`, after Roboflow's ', '), a row's class the column holding its 1; None
    for any other table, told by its header and first row alone. A row marking no class or several is refused:
    susceptibility counts one label per image, and which one such a row means it does not say."""
    if list_suffix(path) == ".txt" or _one_hot_columns(_head(path, 2), path, image_column, label_column) is None:
        return None
    rows = _rows(path, "label file")
    found = _one_hot_columns(rows, path, image_column, label_column)
    if found is None:  # its first lines were not its first rows (a quoted cell holding a line break)
        return None
    at, columns = found
    names = [rows[0][i].strip() for i in columns]
    named: list[str] = []
    labels: list[int] = []
    for line, row in enumerate(rows[1:], start=1):
        marks = [row[i].strip() for i in columns] if len(row) == len(rows[0]) else []
        if not marks or set(marks) - {"0", "1"} or not _is_path(row[at]):
            raise InputError(
                f"{path}: row {line} is {','.join(row)!r}, expected a path and a 0 or 1 under each of its {len(columns)} class columns",
                fix="fix or remove that row",
            )
        ones = [name for name, mark in zip(names, marks) if mark == "1"]
        if len(ones) != 1:
            says = f"marks {len(ones)} classes ({', '.join(ones)})" if ones else "marks no class"
            raise InputError(
                f"{path}: row {line} ({printable(row[at].strip())}) {says}; susceptibility is measured against one label per image",
                fix="mark one class in that row, or remove the row",
            )
        named.append(row[at])
        labels.append(marks.index("1"))
    paths = listed_paths(path.parent, named)
    if not paths:
        raise InputError(f"label file {path} has no rows", fix="write one row per image")
    if len(set(labels)) < 2:
        raise InputError(f"{path}: every row marks class {names[labels[0]]!r}; {ONE_CLASS}")
    return LabelRows(paths, named, labels, names)


def _one_hot_columns(rows: list[list[str]], path: Path, image_column: str | None, label_column: str | None) -> tuple[int, list[int]] | None:
    """(path column, class columns) where the header names a path column and at least two others, and the first row
    holds a 0 or 1 under each of those; None otherwise, and where --label-column names a column to read. A header that
    also names a label column (`path,label,is_test`) is a label table with extra columns, unless the file is Roboflow's
    (a class named `label`)."""
    if label_column or len(rows) < 2:
        return None
    names = [c.strip().lower() for c in rows[0]]
    at = _column(names, image_column, PATH_COLUMNS, path, "--image-column")
    columns = [i for i in range(len(names)) if i != at]
    if at is None or len(columns) < 2 or len(rows[1]) != len(names):
        return None
    if path.name != ONE_HOT_FILE and set(names) & set(LABEL_COLUMNS):
        return None
    return (at, columns) if all(rows[1][i].strip() in ("0", "1") for i in columns) else None


def read_image_list(path: Path, image_column: str | None = None) -> list[Path]:
    """The images a list names: a .txt, one path per line (or `path label` lines, a label file's, whose labels are
    left out), or a CSV's path column (named by its header, else the first column)."""
    if list_suffix(path) == ".txt":
        lines = _lines(path)
        if lines and {w.lower() for w in lines[0].split()} <= {*PATH_COLUMNS, *LABEL_COLUMNS}:  # a header: `path label`
            lines = lines[1:]
        labeled = bool(lines) and _label_last(path.parent, lines[0])
        rows = [[line.strip().rsplit(None, 1)[0] if labeled else line] for line in lines]
        at = 0
    else:
        rows = _rows(path, "image list")
        header = _header(rows, path, image_column, None, labeled=False) if rows and not _names_a_file(rows, path) else None
        at = header[0] if header else 0
        if not header:
            _unknown_header(rows, path, at, labeled=False)
        rows = rows[1:] if header else rows
    for line, row in enumerate(rows, start=1):
        if len(row) <= at or not _is_path(row[at]):
            raise InputError(f"{path}: row {line} is {','.join(row)!r}, expected an image path", fix="fix or remove that row")
    paths = listed_paths(path.parent, [row[at] for row in rows])
    if not paths:
        raise InputError(f"image list {path} names no images", fix="write one image path per line")
    return paths


def _label_last(folder: Path, line: str) -> bool:
    """Whether a .txt list's first line is `path label`, as a label file's (ImageNet's val.txt, passed as --data as a
    label CSV is): it names no file, and does without its last word. Read whole, each line was a file that is not
    there ("none of the 4 files that val.txt lists exist, first: imgs/img_000.png 0")."""
    words = line.strip().rsplit(None, 1)
    return len(words) == 2 and _is_path(line) and not listed_path(folder, line).exists() and listed_path(folder, words[0]).exists()


def listed_path(folder: Path, text: str) -> Path:
    """The file a list row names, relative to the list's folder. A row written on Windows (`train\\cat\\1.jpg`) or
    typed in another Unicode form than the file system holds (macOS writes names decomposed, NFD: `e` and an accent
    for `é`) names no file as it is; it then names the file it finds in Windows' separators or the other form."""
    return _resolved(_named(folder, text))


def listed_paths(folder: Path, texts: Iterable[str]) -> list[Path]:
    """The files a list's rows name (listed_path), each folder resolved once: resolved one by one, every row walked
    its folders again, link by link (10 file-system calls a row; reading a 50,000-row CSV took 5 s). A name is
    then resolved on its own only where it is a link, or where the folder's listing does not hold it as written; a
    name in a folder that is not there is no link."""
    real: dict[str, str] = {}  # a folder as rows write it: where it leads
    plain: dict[str, set[str] | None] = {}  # a real folder: its names that are no link (None: the folder is not there)
    asked: Counter[str] = Counter()  # a real folder: rows naming a file in it so far
    out = []
    for text in texts:
        named = _named(folder, text)
        parent, name = os.path.split(named)
        if name in ("", ".", ".."):
            out.append(_resolved(named))
            continue
        if parent not in real:
            real[parent] = str(_resolved(parent))
        at = real[parent]
        asked[at] += 1
        if asked[at] == LISTED_AFTER:  # listed once many rows name its files; a few rows from a vast folder, never
            plain[at] = _plain_names(at)
        file = os.path.join(at, name)
        names = plain.get(at, ())
        out.append(Path(file) if names is None or name in names or not os.path.islink(file) else _resolved(file))
    return out


def absent_and_folders(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """The paths (listed_paths') that name no file, and those of the others that name a folder (a list of class
    folders is no list of images), each in their order. Where LISTED_AFTER or more are in one folder, one listing of
    it answers both for the names it holds as no link, and for all of them where the folder is not there (a listing
    and a pass over the rows for each question took twice as long: docs/performance.md). The others are looked up one
    by one: a link, a name a listing lacks that may be there all the same (in another case, where the file system
    ignores case), and the names of a folder that could be listed but not searched, whose files cannot be opened."""
    texts, by_folder = _by_folder(paths)
    there, folder = [False] * len(texts), [False] * len(texts)
    for parent, rows in by_folder.items():
        kinds = _kinds(parent) if len(rows) >= LISTED_AFTER else {}
        if kinds and not os.access(parent, os.X_OK):
            kinds = {}
        for i in rows:
            name = os.path.basename(texts[i])
            if kinds is not None and name in kinds:
                there[i], folder[i] = True, kinds[name]
            else:
                there[i] = kinds is not None and os.path.exists(texts[i])
                folder[i] = there[i] and os.path.isdir(texts[i])
    return [p for p, found in zip(paths, there) if not found], [p for p, is_folder in zip(paths, folder) if is_folder]


def _by_folder(paths: Sequence[Path]) -> tuple[list[str], dict[str, list[int]]]:
    """The paths as text, and the rows of each folder that holds them: a folder that holds many is listed once."""
    texts = [str(p) for p in paths]
    by_folder: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        by_folder.setdefault(os.path.dirname(text), []).append(i)
    return texts, by_folder


def _kinds(folder: str) -> dict[str, bool] | None:
    """Whether each name in a folder that is no link is a folder, from its listing; None where the folder is not there
    (nothing is in it), nothing where it cannot be listed otherwise (its names are then looked up one by one)."""
    try:
        with os.scandir(folder) as entries:
            return {e.name: e.is_dir() for e in entries if not e.is_symlink()}
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return {}


def _resolved(path: str) -> Path:
    """Where a path leads, links followed; a link in a loop (`ln -s a b; ln -s b a`) leads nowhere and is kept as
    written, a file that does not exist, as the list's check names it (Python before 3.13 raised RuntimeError:
    "internal error: RuntimeError: Symlink loop from ...")."""
    try:
        return Path(path).resolve()
    except RuntimeError:
        return Path(os.path.abspath(path))


def _plain_names(folder: str) -> set[str] | None:
    """The names in a folder that are no link; None where the folder is not there (nothing is in it), nothing where it
    cannot be listed otherwise (its names are then looked up one by one)."""
    try:
        with os.scandir(folder) as entries:
            return {e.name for e in entries if not e.is_symlink()}
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return set()


def _named(folder: Path, text: str) -> str:
    """The path a list row names (listed_path), not yet resolved."""
    if text.isascii() and "\\" not in text:
        return os.path.join(folder, text.strip())
    path = folder / text.strip()
    if path.exists():
        return str(path)
    for form in ("NFC", "NFD"):
        for other in (text, text.replace("\\", "/")):
            found = folder / unicodedata.normalize(form, other.strip())
            if found.exists():
                return str(found)
    return str(path)


def _class_id(label: str) -> int | None:
    """The class id a label writes: a whole number, or one with a zero fraction ('3.0': pandas writes an integer column
    holding a missing value as floats); None for anything else."""
    whole, dot, fraction = label.partition(".")
    # isdigit alone also takes '²', which int() refuses
    if whole.isascii() and whole.isdigit() and (not dot or (fraction.isascii() and fraction.isdigit() and not fraction.strip("0"))):
        return int(whole)
    return None


def _number(label: str) -> bool:
    """Whether a label that is not a class id reads as a number all the same ('-1', '+2', '3.0', '1e3'): an id
    mistyped, not a class name."""
    try:
        float(label)
    except ValueError:
        return False
    return label.lower().lstrip("+-") not in ("nan", "inf", "infinity")


def _unknown_header(rows: list[list[str]], path: Path, at: int, *, labeled: bool, sep: str = ",") -> None:
    """Refuse a first row that is a header of column names suscli does not know (`filename_full,cls`): read as a row,
    its 'path' is no file while the next row's is, and its 'label' made the file one of class names, so that the
    next row's class id was blamed ("expected a class name, as in the rows before it")."""
    if len(rows) < 2 or any(len(r) <= at or not _is_path(r[at]) for r in rows[:2]):
        return
    first, second = ((path.parent / r[at].strip()) for r in rows[:2])
    if not first.exists() and second.exists():
        known = f"a path column: {', '.join(PATH_COLUMNS[:4])}, ..." + (
            f"; a label column: {', '.join(LABEL_COLUMNS[:3])}, ..." if labeled else ""
        )
        raise InputError(
            f"{path}: its first row ({sep.join(rows[0])}) is no file but reads as a header, naming no column suscli knows ({known})",
            fix="name its columns with --image-column and --label-column, or rename them"
            if labeled
            else "name its path column with --image-column, or rename it",
        )


def _is_path(text: str) -> bool:
    return bool(text.strip()) and "\0" not in text  # a NUL cannot be in a path (os.stat raises ValueError)


def _names_a_file(rows: list[list[str]], path: Path) -> bool:
    """Whether the first row's first cell names a file: then it is a row, not a header, whatever its label names (a
    headerless file's first image of class 'y' or 'category', a known column name, was dropped as the header)."""
    return bool(rows[0]) and _is_path(rows[0][0]) and listed_path(path.parent, rows[0][0]).is_file()


def _header(
    rows: list[list[str]], path: Path, image_column: str | None, label_column: str | None, *, labeled: bool
) -> tuple[int, int, int] | None:
    """(path column, label column, width) when the first row is a header: it holds a column name the options give or
    a known one. A header must have the columns the options name."""
    names = [c.strip().lower() for c in rows[0]]
    wanted = [c.lower() for c in (image_column, label_column) if c]
    if not (set(wanted) & set(names) or set(names) & {*PATH_COLUMNS, *LABEL_COLUMNS}):
        return None  # no header: the columns are in their places, whatever the options name (they may be a dataset's)
    at_path = _column(names, image_column, PATH_COLUMNS, path, "--image-column")
    # found for an image list too, whose path column it is not: a label file `label,img_file` passed as --data read its
    # labels as paths ("none of the 4 files that labels.csv lists exist, first: 0")
    at_label = _column(names, label_column, LABEL_COLUMNS, path, "--label-column")
    if at_path is None:
        if labeled and len(names) != 2:
            raise InputError(f"{path}: its header ({','.join(rows[0])}) names no path column", fix="name it with --image-column")
        at_path = 1 if at_label == 0 else 0
    if not labeled:
        return at_path, -1, len(names)
    if at_label is None:
        if len(names) != 2:
            raise InputError(f"{path}: its header ({','.join(rows[0])}) names no label column", fix="name it with --label-column")
        at_label = 1 - at_path
    return at_path, at_label, len(names)


def _column(names: list[str], given: str | None, known: tuple[str, ...], path: Path, option: str) -> int | None:
    if given:
        if given.lower() not in names:
            raise InputError(f"{path}: its header ({','.join(names)}) has no column {given!r}", fix=f"check {option}")
        return names.index(given.lower())
    return next((names.index(k) for k in known if k in names), None)


def _rows(path: Path, what: str) -> list[list[str]]:
    if list_suffix(path) == ".parquet":
        return _parquet_rows(path, what)
    text = _text(path, what)
    if list_suffix(path) == ".jsonl":
        return _json_rows(path, text)
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=_delimiter(path, text)))
    except csv.Error as e:
        raise InputError(f"cannot read {what} {path}: {e}") from None
    return [r for r in rows if r and any(c.strip() for c in r)]


def _json_rows(path: Path, text: str) -> list[list[str]]:
    """A JSON-lines file as a header (the first object's keys) and rows of its values as text; a key a row lacks, or
    null, is an empty cell, which the row checks then name."""
    objects = []
    for line, raw in enumerate((r for r in text.splitlines() if r.strip()), start=1):
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise InputError(f"{path}: row {line} is {raw.strip()[:80]!r}, not a JSON object", fix="fix or remove that row")
        objects.append(value)
    header = list(objects[0]) if objects else []
    return [header] + [["" if o.get(k) is None else str(o[k]) for k in header] for o in objects] if objects else []


def _parquet_rows(path: Path, what: str, count: int | None = None) -> list[list[str]]:
    """A Hugging Face ImageFolder's metadata.parquet as a header (its columns' names) and rows of its values as text,
    as a .jsonl's are read: a null is an empty cell, which the row checks then name. `count`: its first rows alone,
    enough to tell its layout. Read with pyarrow, which the datasets extra installs; refused where its columns, unpacked,
    would not fit in memory."""
    require("pyarrow", "datasets", f"{what} {path}")
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        f = pq.ParquetFile(path)
        if count is None:
            size = parquet_bytes(f.metadata)
            _room_for(path, what, size, f"holds {human_size(size)} of columns")
            table = f.read()
        else:
            table = pa.Table.from_batches(list(itertools.islice(f.iter_batches(batch_size=count), 1)), schema=f.schema_arrow)
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    except (pa.ArrowException, OSError, ValueError) as e:  # ValueError: a column name in its footer that is not UTF-8
        raise InputError(f"cannot read {what} {path}: not a readable parquet file ({type(e).__name__}: {first_line(e)})") from None
    # booleans as the ids a parquet dataset reads them as (False 0, True 1), not the class names "False" and "True"
    cells = [["" if v is None else str(int(v)) if isinstance(v, bool) else str(v) for v in column] for column in columns]
    return [list(table.column_names)] + [list(row) for row in zip(*cells)]


def parquet_bytes(metadata: Any) -> int:
    """A parquet file's columns, unpacked, in bytes, from its footer (`pyarrow.parquet.FileMetaData`): its row groups'
    sizes, of every column. A column chunk's own metadata is never built for it: pyarrow ends the process (an uncaught
    C++ exception, no Python error) on one whose damaged footer mistypes its statistics."""
    return sum(metadata.row_group(r).total_byte_size for r in range(metadata.num_row_groups))


def parquet_class_label(path: Path, column: str) -> list[str]:
    """The names of a metadata.parquet's ClassLabel column, as `Dataset.to_parquet` keeps them beside its ids (the
    schema's `huggingface` features); none for a column of plain ids, or a file pandas wrote."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
        feature = json.loads(meta.get(b"huggingface", b"{}")).get("info", {}).get("features", {}).get(column, {})
    except (ValueError, AttributeError, OSError):  # features damaged or of another shape: the ids alone, as pandas writes them
        return []
    names = feature.get("names") if isinstance(feature, dict) and feature.get("_type") == "ClassLabel" else None
    return [str(n) for n in names] if isinstance(names, list) else []


def has_label_column(path: Path, label_column: str | None) -> bool:
    """Whether the table's header names a label column (the option's, or a known name): a Hugging Face ImageFolder's
    metadata file may hold captions or other fields instead, which are no class labels. Its first line alone is read:
    the table is read whole once, when it labels the folder."""
    names = {c.strip().lower() for c in next(iter(_head(path, 1)), [])}
    return (label_column or "").lower() in names if label_column else bool(names & set(LABEL_COLUMNS))


def _head(path: Path, count: int) -> list[list[str]]:
    """The first rows of a table (a .jsonl's header and `count` rows, a CSV's first `count`), read without reading the
    rest: enough to tell its layout before the table is read whole, once; a metadata.parquet's header and `count` rows."""
    if list_suffix(path) == ".parquet":
        return _parquet_rows(path, "label file", count)
    try:
        with _open(path) as f:
            text = "".join(itertools.islice((line for line in f if line.strip()), count))
    except UNREADABLE as e:
        raise _unreadable(path, "label file", e) from None
    if list_suffix(path) == ".jsonl":
        return _json_rows(path, text)
    return list(csv.reader(io.StringIO(text), delimiter=_delimiter(path, text)))


def _delimiter(path: Path, text: str) -> str:
    """A tab in a .tsv; in a .csv, a ';' or a tab where the first line has no comma and splits there into a header
    naming a known column (a path holding ';' is no reason to split a headerless file); else a comma."""
    if list_suffix(path) == ".tsv":
        return "\t"
    first = text.split("\n", 1)[0].strip()
    for other in (";", "\t"):
        if (
            "," not in first
            and other in first
            and {c.strip().strip('"').lower() for c in first.split(other)} & {*PATH_COLUMNS, *LABEL_COLUMNS}
        ):
            return other
    return ","


def _lines(path: Path, what: str = "image list") -> list[str]:
    """A .txt's lines, blank ones and `#` comments left out: Oxford-IIIT Pet's annotations/list.txt begins with six
    lines such as `#Image CLASS-ID SPECIES BREED ID`, whose last word made the file one of class names, so that its
    first image's row was blamed ("row 7 ... expected a class name, as in the rows before it"). A `#` line that names
    a file, whole or before its last word (a label), is a row."""
    lines = [line for line in _text(path, what).splitlines() if line.strip()]
    return [
        line
        for line in lines
        if not line.startswith("#") or any(listed_path(path.parent, named).exists() for named in (line, line.strip().rsplit(None, 1)[0]))
    ]


def _text(path: Path, what: str) -> str:
    """A list or label file's whole text (_open), refused where its rows would not fit in memory: before it is read,
    or, compressed, once more of it is read than would fit (its size on disk says little: a 10 kB .gz may hold 10 MB)."""
    _check_size(path, what)
    try:
        with _open(path) as f:
            if path.suffix.lower() not in COMPRESSIONS:
                return f.read()
            free = available_memory()
            text = f.read() if free is None else f.read(free // ROW_MEMORY + 1)
    except UNREADABLE as e:
        raise _unreadable(path, what, e) from None
    if free is not None and ROW_MEMORY * len(text) > free:
        raise InputError(
            f"{what} {path} holds more than {human_size(free // ROW_MEMORY)} decompressed: its rows take more than "
            f"{human_size(free)} of memory, which is what is available; refused rather than swapping",
            fix="split it, or free memory",
        )
    return text


def _unreadable(path: Path, what: str, e: Exception) -> InputError:
    """The error for a list that cannot be read; a compressed one cut short or damaged (a download that stopped) is
    said to be so, where Python's words ("Compressed file ended before the end-of-stream marker was reached",
    "Error -3 while decompressing data: invalid block type") name no cause."""
    if isinstance(e, (EOFError, zlib.error, lzma.LZMAError)) or (
        isinstance(e, OSError) and not e.errno and path.suffix.lower() in COMPRESSIONS
    ):
        kind = {".gz": "gzip"}.get(path.suffix.lower(), path.suffix.lower().lstrip("."))
        return InputError(f"cannot read {what} {path}: a truncated or corrupt {kind} file ({e})", fix="download or compress it again")
    return InputError(f"cannot read {what} {path}: {e}")


def list_suffix(path: Path) -> str:
    """The suffix that says a list's format, in lower case: a compressed file's is the one of the file it holds
    (`.csv` for `labels.csv.gz`), else its own."""
    suffix = path.suffix.lower()
    return Path(path.stem).suffix.lower() if suffix in COMPRESSIONS else suffix


def _open(path: Path) -> IO[str]:
    """A list or label file opened as text. UTF-8 (-sig: a byte-order mark, as Windows tools write, is no path), its
    bytes that are not UTF-8 (a list `find` wrote of Latin-1 names) read as Python reads such a name from the file
    system, so the path still finds its file; UTF-16 where it begins with that byte-order mark, as PowerShell 5's `>`
    and Excel's "Unicode Text" write it (read as UTF-8, each row was its bytes with a NUL between them). Lines end at
    '\n', '\r\n' or a lone '\r', as Excel for Mac ends a CSV's rows (split at '\n' alone, its rows were one line). A
    compressed file (COMPRESSIONS) is the text it holds, decoded so: its byte-order mark is in the bytes it holds."""
    opener = COMPRESSIONS.get(path.suffix.lower(), open)
    with opener(path, "rb") as f:
        utf16 = f.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    if utf16:
        return opener(path, "rt", encoding="utf-16")
    return opener(path, "rt", encoding="utf-8-sig", errors="surrogateescape")


def _check_size(path: Path, what: str) -> None:
    """Refuse a list whose rows would not fit in memory, before reading it."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}") from None
    _room_for(path, what, size, f"is {human_size(size)}")


def _room_for(path: Path, what: str, size: int, held: str) -> None:
    """Refuse a table of `size` bytes (`held` says what they are) whose rows would not fit in the memory available."""
    free = available_memory()
    if free is not None and ROW_MEMORY * size > free:
        raise InputError(
            f"{what} {path} {held}: its rows take about {human_size(ROW_MEMORY * size)} of memory "
            f"but {human_size(free)} is available; refused rather than swapping",
            fix="split it, or free memory",
        )
