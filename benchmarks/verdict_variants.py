"""Two changes to what the verdict reads, measured on a zoo's pools and not in the product (docs/validation.md,
"Two more ways the verdict could read the pool"):

- the fit-cost test (suscli.judge.cost) decided by held-out labels instead of agreement on the unlabeled images:
  the most accurate model on held-out labels among those fitting most of the contradicted labels, against the most
  accurate other, by the paired test `rank --val-data` uses (McNemar at PAIRED_ALPHA), on DRAWS random held-out
  subsets of each size and on all of them (evaluate_held_out.py's held-out images and cached hits);
- each voter's fit on the contradicted labels measured against the consensus of the other voters (leave one out),
  so that its own vote does not hide the wrong labels it fits: tau with the share of wrong labels fitted, beside
  the product's fit on contradicted labels and training accuracy.

    python benchmarks/verdict_variants.py --zoo benchmarks/out/zoo-aggre

Reads evaluate_choice.py's and evaluate_held_out.py's caches (run them first); prints one line per pool.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import tau
from evaluate_choice import load_pools, zoo_arguments, zoo_settings
from evaluate_held_out import held_out_hits

from suscli.judge.cost import MOST, fit_cost
from suscli.judge.noise import consensus, fit_on, given_labels
from suscli.judge.regions import thresholds
from suscli.judge.rules import DEFAULT_NOISE_VOTERS, _measured, _voters, choose, predictions_of, train_predictions_of
from suscli.measure.accuracy import PAIRED_ALPHA, mcnemar_p

SIZES = (200, 500)
DRAWS = 20


def held_out_cost(hits: np.ndarray, fitters: np.ndarray) -> bool:
    """Whether held-out labels show a cost: the best other model is clearly more accurate than the best fitter."""
    acc = hits.mean(1)
    f = int(np.flatnonzero(fitters)[acc[fitters].argmax()])
    b = max((i for i in range(len(acc)) if i != f), key=lambda i: acc[i])
    return bool(acc[b] > acc[f] and mcnemar_p(int((hits[b] & ~hits[f]).sum()), int((hits[f] & ~hits[b]).sum())) < PAIRED_ALPHA)


def without_own_vote(rows: list) -> list[float]:
    """Each row's fit on the labels the voters' consensus contradicts, a voter's against the other voters' consensus."""
    t = thresholds(rows, "mean")
    measured = [r for r in _measured(rows) if r.agreement is not None]
    voted = _voters(measured, t, DEFAULT_NOISE_VOTERS)[0]
    preds = [train_predictions_of(r) for r in measured]
    labels = given_labels(preds)
    voters = [i for i, v in enumerate(voted) if v]
    wrong = consensus([preds[i] for i in voters])[0] != labels
    out = []
    for i, p in enumerate(preds):
        own = i in voters and len(voters) > 2
        out.append(fit_on(p, consensus([preds[j] for j in voters if j != i])[0] != labels if own else wrong))
    return out


def main(argv: list[str] | None = None) -> None:
    args = zoo_arguments(__doc__.splitlines()[0]).parse_args(argv)
    rng = np.random.default_rng(0)
    for (setting, name), (pool, rows, _) in load_pools(args.zoo, zoo_settings(args)).items():
        rows = copy.deepcopy(rows)
        choose(rows, "agreement", thresholds(rows, "mean"))
        mem = [c.memorized for c in pool]
        fits = [r.fits_contradicted for r in rows]
        line = (
            f"{setting} {name}: tau with the share of wrong labels fitted: fits contradicted {tau(fits, mem):.2f}, "
            f"without its own vote {tau(without_own_vote(rows), mem):.2f}, training accuracy {tau([r.train_acc for r in rows], mem):.2f}"
        )
        unlabeled = predictions_of(rows[0])
        cost = fit_cost(rows, unlabeled.classes.shape[0]) if unlabeled is not None else None
        fitters = np.array([f is not None and f > MOST for f in fits])
        if cost is not None:
            hits, _, _ = held_out_hits(pool, args.zoo, setting)
            matrix = np.stack([hits[str(c.path)] for c in pool])
            shown = [
                np.mean([held_out_cost(matrix[:, rng.choice(matrix.shape[1], size, replace=False)], fitters) for _ in range(DRAWS)])
                for size in SIZES
            ]
            line += (
                f"; fit cost: agreement {'none' if cost.free else 'shown'} ({cost.ratio:.2f}), held-out labels shown in "
                + ", ".join(f"{100 * s:.0f}% of draws of {n}" for s, n in zip(shown, SIZES))
                + f", on all {matrix.shape[1]:,}: {'shown' if held_out_cost(matrix, fitters) else 'none'}"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
