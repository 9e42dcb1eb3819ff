"""Training labels given by class name, and the class ids they stand for in one model.

A label file or dataset column may hold class names (`train/0001.jpg,cat`) instead of ids. The names are numbered
in sorted order when read, as torchvision's ImageFolder numbers its class folders; when a model is scored, they are
mapped through the model's own class names where it has them (a Hugging Face config's id2label, a timm run's class
map, `classes` in suscli's metadata), since a model trained elsewhere may number its classes in another order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import torch

from suscli.errors import InputError, plural, shown

SORTED = "sorted order of the names, as torchvision's ImageFolder"
# A Hugging Face dataset's ClassLabel column: its ids, whose names are in the feature's own order
CLASS_LABEL_ORDER = "the order of the dataset's ClassLabel names, as its ids are"
# A one-hot label table's classes (Roboflow's `_classes.csv`), in the order of its columns, as a script reading it numbers them
ONE_HOT_ORDER = "the order of the label table's class columns, as its one-hot rows number them"
NATURAL = "natural"  # a checkpoint's class_order: its tool numbered class folders as natural_key sorts them (timm)
BY_NAME = "classes"  # ... by its class names (a timm run's --class-map)
AS_STRINGS = "sorted"  # ... as sorted strings (torchvision's ImageFolder)


def by_name(values: Sequence[str]) -> tuple[list[int], list[str]]:
    """(id of each value, the names): ids count the distinct names in sorted order."""
    names = sorted(set(values))
    index = {name: i for i, name in enumerate(names)}
    return [index[v] for v in values], names


def model_classes(meta: dict[str, Any]) -> tuple[list[str], str] | None:
    """The model's class names (the name of class id i at index i) and where they were read; None when it has none.

    transformers fills id2label with LABEL_0, LABEL_1, ... when a model was made without names: those name nothing.
    """
    names = meta.get("classes")
    if names is None:
        return None
    source = str(meta.get("classes_source") or "the checkpoint's classes")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names) and len(set(names)) == len(names)):
        raise InputError(
            f"the class names in {source} are not a list of distinct strings",
            fix="fix the checkpoint's classes, or give the training labels as class ids",
        )
    if names == [f"LABEL_{i}" for i in range(len(names))]:
        return None
    return names, source


def known_classes(meta: dict[str, Any]) -> tuple[list[str], str] | None:
    """model_classes, with malformed names naming nothing (None) rather than an error: for a held-out set, which is
    then numbered as a training set's would be, and that says so."""
    try:
        return model_classes(meta)
    except InputError:
        return None


def matched(names: Sequence[str], classes: Sequence[str]) -> tuple[list[int | None], list[str]]:
    """The model's id of each of `names` among its `classes` (None for a name it does not have), and the names it does
    not have. Names are compared in one Unicode form (NFC): macOS writes folder names decomposed (NFD: `e` and a
    combining accent), while a checkpoint's names were typed composed, so a `café` folder was "no class of the model"
    beside the model's own `café`. Two classes that differ only so are compared exactly."""
    exact = {name: i for i, name in enumerate(classes)}
    composed = {unicodedata.normalize("NFC", name): i for name, i in exact.items()}
    one_form = len(composed) == len(exact)  # else two classes differ only in their form
    found = [composed.get(unicodedata.normalize("NFC", n)) if one_form else exact.get(n) for n in names]
    return found, [n for n, i in zip(names, found) if i is None]


def class_ids(names: Sequence[str], meta: dict[str, Any], origin: object, order: str | None = None) -> tuple[list[int], str]:
    """The model's id for each of `names` (the training set's, sorted unless `order` says how they number the
    labels), and a note saying where the mapping comes from. A name the model does not know is an error naming it."""
    known = model_classes(meta)
    if known is None:
        unread = f"; {meta['classes_unread']}" if meta.get("classes_unread") else ""
        note = f"training labels are class names, numbered in {order or SORTED} (the model names no classes){unread}"
        return list(range(len(names))), note
    classes, source = known
    found, unknown = matched(names, classes)
    if unknown:
        raise InputError(
            f"{origin}: class {unknown[0]!r} is not one of the model's {len(classes)} classes ({source}: {shown(classes)})"
            + (f"; {len(unknown) - 1} more unknown" if len(unknown) > 1 else "")
            + case_hint(unknown, classes),
            fix="fix the label, or check that the training set is the model's",
        )
    return [i for i in found if i is not None], f"training labels are class names, mapped to the model's ids by {source}"


def numbered_names(meta: dict[str, Any], labels: Sequence[int]) -> str | None:
    """Where labels read as class ids are all among the model's class names read as numbers, and those names are whole
    numbers other than their ids (ratings '1' to '5' for the ids 0 to 4): the labels may be the names, each read as
    another class, the top one beyond the classes. What to say then, beside the numbers or the error; else None."""
    known = known_classes(meta)
    if known is None:
        return None
    names, source = known
    if not all(n.isascii() and n.isdigit() for n in names):
        return None
    numbers = [int(n) for n in names]
    if numbers == list(range(len(names))) or not set(labels) <= set(numbers):
        return None
    return (
        f"the labels are read as class ids, but the model's class names are numbers other than their ids ({source}: "
        f"class 0 is {names[0]!r}): if the labels are those names, each was read as another class (write each as its id, "
        f"0 to {len(names) - 1})"
    )


def counted_from_one(labels: Sequence[int], classes: int | None, *, beyond: bool) -> str | None:
    """Where class ids may count from 1 (Oxford-IIIT Pet's CLASS-ID, 1 to 37 for 37 classes), what to say; else None.
    `beyond`: the labels went past the model's classes, and the smallest is 1 and the largest the class count, which
    0-based ids cannot be. Otherwise the ids fit 0-based ones, and only their pattern speaks: 0 never used while
    every other id is, as a 1-based set lacking its last class gives (the note says so, and is no proof: a 0-based
    set lacking class 0 gives the same ids)."""
    used = set(labels)
    if classes is None or classes < 3 or not used or min(used) != 1:
        return None
    if beyond:
        if max(used) != classes:
            return None
        return (
            f"the smallest label is 1 and the largest {classes}, the class count: the ids may count from 1 (subtract 1 "
            f"from each label, so that they run 0 to {classes - 1})"
        )
    if used != set(range(1, classes)):
        return None
    return (
        f"label 0 is never used while every other id (1 to {classes - 1}) is: if the ids count from 1 (class {classes} "
        f"absent from the set), each image was measured against the next class's id (subtract 1 from each label)"
    )


def case_hint(unknown: Sequence[str], known: Sequence[str]) -> str:
    """'; NAME differs from the class KNOWN only in case' for the first unknown name that does, else '': names are
    compared exactly (Cat and cat may be two classes), and the list of classes shown may not hold the one meant."""
    folded = {k.casefold(): k for k in known}
    near = next(((n, folded[n.casefold()]) for n in unknown if n.casefold() in folded), None)
    return f"; {near[0]!r} differs from the class {near[1]!r} only in case" if near else ""


def natural_key(name: str) -> list[str | int]:
    """timm's natural sort key (timm.utils.misc.natural_key, by which its folder reader numbers class folders): the
    name lower-cased, its runs of digits compared as numbers, so class_2 comes before class_10. The same order as timm's
    for every name timm can sort; a name it cannot (a run of non-decimal digits such as '²') is compared as text."""
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name.lower()))]


def folder_ids(folders: Sequence[str], meta: dict[str, Any], origin: object) -> tuple[torch.Tensor | None, list[str]]:
    """For a training set of class folders (label i is folders[i], sorted as strings): the model's id of each label, as
    id_table gives it, from the order the checkpoint says its tool numbered the folders in (`class_order`); when it
    does not say and a tool could have numbered them otherwise (timm sorts naturally), the note says so."""
    natural = sorted(folders, key=natural_key)
    order = meta.get("class_order")
    if order == BY_NAME:
        return id_table(folders, meta, origin)
    named = _named_folders(folders, meta, origin)
    if named is not None:
        return named
    if natural == list(folders) or order == AS_STRINGS:
        return None, []
    if order == NATURAL:
        keys = [natural_key(f) for f in folders]
        ties = [f for f, k in zip(folders, keys) if keys.count(k) > 1]
        index = {name: i for i, name in enumerate(natural)}
        note = f"class folders numbered in natural order ({shown(natural)}), as {meta.get('class_order_source') or 'its training tool'} numbers them"
        if ties:
            note += f"; it orders {', '.join(ties[:3])} by chance (alike in natural order): their ids may be others"
        return torch.tensor([index[f] for f in folders], dtype=torch.int64), [note]
    return None, [
        f"class folders numbered in sorted order of their names ({shown(folders)}), as torchvision's ImageFolder; "
        f"timm's folder reader numbers them naturally ({shown(natural)}): if the model was trained so, pass a path,label CSV with its ids"
    ]


def _named_folders(folders: Sequence[str], meta: dict[str, Any], origin: object) -> tuple[torch.Tensor, list[str]] | None:
    """Class folders that are all among the model's own class names, where those number them otherwise than their
    sorted order: the model's id of each. A training set that lacks a class (none of its images drew it) has fewer
    folders than the model, and sorted order would shift every id after the missing one. None otherwise. Folders of
    which some name the model's classes and others none are an error naming those, as a label file's unknown class
    name is: numbered in sorted order, a stray or renamed folder silently gave its class and those after it other ids."""
    known = known_classes(meta)
    if known is None:
        return None
    classes, source = known
    found, unknown = matched(folders, classes)
    if unknown and len(unknown) < len(folders):
        raise InputError(
            f"{origin}: {plural(len(unknown), 'class folder')} {shown(unknown, 3)} {plural(len(unknown), 'names', 'name')} no class of the model, though the other "
            f"{len(folders) - len(unknown)} {plural(len(folders) - len(unknown), 'does', 'do')} ({len(classes)} classes, {source}: {shown(classes)}){case_hint(unknown, classes)}",
            fix="name each class folder as the model's class, or remove the folders of classes it was not trained on",
        )
    if unknown or found == list(range(len(folders))):
        return None
    note = f"class folders mapped to the model's ids by {source}"
    if len(folders) < len(classes):
        note += f" ({len(folders)} folders for its {len(classes)} classes)"
    return torch.tensor(found, dtype=torch.int64), [note]


def held_out_ids(
    names: Sequence[str], meta: dict[str, Any], num_classes: int | None, origin: object, *, folders: bool
) -> torch.Tensor | None:
    """For a held-out set that names its classes (`folders`: class folders, else labels by class name) where the
    training set has no names to number them by: the model's id of each, as id_table gives it, None for ids as they
    are. A held-out set may lack classes, so its own sorted order cannot number it: class folders are mapped by the
    model's own class names where it has them (a folder naming none of them is an error), and otherwise numbered as
    a training set's (folder_ids, id_table) only when they are as many as the model's `num_classes` (torchvision's
    ImageFolder numbering); fewer are refused, and folders beyond the model's classes are named."""
    what = "class folder" if folders else "class name"
    known = known_classes(meta)
    if folders and known is not None:
        classes, source = known
        found, unknown = matched(names, classes)
        if not unknown:
            return torch.tensor(found, dtype=torch.int64)
        if len(unknown) < len(names) or len(names) != len(classes):  # else none named: the model's names are not folders'
            raise InputError(
                f"{origin}: {plural(len(unknown), what)} {shown(unknown, 3)} {plural(len(unknown), 'names', 'name')} no class of the model ({len(classes)} classes, {source}: {shown(classes)})",
                fix="name each held-out class folder as the model's class, or remove it",
            )
    try:
        table = folder_ids(names, meta, origin)[0] if folders else id_table(names, meta, origin)[0]
    except InputError as e:  # a name the model does not know: the held-out labels are the ones to check
        raise InputError(
            e.message, fix="fix the held-out label, or check that the held-out set is labelled with the model's classes"
        ) from None
    if num_classes is None or (known is not None and not folders):  # a name the model has (id_table mapped it), or unknown
        return table
    if len(names) < num_classes:
        raise InputError(
            f"{origin}: {len(names)} {what}s for the model's {num_classes} classes cannot be numbered: the checkpoint names "
            f"no classes, and a set that lacks some cannot be numbered by its own sorted {what}s ({names[0]} would be class 0)",
            fix="pass --train-data as class folders (or a CSV of class names) to number them by, or --val-data as a path,label CSV of class ids",
        )
    ids = table.tolist() if table is not None else range(len(names))
    beyond = [n for n, i in zip(names, ids) if i >= num_classes]
    if beyond:
        raise InputError(
            f"{origin}: {plural(len(beyond), what)} {shown(beyond, 3)} {plural(len(beyond), 'is', 'are')} beyond the model's {num_classes} classes ({len(names)} {what}s, "
            "numbered in sorted order as torchvision's ImageFolder numbers them)",
            fix=f"remove the {plural(len(beyond), what)} the model was not trained on, or pass --train-data as class folders to number them by",
        )
    return table


def id_names(num_classes: int, meta: dict[str, Any], names: Sequence[str] | None = None, folders: Sequence[str] | None = None) -> list[str]:
    """The name of each of a model's class ids, '' where unknown: the training set's name that its labels map to
    (a label CSV's or dataset's class names, else its class folders, as id_table and folder_ids map them), else the
    model's own name for the class (`classes` in its metadata)."""
    out = [""] * num_classes
    try:
        own = model_classes(meta)
    except InputError:  # malformed names in the checkpoint: they name nothing
        own = None
    for i, name in enumerate(own[0][:num_classes] if own else []):
        out[i] = name
    given = names if names is not None else folders
    if given is None:
        return out
    try:
        table, _ = id_table(names, meta, "") if names is not None else folder_ids(given, meta, "")
    except InputError:  # a name the model does not know: its labels were never measured
        return out
    for name, i in zip(given, table.tolist() if table is not None else range(len(given))):
        if 0 <= i < num_classes:
            out[i] = name
    return out


def id_table(
    names: Sequence[str] | None, meta: dict[str, Any], origin: object, order: str | None = None
) -> tuple[torch.Tensor | None, list[str]]:
    """For labels given by name (ids into `names`): the model's id of each, as a table to index with them, and the
    note on the mapping; (None, []) for labels given as ids. Made before measuring, so that an unknown name stops
    the run before it costs anything."""
    if names is None:
        return None, []
    ids, note = class_ids(names, meta, origin, order)
    return torch.tensor(ids, dtype=torch.int64), [note]
