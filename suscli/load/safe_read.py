"""Reading checkpoint files safely: without the user's trust, nothing a file carries runs.

A safetensors file is read as tensors alone; a pickle with torch.load(weights_only=True), which allows by name only
the plain-data classes training tools save beside the weights (PLAIN_DATA_GLOBALS, suscli.load.configs), and falls
back to weights_only=False only with `trust` (--trust-checkpoint); a torch.export archive that holds pickled objects
or native code is refused, and every torch.load inside torch.export.load is made weights-only. A file that cannot be
read is one InputError that says what it is (a torch file under a safetensors name, a pickle that imports a
callable), not only that it is damaged.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import pathlib
import pickle
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from suscli.errors import InputError, first_line
from suscli.load import configs, message_hub, numpy_scalars, restricted_pickle
from suscli.load.exported import ExportedModel
from suscli.load.pickles import pickle_protocol, refused_callable

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".th", ".bin", ".ckpt", ".pt2", ".pth.tar")  # .pth.tar: timm's train.py
# Plain-data classes that training tools save beside the weights (timm's and torchvision's `args`), allowed to the
# weights_only unpickler by their exact name for the length of one load: their subclasses are other globals and
# stay refused, and nothing here can run code when rebuilt.
PLAIN_DATA_GLOBALS = (argparse.Namespace,)
# Paths saved beside the weights (Lightning 2.0's ModelCheckpoint state holds its `dirpath`), read as pure paths of
# their flavour, which touch no file and rebuild on any system (a WindowsPath cannot be made on Linux); Python 3.13
# pickles them from pathlib._local. (object, name) pairs, as the stand-ins of _plain_data.
PATH_GLOBALS = [
    (pure, f"{module}.{kind}{flavour}")
    for flavour, pure in (("PosixPath", pathlib.PurePosixPath), ("WindowsPath", pathlib.PureWindowsPath))
    for module in ("pathlib", "pathlib._local")
    for kind in ("", "Pure")
]
_TRUST_FIX = "pass --trust-checkpoint only if you trust where the file came from, or re-save its weights with suscli.save"
CORRUPT_FIX = "the file may be truncated or corrupt: save or download it again"
# Entries of a torch.export archive that torch.export.load unpickles with plain pickle or loads as native code.
_EXPORT_CODE = {
    "/data/aotinductor/": "compiled AOTInductor code",
    "/data/constants/opaque_obj_": "pickled Python objects",
    "/data/constants/custom_obj_": "pickled TorchScript objects",
}

# The readers below (torch.load, torch.jit.load, torch.export.load) turn corrupt bytes into almost any exception:
# fuzzing truncated and bit-flipped files gave RuntimeError, UnpicklingError, EOFError, OSError, KeyError,
# IndexError, AssertionError, AttributeError, TypeError, UnicodeDecodeError, struct.error and BadZipFile. So each
# reader call sits alone in a `try` that turns any Exception into an InputError, and suscli's own logic stays
# outside those blocks, where its bugs still raise.


def checkpoint_suffix(path: str | Path) -> str | None:
    """The checkpoint type a file name ends in (".pth.tar" for timm's `last.pth.tar`), or None."""
    name = Path(path).name.lower()
    return next((s for s in sorted(CHECKPOINT_SUFFIXES, key=len, reverse=True) if name.endswith(s)), None)


def nameable(path: Path) -> Path:
    """`path` with a name of its own: `.` or `..` (a model folder scored from inside it, `suscli score .`) as the
    folder it is, whose name has no other use (it named the model "", and a sidecar's path from it raised)."""
    return Path(os.path.abspath(path)) if path.name in ("", "..") else path


def checkpoint_stem(path: str | Path) -> str:
    """The name of a checkpoint's model in every report of score and rank: its file name without the checkpoint
    suffix (`checkpoint-3.pth.tar` -> `checkpoint-3`), a folder's name as it is. A pool names a file so unless
    another of its entries has that name (`m.pt` beside `m.safetensors`), and then by its whole file name."""
    path = nameable(Path(path))
    suffix = checkpoint_suffix(path)
    return path.name[: -len(suffix)] if suffix and not path.is_dir() else path.name


def sidecar_path(path: str | Path) -> Path:
    """`<dir>/<stem>.suscli.json` (model.pt -> model.suscli.json): suscli's fields for formats without metadata."""
    path = Path(path)
    return path.with_name(path.stem + ".suscli.json")


def safetensors_header(path: Path) -> dict[str, str]:
    """A safetensors file's metadata, read without any tensor; safetensors checks that the header covers the file."""
    try:
        with _openable(path) as name, safe_open(name, framework="pt") as f:
            return f.metadata() or {}  # None when the file was written without metadata
    except (SafetensorError, OSError) as e:
        raise _unreadable_safetensors(path, e) from e


@contextlib.contextmanager
def _openable(path: Path) -> Iterator[str]:
    """A name safetensors opens `path` by. Its Rust binding takes a str path that must be valid UTF-8, which a name
    in other bytes (Latin-1 from an old archive, kept by Python as surrogate escapes) is not: "Path caf\ufffd.safetensors
    is not valid UTF-8", read as a damaged file. Such a file is opened here by its real name, and safetensors opens
    it again by its descriptor under /dev/fd (Linux, macOS)."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        yield name
        return
    if not os.path.isdir("/dev/fd"):
        raise InputError(f"{path}: safetensors cannot open a file whose name is not valid UTF-8", fix="rename the file")
    fd = os.open(path, os.O_RDONLY)
    try:
        yield f"/dev/fd/{fd}"
    finally:
        os.close(fd)


def read(path: Path, trust: bool) -> tuple[object, str | None]:
    """The file's contents, and "torchscript" or "torch.export" for those archives (None otherwise)."""
    if path.suffix.lower() == ".safetensors":
        try:
            with _openable(path) as name:
                return load_file(name, device="cpu"), None
        except (SafetensorError, OSError) as e:
            raise _unreadable_safetensors(path, e) from e
    names = _zip_names(path)
    kind = _archive_kind(names)
    if kind == "torchscript":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; its files are still around
                return torch.jit.load(str(path), map_location="cpu"), kind
        except Exception as e:  # corrupt bytes: see the note on readers at the top
            raise InputError(f"{path}: not a readable TorchScript archive ({_reason(e)})", fix=CORRUPT_FIX) from e
    if kind == "torch.export":
        risky = next(((what, n) for n in names for part, what in _EXPORT_CODE.items() if part in "/" + n), None)
        if risky and not trust:
            raise InputError(
                f"{path}: torch.export archive holds {risky[0]} ({risky[1]}), which can run code when loaded; refused", fix=_TRUST_FIX
            )
        try:
            with open(path, "rb") as f, _export_guard(trust):  # a file object: torch.export.load insists on a .pt2 name otherwise
                graph = torch.export.load(f).module()
        except Exception as e:  # corrupt bytes, or an AOTInductor package rather than an exported program
            if refused := refused_callable(e):
                raise InputError(_refusal(path, "torch.export archive ", refused), fix=_TRUST_FIX) from e
            raise InputError(
                f"{path}: not a loadable torch.export archive ({_reason(e)})", fix="re-export it with torch.export.save"
            ) from e
        return ExportedModel(graph, path), kind
    return torch_load(path, trust), None


def _zip_names(path: Path) -> list[str]:
    """Entries of a zip archive; none for a legacy torch.save file or a damaged zip (torch.load reports which)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):  # ValueError: undecodable names in a damaged zip
        return []


def _archive_kind(names: list[str]) -> str | None:
    """TorchScript and torch.export archives are zips like torch.save's, told apart by their entries. torch.export
    wrote `serialized_exported_program.json` at the top level up to torch 2.7, `archive_format` from 2.8."""
    if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("/archive_format") for n in names) or "serialized_exported_program.json" in names:
        return "torch.export"
    return None


@contextlib.contextmanager
def _export_guard(trust: bool) -> Iterator[None]:
    """torch.export.load falls back to unpickling with weights_only=False (sample inputs, pickled tensors, older
    layouts): torch's TORCH_FORCE_WEIGHTS_ONLY_LOAD makes every torch.load inside it safe unless the user trusts the
    file. Its logs and warnings (a traceback among them) are muted: the failure becomes one InputError line."""
    saved = {k: os.environ.get(k) for k in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")}
    loggers = [logging.getLogger(name) for name in ("torch.export", "torch._export")]
    levels = [log.level for log in loggers]
    if not trust:
        os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
        os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    for log in loggers:
        log.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _plain_data(extra: list[tuple[Any, str]] | None = None) -> contextlib.AbstractContextManager:
    """PLAIN_DATA_GLOBALS, paths as pure paths (PATH_GLOBALS), OmegaConf's containers as inert stand-ins (suscli.load.configs), numpy scalars as numbers
    (suscli.load.numpy_scalars) and any `extra`, allowed to torch.load(weights_only=True) for one load (torch >= 2.5;
    before, refused). The stand-ins are (object, name) pairs, which torch 2.5 cannot take: there, refused too."""
    allow = getattr(torch.serialization, "safe_globals", None)
    if not allow:
        return contextlib.nullcontext()
    allowed = [*PLAIN_DATA_GLOBALS, *PATH_GLOBALS, *configs.SAFE_GLOBALS, *numpy_scalars.SAFE_GLOBALS, *(extra or [])]
    return allow(allowed if _takes_named_globals() else [g for g in allowed if not isinstance(g, tuple)])


_NAMED_GLOBALS: bool | None = None  # _takes_named_globals's answer, found once


def _takes_named_globals() -> bool:
    """Whether torch's weights-only unpickler takes (object, name) pairs in safe_globals. torch 2.5's reads every
    entry's __module__, so one pair made it raise AttributeError for any checkpoint that names a global beyond a
    state dict's, reported as a corrupt file. Found by loading one such global, as no version number says it."""
    global _NAMED_GLOBALS
    if _NAMED_GLOBALS is None:
        buffer = io.BytesIO()
        torch.save(argparse.Namespace(), buffer)
        buffer.seek(0)
        try:
            with torch.serialization.safe_globals([(argparse.Namespace, "argparse.Namespace")]):
                torch.load(buffer, weights_only=True)
            _NAMED_GLOBALS = True
        except Exception:  # AttributeError on torch 2.5
            _NAMED_GLOBALS = False
    return _NAMED_GLOBALS


def torch_load(path: Path, trust: bool) -> object:
    try:
        with warnings.catch_warnings(), _plain_data():  # torch warns on stderr about odd pickles; a failure is reported below
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        with _plain_data():  # a global this load allowed is not the one that refused it
            refused = refused_callable(e, path)
        if refused == message_hub.HISTORY_BUFFER:  # an MMEngine Runner's save
            try:
                with warnings.catch_warnings(), _plain_data(message_hub.SAFE_GLOBALS):
                    warnings.simplefilter("ignore")
                    contents, refused = message_hub.without_hub(torch.load(path, map_location="cpu", weights_only=True))
            except pickle.UnpicklingError as hub_error:  # something beside the hub is refused: say what
                with _plain_data(message_hub.SAFE_GLOBALS):
                    refused = refused_callable(hub_error, path)
            except Exception as hub_error:  # corrupt bytes
                raise _unreadable_torch(path, hub_error) from hub_error
            else:
                if refused is None:
                    return contents
        protocol = pickle_protocol(path) if refused is None else None
        if refused is None and not (protocol is not None and protocol > 2 and "Unsupported operand" in str(e)):
            raise _unreadable_torch(path, e) from e
        if not trust:
            if refused is None:  # torch.save(..., pickle_protocol=4): its opcodes, not a global, stopped the load
                return _restricted_load(path, protocol, e)
            raise InputError(_refusal(path, "", refused), fix=_TRUST_FIX) from e
    except Exception as e:  # corrupt bytes: see the note on readers at the top
        raise _unreadable_torch(path, e) from e
    try:
        contents = torch.load(path, map_location="cpu", weights_only=False)  # the user vouched for this file
    except Exception as e:  # arbitrary unpickling code ran and failed, e.g. the model's class is not importable here
        raise InputError(
            f"{path}: could not be unpickled even with --trust-checkpoint ({_reason(e)})",
            fix="make the module that defines the model importable, or re-save its weights with suscli.save",
        ) from e
    return contents


def _restricted_load(path: Path, protocol: int | None, weights_only_error: Exception) -> object:
    """A pickle of protocol 3 to 5 that torch's weights-only unpickler cannot parse, read by Python's unpickler
    allowed exactly torch's weights-only globals (suscli.load.restricted_pickle): a file of tensors loads without
    trust, and a global beyond those is refused, named, before it is imported. A TorchScript archive, which
    torch.load would hand to torch.jit.load, is never read so."""
    if any(n.endswith("constants.pkl") for n in _zip_names(path)):
        raise _unreadable_torch(path, weights_only_error) from weights_only_error
    if os.getenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "0").lower() in ("1", "y", "yes", "true"):  # as torch.load reads it
        raise InputError(  # torch then refuses every reader but its own: the error said "truncated or corrupt"
            f"{path}: is pickled with protocol {protocol}, whose opcodes weights-only loading cannot read, and "
            "TORCH_FORCE_WEIGHTS_ONLY_LOAD is set, which makes torch refuse any other reader; refused, nothing in the file was run",
            fix="unset TORCH_FORCE_WEIGHTS_ONLY_LOAD for this run, or re-save it with torch.save's default protocol",
        ) from weights_only_error
    try:
        # torch validates sparse tensors' indices (out of bounds, they read past memory later) under weights_only=True
        # only, or with this check on.
        with warnings.catch_warnings(), _plain_data(), torch.sparse.check_sparse_tensor_invariants():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=False, pickle_module=restricted_pickle)
    except restricted_pickle.Refused as e:
        with _plain_data():
            refused = refused_callable(e, path)
        if refused is None:
            raise InputError(
                f"{path}: is pickled with protocol {protocol} and holds what weights-only loading does not allow "
                f"({_reason(e)}); refused, nothing in the file was run",
                fix=f"re-save it with torch.save's default protocol; {_TRUST_FIX}",
            ) from e
        raise InputError(_refusal(path, "", refused), fix=_TRUST_FIX) from e
    except Exception as e:  # corrupt bytes: see the note on readers at the top
        raise _unreadable_torch(path, e) from e


def _unreadable_safetensors(path: Path, e: Exception) -> InputError:
    """A .safetensors file safetensors cannot read: a torch file or a pickle under that name is said to be one, not
    called damaged."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        head = b""
    kind = (
        "a zip archive (torch.save's format)" if head == b"PK" else "a pickle (torch.save's legacy format)" if head[:1] == b"\x80" else None
    )
    if kind:
        return InputError(
            f"{path}: is {kind}, not a safetensors file",
            fix="rename it to .pt, which suscli reads with weights-only loading, or save it with suscli.save",
        )
    return InputError(f"{path}: not a readable safetensors file ({first_line(e)})", fix=CORRUPT_FIX)


def _unreadable_torch(path: Path, e: Exception) -> InputError:
    """A file torch.load cannot read: a safetensors file under a torch name is said to be one, not called damaged."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        head = b""
    if len(head) == 9 and head[8:] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= path.stat().st_size - 8:
        return InputError(
            f"{path}: is a safetensors file, not a PyTorch checkpoint",
            fix=f"rename it to {path.name[: -len(checkpoint_suffix(path) or path.suffix)]}.safetensors, which suscli reads as such",
        )
    return InputError(f"{path}: not a readable PyTorch checkpoint ({_reason(e)})", fix=CORRUPT_FIX)


def _refusal(path: Path, what: str, callable_name: str) -> str:
    """A pickle refused for what it imports, called that: nothing about it is damaged, and nothing in it ran."""
    return (
        f"{path}: {what}holds pickled Python objects: it imports {callable_name}, a callable that weights-only loading "
        "does not allow, since unpickling would call it; refused, nothing in the file was run"
    )


def _reason(e: BaseException) -> str:
    """The informative line of a reader's exception; torch wraps weights-only failures in paragraphs of advice."""
    text = str(e)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    elif text.startswith("Weights only load failed"):
        text = "\n".join(line for line in text.splitlines()[1:] if not line.startswith("Check the documentation"))
    return f"{type(e).__name__}: {first_line(text)}"
