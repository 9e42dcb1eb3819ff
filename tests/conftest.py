"""Shared fixtures: tiny models and image folders made in the test, never downloaded."""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import Result as CliResult
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from torch import nn
from typer.testing import CliRunner

from suscli.demo import SMALL, DemoOutput, build_demo

QUIET = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)  # hidden by Python by default


def tiny_cnn(num_classes: int = 3, in_channels: int = 3) -> nn.Module:
    """Conv + BatchNorm + Dropout + Linear: every layer type whose mode the measurement must handle."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(16, num_classes),
    )


def pooled_batch_norm(num_classes: int = 3) -> nn.Module:
    """A BatchNorm after global pooling, as in a ResNet on small images: one value per channel for each image, so that
    train mode needs 2 images per batch."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.BatchNorm1d(4), nn.Linear(4, num_classes))


def write_images(folder: Path, n: int, *, size: int = 8, seed: int = 0, mode: str = "RGB", suffix: str = ".png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        shape = (size, size, 3) if mode in ("RGB",) else (size, size, 4) if mode == "RGBA" else (size, size)
        img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
        path = folder / f"img_{i:03d}{suffix}"
        img.save(path)
        paths.append(path)
    return paths


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    write_images(tmp_path / "unlabeled", 24)
    return tmp_path / "unlabeled"


@pytest.fixture
def train_folder(tmp_path: Path) -> Path:
    for c in range(3):
        write_images(tmp_path / "train" / f"class_{c}", 6, seed=10 + c)
    return tmp_path / "train"


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> Iterator[None]:
    """Torch on one thread for the whole session, and in the processes the tests start: the tests' tiny models run
    fastest so, and a busy machine's other jobs cannot stall them (two threads spin-waiting for each other made a
    0.01 s step take 0.9 s on a shared two-core VM, and one pool test 24 s against 3 s on one thread)."""
    threads, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(threads)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = env


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read or fill the user's ~/.cache/suscli."""
    monkeypatch.setenv("SUSCLI_CACHE_DIR", str(tmp_path_factory.mktemp("suscli-cache")))


def invoke(*args: object, env: dict[str, str] | None = None) -> CliResult:
    """Run the CLI, failing on any warning that would reach a user's stderr (the kinds Python shows by default)."""
    from suscli.cli import app

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = CliRunner().invoke(app, [str(a) for a in args], env=env)
    shown = [w for w in caught if not issubclass(w.category, QUIET)]
    assert not shown, [str(w.message) for w in shown]
    return res


def one_error_line(res: CliResult, code: int = 3, *needles: str) -> str:
    """The failure contract: the exit code, no traceback, exactly one line on stderr, holding each of `needles`."""
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output and "internal error" not in res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def by_hand(
    model: nn.Module, folder: Path, *, mean, std, image_size: int, crop_pct: float = 1.0, batches: int = 2, batch_size: int = 8
) -> float:
    """Susceptibility of a model loaded by hand, on the images of `folder` (decoded as suscli decodes them) normalized
    by hand: what `suscli score ... --batches 2 --batch-size 8` must give for the same model."""
    from suscli.data.images import Sizing, decode_images
    from suscli.data.imagesets import list_images
    from suscli.measure.susceptibility import SusceptibilityConfig, measure_susceptibility

    pixels = decode_images(list_images(folder), Sizing(image_size, crop_pct=crop_pct)).pixels
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    config = SusceptibilityConfig(batches=batches, batch_size=batch_size, seed=0)
    return measure_susceptibility(model.eval(), (pixels.float() / 255.0 - m) / s, config=config).mean


def cli_json(*args: object) -> dict:
    """Run a suscli command with `-f json` and few small batches, on the CPU; its JSON report (the command must
    succeed). The CPU, since these tests compare with numbers computed by hand on the CPU at 1e-5 or tighter, and on a
    GPU the CLI's default device is within 1e-4 of them (tests/test_cuda.py measures that)."""
    import json

    res = invoke(*args, "--batches", "2", "--batch-size", "8", "-f", "json", "--device", "cpu")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def image_sets(root: Path, size: int = 32) -> tuple[Path, Path]:
    """16 unlabeled images and a 3-class training set of 12, all size x size."""
    write_images(root / "unlabeled", 16, size=size)
    for c in range(3):
        write_images(root / "train" / f"class_{c}", 4, size=size, seed=10 + c)
    return root / "unlabeled", root / "train"


def learned_pool(root: Path, learners: int = 3, wrong_every: int = 4) -> tuple[Path, Path, Path, Path]:
    """A pool whose models learned their training labels, one of which also memorized the wrong ones: pool, unlabeled
    images, training class folders and held-out class folders, 3 classes of 8x8 images.

    Every image's left half shows its true class (that channel lit), the right half its label. Every
    `wrong_every`-th training label is the next class: the noise. The learners (hand-set one-layer MLPs of
    suscli.models, so that any installed suscli rebuilds them) read the left half, the memorizer the right: it fits
    every training label, the wrong ones included, and on the unlabeled images, whose right half shows another class,
    it leaves the consensus. On random labels a pool's consensus agrees with them by chance alone, and suscli rightly
    claims nothing of their noise there (suscli.judge.noise.KAPPA_FLOOR); tests of what a flag does need this pool."""
    import suscli
    from suscli.models import mlp

    def image(left: int, right: int) -> Image.Image:
        x = np.zeros((8, 8, 3), dtype=np.uint8)
        x[:, :4, left] = 255
        x[:, 4:, right] = 255
        return Image.fromarray(x, "RGB")

    for n, (folder, wrong) in enumerate([("train", True), ("val", False)]):
        for i in range(18 if wrong else 12):
            true = i % 3
            label = (true + 1) % 3 if wrong and i % wrong_every == 0 else true
            (root / folder / f"class_{label}").mkdir(parents=True, exist_ok=True)
            # each file its own bytes: a held-out image byte for byte a training one is a copy, and left out
            info = PngInfo()
            info.add_text("image", f"{folder}-{i}")
            image(true, label).save(root / folder / f"class_{label}" / f"img_{n}{i:03d}.png", pnginfo=info)
    (root / "unlabeled").mkdir(parents=True, exist_ok=True)
    for i in range(24):
        image(i % 3, (i % 3 + 1 + i % 2) % 3).save(root / "unlabeled" / f"img_{i:03d}.png")
    for m in range(learners + 1):
        model = mlp(num_classes=3, width=3, image_size=8, depth=1)
        half = slice(0, 4) if m < learners else slice(4, 8)
        with torch.no_grad():
            w = torch.zeros(3, 3, 8, 8)
            for c in range(3):
                w[c, c, :, half] = 1 / 32
            model[1].weight.copy_(w.flatten(1))
            model[1].bias.fill_(4.0)  # the hidden units stay positive whatever the normalization
            model[3].weight.copy_(torch.eye(3) * (2 + m))
            model[3].bias.zero_()
        name = f"learner{m}" if m < learners else "memorizer"
        suscli.save(
            model,
            root / "pool" / f"{name}.safetensors",
            arch="suscli.models:mlp",
            arch_kwargs={"num_classes": 3, "width": 3, "image_size": 8, "depth": 1},
            image_size=8,
        )
    return root / "pool", root / "unlabeled", root / "train", root / "val"


@pytest.fixture(scope="session")
def small_demo_build(tmp_path_factory: pytest.TempPathFactory) -> DemoOutput:
    """The small demo, trained once per session (about 25 s on 2 cores): the modules that need one take a copy
    (small_demo_copy), since they write into it. Built under the usual umask, as `suscli demo` writes for a user:
    tests/test_demo.py checks the files' modes on a copy."""
    umask = os.umask(0o022)
    try:
        return build_demo(tmp_path_factory.mktemp("small-demo") / "suscli-demo", SMALL)
    finally:
        os.umask(umask)


def small_demo_copy(built: DemoOutput, dest: Path) -> DemoOutput:
    """A copy of the built demo at `dest`, its paths moved with it."""
    shutil.copytree(built.root, dest)
    paths = {
        f.name: dest / getattr(built, f.name).relative_to(built.root) for f in fields(built) if isinstance(getattr(built, f.name), Path)
    }
    return replace(built, **paths)
