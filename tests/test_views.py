"""The text views of a report's rows, read back as their readers read them: Markdown rendered as GitHub renders a
step summary, each cell the text the table shows."""

from __future__ import annotations

import html.parser
import io
import math
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from suscli.cli.output import emit, step_summary
from suscli.judge import verdict
from suscli.results import Result
from suscli.run.report import Report
from suscli.views.columns import display_columns
from suscli.views.formats import Format, gate_lines, markdown_report, render, to_csv, to_markdown

# Names a manifest or a file system allows, each of which Markdown would read as markup or as a cell's end.
NAMES = ["a|b", "back\\|slash", "x<i>y</i>&amp;", "*bold* and `code`", "_under_ __init__ epoch_12", "[link](u) ~~s~~", "two\r\nlines\rhere"]


def github(markdown: str) -> str:
    """Markdown rendered as HTML with GitHub's tables and strikethrough."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


class Cells(html.parser.HTMLParser):
    """The text of each cell of a page's table, row by row, and of each paragraph."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.paragraphs: list[str] = []
        self.inside: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
            self.inside = self.rows[-1]
        elif tag == "p":
            self.paragraphs.append("")
            self.inside = self.paragraphs

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th", "p"):
            self.inside = None

    def handle_data(self, data: str) -> None:
        if self.inside is not None:
            self.inside[-1] += data


def test_markdown_shows_every_cell_as_the_table_does() -> None:
    rows = [
        Result(name, f"/p/{i}.pt", arch="cnn|<b>", susceptibility=0.1, train_acc=0.9, region=1, verdict="unclear", notes=[name])
        for i, name in enumerate(NAMES)
    ]
    rows.append(Result("broken|<e>", "/p/e.pt", status="error", error="not a checkpoint: <bad> | see\nabove"))
    page = Cells()
    page.feed(github(to_markdown(rows)))
    columns = display_columns(rows)
    assert page.rows[0] == [name for name, _ in columns]
    one_line = [[" ".join(value.splitlines()) for value in values] for _, values in columns]
    assert page.rows[1:] == [list(row) for row in zip(*one_line)]


def test_the_step_summary_shows_the_closing_lines_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [Result(name, f"/p/{i}.pt", train_acc=0.9, susceptibility=0.5, region=2) for i, name in enumerate(NAMES)]
    lines = [f"ship {NAMES[2]}: it predicts the consensus", f"no confident choice: {', '.join(NAMES)}"]
    failures = [f"{len(NAMES)} models likely memorized noise: {', '.join(NAMES)}"]
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    step_summary(Report("rank", rows, {}, lines=lines, failures=failures))
    page = Cells()
    page.feed(github(summary.read_text()))
    assert page.paragraphs == [" ".join(line.splitlines()) for line in [*lines, *(f"gate failed: {f}" for f in failures)]]


@pytest.mark.parametrize("command", ["rank", "track"])
def test_the_markdown_report_carries_the_closing_lines_as_the_step_summary_does(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-f markdown` held the table alone: pasted into a pull request, it left out the model to ship and the gates."""
    rows = [Result(name, f"/p/{i}.pt", train_acc=0.9, susceptibility=0.5, region=2) for i, name in enumerate(NAMES)]
    rows.append(Result("broken", "/p/b.pt", status="error", error="bad file"))
    lines = [f"ship {NAMES[2]}: it predicts the consensus", "label noise: the share of wrong labels is in 0.0-40.0%"]
    report = Report(command, rows, {}, lines=lines, failures=["1 model likely memorized noise"])
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    step_summary(report)
    text = render(report, Format.markdown)
    assert summary.read_text() == text + "\n"
    page = Cells()
    page.feed(github(text))
    unit = "epoch" if command == "track" else "model"
    ends = [f"error: 1 {unit} could not be scored (see its row)", "gate failed: 1 model likely memorized noise"]
    assert page.paragraphs == [" ".join(line.splitlines()) for line in [*lines, *ends]]


@pytest.mark.parametrize("command", ["rank", "track"])
def test_the_line_of_one_checkpoint_that_could_not_be_scored_points_to_its_row(command: str) -> None:
    """A pool or run with one broken checkpoint ended "error: 1 epoch could not be scored (see their rows)", where
    every count suscli prints agrees with its number; two with different errors still point to their rows."""
    unit = "epoch" if command == "track" else "model"
    ok = Result("good", "/p/g.pt", train_acc=0.9, susceptibility=0.1)
    one = Report(command, [ok, Result("b", "/p/b.pt", status="error", error="bad")], {})
    assert gate_lines(one) == [f"error: 1 {unit} could not be scored (see its row)"]
    two = Report(command, [ok, *(Result(n, f"/p/{n}.pt", status="error", error=f"bad {n}") for n in "bc")], {})
    assert gate_lines(two) == [f"error: 2 {unit}s could not be scored (see their rows)"]


@pytest.mark.parametrize("extra", ["", "car\rriage"])
def test_csv_reads_back_every_name_and_number(extra: str) -> None:
    names = [*NAMES, "q\"uote's, comma", "ünï 模型 " + "L" * 300, *([extra] if extra else [])]
    rows = [
        Result(name, f"/p/{name}.pt", train_acc=0.25 * (i % 4), susceptibility=None if i % 2 else 0.5, region=1 + i % 4)
        for i, name in enumerate(names)
    ]
    rows.append(Result("broken", "/p/b.pt", status="error", error='bad\r\nfile, see "above"'))
    frame = pd.read_csv(io.StringIO(to_csv(rows)), keep_default_na=False, na_values=[""])
    assert list(frame["name"]) == [r.name for r in rows] and list(frame["path"]) == [r.path for r in rows]
    assert frame["error"].iloc[-1] == rows[-1].error and frame["region"].iloc[:-1].tolist() == [r.region for r in rows[:-1]]
    assert frame["train_acc"].iloc[:-1].tolist() == [r.train_acc for r in rows[:-1]]
    assert frame["susceptibility"].isna().tolist() == [r.susceptibility is None for r in rows]


def test_a_standard_error_over_one_batch_is_shown_as_none_in_every_view() -> None:
    """`score --batches 1` measures no standard error (nan): the table showed '± -', the HTML page '± nan' with a
    95% interval [nan, nan], and JUnit '± nan'."""
    row = Result("m", "/p/m.pt", susceptibility=0.8569, susceptibility_sem=math.nan, train_acc=1.0, verdict="susceptible")
    report = Report("score", [row], {"gate": {}}, lines=["verdict: susceptible"])
    for fmt in (Format.table, Format.markdown, Format.junit, Format.html):
        text = render(report, fmt)
        assert "0.8569" in text and not re.search(r"\bnan\b|± -", text), fmt


def test_a_run_with_a_broken_model_still_says_which_gate_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 3 wins over 1, but the step summary and stderr name the flagged models too, as JUnit and the HTML page do."""
    rows = [
        Result("flagged", "/p/f.pt", train_acc=1.0, susceptibility=1.0, region=2),
        Result("broken", "/p/b.pt", status="error", error="bad"),
    ]
    report = Report("rank", rows, {}, failures=["1 model likely memorized noise: flagged"])
    assert gate_lines(report) == [
        "error: 1 model could not be scored (see its row)",
        "gate failed: 1 model likely memorized noise: flagged",
    ]
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    step_summary(report)
    assert summary.read_text().rstrip().endswith("gate failed: 1 model likely memorized noise: flagged")


def test_the_table_shows_names_and_notes_holding_brackets_as_they_are() -> None:
    """The terminal table read `[...]` in a cell as Rich markup: `ckpt[epoch=3]` and `model[best]` were shown as `ckpt`
    and `model` while the closing line named them in full, and an error naming `runs/x[/y]/m.pt` (a closing tag
    matching no open one) ended the run in a MarkupError."""
    names = ["ckpt[epoch=3]", "model[best]", "[bold]m", "x[link=http://e.com]y"]
    rows = [Result(name, f"/p/{i}.pt", susceptibility=0.1, train_acc=0.9, notes=[f"see [red]{i}"]) for i, name in enumerate(names)]
    rows.append(Result("broken", "runs/x[/y]/m.pt", status="error", error="runs/x[/y]/m.pt: not a readable safetensors file"))
    table = render(Report("rank", rows, {}), Format.table)
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in table.splitlines() if line.startswith("│")]
    assert [row[0] for row in cells] == [*names, "broken"]
    assert [row[-1] for row in cells] == [*(f"see [red]{i}" for i in range(len(names))), rows[-1].error]


def test_the_table_writes_control_characters_in_a_name_as_escapes() -> None:
    """A file name holding a terminal's control sequence (ESC [2J clears the screen, ESC ]0; sets the window title) was
    written to the terminal as it was, so listing a pool ran it; the table now shows it as text."""
    rows = [
        Result("a\x1b[2Jb", "/p/a.pt", susceptibility=0.1, notes=["n\x9bo\x7f"]),
        Result("c", "/p/c\x1b]0;x\x07.pt", status="error", error="/p/c\x1b]0;x\x07.pt: not a readable file"),
    ]
    table = render(Report("rank", rows, {}), Format.table)
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", table)
    cells = [[cell.strip() for cell in line.split("│")[1:-1]] for line in table.splitlines() if line.startswith("│")]
    assert cells[0][0] == "a\\x1b[2Jb" and cells[0][-1] == "n\\x9bo\\x7f" and cells[1][-1] == "/p/c\\x1b]0;x\\x07.pt: not a readable file"


def test_messages_on_stderr_write_control_characters_in_a_name_as_escapes(capsys: pytest.CaptureFixture[str]) -> None:
    """The closing lines and the error line name models and files: a name holding ESC [2J reached the terminal as it
    was, as in the table, and cleared the screen of whoever ran the audit."""
    from suscli.cli.console import say, say_error
    from suscli.errors import InputError

    say("ship a\x1b[2Jb: it predicts the consensus")
    say_error(InputError("p/c\x1b]0;x\x07.pt: not a readable safetensors file"))
    err = capsys.readouterr().err
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", err)
    assert err.splitlines() == [
        "ship a\\x1b[2Jb: it predicts the consensus",
        "error: p/c\\x1b]0;x\\x07.pt: not a readable safetensors file",
    ]


def pool_rows(held_out: bool, broken: bool) -> list[Result]:
    """A ranked pool as rank reports it: the demo's names and a CIFAR pool's longer ones, every verdict's words."""
    pool = [
        ("bn_cnn-w32-lr0.1-wd0-e40-noaug", "suscli.models:bn_cnn", 1.0, 0.7913, 0.719, 1.0, 2, verdict.MEMORIZED),
        ("cnn-bn-w16-wd5e-4-e12", "suscli.models:bn_cnn", 0.645, 0.0971, 0.877, 0.041, 1, verdict.RESISTS),
        ("resnet-w8-wd5e-4-e10", "suscli.models:resnet", 0.655, 0.0967, 0.836, 0.087, 1, verdict.FITS_CLEAN),
        ("cnn-w16-nowd-e3", "suscli.models:plain_cnn", 0.124, 0.0007, 0.094, 0.14, 3, verdict.UNDERFIT),
        ("mlp-w128-wd5e-4-e3", "suscli.models:mlp", 0.146, 0.0382, 0.088, 0.157, 4, verdict.UNDERFIT_SUSCEPTIBLE),
    ]
    rows = [
        Result(name, f"/p/{name}.safetensors", arch=arch, train_acc=fit, susceptibility=s, susceptibility_sem=s / 20,
               agreement=agree, fits_contradicted=fits, region=region, verdict=said)
        for name, arch, fit, s, agree, fits, region, said in pool
    ]  # fmt: skip
    if held_out:
        for r in rows:
            r.train_acc_low, r.train_acc_high, r.train_n = r.train_acc - 0.02, min(1.0, r.train_acc + 0.02), 4000
            r.val_acc, r.val_acc_low, r.val_acc_high, r.val_n = 0.6, 0.57, 0.63, 1000
            r.gap, r.gap_low, r.gap_high = r.train_acc - 0.6, r.train_acc - 0.64, r.train_acc - 0.56
    if broken:
        path = "/data/runs/bn_cnn-w64-lr0.1-wd0-e40-noaug/last.safetensors"
        rows.append(Result("bn_cnn-w64-lr0.1-wd0-e40-noaug", path, status="error", error=f"{path}: not a readable safetensors file"))
    return rows


def on_terminal(report: Report, width: int, monkeypatch: pytest.MonkeyPatch) -> str:
    """What `emit` shows on a terminal `width` columns wide, its colours and styles left out."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    shown = Terminal()
    monkeypatch.setattr(sys, "stdout", shown)
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setenv("NO_COLOR", "1")
    emit(report, Format.table, None)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.getvalue())


def read_column(lines: list[str], values: list[str]) -> None:
    """A column's lines, top to bottom, hold its values in order, each whole, and every line ends at the end of a word
    or after a '-', '_', ':', '/' or '.' inside a name, never within a word ('susceptibi|lity', 'cnn-bn-w16|-wd5e')."""
    shown = iter(line.strip() for line in lines if line.strip())
    for value in values:
        at = 0
        while at < len(value):
            line = next(shown, "")
            assert line and value.startswith(line, at), f"{value!r} is not shown whole: {line!r} at {at}"
            at += len(line)
            assert at == len(value) or value[at] == " " or value[at - 1] in "-_:/.", f"{value!r} is split after {line!r}"
            at = len(value) - len(value[at:].lstrip(" "))
    assert next(shown, None) is None


@pytest.mark.parametrize("width", [80, 100, 120])
@pytest.mark.parametrize("held_out, broken", [(False, False), (True, True)])
def test_a_narrow_terminal_shows_every_header_verdict_and_name_whole(
    width: int, held_out: bool, broken: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 100 columns the table folded its headers and names mid-word ('susceptibi/lity', 'contradicte/d',
    'suscli.mod/els:bn_cnn', 'cnn-bn-w16/-wd5e-4-e1/2'). Now the columns that matter least are left out where the
    rest would not fit, a line under the table names them and where to see them, headers wrap between words and
    names after their '-' and '_', and no line is wider than the terminal."""
    rows = pool_rows(held_out, broken)
    report = Report("rank", rows, {})
    text = on_terminal(report, width, monkeypatch).splitlines()
    assert max(len(line) for line in text) <= width
    top, head_end, bottom = (next(i for i, line in enumerate(text) if line.startswith(c)) for c in "┏┡└")
    header = [line.split("┃")[1:-1] for line in text[top + 1 : head_end]]
    body = [line.split("│")[1:-1] for line in text[head_end + 1 : bottom]]
    names = [" ".join(" ".join(part[j] for part in header).split()) for j in range(len(header[0]))]
    columns = dict(display_columns(rows))
    left_out = [name for name in columns if name not in names]
    assert [name for name in columns if name in names] == names and {"model", "train acc", "susceptibility", "verdict"} <= set(names)
    for j, name in enumerate(names):
        read_column([part[j] for part in header], [name])
        read_column([part[j] for part in body], columns[name])
    under = " ".join(" ".join(text[bottom + 1 :]).split())
    if left_out:
        assert all(name in under for name in left_out) and "-f csv" in under, under
    else:
        assert not under


def test_a_file_or_pipe_gets_every_column_of_the_table() -> None:
    """Only a terminal's table leaves columns out: stdout piped or redirected (a CI log) and --output keep them all,
    and a table wider than their 200 characters wraps its names after a '-' or '/', not mid-word ('wd5e-4/-e12')."""
    rows = pool_rows(held_out=True, broken=True)
    columns = display_columns(rows)
    text = render(Report("rank", rows, {}), Format.table).splitlines()
    head_end, bottom = (next(i for i, line in enumerate(text) if line.startswith(c)) for c in "┡└")
    header = [line.split("┃")[1:-1] for line in text[1:head_end] if "┃" in line]
    assert [" ".join(" ".join(part[j] for part in header).split()) for j in range(len(columns))] == [name for name, _ in columns]
    assert text[bottom + 1 :] == []
    for j, (_, values) in enumerate(columns):
        read_column([line.split("│")[1:-1][j] for line in text[head_end + 1 : bottom]], values)


def test_a_step_summary_of_a_large_sweep_stays_under_githubs_limit_and_keeps_the_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub drops a step summary over 1 MiB whole ("upload aborted, supports content up to a size of 1024k"): a
    sweep of 3,000 checkpoints appended 1.1 MB, so the job showed neither the model to ship nor the failed gate."""
    notes = [
        "left out 3 values of the state dict that are no tensors, records beside the weights: 'epoch', 'global_step', 'lr'",
        "--ema: Lightning checkpoint holds no EMA weights; its plain weights were used",
    ]
    rows = [
        Result(
            f"sweeps/cifar10n-worse/resnet18_lr0.05_wd5e-4_bs128_seed{i % 5}_mixup0.2/epoch_{i:04d}.ckpt",
            f"/p/{i}.ckpt",
            arch="torchvision:resnet18",
            **dict(train_acc=0.9, train_acc_low=0.88, train_acc_high=0.92, train_n=4000, susceptibility=0.5, susceptibility_sem=0.02),
            **dict(agreement=0.8, fits_contradicted=0.4, region=1 + i % 4, verdict=verdict.UNCLEAR, notes=notes),
        )
        for i in range(3000)
    ]
    rows[2500] = Result("broken-late", "/p/b.pt", status="error", error="/p/b.pt: not a readable safetensors file")
    rows[2700].verdict = verdict.MEMORIZED
    lines = [f"ship {rows[0].name}: the highest training accuracy", "label noise: 38.2% [36.7, 39.8]"]
    report = Report("rank", rows, {}, lines=lines, failures=[f"1 model likely memorized noise: {rows[2700].name}"])
    assert len(render(report, Format.markdown).encode()) > 1024**2  # the full report would be dropped
    summary = tmp_path / "summary.md"
    summary.write_text("earlier output of this step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    step_summary(report)
    assert summary.stat().st_size <= 1024**2
    page = Cells()
    page.feed(github(summary.read_text().split("\n", 1)[1]))
    shown = [row[0] for row in page.rows[1:]]
    assert shown[0] == rows[0].name and "broken-late" in shown and rows[2700].name in shown
    assert shown == [r.name for r in rows if r.name in set(shown)]  # in the report's order
    assert page.paragraphs[0].startswith(f"{len(shown):,} of the 3,000 rows shown") and "--output" in page.paragraphs[0]
    ends = ["error: 1 model could not be scored (see its row)", f"gate failed: {report.failures[0]}"]
    assert page.paragraphs[1:] == [*lines, *ends]


def test_a_markdown_report_cut_to_a_comments_size_keeps_its_lines_and_cuts_one_naming_thousands() -> None:
    """markdown_report(report, limit): a comment-sized report of a sweep whose closing and gate lines each name 3,000
    flagged models: each is cut, neither lost."""
    rows = [
        Result(f"sweep/run_{i:04d}/last.ckpt", f"/p/{i}", train_acc=1.0, susceptibility=0.9, region=2, verdict=verdict.MEMORIZED)
        for i in range(3000)
    ]
    failures = [f"3000 models likely memorized noise: {', '.join(r.name for r in rows)}"]
    lines = [f"no model in region 1; 3000 flagged as likely memorized noise: {', '.join(r.name for r in rows)}"]
    text = markdown_report(Report("rank", rows, {}, lines=lines, failures=failures), 65536)
    assert len(text.encode()) <= 65536
    page = Cells()
    page.feed(github(text))
    assert page.paragraphs[0].startswith(f"{len(page.rows) - 1:,} of the 3,000 rows shown") and 0 < len(page.rows) - 1 < 3000
    assert page.paragraphs[1].startswith("no model in region 1; 3000 flagged") and page.paragraphs[1].endswith("…")
    assert page.paragraphs[2].startswith("gate failed: 3000 models") and page.paragraphs[2].endswith("…")
    assert len(page.paragraphs) == 3
