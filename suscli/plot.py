"""The pool picture: training accuracy against susceptibility, with the two threshold lines and the regions."""

from __future__ import annotations

from pathlib import Path

from suscli.errors import InputError, UsageError
from suscli.ranking import Thresholds
from suscli.results import Result

REGION_COLORS = {1: "#2a9d8f", 2: "#e63946", 3: "#8d99ae", 4: "#f4a261", None: "#444444"}


def plot_pool(rows: list[Result], t: Thresholds | None, path: str | Path, title: str = "suscli rank") -> Path:
    """Draw the scored rows to `path` (format from its suffix: .png, .svg, .pdf). matplotlib is an optional extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib", fix="pip install 'suscli[plot]'") from None
    scored = [r for r in rows if r.ok and r.train_acc is not None and r.susceptibility is not None]
    if not scored:
        raise UsageError("--plot needs training accuracy for at least one model", fix="pass --train-data")
    fig, ax = plt.subplots(figsize=(7.5, 5.5), dpi=120)
    for r in scored:
        ax.scatter(r.susceptibility, 100 * r.train_acc, s=46, color=REGION_COLORS[r.region], edgecolor="black", linewidth=0.5, zorder=3)
        ax.annotate(r.name, (r.susceptibility, 100 * r.train_acc), xytext=(4, 4), textcoords="offset points", fontsize=7)
    if t is not None:
        ax.axvline(t.susceptibility, color="black", linestyle="--", linewidth=1)
        ax.axhline(100 * t.train_acc, color="black", linestyle="--", linewidth=1)
        for region, (x, y, ha, va) in {1: (0.01, 0.99, "left", "top"), 2: (0.99, 0.99, "right", "top"),
                                       3: (0.01, 0.01, "left", "bottom"), 4: (0.99, 0.01, "right", "bottom")}.items():
            label = {1: "1: recommended", 2: "2: likely memorized noise", 3: "3: underfit", 4: "4: underfit, susceptible"}[region]
            ax.text(x, y, label, transform=ax.transAxes, ha=ha, va=va, fontsize=8, color=REGION_COLORS[region], weight="bold")
    ax.set_xlabel("susceptibility (loss drop after one step on random labels)")
    ax.set_ylabel("training accuracy on its own labels (%)")
    ax.set_title(title + (f" — thresholds: {t.source}" if t else ""), fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot write plot {path}: {e}", fix="choose a writable .png/.svg/.pdf path for --plot") from None
    finally:
        plt.close(fig)
    return path
