"""MMEngine's message hub in a checkpoint, read as inert data: every file MMEngine's Runner saves holds one.

The Runner (mmpretrain, mmdet, mmseg and the rest of OpenMMLab) saves `meta`, `state_dict`, `optimizer`,
`param_schedulers` and `message_hub`, whose logged scalars are HistoryBuffer objects: numpy arrays, and the buffer's
statistics methods pickled as `getattr(HistoryBuffer, "mean")`. Weights-only loading refuses all three, so every such
file was refused. suscli needs nothing of the hub. For a file that imports HistoryBuffer, those globals are allowed
for one load as the inert stand-ins here (mmengine is not imported, no numpy array is built; `getattr` answers only
for the HistoryBuffer stand-in, with the name it was asked; the hub's numpy scalars are numbers,
suscli.load.numpy_scalars), the hub is dropped, and a stand-in anywhere else in the file (a numpy array among the
weights or the records) refuses the file as before.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import torch

HISTORY_BUFFER = "mmengine.logging.history_buffer.HistoryBuffer"
HUB_KEY = "message_hub"


class _Inert:
    """What a pickle built from one of the globals below: nothing is kept and nothing runs."""

    def __init__(self, *_: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass


class HistoryBuffer(_Inert):
    pass


class _Array(_Inert):
    pass


def _reconstruct(*_: object) -> _Array:
    """numpy's ndarray rebuilder: an inert array (its data, set by BUILD, is ignored)."""
    return _Array()


def _getattr(obj: object, name: object, *_: object) -> str:
    """getattr as the hub's pickle uses it, `getattr(HistoryBuffer, "mean")`: the name, for that stand-in only.
    Anything else would reach attributes of whatever the unpickler holds, so it is refused like any global."""
    if obj is HistoryBuffer and isinstance(name, str):
        return name
    raise pickle.UnpicklingError("Unsupported global: GLOBAL builtins.getattr was not an allowed global by default")


# For torch.serialization.safe_globals: (stand-in, the global's name as the pickle spells it); numpy 2 pickles its
# rebuilders under numpy._core, numpy 1 under numpy.core.
SAFE_GLOBALS: list[tuple[Any, str]] = [
    (HistoryBuffer, HISTORY_BUFFER),
    (_getattr, "builtins.getattr"),
    (_Array, "numpy.ndarray"),
    (_reconstruct, "numpy._core.multiarray._reconstruct"),
    (_reconstruct, "numpy.core.multiarray._reconstruct"),
]
_NAMES: dict[type, str] = {HistoryBuffer: HISTORY_BUFFER, _Array: "numpy.ndarray"}


def without_hub(contents: object) -> tuple[object, str | None]:
    """`contents` with its message hub dropped, and the global of a stand-in found anywhere else (None when none)."""
    if isinstance(contents, dict):
        contents = {k: v for k, v in contents.items() if k != HUB_KEY}
    stray = next(_stand_ins(contents, 0), None)
    return contents, stray


def _stand_ins(value: object, depth: int) -> Iterator[str]:
    """The global each stand-in in `value` stands for; tensors are leaves, and nesting stops at 64 levels."""
    if depth > 64 or isinstance(value, torch.Tensor):
        return
    if value is HistoryBuffer:  # the class itself, as getattr's first argument
        yield HISTORY_BUFFER
    elif isinstance(value, _Inert):
        yield _NAMES[type(value)]
    elif isinstance(value, dict):
        for v in value.values():
            yield from _stand_ins(v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _stand_ins(v, depth + 1)
