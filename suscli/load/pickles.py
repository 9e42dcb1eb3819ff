"""What a refused pickle would have called, read without running it: for error messages that say what the file is.

torch's weights-only unpickler names the callable it refuses in some cases only ("Unsupported global: GLOBAL
commands.call", in Python 2 spelling), and reports a pickle of protocol 4 or 5 as an unsupported opcode, so that
the classic `os.system` payload of a bare `pickle.dumps` looked like a damaged file. Here the pickle's opcodes are
read with `pickletools` (which imports and calls nothing) to find the callables it imports.
"""

from __future__ import annotations

import _compat_pickle
import collections
import pickle
import pickletools
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import torch

_NAMED = (re.compile(r"Unsupported global: GLOBAL (\S+)"), re.compile(r"unsupported GLOBAL (\S+) whose module"))
_STRINGS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"}
_NO_PUSH = {"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"}
_MAX_PICKLES = 5  # a legacy torch file is a few pickles (magic number, protocol, system info, data, storage keys), then raw bytes


def refused_callable(error: BaseException, path: Path | None = None) -> str | None:
    """The callable (module.name, as Python 3 spells it) that made weights-only loading refuse the file: the one
    torch's message names, else the first one the file's pickles import that torch does not allow. None when the
    file imports nothing refused: it is damaged or not a pickle."""
    text = str(error)
    for pattern in _NAMED:
        if found := pattern.search(text):
            return python3_name(found.group(1))
    if path is None:
        return None
    allowed = _allowed()
    return next((python3_name(n) for n in imported(path) if not allowed(n)), None)


def imported(path: Path) -> Iterator[str]:
    """module.name of each callable the file's pickles import (GLOBAL, STACK_GLOBAL, INST), in order. The pickles
    of a zip archive (torch.save's format) or of a legacy torch file or a bare pickle; reading stops quietly at
    the first damaged byte."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(".pkl"):
                    with archive.open(name) as stream:
                        yield from _globals(stream, 1)
            return
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        pass
    try:
        with open(path, "rb") as stream:
            yield from _globals(stream, _MAX_PICKLES)
    except OSError:
        return


def pickle_protocol(path: Path) -> int | None:
    """The protocol of a torch file's pickle (a zip archive's data.pkl, else the file's first pickle): PROTO's
    argument; None where the pickle has none (protocols 0 and 1) or cannot be read."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            if name is None:
                return None
            with archive.open(name) as stream:
                head = stream.read(2)
    except (zipfile.BadZipFile, EOFError, ValueError):  # not a zip archive: a legacy torch file or a bare pickle
        try:
            with open(path, "rb") as f:
                head = f.read(2)
        except OSError:
            return None
    except OSError:
        return None
    return head[1] if len(head) == 2 and head[0] == pickle.PROTO[0] else None


def python3_name(name: str) -> str:
    """A global as Python 3 spells it: protocol 0-2 pickles store some under Python 2 names (subprocess.call is
    written commands.call), os functions under the platform's module (posix.system), and torch's message drops
    `builtins.` (exec)."""
    module, _, attr = name.rpartition(".")
    module = module or "builtins"
    module, attr = _compat_pickle.NAME_MAPPING.get((module, attr), (_compat_pickle.IMPORT_MAPPING.get(module, module), attr))
    return f"{'os' if module in ('posix', 'nt') else module}.{attr}"


def _globals(stream: IO[bytes], pickles: int) -> Iterator[str]:
    """Globals of up to `pickles` pickles read one after the other from `stream`. STACK_GLOBAL takes its module and
    name from the two values below it, pushed as strings or fetched from the memo, which is followed as far as that."""
    for _ in range(pickles):
        memo: dict[int, object] = {}
        top: collections.deque[object] = collections.deque(maxlen=2)
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("GLOBAL", "INST"):
                    yield str(arg).replace(" ", ".")
                if op.name == "STACK_GLOBAL" and len(top) == 2 and all(isinstance(v, str) for v in top):
                    yield f"{top[0]}.{top[1]}"
                if op.name == "MEMOIZE":
                    memo[len(memo)] = top[-1] if top else None
                elif op.name in ("PUT", "BINPUT", "LONG_BINPUT") and isinstance(arg, int):  # always: a memo index
                    memo[arg] = top[-1] if top else None
                if op.name in _STRINGS:
                    top.append(arg)
                elif op.name in ("GET", "BINGET", "LONG_BINGET") and isinstance(arg, int):
                    top.append(memo.get(arg))
                elif op.name not in _NO_PUSH:
                    top.append(None)
        except Exception:  # the end of the pickles, or damaged bytes: what was read is what there is
            return


def _allowed():
    """Whether torch's weights-only unpickler accepts a global: its own list (private, so read defensively) and the
    user's `torch.serialization.add_safe_globals`; without its list, torch's tensor rebuilders are assumed."""
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        names = set(_get_allowed_globals())
    except Exception:  # another torch: fall back on what a state dict holds
        names = set()
    for g in torch.serialization.get_safe_globals():  # (stand-in, name) is allowed by that name, not the stand-in's
        names.add(g[1] if isinstance(g, tuple) else f"{getattr(g, '__module__', '')}.{getattr(g, '__qualname__', '')}")
    if names:
        return lambda name: name in names
    return lambda name: name.startswith(("torch._utils.", "torch.serialization.")) or name == "collections.OrderedDict"
