"""Train the timm and torchvision models of docs/validation.md ("Models from timm and torchvision, trained here").

That section reports what suscli says of architectures from outside the zoo, saved the way their libraries save
them; its figures have to come from a command anyone can rerun. Each model trains the fixed number of epochs of the
section's table (not to a time budget), so a rerun does the same work on any machine, and with --threads 1 it
repeats the table's training from the same seeds in the same order.

    python benchmarks/zoo/train_libs.py --cifar-root .cache/cifar10-jpeg --out /tmp/libzoo --threads 1
    python benchmarks/zoo/train_libs.py --cifar-root .cache/cifar10-jpeg --out /tmp/libzoo --threads 1 \
        --archs mobilenetv3_small_050

Outputs under --out: train_clean/ and train_noisy/ (2,000 training JPEGs, 200 a class, by label; the noisy copy
with 800 of them, 40%, moved to a random other class), unlabeled/ (1,000 test JPEGs, suscli's --data), val/ and
val_noisy/ (500 other test JPEGs by label; the noisy copy with 200 wrong), models/<arch>_<labels>/ (the checkpoint
and oracle.json: clean test accuracy, training accuracy, the share of the wrong labels memorized), and pool_clean/,
pool_noisy/, pool_both/ (one run folder per model found in models/, hard links to its checkpoint files, no oracle).
timm is needed for the timm models only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
N_PER_CLASS, TEST_PER_CLASS, N_UNLABELED, NOISE = 200, 150, 1000, 0.4
LR, BATCH, EVAL_BATCH = 1e-3, 64, 250
# Epochs per (architecture, labels): the table's, where the first run stopped at 98% training accuracy or ~200 s.
EPOCHS = {
    ("resnet10t", "clean"): 10,
    ("resnet10t", "noisy"): 12,
    ("mobilenetv3_small_050", "clean"): 27,
    ("mobilenetv3_small_050", "noisy"): 43,
    ("test_vit", "clean"): 14,
    ("test_vit", "noisy"): 15,
    ("tv_resnet18", "clean"): 13,
    ("tv_resnet18", "noisy"): 11,
}
ARCHS = tuple(dict.fromkeys(a for a, _ in EPOCHS))
TV_SIDECAR = {"arch": "torchvision:resnet18", "preset": "cifar10"}


def add_noise(labels: list[int], share: float, rng: random.Random) -> list[int]:
    """Move `share` of the labels, drawn by rng, to a random other class."""
    noisy = list(labels)
    for i in rng.sample(range(len(labels)), int(share * len(labels))):
        noisy[i] = rng.choice([k for k in range(10) if k != labels[i]])
    return noisy


def write_split(out: Path, classes: list[str], paths: list[Path], labels: list[int]) -> None:
    """Copy the images into out/<class>/NNNN.jpg, numbered in draw order (the same names in a clean and noisy copy)."""
    shutil.rmtree(out, ignore_errors=True)
    for name in classes:
        (out / name).mkdir(parents=True)
    for i, (p, y) in enumerate(zip(paths, labels)):
        shutil.copy(p, out / classes[y] / f"{i:04d}.jpg")


def decode(paths: list[Path]) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])).permute(0, 3, 1, 2).contiguous()


def build_sets(root: Path, out: Path, seed: int) -> dict[str, Any]:
    """Draw and write the sets from root/{train,test}/<class>/; return the training and unlabeled images as tensors."""
    classes = sorted(os.listdir(root / "train"))
    rng = random.Random(seed)
    train: list[tuple[Path, int]] = []
    for c, name in enumerate(classes):
        train += [(root / "train" / name / f, c) for f in rng.sample(sorted(os.listdir(root / "train" / name)), N_PER_CLASS)]
    rng.shuffle(train)
    clean = [y for _, y in train]
    noisy = add_noise(clean, NOISE, rng)
    test: list[tuple[Path, int]] = []
    for c, name in enumerate(classes):
        test += [(root / "test" / name / f, c) for f in rng.sample(sorted(os.listdir(root / "test" / name)), TEST_PER_CLASS)]
    rng.shuffle(test)
    unl, val = test[:N_UNLABELED], test[N_UNLABELED:]
    val_labels = [y for _, y in val]
    train_paths = [p for p, _ in train]
    write_split(out / "train_clean", classes, train_paths, clean)
    write_split(out / "train_noisy", classes, train_paths, noisy)
    write_split(out / "val", classes, [p for p, _ in val], val_labels)
    write_split(out / "val_noisy", classes, [p for p, _ in val], add_noise(val_labels, NOISE, rng))
    shutil.rmtree(out / "unlabeled", ignore_errors=True)
    (out / "unlabeled").mkdir()
    for i, (p, _) in enumerate(unl):
        shutil.copy(p, out / "unlabeled" / f"{i:04d}.jpg")
    return {
        "x": decode(train_paths),
        "clean": torch.tensor(clean),
        "noisy": torch.tensor(noisy),
        "xtest": decode([p for p, _ in unl]),
        "ytest": torch.tensor([y for _, y in unl]),
    }


def normalize(x: torch.Tensor) -> torch.Tensor:
    return (x.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def timm_kwargs(arch: str) -> dict[str, int]:
    """test_vit defaults to 160 px and patch 16: built for CIFAR's 32 px at patch 4 (64 tokens)."""
    return {"img_size": 32, "patch_size": 4} if arch == "test_vit" else {}


def create(arch: str) -> nn.Module:
    if arch == "tv_resnet18":
        import torchvision

        return torchvision.models.resnet18(num_classes=10)
    import timm

    return timm.create_model(arch, pretrained=False, num_classes=10, **timm_kwargs(arch))


def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i : i + EVAL_BATCH]).argmax(1) for i in range(0, len(x), EVAL_BATCH)])


def save(model: nn.Module, opt: torch.optim.Optimizer, arch: str, epochs: int, train_acc: float, out: Path) -> None:
    """As each library's users save: timm's CheckpointSaver with train.py's args (crop_pct 1.0: the 32 px images were
    fed whole, so no eval resize and crop), torchvision's state dict with the sidecar that names its architecture."""
    if arch == "tv_resnet18":
        torch.save(model.state_dict(), out / "model.pth")
        (out / "model.suscli.json").write_text(json.dumps(TV_SIDECAR))
        return
    from timm.utils import CheckpointSaver

    args = argparse.Namespace(
        model=arch,
        num_classes=10,
        in_chans=None,
        input_size=[3, 32, 32],
        img_size=None,
        mean=list(MEAN),
        std=list(STD),
        crop_pct=1.0,
        interpolation="",
        gp=None,
        bn_eps=None,
        model_kwargs=timm_kwargs(arch),
        opt="adam",
        lr=LR,
        batch_size=BATCH,
        epochs=epochs,
    )
    saver = CheckpointSaver(model, opt, args=args, checkpoint_dir=str(out), recovery_dir=str(out), max_history=1)
    saver.save_checkpoint(epochs - 1, metric=train_acc)


def train(arch: str, labels: str, data: dict[str, Any], out: Path, seed: int) -> dict[str, Any]:
    """Adam, batch 64, no augmentation, the table's epochs; the seed is set before the model is built, as the table's runs did."""
    torch.manual_seed(seed)
    x, y, clean = normalize(data["x"]), data[labels], data["clean"]
    model = create(arch)
    opt = torch.optim.Adam(model.parameters(), LR)
    epochs, t0 = EPOCHS[(arch, labels)], time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), BATCH):
            idx = perm[i : i + BATCH]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        print(f"{arch} {labels} epoch {epoch}/{epochs} {time.perf_counter() - t0:.0f}s", flush=True)
    p, wrong = predict(model, x), y != clean
    rec = {
        "arch": arch,
        "labels": labels,
        "epochs": epochs,
        "seconds": round(time.perf_counter() - t0),
        "threads": torch.get_num_threads(),
        "train_acc": (p == y).float().mean().item(),
        "test_acc": (predict(model, normalize(data["xtest"])) == data["ytest"]).float().mean().item(),
        "memorized": (p[wrong] == y[wrong]).float().mean().item() if wrong.any() else None,
        "clean_acc_on_wrong": (p[wrong] == clean[wrong]).float().mean().item() if wrong.any() else None,
    }
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    save(model, opt, arch, epochs, rec["train_acc"], out)
    (out / "oracle.json").write_text(json.dumps(rec, indent=1))
    print(json.dumps(rec), flush=True)
    return rec


def make_pools(out: Path) -> None:
    """pool_clean/<arch>, pool_noisy/<arch> and pool_both/<arch>_<labels>: hard links to every model in out/models/."""
    for pool in ("pool_clean", "pool_noisy", "pool_both"):
        shutil.rmtree(out / pool, ignore_errors=True)
    for run in sorted((out / "models").iterdir()):
        arch, _, labels = run.name.rpartition("_")
        for folder in (out / f"pool_{labels}" / arch, out / "pool_both" / run.name):
            folder.mkdir(parents=True)
            for f in run.iterdir():
                if f.name != "oracle.json":
                    os.link(f, folder / f.name)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cifar-root", type=Path, required=True, help="cifar10-jpeg/ with train/<class>/ and test/<class>/")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--archs", default=",".join(ARCHS), help=f"comma-separated, of {', '.join(ARCHS)} (default all)")
    p.add_argument("--labels", default="clean,noisy", help="clean, noisy or both (default both)")
    p.add_argument("--seed", type=int, default=0, help="the sets, the noise and every model's initialization and order")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice; the table used 1)")
    args = p.parse_args(argv)
    args.archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    args.labels = [s.strip() for s in args.labels.split(",") if s.strip()]
    for a in args.archs:
        if a not in ARCHS:
            p.error(f"unknown --archs entry {a!r}; choose from {', '.join(ARCHS)}")
    for s in args.labels:
        if s not in ("clean", "noisy"):
            p.error(f"unknown --labels entry {s!r}; choose clean or noisy")
    if not (args.cifar_root / "train").is_dir() or not (args.cifar_root / "test").is_dir():
        p.error(f"--cifar-root {args.cifar_root} has no train/ and test/ class folders")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data = build_sets(args.cifar_root, args.out, args.seed)
    print(f"sets written to {args.out} ({time.perf_counter() - t0:.0f}s)", flush=True)
    for arch in args.archs:
        for labels in args.labels:
            train(arch, labels, data, args.out / "models" / f"{arch}_{labels}", args.seed)
    make_pools(args.out)
    print(f"done in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
