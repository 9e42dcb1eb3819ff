"""Train a small CNN on images with 40% label noise, with suscli's susceptibility tracker in the loop.

    python examples/train_with_tracker.py --out track-example
    suscli track --log track-example/run.jsonl --plot track-example/run.png
    suscli track track-example/checkpoints --data track-example/unlabeled --train-data track-example/train
    tensorboard --logdir track-example/tb      # with --tensorboard: r and zeta beside the training loss

The images are suscli demo's procedural ones (nothing is downloaded); the network has no weight decay and trains
long enough to memorize the noisy labels, so r rises steeply in the second half of the run. Every epoch it logs r
to run.jsonl and saves a checkpoint, so both ways of `suscli track` work on the output; the clean test accuracy
printed per epoch is the ground truth that suscli never sees. About 20 s on one CPU core.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import suscli
from suscli import SusceptibilityTracker
from suscli.data.images import normalizer
from suscli.demo import SMALL, channel_stats, make_images, noisy_labels, write_pngs
from suscli.models import bn_cnn


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Eval-mode accuracy, as `suscli track --train-data` measures it."""
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("track-example"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--optimizer-step", action="store_true", help="measure with the training optimizer's own step, as the paper's code")
    ap.add_argument("--tensorboard", action="store_true", help="also write r, zeta and the training loss for TensorBoard (OUT/tb)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # tiny model: a second thread gains little and competes with anything else running

    recipe = SMALL
    train_px, clean = make_images(recipe.n_train, recipe, seed=0)
    test_px, test_y = make_images(recipe.n_test, recipe, seed=1)
    unlabeled_px, _ = make_images(recipe.n_unlabeled, recipe, seed=2)  # never trained on, no labels needed
    labels = noisy_labels(clean, recipe.noise, seed=3)
    mean, std = channel_stats(train_px)
    norm = normalizer(mean, std)
    x, x_test = norm(train_px), norm(test_px)
    write_pngs(args.out / "unlabeled", unlabeled_px)  # for `suscli track CHECKPOINTS --data`
    write_pngs(args.out / "train", train_px, labels)  # the noisy labels the model is trained on

    torch.manual_seed(0)
    model = bn_cnn(num_classes=10, width=16)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.0)
    batch_size = 32
    steps_per_epoch = math.ceil(len(x) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * steps_per_epoch)
    log = args.out / "run.jsonl"
    log.unlink(missing_ok=True)  # a new run; a resumed one would keep its log and continue it
    writer = None
    if args.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(args.out / "tb")
    tracker = SusceptibilityTracker(unlabeled_px, log=log, transform=norm, writer=writer)
    g = torch.Generator().manual_seed(0)

    for epoch in range(args.epochs + 1):  # epoch = epochs trained so far; the last pass only measures
        acc = accuracy(model, x, labels)
        rec = tracker.measure(
            model, epoch, optimizer=opt if args.optimizer_step else None, train_acc=acc, step=epoch * steps_per_epoch
        )  # the writer's x-axis: optimizer steps, as the loss below
        suscli.save(
            model,
            args.out / "checkpoints" / f"epoch_{epoch:03d}.safetensors",
            arch="suscli.models:bn_cnn",
            arch_kwargs={"num_classes": 10, "width": 16},
            mean=mean,
            std=std,
            image_size=recipe.image_size,
            epoch=epoch,
        )
        zeta = "-" if rec.zeta is None else f"{rec.zeta:.4f}"
        print(
            f"epoch {epoch:2d}  train acc {acc:.3f}  r {rec.r:.4f}  zeta {zeta}  clean test acc {accuracy(model, x_test, test_y):.3f}",
            flush=True,
        )
        if epoch == args.epochs:
            break
        model.train()
        order = torch.randperm(len(x), generator=g)
        for i, start in enumerate(range(0, len(x), batch_size)):
            idx = order[start : start + batch_size]
            loss = F.cross_entropy(model(x[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if writer is not None:
                writer.add_scalar("train/loss", loss.item(), epoch * steps_per_epoch + i + 1)
    if writer is not None:
        writer.close()
    print(f"log: {log}\nnext: suscli track --log {log} --plot {args.out / 'run.png'}")


if __name__ == "__main__":
    main()
