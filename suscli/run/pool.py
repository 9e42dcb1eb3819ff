"""Finding the models of a pool: a folder of checkpoints and run folders, or a manifest file.

A checkpoint is a file with a checkpoint suffix, or a folder a layout claims as one (a Hugging Face model folder,
whose files are then not models of their own); a Trainer's output_dir is a run of `checkpoint-N/` folders.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suscli.load.checkpoints import read_metadata
from suscli.load.foreign import DEEPSPEED_MODEL, DEEPSPEED_SHARD, EXPORTS, export_kind, refusal
from suscli.load.state_dicts import few
from suscli.load.safe_read import CHECKPOINT_SUFFIXES, checkpoint_stem, checkpoint_suffix, nameable
from suscli.errors import InputError, plural
from suscli.files import written_name
from suscli.load.sources import checkpoint_folder, recorded_epoch
from suscli.load.sources.huggingface import recorded_best
from suscli.load.sources.interface import epoch_number, optimizer_state, plain_records

MANIFEST_SUFFIXES = (".json", ".csv")
# epoch_12.pt, epoch-12, epoch=12-step=3400.ckpt (Lightning), ep12, ckpt-000012.safetensors, model_12.pth
_EPOCH_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (r"epoch[=_-]?(\d+)", r"(?:\b|_)ep[=_-]?(\d+)", r"(?:ckpt|checkpoint)[=_-]?(\d+)")]
# else a number standing alone at the end of the name (model_12.pth, run2-100), not one that is part of a word
# (resnet50.pt, bn_cnn16): architectures carry numbers too; nor the end of a metric a script formats into the name
# (model_3_0.8533.pt, weights.05-0.42, lr1e-3): its decimals, or its exponent, read as epochs in the metric's order
_LAST_NUMBER = re.compile(r"(?:^|(?<!\d[e])[_\-=]|(?<!\d)\.)(\d+)(?=$|\.[a-z]+$|\.pth\.tar$)", re.IGNORECASE)
# A name by the optimizer step (a script's step_500.pt, model-step-1000.safetensors, DeepSpeed's global_step100/ or a
# step_100/ tag folder) or iteration (MMEngine's CheckpointHook(by_epoch=False) writes iter_1000.pth) counts steps,
# not epochs: it orders a run's saves, and was read as epochs 500, 1000, 100. Lightning's epoch=E-step=S names its
# epoch first, which wins.
_STEP = re.compile(r"(?:^|[^a-z])(?:steps?|iter(?:ation)?)[=_-]?(\d+)", re.IGNORECASE)
# detectron2's PeriodicCheckpointer names its saves by the iteration zero-padded to 7 digits, model_0004999.pth; a
# script's model_12.pth numbers epochs, no epoch count fills 7 digits, and a date (model_20241201) has 8
_DETECTRON2_STEP = re.compile(r"^model_(\d{7})$")
_DETECTRON2_FINAL = "model_final"  # detectron2's save after the last iteration: the run's final model
# The file a training tool writes beside its saves, naming its newest: MMEngine's CheckpointHook and detectron2's
# Checkpointer write `last_checkpoint` (the save's path, the training machine's, or its file name), DeepSpeed's
# save_checkpoint `latest` (the tag, its save's folder); each names a save in its own folder
_POINTERS = ("last_checkpoint", "latest")
_POINTER_MAX = 4096  # bytes: a path; a longer file of such a name is none
# A name that says it is an alias of some epoch (Lightning's last.ckpt, last-v1.ckpt, a script's resnet50_best.pt):
# its number is not the epoch, and the file is skipped like one without a number
_ALIAS = re.compile(r"(?:^|[^a-z])(?:last|best|latest|final)(?:$|[^a-z])", re.IGNORECASE)
# Lightning's ModelCheckpoint saving under a name that exists (a run resumed into the same dirpath) adds -v1, -v2, ...
_VERSION = re.compile(r"-v(\d+)$")
_VERSION_DIR = re.compile(r"^version_\d+$")  # a Lightning logger's folder, version_0, version_1, ...
# What a Hugging Face Trainer (optimizer.pt, scheduler.pt, scaler.pt, rng_state.pth, rng_state_3.pth,
# training_args.bin) and Accelerate's save_state (optimizer.bin, scheduler_1.bin, sampler.bin) write beside the
# weights under fixed names: training state, not models. Saved after the weights, one was a run's newest file and
# was taken as its model, whose row then failed ("holds no state dict").
_TRAINING_STATE = re.compile(
    r"^(?:(?:optimizer|scheduler|scaler|sampler)(?:_\d+)?\.(?:pt|bin)|rng_state(?:_\d+)?\.pth|training_args\.bin)$"
)


@dataclass
class PoolEntry:
    name: str
    path: Path
    arch: str | None = None  # from a manifest: beats the file's own metadata
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    epoch: int | None = None
    epoch_given: bool = False  # a manifest's epoch field: the user's numbering, over the checkpoint's own record
    listed: Path | None = None  # the folder whose listing found it; None: a manifest's entry


def epoch_from_name(path: str | Path) -> int | None:
    """Epoch number in a checkpoint's file name, by the naming schemes training scripts use; None if absent."""
    stem = _VERSION.sub("", checkpoint_stem(Path(path)))  # model_12-v1: the 12, not the version
    for pattern in _EPOCH_PATTERNS:
        if m := pattern.search(stem):
            return int(m.group(1))
    if _ALIAS.search(stem) or _STEP.search(stem) or _DETECTRON2_STEP.match(stem):
        return None
    m = _LAST_NUMBER.search(stem)
    return int(m.group(1)) if m else None


def save_step(path: Path) -> int | None:
    """The optimizer step a checkpoint's name (or DeepSpeed's tag folder) numbers it by where it names no epoch
    (`step_500.pt`, `iter_1000.pth`, `model_0004999.pth`, `global_step100/mp_rank_00_model_states.pt`); None otherwise."""
    named = numbered_as(path)
    if epoch_from_name(named) is not None:
        return None
    stem = _VERSION.sub("", checkpoint_stem(named))
    m = _STEP.search(stem) or _DETECTRON2_STEP.match(stem)
    return int(m.group(1)) if m else None


def alias_copy(path: Path) -> bool:
    """Whether a file's name calls it another epoch's copy (last.safetensors, resnet50_best.pt) and gives no epoch of
    its own: an epoch saved with it (suscli.save(..., epoch=N)) is that other epoch's, which its own file holds."""
    stem = _VERSION.sub("", checkpoint_stem(path))
    return path.is_file() and _ALIAS.search(stem) is not None and epoch_from_name(path) is None


def name_version(path: Path) -> tuple[Path, tuple[int, int]]:
    """The checkpoint's path without Lightning's versions, and those versions (0 without one): the logger's
    `version_K` folder, where ModelCheckpoint saves by default and a resumed run's logger opens the next one, and
    the `-vN` suffix it adds to a name that exists (a run resumed into the same dirpath).
    `version_1/checkpoints/epoch=3-step=100-v2.ckpt` is version (1, 2) of `version_*/checkpoints/epoch=3-step=100.ckpt`."""
    stem = checkpoint_stem(path)
    m = _VERSION.search(stem)
    suffix = 0 if m is None else int(m.group(1))
    base = path if m is None else path.with_name(stem[: m.start()] + path.name[len(stem) :])
    parts = list(base.parts)
    folder = next((i for i in range(len(parts) - 2, -1, -1) if _VERSION_DIR.match(parts[i])), None)
    if folder is None:
        return base, (0, suffix)
    version = int(parts[folder].removeprefix("version_"))
    parts[folder] = "version_*"
    return Path(*parts), (version, suffix)


def checkpoint_epoch(path: Path) -> int | None:
    """A checkpoint's epoch: its own record (a Trainer folder's trainer_state.json; the `epoch` suscli.save wrote in a
    safetensors header or a sidecar; the one Lightning or timm keeps in its file, all read without any tensor), else
    the number in its name, which is a guess: ModelCheckpoint's `{epoch}-{step}` with auto_insert_metric_name=False
    writes `0-6.ckpt`, whose last number counts steps. A file named as another epoch's alias (`last.ckpt`) gets none
    from a tool's record: run_epochs numbers it by that record as a copy, and a run's numbered file beats it."""
    if path.is_dir():
        folder = checkpoint_folder(path)
        return folder.epoch if folder is not None else None
    try:
        stored = read_metadata(path).get("epoch")
    except (InputError, OSError, ValueError):  # a damaged file: its load names the error, in its row
        stored = None
    if (own := epoch_number(stored)) is not None:
        return own
    recorded = None if alias_copy(path) else recorded_epoch(path)
    return recorded if recorded is not None else epoch_from_name(numbered_as(path))


def numbered_as(path: Path) -> Path:
    """The path whose name numbers a checkpoint: DeepSpeed's model states, whose file name is fixed, by the tag folder
    save_checkpoint writes them into (`tag=f"epoch_{epoch}"`; its default, `global_stepN`, counts steps and names none)."""
    return path.parent if path.name == DEEPSPEED_MODEL else path


def is_checkpoint(path: Path) -> bool:
    """Whether a pool or run holds `path` as a model: not hidden, not a training tool's own state (DeepSpeed's
    optimizer shards among it, saved after its model states)."""
    if path.name.startswith(".") or _TRAINING_STATE.match(path.name) or _optimizer_shard(path):
        return False
    if path.is_dir():
        return checkpoint_folder(path) is not None
    return (path.is_file() or _dangling(path)) and checkpoint_suffix(path) is not None and not _optimizer_file(path)


def _optimizer_file(path: Path) -> bool:
    """A torch file holding an optimizer's state alone (optimizer_state), read without its tensors: saved after the
    weights, a script's `optim_3.pt` was a run's newest file and was taken as its model, whose row failed."""
    return path.is_file() and optimizer_state(plain_records(path))


def _optimizer_shard(path: Path) -> bool:
    """A ZeRO optimizer shard of DeepSpeed's (`zero_pp_rank_0_mp_rank_00_optim_states.pt`)."""
    match = DEEPSPEED_SHARD.match(path.name)
    return match is not None and match.group(1) == "optim"


def _dangling(path: Path) -> bool:
    """A link whose target is gone: a model the user put in the pool, kept so that its row says it is missing."""
    return path.is_symlink() and not path.exists()


def _order(path: Path) -> tuple[float, bool, bool]:
    """The epoch a run's checkpoint is ordered by: its own, else the one a tool recorded in a file its name does not
    number (timm's `last.pth.tar`, the run's latest epoch where max_history kept only its best checkpoint-N files),
    else the step its name numbers (`step_500.pt`), after all of which comes detectron2's `model_final.pth`;
    whether it is its own, which on a tie puts a numbered file over such a copy; and whether the number is a step.
    Each read once."""
    own = checkpoint_epoch(path)
    epoch = own if own is not None or not path.is_file() else recorded_epoch(path)
    step = save_step(path) if epoch is None else None
    if epoch is None and step is None and checkpoint_stem(path) == _DETECTRON2_FINAL:
        return float("inf"), False, False
    number = epoch if epoch is not None else step
    return (-1 if number is None else number), own is not None, step is not None


def _latest(paths: list[Path]) -> Path:
    """The last checkpoint of a run: highest epoch, then one that its name or suscli numbers over a copy such as
    `last.ckpt`, then newest file. A run that holds saves numbered by epoch and others numbered only by step
    (`epoch_3.pt` beside mid-epoch `step_5000.pt`) has no scale for both: the newer file of each kind's last."""
    orders = {p: _order(p) for p in paths}
    stepped = [p for p in paths if orders[p][2]]
    by_epoch = [p for p in paths if not orders[p][2] and 0 <= orders[p][0] < float("inf")]
    ordered = lambda p: (orders[p][:2], p.lstat().st_mtime, p.name)  # noqa: E731
    if stepped and by_epoch:
        return max(max(stepped, key=ordered), max(by_epoch, key=ordered), key=lambda p: (p.lstat().st_mtime, p.name))
    return max(paths, key=ordered)


def _run_latest(run: Path, paths: list[Path], say: Callable[[str], None] | None) -> Path:
    """A run's model: the save its training tool's pointer file names as its newest (a run resumed from an earlier
    save keeps the later saves of the run before, numbered higher), else its _latest. A pointer naming a save the run
    does not hold (deleted, or moved with the pointer left behind) is said, and the numbers choose. A Trainer run's
    model is the best checkpoint it recorded (_trainer_best)."""
    best = _trainer_best(run, paths, say)
    if best is not None:
        return best
    named: list[Path] = []
    for pointer, target in _pointers(paths):
        saves = [p for p in paths if numbered_as(p) == pointer.parent / written_name(target)]
        named += saves
        if not saves and say is not None:
            say(
                f"{pointer.relative_to(run.parent).as_posix()} names {target}, which the run does not hold: its model is "
                f"taken by the saves' numbers ({_latest(paths).relative_to(run).as_posix()})"
            )
    return _latest(named or paths)


def _trainer_best(run: Path, paths: list[Path], say: Callable[[str], None] | None) -> Path | None:
    """The checkpoint a Trainer's output_dir records as its best (recorded_best): the model the run chose by its
    metric_for_best_model, and the one load_best_model_at_end loaded; rank took the run's latest checkpoint-N, one the
    run had put aside. Said where it is not the latest. A record naming a checkpoint the run does not hold (deleted,
    or renamed) is said, and the numbers choose (None), as they do where the run holds several output_dirs."""
    folders = {p.parent for p in paths if p.is_dir()} | ({run} if run in paths else set())
    records = [(output_dir, found) for output_dir in sorted(folders) if (found := recorded_best(output_dir)) is not None]
    if len(records) != 1:
        return None
    output_dir, (source, written, best) = records[0]
    latest = _latest(paths)
    if best is None or best not in paths:
        if say is not None:
            say(
                f"{source.relative_to(run.parent).as_posix()}/trainer_state.json names the best checkpoint {written} (best_model_checkpoint), which the "
                f"run does not hold: its model is taken by the saves' numbers ({latest.relative_to(run).as_posix()})"
            )
        return None
    if best != latest and say is not None:
        say(
            f"{_save_name(best, run, output_dir)}: the Trainer's best checkpoint (best_model_checkpoint in trainer_state.json) "
            f"is the run's model, not its latest save ({_save_name(latest, run, output_dir)})"
        )
    return best


def _save_name(save: Path, run: Path, output_dir: Path) -> str:
    """A Trainer run's save as _trainer_best's line names it: from the run's folder, the output_dir itself as the final model."""
    return save.relative_to(run.parent).as_posix() + (", the final model save_model wrote" if save == output_dir else "")


def _pointers(paths: list[Path]) -> list[tuple[Path, str]]:
    """The pointer files in the folders of a run's saves (a DeepSpeed tag folder's parent for its model states), each
    with the path or tag it holds: one short line of text, as the tools write it; other files of those names (or
    one that cannot be read) are none."""
    found = []
    for pointer in (folder / name for folder in sorted({numbered_as(p).parent for p in paths}) for name in _POINTERS):
        if not pointer.is_file():  # none there, or a folder or pipe of that name
            continue
        try:
            with open(pointer, "rb") as f:
                text = f.read(_POINTER_MAX + 1).decode("utf-8").strip()
        except (OSError, UnicodeDecodeError):  # unreadable, or no text
            continue
        if text and len(text) <= _POINTER_MAX and "\n" not in text:
            found.append((pointer, text))
    return found


def _checkpoints_under(folder: Path) -> list[Path]:
    """Checkpoints under `folder` (itself included when it is one), outside hidden folders; the files of a checkpoint
    folder are part of it, not checkpoints of their own."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if checkpoint_folder(here) is not None:
            found.append(here)
            # a Trainer's output_dir holds its checkpoint-N folders; what else a checkpoint folder holds is part of it
            # (DeepSpeed's global_stepN/ and its `latest`, which the Trainer writes inside each checkpoint-N)
            dirs[:] = [d for d in dirs if checkpoint_folder(here / d) is not None]
            continue
        found += [here / f for f in files if is_checkpoint(here / f)]
    return sorted(found, key=lambda p: (_order(p)[0], p.as_posix()))


def _refused_under(folder: Path) -> list[Path]:
    """The folders under `folder` (itself included) that are checkpoints of another stack suscli names (a PEFT
    adapter, FSDP's sharded save, a DeepSpeed folder): where a run holds no checkpoint suscli reads, its row says what
    it holds, as such a folder's own row does at the pool's top; the run was left out as "holding no checkpoint"."""
    found = []
    for root, dirs, _ in os.walk(folder, followlinks=True):
        here = Path(root)
        if export_kind(here) is None and refusal(here) is not None:  # a SavedModel folder is said as the exports are
            found.append(here)
            dirs.clear()
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return found


def _exports_under(folder: Path) -> list[tuple[str, Path]]:
    """The models suscli cannot measure under a run folder that holds no checkpoint (export_kind), outside hidden
    folders, with their kinds: the run's exports or another framework's saves, said to be left out rather than the run
    "holding no checkpoint"."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [(kind, Path(root) / f) for f in sorted(files) if not f.startswith(".") and (kind := export_kind(Path(root) / f))]
    return found


def _exports_said(found: list[tuple[str, str]], pool: Path | None = None) -> list[tuple[str, str]]:
    """Per kind of the (kind, name) pairs found, in EXPORTS order, the words and the fix: "2 ONNX models (b.onnx,
    export/model.onnx): why", with "of POOL" after the count where `pool` is given. Models suscli cannot measure are
    named on stderr, not rows: an export sits beside the checkpoint it was exported from, whose row is that model's,
    and as a failed row each would fail the whole rank (exit 3) for a copy of a model it scored."""
    said = []
    for kind, export in EXPORTS.items():
        names = [name for k, name in found if k == kind]
        if names:
            where = f" of {pool}" if pool is not None else ""
            said.append((f"{len(names)} {plural(len(names), export.unit)}{where}{few(names)}: {export.pool_why}", export.pool_fix))
    return said


def discover(
    pool: str | Path, *, all_checkpoints: bool = False, say: Callable[[str], None] | None = None, what: str = "pool"
) -> list[PoolEntry]:
    """Entries of a pool folder (each file a model, named by its stem; each subfolder a run whose latest checkpoint is the model,
    or every checkpoint with all_checkpoints), or of a manifest file. `say` hears of the subfolders left out for holding
    no checkpoint, and of the models of another format left out (EXPORTS: ONNX, Keras, HDF5, TensorFlow): a run whose model
    was never saved, or saved in a form suscli does not read, is otherwise missing from the table without a word. `what`
    the errors call the folder: track reads a "run" (it said "a pool holds files ending in ...")."""
    pool = nameable(Path(pool))
    if not pool.exists():
        raise InputError(f"{what} not found: {pool}", fix="give a folder of checkpoints or a manifest (.json/.csv)")
    if pool.is_file():
        if (why := refusal(pool)) is not None:  # a PEFT adapter's adapter_config.json: read as a manifest, "lists no models"
            raise why
        if pool.suffix.lower() in MANIFEST_SUFFIXES:  # track's manifest lists its epochs one by one, a run folder as its latest
            return read_manifest(pool, say, all_checkpoints=all_checkpoints and what == "pool")
        raise InputError(
            f"{pool} is a single file, not a {what}", fix="use `suscli score` for one checkpoint, or give a folder or a .json/.csv manifest"
        )
    entries: list[PoolEntry] = []
    empty: list[str] = []
    children = sorted(pool.iterdir())
    own = checkpoint_folder(pool)  # a Trainer's output_dir may hold its final model beside its checkpoint-N folders
    if own is not None:
        entries.append(PoolEntry(pool.name, pool, epoch=own.epoch, listed=pool))
    files = [c for c in children if own is None and not c.is_dir() and is_checkpoint(c)]
    exports = [
        (kind, c.name) for c in children if own is None and not c.name.startswith(".") and not c.is_dir() and (kind := export_kind(c))
    ]
    states = [c.name for c in children if own is None and not c.name.startswith(".") and checkpoint_suffix(c) and _optimizer_file(c)]
    # a run folder is named as it is, a file by its stem
    stems = {c: checkpoint_stem(c) for c in files}
    taken = Counter([*stems.values(), *(c.name for c in children if c.is_dir())])
    for child in children:
        if child.name.startswith("."):
            continue
        if child in stems:  # by its full name where a file or a run shares its stem (m.pt and m.safetensors, m.pt and m/)
            name = stems[child] if taken[stems[child]] == 1 else child.name
            entries.append(PoolEntry(name, child, epoch=checkpoint_epoch(child), listed=pool))
        elif child.is_dir():
            runs = _checkpoints_under(child) or _refused_under(child)
            if not runs:
                held = _exports_under(child)
                exports += [(kind, f"{child.name}/{p.relative_to(child).as_posix()}") for kind, p in held]
                if not held:
                    empty.append(child.name)
                continue
            chosen = each_save(child, child.name, runs) if all_checkpoints else {_run_latest(child, runs, say): child.name}
            if not all_checkpoints and say is not None and (line := _runs_apart(child, runs, next(iter(chosen)))):
                say(line)
            entries += [PoolEntry(name, p, epoch=checkpoint_epoch(p), listed=pool) for p, name in chosen.items()]
    if not entries and exports:
        said = _exports_said(exports)
        raise InputError(
            f"no checkpoints in {pool}: {'; '.join(line for line, _ in said)}", fix="; ".join(dict.fromkeys(fix for _, fix in said))
        )
    if not entries:
        raise InputError(
            f"no checkpoints in {pool}",
            fix=f"a {what} holds files ending in {', '.join(CHECKPOINT_SUFFIXES)}, Hugging Face model folders, or subfolders of them",
        )
    if say is not None:
        for line, fix in _exports_said(exports, pool):
            say(f"left out {line} ({fix})")
        if states:
            say(f"left out {len(states)} {plural(len(states), 'file')} of {pool} holding an optimizer's state, not a model{few(states)}")
        if empty:
            say(f"left out {len(empty)} {plural(len(empty), 'folder')} of {pool} holding no checkpoint{few(empty)}")
    return entries


def _runs_apart(run: Path, saves: list[Path], model: Path) -> str | None:
    """The line saying that a pool's run folder holds numbered saves in two or more sibling folders (`runs/exp7/`,
    `runs/exp8/`: two experiments, whose one row was exp7's latest while exp8 vanished without a word), with the
    folder that, as the pool, ranks each; None otherwise. The folders a training tool writes one run across are one
    folder here: Lightning's version_N (a resumed run's), DeepSpeed's tag folders and a Trainer's checkpoint-N (each
    save's own folder)."""
    folders = {_run_folder(run, numbered_as(p).parent) for p in saves if p != run and _numbered(p)}
    common = _common_parts(folders)
    apart = sorted({"/".join(parts[: len(common) + 1]) for parts in folders if len(parts) > len(common)})
    if len(apart) < 2:
        return None
    base = run.joinpath(*common)
    return (
        f"{run.name}: holds saves in {len(apart)} folders{few(apart)}, ranked as one run by its latest save "
        f"({model.relative_to(run).as_posix()}); to rank each, pass {base} as the pool (suscli rank {base})"
    )


def _numbered(save: Path) -> bool:
    """Whether a save's name numbers it, by epoch or by step: a folder of such saves holds a run of its own."""
    return epoch_from_name(numbered_as(save)) is not None or save_step(save) is not None


def _run_folder(run: Path, folder: Path) -> tuple[str, ...]:
    """A save's folder inside its run, Lightning's version_N folders all one (version_*): a resumed run's logger
    opens the next, and its saves continue the run."""
    return tuple("version_*" if _VERSION_DIR.match(part) else part for part in folder.relative_to(run).parts)


def _common_parts(folders: set[tuple[str, ...]]) -> tuple[str, ...]:
    """The longest folder path all of `folders` lie in (each a path's parts)."""
    common: tuple[str, ...] = min(folders, default=())
    for parts in folders:
        while parts[: len(common)] != common:
            common = common[:-1]
    return common


def _run_model(path: Path, say: Callable[[str], None] | None) -> Path:
    """A manifest entry's model: a run folder (no Hugging Face model folder itself) stands for its latest checkpoint,
    as a pool folder's run does, or for its latest save of another stack (FSDP's sharded folders), whose row says what
    it is; each was an error row, 'is a directory, not a checkpoint'."""
    runs = (_checkpoints_under(path) or _refused_under(path)) if path.is_dir() else []
    return _run_latest(path, runs, say) if runs else path


def _anchored(spec: str | None, folder: Path) -> str | None:
    """A relative `file.py:factory` spec in a manifest means a file beside the manifest, else one in the cwd, as a
    sidecar's relative spec is looked up beside its checkpoint, then in the cwd: a manifest written in a subfolder
    was "file not found" for the `net.py` the command ran beside. Neither there: the one beside the manifest, which
    the error then names."""
    if spec is None:
        return None
    source, sep, name = spec.rpartition(":")
    if sep and source.endswith(".py") and not Path(source).is_absolute():
        beside, here = folder / source, Path.cwd() / source
        return f"{(here if here.is_file() and not beside.is_file() else beside).resolve()}:{name}"
    return spec


def each_save(run: Path, name: str, saves: list[Path]) -> dict[Path, str]:
    """--all-checkpoints' rows of a run folder named `name` (a pool's subfolder, a manifest's entry): each of its
    `saves` as NAME/its path in the run, the run folder itself (a Trainer's final model) as NAME."""
    return {p: f"{name}/{p.relative_to(run).as_posix()}" if p != run else name for p in saves}


def read_manifest(path: Path, say: Callable[[str], None] | None = None, *, all_checkpoints: bool = False) -> list[PoolEntry]:
    """A JSON list (or {"models": [...]}) of {path, name?, arch?, arch_kwargs?, epoch?}, or a CSV with those columns.

    Paths are relative to the manifest's folder. `say` hears of a run folder's pointer file naming a save it lacks.
    With all_checkpoints an entry naming a run folder gives every checkpoint of it, named NAME/file as a pool folder's
    run (rank --all-checkpoints took its latest alone, the option changing nothing).
    """
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data.get("models") if isinstance(data, dict) else data
        else:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as e:
        raise InputError(
            f"cannot read manifest {path}: {str(e).splitlines()[0]}", fix='a JSON list of {"path": ...} objects or a CSV with a path column'
        ) from None
    if not isinstance(rows, list) or not rows:
        raise InputError(f"manifest {path} lists no models", fix='a JSON list of {"path": ...} objects or a CSV with a path column')
    entries = []
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not row.get("path"):
            raise InputError(f"manifest {path}: entry {i} has no path", fix="give every entry a 'path'")
        kwargs = row.get("arch_kwargs") or {}
        if isinstance(kwargs, str):
            try:
                kwargs = json.loads(kwargs)
            except json.JSONDecodeError:
                raise InputError(f"manifest {path}: entry {i} has arch_kwargs that are not a JSON object: {kwargs!r}") from None
        target = (path.parent / str(row["path"])).resolve()
        name = str(row.get("name") or row["path"])
        runs = (_checkpoints_under(target) or _refused_under(target)) if all_checkpoints and target.is_dir() else []
        files = each_save(target, name, runs) or {_run_model(target, say): name}
        epoch = row.get("epoch")
        given = epoch not in (None, "")
        if given and not str(epoch).isdigit():
            raise InputError(f"manifest {path}: entry {i} has epoch {epoch!r}, not a whole number") from None
        if given and len(files) > 1:
            raise InputError(
                f"manifest {path}: entry {i} gives epoch {epoch} for the run folder {row['path']}, whose {len(files)} checkpoints "
                "--all-checkpoints ranks each",
                fix="leave out its epoch, or list each checkpoint with its own",
            )
        for file, named in files.items():
            number = int(epoch) if given and epoch is not None else checkpoint_epoch(file)
            entries.append(PoolEntry(named, file, _anchored(row.get("arch") or None, path.parent), dict(kwargs), number, given))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"manifest {path}: the name {dup!r} is used twice", fix="give each model its own name")
    return entries
