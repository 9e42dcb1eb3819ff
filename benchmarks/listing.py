"""How long reading a large label file and its images' listing takes, in this tree's suscli against the same code at
another git revision, both measured in the same run (docs/performance.md, "Reading a label file").

    python benchmarks/listing.py --baseline REV                        # CIFAR-10's 50,000 training images, 5 rounds
    python benchmarks/listing.py --baseline REV --root DIR --rounds 3  # an unpacked cifar10-jpeg folder elsewhere

Three reads, each written to a temporary folder (the image folder is only read):

- absolute rows: a `path,label` CSV of absolute paths, one row per training image (`read_labeled`);
- rows from the working directory: the same rows relative to the folder that holds `train/`, run from there, the CSV
  kept elsewhere (read from the working directory, with a note);
- ImageFolder, second run: a `metadata.csv` naming the first `--imagefolder` training images (absolute paths, an
  equal number per class), read and decoded at 32 px (`labeled_source(...).decoded`) with a cache folder that a first,
  untimed run of the same tree filled: what a second run does to get its training images, EXIF scan included.

REV's `suscli/` is extracted with `git archive` into a temporary folder. Every round runs one child process per tree,
alternating which goes first; each times the reads in itself (imports left out) and prints what it read as a digest, which must be
the same in both trees. The medians and their ratios are printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/ for the shared data helper
from cifar import CLASSES, DEFAULT_ROOT, REPO, ensure_unpacked  # noqa: E402

READS = {"absolute": "absolute rows", "cwd": "rows from the working directory", "imagefolder": "ImageFolder, second run"}

# Run in a child process, from the folder the relative rows start at, with the tree's suscli first on sys.path
CHILD = """
import hashlib, json, sys, time
import suscli
assert suscli.__file__.startswith(sys.path[0]), f"imported {suscli.__file__}, not the tree's"
from suscli.data.images import labeled_source
from suscli.data.imagesets import read_labeled

def digest(*parts):
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

tmp = sys.argv[1]
out = {}
for name in ("absolute", "cwd"):
    start = time.perf_counter()
    listing = read_labeled(f"{tmp}/{name}.csv")
    out[name] = (time.perf_counter() - start, digest([str(p) for p in listing.items], listing.labels, len(listing.notes)))
start = time.perf_counter()
source = labeled_source(f"{tmp}/hf", cache_dir=sys.argv[2])
pixels, labels, _ = source.decoded(32, 3)
seconds = time.perf_counter() - start
out["imagefolder"] = (seconds, digest([str(p) for p in source.paths], labels.tolist(), source.upright, int(pixels.sum())))
print(json.dumps(out))
"""


def baseline_tree(rev: str, into: Path) -> Path:
    """REV's suscli/ extracted into `into`, which then goes first on the child's sys.path."""
    into.mkdir()
    archive = into / "suscli.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "-C", str(REPO), "archive", rev, "suscli"], stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def child(tree: Path, root: Path, tmp: Path, cache: Path) -> dict[str, tuple[float, str]]:
    """The seconds and digest of each read, in `tree`'s suscli."""
    code = f"import sys; sys.path.insert(0, {str(tree)!r})\n" + CHILD
    done = subprocess.run([sys.executable, "-c", code, str(tmp), str(cache)], cwd=root, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the read in {tree} failed:\n{done.stderr}")
    return {name: (seconds, digest) for name, (seconds, digest) in json.loads(done.stdout).items()}


def write_inputs(train: Path, tmp: Path, imagefolder: int) -> int:
    """The label files the reads take (see the module's docstring); the number of rows."""
    files = [(p, i) for i, name in enumerate(CLASSES) for p in sorted((train / name).iterdir())]
    (tmp / "absolute.csv").write_text("path,label\n" + "".join(f"{p},{i}\n" for p, i in files))
    (tmp / "cwd.csv").write_text("path,label\n" + "".join(f"{p.relative_to(train.parent)},{i}\n" for p, i in files))
    per_class = imagefolder // len(CLASSES)
    chosen = [(p, name) for name in CLASSES for p in sorted((train / name).iterdir())[:per_class]]
    (tmp / "hf").mkdir()
    (tmp / "hf" / "metadata.csv").write_text("file_name,label\n" + "".join(f"{p},{name}\n" for p, name in chosen))
    return len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="the git revision to measure against (a commit, a branch)")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="the unpacked cifar10-jpeg folder")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--imagefolder", type=int, default=20_000, help="images of the ImageFolder read")
    args = parser.parse_args()
    root = ensure_unpacked(args.root).resolve()  # absolute rows: a relative root would name them from the working directory
    times: dict[str, dict[str, list[float]]] = {tree: {name: [] for name in READS} for tree in ("baseline", "this")}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rows = write_inputs(root / "train", tmp, args.imagefolder)
        trees = {"baseline": baseline_tree(args.baseline, tmp / "baseline"), "this": REPO}
        for tree, where in trees.items():  # the first run fills each tree's cache folder, and the page cache
            child(where, root, tmp, tmp / f"cache-{tree}")
        for round in range(args.rounds):
            order = list(trees) if round % 2 == 0 else list(trees)[::-1]  # neither tree always runs first
            read = {tree: child(trees[tree], root, tmp, tmp / f"cache-{tree}") for tree in order}
            for name in READS:
                assert read["baseline"][name][1] == read["this"][name][1], f"the two trees read {READS[name]} differently"
                for tree in trees:
                    times[tree][name].append(read[tree][name][0])
    print(f"{rows:,} rows, an ImageFolder of {args.imagefolder:,} images, {args.rounds} rounds (median seconds):")
    print(f"  {'':32} {args.baseline[:12]:>12} {'this tree':>10} {'ratio':>7}")
    for name, label in READS.items():
        before, now = (statistics.median(times[tree][name]) for tree in ("baseline", "this"))
        print(f"  {label:32} {before:12.2f} {now:10.2f} {before / now:6.1f}x")


if __name__ == "__main__":
    main()
