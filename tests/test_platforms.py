"""What differs on Windows and macOS, checked here on Linux: file locks without fcntl (Windows' msvcrt, emulated
with the same semantics), a platform that renames no open file, and the dtypes of Apple's MPS."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import suscli.files
from suscli.files import write_atomic

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

# fcntl made unimportable, and a msvcrt whose locking() behaves as Windows' does: a lock of n bytes from the file's
# position, refused with EACCES while another process holds them (emulated with POSIX record locks, which the real
# fcntl, imported first, still takes). It records where each lock was taken.
WINDOWS = """
import errno, os, sys, types
import fcntl as _real
sys.modules["fcntl"] = None
_fake = types.ModuleType("msvcrt")
_fake.LK_NBLCK, _fake.LK_UNLCK = 2, 0
_fake.taken_at = []
def _locking(fd, mode, n):
    _fake.taken_at.append(os.lseek(fd, 0, os.SEEK_CUR))
    try:
        _real.lockf(fd, _real.LOCK_EX | _real.LOCK_NB, n, 0, os.SEEK_CUR)
    except OSError:
        raise OSError(errno.EACCES, "Permission denied") from None
_fake.locking = _locking
sys.modules["msvcrt"] = _fake
"""
# Neither fcntl nor msvcrt: a platform with no file locks at all.
NO_LOCKS = 'import sys\nsys.modules["fcntl"] = None\nsys.modules["msvcrt"] = None\n'

WRITER = """
import time
from pathlib import Path
from suscli.files import replacing
with replacing(Path(sys.argv[1])) as f:
    f.write("half")
    print("writing", flush=True)
    time.sleep(600)
"""

HOLDER = """
import time
from suscli.files import lock
with open(sys.argv[1], "a+b") as f:
    lock(f.fileno())
    print("held", flush=True)
    time.sleep(1.5)
"""


def _start(prelude: str, script: str, *args: str) -> subprocess.Popen:
    """A process running `script` under `prelude`'s platform, once it has printed its first line."""
    proc = subprocess.Popen([sys.executable, "-c", prelude + script, *args], env=ENV, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() in ("writing\n", "held\n")
    return proc


def _run(prelude: str, script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", prelude + script, *args], env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _aged(folder: Path) -> set[Path]:
    found = set(folder.glob(".r.json.*.tmp"))
    for tmp in found:
        os.utime(tmp, (time.time() - 2 * suscli.files.STALE_SECONDS,) * 2)
    return found


def test_without_fcntl_windows_locks_keep_a_live_writers_file_and_serialize_appends(tmp_path) -> None:
    out = tmp_path / "r.json"
    killed = _start(WINDOWS, WRITER, str(out))
    killed.kill()
    killed.communicate()  # waits, and closes its pipe
    dead = _aged(tmp_path)
    live = _start(WINDOWS, WRITER, str(out))
    try:
        mine = _aged(tmp_path) - dead
        said = _run(
            WINDOWS,
            "from pathlib import Path\nfrom suscli.files import write_atomic, WINDOWS_LOCK_BYTE\n"
            "write_atomic(Path(sys.argv[1]), 'new')\nprint(set(_fake.taken_at) == {WINDOWS_LOCK_BYTE})",
            str(out),
        )
        assert said == "True\n"  # a byte past any data: Windows' mandatory locks keep no reader out
        assert out.read_text() == "new"
        assert set(tmp_path.glob(".*.tmp")) == mine  # the dead writer's alone is gone
    finally:
        live.kill()
        live.communicate()

    results = tmp_path / "r.jsonl"
    holder = _start(WINDOWS, HOLDER, str(results))
    start = time.monotonic()
    _run(WINDOWS, "from pathlib import Path\nfrom suscli.files import append_line\nappend_line(Path(sys.argv[1]), 'x')", str(results))
    waited = time.monotonic() - start
    holder.communicate()
    assert waited > 0.5 and results.read_text() == "x\n"  # the append waited for the other process's lock


def test_without_any_file_locks_writes_and_appends_work_and_no_temporary_file_is_taken_for_dead(tmp_path) -> None:
    out = tmp_path / "r.json"
    stale = tmp_path / ".r.json.abc12345.tmp"  # a dead writer's or a live one's: without locks nothing tells
    stale.write_text("")
    os.utime(stale, (time.time() - 2 * suscli.files.STALE_SECONDS,) * 2)
    _run(
        NO_LOCKS,
        "from pathlib import Path\nfrom suscli.files import append_line, write_atomic\n"
        "write_atomic(Path(sys.argv[1]), 'new')\nappend_line(Path(sys.argv[1] + 'l'), 'x')",
        str(out),
    )
    assert out.read_text() == "new" and (tmp_path / "r.jsonl").read_text() == "x\n"
    assert stale.exists()


def _open_names() -> set[str]:
    return {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}")}


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see which files are open")
def test_where_open_files_cannot_be_renamed_or_chmodded_a_report_is_still_written(tmp_path, monkeypatch) -> None:
    replace = os.replace

    def windows_replace(src, dst):
        if os.path.realpath(src) in _open_names():
            raise PermissionError(32, "The process cannot access the file because it is being used by another process")
        replace(src, dst)

    monkeypatch.setattr(suscli.files, "RENAMES_OPEN_FILES", False)
    monkeypatch.setattr(suscli.files.os, "replace", windows_replace)
    monkeypatch.delattr(suscli.files.os, "fchmod")  # Windows before Python 3.13
    out = write_atomic(tmp_path / "r.json", "new")
    assert out.read_text() == "new" and not list(tmp_path.glob(".*.tmp"))


def test_the_normalized_step_sums_its_gradient_norm_in_float32_on_mps_which_has_no_float64(monkeypatch) -> None:
    import torch

    import suscli.measure.steps as steps
    from suscli.measure.devices import widest_float

    assert widest_float(torch.device("mps")) == torch.float32
    assert widest_float(torch.device("cpu")) == widest_float(torch.device("cuda")) == torch.float64  # numbers as before
    asked = []

    def on_mps(device: torch.device) -> torch.dtype:  # what the step takes on a Mac, on this machine's CPU tensors
        asked.append(device.type)
        return widest_float(torch.device("mps"))

    monkeypatch.setattr(steps, "widest_float", on_mps)
    p = torch.nn.Parameter(torch.zeros(2))
    with torch.no_grad():  # as the measurement takes its step
        steps.normalized_step(1.0)([p], (torch.tensor([3.0, 4.0]),))
    assert asked == ["cpu"] and torch.allclose(p.detach(), torch.tensor([-0.6, -0.8]))
