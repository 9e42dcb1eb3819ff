"""--plot with held-out accuracy (--val-data): rank's second panel and track's held-out curve, each with its 95%
interval as error bars, and track's mark on the epoch held-out accuracy would keep."""

from __future__ import annotations

import numpy as np
import pytest

from suscli.judge import verdict
from suscli.judge.regions import Thresholds
from suscli.results import Result
from suscli.views.html import figure_alt

pytest.importorskip("matplotlib")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

from suscli.views.plot import pool_figure, run_figure  # noqa: E402


def row(name: str, sus: float, train: float, val: float | None = None, **more) -> Result:
    held = {} if val is None else {"val_acc": val, "val_acc_low": val - 0.05, "val_acc_high": val + 0.04, "val_n": 200}
    return Result(name=name, path=name, susceptibility=sus, train_acc=train, verdict=verdict.RESISTS, **held, **more)


def bars(container: ErrorbarContainer) -> list[tuple[float, float, float]]:
    """(x, low, high) of each vertical error bar."""
    (segments,) = [c.get_segments() for c in container.lines[2]]
    return [(float(s[0][0]), float(s[0][1]), float(s[1][1])) for s in segments]


def test_rank_plot_has_a_held_out_panel_with_intervals_only_with_held_out_accuracy() -> None:
    t = Thresholds(susceptibility=0.2, train_acc=0.8, source="pool mean")
    plain = [row("a", 0.1, 0.9), row("b", 0.3, 0.95)]
    fig = pool_figure(plain, t)
    assert len(fig.axes) == 1
    plt.close(fig)
    rows = [row("a", 0.1, 0.9, 0.85), row("b", 0.3, 0.95, 0.70), row("c", 0.15, 0.85, 0.80)]
    fig = pool_figure(rows, t, pick=rows[0])
    try:
        left, right = fig.axes
        assert "training accuracy" in left.get_ylabel() and "held-out accuracy" in right.get_ylabel()
        assert "200 images" in right.get_title()
        (container,) = [c for c in right.containers if isinstance(c, ErrorbarContainer)]
        want = [(r.susceptibility, 100 * r.val_acc_low, 100 * r.val_acc_high) for r in rows]  # type: ignore[operator]
        assert bars(container) == pytest.approx(want)
        points = np.concatenate([c.get_offsets() for c in right.collections if len(c.get_offsets())])
        for r in rows:  # each model at its susceptibility and held-out accuracy
            assert any(np.allclose(p, (r.susceptibility, 100 * r.val_acc)) for p in points)  # type: ignore[operator]
        assert sorted(t.get_text() for t in right.texts) == ["a", "b", "c"]  # each point named
        assert left.get_shared_x_axes().joined(left, right)  # the same susceptibility axis
    finally:
        plt.close(fig)
    assert "held-out accuracy against susceptibility" in figure_alt(rows, {"thresholds": {}}, "suscli rank")
    assert "held-out" not in figure_alt(plain, {"thresholds": {}}, "suscli rank")


def epochs(val: list[float] | None, best: int | None = None) -> list[Result]:
    rows = [
        row(f"epoch_{e}", 0.01 * (e + 1), 0.5 + 0.1 * e, None if val is None else val[e], epoch=e, zeta=0.01 * (e + 1), keep=e == 3)
        for e in range(4)
    ]
    for r in rows:
        r.held_out_best = None if best is None else r.epoch == best
    return rows


def texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_track_plot_draws_held_out_accuracy_and_marks_its_epoch() -> None:
    rows = epochs([0.6, 0.7, 0.8, 0.75], best=2)
    fig = run_figure(rows, rows[3])
    try:
        acc = fig.axes[1]
        (container,) = [c for c in acc.containers if isinstance(c, ErrorbarContainer)]
        assert container.get_label() == "held-out accuracy (95% interval)"
        assert container.lines[0].get_ydata() == pytest.approx([60, 70, 80, 75])
        assert bars(container) == pytest.approx([(r.epoch, 100 * r.val_acc_low, 100 * r.val_acc_high) for r in rows])  # type: ignore[operator]
        assert "keep epoch 3" in texts(fig) and "best held-out epoch 2" in texts(fig)
        assert any(list(line.get_xdata()) == [2, 2] for line in fig.axes[0].lines)  # the held-out epoch's vertical line
    finally:
        plt.close(fig)
    same = epochs([0.6, 0.7, 0.75, 0.8], best=3)
    fig = run_figure(same, same[3])
    assert texts(fig) == ["keep epoch 3 = best held-out"]
    plt.close(fig)
    plain = epochs(None)
    fig = run_figure(plain, plain[3])
    assert texts(fig) == ["keep epoch 3"] and not fig.axes[1].containers
    plt.close(fig)


def test_model_names_are_drawn_as_text_not_as_mathtext() -> None:
    """A name between two $ was parsed as matplotlib's mathtext: 'lr$1e-3$' was drawn as a formula, and a name it
    cannot parse ('x$\\frac{$') ended --plot and --html in a traceback."""
    from suscli.views.plot import svg

    t = Thresholds(susceptibility=0.2, train_acc=0.8, source="pool mean")
    names = ["lr$1e-3$", "x$\\frac{$y", "a_b^c"]
    fig = pool_figure([row(name, 0.1 + 0.1 * i, 0.85 + 0.05 * i) for i, name in enumerate(names)], t)
    try:
        assert svg(fig).startswith(b"<?xml")
        labels = [text for text in fig.axes[0].texts if text.get_text() in names]
        assert sorted(text.get_text() for text in labels) == sorted(names) and not any(text.get_parse_math() for text in labels)
    finally:
        plt.close(fig)


def test_every_verdict_word_has_a_colour() -> None:
    """A row whose verdict had no colour was left out of the plot: "low susceptibility", which a pool of two prints."""
    from suscli.judge import verdict
    from suscli.views.plot import VERDICT_COLORS

    words = {verdict.MEMORIZED, verdict.RESISTS, verdict.FITS_CLEAN, verdict.UNCLEAR, verdict.UNDERFIT}
    words |= {verdict.UNDERFIT_SUSCEPTIBLE, verdict.SUSCEPTIBLE, verdict.LOW_SUSCEPTIBILITY}
    assert words <= set(VERDICT_COLORS)


def test_a_name_the_font_cannot_draw_is_written_with_escapes_without_a_warning() -> None:
    """A model named in Chinese, or with a tab in its file name, was drawn as empty boxes, and matplotlib warned
    "Glyph 27169 missing from font(s) DejaVu Sans" on stderr for each character, twice: the plot's label is now the
    name with \\uXXXX escapes for what the font has no glyph for, as stderr writes what its code page cannot show."""
    import warnings

    from suscli.views.plot import svg

    t = Thresholds(susceptibility=0.2, train_acc=0.8, source="pool mean")
    names = {"模型-a": "\\u6a21\\u578b-a", "tab\tname": "tab\\tname", "line\nbreak": "line\\nbreak", "ünï": "ünï"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = pool_figure([row(name, 0.1 + 0.1 * i, 0.85 + 0.03 * i) for i, name in enumerate(names)], t)
        try:
            svg(fig)
            assert sorted(text.get_text() for text in fig.axes[0].texts) == sorted(names.values())
        finally:
            plt.close(fig)
    assert not [str(w.message) for w in caught]


def test_a_sweeps_plot_names_the_pick_and_the_flagged_models_not_every_point() -> None:
    """Every point was named, each label nudged past every label placed before it: a pool of 3,000 checkpoints took
    234 s to draw for the HTML report, and wrote a 32 MB page whose plot was a solid block of overlapping names."""
    t = Thresholds(susceptibility=0.5, train_acc=0.8, source="pool mean")
    rows = [row(f"sweep/run_{i:04d}", (i % 97) / 97, 0.5 + (i % 89) / 200) for i in range(300)]
    for r in rows[::5]:
        r.verdict = verdict.MEMORIZED
    fig = pool_figure(rows, t, pick=rows[7])
    try:
        named = [text for text in texts(fig) if text.startswith("sweep/")]
        flagged = sorted((r for r in rows if r.verdict == verdict.MEMORIZED), key=lambda r: -(r.susceptibility or 0))
        assert named[0] == "sweep/run_0007" and len(named) == 40
        assert sorted(named[1:]) == sorted(r.name for r in flagged[:39])
        assert "40 of the 300 models named: the one to ship, then the flagged; the report's table names every one" in texts(fig)
    finally:
        plt.close(fig)
