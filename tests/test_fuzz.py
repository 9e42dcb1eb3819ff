"""Property-based fuzzing of every input a user hands `suscli score` and `suscli rank`: checkpoints, images, label
files and results files that are truncated, bit-flipped or random. Whatever the bytes, the command ends in a
documented exit code with one line on stderr, never a traceback. Examples are few and tiny (8x8 images, a 3-class
CNN, one batch) to stay fast; docs/reliability.md lists what each test covers."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import struct
from collections.abc import Iterator

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from click.testing import Result as CliResult
from hypothesis import strategies as st
from safetensors.torch import save as save_safetensors

import suscli
from tests.conftest import tiny_cnn, write_images
from tests.test_reliability import invoke

ARCH = "tests.conftest:tiny_cnn"
FAST = ("--batches", "1", "--batch-size", "4", "-f", "json")
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def check_contract(res: CliResult, allowed: tuple[int, ...] = (0, 2, 3)) -> None:
    """A documented exit code, no traceback or internal error, and one stderr line when it fails (`run` has already
    failed the example on any warning or log line that would have reached stderr)."""
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code in allowed, res.output
    assert "Traceback" not in res.output and "internal error:" not in res.output, res.output
    if res.exit_code:
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)  # logging.lastResort's level
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def stderr_log_lines() -> Iterator[list[logging.LogRecord]]:
    """The log records a real run prints to stderr. With no handler on a logger or those above it, Python hands a
    WARNING or worse record to `logging.lastResort`, which prints it; under pytest the root logger holds pytest's
    capture handlers, so such a record is captured instead and the stray line goes unseen (PIL's "More samples per
    pixel than can be decoded" on a damaged TIFF did). pytest's handlers are lifted for the call and a recorder
    stands in for `lastResort`."""
    root = logging.getLogger()
    captures = [h for h in root.handlers if type(h).__module__.startswith("_pytest.")]
    recorder, last_resort = _Recorder(), logging.lastResort
    for h in captures:
        root.removeHandler(h)
    logging.lastResort = recorder
    try:
        yield recorder.records
    finally:
        logging.lastResort = last_resort
        for h in captures:
            root.addHandler(h)


def run(*args: object) -> CliResult:
    """`invoke`, also failing on any log line a real run would print to stderr."""
    with stderr_log_lines() as records:
        res = invoke(*args)
    assert not records, [f"{r.name}: {r.getMessage()}" for r in records]
    return res


def score(*args: object) -> CliResult:
    return run("score", *args, *FAST)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Good inputs to damage: checkpoints of each format, images, and a folder to write damaged files into."""
    root = tmp_path_factory.mktemp("fuzz")
    torch.manual_seed(0)
    model = tiny_cnn()
    zip_pt, legacy_pt = io.BytesIO(), io.BytesIO()
    torch.save(model.state_dict(), zip_pt)
    torch.save(model.state_dict(), legacy_pt, _use_new_zipfile_serialization=False)
    meta = {"suscli": json.dumps({"arch": ARCH, "num_classes": 3, "image_size": 8})}
    write_images(root / "imgs", 6, suffix=".png")
    write_images(root / "imgs", 2, seed=1, suffix=".jpg")
    write_images(root / "imgs", 2, seed=2, suffix=".tif")
    (root / "work").mkdir()
    for c in range(2):
        write_images(root / "train" / f"c{c}", 3, seed=5 + c)
    for i in range(2):
        suscli.save(tiny_cnn(), root / "pool" / f"m{i}.safetensors", arch=ARCH, num_classes=3, image_size=8)
    rank = ["rank", root / "pool", "-d", root / "imgs", "--train-data", root / "train", *FAST]
    assert invoke(*rank).exit_code == 0
    return {
        "rank": rank,
        "results": root / "pool" / "suscli-results.jsonl",
        "root": root,
        "images": root / "imgs",
        "good": suscli.save(model, root / "good.safetensors", arch=ARCH, num_classes=3, image_size=8),
        "sources": {
            ".pt zip": zip_pt.getvalue(),
            ".pt legacy": legacy_pt.getvalue(),
            ".safetensors": save_safetensors(model.state_dict(), metadata=meta),
            "results": (root / "pool" / "suscli-results.jsonl").read_bytes(),
        },
    }


def damage(data: bytes, how: str, cut: float, flips: list[tuple[float, int]], noise: bytes) -> bytes:
    """Cut `data` at fraction `cut`, flip the bits `flips` (position as a fraction, bit), or replace it by `noise`."""
    if how == "random":
        return noise
    if how == "truncate":
        return data[: int(len(data) * cut)]
    out = bytearray(data)
    for where, bit in flips:
        out[min(int(len(out) * where), len(out) - 1)] ^= 1 << bit
    return bytes(out)


HOW = st.sampled_from(["truncate", "flip", "random"])
CUT = st.floats(0, 1)
FLIPS = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), min_size=1, max_size=12)
NOISE = st.binary(min_size=1, max_size=4096)


@FUZZ
@given(source=st.sampled_from([".pt zip", ".pt legacy", ".safetensors"]), how=HOW, cut=CUT, flips=FLIPS, noise=NOISE)
def test_damaged_checkpoints(world, source, how, cut, flips, noise) -> None:
    path = world["root"] / "work" / ("m.safetensors" if source == ".safetensors" else "m.pt")
    path.write_bytes(damage(world["sources"][source], how, cut, flips, noise))
    check_contract(score(path, "-d", world["images"], "--arch", ARCH, "--image-size", "8"))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)


@FUZZ
@given(
    key=st.sampled_from(["dtype", "shape", "data_offsets", "__metadata__", "tensor", "new"]),
    value=JSON_VALUES,
    length_delta=st.sampled_from([0, 0, 0, -1, 1, 10**6]),
)
def test_safetensors_with_mutated_json_header(world, key, value, length_delta) -> None:
    """The safetensors header is JSON that names each tensor's dtype, shape and byte range: any of them may lie."""
    data = world["sources"][".safetensors"]
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    tensor = next(k for k in header if k != "__metadata__")
    if key in ("dtype", "shape", "data_offsets"):
        header[tensor][key] = value
    elif key == "tensor":
        header[tensor] = value
    else:
        header[key] = value
    text = json.dumps(header).encode()
    path = world["root"] / "work" / "h.safetensors"
    path.write_bytes(struct.pack("<Q", max(0, len(text) + length_delta)) + text + data[8 + n :])
    check_contract(score(path, "-d", world["images"]))


@FUZZ
@given(suffix=st.sampled_from([".png", ".jpg", ".tif"]), how=HOW, cut=CUT, flips=FLIPS, noise=NOISE, strict=st.booleans())
# found: the TIFF's SamplesPerPixel made 131 (byte 90 of 332, bit 7), which PIL logs as an error before refusing it
@example(suffix=".tif", how="flip", cut=0.0, flips=[(0.2726, 7)], noise=b"\0", strict=False)
def test_damaged_image_among_good_ones(world, suffix, how, cut, flips, noise, strict) -> None:
    """A damaged image is skipped and counted (exit 0), or with --strict named in a one-line error (exit 3)."""
    folder = world["root"] / "work" / "imgs"
    folder.mkdir(exist_ok=True)
    for p in folder.iterdir():
        p.unlink()
    good = sorted(world["images"].glob(f"*{suffix}"))
    for p in good:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / f"zz_damaged{suffix}").write_bytes(damage(good[0].read_bytes(), how, cut, flips, noise))
    res = score(world["good"], "-d", folder, *(["--strict"] if strict else []))
    check_contract(res, (0, 3) if strict else (0,))
    if res.exit_code == 3:
        assert "zz_damaged" in res.stderr


LABEL = st.integers(-1, 4).map(str) | st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=2) | st.text(max_size=3)
VALID_ROW = st.builds(
    lambda i, label: f"../../imgs/img_{i:03d}.png,{label}", st.integers(0, 5), st.integers(0, 2) | st.sampled_from(["cat", "dog", "eel"])
)
ODD_ROW = st.builds(lambda path, label: f"{path},{label}", st.text(max_size=12), LABEL) | st.text(max_size=30)


@FUZZ
@given(rows=st.lists(VALID_ROW | VALID_ROW | ODD_ROW, max_size=8), raw=st.none() | st.binary(max_size=64))
@example(rows=["../../imgs/img_000.png,0", "x.png,\u00b2"], raw=None)  # found: '²'.isdigit() but int('²') fails
@example(rows=["../../imgs/img_000.png,0", "x\x00.png,1"], raw=None)  # found: a NUL in a path
def test_label_csv_of_random_text(world, rows, raw) -> None:
    """Label files mixing valid rows (class ids or names), rows naming missing images, bad labels and random text or bytes."""
    csv = world["root"] / "work" / "labels" / "labels.csv"
    csv.parent.mkdir(exist_ok=True)
    csv.write_bytes(raw if raw is not None else "\n".join(rows).encode())
    check_contract(score(world["good"], "-d", world["images"], "--train-data", csv))


@FUZZ
@given(how=HOW, cut=CUT, flips=FLIPS, noise=NOISE)
def test_damaged_results_file(world, how, cut, flips, noise) -> None:
    """The resumable results file of a finished `rank`, damaged: rank reuses, recomputes or refuses it in one line."""
    world["results"].write_bytes(damage(world["sources"]["results"], how, cut, flips, noise))
    check_contract(run(*world["rank"]))


@FUZZ
@given(
    suffix=st.sampled_from([".txt", ".csv"]),
    rows=st.lists(st.builds(lambda i: f"../../imgs/img_{i:03d}.png", st.integers(0, 5)) | ODD_ROW, max_size=8),
    raw=st.none() | st.binary(max_size=64),
)
@example(suffix=".txt", rows=["../../imgs/img_000.png", "x\x00.png"], raw=None)
@example(suffix=".txt", rows=[], raw=b"\x00\t\x00")  # a NUL in the first line, read first for `path label`
def test_image_list_of_random_text(world, suffix, rows, raw) -> None:
    """--data as a list of image paths, mixing good paths, missing files, odd rows and random text or bytes."""
    lst = world["root"] / "work" / "lists" / f"list{suffix}"
    lst.parent.mkdir(exist_ok=True)
    lst.write_bytes(raw if raw is not None else "\n".join(rows).encode())
    check_contract(score(world["good"], "-d", lst))


@pytest.fixture(scope="module")
def hf_files(world) -> dict:
    """A parquet file and a save_to_disk folder, written by the datasets library, of the fuzz world's images."""
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    root = world["root"] / "hf"
    images = [{"bytes": p.read_bytes(), "path": p.name} for c in range(2) for p in sorted((world["root"] / "train" / f"c{c}").iterdir())]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    ds = datasets.Dataset.from_dict({"image": images, "label": [0, 0, 0, 1, 1, 1]}, features=features)
    ds.save_to_disk(str(root / "saved"))
    ds.to_parquet(str(root / "good.parquet"))
    folder = root / "imagefolder"  # an ImageFolder labelled by its metadata.parquet, ids and ClassLabel names
    folder.mkdir()
    for image in images:
        (folder / image["path"]).write_bytes(image["bytes"])
    features = datasets.Features({"file_name": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b"])})
    meta = datasets.Dataset.from_dict({"file_name": [i["path"] for i in images], "label": [0, 0, 0, 1, 1, 1]}, features=features)
    meta.to_parquet(str(folder / "metadata.parquet"))
    return {
        "root": root,
        "parquet": (root / "good.parquet").read_bytes(),
        "imagefolder": folder,
        "metadata": (folder / "metadata.parquet").read_bytes(),
        "saved": {p.name: p.read_bytes() for p in (root / "saved").iterdir()},
    }


@FUZZ
@given(how=HOW, cut=CUT, flips=FLIPS, noise=NOISE)
def test_damaged_parquet_file(world, hf_files, how, cut, flips, noise) -> None:
    """A parquet file of images and labels, truncated, bit-flipped or random: scored, or refused in one line."""
    path = hf_files["root"] / "damaged.parquet"
    path.write_bytes(damage(hf_files["parquet"], how, cut, flips, noise))
    check_contract(score(world["good"], "-d", path, "--train-data", path))


@FUZZ
@given(name=st.sampled_from(["data-00000-of-00001.arrow", "state.json", "dataset_info.json"]), how=HOW, cut=CUT, flips=FLIPS, noise=NOISE)
def test_damaged_datasets_folder(world, hf_files, name, how, cut, flips, noise) -> None:
    """A save_to_disk folder with one of its files (the arrow data, its JSON state or info) damaged."""
    folder = hf_files["root"] / "damaged"
    folder.mkdir(exist_ok=True)
    for file, data in hf_files["saved"].items():
        (folder / file).write_bytes(damage(data, how, cut, flips, noise) if file == name else data)
    check_contract(score(world["good"], "-d", folder, "--train-data", folder))


@FUZZ
@given(how=HOW, cut=CUT, flips=FLIPS, noise=NOISE)
def test_damaged_metadata_parquet(world, hf_files, how, cut, flips, noise) -> None:
    """The metadata.parquet that labels a Hugging Face ImageFolder, truncated, bit-flipped or random: the folder is
    read as labelled by what is left of it, or refused in one line."""
    (hf_files["imagefolder"] / "metadata.parquet").write_bytes(damage(hf_files["metadata"], how, cut, flips, noise))
    check_contract(score(world["good"], "-d", world["images"], "--train-data", hf_files["imagefolder"]))
