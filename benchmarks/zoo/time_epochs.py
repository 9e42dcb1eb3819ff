"""Measure seconds per epoch of every architecture shape in the zoo grid and estimate the full zoo's time.

The zoo must fit about two hours on two CPU cores, so the grid's sizes are chosen from these numbers. Random
uint8 images time the same as CIFAR ones, so no data is needed:

    python benchmarks/zoo/time_epochs.py [--n-train 2000] [--n-test 2000] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import train_zoo as zoo


def time_shape(
    cfg: zoo.ModelConfig, x_train: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, reps: int
) -> dict[str, float]:
    """Fastest of `reps` runs (the CPU is shared: other load only ever adds time) of one training epoch without
    and with augmentation, and of one evaluation pass."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = cfg.build().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=zoo.MOMENTUM)
    zoo.train_epoch(model, opt, x_train[: 4 * zoo.BATCH_SIZE], y[: 4 * zoo.BATCH_SIZE], False, g)  # warm-up

    def fastest(fn) -> float:
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    return {
        "train": fastest(lambda: zoo.train_epoch(model, opt, x_train, y, False, g)),
        "train_aug": fastest(lambda: zoo.train_epoch(model, opt, x_train, y, True, g)),
        "eval": fastest(lambda: zoo.epoch_metrics(model, x_train, y, y, x_test, y_test)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-train", type=int, default=zoo.FULL["n_train"])
    p.add_argument("--n-test", type=int, default=zoo.FULL["n_test"])
    p.add_argument("--models-per-setting", type=int, default=zoo.FULL["models_per_setting"])
    p.add_argument("--settings", type=int, default=len(zoo.FULL["settings"].split(",")), help="how many settings")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    x_train = torch.randint(0, 256, (args.n_train, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, zoo.NUM_CLASSES, (args.n_train,))
    x_test = torch.randint(0, 256, (args.n_test, 3, 32, 32), dtype=torch.uint8)
    y_test = torch.randint(0, zoo.NUM_CLASSES, (args.n_test,))
    configs = zoo.build_configs(args.models_per_setting, zoo.EPOCHS_FULL, 0)
    shapes = {}
    for c in configs:
        shapes.setdefault(c.shape, c)
    print(
        f"{args.n_train} train + {args.n_test} test images, batch {zoo.BATCH_SIZE}, {args.threads} threads; seconds per epoch (fastest of {args.reps}); load average {os.getloadavg()[0]:.1f}"
    )
    timing = {}
    for shape, c in shapes.items():
        timing[shape] = time_shape(c, x_train, y, x_test, y_test, args.reps)
        t = timing[shape]
        print(f"  {shape:<16} train {t['train']:.2f}  train+aug {t['train_aug']:.2f}  eval {t['eval']:.2f}", flush=True)
    per_setting = 0.0
    for c in configs:
        t = timing[c.shape]
        per_setting += c.epochs * t["train_aug" if c.augment else "train"] + len(zoo.eval_epochs(c.epochs)) * t["eval"]
    print(
        f"{len(configs)} models, {sum(c.epochs for c in configs)} epochs per setting: {per_setting / 60:.1f} min per setting, "
        f"{args.settings * per_setting / 3600:.2f} h for {args.settings} settings; load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
