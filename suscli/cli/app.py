"""The Typer application the commands register with: its command group, which carries an interrupt past the parser, and
its one option of its own, --version."""

import platform
from importlib import metadata
from typing import Any

import typer
from typer.core import TyperGroup

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 gate failed, 2 usage error, 3 an input could not be loaded or run, 130 interrupted (what was measured is kept)."
)


class CarriedInterrupt(Exception):
    """A KeyboardInterrupt (Ctrl-C, or SIGTERM through suscli.errors.terminated) that came outside a command's own
    handler, carried past the parser as another exception: not a KeyboardInterrupt, which the parser would catch."""


def click_class(name: str) -> type[Exception]:
    """An error class of the click typer parses with, by name: typer bundles its own copy of click in some versions
    and uses click itself in others, so `click.UsageError` may not be the class it raises."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


_USAGE_ERROR = click_class("UsageError")  # the parser's usage errors, some raised without their command's context


class Commands(TyperGroup):
    """The command group, whose parsing and invoking let no KeyboardInterrupt reach typer's main loop: typer (0.15 to
    0.29 at least) turns one into exit code 130 returned without a word, and a CI job cancelled while its command line
    was parsed, or a Ctrl-C then, ended silent. suscli.cli.main says "interrupted" for it instead.

    It also gives the parser's usage errors raised without their context ("Option '--format' requires an argument.",
    "Option '--version' does not take a value.") the command they came from, whose --help the error line names."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt as e:
            raise CarriedInterrupt from e

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except _USAGE_ERROR as e:
            if getattr(e, "ctx", None) is None:
                e.ctx = ctx  # type: ignore[attr-defined]
            raise

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:
            raise CarriedInterrupt from e
        except _USAGE_ERROR as e:
            name = ctx.invoked_subcommand
            if getattr(e, "ctx", None) is None and name is not None:
                # the command's own context was never returned to the group: one naming it, parsing nothing
                e.ctx = type(ctx)(self.get_command(ctx, name), info_name=name, parent=ctx)  # type: ignore[attr-defined]
            raise


app = typer.Typer(
    cls=Commands,
    help="Audit trained image classifiers for memorized label noise, with unlabeled images only.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def version_line() -> str:
    """suscli's version and those of what its numbers depend on, read from the installed packages' metadata so that
    --version imports no torch."""

    def of(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return f"suscli {of('suscli')} (torch {of('torch')}, torchvision {of('torchvision')}, Python {platform.python_version()})"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the versions of suscli, torch, torchvision and Python, and exit.",
    ),
) -> None:
    """The options before the command."""
