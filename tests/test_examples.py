"""Each example script runs, shortened, and writes the log `suscli track --log` reads and a TensorBoard event file
with zeta in it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from suscli.training.tracker import read_log

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["--epochs", "2"]
EXAMPLES = {  # script, its extra arguments, the extra it needs, the zeta tag in its event file
    "plain loop": ("train_with_tracker.py", ["--tensorboard"], "tensorboard", "susceptibility/zeta"),
    "lightning": ("track_lightning.py", ["--train", "64", "--width", "4"], "lightning", "susceptibility/zeta"),
    "hf trainer": ("track_hf_trainer.py", ["--train", "64", "--width", "4"], "transformers", "train/susceptibility/zeta"),
}


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_example_runs_and_logs_zeta(name: str, tmp_path: Path) -> None:
    script, extra, needs, tag = EXAMPLES[name]
    pytest.importorskip(needs)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--out", str(tmp_path), *SHORT, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    records = read_log(tmp_path / "run.jsonl")
    assert [r["epoch"] for r in records] == [0, 1, 2]
    events = EventAccumulator(str(next(tmp_path.rglob("events.out.tfevents.*")).parent))
    events.Reload()
    assert [e.value for e in events.Scalars(tag)] == pytest.approx([r["zeta"] for r in records[1:]])
