"""`suscli track` as a function: susceptibility over one training run (its per-epoch checkpoints measured, or the
training-loop tracker's log read back), the paper's running mean, and the epoch to keep."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from suscli.errors import UsageError, plural
from suscli.measure.sampling import Decisions
from suscli.results import Result
from suscli.run.audit import Progress, audit_pool, grow_pool
from suscli.run.epochs import (
    DEFAULT_KEEP,
    KEEP_RULES,
    annotate,
    gaps,
    late_start,
    held_out_epoch,
    kept_verdict,
    log_rows,
    networks,
    recommendation,
    rule_said,
    run_epochs,
    step_saves,
    trained_epoch_0,
)
from suscli.run.inputs import Inputs, PoolRun, Say, keeping, kept_line, open_pool, require_options, reused_line, sample_info, sample_line
from suscli.measure.devices import resolve_device
from suscli.run.settings import as_the_command, Settings, require_paths
from suscli.run.store import ResultStore
from suscli.run.report import Report, command_line, environment
from suscli.training.tracker import read_log_and_note, schedule_warning, settings_warning, start_warning


@as_the_command
def track(
    run: str | Path | None = None,
    data: str | Path | None = None,
    train_data: str | Path | None = None,
    *,
    log: str | Path | None = None,
    settings: Settings = Settings(),
    inputs: Inputs = Inputs(),
    keep: str = DEFAULT_KEEP,
    count_epoch_0: bool = False,
    results: str | Path | None = None,
    fresh: bool = False,
    val_data: str | Path | None = None,
    progress: Progress | None = None,
    say: Say | None = None,
) -> Report:
    """r at every epoch of a run, the running mean zeta(t) and the epoch to keep by the `keep` rule: from the run's
    per-epoch checkpoints (`run`, measured on the unlabeled images `data`, with `train_data` for training accuracy)
    or from a suscli.training.tracker log (`log`). Raises SuscliError on input it cannot use."""
    started = time.perf_counter()
    require_paths({}, {"run": run, "data": data, "train_data": train_data, "log": log, "val_data": val_data, "results": results})
    require_options(settings, inputs)
    if (run is None) == (log is None):
        raise UsageError(
            "give a RUN of checkpoints or --log" + (", not both" if run else ""),
            fix="suscli track RUN --data unlabeled/, or suscli track --log run.jsonl",
        )
    if keep not in KEEP_RULES:
        raise UsageError(f"unknown keep rule {keep!r}", fix=f"use one of {', '.join(KEEP_RULES)}")
    warnings: list[str] = []
    said: str | None = None  # the training sample the decisions settled on
    store: ResultStore | None = None  # a RUN's results file; a log has none
    if log is not None:
        if data is not None or train_data is not None:
            raise UsageError("--log reads r and training accuracy from the tracker's log; --data and --train-data go with a RUN")
        if val_data is not None:
            raise UsageError("--val-data goes with a RUN of checkpoints: a tracker's log holds no held-out predictions")
        if settings != Settings() or results is not None or fresh:  # each was silently not used
            raise UsageError(
                "--log reads r as the tracker measured it: the measurement's settings, --results and --fresh go with a RUN",
                fix="give them to the SusceptibilityTracker, or measure a RUN of checkpoints",
            )
        if not _as_default(inputs):  # --arch, --device, --cache-dir ...: nothing is loaded or run, and each was silently not used
            raise UsageError(
                "--log reads r as the tracker measured it: the options that load checkpoints and images and say where "
                "they run (--arch, --device, --cache-dir, ...) go with a RUN",
                fix="leave them out, or measure a RUN of checkpoints",
            )
        records, read = read_log_and_note(log)  # read: a resumed run's event folders read as one, a log going back or cut short
        rows = log_rows(records, Path(log))
        warnings += read + [w for w in [start_warning(records), schedule_warning(records), settings_warning(records)] if w]
        if keep == "agreement":  # said, not only documented: the closing line names the rule it asked for
            warnings.append(
                "--keep agreement needs the epochs' predictions on the unlabeled images, which a tracker log does not "
                "hold: the paper's regions order chose instead (run track on the checkpoints for the agreement rule)"
            )
        info: dict[str, Any] = {"command": command_line(), "log": str(log), "environment": environment()}
    else:
        assert run is not None
        if data is None:
            raise UsageError("--data is needed to measure a RUN", fix="pass --data FOLDER of unlabeled images, or --log")
        dev = resolve_device(inputs.device)
        entries, skipped, resumed = run_epochs(run)
        warnings += resumed + [w for w in [late_start([e.epoch for e in entries]), gaps([e.epoch for e in entries])] if w]
        steps = step_saves(skipped)  # beside epoch saves: say why they are not epochs
        if unnumbered := [e for e in skipped if e not in steps]:
            warnings.append(
                f"skipped {len(unnumbered)} {plural(len(unnumbered), 'checkpoint')} with no epoch number: {', '.join(e.name for e in unnumbered[:3])}"
            )
        if steps:
            warnings.append(
                f"skipped {len(steps)} {plural(len(steps), 'checkpoint whose name counts', 'checkpoints whose names count')} optimizer steps, not epochs: "
                f"{', '.join(e.name for e in steps[:3])} (a manifest with the epoch each save ended tracks them)"
            )
        if not count_epoch_0 and (trained := trained_epoch_0(entries)):
            warnings.append(trained)
        opened = open_pool(
            entries, Path(run), data, train_data, settings, inputs, device=dev, results=results, fresh=fresh, lead=True,
            progress=progress, say=say or (lambda line: None), val_data=val_data,
        )  # fmt: skip
        store = opened.request.store
        with keeping(store):  # the measuring and everything after it say what the results file kept
            rows, size = _measured(opened, keep, count_epoch_0)
            warnings += [w for w in [networks(rows)] if w]
            info = opened.run_info(
                data,
                train_data,
                started,
                rows,
                run=str(run),
                **opened.tally(rows, "epochs"),
                train_sample=sample_info(opened.sample, rows, size),
            )
            said = sample_line(opened.sample, rows, size) if opened.sample is not None and size is not None else None
    with keeping(store):
        kept = annotate(rows, count_epoch_0=count_epoch_0, rule=keep)
        held = held_out_epoch(rows, kept, count_epoch_0)  # --val-data: the epoch held-out accuracy would keep, beside the rule's
        closing = recommendation(rows, kept, keep, held)
        info.update(
            seconds=round(time.perf_counter() - started, 3),
            rule=f"{keep}: {rule_said(rows, keep)}",
            recommendation={
                "text": closing,
                "epoch": kept.epoch if kept else None,
                "name": kept.name if kept else None,
                "path": kept.path if kept else None,
            },
            warnings=warnings,
            **({"held_out": held} if held is not None else {}),
        )
        reused = reused_line(rows, store, "epochs")
        lines = [f"warning: {w}" for w in warnings] + [line for line in (reused, said, kept_verdict(kept)) if line] + [closing]
        return Report("track", rows, info, keep=kept, lines=lines, kept=kept_line(store))


def _as_default(inputs: Inputs) -> bool:
    """`inputs` as no option changes them: the command line gives `arch_kwargs` {} where Inputs() holds None."""
    return replace(inputs, arch_kwargs=inputs.arch_kwargs or None) == Inputs()


def _measured(opened: PoolRun, keep: str, count_epoch_0: bool) -> tuple[list[Result], int | None]:
    """Every epoch's row, numbered as the run numbers them, on the training sample the epoch to keep settled on;
    and that sample's size (None for a full or fixed pass)."""
    request, sample = opened.request, opened.sample

    def numbered(rows: list[Result]) -> list[Result]:
        for row, entry in zip(rows, request.entries):
            row.epoch = entry.epoch  # the run's numbering (manifest, suscli's epoch, name) wins over a training tool's record
        return rows

    def decide(rows: list[Result]) -> Decisions:  # the epoch to keep
        kept = annotate(numbered(rows), count_epoch_0=count_epoch_0, rule=keep)
        return Decisions(pick=kept.name if kept else None)

    size = None
    rows = audit_pool(request, opened.unlabeled, opened.first, sample)
    if sample is not None:
        rows, size = grow_pool(request, rows, sample, decide)
    return numbered(rows), size
