"""`suscli demo --small` end to end: the ranking flags the models built to memorize, and recommends the others."""

from __future__ import annotations

import json
import re
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

import suscli.demo
from suscli.cli import app
from suscli.demo import DemoOutput
from tests.conftest import small_demo_copy

runner = CliRunner()


def test_small_demo_flags_the_memorizers(tmp_path: Path, small_demo_build: DemoOutput, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command end to end on the session's small demo: its training is the same seeded build (conftest), copied
    in place of training it a second time; the folder check, the ranking, the plot and every line are this run's."""
    out = tmp_path / "demo"
    monkeypatch.setattr(suscli.demo, "build_demo", lambda root, *a, **k: small_demo_copy(small_demo_build, root))
    umask = os.umask(0o022)
    try:
        res = runner.invoke(app, ["demo", "--small", "--out", str(out)])
    finally:
        os.umask(umask)
    assert res.exit_code == 0, res.output
    modes = {f.relative_to(out).as_posix(): stat.S_IMODE(f.stat().st_mode) for f in out.rglob("*") if f.is_file()}
    assert set(modes.values()) == {0o644}, {f: oct(m) for f, m in modes.items() if m != 0o644}  # models too: they are to share
    assert (out / "pool.png").is_file() and "rerun by hand: suscli rank" in res.stderr
    # the truth beside the estimate: the share of wrong labels, as demo.json records it
    wrong = json.loads((out / "demo.json").read_text())["mislabeled"]
    assert f"wrong training labels, which suscli never saw either: {100 * wrong:.1f}%" in res.stderr and "label noise: " in res.stderr
    intents = {r["name"]: r["intent"] for r in json.loads((out / "demo.json").read_text())["models"]}
    ranked = runner.invoke(
        app, ["rank", str(out / "models"), "-d", str(out / "data" / "unlabeled"), "--train-data", str(out / "data" / "train"), "-f", "json"]
    )
    assert ranked.exit_code == 0, ranked.output
    doc = json.loads(ranked.stdout)
    assert doc["counts"]["reused"] == len(intents)  # the demo's own rank already stored every result
    regions = {r["name"]: r["region"] for r in doc["results"]}
    for name, intent in intents.items():
        if intent == "memorize":
            assert regions[name] == 2, (name, regions)
        elif intent == "resist":
            assert regions[name] == 1, (name, regions)
    assert doc["recommendation"].startswith("ship ") and intents[doc["results"][0]["name"]] == "resist"


def test_the_device_help_says_only_the_ranking_uses_it() -> None:
    """The models train on the CPU whatever --device says (README): its help read as if the whole demo ran there."""
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", runner.invoke(app, ["demo", "--help"]).stdout).split())
    assert "Where the pool is ranked" in text and "the models train on the CPU" in text, text
