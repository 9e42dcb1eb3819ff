"""The resumable results file: one JSON line per scored model, appended as soon as it is computed.

A rerun skips every model whose checkpoint hash and measurement fingerprint are already in the file, so an
interrupted `rank` resumes where it stopped. A line cut short by a kill is ignored, and cut off by the next
append; appends take an exclusive lock so that two processes sharing the file do not interleave lines. A run holds
the file's lock (`ResultsLock`, FILE.lock beside it) from before it reads the file until it ends, so that a second
run on the file waits and then reuses what the first measured, rather than measuring it again. The default file
keeps the results of every set of settings side by side, so that changing one setting and back measures nothing
twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import contextlib
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from suscli.errors import InputError, Interrupted, UsageError, plural
from suscli.files import append_line, writable
from suscli.results import AGAIN, REUSED, Result, nulled, wrong_field


def default_results(pool: Path) -> Path:
    """Where results of a pool folder or manifest live by default, so that rank and track share them."""
    return pool / "suscli-results.jsonl" if pool.is_dir() else pool.with_suffix(".suscli-results.jsonl")


def results_location(pool: Path, cache_dir: Path) -> tuple[Path, str | None]:
    """The default results file, and a line to show when it is not the usual one: beside the pool when its folder
    can be written, else (models on a read-only mount, or owned by another user) in the cache directory, under a
    name unique to the pool's absolute path."""
    usual = default_results(pool)
    if writable(usual.parent):
        return usual, None
    digest = hashlib.sha256(str(pool.resolve()).encode()).hexdigest()[:16]
    moved = Path(cache_dir) / "results" / f"{pool.name}-{digest}.jsonl"
    return moved, f"{usual.parent} cannot be written: results are kept in {moved}{_seeded(usual, moved, pool.name)}"


def _seeded(usual: Path, moved: Path, name: str) -> str:
    """The results a read-only pool's own file holds (written while its folder could be), else those the cache folder
    keeps for a pool of the same name at another path, copied into the file in the cache the first time: the pool's
    results were ignored, and so were a restored cache folder's in a CI job whose checkout lies elsewhere, and every
    model was measured again. Said after the line; where the copy cannot be made, nothing is said and the models are
    measured as if there were none."""
    if moved.exists():
        return ""
    source = usual if usual.is_file() else _same_name(moved.parent, name)
    if source is None:
        return ""
    try:
        moved.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, moved)
    except OSError:
        return ""
    elsewhere = "" if source == usual else f" (a pool named {name} at another path)"
    return f", starting from the results in {source}{elsewhere}"


def _same_name(folder: Path, name: str) -> Path | None:
    """The newest results file in the cache's `folder` of a pool named `name` at another path. Another pool of that
    name lends nothing wrong: a stored result is reused only for the same checkpoint bytes, settings and images."""
    pattern = re.compile(re.escape(name) + r"-[0-9a-f]{16}\.jsonl")
    try:
        found = [(p.stat().st_mtime, p) for p in folder.iterdir() if pattern.fullmatch(p.name) and p.is_file()]
    except OSError:  # no results kept yet, a folder that cannot be read, a file removed while listed
        return None
    return max(found)[1] if found else None


def make_folder(path: Path) -> str | None:
    """Create the folder of an explicit results file where it does not exist, and return the line that says so. Reports
    refuse a folder that does not exist; a results file is a store a CI job points at a fresh path (a cache folder
    restored only on a hit), so its folder is made, and said, so that a typo in it is seen."""
    folder = path.parent
    if folder.is_dir():
        return None
    try:
        folder.mkdir(parents=True)
    except OSError as e:
        blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        why = f"{blocking} is a file, not a folder" if blocking is not None else e.strerror or str(e)
        raise InputError(
            f"cannot create the folder {folder} of results file {path}: {why}", fix="pass --results with a writable path"
        ) from None
    return f"created the folder {folder} for results file {path.name}"


def fingerprint(settings: dict[str, Any]) -> str:
    """Short hash of everything that decides a model's numbers (settings, data identity, device kind)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


DATA_KEYS = ("unlabeled_data", "train_data", "val_data")


def legacy_identity(value: Any) -> bool:
    """Whether a data identity is of the kind suscli wrote before it named files relative to their set's root: 16 hex
    digits of a hash over the paths as typed, which no rerun can match or tell from another data set."""
    return isinstance(value, str) and len(value) == 16 and all(c in "0123456789abcdef" for c in value)


# Settings that number how a release measures (suscli.run.audit.READING, VAL_NUMBERING; the data identities' schemes,
# _scheme): raised by a release that measures differently. A stored number below this release's is an earlier
# release's, above it a later one's; results files written before `reading` was recorded hold none, which reads as 1.
RELEASE_MARKERS = {"reading": 1, "val_numbering": None}


# The options that set the stored settings whose names are not the option's (a data identity: the option naming that set)
_OPTIONS = {"unlabeled_data": "data", "train_data": "train-data", "val_data": "val-data", "device_type": "device"}
# What a release marker numbers, where the line does not say the results are an earlier or a newer suscli's
_RELEASE_WORDS = {"reading": "the release's way of reading inputs", "val_numbering": "the release's numbering of held-out classes"}


def differ(keys: list[str], release: bool = True) -> str:
    """The settings that differ (changed_settings's dotted names) as the options that set them, " (--lr, --train-data
    differ)", for the line that says a results file holds other settings; a release marker in words, or left out
    where the line says it in its own (`release=False`: "an earlier suscli"). The names as stored
    ("susceptibility.lr", "val_numbering") were shown, one of them a release's internal number. The numbering of
    held-out classes is stored only with held-out data, so beside --val-data it differs with it, not by release: a
    rerun adding --val-data was told the release's numbering differs too."""
    words: list[str] = []
    for key in keys:
        if key == "val_numbering" and "val_data" in keys:  # held-out data given on one side only: its numbering goes with it
            continue
        top, _, sub = key.partition(".")
        name = sub if top == "susceptibility" and sub else top
        word = _RELEASE_WORDS.get(top, "") if top in RELEASE_MARKERS else "--" + _OPTIONS.get(name, name.replace("_", "-"))
        if word and word not in words and (release or top not in RELEASE_MARKERS):
            words.append(word)
    return f" ({', '.join(words)} {'differ' if len(words) > 1 else 'differs'})" if words else ""


def _data_said(keys: list[str], theirs: dict[str, Any], mine: dict[str, Any]) -> str:
    """What makes two sets of images one, where a line names a data option both runs give (a set one run lacks, as
    where a rerun adds --train-data, is no such puzzle): a list of a folder's images in another order is other
    unlabeled data, as it draws other random labels, and "(--data differs)" did not say why the same images were. A
    labelled set draws none; its labels, and how they are given, make it too (a CSV of class names for the class
    folders it lists was said to differ only as other files or another order), and a held-out set is put in its
    folder's order (suscli.run.inputs.in_path_order), so its order does not."""
    both = {key for key in keys if key in DATA_KEYS and theirs.get(key) and mine.get(key)}
    if "unlabeled_data" in both:
        return ": images are the same data only as the same files (sizes, modification times) in their order, which draws the random labels"
    same = "the same files (sizes, modification times){}, with the same labels given the same way (class folders, ids or names)"
    if "train_data" in both:
        return f": labelled images are the same data only as {same.format(' in their order')}"
    if "val_data" in both:
        return f": held-out images are the same data only as {same.format(', in any order')}"
    return ""


def release_age(stored: dict[str, Any], current: dict[str, Any]) -> str | None:
    """Whether `stored` settings were written by a release that measures otherwise than this one (`current`): "earlier",
    whose results are measured again beside, "newer", whose results this one cannot reuse, or None."""
    pairs = [(stored.get(name, absent), current.get(name)) for name, absent in RELEASE_MARKERS.items()]
    pairs += [(_scheme(stored.get(name)), _scheme(current.get(name))) for name in DATA_KEYS]
    for theirs, mine in pairs:
        if isinstance(theirs, int) and isinstance(mine, int) and theirs != mine:
            return "newer" if theirs > mine else "earlier"
    return None


def _scheme(identity: Any) -> int | None:
    """The version of the scheme that made a data identity (suscli.run.audit.DATA_IDENTITY): N for 'vN:...', 1 for the
    first scheme's 16 hex digits, None for no identity."""
    if legacy_identity(identity):
        return 1
    found = re.fullmatch(r"v(\d+):[0-9a-f]+", identity) if isinstance(identity, str) else None
    return int(found.group(1)) if found else None


def changed_settings(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Dotted names of the settings that differ (susceptibility.lr), compared as the file holds them: JSON, where a
    tuple such as --mean's reads back as a list and must not count as a change."""
    a, b = _flat(stored), _flat(current)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    settings = json.loads(json.dumps(settings, default=str))
    out: dict[str, Any] = {}
    for k, v in settings.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def require_regular(path: Path, fix: str = "pass --results FILE.jsonl") -> None:
    """Refuse a path that exists but is no regular file before reading it: a device such as /dev/full or /dev/zero reads
    as endless bytes, which a read took until the machine ran out of memory, and a folder cannot hold lines."""
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise InputError(f"results file {path} is {kind}", fix=fix)


# How every record's line begins (append writes the fingerprint first), one a kill cut short too
RECORD_START = '{"fingerprint"'


def _starts_as_results(path: Path) -> bool:
    """Whether a file --fresh may delete begins as a results file (or is empty): `--results labels.csv --fresh` deleted
    the training labels, and `--results m.safetensors` a checkpoint. Only the first line is read, so that a results
    file damaged further on can still be started over, as its error says; a first line a kill cut short is a
    results file's, as read_records reads it."""
    try:
        with open(path, "rb") as f:
            first = next((line for line in f if line.strip()), b"").decode("utf-8-sig", "replace")
        if not first or first.startswith(RECORD_START):
            return True
        record = json.loads(first)
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "fingerprint" in record


def read_records(path: Path, cut: Callable[[str], None] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """The line number and record of every whole line of a results file; a last line cut short by a kill is left
    out, and passed to `cut` (rank and track say so: its model is measured again). Anything else that is not a record
    of the expected shape is an InputError naming the line."""
    require_regular(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # -sig: a byte order mark an editor saved it with
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read results file {path}: {e}", fix="pass --results NEW.jsonl") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # a blank line (an editor's, `echo >> FILE`) holds no record: no reason to refuse every other one
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if n == 1 and not line.startswith(RECORD_START):  # another kind of file
                raise InputError(f"{path} is not a suscli results file (line 1)", fix="pass --results NEW.jsonl") from None
            if n == len(lines):  # the last line of a killed run
                if cut is not None:
                    cut(line)
                continue
            raise InputError(  # deleting the line loses one result; another file or --fresh measured every model again
                f"results file {path} is corrupt at line {n}",
                fix=f"delete line {n} (its model is then measured again), or pass --fresh or --results NEW.jsonl",
            ) from None
        if not isinstance(record, dict) or not {"fingerprint", "key", "result"} <= record.keys():
            raise InputError(f"{path} is not a suscli results file (line {n})", fix="pass --results NEW.jsonl")
        if wrong := next((f"{k} is {record[k]!r}" for k in ("fingerprint", "key") if not isinstance(record[k], str)), None):
            raise InputError(  # a list ended the run in "internal error: TypeError: unhashable type"
                f"results file {path} line {n} is not a row suscli writes: {wrong}",
                fix=f"correct or delete line {n} (its model is then measured again), or pass --fresh",
            )
        places = record.pop(NOT_FINITE, [])
        if not _restored(record, places):
            raise InputError(
                f"results file {path} line {n} is not a row suscli writes: {NOT_FINITE} is {places!r}",
                fix=f"correct or delete line {n} (its model is then measured again), or pass --fresh",
            )
        yield n, record


# The key of a record that lists the numbers of it that are not finite (a standard error over one batch is nan), each
# written as null: JSON has no NaN or Infinity, and strict readers (JavaScript's JSON.parse, Go's encoding/json) refused a line
# holding them. Each is listed as [keys and list positions from the record down to it, "NaN" | "Infinity" | "-Infinity"].
NOT_FINITE = "not_finite"


def _restored(record: dict[str, Any], places: Any) -> bool:
    """Put back in `record` the numbers its line lists as not finite (`places`, its NOT_FINITE), as they were
    measured: a stored nan read back as None would change what reads it. False where the list is not one suscli
    writes (a file edited by hand). A line of an earlier release holds NaN literals, which json reads as they are,
    and no list."""
    if not isinstance(places, list):
        return False
    for place in places:
        if not (isinstance(place, list) and len(place) == 2 and isinstance(place[0], list) and place[0]):
            return False
        (*down, last), word = place
        if word not in ("NaN", "Infinity", "-Infinity"):
            return False
        holder: Any = record
        for step in down:
            holder = _step(holder, step)
        if _step(holder, last) is not None:  # a place that leads nowhere, or to a value
            return False
        holder[last] = float(word)
    return True


_NOWHERE = object()


def _step(holder: Any, key: Any) -> Any:
    """holder[key] where holder is a dict with that key or a list with that position, else _NOWHERE (from which
    every further step is _NOWHERE too)."""
    if isinstance(holder, dict) and isinstance(key, str) and key in holder:
        return holder[key]
    if isinstance(holder, list) and isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(holder):
        return holder[key]
    return _NOWHERE


def record_result(path: Path, n: int, record: dict[str, Any]) -> Result:
    """The Result a record holds; a line of the right shape holding something else is not a results file, and a row
    whose field has another type than suscli writes is named with its line, which the user can correct or delete."""
    stored = record["result"]
    if not isinstance(stored, dict):
        raise InputError(f"{path} is not a suscli results file (line {n})", fix="pass --results NEW.jsonl")
    if wrong := wrong_field(stored):
        raise InputError(
            f"results file {path} line {n} is not a row suscli writes: {wrong}",
            fix=f"correct or delete line {n} (its model is then measured again), or pass --fresh",
        )
    return Result.from_dict(stored)


# The lock file beside a results file: r.jsonl.lock. The results file itself is not locked for the run: --fresh
# deletes it (a new file, which a waiting run's lock would not be on), and every append locks it briefly.
LOCK_SUFFIX = ".lock"


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + LOCK_SUFFIX)


class ResultsLock:
    """The exclusive lock a run holds on its results file from before it reads the file until the run ends: a second
    run on the same file waits for it, then reads the first run's lines and measures only what is still missing (it
    measured everything again, both runs appending). Read-only uses (suscli.load_results) take no lock.

    A filelock lock on FILE.lock: flock on POSIX, whose lock the kernel drops when its process dies, however it dies
    (SIGKILL, the OOM killer), so that no dead run's lock holds up the next; LockFileEx on Windows, the same. The lock
    file is removed while the lock is still held, just before it is released, so that none is left beside the
    results: a run that opened it meanwhile finds the file it locked unlinked and locks a new one (filelock 4 checks
    this, as do the filelock 3 releases that remove the file themselves; with an earlier one two runs could, rarely,
    both go on, and some models be measured twice, as without the lock). A killed run leaves the lock file, unlocked,
    which the next run takes and removes."""

    def __init__(self, results: Path):
        self.results = results
        self.path = lock_path(results)
        self._lock: Any = None

    @classmethod
    def take(cls, results: Path, say: Callable[[str], None] | None = None) -> "ResultsLock":
        """The lock on `results`, waited for where another run holds it (said in one line, for the command line on
        stderr). Where it cannot be made (a read-only folder, a file system without locks) the run goes on without it,
        as before there was one, rather than refusing: there the results file can seldom be written either, which
        require_writable says before anything is measured [3], and a read-only file that holds every result is still
        read and reused, as it was. Where the results file can be written all the same, a line says that a run beside
        this one would not wait for it."""
        held = cls(results)
        with contextlib.suppress(OSError):
            results.parent.mkdir(parents=True, exist_ok=True)  # the cache folder's results/, made by the first write
        try:
            held._acquire(say)
        except OSError as e:
            held._lock = None
            if say is not None and _appendable(results):
                say(
                    f"cannot lock results file {results} ({held.path}: {e.strerror or e}): another run on it at the same "
                    "time would not wait for this one, and would measure its models again"
                )
        return held

    def _acquire(self, say: Callable[[str], None] | None) -> None:
        import filelock  # here: reading a results file (suscli.load_results) needs none of it

        # Only the kernel's locks, which die with their process: a soft lock (a marker file, filelock's answer where a
        # platform or file system has no flock) left by a killed run would keep every later run waiting.
        if not issubclass(filelock.FileLock, (filelock.UnixFileLock, filelock.WindowsFileLock)):
            raise OSError("this platform has no file locks")
        options: dict[str, Any] = {"fallback_to_soft": False} if _supports(filelock.FileLock, "fallback_to_soft") else {}  # filelock 4
        lock = filelock.FileLock(str(self.path), **options)
        try:
            try:
                lock.acquire(timeout=0)
            except filelock.Timeout:
                if say is not None:
                    say(
                        f"results file {self.results} is being written by another suscli run: waiting for it to end, "
                        "then its results are reused (Ctrl-C stops waiting)"
                    )
                lock.acquire()  # polls every 0.05 s, so that Ctrl-C and SIGTERM stop it
        except NotImplementedError as e:  # filelock 3's answer where the file system has no flock
            raise OSError(str(e)) from None
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted while waiting for results file {self.results}: nothing was measured") from None
        self._lock = lock

    @property
    def held(self) -> bool:
        return self._lock is not None

    def release(self) -> None:
        """Remove the lock file, then release the lock; again, or without a lock, does nothing."""
        lock, self._lock = self._lock, None
        if lock is None:
            return
        try:
            with contextlib.suppress(OSError):  # Windows removes no open file: filelock removes it there on release
                self.path.unlink()
        finally:
            lock.release()


def _supports(cls: Any, option: str) -> bool:
    """Whether a class takes a keyword argument: filelock's options differ between its releases."""
    import inspect

    return option in inspect.signature(cls.__init__).parameters


def _appendable(path: Path) -> bool:
    """Whether `path` is a file a line could be appended to, found by opening it so (creating nothing)."""
    if not path.is_file():
        return False
    try:
        with open(path, "ab"):
            return True
    except OSError:
        return False


class ResultStore:
    """Results of one fingerprint, keyed by the model's identity (checkpoint sha256 and the arch asked for).

    A file that also holds results of other fingerprints is shared with them when `keep_others` (the default
    file); otherwise a file holding only other fingerprints is refused, so that an explicit --results is never
    silently a different experiment's."""

    def __init__(
        self,
        path: str | Path,
        fingerprint: str,
        settings: dict[str, Any],
        keep_others: bool = False,
        stale: Callable[[Result], bool] | None = None,
        lock: ResultsLock | None = None,
        also: str | None = None,
    ):
        """`stale`: which stored rows of these settings to measure again (suscli.judge.verdict.lacks_untrained); it is
        passed in, so that reading a results file (suscli.load_results) imports no torch. `lock`: the run's lock on
        the file (taken before it is read), released by close(). `also`: the fingerprint an earlier release gave
        these same settings (suscli.run.inputs.store_key), whose rows are theirs; new rows are stored under
        `fingerprint`."""
        self.path = Path(path)
        self.lock = lock
        self.stale = stale
        self.fingerprint = fingerprint
        self.mine = {fingerprint, *([also] if also else [])}  # the fingerprints of these settings' rows
        self.settings = settings
        self.others: list[str] | None = None  # when the file holds other settings: those that differ from the latest
        self.data_said = ""  # what makes two sets of images one, where only data options differ (_data_said)
        self.legacy = False  # those others identified the images by their paths as typed (suscli.run.audit.data_identity)
        self.age: str | None = None  # "earlier" or "newer": those others were written by a release that measures otherwise
        self._done: dict[str, Result] = {}
        self._writable = False  # checked once, before the first model is measured (require_writable)
        self._cut: str | None = None  # the last line, where a killed run cut it short
        self._load(keep_others)

    def _load(self, keep_others: bool) -> None:
        if not self.path.exists():
            return
        others: dict[str, dict] = {}  # fingerprint -> the settings of another set of results
        mine = False
        for n, record in read_records(self.path, cut=self._cut_short):
            if record["fingerprint"] not in self.mine:
                settings = record.get("settings")
                others[record["fingerprint"]] = settings if isinstance(settings, dict) else {}
                continue
            mine = True
            result = record_result(self.path, n, record)
            if self.stale is not None and self.stale(result):  # measured again, and not counted as reused
                continue
            self._done[record["key"]] = result
        if not others:
            return
        # the nearest other settings, which the line names (the last written may differ in far more)
        theirs, self.others = min(((o, changed_settings(o, self.settings)) for o in others.values()), key=lambda pair: len(pair[1]))
        self.data_said = _data_said(self.others, theirs, self.settings)
        self.legacy = any(legacy_identity(theirs.get(k)) for k in DATA_KEYS)
        self.age = release_age(theirs, self.settings)
        if keep_others or mine:
            return
        if self.age == "newer":
            raise UsageError(
                f"results file {self.path} holds results of a newer suscli{differ(self.others, release=False)}, which this one cannot reuse",
                fix="upgrade suscli to reuse them, or pass --results NEW.jsonl",
            )
        schemes = {k: (_scheme(theirs.get(k)), _scheme(self.settings.get(k))) for k in DATA_KEYS}
        rekeyed = {k for k, (a, b) in schemes.items() if a and b and a != b}  # identities of two schemes: not comparable
        # the same experiment, rerun after an upgrade
        upgraded = self.age == "earlier" and set(self.others) <= RELEASE_MARKERS.keys() | rekeyed
        if not self.legacy and not upgraded:
            raise UsageError(
                f"results file {self.path} holds results measured with other parameters{differ(self.others)}{self.data_said}",
                fix="pass --results NEW.jsonl to keep both, or --fresh to start this file over",
            )

    def close(self) -> None:
        """Release the run's lock on the file (suscli.run.inputs.keeping, on every way out of a run); the results
        stay readable. Again, or without a lock, does nothing."""
        if self.lock is not None:
            self.lock.release()

    def _cut_short(self, line: str) -> None:
        self._cut = line

    def notes(self) -> list[str]:
        """The lines rank and track say about the file before measuring: its last line cut short by a kill, and
        whether these settings start their results or reuse them in a file shared with other settings."""
        return [note for note in (self._cut_note(), self._shared_note()) if note]

    def _cut_note(self) -> str | None:
        """A last line a kill cut short is ignored and its model measured again, which went unsaid. Its fingerprint,
        written first, tells a result of these settings from one of others where the cut came after it."""
        if self._cut is None:
            return None
        said = f"results file {self.path}: its last line was cut short (a run stopped while writing it)"
        theirs = re.match(re.escape(RECORD_START) + r': "([^"]*)"', self._cut)
        if theirs and theirs.group(1) not in self.mine:
            return f"{said}; it held a result of other settings, which is measured again when they are run"
        return f"{said}; the model it held is measured again"

    def _shared_note(self) -> str | None:
        """One line for a file shared with other settings: whether these settings start their results or reuse them."""
        if self.others is None:
            return None
        diff, since = differ(self.others), differ(self.others, release=False)  # the second where the line names the release
        if self.legacy and not self._done:
            return (
                f"{self.path} holds results of an earlier suscli, which identified the images by their paths as typed{since}: "
                "these settings are measured again beside them"
            )
        if self.age == "earlier" and not self._done:
            return (
                f"{self.path} holds results of an earlier suscli, which read some checkpoints or class folders in "
                f"another way{since}: these settings are measured again beside them"
            )
        if self.age == "newer" and not self._done:
            return f"{self.path} holds results of a newer suscli{since}, which this one does not reuse: these settings start their own results beside them"
        # where only the images differ, what makes two sets of images one: a touched image under the same --data was
        # said as "(--data differs)" of an option the user passed unchanged
        why = self.data_said if set(self.others) <= set(DATA_KEYS) else ""
        if self._done:
            return (  # how many of them this pool's models match is known only as each is loaded: the counts say
                f"{self.path} holds {len(self._done)} {plural(len(self._done), 'result')} of these settings, reused for the models they match, "
                f"and results of other settings{diff}{why}"
            )
        return f"{self.path} holds results of other settings{diff}{why}{';' if why else ':'} these settings start their own results beside them"

    def get(self, key: str) -> Result | None:
        return self._done.get(key)

    def __len__(self) -> int:
        return len(self._done)

    def require_writable(self) -> None:
        """Refuse a results file that cannot take a result before the first model is measured: found at the first
        append, it threw that measurement away, and with --model-batch every model's of the window. Only then, so
        that a file on a read-only mount that already holds every result is still read."""
        if self._writable:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                with open(self.path, "ab"):
                    pass
            elif not writable(self.path.parent):
                raise PermissionError(f"the folder {self.path.parent} cannot be written")
        except OSError as e:
            raise InputError(
                f"cannot write results file {self.path}: {e.strerror or e}", fix="pass --results with a writable path"
            ) from None
        self._writable = True

    def append(self, key: str, result: Result) -> None:
        """Write one result durably (flush + fsync) before the next model starts; one measured on other bytes than
        its key was made from is noted and not written (changed_while_read)."""
        if changed_while_read(key, result):
            return
        stored = result.as_dict()
        stored["details"].pop(REUSED, None)  # a fact of the run that reused it, not of the measurement
        if (again := stored["details"].pop(AGAIN, None)) is not None:  # as is why it was measured again
            stored["notes"] = [n for n in stored["notes"] if n != again]
        found: list[list[Any]] = []
        record = nulled({"fingerprint": self.fingerprint, "key": key, "settings": self.settings, "result": stored}, found)
        line = json.dumps({**record, NOT_FINITE: found} if found else record, default=str, allow_nan=False)
        try:
            append_line(self.path, line)  # a line a killed writer cut short is cut off first
        except OSError as e:
            raise self._unwritable(e) from None
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM during the fsync: the whole line may be in the file, and kept
            if _ends_with(self.path, (line + "\n").encode()):
                self._done[key] = result
            raise
        self._done[key] = result

    def _unwritable(self, e: OSError) -> InputError:
        """A result that could not be appended after the check before measuring passed: a disk that filled during the
        run. What the file kept is said, and that the same command resumes: the fix alone, another --results, led to
        a rerun that measured every kept model again."""
        said = f"cannot write results file {self.path}: {e.strerror or e}"
        if not self._done:
            return InputError(said, fix="pass --results with a writable path")
        kept = f"{len(self._done)} {plural(len(self._done), 'result')} kept in it"
        return InputError(f"{said}; {kept}", fix="make room, then rerun the same command to resume; or pass --results with a writable path")

    @staticmethod
    def reset(path: str | Path) -> None:
        """--fresh: delete the file, every setting's results with it."""
        path = Path(path)
        require_regular(path)
        if path.exists() and not _starts_as_results(path):
            raise InputError(
                f"results file {path} is not a suscli results file, which --fresh would delete", fix="pass --results NEW.jsonl"
            )
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            raise InputError(
                f"cannot start results file {path} over: {e.strerror or e}", fix="pass --results with a writable path"
            ) from None


# The note on a row measured on other bytes than those its key was made from (suscli.run.audit.model_key begins with them)
CHANGED = (
    "the file changed while this run read it (a training run saving it again): measured as loaded, not kept in the "
    "results file; the next run measures it again"
)


def changed_while_read(key: str, result: Result) -> bool:
    """Whether the checkpoint was rewritten between the hash its key was made from and the load that read it (a run
    still saving `last.pt`, a file still growing); the row then says so. Kept, its numbers were reused for the old bytes
    (the file put back, or an epoch's copy of them) as theirs."""
    if result.sha256 is None or key.startswith(f"{result.sha256}:"):
        return False
    if CHANGED not in result.notes:  # a sample that grows saves the row again
        result.notes.append(CHANGED)
    return True


def _ends_with(path: Path, data: bytes) -> bool:
    """Whether the file ends with `data`: the line this process wrote, whole, when an interrupt came after it."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size < len(data):
                return False
            f.seek(size - len(data))
            return f.read() == data
    except OSError:
        return False
