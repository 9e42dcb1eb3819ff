"""What --data and --train-data may name, told apart in a fixed order: a Hugging Face dataset (a `save_to_disk`
folder, parquet files), a list or label file (.txt, .csv, .tsv, .jsonl; gzip, bz2 or xz compressed too), a folder of images (or of class folders).

Each becomes one Listing: the images, their labels, and notes on what was left out and why, which every row of
the report carries.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from suscli.data.embedded import ImageRef
from suscli.errors import InputError, plural, shown
from suscli.files import printable
from suscli.data.hfdatasets import class_label_names, either, is_dataset, read_dataset, readable_parts, split_kind
from suscli.data.labels import CLASS_LABEL_ORDER, ONE_HOT_ORDER, by_name
from suscli.data.tables import (
    COMPRESSIONS,
    LABEL_COLUMNS,
    LIST_SUFFIXES,
    ONE_CLASS,
    ONE_HOT_FILE,
    has_label_column,
    label_rows,
    list_suffix,
    listed_paths,
    absent_and_folders,
    one_hot_rows,
    parquet_class_label,
    read_image_list,
    unlabeled_lines,
)
from suscli.data.walk import CYCLE, IMAGE_SUFFIXES, Walk, holds, is_hidden, is_image_name, walk_images

DATA_FORMS = "a folder of images, a .txt, .csv, .tsv or .jsonl list of image paths (or .csv.gz, .bz2, .xz), a datasets folder (save_to_disk) or a parquet file"
TRAIN_FORMS = (
    "a folder of class folders (or of images with a metadata.csv, metadata.jsonl or metadata.parquet naming each file's label, or Roboflow's "
    "_classes.csv of one 0/1 column per class), a path,label "
    "CSV (or .tsv, .jsonl, a .txt of path label lines; .csv.gz, .bz2, .xz too), a datasets folder (save_to_disk) or a parquet file"
)
# Hugging Face's ImageFolder layout: a folder's images labelled by a metadata file beside them (a `file_name` column)
TEXT_METADATA = ("metadata.csv", "metadata.jsonl")  # compressed, each is named where a folder holds no class folders
METADATA_FILES = (*TEXT_METADATA, "metadata.parquet")


@dataclass
class Listing:
    """The images of a set, in a fixed order, with their labels for a training set."""

    items: list[ImageRef]
    labels: list[int] | None = None
    label_names: list[str] | None = None  # labels given by class name: label i is label_names[i], names sorted
    notes: list[str] = field(default_factory=list)  # what was left out, and why
    folders: list[str] | None = None  # class folders: label i is folders[i], names sorted (suscli.data.labels.folder_ids)
    empty_folders: list[str] = field(default_factory=list)  # class folders holding no image, which keep their ids
    names_order: str | None = None  # how label_names number the labels where not sorted: a ClassLabel's own order
    upright: bool = False  # a dataset's images: decoded as the datasets library decodes them, turned by EXIF orientation
    imagefolder: bool = False  # Hugging Face's ImageFolder layout (a metadata file): loaded by the datasets library, which turns them so
    written: dict[ImageRef, str] = field(default_factory=dict)  # a label file's images: each as its row writes the path


# Archives a dataset is often downloaded as: read from the folder they unpack to
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".7z", ".rar")


def _not_a_set(source: Path, option: str) -> None:
    """A one-line error for what users pass where a set of images goes and suscli does not read: an archive, one
    image, or a pattern the shell left unexpanded (it was quoted, or matched nothing)."""
    name = source.name.lower()
    if source.is_file() and name.endswith(ARCHIVE_SUFFIXES):
        raise InputError(f"{option} {source} is an archive, which suscli does not unpack", fix="unpack it and pass the folder it holds")
    if source.is_file() and source.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(
            f"{option} {source} is one image, not a set of them", fix="pass the folder that holds the images, or a list of them"
        )
    if not source.exists() and any(c in str(source) for c in "*?["):
        raise InputError(
            f"{option} {source}: no such file or folder; suscli does not expand patterns (the shell expands one unquoted, when it matches)",
            fix="pass the folder that holds the images, or a list of them",
        )


def read_unlabeled(source: Path, image_column: str | None = None) -> Listing:
    """The images --data names."""
    source = Path(source)
    _not_a_set(source, "--data")
    if is_dataset(source):
        columns = read_dataset(source, image_column=image_column)
        items, moved = _all_exist(columns.images, source)
        listing = _listed_once(items, source, _real(items, source))
        listing.notes[:0] = columns.notes + moved
        listing.upright = True
        return listing
    if source.is_file():
        if list_suffix(source) not in LIST_SUFFIXES:
            raise InputError(f"not a folder or an image list: {source}", fix=f"--data takes {DATA_FORMS}")
        items, moved = _all_exist(read_image_list(source, image_column), source)
        listing = _listed_once(items, source)
        listing.notes[:0] = moved
        listing.imagefolder = source.name in METADATA_FILES
        return listing
    walk = _walk(source)
    imagefolder = any((source / name).is_file() for name in METADATA_FILES)
    return Listing(list(walk.paths), notes=[n for n in [walk.note(source)] if n], imagefolder=imagefolder)


def _listed_once(paths: Sequence[ImageRef], source: Path, keys: Sequence[ImageRef] | None = None) -> Listing:
    """A list's images, each once, and a note on the rows that repeat one: a list concatenated with itself (or a label
    file appended to twice, passed as --data) named each image twice, and each was measured and counted twice, without
    a word, where a folder's walk lists each file once and a label file counts a repeat once. `keys`: the image each
    row is, where its path may name it otherwise than another row's (a dataset's path column, not resolved)."""
    kept: dict[ImageRef, ImageRef] = {}
    repeated = []
    for path, key in zip(paths, keys if keys is not None else paths):
        if key in kept:
            repeated.append(path)
        kept.setdefault(key, path)
    if not repeated:
        return Listing(list(kept.values()))
    note = (
        f"{printable(source)}: {len(repeated):,} of {len(paths):,} {plural(len(paths), 'row')} {plural(len(repeated), 'repeats', 'repeat')} an image listed before (first: "
        f"{printable(repeated[0])}): each image measured once"
    )
    return Listing(list(kept.values()), notes=[note])


def _real(images: Sequence[ImageRef], source: Path) -> list[ImageRef]:
    """The file each of a dataset's images is, its path resolved as a label file's (each folder once), so that one
    named two ways (`./x.png`, its absolute path, a linked folder) is one image; an image held in the dataset is its own."""
    real = iter(listed_paths(source, [str(image) for image in images if isinstance(image, Path)]))
    return [next(real) if isinstance(image, Path) else image for image in images]


def read_labeled(source: Path, image_column: str | None = None, label_column: str | None = None) -> Listing:
    """The images and labels --train-data names."""
    source = Path(source)
    _not_a_set(source, "--train-data")
    if is_dataset(source):
        return _dataset_labels(source, image_column, label_column)
    if source.is_file():
        if list_suffix(source) not in LIST_SUFFIXES:  # a checkpoint or a .json read as CSV: "row 1 is '\x18\x08...'"
            raise InputError(f"not a folder or a label file: {source}", fix=f"--train-data takes {TRAIN_FORMS}")
        return _label_file(source, image_column, label_column)
    if not source.is_dir():
        raise InputError(f"labelled images not found: {source}", fix=f"--train-data takes {TRAIN_FORMS}")
    metadata = [source / name for name in METADATA_FILES if (source / name).is_file()]
    labelling = [file for file in metadata if has_label_column(file, label_column)]
    if len(metadata) > 1 and labelling:  # the first was read, without a word, though the other may label otherwise
        raise InputError(
            f"{source} holds {', '.join(f.name for f in metadata[:-1])} and {metadata[-1].name}: which of them labels its images "
            "is not said, and Hugging Face's ImageFolder refuses such a folder",
            fix=f"keep one of them in {source}, or pass the one that labels the images itself",
        )
    if labelling:
        return _label_file(labelling[0], image_column, label_column)
    if (source / ONE_HOT_FILE).is_file():
        return _label_file(source / ONE_HOT_FILE, image_column, label_column)
    _no_split_folders(source, label_column)
    return _class_folders(source, metadata[0] if metadata else None, label_column)


def _label_file(path: Path, image_column: str | None, label_column: str | None) -> Listing:
    """A label file's images and labels, each image once (_once); a one-hot table's classes in its columns' order."""
    lines = unlabeled_lines(path)
    if lines is not None:
        return _listed_class_folders(path, lines)
    one_hot = one_hot_rows(path, image_column, label_column)
    rows = one_hot or label_rows(path, image_column, label_column)
    kept, notes = _once(rows.paths, rows.labels, rows.names, path)
    items, moved = _all_exist([rows.paths[i] for i in kept], path)
    names, order = rows.names, ONE_HOT_ORDER if one_hot else None
    if names is None and rows.column is not None and list_suffix(path) == ".parquet":
        # Dataset.to_parquet's ClassLabel ids: their names map them to a model's classes, as a parquet dataset's do
        names = class_label_names(parquet_class_label(path, rows.column), rows.labels, path, rows.column)
        order = CLASS_LABEL_ORDER if names else None
    return Listing(
        items,
        [rows.labels[i] for i in kept],
        names,
        moved + notes,
        names_order=order,
        imagefolder=path.name in METADATA_FILES,
        written={item: rows.written[i] for item, i in zip(items, kept)},
    )


def _listed_class_folders(path: Path, lines: list[str]) -> Listing:
    """A .txt of image paths without labels, each in a class folder at one depth (`n01440764/x.JPEG`): the same set as
    the folder of class folders it lists, labelled so. The class is each row's folder, and the classes are every
    folder beside those (a class none of the rows names keeps its id, as an empty class folder does), numbered as
    _class_folders numbers them, so that the model's own class names map them alike (folder_ids). Refused, naming
    the fixes, where the rows are not all at one depth below their class folders: no one level then says the class."""
    parts = [PurePosixPath(line.replace("\\", "/")).parts for line in lines]
    depths = {len(p) for p in parts}
    if len(depths) > 1 or min(depths) < 2 or any(p[-2] in (".", "..") for p in parts):
        raise InputError(
            f"{path}: its rows name images without a label, not all in class folders at one depth (row 1 is {printable(lines[0])!r})",
            fix="pass the images' folder (one subfolder per class) as the labelled set, or add a label column (`path label` lines)",
        )
    named = sorted({p[-2] for p in parts})
    beside = {name for parent in {str(PurePosixPath(*p[:-2])) for p in parts} for name in _subfolders(path.parent / parent)}
    classes = sorted(beside | set(named))
    index = {name: i for i, name in enumerate(classes)}
    paths = listed_paths(path.parent, lines)
    labels = [index[p[-2]] for p in parts]
    if len(set(labels)) < 2:
        raise InputError(f"{path}: every row is in class folder {printable(named[0])}; {ONE_CLASS}", fix="list the images of every class")
    kept, notes = _once(paths, labels, None, path)
    items, moved = _all_exist([paths[i] for i in kept], path)
    empty = [printable(name) for name in classes if name not in named]
    notes.append(
        f"{printable(path)}: no label column; its labels are the class folders its rows name, {len(classes)} classes numbered "
        "as a folder of class folders is"
        + (f" ({len(empty)} beside them that no row names keep their ids: {shown(empty, 3)})" if empty else "")
    )
    return Listing(
        items,
        [labels[i] for i in kept],
        notes=moved + notes,
        folders=[printable(name) for name in classes],
        empty_folders=empty,
        written={item: lines[i] for item, i in zip(items, kept)},
    )


def _once(
    paths: Sequence[ImageRef], labels: Sequence[Any], names: list[str] | None, source: Path, rows: Sequence[int] | None = None
) -> tuple[list[int], list[str]]:
    """The rows to keep, and a note on those left out: a row repeating an image and label listed before (label files
    concatenated, or appended to twice) is no new evidence, and counted again it would narrow the interval; a row
    giving an image listed before another label (an old file and its corrections joined) is refused, since an image
    is trained with one label and which one the file does not say. `rows`: each one's index in its table, where some
    of the table's rows were left out before (a dataset's rows without a label), for the messages to name."""
    row = rows if rows is not None else range(len(paths))
    first: dict[ImageRef, int] = {}
    repeats: list[int] = []
    for i, path in enumerate(paths):
        j = first.setdefault(path, i)
        if j == i:
            continue
        if labels[j] != labels[i]:
            shown = [names[labels[k]] if names else str(labels[k]) for k in (j, i)]
            raise InputError(
                f"{source}: {printable(path)} is labelled {shown[0]!r} in row {row[j] + 1} and {shown[1]!r} in row {row[i] + 1}",
                fix="keep one label for each image (remove the other row)",
            )
        repeats.append(i)
    kept = sorted(first.values())
    if not repeats:
        return kept, []
    return kept, [
        f"{printable(source)}: {len(repeats):,} of {len(paths):,} {plural(len(paths), 'row')} {plural(len(repeats), 'repeats', 'repeat')} an image and label listed before "
        f"(first: row {row[repeats[0]] + 1}, {printable(paths[repeats[0]])}): "
        "each image counted once, since a repeat is no new evidence and would narrow the interval"
    ]


def _all_exist(items: Sequence[ImageRef], source: Path) -> tuple[list[ImageRef], list[str]]:
    """The files a list or a dataset's path column names, which must all be there, and a note where they are read from
    the working directory. A missing one is a list that points elsewhere (moved, or written for another folder), not a
    damaged image: skipping it as unreadable would measure what is left, perhaps a handful of the images listed,
    without saying so."""
    files = [p for p in items if isinstance(p, Path)]  # a dataset's images held in the file are there
    missing, folders = absent_and_folders(files)
    if not missing:
        _no_folders(folders, len(files), source)
        return list(items), []
    base = source if source.is_dir() else source.parent
    if len(missing) == len(files) and (elsewhere := _from_working_directory(files, base)):
        found, folders = elsewhere
        moved = [found.get(p, p) if isinstance(p, Path) else p for p in items]
        _no_folders(folders, len(files), source)
        return moved, [
            f"{printable(source)}: no file it lists is in its folder ({printable(base)}) and every one is in the working "
            f"directory ({printable(Path.cwd())}): its paths are read from there"
        ]
    held = (
        f"none of the {len(files):,} files that {source} lists exist"
        if len(missing) == len(files)
        else f"{len(missing):,} of the {len(files):,} files that {source} lists do not exist"
    )
    hint = _named_otherwise(files, base) if len(missing) == len(files) else None
    if hint:
        raise InputError(f"{held}, first: {missing[0]}; {hint[0]}", fix=hint[1])
    raise InputError(
        f"{held}, first: {missing[0]}",
        fix=f"paths in a list are read relative to its folder ({base}), or all of them relative to the working "
        "directory; fix them, or remove the rows of missing files",
    )


def _named_otherwise(files: list[Path], base: Path) -> tuple[str, str] | None:
    """Where no file a list names is there, the folder and extension that make every one a file, said as the error's
    reason, and its fix: public datasets' label files name an image by an id (Kaggle's CIFAR-10 `1` for train/1.png, Oxford-IIIT
    Pet's `Abyssinian_100` for ../images/Abyssinian_100.jpg). A line of more fields than a path and a label (Tiny
    ImageNet's `val_0.JPEG n03444034 0 32 44 62`) was read as a path holding spaces and a label, its last field: where
    its first field is a file, that is said too, since the label read was no label. None where nothing fits: the
    paths are not guessed, only named, as the list must say which file each row means."""
    root = base.resolve()
    texts = [os.path.relpath(f, root) for f in files]
    fields = [t.split()[0] if t.split() else t for t in texts]
    several = fields != texts
    folders = [""] + [f"{d}/" for d in _subfolders(root)] + [f"../{d}/" for d in _subfolders(root.parent) if root.parent / d != root]
    suffixes = ["", *sorted({s for s in IMAGE_SUFFIXES} | {s.upper() for s in IMAGE_SUFFIXES})]
    for folder in folders:
        for suffix in suffixes:
            if (folder or suffix or several) and (root / f"{folder}{fields[0]}{suffix}").is_file():
                if all((root / f"{folder}{t}{suffix}").is_file() for t in fields):
                    added = " and ".join(
                        [f"{folder} is put before {'it' if several else 'each'}"] * bool(folder) + [f"{suffix} after it"] * bool(suffix)
                    )
                    example = f"row 1's {fields[0]} is {folder}{fields[0]}{suffix}"
                    if several:
                        named = f"names a file once {added}" if added else "names a file"
                        return (
                            f"its lines hold more fields than a path and a label, and the last was read as the label; their first field {named} ({example})",
                            "write one `path label` line per image (two fields), each path as it is from the list's folder",
                        )
                    return f"they are files once {added} ({example})", "write each path as it is from the list's folder"
                return None
    return None


def _subfolders(folder: Path) -> list[str]:
    """The folders in a folder, sorted, as _class_folders takes them for classes: hidden ones and links back up (a
    cycle, `ln -s . self`) left out; none where it cannot be listed."""
    try:
        return sorted(
            e.name
            for e in os.scandir(folder)
            if e.is_dir() and not is_hidden(e.name) and not (e.is_symlink() and holds(Path(e.path), folder))
        )
    except OSError:
        return []


def _no_folders(folders: list[Path], listed: int, source: Path) -> None:
    """Refuse a list whose rows name folders (class folders, or a path cut short; `listed`: its paths): each was an
    unreadable image, and a list of folders alone "none of the 3 image files under train could be decoded (check that
    they are valid images)"."""
    if folders:
        raise InputError(
            f"{len(folders):,} of the {listed:,} paths that {source} lists are folders, not images, first: {folders[0]}",
            fix="list the image files each folder holds, or pass a folder of images itself",
        )


def _from_working_directory(files: list[Path], base: Path) -> tuple[dict[Path, Path], list[Path]] | None:
    """Each file named from the working directory where the list names every one relative to it, and those of them
    that are folders: a label file kept in data/ that lists data/images/0.png, written from the project's root (as a
    parquet's path column is read) and run from there, was refused. None unless all are there, so a list is read
    from one place. Read a folder at a time (listed_paths), as from the list's folder: resolved row by row, 50,000
    rows took 3.1 s against 0.8 s."""
    root = os.path.join(base.resolve(), "")  # the list's folder, ending in a separator: its files' paths begin so
    texts = [str(p) for p in files]
    if not all(text.startswith(root) for text in texts):
        return None  # an absolute path: it names one place only
    cwd = os.getcwd()
    found = listed_paths(Path(cwd), [os.path.join(cwd, text[len(root) :]) for text in texts])
    missing, folders = absent_and_folders(found)
    return None if missing else (dict(zip(files, found)), folders)


def list_images(folder: Path) -> list[Path]:
    """Every image file under `folder`, recursively, sorted so that runs are deterministic (links followed once)."""
    return _walk(Path(folder)).paths


def _walk(folder: Path) -> Walk:
    if not folder.exists():
        raise InputError(f"image folder not found: {folder}", fix="check the path given to --data, --train-data or --val-data")
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}", fix=f"--data takes {DATA_FORMS}")
    walk = walk_images(folder)
    if not walk.paths:
        raise InputError(f"no image files in {folder}", fix=f"expected files ending in {', '.join(sorted(IMAGE_SUFFIXES))}")
    return walk


class SplitFolders(InputError):
    """A labelled set passed as the folder of its splits: its fix names --train-data and --val-data both, as they are."""


def _visible(folder: Path) -> list[str]:
    """The names in a folder but hidden ones; none where it cannot be listed (the class folders' walk says so)."""
    try:
        return [e.name for e in os.scandir(folder) if not is_hidden(e.name)]
    except OSError:
        return []


@dataclass
class _Split:
    """How a split folder labels its images, and what to pass for it: the folder, or its compressed metadata file,
    which is read as a label file where a folder's is not."""

    labelled_by: str | None  # "class folders" or a label file's name; None: images without labels
    passed: Path
    no_column: bool = False  # a metadata file beside its images that names no label column known or given


def _split_labels(folder: Path, label_column: str | None) -> _Split | None:
    """How a split folder labels its images: its label file (Hugging Face's ImageFolder, Roboflow's export, a
    compressed metadata file), or class folders where it holds folders and no image beside them; without labels where
    it holds images beside no label file; None where it holds neither images nor folders. A metadata file naming no label column is read as a folder's is (its class
    folders label the images), and beside images alone they are without labels."""
    names = _visible(folder)
    labelling = [name for name in (*METADATA_FILES, ONE_HOT_FILE) if name in names and (folder / name).is_file()]
    images = any(is_image_name(name) for name in names)
    if labelling and (labelling[0] == ONE_HOT_FILE or has_label_column(folder / labelling[0], label_column)):
        return _Split(labelling[0], folder)
    if labelling and images:
        return _Split(labelling[0], folder, no_column=True)
    packed = [name for name in (f"{n}{s}" for n in TEXT_METADATA for s in COMPRESSIONS) if name in names]
    if images and packed:
        return _Split(packed[0], folder / packed[0])
    if images:
        return _Split(None, folder)
    return _Split("class folders", folder) if _subfolders(folder) else None


def _no_split_folders(source: Path, label_column: str | None = None) -> None:
    """Refuse a folder whose subfolders are a dataset's splits (`ds/train/cat/0.png`, `ds/test/cat/0.png`, the layout
    most image datasets are downloaded in), one of them at least of class folders or labelled by its own metadata
    file, and the others too or holding images without labels (Kaggle's `test/`): read as class folders, its classes
    were the splits, and the training accuracy measured was the model's at telling `test` from `train` (50.0% for a
    2-class model), without a word. A folder holding nothing is passed over; classes named `train` and `test` that
    hold their images are classes."""
    held = [name for name in _subfolders(source) if _visible(source / name)]
    kinds = [kind for name in held if (kind := split_kind(name)) is not None]
    splits = {name: split for name in held if (split := _split_labels(source / name, label_column)) is not None}
    if not held or len(kinds) < len(held) or not any(split.labelled_by for split in splits.values()):
        return
    if any(split.labelled_by and not split.no_column for split in splits.values()):  # a test split's captions: no labels
        splits = {name: _Split(None, split.passed) if split.no_column else split for name, split in splits.items()}
    labels = [split.labelled_by for split in splits.values()]
    by = sorted({label for label in labels if label}, key=labels.index)
    if None in labels:
        said = ", ".join(
            f"{name} {'of images without labels' if s.labelled_by is None else 'of class folders' if s.labelled_by == 'class folders' else f'labelled by its {s.labelled_by}'}"
            for name, s in sorted(splits.items(), key=lambda item: (split_kind(item[0]), item[0]))
        )
        held_said = f"({', '.join(held)}), not classes: {said}"
    else:
        each = (
            "each of class folders"
            if by == ["class folders"]
            else f"each labelled by its {' or '.join(b for b in by if b != 'class folders')}"
        )
        held_said = f"({', '.join(held)}), {each}, not classes"
    order = sorted((kind, name) for kind, name in zip(kinds, held) if name in splits)
    training = [splits[name].passed for kind, name in order if kind == 0 and splits[name].labelled_by]
    held_out = [splits[name].passed for kind, name in order if kind != 0 and splits[name].labelled_by]
    unlabelled = [splits[name].passed for kind, name in order if splits[name].labelled_by is None]
    fixes = [f"{' or '.join(map(str, training))} as --train-data"] if training else []
    fixes += [f"{' or '.join(map(str, held_out))} as --val-data"] if held_out else []
    fixes += [f"{' or '.join(map(str, unlabelled))} as --data (it holds no labels)"] if unlabelled else []
    raise SplitFolders(f"{source} holds split folders {held_said}", fix="pass " + ", and ".join(fixes))


def _class_folders(source: Path, metadata: Path | None = None, label_column: str | None = None) -> Listing:
    """A folder of class folders: class ids are the sorted folder names, as torchvision's ImageFolder numbers them.
    `metadata`: the folder's metadata file that names no label column (captions, or a label column of another name)."""
    entries = list(source.iterdir())
    folders = [d for d in entries if d.is_dir() and not is_hidden(d.name)]
    loose = sorted(d.name for d in entries if is_image_name(d.name) and d.is_file())  # in no class, as ImageFolder reads it
    cycles = [d for d in folders if d.is_symlink() and holds(d, source)]  # `ln -s . self`: every image again, as a class
    classes = sorted(d.name for d in folders if d not in cycles)
    if not classes and metadata is not None:  # "no class folders" sent the user who wrote it after the layout it has
        named = f"no column {label_column!r}" if label_column else f"no label column ({', '.join(LABEL_COLUMNS[:3])}, ...)"
        raise InputError(
            f"no class folders in {source}, and its {metadata.name} names {named}",
            fix=f"name the label column of {metadata.name} with --label-column",
        )
    packed = [] if classes else [f for f in (source / f"{n}{s}" for n in TEXT_METADATA for s in COMPRESSIONS) if f.is_file()]
    if packed:  # Hugging Face's ImageFolder passes over it too; "no class folders" did not say it was seen
        raise InputError(
            f"no class folders in {source}, and its {packed[0].name} is not read: a folder's metadata file is "
            f"{packed[0].stem}, uncompressed, as Hugging Face's ImageFolder reads it",
            fix=f"pass {packed[0]} itself in place of the folder (a compressed label file is read), or decompress it",
        )
    if not classes:
        raise InputError(f"no class folders in {source}", fix=f"--train-data takes {TRAIN_FORMS}, one subfolder per class")
    items: list[ImageRef] = []
    labels: list[int] = []
    notes = [f"{printable(source)}: skipped {len(cycles)} {plural(len(cycles), *CYCLE)}"] if cycles else []
    empty: list[str] = []
    for label, name in enumerate(classes):
        walk = walk_images(source / name)
        items += walk.paths
        labels += [label] * len(walk.paths)
        notes += [n for n in [walk.note(source / name)] if n]
        empty += [] if walk.paths else [printable(name)]
    saved = [name for name in classes if len(classes) - len(empty) < 2 and is_dataset(source / name)]
    if saved:  # the folder a dataset was saved in, passed in its place: its "class" is the dataset
        raise InputError(
            f"{source} holds the Hugging Face dataset {printable(saved[0])}, not class folders",
            fix=f"point at {either(readable_parts(source / saved[0]))}",
        )
    if not items:
        raise InputError(f"no image files in the class folders of {source}")
    if len(classes) - len(empty) < 2:
        held = (
            f"a single class folder ({printable(classes[0])})"
            if len(classes) < 2
            else f"images in one class folder only ({printable(classes[labels[0]])})"
        )
        raise InputError(f"{source} has {held}; {ONE_CLASS}", fix="point --train-data at the folder that holds one subfolder per class")
    if loose:  # a folder of images holding a stray subfolder or two: those read as the classes, the set as nothing
        notes.append(
            f"{printable(source)}: {len(loose)} {plural(len(loose), 'image')} beside its class folders (first: {printable(loose[0])}) "
            f"{plural(len(loose), 'is', 'are')} in no class: "
            "left out, as torchvision's ImageFolder leaves them out (a folder of images is --data; --train-data takes one "
            "subfolder per class)"
        )
    if empty:  # ImageFolder refuses them; a stray empty folder (not a class) shifts the ids of the folders after it
        notes.append(
            f"{printable(source)}: {len(empty)} {plural(len(empty), 'class folder')} without images ({shown(empty, 3)}) {plural(len(empty), 'keeps its class id', 'keep their class ids')}, as sorted folder names number them"
        )
    folder_names = [printable(name) for name in classes]  # reports carry the names
    return Listing(items, labels, notes=notes, folders=folder_names, empty_folders=empty)


def _dataset_labels(source: Path, image_column: str | None, label_column: str | None) -> Listing:
    """A dataset's labelled rows; rows without a label are left out and counted."""
    columns = read_dataset(source, image_column=image_column, label_column=label_column, labeled=True)
    given = columns.labels or []
    kept = [i for i, v in enumerate(given) if v is not None]
    notes = columns.notes + (
        [f"{source}: {len(columns.images) - len(kept)} {plural(len(columns.images) - len(kept), 'row')} without a label left out"]
        if len(kept) < len(columns.images)
        else []
    )
    values = [given[i] for i in kept]
    if len(set(values)) < 2:
        held = f"every labelled row has label {values[0]}" if values else "no row has a label"
        raise InputError(f"{source}: {held}; {ONE_CLASS}", fix="check --label-column")
    # a path column naming one file twice is one image, as in a label file
    once, repeats = _once(_real([columns.images[i] for i in kept], source), values, None, source, rows=kept)
    kept, values = [kept[i] for i in once], [values[i] for i in once]
    notes += repeats
    listed = [columns.images[i] for i in kept]
    items, moved = _all_exist(listed, source)
    notes += moved
    written = {item: columns.written[image] for image, item in zip(listed, items) if image in columns.written}
    if columns.by_name:
        labels, names = by_name(values)
        return Listing(items, labels, names, notes, upright=True, written=written)
    if columns.class_names is not None:  # ids with their names: mapped by name where the model names its classes
        return Listing(items, values, columns.class_names, notes, names_order=CLASS_LABEL_ORDER, upright=True, written=written)
    return Listing(items, values, None, notes, upright=True, written=written)
