"""A tracker's measurements read back from a TensorBoard event file, for `suscli track --log`.

The trackers write `susceptibility/epoch`, `/r`, `/zeta`, `/seconds` and (when known) `/train_acc` at one step per
measurement; the Hugging Face Trainer's TensorBoard report prefixes them with `train/`. Joining them by step gives
the records of the JSONL log. tensorboard is imported only here.
"""

from __future__ import annotations

from pathlib import Path

from suscli.errors import InputError

PREFIX = "susceptibility/"
FIELDS = ("r", "zeta", "seconds", "train_acc")


def is_event_log(path: Path) -> bool:
    """An event file, or a folder that holds one (TensorBoard's --logdir)."""
    return "tfevents" in path.name or (path.is_dir() and any(path.rglob("*tfevents*")))


def read_events(path: Path) -> list[dict]:
    """The records of the event file at `path`, or of the event files in the one folder under `path` that holds them
    (a SummaryWriter reopened on a resumed run adds a file beside the first), read in the order they were written,
    each by step: a later record of epoch e replaces the earlier ones of epochs >= e, as in the JSONL log."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        raise InputError(
            "reading a TensorBoard event file needs tensorboard", fix="pip install 'suscli[tensorboard]', or give the tracker's JSONL log"
        ) from None
    files = [path] if path.is_file() else sorted(path.rglob("*tfevents*"), key=lambda f: (f.parent, f.name))
    folders = sorted({f.parent for f in files})
    if len(folders) > 1:  # Lightning's version_0, version_1: separate runs, not one resumed
        shown = ", ".join(str(f.relative_to(path)) for f in folders[:3])
        raise InputError(f"{path} holds TensorBoard event files of {len(folders)} runs ({shown})", fix="give one run's folder")
    by_epoch: dict[int, dict] = {}
    found = False
    for file in files:  # a name starts with the time it was opened: sorted, they are in the order written
        events = EventAccumulator(str(file), size_guidance={"scalars": 0})  # 0: keep every point
        events.Reload()
        tags = {
            tag.removeprefix("train/")[len(PREFIX) :]: tag
            for tag in events.Tags()["scalars"]
            if tag.removeprefix("train/").startswith(PREFIX)
        }
        if "epoch" not in tags or "r" not in tags:
            continue
        found = True
        values = {name: {e.step: e.value for e in events.Scalars(tag)} for name, tag in tags.items()}
        for step in sorted(values["epoch"]):
            epoch = round(values["epoch"][step])
            by_epoch = {e: r for e, r in by_epoch.items() if e < epoch}  # a run restarted at `epoch` overwrites from there on
            by_epoch[epoch] = {"epoch": epoch, **{f: values.get(f, {}).get(step) for f in FIELDS}}
    if not found:
        raise InputError(
            f"{files[0] if len(files) == 1 else path} has no susceptibility/epoch and susceptibility/r scalars",
            fix="give an event file written through suscli.training.tracker (or its JSONL log)",
        )
    return [by_epoch[e] for e in sorted(by_epoch)]
