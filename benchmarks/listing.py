"""How long reading a large label CSV takes (`--train-data labels.csv`): folder by folder, as suscli reads it, against
each row's path resolved on its own, as it did before (docs/performance.md, "Reading a label file").

    python benchmarks/listing.py                       # CIFAR-10's 50,000 training images, 5 rounds
    python benchmarks/listing.py --root DIR --rounds 3 # an unpacked cifar10-jpeg folder elsewhere

The CSV (`path,label`, absolute paths, one row per training image) is written to a temporary folder; the image
folder is only read. Both ways run in this process, alternating, and must give the same listing; the medians and
their ratio are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ for the shared data helper
from cifar import CLASSES, DEFAULT_ROOT, ensure_unpacked  # noqa: E402

import suscli.data.tables as tables  # noqa: E402
from suscli.data.imagesets import Listing, read_labeled  # noqa: E402


def one_by_one(folder: Path, texts: Iterable[str]) -> list[Path]:
    """The way before: each row's path resolved on its own."""
    return [tables.listed_path(folder, t) for t in texts]


def timed(read: Callable[[Path, Iterable[str]], list[Path]], csv: Path) -> tuple[float, Listing]:
    """Seconds `read_labeled(csv)` takes with `read` resolving the rows, and what it read."""
    kept = tables.listed_paths
    tables.listed_paths = read
    try:
        start = time.perf_counter()
        listing = read_labeled(csv)
        return time.perf_counter() - start, listing
    finally:
        tables.listed_paths = kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="the unpacked cifar10-jpeg folder")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    train = ensure_unpacked(args.root).resolve() / "train"  # absolute rows: a relative root would name them from the working directory
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "labels.csv"
        rows = [f"{p},{i}" for i, name in enumerate(CLASSES) for p in sorted((train / name).iterdir())]
        csv.write_text("path,label\n" + "\n".join(rows) + "\n")
        times: dict[str, list[float]] = {"folder by folder": [], "one by one": []}
        for _ in range(args.rounds):
            now, new = timed(tables.listed_paths, csv)
            before, old = timed(one_by_one, csv)
            assert new.items == old.items and new.labels == old.labels, "the two ways read different listings"
            times["folder by folder"].append(now)
            times["one by one"].append(before)
    medians = {way: statistics.median(t) for way, t in times.items()}
    print(f"{len(rows):,} rows, {args.rounds} rounds (median seconds of read_labeled):")
    for way, median in medians.items():
        print(f"  {way:17} {median:6.2f} s")
    print(f"  one by one / folder by folder: {medians['one by one'] / medians['folder by folder']:.1f}x")


if __name__ == "__main__":
    main()
