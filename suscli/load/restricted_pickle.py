"""An unpickler that allows what torch's weights-only unpickler allows, or less, for the opcodes that one cannot read.

torch.load(weights_only=True) reads the opcodes of pickle protocol 2 and part of 3 only: a state dict saved with
`torch.save(..., pickle_protocol=4)` (done for objects over 4 GB, and by some libraries) stops at its first FRAME.
This module is a `pickle_module` for torch.load(weights_only=False) that reads every protocol with Python's own
unpickler, but gives it no way to run anything else than torch's weights-only allowlist, checked the same way:

- a global is looked up by name in that allowlist (torch's own and `torch.serialization.add_safe_globals`'s) and
  never imported; a module torch blocks is refused even when allowed;
- every call the unpickler makes (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ) must be to one of those objects, found by
  identity, so what an allowed call returns is not called in turn;
- BUILD sets state only on tensors, ordered dicts and instances of allowed classes, never on a class or a function,
  as torch does; items are set only on dicts, ordered dicts and counters, appended only on lists and sets (torch also appends to
  list subclasses it allows, such as traceback.StackSummary: refused here, which no state dict needs);
- a persistent id reaches torch's loader only as torch's weights-only unpickler lets it through (a storage);
- EXT1, EXT2 and EXT4 are refused: they fetch objects from copyreg's extension cache without find_class.

These are all the ways an unpickler reaches code: anything else it does builds plain values.
"""

from __future__ import annotations

import collections
import pickle
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from typing import IO, Any

import torch
from torch import _weights_only_unpickler as weights_only

# Python's pure-Python unpickler, whose opcode handlers are a table this module can replace entries of (typeshed
# calls it the C one). Typed Any: its stack, metastack and _instantiate are undeclared.
_PurePython: Any = pickle._Unpickler
_OPS: dict[int, Any] = _PurePython.dispatch
_DICTS = (dict, collections.OrderedDict, collections.Counter)


class Refused(pickle.UnpicklingError):
    """What the pickle would do is not allowed; told apart from the UnpicklingError of damaged bytes."""


def _allowed() -> dict[str, Any]:
    """torch's weights-only allowlist as it stands for this load: its own globals and the user's safe globals."""
    return {**weights_only._get_allowed_globals(), **weights_only._get_user_allowed_globals()}


class Unpickler(_PurePython):
    """Python's unpickler, restricted to what torch's weights-only unpickler would let run (module docstring)."""

    dispatch = dict(_OPS)

    def find_class(self, module: str, name: str) -> Any:
        module, name = NAME_MAPPING.get((module, name), (IMPORT_MAPPING.get(module, module), name))
        full = f"{module}.{name}"
        allowed = _allowed()
        if module in weights_only._blocklisted_modules or full not in allowed:
            raise Refused(f"Unsupported global: GLOBAL {full} was not an allowed global")
        return allowed[full]

    def _callable(self, obj: object) -> None:
        if not any(obj is allowed for allowed in _allowed().values()):
            raise Refused(f"Trying to call a {type(obj).__name__}, which is not an allowed global")

    def _reduce(self) -> None:
        self._callable(self.stack[-2])
        _OPS[pickle.REDUCE[0]](self)

    def _newobj(self) -> None:
        self._callable(self.stack[-2])
        _OPS[pickle.NEWOBJ[0]](self)

    def _newobj_ex(self) -> None:
        self._callable(self.stack[-3])
        _OPS[pickle.NEWOBJ_EX[0]](self)

    def _instantiate(self, klass: Any, args: tuple) -> None:  # INST (after find_class) and OBJ (any stack value)
        self._callable(klass)
        super()._instantiate(klass, args)

    def _build(self) -> None:
        kind = type(self.stack[-2])
        # As torch's weights-only unpickler builds these: a tensor's storage set (Python's BUILD would call
        # Tensor.__setstate__, which also sets hooks from the state), an ordered dict's attributes updated (Python's
        # would call a __setstate__ an earlier BUILD may have set on it).
        if kind in (torch.Tensor, collections.OrderedDict):
            state = self.stack.pop()
            if kind is torch.Tensor:
                self.stack[-1].set_(*state)
            else:
                self.stack[-1].__dict__.update(state)
            return
        if kind is not torch.nn.Parameter and not any(kind is a for a in _allowed().values()):
            raise Refused(f"Can only build tensors, ordered dicts or allowed classes, but got {kind.__name__}")
        _OPS[pickle.BUILD[0]](self)

    def _target(self, kinds: tuple[type, ...], depth: int) -> None:
        if type(self.stack[-depth]) not in kinds:
            raise Refused(f"Can only add items to {', '.join(k.__name__ for k in kinds)}, but got {type(self.stack[-depth]).__name__}")

    def _setitem(self) -> None:
        self._target(_DICTS, 3)
        _OPS[pickle.SETITEM[0]](self)

    def _marked(self, kinds: tuple[type, ...], op: bytes) -> None:
        if type(self.metastack[-1][-1]) not in kinds:  # the target lies below the MARK that opened the items
            raise Refused(f"Can only add items to {', '.join(k.__name__ for k in kinds)}, but got {type(self.metastack[-1][-1]).__name__}")
        _OPS[op[0]](self)

    def _append(self) -> None:
        self._target((list,), 2)
        _OPS[pickle.APPEND[0]](self)

    def _persistent_id(self) -> None:
        pid = self.stack[-1]
        if type(pid) is not int and not (type(pid) is tuple and pid and torch.serialization._maybe_decode_ascii(pid[0]) == "storage"):
            raise Refused(f"Only persistent_load of storage is allowed, but got {type(pid).__name__}")
        _OPS[pickle.BINPERSID[0]](self)

    def _refused_op(self) -> None:
        raise Refused("Unsupported operand: an extension code or a text persistent id")


for _op, _handler in {
    pickle.REDUCE: Unpickler._reduce,
    pickle.NEWOBJ: Unpickler._newobj,
    pickle.NEWOBJ_EX: Unpickler._newobj_ex,
    pickle.BUILD: Unpickler._build,
    pickle.SETITEM: Unpickler._setitem,
    pickle.SETITEMS: lambda self: self._marked(_DICTS, pickle.SETITEMS),
    pickle.APPEND: Unpickler._append,
    pickle.APPENDS: lambda self: self._marked((list,), pickle.APPENDS),
    pickle.ADDITEMS: lambda self: self._marked((set,), pickle.ADDITEMS),
    pickle.BINPERSID: Unpickler._persistent_id,
    pickle.PERSID: Unpickler._refused_op,
    pickle.EXT1: Unpickler._refused_op,
    pickle.EXT2: Unpickler._refused_op,
    pickle.EXT4: Unpickler._refused_op,
}.items():
    Unpickler.dispatch[_op[0]] = _handler


def load(file: IO[bytes], **kwargs: Any) -> Any:
    """pickle.load's counterpart: torch.load reads a legacy file's header pickles with it."""
    return Unpickler(file, **kwargs).load()
