"""`suscli rank` as a function: measure a pool (resuming from its results file, sharded under torchrun), grow the
training sample while it changes a decision, then regions, verdicts, the model to ship, the label noise and gates."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from suscli.errors import InputError, UsageError, require_number
from suscli.judge.gate import FAIL_ON, flags_none, needs_regions, pool_failures, shortfall, unjudged
from suscli.judge.regions import MIN_POOL, RULES as THRESHOLD_RULES, counted, first_of, pool_classes, thresholds
from suscli.run.label_ids import numbering_clause
from suscli.judge.rules import DEFAULT_RULE, RULES, choose, noise_line, pool_decisions
from suscli.load.safe_read import checkpoint_stem
from suscli.measure.sampling import Decisions
from suscli.results import Result
from suscli.run.audit import Progress, audit_pool, grow_pool
from suscli.run.distributed import audit_shards, grow_shards, process_group, rank_device
from suscli.run.launch import World, world
from suscli.run.inputs import (
    Inputs,
    PoolRun,
    Say,
    class_names,
    keeping,
    kept_line,
    open_pool,
    require_options,
    sample_info,
    reused_line,
    sample_line,
    training_paths,
)
from suscli.measure.devices import resolve_device
from suscli.run.settings import as_the_command, Settings, require_paths
from suscli.run.pool import PoolEntry, discover
from suscli.run.report import Report


@as_the_command
def rank(
    pool: str | Path,
    data: str | Path,
    train_data: str | Path | None = None,
    *,
    settings: Settings = Settings(),
    inputs: Inputs = Inputs(),
    all_checkpoints: bool = False,
    rule: str = DEFAULT_RULE,
    thresholds_rule: str = "mean",
    zeta_threshold: float | None = None,
    acc_threshold: float | None = None,
    fail_on: str = "never",
    candidate: str | None = None,
    results: str | Path | None = None,
    fresh: bool = False,
    val_data: str | Path | None = None,
    suspects: bool = False,
    progress: Progress | None = None,
    say: Say | None = None,
) -> Report | None:
    """Rank the models under `pool` (a folder, each subfolder one run, or a manifest) on the unlabeled images `data`,
    with their training labels `train_data` for regions, verdicts and the label-noise estimate. Every model's
    result is kept in the results file as soon as it exists. Under torchrun every rank measures its share, and only
    rank 0 gets the report (the others get None). `suspects`: the caller writes the suspects (the command line's
    --suspects), which need the consensus of 2+ models, so a pool of one is refused before it is measured. Raises
    SuscliError on input it cannot use."""
    started = time.perf_counter()
    say = say or (lambda line: None)
    require_paths({"pool": pool, "data": data}, {"train_data": train_data, "val_data": val_data, "results": results})
    require_options(settings, inputs)
    pool = Path(pool)
    for option, value, known in (
        ("rule", rule, RULES),
        ("thresholds_rule", thresholds_rule, THRESHOLD_RULES),
        ("fail_on", fail_on, FAIL_ON),
    ):
        if value not in known:  # the command line's choices: a misspelt one was ignored, or failed once the pool was measured
            raise UsageError(f"unknown {option} {value!r}", fix=f"use one of {', '.join(known)}")
    require_number("zeta_threshold", zeta_threshold)
    require_number("acc_threshold", acc_threshold, 0, 1)
    if candidate is not None and train_data is None:
        raise UsageError("--candidate needs --train-data: regions need training accuracy")
    if fail_on == "memorized" and train_data is None:  # known now, not after the whole pool was measured
        raise UsageError("--fail-on memorized needs --train-data: 'likely memorized noise' needs training accuracy")
    w = world()  # under torchrun: this process measures its share of the pool (docs/distributed.md)
    dev = resolve_device(inputs.device) if w is None else rank_device(w, resolve_device(inputs.device))
    lead = w is None or w.rank == 0  # the results file and every report are rank 0's alone
    entries = discover(pool, all_checkpoints=all_checkpoints, say=say if lead else None)
    if candidate is not None:
        candidate = candidate_name(candidate, entries)
    gated = fail_on == "memorized" or candidate is not None
    if gated and len(entries) < MIN_POOL and (zeta_threshold is None or acc_threshold is None):  # known now, not after measuring
        raise needs_regions("--fail-on memorized" if fail_on == "memorized" else "--candidate")
    if suspects and len(entries) < MIN_POOL:  # known now: the model was measured, then refused
        raise UsageError(
            f"--suspects needs {MIN_POOL}+ models: {pool} holds {len(entries)}",
            fix=f"the suspects are the training labels the consensus of the pool's models contradicts: rank {MIN_POOL}+ models",
        )
    opened = open_pool(
        entries, pool, data, train_data, settings, inputs, device=dev, results=results, fresh=fresh, lead=lead, progress=progress, say=say,
        val_data=val_data,
    )  # fmt: skip
    request, sample, store = opened.request, opened.sample, opened.request.store

    def decide(rows: list[Result]) -> Decisions:
        return pool_decisions(rows, rule, thresholds_rule, zeta_threshold, acc_threshold)

    with keeping(store):  # every line from here on, the report's building too, says what the results file kept
        # the first pass, then the sample grown while the decisions change (under torchrun, every rank its share)
        if w is None:
            rows, size = audit_pool(request, opened.unlabeled, opened.first, sample), None
            if sample is not None:
                rows, size = grow_pool(request, rows, sample, decide)
        else:
            with process_group(dev):
                shared = _sharded(w, opened, decide)
            if shared is None:
                return None  # another rank than 0: rank 0 reports
            rows, size = shared
        mark_copies(rows)
        classes = pool_classes(rows)
        mixed = len(classes) > 1
        t = None if mixed else thresholds(rows, thresholds_rule, zeta_threshold, acc_threshold)
        choice = choose(rows, rule, t)
        # why there are no regions: a gate set fails as not judged, and every report says so of the models it judges
        why: str | None = None
        if mixed:  # the error below, not "needs regions"
            why = f"the pool mixes models with {' and '.join(map(str, classes))} classes"
            failures = unjudged(fail_on, candidate, why)
        else:
            why = None if t else shortfall(choice.ranked)
            failures = pool_failures(choice.ranked, fail_on, candidate, t)
        blind = None if failures or t is None else flags_none(choice.ranked, fail_on)  # said with the gate lines
        if t is None and opened.train is not None and 0 < sum(r.ok for r in counted(rows)) < MIN_POOL:  # copies count once; none: moot
            say(
                f"regions need a pool of {MIN_POOL}+ distinct scored models fed as they were trained: pass --zeta-threshold and "
                "--acc-threshold to judge fewer"
            )
        names = class_names(rows, opened.train, choice.labels.num_classes) if choice.labels else []
        run = opened.run_info(
            data,
            train_data,
            started,
            rows,
            pool=str(pool),
            thresholds=None if t is None else {"susceptibility": t.susceptibility, "train_acc": t.train_acc, "source": t.source},
            recommendation=choice.why,
            choice={
                "rule": rule,
                "pick": choice.pick.name if choice.pick else None,
                "confident": choice.confident,
                "within_noise": [r.name for r in choice.tied],
                "voters": choice.voters,
                **({"held_out": choice.held_out} if choice.held_out else {}),  # --val-data: the choice made on held-out labels
            },
            label_noise={
                **choice.labels.estimate.as_dict(),
                "voter_names": list(choice.labels.voter_names),
                "fit_cost": choice.labels.cost.as_dict() if choice.labels.cost else None,
                "noise_matrix": choice.labels.matrix().as_dict(names),
            }
            if choice.labels
            else None,
            **opened.tally(rows, "models"),
            gate={
                "fail_on": fail_on,
                "candidate": candidate,
                # --fail-on memorized speaks for every model: one that could not be scored was never judged
                "passed": not failures and not (fail_on == "memorized" and any(not r.ok for r in rows)),
                "not_judged": why if failures else None,
                "flags_none": blind,  # a pass where no model could have been flagged, and why
            },
            train_sample=sample_info(sample, rows, size),
            **({"world_size": w.size} if w else {}),
        )
        said = sample_line(sample, rows, size) if sample is not None and size is not None else None
        numbering = numbering_clause([r.notes for r in rows])  # the noise and suspects lines rest on the class numbering
        return Report(
            "rank",
            choice.ranked,
            run,
            choice=choice,
            thresholds=t,
            failures=failures,
            lines=[
                line
                for line in (
                    reused_line(rows, store, "models"),
                    said,
                    choice.why,
                    noise_line(choice.labels) + numbering if choice.labels else None,
                )
                if line
            ],
            training_paths=training_paths(opened.train, sample, rows, size, dev),
            class_names=names,
            kept=kept_line(store),
            error=InputError(
                choice.why, fix="rank models with the same number of classes together; every result is kept in the results file"
            )
            if mixed
            else None,
        )


def mark_copies(rows: list[Result]) -> None:
    """A note on each row that holds an earlier row's weights (regions.first_of: a file copied under another name, a
    timm `last` linked to an epoch, the same state dict saved as another file): the pool-wide numbers count those
    weights once (regions.distinct), and the report would otherwise read as if more models were trained than were."""
    for r, first in zip(rows, first_of(rows)):
        if first is not r and r.ok:
            r.notes = [*r.notes, f"{_same_as(r, first)}: a row of its own, counted once with it in the pool's thresholds and consensus"]


def _same_as(copy: Result, first: Result) -> str:
    """How mark_copies names what `copy` shares with `first`: the checkpoint, byte for byte, or its weights alone."""
    if copy.sha256 is not None and copy.sha256 == first.sha256:
        return f"the same checkpoint as {first.name} (sha256 {copy.sha256[:12]})"
    weights = copy.weights_sha256 or first.weights_sha256 or ""  # a row stored without it matched a file of `first`'s weights
    return f"the same weights as {first.name} in another file (weights sha256 {weights[:12]})"


def _sharded(w: World, opened: PoolRun, decide: Callable[[list[Result]], Decisions]) -> tuple[list[Result], int | None] | None:
    """The pool measured by every rank of a torchrun launch: its rows and sample size on rank 0, None on the others."""
    rows = audit_shards(w, opened.request, opened.unlabeled, opened.first, opened.sample)
    if opened.sample is None:
        return None if rows is None else (rows, None)
    return grow_shards(w, opened.request, rows, opened.sample, decide)


def candidate_name(candidate: str, entries: list[PoolEntry]) -> str:
    """The pool's name of --candidate: a model's name, or the file name or path of its checkpoint where no other
    model's checkpoint has it (score names a model by its file name, and a CI job holds the new checkpoint's path).
    A name that several models answer to (the stem of m.pt and m.safetensors, which the pool names by their file
    names; a last.pt of two run folders) is ambiguous, said with the models it matches: it was "not in the pool"."""
    if candidate in {e.name for e in entries}:
        return candidate
    given = Path(candidate)
    found = {e.name for e in entries if e.path.name == candidate or (given.exists() and e.path.resolve() == given.resolve())}
    if len(found) == 1:
        return found.pop()
    found = found or {e.name for e in entries if e.path.is_file() and checkpoint_stem(e.path) == candidate}
    if len(found) > 1:
        raise UsageError(
            f"--candidate {candidate!r} is ambiguous: it names {len(found)} pool models", fix=f"pass one of {', '.join(sorted(found))}"
        )
    raise UsageError(f"--candidate {candidate!r} is not in the pool", fix=f"pool models: {', '.join(e.name for e in entries[:8])}")
