"""What every audit opens before it measures: the image sets (through the decode cache), the adaptive training
sample, and the resumable results file; and how the sample it settled on is reported."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from suscli.data.cache import default_cache_dir, unwritable
from suscli.data.embedded import Embedded
from suscli.data.images import ImageSource, Preprocess, common_look, labeled_source, unlabeled_source
from suscli.data.imagesets import SplitFolders
from suscli.data.leaks import copies, overlap, repeats
from suscli.data.labels import id_names, natural_key
from suscli.defaults import ADAPTIVE
from suscli.measure.sampling import RECORD, NestedSample, nested_sample
from suscli.results import Result
from suscli.errors import SIGNALLED, InputError, Interrupted, UsageError, first_few, plural, require_number, require_type
from suscli.files import printable
from suscli.judge import verdict
from suscli.judge.regions import first_of
from suscli.load.arch import spec_identity
from suscli.measure.batched import default_model_batch
from suscli.measure.devices import known_device
from suscli.run.audit import PoolRequest, Progress, run_settings
from suscli.run.pool import PoolEntry
from suscli.run.report import run_info
from suscli.measure.susceptibility import plain
from suscli.run.label_ids import training_classes
from suscli.run.settings import Settings
from suscli.run.store import ResultsLock, ResultStore, fingerprint, make_folder, results_location

Say = Callable[[str], None]  # a message for the user (the command line prints it on stderr)


@dataclass(frozen=True)
class Inputs:
    """How the images and checkpoints are read and where the work runs: what score, rank and track share beside
    Settings (which decide the numbers). None of these changes a number."""

    image_column: str | None = None  # the images (or their paths) in a dataset or CSV; found when omitted
    label_column: str | None = None  # the training labels in a dataset or CSV; found when omitted
    arch: str | None = None  # for checkpoints that do not name one (torchvision:NAME, timm:NAME, module:factory, file.py:factory)
    arch_kwargs: dict | None = None
    trust_checkpoint: bool = False  # allow pickled modules and non-builder architectures: runs the file author's code
    ema: bool = False  # the EMA weights a training checkpoint holds beside its plain weights
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    cache_dir: Path | None = None  # the decoded-image cache; default $SUSCLI_CACHE_DIR, else the user's cache folder
    cache: bool = True  # False: decode again, without reading or writing the cache
    model_batch: int | None = None  # a pool's models measured together (vmap); default 8 on CUDA, 1 elsewhere

    def __post_init__(self) -> None:
        """The checks the command line's options make, for Inputs made in Python: arch_kwargs without arch and a
        model_batch of 0 or less were silently not used; a device no call could run on (`gpu`) was refused only by
        the first call."""
        if self.arch_kwargs and self.arch is None:
            raise UsageError(
                "arch_kwargs goes with arch: an architecture a checkpoint names is built with the kwargs it names",
                fix="pass arch too, or leave arch_kwargs out",
            )
        require_number("model_batch", self.model_batch, low=1, whole=True)
        object.__setattr__(self, "model_batch", plain(self.model_batch))
        if self.device != "auto":  # whether this machine has it is checked when a call runs
            known_device(self.device)


def require_options(settings: object, inputs: object) -> None:
    """`settings` a Settings and `inputs` an Inputs (require_type), for score, rank and track before any file is read."""
    require_type("settings", settings, Settings)
    require_type("inputs", inputs, Inputs)


def image_sources(
    data: Path | str, train_data: Path | str | None, settings: Settings, inputs: Inputs
) -> tuple[ImageSource, ImageSource | None, NestedSample | None]:
    """The unlabeled images, the labelled training set (or None) and, with train_samples "auto", its nested sample
    (the training set is then the whole set in the sample's order: its identity keys the results file). Sampled by
    the settings' seed, decoded through the on-disk cache (docs/performance.md) unless `inputs.cache` is False."""
    unlabeled = unlabeled_source(
        data,
        samples=settings.samples,
        seed=settings.susceptibility.seed,
        strict=settings.strict,
        cache_dir=_cache_folder(inputs),
        image_column=inputs.image_column,
    )
    if train_data is None:
        return unlabeled, None, None
    adaptive = settings.train_samples == ADAPTIVE
    train = _labeled(train_data, None if isinstance(settings.train_samples, str) else settings.train_samples, settings, inputs)
    if not adaptive:
        return unlabeled, train, None
    sample = nested_sample(train, settings.susceptibility.seed)
    return unlabeled, sample.ordered, sample


def oversized_samples(settings: Settings, unlabeled: ImageSource, train: ImageSource | None) -> list[str]:
    """What to say when --samples or --train-samples asks for more images than the set lists: every image is
    measured, and a user who expected the number asked for reads the number measured."""
    asked = [("--samples", settings.samples, unlabeled)]
    if isinstance(settings.train_samples, int) and train is not None:
        asked.append(("--train-samples", settings.train_samples, train))
    return [
        f"{option} {n:,} is more than the {source.population:,} images {printable(source.origin or 'the set')} lists: all {source.population:,} are measured"
        for option, n, source in asked
        if n is not None and n > source.population
    ]


def val_source(val_data: Path | str | None, settings: Settings, inputs: Inputs, train: ImageSource | None = None) -> ImageSource | None:
    """The held-out images with their labels (--val-data), read as the training set is (every layout, the same
    columns), every image (no sample: its accuracy is an estimate with its interval), decoded through the cache.
    Held-out images that are also training images (any of `train`'s whole set, not only a --train-samples sample of
    it) are left out, with a note on every row:
    their accuracy is a training accuracy, and measured with the others it let training accuracy choose the model
    to ship, a memorizer, "clearly above every other model" on held-out labels. So are copies of training images
    under other names, and rows that repeat an image (suscli.data.leaks)."""
    if val_data is None:
        return None
    try:
        val = _labeled(val_data, None, settings, inputs)
    except SplitFolders:  # its fix names both options, as they are
        raise
    except InputError as e:  # the listing's errors speak of --train-data, whose reader this is
        raise InputError(
            e.message.replace("--train-data", "--val-data"), fix=e.fix and e.fix.replace("--train-data", "--val-data")
        ) from None
    val.memory_fix = "--val-data is measured whole, with no sample: pass a smaller held-out set"
    if train is not None and train.label_names is None and train.folders is not None:
        training_classes(val, train.folders)  # class folders number every model's labels alike: refused once, here
    if train is not None and train.origin is not None and len(train.paths) < train.population:  # a --train-samples sample
        train = _labeled(train.origin, None, settings, inputs)
    trained = train.paths if train is not None else []
    shared = overlap(trained, val.paths)
    copied = copies(trained, val.paths, set(shared), settings.susceptibility.seed)
    listed = len(val.paths)
    if shared and len(shared) + len(copied) == listed:
        raise InputError(
            f"--val-data {val_data}: all {listed:,} of its images are training images (--train-data), so their accuracy is "
            "a training accuracy, not a held-out one",
            fix="pass images the models did not train on",
        )
    if copied and len(copied) == listed:
        raise InputError(
            f"--val-data {val_data}: all {listed:,} of its images are copies of training images (--train-data), byte for "
            "byte, so their accuracy is a training accuracy, not a held-out one",
            fix="pass images the models did not train on",
        )
    repeated = repeats(val.paths, set(shared) | set(copied))
    unlike = unlike_training(val, train)
    val.notes = [*val.notes, *unlike]
    if not shared and not copied and not repeated:
        return in_path_order(val)
    kept = sorted(set(range(listed)) - set(shared) - set(copied) - set(repeated))
    notes = []
    if shared:
        notes.append(
            f"{len(shared)} of {listed} held-out {plural(listed, 'image')} {plural(len(shared), 'is also a training image', 'are also training images')} (first: {printable(val.paths[shared[0]])}): "
            "left out, since their accuracy is a training accuracy"
        )
    if copied:
        first = min(copied)
        notes.append(
            f"{len(copied)} of {listed} held-out {plural(listed, 'image')} "
            f"{plural(len(copied), 'is a copy of a training image', 'are copies of training images')}, byte for byte (first: "
            f"{printable(val.paths[first])}, a copy of {printable(trained[copied[first]])}): left out, since their "
            "accuracy is a training accuracy"
        )
    if repeated:
        notes.append(
            f"{len(repeated)} of {listed} held-out {plural(listed, 'row')} {plural(len(repeated), 'lists', 'list')} an image listed before (first: {printable(val.paths[repeated[0]])}): "
            "each image counted once, at its first row, since a repeat is no new evidence and would narrow the interval"
        )
    val = val.subset(kept, len(kept))
    val.notes = [*val.notes, *notes]
    return in_path_order(val)


def in_path_order(val: ImageSource) -> ImageSource:
    """The held-out images in the order a folder of them is listed (by path, part by part; a dataset's by row), however
    a list gave them: the split halves that weigh held-out accuracy and the bootstrap of its noise interval draw
    images by position, and a CSV listing a folder's images in another order read other weights (0.56 and 0.51 for the
    folder's 0.62 and 0.44) and another interval."""

    def key(i: int) -> tuple[list[str], int]:
        p = val.paths[i]
        return (os.path.abspath(p.origin).split(os.sep), p.row) if isinstance(p, Embedded) else (os.path.abspath(p).split(os.sep), -1)

    order = sorted(range(len(val.paths)), key=key)
    if order == list(range(len(order))):
        return val
    return val.subset(order, val.population)


def unlike_training(val: ImageSource, train: ImageSource | None) -> list[str]:
    """A note where the held-out images all have another size or colour than the training images: each is made the
    model's size and RGB as any image is, but the accuracy is then that of images unlike those it learned from (the
    demo's test set made 64 px grayscale read 30% for its 93%, and its labels decided for a memorizer)."""
    theirs, mine = (common_look(train.paths) if train is not None else None), common_look(val.paths)
    if theirs is None or mine is None or theirs == mine:
        return []

    def look(size: tuple[int, int], colour: bool) -> str:
        return f"{size[0]}x{size[1]} {'colour' if colour else 'grayscale'}"

    return [
        f"held-out images are {look(*mine)}, training images {look(*theirs)} (the first 20 of each): held-out accuracy "
        "measures the model on images unlike those it learned from"
    ]


def cache_note(inputs: Inputs) -> str | None:
    """The line to say where the decode cache is on but cannot be written: the run goes on without it (docs/performance.md),
    but a user who asked for it learned nothing of why every run decoded again."""
    folder = _cache_folder(inputs)
    why = unwritable(Path(folder)) if folder is not None else None
    if why is None:
        return None
    return (
        f"cache folder {printable(folder)} cannot be written ({why}): decoded images are not kept, and every run decodes "
        "them again (pass --cache-dir a writable folder, or --no-cache)"
    )


def _cache_folder(inputs: Inputs) -> Path | None:
    """Where decoded images are cached; None when `inputs.cache` is off."""
    return (inputs.cache_dir or default_cache_dir()) if inputs.cache else None


def _labeled(path: Path | str, samples: int | None, settings: Settings, inputs: Inputs) -> ImageSource:
    """A labelled image set (training or held-out), seeded and cached as the settings and inputs say."""
    return labeled_source(
        path,
        samples=samples,
        seed=settings.susceptibility.seed,
        strict=settings.strict,
        cache_dir=_cache_folder(inputs),
        image_column=inputs.image_column,
        label_column=inputs.label_column,
    )


def open_store(
    results: str | Path | None,
    pool: Path,
    cache_dir: Path | None,
    fresh: bool,
    key: dict,
    say: Say,
    earlier: dict | None = None,
) -> ResultStore:
    """The resumable results file, keyed by everything that decides the numbers (`key`), whose rows stored under
    `earlier` (the same settings as an earlier release keyed them) are reused too; emptied first when `fresh`.
    The default one (beside the pool, or in the cache folder when the pool's is read-only) keeps every set of
    settings' results side by side, so a changed setting is a rerun, not an error; an explicit `results` is one
    experiment."""
    if results is None:
        path, moved = results_location(pool, cache_dir or default_cache_dir())
    else:
        path = Path(results)
        moved = make_folder(path)  # its folder, where it does not exist yet
    if moved:
        say(moved)
    # held until the run ends (keeping): taken before --fresh deletes the file and before it is read, so that a run
    # waiting for another one starts over, or reuses, what that one wrote
    lock = ResultsLock.take(path, say)
    try:
        if fresh:
            ResultStore.reset(path)
        also = fingerprint(earlier) if earlier is not None else None
        # a row stored before the verdict read its network's untrained reading is measured again (stale)
        store = ResultStore(path, fingerprint(key), key, keep_others=results is None, stale=verdict.lacks_untrained, lock=lock, also=also)
    except BaseException:
        lock.release()
        raise
    for note in store.notes():
        say(note)
    return store


@dataclass
class PoolRun:
    """A pool's images, training sample, results file and request, opened once by rank or track."""

    request: PoolRequest
    unlabeled: ImageSource
    train: ImageSource | None
    sample: NestedSample | None
    val: ImageSource | None = None  # the held-out images (--val-data)

    @property
    def first(self) -> ImageSource | None:
        """The training images of the first pass: the sample's first stage, or the whole (fixed) set."""
        return self.train if self.sample is None else self.sample.chunk(0, self.sample.sizes[0])

    def run_info(self, data: Path | str, train_data: Path | str | None, started: float, rows: list[Result], **extra) -> dict:
        """The run record (suscli.run.report.run_info) of this pool's images, settings and device: rank's and track's."""
        request = self.request
        return run_info(request.settings, data, self.unlabeled, train_data, request.device, started, self.val, rows, **extra)

    def tally(self, rows: list[Result], unit: str) -> dict:
        """The run record's results file and counts: `unit` ("models" or "epochs") measured, scored, failed, reused."""
        store, n_ok = self.request.store, sum(r.ok for r in rows)
        return {
            "results_file": str(store.path if store is not None else None),
            "counts": {unit: len(rows), "scored": n_ok, "failed": len(rows) - n_ok, "reused": reused_count(rows)},
        }


def open_pool(
    entries: list[PoolEntry],
    place: Path,
    data: Path | str,
    train_data: Path | str | None,
    settings: Settings,
    inputs: Inputs,
    *,
    device: torch.device,
    results: str | Path | None,
    fresh: bool,
    lead: bool,
    progress: Progress | None,
    say: Say,
    val_data: Path | str | None = None,
) -> PoolRun:
    """Everything a pool's measurement needs: the images (decoded lazily), the results file beside `place` (the pool
    or run folder, or its manifest; opened by the `lead` process only) and the request the entry points share."""
    unlabeled, train, sample = image_sources(data, train_data, settings, inputs)
    for line in [*oversized_samples(settings, unlabeled, train), *filter(None, [cache_note(inputs)])] if lead else []:
        say(line)
    val = val_source(val_data, settings, inputs, train)
    key, earlier = store_key(settings, unlabeled, train, device, inputs.arch, inputs.arch_kwargs, inputs.ema, val)
    store = open_store(results, place, inputs.cache_dir, fresh, key, say, earlier) if lead else None
    with _closed_on_error(store):
        request = PoolRequest(
            entries,
            settings,
            device,
            store=store,
            arch=inputs.arch,
            arch_kwargs=inputs.arch_kwargs or {},
            trust=inputs.trust_checkpoint,
            ema=inputs.ema,
            model_batch=inputs.model_batch or default_model_batch(device),
            progress=progress,
            val=val,
        )
        return PoolRun(request, unlabeled, train, sample, val)


@contextlib.contextmanager
def _closed_on_error(store: ResultStore | None) -> Iterator[None]:
    """The results file's lock released where the block fails: the run that took it ends there."""
    try:
        yield
    except BaseException:
        if store is not None:
            store.close()
        raise


@contextlib.contextmanager
def keeping(store: ResultStore | None) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) anywhere in the work done with the results file open, the report's building as much as the
    measuring: the line says what the file kept and that the same command resumes, not a bare 'interrupted'. However
    the block ends (done, an error, an interrupt), the run's lock on the file is released, so that a run waiting for
    it goes on, and a later call in the same process (a notebook) is not kept waiting by this one."""
    try:
        yield
    except Interrupted:
        raise
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted{kept_line(store)}") from None
    except Exception:
        if not SIGNALLED.is_set():  # a bug, not the interrupt that C code turned into another exception
            raise
        raise Interrupted(f"interrupted{kept_line(store)}") from None
    finally:
        if store is not None:
            store.close()


def kept_line(store: ResultStore | None) -> str:
    """What the results file kept, to follow 'interrupted': the measuring's line, and the writing of the outputs'. A
    run stopped before its first result wrote nothing, and was said to keep "0 result(s)" in a file that was not there,
    or that held only other settings' results, with a rerun "to resume" that had nothing to resume."""
    if store is None:
        return ""
    if not len(store):
        return f": no result was finished, nothing written to {store.path}"
    return f": {len(store)} {plural(len(store), 'result')} kept in {store.path}; rerun the same command to resume"


def reused_count(rows: list[Result]) -> int:
    """How many rows were taken from the results file: the run record's count and the line saying it, one number."""
    return sum(r.ok and r.reused for r in rows)


def reused_line(rows: list[Result], store: ResultStore | None, unit: str) -> str | None:
    """How many rows a rerun took from the results file: a resumed run said nothing of it, and a rerun that measured
    nothing looked like one that measured every model (only the JSON's counts told). A copy of a checkpoint this run
    measured (regions.first_of) is taken from the file too, but not from an earlier run: said apart. None where none
    was taken."""
    taken = reused_count(rows)
    if store is None or not taken:
        return None
    twins = copied_now(rows)
    earlier = taken - len(twins)
    now = sum(r.ok and not r.reused for r in rows)
    counted = f"{len(rows)} {plural(len(rows), unit[:-1], unit)}"
    said = []
    if earlier:
        said.append(
            f"{earlier} of {counted} taken from the results file {store.path}, where an earlier run with these settings "
            f"measured {plural(earlier, 'it', 'them')}"
        )
    if twins:
        where = "pool" if unit == "models" else "run"
        names = first_few([f"{copy.name} as {first.name}" for copy, first in twins])
        said.append(
            f"{len(twins)}{'' if earlier else f' of {counted}'} {plural(len(twins), 'is', 'are')} the same checkpoint as "
            f"another {unit[:-1]} of this {where} ({names}), measured once for both"
        )
    said.append(f"{now} measured now" if now else "none measured now")
    return "; ".join(said) + (" (--fresh measures every one again)" if earlier else "")


def copied_now(rows: list[Result]) -> list[tuple[Result, Result]]:
    """(copy, original) for each row taken from the results file whose checkpoint is byte for byte one this run
    measured (regions.first_of, the same file sha256): its numbers are this run's, stored a moment before for the
    original. A file of the same weights in other bytes is keyed apart in the results file: taken from it, an
    earlier run measured it."""
    firsts = first_of(rows)
    original = {(id(f), r.sha256): r for r, f in zip(rows, firsts) if r.ok and not r.reused}
    return [(r, original[(id(f), r.sha256)]) for r, f in zip(rows, firsts) if r.ok and r.reused and (id(f), r.sha256) in original]


def store_key(
    settings: Settings,
    unlabeled: ImageSource,
    train: ImageSource | None,
    device: torch.device,
    arch: str | None,
    arch_kwargs: dict | None,
    ema: bool,
    val: ImageSource | None = None,
) -> tuple[dict, dict | None]:
    """What keys a results file: the run's settings and data (the held-out set's too), and the architecture asked for;
    and the same key with the data identities releases before _common_folder gave its sets (suscli.run.audit.identities),
    where one differs, whose rows are these settings' (None where none does)."""
    measured, earlier = run_settings(settings, unlabeled, train, device, val)
    key = {
        **measured,
        "arch": spec_identity(arch),
        "arch_kwargs": arch_kwargs or {},
        **({"ema": True} if ema else {}),
    }  # absent when off: results files from before --ema stay valid
    return key, ({**key, **earlier} if earlier else None)


def sample_line(sample: NestedSample, rows: list[Result], size: int) -> str | None:
    """One line on the training sample the decisions settled on; None when it is the whole set by its size, or when
    no model was measured on it (every one failed to load: no sample to speak of)."""
    if (size == sample.population and sample.sizes == [size]) or not any(r.ok for r in rows):
        return None
    used = max((r.train_n or 0 for r in rows if r.ok), default=0)
    if size == sample.population:
        return f"training accuracy on all {used:,} training images: the sample grew to the whole set"
    if sample.stopped:
        return (
            f"training accuracy on a seeded sample of {used:,} of {sample.population:,} training images: the sample "
            f"stopped growing, because {sample.stopped}; the decisions may change on more images (free memory and run "
            "again to grow it)"
        )
    before = sample.sizes[sample.sizes.index(size) - 1] if size != sample.sizes[0] else None
    why = f"the decisions were the same at {before:,} and {size:,} images" if before else "no decision depends on it"
    return (
        f"training accuracy on a seeded sample of {used:,} of {sample.population:,} training images ({why}); "
        "--train-samples all measures every image"
    )


def sample_info(sample: NestedSample | None, rows: list[Result], size: int | None) -> dict | None:
    """The run-level record of the sample: how many images it held and of how many, and the sizes tried."""
    if sample is None or size is None:
        return None
    return {
        "mode": ADAPTIVE,
        "images": max((r.train_n or 0 for r in rows if r.ok), default=0),
        "listed": size,
        "population": sample.population,
        "sizes_tried": [n for n in sample.sizes if n <= size],
        "stopped": sample.stopped,  # why it stopped short of where the decisions would take it (memory), or None
    }


def training_paths(
    train: ImageSource | None, sample: NestedSample | None, rows: list[Result], size: int | None, device: torch.device | None = None
) -> list[str]:
    """The training images the rows' training predictions are on, in their order, each as the label file wrote it
    (a join of the suspects with that file finds its rows), else as listed."""
    if sample is None or size is None:
        return [printable(train.written.get(p, p)) for p in readable(train, rows, device)] if train is not None else []
    skipped: list[int] = next((r.details[RECORD]["skipped"] for r in rows if r.ok and isinstance(r.details.get(RECORD), dict)), [])
    written = sample.ordered.written
    return [printable(written.get(p, p)) for p in sample.paths_at(size, skipped)]


def readable(train: ImageSource, rows: list[Result], device: torch.device | None) -> list:
    """The images of a training set measured whole (or on a fixed sample) that the rows' predictions are on: where
    they are fewer than its files, the unreadable ones are found again (decoded as the rows were, from memory or the
    decode cache) and left out, so that --suspects names each label's own file rather than refusing."""
    row = next((r for r in rows if r.ok and r.train_n is not None and isinstance(r.details.get("preprocess"), dict)), None)
    if row is None or (row.train_n or 0) >= len(train.paths):
        return list(train.paths)
    _, _, bad = train.decoded(Preprocess.from_record(row.details["preprocess"]).sizing, row.details["channels"], device)
    gone = {ref for ref, _ in bad}
    return [p for p in train.paths if p not in gone]


def class_names(rows: list[Result], train: ImageSource | None, num_classes: int) -> list[str]:
    """The name of each class id of the rows' training predictions, '' where unknown or where the models name it
    differently: the training set's class names (a label CSV's or dataset's, or its class folders) as each model's
    labels were mapped (suscli.data.labels.id_names), else the checkpoints' own names."""
    every = []
    for r in rows:
        d = r.details if isinstance(r.details, dict) else {}
        if not r.ok or not d.get("train_predictions"):
            continue
        meta = {k: d[k] for k in ("classes", "class_order") if d.get(k) is not None}
        folders = train.folders if train is not None else None
        if folders and "class_order" not in d and sorted(folders, key=natural_key) != list(folders):
            folders = None  # measured before rows recorded how the checkpoint's tool numbered folders: sorted or natural?
        every.append(id_names(num_classes, meta, train.label_names if train is not None else None, folders))
    return [names[0] if len(set(names)) == 1 else "" for names in zip(*every)] if every else [""] * num_classes
