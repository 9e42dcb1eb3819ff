"""The text views of a report's rows, read back as their readers read them: Markdown rendered as GitHub renders a
step summary, each cell the text the table shows."""

from __future__ import annotations

import html.parser
import io
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from suscli.cli.output import step_summary
from suscli.results import Result
from suscli.run.report import Report
from suscli.views.columns import display_columns
from suscli.views.formats import Format, gate_lines, render, to_csv, to_markdown

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
    failures = [f"{len(NAMES)} model(s) likely memorized noise: {', '.join(NAMES)}"]
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
    report = Report(command, rows, {}, lines=lines, failures=["1 model(s) likely memorized noise"])
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    step_summary(report)
    text = render(report, Format.markdown)
    assert summary.read_text() == text + "\n"
    page = Cells()
    page.feed(github(text))
    unit = "epoch" if command == "track" else "model"
    ends = [f"error: 1 {unit}(s) could not be scored (see their rows)", "gate failed: 1 model(s) likely memorized noise"]
    assert page.paragraphs == [" ".join(line.splitlines()) for line in [*lines, *ends]]


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
    report = Report("rank", rows, {}, failures=["1 model(s) likely memorized noise: flagged"])
    assert gate_lines(report) == [
        "error: 1 model(s) could not be scored (see their rows)",
        "gate failed: 1 model(s) likely memorized noise: flagged",
    ]
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    step_summary(report)
    assert summary.read_text().rstrip().endswith("gate failed: 1 model(s) likely memorized noise: flagged")


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
