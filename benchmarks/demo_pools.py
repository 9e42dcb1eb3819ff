"""rank's words on pools it was never tuned on: the demo's procedural images, at other noise rates and mixes.

Every rule, cut and estimator of `suscli rank` was chosen on CIFAR-10 zoos. This builds small pools with the demo's
machinery (suscli.demo: Gabor-patch classes, labels redrawn at random at a rate, each model's clean test accuracy
and the share of its wrong training labels it fits recorded in demo.json), ranks each as a user would, and sets what
rank prints beside the truth:

- per pool: the share of wrong training labels against the noise figure or interval rank prints, without and with
  the held-out labels (whose consensus can raise the interval's high end: suscli.judge.noise.with_held_out); the memorizers
  (fit >= 40% of their wrong labels, the oracle of docs/validation.md) that rank flags "likely memorized noise", and
  the flags on models that are not; the model rank ships against the best clean test accuracy, with held-out
  labels (the demo's test images with labels redrawn at the pool's rate, 500 images) and without training labels;
- per model (--detail): its clean test accuracy, memorized share and verdict.

The pools: the demo's own (`SMALL`) at seeds 0-3; its recipe at noise 0.0, 0.2, 0.6, 0.8 and 1.0; a pool where every
model memorizes (no weight decay, long training) and one where none does (weight decay, few epochs), each also at
seeds 1-3. Each trains in 15-40 s on one thread; the first 11 and their ranks took about 10 minutes on one thread,
the six at other seeds 2.6 minutes on two.

    python benchmarks/demo_pools.py --out benchmarks/out/demo-pools [--pools s0 nomem] [--detail]

Writes OUT/POOL/ (the demo's folders, val.csv, rank-*.json) and prints the tables in Markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

import suscli
from suscli import demo
from suscli.judge.verdict import MEMORIZED
from suscli.views.formats import Format, render

ORACLE = 0.40  # a model that fits at least this share of its wrong training labels memorized them
VAL_SEED = 12345  # the held-out labels' redraw, apart from every seed the demo uses


def recipes() -> dict[str, demo.DemoRecipe]:
    """Every pool this benchmark builds, by name."""
    base = demo.SMALL
    pools = {f"s{seed}": dataclasses.replace(base, seed=seed) for seed in range(4)}
    pools |= {f"n{noise}": dataclasses.replace(base, noise=noise) for noise in (0.0, 0.2, 0.6, 0.8, 1.0)}
    memorize = [
        ("bn_cnn", 16, 40, {}),
        ("resnet", 8, 30, {"blocks": 1}),
        ("bn_cnn", 32, 30, {}),
        ("plain_cnn", 16, 40, {}),
        ("bn_cnn", 8, 40, {}),
    ]
    pools["allmem"] = dataclasses.replace(
        base, models=tuple(demo.named_spec(f, w, e, 0.05, 0.0, 32, "memorize", **kw) for f, w, e, kw in memorize)
    )
    resist = [
        ("bn_cnn", 16, 12, 5e-4, {}),
        ("bn_cnn", 32, 8, 1e-3, {}),
        ("resnet", 8, 10, 5e-4, {"blocks": 1}),
        ("bn_cnn", 8, 8, 1e-3, {}),
        ("bn_cnn", 16, 6, 1e-3, {}),
        ("bn_cnn", 8, 2, 5e-4, {}),
    ]
    pools["nomem"] = dataclasses.replace(
        base, models=tuple(demo.named_spec(f, w, e, 0.05, wd, 64, "resist", **kw) for f, w, e, wd, kw in resist)
    )
    for seed in (1, 2, 3):  # the two mixes at other seeds: held out from the region-2 rule that nomem (seed 0) led to
        pools[f"nomem-s{seed}"] = dataclasses.replace(pools["nomem"], seed=seed)
        pools[f"allmem-s{seed}"] = dataclasses.replace(pools["allmem"], seed=seed)
    return pools


def built(root: Path, recipe: demo.DemoRecipe) -> dict[str, Any]:
    """The pool's demo.json, training it first where no earlier run left one."""
    record = root / "demo.json"
    if not record.exists():
        demo.build_demo(root, recipe, overwrite=True)
    return json.loads(record.read_text())


def held_out_labels(root: Path, noise: float, seed: int) -> Path:
    """val.csv: the demo's test images (never trained on) with their labels redrawn as the training labels were."""
    files = sorted((root / "data" / "test").rglob("*.png"))
    clean = torch.tensor([demo.CLASS_NAMES.index(f.parent.name) for f in files])
    noisy = demo.noisy_labels(clean, noise, VAL_SEED + seed)
    path = root / "val.csv"
    path.write_text("path,label\n" + "".join(f"{f.resolve()},{y}\n" for f, y in zip(files, noisy.tolist())))
    return path


def ranked(root: Path, cache: Path, how: str) -> dict[str, Any]:
    """rank's JSON report of the pool, run `how`: with training labels, with held-out ones too, or with neither."""
    data, train = root / "data" / "unlabeled", root / "data" / "train"
    kwargs: dict[str, Any] = {"inputs": suscli.Inputs(device="cpu", cache_dir=cache)}
    if how == "val":
        kwargs["val_data"] = root / "val.csv"
    report = suscli.rank(root / "models", data, None if how == "none" else train, **kwargs)
    assert report is not None
    doc = json.loads(render(report, Format.json))
    (root / f"rank-{how}.json").write_text(json.dumps(doc, indent=1))
    return doc


def printed_estimate(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The label-noise estimate where rank prints one, as suscli.judge.noise.noise_words reads it: None where it
    says "not enough evidence" (the consensus too weak to read) or has no training labels."""
    noise = doc.get("label_noise")
    if not noise or (noise.get("not_enough_evidence") and not noise.get("point_withheld") and noise.get("wrong_labels") is None):
        return None
    return noise


def noise_line(doc: dict[str, Any]) -> str:
    noise = printed_estimate(doc)
    if noise is None:
        return "not enough evidence" if doc.get("label_noise") else "-"
    interval = f"{100 * noise['low']:.1f}-{100 * noise['high']:.1f}"
    figure = noise.get("wrong_labels")
    said = f"{100 * figure:.1f} ({interval})" if figure is not None else f"({interval})"
    return f"{said}, 'no evidence that the labels the consensus contradicts are wrong'" if noise.get("not_enough_evidence") else said


def covers(doc: dict[str, Any], truth: float) -> str:
    noise = printed_estimate(doc)
    if noise is None:
        return "-"
    return "yes" if noise["low"] <= truth <= noise["high"] else "**no**"


def shipped(doc: dict[str, Any], truth: dict[str, dict]) -> str:
    pick = doc["choice"].get("pick")
    if pick is None:
        return "none"
    sure = ", confident" if doc["choice"].get("confident") else ""
    return f"{100 * truth[pick]['test_acc']:.1f}{sure}"


def verdicts(doc: dict[str, Any]) -> dict[str, str]:
    return {r["name"]: r.get("verdict") or "-" for r in doc["results"]}


def pool_row(name: str, record: dict[str, Any], docs: dict[str, dict]) -> str:
    truth = {m["name"]: m for m in record["models"]}
    memorizers = {n for n, m in truth.items() if m["memorized"] >= ORACLE}
    flagged = {n for n, v in verdicts(docs["train"]).items() if v == MEMORIZED}
    wrong = record["mislabeled"]
    best = max(m["test_acc"] for m in truth.values())
    return (
        f"| {name} | {100 * wrong:.1f} | {noise_line(docs['train'])} | {covers(docs['train'], wrong)} "
        f"| {noise_line(docs['val'])} | {covers(docs['val'], wrong)} "
        f"| {len(flagged & memorizers)} of {len(memorizers)} | {len(flagged - memorizers)} "
        f"| {shipped(docs['train'], truth)} | {shipped(docs['val'], truth)} | {shipped(docs['none'], truth)} | {100 * best:.1f} |"
    )


def model_rows(name: str, record: dict[str, Any], docs: dict[str, dict]) -> list[str]:
    said = {how: verdicts(doc) for how, doc in docs.items()}
    rows = [f"\n{name}:\n", "| model | clean test acc | memorized | verdict | with held-out labels | without training labels |"]
    rows.append("|---|---|---|---|---|---|")
    for m in record["models"]:
        n = m["name"]
        mark = " (memorizer)" if m["memorized"] >= ORACLE else ""
        rows.append(
            f"| {n} | {100 * m['test_acc']:.1f} | {100 * m['memorized']:.1f}{mark} | {said['train'].get(n)} | {said['val'].get(n)} | {said['none'].get(n)} |"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    pools = recipes()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/demo-pools"))
    parser.add_argument("--pools", nargs="+", choices=sorted(pools), default=list(pools))
    parser.add_argument("--detail", action="store_true", help="every model's verdict beside its truth")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    header = [
        "| pool | wrong labels % | rank's noise figure (interval) | covers | with held-out labels | covers "
        "| memorizers flagged | other models flagged "
        "| ships (clean acc) | with held-out labels | without training labels | best clean acc |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows, details = [], []
    for name in args.pools:
        root = args.out / name
        record = built(root, pools[name])
        held_out_labels(root, record["recipe"]["noise"], record["recipe"]["seed"])
        docs = {how: ranked(root, args.out / "cache", how) for how in ("train", "val", "none")}
        rows.append(pool_row(name, record, docs))
        details += model_rows(name, record, docs)
        print(rows[-1], flush=True)
    print("\n".join(["", *header, *rows, *(details if args.detail else [])]))


if __name__ == "__main__":
    main()
