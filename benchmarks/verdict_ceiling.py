"""What the fit on contradicted labels can reach: issue 26's target tau(the verdict's number, share of wrong labels
fitted) >= 0.85, taken apart with the true labels (docs/validation.md, "What the fit on contradicted labels ranks").

Per noisy pool of a zoo, Kendall's tau with the share of its wrong labels each model fits (the oracle) of:
- the product's number, the fit on the labels the voters' consensus contradicts (`fits_contradicted`);
- three other readings of the same consensus, not in the product: the fit on the surest 25% of `--suspects` only
  (LabelCheck.suspects), the fit on the contradicted labels each weighted by the voters' disbelief in it (one minus
  their mean probability of the label), and the fit on contradicted labels less half the fit on confirmed ones (a
  correction for how well a model fits labels in general);
- with the true labels, the fit on the wrong labels among the contradicted ones: what a perfect reading of the
  contradicted set would give; and the product's number against it (how well it ranks the fit on wrong labels the
  images contradict). Also the share of wrong labels the consensus confirms: wrong labels the voters predict too,
  which no reading of the contradicted set sees; and the share of wrong labels among the surest 25% and among all
  contradicted labels.

    python benchmarks/verdict_ceiling.py benchmarks/out/zoo-small benchmarks/out/zoo-aggre ...

Reads evaluate_choice.py's caches (run it first); measures nothing, prints one Markdown row per pool.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import tau
from evaluate_choice import load_pools, zoo_settings

from suscli.judge.regions import thresholds
from suscli.judge.rules import choose, train_predictions_of

SUREST = 0.25  # the share of the suspects list, surest first, one reading keeps


def pool_row(pool: list, rows: list, wrong: np.ndarray) -> list[float]:
    rows = copy.deepcopy(rows)
    check = choose(rows, "agreement", thresholds(rows, "mean")).labels
    memorized = np.array([c.memorized for c in pool])
    contra = check.contradicted
    fits = np.stack([train_predictions_of(r).top1() == check.labels for r in rows])  # models x training images
    product = fits[:, contra].mean(1)
    suspects = check.suspects()
    surest = suspects[: max(int(len(suspects) * SUREST), 1)]
    disbelief = np.where(contra, 1 - check.label_share, 0)
    general = product - 0.5 * fits[:, ~contra].mean(1)
    ceiling = fits[:, contra & wrong].mean(1)
    return [
        tau(product, memorized),
        tau(fits[:, surest].mean(1), memorized),
        tau((fits * disbelief).sum(1) / disbelief.sum(), memorized),
        tau(general, memorized),
        tau(ceiling, memorized),
        tau(product, ceiling),
        float(wrong[surest].mean()),
        float(wrong[contra].mean()),
        float((~contra & wrong).sum() / wrong.sum()),
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("zoos", nargs="+", type=Path)
    args = ap.parse_args(argv)
    print(
        "| zoo | pool | models | product | surest 25% | weighted by disbelief | less half the confirmed fit "
        "| fit on wrong contradicted (true labels) | product against it | surest 25% wrong | contradicted wrong "
        "| wrong labels confirmed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for zoo in args.zoos:
        settings = zoo_settings(argparse.Namespace(zoo=zoo, settings=None, threads=None))
        for (setting, name), (pool, rows, wrong) in load_pools(zoo, settings).items():
            if not wrong.any():
                continue  # clean labels: nothing memorized, no tau
            cells = pool_row(pool, rows, wrong)
            figures = " | ".join(f"{c:.2f}" for c in cells[:6])
            shares = " | ".join(f"{100 * c:.0f}%" for c in cells[6:])
            print(f"| {zoo.name.removeprefix('zoo-')} | {setting} {name} | {len(rows)} | {figures} | {shares} |")


if __name__ == "__main__":
    main()
