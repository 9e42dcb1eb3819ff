"""Files and the memory to read them into: writes that an interruption never leaves half done, and how much
memory a load may take before it would push the machine into swap."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from suscli.errors import InputError

# A load is refused when twice its estimated size exceeds the available memory: loading makes a second copy
# (checkpoint tensors copied into the model; decoded images copied out of the buffer when some were unreadable).
MEMORY_MARGIN = 2


def write_atomic(path: str | Path, text: str) -> Path:
    """Write `text` to a temporary file beside `path`, then rename it over `path` (atomic on POSIX)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}", fix="choose a writable path for --output") from None
    finally:
        if tmp is not None and os.path.exists(tmp):  # failed or interrupted (Ctrl-C) before the rename: leave no litter
            os.unlink(tmp)
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
