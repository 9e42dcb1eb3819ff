"""How fast `suscli rank` audits a pool, against the straightforward way and against the compute floor.

One command, one machine, one process, three measurements of the same work (docs/performance.md):

(a) `suscli rank` end to end (in process, through the CLI), with a cold and then a warm decoded-image cache;
(b) the straightforward way, as research code does it: per model, images decoded by a PIL + torchvision
    transforms DataLoader, the state deep-copied and reloaded around each torch.optim.SGD step, training
    accuracy through a DataLoader too;
(c) the compute floor: the same forward and backward passes alone, on normalized tensors already in memory.

(a) and (c) also predict the unlabeled images once per model (the agreement rule of `suscli rank`); (b), the
authors' measurement, has no such pass, so (b)/(a) compares (a) doing slightly more work.

    python benchmarks/perf.py                                          # 16 ResNet-20s, 1,000 + 10,000 images
    python benchmarks/perf.py --models 4 --unlabeled 256 --train 1000  # a smoke run
    python benchmarks/perf.py --arch resnet50 --models 4 --train 2000  # ImageNet-size models at 224 px
    python benchmarks/perf.py --sweep 2000,20000,50000 --sweep-pool POOL --plot docs/perf-sweep.png
    python benchmarks/perf.py --score-predictions --arch resnet18 --unlabeled 512 --rounds 3
    python benchmarks/perf.py --noise-estimate 10,30,65,200 --train 10000 --unlabeled 512

--score-predictions times instead `suscli score` of one checkpoint on generated unlabeled images without and with
--per-image, the only score whose report shows the unlabeled images' predictions and so the only one that makes them:
the median of each, their ratio, and whether the rows' numbers are the same.

--noise-estimate times instead the label-noise estimate (suscli.judge.noise.estimate_noise: 200 bootstrap resamples
of the voters over at most 5,000 training images) of seeded synthetic voters, 10 classes, against the per-draw tally
it replaced, which gathered each drawn voter's rows again for every resample: CPU seconds of each, their ratio, and
whether the two give the same interval to the last bit.

--sweep times instead the default audit (training accuracy on the adaptive sample, suscli.measure.sampling) against
`--train-samples all` at each training-set size, on a pool of trained checkpoints (random-init models all fit
10% of the labels, so no decision could settle on them), with a cold cache each time: what a first run costs.

The pool is random-init `suscli.models:resnet20` models at 32 px, or with `--arch resnet50` torchvision
ResNet-50s at 224 px (ImageNet's preprocessing: the ImageNet-size case); speed does not depend on the weights. The
images are CIFAR-10 JPEGs (benchmarks/cifar.py unpacks them): unlabeled ones from the test split, training ones
from the training split with their labels.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import dataclasses
import io
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.stats import kendalltau
from safetensors.torch import load_file
from torch.utils.data import DataLoader, Dataset
from torchvision import models as tv_models
from torchvision import transforms
from typer.main import get_command

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ for the shared data helper
import cifar

import suscli
import suscli.run.audit
import suscli.measure.predictions
import suscli.data.images
import suscli.run.model
from suscli.errors import plural
from suscli.measure.batched import default_model_batch
from suscli.cli import app
from suscli.data.images import PRESETS
from suscli.data.imagesets import list_images, read_labeled
from suscli.models import resnet20
from suscli.measure.devices import resolve_device
from suscli.defaults import DEFAULT_BATCH_SIZE, DEFAULT_BATCHES, DEFAULT_LR
from suscli.measure.susceptibility import batch_indices, random_labels

SEED = 0
ACC_BATCH = 512  # suscli's training-accuracy batch on the CPU, used by (b) and (c) too
PREDICT_BATCH = suscli.measure.predictions.BATCH_SIZE


@dataclasses.dataclass(frozen=True)
class Arch:
    """A pool's architecture: how to build it, the spec and preset suscli rebuilds and preprocesses it with."""

    build: Callable[[], torch.nn.Module]
    spec: str
    kwargs: dict
    preset: str

    @property
    def size(self) -> int:
        return PRESETS[self.preset].image_size


ARCHS = {
    "resnet20": Arch(resnet20, "suscli.models:resnet20", {}, "cifar10"),
    "resnet18": Arch(lambda: tv_models.resnet18(num_classes=10), "torchvision:resnet18", {"num_classes": 10}, "imagenet"),
    "resnet50": Arch(lambda: tv_models.resnet50(num_classes=10), "torchvision:resnet50", {"num_classes": 10}, "imagenet"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=16)
    ap.add_argument(
        "--arch",
        choices=ARCHS,
        default="resnet20",
        help="the pool's architecture (resnet18, resnet50: 224 px, ImageNet's preprocessing)",
    )
    ap.add_argument("--unlabeled", type=int, default=1000)
    ap.add_argument("--train", type=int, default=10000)
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, ... (auto takes the GPU when there is one)")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of the straightforward way (b)")
    ap.add_argument(
        "--model-batch",
        type=int,
        help="models measured together by (a), suscli rank --model-batch (default: what the CLI picks, 8 on CUDA and 1 elsewhere)",
    )
    ap.add_argument("--work", type=Path, help="folder for the pool, image links and cache (default: a temporary one)")
    ap.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="times (a) warm, (b) and (c) are measured, in alternating order "
        "(a b c, then c b a, ...); each line reports its fastest round, so that a drift of the machine's "
        "speed during the run does not decide the ratios",
    )
    ap.add_argument("--sweep", help="comma list of training-set sizes: time the adaptive default against --train-samples all")
    ap.add_argument("--sweep-pool", type=Path, help="folder or manifest of trained checkpoints for --sweep")
    ap.add_argument("--plot", type=Path, help="where --sweep draws its times against the training-set size")
    ap.add_argument("--cifar-root", type=Path, default=cifar.DEFAULT_ROOT, help="the unpacked CIFAR-10 JPEG folder")
    ap.add_argument(
        "--cache-size",
        type=int,
        help="only measure the decoded-image cache entry of this many training images at 224 and 32 px against their uint8 size",
    )
    ap.add_argument(
        "--report-size",
        help="MODELS,TRAIN: only measure a JSON report of MODELS models with training "
        "predictions on TRAIN images, with and without --per-image",
    )
    ap.add_argument(
        "--score-predictions",
        action="store_true",
        help="only time `suscli score` of one --arch checkpoint on --unlabeled generated images without and with "
        "--per-image (the unlabeled images' predictions), --rounds times each",
    )
    ap.add_argument(
        "--noise-estimate",
        help="comma list of voter counts: only time the label-noise estimate on --train training and --unlabeled "
        "unlabeled synthetic predictions against the per-draw tally it replaced, --rounds times each",
    )
    args = ap.parse_args()
    if args.noise_estimate:
        noise_estimate([int(n) for n in args.noise_estimate.split(",")], args.train, args.unlabeled, args.rounds)
        return
    if args.score_predictions:
        with tempfile.TemporaryDirectory(prefix="suscli-score-") as tmp:
            score_predictions(args.work or Path(tmp), ARCHS[args.arch], args.unlabeled, args.rounds, resolve_device(args.device))
        return
    if args.report_size:
        report_size(*(int(n) for n in args.report_size.split(",")), args.unlabeled)
        return
    if args.cache_size:
        cache_size(args.cache_size, args.cifar_root)
        return
    device = resolve_device(args.device)
    model_batch = args.model_batch or default_model_batch(device)
    if args.sweep:
        if args.sweep_pool is None:
            ap.error("--sweep needs --sweep-pool")
        sizes = [int(n) for n in args.sweep.split(",")]
        with tempfile.TemporaryDirectory(prefix="suscli-sweep-") as tmp:
            sweep(Path(tmp), args.sweep_pool, sizes, args.unlabeled, args.cifar_root, device, args.plot)
        return
    with tempfile.TemporaryDirectory(prefix="suscli-perf-") as tmp:
        work = args.work or Path(tmp)
        arch = ARCHS[args.arch]
        pool, unl_dir, train_dir = make_inputs(work, arch, args.models, args.unlabeled, args.train, args.cifar_root)
        gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
        print(
            f"device {device}{gpu} (torch {torch.__version__}, {torch.get_num_threads()} CPU threads); pool {args.models} x "
            f"{args.arch} at {arch.size} px, {args.unlabeled} unlabeled + {args.train} training CIFAR-10 images; susceptibility "
            f"{DEFAULT_BATCHES} batches of {DEFAULT_BATCH_SIZE}, lr {DEFAULT_LR}; (a) with --model-batch {model_batch}",
            flush=True,
        )
        warm_up(device, arch)
        cold = run_suscli(pool, unl_dir, train_dir, work / "cache", work / "cold.json", device, model_batch)
        runs: dict[str, Callable[[], dict]] = {
            "a": lambda: run_suscli(pool, unl_dir, train_dir, work / "cache", work / "warm.json", device, model_batch),
            "b": lambda: run_straightforward(pool, unl_dir, train_dir, device, args.workers, arch),
            "c": lambda: run_floor(args.models, unl_dir, train_dir, device, arch),
        }
        rounds: dict[str, list[dict]] = {k: [] for k in runs}
        for r in range(args.rounds):
            for k in list(runs) if r % 2 == 0 else list(reversed(runs)):
                rounds[k].append(runs[k]())
        warm, plain, floor = (min(rounds[k], key=lambda m: m["seconds"]) for k in "abc")
    for label, m, all_rounds in [
        ("(a) suscli rank, cold cache", cold, [cold]),
        ("(a) suscli rank, warm cache", warm, rounds["a"]),
        ("(b) straightforward", plain, rounds["b"]),
        ("(c) compute floor", floor, rounds["c"]),
    ]:
        parts = ", ".join(f"{k} {v:.2f} s" for k, v in m["parts"].items())
        print(f"{label:<30}{m['seconds']:8.2f} s   {parts}")
        if len(all_rounds) > 1:
            times = ", ".join(f"{x['seconds']:.2f} s" for x in all_rounds)
            print(f"{'':<30}rounds: {times} (the fastest above)")
        print(
            f"{'':<30}peak RSS so far {m['rss_mib']:.0f} MiB" + (f", peak CUDA memory {m['cuda_mib']:.0f} MiB" if "cuda_mib" in m else "")
        )
    print(
        f"ratios: (b)/(a cold) {plain['seconds'] / cold['seconds']:.2f}x, (b)/(a warm) {plain['seconds'] / warm['seconds']:.2f}x, "
        f"(a cold)/(c) {cold['seconds'] / floor['seconds']:.2f}x, (a warm)/(c) {warm['seconds'] / floor['seconds']:.2f}x"
    )
    print(
        f"same numbers: susceptibility max |a - b| {max_diff(warm['sus'], plain['sus']):.3g}, "
        f"training accuracy max |a - b| {max_diff(warm['acc'], plain['acc']):.3g}, "
        f"cold vs warm cache max |diff| {max_diff(cold['sus'], warm['sus']):.3g}"
    )


def cache_size(n: int, root: Path) -> None:
    """The on-disk cache entry of `n` CIFAR-10 training images decoded at 224 px (ImageNet's crop) and 32 px,
    against the uint8 pixels it holds: the entry's overhead is its index tensors and torch.save's container."""
    paths, _ = cifar.list_split(cifar.ensure_unpacked(root), "train")
    for size, crop in ((224, 0.875), (32, 1.0)):
        with tempfile.TemporaryDirectory(prefix="suscli-cache-size-") as tmp:
            suscli.data.images.decode_images(paths[:n], suscli.data.images.Sizing(size, crop_pct=crop), cache_dir=Path(tmp))
            entry = next(Path(tmp).glob("images-*.pt")).stat().st_size
        raw = n * 3 * size * size
        print(f"{n} images at {size} px: cache entry {entry:,} bytes, uint8 pixels {raw:,} bytes: {entry / raw:.5f}x")


def report_size(models: int, n_train: int, n_unl: int) -> None:
    """A JSON report's size for `models` rows whose per-image records hold `n_train` training and `n_unl` unlabeled
    images, with and without --per-image: rows as scoring makes them, with seeded random predictions (the encoded
    sizes do not depend on the values) and an audit's summary fields."""
    from suscli.measure.accuracy import TRAIN_TOP_K, encode_hits
    from suscli.measure.predictions import TOP_K, Predictions
    from suscli.results import Result
    from suscli.views.formats import to_json

    rng = np.random.default_rng(SEED)

    def top(n: int, k: int) -> Predictions:
        probs = np.sort(rng.dirichlet(np.ones(10), n)[:, :k], axis=1)[:, ::-1]
        return Predictions(rng.integers(0, 10, (n, k)), probs, 10, rng.integers(0, 10, n))

    rows = [
        Result(
            name=f"model-{i:03d}", path=f"pool/model-{i:03d}.safetensors", arch="suscli.models:resnet20", susceptibility=0.1,
            susceptibility_sem=0.01, train_acc=0.6, train_acc_low=0.59, train_acc_high=0.61, train_n=n_train, sha256="0" * 64,
            details={"r": [0.1] * 4, "loss_before": [2.3] * 4, "loss_after": [2.2] * 4, "predictions": top(n_unl, TOP_K).encode(),
                     "train_predictions": top(n_train, TRAIN_TOP_K).encode(), "train_hits": encode_hits(rng.random(n_train) < 0.6)},
        )
        for i in range(models)
    ]  # fmt: skip
    lean, full = len(to_json(rows, {}).encode()), len(to_json(rows, {}, per_image=True).encode())
    print(
        f"{models} models, {n_train:,} training and {n_unl:,} unlabeled images: JSON report {lean:,} bytes "
        f"({lean / models / 1000:.1f} KB a model); with --per-image {full:,} bytes ({full / models / 1000:.1f} KB a model)"
    )


def noise_estimate(voter_counts: list[int], n_train: int, n_unl: int, rounds: int, classes: int = 10) -> None:
    """estimate_noise of each count of seeded synthetic voters (the true class plus noise, float16 probabilities as a
    results file keeps them, top 3 classes on the training images and top 5 on the unlabeled ones, 20% of the labels
    redrawn) against per_draw_estimate, in alternating order, the fastest of `rounds` CPU times of each."""
    import suscli.judge.noise as noise
    from suscli.measure.predictions import Predictions

    print(
        f"label-noise estimate, {noise.BOOTSTRAP} resamples on {min(n_train, noise.BOOTSTRAP_IMAGES):,} of {n_train:,} training "
        f"images and {n_unl:,} unlabeled images, {classes} classes; CPU seconds, fastest of {rounds}",
        flush=True,
    )
    for voters in voter_counts:
        rng = np.random.default_rng(SEED)
        truth, seen = rng.integers(0, classes, n_train), rng.integers(0, classes, n_unl)
        labels = np.where(rng.random(n_train) < 0.2, rng.integers(0, classes, n_train), truth)

        def voter(rng: np.random.Generator, true: np.ndarray, k: int, given: np.ndarray | None) -> Predictions:
            logits = rng.normal(size=(len(true), classes))
            logits[np.arange(len(true)), true] += 2.0
            p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            top = np.argsort(-p, axis=1)[:, :k]
            return Predictions(top, np.take_along_axis(p, top, 1).astype(np.float16).astype(np.float32), classes, given)

        train = [voter(rng, truth, 3, labels) for _ in range(voters)]
        unlabeled = [voter(rng, seen, 5, None) for _ in range(voters)]
        agreed = noise.consensus(train)[0]
        found: dict[str, list[tuple[float, tuple]]] = {"per draw (before)": [], "laid out once (now)": []}
        for r in range(rounds):
            for name in list(found) if r % 2 == 0 else list(reversed(found)):
                noise._ESTIMATES.clear()  # each round draws: none kept from the round before
                start = time.process_time()
                est = (per_draw_estimate if name.startswith("per draw") else noise.estimate_noise)(
                    train, agreed=agreed, unlabeled=unlabeled
                )
                found[name].append((time.process_time() - start, (est.rate, est.low, est.high, est.voter_disagreement, est.corrected)))
        (before, a), (now, b) = (min(v) for v in found.values())
        same = len({repr(fields) for v in found.values() for _, fields in v}) == 1  # repr: every bit of each float
        print(
            f"{voters:4d} voters: per draw (before) {before:7.2f} s, laid out once (now) {now:6.2f} s, {before / now:5.1f}x; "
            f"the same interval to the last bit: {'yes' if same else 'NO'} ({100 * b[1]:.2f}-{100 * b[2]:.2f}%)",
            flush=True,
        )


def per_draw_estimate(preds: list, agreed: np.ndarray, unlabeled: list) -> object:
    """estimate_noise as it was before its ballots were laid out once: each resample's consensus tallied by
    suscli.judge.noise.consensus on the drawn images, gathering each drawn voter's rows again (the baseline of
    --noise-estimate; the same draws, so the same numbers)."""
    import suscli.judge.noise as noise

    labels = noise.given_labels(preds)
    rate = float((agreed != labels).mean())
    order = sorted(range(len(preds)), key=lambda i: noise._fingerprint(preds[i], unlabeled[i]))
    preds, unlabeled = [preds[i] for i in order], [unlabeled[i] for i in order]
    rng, unl_rng = np.random.default_rng(noise.SEED), np.random.default_rng(noise.SEED + 1)
    sample = np.sort(rng.choice(len(labels), size=min(len(labels), noise.BOOTSTRAP_IMAGES), replace=False))
    n_unl = unlabeled[0].classes.shape[0]
    draws, floors = [], []
    for _ in range(noise.BOOTSTRAP):
        who = rng.integers(0, len(preds), len(preds))
        images = rng.choice(sample, size=len(sample))
        draws.append(float((noise.consensus([preds[i] for i in who], images)[0] != labels[images]).mean()))
        rows = unl_rng.integers(0, n_unl, n_unl)
        floors.append(noise.corrected_share(draws[-1], noise.voter_disagreement([unlabeled[i] for i in who], rows)))
    low, high = np.quantile(draws, [0.025, 0.975])
    e = noise.voter_disagreement(unlabeled)
    corrected = noise.corrected_share(rate, e)
    low = min(low, float(np.quantile(floors, 0.025)), corrected)
    return noise.NoiseEstimate(rate, float(min(low, rate)), float(max(high, rate)), len(labels), len(preds), None, e, corrected)


def score_predictions(work: Path, arch: Arch, n_unl: int, rounds: int, device: torch.device) -> None:
    """`suscli score` of one random-init `arch` checkpoint on `n_unl` generated 256 px JPEGs (no training data), without
    --per-image (no predictions on the unlabeled images) and with it, `rounds` times each in alternating order after
    one untimed run that fills the decoded-image cache: the median of each, their ratio, where the time went."""
    rng = np.random.default_rng(SEED)
    unl = work / "unlabeled"
    unl.mkdir(parents=True, exist_ok=True)
    for i in range(n_unl):  # smooth random images: a photo's size on disk, not incompressible noise's
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((256, 256), Image.BILINEAR).save(unl / f"{i:04d}.jpg", quality=90)
    torch.manual_seed(SEED)
    ckpt = suscli.save(arch.build(), work / "model.safetensors", arch=arch.spec, arch_kwargs=arch.kwargs, preset=arch.preset)
    print(
        f"device {device} (torch {torch.__version__}, {torch.get_num_threads()} CPU threads); suscli score of one random-init "
        f"{arch.spec} at {arch.size} px on {n_unl} generated unlabeled images, no training data; susceptibility "
        f"{DEFAULT_BATCHES} batches of {DEFAULT_BATCH_SIZE}, lr {DEFAULT_LR}; warm image cache; {rounds} {plural(rounds, 'round')}",
        flush=True,
    )
    warm_up(device, arch)
    run_score(ckpt, unl, work, device, per_image=True)  # fills the cache: neither timed run decodes
    found: dict[bool, list[dict]] = {False: [], True: []}
    for r in range(rounds):
        for per_image in (False, True) if r % 2 == 0 else (True, False):
            found[per_image].append(run_score(ckpt, unl, work, device, per_image=per_image))
    median = {k: float(np.median([m["seconds"] for m in v])) for k, v in found.items()}
    for per_image, label in ((True, "with --per-image (before: always)"), (False, "without --per-image (now)")):
        runs = found[per_image]
        parts = {k: float(np.median([m["parts"][k] for m in runs])) for k in runs[0]["parts"]}
        print(f"{label:<36}median {median[per_image]:7.2f} s   " + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()))
        times = ", ".join(f"{m['seconds']:.2f} s" for m in runs)
        print(f"{'':<36}rounds: {times}")
    rows = [m["row"] for v in found.values() for m in v]
    same = all(r == rows[0] for r in rows)
    print(
        f"ratio: with/without {median[True] / median[False]:.2f}x ({median[True] - median[False]:.2f} s saved of {median[True]:.2f} s); "
        f"same numbers (susceptibility, r, verdict, notes) in every run: {'yes' if same else 'NO'}"
    )


SCORE_TIMED = {
    "decode": ["data.images.decode_images"],
    "susceptibility": ["run.model.measure_susceptibility"],
    "predictions": ["run.model.predict"],
    "untrained reference": ["run.model.untrained_reference"],
}


def timed_command(args: list[str], table: dict[str, list[str]], parts: dict[str, float], device: torch.device) -> dict:
    """One suscli command through the CLI, the library calls of `table` timed into `parts`; its measured() record.
    Exit 0 or 1 (a gate) is a run; any other code stops the benchmark."""
    with contextlib.ExitStack() as stack:
        for part, names in table.items():
            for name in names:
                module, function = name.rsplit(".", 1)
                stack.enter_context(timed(importlib.import_module(f"suscli.{module}"), function, parts, part, device))
        m = stack.enter_context(measured(device))
        code = get_command(app).main(args, prog_name="suscli", standalone_mode=False)
    if code not in (None, 0, 1):
        raise SystemExit(f"suscli {args[0]} exited {code}")
    return m


def run_score(ckpt: Path, unl: Path, work: Path, device: torch.device, *, per_image: bool) -> dict:
    """One `suscli score` through the CLI, its parts timed around the library calls; its row's numbers."""
    parts = dict.fromkeys(SCORE_TIMED, 0.0)
    out = work / f"score-{per_image}.json"
    args = ["score", str(ckpt), "--data", str(unl), "--format", "json", "--output", str(out), "--cache-dir", str(work / "cache")]
    args += ["--device", str(device), *(["--per-image"] if per_image else [])]
    with contextlib.redirect_stderr(io.StringIO()):  # its verdict line, once per run
        m = timed_command(args, SCORE_TIMED, parts, device)
    row = json.loads(out.read_text())["results"][0]
    if ("predictions" in row["details"]) != per_image:
        raise SystemExit(f"suscli score {'without' if per_image else 'with'} predictions, where --per-image is {per_image}")
    parts["other (loading, files, report)"] = m["seconds"] - sum(parts.values())
    numbers = {k: row[k] for k in ("susceptibility", "susceptibility_sem", "verdict", "notes")}
    return {**m, "parts": parts, "row": {**numbers, "r": row["details"]["r"]}}


def sweep(work: Path, pool: Path, sizes: list[int], n_unl: int, root: Path, device: torch.device, plot: Path | None) -> None:
    """The adaptive default against --train-samples all at each training-set size: time, images used, and whether the
    table's order (Kendall tau) and the pick agree. The two runs alternate which goes first, size by size."""
    root = cifar.ensure_unpacked(root)
    rng = np.random.default_rng(SEED)
    test_paths, test_labels = cifar.list_split(root, "test")
    train_paths, train_labels = cifar.list_split(root, "train")
    unl = work / "unlabeled"
    for i in cifar.balanced_sample(test_labels, n_unl, rng):
        link(unl / f"{i:05d}.jpg", test_paths[i])
    print(
        f"device {device} (torch {torch.__version__}, {torch.get_num_threads()} CPU threads); pool {pool}; {n_unl} unlabeled "
        f"CIFAR-10 images; training sets of {', '.join(map(str, sizes))} CIFAR-10 training images; cold cache each run",
        flush=True,
    )
    warm_up(device, ARCHS["resnet20"])
    for path in [*unl.iterdir(), *(p for p in pool.rglob("*") if p.is_file())]:  # the OS page cache, as for the training images
        path.read_bytes()
    found = []
    for k, n in enumerate(sizes):
        train = work / f"train-{n}"
        for i in cifar.balanced_sample(train_labels, n, np.random.default_rng(SEED)):
            link(train / cifar.CLASSES[train_labels[i]] / f"{i:05d}.jpg", train_paths[i])
        for path in train.rglob("*.jpg"):  # into the OS page cache, so that neither run pays the first read from disk
            path.read_bytes()
        modes = ["auto", "all"] if k % 2 == 0 else ["all", "auto"]
        runs = {m: run_sweep_rank(pool, unl, train, work / f"{m}-{n}", device, m) for m in modes}
        auto, full = runs["auto"], runs["all"]
        position = {name: i for i, name in enumerate(full["order"])}
        agree = kendalltau(range(len(auto["order"])), [position[name] for name in auto["order"]]).statistic
        found.append(
            {
                "n": n,
                "auto": auto["seconds"],
                "all": full["seconds"],
                "images": auto["images"],
                "tau": float(agree),
                "same_pick": auto["pick"] == full["pick"],
            }
        )
        f = found[-1]
        print(
            f"{n:>7} training images: default (auto) {f['auto']:7.2f} s on {f['images']} images, --train-samples all "
            f"{f['all']:7.2f} s; all/auto {f['all'] / f['auto']:.2f}x; tau {f['tau']:.3f}, same pick {'yes' if f['same_pick'] else 'no'}",
            flush=True,
        )
    if plot is not None:
        draw_sweep(found, plot, device)
        print(f"plot written to {plot}")


def run_sweep_rank(pool: Path, unl: Path, train: Path, work: Path, device: torch.device, mode: str) -> dict:
    """One `suscli rank` through the CLI with `--train-samples mode` and an empty cache; its time, order and pick."""
    out = work / "report.json"
    work.mkdir(parents=True)
    args = [
        "rank",
        str(pool),
        "--data",
        str(unl),
        "--train-data",
        str(train),
        "--format",
        "json",
        "--output",
        str(out),
        "--results",
        str(work / "results.jsonl"),
        "--cache-dir",
        str(work / "cache"),
        "--device",
        str(device),
        "--train-samples",
        mode,
    ]
    with measured(device) as m:
        code = get_command(app).main(args, prog_name="suscli", standalone_mode=False)
    if code not in (None, 0, 1):
        raise SystemExit(f"suscli rank exited {code}")
    doc = json.loads(out.read_text())
    used = doc["train_sample"]["images"] if doc.get("train_sample") else max(r["train_n"] for r in doc["results"])
    return {"seconds": m["seconds"], "order": [r["name"] for r in doc["results"]], "pick": doc["choice"]["pick"], "images": used}


def draw_sweep(found: list[dict], path: Path, device: torch.device) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [f["n"] for f in found]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    ax.plot(n, [f["all"] for f in found], "o-", label="--train-samples all (every image)")
    ax.plot(n, [f["auto"] for f in found], "o-", label="default: adaptive sample")
    for f in found:
        ax.annotate(f"{f['images']} img", (f["n"], f["auto"]), textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8)
    ax.set_xlabel("training images")
    ax.set_ylabel("suscli rank, seconds (cold cache)")
    ax.set_title(
        f"Audit time against training-set size ({device.type}, {torch.get_num_threads()} {plural(torch.get_num_threads(), 'thread')})",
        fontsize=10,
    )
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def make_inputs(work: Path, arch: Arch, models: int, n_unl: int, n_train: int, root: Path) -> tuple[Path, Path, Path]:
    """A pool of `models` saved random-init networks of `arch`, and folders of links to the chosen CIFAR-10 images."""
    root = cifar.ensure_unpacked(root)
    rng = np.random.default_rng(SEED)
    test_paths, test_labels = cifar.list_split(root, "test")
    train_paths, train_labels = cifar.list_split(root, "train")
    for i in cifar.balanced_sample(test_labels, n_unl, rng):
        link(work / "unlabeled" / f"{i:05d}.jpg", test_paths[i])
    for i in cifar.balanced_sample(train_labels, n_train, rng):
        link(work / "train" / cifar.CLASSES[train_labels[i]] / f"{i:05d}.jpg", train_paths[i])
    for m in range(models):
        torch.manual_seed(m)
        suscli.save(arch.build(), work / "pool" / f"m{m:02d}.safetensors", arch=arch.spec, arch_kwargs=arch.kwargs, preset=arch.preset)
    return work / "pool", work / "unlabeled", work / "train"


def link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_symlink():
        path.symlink_to(target)


def warm_up(device: torch.device, arch: Arch) -> None:
    """One forward and backward first, so that no measurement pays the kernels' one-time set-up."""
    model = arch.build().to(device)
    model(torch.randn(DEFAULT_BATCH_SIZE, 3, arch.size, arch.size, device=device)).sum().backward()
    sync(device)


# Where (a)'s time goes, measured around the library calls: part -> the suscli functions it times. One model at a
# time runs in suscli.run.model, models measured together in suscli.run.audit.
TIMED = {
    "decode": ["data.images.decode_images"],
    "training accuracy": ["run.model.training_accuracy", "run.audit.training_accuracy_many"],
    "susceptibility": ["run.model.measure_susceptibility", "run.audit.measure_many"],
    "predictions": ["run.model.predict", "run.audit.predict"],
    "loading": ["run.audit.load_checkpoint", "run.audit.on_device", "run.model.on_device", "run.probes.on_device"],
    "hashing": ["run.audit.file_sha256"],
    "untrained reference": ["run.audit.untrained_reference", "run.model.untrained_reference"],
    # the checks before measuring: the output's structure, and whether two forwards on the same images agree
    "checks": ["run.audit.checked_logits", "run.model.checked_logits", "run.audit.random_forward", "run.model.random_forward"],
    "decisions": ["run.rank.pool_decisions", "run.rank.choose"],
}


def run_suscli(pool: Path, unl: Path, train: Path, cache: Path, out: Path, device: torch.device, model_batch: int) -> dict:
    """(a): the CLI end to end, with the library's decode, susceptibility and accuracy calls timed where they run
    (one model at a time in suscli.run.model, models measured together in suscli.run.audit)."""
    parts = dict.fromkeys(TIMED, 0.0)
    args = [
        "rank",
        str(pool),
        "--data",
        str(unl),
        "--train-data",
        str(train),
        "--format",
        "json",
        "--output",
        str(out),
        "--results",
        str(out.with_suffix(".jsonl")),
        "--fresh",
        "--cache-dir",
        str(cache),
        "--device",
        str(device),
        "--model-batch",
        str(model_batch),
        "--train-samples",
        "all",
    ]  # the same work as (b) and (c)
    m = timed_command(args, TIMED, parts, device)
    rows = json.loads(out.read_text())["results"]
    parts["other (listing, files, report)"] = m["seconds"] - sum(parts.values())
    return {**m, "parts": parts, "sus": {r["name"]: r["susceptibility"] for r in rows}, "acc": {r["name"]: r["train_acc"] for r in rows}}


class Files(Dataset):
    """Image files through PIL and torchvision transforms, one at a time, as a torchvision ImageFolder reads them."""

    def __init__(self, paths: list[Path], labels: list[int], preset: str):
        self.paths, self.labels = paths, labels
        pre = PRESETS[preset]
        resize = (
            [] if pre.image_size == 32 else [transforms.Resize(round(pre.image_size / pre.crop_pct)), transforms.CenterCrop(pre.image_size)]
        )
        self.transform = transforms.Compose([*resize, transforms.ToTensor(), transforms.Normalize(pre.mean, pre.std)])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        with Image.open(self.paths[i]) as img:
            return self.transform(img.convert("RGB")), self.labels[i]


def run_straightforward(pool: Path, unl: Path, train: Path, device: torch.device, workers: int, arch: Arch) -> dict:
    """(b): one model at a time, images decoded per model, state deep-copied and reloaded around each SGD step."""
    unl_paths = list_images(unl)  # the order suscli uses, so that the same seed picks the same images
    listing = read_labeled(train)
    train_paths, train_labels = listing.items, listing.labels
    parts = {"susceptibility": 0.0, "training accuracy": 0.0}
    sus, acc = {}, {}
    with measured(device) as m:
        for path in sorted(pool.glob("*.safetensors")):
            model = arch.build()
            model.load_state_dict(load_file(path))
            model.to(device)
            start = time.perf_counter()
            labels = random_labels(len(unl_paths), 10, SEED).tolist()
            batches = [b.tolist() for b in batch_indices(len(unl_paths), DEFAULT_BATCHES, DEFAULT_BATCH_SIZE, SEED)]
            r = []
            model.train()
            for x, y in DataLoader(Files(unl_paths, labels, arch.preset), batch_sampler=batches, num_workers=workers):
                x, y = x.to(device), y.to(device)
                state = copy.deepcopy(model.state_dict())
                opt = torch.optim.SGD(model.parameters(), lr=DEFAULT_LR)
                opt.zero_grad()
                before = F.cross_entropy(model(x), y)
                before.backward()
                opt.step()
                with torch.no_grad():
                    after = F.cross_entropy(model(x), y)
                model.load_state_dict(state)
                r.append(before.item() - after.item())
            sus[path.stem] = sum(r) / len(r)
            parts["susceptibility"] += time.perf_counter() - start
            start = time.perf_counter()
            correct = 0
            model.eval()
            with torch.no_grad():
                for x, y in DataLoader(Files(train_paths, train_labels, arch.preset), batch_size=ACC_BATCH, num_workers=workers):
                    correct += int((model(x.to(device)).argmax(-1) == y.to(device)).sum())
            acc[path.stem] = correct / len(train_paths)
            parts["training accuracy"] += time.perf_counter() - start
    return {**m, "parts": parts, "sus": sus, "acc": acc}


def run_floor(models: int, unl: Path, train: Path, device: torch.device, arch: Arch) -> dict:
    """(c): the forward and backward passes of (a) and nothing else, on normalized tensors already on the device."""
    x_unl = on_device(list_images(unl), arch, device)
    x_train = on_device(read_labeled(train).items, arch, device)
    labels = random_labels(len(x_unl), 10, SEED).to(device)
    batches = list(batch_indices(len(x_unl), DEFAULT_BATCHES, DEFAULT_BATCH_SIZE, SEED))
    model = arch.build().to(device)
    cuda = device.type == "cuda"
    if cuda:  # as suscli runs on CUDA: channels_last, and bf16 autocast for the accuracy forwards
        model, x_unl, x_train = (t.to(memory_format=torch.channels_last) for t in (model, x_unl, x_train))
    params = list(model.parameters())
    parts = {"susceptibility": 0.0, "training accuracy": 0.0, "predictions": 0.0}
    with measured(device) as m:
        for _ in range(models):
            start = time.perf_counter()
            model.train()
            for idx in batches:
                x, y = x_unl[idx], labels[idx]
                torch.autograd.grad(F.cross_entropy(model(x), y), params)
                with torch.no_grad():
                    F.cross_entropy(model(x), y)
            sync(device)
            parts["susceptibility"] += time.perf_counter() - start
            start = time.perf_counter()
            model.eval()
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                for i in range(0, len(x_train), 2048 if cuda else ACC_BATCH):
                    model(x_train[i : i + (2048 if cuda else ACC_BATCH)])
            sync(device)
            parts["training accuracy"] += time.perf_counter() - start
            start = time.perf_counter()
            with torch.inference_mode():  # the unlabeled images' predictions, for the agreement rule
                for i in range(0, len(x_unl), PREDICT_BATCH):
                    model(x_unl[i : i + PREDICT_BATCH]).softmax(-1).topk(5, dim=-1)
            sync(device)
            parts["predictions"] += time.perf_counter() - start
    return {**m, "parts": parts}


def on_device(paths: list[Path], arch: Arch, device: torch.device) -> torch.Tensor:
    """The images as the floor feeds them: decoded, resized to the architecture's input size, normalized, on the
    device (resized there, a chunk at a time: the pixel values do not matter for speed, the tensor's size does)."""
    pre = PRESETS[arch.preset]
    mean = torch.tensor(pre.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(pre.std, device=device).view(1, 3, 1, 1)
    chunks = []
    for i in range(0, len(paths), 1024):
        x = cifar.decode(paths[i : i + 1024]).to(device).float() / 255.0
        if x.shape[-1] != pre.image_size:
            x = F.interpolate(x, size=(pre.image_size, pre.image_size), mode="bilinear", antialias=False)
        chunks.append((x - mean) / std)
    return torch.cat(chunks)


@contextmanager
def timed(module: object, name: str, parts: dict[str, float], part: str, device: torch.device) -> Iterator[None]:
    """Replace `module.name` by a wrapper that adds its run time to `parts[part]`."""
    original: Callable = getattr(module, name)

    def wrapper(*args: object, **kwargs: object) -> object:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            sync(device)
            parts[part] += time.perf_counter() - start

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


@contextmanager
def measured(device: torch.device) -> Iterator[dict]:
    """Wall time of the block, the process's peak resident memory after it, and on CUDA the block's peak."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    found: dict = {}
    start = time.perf_counter()
    yield found
    sync(device)
    found["seconds"] = time.perf_counter() - start
    found["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if device.type == "cuda":
        found["cuda_mib"] = torch.cuda.max_memory_allocated(device) / 2**20


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def max_diff(a: dict, b: dict) -> float:
    return max(abs(a[k] - b[k]) for k in a)


if __name__ == "__main__":
    main()
