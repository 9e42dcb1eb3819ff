"""Where a command's report and its other outputs go: stdout or --output, the extra reports (--html, --junit), the
suspects CSV, the plot and GitHub's step summary. Every folder is checked before measuring, not after."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

import typer
from rich.console import Console

from suscli.cli.console import say, say_error
from suscli.data.imagesets import METADATA_FILES
from suscli.data.tables import COMPRESSIONS, ONE_HOT_FILE
from suscli.data.walk import IMAGE_SUFFIXES
from suscli.files import REPORT_ERRORS, printable, require_folder, same_file, write_atomic
from suscli.errors import ExitCode, InputError, Interrupted, UsageError, plural
from suscli.load.safe_read import checkpoint_suffix
from suscli.run.report import Report
from suscli.views.formats import Format, markdown_report, render, suspects_csv, to_table


# `-o -`: the report on stdout, as `-` names stdout to most tools that take an output file (it wrote a file named `-`)
STDOUT = Path("-")

# What GitHub Actions keeps of one step's $GITHUB_STEP_SUMMARY: over it, the whole summary is dropped
SUMMARY_LIMIT = 1024 * 1024


def check_destinations(
    *outputs: tuple[Path | None, str, str], results: Path | None = None, inputs: Sequence[Path | None] = (), models: Path | None = None
) -> None:
    """Each (path, what, option) given has a folder to be written in, and a file of its own: two outputs on one path
    would leave only the one written last, each said to be written, an output on the results file would replace
    every result it holds, and one on an input file (the checkpoint, a label file) the input itself. One file is
    one under every name that reaches it (files.same_file), on a case-insensitive file system too. `-` is stdout,
    which only --output may name: stdout carries the report, and a second output there would corrupt it; --results
    cannot name it either. An input folder guards the files it is read for (read_for): the folder of `models` (a
    pool, a run, a checkpoint folder; a manifest's or a checkpoint file's own) its checkpoints, an image set its
    images and label files; `-o POOL/m.safetensors` replaced a checkpoint of the pool. A report of its own there is
    written as anywhere else."""
    if results == STDOUT:  # a store the next run reads back, which stdout cannot be: it wrote a file named `-`
        raise UsageError("--results -: the results file is read back by the next run, which stdout cannot be", fix="give --results a file")
    taken: list[tuple[Path, str]] = [] if results is None else [(results, f"the results file {printable(results)}")]
    taken += [(given, f"the input {printable(given)}") for given in (*inputs, models) if given is not None and given.is_file()]
    # (folder, whether it holds models, what an output on a file it is read for is called)
    folders = [
        (given, False, f"an image or label file under the input {printable(given)}")
        for given in inputs
        if given is not None and given.is_dir()
    ]
    if models is not None and models.is_dir():
        folders.append((models, True, f"a checkpoint file under the input {printable(models)}"))
    elif models is not None and models.is_file():  # a manifest's or a checkpoint file's folder: where its models lie
        folders.append((models.parent, True, f"a checkpoint file beside the input {printable(models)}"))
    for path, what, option in outputs:
        if path is None or (path == STDOUT and option == "--output"):
            continue
        if path == STDOUT:
            raise UsageError(f"{option} -: stdout carries the report (-o -)", fix=f"give {option} a file")
        require_folder(path, what, option)
        other = next((name for seen, name in taken if same_file(path, seen)), None)
        if other is not None:
            raise UsageError(f"{option} {printable(path)} is the same file as {other}", fix=f"give {option} a file of its own")
        kind = next((kind for folder, holds_models, kind in folders if read_for(path, folder, holds_models)), None)
        if kind is not None:
            raise UsageError(f"{option} {printable(path)} is {kind}", fix=f"give {option} a file of its own")
        taken.append((path, option))


def read_for(path: Path, folder: Path, models: bool) -> bool:
    """Whether `path` is a file in or under `folder` that reading it may read: of a folder of `models`, a checkpoint
    or its sidecar; of an image set, an image or a label file (metadata.csv, _classes.csv, compressed too). Other
    files there (a report written before, a plot beside the checkpoints) are not."""
    if not path.is_file() or not path.resolve().is_relative_to(folder.resolve()):
        return False
    name = path.name.lower()
    if models:
        return checkpoint_suffix(name) is not None or name.endswith(".suscli.json")
    bare = next((name[: -len(ext)] for ext in COMPRESSIONS if name.endswith(ext)), name)
    return path.suffix.lower() in IMAGE_SUFFIXES or bare in (*METADATA_FILES, ONE_HOT_FILE)


def emit(report: Report, fmt: Format, output: Path | None, per_image: bool = False) -> ExitCode:
    """Write the report atomically to --output, or to stdout: the same text either way (views.render). Only a
    table shown on a terminal is drawn differently, in colour and at the terminal's width, the columns that matter
    least left out where the others would not fit whole (views.widths).

    Returns the exit code the report's own writing leaves: a stdout that cannot take it (a full disk) is said in its
    error line at once and returned, not raised, so that the command still writes --junit, --html, the plot, the
    suspects and the step summary, says its closing lines and gates, and only then exits with it (exit_code): a CI
    job whose log could not be written kept none of them."""
    if output in (None, STDOUT) and fmt == Format.table and sys.stdout is not None and sys.stdout.isatty():  # None: `>&-`
        console = Console()
        with console.capture() as drawn:  # then written in the terminal's encoding: '±' failed an ASCII one's, exit 3
            console.print(to_table(report.rows, report.title, console.width, leave_out=True))
        text, terminal = drawn.get(), True
    else:
        text, terminal = render(report, fmt, per_image), False
    if output is not None and output != STDOUT:
        return kept_going(partial(_write, output, text, "report", "--output"))
    try:
        to_stdout(text, terminal)
    except InputError as e:
        say_error(e)
        return e.code
    return ExitCode.OK


def kept_going(write: Callable[[], object]) -> ExitCode:
    """One output's `write`. Where it fails (a disk that filled during the run, a quota: what no check before
    measuring can see), its error line is said and its code returned, so that the outputs after it, the closing
    lines and the gates are still written and said, as after a stdout that cannot take the report. The first output
    that failed ended the run: a full disk under --html lost the JUnit report a CI job reads, and the gate's line."""
    try:
        write()
    except InputError as e:
        say_error(e)
        return e.code
    return ExitCode.OK


def _write(path: Path, text: str, what: str, option: str) -> None:
    write_atomic(path, text, option)
    say(f"{what} written to {path}")


def exit_code(*codes: ExitCode) -> None:
    """End the command with the gravest of its codes: 3 (an input, or stdout, failed) over 1 (a gate), over 0."""
    code = max(codes)
    if code != ExitCode.OK:
        raise typer.Exit(int(code))


def to_stdout(text: str, terminal: bool = False) -> None:
    """The report on stdout. A reader that stopped early (`suscli rank ... | head`) took what it wanted: the run goes
    on to its other reports, closing lines and exit code, which the parser's own handling of a closed pipe dropped for
    a silent exit 1, read by CI as a failed gate. A stdout that cannot take the report (a full disk) is an error.
    The report is UTF-8 bytes, as --output writes it and as the JUnit and HTML reports declare themselves, whatever
    the locale: a non-UTF-8 one failed on the table's lines and wrote a JUnit file no XML parser reads. Only the
    table drawn for a `terminal` is in the terminal's encoding, what it cannot show written as an escape (\\xb1),
    as stderr writes it: under LC_ALL=C the table's '±' was an internal error."""
    if sys.stdout is None:  # started with stdout closed (`>&-`): no reader at all, as after a closed pipe
        return
    try:
        if terminal:
            encoding = sys.stdout.encoding or "utf-8"
            sys.stdout.write(text.encode(encoding, REPORT_ERRORS).decode(encoding))
            sys.stdout.flush()
        else:
            sys.stdout.flush()  # what was written as text before goes first
            sys.stdout.buffer.write(text.encode("utf-8", REPORT_ERRORS))
            sys.stdout.buffer.flush()
    except BrokenPipeError:
        _discard_stdout()
    except OSError as e:
        _discard_stdout()
        raise InputError(f"cannot write the report to stdout: {e.strerror or e}", fix="write it to a file with --output") from None


def _discard_stdout() -> None:
    """Point stdout at the null device, so that what is left in its buffer fails no later write or the exit's flush."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, sys.stdout.fileno())
    os.close(null)


@contextlib.contextmanager
def writing(report: Report) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) while the reports, plot and summary are written, after the measuring: the line says what
    the results file kept, as it does while measuring, not a bare 'interrupted'."""
    try:
        yield
    except Interrupted:
        raise
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while writing the outputs{report.kept}") from None


def also(report: Report, html: Path | None, junit: Path | None) -> ExitCode:
    """--html and --junit: the same report in those formats, beside the main one; the graver code of the two (kept_going)."""
    codes = [ExitCode.OK]
    for path, view, option in ((html, Format.html, "--html"), (junit, Format.junit, "--junit")):
        if path is not None:
            codes.append(kept_going(partial(_write, path, render(report, view), f"{view.value} report", option)))
    return max(codes)


def write_plot(path: Path, report: Report, draw: Callable[[Path], object], unit: str = "model") -> ExitCode:
    """--plot, drawn by `draw`. Where no {unit} could be scored there is nothing to draw: said, and the run goes on to
    its step summary and ends on exit 3 with the rows' reasons, which the plot's usage error (exit 2) had cut off.
    A plot that cannot be written is said, and the run goes on (kept_going)."""
    if not any(r.ok for r in report.rows):
        say(f"no plot written to {path}: no {unit} could be scored")
        return ExitCode.OK

    def drawn() -> None:
        draw(path)
        say(f"plot written to {path}")

    return kept_going(drawn)


def step_summary(report: Report) -> None:
    """GitHub Actions shows what a step appends to $GITHUB_STEP_SUMMARY: the Markdown report (the table, the closing
    lines and how the run ended); a failure here must not fail the audit. GitHub drops a step's summary over 1 MiB
    whole, with what the step wrote before: a large sweep's table is shortened to fit (markdown_report's `limit`)."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8", errors=REPORT_ERRORS) as f:
            f.write(markdown_report(report, max(0, SUMMARY_LIMIT - f.tell() - 1)) + "\n")
    except OSError as e:
        say(f"warning: cannot append to GITHUB_STEP_SUMMARY {path}: {e.strerror}")


def write_suspects(path: Path, report: Report) -> None:
    """--suspects: the contradicted training labels as CSV, or one line saying why there are none to write. Where the
    pool shows no evidence that they are wrong labels (LabelCheck's doubt), the line says so: they are still written,
    surest first, since a user may want to look, but not called suspect."""
    check = report.choice.labels if report.choice else None
    if check is None:
        if failed := sum(not r.ok for r in report.rows):  # the pool given was large enough: the run ends on exit 3, as --plot's
            say(
                f"no suspects written to {path}: {failed} of the {len(report.rows)} models could not be scored, and the "
                "consensus needs 2+ models measured with --train-data"
            )
            return
        raise UsageError("--suspects needs --train-data and 2+ models measured with it (their training predictions)")
    paths = report.training_paths
    if len(paths) != len(check.labels):
        raise InputError(
            f"{len(check.labels)} training images were predicted but {len(paths)} are listed "
            "(unreadable ones were skipped), so the suspects cannot be matched to files",
            fix="fix or remove the unreadable training images, then rerun with --fresh",
        )
    write_atomic(path, suspects_csv(check, paths, report.class_names))
    count = int(check.contradicted.sum())
    from suscli.run.label_ids import numbering_clause  # here: it loads torch, which --help needs not

    numbering = numbering_clause([r.notes for r in report.rows])  # the list's class ids rest on it
    if check.estimate.declined:  # on clean labels the list is the voters' own errors: say so rather than call them suspect
        say(
            f"{count} {plural(count, 'label')} the consensus contradicts written to {path}, surest first; not evidence of wrong labels "
            f"in this pool: {check.estimate.declined}{numbering}"
        )
    else:
        say(f"{count} suspect {plural(count, 'label')} written to {path}{numbering}")
