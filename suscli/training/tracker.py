"""Susceptibility inside a training loop: one measurement per epoch, logged as JSON lines for `suscli track --log`.

    tracker = SusceptibilityTracker(unlabeled_inputs, log="run.jsonl")
    for epoch in range(epochs):
        tracker.measure(model, epoch, train_acc=acc)  # at the start of the epoch, before training on it
        acc = train_one_epoch(model, optimizer)

`epoch` counts the epochs trained so far, so epoch 0 is the initialization, whose r the paper leaves out of
the running mean. The random labels are drawn once (from the seed) and every epoch uses the same batches, so
that differences between epochs come from the model, not from the draw. The model's weights, buffers and
train/eval flags, the optimizer's state and the parameters' gradients are left exactly as they were.

`writer` sends r, zeta and the measurement's seconds to the logs people already read: a TensorBoard
`SummaryWriter`, or any callable taking a dict of scalars and the step (W&B's `wandb.log`, MLflow's
`mlflow.log_metrics`). The Lightning callback below and `suscli.training.huggingface` for the Hugging Face Trainer route them
through their trainer's own loggers.
"""

from __future__ import annotations

import contextlib
import json
import math
import operator
import random
import time
import warnings
from collections.abc import Callable, Iterator
from typing import SupportsFloat
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn

from suscli.errors import InputError, SuscliError, UsageError, require_number, require_type
from suscli.files import append_line
from suscli.data.images import named_set, unlabeled_source
from suscli.measure.randomness import random_forward
from suscli.measure.steps import unwrapped_optimizer
from suscli.measure.susceptibility import (
    TRACKER_READING,
    SusceptibilityConfig,
    _device_of,
    _floats_as_float32,
    check_arguments,
    in_float32,
    measure_susceptibility,
    unwrapped,
)
from suscli.training.tensorboard import is_event_log, read_events
from suscli.measure.susceptibility import running_mean


@dataclass
class EpochRecord:
    """One line of the log."""

    epoch: int  # epochs trained so far (0 = initialization)
    r: float  # mean of r over the batches at this epoch
    sem: float | None  # its standard error (None with one batch)
    zeta: float | None  # running mean of r over epochs 1..epoch (None at initialization)
    step: str  # "optimizer": the training optimizer's own step; "sgd": plain SGD with step size `lr`
    lr: float  # step size used: the optimizer's current learning rate (first group; all in `lrs`), or the plain SGD step
    batches: int
    batch_size: int
    seed: int
    train_acc: float | None  # as reported by the training loop, 0-1
    time: str  # UTC, ISO 8601, when the measurement ended
    seconds: float  # how long the measurement took
    global_step: int | None = None  # measured every N steps: the trainer's global step (None: once per epoch)
    lrs: list[float] | None = None  # with the optimizer's step: every param group's lr, in group order (None: plain step)
    reading: int | None = None  # how the release measured r (TRACKER_READING; None: a record from before it was logged)


@dataclass
class SusceptibilityTracker:
    """Measures susceptibility once per epoch on fixed unlabeled `inputs` (N, ...) and appends it to `log`.

    `transform` maps a batch of inputs (on the model's device) to model inputs, e.g. uint8 pixels to
    normalized floats. `inputs` may also be a Dataset or DataLoader (the first item of each sample, all of it) or
    a folder of images (decoded once to uint8 pixels of side `image_size`); they move to the model's device once,
    at the first measurement. A log that already exists is read first: a run resumed from a checkpoint continues its
    running mean, and a re-measured epoch replaces the earlier record of that epoch.
    """

    inputs: torch.Tensor | torch.utils.data.Dataset | torch.utils.data.DataLoader | str | Path
    log: str | Path | None = None
    config: SusceptibilityConfig = field(default_factory=SusceptibilityConfig)
    num_classes: int | None = None
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    writer: object | None = None  # a SummaryWriter (anything with add_scalar), or a callable(scalars, step)
    image_size: int | None = None  # for an image folder: the side its images are decoded to
    history: list[EpochRecord] = field(default_factory=list, init=False, repr=False)  # by epoch, as logged
    _checked: bool = field(default=False, init=False, repr=False)  # whether the model's forward was checked for randomness

    def __post_init__(self) -> None:
        check_writer(self.writer)  # now, not once the first epoch is measured and logged
        require_type("SusceptibilityTracker config", self.config, SusceptibilityConfig)
        self.inputs = unlabeled_inputs(self.inputs, self.image_size)
        if self.log is not None and Path(self.log).exists():
            self.history = [EpochRecord(**rec) for rec in log_records(Path(self.log))]  # an empty one: no epochs yet
            if other := {rec.reading for rec in self.history} - {TRACKER_READING}:  # now, not when track --log reads it
                by = "before records said how" if other == {None} else "otherwise"
                warnings.warn(
                    f"{self.log}: its epochs were measured by a suscli release that measured r {by}: the epochs this tracker "
                    f"adds may be on another scale, and zeta mixes the two; {_UPGRADE_FIX}",
                    stacklevel=2,
                )

    def measure(
        self,
        model: nn.Module,
        epoch: int,
        *,
        optimizer: torch.optim.Optimizer | None = None,
        train_acc: SupportsFloat | None = None,
        step: int | None = None,
        global_step: int | None = None,
    ) -> EpochRecord:
        """Measure `model` now; with `optimizer`, step with the training optimizer as the authors did. `step` is the
        x-axis the writer logs at (default: `global_step`, else `epoch`), e.g. the global step to line up with the
        training loss. With `global_step` (measuring every N steps) the record carries it and replaces only the
        records of later steps, not the earlier measurements of its epoch; zeta then averages every measurement
        after step 0."""
        start = time.perf_counter()
        train_acc = training_accuracy(train_acc)  # before the measurement: a wrong value costs it nothing
        epoch = count("epoch", epoch)
        global_step = None if global_step is None else count("global_step", global_step)
        check_arguments(model, self.num_classes, optimizer)  # before unwrapped reads the model's forward
        model = unwrapped(model)
        assert isinstance(self.inputs, torch.Tensor)  # made one in __post_init__
        device = _device_of(model)
        if self.inputs.device != device:
            self.inputs = self.inputs.to(device)  # once: later epochs find them there
        # first: its checks of the model and inputs say what to change (uint8 pixels without a transform, a model that
        # does not take them), where the check of the forward below raised PyTorch's error
        sus = measure_susceptibility(
            model, self.inputs, config=self.config, num_classes=self.num_classes, transform=self.transform, optimizer=optimizer
        )
        if not self._checked:  # once a run: what score and rank put in a row's notes, a warning in a training loop
            self._checked = True
            # as the measurement sees it: a half-precision model takes float32 images there, also where the loop's
            # transform gives them in the model's own precision
            with in_float32(model):
                transform = _floats_as_float32(self.transform or (lambda x: x))
                random = random_forward(model, self.inputs, transform=transform, device=device, most=self.config.batch_size)
            if random:
                warnings.warn(f"suscli: {random}", stacklevel=2)
        self.num_classes = sus.num_classes
        self.history = [
            h
            for h in self.history
            if h.epoch < epoch
            or (h.epoch == epoch and global_step is not None and h.global_step is not None and h.global_step < global_step)
        ]
        # the initialization (epoch 0, or step 0 when measured by steps) is left out of the running mean
        when = [h.epoch if h.global_step is None else h.global_step for h in self.history] + [epoch if global_step is None else global_step]
        zeta = running_mean(when, [h.r for h in self.history] + [sus.mean])[-1]
        record = EpochRecord(
            epoch=epoch,
            r=sus.mean,
            sem=None if math.isnan(sus.sem) else sus.sem,  # nan with one batch: JSON has no NaN
            zeta=zeta,
            step="optimizer" if optimizer is not None else "sgd",
            lr=float(optimizer.param_groups[0]["lr"]) if optimizer is not None else self.config.lr,
            lrs=group_lrs(optimizer) if optimizer is not None else None,
            batches=self.config.batches,
            batch_size=sus.batch_size,
            seed=self.config.seed,
            train_acc=train_acc,
            time=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            seconds=round(time.perf_counter() - start, 3),
            global_step=global_step,
            reading=TRACKER_READING,
        )
        self.history.append(record)
        if self.log is not None:
            _append(Path(self.log), asdict(record))
        if self.writer is not None:
            write_scalars(self.writer, scalars(record), step if step is not None else global_step if global_step is not None else epoch)
        return record


def group_lrs(optimizer: torch.optim.Optimizer) -> list[float]:
    """Every param group's lr, which together size the optimizer's step: a backbone at a tenth of the head's lr, or a
    scheduler moving some groups only, left the first group's constant lr in the log, and the schedule unflagged."""
    return [float(group["lr"]) for group in unwrapped_optimizer(optimizer).param_groups]


def training_accuracy(value: object) -> float | None:
    """The loop's training accuracy as a float from 0 to 1, None for none (or nan). A tensor (`correct.float().mean()`,
    torchmetrics' `compute()`) or a numpy float32 made the log's json.dumps raise after the measurement; a percentage
    showed as 4000% in `suscli track --log`: a UsageError names the value instead."""
    if value is None:
        return None
    try:
        acc = math.inf if isinstance(value, (str, bytes)) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: a tensor of several values
        acc = math.inf
    if math.isnan(acc):
        return None
    if not 0 <= acc <= 1:
        hint = " (a percentage? divide it by 100)" if 1 < acc <= 100 else ""
        shown = acc if math.isfinite(acc) else value  # a tensor's number, not "tensor(40.)"
        raise UsageError(f"train_acc takes a fraction from 0 to 1, got {shown!r}{hint}", fix="pass correct / total, e.g. 0.87")
    return acc


def count(name: str, value: object) -> int:
    """`epoch` or `global_step` as an int >= 0 (a numpy integer or a one-value integer tensor as its int). A float
    epoch (a Trainer's fractional state.epoch, 2.0) was logged as written and the whole log later refused by `suscli
    track --log`, "not a suscli tracker log"; a numpy or tensor one made the log's json.dumps raise after the measurement."""
    try:
        n = -1 if isinstance(value, bool) else operator.index(value)  # type: ignore[arg-type]
    except (TypeError, RuntimeError):  # RuntimeError: a tensor of several values
        n = -1
    if n < 0:
        what = "epochs trained so far, 0 = the initialization" if name == "epoch" else "optimizer steps taken"
        raise UsageError(
            f"{name} takes a whole number from 0 ({what}), got {value!r}",
            fix="pass int(...); measured mid-epoch, pass the epochs completed as epoch and the step as global_step",
        )
    return n


def scalars(record: EpochRecord) -> dict[str, float]:
    """What goes to the training logs, under one prefix so that the dashboards group them; with the epoch and the
    training accuracy, so that `suscli track --log` can read a TensorBoard event file as it reads the JSONL. Seconds,
    which every record has, last: an event file read while the run writes it holds a record whole where it holds its
    seconds (suscli.training.tensorboard.read_events)."""
    values = {
        "susceptibility/epoch": record.epoch,
        "susceptibility/r": record.r,
        "susceptibility/zeta": record.zeta,
        "susceptibility/train_acc": record.train_acc,
        "susceptibility/seconds": record.seconds,
    }
    return {k: float(v) for k, v in values.items() if v is not None}


def write_scalars(writer: object, values: dict[str, float], step: int) -> None:
    """To a SummaryWriter (anything with add_scalar) or a callable(scalars, step)."""
    add_scalar = getattr(writer, "add_scalar", None)
    if add_scalar is not None:
        for name, value in values.items():
            add_scalar(name, value, step)
    elif callable(writer):  # anything else was refused when the tracker was made (check_writer)
        writer(values, step)


def check_writer(writer: object) -> None:
    """A TypeError unless `writer` is None, has add_scalar (a SummaryWriter) or is a callable(scalars, step)."""
    if writer is not None and getattr(writer, "add_scalar", None) is None and not callable(writer):
        raise TypeError(f"writer must be a SummaryWriter or a callable(scalars, step), not {type(writer).__name__}")


def unlabeled_inputs(source: object, image_size: int | None = None) -> torch.Tensor:
    """The unlabeled inputs as one tensor (N, ...): a tensor as it is; a Dataset or DataLoader read once (the first
    item of each sample); an image folder decoded once through suscli's image pipeline (uint8 pixels)."""
    if isinstance(source, torch.Tensor):
        if source.ndim == 0 or len(source) == 0:  # now: the first epoch's check of the forward raised "max(): Expected reduction dim"
            raise InputError(
                f"no unlabeled images to measure susceptibility on (a tensor of shape {tuple(source.shape)})",
                fix="give the tracker a tensor of N >= 1 inputs, (N, ...)",
            )
        return source
    if isinstance(source, (str, Path)):
        if image_size is None:
            raise InputError(
                f"an image folder ({source}) needs image_size= to decode its images to",
                fix="SusceptibilityTracker(folder, image_size=32, transform=normalizer(mean, std))",
            )
        images = unlabeled_source(source)
        with named_set("unlabeled set", images):
            return images.decoded(image_size, 3)[0]
    if isinstance(source, torch.utils.data.DataLoader):
        with kept_rng(source):
            return _joined(torch.cat, [_first(batch) for batch in source])
    if isinstance(source, torch.utils.data.Dataset):
        with kept_rng():
            return _joined(torch.stack, [_first(source[i]) for i in range(len(source))])
    raise InputError(f"unlabeled inputs must be a tensor, a Dataset, a DataLoader or an image folder, not {type(source).__name__}")


@contextlib.contextmanager
def kept_rng(source: object = None) -> Iterator[None]:
    """torch's, numpy's and Python's global random states, and the generators a DataLoader `source` holds, put back
    after the block: iterating a DataLoader draws its base seed and its shuffled order from its own generator, else
    from torch's (workers or not), and a dataset's random augmentations draw from any of them, so reading the
    unlabeled inputs where the loop is set up would change its model's initialization and its shuffling."""
    holders = [source, getattr(source, "sampler", None), getattr(getattr(source, "batch_sampler", None), "sampler", None)]
    generators = {id(g): g for g in (getattr(h, "generator", None) for h in holders) if isinstance(g, torch.Generator)}
    states = [(g, g.get_state()) for g in generators.values()]
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
        for g, state in states:
            g.set_state(state)


def _joined(join: Callable[[list[torch.Tensor]], torch.Tensor], items: list[torch.Tensor]) -> torch.Tensor:
    """A dataset's inputs as one tensor, or an InputError where they cannot be one: none, or of different shapes
    (PyTorch's "stack expects each tensor to be equal size")."""
    if not items:
        raise InputError("the dataset of unlabeled inputs is empty")
    shapes = sorted({tuple(t.shape[1:] if join is torch.cat else t.shape) for t in items})
    if len(shapes) > 1:
        raise InputError(
            f"the dataset's unlabeled inputs differ in shape ({' and '.join(map(str, shapes[:2]))}): they are measured as one tensor",
            fix="give them one size (a transform that resizes and crops)",
        )
    return join(items)


def _first(sample: object) -> torch.Tensor:
    """The input of a sample or batch: (x, y) pairs give x; a dict gives its pixel_values."""
    if isinstance(sample, dict):
        if "pixel_values" not in sample:
            raise InputError(
                f"a dataset item is a dict without 'pixel_values' (its keys: {', '.join(map(str, list(sample)[:6]))})",
                fix="give a tensor of the inputs, or a dataset whose items are (x, y) or hold pixel_values",
            )
        sample = sample["pixel_values"]
    if isinstance(sample, (tuple, list)):
        sample = sample[0]
    if not isinstance(sample, torch.Tensor):
        raise InputError(f"a dataset item is {type(sample).__name__}, not a tensor (or a tuple starting with one)")
    return sample


def _append(path: Path, record: dict) -> None:
    """One flushed line per epoch, so that a crash of the training run keeps every finished epoch; the line a crash
    cut short is cut off by the next append (a resumed run), not written onto."""
    try:
        append_line(path, json.dumps(record))
    except OSError as e:
        raise InputError(f"cannot write tracker log {path}: {e.strerror or e}", fix="give the tracker a writable log path") from None


LOG_FIELDS = frozenset({"epoch", "r"})  # what a log line needs; the rest of EpochRecord is optional when read


def read_log(path: str | Path) -> list[dict]:
    """The records of a tracker log (or of a TensorBoard event file it was written to) in epoch order. A record of epoch e replaces every earlier-written record of
    epochs >= e: a run resumed (or restarted) at epoch e logs them again. A last line cut short by a crash is ignored.
    """
    return read_log_and_note(path)[0]


def read_log_and_note(path: str | Path) -> tuple[list[dict], list[str]]:
    """read_log's records, and what a reader must know of how they were read: a resumed run's TensorBoard folders
    read as one, a JSONL log going back to an earlier epoch (a resumed run, or another run's records appended), a
    last line or measurement written in part (the run still writing it, or killed)."""
    path = Path(path)
    if is_event_log(path):
        events, notes = read_events(path)
        records = [{f: rec.get(f) for f in EpochRecord.__dataclass_fields__} for rec in events]
    else:
        records, notes = _log_records_and_notes(path)
    if not records:  # a run killed while writing its first record has called measure: say what is there instead
        if notes:
            said = "; ".join(note.removeprefix(f"tracker log {path}: ") for note in notes)
            raise InputError(f"tracker log {path} has no whole record: {said}", fix="read it once the run has logged an epoch")
        raise InputError(f"tracker log {path} has no records", fix="call tracker.measure(model, epoch) in the training loop")
    return records, notes


def log_records(path: Path) -> list[dict]:
    """read_log's records of a JSONL log, none where it holds none yet: a file made before the first epoch (a
    temporary file, `touch`), or one whose only line a crash cut short, is where a tracker starts, not an error."""
    return _log_records_and_notes(path)[0]


def _log_records_and_notes(path: Path) -> tuple[list[dict], list[str]]:
    """log_records' records, and the notes read_log_and_note gives of them."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read tracker log {path}: {e}", fix="give the JSONL file written by suscli.training.tracker") from None
    by_epoch: dict[int, dict] = {}
    notes: list[str] = []
    back: list[str] = []  # where a record's epoch is below an earlier one's: its line, epoch, and the latest before it
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                notes.append(
                    f"tracker log {path}: its last line ({n}) is cut short (the run still writing it, or stopped while "
                    "writing it): that record is not read"
                )
                continue
            raise InputError(f"tracker log {path} is corrupt at line {n}", fix="remove that line") from None
        if (
            not isinstance(record, dict)
            or not LOG_FIELDS <= record.keys()
            or not isinstance(record["epoch"], int)
            or isinstance(record["r"], bool)
            or not isinstance(record["r"], (int, float))
        ):
            raise InputError(f"{path} is not a suscli tracker log (line {n})", fix="give the JSONL file written by suscli.training.tracker")
        # json reads NaN and Infinity, which the tracker never writes: r was shown as "-" and every later zeta as nan
        if bad := next((f for f in ("r", "train_acc") if isinstance(record.get(f), float) and not math.isfinite(record[f])), None):
            raise InputError(
                f"tracker log {path} line {n}: {bad} is {record[bad]}, not a number the tracker writes", fix="remove that line"
            )
        epoch = record["epoch"]
        if by_epoch and epoch < (latest := max(by_epoch)):
            back.append(
                f"line {n} to epoch {epoch} after epoch {latest}"
                + (
                    f" (epochs 0-{latest} of the records before it are not read: the run started again, or another run's records were appended)"
                    if epoch == 0
                    else ""
                )
            )
        by_epoch = {e: r for e, r in by_epoch.items() if e < epoch}  # a run restarted at `epoch` overwrites from there on
        by_epoch[epoch] = {f: record.get(f) for f in EpochRecord.__dataclass_fields__}
    if back:
        shown = "; ".join(back[:3]) + (f"; and {len(back) - 3} more" if len(back) > 3 else "")
        notes.insert(
            0,
            f"tracker log {path} goes back to an earlier epoch: {shown}; read as a run resumed or restarted into the log, "
            "whose later records replace the earlier ones from that epoch on",
        )
    return [by_epoch[e] for e in sorted(by_epoch)], notes


def schedule_warning(records: list[dict]) -> str | None:
    """Why the epochs of a log may not be comparable: r measured with the training optimizer's own step scales
    with its learning rate, so under a decaying schedule late epochs read low whatever they memorized."""
    steps = [tuple(rec.get("lrs") or [rec["lr"]]) for rec in records if rec.get("step") == "optimizer" and rec.get("lr") is not None]
    if len(set(steps)) < 2:
        return None
    lrs = [lr for step in steps for lr in step]
    return (
        f"r was measured with the training optimizer's step, whose size followed the schedule (lr {min(lrs):.3g} to "
        f"{max(lrs):.3g}): epochs are not on one scale and the knee may mislead; for choosing an epoch, track with the "
        f"plain SGD step (tracker.measure without optimizer=)"
    )


# what to do with a log whose epochs another release measured (settings_warning, and a tracker opening such a log)
_UPGRADE_FIX = "start a new log, or measure the earlier epochs' checkpoints again with suscli track RUN"


def settings_warning(records: list[dict]) -> str | None:
    """Why the epochs of a log may not be comparable: a run resumed with a tracker of other settings (the step, seed,
    batches, batch size, the plain step's lr) or of a suscli release that measures r otherwise (the reading; none in
    records written before it was logged) appends r on another scale, and the running mean mixes the two."""
    fields = ("step", "seed", "batches", "batch_size", "lr", "reading")
    seen = {tuple(rec.get(f) if f != "lr" or rec.get("step") != "optimizer" else None for f in fields) for rec in records}
    seen = {s for s in seen if any(v is not None for v in s)}  # a TensorBoard event file records none of them
    if len(seen) < 2:
        return None
    differ = [f for i, f in enumerate(fields) if len({s[i] for s in seen}) > 1]
    upgrade = (
        f"; the reading differs where the run was resumed after a suscli upgrade that measures r otherwise: {_UPGRADE_FIX}"
        if "reading" in differ
        else ""
    )
    return (
        f"the log's epochs were measured with different settings ({', '.join(differ)} {'differ' if len(differ) > 1 else 'differs'}): their r are not on one "
        f"scale and zeta mixes them; give a resumed run's tracker the settings of the first (or a new log){upgrade}"
    )


def start_warning(records: list[dict]) -> str | None:
    """Why zeta may not be the run's: a log that begins past epoch 1 (the folder or file of a resumed run's second
    part alone, its earlier epochs logged elsewhere) averages r from there, not from epoch 1 as the paper does."""
    first = records[0]["epoch"] if records else 0
    if first <= 1:
        return None
    return (
        f"the log begins at epoch {first}: zeta averages r from there, not from epoch 1; where the run was resumed, "
        "its earlier epochs are in the log or TensorBoard folder it wrote before (give the folder that holds both, or "
        "the tracker's JSONL)"
    )


def callback_measure(tracker: SusceptibilityTracker, measure: Callable[[], EpochRecord], when: str) -> EpochRecord | None:
    """A trainer callback's measurement. The first one raises what it meets (a model or setting it cannot measure:
    nothing is lost yet, and the run is fixed before it trains); a later one that cannot measure warns and returns
    None, since raised from a callback it would end a training run hours in, for what only the records lose."""
    if not tracker.history:
        return measure()
    try:
        return measure()
    except SuscliError as e:
        warnings.warn(f"susceptibility not measured at {when}: {e.line()}; training goes on", stacklevel=3)
        return None


def measure_every(every_n_epochs: int | None, every_n_steps: int | None) -> tuple[int | None, int | None]:
    """The trainer callbacks' schedule: every N epochs (default 1) or every N optimizer steps, not both. Bad values are
    UsageErrors, as every other argument's (they were ValueError, and "3" a TypeError from comparing it with 1)."""
    if every_n_epochs is not None and every_n_steps is not None:
        raise UsageError(
            "give every_n_epochs or every_n_steps, not both: the callback measures by epochs or by steps", fix="drop one of them"
        )
    for name, n in (("every_n_epochs", every_n_epochs), ("every_n_steps", every_n_steps)):
        require_number(name, n, low=1, whole=True)
    return (1 if every_n_steps is None and every_n_epochs is None else every_n_epochs), every_n_steps
