"""Check `suscli track`'s keep-rules on the zoo: which saved epoch of each run does each rule keep, and how good is it?

For every model of a zoo, each rule of suscli.run.epochs.KEEP_RULES sees only what `track` sees: training accuracy on
the noisy labels, r at each saved epoch (the running mean zeta from it) and the predictions on the unlabeled
images. The clean test accuracy of the epoch it keeps is compared with the run's best epoch (the oracle).

    python benchmarks/evaluate_track.py --zoo benchmarks/out/zoo --settings sym40,asym40
    python benchmarks/evaluate_track.py --zoo benchmarks/out/zoo-constant --settings sym40   # constant lr schedule

r is read from the measurements that benchmarks/evaluate.py cached (run it first), at the CLI's defaults; the
predictions from evaluate_rules.py's cache (made here if missing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import candidates  # noqa: E402
from evaluate_rules import predictions, rows_for  # noqa: E402

from suscli.defaults import DEFAULT_BATCH_SIZE, DEFAULT_BATCHES, DEFAULT_LR
from suscli.run.epochs import KEEP_RULES, annotate  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", type=Path, default=Path("benchmarks/out/zoo"))
    ap.add_argument("--settings", default="sym40,asym40")
    ap.add_argument("--max-batches", type=int, default=8, help="as given to evaluate.py")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cache = {}
    for line in (args.zoo / "eval" / "measurements.jsonl").read_text().splitlines():
        rec = json.loads(line)
        cache[(rec["path"], rec["lr"], rec["batch_size"], rec["batches"], rec["seed"])] = rec["r"]
    lines = [
        "| setting | runs | rule | mean clean test acc of the kept epoch (%) | mean regret vs the run's best epoch (pts) | picks the best epoch |",
        "|---|---|---|---|---|---|",
    ]
    for setting in args.settings.split(","):
        cands = candidates(args.zoo, [setting])
        preds = predictions(cands, args.zoo, setting)
        runs: dict[str, list] = {}
        for c in cands:
            runs.setdefault(c.model_id, []).append(c)
        picks: dict[str, list[tuple[float, float]]] = {rule: [] for rule in KEEP_RULES}
        for cs in runs.values():
            cs.sort(key=lambda c: c.epoch)
            r = [
                statistics.fmean(cache[(str(c.path), DEFAULT_LR, DEFAULT_BATCH_SIZE, args.max_batches, args.seed)][:DEFAULT_BATCHES])
                for c in cs
            ]
            best = max(c.test_acc for c in cs)
            for rule in KEEP_RULES:
                rows = rows_for(cs, r, preds)
                kept = annotate(rows, rule=rule)
                picks[rule].append((next(c for c, row in zip(cs, rows) if row is kept).test_acc, best))
        for rule, vals in picks.items():
            lines.append(
                f"| {setting} | {len(vals)} | {rule} | {100 * statistics.fmean(t for t, _ in vals):.2f} | "
                f"{100 * statistics.fmean(b - t for t, b in vals):.2f} | {sum(t == b for t, b in vals)}/{len(vals)} |"
            )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
