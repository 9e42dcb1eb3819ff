"""Which of a model's class ids each training and held-out label is (class names, folders or ids, as the
checkpoint and the sets name them), checked against the model's own classes before anything is measured."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from suscli.measure.accuracy import check_label_range
from suscli.load.checkpoints import Checkpoint
from suscli.errors import InputError, plural
from suscli.files import printable
from suscli.data.images import ImageSource
from suscli.data.labels import case_hint, counted_from_one, folder_ids, held_out_ids, id_table, known_classes, numbered_names
from suscli.measure.susceptibility import logits_of, preserved_modes


def model_labels(labels: torch.Tensor | None, ids: torch.Tensor | None) -> torch.Tensor:
    """A labelled set's decoded labels as the model's class ids (through `ids` when the set names its classes)."""
    if labels is None:
        raise ValueError("a labelled image set decoded without labels")
    return labels if ids is None else ids.to(labels.device)[labels]


def commonest_label(labels: torch.Tensor | None, val: ImageSource) -> dict | None:
    """The held-out set's commonest label (its class name, else its id) and its share of the held-out images: what a
    model answering that class on every image scores, which the choice on held-out labels must clearly beat
    (suscli.judge.rules). `labels`: as the set decoded them, before any model numbered them (None: model_labels refuses)."""
    if labels is None or len(labels) == 0:
        return None
    counts = torch.bincount(labels.cpu())
    top = int(counts.argmax())
    names = val.label_names if val.label_names is not None else val.folders
    return {"class": printable(names[top]) if names is not None and top < len(names) else top, "share": int(counts[top]) / len(labels)}


def label_ids(checkpoint: Checkpoint, train: ImageSource | None, num_classes: int | None = None) -> tuple[torch.Tensor | None, list[str]]:
    """For a training set labelled by class name, or by class folders its tool may have numbered otherwise, this model's
    id of each label (suscli.data.labels) and the note on where the mapping comes from; (None, []) otherwise. The notes
    read the model's class count as `num_classes` (its outputs', once measured), else as the checkpoint says it."""
    if train is None:
        return None, []
    origin = f"{checkpoint.path} on {train.origin or 'the training set'}"
    if train.label_names is None and train.folders is None:  # class ids, read as written
        labels = train.labels or []
        hint = numbered_names(checkpoint.meta, labels) or counted_from_one(labels, num_classes or checkpoint.num_classes, beyond=False)
        return None, [hint] if hint else []
    if train.label_names is None and train.folders is not None:
        ids, notes = folder_ids(train.folders, checkpoint.meta, origin)
        return ids, notes + _fewer_classes(checkpoint, train.folders, "class folders", num_classes)
    ids, notes = id_table(train.label_names, checkpoint.meta, origin, train.names_order)
    return ids, notes + _fewer_classes(checkpoint, train.label_names or [], "class names", num_classes)


# The clause of the lines on stderr that rest on the class numbering (the label-noise estimate, --suspects) where a
# row's note says the training set's classes were numbered among themselves (_fewer_classes): a noise matrix's largest
# confusions are then pairs off by that numbering, which the note alone, on each row, did not carry there.
NUMBERED_AMONG_THEMSELVES = " (the training set's classes numbered among themselves, not by the model: see the rows' notes)"
AMONG = "among themselves: if they are not the model's first"


def numbering_clause(notes: Sequence[Sequence[str]]) -> str:
    """NUMBERED_AMONG_THEMSELVES where any row's `notes` say its training classes were numbered among themselves."""
    return NUMBERED_AMONG_THEMSELVES if any(AMONG in n for row in notes for n in row) else ""


def _fewer_classes(checkpoint: Checkpoint, names: Sequence[str], what: str, num_classes: int | None = None) -> list[str]:
    """A training set naming fewer classes than the model has, where the model names none of its own: the set's
    names are numbered 0..K-1 among themselves, which is right only if they are the model's first K classes."""
    count = num_classes or checkpoint.num_classes
    if not names or count is None or len(names) >= count or known_classes(checkpoint.meta) is not None:
        return []
    return [
        f"the model has {count} classes but the training set's {len(names)} {what} are numbered 0-{len(names) - 1} {AMONG} "
        f"{len(names)} classes, its training accuracy is wrong (pass a "
        "path,label CSV of the model's class ids)"
    ]


def val_ids(
    checkpoint: Checkpoint, val: ImageSource | None, train: ImageSource | None, num_classes: int | None = None
) -> torch.Tensor | None:
    """The model's id of each held-out label, as label_ids gives it for the training set. A held-out set may lack a
    class, and its own sorted class folders (or class names) would then number the others wrongly: it is numbered by
    the training set's class folders or class names where the training set has them (a class the training set lacks
    is an InputError), else by the model's own class names, else as a training set's only where it has as many
    classes as the model (`num_classes`, the checkpoint's by default): suscli.data.labels.held_out_ids."""
    if val is None:
        return None
    names, own = _held_out_names(checkpoint, val, train)
    if names is None:  # labelled by class id
        return label_ids(checkpoint, val)[0]
    if own is None:
        count = num_classes or checkpoint.num_classes
        return held_out_ids(names, checkpoint.meta, count, f"held-out set {val.origin or ''}", folders=val.label_names is None)
    at = training_classes(val, own)
    train_ids, _ = label_ids(checkpoint, train)
    index = [at[n] for n in names]
    return torch.tensor(index, dtype=torch.int64) if train_ids is None else train_ids[index]


def _held_out_names(
    checkpoint: Checkpoint, val: ImageSource, train: ImageSource | None
) -> tuple[Sequence[str] | None, Sequence[str] | None]:
    """The held-out set's class names or folders (None where it is labelled by id), and the training set's that
    number them (None where the model's own names or the sorted order do): val_ids's two questions."""
    names = val.label_names if val.label_names is not None else val.folders
    own = None if train is None else train.label_names if train.label_names is not None else train.folders
    if train is not None and train.label_names is not None and known_classes(checkpoint.meta) is not None:
        own = None  # the training set's names map through the model's (id_table), as the held-out set's then do
    return names, own


def sorted_val_note(checkpoint: Checkpoint, val: ImageSource | None, train: ImageSource | None) -> list[str]:
    """The note where held-out class names or folders are numbered in their sorted order (or the order the set gives
    them) because neither the model nor the training set names its classes (val_ids): a guess, as a training set's is,
    which its rows said and the held-out set's did not (names beside a training CSV of ids read as right, whatever the
    ids meant)."""
    if val is None or known_classes(checkpoint.meta) is not None:
        return []
    names, own = _held_out_names(checkpoint, val, train)
    if names is None or own is not None:
        return []
    what = "class names" if val.label_names is not None else "class folders"
    order = val.names_order or "sorted order, as torchvision's ImageFolder"  # a dataset's ClassLabel, a one-hot table's columns
    return [
        f"held-out {what} numbered in {order} (neither the model nor the training set "
        "names its classes): if the model's ids are in another order, held-out accuracy is wrong (pass --val-data as a "
        "path,label CSV of class ids)"
    ]


def training_classes(val: ImageSource, own: Sequence[str]) -> dict[str, int]:
    """The training set's id of each of its class names (`own`), once every class the held-out set names is one of
    them: else an InputError, which the same training set's class folders raise for every model alike, so that
    suscli.run.inputs.val_source raises it once, before any model, rather than in each row."""
    names = (val.label_names if val.label_names is not None else val.folders) or []
    at = {name: i for i, name in enumerate(own)}
    missing = [n for n in names if n not in at]
    if missing:
        kind = plural(len(missing), "class name" if val.label_names is not None else "class folder")
        raise InputError(
            f"held-out set {val.origin or ''}: {kind} {', '.join(missing[:3])} {plural(len(missing), 'is', 'are')} not among the training set's classes"
            + case_hint(missing, own),
            fix="--val-data needs the classes of --train-data, by the same names",
        )
    return at


def counted_val_ids(
    val_map: torch.Tensor | None, checkpoint: Checkpoint, val: ImageSource | None, train: ImageSource | None, num_classes: int
) -> torch.Tensor | None:
    """`val_map` (val_ids before measuring, so that a bad held-out set stops the run before it costs anything), made
    again where the model's output counts other classes than its checkpoint said: the refusals depend on the count."""
    if val is None or num_classes == checkpoint.num_classes:
        return val_map
    return val_ids(checkpoint, val, train, num_classes)


def labels_in_range(
    checkpoint: Checkpoint,
    model: nn.Module,
    probe: torch.Tensor,
    train: ImageSource | None,
    ids: torch.Tensor | None,
    val: ImageSource | None,
    val_map: torch.Tensor | None,
) -> None:
    """Before anything is measured, the error the accuracy passes would raise where the training or held-out labels
    (as the model's ids, through `ids` and `val_map`) go beyond the model's classes: found in the pass, it came after
    susceptibility and predictions, and a batched group's models were then measured again one at a time. The classes
    are counted as the passes count them, on the model's logits for `probe` (two of the images, as it is fed them),
    not as the checkpoint names them: a count inferred from its last 2-D weight (an auxiliary head declared after
    the classifier) refused a model the passes measure."""
    labelled = [s for s in (train, val) if s is not None and s.labels]
    classes = output_classes(model, probe) if labelled else None
    if classes is None:
        return
    if train is not None and train.labels:
        with training_errors(train), _hinted(checkpoint, train, ids, classes):
            beyond = _names_beyond(train, ids, classes)
            check_label_range(_top_label(train, ids), classes, beyond, _empty_before(train, beyond))
    if val is not None and val.labels:
        val_map = counted_val_ids(val_map, checkpoint, val, train, classes)
        with held_out_errors(val), _hinted(checkpoint, val, val_map, classes):
            check_label_range(_top_label(val, val_map), classes)


@contextlib.contextmanager
def _hinted(checkpoint: Checkpoint, labelled: ImageSource, ids: torch.Tensor | None, classes: int) -> Iterator[None]:
    """A label range error of a set labelled by class id, with numbered_names's hint where the model's class names are
    numbers other than their ids: "the labels go up to 3 but the model has 3 classes", for ratings 1 to 3 that are
    the model's class names, said nothing of them; else counted_from_one's, where the ids run 1 to the class count
    (Oxford-IIIT Pet's CLASS-ID)."""
    try:
        yield
    except InputError as e:
        named = ids is None and labelled.label_names is None and labelled.folders is None
        labels = labelled.labels or []
        hint = (numbered_names(checkpoint.meta, labels) or counted_from_one(labels, classes, beyond=True)) if named else None
        raise InputError(f"{e.message}; {hint}" if hint else e.message, fix=e.fix) from None


def output_classes(model: nn.Module, probe: torch.Tensor) -> int | None:
    """The classes the model's logits count (a single logit is two, logits_of), from one eval forward; None where its
    output holds no logits, which measuring then says, naming the model."""
    with preserved_modes(model), torch.inference_mode():
        model.eval()
        try:
            return int(logits_of(model(probe)).shape[-1])
        except InputError:
            return None


def _names_beyond(labelled: ImageSource, ids: torch.Tensor | None, classes: int) -> list[str]:
    """The class names (a label file's, or class folders) that a labelled set numbers at `classes` or above."""
    names = labelled.label_names if labelled.label_names is not None else labelled.folders or []
    mapped = model_labels(torch.arange(len(names)), ids).tolist() if names else []
    return [n for n, i in zip(names, mapped) if i >= classes]


def _empty_before(labelled: ImageSource, beyond: list[str]) -> list[str]:
    """The class folders without images numbered before the last of the class folders `beyond` the model's classes:
    each keeps its id, so each pushes those after it one id further."""
    folders = labelled.folders or []
    if not beyond or beyond[-1] not in folders:
        return []
    last = folders.index(beyond[-1])
    return [name for name in labelled.empty_folders if folders.index(name) < last]


def _top_label(labelled: ImageSource, ids: torch.Tensor | None) -> int:
    """The highest of a labelled set's listed labels, as the model's class id."""
    return int(model_labels(torch.tensor(labelled.labels), ids).max())


@contextlib.contextmanager
def training_errors(train: ImageSource) -> Iterator[None]:
    """An error in the training-accuracy pass (labels beyond the model's classes) names the label folder or CSV, not
    the model: the row names the model, and a pool's models that fail alike share one message, which the report then
    says once (views.columns, views.formats.gate_lines), as held_out_errors does."""
    try:
        yield
    except InputError as e:
        where = f"on the training set {train.origin}" if train.origin else "on the training set"
        raise InputError(f"{where}: {e.message}", fix=e.fix) from None


@contextlib.contextmanager
def held_out_errors(val: ImageSource) -> Iterator[None]:
    """An error in the held-out pass (labels beyond the model's classes) names the held-out set; the row names the model,
    and a pool's models that fail alike share one message, which the report then says once (views.columns)."""
    try:
        yield
    except InputError as e:
        raise InputError(
            f"on the held-out set {val.origin or ''}: {e.message}".replace("training labels", "held-out labels"),
            fix="check that --val-data is labelled with the classes the model was trained on",
        ) from None
