"""How long `suscli track` takes on a run of checkpoints of one network, with what the run's first checkpoint settles
found once (as now) against found again for every checkpoint (as before) (docs/performance.md, "A run of one
network").

    python benchmarks/track_repeats.py                             # 24 epochs of suscli.models:bn_cnn at 32 px, 3 rounds
    python benchmarks/track_repeats.py --epochs 30 --side 64 --rounds 5

Two things are the same for every checkpoint of a run: whether the network's forward is random (four forwards of
16 images, suscli.measure.randomness), and the digest of the unlabeled images that keys the untrained reference
(suscli.measure.untrained). The run (random-init networks whose classifier grows with the epoch, so that
susceptibility rises along it and the later epochs want the untrained reference) and its generated images are
written to a temporary folder. Both ways run in this process, alternating which goes first, after one untimed run
that fills the decoded-image cache, and must give the same rows; the medians and their ratio are printed, on the
clock and in the process's CPU time (which other jobs on a shared machine change less).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import suscli
import suscli.measure.untrained as untrained
import suscli.run.audit as audit
import suscli.run.model as model
from suscli.errors import plural
from suscli.measure.randomness import random_forward
from suscli.models import bn_cnn

ARCH, WIDTH, CLASSES = "suscli.models:bn_cnn", 16, 10


def make_run(root: Path, epochs: int, side: int, unlabeled: int, train: int) -> None:
    """The run's checkpoints, and its unlabeled and training images (random pixels: speed does not depend on them)."""
    rng = np.random.default_rng(0)
    for sub, count in (("unlabeled", unlabeled), ("train", train)):
        for i in range(count):
            folder = root / sub / (f"c{i % CLASSES}" if sub == "train" else "")
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    for e in range(1, epochs + 1):
        torch.manual_seed(e)
        net = bn_cnn(num_classes=CLASSES, width=WIDTH)
        with torch.no_grad():
            net[-1].weight.mul_(1 + e)
        kwargs = {"num_classes": CLASSES, "width": WIDTH}
        suscli.save(net, root / "run" / f"epoch_{e}.safetensors", arch=ARCH, arch_kwargs=kwargs, image_size=side)


def every_time(*args: object, seen: object = None, **kwargs: object) -> str | None:
    """The way before: each checkpoint's forward checked, whatever the run found."""
    return random_forward(*args, **kwargs)  # type: ignore[arg-type]


def hashed_every_time(pixels: torch.Tensor) -> str:
    """The way before: the images' bytes copied and hashed for each checkpoint."""
    return hashlib.sha256(pixels.cpu().numpy().tobytes()).hexdigest()


@contextmanager
def timed_parts(before: bool, spent: dict[str, float]) -> Iterator[None]:
    """The two parts timed where track calls them, as they were (`before`) or as they are now."""
    check = every_time if before else random_forward
    digest = hashed_every_time if before else untrained.images_digest
    kept = (model.random_forward, audit.random_forward, untrained.images_digest)

    def timing(part: str, fn: Callable) -> Callable:
        def run(*a: object, **k: object) -> object:
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[part] += time.perf_counter() - start

        return run

    model.random_forward = audit.random_forward = timing("forward check", check)
    untrained.images_digest = timing("images' digest", digest)
    try:
        yield
    finally:
        model.random_forward, audit.random_forward, untrained.images_digest = kept


def track_once(root: Path, before: bool) -> tuple[tuple[float, float], dict[str, float], list[tuple]]:
    """Seconds of one `suscli.track` of the run (its results measured afresh), on the clock and of the process's CPU
    time (which other jobs on a shared machine change less), the parts (on the clock), and the rows' numbers."""
    spent = {"forward check": 0.0, "images' digest": 0.0}
    untrained._cache.clear()  # the reference measured in every round, as in a new process
    with timed_parts(before, spent):
        start, cpu = time.perf_counter(), time.process_time()
        report = suscli.track(
            root / "run", root / "unlabeled", root / "train", inputs=suscli.Inputs(device="cpu"), fresh=True, results=root / "results.jsonl"
        )
        seconds = time.perf_counter() - start, time.process_time() - cpu
    rows = [(r.name, r.susceptibility, r.train_acc, r.verdict, tuple(r.notes), repr(r.details.get("untrained"))) for r in report.rows]
    return seconds, spent, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--side", type=int, default=32, help="the images' side in pixels")
    parser.add_argument("--unlabeled", type=int, default=256)
    parser.add_argument("--train", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_run(root, args.epochs, args.side, args.unlabeled, args.train)
        _, _, reference = track_once(root, before=False)  # fills the decoded-image cache
        times: dict[str, list[tuple[float, float]]] = {"once a run (now)": [], "every checkpoint (before)": []}
        parts: dict[str, list[dict[str, float]]] = {way: [] for way in times}
        for i in range(args.rounds):
            for way in sorted(times, reverse=i % 2 == 1):
                seconds, spent, rows = track_once(root, before=way.startswith("every"))
                assert rows == reference, f"{way}: the rows differ"
                times[way].append(seconds)
                parts[way].append(spent)
    kept = sum(1 for r in reference if r[5] != "None")
    print(
        f"device cpu (torch {torch.__version__}, {torch.get_num_threads()} CPU threads); suscli track of {args.epochs} "
        f"checkpoints of {ARCH} (width {WIDTH}) at {args.side} px, {args.unlabeled} unlabeled and {args.train} training "
        f"images; {kept} epochs want the untrained reference; warm image cache; {args.rounds} {plural(args.rounds, 'round')}"
    )
    for clock, k in (("on the clock", 0), ("CPU time", 1)):
        medians = {way: statistics.median(t[k] for t in ts) for way, ts in times.items()}
        print(f"  {clock}:")
        for way, median in medians.items():
            shares = ", ".join(f"{part} {statistics.median(p[part] for p in parts[way]):.2f} s" for part in parts[way][0])
            print(f"    {way:26} median {median:6.2f} s" + (f"   {shares}" if k == 0 else ""))
            print(f"    {'':26} rounds: {', '.join(f'{t[k]:.2f} s' for t in times[way])}")
        before, now = medians["every checkpoint (before)"], medians["once a run (now)"]
        print(f"    before / now: {before / now:.2f}x ({before - now:.2f} s saved of {before:.2f} s)")
    print("  same rows in every run: yes")


if __name__ == "__main__":
    main()
