"""numpy scalars in a checkpoint's records, read as the Python numbers they hold.

Training scripts save metrics computed with numpy beside the weights (`"best_acc": np.float64(0.91)`, an epoch
counted as `np.int64`), and weights-only loading refused the whole file for them ("it imports
numpy._core.multiarray.scalar"), leaving `--trust-checkpoint` as the way in. A scalar's pickle is a dtype code and
its raw bytes: the stand-ins here rebuild the number from those alone, for the plain numeric dtypes, without calling
what the pickle names. numpy arrays stay refused (they could be weights read as nothing, suscli.load.message_hub).
"""

from __future__ import annotations

import pickle
import re
from typing import Any

import numpy as np

# The dtypes a scalar is rebuilt for: booleans, integers and floats ("f8", "<i8", "?"); anything else is refused.
_CODE = re.compile(r"^[<>=|]?(?:b1|\?|[iu][1248]|f[248])$")


def _refused(what: str) -> pickle.UnpicklingError:
    """An error that refused_callable reads as the global named, as torch's own refusal is read."""
    return pickle.UnpicklingError(f"Unsupported global: GLOBAL {what} was not an allowed global by default")


class DType:
    """numpy.dtype as its pickle calls it, `dtype("f8", False, True)` and then its state, whose second item is the
    byte order: the code and the order, nothing else."""

    def __init__(self, code: object = None, *_: object) -> None:
        if not isinstance(code, str) or not _CODE.match(code):
            raise _refused("numpy.dtype")
        self.code = code
        self.order = "="

    def __setstate__(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "=", "|"):
            self.order = state[1]

    def numpy(self) -> np.dtype:
        return np.dtype(self.order + self.code.lstrip("<>=|"))


def _scalar(dtype: object, data: object = None) -> bool | int | float:
    """numpy's scalar rebuilder: the number its bytes hold, as a Python bool, int or float."""
    if not isinstance(dtype, DType) or not isinstance(data, bytes):
        raise _refused("numpy._core.multiarray.scalar")
    kind = dtype.numpy()
    if len(data) != kind.itemsize:
        raise pickle.UnpicklingError(f"a numpy scalar of {kind} holds {len(data)} bytes")
    return np.frombuffer(data, dtype=kind)[0].item()


def _encode(text: object, encoding: object = "utf-8") -> bytes:
    """_codecs.encode, as protocol 2 writes bytes: `encode(text, "latin1")`, the only call it makes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _refused("_codecs.encode")
    return text.encode("latin1")


# For torch.serialization.safe_globals: (stand-in, the global's name as the pickle spells it); numpy 2 pickles its
# rebuilder under numpy._core, numpy 1 under numpy.core.
SAFE_GLOBALS: list[tuple[Any, str]] = [
    (DType, "numpy.dtype"),
    (_scalar, "numpy._core.multiarray.scalar"),
    (_scalar, "numpy.core.multiarray.scalar"),
    (_encode, "_codecs.encode"),
]
