"""`suscli score` as a function: one checkpoint's susceptibility, training accuracy, verdict alone and gates."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from suscli.data.images import ImageSource
from suscli.errors import InputError, UsageError, require_number
from suscli.judge import verdict
from suscli.judge.gate import threshold_failures
from suscli.load.checkpoints import Checkpoint, load_checkpoint
from suscli.measure.sampling import Decisions, NestedSample
from suscli.results import Result
from suscli.run.audit import Progress, grow_locally, settle_sample
from suscli.run.inputs import Inputs, cache_note, image_sources, oversized_samples, require_options, sample_info, sample_line, val_source
from suscli.run.pool import checkpoint_epoch
from suscli.measure.devices import resolve_device
from suscli.run.model import failed, score_checkpoint
from suscli.run.settings import as_the_command, Settings, require_paths
from suscli.run.report import Report, run_info


@as_the_command
def score(
    checkpoint: str | Path,
    data: str | Path,
    train_data: str | Path | None = None,
    *,
    settings: Settings = Settings(),
    inputs: Inputs = Inputs(),
    num_classes: int | None = None,
    max_susceptibility: float | None = None,
    min_train_acc: float | None = None,
    val_data: str | Path | None = None,
    progress: Progress | None = None,
    predictions: bool = True,
) -> Report:
    """Measure one checkpoint on the unlabeled images `data` (and its training accuracy on `train_data`, with the
    labels it was trained on, and its accuracy on the held-out images `val_data` with theirs), judge it alone, and
    apply the gates. Raises SuscliError on input it cannot use; a checkpoint that cannot be loaded or run raises
    Unscored, an InputError that holds the report of its row with the error.

    `predictions=False` leaves out the row's top classes on the unlabeled images (details["predictions"], what a JSON
    report shows with --per-image): nothing that judges one checkpoint alone reads them, and the eval pass over every
    unlabeled image that makes them costs nearly as much as the susceptibility itself on 512 images (docs/performance.md).
    No number, verdict or note of the row changes.
    The command line passes False unless --per-image asks for them; the default keeps them, as before."""
    started = time.perf_counter()
    require_paths({"checkpoint": checkpoint, "data": data}, {"train_data": train_data, "val_data": val_data})
    require_options(settings, inputs)
    require_number("num_classes", num_classes, low=1, whole=True)
    require_number("max_susceptibility", max_susceptibility)
    require_number("min_train_acc", min_train_acc, 0, 1)
    if min_train_acc is not None and train_data is None:
        raise UsageError("--min-train-acc needs --train-data")
    dev = resolve_device(inputs.device)
    unlabeled, train, sample = image_sources(data, train_data, settings, inputs)
    val = val_source(val_data, settings, inputs, train)
    size = None
    try:
        ckpt = load_checkpoint(
            checkpoint,
            default_arch=inputs.arch,
            default_arch_kwargs=inputs.arch_kwargs or {},
            num_classes=num_classes,
            trust=inputs.trust_checkpoint,
            ema=inputs.ema,
        )
        if sample is None:
            result = score_checkpoint(
                ckpt, unlabeled, train, val=val, settings=settings, device=dev, progress=progress, predictions=predictions
            )
        else:
            result, size = _settled(ckpt, unlabeled, sample, settings, dev, min_train_acc, progress, val, predictions)
    except InputError as e:  # the model's own failure, as a pool's broken model is its row; a usage error stays one
        result = failed(checkpoint, e)
    if result.epoch is None:  # numbered as a pool numbers the same file (MMEngine's epoch_3.pth keeps it under `meta`)
        result.epoch = checkpoint_epoch(Path(checkpoint))
    failures = threshold_failures(result, max_susceptibility, min_train_acc)
    gated = max_susceptibility is not None or min_train_acc is not None
    verdict.assign([result], None, None)  # a pool of one: the verdict's fixed cuts
    run = run_info(
        settings,
        data,
        unlabeled,
        train_data,
        dev,
        started,
        val,
        [result],
        gate={
            "max_susceptibility": max_susceptibility,
            "min_train_acc": min_train_acc,
            "passed": not failures and (result.ok or not gated),  # a gate on a model that could not be scored did not pass
        },
        train_sample=sample_info(sample, [result], size),
    )
    grown = sample_line(sample, [result], size) if sample is not None and size is not None else None
    said = [*oversized_samples(settings, unlabeled, train), *filter(None, [cache_note(inputs), grown])]
    if result.verdict and result.verdict_why:  # the table has room for the word only; the reason is what a user acts on
        said.append(f"verdict: {result.verdict}: {result.verdict_why}")
    report = Report("score", [result], run, failures=failures, lines=said)
    if not result.ok:  # loading or measuring it failed, or growing its training sample did (a row, not raised)
        raise Unscored(result.error or f"{checkpoint}: could not be loaded or run", report)
    return report


class Unscored(InputError):
    """The checkpoint could not be loaded or run: its error, and the report of its row with that error. The command
    writes that report to every output it was asked for (--junit, --html, -o, the step summary), as rank does for a
    pool's broken model: a CI test reporter then shows a test in error, where it found no report file at all."""

    def __init__(self, line: str, report: Report):
        super().__init__(line)
        self.report = report


def _settled(
    ckpt: Checkpoint,
    unlabeled: ImageSource,
    sample: NestedSample,
    settings: Settings,
    dev: torch.device,
    min_train_acc: float | None,
    progress: Progress | None,
    val: ImageSource | None = None,
    predictions: bool = True,
) -> tuple[Result, int]:
    """The row on the adaptive training sample: grown while the gate on training accuracy, or the verdict where it
    asks whether the model fits better than chance (above the fixed cut), changes."""
    first = score_checkpoint(
        ckpt,
        unlabeled,
        sample.chunk(0, sample.sizes[0]),
        val=val,
        settings=settings,
        device=dev,
        progress=progress,
        predictions=predictions,
    )

    def decide(rows: list[Result]) -> Decisions | None:
        """None, so the first stage, when neither the gate nor the verdict depends on training accuracy."""
        r = rows[0]
        gate = () if min_train_acc is None else (bool(threshold_failures(r, None, min_train_acc)),)
        if not gate and not verdict.fit_decides_alone(r):
            return None
        judged = verdict.judge(r, None, None)
        return Decisions(verdicts=((r.name, judged.word if judged else None),), gates=gate)

    rows = [first]
    [result], size = settle_sample(rows, sample, grow_locally(rows, sample, lambda i: ckpt, device=dev), decide, device=dev)
    return result, size
