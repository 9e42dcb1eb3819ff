"""A tracker's measurements read back from a TensorBoard event file, for `suscli track --log`.

The trackers write `susceptibility/epoch`, `/r`, `/zeta`, `/seconds` and (when known) `/train_acc` at one step per
measurement; the Hugging Face Trainer's TensorBoard report prefixes them with `train/`. Joining them by step gives
the records of the JSONL log. tensorboard is imported only here.
"""

from __future__ import annotations

import re
from pathlib import Path

from suscli.errors import InputError, plural

PREFIX = "susceptibility/"
FIELDS = ("r", "zeta", "seconds", "train_acc")


def is_event_log(path: Path) -> bool:
    """An event file, or a folder that holds one (TensorBoard's --logdir)."""
    return "tfevents" in path.name or (path.is_dir() and any(path.rglob("*tfevents*")))


_OPENED = re.compile(r"tfevents\.(\d+)")  # events.out.tfevents.TIME.HOST.PID.N: the time the writer opened it


def read_events(path: Path) -> tuple[list[dict], list[str]]:
    """The records of the event file at `path`, or of the event files of the one run under `path` (run_folders), read
    in the order they were written, each by step: a later record of epoch e replaces the earlier ones of epochs >= e,
    as in the JSONL log. With them the warnings of how they were read: where the run spans several event folders, that
    they were read as one; where a measurement was written in part (its epoch without its r, or without the seconds
    every record of the tracker's has, written last: before 2026-12-07 before train_acc), that it was left out: a
    SummaryWriter flushes its events as they come, so a file read while the run writes it can end inside one. From
    the same reading, since event files are slow to read."""
    folders = run_folders(path)
    by_epoch: dict[int, dict] = {}
    partial: list[int] = []
    for _, records in folders:
        timed = any(record["seconds"] is not None for record in records)  # the tracker writes seconds with every record
        for record in records:
            if record["r"] is None or (timed and record["seconds"] is None):  # cut before its seconds, the last of a record
                partial.append(record["epoch"])
                continue
            by_epoch = {e: r for e, r in by_epoch.items() if e < record["epoch"]}  # a run restarted there overwrites from there on
            by_epoch[record["epoch"]] = record
    notes = [n for n in [_resumed_note(path, folders)] if n]
    if partial:
        notes.append(
            f"{len(partial)} {plural(len(partial), 'measurement')} written in part left out (the run still writing the event "
            f"file, or stopped while writing it): {plural(len(partial), 'epoch')} {', '.join(map(str, partial[:6]))}"
        )
    return [by_epoch[e] for e in sorted(by_epoch)], notes


def _resumed_note(path: Path, folders: list[tuple[Path, list[dict]]]) -> str | None:
    if len(folders) < 2:
        return None
    shown = ", ".join(f"{f.relative_to(path)} (epochs {r[0]['epoch']}-{max(x['epoch'] for x in r)})" for f, r in folders)
    return (
        f"read {len(folders)} TensorBoard folders as one resumed run, in the order written: {shown}; each after the "
        "first starts past epoch 0, as a resumed run does, and its epochs replace the earlier ones' from there on"
    )


def run_folders(path: Path) -> list[tuple[Path, list[dict]]]:
    """The folders of the one run at `path` that hold susceptibility records, in the order written, each with its
    records in the order written. Several files in one folder are one run (a SummaryWriter reopened on a resumed run
    adds one). Several folders side by side are one run resumed where each after the first starts past epoch 0: a
    resumed Lightning run logs to a new version_N, a resumed Hugging Face Trainer to a new runs/TIME_HOST, each
    measuring first the epoch it resumed at, while a new run measures its initialization first (epoch 0)."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        raise InputError(
            "reading a TensorBoard event file needs tensorboard", fix="pip install 'suscli[tensorboard]', or give the tracker's JSONL log"
        ) from None
    except Exception as e:  # its own import failing: tensorboard before 2.17.1 under NumPy 2 raises AttributeError
        raise InputError(
            f"the installed tensorboard's event reader cannot be imported here ({type(e).__name__}: {e})",
            fix="pip install -U 'suscli[tensorboard]', or give the tracker's JSONL log",
        ) from None
    files = [path] if path.is_file() else sorted(path.rglob("*tfevents*"))
    read: list[tuple[tuple[float, int, str], Path, list[dict]]] = []
    for file in files:
        events = EventAccumulator(str(file), size_guidance={"scalars": 0})  # 0: keep every point
        events.Reload()
        tags = {
            tag.removeprefix("train/")[len(PREFIX) :]: tag
            for tag in events.Tags()["scalars"]
            if tag.removeprefix("train/").startswith(PREFIX)
        }
        if "epoch" not in tags or "r" not in tags:
            continue
        values = {name: {e.step: e.value for e in events.Scalars(tag)} for name, tag in tags.items()}
        records = [
            {"epoch": round(values["epoch"][step]), **{f: values.get(f, {}).get(step) for f in FIELDS}} for step in sorted(values["epoch"])
        ]
        if records:  # ordered by when the file's first record was written: two runs can open theirs in the same second
            read.append(((min(e.wall_time for e in events.Scalars(tags["epoch"])), *_opened(file)), file, records))
    folders: dict[Path, list[dict]] = {}
    for _, file, records in sorted(read, key=lambda x: x[0]):
        folders.setdefault(file.parent, []).extend(records)
    if not folders:
        raise InputError(
            f"{files[0] if len(files) == 1 else path} has no susceptibility/epoch and susceptibility/r scalars",
            fix="give an event file written through suscli.training.tracker (or its JSONL log)",
        )
    found = list(folders.items())
    anew = [f for f, records in found[1:] if records[0]["epoch"] == 0]
    if len({f.parent for f in folders}) > 1 or anew:
        why = f": {anew[0].relative_to(path)} starts at epoch 0, as a new run does" if anew else ""
        raise InputError(
            f"{path} holds TensorBoard event files of {len(folders)} runs ({', '.join(str(f.relative_to(path)) for f in sorted(folders)[:3])}){why}",
            fix="give one run's folder; folders side by side are read as one resumed run when each after the first starts past epoch 0",
        )
    return found


def _opened(file: Path) -> tuple[int, str]:
    m = _OPENED.search(file.name)
    return (int(m.group(1)) if m else 0), file.name
