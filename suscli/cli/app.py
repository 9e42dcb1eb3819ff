"""The Typer application the commands register with."""

import typer

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 gate failed, 2 usage error, 3 an input could not be loaded or run, 130 interrupted (what was measured is kept)."
)

app = typer.Typer(
    help="Audit trained image classifiers for memorized label noise, with unlabeled images only.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
