"""The command line: each command parses its options, makes one call to the Python API (suscli.run) and renders
what it returns. No measurement happens here.

Exit codes: 0 ok, 1 a gate failed, 2 usage error, 3 an input could not be loaded or run (also used for an
unexpected internal error, which is reported in one line; SUSCLI_DEBUG=1 shows the traceback), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from typing import NoReturn

import typer
from rich.markup import escape

from suscli.cli import demo, rank, score, track  # noqa: F401  (each registers its command)
from suscli.cli.app import CarriedInterrupt, app, click_class
from suscli.cli.console import stderr
from suscli.errors import SIGNALLED, ExitCode, summary_line
from suscli.run.launch import world

__all__ = ["app", "main"]

# The parser's own errors (an unknown option, a bad --format, a missing argument): the base of typer.BadParameter
_PARSE_ERROR = click_class("ClickException")


def main() -> None:
    """Console-script entry point (suscli.__main__, which installs the SIGTERM handler before this module loads): no
    traceback reaches the user unless SUSCLI_DEBUG is set, and then with the same exit code."""
    try:
        _run()
    except SystemExit as e:
        if world() is None:
            raise
        _leave_without_teardown(e.code)


def _leave_without_teardown(code: object) -> NoReturn:
    """Under torchrun, end a finished rank once its output is flushed, without the interpreter's teardown: there
    gloo's threads can abort a rank whose work is done (SIGABRT, 'terminate called without an active exception',
    seen on 2 CPU ranks with --model-batch), and torchrun then reports the whole launch as failed. Nothing is lost:
    the results file is made durable row by row, and every report file is closed before the command returns."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            stream.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def _run() -> None:
    """The app, with a command line the parser refuses, an unexpected error or Ctrl-C as one line and its exit code."""
    try:
        code = typer.main.get_command(app).main(standalone_mode=False)  # returns the exit code a command ended with
    except _PARSE_ERROR as e:
        _refused(e)
    except (KeyboardInterrupt, CarriedInterrupt):  # outside a command's own handler: while parsing, or importing what a command needs
        stderr.print("interrupted", highlight=False)
        sys.exit(130)
    except Exception as e:  # a bug, not bad input: still one line (of a multi-line message too) and a documented code
        if SIGNALLED.is_set():  # SIGTERM's KeyboardInterrupt turned into another error by the C code it came in
            stderr.print("interrupted", highlight=False)  # (numpy's import: "cannot load module more than once"), exit 3
            sys.exit(130)
        if os.environ.get("SUSCLI_DEBUG"):  # the traceback asked for, with the internal error's code: Python's 1 is a failed gate's
            traceback.print_exc()
        else:
            stderr.print(
                f"[bold red]internal error:[/] {type(e).__name__}: {escape(summary_line(e))} (set SUSCLI_DEBUG=1 for the traceback, and please report it)",
                highlight=False,
            )
        sys.exit(int(ExitCode.INPUT))
    sys.exit(code if isinstance(code, int) else 0)


def _refused(e: Exception) -> NoReturn:
    """A command line the parser refuses: one line naming the error and where the options are listed, with the
    parser's exit code (2, a usage error); `suscli` alone still prints the help."""
    code = int(getattr(e, "exit_code", ExitCode.USAGE))
    if type(e).__name__ == "NoArgsIsHelpError":
        e.show()  # type: ignore[attr-defined]
        sys.exit(code)
    ctx = getattr(e, "ctx", None)
    where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    # the parser's validation library prefixes its own messages ("Value error, 'foo' is not one of ..."): noise to a user
    message = summary_line(ValueError(e.format_message())).replace(": Value error, ", ": ")  # type: ignore[attr-defined]
    stderr.print(f"[bold red]error:[/] {escape(message)}{where}", highlight=False)
    sys.exit(code)
