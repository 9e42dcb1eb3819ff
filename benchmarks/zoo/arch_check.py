"""Do the verdict's fixed susceptibility cuts (suscli.judge.verdict) hold for an architecture they were not chosen on?

The cuts were chosen on the zoo's small CNNs, MLPs and ResNets. This trains torchvision's ResNet-18 (the stock
ImageNet layout, as users take it from torchvision, 10 classes), or with --arch resnet20 the deeper CIFAR ResNet-20 of
the public checkpoints (suscli.models.resnet20: 3 stages of 3 blocks, width 16), or with --arch resnet56 the same
with 9 blocks per stage, or with --arch mobilenet_v3_small torchvision's MobileNetV3-Small (depthwise convolutions,
squeeze-excitation, hard-swish, dropout before the classifier), or with --arch resnet10t timm's ResNet-10-T (deep
stem, average-pool downsampling: the timm extra), on CIFAR-10N human labels (human-worst, the zoo's
design setting) under two recipes, a regularized one (weight decay 5e-3, augmentation, 8 epochs) and a memorizing
one (no weight decay, no augmentation, 30 epochs), saves 5 checkpoints of each, and reports per checkpoint the
oracle (share of the wrong labels it fits, clean test accuracy), the susceptibility at the default step, and the
verdict suscli gives it alone and in the pool of these 10 checkpoints; also the susceptibility of the same
architecture at initialization.

--image-size N (default 32) checks the cuts at an input size no zoo has: the decoded 32x32 CIFAR images are
upsampled to N x N (bilinear, rounded back to uint8) for training and the oracle, augmentation pads by an eighth of
the side (4 px at 32, 8 at 64), the checkpoints record image_size=N, and the unlabeled images are decoded at N by
suscli itself (ImageSource.decoded, as `suscli score` does); the report gives how far the two resizings differ.

    python benchmarks/zoo/arch_check.py --out benchmarks/out/arch-check [--n-train 2000] [--threads 2]
    python benchmarks/zoo/arch_check.py --arch resnet20 --out benchmarks/out/arch-check-resnet20
    python benchmarks/zoo/arch_check.py --arch resnet56 --out benchmarks/out/arch-check-resnet56
    python benchmarks/zoo/arch_check.py --arch mobilenet_v3_small --out benchmarks/out/arch-check-mobilenet
    python benchmarks/zoo/arch_check.py --arch resnet10t --out benchmarks/out/arch-check-resnet10t
    python benchmarks/zoo/arch_check.py --arch resnet20 --image-size 64 --threads 1 --out benchmarks/out/arch-check-resnet20-64

Writes <out>/arch-check.md (printed too) and the checkpoints; a rerun reuses finished runs (of the same image size).
Also writes what a user would pass to `suscli rank` at 32 px: <out>/unlabeled.txt (the 1,000 unlabeled images) and
<out>/train-labels.csv (the training images with their noisy labels), for

    suscli rank <out> --all-checkpoints -d <out>/unlabeled.txt --train-data <out>/train-labels.csv
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cifar
from train_zoo import MOMENTUM, epoch_metrics, load_data, noisy_labels, save_epochs, train_epoch

import suscli
import suscli.models
from suscli.load.checkpoints import load_checkpoint, read_metadata
from suscli.data.images import ImageSource, normalizer
from suscli.judge.regions import rank, thresholds
from suscli.results import Result
from suscli.defaults import DEFAULT_BATCH_SIZE, DEFAULT_LR
from suscli.measure.susceptibility import SusceptibilityConfig, measure_susceptibility
from suscli.judge import verdict
from suscli.measure.untrained import untrained_susceptibility

# --arch: (the name suscli loads it by, its keyword arguments beside num_classes, how it is built, its name in the report)
ARCHS = {
    "resnet18": ("torchvision:resnet18", {}, lambda: torchvision.models.resnet18(num_classes=10), "torchvision's ResNet-18"),
    "resnet20": ("suscli.models:resnet20", {}, lambda: suscli.models.resnet20(num_classes=10), "the CIFAR ResNet-20"),
    "resnet56": ("suscli.models:resnet", {"blocks": 9}, lambda: suscli.models.resnet(num_classes=10, blocks=9), "a CIFAR ResNet-56"),
    "mobilenet_v3_small": (
        "torchvision:mobilenet_v3_small",
        {},
        lambda: torchvision.models.mobilenet_v3_small(num_classes=10),
        "torchvision's MobileNetV3-Small",
    ),
    "resnet10t": ("timm:resnet10t", {}, lambda: _timm("resnet10t"), "timm's ResNet-10-T"),
}
RECIPES = {  # name: (lr, weight decay, epochs, augmentation)
    "regularized": (0.05, 5e-3, 8, True),
    "memorizing": (0.05, 0.0, 30, False),
}


def train(name: str, arch: str, data, noisy: np.ndarray, out: Path, image_size: int = 32) -> dict:
    """One recipe; its record (per saved epoch: oracle and checkpoint) is cached in <out>/<name>/record.json.
    `data`'s images are already image_size px."""
    folder = out / name
    record_path = folder / "record.json"
    if record_path.exists():
        record = json.loads(record_path.read_text())
        stored = read_metadata(record["saved"][0]["path"]).get("image_size") if record["saved"] else image_size
        if stored != image_size:
            raise SystemExit(f"{folder}: trained at {stored} px, not {image_size}; give another --out")
        return record
    folder.mkdir(parents=True, exist_ok=True)
    lr, wd, epochs, aug = RECIPES[name]
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = ARCHS[arch][2]().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=wd)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    y_noisy, clean = torch.from_numpy(noisy), torch.from_numpy(data.y_train)
    record = {"recipe": name, "lr": lr, "weight_decay": wd, "epochs": epochs, "augment": aug, "saved": []}
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        train_epoch(model, opt, data.x_train, y_noisy, aug, g)
        sched.step()
        if epoch in save_epochs(epochs):
            m = epoch_metrics(model, data.x_train, y_noisy, clean, data.x_test, torch.from_numpy(data.y_test))
            path = folder / f"epoch_{epoch:03d}.safetensors"
            suscli.save(
                model,
                path,
                arch=ARCHS[arch][0],
                arch_kwargs={"num_classes": 10, **ARCHS[arch][1]},
                num_classes=10,
                preset="cifar10",
                mean=list(cifar.MEAN),
                std=list(cifar.STD),
                image_size=image_size,
                epoch=epoch,
            )
            record["saved"].append({"epoch": epoch, "path": str(path), **m})
            print(
                f"{name} epoch {epoch}: fit on wrong labels {m['memorized']:.3f}, test {m['test_acc']:.3f}, "
                f"{time.perf_counter() - start:.0f}s",
                file=sys.stderr,
                flush=True,
            )
    record_path.write_text(json.dumps(record, indent=1))
    return record


def susceptibility(model: torch.nn.Module, pixels: torch.Tensor) -> tuple[float, list[float]]:
    """Susceptibility at the default step, and the loss on the random labels before the step per batch (what the
    verdict's confidence guard reads, as `suscli score` records it)."""
    s = measure_susceptibility(model, pixels, config=SusceptibilityConfig(), transform=normalizer(cifar.MEAN, cifar.STD))
    return s.mean, s.loss_before


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/arch-check"))
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--arch", choices=tuple(ARCHS), default="resnet18")
    ap.add_argument("--image-size", type=int, default=32, help="train and measure at N x N px, the 32 px images upsampled (bilinear)")
    ap.add_argument("--cifar-root", type=Path, default=cifar.DEFAULT_ROOT, help="unpacked cifar10-jpeg/ (made from the archive if missing)")
    args = ap.parse_args(argv)
    size = args.image_size
    if size < 8:
        ap.error("--image-size: at least 8")
    torch.set_num_threads(args.threads)
    root = cifar.ensure_unpacked(args.cifar_root)
    data = load_data(root, args.n_train, 1000, 1000, seed=0, threads=args.threads)
    noisy = noisy_labels(data.y_train, "human-worst", 0, data)
    print(f"{args.n_train} training images, {100 * (noisy != data.y_train).mean():.1f}% of labels wrong", file=sys.stderr)
    pixels, _, _ = ImageSource(data.unlabeled_paths, population=len(data.unlabeled_paths)).decoded(size, 3)
    resized = ""
    if size != 32:
        data = dataclasses.replace(data, x_train=cifar.upsample(data.x_train, size), x_test=cifar.upsample(data.x_test, size))
        # The same images upsampled as the training ones are, against suscli's own decode at `size` (PIL bilinear).
        gap = (cifar.upsample(cifar.decode(data.unlabeled_paths, args.threads), size).int() - pixels.int()).abs()
        resized = (
            f" Images upsampled from 32 to {size} px (bilinear) for training and the oracle; the unlabeled ones decoded at {size} px by "
            f"suscli, which differs from that upsampling by {float(gap.float().mean()):.2f} of 255 on average "
            f"(at most {int(gap.max())}, {100 * float((gap > 0).float().mean()):.1f}% of values differ)."
        )
        print(resized.strip(), file=sys.stderr)
    records = [train(name, args.arch, data, noisy, args.out, size) for name in RECIPES]
    (args.out / "unlabeled.txt").write_text("".join(f"{p.resolve()}\n" for p in data.unlabeled_paths))
    (args.out / "train-labels.csv").write_text(
        "path,label\n" + "".join(f"{p.resolve()},{int(y)}\n" for p, y in zip(data.train_paths, noisy))
    )
    at_init = [susceptibility(_fresh(args.arch, s), pixels)[0] for s in (0, 1)]
    rows, oracle = [], []
    for rec in records:
        for saved in rec["saved"]:
            ckpt = load_checkpoint(saved["path"])
            s, before = susceptibility(ckpt.model, pixels)
            details = {"lr": DEFAULT_LR, "batch_size": DEFAULT_BATCH_SIZE, "num_classes": 10, "loss_before": before}
            if verdict.wants_untrained(s, DEFAULT_LR, DEFAULT_BATCH_SIZE, 10):  # as suscli records it (suscli.run.model)
                details["untrained"] = untrained_susceptibility(
                    ckpt.model,
                    pixels,
                    config=SusceptibilityConfig(),
                    transform=normalizer(cifar.MEAN, cifar.STD),
                    device=torch.device("cpu"),
                    inputs="cifar",
                )
            rows.append(
                Result(
                    name=f"{rec['recipe']}-e{saved['epoch']}",
                    path=saved["path"],
                    susceptibility=s,
                    train_acc=saved["train_acc_noisy"],
                    details=details,
                )
            )
            oracle.append(saved)
    alone = {r.name: verdict.judge(r, None, None) for r in copy.deepcopy(rows)}
    unguarded = copy.deepcopy(rows)  # the same numbers without the untrained reading: what the guard changes
    for r in unguarded:
        r.details.pop("untrained", None)
    alone_unguarded = {r.name: verdict.judge(r, None, None) for r in copy.deepcopy(unguarded)}
    rank(unguarded, thresholds(unguarded))
    rank(rows, thresholds(rows))
    lines = [
        f"# The verdict's fixed cuts on {ARCHS[args.arch][3]}{f' at {size} px' if size != 32 else ''} (not used to choose them)",
        "",
        f"{args.n_train} CIFAR-10 training images{f' at {size} px' if size != 32 else ''} with CIFAR-10N human-worst labels "
        f"({100 * (noisy != data.y_train).mean():.1f}% wrong); "
        f"susceptibility at the default step on 1,000 unlabeled images. At initialization (seeds 0, 1): "
        f"{at_init[0]:.3f}, {at_init[1]:.3f}; as suscli measures it (suscli.measure.untrained, seed 0), where the verdict reads it: "
        f"{_reference(rows)}.{resized}",
        "",
        "| checkpoint | fits wrong labels | clean test acc | train acc (noisy) | susceptibility | loss before / ln 10 | "
        "verdict alone (without the guard) | verdict in this pool (without the guard) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r, u, o in zip(rows, unguarded, oracle):
        word, word_u = (a[r.name].word if a[r.name] else "-" for a in (alone, alone_unguarded))
        ratio = float(np.mean(r.details["loss_before"])) / np.log(10)
        lines.append(
            f"| {r.name} | {100 * o['memorized']:.1f}% | {100 * o['test_acc']:.1f}% | {100 * r.train_acc:.1f}% | {r.susceptibility:.3f} | "
            f"{ratio:.2f} | {word} ({word_u}) | {r.verdict or '-'} ({u.verdict or '-'}) |"
        )
    report = "\n".join(lines) + "\n"
    (args.out / "arch-check.md").write_text(report)
    print(report)


def _reference(rows: list[Result]) -> str:
    """What suscli's own reference read, once per architecture (every row that wants it shares it)."""
    found = {json.dumps(r.details["untrained"], sort_keys=True) for r in rows if "untrained" in r.details}
    return ", ".join(sorted(found)) or "no checkpoint above the low cut"


def _timm(name: str) -> torch.nn.Module:
    import timm  # the timm extra, only for --arch resnet10t

    return timm.create_model(name, pretrained=False, num_classes=10)


def _fresh(arch: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return ARCHS[arch][2]()


if __name__ == "__main__":
    main()
