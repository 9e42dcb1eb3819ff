"""What the commands print besides their reports, all on stderr so that stdout stays machine-readable: one-line
errors with their exit codes, messages, and a progress bar."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, Task, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from suscli.errors import SIGNALLED, SuscliError
from suscli.files import visible


class Messages(Console):
    """stderr, where a line that cannot be written is lost, not the run: a reader gone (`suscli rank ... 2>&1 | head`),
    a full disk or a closed stderr. Rich ends the process on a closed pipe (SystemExit 1, a failed gate to CI) and
    lets other write errors through, and the first message, "report written to ...", then ended the run before its
    JUnit and HTML reports, with exit 1 whatever the gates said. What follows is dropped, as no one can read it."""

    def on_broken_pipe(self) -> None:
        self._lost()

    def print(self, *objects: Any, **kwargs: Any) -> None:
        try:
            super().print(*objects, **kwargs)
        except OSError:  # ENOSPC, EBADF: Rich handles a closed pipe alone (on_broken_pipe)
            self._lost()

    def _lost(self) -> None:
        """Drop every later line, and point the stream at the null device, so that what is left in its buffer fails
        neither a later write of Python's own nor the flush at exit (which would turn the exit code into 120)."""
        self.quiet = True
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            with contextlib.suppress(OSError, ValueError):  # a stream with no descriptor (a test's): nothing to point
                os.dup2(null, self.file.fileno())
        finally:
            os.close(null)


# messages stay one line, whatever the width, and say names as they are: Rich's emoji codes would turn a model file named
# `m:dog:0.safetensors` into "ship m🐶0" (a colon is a legal character of a file name, and of an architecture spec)
stderr = Messages(stderr=True, soft_wrap=True, emoji=False)


def say(line: str) -> None:
    """A message for the user, as it is (no markup), on one line: a line break inside it (a model named after a file
    whose name holds one) is written as \\n, so that a script reading stderr line by line reads whole messages, and
    every other control character as its escape too, as the table writes them (visible): ESC [2J cleared the screen.
    Blank lines around it stay (the demo sets its closing lines apart with one)."""
    lead, body = line[: len(line) - len(line.lstrip("\n"))], line.strip("\n")
    trail = line[len(lead) + len(body) :]
    stderr.print(lead + visible(body.replace("\n", "\\n")) + trail, highlight=False, markup=False)


def say_error(error: SuscliError) -> None:
    """The one place user-facing errors are printed: one line on stderr."""
    stderr.print(f"[bold red]error:[/] {escape(visible(error.line()))}", highlight=False, soft_wrap=True)


def fail(error: SuscliError) -> typer.Exit:
    """An error that ends the command: its line, then its exit code."""
    say_error(error)
    return typer.Exit(int(error.code))


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """SuscliError as its one line and exit code; Ctrl-C as what was kept (suscli.errors.Interrupted) and 130."""
    try:
        yield
    except SuscliError as e:
        raise fail(e) from None
    except KeyboardInterrupt as e:
        say(str(e) or "interrupted")
        raise typer.Exit(130) from None


# Where stderr is a log (CI, a file, TERM=dumb) and no bar can be drawn: a line per tenth of the models done, once the run
# and the stage have lasted this long, so that a long run shows it is alive (CI services end a job silent for 10 minutes)
# and a short one, or a short stage late in a long one (8 lines in 3 s), stays quiet; and a line on the stage at work wherever this long passes without one: on a CPU a ResNet-50 at
# 224 px spent 117 s in its susceptibility batches and predictions before its first line.
LOG_AFTER_SECONDS = 30
# The stages that count models: "models", and the sampled training accuracy's "training accuracy, N images". A model's own
# "training accuracy" counts its images, starts over at each model, and was said for the first model only.
LOGGED_STAGES = ("models", "training accuracy, ")


@contextlib.contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A transient progress display on stderr (stdout stays machine-readable): models done of all and the time left;
    where stderr is no terminal that can redraw a line, a few plain lines instead (progress_line)."""
    drawn = stderr.is_terminal and not stderr.is_dumb_terminal
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=not drawn,
    )
    tasks: dict[str, TaskID] = {}
    tenths: dict[str, int] = {}  # the tenths of each logged stage already said
    begun: dict[str, float] = {}  # when each stage began
    start = time.monotonic()
    said = start  # when the log last said a line

    def update(stage: str, done: int, total: int) -> None:
        nonlocal said
        if SIGNALLED.is_set():  # a SIGTERM whose KeyboardInterrupt C code swallowed (a CPython API that clears errors,
            raise KeyboardInterrupt  # during an import): the run went on measuring every model, and exited 0
        now = time.monotonic()
        if stage not in tasks:
            tasks[stage], begun[stage] = bar.add_task(stage, total=total), now
        bar.update(tasks[stage], completed=done, total=total)
        if drawn or now - start < LOG_AFTER_SECONDS:
            return
        tenth = done * 10 // total if total else 10
        lasted = now - begun[stage] >= LOG_AFTER_SECONDS
        if stage.startswith(LOGGED_STAGES) and lasted and tenth > tenths.get(stage, 0):
            tenths[stage], said = tenth, now
            say(progress_line(bar.tasks[tasks[stage]]))
        elif now - said >= LOG_AFTER_SECONDS:  # also a pool's later models' training accuracy, its tenths said
            said = now
            say(f"{stage}: {done}/{total} done, {timedelta(seconds=round(now - start))} into the run")

    with bar:
        yield update


def progress_line(task: Task) -> str:
    """One line of a stage's progress for a log: `models: 12/30 done, 0:01:10 elapsed, about 0:01:45 left`."""
    line = f"{task.description}: {task.completed:.0f}/{task.total:.0f} done, {timedelta(seconds=round(task.elapsed or 0))} elapsed"
    left = task.time_remaining
    if left is not None and task.completed < (task.total or 0):
        line += f", about {timedelta(seconds=round(left))} left"
    return line
