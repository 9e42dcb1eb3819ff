"""`python -m suscli` and the `suscli` command. The command line (suscli.cli) is imported here, inside the
handler: importing it loads torch, which takes a second or two, and a Ctrl-C then must end in one line and
exit 130 like one during a run, not in a traceback of torch's import."""

import signal
import sys

from suscli.errors import terminated
from suscli.run.launch import world


def main() -> None:
    if world() is None:  # torchrun ends its workers with SIGTERM and handles that itself
        signal.signal(signal.SIGTERM, terminated)  # before the command line loads: a cancel then was killed silently, 143
    try:
        from suscli.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    run()


if __name__ == "__main__":
    try:
        main()
    finally:
        # CPython takes a KeyboardInterrupt that left code run by exec() (the methods dataclasses and pydantic generate,
        # while typer parses) for an unhandled one, even once suscli handled it, and ends a `python -m` run by SIGINT:
        # -2, not its exit code 130. Each exec() of a string clears that mark first; a console script's run ignores it.
        exec("")
