"""Does susceptibility agree with clean test accuracy it never sees? Measure it on a model zoo.

Reads a zoo made by benchmarks/zoo/train_zoo.py, measures every saved checkpoint with suscli's own
measurement (suscli.measure.susceptibility.measure_susceptibility, the code `suscli rank` runs) over a grid of step
sizes and batch sizes, then compares rankings with the clean test accuracy recorded by the zoo:

- clean test accuracy per region (pool-mean thresholds), mean +- std, as in the paper's table;
- Kendall tau with clean test accuracy of suscli's ranking, training accuracy alone, susceptibility alone,
  and Kendall tau between susceptibility and the oracle memorization (fit on the mislabeled images);
- for the single-checkpoint form and the trajectory form (running mean of r over the saved epochs);
- for two pools: final models, and every (model, saved epoch) candidate;
- over the grid of lr x batch size x number of batches, with the measurement time of each.

    python benchmarks/evaluate.py --zoo benchmarks/out/zoo [--settings sym40] [--lrs 0.01,0.03,0.1]

Measurements are cached in <zoo>/eval/measurements.jsonl (a rerun only measures what is missing); the
report is printed and written to <zoo>/eval/report.md (grid summary, the chosen default, per-setting tables),
report-full-grid.md and summary.json. Training accuracy is the zoo's
record of the same quantity suscli reports (eval-mode accuracy on the noisy training labels, whole set).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from suscli.load.checkpoints import load_checkpoint
from suscli.data.images import ImageSource, normalizer
from suscli.judge.regions import Thresholds, rank, region
from suscli.results import Result
from suscli.measure.susceptibility import SusceptibilityConfig, measure_susceptibility


@dataclass
class Candidate:
    setting: str
    model_id: str
    epoch: int
    last: bool  # the model's final checkpoint
    path: Path
    train_acc: float  # noisy labels
    memorized: float
    test_acc: float
    arch: str


def candidates(zoo: Path, settings: list[str]) -> list[Candidate]:
    manifest = json.loads((zoo / "zoo.json").read_text())
    out = []
    for m in manifest["models"]:
        if m["setting"] not in settings:
            continue
        rec_path = zoo / m["record"]
        if not rec_path.is_file():
            continue
        rec = json.loads(rec_path.read_text())
        if not rec.get("complete"):
            continue
        by_epoch = {row["epoch"]: row for row in rec["epochs"]}
        saved = sorted(int(e) for e in rec["checkpoints"])
        for e in saved:
            row = by_epoch[e]
            out.append(
                Candidate(
                    m["setting"],
                    m["model_id"],
                    e,
                    e == saved[-1],
                    zoo / m["dir"] / rec["checkpoints"][str(e)],
                    row["train_acc_noisy"],
                    row["memorized"],
                    row["test_acc"],
                    m["model_id"].split("-")[0],
                )
            )
    return out


def image_size(meta: dict) -> int:
    """The side a zoo checkpoint was trained at, which its images are decoded at: its recorded image_size (32 in
    checkpoints from before zoos recorded another)."""
    return int(meta.get("image_size", 32))


def measure_all(cands: list[Candidate], zoo: Path, lrs: list[float], batch_sizes: list[int], max_batches: int, seed: int) -> dict:
    """r per batch for every candidate x lr x batch size, cached in a JSONL file keyed by path and grid point."""
    cache_path = zoo / "eval" / "measurements.jsonl"
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    cache: dict[tuple, dict] = {}
    if cache_path.exists():
        for line in cache_path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            cache[(rec["path"], rec["lr"], rec["batch_size"], rec["batches"], rec["seed"])] = rec
    sources: dict[str, ImageSource] = {}
    todo = [(c, lr, bs) for c in cands for lr in lrs for bs in batch_sizes if (str(c.path), lr, bs, max_batches, seed) not in cache]
    print(f"measuring {len(todo)} of {len(cands) * len(lrs) * len(batch_sizes)} (candidate, lr, batch size) points", file=sys.stderr)
    started = time.perf_counter()
    with open(cache_path, "a") as f:
        for k, (c, lr, bs) in enumerate(todo):
            if c.setting not in sources:
                paths = [Path(p) for p in (zoo / c.setting / "unlabeled.txt").read_text().split()]
                sources[c.setting] = ImageSource(paths, population=len(paths))
            ckpt = load_checkpoint(c.path)
            pixels, _, _ = sources[c.setting].decoded(image_size(ckpt.meta), 3)
            t0 = time.perf_counter()
            s = measure_susceptibility(
                ckpt.model,
                pixels,
                config=SusceptibilityConfig(lr=lr, batches=max_batches, batch_size=bs, seed=seed),
                transform=normalizer(ckpt.meta["mean"], ckpt.meta["std"]),
            )
            rec = {
                "path": str(c.path),
                "lr": lr,
                "batch_size": bs,
                "batches": max_batches,
                "seed": seed,
                "r": s.r,
                "loss_before": s.loss_before,
                "seconds": time.perf_counter() - t0,
            }
            f.write(json.dumps(rec) + "\n")
            f.flush()
            cache[(str(c.path), lr, bs, max_batches, seed)] = rec
            if (k + 1) % 20 == 0 or k + 1 == len(todo):
                el = time.perf_counter() - started
                print(f"  {k + 1}/{len(todo)} measured, {el:.0f}s, eta {el / (k + 1) * (len(todo) - k - 1):.0f}s", file=sys.stderr)
    return cache


def tau(x: list[float], y: list[float]) -> float:
    t = kendalltau(x, y).statistic
    return float("nan") if t is None or np.isnan(t) else float(t)


def suscli_order(accs: list[float], zetas: list[float]) -> list[float]:
    """A score whose order is suscli's ranking (region, then training accuracy, then susceptibility): higher = better."""
    rows = [Result(name=str(i), path=str(i), train_acc=a, susceptibility=z) for i, (a, z) in enumerate(zip(accs, zetas))]
    t = Thresholds(statistics.fmean(zetas), statistics.fmean(accs), "pool mean")
    ranked = rank(rows, t)
    score = [0.0] * len(rows)
    for pos, r in enumerate(ranked):
        score[int(r.name)] = float(len(rows) - pos)
    return score


def evaluate_pool(cands: list[Candidate], zetas: list[float]) -> dict:
    accs = [c.train_acc for c in cands]
    tests = [c.test_acc for c in cands]
    t = Thresholds(statistics.fmean(zetas), statistics.fmean(accs), "pool mean")
    regions = [region(a, z, t) for a, z in zip(accs, zetas)]
    per_region = {}
    for g in (1, 2, 3, 4):
        vals = [100 * x for x, r in zip(tests, regions) if r == g]
        per_region[g] = {
            "n": len(vals),
            "mean": statistics.fmean(vals) if vals else None,
            "std": statistics.stdev(vals) if len(vals) > 1 else None,
        }
    order = suscli_order(accs, zetas)
    best = max(range(len(cands)), key=lambda i: order[i])
    return {
        "n": len(cands),
        "regions": per_region,
        "tau_suscli": tau(order, tests),
        "tau_train_acc": tau(accs, tests),
        "tau_susceptibility": tau([-z for z in zetas], tests),
        "tau_sus_vs_memorized": tau(zetas, [c.memorized for c in cands]),
        "regret": 100 * (max(tests) - tests[best]),
    }


def zeta_for(c: Candidate, cache: dict, lr: float, bs: int, nb: int, max_batches: int, seed: int, form: str, by_model: dict) -> float:
    def single(x: Candidate) -> float:
        return statistics.fmean(cache[(str(x.path), lr, bs, max_batches, seed)]["r"][:nb])

    if form == "single":
        return single(c)
    history = [x for x in by_model[(c.setting, c.model_id)] if x.epoch <= c.epoch]
    return statistics.fmean(single(x) for x in history)  # running mean over the saved epochs so far


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", type=Path, default=Path("benchmarks/out/zoo"))
    ap.add_argument("--settings", default=None, help="comma list; default: every setting in the zoo")
    ap.add_argument("--lrs", default="0.01,0.03,0.1")
    ap.add_argument("--batch-sizes", default="32,128")
    ap.add_argument("--max-batches", type=int, default=8, help="batches measured; smaller counts use the first ones")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    manifest = json.loads((args.zoo / "zoo.json").read_text())
    settings = args.settings.split(",") if args.settings else list(manifest["settings"])
    lrs = [float(x) for x in args.lrs.split(",")]
    bss = [int(x) for x in args.batch_sizes.split(",")]
    nbs = [n for n in (1, 2, 4, 8, 16, 32) if n <= args.max_batches]
    cands = candidates(args.zoo, settings)
    cache = measure_all(cands, args.zoo, lrs, bss, args.max_batches, args.seed)
    by_model: dict[tuple, list[Candidate]] = {}
    for c in cands:
        by_model.setdefault((c.setting, c.model_id), []).append(c)
    results = []
    for setting in settings:
        sc = [c for c in cands if c.setting == setting]
        pools = {"final": [c for c in sc if c.last], "all-epochs": sc}
        for lr in lrs:
            for bs in bss:
                secs = statistics.fmean(cache[(str(c.path), lr, bs, args.max_batches, args.seed)]["seconds"] for c in sc) / args.max_batches
                for nb in nbs:
                    for form in ("single", "trajectory"):
                        for pool_name, pool in pools.items():
                            if len(pool) < 4:
                                continue
                            zetas = [zeta_for(c, cache, lr, bs, nb, args.max_batches, args.seed, form, by_model) for c in pool]
                            res = evaluate_pool(pool, zetas)
                            results.append(
                                {
                                    "setting": setting,
                                    "pool": pool_name,
                                    "form": form,
                                    "lr": lr,
                                    "batch_size": bs,
                                    "batches": nb,
                                    "seconds_per_model": secs * nb,
                                    **res,
                                }
                            )
    choice = choose_default(results, by_model, cands, cache, args)
    out = args.zoo / "eval"
    (out / "summary.json").write_text(
        json.dumps(
            {
                "settings": settings,
                "lrs": lrs,
                "batch_sizes": bss,
                "batches": nbs,
                "n_candidates": len(cands),
                "choice": choice,
                "results": results,
            },
            indent=1,
        )
    )
    report = render(results, settings, manifest, choice)
    (out / "report.md").write_text(report)
    (out / "report-full-grid.md").write_text(render_grid(results, settings, manifest))
    print(report)


def grid_means(results: list[dict], pool: str = "all-epochs", form: str = "single") -> dict[tuple, dict]:
    """Per grid point (lr, batch size, batches): tau of suscli's ranking averaged over the noise settings."""
    points: dict[tuple, list[dict]] = {}
    for r in results:
        if r["pool"] == pool and r["form"] == form:
            points.setdefault((r["lr"], r["batch_size"], r["batches"]), []).append(r)
    return {
        k: {
            "tau_suscli": statistics.fmean(r["tau_suscli"] for r in v),
            "tau_train_acc": statistics.fmean(r["tau_train_acc"] for r in v),
            "seconds_per_model": statistics.fmean(r["seconds_per_model"] for r in v),
            "settings": len(v),
        }
        for k, v in points.items()
    }


def bootstrap_se(cands: list[Candidate], zetas: list[float], reps: int = 200, seed: int = 0) -> float:
    """Standard error of suscli's tau over resampled pools: what 'within noise' means when choosing defaults."""
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(reps):
        idx = rng.integers(0, len(cands), len(cands))
        order = suscli_order([cands[i].train_acc for i in idx], [zetas[i] for i in idx])
        t = tau(order, [cands[i].test_acc for i in idx])
        if not np.isnan(t):
            taus.append(t)
    return float(np.std(taus))


REPEATABLE = 0.95


def split_half(cands: list[Candidate], cache: dict, lr: float, bs: int, nb: int, max_batches: int, seed: int) -> float:
    """Kendall tau, over all candidates, between the mean r of batches [0, nb) and of batches [nb, 2 nb): how well
    the measurement repeats itself with other random-label batches (nan when 2 nb batches were not measured)."""
    if 2 * nb > max_batches:
        return float("nan")
    rs = [cache[(str(c.path), lr, bs, max_batches, seed)]["r"] for c in cands]
    return tau([statistics.fmean(r[:nb]) for r in rs], [statistics.fmean(r[nb : 2 * nb]) for r in rs])


def choose_default(results: list[dict], by_model: dict, cands: list[Candidate], cache: dict, args: argparse.Namespace) -> dict:
    """The cheapest grid point (images stepped on: batches x batch size) whose settings-averaged tau is within one
    bootstrap standard error of the best one's (every-epoch pool, single-checkpoint form), among those with 2+
    batches and a split-half repeatability of at least REPEATABLE; among points of equal cost, the one whose
    measurement repeats best."""
    means = grid_means(results)
    best_key = max(means, key=lambda k: means[k]["tau_suscli"])
    lr, bs, nb = best_key
    ses = []
    for setting in sorted({c.setting for c in cands}):
        sc = [c for c in cands if c.setting == setting]
        ses.append(bootstrap_se(sc, [zeta_for(c, cache, lr, bs, nb, args.max_batches, args.seed, "single", by_model) for c in sc]))
    se = statistics.fmean(ses) / math.sqrt(len(ses))  # the averaged tau's standard error (settings independent)
    for k in means:
        means[k]["repeatability"] = split_half(cands, cache, *k, args.max_batches, args.seed)
    # at least two batches (the CLI reports the spread of r, which one batch cannot give) and a measurement that
    # repeats: two disjoint sets of batches order the candidates alike (split-half Kendall tau >= REPEATABLE)
    ok = [
        k
        for k in means
        if k[2] >= 2 and means[k]["repeatability"] >= REPEATABLE and means[k]["tau_suscli"] >= means[best_key]["tau_suscli"] - se
    ]
    # equal cost: the measurement that repeats best, then the higher tau (a one-point grid: that point)
    chosen = min(ok or [best_key], key=lambda k: (k[1] * k[2], -means[k]["repeatability"], -means[k]["tau_suscli"]))
    return {
        "best": {"lr": lr, "batch_size": bs, "batches": nb, **means[best_key]},
        "bootstrap_se": se,
        "chosen": {"lr": chosen[0], "batch_size": chosen[1], "batches": chosen[2], **means[chosen]},
        "grid": [{"lr": k[0], "batch_size": k[1], "batches": k[2], **v} for k, v in sorted(means.items())],
    }


def fmt_region(r: dict) -> str:
    if not r["n"]:
        return "-"
    return f"{r['mean']:.2f} ± {r['std']:.2f} ({r['n']})" if r["std"] is not None else f"{r['mean']:.2f} ({r['n']})"


ROW_HEADER = (
    "| pool | form | lr | batch | batches | s/model | R1 | R2 | R3 | R4 | tau suscli | tau train acc | tau -zeta "
    "| tau zeta~memorized | regret (pts) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def row_line(r: dict) -> str:
    return (
        f"| {r['pool']} ({r['n']}) | {r['form']} | {r['lr']:g} | {r['batch_size']} | {r['batches']} | {r['seconds_per_model']:.2f} | "
        + " | ".join(fmt_region(r["regions"][g]) for g in (1, 2, 3, 4))
        + f" | {r['tau_suscli']:.3f} | {r['tau_train_acc']:.3f} | {r['tau_susceptibility']:.3f} | {r['tau_sus_vs_memorized']:.3f} | {r['regret']:.2f} |"
    )


def render(results: list[dict], settings: list[str], manifest: dict, choice: dict) -> str:
    c, b = choice["chosen"], choice["best"]
    lines = [
        "# suscli zoo evaluation",
        "",
        "## Grid: Kendall tau of suscli's ranking with clean test accuracy, every (model, saved epoch) candidate, "
        "single-checkpoint form, averaged over the noise settings",
        "",
        "| lr | batch size | batches | tau suscli | tau train acc | split-half repeatability | s/model |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in choice["grid"]:
        mark = " (chosen)" if (g["lr"], g["batch_size"], g["batches"]) == (c["lr"], c["batch_size"], c["batches"]) else ""
        mark += " (best)" if (g["lr"], g["batch_size"], g["batches"]) == (b["lr"], b["batch_size"], b["batches"]) else ""
        lines.append(
            f"| {g['lr']:g} | {g['batch_size']} | {g['batches']}{mark} | {g['tau_suscli']:.3f} | {g['tau_train_acc']:.3f} "
            f"| {g['repeatability']:.3f} | {g['seconds_per_model']:.2f} |"
        )
    lines += [
        "",
        f"Best: lr {b['lr']:g}, batch size {b['batch_size']}, {b['batches']} batches (tau {b['tau_suscli']:.3f}); "
        f"bootstrap standard error {choice['bootstrap_se']:.3f}; chosen (cheapest with 2+ batches, split-half repeatability "
        f">= {REPEATABLE}, within one standard error): "
        f"lr {c['lr']:g}, batch size {c['batch_size']}, {c['batches']} batches (tau {c['tau_suscli']:.3f}; equal cost: the best split-half repeatability).",
        "",
    ]
    for setting in settings:
        rs = [
            r
            for r in results
            if r["setting"] == setting and (r["lr"], r["batch_size"], r["batches"]) == (c["lr"], c["batch_size"], c["batches"])
        ]
        if not rs:
            continue
        lines += [
            f"## {setting} at the chosen setting (mislabeled fraction {manifest['settings'][setting]['mislabeled_fraction']:.3f})",
            "",
            "Clean test accuracy (%) per region, mean ± std (count); Kendall tau with clean test accuracy; regret = best "
            "clean test accuracy in the pool minus that of suscli's first choice.",
            "",
            ROW_HEADER,
        ]
        lines += [row_line(r) for r in rs]
        lines.append("")
    return "\n".join(lines) + "\n"


def render_grid(results: list[dict], settings: list[str], manifest: dict) -> str:
    lines = ["# suscli zoo evaluation: every grid point", ""]
    for setting in settings:
        lines += [f"## {setting}", "", ROW_HEADER] + [row_line(r) for r in results if r["setting"] == setting] + [""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
