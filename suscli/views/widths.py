"""How wide each column of the Rich table is: wide enough that no header, verdict or name is cut inside a word, and,
on a terminal too narrow for that, without the columns that matter least for the decision. Rich alone shrank the
widest columns below their longest word and folded them mid-word ('susceptibi/lity', 'cnn-bn-w16/-wd5e-4-e1/2')."""

from __future__ import annotations

import re

from rich.cells import cell_len, chop_cells

# Left out in this order where a terminal cannot show every column whole: the architecture (often the same in every
# row), then what the verdict and the closing line already weigh for the decision, the region last. The others
# (model, epoch, train acc, held-out acc, susceptibility, keep, verdict, notes) are always shown.
LEAVE_OUT = ("arch", "gap", "fits contradicted", "agreement", "zeta", "region")

# Columns of names (a model, an architecture, an error naming a path): a line may end after a '-', '_', ':', '/' or
# '\' within a word, and after a '.' before a letter ('last.' / 'safetensors', never 'lr0.' / '1'), where a name
# reads on ('bn_cnn-w32-' / 'lr0.1-wd0'), besides after a space.
NAMES = ("model", "arch", "notes")
NAME_BREAK = re.compile(r"(?<=\w[-_:/\\])(?=\S)|(?<=\w\.)(?=[^\W\d_])|(?<=\s)(?=\S)")
SPACE_BREAK = re.compile(r"(?<=\s)(?=\S)")

# A model's name is wrapped no narrower than this (or its own length) while a column can be left out instead: a name
# in pieces of six on five lines reads worse than the architecture it would give way to.
NAME_WIDTH = 16
BORDER = 3  # a column's padding (one space a side) and the line to its left; the table's last line adds one more


def parts(line: str, name: bool) -> list[str]:
    """`line` cut where a wrapped line may end, each part with the space that follows it."""
    cuts = [0, *(m.start() for m in (NAME_BREAK if name else SPACE_BREAK).finditer(line)), len(line)]
    return [line[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]


def least(texts: list[str], name: bool) -> int:
    """The narrowest width at which every text wraps without cutting a word (or a name's part)."""
    return max((cell_len(part.rstrip()) for text in texts for line in text.split("\n") for part in parts(line, name)), default=1)


def most(texts: list[str]) -> int:
    """The width at which no text wraps."""
    return max((cell_len(line) for text in texts for line in text.split("\n")), default=1)


def wrap(text: str, width: int) -> str:
    """A name's `text` in lines of at most `width` cells, ending where NAME_BREAK allows (Rich ends them only at
    spaces, and folds the rest mid-word); a part wider than `width` alone is folded."""
    lines: list[str] = []
    for line in text.split("\n"):
        current = ""
        for part in parts(line, name=True):
            word = part.rstrip()
            if current and cell_len(current + word) > width:
                lines.append(current.rstrip())
                current = ""
            if cell_len(word) > width:
                *whole, last = chop_cells(word, width)
                lines += whole
                current = last + part[len(word) :]
            else:
                current += part
        lines.append(current.rstrip())
    return "\n".join(lines)


def fit(columns: list[tuple[str, list[str]]], width: int, leave_out: bool) -> tuple[list[int], list[str]]:
    """Each shown column's width, in the order given, and the names of the columns left out to fit `width` (only with
    `leave_out`: a terminal). The widest columns give way first, each down to its longest word; only where even
    that does not fit, with every column it may leave out gone, does a word fold, as Rich would fold it."""
    shown = [name for name, _ in columns]
    texts = {name: [name, *values] for name, values in columns}
    floors = {name: max(least([name], False), least(values, name in NAMES)) for name, values in columns}
    comfort = {**floors, "model": max(floors["model"], min(most(texts["model"]), NAME_WIDTH))}

    def room() -> int:
        return width - BORDER * len(shown) - 1

    for name in LEAVE_OUT:
        if not leave_out or sum(comfort[n] for n in shown) <= room():
            break
        if name in shown:
            shown.remove(name)
    widths = [most(texts[name]) for name in shown]
    for lowest in ([comfort[n] for n in shown], [floors[n] for n in shown], [1] * len(shown)):  # a word folds last
        while sum(widths) > room() and any(w > low for w, low in zip(widths, lowest)):
            widest = max((i for i, w in enumerate(widths) if w > lowest[i]), key=lambda i: widths[i])
            widths[widest] -= 1
    return widths, [name for name, _ in columns if name not in shown]
