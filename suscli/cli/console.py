"""What the commands print besides their reports, all on stderr so that stdout stays machine-readable: one-line
errors with their exit codes, messages, and a progress bar."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from suscli.errors import SuscliError

stderr = Console(stderr=True, soft_wrap=True)  # messages stay one line, whatever the width


def say(line: str) -> None:
    """A message for the user, as it is (no markup), on one line: a line break inside it (a model named after a file
    whose name holds one) is written as \\n, so that a script reading stderr line by line reads whole messages.
    Blank lines around it stay (the demo sets its closing lines apart with one)."""
    lead, body = line[: len(line) - len(line.lstrip("\n"))], line.strip("\n")
    trail = line[len(lead) + len(body) :]
    stderr.print(lead + body.replace("\r", "\\r").replace("\n", "\\n") + trail, highlight=False, markup=False)


def say_error(error: SuscliError) -> None:
    """The one place user-facing errors are printed: one line on stderr."""
    stderr.print(f"[bold red]error:[/] {escape(error.line())}", highlight=False, soft_wrap=True)


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


@contextlib.contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A transient progress display on stderr (stdout stays machine-readable); silent when stderr is no terminal."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield update
