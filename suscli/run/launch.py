"""Whether this process is one of several that torchrun started, read from the environment torchrun sets: apart from
suscli.run.distributed, which imports torch, so that the command line asks it before parsing (and --help answers)
without loading torch."""

from __future__ import annotations

import os
from dataclasses import dataclass

from suscli.errors import UsageError


@dataclass(frozen=True)
class World:
    rank: int
    local_rank: int
    size: int


def world() -> World | None:
    """This process's place in a torchrun launch; None for a plain run (no WORLD_SIZE, or 1), which stays as it was."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return None
    return World(rank=int(os.environ["RANK"]), local_rank=int(os.environ.get("LOCAL_RANK", "0")), size=size)


def single_process(command: str) -> None:
    """Refuse a command that does not split its work (score, track, demo) under torchrun: every process ran it whole,
    printed its own report and appended the same rows to one results file (built one demo folder at once)."""
    w = world()
    if w is not None:
        raise UsageError(
            f"suscli {command} does not split its work across processes, and torchrun started {w.size}: each would "
            "measure everything and write the same files",
            fix=f"run suscli {command} without torchrun; suscli rank shares a pool among the processes",
        )
