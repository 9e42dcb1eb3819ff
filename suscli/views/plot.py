"""The pool picture: training accuracy against susceptibility, with the two threshold lines (the regions, dashed),
the verdict's fixed susceptibility cuts (dotted) and each model coloured by its verdict."""

from __future__ import annotations

import io
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
    None: "#444444",
}


def _label_points(ax, rows: list[Result]) -> None:
    """Name each point, nudging a label upwards (in screen pixels) until it overlaps no label placed before it."""
    fig = ax.figure
    fig.canvas.draw()
    placed: list = []
    for r in sorted(rows, key=lambda r: (_pct(r.train_acc), r.susceptibility or 0.0)):
        dy = 4
        while True:
            text = ax.annotate(r.name, (r.susceptibility, _pct(r.train_acc)), xytext=(5, dy), textcoords="offset points", fontsize=7)
            box = text.get_window_extent(fig.canvas.get_renderer()).expanded(1.02, 1.1)
            if not any(box.overlaps(b) for b in placed) or dy > 80:
                placed.append(box)
                break
            text.remove()
            dy += 7


def _pct(accuracy: float | None) -> float:
    """Training accuracy in percent; NaN (a point matplotlib leaves out) where there is none."""
    return float("nan") if accuracy is None else 100 * accuracy


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend; matplotlib is an optional extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib", fix="pip install 'suscli[plot]'") from None
    return plt


def save_figure(fig, path: str | Path) -> Path:
    """Write `fig` to `path` (format from its suffix) atomically: a kill mid-write leaves the old picture, never
    half of one. The figure is closed either way."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        require_folder(path, "plot ", "--plot")
        with replacing(path, binary=True) as f:
            fig.savefig(f, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    except (OSError, ValueError) as e:
        raise InputError(f"cannot write plot {path}: {e}", fix="choose a writable .png/.svg/.pdf path for --plot") from None
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
    """The figure of plot_pool, for the caller to save or embed."""
    plt = _pyplot()
    scored = [r for r in rows if r.ok and r.train_acc is not None and r.susceptibility is not None]
    if not scored:
        raise UsageError("--plot needs training accuracy for at least one model", fix="pass --train-data")
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    for word, color in VERDICT_COLORS.items():
        pts = [r for r in scored if r.verdict == word]
        if pts:
            ax.scatter(
                [r.susceptibility for r in pts],
                [_pct(r.train_acc) for r in pts],
                s=46,
                color=color,
                marker="D" if word == verdict.FITS_CLEAN else "o",  # its colour is "fits, resists noise"'s
                edgecolor="black",
                linewidth=0.5,
                zorder=3,
                label=word or "no verdict",
            )
    if pick is not None and pick in scored:
        ax.scatter(
            [pick.susceptibility],
            [_pct(pick.train_acc)],
            s=220,
            facecolor="none",
            edgecolor="black",
            linewidth=1.6,
            zorder=4,
            label="to ship",
        )
    if any(verdict.calibrated(r) for r in scored):  # the verdict's fixed cuts (suscli.judge.verdict), dotted
        for cut, color in (
            (verdict.RESISTS_CUT, VERDICT_COLORS[verdict.RESISTS]),
            (verdict.MEMORIZED_CUT, VERDICT_COLORS[verdict.MEMORIZED]),
        ):
            ax.axvline(cut, color=color, linestyle=":", linewidth=1.2)
    if t is not None:
        ax.axvline(t.susceptibility, color="black", linestyle="--", linewidth=1)
        ax.axhline(100 * t.train_acc, color="black", linestyle="--", linewidth=1)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=5, fontsize=8, frameon=False)
    ax.set_xlabel("susceptibility (loss drop after one step on random labels)")
    ax.set_ylabel("training accuracy on its own labels (%)")
    ax.set_title(title + (f" — thresholds: {t.source}" if t else ""), fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _label_points(ax, scored)
    return fig


def plot_run(rows: list[Result], keep: Result | None, path: str | Path, title: str = "suscli track", rule: str = "train-acc") -> Path:
    """r and zeta against epoch (left axis), training accuracy (right axis), the kept epoch marked; from the
    suffix of `path`: .png, .svg, .pdf. matplotlib is an optional extra."""
    return save_figure(run_figure(rows, keep, title, rule), path)


def run_figure(rows: list[Result], keep: Result | None, title: str = "suscli track", rule: str = "train-acc"):
    """The figure of plot_run, for the caller to save or embed."""
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
    if with_acc:
        acc_ax = ax.twinx()
        acc_ax.plot(
            [r.epoch for r in with_acc],
            [_pct(r.train_acc) for r in with_acc],
            "-",
            color="#2a9d8f",
            linewidth=1.5,
            label="training accuracy",
        )
        acc_ax.set_ylabel("training accuracy on its own labels (%)")
        h, lab = acc_ax.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    if keep is not None:
        ax.axvline(keep.epoch, color="black", linestyle="--", linewidth=1)
        ax.annotate(
            f"keep epoch {keep.epoch}",
            (keep.epoch, 1),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=8,
        )
    ax.legend(handles, labels, loc="upper left", fontsize=8)
    ax.set_title(title + f" — keep rule: {rule}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
