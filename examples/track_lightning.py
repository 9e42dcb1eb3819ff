"""Lightning: susceptibility in the loggers you already read (TensorBoard and a CSV here), beside the training loss.

    python examples/track_lightning.py --out track-lightning
    tensorboard --logdir track-lightning/tb          # susceptibility/r, susceptibility/zeta next to train_loss
    suscli track --log track-lightning/run.jsonl

The images are suscli demo's procedural ones with 40% label noise (nothing is downloaded).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from suscli import SusceptibilityCallback, SusceptibilityTracker
from suscli.data.images import normalizer
from suscli.demo import SMALL, channel_stats, make_images, noisy_labels
from suscli.models import bn_cnn


class Classifier(pl.LightningModule):
    def __init__(self, width: int, mean: list[float], std: list[float]):
        super().__init__()
        self.net, self.norm = bn_cnn(num_classes=10, width=width), normalizer(mean, std)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        x, y = batch
        logits = self(self.norm(x))
        self.log("train_acc", (logits.argmax(-1) == y).float().mean(), on_step=False, on_epoch=True)
        loss = F.cross_entropy(logits, y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("track-lightning"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--train", type=int, default=SMALL.n_train)
    ap.add_argument("--width", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)
    pl.seed_everything(0)
    pixels, clean = make_images(args.train, SMALL, seed=0)
    labels = noisy_labels(clean, SMALL.noise, seed=3)
    unlabeled, _ = make_images(args.train // 2, SMALL, seed=2)
    mean, std = channel_stats(pixels)
    (args.out / "run.jsonl").unlink(missing_ok=True)  # a new run; a resumed one keeps its log and continues it

    # The two lines to add: a tracker on unlabeled images, and the callback.
    tracker = SusceptibilityTracker(unlabeled, log=args.out / "run.jsonl", transform=normalizer(mean, std))
    callback = SusceptibilityCallback(tracker, acc_metric="train_acc", every_n_epochs=1)
    loggers = [pl.loggers.TensorBoardLogger(args.out, name="tb"), pl.loggers.CSVLogger(args.out, name="csv")]
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        callbacks=[callback],
        logger=loggers,
        accelerator="cpu",
        enable_checkpointing=False,
        enable_progress_bar=False,
        log_every_n_steps=10,
    )
    data = torch.utils.data.TensorDataset(pixels, labels)
    trainer.fit(Classifier(args.width, mean, std), torch.utils.data.DataLoader(data, batch_size=32, shuffle=True))
    print(f"next: suscli track --log {args.out / 'run.jsonl'}; tensorboard --logdir {args.out / 'tb'}")


if __name__ == "__main__":
    main()
