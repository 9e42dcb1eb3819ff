"""What the README and docs/*.md show of suscli's output (error lines, closing lines, notes, table cells, in code
blocks and `spans`), against the messages in suscli's source: a message reworded in the code but not in the docs left a
user who searched the docs for the line they got with nothing, or with a line the tool no longer prints.

A message is an f-string: its words are the literal text between the placeholders. Each run of three or more plain
words in a quote (lowercase words, single spaces, no digits or punctuation between) must be words the code writes:
inside one literal text, or across placeholders, from the end of one literal text through the values filled in (a
whole literal text, or one other word: a name) to the start of another. docs/validation.md is a dated log, quoting
what earlier releases printed, and is left out; command lines are tests/test_docs_commands.py's. The report rows
they show name each model as score and rank name it, by its checkpoint's file name without the suffix."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator
from functools import cache, lru_cache
from pathlib import Path

from suscli.load.safe_read import checkpoint_suffix
from suscli.views.columns import display_columns
from tests.test_docs_commands import code_spans

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "validation.md")]
# Fenced blocks of code, not of output.
CODE_LANGUAGES = {"python", "py", "yaml", "yml", "toml", "json", "bash", "sh", "shell"}
COMMAND = re.compile(r"(?:\$\s|(?:\w+=\S*\s+)*(?:suscli|python[0-9.]*|torchrun|pip|bash|mkdir|apt-get|ln|cd|find|sed)\s)")
PYTHON = re.compile(r"^(?:def|from|import|lambda)\b|^\([^()]*\)$")  # a statement, a tuple
WORD = r"[a-z]+(?:'[a-z]+)*"  # model's, can't
RUN = re.compile(rf"(?<![\w./:-])(?<!\w'){WORD}(?: {WORD}){{2,}}(?![\w/:-]|'\w)")
PLACEHOLDER = "\x00"


@cache
def message_texts() -> tuple[str, frozenset[str], frozenset[str], frozenset[str]]:
    """The literal texts of suscli's strings (an f-string's text between its placeholders), joined; the word runs that
    begin one (it follows a placeholder), end one (a placeholder follows), and the texts that are plain words whole."""
    texts: list[str] = []
    for path in sorted(p for folder in ("suscli", "benchmarks", "scripts") for p in (ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                texts.extend(node.value.split(PLACEHOLDER))
            elif isinstance(node, ast.JoinedStr):
                joined = "".join(str(v.value) if isinstance(v, ast.Constant) else PLACEHOLDER for v in node.values)
                texts.extend(joined.split(PLACEHOLDER))
    texts = [" ".join(t.split()) for t in texts]
    begins: set[str] = set()
    ends: set[str] = set()
    whole: set[str] = set()
    for text in texts:
        words = re.split(r"[^A-Za-z' ]", text)  # the words before any other character, and after the last
        first, last = words[0].split(), words[-1].split()
        begins.update(" ".join(first[:k]) for k in range(1, len(first) + 1))
        ends.update(" ".join(last[-k:]) for k in range(1, len(last) + 1))
        if re.fullmatch(r"[a-z][a-z' ]*", text):
            whole.add(text)
    return "\x01".join(texts), frozenset(begins), frozenset(ends), frozenset(whole)


def written(run: str) -> bool:
    """Whether suscli's messages can write these words: within one literal text, or as the end of one, values filled
    in (whole literal texts, at most one other word) and the start of another."""
    joined, begins, ends, whole = message_texts()
    if run in joined:
        return True
    words = run.split(" ")

    @lru_cache(maxsize=None)
    def rest(i: int, named: bool) -> bool:
        """Whether words[i:] can follow a placeholder (or, at 0, start the run); `named`: one word was let pass."""
        if i == len(words):
            return True
        for j in range(i + 1, len(words) + 1):
            piece = " ".join(words[i:j])
            if i == 0 and j < len(words) and piece in ends and rest(j, named):
                return True
            if i > 0 and j == len(words) and piece in begins:
                return True
            if i > 0 and " " in piece and piece in whole and rest(j, named):
                return True
            if j == i + 1 and not named and rest(j, True):
                return True
        return False

    return rest(0, False)


def quotes(text: str) -> Iterator[tuple[int, str]]:
    """(line, text) of each line of an output block (fenced in no code language, or indented after a blank line
    that ends a paragraph which is no list item) and each inline code span, commands and Python left out."""
    lines = text.split("\n")
    fence, language, prose = None, "", []
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        opening = re.match(r"(`{3,}|~{3,})\s*(\w*)", stripped)
        if fence is None and opening:
            fence, language = opening.group(1), opening.group(2).lower()
        elif fence is not None:
            if stripped.startswith(fence):
                fence = None
            elif language not in CODE_LANGUAGES:
                yield number, stripped
        elif line.startswith("    ") and stripped and output_block(lines, number - 1):
            yield number, stripped
        else:
            prose.append((number, line))
    yield from code_spans(prose)


def output_block(lines: list[str], at: int) -> bool:
    """Whether the indented line `at` (0-based) is in a code block: its indented lines follow a blank line, and the
    paragraph before that is not a list item, whose indented lines go on the item."""
    start = at
    while start > 0 and lines[start - 1].startswith("    ") and lines[start - 1].strip():
        start -= 1
    if start == 0:
        return True
    if lines[start - 1].strip():
        return False
    end = start - 1
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    first = end - 1
    while first > 0 and lines[first - 1].strip():
        first -= 1
    return end == 0 or not (re.match(r"\s*(?:[-*+]|\d+\.)\s", lines[first]) or lines[end - 1].startswith(" "))


def unwritten(doc: Path) -> list[str]:
    """doc:line and the words of each quote of `doc` that suscli's messages do not write."""
    found = []
    for number, quote in quotes(doc.read_text(encoding="utf-8")):
        quote = " ".join(quote.split())
        if COMMAND.match(quote) or PYTHON.search(quote):
            continue
        found += [f"{doc.name}:{number}: {run!r} in {quote[:120]!r}" for run in RUN.findall(quote) if not written(run)]
    return found


def test_every_message_the_docs_quote_is_written_by_the_code() -> None:
    assert [line for doc in DOCS for line in unwritten(doc)] == []


def test_a_reworded_quote_is_found(tmp_path: Path) -> None:
    """The check itself: a word moved in a closing line rank.md quotes, a name where a message has another word."""
    shown = (ROOT / "docs" / "rank.md").read_text(encoding="utf-8")
    assert "of them it fits best the training labels the consensus confirms" in shown
    doc = tmp_path / "rank.md"
    doc.write_text(shown.replace("of them it fits best the training labels", "of them it fits the training labels best"))
    assert unwritten(doc) and all("fits the training labels best" in line for line in unwritten(doc))


# A report row as the docs show it: a table's body row (`│ NAME │ arch │ ...`, trimmed rows start with `... `), or a
# row written out on one line (`NAME | arch | train acc | ...`).
TABLE_ROW = re.compile(r"^(?:\.\.\. )?│ (\S+) +│")
ROW_LINE = re.compile(r"^(\S+) \| \S+ \| ")


def rows_named_as_files(doc: Path) -> list[str]:
    """doc:line and the name of each report row `doc` shows whose model is named by its checkpoint's whole file name:
    score and rank name a checkpoint without its suffix (`last` for `last.ckpt`), and keep it only where two files of
    a pool share a stem (`m.pt` beside `m.safetensors`), which no example of the docs holds."""
    found = []
    for number, quote in quotes(doc.read_text(encoding="utf-8")):
        if (match := TABLE_ROW.match(quote) or ROW_LINE.match(quote)) and checkpoint_suffix(match.group(1)):
            found.append(f"{doc.name}:{number}: {match.group(1)}")
    return found


def test_no_report_row_the_docs_show_names_a_model_by_its_file_name() -> None:
    """score named a checkpoint by its file name (`model_best.pth.tar`) until it named it as rank does (`model_best`):
    the sample tables copied from runs before that kept the old name, which no run prints any more."""
    assert [line for doc in DOCS for line in rows_named_as_files(doc)] == []


def test_a_row_named_by_its_file_name_is_found(tmp_path: Path) -> None:
    """The check itself, on a table row and a row written on one line, as checkpoints.md and score.md show them."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "Run it:\n\n    ... │ model_1.pth │ torchvision:resnet18 │ - │ 0.5575 ± 0.0704 │ unclear │\n\n"
        "prints `m.safetensors | suscli.models:bn_cnn | 64.4% | 0.0860 ± 0.0040 | low susceptibility`, and\n"
        "`m | suscli.models:bn_cnn | 64.4% | 0.0860 ± 0.0040 | low susceptibility` after.\n",
        encoding="utf-8",
    )
    assert rows_named_as_files(doc) == ["doc.md:3: model_1.pth", "doc.md:5: m.safetensors"]


# A report table's header as the docs show it: Rich's (`┃ model ┃ arch ┃ ...`) or Markdown's (`| model | arch | ...`).
HEADER = re.compile(r"^(?:\.\.\. )?([┃|]) model +\1")


@cache
def report_columns() -> tuple[str, ...]:
    """The columns a report table can have, in the order display_columns puts them."""
    source = ast.parse(inspect.getsource(display_columns))
    pairs = [n for n in ast.walk(source) if isinstance(n, ast.Tuple) and len(n.elts) == 2]
    return tuple(
        n.elts[0].value
        for n in sorted(pairs, key=lambda n: (n.lineno, n.col_offset))
        if isinstance(n.elts[0], ast.Constant) and isinstance(n.elts[0].value, str)
    )


def headers_not_printed(doc: Path) -> list[str]:
    """doc:line and the header of each report table `doc` shows whose columns are not, in that order, columns the
    report prints: a column renamed (`train acc`, `fits contradicted`) or moved in the code but not in the docs."""
    found = []
    for number, quote in quotes(doc.read_text(encoding="utf-8")):
        if match := HEADER.match(quote):
            shown = [cell.strip() for cell in quote.removeprefix("... ").strip(match.group(1)).split(match.group(1))]
            columns = iter(report_columns())
            if not all(name in columns for name in shown):  # a subsequence: each after the one before
                found.append(f"{doc.name}:{number}: {' | '.join(shown)}")
    return found


def test_every_report_header_the_docs_show_is_the_reports() -> None:
    """The word runs above skip a header's short names (`train acc`, `zeta`, `held-out acc`): a renamed or reordered
    column left every table the docs show with the old header."""
    assert {"model", "train acc", "susceptibility", "fits contradicted", "verdict"} <= set(report_columns())
    assert [line for doc in DOCS for line in headers_not_printed(doc)] == []


def test_a_renamed_or_moved_column_is_found(tmp_path: Path) -> None:
    """The check itself, on a Rich header with a renamed column and a Markdown one with two columns swapped."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "Run it:\n\n    ┃ model ┃ arch ┃ train accuracy ┃ susceptibility ┃ verdict ┃\n\n"
        "and:\n\n    | model | train acc | susceptibility | verdict |\n    | model | susceptibility | train acc | verdict |\n",
        encoding="utf-8",
    )
    assert headers_not_printed(doc) == [
        "doc.md:3: model | arch | train accuracy | susceptibility | verdict",
        "doc.md:8: model | susceptibility | train acc | verdict",
    ]
