"""Hugging Face Trainer: susceptibility in the Trainer's log history and wherever `report_to` sends it (TensorBoard
here; W&B and MLflow the same way), beside the training loss.

    python examples/track_hf_trainer.py --out track-hf
    tensorboard --logdir track-hf        # train/susceptibility/r, train/susceptibility/zeta next to train/loss
    suscli track --log track-hf/run.jsonl

The unlabeled images are a folder of PNGs, decoded once by suscli; the training images are suscli demo's
procedural ones with 40% label noise (nothing is downloaded).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer, TrainingArguments, set_seed

from suscli import SusceptibilityTracker, SusceptibilityTrainerCallback
from suscli.data.images import normalizer
from suscli.demo import SMALL, channel_stats, make_images, noisy_labels, write_pngs
from suscli.models import bn_cnn


class Classifier(nn.Module):
    """A plain module as the Trainer wants it: keyword inputs, the loss in a dict when labels are given."""

    def __init__(self, width: int, mean: list[float], std: list[float]):
        super().__init__()
        self.net, self.norm = bn_cnn(num_classes=10, width=width), normalizer(mean, std)

    def forward(self, pixel_values, labels=None):
        logits = self.net(self.norm(pixel_values))
        return {"logits": logits} if labels is None else {"loss": F.cross_entropy(logits, labels), "logits": logits}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("track-hf"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--train", type=int, default=SMALL.n_train)
    ap.add_argument("--width", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)
    set_seed(0)
    pixels, clean = make_images(args.train, SMALL, seed=0)
    labels = noisy_labels(clean, SMALL.noise, seed=3)
    write_pngs(args.out / "unlabeled", make_images(args.train // 2, SMALL, seed=2)[0])
    train = [{"pixel_values": x, "labels": y} for x, y in zip(pixels, labels)]
    (args.out / "run.jsonl").unlink(missing_ok=True)  # a new run; a resumed one keeps its log and continues it

    training_args = TrainingArguments(
        output_dir=str(args.out),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=32,
        learning_rate=0.05,
        logging_steps=10,
        report_to=["tensorboard"],
        save_strategy="no",
        use_cpu=True,
        seed=0,
    )
    trainer = Trainer(model=Classifier(args.width, *channel_stats(pixels)), args=training_args, train_dataset=train)
    # The two lines to add: a tracker on a folder of unlabeled images (the model normalizes its own input), the callback.
    tracker = SusceptibilityTracker(args.out / "unlabeled", image_size=SMALL.image_size, log=args.out / "run.jsonl")
    trainer.add_callback(SusceptibilityTrainerCallback(trainer, tracker, every_n_epochs=1))
    trainer.train()
    print(f"next: suscli track --log {args.out / 'run.jsonl'}; tensorboard --logdir {args.out}")


if __name__ == "__main__":
    main()
