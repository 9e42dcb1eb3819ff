"""Which selection rule recommends the checkpoint to ship? Compare them on the zoo's pools (issue 8).

For every noise setting of a zoo made by benchmarks/zoo/train_zoo.py, two pools (the final models, and every
(model, saved epoch) candidate: early-stopped, augmented and every architecture mixed in one pool), every rule
of suscli.judge.rules plus variants, with the same inputs suscli rank computes: training accuracy on the noisy labels
(the zoo's record of it), susceptibility at the default step (measured here with suscli's own code and cached
by benchmarks/evaluate.py's cache), and the top-5 predictions on the unlabeled images (suscli.measure.predictions.predict).
Per rule and pool: Kendall tau of its order with clean test accuracy, the regret (best clean test accuracy in
the pool minus that of the rule's first model, in points) and whether that model is in the pool's top quarter.

Step-size robustness: the share of negative scores per architecture and step, and the rules rerun with the
susceptibility of lr 0.03 and 0.1 and of a normalized step (fixed length in weight space).

    python benchmarks/evaluate_rules.py --zoo benchmarks/out/zoo [--settings sym40,asym40]

Writes <zoo>/eval/rules.md (printed too) and rules.json; predictions and normalized-step measurements are
cached under <zoo>/eval/ so a rerun measures only what is missing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import Candidate, candidates, image_size, measure_all, tau

from suscli.measure.predictions import Predictions, predict
from suscli.load.checkpoints import load_checkpoint
from suscli.data.images import ImageSource, normalizer
from suscli.judge.regions import thresholds
from suscli.results import Result
from suscli.judge.rules import choose
from suscli.defaults import DEFAULT_BATCH_SIZE, DEFAULT_BATCHES, DEFAULT_LR
from suscli.measure.steps import normalized_step
from suscli.measure.susceptibility import SusceptibilityConfig, measure_susceptibility

MAX_BATCHES = 8  # evaluate.py's cache measures 8 batches; the default uses the first DEFAULT_BATCHES
LRS = (DEFAULT_LR, 0.03, 0.1)
NORMALIZED_LENGTHS = (0.5, 2.0)
# (label, rule, thresholds, agreement voters, susceptibility source)
VARIANTS = [
    ("regions (pool mean, the paper)", "regions", "mean", None, "lr"),
    ("regions (pool median)", "regions", "median", None, "lr"),
    ("training accuracy alone", "train-acc", "mean", None, "lr"),
    ("susceptibility alone", "susceptibility", "mean", None, "lr"),
    ("pareto front", "pareto", "mean", None, "lr"),
    ("agreement alone, all vote", "agreement-pure", "mean", "all", "lr"),
    ("agreement alone, region 1 votes", "agreement-pure", "mean", "region1", "lr"),
    ("agreement then fit, all vote", "agreement", "mean", "all", "lr"),
    ("agreement then fit, region 1 votes", "agreement", "mean", "region1", "lr"),
]


def source_of(setting: str, zoo: Path) -> ImageSource:
    paths = [Path(p) for p in (zoo / setting / "unlabeled.txt").read_text().split()]
    return ImageSource(paths, population=len(paths))


def predictions(cands: list[Candidate], zoo: Path, setting: str) -> dict[str, Predictions]:
    """Top-k predictions of every candidate on its setting's unlabeled images, cached in one .npz per setting."""
    path = zoo / "eval" / f"predictions-{setting}.npz"
    have: dict[str, Predictions] = {}
    if path.exists():
        z = np.load(path)
        have = {str(p): Predictions(c, pr, int(z["num_classes"])) for p, c, pr in zip(z["paths"], z["classes"], z["probs"])}
    todo = [c for c in cands if str(c.path) not in have]
    if todo:
        source = source_of(setting, zoo)
        print(f"{setting}: predicting {len(todo)} candidates on {len(source.paths)} unlabeled images", file=sys.stderr)
        for c in todo:
            ckpt = load_checkpoint(c.path)
            pixels, _, _ = source.decoded(image_size(ckpt.meta), 3)
            have[str(c.path)] = predict(ckpt.model, pixels, transform=normalizer(ckpt.meta["mean"], ckpt.meta["std"]))
        keys = sorted(have)
        np.savez(
            path,
            paths=np.array(keys),
            classes=np.stack([have[k].classes for k in keys]),
            probs=np.stack([have[k].probs for k in keys]),
            num_classes=have[keys[0]].num_classes,
        )
    return have


def normalized(cands: list[Candidate], zoo: Path, setting: str) -> dict[tuple[str, float], float]:
    """Susceptibility with a normalized step of each length, cached in eval/normalized.jsonl."""
    path = zoo / "eval" / "normalized.jsonl"
    have = {}
    if path.exists():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            have[(rec["path"], rec["length"])] = rec["mean"]
    todo = [(c, L) for c in cands for L in NORMALIZED_LENGTHS if (str(c.path), L) not in have]
    if todo:
        source = source_of(setting, zoo)
        print(f"{setting}: {len(todo)} normalized-step measurements", file=sys.stderr)
        with open(path, "a") as f:
            for c, L in todo:
                ckpt = load_checkpoint(c.path)
                pixels, _, _ = source.decoded(image_size(ckpt.meta), 3)
                cfg = SusceptibilityConfig(batches=DEFAULT_BATCHES, batch_size=DEFAULT_BATCH_SIZE)
                s = measure_susceptibility(
                    ckpt.model, pixels, config=cfg, transform=normalizer(ckpt.meta["mean"], ckpt.meta["std"]), step=normalized_step(L)
                )
                have[(str(c.path), L)] = s.mean
                f.write(json.dumps({"path": str(c.path), "length": L, "mean": s.mean}) + "\n")
    return have


def rows_for(pool: list[Candidate], zetas: list[float], preds: dict[str, Predictions]) -> list[Result]:
    return [
        Result(
            name=f"{i:04d}",
            path=str(c.path),
            arch=c.arch,
            epoch=c.epoch,
            train_acc=c.train_acc,
            susceptibility=z,
            details={"predictions": preds[str(c.path)].encode()},
        )
        for i, (c, z) in enumerate(zip(pool, zetas))
    ]


def judge(pool: list[Candidate], rows: list[Result], rule: str, thr: str, voters: str | None) -> dict:
    t = thresholds(rows, thr)
    pure = rule == "agreement-pure"
    choice = choose(rows, "agreement" if pure else rule, t, voters=voters or "region1", tie_break="none" if pure else "fit")
    tests = [c.test_acc for c in pool]
    position = {r.name: len(rows) - k for k, r in enumerate(choice.ranked)}
    order = [position[r.name] for r in rows]
    first = int(choice.ranked[0].name)
    return {
        "tau": tau(order, tests),
        "regret": 100 * (max(tests) - tests[first]),
        "top_quarter": bool(tests[first] >= np.quantile(tests, 0.75)),
        "confident": choice.confident,
        "picked": choice.pick is not None,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", type=Path, default=Path("benchmarks/out/zoo"))
    ap.add_argument("--settings", default=None, help="comma list; default: every setting in the zoo")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    manifest = json.loads((args.zoo / "zoo.json").read_text())
    settings = args.settings.split(",") if args.settings else list(manifest["settings"])
    out = []
    negatives = {}
    for setting in settings:
        cands = candidates(args.zoo, [setting])
        if len(cands) < 8:
            print(f"{setting}: only {len(cands)} candidates, skipped", file=sys.stderr)
            continue
        cache = measure_all(cands, args.zoo, list(LRS), [DEFAULT_BATCH_SIZE], MAX_BATCHES, 0)
        preds = predictions(cands, args.zoo, setting)
        norm = normalized(cands, args.zoo, setting)

        def zeta(c: Candidate, source: str, lr: float, norm: dict = norm, cache: dict = cache) -> float:
            """A candidate's susceptibility by plain step size or normalized step length (this setting's measurements)."""
            if source == "normalized":
                return norm[(str(c.path), lr)]
            return statistics.fmean(cache[(str(c.path), lr, DEFAULT_BATCH_SIZE, MAX_BATCHES, 0)]["r"][:DEFAULT_BATCHES])

        for c in cands:
            for key in [("lr", lr) for lr in LRS] + [("normalized", L) for L in NORMALIZED_LENGTHS]:
                negatives.setdefault((c.arch, *key), []).append(zeta(c, *key) < 0)
        pools = {"final": [c for c in cands if c.last], "all-epochs": cands}
        for pool_name, pool in pools.items():
            for source, lr in [("lr", lr) for lr in LRS] + [("normalized", L) for L in NORMALIZED_LENGTHS]:
                zetas = [zeta(c, source, lr) for c in pool]
                for label, rule, thr, voters, _ in VARIANTS:
                    if (source, lr) != ("lr", DEFAULT_LR) and rule in ("train-acc",):
                        continue
                    res = judge(pool, rows_for(pool, zetas, preds), rule, thr, voters)
                    out.append({"setting": setting, "pool": pool_name, "n": len(pool), "rule": label, "step": f"{source} {lr:g}", **res})
    report = render(out, negatives, manifest)
    (args.zoo / "eval" / "rules.json").write_text(json.dumps({"results": out}, indent=1))
    (args.zoo / "eval" / "rules.md").write_text(report)
    print(report)


DEFAULT_LABEL = "agreement then fit, region 1 votes"  # suscli.judge.rules.DEFAULT_RULE with its defaults


def noise_of(manifest: dict, setting: str) -> float:
    return float(manifest["settings"][setting]["p"])


def render(out: list[dict], negatives: dict, manifest: dict) -> str:
    default_step = f"lr {DEFAULT_LR:g}"
    settings = list(dict.fromkeys(r["setting"] for r in out))
    lines = [
        "# Selection rules on the zoo",
        "",
        f"Default step ({default_step}). Per setting and pool: Kendall tau with clean test accuracy / regret (points) "
        "/ first model in the top quarter (y/n).",
        "",
    ]
    head = (
        "| rule | "
        + " | ".join(f"{s} {p}" for s in settings for p in ("final", "all-epochs"))
        + " | mean tau | worst regret | top-quarter rate |"
    )
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for label, *_ in VARIANTS:
        cells, taus, regrets, tops = [], [], [], []
        for s in settings:
            for p in ("final", "all-epochs"):
                r = next(
                    (x for x in out if x["setting"] == s and x["pool"] == p and x["rule"] == label and x["step"] == default_step), None
                )
                if r is None:
                    cells.append("-")
                    continue
                cells.append(f"{r['tau']:.2f} / {r['regret']:.1f} / {'y' if r['top_quarter'] else 'n'}")
                taus.append(r["tau"])
                regrets.append(r["regret"])
                tops.append(r["top_quarter"])
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | {statistics.fmean(taus):.3f} | {max(regrets):.1f} | {sum(tops)}/{len(tops)} |"
        )
    lines += [
        "",
        f"## The default rule ({DEFAULT_LABEL}) against the targets of the issue",
        "",
        "Targets: tau >= 0.5; tau at least 0.15 above training accuracy alone and above the paper's regions at 20% noise "
        "and more; first choice within 2 points of the pool's best.",
        "",
        "| setting | pool | tau | - train acc | - regions | regret (pts) | confident | all targets |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in settings:
        for p in ("final", "all-epochs"):
            get = {x["rule"]: x for x in out if x["setting"] == s and x["pool"] == p and x["step"] == default_step}
            if DEFAULT_LABEL not in get:
                continue
            d, ta, rg = get[DEFAULT_LABEL], get["training accuracy alone"], get["regions (pool mean, the paper)"]
            margin_ok = noise_of(manifest, s) < 0.2 or (d["tau"] - ta["tau"] >= 0.15 and d["tau"] - rg["tau"] >= 0.15)
            ok = d["tau"] >= 0.5 and margin_ok and d["regret"] <= 2
            lines.append(
                f"| {s} | {p} | {d['tau']:.2f} | {d['tau'] - ta['tau']:+.2f} | {d['tau'] - rg['tau']:+.2f} | {d['regret']:.1f} "
                f"| {'yes' if d['confident'] else 'no'} | {'yes' if ok else 'no'} |"
            )
    lines += [
        "",
        "## Step size: mean tau over every setting and pool, per rule and step",
        "",
        "| rule | " + " | ".join(sorted({r["step"] for r in out})) + " |",
        "|---|" + "---|" * len({r["step"] for r in out}),
    ]
    steps = sorted({r["step"] for r in out})
    for label, *_ in VARIANTS:
        vals = []
        for st in steps:
            xs = [r["tau"] for r in out if r["rule"] == label and r["step"] == st]
            vals.append(f"{statistics.fmean(xs):.3f}" if xs else "-")
        lines.append(f"| {label} | " + " | ".join(vals) + " |")
    lines += [
        "",
        "## Negative susceptibility (the step overshoots): share of candidates",
        "",
        "| architecture | " + " | ".join(f"{k} {v:g}" for k, v in sorted({(k[1], k[2]) for k in negatives})) + " |",
        "|---|" + "---|" * len({(k[1], k[2]) for k in negatives}),
    ]
    for arch in sorted({k[0] for k in negatives}):
        lines.append(
            f"| {arch} | "
            + " | ".join(f"{100 * statistics.fmean(negatives[(arch, k, v)]):.0f}%" for k, v in sorted({(k[1], k[2]) for k in negatives}))
            + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
