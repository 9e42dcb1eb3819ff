"""The Typer application the commands register with."""

from typing import Any

import typer
from typer.core import TyperGroup

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 gate failed, 2 usage error, 3 an input could not be loaded or run, 130 interrupted (what was measured is kept)."
)


class CarriedInterrupt(Exception):
    """A KeyboardInterrupt (Ctrl-C, or SIGTERM through suscli.errors.terminated) that came outside a command's own
    handler, carried past the parser as another exception: not a KeyboardInterrupt, which the parser would catch."""


class Commands(TyperGroup):
    """The command group, whose parsing and invoking let no KeyboardInterrupt reach typer's main loop: typer (0.15 to
    0.29 at least) turns one into exit code 130 returned without a word, and a CI job cancelled while its command line
    was parsed, or a Ctrl-C then, ended silent. suscli.cli.main says "interrupted" for it instead."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt as e:
            raise CarriedInterrupt from e

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().invoke(*args, **kwargs)
        except KeyboardInterrupt as e:
            raise CarriedInterrupt from e


app = typer.Typer(
    cls=Commands,
    help="Audit trained image classifiers for memorized label noise, with unlabeled images only.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
