"""Auditing a pool: score every model once on shared images, keep each result as soon as it exists,
and turn a model that fails into a row with its reason instead of stopping the run."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from suscli.measure.accuracy import Accuracy, training_accuracy
from suscli.measure.predictions import predict
from suscli.measure.randomness import Checked, random_forward
from suscli.measure.batched import groups, measure_many, training_accuracy_many
from suscli.load.arch import changed_sources, spec_identity
from suscli.load.checkpoints import Checkpoint, companion_files, file_sha256, load_checkpoint
from suscli.load.safe_read import CORRUPT_FIX, sidecar_path
from suscli.data.embedded import Embedded
from suscli.errors import InputError, MemoryRefused, SuscliError, plural
from suscli.data.images import ImageSource, NoneDecoded, Preprocess, named_set
from suscli.run.pool import PoolEntry
from suscli.results import AGAIN, REUSED, Result
from suscli.run.label_ids import (
    commonest_label,
    counted_val_ids,
    label_ids,
    labels_in_range,
    model_labels,
    sorted_val_note,
    held_out_errors,
    val_ids,
)
from suscli.run.model import (
    checked_logits,
    failed,
    input_channels,
    score_checkpoint,
    scored_row,
    TRAIN_SKIPPED,
    train_skipped_note,
    source_notes,
    untrained_reference,
)
from suscli.run.placement import on_device
from suscli.run.probes import (
    normalization_noted,
    OwnSize,
    crop_noted,
    own_size_pixels,
    size_noted,
    unrecorded_crop,
    unrecorded_size,
    whole_pixels,
)
from suscli.run.settings import Settings, preprocessing
from suscli.measure.susceptibility import check_finite
from suscli.measure.sampling import Decisions, NestedSample, begin, extended, listed, measured, passed_over, settle, skipped, view
from suscli.run.store import ResultStore

Progress = Callable[[str, int, int], None]


# How checkpoints are read, in the key of every result: raised when a release reads a file that it read before in
# another way, so that a results file never passes off what an earlier release measured for what this one would.
# 2: Lightning's WeightAveraging checkpoints give the module's own weights unless --ema, and --ema reads more layouts.
# 3: --ema reads Lightning's StochasticWeightAveraging state, an SWA average beside the weights (swa_state_dict,
# swa_model) and an EMA helper's {decay, shadow}, where it measured the plain weights before; training class folders
# map to a model's ids by its own class names where a class has no folder (they were numbered in sorted order).
# 4: images are resized as the checkpoint's tool records (a Hugging Face `size` of height and width stretches the
# whole image, timm's and Hugging Face's interpolation), where every one was resized on its shorter side, bilinear.
# 5: the resized sides are rounded down as timm, torchvision and Hugging Face round them (a 32 px input at crop 0.875
# is resized to 36 px, not 37), and an image already at the input size is resized and cropped when crop_pct < 1.
# 6: a Hugging Face ConvNeXt processor at 384 px or more stretches the whole image, PoolFormer's scales the shorter side
# by its crop_pct before its crop_size, as their processors do.
# 7: the center crop of an odd margin starts where the checkpoint's tool starts it: torchvision's rounded offset for
# every checkpoint but a Hugging Face one, whose processors' floor was every checkpoint's (suscli.data.images.CROP_OFFSETS).
# 8: a JPEG is decoded at a reduced scale no smaller than the side it is resized to (256 for a 224 px input at crop
# 0.875), where a 450 px photo was decoded at 225 px and enlarged.
# 9: a Hugging Face int `size` is read as its processor class reads it (ViT's, DeiT's, BEiT's the whole image to that
# square), where every one was a shorter side; an int `crop_size` (DeiT's 224 of 256) crops, where it was ignored.
# 10: a Hugging Face preprocessor_config.json naming no processor class reads an int `size` as the class of config.json's
# model_type (a ViT's the whole image to that square), where it was a shorter side; a list `size` [h, w] is read.
# 11: a Hugging Face MobileViT is fed BGR and not normalized, a PP-LCNet BGR (Preprocess.channel_order), as their
# processors do, where both were fed RGB; a LeViT's shorter side is resized to int(256 / 224 * shortest_edge) before
# its crop, where it was resized to shortest_edge.
# 12: a Hugging Face EfficientNet is fed its pixels over image_std squared (include_top), and a processor's rescale other
# than 1/255 (rescale_factor, do_rescale false, rescale_offset) is folded into the mean and std, where every one was fed
# pixels / 255 normalized once; class names in another Unicode form (NFD folders) map to the model's classes.
# 13: a dataset's images (save_to_disk, parquet) are turned by their EXIF orientation, as the datasets library decodes
# them, where they were decoded as stored.
# 14: a forward's own random ops (a functional dropout) draw from the measurement's seed, where they drew from wherever
# the global RNG stood; a class count in the arch kwargs is the checkpoint's (a (features, logits) forward was measured
# on its features); a dynamic-size timm model built for another img_size is fed that size, where it was fed its
# pretrained size; a sigmoid ending the forward, a forward that cuts the gradient and a Hugging Face multi-label or
# regression head are refused, where they were measured.
# 15: a model whose labels point to its images' own size rather than a preset's, or to whole images rather than the crop
# its architecture's defaults set, is noted and left out of the pool (the size and crop probes), where it was judged as fed.
READING = 15
DATA_IDENTITY = "v2"  # the scheme below; results files of earlier versions hold 16 hex digits (suscli.run.store.legacy_identity)


def data_identity(source: ImageSource | None) -> str | None:
    """What the images used are (and their labels, by name when given by name), wherever they lie and however their
    paths were typed: each file's path relative to the folder holding them all (_common_folder), its
    size and modification time (in whole seconds, which every copy that keeps times keeps); the bytes' hash of an image in a
    dataset. A changed file means new numbers; the same command from another folder, with absolute paths or in a moved
    checkout (a CI runner's new path) is the same data. What the listing left out (its notes: training images among
    held-out ones, rows without a label) is part of it: a row keeps the notes of the run that measured it, and a set
    differing only in what was left out reused the other's rows, whose notes named files it does not hold or said
    nothing of the images it lost. A folder and a list of its images in its order are the same data wherever the list
    lies: named from the list's folder, a list beside the folder named its files "unlabeled/img_000.png", the folder
    "img_000.png", and a results file refused the list's rerun as other data ("--data differs")."""
    return None if source is None else _identity(source, _common_folder(source))


def _identity(source: ImageSource, root: str | None) -> str:
    """data_identity's, with the paths named from `root`."""
    h = hashlib.sha256()
    if source.upright:  # a dataset naming a folder's files by path decodes them otherwise than the folder's listing
        h.update(b"upright\n")
    for note in source.notes:
        h.update(f"note\0{note}\n".encode(errors="surrogateescape"))
    for i, p in enumerate(source.paths):
        label: int | str = source.labels[i] if source.labels is not None else ""
        if source.label_names is not None and isinstance(label, int):
            label = f"name:{source.label_names[label]}"
        if isinstance(p, Embedded):
            h.update(f"row {p.row}\0sha256:{p.digest}\0{label}\n".encode())
            continue
        st = _stat(p)
        h.update(
            f"{_relative(p, root)}\0{st.st_size if st else -1}\0{int(st.st_mtime) if st else -1}\0{label}\n".encode(
                errors="surrogateescape"
            )
        )
    return f"{DATA_IDENTITY}:{h.hexdigest()[:16]}"


def _root(origin: Path | None) -> str | None:
    """The folder a set's paths are named from: the folder listed, or the folder of a list file."""
    if origin is None:
        return None
    return os.path.abspath(origin if origin.is_dir() else origin.parent)


def _common_folder(source: ImageSource) -> str | None:
    """The deepest folder holding every file of a set, which its paths are named from; the folder listed, or the list
    file's folder, for a set of a dataset's rows or of files on two drives (Windows)."""
    try:
        folders = {os.path.dirname(os.path.abspath(p)) for p in source.paths if not isinstance(p, Embedded)}
        return os.path.commonpath(list(folders)) if folders else _root(source.origin)
    except ValueError:  # two drives, or a name no file can have
        return _root(source.origin)


def identities(source: ImageSource | None) -> tuple[str | None, str | None]:
    """`source`'s identity (data_identity), and its identity as releases before the folder holding every file
    (_common_folder) named them, from the folder listed or the list's folder: None where the two folders are one, the
    identity unchanged. Rows stored under the earlier one are the same images' (ResultStore's `also`): without it a
    rerun after the upgrade measured them again, or under --results was refused as other data. Both from one look at
    the set's folders, which walks every path."""
    if source is None:
        return None, None
    folder, root = _common_folder(source), _root(source.origin)
    return _identity(source, folder), None if root == folder else _identity(source, root)


def _relative(path: Path, root: str | None) -> str:
    """`path` as seen from the set's root (a list may name files beside or above it: '../x.png'), in one spelling."""
    if root is None:
        return str(path)
    try:
        return Path(os.path.relpath(os.path.abspath(path), root)).as_posix()
    except ValueError:  # another drive (Windows), or a name no file can have
        return str(path)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except (OSError, ValueError):  # missing, unreadable, or a name no file can have
        return None


# How held-out class folders and names become class ids (suscli.run.label_ids.val_ids), and what a held-out pass keeps.
# Version 1 numbered a held-out set that lacked classes by its own sorted folders unless --train-data was class
# folders; version 2 kept the hits alone, without the top classes the held-out noise reading needs
# (suscli.judge.noise.with_held_out). Results of either are measured again, not reused.
VAL_NUMBERING = 3


def run_settings(
    settings: Settings, unlabeled: ImageSource, train: ImageSource | None, device: torch.device, val: ImageSource | None = None
) -> tuple[dict, dict[str, str]]:
    """What decides the numbers of every model in a run: the key under which results are reused. The held-out set
    (--val-data) is in it only when given: results files from before it stay valid, and a result measured without
    it is never reused as if it had its numbers. Beside it, the identities releases before _common_folder gave the
    sets whose identity differs (identities), by the key's name for each: the rows stored under them are these sets'."""
    key = settings.as_dict()
    if settings.samples is not None and settings.samples >= unlabeled.population:
        key["samples"] = None  # a sample as large as the set is the set, in its order: the same numbers as none
    sets = {"unlabeled_data": unlabeled, "train_data": train, **({"val_data": val} if val is not None else {})}
    named = {name: identities(source) for name, source in sets.items()}
    key = {
        **key,
        **{name: now for name, (now, _) in named.items()},
        **({"val_numbering": VAL_NUMBERING} if val is not None else {}),
        "device_type": device.type,
        "reading": READING,
    }
    return key, {name: earlier for name, (_, earlier) in named.items() if earlier is not None}


def model_key(entry: PoolEntry) -> str:
    """Identity of a model in the results file: its bytes and the architecture asked for (a manifest may change it; a
    `file.py:factory` one by that file's bytes, as --arch in the run's key), and the bytes of the files beside it that
    decide its architecture, preprocessing or class names: its .suscli.json sidecar, and those loading it reads
    (suscli.load.checkpoints.companion_files: the .py file its sidecar or metadata names, timm's args.yaml and class
    map). Keyed by the checkpoint alone, a rerun after editing one of them reused the row measured as the old one
    said. A model without such files keeps the key it had, and its stored results."""
    key = f"{file_sha256(entry.path)}:{spec_identity(entry.arch) or ''}:{sorted((entry.arch_kwargs or {}).items())}"
    side = sidecar_path(entry.path)
    if side.is_file():
        key = f"{key}:sidecar {file_sha256(side)}"
    for file in companion_files(entry.path):
        key = f"{key}:{file.name} {file_sha256(file)}"
    return key


def cached_row(entry: PoolEntry, key: str, store: ResultStore | None) -> Result | None:
    """A copy of the stored result of this model, named as the pool names it now; None when it must be measured.

    A copy: one file may be several entries of a pool (timm hard-links `last` and `model_best` to an epoch's file),
    and each row keeps its own name. It is marked reused (details.reused): it took no time in this run, which the
    JUnit report's times and the run's count of reused results go by; the results file never stores the mark.
    None too once a source file its architecture was built from changed (suscli.load.arch.changed_sources): the key
    holds a `file.py:factory` file's bytes, not those of the modules it imports, nor a local package's."""
    cached = store.get(key) if store is not None else None
    if cached is None or changed_sources(cached.details.get("arch_sources")):
        return None
    row = dataclasses.replace(copy.deepcopy(cached), name=entry.name, path=str(entry.path))
    row.details[REUSED] = True
    return row


def measured_again(row: Result, stored: Result | None) -> Result:
    """`row`, measured in place of `stored` (the result kept under its key, if any), with a note naming the source
    files of its architecture that changed since: why a rerun did not reuse it. The results file does not keep the
    note (AGAIN): a later run that reuses the row did not measure it again."""
    changed = changed_sources(stored.details.get("arch_sources")) if stored is not None else []
    if not changed or not row.ok:
        return row
    note = f"measured again: {', '.join(changed)} changed since the stored result"
    return dataclasses.replace(row, notes=[*row.notes, note], details={**row.details, AGAIN: note})


@dataclass
class PoolRequest:
    """What every pool entry point (audit_pool, grow_pool and their torchrun twins) needs besides the images: the
    models, how to load and measure them, where each result is kept as soon as it exists, and whom to tell."""

    entries: list[PoolEntry]
    settings: Settings
    device: torch.device
    store: ResultStore | None = None
    arch: str | None = None  # for checkpoints that do not name theirs (--arch); an entry's own arch comes first
    arch_kwargs: dict | None = None
    trust: bool = False  # --trust-checkpoint
    ema: bool = False
    model_batch: int = 1  # models measured together (suscli.measure.batched) where they can be
    progress: Progress | None = None
    val: ImageSource | None = None  # held-out images with their labels (--val-data): one more eval pass per model
    checked: Checked = field(default_factory=Checked)  # whether each network's forward is random, found once a run

    def load(self, entry: PoolEntry) -> Checkpoint:
        """The checkpoint of one pool model, with the architecture its entry names before the defaults."""
        return load_checkpoint(
            entry.path,
            arch=entry.arch,
            arch_kwargs=entry.arch_kwargs or None,
            default_arch=self.arch,
            default_arch_kwargs=self.arch_kwargs,
            trust=self.trust,
            ema=self.ema,
        )


def score_group(
    checkpoints: list[Checkpoint],
    names: list[str],
    unlabeled: ImageSource,
    train: ImageSource | None,
    *,
    settings: Settings,
    device: torch.device,
    val: ImageSource | None = None,
    progress: Progress | None = None,
    checked: Checked | None = None,
) -> list[Result]:
    """score_checkpoint of models that share an architecture and preprocessing, measured together
    (suscli.measure.batched): decoded once, one vmap per pass. Any failure raises; the caller then scores them one at a
    time, which gives each model its own row or error. `checked` as score_checkpoint's."""
    start = time.perf_counter()
    chosen = [preprocessing(settings, c.meta, [s for s in (unlabeled, train, val) if s is not None]) for c in checkpoints]
    ids, mapping = label_ids(checkpoints[0], train)  # one mapping: the models of a group share their class names
    val_map = val_ids(checkpoints[0], val, train)
    mapping += sorted_val_note(checkpoints[0], val, train)
    chosen = [(prep, notes + source_notes(unlabeled, train) + (val.notes if val is not None else []) + mapping) for prep, notes in chosen]
    prep = chosen[0][0]
    placed = [on_device(c.model, prep.normalizer(), device) for c in checkpoints]
    models, transform = [model for model, _ in placed], placed[0][1]  # one architecture: one transform for all
    channels = input_channels(models[0], prep.side)
    with named_set("unlabeled set", unlabeled):
        pixels, _, unreadable = unlabeled.decoded(prep.sizing, channels, device, progress)
    labels_in_range(checkpoints[0], models[0], transform(pixels[:2].to(device)), train, ids, val, val_map)  # one architecture
    sus = measure_many(models, pixels, config=settings.susceptibility, transform=transform, device=device, progress=progress)
    for one in sus:
        check_finite(one)  # raises: the models are then scored one at a time, the one that failed in its own row
    checked_logits(checkpoints[0], models[0], sus[0], pixels, transform, device)  # one architecture: one output structure
    val_map = counted_val_ids(val_map, checkpoints[0], val, train, sus[0].num_classes)
    preds = [predict(m, pixels, transform=transform, device=device) for m in models]  # one eval forward each: cheap
    randoms = [random_forward(m, pixels, transform=transform, device=device, most=s.batch_size, seen=checked) for m, s in zip(models, sus)]
    chosen = [(prep, (notes + [random]) if random else notes) for (prep, notes), random in zip(chosen, randoms)]
    references = [
        untrained_reference(m, s, pixels, settings=settings, inputs=(prep, channels), transform=transform, device=device)
        for m, s in zip(models, sus)
    ]  # one measurement for the group's architecture at most
    accs: Sequence[Accuracy | None] = [None] * len(models)
    bad = None
    # the labelled images the probes read (suscli.measure.normalization): the set, its pixels and model labels, which
    # set, each model's accuracy on it
    probed: tuple[ImageSource, torch.Tensor, torch.Tensor, str, Sequence[Accuracy | None]] | None = None
    if train is not None:
        with named_set("training set", train):
            train_pixels, labels, bad = train.decoded(prep.sizing, channels, device, progress)
        train_labels = model_labels(labels, ids)
        accs = training_accuracy_many(
            models,
            train_pixels,
            train_labels,
            population=train.population,
            transform=transform,
            device=device,
            progress=progress,
        )
        probed = (train, train_pixels, train_labels, "training", accs)
    vals: Sequence[Accuracy | None] = [None] * len(models)
    val_bad, commonest = None, None
    if val is not None:
        with named_set("held-out set", val):
            val_pixels, val_labels, val_bad = val.decoded(prep.sizing, channels, device, progress)
        commonest = commonest_label(val_labels, val)
        val_labels = model_labels(val_labels, val_map)
        with held_out_errors(val):
            vals = training_accuracy_many(models, val_pixels, val_labels, transform=transform, device=device, what="held-out accuracy")
        probed = probed or (val, val_pixels, val_labels, "held-out", vals)
    if probed is not None:
        source, shown, given, what, measured = probed
        seed = settings.susceptibility.seed
        fed = [unrecorded_size(settings, c.meta) for c in checkpoints]
        # the group's images at their own size, decoded once for all its models
        own = own_size_pixels(prep, source, len(shown), channels, device, seed) if any(fed) else None
        whole: OwnSize | None = None  # the group's probed images read whole, decoded once where a model's crop asks
        for k, (c, m, f) in enumerate(zip(checkpoints, models, fed)):
            labelled = (shown, given, what, measured[k])
            noted = normalization_noted(chosen[k][1], c, m, prep, labelled, device, seed)
            noted = size_noted(noted, m, transform, prep, labelled, own, f, device)
            if (by := unrecorded_crop(settings, c.meta, noted)) is not None:
                whole = whole or whole_pixels(prep, source, len(shown), channels, device, seed)
                noted = crop_noted(noted, m, transform, prep, labelled, whole, by, sidecar_path(c.path).name, device)
            chosen[k] = (prep, noted)
    seconds = (time.perf_counter() - start) / len(checkpoints)  # each model's share of the group's time
    return [
        scored_row(
            c,
            s,
            a,
            p,
            settings=settings,
            prep=prep,
            channels=channels,
            notes=n,
            images=len(pixels),
            unreadable=unreadable,
            train_unreadable=bad,
            seconds=seconds,
            name=name,
            val=v,
            val_unreadable=val_bad,
            untrained=u,
            commonest=commonest,
        )
        for c, s, a, p, (_, n), name, v, u in zip(checkpoints, sus, accs, preds, chosen, names, vals, references)
    ]


def audit_pool(request: PoolRequest, unlabeled: ImageSource, train: ImageSource | None, sample: NestedSample | None = None) -> list[Result]:
    """One row per entry, in pool order. Results already in `store` are reused; new ones are appended to it
    as soon as they exist, so an interruption loses at most the models being measured. `train` is `sample`'s first
    stage where the training sample grows (grow_pool), and each new row is stored marked so (staged).

    With `request.model_batch` > 1, up to that many models still to measure are loaded at once, and those with the same
    architecture and preprocessing are measured together (score_group); the numbers do not depend on it."""
    entries, store, progress = request.entries, request.store, request.progress
    rows: list[Result | None] = [None] * len(entries)
    waiting: list[tuple[int, str]] = []  # (index, key) of the models to measure next, up to model_batch of them
    for i, entry in enumerate(entries):
        if progress:
            progress("models", i, len(entries))
        try:
            key = model_key(entry)
            rows[i] = cached_row(entry, key, store)
        except SuscliError as e:
            rows[i] = entry_failed(entry, e)
        if rows[i] is None:
            waiting.append((i, key))
        if waiting and (len(waiting) >= request.model_batch or i == len(entries) - 1):
            if store is not None:
                store.require_writable()
            keys = dict(waiting)
            window = [(j, entries[j]) for j, _ in waiting]
            for j, result in scored_window(window, request, unlabeled, train):
                stored = store.get(keys[j]) if store is not None else None
                if store is not None and result.ok:
                    store.append(keys[j], staged(result, sample, request.device))
                rows[j] = measured_again(result, stored)
            waiting = []
    if progress:
        progress("models", len(entries), len(entries))
    return every_row(rows)


def entry_failed(entry: PoolEntry, error: SuscliError) -> Result:
    """The row of a pool's entry that could not be hashed or loaded. One a folder's listing found and that is gone
    now was removed after the listing (a training run still saving, or rotating its checkpoints away, beside the
    rank): its row said "no such file (check the path)" of a path suscli had found itself. One that cannot be read
    and was written just now may be one a training loop is still writing (torch.save writes in place): its row
    asked to save or download it again. The words hold no clock reading, so that two runs give one row."""
    if entry.listed is not None and not os.path.lexists(entry.path):
        error = InputError(
            f"{entry.path}: removed after {entry.listed} was listed",
            fix="rerun once nothing removes checkpoints from it (a training run saving, or keeping only its latest ones)",
        )
    elif error.fix == CORRUPT_FIX and (age := _age(entry.path)) is not None and age < STILL_SAVING_S:
        error = InputError(
            error.message, fix=f"written under a minute ago: a run may still be saving it (rerun once it is written); else {CORRUPT_FIX}"
        )
    return failed(entry.path, error, entry.name)


# How recently an unreadable checkpoint was written for its row to say a run may still be saving it
STILL_SAVING_S = 60


def _age(path: Path) -> float | None:
    """Seconds since the file was last written; None where it cannot be read."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except OSError:
        return None


def staged(row: Result, sample: NestedSample | None, device: torch.device) -> Result:
    """A row just measured on the first stage of a training sample that grows, marked so (sampling.begin) before it
    is first stored: marked only later (settle_sample), each model's record went to the results file twice."""
    if sample is not None and len(sample.sizes) > 1 and measured(row) and listed(row) is None:
        begin(row, sample.sizes[0], _unreadable(sample, row, 0, sample.sizes[0], device))
    return row


def every_row(rows: list[Result | None]) -> list[Result]:
    """The rows of a pool once every entry has one (measured, reused or failed)."""
    done = [row for row in rows if row is not None]
    if len(done) != len(rows):
        raise RuntimeError(f"{len(rows) - len(done)} pool {plural(len(rows) - len(done), 'model was', 'models were')} left without a row")
    return done


def scored_window(
    window: list[tuple[int, PoolEntry]], request: PoolRequest, unlabeled: ImageSource, train: ImageSource | None
) -> Iterator[tuple[int, Result]]:
    """(index, row) of every entry of `window`, group by group as each is measured: a model that fails to load
    is a failed row, and the others are grouped by batchability and identical preprocessing."""
    settings, device, val = request.settings, request.device, request.val
    loaded: list[tuple[int, PoolEntry, Checkpoint]] = []
    for i, entry in window:
        try:
            loaded.append((i, entry, request.load(entry)))
        except SuscliError as e:
            yield i, entry_failed(entry, e)
    images = [s for s in (unlabeled, train, val) if s is not None]
    keys = [_inputs_key(ckpt, settings, images) for _, _, ckpt in loaded]
    for group in groups([ckpt.model for _, _, ckpt in loaded], keys):
        members = [loaded[g] for g in group]
        if len(members) > 1:
            try:
                rows = score_group(
                    [c for _, _, c in members],
                    [e.name for _, e, _ in members],
                    unlabeled,
                    train,
                    settings=settings,
                    device=device,
                    val=val,
                    progress=request.progress,
                    checked=request.checked,
                )
            except Exception:  # anything at all: measured again one at a time below, where each model gets its own row or error
                pass
            else:
                yield from ((i, _with_epoch(row, entry)) for (i, entry, _), row in zip(members, rows))
                continue
        for i, entry, ckpt in members:
            try:
                row = _with_epoch(
                    score_checkpoint(
                        ckpt,
                        unlabeled,
                        train,
                        val=val,
                        settings=settings,
                        device=device,
                        name=entry.name,
                        progress=request.progress,
                        checked=request.checked,
                    ),
                    entry,
                )
            except SuscliError as e:
                row = failed(entry.path, e, entry.name)
            yield i, row


def _inputs_key(checkpoint: Checkpoint, settings: Settings, images: list[ImageSource]) -> tuple | object:
    """What a model's inputs are made of (preprocessing, channel count, class names): models measured together share it.
    A model whose preprocessing cannot be chosen gets a key of its own, and score_checkpoint raises its error."""
    try:
        prep, _ = preprocessing(settings, checkpoint.meta, images)
    except SuscliError:
        return object()
    return prep, input_channels(checkpoint.model, prep.side), _classes(checkpoint)  # labels by name map through them


def _with_epoch(result: Result, entry: PoolEntry) -> Result:
    """The epoch from the pool where the checkpoint does not say, and a manifest's epoch field always (the numbering
    track reports it by, stored so: a results file read back gives the report's epochs)."""
    if result.epoch is None or entry.epoch_given:
        result.epoch = entry.epoch
    return result


Grow = Callable[[list[int], int], Iterator[tuple[int, Result]]]  # (rows to grow, size) -> (index, grown row), as they come
MEMORY_REFUSED = "memory_refused"  # details key of a row that could not grow: the new images would not fit in memory


def grow_pool(
    request: PoolRequest,
    rows: list[Result],
    sample: NestedSample,
    decide: Callable[[list[Result]], Decisions | None],
    grow: Grow | None = None,
) -> tuple[list[Result], int]:
    """settle_sample for the rows of a pool's entries, each grown row kept in the request's store under its model's
    key; grown here by `grow_locally`, unless `grow` says how (suscli.run.distributed shares the work among the ranks)."""
    keys: dict[int, str] = {}
    entries, store = request.entries, request.store

    def save(i: int, row: Result) -> None:
        if store is not None:
            store.append(keys.setdefault(i, model_key(entries[i])), row)

    def load(i: int) -> Checkpoint:
        return request.load(entries[i])

    grow = grow or grow_locally(rows, sample, load, device=request.device, model_batch=request.model_batch, progress=request.progress)
    return settle_sample(rows, sample, grow, decide, device=request.device, save=save)


def grow_locally(
    rows: list[Result],
    sample: NestedSample,
    load: Callable[[int], Checkpoint],
    *,
    device: torch.device,
    model_batch: int = 1,
    progress: Progress | None = None,
) -> Grow:
    """Grow rows of `rows` in this process, `model_batch` at a time (those that can, together: grown_rows);
    `load(i)` gives row i's checkpoint again."""

    def grow(short: list[int], size: int) -> Iterator[tuple[int, Result]]:
        for start in range(0, len(short), model_batch):
            if progress:
                progress(f"training accuracy, {size} images", start, len(short))
            window = short[start : start + model_batch]
            yield from zip(
                window, grown_rows([rows[i] for i in window], [load_or_fail(load, i, rows[i]) for i in window], sample, size, device)
            )

    return grow


def settle_sample(
    rows: list[Result],
    sample: NestedSample,
    grow: Grow,
    decide: Callable[[list[Result]], Decisions | None],
    *,
    device: torch.device,
    save: Callable[[int, Result], None] | None = None,
) -> tuple[list[Result], int]:
    """Grow the training sample of `rows` (measured on its first stage, or on more by an earlier run) until the
    decisions settle (suscli.measure.sampling.settle), or until the next stage's images would not fit in memory
    (then `sample.stopped` says so, and the last stage reached is kept); returns the rows seen at the size chosen, and
    that size.

    `grow` measures the new images of the rows it is given, `save(i, row)` keeps each grown row at once (the
    results file), so that an interrupted run resumes without measuring anything twice."""
    first = sample.sizes[0]
    if len(sample.sizes) == 1 or not any(measured(row) for row in rows):  # the whole set, or no model to grow
        return rows, first
    for i, row in enumerate(rows):
        if measured(row) and listed(row) is None:  # stored unmarked: by audit_pool without the sample, or an older suscli
            begin(row, first, _unreadable(sample, row, 0, first, device))
            if save:
                save(i, row)

    reached = [first]

    def at(size: int) -> list[Result]:
        refused = None
        for i, row in grow([i for i, row in enumerate(rows) if measured(row) and (listed(row) or 0) < size], size):
            if row.details.get(MEMORY_REFUSED):  # every rank's share gathered before stopping: none is left waiting
                refused = refused or row.details[MEMORY_REFUSED]
                continue
            rows[i] = noted(row, sample)
            if save and row.ok:
                save(i, rows[i])
        if refused:
            raise _Stopped(refused)
        reached.append(size)
        return [noted(view(row, size), sample) if measured(row) else row for row in rows]

    try:
        size = settle(sample.sizes, at, decide)
    except _Stopped as stop:
        size, sample.stopped = reached[-1], stop.why
    return at(size), size


def noted(row: Result, sample: NestedSample) -> Result:
    """`row` with its note on unreadable training images counting every one skipped among the images of the order it
    was measured on: made when its first stage was scored, the note left out those of the stages it grew by."""
    if not measured(row) or listed(row) is None:
        return row
    gone = skipped(row)
    said = train_skipped_note(len(gone), sample.ordered.paths[gone[0]]) if gone else None
    notes = [n for n in row.notes if not TRAIN_SKIPPED.fullmatch(n)]
    at = next((i for i, n in enumerate(row.notes) if TRAIN_SKIPPED.fullmatch(n)), len(notes))
    return dataclasses.replace(row, notes=notes[:at] + ([said] if said else []) + notes[at:])


class _Stopped(Exception):
    """The sample cannot grow to the next stage: its images would not fit in memory."""

    def __init__(self, why: str):
        self.why = why


def load_or_fail(load: Callable[[int], Checkpoint], i: int, row: Result) -> Checkpoint | Result:
    """Row i's checkpoint, or its failed row when it can no longer be loaded."""
    try:
        return load(i)
    except SuscliError as e:
        return failed(row.path, e, row.name)


def grown_rows(
    rows: list[Result], loaded: list[Checkpoint | Result], sample: NestedSample, size: int, device: torch.device
) -> list[Result]:
    """`rows` measured on the images of the order up to `size`, only the new ones: models of one architecture,
    preprocessing and count so far together, the others (and a group that fails) one at a time."""
    out: list[Result] = [c if isinstance(c, Result) else rows[k] for k, c in enumerate(loaded)]
    ready = [(k, c) for k, c in enumerate(loaded) if isinstance(c, Checkpoint)]
    keys = [(listed(rows[k]), repr(rows[k].details["preprocess"]), rows[k].details["channels"], _classes(c)) for k, c in ready]
    for group in groups([c.model for _, c in ready], keys):
        members = [ready[g] for g in group]
        grown = None
        if len(members) > 1:
            try:
                grown = _grow([rows[k] for k, _ in members], [c for _, c in members], sample, size, device)
            except Exception:  # anything at all: measured again one at a time, where each model gets its own row or error
                grown = None
        if grown is None:
            grown = [_grow_one(rows[k], ckpt, sample, size, device) for k, ckpt in members]
        for (k, _), row in zip(members, grown):
            out[k] = row
    return out


def _grow_one(row: Result, ckpt: Checkpoint, sample: NestedSample, size: int, device: torch.device) -> Result:
    try:
        return _grow([row], [ckpt], sample, size, device)[0]
    except MemoryRefused as e:  # not the model's failure: the sample stops at the stage before (settle_sample)
        return dataclasses.replace(failed(row.path, e, row.name), details={MEMORY_REFUSED: e.message})
    except SuscliError as e:
        return failed(row.path, e, row.name)
    except RuntimeError as e:  # a device error: the model ran on the first stage, so not its shape
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return failed(row.path, InputError(f"{row.path}: training accuracy on more images failed: {first}"), row.name)


def _grow(rows: list[Result], ckpts: list[Checkpoint], sample: NestedSample, size: int, device: torch.device) -> list[Result]:
    """Rows that share their preprocessing and count so far, grown chunk by chunk of the stages (one vmap per
    batch for several models, training_accuracy_many; the reference pass for one). Each row's `seconds` gains its
    share of the time, so that a row's time (and a JUnit testcase's) is all it took, not its first stage's."""
    start = time.perf_counter()
    prep = _preprocess(rows[0])
    channels = rows[0].details["channels"]
    placed = [on_device(c.model, prep.normalizer(), device) for c in ckpts]
    models, transform = [m for m, _ in placed], placed[0][1]
    for lo, hi in sample.boundaries(listed(rows[0]) or 0, size):
        chunk = sample.chunk(lo, hi)
        ids, _ = label_ids(ckpts[0], chunk)
        try:  # a refusal for memory stops the sample at the stage before (_grow_one), its message as it is
            pixels, decoded, _ = chunk.decoded(prep.sizing, channels, device)
        except NoneDecoded:  # a stage of unreadable images alone (a set's last stage may be 3): skipped, as any unreadable
            rows = [passed_over(r, hi, list(range(lo, hi))) for r in rows]
            continue
        labels = model_labels(decoded, ids)
        if len(models) == 1:
            accs = [training_accuracy(models[0], pixels, labels, population=chunk.population, transform=transform, device=device)]
        else:
            accs = training_accuracy_many(models, pixels, labels, population=chunk.population, transform=transform, device=device)
        bad = _unreadable(sample, rows[0], lo, hi, device)
        rows = [extended(r, a, hi, bad) for r, a in zip(rows, accs)]
    share = (time.perf_counter() - start) / len(rows)
    return [dataclasses.replace(r, seconds=round((r.seconds or 0.0) + share, 3)) for r in rows]


def _classes(checkpoint: Checkpoint) -> str:
    """The class names a model's labels map through (labels given by name, or class folders in its tool's order):
    models grown together share them."""
    return repr([checkpoint.meta.get(k) for k in ("classes", "classes_source", "classes_unread", "class_order")])


def _preprocess(row: Result) -> Preprocess:
    return Preprocess.from_record(row.details["preprocess"])


def _unreadable(sample: NestedSample, row: Result, lo: int, hi: int, device: torch.device) -> list[int]:
    """Positions in the order of the images lo..hi-1 that could not be decoded (the chunk is decoded by now)."""
    prep = _preprocess(row)
    _, _, bad = sample.chunk(lo, hi).decoded(prep.sizing, row.details["channels"], device)
    paths = sample.chunk(lo, hi).paths
    return [lo + paths.index(p) for p, _ in bad]
