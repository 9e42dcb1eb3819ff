"""Every checkpoint format the docs list, measured end to end by score, rank and track: not only loaded."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

import suscli
from tests.conftest import invoke, tiny_cnn

ARCH = "tests.conftest:tiny_cnn"
DOCS = Path(__file__).resolve().parents[1] / "docs"
FAST = ("--batches", "2", "--batch-size", "8", "--image-size", "8", "--arch", ARCH)


def _script(model: nn.Module, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; its files are still around
        torch.jit.save(torch.jit.script(model.eval()), path)


def _export(model: nn.Module, path: Path) -> None:
    batch = torch.export.Dim("batch")
    torch.export.save(torch.export.export(model.eval(), (torch.randn(4, 3, 8, 8),), dynamic_shapes=({0: batch},)), path)


# kind -> (suffix, writer); the state-dict suffixes share a reader but each is listed in the docs
WRITERS: dict[str, tuple[str, Callable[[nn.Module, Path], object]]] = {
    "safetensors": (".safetensors", lambda m, p: suscli.save(m, p, arch=ARCH, num_classes=3)),
    **{f"state dict {s}": (s, lambda m, p: torch.save(m.state_dict(), p)) for s in (".pt", ".pth", ".th", ".bin", ".ckpt")},
    "TorchScript": (".pt", _script),
    "torch.export": (".pt2", _export),
    "pickled nn.Module": (".pt", lambda m, p: torch.save(m, p)),
}


def models(n: int) -> list[nn.Module]:
    found = []
    for i in range(n):
        torch.manual_seed(i)
        found.append(tiny_cnn())
    return found


def write(kind: str, folder: Path, names: list[str]) -> list[Path]:
    suffix, writer = WRITERS[kind]
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}{suffix}" for name in names]
    for model, path in zip(models(len(names)), paths):
        writer(model, path)
    return paths


def run(*args: object):
    """The CLI's JSON report; `invoke` fails on any warning that would reach a user's stderr."""
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def trust(kind: str) -> list[str]:
    return ["--trust-checkpoint"] if kind == "pickled nn.Module" else []


def test_the_docs_list_no_format_these_tests_leave_out() -> None:
    table = (DOCS / "score.md").read_text().split("## Checkpoint formats", 1)[1].split("\n\n", 2)[1]
    suffixes = set(re.findall(r"`(\.[a-z0-9]+)`", table)) | set(re.findall(r"(?<=[` ])(\.[a-z0-9]+)(?=[ `])", table))
    assert suffixes == {suffix for suffix, _ in WRITERS.values()}
    for kind in ("TorchScript", "torch.export", "pickled"):
        assert kind in table


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Susceptibility of the same weights saved as safetensors: every format must measure the same numbers."""
    root = tmp_path_factory.mktemp("reference")
    from tests.conftest import write_images

    write_images(root / "unlabeled", 24)
    for c in range(3):
        write_images(root / "train" / f"class_{c}", 6, seed=10 + c)
    (path,) = write("safetensors", root / "m", ["epoch_1"])
    doc = run("score", path, "-d", root / "unlabeled", "--train-data", root / "train", "-f", "json", *FAST)
    row = doc["results"][0]
    return {"r": row["details"]["r"], "train_acc": row["train_acc"], "unlabeled": root / "unlabeled", "train": root / "train"}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_score(kind: str, tmp_path: Path, reference: dict) -> None:
    (path,) = write(kind, tmp_path, ["epoch_1"])
    doc = run("score", path, "-d", reference["unlabeled"], "--train-data", reference["train"], "-f", "json", *FAST, *trust(kind))
    row = doc["results"][0]
    assert row["status"] == "ok" and row["train_acc"] == reference["train_acc"]
    assert row["details"]["r"] == pytest.approx(reference["r"], rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("kind", list(WRITERS))
def test_rank(kind: str, tmp_path: Path, reference: dict) -> None:
    write(kind, tmp_path / "pool", ["a", "b"])
    doc = run(
        "rank",
        tmp_path / "pool",
        "-d",
        reference["unlabeled"],
        "--train-data",
        reference["train"],
        "-f",
        "json",
        "--model-batch",
        "2",
        *FAST,
        *trust(kind),
    )
    assert [r["status"] for r in doc["results"]] == ["ok", "ok"] and doc["choice"]["pick"] in {"a", "b"}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_track(kind: str, tmp_path: Path, reference: dict) -> None:
    write(kind, tmp_path / "run", ["epoch_1", "epoch_2"])
    doc = run(
        "track", tmp_path / "run", "-d", reference["unlabeled"], "--train-data", reference["train"], "-f", "json", *FAST, *trust(kind)
    )
    assert [(r["epoch"], r["status"]) for r in doc["results"]] == [(1, "ok"), (2, "ok")]
    assert doc["recommendation"]["epoch"] in (1, 2)
