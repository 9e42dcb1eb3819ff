"""The choice under known label noise: the default rule, its "confident", the noise-rate estimate and each
model's label-free memorization estimate, checked against the truth on the zoo (issues 15 and 19).

For every setting of a zoo made by benchmarks/zoo/train_zoo.py (synthetic or CIFAR-10N human noise), two pools
(final models; every saved (model, epoch) candidate), each candidate measured with suscli's own code as `suscli
rank` measures it: susceptibility at the default step (evaluate.py's cache), top-5 predictions on the unlabeled
images (evaluate_rules.py's cache) and the training-accuracy pass on the noisy training labels, which keeps each
training image's top classes (suscli.accuracy). The rows go through suscli.rules.choose and suscli.noise, the
functions `rank` calls, and are compared with the zoo's oracle: clean test accuracy, and the share of the wrong
training labels each model fits.

    python benchmarks/evaluate_choice.py --zoo benchmarks/out/zoo-human [--held-out human-random1,human-aggre]

Writes <zoo>/eval/choice.md (printed too) and choice.json; training predictions are cached per setting in
<zoo>/eval/train-predictions-<setting>.npz.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cifar
from evaluate import Candidate, candidates, measure_all, tau
from evaluate_rules import MAX_BATCHES, predictions

from suscli.accuracy import training_accuracy
from suscli.agreement import Predictions
from suscli.checkpoints import load_checkpoint
from suscli.images import ImageSource, normalizer
from suscli.results import Result
from suscli.susceptibility import DEFAULT_BATCH_SIZE, DEFAULT_BATCHES, DEFAULT_LR

MEMORIZED_CUT = 0.4  # a model "memorized" when it fits at least this share of its wrong training labels (issue 19)


def training_set(zoo: Path, setting: str) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """The setting's training images, their noisy labels and their clean labels (the class folder's)."""
    with open(zoo / setting / "train_noisy.csv") as f:
        rows = list(csv.DictReader(f))
    paths = [Path(r["path"]) for r in rows]
    noisy = np.array([int(r["label"]) for r in rows])
    clean = np.array([cifar.CLASSES.index(p.parent.name) for p in paths])
    return paths, noisy, clean


def train_predictions(cands: list[Candidate], zoo: Path, setting: str) -> dict[str, Predictions]:
    """Each candidate's training-accuracy pass on the noisy labels (suscli.accuracy.training_accuracy, what rank
    runs), kept as its top classes per image with the given labels; cached in one .npz per setting."""
    path = zoo / "eval" / f"train-predictions-{setting}.npz"
    paths, noisy, _ = training_set(zoo, setting)
    have: dict[str, Predictions] = {}
    if path.exists():
        z = np.load(path)
        have = {str(p): Predictions(c, pr, int(z["num_classes"]), noisy) for p, c, pr in zip(z["paths"], z["classes"], z["probs"])}
    todo = [c for c in cands if str(c.path) not in have]
    if todo:
        pixels, labels, _ = ImageSource(paths, noisy.tolist(), population=len(paths)).decoded(32, 3)
        print(f"{setting}: training-accuracy pass of {len(todo)} candidates on {len(pixels)} images", file=sys.stderr)
        for c in todo:
            ckpt = load_checkpoint(c.path)
            acc = training_accuracy(ckpt.model, pixels, labels, transform=normalizer(ckpt.meta["mean"], ckpt.meta["std"]))
            have[str(c.path)] = acc.predictions
        keys = sorted(have)
        np.savez(path, paths=np.array(keys), classes=np.stack([have[k].classes for k in keys]),
                 probs=np.stack([have[k].probs for k in keys]), num_classes=have[keys[0]].num_classes)
    return have


def pool_rows(pool: list[Candidate], cache: dict, preds: dict[str, Predictions], train_preds: dict[str, Predictions]) -> list[Result]:
    """The rows `suscli rank` would hold for this pool (names are the candidates' indices)."""
    rows = []
    for i, c in enumerate(pool):
        tp = train_preds[str(c.path)]
        sus = statistics.fmean(cache[(str(c.path), DEFAULT_LR, DEFAULT_BATCH_SIZE, MAX_BATCHES, 0)]["r"][:DEFAULT_BATCHES])
        rows.append(Result(name=f"{i:04d}", path=str(c.path), arch=c.arch, epoch=c.epoch, susceptibility=sus,
                           train_acc=float((tp.top1() == tp.labels).mean()), train_n=len(tp.labels),
                           details={"predictions": preds[str(c.path)].encode(), "train_predictions": tp.encode()}))
    return rows


def load_pools(zoo: Path, settings: list[str]) -> dict[tuple[str, str], tuple[list[Candidate], list[Result], np.ndarray]]:
    """(setting, pool) -> (candidates, rows, which training labels are wrong)."""
    out = {}
    for setting in settings:
        cands = candidates(zoo, [setting])
        if len(cands) < 8:
            print(f"{setting}: only {len(cands)} candidates, skipped", file=sys.stderr)
            continue
        cache = measure_all(cands, zoo, [DEFAULT_LR], [DEFAULT_BATCH_SIZE], MAX_BATCHES, 0)
        preds = predictions(cands, zoo, setting)
        tpreds = train_predictions(cands, zoo, setting)
        _, noisy, clean = training_set(zoo, setting)
        for name, pool in {"final": [c for c in cands if c.last], "all-epochs": cands}.items():
            out[(setting, name)] = (pool, pool_rows(pool, cache, preds, tpreds), noisy != clean)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", type=Path, default=Path("benchmarks/out/zoo-human"))
    ap.add_argument("--settings", default=None, help="comma list; default: every setting in the zoo")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    manifest = json.loads((args.zoo / "zoo.json").read_text())
    settings = args.settings.split(",") if args.settings else list(manifest["settings"])
    pools = load_pools(args.zoo, settings)
    print(f"{len(pools)} pools", file=sys.stderr)


if __name__ == "__main__":
    main()
