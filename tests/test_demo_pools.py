"""benchmarks/demo_pools.py reads rank's JSON report as a user reads the closing line: the interval where rank prints
one (also beside "no evidence that the labels the consensus contradicts are wrong"), none where it says "not enough
evidence"; and counts flags against the oracle. Checked on reports written by hand."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
demo_pools = importlib.import_module("demo_pools")  # an import error fails the tests, never skips them


def _doc(noise: dict | None, verdicts: dict[str, str], pick: str, confident: bool = False) -> dict:
    results = [{"name": n, "verdict": v} for n, v in verdicts.items()]
    return {"label_noise": noise, "results": results, "choice": {"pick": pick, "confident": confident}}


def _noise(low: float, high: float, figure: float | None = None, doubt: str | None = None, withheld: str | None = None) -> dict:
    return {"low": low, "high": high, "wrong_labels": figure, "not_enough_evidence": doubt, "point_withheld": withheld}


def test_the_interval_is_read_where_rank_prints_one_and_not_where_it_declines() -> None:
    printed = _doc(_noise(0.24, 0.37, figure=0.34), {}, "a")
    assert demo_pools.noise_line(printed) == "34.0 (24.0-37.0)" and demo_pools.covers(printed, 0.38) == "**no**"
    assert demo_pools.covers(printed, 0.30) == "yes"
    costless = _doc(_noise(0.07, 0.27, doubt="fitting them costs nothing", withheld="voters err"), {}, "a")
    assert demo_pools.noise_line(costless).startswith("(7.0-27.0), 'no evidence") and demo_pools.covers(costless, 0.349) == "**no**"
    weak = _doc(_noise(0.64, 0.86, doubt="kappa 0.07 < 0.2"), {}, "a")
    assert demo_pools.noise_line(weak) == "not enough evidence" and demo_pools.covers(weak, 0.0) == "-"
    assert demo_pools.noise_line(_doc(None, {}, "a")) == "-"


def test_flags_are_counted_against_the_oracle_and_the_pick_by_its_clean_accuracy() -> None:
    record = {
        "mislabeled": 0.35,
        "models": [
            {"name": "mem", "memorized": 0.9, "test_acc": 0.70},
            {"name": "edge", "memorized": 0.40, "test_acc": 0.75},
            {"name": "good", "memorized": 0.05, "test_acc": 0.92},
        ],
    }
    flagged = {"mem": "likely memorized noise", "edge": "unclear", "good": "likely memorized noise"}
    docs = {
        "train": _doc(_noise(0.2, 0.4, 0.3), flagged, "good", True),
        "val": _doc(_noise(0.2, 0.5, withheld="held-out labels read more"), flagged, "mem"),
        "none": _doc(None, flagged, "edge"),
    }
    cells = [c.strip() for c in demo_pools.pool_row("p", record, docs).strip("|").split("|")]
    assert cells[2:6] == ["30.0 (20.0-40.0)", "yes", "(20.0-50.0)", "yes"]  # without and with the held-out labels
    assert cells[6:] == ["1 of 2", "1", "92.0, confident", "70.0", "75.0", "92.0"]
