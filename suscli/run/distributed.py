"""Ranking a pool with several processes started by torchrun, on one machine or many (docs/distributed.md).

Rank 0 owns the results file and every report. It looks up the models already measured, broadcasts the list of
the others, and every rank measures its round-robin share of that list; a model's numbers depend only on the
seed, so which rank measures it changes nothing. After each round rank 0 gathers one row per rank (as a dict)
and appends it to the results file at once, so an interrupted run resumes as a single process does.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import timedelta

import torch
import torch.distributed as dist

from suscli.run.audit import (
    PoolRequest,
    cached_row,
    entry_failed,
    every_row,
    grow_pool,
    grown_rows,
    load_or_fail,
    measured_again,
    model_key,
    scored_window,
    staged,
)
from suscli.load.checkpoints import Checkpoint
from suscli.errors import InputError, SuscliError, UsageError
from suscli.data.images import ImageSource
from suscli.run.pool import PoolEntry
from suscli.results import Result
from suscli.measure.sampling import Decisions, NestedSample
from suscli.run.launch import World

DEFAULT_TIMEOUT_S = 1800  # a rank waits this long at a gather for the slowest model of the round


def rank_device(w: World, device: torch.device) -> torch.device:
    """Each rank its own GPU, cuda:LOCAL_RANK (an index asked for is replaced); CPU and MPS ranks share theirs."""
    if device.type != "cuda":
        return device
    if w.local_rank >= torch.cuda.device_count():
        raise UsageError(
            f"local rank {w.local_rank} has no GPU of its own: this machine has {torch.cuda.device_count()}",
            fix="start at most one process per GPU (--nproc-per-node)",
        )
    return torch.device("cuda", w.local_rank)


def timeout() -> timedelta:
    """How long a rank waits for the others before giving up, so that a lost rank cannot block the rest forever."""
    text = os.environ.get("SUSCLI_DIST_TIMEOUT", str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise UsageError(f"SUSCLI_DIST_TIMEOUT must be a positive number of seconds, got {text!r}")
    return timedelta(seconds=seconds)


def collective(op: Callable, *args, **kwargs) -> None:
    """A collective whose failure (a rank that died, or the timeout) is one line instead of a backend traceback."""
    try:
        op(*args, **kwargs)
    except RuntimeError as e:  # gloo raises plain RuntimeError, NCCL and the store DistError (a subclass)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(
            f"lost contact with the other ranks: {first}",
            fix="see the other ranks' errors; rerun the same command to resume from the results file",
        ) from None


def backend(device: torch.device) -> str:
    """NCCL between GPUs where torch has it; gloo otherwise, which passes suscli's gathered objects through the CPU.
    Windows' torch has no NCCL: asked for, it failed as "lost contact with the other ranks: Distributed package
    doesn't have NCCL built in", at the start of every CUDA run."""
    return "nccl" if device.type == "cuda" and dist.is_nccl_available() else "gloo"


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[None]:
    """NCCL between GPUs (gloo where torch has none), gloo otherwise; always torn down, so that the other ranks see a
    closed peer, not silence."""
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL stages gathered objects on the current device
    collective(dist.init_process_group, backend(device), timeout=timeout())
    try:
        yield
        # leave together: a rank that tears gloo down while another still talks to it can abort (SIGABRT at exit,
        # seen on 2 CPU ranks with --model-batch); after an error the others are not waited for
        collective(dist.barrier)
    finally:
        dist.destroy_process_group()


def _measured(
    window: list[tuple[int, PoolEntry]], request: PoolRequest, unlabeled: ImageSource, train: ImageSource | None
) -> list[tuple[int, Result]]:
    """(index, row) of every entry of this rank's window; any failure is a row, never an exception that would
    leave the other ranks waiting at the gather. After a failure the entries still without a row are measured one at
    a time, so that the error is the row of the model that raised it, not of every model of the window."""
    found: dict[int, Result] = {}
    try:
        for i, row in scored_window(window, request, unlabeled, train):
            found[i] = row
    except Exception:
        for i, entry in window:
            if i not in found:
                try:
                    found |= dict(scored_window([(i, entry)], request, unlabeled, train))
                except Exception as e:
                    found[i] = error_row(entry, e)
    return [(i, found[i]) for i, _ in window]


def error_row(entry: PoolEntry, error: Exception) -> Result:
    """Any failure of one model as its row: an exception escaping a rank would leave the others at the gather."""
    if not isinstance(error, SuscliError):
        error = InputError(f"{entry.path}: {type(error).__name__}: {error}")
    return entry_failed(entry, error)


def audit_shards(
    w: World, request: PoolRequest, unlabeled: ImageSource, train: ImageSource | None, sample: NestedSample | None = None
) -> list[Result] | None:
    """audit_pool across the ranks of an initialized process group: on rank 0 (which alone uses `store` and
    `progress`) the same rows in pool order as audit_pool; None on the other ranks. Each rank measures up to
    `model_batch` models per round, those that can together (as audit_pool does)."""
    entries, store, progress, model_batch = request.entries, request.store, request.progress, request.model_batch
    rows: list[Result | None] = [None] * len(entries)
    keys: dict[int, str] = {}
    if w.rank == 0:
        for i, entry in enumerate(entries):
            try:
                keys[i] = model_key(entry)
                rows[i] = cached_row(entry, keys[i], store)
            except Exception as e:
                rows[i] = error_row(entry, e)
    if w.rank == 0 and store is not None and None in rows:
        store.require_writable()  # before any rank measures: the other ranks then stop, "lost contact"
    plan: list[tuple[list[int], list[PoolEntry]] | None] = [
        ([i for i, r in enumerate(rows) if r is None], entries) if w.rank == 0 else None
    ]
    collective(dist.broadcast_object_list, plan, src=0)
    todo, entries = plan[0] or ([], entries)
    # rank 0's listing for all: a pool that changed between the ranks' listings (a checkpoint being written) gave
    # another model at the same index, measured and stored under rank 0's model's key; growing reads them too
    request.entries = entries
    step = w.size * model_batch
    for start in range(0, len(todo), step):
        if w.rank == 0 and progress:
            progress("models", len(entries) - len(todo) + start, len(entries))
        window = [(i, entries[i]) for i in todo[start + w.rank * model_batch : start + (w.rank + 1) * model_batch]]
        # plain dicts pickle without suscli's classes on the receiving side
        mine = [(i, row.as_dict()) for i, row in _measured(window, request, unlabeled, train)]
        gathered: list[list[tuple[int, dict]]] | None = [[] for _ in range(w.size)] if w.rank == 0 else None
        collective(dist.gather_object, mine, gathered, dst=0)
        for i, data in (pair for part in gathered or [] for pair in part):
            row = Result.from_dict(data)
            stored = store.get(keys[i]) if store is not None else None
            if row.ok and store is not None:
                store.append(keys[i], staged(row, sample, request.device))
            rows[i] = measured_again(row, stored)
    if w.rank != 0:
        return None
    if progress:
        progress("models", len(entries), len(entries))
    return every_row(rows)


def grow_shards(
    w: World, request: PoolRequest, rows: list[Result] | None, sample: NestedSample, decide: Callable[[list[Result]], Decisions | None]
) -> tuple[list[Result], int] | None:
    """grow_pool across the ranks: rank 0 (which alone holds `rows`, the results file and the decisions) sends each
    stage's rows to grow, every rank grows its round-robin share, `model_batch` at a time, and rank 0 gathers and
    keeps them; the rows at the size chosen, and that size, on rank 0, None on the others."""
    entries, progress, model_batch, device = request.entries, request.progress, request.model_batch, request.device

    def share(size: int, items: list[tuple[int, dict]]) -> Iterator[tuple[int, Result]]:
        """Every rank's share of `items` grown, round by round; rank 0 yields what it gathers."""
        step = w.size * model_batch
        for start in range(0, len(items), step):
            if w.rank == 0 and progress:
                progress(f"training accuracy, {size} images", start, len(items))
            window = items[start + w.rank * model_batch : start + (w.rank + 1) * model_batch]
            mine = [(i, row.as_dict()) for i, row in _grown_window(window, entries, sample, size, device, request.load)]
            gathered: list[list[tuple[int, dict]]] | None = [[] for _ in range(w.size)] if w.rank == 0 else None
            collective(dist.gather_object, mine, gathered, dst=0)
            yield from ((i, Result.from_dict(data)) for part in gathered or [] for i, data in part)

    if w.rank != 0:
        while True:
            order: list[tuple[int, list[tuple[int, dict]]] | None] = [None]
            collective(dist.broadcast_object_list, order, src=0)
            if order[0] is None:
                return None
            for _ in share(*order[0]):
                pass
    assert rows is not None

    def grow(short: list[int], size: int) -> Iterator[tuple[int, Result]]:
        items = [(i, rows[i].as_dict()) for i in short]
        collective(dist.broadcast_object_list, [(size, items)], src=0)
        yield from share(size, items)

    grown = grow_pool(request, rows, sample, decide, grow=grow)
    # the other ranks stop waiting for a stage; only once settled: after an error or Ctrl-C mid-stage they wait at a
    # gather this would not match, and both would sit out the timeout with "lost contact" in place of the error.
    # Leaving tears the group down instead, which ends their wait at once.
    collective(dist.broadcast_object_list, [None], src=0)
    return grown


def _grown_window(
    window: list[tuple[int, dict]],
    entries: list[PoolEntry],
    sample: NestedSample,
    size: int,
    device: torch.device,
    load: Callable[[PoolEntry], Checkpoint],
) -> list[tuple[int, Result]]:
    """This rank's rows of a stage, grown; any failure is a row, never an exception that would leave the other
    ranks waiting at the gather. After a failure each row is grown alone, so that the error is its own model's."""
    rows = [(i, Result.from_dict(data)) for i, data in window]

    def grown(part: list[tuple[int, Result]]) -> list[Result]:
        loaded = [load_or_fail(lambda i: load(entries[i]), i, row) for i, row in part]
        return grown_rows([row for _, row in part], loaded, sample, size, device)

    try:
        out = grown(rows)
    except Exception:
        out = []
        for i, row in rows:
            try:
                out += grown([(i, row)])
            except Exception as e:
                out.append(error_row(entries[i], e))
    return [(i, row) for (i, _), row in zip(rows, out)]
