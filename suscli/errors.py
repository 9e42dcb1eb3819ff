"""Exit codes and the one error type every user-facing failure goes through.

Each exit code has one meaning so that CI can tell "the gate failed" from "the tool could not run".
"""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Sequence
from typing import NoReturn
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # every check passed
    GATE_FAILED = 1  # a --max-susceptibility / --min-train-acc / --fail-on gate was not met
    USAGE = 2  # the command line itself is wrong (unknown option, conflicting flags, bad value)
    INPUT = 3  # an input (checkpoint, image folder, label file, output path) could not be loaded or run


class SuscliError(Exception):
    """A failure the user can fix: one line saying what went wrong, where, and how to fix it."""

    code: ExitCode = ExitCode.INPUT

    def __init__(self, message: str, *, fix: str | None = None):
        self.message = message
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        text = " ".join(self.message.split())
        return f"{text} ({self.fix})" if self.fix else text


class InputError(SuscliError):
    """An input file or folder could not be read or used: exit code 3."""

    code = ExitCode.INPUT


class MemoryRefused(InputError):
    """Images that would not fit in the memory available, refused before they are decoded: exit code 3 where
    nothing else can be done, and where a smaller sample was already measured, the place to stop growing it."""


class UsageError(SuscliError):
    """The options do not make sense together: exit code 2."""

    code = ExitCode.USAGE


def require_type(name: str, value: object, kind: type) -> None:
    """A UsageError unless `value` is a `kind`: a dict of options where suscli takes one of its option classes (the
    natural try in a notebook) raised "AttributeError: 'dict' object has no attribute ..." from deep inside, or was
    kept and failed only at the first measurement."""
    if not isinstance(value, kind):
        raise UsageError(
            f"{name} takes a suscli.{kind.__name__}, got {type(value).__name__}",
            fix=f"pass suscli.{kind.__name__}(...), its options as keywords",
        )


def require_number(
    name: str, value: object, low: float | None = None, high: float | None = None, *, whole: bool = False, above: bool = False
) -> None:
    """A UsageError unless `value` is None or a finite number within the bounds (above `low` where `above`): the bounds
    the command line's option has, for the value given in Python, where a nan gate passed every model and a
    training accuracy of 65 (a percentage) failed every one."""
    if value is None:
        return
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and (isinstance(value, numbers.Integral) or not whole):
        x = float(value)
        if math.isfinite(x) and (low is None or x > low or (x == low and not above)) and (high is None or x <= high):
            return
    if low is not None and high is not None:
        bounds = f" from {low:g} to {high:g}"
    elif low is not None:
        bounds = f" above {low:g}" if above else f" of at least {low:g}"
    else:
        bounds = f" of at most {high:g}" if high is not None else ""
    raise UsageError(f"{name} takes {'a whole' if whole else 'a finite'} number{bounds}, got {value!r}")


def shown(names: Sequence[str], most: int = 5) -> str:
    """The first `most` of `names`, comma-separated, and ", ..." for more: how a message names a few of many."""
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


def first_few(items: Sequence[object], most: int = 3) -> str:
    """As shown, with how many more there are: "a, b, c and 96 more", where the count is worth saying."""
    head = ", ".join(map(str, items[:most]))
    return head + (f" and {len(items) - most} more" if len(items) > most else "")


def apart(a: float, b: float, digits: int = 3) -> tuple[str, str]:
    """`a` and `b` to `digits` decimals, or to as many more (up to 6) as they take to differ where they differ: a
    reason that compares two numbers must show them in that order ("training accuracy 0.624 < 0.624" did not)."""
    for d in range(digits, 7):
        x, y = f"{a:.{d}f}", f"{b:.{d}f}"
        if x != y or a == b:
            break
    return x, y


def plural(count: int, one: str, many: str | None = None) -> str:
    """`one` for a count of 1, else `many` (`one` + "s" unless given): messages said "1 model(s) are" where a user
    reads "1 model is", and "2 models are"."""
    return one if count == 1 else one + "s" if many is None else many


def _lines(e: BaseException | str) -> list[str]:
    """The non-empty lines of an exception's text, stripped."""
    return [line.strip() for line in str(e).splitlines() if line.strip()]


def first_line(e: BaseException | str, limit: int = 160) -> str:
    """The first non-empty line of an exception's text, cut at a word (never mid-word) when longer than `limit`: a
    library's multi-line message quoted inside suscli's one-line error."""
    lines = _lines(e)
    if not lines:
        return ""
    line = lines[0]
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + " ..."


def summary_line(e: BaseException) -> str:
    """An exception's text as one line: its first non-empty line, or where the text carries a traceback (TorchScript
    puts its interpreter's in the message) the last one, which names the error. Nothing traceback-like is left."""
    lines = _lines(e)
    if not lines:
        return ""
    return lines[-1] if any(line.startswith("Traceback") for line in lines) else lines[0]


# Set by the SIGTERM handler (suscli.cli) before it raises KeyboardInterrupt. C code running Python callbacks when the
# signal came can turn that into another exception (torch, reading a nested list's length: "ValueError: could not
# determine the shape of object type ..."), which would end the run as an internal error, exit 3, not as interrupted.
SIGNALLED = threading.Event()


def terminated(signum: int, frame: object) -> NoReturn:
    """SIGTERM (a CI job's timeout or cancel, `docker stop`, `kill`) ends a run as Ctrl-C does: the line says how many
    results the results file kept and that a rerun resumes, and the exit code is 130, where it was killed silently."""
    SIGNALLED.set()
    raise KeyboardInterrupt


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: a KeyboardInterrupt still, whose text says what was kept and how to resume."""
