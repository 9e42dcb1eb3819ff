"""The pool picture: training accuracy against susceptibility, with the two threshold lines (the regions, dashed),
the verdict's fixed susceptibility cuts (dotted) and each model coloured by its verdict; with held-out accuracy
(--val-data), a second panel of it against the same susceptibility axis. The run picture: r, zeta and the
accuracies against epoch, with the epochs to keep marked."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from suscli.judge import verdict
from suscli.errors import InputError, UsageError
from suscli.files import replacing, require_folder
from suscli.judge.regions import Thresholds
from suscli.results import Result

# One colour per verdict (suscli.judge.verdict); the dashed lines are the pool's thresholds, the paper's regions.
VERDICT_COLORS = {
    verdict.RESISTS: "#2a9d8f",
    verdict.FITS_CLEAN: "#2a9d8f",  # no sign of memorizing either: coloured as "fits, resists noise"
    verdict.MEMORIZED: "#e63946",
    verdict.UNCLEAR: "#e9c46a",
    verdict.UNDERFIT: "#8d99ae",
    verdict.UNDERFIT_SUSCEPTIBLE: "#f4a261",
    verdict.SUSCEPTIBLE: "#e76f51",  # alone: fits noise readily, nothing said about its labels
    verdict.LOW_SUSCEPTIBILITY: "#8ecae6",  # alone: one step moves it little, nothing said about its labels
    None: "#444444",
}


# The most points a panel names. Each label is nudged past every one placed before it: a sweep of 3,000 checkpoints,
# each named, took 234 s to draw and was a block of overlapping names; the report's table names every model.
NAMED_MAX = 40


def _label_points(ax, rows: list[Result], y: Callable[[Result], float], pick: Result | None = None) -> None:
    """Name each point (at susceptibility, y(row)), nudging a label upwards (in screen pixels) until it overlaps no
    label placed before it. Past NAMED_MAX points, only the model to ship and the flagged ones, most susceptible
    first, are named, and a line in the corner says so."""
    fig = ax.figure
    fig.canvas.draw()
    placed: list = []
    fonts = _fonts()
    order = sorted(rows, key=lambda r: (y(r), r.susceptibility or 0.0))
    if len(rows) > NAMED_MAX:
        flagged = sorted((r for r in rows if r.verdict == verdict.MEMORIZED and r is not pick), key=lambda r: -(r.susceptibility or 0.0))
        order = ([pick] if pick in rows else []) + flagged
        order = order[:NAMED_MAX]
        ax.text(
            0.99,
            0.01,
            f"{len(order)} of the {len(rows):,} models named: the one to ship, then the flagged; the report's table names every one",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
            color="#444444",
        )
    for r in order:
        dy = 4
        while True:
            text = ax.annotate(
                _drawable(r.name, fonts), (r.susceptibility, y(r)), xytext=(5, dy), textcoords="offset points", fontsize=7, parse_math=False
            )
            box = text.get_window_extent(fig.canvas.get_renderer()).expanded(1.02, 1.1)
            if not any(box.overlaps(b) for b in placed) or dy > 80:
                placed.append(box)
                break
            text.remove()
            dy += 7


def _fonts() -> list:
    """The fonts matplotlib draws text with: one per family of its font.family setting, the later ones its fallbacks."""
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties, findfont, get_font

    return [get_font(findfont(FontProperties(family=[family]))) for family in rcParams["font.family"]]


def _drawable(name: str, fonts: list) -> str:
    """`name` as the plot can draw it: a character no font has a glyph for (Chinese in DejaVu Sans, a tab, a line
    break) written as its escape (\\u6a21, \\t), as stderr writes what its code page cannot show. matplotlib drew an
    empty box for each and warned on stderr."""
    return "".join(c if any(font.get_char_index(ord(c)) for font in fonts) else ascii(c)[1:-1] for c in name)


def _pct(accuracy: float | None) -> float:
    """An accuracy in percent; NaN (a point matplotlib leaves out) where there is none."""
    return float("nan") if accuracy is None else 100 * accuracy


def _train(r: Result) -> float:
    return _pct(r.train_acc)


def _held_out(r: Result) -> float:
    return _pct(r.val_acc)


def _held_out_bars(rows: list[Result]) -> list[list[float]]:
    """matplotlib's yerr of the rows' held-out accuracies, in points: the distances down and up to the ends of each
    95% Wilson interval (0 where a row has none)."""
    down = [0.0 if r.val_acc_low is None else _held_out(r) - _pct(r.val_acc_low) for r in rows]
    up = [0.0 if r.val_acc_high is None else _pct(r.val_acc_high) - _held_out(r) for r in rows]
    return [down, up]


def _no_matplotlib() -> UsageError:
    return UsageError("--plot needs matplotlib", fix="pip install 'suscli[plot]'")


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend; matplotlib is an optional extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise _no_matplotlib() from None
    return plt


def plot_format(path: str | Path) -> str:
    """The image format save_figure writes `path` in (its suffix; png without one)."""
    return Path(path).suffix.lstrip(".").lower() or "png"


def check_plot(path: str | Path) -> None:
    """Refuse a --plot that cannot be drawn before anything is measured, not after: matplotlib missing, or a suffix
    that is none of the formats matplotlib writes."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise _no_matplotlib() from None
    formats, suffix = FigureCanvasBase.get_supported_filetypes(), plot_format(path)
    if suffix not in formats:
        raise UsageError(
            f"--plot {path}: matplotlib cannot write .{suffix} images",
            fix=f"end the name in .png, .svg or .pdf; matplotlib also writes .{', .'.join(f for f in formats if f not in ('png', 'svg', 'pdf'))}",
        )


def save_figure(fig, path: str | Path) -> Path:
    """Write `fig` to `path` (format from its suffix) atomically: a kill mid-write leaves the old picture, never
    half of one. The figure is closed either way."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        require_folder(path, "plot ", "--plot")
        with replacing(path, binary=True) as f:
            fig.savefig(f, bbox_inches="tight", format=plot_format(path))
    except (OSError, ValueError) as e:  # an OSError's reason alone, as every other output says it: not "[Errno 28] ..."
        raise InputError(
            f"cannot write plot {path}: {getattr(e, 'strerror', None) or e}", fix="choose a writable .png/.svg/.pdf path for --plot"
        ) from None
    finally:
        plt.close(fig)
    return path


def plot_pool(rows: list[Result], t: Thresholds | None, path: str | Path, title: str = "suscli rank", pick: Result | None = None) -> Path:
    """Draw the scored rows to `path` (format from its suffix: .png, .svg, .pdf), ringing the model to ship.
    matplotlib is an optional extra."""
    return save_figure(pool_figure(rows, t, title, pick), path)


def svg(fig) -> bytes:
    """`fig` as SVG, closed after; the same figure gives the same bytes (no date, fixed element ids), so that a
    report holding it can be compared with an earlier one."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        with plt.rc_context({"svg.hashsalt": "suscli"}):
            fig.savefig(buffer, bbox_inches="tight", format="svg", metadata={"Date": None})
    finally:
        plt.close(fig)
    return buffer.getvalue()


def pool_figure(rows: list[Result], t: Thresholds | None, title: str = "suscli rank", pick: Result | None = None):
    """The figure of plot_pool, for the caller to save or embed.

    Training accuracy against susceptibility: the paper's picture, whose regions are the pool's thresholds. With
    held-out accuracy on the rows (--val-data), a second panel beside it draws held-out accuracy against the same
    susceptibility axis, each model at the same x in both, with its 95% Wilson interval as an error bar: the model
    highest there leads the choice, and the bars show which others the held-out set may not tell from it. A panel
    of its own rather than held-out accuracy in place of training accuracy: the regions and the verdicts are drawn
    on training accuracy, and the two side by side show each model's gap."""
    plt = _pyplot()
    scored = [r for r in rows if r.ok and r.train_acc is not None and r.susceptibility is not None]
    if not scored:
        raise UsageError("--plot needs training accuracy for at least one model", fix="pass --train-data")
    held = [r for r in rows if r.ok and r.val_acc is not None and r.susceptibility is not None]
    if held:
        fig, (ax, val_ax) = plt.subplots(1, 2, figsize=(13, 5.5), dpi=120, sharex=True)
    else:
        fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    _draw_models(ax, scored, _train, pick)
    if held:
        val_ax.errorbar(
            [r.susceptibility for r in held],
            [_held_out(r) for r in held],
            yerr=_held_out_bars(held),
            fmt="none",
            ecolor="#555555",
            elinewidth=0.9,
            capsize=2.5,
            zorder=2,
        )
        _draw_models(val_ax, held, _held_out, pick)
    for axis in [ax, val_ax] if held else [ax]:
        if any(verdict.calibrated(r) for r in scored):  # the verdict's fixed cuts (suscli.judge.verdict), dotted
            for cut, color in (
                (verdict.RESISTS_CUT, VERDICT_COLORS[verdict.RESISTS]),
                (verdict.MEMORIZED_CUT, VERDICT_COLORS[verdict.MEMORIZED]),
            ):
                axis.axvline(cut, color=color, linestyle=":", linewidth=1.2)
        if t is not None:
            axis.axvline(t.susceptibility, color="black", linestyle="--", linewidth=1)
        axis.set_xlabel("susceptibility (loss drop after one step on random labels)")
        axis.grid(alpha=0.3)
    if t is not None:
        ax.axhline(100 * t.train_acc, color="black", linestyle="--", linewidth=1)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=5, fontsize=8, frameon=False)
    ax.set_ylabel("training accuracy on its own labels (%)")
    ax.set_title(title + (f" — thresholds: {t.source}" if t else ""), fontsize=10)
    if held:
        n = sorted({r.val_n for r in held if r.val_n})
        of = f", {n[0]:,} images" if len(n) == 1 else ""
        val_ax.set_ylabel("held-out accuracy on their labels (%), 95% interval")
        val_ax.set_title(f"held-out accuracy (--val-data{of})", fontsize=10)
        val_ax.tick_params(labelbottom=True)
    fig.tight_layout()
    _label_points(ax, scored, _train, pick)
    if held:
        _label_points(val_ax, held, _held_out, pick)
    return fig


def _draw_models(ax, rows: list[Result], y: Callable[[Result], float], pick: Result | None) -> None:
    """Each model at (susceptibility, y), coloured by its verdict; the model to ship ringed."""
    for word, color in VERDICT_COLORS.items():
        pts = [r for r in rows if r.verdict == word]
        if pts:
            ax.scatter(
                [r.susceptibility for r in pts],
                [y(r) for r in pts],
                s=46,
                color=color,
                marker="D" if word == verdict.FITS_CLEAN else "o",  # its colour is "fits, resists noise"'s
                edgecolor="black",
                linewidth=0.5,
                zorder=3,
                label=word or "no verdict",
            )
    if pick is not None and pick in rows:
        ax.scatter([pick.susceptibility], [y(pick)], s=220, facecolor="none", edgecolor="black", linewidth=1.6, zorder=4, label="to ship")


def plot_run(rows: list[Result], keep: Result | None, path: str | Path, title: str = "suscli track", rule: str = "train-acc") -> Path:
    """r and zeta against epoch (left axis), training and held-out accuracy (right axis), the kept epoch marked; from
    the suffix of `path`: .png, .svg, .pdf. matplotlib is an optional extra."""
    return save_figure(run_figure(rows, keep, title, rule), path)


def run_figure(rows: list[Result], keep: Result | None, title: str = "suscli track", rule: str = "train-acc"):
    """The figure of plot_run, for the caller to save or embed.

    With held-out accuracy (--val-data) it is drawn on the right axis with training accuracy, on the same
    percentage scale so that the gap between the two curves is each epoch's gap, with its 95% Wilson interval as
    error bars; the epoch with the highest held-out accuracy (the row's `held_out_best`, early stopping as users know
    it) is marked beside the --keep rule's."""
    plt = _pyplot()
    measured = [r for r in rows if r.ok and r.susceptibility is not None]
    if not measured:
        raise UsageError("--plot needs at least one measured epoch")
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    ax.plot([r.epoch for r in measured], [r.susceptibility for r in measured], "o", color="#8d99ae", markersize=4, label="r (per epoch)")
    with_zeta = [r for r in measured if r.zeta is not None]
    ax.plot([r.epoch for r in with_zeta], [r.zeta for r in with_zeta], "-", color="#e63946", linewidth=2, label="zeta(t) (running mean)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("susceptibility (loss drop on random labels)")
    handles, labels = ax.get_legend_handles_labels()
    with_acc = [r for r in measured if r.train_acc is not None]
    with_val = [r for r in measured if r.val_acc is not None]
    if with_acc or with_val:
        acc_ax = ax.twinx()
        if with_acc:
            acc_ax.plot(
                [r.epoch for r in with_acc],
                [_train(r) for r in with_acc],
                "-",
                color="#2a9d8f",
                linewidth=1.5,
                label="training accuracy (its own labels)" if with_val else "training accuracy",
            )
        if with_val:
            acc_ax.errorbar(
                [r.epoch for r in with_val],
                [_held_out(r) for r in with_val],
                yerr=_held_out_bars(with_val),
                fmt="-",
                color="#264653",
                ecolor="#26465399",
                linewidth=1.5,
                elinewidth=0.8,
                capsize=2,
                label="held-out accuracy (95% interval)",
            )
        acc_ax.set_ylabel("accuracy on the labels (%)" if with_val else "training accuracy on its own labels (%)")
        h, lab = acc_ax.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    best = next((r for r in measured if r.held_out_best), None)
    span = (min(r.epoch or 0 for r in measured), max(r.epoch or 0 for r in measured))
    if keep is not None:
        ax.axvline(keep.epoch, color="black", linestyle="--", linewidth=1)
        _mark(ax, keep.epoch, f"keep epoch {keep.epoch}" + (" = best held-out" if best is keep else ""), 0, span)
    if best is not None and best is not keep:
        ax.axvline(best.epoch, color="#264653", linestyle=":", linewidth=1.4)
        _mark(ax, best.epoch, f"best held-out epoch {best.epoch}", 1, span)
    if with_val:  # more curves and a second mark: the legend goes below the plot, off the marks
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    else:
        ax.legend(handles, labels, loc="upper left", fontsize=8)
    ax.set_title(title + f" — keep rule: {rule}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _mark(ax, epoch: int | None, text: str, line: int, span: tuple[int, int]) -> None:
    """A marked epoch's words at the top of its vertical line, `line` lines down; left of the line in the run's
    later half, so that they stay inside the plot."""
    left = epoch is not None and epoch > (span[0] + span[1]) / 2
    ax.annotate(
        text,
        (epoch, 1),
        xycoords=("data", "axes fraction"),
        xytext=(-4 if left else 4, -12 - 11 * line),
        textcoords="offset points",
        ha="right" if left else "left",
        fontsize=8,
    )
