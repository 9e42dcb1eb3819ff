"""Susceptibility over one training run, as the paper defines it: r at every epoch, the running mean zeta(t),
and the epoch to keep.

Forouzesh et al. (ICLR 2023) measure r_t at the start of every epoch t and track zeta(t) = mean(r_1 .. r_t),
dropping r_0 at initialization (results.ipynb of the official code). A run's epochs come from its checkpoints
(one per epoch, numbered in the file names or a manifest) or from the log of suscli.training.tracker.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from suscli.errors import InputError, first_few, plural, shown
from suscli.files import written_name
from suscli.load.foreign import DEEPSPEED_MODEL, refusal
from suscli.load.sources.huggingface import best_record, trainer_log
from suscli.load.sources import recorded_epoch
from suscli.load.sources.lightning import END, LAST_BATCH, MID_EPOCH, recorded_step, save_point
from suscli.load.sources.timm import recorded_epoch as timm_epoch
from suscli.measure.susceptibility import running_mean
from suscli.run.pool import PoolEntry, alias_copy, discover, epoch_from_name, name_version, numbered_as, save_step
from suscli.judge import verdict
from suscli.judge.regions import thresholds
from suscli.results import Result
from suscli.judge.held_out import val_hits_of
from suscli.judge.rules import annotate_agreement, choose, predictions_of
from suscli.measure.accuracy import PAIRED_ALPHA, paired_p
from suscli.defaults import DEFAULT_KEEP, KEEP_RULES

INIT_NOTE = "epoch 0 taken as the initialization: left out of the running mean, as in the paper (--count-epoch-0 to include it)"
REGIONS_FIRST = "keep the first epoch of the paper's regions order (suscli rank --rule regions)"
AGREEMENT_FELL_BACK = (
    f"{REGIONS_FIRST}, since no two epochs' predictions on the unlabeled images could be compared (a tracker log holds none)"
)


def knee(train_acc: Sequence[float | None], r: Sequence[float | None]) -> int | None:
    """Index of the epoch with the largest scaled gain in training accuracy minus gain in r, among those with both
    values (None: there are none); the later one on ties.

    Within one run training accuracy keeps rising while the noisy labels are memorized, and r rises with it,
    slowly while the network learns the classes and steeply once it memorizes: the knee of that curve is the
    last epoch before memorization took over. r, not zeta(t): a running mean lags behind the epoch it is read at.
    """
    pairs = [(i, a, x) for i, (a, x) in enumerate(zip(train_acc, r, strict=True)) if a is not None and x is not None]
    if not pairs:
        return None
    a_low, a_span = _range([a for _, a, _ in pairs])
    r_low, r_span = _range([x for _, _, x in pairs])
    gain = {i: (a - a_low) / a_span - (x - r_low) / r_span for i, a, x in pairs}
    best = max(gain.values())
    return max(i for i, g in gain.items() if g == best)


def epoch_to_keep(rows: list[Result], rule: str = DEFAULT_KEEP) -> int | None:
    """Index in `rows` (a run's epochs in order, zeta already set) of the epoch to keep by KEEP_RULES[rule];
    only epochs with a zeta (measured, after the initialization) and training accuracy are candidates."""
    ok = _candidates(rows)
    if not ok:
        return None
    if rule == "train-acc":
        return max(ok, key=lambda i: (rows[i].train_acc, i))
    if rule == "last":
        return ok[-1]
    if rule == "knee":
        return knee([rows[i].train_acc if i in ok else None for i in range(len(rows))], [r.susceptibility for r in rows])
    if rule == "agreement":
        candidates = [rows[i] for i in ok]
        pick = choose(candidates, "agreement", thresholds(candidates)).ranked[0]
        return next(i for i in ok if rows[i] is pick)
    raise ValueError(f"unknown keep rule {rule!r}; rules: {', '.join(KEEP_RULES)}")


def _candidates(rows: list[Result]) -> list[int]:
    """The indexes of the epochs a keep rule chooses from: measured after the initialization (a zeta), with training accuracy."""
    return [i for i, row in enumerate(rows) if row.zeta is not None and row.train_acc is not None]


def _range(values: list[float]) -> tuple[float, float]:
    """Lowest value and span (1 when all are equal, so that the quantity then plays no part)."""
    low = min(values)
    return low, (max(values) - low) or 1.0


def annotate(rows: list[Result], *, count_epoch_0: bool = False, rule: str = DEFAULT_KEEP) -> Result | None:
    """Set each row's zeta, its verdict as `suscli score` would judge that checkpoint alone, and mark the epoch to
    keep by `rule` (rows in epoch order); returns that row.

    The initialization is no candidate: its r is left out of the run as it is left out of zeta.
    """
    zeta = running_mean([r.epoch for r in rows], [r.susceptibility if r.ok else None for r in rows], count_epoch_0=count_epoch_0)
    for row, z in zip(rows, zeta):
        row.zeta = z
        if row.ok and row.epoch == 0 and not count_epoch_0:
            row.notes.append(INIT_NOTE)
    keep = epoch_to_keep(rows, rule)
    verdict.assign(rows, None, None)  # after the rule: the agreement rule judges the epochs as a pool to choose
    for i, row in enumerate(rows):
        row.keep = i == keep if row.ok else None
    return None if keep is None else rows[keep]


def recommendation(rows: list[Result], keep: Result | None, rule: str = DEFAULT_KEEP, held: dict | None = None) -> str:
    """The closing line: the epoch to keep, its numbers and the rule that chose it, or why there is none; with
    `held` (held_out_epoch), the epoch held-out accuracy would keep beside it."""
    beside = f"; {held_out_line(held)}" if held is not None else ""
    if keep is None:
        if not any(r.zeta is not None for r in rows):
            if any(r.ok for r in rows) and all(r.epoch == 0 for r in rows):  # no later epoch failed: there is none (yet)
                return (
                    "no epoch to keep: the run holds only its initialization, epoch 0, which is no candidate (a run "
                    "that numbers its first trained epoch 0, as Lightning does, passes --count-epoch-0)"
                )
            return "no epoch to keep: no epoch after the initialization could be measured"
        return (
            "no epoch to keep: the rule needs training accuracy (checkpoints: pass --train-data; a tracker log: its "
            "records need it, from train_acc= to tracker.measure or the Lightning callback's acc_metric=; a Hugging "
            f"Face Trainer logs none, so track the Trainer's checkpoint folders with --train-data){beside}"
        )
    last = rows[-1]
    later = f"; last epoch {last.epoch}: {_numbers(last)}" if last is not keep and last.ok else ""
    named = "" if keep.name == f"epoch {keep.epoch}" else f" ({keep.name})"  # a tracker log's rows are named so
    warned = verdict.mismeasured_pick(keep, f"epoch {keep.epoch}")
    return f"keep epoch {keep.epoch}{named}: {_numbers(keep)}{later}{beside}. Rule ({rule}): {rule_said(rows, rule)}{warned}"


def rule_said(rows: list[Result], rule: str) -> str:
    """What chose the epoch by `rule` (rows annotated): KEEP_RULES' words, but where the agreement rule fell back to
    the regions order (no epoch has an agreement), that order, which its words describe nothing of, and why: a run of
    checkpoints whose epochs hold predictions was said to be a tracker log, which holds none."""
    if rule != "agreement" or any(r.agreement is not None for r in rows):
        return KEEP_RULES[rule]
    candidates = [rows[i] for i in _candidates(rows)]
    if len(candidates) < 2:
        return f"{REGIONS_FIRST}, since the agreement rule could not compare the epochs: fewer than 2 epochs after the initialization have training accuracy"
    if not any(predictions_of(r) is not None for r in candidates):
        return AGREEMENT_FELL_BACK
    return f"{REGIONS_FIRST}, since the agreement rule could not compare the epochs: {annotate_agreement(candidates, None)[0]}"


def kept_verdict(keep: Result | None) -> str | None:
    """The kept epoch's verdict with its reason, as `suscli score` says it of that checkpoint: the table has room for
    the word only, and a kept epoch read "unclear" (too confident for the fixed cuts) beside earlier epochs' "susceptible"
    says nothing of why without it. None where the epoch has no verdict."""
    if keep is None or not keep.verdict or not keep.verdict_why:
        return None
    named = "" if keep.name == f"epoch {keep.epoch}" else f" ({keep.name})"
    return f"verdict of epoch {keep.epoch}{named} alone, as suscli score judges it: {keep.verdict}: {keep.verdict_why}"


def held_out_epoch(rows: list[Result], keep: Result | None, count_epoch_0: bool = False) -> dict | None:
    """With --val-data: the epoch with the highest held-out accuracy (the earliest of equals; never the
    initialization, which epoch 0 is unless `count_epoch_0` says it was trained), early stopping as users know it, set beside the keep rule's epoch: whether the held-out set
    tells the two apart (exact paired McNemar test, 95%, on the same images) and its p-value. Marks that row's
    `held_out_best` (False on the other measured epochs, None where there is no held-out accuracy). None without
    held-out accuracy."""
    measured = [r for r in rows if r.ok and r.val_acc is not None and (r.epoch != 0 or count_epoch_0)]
    best = max(measured, key=lambda r: (r.val_acc, -(r.epoch or 0))) if measured else None
    for row in rows:  # every row: one read back from the results file may carry an earlier run's mark
        row.held_out_best = (row is best) if best is not None and row.ok and row.val_acc is not None else None
    if best is None:
        return None
    found: dict = {
        "epoch": best.epoch,
        "name": best.name,
        "val_acc": best.val_acc,
        "n": best.val_n,
        "keep_epoch": keep.epoch if keep else None,
        "keep_val_acc": keep.val_acc if keep else None,  # every key always: a report's reader needs no case of its own
        "separated": None,
        "p": None,
    }
    if keep is not None and keep is not best:
        a, b = val_hits_of(best), val_hits_of(keep)
        if a is not None and b is not None and len(a) == len(b):  # the same held-out images: the paired test
            p = paired_p(a, b)
            found.update(separated=p < PAIRED_ALPHA, p=p)
    return found


def held_out_line(found: dict) -> str:
    """The closing line's part on the epoch held-out accuracy would keep: where it is not the keep rule's epoch,
    both held-out accuracies, the difference in points and whether the held-out set tells them apart."""
    said = f"by held-out accuracy, epoch {found['epoch']} ({100 * found['val_acc']:.1f}% of {found['n']:,} held-out images)"
    if found["keep_epoch"] is None:
        return said
    if found["keep_epoch"] == found["epoch"]:
        return f"{said}: the same epoch"
    other = found.get("keep_val_acc")
    if other is None:
        return said
    points = f"{100 * (found['val_acc'] - other):.1f} points"
    if found.get("separated") is None:
        return f"{said}, {points} above epoch {found['keep_epoch']}'s {100 * other:.1f}% (no paired test: the two epochs' hits are not on the same images)"
    how = "clearly above" if found["separated"] else "not separated by the held-out set from"
    test = f"paired McNemar test, p = {found['p']:.2g} {'<' if found['separated'] else '>='} {PAIRED_ALPHA:g}"
    return f"{said}, {how} epoch {found['keep_epoch']}'s {100 * other:.1f}% ({points}; {test})"


def _numbers(row: Result) -> str:
    acc = "-" if row.train_acc is None else f"{100 * row.train_acc:.1f}%"
    zeta = "-" if row.zeta is None else f"{row.zeta:.4f}"
    return f"train acc {acc}, r {row.susceptibility:.4f}, zeta {zeta}"


def late_start(epochs: list[int | None]) -> str | None:
    """Why zeta may not be the run's: its checkpoints begin later than their own spacing says a run saving from the
    start would (epochs 4, 5 of a Trainer that kept its last two; not 5, 10 of one saving every 5th), so zeta averages r
    from there, not from epoch 1 as the paper does. Said as the tracker's log says it (start_warning)."""
    trained = sorted(e for e in epochs if e)
    if len(trained) < 2 or trained[0] <= max(1, trained[1] - trained[0]):
        return None
    return (
        f"the run's checkpoints begin at epoch {trained[0]}, {trained[1] - trained[0]} {plural(trained[1] - trained[0], 'epoch')} apart after it: zeta averages "
        "r from there, not from epoch 1; the earlier ones were deleted (a Trainer's save_total_limit, timm's max_history) "
        "or are in another folder"
    )


def gaps(epochs: list[int | None]) -> str | None:
    """Why zeta may not be the run's, inside it: its checkpoints skip epochs that their own spacing says a run saving
    throughout would hold (0, 1, 4 of a timm run whose max_history deleted 2 and 3; not 0, 5, 10 of one saving every
    5th), so zeta averages r over the epochs kept, weighted towards where they are. Said beside late_start."""
    saved = sorted({e for e in epochs if e is not None})
    steps = [b - a for a, b in zip(saved, saved[1:])]
    if len(steps) < 2:
        return None
    step = min(steps)
    missing = [e for a, b in zip(saved, saved[1:]) for e in range(a + step, b, step)]
    if not missing:
        return None
    shown = first_few(missing, 6)
    return (
        f"the run's checkpoints skip {plural(len(missing), 'epoch')} {shown}, saved every {step} {plural(step, 'epoch')} elsewhere: zeta averages r over the "
        "epochs kept, not every epoch; the others were deleted (timm's max_history, a Trainer's save_total_limit, "
        "Lightning's save_top_k) or are in another folder"
    )


def networks(rows: list[Result]) -> str | None:
    """Why zeta may not be one run's: the checkpoints measured are of several networks (another architecture, or a
    head of another number of classes: an experiment's files copied into this one's folder), so zeta averages r of
    different networks and the rule chooses among them. Said, not refused: each row is that checkpoint's own."""
    kinds: dict[tuple[str, object], list[int]] = {}
    for row in rows:
        if row.ok and row.epoch is not None:
            kinds.setdefault((row.arch or "an unnamed architecture", row.details.get("num_classes")), []).append(row.epoch)
    if len(kinds) < 2:
        return None

    def named(arch: str, classes: object, epochs: list[int]) -> str:
        size = f" with {classes} {plural(classes, 'class', 'classes')}" if isinstance(classes, int) else ""
        shown = first_few(epochs, 4)
        return f"{arch}{size} ({plural(len(epochs), 'epoch')} {shown})"

    return (
        f"the run's checkpoints are of {len(kinds)} networks: {', '.join(named(a, c, e) for (a, c), e in kinds.items())}: "
        "zeta averages r of different networks and the rule chooses among them (one training run trains one network: "
        "track each network's checkpoints alone, in a folder or a manifest of their own)"
    )


def run_epochs(run: str | Path) -> tuple[list[PoolEntry], list[PoolEntry], list[str]]:
    """The run's checkpoints in epoch order, those skipped for having no epoch number (e.g. last.ckpt), and what a
    reader must know about the choice: a Lightning run's saves made during an epoch, the epochs a resumed Lightning
    run saved again, files it did not replace, and a resumed Trainer's output_dir's checkpoints left from the run before.

    Epochs come from each checkpoint's own record, else its file name (suscli.run.pool.checkpoint_epoch), or from a
    manifest's `epoch` field.
    """
    run = Path(run)
    entries = discover(run, all_checkpoints=True, what="run")
    copies = [e for e in entries if e.epoch is not None and not e.epoch_given and alias_copy(e.path)] + _recorded(entries)
    lone = _lone_copies(copies, [e for e in entries if e not in copies])
    copies = [e for e in copies if e not in lone]
    entries = [e for e in entries if e not in copies]
    numbered, notes = _epoch_ends([e for e in entries if e.epoch is not None])
    numbered, resaved = _newest_versions(run, numbered)
    notes += resaved
    if copies:  # refused before as a second checkpoint of that epoch
        notes.append(
            f"skipped {len(copies)} {plural(len(copies), 'checkpoint')} named as a copy of another epoch (last, best, latest, final, or no "
            f"number), whose epoch another checkpoint holds: {shown([e.name for e in copies], 3)}"
        )
    if lone:
        notes.append(
            f"{shown([f'{e.name} (epoch {e.epoch})' for e in lone], 3)}: the only checkpoint of {'its' if len(lone) == 1 else 'their'} "
            "epoch, as its file records it (the numbered one was not kept: timm's max_history, Lightning's save_top_k), "
            "measured as that epoch"
        )
    numbered, final = _final_model(run, numbered)
    notes += [final] if final else []
    skipped = [e for e in entries if e.epoch is None]
    mid = [e.name for e in skipped if e.path.is_dir() and trainer_log(e.path) is not None]
    if not numbered:
        if mid:  # a Trainer saves every save_steps (500) steps by default: mid-epoch
            raise InputError(
                f"no checkpoint of {run} has an epoch number: the Trainer saved {shown(mid, 3)} "
                "mid-epoch (the epoch in trainer_state.json is not whole)",
                fix='save one at the end of every epoch, TrainingArguments(save_strategy="epoch"), or give a manifest with an epoch field',
            )
        foreign = [why for e in skipped if (why := refusal(e.path)) is not None]
        if foreign and len(foreign) == len(skipped):  # FSDP's sharded folders: what they are, which no epoch number reads
            raise foreign[0]
        if run.is_dir() and (steps := step_saves(skipped)):
            raise _step_saves(run, steps)
        raise InputError(
            f"no checkpoint of {run} has an epoch number", fix="name them like epoch_12.pt, or give a manifest with an epoch field"
        )
    for a, b in zip(numbered, numbered[1:]):
        if a.epoch == b.epoch and MID_EPOCH in (save_point(a.path), save_point(b.path)):  # no END: _epoch_ends kept them
            raise InputError(
                f"{run}: two checkpoints for epoch {a.epoch}: {_as_listed(run, a)} and {_as_listed(run, b)}, saved during the "
                f"epoch ({_DURING}), and none at an epoch's end",
                fix="save one at the end of every epoch, ModelCheckpoint(save_top_k=-1), or list the saves to measure in a "
                "manifest with an epoch field",
            )
        if a.epoch == b.epoch and (runs := _run_folders(run, a, b)):
            raise InputError(
                f"{run}: two checkpoints for epoch {a.epoch}: {_as_listed(run, a)} and {_as_listed(run, b)}, in folders {runs[0]}/ and {runs[1]}/ that "
                "each hold their own: separate runs, which track measures one at a time, or copies of one run's files",
                fix=f"track one run, suscli track {run / runs[0]} (compare runs with suscli rank {run}); copies: keep one",
            )
        if a.epoch == b.epoch:
            raise InputError(
                f"{run}: two checkpoints for epoch {a.epoch}: {_as_named(run, a)} and {_as_named(run, b)}",
                fix="keep one per epoch, or list them in a manifest with an epoch field",
            )
    if mid:  # they have an epoch, fractional: "no epoch number" said otherwise
        notes.append(
            f"left out {len(mid)} {plural(len(mid), 'checkpoint')} the Trainer saved mid-epoch (the epoch in trainer_state.json is not whole): "
            f"{shown(mid, 3)}; the run's epochs are its end-of-epoch checkpoints"
        )
    parted = _parted_logs(numbered)
    return numbered, [e for e in skipped if e.name not in mid], notes + ([parted] if parted else [])


def _as_named(run: Path, entry: PoolEntry) -> str:
    """A checkpoint as _as_listed names it, with what its file records where its name says another epoch (a copy
    renamed): the record wins, and without it the error named checkpoint-3 as a second epoch 1 with no reason."""
    named = None if entry.epoch_given else epoch_from_name(numbered_as(entry.path))
    if named is None or named == entry.epoch:
        return _as_listed(run, entry)
    return f"{_as_listed(run, entry)} (its file records epoch {entry.epoch}, its name says {named})"


def _as_listed(run: Path, entry: PoolEntry) -> str:
    """A checkpoint of a run folder as the user finds it there, by its path in the folder: a file at the folder's top
    is named by its stem as a row, one in a subfolder by its path, and an error naming two files of one epoch read
    "epoch_3 and more/epoch_3.pt", the first no file of the run. The run folder itself (a Trainer's final model) and
    a manifest's entry by their names."""
    try:
        shown = entry.path.relative_to(run).as_posix()
    except ValueError:  # a manifest's entries lie anywhere, under names it gives
        return entry.name
    return entry.name if shown == "." else shown


def _run_folders(run: Path, a: PoolEntry, b: PoolEntry) -> tuple[str, str] | None:
    """The subfolders of `run` that hold two checkpoints of one epoch, one each, where they are different ones: a
    folder of several runs, which deleting one of the two files ("keep one per epoch") would not make one run."""
    try:
        parts = a.path.relative_to(run).parts, b.path.relative_to(run).parts
    except ValueError:  # a manifest's entries lie anywhere
        return None
    if min(len(parts[0]), len(parts[1])) < 2 or parts[0][0] == parts[1][0]:
        return None
    return parts[0][0], parts[1][0]


def step_saves(entries: list[PoolEntry]) -> list[PoolEntry]:
    """The checkpoints whose names count optimizer steps, not epochs (`step_500.pt`, `iter_1000.pth`, DeepSpeed's
    `global_step100/`): a run of only these is refused with the manifest that tracks it, and those beside epoch
    saves are said apart from saves with no number at all."""
    return [e for e in entries if save_step(e.path) is not None]


def _step_saves(run: Path, saves: list[PoolEntry]) -> InputError:
    """Why a run saved by optimizer step has no epochs, and the manifest that gives them: DeepSpeed's model states
    record none, and save_checkpoint's default tag, `global_stepN`, counts steps, as a script's `step_500.pt` does; a
    save every epoch or every 500 steps both write such names. Renaming the files, as the plain refusal says, is no fix
    for names a tool gives them itself."""
    first = saves[0].path.relative_to(run).as_posix()
    deepspeed = all(e.path.name == DEEPSPEED_MODEL for e in saves)
    named = "DeepSpeed's model states record none, and the folders it names them by" if deepspeed else "their names"
    return InputError(
        f"no checkpoint of {run} has an epoch number: {named} "
        f"({shown([e.path.parent.name if deepspeed else e.name for e in saves], 3)}) count optimizer steps, not epochs",
        fix=f'give a manifest in {run} with the epoch each save ended, [{{"path": "{first}", "epoch": 1}}, ...], and track it',
    )


def _recorded(entries: list[PoolEntry]) -> list[PoolEntry]:
    """The files without an epoch in their name that record one (Lightning's `last.ckpt`, timm's `last.pth.tar` and
    `model_best.pth.tar`), numbered by it: each is a copy of that epoch's checkpoint."""
    found = []
    for e in entries:
        if e.epoch is None and not e.epoch_given and e.path.is_file() and (epoch := recorded_epoch(e.path)) is not None:
            e.epoch = epoch
            found.append(e)
    return found


def _lone_copies(copies: list[PoolEntry], numbered: list[PoolEntry]) -> list[PoolEntry]:
    """The copies of an epoch that no numbered checkpoint holds, one per epoch (the newest): a tool that keeps only
    its best checkpoints (timm's max_history, Lightning's save_top_k) deletes the last epoch's numbered file, and its
    `last` copy is then the run's only record of the epoch it ended on."""
    held = {e.epoch for e in numbered}
    newest: dict[int, PoolEntry] = {}
    for e in sorted((c for c in copies if c.epoch not in held), key=_written):
        newest[e.epoch or 0] = e
    return list(newest.values())


_DURING = "ModelCheckpoint's every_n_train_steps, train_time_interval or a mid-epoch validation, as their saved loop counters say"


def _epoch_ends(entries: list[PoolEntry]) -> tuple[list[PoolEntry], list[str]]:
    """The checkpoints saved at an epoch's end, where Lightning's records tell them from those saved during one
    (suscli.load.sources.lightning.save_point; the names, `epoch=E-step=S`, do not), and a note on the others.

    With any end-of-epoch save (ModelCheckpoint's per-epoch one), those are the run's epochs, with a step save made
    at the last batch of an epoch that has none (the same weights); the saves made during an epoch are left out. A
    run saved only during its epochs (every_n_train_steps, train_time_interval) is measured on those saves, said.
    A manifest's epochs and files without these records are kept as they are."""
    points = {id(e): save_point(e.path) for e in entries if not e.epoch_given and not e.path.is_dir()}
    ends = {e.epoch for e in entries if points.get(id(e)) == END}
    mid = [e for e in entries if points.get(id(e)) == MID_EPOCH]
    if ends:
        out = [e for e in entries if points.get(id(e)) == MID_EPOCH or (points.get(id(e)) == LAST_BATCH and e.epoch in ends)]
        if not out:
            return entries, []
        return [e for e in entries if e not in out], [
            f"left out {len(out)} {plural(len(out), 'checkpoint saved during its epoch', 'checkpoints saved during their epoch')} ({_DURING}): {shown([e.name for e in out], 3)}; the run's epochs are its "
            "end-of-epoch checkpoints"
        ]
    if not mid:
        return entries, []
    return entries, [
        f"{shown([e.name for e in mid], 3)} {'was' if len(mid) == 1 else 'were'} saved during {'its' if len(mid) == 1 else 'their'} epoch "
        f"({_DURING}), not at its end: "
        "each is measured as its epoch, and zeta averages r over these saves, not over whole epochs; save one at the end "
        "of every epoch, ModelCheckpoint(save_top_k=-1), to measure epochs"
    ]


def _final_model(run: Path, entries: list[PoolEntry]) -> tuple[list[PoolEntry], str | None]:
    """Leave out a Trainer output_dir's own model where a checkpoint-N folder has its step: `save_model()` and
    `save_state()` after `train()` write the model the run ended with (or, with load_best_model_at_end, the best
    checkpoint's) and the trainer_state.json that numbers it, beside the checkpoint that saved that step, and the
    run read as two checkpoints of its last epoch. Returns the entries kept and a note naming the one left out."""
    own = next((e for e in entries if e.path == run and not e.epoch_given), None)
    log = trainer_log(run) if own is not None else None
    if own is None or log is None:
        return entries, None
    twin = next((e for e in entries if e is not own and e.path.is_dir() and (t := trainer_log(e.path)) and t[0] == log[0]), None)
    if twin is None:
        return _loaded_best(own, log[0], entries)
    return [e for e in entries if e is not own], (
        f"{own.name}: the Trainer's final model (save_model), saved at step {log[0]} as {twin.name} was, left out: "
        "the run's epochs are its checkpoint-N folders"
    )


def _loaded_best(own: PoolEntry, step: int, entries: list[PoolEntry]) -> tuple[list[PoolEntry], str | None]:
    """A Trainer's final model saved after its last checkpoint: the run's last epoch, unless its trainer_state.json
    records a best checkpoint, which load_best_model_at_end loads before save_model: its weights are then that
    checkpoint's, not those of the step it numbers (save_total_limit=1 deletes the last checkpoint, and track measured
    the best's weights again as the last epoch). The record does not say whether they were loaded: left out, where
    the run holds checkpoints besides."""
    best = best_record(own.path)
    if best is None or len(entries) == 1:
        return entries, None
    return [e for e in entries if e is not own], (
        f"{own.name}: the Trainer's final model (save_model), saved at step {step}, left out: its trainer_state.json records "
        f"a best checkpoint ({written_name(best[1])}), which load_best_model_at_end loads before save_model, so its weights need not be "
        f"step {step}'s; the run's epochs are its checkpoint-N folders"
    )


def _parted_logs(entries: list[PoolEntry]) -> str | None:
    """A note naming the Trainer checkpoint folders whose log (trainer_state.json) does not continue the one before
    them in step order. A Trainer resumed from checkpoint-N into the same output_dir writes its checkpoints over the
    earlier run's of the same steps and leaves those of later steps it did not reach: their logs part from the
    resumed run's after step N. Read from the checkpoints' own records, which a copy keeps."""
    logs = sorted(
        ((e, log) for e in entries if not e.epoch_given and e.path.is_dir() and (log := trainer_log(e.path)) is not None),
        key=lambda el: el[1][0],
    )
    parted: list[PoolEntry] = []
    kept, against, after = None, "", 0  # against: the checkpoint the first parted one does not continue
    for entry, (step, history) in logs:
        if kept is not None:
            ours, theirs = _upto(kept[1][1], kept[1][0]), _upto(history, kept[1][0])
            if ours != theirs:
                if not parted:
                    same = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
                    against, after = kept[0].name, ours[same - 1].get("step", 0) if same else 0
                parted.append(entry)
                continue
        kept = entry, (step, history)
    if not parted:
        return None
    names = shown([e.name for e in parted], 3)
    return (
        f"{names}: {'its' if len(parted) == 1 else 'their'} trainer_state.json log does not continue {against}'s "
        f"(the two part after step {after}): likely the earlier run's, left in the output_dir by a run resumed from an "
        "earlier checkpoint; remove "
        f"{'it' if len(parted) == 1 else 'them'}, or list the run's epochs in a manifest"
    )


def _upto(history: list, step: int) -> list[dict]:
    """The entries of a Trainer's log history up to `step`."""
    return [h for h in history if isinstance(h, dict) and isinstance(h.get("step"), int) and h["step"] <= step]


def _newest_versions(run: Path, entries: list[PoolEntry]) -> tuple[list[PoolEntry], list[str]]:
    """One checkpoint per name, in epoch order. A Lightning run resumed from an earlier epoch saves the epochs it
    trains again: into the same dirpath as `epoch=3-step=100-v1.ckpt` beside `epoch=3-step=100.ckpt`, or by default
    into its logger's next folder, `version_1/checkpoints/` beside `version_0/checkpoints/`, and under another name
    where the name holds a metric it computes anew (`epoch=3-val_loss=2.30.ckpt` beside `epoch=3-val_loss=2.29.ckpt`).
    The newest version is the one training went on from. Returns the entries kept and notes naming those left out,
    and the later epochs written before an earlier epoch's new version: the earlier run's, trained from weights the
    resume went back from. A later version_K folder that starts at epoch 0 again holds another run: refused."""
    _one_run(run, [(name_version(e.path)[1][0], e) for e in entries if not e.epoch_given])
    kept, replaced = [], []
    for group in _saves_of_epochs(entries):
        kept.append(group[-1])
        replaced += [(e, group[-1]) for e in group[:-1]]
    kept.sort(key=lambda e: e.epoch or 0)
    if not replaced:
        return kept, []
    renamed = [(old, new) for old, new in replaced if name_version(old.path)[0] != name_version(new.path)[0]]
    versioned = [pair for pair in replaced if pair not in renamed]
    notes = []
    if versioned:
        notes.append(
            f"a resumed run saved {len(versioned)} {plural(len(versioned), 'checkpoint')} again (Lightning's -vN names, or its logger's next version_N "
            f"folder): the newest version of each is measured ({shown([f'{new.name} over {old.name}' for old, new in versioned], 3)})"
        )
    if renamed:
        notes.append(
            f"a resumed run saved {len(renamed)} {plural(len(renamed), 'checkpoint')} again under other values in their names (a metric in "
            "ModelCheckpoint's filename): the later save of each is measured, told by its logger's version_N folder, the "
            f"global_step it records, then its file time ({shown([f'{new.name} over {old.name}' for old, new in renamed], 3)})"
        )
    resumed = {id(new) for _, new in replaced}
    stale, resume = [], None  # resume: the newest re-saved file of an earlier epoch
    for entry in kept:
        if resume is not None and (entry.epoch or 0) > (resume.epoch or 0) and _written(entry) < _written(resume):
            stale.append(entry)
        elif id(entry) in resumed and (resume is None or _written(entry) > _written(resume)):
            resume = entry
    if stale and resume is not None:
        how = "an earlier version_N folder" if all(_written(e)[0] < _written(resume)[0] for e in stale) else "file times"
        notes.append(
            f"{shown([e.name for e in stale], 3)}: written before {resume.name} "
            f"({how}), where a resumed run saved epoch {resume.epoch} again: likely the earlier run's, trained from "
            "weights the resume went back from; remove them, or list the run's epochs in a manifest"
        )
    return kept, notes


# A value ModelCheckpoint formats into a file name (`epoch=1-val_loss=2.29`): a resumed run's save of an epoch again
# holds the metrics it computed anew, and takes another name where the same name would take a -vN suffix.
_NAMED_VALUE = re.compile(r"=(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?|nan|inf)(?=$|[-_])", re.IGNORECASE)


def _saves_of_epochs(entries: list[PoolEntry]) -> list[list[PoolEntry]]:
    """The checkpoints grouped by the save of an epoch they are versions of, oldest first. One name's versions
    (-vN, version_N folders) are ordered by them. Lightning checkpoints of one epoch whose names differ only in the
    values formatted into them (metrics, the step) are one epoch saved again where their records show a resume:
    each saved at the epoch's end, of an epoch after the run's first (a run that saved its first epoch twice was
    started over, or twice); they are ordered by the logger's version_N folder, the global_step they record, then
    file time. Other checkpoints of one epoch stay apart, and are refused as two checkpoints of it (run_epochs)."""
    first = min((e.epoch for e in entries if e.epoch is not None), default=None)
    groups: dict[tuple[Path, int | None], list[PoolEntry]] = {}
    for entry in entries:  # by epoch too: last.ckpt and last-v1.ckpt, each the only file of its epoch, are two epochs
        groups.setdefault((_saved_as(entry), entry.epoch), []).append(entry)
    out = []
    for group in groups.values():
        names = list(dict.fromkeys(name_version(e.path)[0] for e in group))
        if len(names) == 1:
            out.append(sorted(group, key=lambda e: name_version(e.path)[1]))
        elif group[0].epoch != first and all(save_point(e.path) == END for e in group):
            out.append(sorted(group, key=lambda e: (name_version(e.path)[1][0], recorded_step(e.path) or 0, _mtime(e))))
        else:
            out += [sorted((e for e in group if name_version(e.path)[0] == name), key=lambda e: name_version(e.path)[1]) for name in names]
    return out


def _saved_as(entry: PoolEntry) -> Path:
    """The name every save of the entry's epoch by one run and its resumes shares: its path without Lightning's
    versions and, for a Lightning checkpoint, without the values formatted into its name."""
    if entry.epoch_given:
        return entry.path
    base = name_version(entry.path)[0]
    if recorded_step(entry.path) is None:
        return base
    return base.with_name(_NAMED_VALUE.sub("=#", base.name.removesuffix(base.suffix)) + base.suffix)


def _one_run(run: Path, folders: list[tuple[int, PoolEntry]]) -> None:
    """Refuse the version_K folders that may hold separate runs: a run resumed from an end-of-epoch checkpoint saves
    first the epoch after it, so a later folder that holds epoch 0 again (`lightning_logs/version_1` of a second run)
    is another run, or a run resumed from a checkpoint saved during epoch 0 (`every_n_train_steps`), which saves
    every epoch again in its own folder. Their checkpoints do not tell the two apart: the same epoch, global_step
    and loop counts, the folder aside."""
    first = min((k for k, _ in folders), default=0)
    again = sorted({k for k, e in folders if k > first and e.epoch == 0})
    if again:
        folder = next(e.path for k, e in folders if k == again[0])
        while folder.name != f"version_{again[0]}":
            folder = folder.parent
        raise InputError(
            f"{run}: version_{first} and version_{again[0]} both start at epoch 0: separate runs, or version_{again[0]} "
            "resumed from a checkpoint saved during epoch 0, which their checkpoints do not tell apart",
            fix=f"a run resumed during epoch 0 saved all its epochs again: track its folder alone, suscli track {folder}; "
            "separate runs: track one version_N folder, or list the run's epochs in a manifest with an epoch field",
        )


def _written(entry: PoolEntry) -> tuple[int, float]:
    """When a checkpoint was written, as far as can be told: its logger's version_N folder first (a resumed run's
    logger opens the next one, and a copy keeps the names), then its file time (which a copy without `cp -p` does
    not keep). Lightning's checkpoints hold no record that orders two runs: the epochs a resume trains again carry
    the same global_step and loop counts."""
    return name_version(entry.path)[1][0], _mtime(entry)


def _mtime(entry: PoolEntry) -> float:
    try:
        return entry.path.lstat().st_mtime
    except OSError:  # gone: its row says so
        return float("inf")


_STEPS = re.compile(r"(?:^|[-_])step=(\d+)")  # Lightning's ModelCheckpoint names: epoch=0-step=13


def trained_epoch_0(entries: list[PoolEntry]) -> str | None:
    """Why epoch 0 of this run is a trained epoch rather than the initialization, where its file says so: Lightning
    names the checkpoint of its first trained epoch `epoch=0-step=N`, N optimizer steps in, and timm's
    CheckpointSaver saves only after an epoch trained, recording `epoch` 0 for the first. None otherwise."""
    if not entries or entries[0].epoch != 0:
        return None
    first = entries[0]
    if timm_epoch(first.path) == 0:
        return (
            f"{first.name} records epoch 0 as timm's CheckpointSaver writes it, after that epoch trained: its epoch 0 is "
            "a trained epoch (timm numbers its first trained epoch 0), not the initialization; pass --count-epoch-0 to "
            "count it in zeta and the choice"
        )
    m = _STEPS.search(first.name)
    if m is None or int(m.group(1)) == 0:
        return None
    return (
        f"{first.name} was saved {int(m.group(1)):,} training steps in: its epoch 0 is a trained epoch (Lightning numbers "
        "its first trained epoch 0), not the initialization; pass --count-epoch-0 to count it in zeta and the choice"
    )


def log_rows(records: list[dict], log: Path) -> list[Result]:
    """Result rows from suscli.training.tracker log records (one per epoch, in epoch order)."""
    return [
        Result(
            name=f"epoch {rec['epoch']}",
            path=str(log),
            epoch=rec["epoch"],
            susceptibility=rec["r"],
            susceptibility_sem=rec.get("sem"),
            train_acc=rec.get("train_acc"),
            details=rec,
        )
        for rec in records
    ]
