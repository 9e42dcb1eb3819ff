"""Every candidate of a zoo pool in one table: the oracle (share of its wrong labels fitted, clean test accuracy) beside
what suscli measures and says (susceptibility, loss on the random labels before the step over chance, fit on the
labels the consensus contradicts, the verdict in the pool and alone, with its reason). Reads evaluate_choice.py's
caches (run it first), so it measures nothing itself.

    python benchmarks/zoo_rows.py --zoo benchmarks/out/zoo-finetune5 [--settings human-worst] [--pool final] [--why]
"""

from __future__ import annotations

import copy
import math
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_choice import MEMORIZED_CUT, load_pools, zoo_arguments, zoo_settings

from suscli.judge import verdict
from suscli.judge.regions import thresholds
from suscli.judge.rules import choose


def main(argv: list[str] | None = None) -> None:
    ap = zoo_arguments(__doc__.splitlines()[0])
    ap.add_argument("--pool", choices=("final", "all-epochs"), help="one pool (default both)")
    ap.add_argument("--why", action="store_true", help="the verdict's reason for every memorizer, flag and 'unclear'")
    args = ap.parse_args(argv)
    for (setting, name), (pool, rows, _) in load_pools(args.zoo, zoo_settings(args)).items():
        if args.pool and name != args.pool:
            continue
        rows = copy.deepcopy(rows)
        choice = choose(rows, "agreement", thresholds(rows, "mean"))
        alone = [copy.deepcopy(r) for r in rows]
        verdict.assign(alone, None, None)  # each model alone, as `suscli score` judges it
        pick = pool[int(choice.ranked[0].name)]
        ratio = [
            statistics.fmean(r.details["loss_before"]) / math.log(r.details["num_classes"]) for r in rows if "loss_before" in r.details
        ]
        sus = [r.susceptibility for r in rows]
        print(f"\n## {setting} {name}: {len(rows)} candidates; the rule ships {pick.model_id} epoch {pick.epoch}")
        print(f"susceptibility {min(sus):.3f}-{max(sus):.3f}; loss before the step over chance {min(ratio):.2f}-{max(ratio):.2f}")
        print(f"too confident for the fixed cuts: {sum(verdict.too_confident(r) is not None for r in rows)}")
        print(f"in the pool: {dict(Counter(r.verdict for r in rows))}; alone: {dict(Counter(r.verdict for r in alone))}\n")
        print(
            "| model | epoch | fits wrong labels | clean test acc | training acc | susceptibility | loss before / ln K | fits contradicted | in the pool | alone |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for c, r, a, q in zip(pool, rows, alone, ratio if len(ratio) == len(rows) else [math.nan] * len(rows)):
            fc = "-" if r.fits_contradicted is None else f"{r.fits_contradicted:.2f}"
            print(
                f"| {c.model_id} | {c.epoch} | {c.memorized:.3f} | {c.test_acc:.3f} | {r.train_acc:.3f} | {r.susceptibility:.3f} | {q:.2f} "
                f"| {fc} | {r.verdict} | {a.verdict} |"
            )
        if args.why:
            for c, r, a in zip(pool, rows, alone):
                if c.memorized >= MEMORIZED_CUT or r.verdict in (verdict.MEMORIZED, verdict.UNCLEAR):
                    print(
                        f"- {c.model_id} epoch {c.epoch} (fits {c.memorized:.3f}): {r.verdict}: {r.verdict_why}; alone {a.verdict}: {a.verdict_why}"
                    )


if __name__ == "__main__":
    main()
