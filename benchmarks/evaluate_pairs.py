"""Pools of two: what `suscli rank` says of every pair of a zoo pool's final models, against the truth.

A user who compares two checkpoints (two recipes, two epochs of one run) ranks a pool of two. Its means are the
midpoint of the two models and each model's consensus is the other's predictions, so the pool's evidence is thin.
For every pair of final models of every setting of a zoo (as evaluate_choice.py builds their rows), this ranks the
pair as `rank` does (suscli.judge.rules.choose) and counts, against the zoo's oracle (clean test accuracy; a
memorizer fits >= 40% of its wrong training labels):

- the words: pairs where the more accurate model is called "underfit" or "underfit, susceptible"; models called "likely memorized noise", and
  how many of them are memorizers; models called "susceptible" (what a model alone reads above the fixed cut: no
  claim about its labels), and how many are memorizers; memorizers called "fits, resists noise", "fits the clean
  signal" or "low susceptibility";
- the choice: how often the first model is the more accurate one, and the mean and worst regret (points).

    python benchmarks/evaluate_pairs.py --zoo benchmarks/out/zoo-human

Prints a Markdown table; run it with another checkout's suscli on PYTHONPATH to compare versions.
"""

from __future__ import annotations

import copy
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_choice import MEMORIZED_CUT, load_pools, zoo_arguments, zoo_settings

from suscli.judge import verdict
from suscli.judge.regions import thresholds
from suscli.judge.rules import choose

CLEARS = (verdict.RESISTS, verdict.FITS_CLEAN, verdict.LOW_SUSCEPTIBILITY)  # what says it did not memorize
UNDER = (verdict.UNDERFIT, verdict.UNDERFIT_SUSCEPTIBLE)


def pairs_of(rows: list, tests: np.ndarray, mem: np.ndarray) -> dict:
    """Every pair of `rows` ranked alone, counted against clean accuracy `tests` and memorized share `mem`."""
    keys = ("pairs", "better_underfit", "flagged", "flagged_right", "susceptible", "susceptible_right", "memorizers", "memorizers_cleared")
    counts = dict.fromkeys(keys, 0)
    right, regrets = 0, []
    for i, j in itertools.combinations(range(len(rows)), 2):
        pair = [copy.deepcopy(rows[i]), copy.deepcopy(rows[j])]
        choice = choose(pair, "agreement", thresholds(pair, "mean"))
        index = {pair[0].name: i, pair[1].name: j}
        better = i if tests[i] >= tests[j] else j
        counts["pairs"] += 1
        for r in pair:
            k, word = index[r.name], r.verdict
            memorizer = mem[k] >= MEMORIZED_CUT
            counts["better_underfit"] += k == better and word in UNDER and tests[i] != tests[j]
            for name, flag in (("flagged", verdict.MEMORIZED), ("susceptible", verdict.SUSCEPTIBLE)):
                counts[name] += word == flag
                counts[f"{name}_right"] += word == flag and memorizer
            counts["memorizers"] += memorizer
            counts["memorizers_cleared"] += memorizer and word in CLEARS
        first = index[choice.ranked[0].name]
        right += tests[first] == max(tests[i], tests[j])  # a tie: either is the more accurate
        regrets.append(100 * (max(tests[i], tests[j]) - tests[first]))
    return counts | {"first_right": right, "regret_mean": float(np.mean(regrets)), "regret_worst": float(np.max(regrets))}


def main(argv: list[str] | None = None) -> None:
    args = zoo_arguments(__doc__.splitlines()[0]).parse_args(argv)
    print(
        "| setting | pairs | more accurate called underfit (or underfit, susceptible) | likely memorized noise (memorizers) | susceptible (memorizers) "
        "| memorizers (in pairs) | memorizers cleared | first is the more accurate | regret mean / worst |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    for (setting, pool_name), (pool, rows, _) in load_pools(args.zoo, zoo_settings(args)).items():
        if pool_name != "final":
            continue
        c = pairs_of(rows, np.array([x.test_acc for x in pool]), np.array([x.memorized for x in pool]))
        print(
            f"| {setting} | {c['pairs']} | {c['better_underfit']} | {c['flagged']} ({c['flagged_right']}) | "
            f"{c['susceptible']} ({c['susceptible_right']}) | {c['memorizers']} | {c['memorizers_cleared']} | {c['first_right']} | "
            f"{c['regret_mean']:.1f} / {c['regret_worst']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
