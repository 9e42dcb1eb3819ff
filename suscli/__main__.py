"""`python -m suscli` and the `suscli` command. The command line (suscli.cli) is imported here, inside the
handler: importing it loads torch, which takes a second or two, and a Ctrl-C then must end in one line and
exit 130 like one during a run, not in a traceback of torch's import."""

import sys


def main() -> None:
    try:
        from suscli.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
