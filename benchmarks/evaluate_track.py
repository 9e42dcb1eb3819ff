"""Check `suscli track`'s keep-rule on the zoo: which saved epoch of each run does it keep, and how good is it?

For every model of the zoo, the rule (suscli.track.epoch_to_keep) sees only what `track` sees: training accuracy
on the noisy labels and r at each saved epoch. Its choice is compared, by clean test accuracy, with keeping the
last epoch, keeping the epoch of highest training accuracy, and the oracle (the best epoch of that run).

    python benchmarks/evaluate_track.py --zoo benchmarks/out/zoo --settings sym40,asym40

r is read from the measurements that benchmarks/evaluate.py cached (run it first), at the CLI's defaults.
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

from suscli.susceptibility import DEFAULT_BATCH_SIZE, DEFAULT_BATCHES, DEFAULT_LR  # noqa: E402
from suscli.ranking import thresholds  # noqa: E402
from suscli.rules import choose  # noqa: E402
from suscli.track import epoch_to_keep  # noqa: E402


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
    lines = ["| setting | runs | rule | mean clean test acc of the kept epoch (%) | mean regret vs the run's best epoch (pts) | picks the best epoch |",
             "|---|---|---|---|---|---|"]
    for setting in args.settings.split(","):
        runs: dict[str, list] = {}
        preds = predictions(candidates(args.zoo, [setting]), args.zoo, setting)
        for c in candidates(args.zoo, [setting]):
            runs.setdefault(c.model_id, []).append(c)
        picks: dict[str, list[tuple[float, float]]] = {}
        for cs in runs.values():
            cs.sort(key=lambda c: c.epoch)
            r = [statistics.fmean(cache[(str(c.path), DEFAULT_LR, DEFAULT_BATCH_SIZE, args.max_batches, args.seed)][:DEFAULT_BATCHES]) for c in cs]
            best = max(c.test_acc for c in cs)
            chosen = {
                "knee (suscli track)": cs[epoch_to_keep([c.train_acc for c in cs], r)],
                "last epoch": cs[-1],
                "highest training accuracy": max(reversed(cs), key=lambda c: c.train_acc),
            }
            for rule in ("agreement", "regions"):
                rows = rows_for(cs, r, preds)
                first = choose(rows, rule, thresholds(rows, "mean")).ranked[0]
                chosen[f"{rule} over the run's epochs"] = cs[int(first.name)]
            for rule, c in chosen.items():
                picks.setdefault(rule, []).append((c.test_acc, best))
        for rule, vals in picks.items():
            lines.append(f"| {setting} | {len(vals)} | {rule} | {100 * statistics.fmean(t for t, _ in vals):.2f} | "
                         f"{100 * statistics.fmean(b - t for t, b in vals):.2f} | {sum(t == b for t, b in vals)}/{len(vals)} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
