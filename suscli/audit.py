"""Auditing a pool: score every model once on shared images, keep each result as soon as it exists,
and turn a model that fails into a row with its reason instead of stopping the run."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import torch

from suscli.checkpoints import file_sha256, load_checkpoint
from suscli.errors import SuscliError
from suscli.images import ImageSource
from suscli.pool import PoolEntry
from suscli.results import Result
from suscli.scoring import Settings, failed, score_checkpoint
from suscli.store import ResultStore

Progress = Callable[[str, int, int], None]


def data_identity(source: ImageSource | None) -> str | None:
    """Hash of the image files used (paths, sizes, mtimes, labels): a changed file means new numbers."""
    if source is None:
        return None
    h = hashlib.sha256()
    for i, p in enumerate(source.paths):
        st = p.stat() if p.exists() else None
        label = source.labels[i] if source.labels is not None else ""
        h.update(f"{p}\0{st.st_size if st else -1}\0{st.st_mtime_ns if st else -1}\0{label}\n".encode())
    return h.hexdigest()[:16]


def run_settings(settings: Settings, unlabeled: ImageSource, train: ImageSource | None, device: torch.device) -> dict:
    """What decides the numbers of every model in a run: the key under which results are reused."""
    return {
        **settings.as_dict(),
        "unlabeled_data": data_identity(unlabeled),
        "train_data": data_identity(train),
        "device_type": device.type,
    }


def model_key(entry: PoolEntry) -> str:
    """Identity of a model in the results file: its bytes and the architecture asked for (a manifest may change it)."""
    return f"{file_sha256(entry.path)}:{entry.arch or ''}:{sorted((entry.arch_kwargs or {}).items())}"


def cached_row(entry: PoolEntry, key: str, store: ResultStore | None) -> Result | None:
    """The stored result of this model, renamed as the pool names it now; None when it must be measured."""
    cached = store.get(key) if store is not None else None
    if cached is not None:
        cached.name, cached.path = entry.name, str(entry.path)
    return cached


def score_entry(
    entry: PoolEntry,
    unlabeled: ImageSource,
    train: ImageSource | None,
    *,
    settings: Settings,
    device: torch.device,
    default_arch: str | None = None,
    default_arch_kwargs: dict | None = None,
    trust: bool = False,
) -> Result:
    """Load and score one pool model; the checkpoint is freed on return, before the next model loads."""
    ckpt = load_checkpoint(entry.path, arch=entry.arch, arch_kwargs=entry.arch_kwargs or None,
                           default_arch=default_arch, default_arch_kwargs=default_arch_kwargs, trust=trust)
    result = score_checkpoint(ckpt, unlabeled, train, settings=settings, device=device, name=entry.name)
    if result.epoch is None:
        result.epoch = entry.epoch
    return result


def audit_pool(
    entries: list[PoolEntry],
    unlabeled: ImageSource,
    train: ImageSource | None,
    *,
    settings: Settings,
    device: torch.device,
    store: ResultStore | None = None,
    default_arch: str | None = None,
    default_arch_kwargs: dict | None = None,
    trust: bool = False,
    progress: Progress | None = None,
) -> list[Result]:
    """One row per entry, in pool order. Results already in `store` are reused; new ones are appended to it
    before the next model starts, so an interruption loses at most the model being measured."""
    rows: list[Result] = []
    for i, entry in enumerate(entries):
        if progress:
            progress("models", i, len(entries))
        try:
            key = model_key(entry)
            if (cached := cached_row(entry, key, store)) is not None:
                rows.append(cached)
                continue
            result = score_entry(entry, unlabeled, train, settings=settings, device=device, default_arch=default_arch,
                                 default_arch_kwargs=default_arch_kwargs, trust=trust)
        except SuscliError as e:
            rows.append(failed(entry.path, e, entry.name))
            continue
        if store is not None:
            store.append(key, result)
        rows.append(result)
    if progress:
        progress("models", len(entries), len(entries))
    return rows
