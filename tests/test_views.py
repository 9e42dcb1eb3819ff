"""The text views of a report's rows, read back as their readers read them: Markdown rendered as GitHub renders a
step summary, each cell the text the table shows."""

from __future__ import annotations

import html.parser

from markdown_it import MarkdownIt

from suscli.results import Result
from suscli.views.columns import display_columns
from suscli.views.formats import to_markdown

# Names a manifest or a file system allows, each of which Markdown would read as markup or as a cell's end.
NAMES = ["a|b", "back\\|slash", "x<i>y</i>&amp;", "*bold* and `code`", "_under_ __init__ epoch_12", "[link](u) ~~s~~", "two\r\nlines\rhere"]


class Cells(html.parser.HTMLParser):
    """The text of each cell of a page's table, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.inside = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.inside = True
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.rows[-1][-1] += data


def test_markdown_shows_every_cell_as_the_table_does() -> None:
    rows = [
        Result(name, f"/p/{i}.pt", arch="cnn|<b>", susceptibility=0.1, train_acc=0.9, region=1, verdict="unclear", notes=[name])
        for i, name in enumerate(NAMES)
    ]
    rows.append(Result("broken|<e>", "/p/e.pt", status="error", error="not a checkpoint: <bad> | see\nabove"))
    page = Cells()
    page.feed(MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(to_markdown(rows)))
    columns = display_columns(rows)
    assert page.rows[0] == [name for name, _ in columns]
    one_line = [[" ".join(value.splitlines()) for value in values] for _, values in columns]
    assert page.rows[1:] == [list(row) for row in zip(*one_line)]
