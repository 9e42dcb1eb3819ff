"""Reports: every command writes every format through one path, so --output holds what stdout would have held."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import suscli
from suscli.cli import app
from suscli.report import Format
from tests.conftest import tiny_cnn

runner = CliRunner()
ARCH = "tests.conftest:tiny_cnn"
FAST = ("--batches", "1", "--batch-size", "8")


@pytest.fixture
def targets(tmp_path: Path) -> dict[str, Path]:
    """A checkpoint for score, a pool for rank and a run of epochs for track: two models of different weights."""
    for i in (1, 2):
        torch.manual_seed(i)
        suscli.save(tiny_cnn(), tmp_path / "run" / f"epoch_{i}.safetensors", arch=ARCH, num_classes=3, image_size=8)
    return {"score": tmp_path / "run" / "epoch_1.safetensors", "rank": tmp_path / "run", "track": tmp_path / "run"}


@pytest.mark.parametrize("fmt", [f.value for f in Format])
@pytest.mark.parametrize("command", ["score", "rank", "track"])
def test_output_file_holds_what_stdout_shows(command, fmt, targets, image_folder, train_folder, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(time, "perf_counter", lambda: 0.0)  # the reports' timings, the only part that differs between runs
    args = [command, str(targets[command]), "-d", str(image_folder), "--train-data", str(train_folder), "-f", fmt, *FAST]
    if command != "score":
        args.append("--fresh")  # both runs measure every model, so that their counts of reused results agree
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    out = tmp_path / f"report.{fmt}"
    saved = runner.invoke(app, [*args, "-o", str(out)])
    assert saved.exit_code == 0, saved.output
    assert saved.stdout == "" and f"report written to {out}" in saved.stderr
    assert shown.stdout.strip() and out.read_text(encoding="utf-8") == shown.stdout
    assert "epoch_1" in shown.stdout
