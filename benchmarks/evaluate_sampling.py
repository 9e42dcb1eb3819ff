"""Choosing the first sample size and the stopping rule of the sampled training accuracy (suscli.measure.sampling, issue 16).

Every pool of a zoo made by benchmarks/zoo/train_zoo.py (per setting: the final models, and every saved (model,
epoch) candidate) is audited as `suscli rank` would audit it, with the cached measurements that
benchmarks/evaluate_choice.py loads (susceptibility, predictions on the unlabeled images, and the training-accuracy
pass's top classes on every training image). The training-accuracy pass is then replayed on nested seeded
samples: the rows at n images are the full pass's per-image results on the first n images of a seeded order,
exactly what `suscli rank` measures on that sample. For each candidate rule (first size, patience) and several
seeds of the order, the rule's stopping size is compared with the full pass: Kendall tau of the table's order,
the same pick, the share of models in the same region. Then, by simulation over many seeded samples: how often
the 95% Wilson interval of a model's accuracy on n images contains its accuracy on the whole set, and how often
the sign of a paired difference between two models on the sample is the sign on the whole set.

    python benchmarks/evaluate_sampling.py --zoo benchmarks/out/zoo-human [--seeds 5]

Writes <out>/sampling.md (printed too) and sampling.json.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import tau
from evaluate_choice import load_pools

from suscli.measure.accuracy import encode_hits, from_counts, wilson_interval
from suscli.measure.predictions import Predictions
from suscli.results import Result
from suscli.judge.rules import train_predictions_of
from suscli.judge.rules import pool_decisions
from suscli.measure.sampling import Decisions, seeded_order, settle, stage_sizes

STARTS = (250, 500, 1000, 2000)
PATIENCES = (1, 2)
COVERAGE_SIZES = (250, 500, 1000, 2000, 4000)
COVERAGE_DRAWS = 400


def sampled_rows(rows: list[Result], hits: list[np.ndarray], order: np.ndarray, n: int) -> list[Result]:
    """The rows as `suscli rank` holds them after measuring the first n images of `order`."""
    out = []
    take = order[:n]
    for row, hit in zip(rows, hits):
        r = copy.copy(row)
        r.details = dict(row.details)
        tp = train_predictions_of(row)
        cut = Predictions(tp.classes[take], tp.probs[take], tp.num_classes, tp.labels[take])
        acc = from_counts(int(hit[take].sum()), n, len(order), 512)
        r.train_acc, r.train_acc_low, r.train_acc_high, r.train_n = acc.value, acc.low, acc.high, acc.total
        r.details["train_predictions"] = cut.encode()
        r.details["train_hits"] = encode_hits(hit[take])
        out.append(r)
    return out


def replay(rows: list[Result], seeds: int) -> dict:
    """Every candidate rule on one pool, for each seed of the order: stopping size and agreement with the full pass."""
    hits = [(lambda p: p.top1() == p.labels)(train_predictions_of(r)) for r in rows]
    full = pool_decisions(copy.deepcopy(rows))
    results: dict[str, list[dict]] = {}
    for seed in range(seeds):
        for rule, outcome in replay_order(rows, hits, np.array(seeded_order(len(hits[0]), seed, start=0)), full).items():
            results.setdefault(rule, []).append(outcome)
    return results


def replay_order(rows: list[Result], hits: list[np.ndarray], order: np.ndarray, full: Decisions) -> dict[str, dict]:
    """Every candidate rule on one seeded order; each size's rows and decisions are computed once for all rules."""
    seen: dict[int, tuple[list[Result], Decisions]] = {}

    def at(n: int) -> list[Result]:
        if n not in seen:
            sample = sampled_rows(rows, hits, order, n)
            seen[n] = (sample, pool_decisions(copy.deepcopy(sample)))
        return seen[n][0]

    def decide(sample: list[Result]) -> Decisions:
        return seen[sample[0].train_n][1]

    out = {}
    for start, patience in itertools.product(STARTS, PATIENCES):
        n = settle(stage_sizes(len(order), start), at, decide, patience)
        sample, d = seen[n]
        out[f"{start}/{patience}"] = {
            "images": n,
            "tau": order_tau(d.order, full.order),
            "same_pick": d.pick == full.pick,
            "regions": float(np.mean([a == b for a, b in zip(d.regions, full.regions)])),
            "verdicts": float(np.mean([a == b for a, b in zip(d.verdicts, full.verdicts)])),
            "covered": None
            if n == len(order)
            else float(np.mean([r.train_acc_low <= f.train_acc <= r.train_acc_high for r, f in zip(sample, rows)])),
        }
    return out


def order_tau(order: tuple[str, ...], truth: tuple[str, ...]) -> float:
    position = {name: i for i, name in enumerate(truth)}
    return tau(list(range(len(order))), [position[name] for name in order])


def coverage(rows: list[Result], draws: int, rng: np.random.Generator) -> dict:
    """Over seeded samples of each size: interval coverage per model, and the paired differences' signs."""
    hits = np.stack([(lambda p: p.top1() == p.labels)(train_predictions_of(r)) for r in rows])
    truth = hits.mean(1)
    pairs = np.array([(a, b) for a, b in itertools.combinations(range(len(rows)), 2) if truth[a] != truth[b]])
    out = {}
    for n in COVERAGE_SIZES:
        inside = signs = clear = clear_right = 0
        for _ in range(draws):
            take = rng.choice(hits.shape[1], size=n, replace=False)
            sample = hits[:, take]
            correct = sample.sum(1)
            for m in range(len(rows)):
                low, high = wilson_interval(int(correct[m]), n)
                inside += low <= truth[m] <= high
            means = sample.mean(1)
            cov = np.cov(sample.astype(np.float32))
            a, b = pairs[:, 0], pairs[:, 1]
            diff = means[a] - means[b]
            sem = np.sqrt(np.maximum(cov[a, a] + cov[b, b] - 2 * cov[a, b], 0) / n)
            right = np.sign(diff) == np.sign(truth[a] - truth[b])
            is_clear = np.abs(diff) > 1.96 * sem
            signs += int(right.sum())
            clear += int(is_clear.sum())
            clear_right += int((right & is_clear).sum())
        out[n] = {
            "coverage": inside / (draws * len(rows)),
            "sign_right": signs / (draws * len(pairs)),
            "clear_share": clear / (draws * len(pairs)),
            "clear_sign_right": clear_right / clear if clear else None,
        }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", type=Path, default=Path("benchmarks/out/zoo-human"))
    ap.add_argument("--settings", default="human-worst,human-random1,sym40")
    ap.add_argument("--seeds", type=int, default=5, help="seeded orders replayed per pool and rule")
    ap.add_argument("--draws", type=int, default=COVERAGE_DRAWS, help="samples per size in the coverage simulation")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/sampling"))
    args = ap.parse_args(argv)
    pools = load_pools(args.zoo, args.settings.split(","))
    rng = np.random.default_rng(0)
    report: dict = {"rules": {}, "coverage": {}}
    for (setting, name), (_, rows, _) in pools.items():
        print(f"{setting} {name}: {len(rows)} models", file=sys.stderr, flush=True)
        report["rules"][f"{setting}/{name}"] = replay(rows, args.seeds)
        report["coverage"][f"{setting}/{name}"] = coverage(rows, args.draws, rng)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sampling.json").write_text(json.dumps(report, indent=1))
    population = len(train_predictions_of(next(iter(pools.values()))[1][0]).labels)
    text = render(report, population, args.seeds)
    (args.out / "sampling.md").write_text(text)
    print(text)


def render(report: dict, population: int, seeds: int) -> str:
    lines = [
        f"## Stopping rules, {seeds} seeded orders per pool (first size / patience), of {population} images",
        "",
        "| rule | pool | images used (mean, max) | tau vs full (mean, min) | same pick | regions agree (mean, min) "
        "| verdicts agree (mean, min) | intervals holding the full-set accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rule in (f"{s}/{p}" for s, p in itertools.product(STARTS, PATIENCES)):
        for pool, rules in report["rules"].items():
            xs = rules[rule]
            lines.append(
                f"| {rule} | {pool} | {statistics.fmean(x['images'] for x in xs):.0f}, {max(x['images'] for x in xs)} "
                f"| {statistics.fmean(x['tau'] for x in xs):.3f}, {min(x['tau'] for x in xs):.3f} "
                f"| {sum(x['same_pick'] for x in xs)}/{len(xs)} "
                f"| {statistics.fmean(x['regions'] for x in xs):.3f}, {min(x['regions'] for x in xs):.3f} "
                f"| {statistics.fmean(x['verdicts'] for x in xs):.3f}, {min(x['verdicts'] for x in xs):.3f} | {_covered(xs)} |"
            )
    lines += [
        "",
        "## Every pool together",
        "",
        "| rule | images used (mean, max) | tau (mean, min) | same pick | regions (mean, min) | verdicts (mean, min) "
        "| intervals holding it |",
        "|---|---|---|---|---|---|---|",
    ]
    for rule in (f"{s}/{p}" for s, p in itertools.product(STARTS, PATIENCES)):
        xs = [x for rules in report["rules"].values() for x in rules[rule]]
        lines.append(
            f"| {rule} | {statistics.fmean(x['images'] for x in xs):.0f}, {max(x['images'] for x in xs)} "
            f"| {statistics.fmean(x['tau'] for x in xs):.3f}, {min(x['tau'] for x in xs):.3f} "
            f"| {sum(x['same_pick'] for x in xs)}/{len(xs)} "
            f"| {statistics.fmean(x['regions'] for x in xs):.3f}, {min(x['regions'] for x in xs):.3f} "
            f"| {statistics.fmean(x['verdicts'] for x in xs):.3f}, {min(x['verdicts'] for x in xs):.3f} | {_covered(xs)} |"
        )
    lines += [
        "",
        f"## Coverage of the 95% interval, and paired differences (of {population} images)",
        "",
        "| pool | images | interval holds the full-set accuracy | paired difference: sign right | clear (95%) | clear: sign right |",
        "|---|---|---|---|---|---|",
    ]
    for pool, sizes in report["coverage"].items():
        for n, c in sizes.items():
            clear = "-" if c["clear_sign_right"] is None else f"{c['clear_sign_right']:.4f}"
            lines.append(f"| {pool} | {n} | {c['coverage']:.3f} | {c['sign_right']:.3f} | {c['clear_share']:.3f} | {clear} |")
    return "\n".join(lines) + "\n"


def _covered(xs: list[dict]) -> str:
    """Mean share of the models whose interval at the stopping size holds the full-set accuracy (- at the full set)."""
    held = [x["covered"] for x in xs if x["covered"] is not None]
    return f"{statistics.fmean(held):.3f} ({len(held)} runs)" if held else "- (full set)"


if __name__ == "__main__":
    main()
