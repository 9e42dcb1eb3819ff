"""The decoded-image cache (suscli.data.cache, used by suscli.data.images) and the out-of-memory backoff of the device paths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import suscli
import suscli.data.images
from suscli.measure.accuracy import training_accuracy
from suscli.data.cache import FORMAT, default_cache_dir, entry_key
from suscli.load.checkpoints import Checkpoint
from suscli.cli import app
from suscli.errors import InputError
from suscli.data.images import ImageSource, Sizing, decode_images
from suscli.data.imagesets import list_images, read_labeled
from suscli.run.model import score_checkpoint
from suscli.run.settings import Settings
from suscli.measure.susceptibility import SusceptibilityConfig
from tests.conftest import tiny_cnn, write_images


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_images(tmp_path / "imgs", 6, size=10)
    (tmp_path / "imgs" / "broken.png").write_bytes(b"not a png")
    return tmp_path / "imgs"


def refuse_decoding(path: Path, *args: object) -> None:
    raise AssertionError(f"decoded {path} although it is cached")


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("images-*.pt")) if cache.exists() else []


def test_second_decode_reads_the_cache_with_its_unreadable_files(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths, cache = list_images(folder), tmp_path / "cache"
    first = decode_images(paths, 8, cache_dir=cache)
    monkeypatch.setattr(suscli.data.images, "_decode_one", refuse_decoding)
    second = decode_images(paths, 8, cache_dir=cache)
    assert len(entries(cache)) == 1
    assert torch.equal(first.pixels, second.pixels) and first.kept == second.kept and first.paths == second.paths
    assert first.unreadable == second.unreadable and second.unreadable[0][0].name == "broken.png"
    with pytest.raises(InputError, match="broken.png"):  # --strict still refuses a cached unreadable file
        decode_images(paths, 8, cache_dir=cache, strict=True)


def test_an_entry_is_within_a_tenth_of_its_uint8_pixels_at_224(folder: Path, tmp_path: Path) -> None:
    """Issue 16: the cache holds the decoded uint8 pixels and little else (a view's whole storage, float pixels or a
    per-pixel index would all break this), also at ImageNet's 224 px."""
    paths, cache = list_images(folder), tmp_path / "cache"
    decoded = decode_images(paths, Sizing(224, crop_pct=0.875), cache_dir=cache)
    size = entries(cache)[0].stat().st_size
    assert decoded.pixels.numel() <= size <= 1.1 * decoded.pixels.numel(), size / decoded.pixels.numel()


def test_touched_file_and_other_transform_miss(folder: Path, tmp_path: Path) -> None:
    paths, cache = list_images(folder), tmp_path / "cache"
    first = decode_images(paths, 8, cache_dir=cache)
    write_images(folder, 1, size=10, seed=99)  # rewrites img_000.png (paths[1], after broken.png) with other pixels
    st = os.stat(paths[1])
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new mtime even on a coarse-clock file system
    again = decode_images(paths, 8, cache_dir=cache)
    assert not torch.equal(first.pixels[0], again.pixels[0]) and torch.equal(first.pixels[1:], again.pixels[1:])
    gray = decode_images(paths, 8, channels=1, cache_dir=cache)
    assert gray.pixels.shape[1] == 1 and len(entries(cache)) == 3
    keys = {entry_key(paths, Sizing(s, crop).transform(c)) for s, c, crop in ((8, 3, 1.0), (9, 3, 1.0), (8, 1, 1.0), (8, 3, 0.875))}
    assert len(keys) == 4


@pytest.mark.parametrize("damage", [b"", b"garbage", "truncated", "wrong shape", "pickled code"])
def test_corrupt_entry_is_a_miss_and_rewritten(folder: Path, tmp_path: Path, damage: object) -> None:
    paths, cache = list_images(folder), tmp_path / "cache"
    first = decode_images(paths, 8, cache_dir=cache)
    [entry] = entries(cache)
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:200])
    elif damage == "wrong shape":
        torch.save(
            {
                "format": FORMAT,
                "pixels": torch.zeros(1, 3, 4, 4, dtype=torch.uint8),
                "kept": torch.tensor([0]),
                "unreadable": torch.tensor([], dtype=torch.int64),
                "errors": [],
            },
            entry,
        )
    elif damage == "pickled code":
        torch.save({"format": FORMAT, "pixels": os.getcwd}, entry)  # a global: weights_only refuses it, nothing runs
    else:
        entry.write_bytes(damage)
    again = decode_images(paths, 8, cache_dir=cache)
    assert torch.equal(first.pixels, again.pixels) and again.unreadable == first.unreadable
    assert torch.equal(torch.load(entry, weights_only=True)["pixels"], first.pixels)  # rewritten whole


def test_unwritable_cache_only_costs_the_next_decode(folder: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    d = decode_images(list_images(folder), 8, cache_dir=blocker / "cache")
    assert len(d.kept) == 6


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SUSCLI_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "suscli"
    monkeypatch.setenv("SUSCLI_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


def test_cli_cache_dir_and_no_cache(tmp_path: Path, folder: Path, train_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch="tests.conftest:tiny_cnn", num_classes=3, image_size=8)
    monkeypatch.setenv("SUSCLI_CACHE_DIR", str(tmp_path / "env-cache"))
    runner = CliRunner()

    def run(*extra: object) -> dict:
        res = runner.invoke(
            app,
            [
                str(a)
                for a in (
                    "score",
                    ckpt,
                    "--data",
                    folder,
                    "--train-data",
                    train_folder,
                    "--format",
                    "json",
                    "--batches",
                    "2",
                    "--batch-size",
                    "4",
                    *extra,
                )
            ],
        )
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)["results"][0]

    cache = tmp_path / "cache"
    cold = run("--cache-dir", cache)
    assert len(entries(cache)) == 2 and not (tmp_path / "env-cache").exists()  # unlabeled and training images
    run("--no-cache")
    assert not (tmp_path / "env-cache").exists()
    monkeypatch.setattr(suscli.data.images, "_decode_one", refuse_decoding)
    warm = run("--cache-dir", cache)
    assert (warm["susceptibility"], warm["train_acc"], warm["notes"]) == (cold["susceptibility"], cold["train_acc"], cold["notes"])
    assert "1 unreadable image skipped" in " ".join(warm["notes"])


class OOMAbove(nn.Module):
    """A model that raises CUDA's out-of-memory error on batches larger than `limit`, as a full GPU would."""

    def __init__(self, limit: int, in_training_mode_too: bool = False):
        super().__init__()
        self.net, self.limit, self.in_training_mode_too = tiny_cnn(), limit, in_training_mode_too

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) > self.limit and (self.in_training_mode_too or not self.training):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.net(x)


def test_the_random_forward_check_stays_within_the_measurements_batch_and_out_of_its_way() -> None:
    """The check passes 16 images where the user's --batch-size 8 was chosen to fit the GPU: a model that ran the
    measurement failed on the check with "the model failed on 8x8 images: CUDA out of memory". It takes at most the
    measurement's batch, and a check that runs out of memory anyway says nothing rather than failing the row."""
    from suscli.measure.randomness import random_forward

    x = torch.randn(32, 3, 8, 8)
    check = dict(transform=lambda b: b, device=torch.device("cpu"))
    assert random_forward(OOMAbove(limit=8), x, most=8, **check) is None
    assert random_forward(OOMAbove(limit=4), x, **check) is None


def test_training_accuracy_halves_the_batch_on_oom_and_counts_the_same() -> None:
    x, y = torch.randn(40, 3, 8, 8), torch.randint(3, (40,))
    model = OOMAbove(limit=7)
    plain = training_accuracy(model.net, x, y)
    assert (plain.batch_size, plain.halvings) == (40, 0)  # one batch: the CPU's 512 capped by the images
    backed_off = training_accuracy(model, x, y, batch_size=32)
    assert backed_off.correct == plain.correct and (backed_off.batch_size, backed_off.halvings) == (4, 3)
    with pytest.raises(InputError, match="out of GPU memory"):
        training_accuracy(OOMAbove(limit=0), x, y)


def test_oom_is_a_row_note_for_accuracy_and_an_error_naming_batch_size_for_susceptibility(
    tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    unlabeled = ImageSource(list_images(image_folder))
    listing = read_labeled(train_folder)
    train = ImageSource(listing.items, listing.labels)
    settings = Settings(susceptibility=SusceptibilityConfig(batches=2, batch_size=8), image_size=8)

    def checkpoint(model: nn.Module) -> Checkpoint:
        return Checkpoint(tmp_path / "m.pt", model, "test", "--arch", {}, "0" * 64, 3)

    row = score_checkpoint(checkpoint(OOMAbove(limit=9)), unlabeled, train, settings=settings, device=torch.device("cpu"))
    assert any("halved 1 time to 9 after CUDA ran out of memory" in n for n in row.notes)
    with pytest.raises(InputError, match="--batch-size") as e:
        score_checkpoint(
            checkpoint(OOMAbove(limit=4, in_training_mode_too=True)), unlabeled, train, settings=settings, device=torch.device("cpu")
        )
    assert "batches of 8 images" in e.value.line() and "\n" not in e.value.line()


def test_cpu_batches_of_large_images_hold_about_as_many_pixels_as_at_32_px() -> None:
    """512 images at 224 px took a ResNet-50 some 6 GB on the CPU, where no out-of-memory error halves a batch: the
    kernel ends the run. Larger images go in smaller batches (at least 16); 32 px keeps its sizes, and every count
    is the one a fixed batch gives."""
    from suscli.measure.batched import training_accuracy_many
    from suscli.measure.predictions import predict

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    seen: list[int] = []
    model.register_forward_hook(lambda m, inputs, out: seen.append(len(inputs[0])))
    # a few more images than a batch at each size: the sizes are chosen per image, and large images are slow
    for side, n, train_batch, predict_batch in ((32, 600, 512, 256), (96, 80, 56, 28), (224, 24, 16, 16)):
        x, y = torch.randn(n, 3, side, side), torch.randint(3, (n,))
        seen.clear()
        acc = training_accuracy(model, x, y)
        assert acc.batch_size == train_batch and max(seen) == train_batch
        assert acc.correct == training_accuracy(model, x, y, batch_size=n).correct
        seen.clear()
        predict(model, x, device="cpu")
        assert max(seen) == predict_batch
    assert training_accuracy_many([model, model], x, y)[0].batch_size == 16


def test_another_resize_mode_or_interpolation_is_another_entry(tmp_path: Path) -> None:
    """A model stretched bicubic and one cropped bilinear see other pixels of the same files: never one cached entry."""
    paths = write_images(tmp_path / "imgs", 2, size=12)
    keys = {
        entry_key(paths, Sizing(8, 1.0, resize, interp).transform(3))
        for resize in ("crop", "stretch")
        for interp in ("bilinear", "bicubic")
    }
    assert len(keys) == 4


def test_the_crop_offset_is_in_the_key_only_where_it_is_not_the_floor_every_entry_had(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crop of an odd margin started at margin // 2 for every model before the offset followed the checkpoint's tool:
    a floor crop's key (a Hugging Face model's) is written as it was, valid within one FORMAT; torchvision's rounded
    offset is another entry."""
    import hashlib

    import PIL

    paths = write_images(tmp_path / "imgs", 2, size=12)
    floor, round_ = (Sizing(8, 1.0, "crop", "bilinear", offset).transform(3) for offset in ("floor", "round"))
    assert entry_key(paths, floor) != entry_key(paths, round_)
    hashed: list[bytes] = []
    sha256 = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", lambda data: hashed.append(data) or sha256(data))
    for transform in (floor, round_):
        entry_key(paths, transform)
    before = f"suscli-images {FORMAT} {PIL.__version__} 8 3 1.0 crop bilinear"
    assert hashed == [f"{before}\n".encode(), f"{before} round\n".encode()]


def test_a_cache_folder_that_cannot_be_written_is_said_once(tmp_path: Path, folder: Path, train_folder: Path) -> None:
    """--cache-dir naming a file, or a folder under one (or a read-only one), ran without a cache and said nothing:
    every later run decoded again, and the user who asked for the cache never learned why. One line on stderr says so,
    for score and rank alike; the run goes on [0]. A folder that can be made, or --no-cache, says nothing, and the
    check creates no folder."""
    from tests.conftest import invoke

    pool = tmp_path / "pool"
    ckpt = suscli.save(tiny_cnn(), pool / "m.safetensors", arch="tests.conftest:tiny_cnn", num_classes=3, image_size=8)
    blocker = tmp_path / "afile"
    blocker.write_text("a file where the cache folder would go")
    common = ("--data", folder, "--train-data", train_folder, "-f", "json", "--batches", "2", "--batch-size", "4")
    for cache in (blocker, blocker / "cache"):
        for res in (invoke("score", ckpt, *common, "--cache-dir", cache), invoke("rank", pool, *common, "--cache-dir", cache, "--fresh")):
            said = [line for line in res.stderr.splitlines() if "cache" in line]
            assert res.exit_code == 0 and len(said) == 1 and f"cache folder {cache} cannot be written" in said[0], res.output
            assert "afile is a file, not a folder" in said[0]
    assert blocker.read_text().startswith("a file")
    fresh = tmp_path / "new" / "cache"
    for extra in (("--cache-dir", fresh), ("--cache-dir", blocker, "--no-cache")):
        res = invoke("rank", pool, *common, *extra, "--fresh", "--results", tmp_path / "r.jsonl")
        assert res.exit_code == 0 and "cannot be written" not in res.stderr, res.output
    assert fresh.is_dir()  # made by the decode's first entry
