"""Files and the memory to read them into: writes that an interruption never leaves half done, and how much
memory a load may take before it would push the machine into swap."""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import IO

from suscli.errors import InputError


def _optional(name: str) -> ModuleType | None:
    """A module of one platform only: fcntl is POSIX's, msvcrt Windows'."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_fcntl = _optional("fcntl")
_msvcrt = None if _fcntl is not None else _optional("msvcrt")
# Windows' locks are mandatory: a locked byte cannot be read by another process. One far past any line of a results
# file locks the whole file and keeps no reader out (SQLite locks past its data for the same reason).
WINDOWS_LOCK_BYTE = 0x40000000
# Windows renames no file that is open (a sharing violation): there the temporary file is closed first.
RENAMES_OPEN_FILES = sys.platform != "win32"

# A load is refused when twice its estimated size exceeds the available memory: loading makes a second copy
# (checkpoint tensors copied into the model; decoded images copied out of the buffer when some were unreadable).
MEMORY_MARGIN = 2
# A temporary file is locked an instant after it is made: one this old and unlocked is a dead writer's.
STALE_SECONDS = 60


def printable(path: object) -> str:
    """A path as text every report can carry. Python keeps the bytes of a name that are not UTF-8 (a Latin-1 file name
    from an old archive) as lone surrogates, which UTF-8 output and the CSV writer refuse: they are written as \\xNN,
    as `ls -b` shows them."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def written_name(path: str) -> str:
    """The last part of a path another machine wrote into a file (a pointer file's target, a trainer_state.json's
    best_model_checkpoint), in / or \\ separators, a trailing one left out: a run folder moved, copied or written on
    Windows keeps the training machine's path, and its saves are found by name."""
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1]


# What a terminal runs rather than shows: the control characters but the tab and the line break, which the table lays
# out; and what it cannot show, a lone surrogate (a file name's byte that is not UTF-8).
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def visible(text: str) -> str:
    """`text` as a cell of the terminal table: a control character written as its escape (\\x1b), since a file name
    holding ESC [2J cleared the screen of whoever listed the pool; a lone surrogate too (\\udce9), which no terminal's
    encoding can carry."""
    return CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)


@contextlib.contextmanager
def replacing(path: Path, binary: bool = False) -> Iterator[IO]:
    """A temporary file beside `path` that replaces it when the block ends: flushed, fsynced, given the mode any new
    file gets under the umask, then renamed over `path` (atomic on POSIX). A failure or an interruption (Ctrl-C)
    removes it and leaves `path` as it was. Every report, plot and cache entry suscli writes goes through here.

    The temporary file stays locked until it is renamed, so that a later writer can tell one that a SIGKILL left
    behind (removed first, remove_stale) from one a live run is writing.

    A device or a named pipe (`-o /dev/null`, `/dev/stdout`) is written into: renamed over, /dev/null itself became a
    regular file where the run had the rights (root, as in most CI containers)."""
    if is_stream(path):
        with _fdopen(os.open(path, os.O_WRONLY), binary) as f:
            yield f
        return
    remove_stale(path.parent, re.escape(path.name))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with _fdopen(fd, binary) as f:
            with contextlib.suppress(OSError):  # a file system without locks: its leftovers are never removed
                lock(f.fileno(), wait=False)
            yield f
            f.flush()
            os.fsync(f.fileno())
            if hasattr(os, "fchmod"):  # Windows before Python 3.13 has none, nor the other users it is for
                os.fchmod(f.fileno(), new_file_mode())  # mkstemp's 0600 would keep the file from a CI step running as another user
            if not RENAMES_OPEN_FILES:
                f.close()
            os.replace(tmp, path)  # before the file closes where it can: unlocked, it could pass for a dead writer's
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove_stale(folder: Path, target: str) -> None:
    """Remove the temporary files (`replacing`) of the targets whose names match the regex `target` that writers killed
    outright (SIGKILL, the OOM killer, a CI timeout) left in `folder`: unlocked, and older than STALE_SECONDS. A live
    writer's stays, even in another run sharing the folder. Otherwise each kill would leave one more for ever, a
    cache entry's as large as the entry. Best effort: what cannot be checked or removed stays."""
    name = re.compile(rf"\.{target}\.[a-z0-9_]+\.tmp")  # tempfile.mkstemp's names: a run of these characters
    try:
        found = [e.path for e in os.scandir(folder) if name.fullmatch(e.name)]
    except OSError:
        return
    for tmp in found:
        try:
            fd = os.open(tmp, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))  # O_RDWR: NFS emulates flock with write locks
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            # lock: an OSError while its writer lives; False where no lock tells a dead writer from a live one
            if time.time() - st.st_mtime > STALE_SECONDS and lock(fd, wait=False):
                if os.path.samestat(st, os.lstat(tmp)):  # still the file locked, not one renamed or made since
                    if not RENAMES_OPEN_FILES:  # nor removes one: its writer is dead, nothing takes it meanwhile
                        os.close(fd)
                        fd = -1
                    os.unlink(tmp)
        except OSError:
            pass
        finally:
            if fd >= 0:
                os.close(fd)


def lock(fd: int, wait: bool = True) -> bool:
    """An exclusive lock on the open file `fd`, held until it closes, so that two processes neither interleave their
    appends nor take each other's live temporary file for a dead one: flock on POSIX, msvcrt.locking on Windows.
    True once held; OSError where `wait` is False and another process holds it, or the file system has no locks;
    False on a platform with neither, where nothing is locked (a second process sharing a file is not kept out)."""
    if _fcntl is not None:
        _fcntl.flock(fd, _fcntl.LOCK_EX | (0 if wait else _fcntl.LOCK_NB))
        return True
    if _msvcrt is None:
        return False
    at = os.lseek(fd, 0, os.SEEK_CUR)
    os.lseek(fd, WINDOWS_LOCK_BYTE, os.SEEK_SET)  # msvcrt locks from the file's position
    try:
        while True:
            try:
                _msvcrt.locking(fd, _msvcrt.LK_NBLCK, 1)  # LK_LOCK gives up after 10 seconds
                return True
            except OSError as e:
                if not wait or e.errno not in (errno.EACCES, errno.EDEADLOCK):  # the errors of a lock held elsewhere
                    raise
                time.sleep(0.05)
    finally:
        os.lseek(fd, at, os.SEEK_SET)


def append_line(path: Path, line: str) -> None:
    """Append one line durably (flush + fsync) under an exclusive lock. A writer killed mid-line (only a dead one:
    live ones hold the lock) left half a line at the end: it is cut off first, or it would sit between whole lines,
    where a reader must treat it as corruption. Raises OSError; the caller says which file it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        lock(f.fileno())
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.seek(0)
                f.truncate(f.read().rfind(b"\n") + 1)
                f.seek(0, os.SEEK_END)
        f.write(line.encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


def _fdopen(fd: int, binary: bool) -> IO:
    """The file of descriptor `fd`: bytes, or UTF-8 text whose newlines are written as they are, and a lone surrogate
    (a file name's byte that is not UTF-8) as its escape, \\udce9, as the JSON report writes it (REPORT_ERRORS)."""
    return os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", errors=REPORT_ERRORS, newline="")


# How a report's text is encoded: UTF-8, where the byte of a file name that is not UTF-8 (Python's lone surrogate,
# see printable) is written as an escape, \\udce9, rather than failing the whole report on it.
REPORT_ERRORS = "backslashreplace"


def encodable(text: str) -> str:
    """`text` with each lone surrogate written as its escape (REPORT_ERRORS): what UTF-8 can carry, and so pandas'
    strings, which pyarrow holds, refusing the name with "UnicodeEncodeError: surrogates not allowed"."""
    return text.encode("utf-8", REPORT_ERRORS).decode("utf-8")


def new_file_mode() -> int:
    """The mode open() gives a new file: 0666 less the umask, which can only be read by setting it (to a strict
    value, for the instant until it is set back)."""
    umask = os.umask(0o077)
    os.umask(umask)
    return 0o666 & ~umask


def file_version(path: str | Path) -> tuple[int, int, int, int] | None:
    """What tells one version of a file from the next, for what is kept in memory per file: its size, modification and
    status-change times, and inode. A rewrite that keeps the size and the modification time (restored by os.utime, or
    within the file system's timestamp tick) still changes the status-change time, and a replacement the inode. None
    where the file cannot be found."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def require_folder(path: Path, what: str, option: str) -> None:
    """Refuse a path that is a folder, or whose folder does not exist (a typo in it is not created silently) or cannot
    be written. Checked before a run as well, so that an hour of measuring does not end in this error. A device or
    a pipe is written into, not replaced (replacing): its folder (/dev) need not be writable."""
    if path.is_dir():
        raise InputError(f"cannot write {what}{path}: it is a folder", fix=f"name a file in it for {option}")
    if is_stream(path):
        return
    if not path.parent.is_dir():
        raise InputError(
            f"cannot write {what}{path}: the folder {path.parent} does not exist",
            fix=f"create it first, or choose another path for {option}",
        )
    if not writable(path.parent):
        raise InputError(f"cannot write {what}{path}: the folder {path.parent} cannot be written", fix=f"choose another path for {option}")


def is_stream(path: Path) -> bool:
    """Whether `path` (its link followed) is there and neither a file nor a folder: a device, a named pipe, a socket."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def writable(folder: Path) -> bool:
    """Whether a file can be created in `folder`, found by creating one: permission bits do not tell for root or
    for a read-only mount."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def same_file(a: Path, b: Path) -> bool:
    """Whether writing `a` would write `b`. Files that exist are compared by identity (a link, a hard link, another
    case of the name on macOS or Windows); paths not yet written by their resolved folder and name, the name
    regardless of case where the folder's file system looks names up so (case_insensitive): comparing resolved paths
    alone let `-o Report.json --html report.json` and `-o M.safetensors` over m.safetensors through there. Where the
    name's case alone differs on such a file system, the two are taken as one even if only one is found: a wrong
    refusal costs another name, a wrong pass a checkpoint."""
    if os.path.exists(a) and os.path.exists(b):
        return _identical(a, b)
    a, b = a.resolve(), b.resolve()
    if a.name != b.name and not (a.name.casefold() == b.name.casefold() and case_insensitive(a.parent)):
        return False
    return a.parent == b.parent or _identical(a.parent, b.parent)


def _identical(a: Path, b: Path) -> bool:
    """One file (or folder) under both paths; False where either cannot be found."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def case_insensitive(folder: Path) -> bool:
    """Whether names in `folder` are looked up regardless of case, as on macOS's and Windows' default file systems.
    Found by one lookup, nothing written: the folder (or its nearest ancestor on the same file system whose name has
    letters) under its name with the case swapped is the same folder. Windows' paths are case-insensitive (normcase)."""
    if os.path.normcase("A") == "a":
        return True
    try:
        here = folder.resolve()
        device = here.stat().st_dev
        for node in (here, *here.parents):
            if node == node.parent or node.parent.stat().st_dev != device:  # the name is looked up on another one
                return False
            swapped = node.name.swapcase()
            if swapped != node.name and swapped.swapcase() == node.name:  # "ß" swaps to "SS", which no lookup folds back
                return _identical(node, node.parent / swapped)
    except OSError:
        pass
    return False


def write_atomic(path: str | Path, text: str, option: str = "--output") -> Path:
    """Write `text` to `path` through `replacing`; the folder must exist. `option` names the path in an error."""
    path = Path(path)
    require_folder(path, "", option)
    try:
        with replacing(path) as f:
            f.write(text)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}", fix=f"choose a writable path for {option}") from None
    return path


def available_memory() -> int | None:
    """Bytes that can be allocated without swapping: the kernel's MemAvailable, capped by a cgroup v2 limit (a CI
    container); None where neither can be read."""
    found = []
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            found += [int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        pass
    if not found:  # no /proc, or a kernel older than MemAvailable: free pages, which undercounts the page cache
        try:
            found.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
        except (OSError, ValueError, AttributeError):  # no such sysconf name (macOS)
            pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def human_size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
