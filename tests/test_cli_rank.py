"""`suscli rank` end to end on pools of tiny models made in the test."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import suscli
import suscli.files
import suscli.run.audit
import suscli.run.rank
import suscli.run.store
import suscli.views.plot
from suscli.cli.output import write_suspects
from suscli.judge.noise import NoiseEstimate, chance_agreement
from suscli.judge.rules import LabelCheck
from suscli.measure.predictions import Predictions, difference_is_clear, votes
from suscli.run.label_ids import NUMBERED_AMONG_THEMSELVES
from tests.conftest import invoke, learned_pool, one_error_line, pooled_batch_norm, tiny_cnn

ARCH = "tests.conftest:tiny_cnn"


def test_candidate_help_names_both_conditions_of_the_gate() -> None:
    """--candidate also fails a region-1 model flagged by the verdict (suscli.judge.gate.candidate_failure)."""
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", invoke("rank", "--help").stdout).split())
    assert "lands in region 1 of the pool and its verdict is not 'likely memorized noise'" in text


def make_pool(folder: Path, n: int = 4, num_classes: int = 3) -> Path:
    for i in range(n):
        torch.manual_seed(i)
        model = tiny_cnn(num_classes)
        with torch.no_grad():  # spread the models out so that regions differ
            model[-1].weight.mul_(1 + 3 * i)
        suscli.save(model, folder / f"m{i}.safetensors", arch=ARCH, arch_kwargs={"num_classes": num_classes}, image_size=8)
    return folder


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    return make_pool(tmp_path / "pool")


def rank_json(pool: Path, image_folder: Path, train_folder: Path, *extra, env=None):
    res = invoke(
        "rank", pool, "-d", image_folder, "--train-data", train_folder, "-f", "json", "--batches", "2", "--batch-size", "8", *extra, env=env
    )
    return res, (json.loads(res.stdout) if res.stdout.strip() else None)


def test_rank_assigns_regions_orders_and_recommends(pool: Path, image_folder: Path, train_folder: Path) -> None:
    res, doc = rank_json(pool, image_folder, train_folder, "--rule", "regions")
    assert res.exit_code == 0, res.output
    rows = doc["results"]
    t = doc["thresholds"]
    assert len(rows) == 4 and t["source"] == "pool mean"
    for r in rows:
        expect = (
            (1 if r["susceptibility"] <= t["susceptibility"] else 2)
            if r["train_acc"] >= t["train_acc"]
            else (3 if r["susceptibility"] <= t["susceptibility"] else 4)
        )
        assert r["region"] == expect
    assert [r["region"] for r in rows] == sorted(r["region"] for r in rows)
    assert doc["recommendation"] in res.stderr
    lines = (pool / "suscli-results.jsonl").read_text().splitlines()
    assert len(lines) == 4 and doc["counts"] == {"models": 4, "scored": 4, "failed": 0, "reused": 0}


def test_a_model_named_with_a_line_break_keeps_each_message_on_one_line(pool: Path, image_folder: Path, train_folder: Path) -> None:
    """A file name may hold a line break: 'ship m\\n0: it predicts...' was two lines on stderr, so a script reading it
    line by line read half a message. Each message is one line; the name is written with \\n, as the JSON escapes it."""
    for f in pool.glob("*.safetensors"):
        f.rename(pool / f.name.replace("m", "m\n"))
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0, res.output
    assert "\n" in doc["recommendation"] and doc["recommendation"].replace("\n", "\\n") in res.stderr.splitlines()


def test_a_model_named_like_an_emoji_code_keeps_its_name_in_each_message(pool: Path, image_folder: Path, train_folder: Path) -> None:
    """A name holding ':dog:' (a colon is a legal file-name character) was written 'ship m🐶0' on stderr: the terminal
    library replaced emoji codes in messages, so the line named no model of the pool. Each message keeps the name."""
    for f in pool.glob("*.safetensors"):
        f.rename(pool / f.name.replace("m", "m:dog:"))
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0, res.output
    assert doc["recommendation"].startswith("ship m:dog:") and doc["recommendation"] in res.stderr.splitlines()


def test_default_rule_orders_by_agreement_with_region_one(pool: Path, image_folder: Path, train_folder: Path) -> None:
    res, doc = rank_json(pool, image_folder, train_folder, "--per-image")
    assert res.exit_code == 0, res.output
    rows = doc["results"]
    assert doc["choice"]["rule"] == "agreement" and doc["choice"]["pick"] == rows[0]["name"]
    # agreement recomputed from the stored predictions: top-1 against the others' summed top-k probabilities
    preds = {r["name"]: Predictions.decode(r["details"]["predictions"]) for r in rows}
    voters = [r["name"] for r in rows if r["region"] == 1]
    voters = voters if len(voters) >= 3 else [r["name"] for r in rows]
    by_name = {name: votes(p) for name, p in preds.items()}
    for r in rows:
        others = sum(by_name[v] for v in voters if v != r["name"])
        assert r["agreement"] == pytest.approx(float((preds[r["name"]].top1() == others.argmax(-1)).mean()))
    agreements = [r["agreement"] for r in rows]
    n = preds[rows[0]["name"]].classes.shape[0]
    assert not difference_is_clear(max(agreements), agreements[0], n)  # the pick is tied with the best, or is it
    assert doc["recommendation"] in res.stderr and "consensus" in doc["recommendation"]
    table = invoke("rank", pool, "-d", image_folder, "--train-data", train_folder, "--batches", "2", "--batch-size", "8")
    assert "agreement" in table.stdout


def test_rerun_reuses_every_result(pool: Path, image_folder: Path, train_folder: Path, monkeypatch) -> None:
    _, first = rank_json(pool, image_folder, train_folder)

    def must_not_run(*a, **k):
        raise AssertionError("a finished model was measured again")

    monkeypatch.setattr(suscli.run.audit, "score_checkpoint", must_not_run)
    res, again = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0, res.output
    assert again["counts"]["reused"] == 4
    assert [r["susceptibility"] for r in again["results"]] == [r["susceptibility"] for r in first["results"]]


def test_ctrl_c_while_the_outputs_are_written_says_what_was_kept(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    """Every model measured and the report printed, then Ctrl-C while the plot is drawn: the line said a bare
    "interrupted", as if the measurements were lost."""

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(suscli.views.plot, "plot_pool", interrupted)  # imported by the command as it runs
    res, doc = rank_json(pool, image_folder, train_folder, "--plot", tmp_path / "pool.png")
    assert res.exit_code == 130 and doc is not None, res.output
    kept = f"4 results kept in {pool / 'suscli-results.jsonl'}; rerun the same command to resume"
    assert res.stderr.strip() == f"interrupted while writing the outputs: {kept}"


def test_ctrl_c_before_the_first_result_says_nothing_was_written(pool: Path, image_folder: Path, train_folder: Path, monkeypatch) -> None:
    """Stopped before any model was finished, the run said "interrupted: 0 result(s) kept in .../suscli-results.jsonl",
    a file that was never created."""

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(suscli.run.audit, "score_checkpoint", interrupted)
    res, _ = rank_json(pool, image_folder, train_folder, "--device", "cpu")
    results = pool / "suscli-results.jsonl"
    assert res.exit_code == 130 and not results.exists(), res.output
    assert res.stderr.strip() == f"interrupted: no result was finished, nothing written to {results}"


def test_ctrl_c_before_the_first_result_in_a_file_of_other_settings_says_nothing_was_written(
    pool: Path, image_folder: Path, train_folder: Path, monkeypatch
) -> None:
    """Stopped before any model was finished, in a results file that holds other settings' results (an earlier run
    with another --seed): it said "0 results kept in FILE; rerun the same command to resume", with nothing to resume."""
    assert rank_json(pool, image_folder, train_folder, "--seed", "1")[0].exit_code == 0
    results = pool / "suscli-results.jsonl"
    before = results.read_bytes()

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(suscli.run.audit, "score_checkpoint", interrupted)
    res, _ = rank_json(pool, image_folder, train_folder, "--device", "cpu")
    assert res.exit_code == 130 and results.read_bytes() == before, res.output
    assert res.stderr.strip().splitlines()[-1] == f"interrupted: no result was finished, nothing written to {results}"


def test_ctrl_c_keeps_finished_results_and_resumes(pool: Path, image_folder: Path, train_folder: Path, monkeypatch) -> None:
    real = suscli.run.audit.score_checkpoint
    calls = []

    def interrupted_after_two(*a, **k):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(suscli.run.audit, "score_checkpoint", interrupted_after_two)
    cpu = ("--device", "cpu")  # one model at a time, CPU's default --model-batch (CUDA's 8 measures these 4 in one group)
    res, _ = rank_json(pool, image_folder, train_folder, *cpu)
    assert res.exit_code == 130 and "2 results kept" in res.stderr
    monkeypatch.setattr(suscli.run.audit, "score_checkpoint", real)
    res, doc = rank_json(pool, image_folder, train_folder, *cpu)
    assert res.exit_code == 0 and doc["counts"]["reused"] == 2 and doc["counts"]["scored"] == 4


def test_ctrl_c_while_the_report_is_built_says_what_was_kept(pool: Path, image_folder: Path, train_folder: Path, monkeypatch) -> None:
    """Every model measured, then Ctrl-C while choosing: the line still names the results kept and the resume."""

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(suscli.run.rank, "choose", interrupted)
    res, _ = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 130, res.output
    assert res.stderr.strip() == f"interrupted: 4 results kept in {pool / 'suscli-results.jsonl'}; rerun the same command to resume"


def test_a_pool_of_one_says_that_the_default_agreement_rule_fell_back_to_the_regions_rule(
    tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """A pool of one checkpoint closed on "lowest susceptibility: m0 (...) (regions rule: fewer than 2 models were
    measured)": a user who never passed --rule regions could not tell why a rule was named, nor that the default
    (agreement) needs two models; the line says the default fell back, and why."""
    pool = make_pool(tmp_path / "pool", n=1)
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0, res.output
    assert doc["recommendation"].endswith("(the agreement rule fell back to the regions rule: fewer than 2 models were measured)")


def test_a_pool_of_one_checkpoint_and_its_copy_is_not_ranked_by_agreement_with_itself(
    tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """Two files of the same weights: agreement with a consensus of that one model is 100% and its tie is its copy,
    so the line said 'the consensus of all 1 models' and broke the tie by equal numbers; it is a pool of one now."""
    pool = make_pool(tmp_path / "pool", n=1)
    shutil.copy(pool / "m0.safetensors", pool / "m1.safetensors")
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0, res.output
    assert doc["recommendation"].endswith("(the agreement rule fell back to the regions rule: the 2 models measured hold the same weights)")
    # --train-data was given: the line names only what is missing (it said "need --train-data and 2+ distinct models")
    assert "no regions (need 2+ distinct models, or --zeta-threshold and --acc-threshold)" in doc["recommendation"]
    assert "regions need a pool of 2+ distinct scored models" in res.stderr
    assert all(r["agreement"] is None for r in doc["results"])


def test_failures_are_rows_and_exit_3(pool: Path, image_folder: Path, train_folder: Path) -> None:
    (pool / "broken.pt").write_bytes(b"not a checkpoint")
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 3
    bad = [r for r in doc["results"] if r["status"] == "error"]
    assert [r["name"] for r in bad] == ["broken"] and "broken.pt" in bad[0]["error"]
    assert doc["results"][-1]["name"] == "broken" and doc["counts"]["scored"] == 4
    csv = invoke("rank", pool, "-d", image_folder, "--train-data", train_folder, "-f", "csv", "--results", pool / "other.jsonl")
    assert csv.exit_code == 3 and "broken.pt" in csv.stdout and "error" in csv.stdout


def test_batches_of_one_image_fail_only_the_batch_norm_networks_row(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """A BatchNorm that sees one value per channel cannot run in train mode on one image: that model's row says so and
    what to do, the other models are measured, and the run ends in exit 3 rather than a crash."""
    pool = make_pool(tmp_path / "pool", n=2)
    suscli.save(pooled_batch_norm(), pool / "pooled.safetensors", arch="tests.conftest:pooled_batch_norm", num_classes=3, image_size=8)
    res, doc = rank_json(pool, image_folder, train_folder, "--batch-size", "1")
    assert res.exit_code == 3 and "Traceback" not in res.output and "internal error" not in res.output, res.output
    rows = {r["name"]: r for r in doc["results"]}
    assert rows["m0"]["status"] == rows["m1"]["status"] == "ok"
    assert rows["pooled"]["status"] == "error"
    assert "a training-mode step of a BatchNorm network needs at least 2 images per batch, got 1" in rows["pooled"]["error"]
    assert "pass --batch-size 2 or more" in rows["pooled"]["error"]
    assert "1 model could not be scored" in res.stderr


@pytest.mark.parametrize(
    "option, value, says",
    [
        ("--zeta-threshold", "nan", "--zeta-threshold takes a finite number, got nan"),
        ("--zeta-threshold", "inf", "--zeta-threshold takes a finite number, got inf"),
        ("--acc-threshold", "nan", "--acc-threshold takes a finite number, got nan"),
        ("--acc-threshold", "2", "--acc-threshold takes a number from 0 to 1, got 2"),
        ("--lr", "inf", "--lr takes a finite number, got inf"),
        ("--model-batch", "0", "--model-batch takes a whole number of at least 1, got 0"),
    ],
)
def test_a_number_that_is_not_finite_or_out_of_range_is_refused_before_measuring(
    option: str, value: str, says: str, pool: Path, image_folder: Path, train_folder: Path
) -> None:
    """A nan threshold used to be ignored without a word: now a usage error, before any model is measured."""
    res, doc = rank_json(pool, image_folder, train_folder, option, value)
    one_error_line(res, 2, says)
    assert doc is None and not (pool / "suscli-results.jsonl").exists()


def test_markdown_github_summary_and_plot(pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    png = tmp_path / "pool.png"
    res = invoke(
        "rank",
        pool,
        "-d",
        image_folder,
        "--train-data",
        train_folder,
        "-f",
        "markdown",
        "--plot",
        png,
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("### suscli rank") and "| model |" in res.stdout
    text = summary.read_text()
    assert text.startswith("# earlier step") and "| m0 |" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gates(tmp_path: Path) -> None:
    pool, image_folder, train_folder, _ = learned_pool(tmp_path)
    _, doc = rank_json(pool, image_folder, train_folder)
    by_region = {r["region"]: r["name"] for r in doc["results"]}
    assert [r["name"] for r in doc["results"] if r["verdict"] == "likely memorized noise"] == ["memorizer"]
    assert "barely more often than chance" not in doc["recommendation"]  # these models learned their labels
    summary = tmp_path / "summary.md"
    res, _ = rank_json(pool, image_folder, train_folder, "--fail-on", "memorized", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert res.exit_code == 1 and "gate failed: 1 model likely memorized noise: memorizer" in res.stderr
    assert summary.read_text().rstrip().endswith("gate failed: 1 model likely memorized noise: memorizer")  # where CI points
    if 1 in by_region:
        assert rank_json(pool, image_folder, train_folder, "--candidate", by_region[1])[0].exit_code == 0
    other = next(name for region, name in by_region.items() if region != 1)
    res, _ = rank_json(pool, image_folder, train_folder, "--candidate", other)
    assert res.exit_code == 1 and f"candidate {other}" in res.stderr
    one_error_line(rank_json(pool, image_folder, train_folder, "--candidate", "nope")[0], 2, "--candidate 'nope' is not in the pool")
    # a fixed threshold below every model's susceptibility puts every trainable model in region 2
    res, _ = rank_json(pool, image_folder, train_folder, "--fail-on", "memorized", "--zeta-threshold", "-10", "--acc-threshold", "0")
    assert res.exit_code == 1 and "likely memorized noise" in res.stderr


def test_candidate_by_its_checkpoints_file_name_or_path(tmp_path: Path) -> None:
    """score names a model by its file name (memorizer.safetensors), and a CI job holds the new checkpoint's path;
    --candidate took neither: "--candidate 'memorizer.safetensors' is not in the pool" [2]. Both now name the model
    whose checkpoint it is, gated as its name is."""
    pool, image_folder, train_folder, _ = learned_pool(tmp_path)
    for given in ("memorizer.safetensors", str(pool / "memorizer.safetensors")):
        res, doc = rank_json(pool, image_folder, train_folder, "--candidate", given)
        assert res.exit_code == 1 and "gate failed: candidate memorizer " in res.stderr, res.output
        assert doc["gate"]["candidate"] == "memorizer"
    by_name, by_file = (rank_json(pool, image_folder, train_folder, "--candidate", c) for c in ("learner0", "learner0.safetensors"))
    assert by_file[0].exit_code == by_name[0].exit_code and by_file[1]["gate"] == by_name[1]["gate"], by_file[0].output
    one_error_line(rank_json(pool, image_folder, train_folder, "--candidate", "nope.safetensors")[0], 2, "is not in the pool")


def test_a_candidate_that_names_several_pool_models_is_called_ambiguous(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path
) -> None:
    """m0.pt beside m0.safetensors are the pool's models 'm0.pt' and 'm0.safetensors', and two run folders may each
    hold a last.safetensors: --candidate m0 (or last.safetensors) said "is not in the pool" [2], though it names two of
    its models. It is now called ambiguous, with the models it matches, before anything is measured."""
    shutil.copy(pool / "m0.safetensors", pool / "m0.pt")
    line = one_error_line(rank_json(pool, image_folder, train_folder, "--candidate", "m0")[0], 2, "--candidate 'm0' is ambiguous")
    assert "m0.pt, m0.safetensors" in line and "not in the pool" not in line
    runs = tmp_path / "runs"
    for run in ("a", "b"):
        (runs / run).mkdir(parents=True)
        shutil.copy(pool / "m1.safetensors", runs / run / "last.safetensors")
    line = one_error_line(rank_json(runs, image_folder, train_folder, "--candidate", "last.safetensors")[0], 2, "is ambiguous")
    assert "a, b" in line and not (runs / "suscli-results.jsonl").exists()


def test_a_candidate_given_twice_is_refused_not_half_gated(pool: Path, image_folder: Path, train_folder: Path) -> None:
    """--candidate m0 --candidate m3 (two new models a CI job checks) gated m3 alone, as Click keeps an option's last
    value: m0 could be a memorizer and the job still passed. rank gates one candidate, so a second is refused before
    anything is measured, naming both."""
    res, _ = rank_json(pool, image_folder, train_folder, "--candidate", "m0", "--candidate", "m3")
    line = one_error_line(res, 2, "--candidate is given 2 times")
    assert "'m0', 'm3'" in line and not (pool / "suscli-results.jsonl").exists()
    res, doc = rank_json(pool, image_folder, train_folder, "--candidate", "m0", "--candidate", "m0")  # the same model twice is one gate
    assert res.exit_code in (0, 1) and doc["gate"]["candidate"] == "m0", res.output


def test_results_dash_is_refused_before_measuring(pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path, monkeypatch) -> None:
    """`--results -` wrote the results to a file named `-` in the working directory, where `-o -` is stdout and
    `--html -` is refused: the results file is read back by the next run, which stdout cannot be. Refused [2] before
    anything is measured, by rank and track."""
    from tests.test_track import make_run

    monkeypatch.chdir(tmp_path)
    one_error_line(rank_json(pool, image_folder, train_folder, "--results", "-")[0], 2, "--results -")
    res = invoke("track", make_run(tmp_path / "run"), "-d", image_folder, "--train-data", train_folder, "--results", "-")
    one_error_line(res, 2, "--results -")
    assert not (tmp_path / "-").exists() and not (tmp_path / "run" / "suscli-results.jsonl").exists()


def test_pool_of_one(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    pool = make_pool(tmp_path / "one", n=1)
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0 and doc["thresholds"] is None and "need a pool of 2+" in res.stderr
    res, doc = rank_json(pool, image_folder, train_folder, "--zeta-threshold", "100", "--acc-threshold", "0")
    assert doc["results"][0]["region"] == 1
    one_error_line(rank_json(pool, image_folder, train_folder, "--fail-on", "memorized")[0], 2, "--fail-on memorized needs regions")


@pytest.mark.parametrize("gate", [("--fail-on", "memorized"), ("--candidate", "m0")])
def test_a_gate_on_a_pool_of_one_is_refused_before_measuring(
    gate: tuple[str, str], tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """A pool of one checkpoint has no regions, which a gate needs: the model was measured (its results file written)
    and only then refused, with no report. The pool's size is known first, so it is refused then; with both thresholds
    fixed the gate still judges it."""
    pool = make_pool(tmp_path / "one", n=1)
    junit = tmp_path / "junit.xml"
    res = rank_json(pool, image_folder, train_folder, *gate, "--junit", junit)[0]
    named = "--fail-on memorized" if gate[0] == "--fail-on" else "--candidate"
    one_error_line(res, 2, f"{named} needs regions", "rank 2+ models, or fix both thresholds")
    assert not (pool / "suscli-results.jsonl").exists() and not junit.exists()
    res, doc = rank_json(pool, image_folder, train_folder, *gate, "--zeta-threshold", "100", "--acc-threshold", "0")
    assert res.exit_code == 0 and doc["results"][0]["region"] == 1 and doc["gate"]["passed"] is True, res.output


@pytest.mark.parametrize("gate", [("--fail-on", "memorized"), ("--candidate", "m0")])
def test_a_gate_on_a_pool_that_broken_checkpoints_left_too_small_exits_3_with_every_report(
    gate: tuple[str, str], tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """Two checkpoints, one broken: the gate cannot be judged, but the cause is the broken file (exit 3), not a usage
    error (exit 2) that wrote no report and named neither the file nor its fault."""
    pool = make_pool(tmp_path / "pool", n=1)
    (pool / "broken.safetensors").write_bytes(b"not a checkpoint")
    summary, junit = tmp_path / "summary.md", tmp_path / "junit.xml"
    res, doc = rank_json(pool, image_folder, train_folder, *gate, "--junit", junit, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert res.exit_code == 3 and "Traceback" not in res.output, res.output
    assert [r["status"] for r in doc["results"]] == ["ok", "error"] and doc["gate"]["passed"] is False
    said = f"gate failed: {' '.join(gate)} cannot be judged: 1 of the 2 models could not be scored"
    assert said in res.stderr and "error: 1 model could not be scored" in res.stderr
    assert said in summary.read_text() and "not a readable safetensors file" in summary.read_text()
    assert 'errors="1"' in junit.read_text()


def test_suspects_on_a_pool_of_one_are_refused_before_measuring(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """--suspects on a pool of one checkpoint measured the model and only then exited 2: the consensus needs 2+ models,
    and the pool's size is known before anything is measured, as the gates' check knows it."""
    pool = make_pool(tmp_path / "one", n=1)
    res = rank_json(pool, image_folder, train_folder, "--suspects", tmp_path / "s.csv")[0]
    one_error_line(res, 2, "--suspects needs 2+ models", "rank 2+ models")
    assert not (pool / "suscli-results.jsonl").exists() and not (tmp_path / "s.csv").exists()


def test_a_gate_on_a_pool_of_one_names_only_what_is_missing(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """--fail-on memorized on a pool of one, --train-data given, said "pass --train-data and rank 2+ models": the
    user had passed it, and only the second model is missing."""
    pool = make_pool(tmp_path / "one", n=1)
    line = one_error_line(rank_json(pool, image_folder, train_folder, "--fail-on", "memorized")[0], 2, "--fail-on memorized needs regions")
    assert "--train-data" not in line and "rank 2+ models, or fix both thresholds" in line


def test_a_gate_that_needs_training_labels_is_refused_before_measuring(pool: Path, image_folder: Path) -> None:
    """--fail-on memorized without --train-data measured the whole pool, then exited 2: known at the start."""
    res = invoke("rank", pool, "-d", image_folder, "--fail-on", "memorized", "--batches", "2")
    one_error_line(res, 2, "--fail-on memorized needs --train-data")
    assert not (pool / "suscli-results.jsonl").exists()  # nothing was measured


def test_mixed_num_classes(tmp_path: Path, image_folder: Path) -> None:
    pool = make_pool(tmp_path / "mixed", n=2, num_classes=3)
    make_pool(tmp_path / "five", n=1, num_classes=5)
    (tmp_path / "five" / "m0.safetensors").rename(pool / "five.safetensors")
    res = invoke("rank", pool, "-d", image_folder, "-f", "json")
    assert res.exit_code == 3 and "mixes models with 3 and 5 classes" in res.stderr
    assert len((pool / "suscli-results.jsonl").read_text().splitlines()) == 3  # nothing computed is lost


def test_an_explicit_results_file_from_other_parameters_is_refused(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path
) -> None:
    results = ("--results", tmp_path / "r.jsonl")
    rank_json(pool, image_folder, train_folder, *results)
    res, _ = rank_json(pool, image_folder, train_folder, "--lr", "0.5", *results)
    assert res.exit_code == 2 and "other parameters (--lr differs)" in res.stderr
    res, doc = rank_json(pool, image_folder, train_folder, "--lr", "0.5", "--fresh", *results)
    assert res.exit_code == 0 and doc["counts"]["reused"] == 0


def test_a_refused_results_file_says_what_makes_images_one_only_where_both_runs_name_a_set(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path
) -> None:
    """A rerun that adds --train-data (or --val-data) was told "images are the same data only as the same files ... in
    their order, which draws the random labels", about sets the first run never had; --data in both runs keeps it."""
    results = ("--results", tmp_path / "r.jsonl")
    invoke("rank", pool, "-d", image_folder, "-f", "json", "--batches", "2", "--batch-size", "8", *results)
    res, _ = rank_json(pool, image_folder, train_folder, *results)
    assert res.exit_code == 2 and "(--train-data differs)" in res.stderr and "draws the random labels" not in res.stderr, res.stderr
    res, _ = rank_json(pool, train_folder, train_folder, *results)
    assert res.exit_code == 2 and "--data" in res.stderr and "differ): images are the same data only" in res.stderr, res.stderr


def test_a_refused_results_file_names_only_what_changed(pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path) -> None:
    """--mean/--std are tuples here and lists once read back from the file: not a change."""
    norm = ("--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25", "--results", tmp_path / "r.jsonl")
    rank_json(pool, image_folder, train_folder, *norm)
    res, _ = rank_json(pool, image_folder, train_folder, *norm, "--lr", "0.5")
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1 and "(--lr differs)" in lines[0], res.stderr


def test_unwritable_output_and_empty_pool(pool: Path, image_folder: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = invoke("rank", pool, "-d", image_folder, "-f", "json", "-o", blocker / "out.json", "--batches", "1")
    one_error_line(res, 3, f"cannot write {blocker / 'out.json'}")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_error_line(invoke("rank", empty, "-d", image_folder), 3, "no checkpoints", str(empty))


def test_without_training_labels_the_pool_is_ranked_by_agreement(pool: Path, image_folder: Path) -> None:
    res = invoke("rank", pool, "-d", image_folder, "-f", "json", "--batches", "2", "--batch-size", "8")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["thresholds"] is None and all(r["region"] is None for r in doc["results"])
    assert doc["choice"]["pick"] == doc["results"][0]["name"] and "consensus of all 4 models" in doc["recommendation"]
    for rule in ("regions", "pareto", "train-acc", "susceptibility"):  # as docs/rank.md says: ordered by susceptibility, none shipped
        other = json.loads(
            invoke("rank", pool, "-d", image_folder, "-f", "json", "--batches", "2", "--batch-size", "8", "--rule", rule).stdout
        )
        zetas = [r["susceptibility"] for r in other["results"]]
        assert other["choice"]["pick"] is None and zetas == sorted(zetas), rule
        assert (
            other["recommendation"].startswith("no regions")
            and f"lowest susceptibility: {other['results'][0]['name']}" in other["recommendation"]
        )


def test_label_noise_estimate_and_suspects_follow_the_voters_consensus(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path
) -> None:
    """The JSON's label_noise and the --suspects CSV, recomputed from the stored training predictions."""
    suspects = tmp_path / "suspects.csv"
    res, doc = rank_json(pool, image_folder, train_folder, "--suspects", suspects, "--per-image")
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in doc["results"]}
    train = {name: Predictions.decode(r["details"]["train_predictions"]) for name, r in rows.items()}
    # who judges the labels: of the models above chance (their training accuracy's low end above 1 / classes and
    # above what their own class frequencies score), region 1, else every one outside region 2 if 2 or more are, else all
    fit = {n: r["train_acc"] if r["train_acc_low"] is None else r["train_acc_low"] for n, r in rows.items()}
    informed = {n for n in rows if fit[n] > max(1 / 3, chance_agreement(train[n].top1(), train[n].labels)[1])}
    region_1 = [n for n, r in rows.items() if r["region"] == 1 and n in informed]
    outside_2 = [n for n, r in rows.items() if r["region"] != 2 and n in informed]
    voters = region_1 if len(region_1) >= 3 else outside_2 if len(outside_2) >= 2 else list(rows)
    total = sum(votes(train[v]) for v in voters)  # summed top-k probabilities of the voters, by hand
    labels = train[voters[0]].labels
    wrong = total.argmax(-1) != labels
    assert doc["label_noise"]["rate"] == pytest.approx(wrong.mean()) and doc["label_noise"]["voters"] == len(voters)
    assert sorted(doc["label_noise"]["voter_names"]) == sorted(voters)  # which models judged the labels, by name
    assert doc["label_noise"]["low"] <= doc["label_noise"]["rate"] <= doc["label_noise"]["high"]
    # the low end allows for the voters' own errors: how often each leaves their consensus on the unlabeled images
    seen = [Predictions.decode(rows[v]["details"]["predictions"]) for v in voters]
    agreed_unlabeled = sum(votes(p) for p in seen).argmax(-1)
    e = 1 - np.mean([(p.top1() == agreed_unlabeled).mean() for p in seen])
    assert doc["label_noise"]["voter_disagreement"] == pytest.approx(e)
    assert doc["label_noise"]["corrected"] == pytest.approx(max(0.0, (wrong.mean() - e) / (1 - e)))
    assert doc["label_noise"]["low"] <= doc["label_noise"]["corrected"]
    for name, r in rows.items():
        mine = train[name]
        expect = (mine.top1()[wrong] == labels[wrong]).mean() if wrong.any() else None
        assert r["fits_contradicted"] == pytest.approx(expect)
    # random labels on random images: the consensus agrees with them by chance alone, so no estimate is claimed
    assert "label noise: not enough evidence" in res.stderr and "Cohen's kappa" in doc["label_noise"]["not_enough_evidence"]
    assert doc["label_noise"]["wrong_labels"] is None  # a weak consensus reads nothing, corrected or not
    assert "names the given labels barely more often than chance" in doc["recommendation"]  # and the pick says what that means
    # the list is still written, but not called suspect: the line says why the contradicted labels are no evidence
    assert "suspect label" not in res.stderr and "the consensus contradicts written to" in res.stderr
    assert "not evidence of wrong labels in this pool" in res.stderr
    # per class: rows the consensus class, columns the given label, named by the class folders (label i: class_i)
    matrix = doc["label_noise"]["noise_matrix"]
    agreed = total.argmax(-1)
    assert wrong.any(), "the pool's tiny models contradict some label, so the names below are checked"
    names = [f"class_{c}" for c in range(3)]
    assert matrix["rows"] == "consensus class" and matrix["columns"] == "given label" and matrix["classes"] == names
    assert matrix["counts"] == [[int(((agreed == c) & (labels == g)).sum()) for g in range(3)] for c in range(3)]
    for c, row in enumerate(matrix["p_label_given_consensus"]):
        given = labels[agreed == c]  # the given labels of the images whose consensus is c: row c, as shares
        assert row == ([None] * 3 if not given.size else pytest.approx([float((given == g).mean()) for g in range(3)], abs=1e-4))
    assert sum(p["images"] for p in matrix["top_confusions"]) == int(wrong.sum())  # 3 classes: every confusion is listed
    for pair in matrix["top_confusions"]:
        assert (pair["consensus_class"], pair["given_class"]) == (names[pair["consensus"]], names[pair["given"]])
    lines = suspects.read_text().splitlines()
    header = "path,given_label,given_class,consensus_label,consensus_class,vote_share,label_share"
    assert lines[0] == header and len(lines) - 1 == int(wrong.sum())
    listed = sorted(str(p) for p in train_folder.rglob("*.png"))
    # each class's typical belief: the voters' mean probability of the given label over the images labelled with it
    belief = total[np.arange(len(labels)), labels] / len(voters)
    typical = [belief[labels == c].mean() if (labels == c).any() else belief.mean() for c in range(3)]
    ratios = []
    for line in lines[1:]:
        path, given, given_name, cons, cons_name, share, on_label = line.split(",")
        assert path in listed and int(given) != int(cons) and 0 < float(share) <= 1 and 0 <= float(on_label) < float(share)
        assert Path(path).parent.name == given_name == names[int(given)] and cons_name == names[int(cons)]
        i = listed.index(path)  # the voters' shares by hand: training images are listed in path order
        assert float(share) == pytest.approx(total[i].max() / total[i].sum(), abs=1e-4)
        # the voters' mean probability of the label (3 classes, all kept: nothing left over to spread)
        assert float(on_label) == pytest.approx(total[i, int(given)] / len(voters), abs=1e-4)
        scaled = (belief[i] / typical[int(given)]) / (total[i].max() / total[i].sum() / typical[int(cons)])
        ratios.append((scaled, -float(share)))
    # the surest evidence first: the least belief left in the given label against the class named, each over its
    # class's typical belief, then the consensus's share
    assert ratios == sorted(ratios)


@pytest.mark.parametrize("by_id", [False, True])
def test_suspects_name_each_image_as_the_label_file_wrote_it(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path, by_id: bool
) -> None:
    """A label CSV's paths, relative to its folder and some through a linked folder, were written to --suspects
    resolved (absolute, the link followed), so a join of the suspects with the user's own CSV on its path column
    found none of them: each is now the CSV's own text, and every suspect joins its row, given label and all."""
    (tmp_path / "linked").symlink_to(train_folder, target_is_directory=True)
    labels = tmp_path / "meta" / "labels.csv"
    labels.parent.mkdir()
    rows = [
        (f"../{'linked' if c == 1 else 'train'}/class_{c}/{p.name}", str(c) if by_id else f"class_{c}")
        for c in range(3)
        for p in sorted((train_folder / f"class_{c}").glob("*.png"))
    ]
    labels.write_text("path,label\n" + "".join(f"{p},{label}\n" for p, label in rows))
    suspects = tmp_path / "suspects.csv"
    res, _ = rank_json(pool, image_folder, labels, "--suspects", suspects)
    assert res.exit_code == 0, res.output
    with open(suspects, newline="") as f:
        found = list(csv.DictReader(f))
    assert found, "the pool's tiny models contradict some label, so the join below is checked"
    given = dict(rows)  # the user's CSV, by its path column
    assert all(s["path"] in given for s in found)  # a plain join finds every suspect
    assert all(given[s["path"]] == (s["given_label"] if by_id else s["given_class"]) for s in found)


def test_suspects_need_training_labels(pool: Path, image_folder: Path, tmp_path: Path) -> None:
    res = invoke("rank", pool, "-d", image_folder, "--suspects", tmp_path / "s.csv")
    one_error_line(res, 2, "--suspects needs --train-data")


def test_one_file_twice_in_a_pool_keeps_both_names(pool: Path, image_folder: Path, train_folder: Path) -> None:
    """timm hard-links last.pth.tar and model_best.pth.tar to an epoch's file: one measurement, a row per name."""
    os.link(pool / "m0.safetensors", pool / "best.safetensors")
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in doc["results"]}
    assert sorted(rows) == ["best", "m0", "m1", "m2", "m3"]
    assert rows["best"]["susceptibility"] == rows["m0"]["susceptibility"] and rows["best"]["path"].endswith("best.safetensors")


@pytest.mark.parametrize("command", ["score", "rank", "track"])
def test_help_shows_the_options_in_panels_by_stage(command: str) -> None:
    """The options every command shares come from one declaration and sit in the same panels, in an audit's order."""
    from suscli.cli.options import PANELS

    res = invoke(command, "--help", env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    at = [res.stdout.index(f"─ {panel} ") for panel in PANELS]
    assert at == sorted(at)
    inputs, preprocessing, measurement = (res.stdout[a:b] for a, b in zip(at[:3], at[1:4]))
    assert "--train-data" in inputs and "--arch-kwargs" in inputs and "--preset" in preprocessing and "--seed" in measurement


@pytest.mark.parametrize("doubt", [None, "fitting them costs nothing that new images show"])
def test_suspects_are_called_suspect_only_where_the_pool_shows_the_labels_wrong(
    doubt: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On clean labels the consensus of weak voters still contradicts some labels (their own errors): the CSV is
    written either way, and the line calls them suspect only where the pool shows they are evidence of wrong labels."""
    labels = np.array([0, 1, 2, 0])
    consensus = np.array([0, 2, 2, 1])  # contradicts images 1 and 3
    estimate = NoiseEstimate(0.5, 0.2, 0.8, 4, 3, doubt)
    check = LabelCheck(estimate, consensus, np.full(4, 0.9), labels, 3, np.full(4, 0.05))
    report = SimpleNamespace(
        choice=SimpleNamespace(labels=check), training_paths=[f"img{i}.png" for i in range(4)], class_names=[], rows=[]
    )
    out = tmp_path / "suspects.csv"
    write_suspects(out, report)  # type: ignore[arg-type]
    assert [line.split(",")[0] for line in out.read_text().splitlines()[1:]] == ["img1.png", "img3.png"]
    line = " ".join(capsys.readouterr().err.split())
    if doubt is None:
        assert line == f"2 suspect labels written to {out}"
    else:
        assert line.startswith(f"2 labels the consensus contradicts written to {out}, surest first; not evidence")
        assert line.endswith(doubt) and "suspect label" not in line


def test_a_model_whose_loss_is_not_finite_is_its_own_row_error(tmp_path: Path, image_folder: Path) -> None:
    """NaN weights: the row had status ok and no susceptibility, without a reason. Now its row says why (the
    batched pass raises, and the models are scored one at a time), the others are scored, and the exit code is 3."""
    pool = make_pool(tmp_path / "pool", n=3)
    broken = tiny_cnn(3)
    with torch.no_grad():
        next(broken.parameters()).fill_(float("nan"))
    suscli.save(broken, pool / "m1.safetensors", arch=ARCH, arch_kwargs={"num_classes": 3}, image_size=8)
    res = invoke("rank", pool, "-d", image_folder, "--batches", "2", "--batch-size", "8", "-f", "json")
    assert res.exit_code == 3, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)["results"]}
    assert rows["m1"]["status"] == "error" and "before any step: its outputs on these images are not finite" in rows["m1"]["error"]
    assert all(rows[m]["status"] == "ok" and rows[m]["susceptibility"] is not None for m in ("m0", "m2"))
    huge = invoke("score", pool / "m0.safetensors", "-d", image_folder, "--lr", "1e30", "--batch-size", "8")
    one_error_line(huge, 3, "the step made the model's outputs not finite numbers")


@pytest.mark.parametrize("model_batch", ["1", "3"])
def test_a_step_size_beyond_what_the_weights_hold_is_a_step_far_too_large(tmp_path: Path, image_folder: Path, model_batch: str) -> None:
    """`--lr 1e300` overflows float32 weights' step, which torch refuses ("value cannot be converted to type float
    without overflow"): every row read "the model failed on 8x8 images with 3 channels ... (check --arch, --image-size
    and --preset)", blaming the model for the step size. It is the step far too large that --lr 1e30 is, and says so."""
    pool = make_pool(tmp_path / "pool", n=3)
    res = invoke("rank", pool, "-d", image_folder, "--lr", "1e300", "--batch-size", "8", "--model-batch", model_batch, "-f", "json")
    assert res.exit_code == 3, res.output
    errors = [r["error"] for r in json.loads(res.stdout)["results"]]
    assert len(errors) == 3 and all("the step made the model's outputs not finite numbers" in e and "--lr" in e for e in errors), errors


def test_a_checkpoint_copied_under_another_name_is_noted_as_a_copy(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """A model copied under a second name was two rows with nothing to say so: the closing line read "the consensus of
    4 region-1 models" where three were trained, and the held-out line "cannot tell 2 other model(s) from it", one of
    them itself. The copy's row now says whose weights it holds and what counting them twice affects."""
    pool = make_pool(tmp_path / "pool", n=3)
    shutil.copy2(pool / "m1.safetensors", pool / "copy.safetensors")
    fast = suscli.Settings(suscli.SusceptibilityConfig(batches=2, batch_size=8))
    report = suscli.rank(pool, image_folder, train_folder, settings=fast)
    assert report is not None
    rows = {r.name: r for r in report.rows}
    said = {name: [n for n in rows[name].notes if n.startswith("the same checkpoint as")] for name in ("m1", "copy")}
    assert sorted(len(n) for n in said.values()) == [0, 1]  # on the later row only, naming the earlier one
    (name, (note,)), (other, _) = sorted(said.items(), key=lambda kv: -len(kv[1]))
    assert (
        note.startswith(f"the same checkpoint as {other} (sha256 ")
        and "counted once with it in the pool's thresholds and consensus" in note
    )
    assert not any("the same checkpoint" in n for name in ("m0", "m2") for n in rows[name].notes)
    # and counted once it is: the thresholds, the voters and every agreement are those of the pool without the copy
    (pool / "copy.safetensors").rename(tmp_path / "copy.safetensors")
    alone = suscli.rank(pool, image_folder, train_folder, settings=fast)
    assert alone is not None and alone.thresholds == report.thresholds
    assert report.choice is not None and alone.choice is not None
    weights = {r.name: r.sha256 for r in report.rows}  # the copy sorts first, so it may be the one that votes
    assert sorted(weights[v] for v in report.choice.voters) == sorted(weights[v] for v in alone.choice.voters)
    assert len(report.choice.voters) == len(alone.choice.voters)
    assert {r.name: r.agreement for r in alone.rows} == {r.name: r.agreement for r in report.rows if r.name != "copy"}


def _resaved(source: Path, target: Path, training: bool) -> None:
    """The weights of suscli-saved `source` saved again by torch.save as `target`, a plain state dict or a training
    checkpoint's (an epoch and an optimizer's state beside them), with a sidecar naming what `source` records."""
    state = suscli.load.checkpoints.load_checkpoint(source).model.state_dict()
    torch.save({"model_state_dict": state, "epoch": 3, "optimizer": {"lr": 0.1}} if training else state, target)
    side = {"arch": ARCH, "arch_kwargs": {"num_classes": 3}, "image_size": 8}
    (target.parent / f"{target.stem}.suscli.json").write_text(json.dumps(side))


@pytest.mark.parametrize("training", [False, True])
def test_the_same_weights_in_another_file_are_one_model_of_the_pool(
    tmp_path: Path, image_folder: Path, train_folder: Path, training: bool
) -> None:
    """The weights of a .safetensors saved again as a .pt (a state dict, or beside an epoch and an optimizer) are
    other bytes: keyed on the file's hash they were two models, counted twice in the pool's thresholds and
    consensus, and the closing line could call the one the other's rival. Their weights' hash tells them one model."""
    pool = make_pool(tmp_path / "pool", n=4)
    fast = suscli.Settings(suscli.SusceptibilityConfig(batches=2, batch_size=8))
    alone = suscli.rank(pool, image_folder, train_folder, settings=fast)
    assert alone is not None and alone.choice is not None and alone.choice.pick is not None
    pick = alone.choice.pick.name
    _resaved(pool / f"{pick}.safetensors", pool / f"{pick}-best.pt", training)
    report = suscli.rank(pool, image_folder, train_folder, settings=fast)
    assert report is not None and report.choice is not None and report.choice.pick is not None
    rows = {r.name: r for r in report.rows}
    copy = rows[f"{pick}-best"]
    assert copy.sha256 != rows[pick].sha256 and copy.weights_sha256 == rows[pick].weights_sha256
    said = {name: [n for n in rows[name].notes if n.startswith("the same weights as")] for name in (pick, copy.name)}
    (_, notes), (other, none) = sorted(said.items(), key=lambda kv: -len(kv[1]))  # on the later row, naming the earlier
    assert none == [] and notes == [
        f"the same weights as {other} in another file (weights sha256 {copy.weights_sha256[:12]}): a row of its own, "
        "counted once with it in the pool's thresholds and consensus"
    ]
    assert report.thresholds == alone.thresholds and len(report.choice.voters) == len(alone.choice.voters)
    assert report.choice.pick.name == pick and report.choice.confident == alone.choice.confident
    same = f"; {pick}-best holds the same weights as {pick}: the same model, which either file ships"
    assert same in report.choice.why and report.choice.why.replace(same, "") == alone.choice.why


def test_rows_stored_without_a_weights_hash_tell_their_copies_by_the_files_hash(
    tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """A results file written before rows held their weights' hash: its rows are reused, and a copy of a checkpoint
    under another name is still one model with it, told by the file's hash."""
    pool = make_pool(tmp_path / "pool", n=3)
    shutil.copy2(pool / "m1.safetensors", pool / "copy.safetensors")
    res, _ = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0, res.output
    results = pool / "suscli-results.jsonl"
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    for line in lines:
        for row in [v for v in line.values() if isinstance(v, dict) and "weights_sha256" in v]:
            del row["weights_sha256"]
    results.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert "weights_sha256" not in results.read_text()
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0 and doc["counts"]["reused"] == 4, res.output
    rows = {r["name"]: r for r in doc["results"]}
    assert all(r["weights_sha256"] is None for r in rows.values())
    assert sum(n.startswith("the same checkpoint as") for r in rows.values() for n in r["notes"]) == 1


def test_a_stored_row_matched_through_another_file_of_the_same_weights_names_those_weights() -> None:
    """A row stored without a weights hash (y) matches x by their file's; x holds a's weights in other bytes. y's note
    names a's weights' hash, which y does not hold itself (its note said "weights sha256 " and nothing)."""
    from suscli.results import Result

    rows = [
        Result("a", "a.safetensors", sha256="1" * 64, weights_sha256="f" * 64),
        Result("x", "x.pt", sha256="2" * 64, weights_sha256="f" * 64),
        Result("y", "y.pt", sha256="2" * 64),
    ]
    suscli.run.rank.mark_copies(rows)
    tail = ": a row of its own, counted once with it in the pool's thresholds and consensus"
    assert [r.notes for r in rows] == [
        [],
        [f"the same weights as a in another file (weights sha256 {'f' * 12}){tail}"],
        [f"the same weights as a in another file (weights sha256 {'f' * 12}){tail}"],
    ]


def test_a_copy_read_with_other_preprocessing_is_a_model_of_its_own(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """The same weights under a sidecar that gives them another mean and std are another model to measure: its own
    numbers, so its own row in the pool's thresholds and consensus. Keyed on the bytes alone, it was noted "the same
    checkpoint as m1" and left out of the pool-wide numbers, though its susceptibility and accuracy were its own."""
    pool = make_pool(tmp_path / "pool", n=3)
    shutil.copy2(pool / "m1.safetensors", pool / "copy.safetensors")
    (pool / "copy.suscli.json").write_text(json.dumps({"mean": [0.2, 0.3, 0.4], "std": [0.5, 0.5, 0.5]}))
    fast = suscli.Settings(suscli.SusceptibilityConfig(batches=2, batch_size=8))
    report = suscli.rank(pool, image_folder, train_folder, settings=fast)
    assert report is not None
    rows = {r.name: r for r in report.rows}
    assert rows["copy"].sha256 == rows["m1"].sha256
    assert rows["copy"].details["preprocess"] != rows["m1"].details["preprocess"]
    assert not any("the same checkpoint" in n for r in report.rows for n in r.notes)
    assert report.choice is not None and len(report.choice.voters) >= 1
    (pool / "copy.safetensors").rename(tmp_path / "copy.safetensors")
    alone = suscli.rank(pool, image_folder, train_folder, settings=fast)
    assert alone is not None and alone.thresholds != report.thresholds  # the copy's numbers count


def test_blank_lines_in_a_results_file_are_skipped(pool: Path, image_folder: Path, train_folder: Path) -> None:
    """A results file edited by hand, or appended to with `echo`, was 'corrupt at line 2', every result refused."""
    res, _ = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0, res.output
    results = pool / "suscli-results.jsonl"
    lines = results.read_text().splitlines()
    results.write_text(lines[0] + "\n\n" + "\n  \n".join(lines[1:]) + "\n\n")
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0, res.output
    assert doc["counts"]["reused"] == 4


def test_a_results_file_saved_with_a_byte_order_mark_is_read_and_started_over(pool: Path, image_folder: Path, train_folder: Path) -> None:
    """Saved by an editor or PowerShell's Set-Content that writes UTF-8 with a byte order mark, a results file was "not
    a suscli results file (line 1)", every result refused, and --fresh refused to delete it as not one."""
    res, _ = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0, res.output
    results = pool / "suscli-results.jsonl"
    results.write_bytes(b"\xef\xbb\xbf" + results.read_bytes())
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0 and doc["counts"]["reused"] == 4, res.output
    assert len(suscli.load_results(results)) == 4
    res, doc = rank_json(pool, image_folder, train_folder, "--fresh")
    assert res.exit_code == 0 and doc["counts"]["reused"] == 0, res.output


def test_a_results_path_that_is_no_regular_file_is_refused_before_it_is_read(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    """A folder was "[Errno 21] Is a directory", and an internal error with --fresh; a device such as /dev/full reads
    as endless zeros, which read_text took until the machine ran out of memory."""
    folder = tmp_path / "results"
    folder.mkdir()
    one_error_line(rank_json(pool, image_folder, train_folder, "--results", folder)[0], 3, "results file", "is a folder")
    one_error_line(rank_json(pool, image_folder, train_folder, "--results", folder, "--fresh")[0], 3, "is a folder")
    assert folder.is_dir()
    device = Path("/dev/full")
    if not device.exists():
        pytest.skip("no /dev/full")

    def endless(self, *args, **kwargs):
        raise AssertionError(f"{self} read")

    monkeypatch.setattr(Path, "read_text", endless)
    with pytest.raises(suscli.errors.InputError, match="is not a regular file"):
        suscli.load_results(device)


def test_a_results_file_in_a_folder_that_does_not_exist_creates_it_and_says_so(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path
) -> None:
    """A CI job's fresh path (a cache folder restored only on a hit) works; the folder was made without a word, so a
    typo in it went unseen, and a file in the path was "File exists"."""
    stored = tmp_path / "ci-cache" / "suscli" / "results.jsonl"
    res, doc = rank_json(pool, image_folder, train_folder, "--results", stored)
    assert res.exit_code == 0 and f"created the folder {stored.parent} for results file results.jsonl" in res.stderr, res.output
    res, doc = rank_json(pool, image_folder, train_folder, "--results", stored)
    assert res.exit_code == 0 and "created the folder" not in res.stderr and doc["counts"]["reused"] == 4, res.output
    blocked = tmp_path / "notes.txt"
    blocked.write_text("kept")
    for path in (blocked / "r.jsonl", blocked / "sub" / "r.jsonl"):
        one_error_line(rank_json(pool, image_folder, train_folder, "--results", path)[0], 3, f"{blocked} is a file, not a folder")
    assert blocked.read_text() == "kept"


def test_fresh_starts_over_a_results_file_whose_only_line_a_kill_cut_short(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path
) -> None:
    """A first run killed while writing its first result leaves one cut line, which a rerun reads as a killed run's;
    --fresh refused it as "not a suscli results file", which only a record that parses was taken to be."""
    results = tmp_path / "r.jsonl"
    results.write_text('{"fingerprint": "ab12", "key": "k", "settings": {"se')
    res, doc = rank_json(pool, image_folder, train_folder, "--results", results, "--fresh")
    assert res.exit_code == 0 and doc is not None and doc["counts"]["reused"] == 0, res.output


def test_fresh_deletes_no_file_that_is_not_a_results_file(pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path) -> None:
    """`--results labels.csv --fresh` deleted the training labels and wrote results in their place; a checkpoint too."""
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{p},{i % 3}\n" for i, p in enumerate(sorted(image_folder.iterdir()))))
    checkpoint = next(pool.glob("*.safetensors"))
    kept = {p: p.read_bytes() for p in (labels, checkpoint)}
    for path in kept:
        res = rank_json(pool, image_folder, labels, "--results", path, "--fresh")[0]
        one_error_line(res, 3, f"results file {path} is not a suscli results file, which --fresh would delete")
    # without --fresh the label file was 'corrupt at line 1', its fix '--fresh', which the lines above refuse
    res = rank_json(pool, image_folder, labels, "--results", labels)[0]
    one_error_line(res, 3, f"{labels} is not a suscli results file (line 1)")
    assert "--fresh" not in res.stderr
    assert all(p.read_bytes() == data for p, data in kept.items())


def test_a_results_file_that_cannot_be_written_is_refused_before_any_model_is_measured(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    """Found at the first append, it threw that model's measurement away (with --model-batch, every model's of the
    window); a read-only file that already holds every result is still read, and --fresh on it is one line."""
    results = tmp_path / "ro.jsonl"
    res, _ = rank_json(pool, image_folder, train_folder, "--results", results)
    assert res.exit_code == 0, res.output
    lines = results.read_text().splitlines()

    def read_only(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "aw+"):
            raise OSError(30, "Read-only file system")
        return open(file, mode, *args, **kwargs)

    for module in (suscli.run.store, suscli.files):
        monkeypatch.setattr(module, "open", read_only, raising=False)
    monkeypatch.setattr(suscli.run.store.Path, "unlink", lambda self, missing_ok=False: read_only(self, "w"))
    res, doc = rank_json(pool, image_folder, train_folder, "--results", results)
    assert res.exit_code == 0 and doc["counts"]["reused"] == 4, res.output
    results.write_text("\n".join(lines[:2]) + "\n")
    measured = []
    real = suscli.run.audit.scored_window
    monkeypatch.setattr(suscli.run.audit, "scored_window", lambda *a, **k: measured.append(1) or real(*a, **k))
    res, _ = rank_json(pool, image_folder, train_folder, "--results", results, "--model-batch", "4")
    one_error_line(res, 3, f"cannot write results file {results}: Read-only file system")
    assert measured == []
    one_error_line(rank_json(pool, image_folder, train_folder, "--results", results, "--fresh")[0], 3, "cannot start results file")
    assert results.read_text().splitlines() == lines[:2]


def test_a_results_file_whose_disk_fills_during_the_run_says_what_it_kept_and_that_a_rerun_resumes(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    """A disk that fills after the check before measuring: the line said only "(pass --results with a writable path)",
    whose rerun under another path measured again every model the file had kept; it says what was kept, and that
    the same command, once there is room, resumes."""
    import errno

    results = tmp_path / "r.jsonl"
    real = suscli.run.store.append_line

    def filling(path: Path, line: str) -> None:
        if path.exists() and len(path.read_text().splitlines()) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, line)

    monkeypatch.setattr(suscli.run.store, "append_line", filling)
    one_error_line(
        rank_json(pool, image_folder, train_folder, "--results", results)[0], 3,
        f"cannot write results file {results}: No space left on device; 2 results kept in it (make room, then rerun the same "
        "command to resume; or pass --results with a writable path)",
    )  # fmt: skip
    monkeypatch.setattr(suscli.run.store, "append_line", real)
    res, doc = rank_json(pool, image_folder, train_folder, "--results", results)
    assert res.exit_code == 0 and doc["counts"]["reused"] == 2, res.output


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("susceptibility", "0.1", "susceptibility is '0.1'"),
        ("details", [], "details is []"),
        ("name", None, "name is missing"),
        ("/key", ["k"], "key is ['k']"),
        ("/fingerprint", 7, "fingerprint is 7"),
    ],
)
def test_a_results_row_edited_to_another_type_is_named_with_its_line(
    pool: Path, image_folder: Path, train_folder: Path, field: str, value, said: str
) -> None:
    """A number edited into text, or details into a list, was taken as it was and failed far away ("internal error:
    TypeError: '>' not supported between instances of 'str' and 'float'"); a row missing its name made the whole file
    "not a suscli results file". A record's key edited into a list ("/key") ended rank in "internal error: TypeError:
    unhashable type: 'list'"; a fingerprint edited into a number was taken for other settings, said as "results of
    other settings" naming none."""
    res, _ = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0, res.output
    results = pool / "suscli-results.jsonl"
    lines = results.read_text().splitlines()
    record = json.loads(lines[2])
    holder, name = (record, field[1:]) if field.startswith("/") else (record["result"], field)
    if value is None:
        del holder[name]
    else:
        holder[name] = value
    record["result"]["written_by_a_newer_release"] = 1  # a field suscli does not know is left alone
    lines[2] = json.dumps(record)
    results.write_text("\n".join(lines) + "\n")
    res, _ = rank_json(pool, image_folder, train_folder)
    one_error_line(res, 3, f"line 3 is not a row suscli writes: {said}", "correct or delete line 3")
    with pytest.raises(suscli.errors.InputError, match=f"line 3 is not a row suscli writes: {re.escape(said)}"):
        suscli.load_results(results)
    del lines[2]
    results.write_text("\n".join(lines) + "\n")
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0 and doc["counts"]["reused"] == 3, res.output


def test_a_results_file_damaged_inside_says_to_delete_that_line(pool: Path, image_folder: Path, train_folder: Path) -> None:
    """A line damaged between whole ones (edited by hand, two writers on a file system without locks): the fix offered
    only another --results or --fresh, each measuring every model again, where deleting the line loses one result."""
    assert rank_json(pool, image_folder, train_folder)[0].exit_code == 0
    results = pool / "suscli-results.jsonl"
    lines = results.read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]
    results.write_text("\n".join(lines) + "\n")
    res, _ = rank_json(pool, image_folder, train_folder)
    one_error_line(res, 3, "is corrupt at line 2 (delete line 2 (its model is then measured again), or pass --fresh")
    del lines[1]
    results.write_text("\n".join(lines) + "\n")
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0 and doc["counts"]["reused"] == 3, res.output


def test_a_long_run_logged_without_a_terminal_says_its_progress_in_a_few_lines(
    image_folder: Path, train_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    """Where stderr is a log (CI), the bar was switched off and a run said nothing until it ended, however long it ran
    (CI services end a job silent for 10 minutes); now a line per tenth of the models, and stdout stays the report.
    A model's own training-accuracy pass counts its images: it was logged for the first model alone, as if the
    stage were done."""
    import suscli.cli.console

    pool = make_pool(tmp_path / "pool", n=12)
    monkeypatch.setattr(suscli.cli.console, "LOG_AFTER_SECONDS", 0)
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0 and doc is not None, res.output
    said = [line for line in res.stderr.splitlines() if line.startswith("models: ") and " elapsed" in line]  # the tenths
    assert 3 <= len(said) <= 11, res.stderr
    tenths = [line for line in res.stderr.splitlines() if line.startswith("training accuracy: ") and " elapsed" in line]
    assert not tenths, res.stderr  # (a stage silent for LOG_AFTER_SECONDS, 0 here, says it is "into the run" instead)
    assert said[-1].startswith("models: 12/12 done, ") and "left" not in said[-1]
    assert re.fullmatch(r"models: \d+/12 done, \d:\d\d:\d\d elapsed(, about \d:\d\d:\d\d left)?", said[0]), said[0]


def test_a_short_stage_late_in_a_logged_run_says_no_tenths(monkeypatch, capsys) -> None:
    """In a log, every stage counting models said a line per tenth once the run had lasted 30 s: the demo's 8-model
    training-accuracy pass, 3 s after a 68 s measurement, wrote 7 lines in 3 s. Now a stage says its tenths once it
    has itself lasted that long; a long one still does."""
    import suscli.cli.console as console

    clock = [0.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    with console.progress_bar() as update:
        for done in range(1, 9):  # the models: 8 s apart, 64 s in all
            clock[0] += 8
            update("models", done, 8)
        for done in range(1, 9):  # the training accuracy: 0.4 s apart
            clock[0] += 0.4
            update("training accuracy, 1500 images", done, 8)
        for done in range(1, 9):  # a later stage that lasts: 10 s apart
            clock[0] += 10
            update("training accuracy, 3000 images", done, 8)
    lines = capsys.readouterr().err.splitlines()
    assert [line for line in lines if line.startswith("models: ")], lines
    assert not [line for line in lines if line.startswith("training accuracy, 1500 images")], lines
    assert [line for line in lines if line.startswith("training accuracy, 3000 images: 8/8 done")], lines


def test_a_pools_later_models_logged_without_a_terminal_say_their_training_accuracy_is_at_work(
    image_folder: Path, train_folder: Path, tmp_path: Path, monkeypatch
) -> None:
    """The training-accuracy stage said its tenths once per run, so in a log every model after the first measured its
    training accuracy in silence (minutes a model for a large network on a CPU); now a line wherever LOG_AFTER_SECONDS
    pass without one."""
    import suscli.cli.console

    pool = make_pool(tmp_path / "pool", n=2)
    monkeypatch.setattr(suscli.cli.console, "LOG_AFTER_SECONDS", 0)
    res, doc = rank_json(pool, image_folder, train_folder, "--no-cache")
    assert res.exit_code == 0 and doc is not None, res.output
    lines = res.stderr.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("models: 1/2 done"))
    later = [line for line in lines[first:] if line.startswith("training accuracy: ")]
    assert later and all(re.fullmatch(r"training accuracy: \d+/\d+ done, \d:\d\d:\d\d into the run", line) for line in later), res.stderr


@pytest.mark.parametrize("rule", ["agreement", "regions"])
def test_a_pool_none_of_whose_models_was_scored_says_only_that(rule: str, tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """With every model failed, rank also said "regions need a pool of 2+ distinct scored models: pass
    --zeta-threshold and --acc-threshold to judge fewer", and closed on "no model could be scored (regions rule:
    fewer than 2 models were measured)": thresholds do not help where nothing was measured."""
    labels = tmp_path / "val.csv"
    labels.write_text("path,label\n" + "".join(f"{p},{i % 5}\n" for i, p in enumerate(sorted(image_folder.iterdir()))))
    make_pool(tmp_path / "pool", n=2)
    res = invoke("rank", tmp_path / "pool", "-d", image_folder, "--train-data", train_folder, "--val-data", labels, "--rule", rule)
    lines = res.stderr.splitlines()
    assert res.exit_code == 3 and lines[0] == "no model could be scored" and "regions" not in res.stderr, res.stderr
    assert lines[1].startswith("error: 2 models could not be scored, all alike: on the held-out set"), res.stderr


def test_the_noise_and_suspects_lines_say_the_training_classes_are_numbered_among_themselves(
    image_folder: Path, train_folder: Path, tmp_path: Path
) -> None:
    """5-class models that name no classes, on 3 class folders: the folders are numbered 0-2 among themselves, which
    only each row's notes said; the label-noise line and the --suspects line, which rest on that numbering (the noise
    matrix's largest confusions then pair classes off by their numbering), said nothing."""
    for i in range(3):
        torch.manual_seed(i)
        suscli.save(tiny_cnn(5), tmp_path / "pool" / f"m{i}.safetensors", arch=ARCH, image_size=8)
    suspects = tmp_path / "suspects.csv"
    res, _ = rank_json(tmp_path / "pool", image_folder, train_folder, "--suspects", suspects)
    assert res.exit_code == 0, res.output
    said = [line for line in res.stderr.splitlines() if line.startswith("label noise:") or "written to" in line and "suspects" in line]
    assert len(said) == 2 and all(line.endswith(NUMBERED_AMONG_THEMSELVES) for line in said), res.stderr
