"""Reports: every command writes every format through one path, so --output holds what stdout would have held."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import suscli
from suscli.views.formats import Format
from tests.conftest import invoke, one_error_line, tiny_cnn, write_images
from tests.test_rerun import read_only

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
    shown = invoke(*args)
    assert shown.exit_code == 0, shown.output
    out = tmp_path / f"report.{fmt}"
    saved = invoke(*args, "-o", out)
    assert saved.exit_code == 0, saved.output
    assert saved.stdout == "" and f"report written to {out}" in saved.stderr
    assert shown.stdout.strip() and out.read_text(encoding="utf-8") == shown.stdout
    assert "epoch_1" in shown.stdout


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_reports_plots_and_cache_files_follow_the_umask(umask, targets, image_folder, train_folder, tmp_path, monkeypatch) -> None:
    """Like any tool's output: a CI step running as another user can read what a umask of 022 lets it read."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SUSCLI_CACHE_DIR", str(cache))
    old = os.umask(umask)
    try:
        res = invoke(
            "rank",
            targets["rank"],
            "-d",
            image_folder,
            "--train-data",
            train_folder,
            *FAST,
            "-f",
            "json",
            "-o",
            tmp_path / "r.json",
            "--plot",
            tmp_path / "p.png",
        )
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    written = [tmp_path / "r.json", tmp_path / "p.png", *cache.rglob("*.pt")]
    assert len(written) > 2
    assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {0o666 & ~umask}


def test_a_plot_into_a_missing_folder_is_refused_not_created(targets, image_folder, train_folder, tmp_path) -> None:
    res = invoke("rank", targets["rank"], "-d", image_folder, "--train-data", train_folder, *FAST, "--plot", tmp_path / "typo" / "p.png")
    one_error_line(res, 3, f"cannot write plot {tmp_path / 'typo' / 'p.png'}: the folder {tmp_path / 'typo'} does not exist")
    assert not (targets["rank"] / "suscli-results.jsonl").exists()  # refused before anything was measured
    assert not (tmp_path / "typo").exists()


def test_a_report_folder_that_cannot_be_written_is_refused_before_measuring(targets, image_folder, train_folder, tmp_path) -> None:
    """A read-only folder for --html was found after the whole run, which then ended before writing --junit."""
    shut = tmp_path / "shut"
    shut.mkdir()
    args = ["rank", targets["rank"], "-d", image_folder, "--train-data", train_folder, *FAST, "--html", shut / "r.html"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    command = read_only(shut, [sys.executable, "-m", "suscli", *(str(a) for a in args), "--junit", str(tmp_path / "j.xml")])
    try:
        res = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    finally:
        shut.chmod(0o755)
    assert res.returncode == 3, res.stderr
    assert (
        res.stderr.strip() == f"error: cannot write {shut / 'r.html'}: the folder {shut} cannot be written (choose another path for --html)"
    )
    assert not (targets["rank"] / "suscli-results.jsonl").exists()  # refused before anything was measured


def test_an_output_that_is_a_folder_is_refused_before_measuring(targets, image_folder, train_folder, tmp_path) -> None:
    """`-o reports` with reports/ a folder failed only when the report was written, after the whole run."""
    res = invoke("rank", targets["rank"], "-d", image_folder, "--train-data", train_folder, *FAST, "-f", "json", "-o", tmp_path)
    one_error_line(res, 3, f"cannot write {tmp_path}: it is a folder (name a file in it for --output)")
    assert not (targets["rank"] / "suscli-results.jsonl").exists()  # refused before anything was measured


@pytest.mark.parametrize("command", ["rank", "track"])
def test_a_plot_format_matplotlib_cannot_write_is_refused_before_measuring(command, targets, image_folder, train_folder, tmp_path) -> None:
    """A typo in --plot's suffix is a usage error up front, not an error after the run that loses the end of its report."""
    pytest.importorskip("matplotlib")
    plot = tmp_path / "p.txt"
    res = invoke(command, targets[command], "-d", image_folder, "--train-data", train_folder, *FAST, "--plot", plot)
    one_error_line(res, 2, f"--plot {plot}: matplotlib cannot write .txt images", "end the name in .png, .svg or .pdf")
    assert res.stdout == "" and not plot.exists()
    assert not (targets[command] / "suscli-results.jsonl").exists()  # refused before anything was measured
    res = invoke(command, targets[command], "-d", image_folder, "--train-data", train_folder, *FAST, "--plot", tmp_path / "p.SVG")
    assert res.exit_code == 0 and (tmp_path / "p.SVG").read_bytes().lstrip().startswith(b"<?xml"), res.output


def test_a_plot_without_training_data_is_refused_before_measuring(targets, image_folder, tmp_path) -> None:
    """rank's plot draws training accuracy: without --train-data the whole pool was measured and its reports written,
    then the run ended on "--plot needs training accuracy" [2], losing the closing lines and the step summary."""
    pytest.importorskip("matplotlib")
    res = invoke("rank", targets["rank"], "-d", image_folder, *FAST, "--plot", tmp_path / "p.png")
    one_error_line(res, 2, "--plot needs --train-data")
    assert res.stdout == "" and not (targets["rank"] / "suscli-results.jsonl").exists()  # refused before anything was measured


@pytest.mark.parametrize("command", ["rank", "track"])
def test_a_plot_where_no_model_could_be_scored_is_skipped_and_the_run_ends_on_their_errors(
    command, image_folder, train_folder, tmp_path
) -> None:
    """Every checkpoint broken: the plot, drawn after the reports, ended the run on a usage error [2], "--plot needs
    training accuracy for at least one model (pass --train-data)" with --train-data given (track: "needs at least one
    measured epoch"), so the step summary and the line naming the broken files were lost, and the exit code said the
    command line was wrong."""
    pytest.importorskip("matplotlib")
    pool = tmp_path / "pool"
    pool.mkdir()
    for i in (1, 2):
        (pool / f"epoch_{i}.safetensors").write_bytes(b"not a checkpoint")
    plot, summary, page = tmp_path / "p.png", tmp_path / "summary.md", tmp_path / "r.html"
    res = invoke(
        *(command, pool, "-d", image_folder, "--train-data", train_folder, *FAST, "--plot", plot, "--html", page),
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    unit = "model" if command == "rank" else "epoch"
    assert res.exit_code == 3 and "Traceback" not in res.output, res.output
    assert f"no plot written to {plot}: no {unit} could be scored" in res.stderr and not plot.exists()
    assert f"error: 2 {unit}s could not be scored" in res.stderr and "not a readable safetensors file" in summary.read_text()
    assert f"No plot: no {unit} could be scored." in page.read_text()


def test_suspects_where_broken_checkpoints_left_one_model_are_skipped_and_the_run_ends_on_their_errors(
    image_folder, train_folder, tmp_path
) -> None:
    """A pool of two checkpoints, one broken, with --suspects and --fail-on memorized: the suspects, written after the
    reports, ended the run on a usage error [2], "--suspects needs --train-data and 2+ models measured with it" with
    --train-data given, so the lines naming the broken file and the failed gate were lost, and the exit code said the
    command line was wrong. As for --plot: one line says why there is no list, and the run ends on exit 3."""
    pool = tmp_path / "pool"
    pool.mkdir()
    suscli.save(tiny_cnn(), pool / "good.safetensors", arch="tests.conftest:tiny_cnn", arch_kwargs={"num_classes": 3}, image_size=8)
    (pool / "broken.safetensors").write_bytes(b"not a checkpoint")
    suspects, summary = tmp_path / "s.csv", tmp_path / "summary.md"
    res = invoke(
        *("rank", pool, "-d", image_folder, "--train-data", train_folder, *FAST, "--suspects", suspects, "--fail-on", "memorized"),
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert res.exit_code == 3 and "Traceback" not in res.output, res.output
    assert f"no suspects written to {suspects}: 1 of the 2 models could not be scored" in res.stderr and not suspects.exists()
    assert "error: 1 model could not be scored" in res.stderr and "gate failed: --fail-on memorized cannot be judged" in res.stderr


def test_two_outputs_on_one_file_are_refused_before_measuring(targets, image_folder, train_folder, tmp_path) -> None:
    """Only the report written last would be left, each said to be written."""
    same = tmp_path / "report.out"
    args = ("rank", targets["rank"], "-d", image_folder, "--train-data", train_folder, *FAST)
    res = invoke(*args, "--html", same, "--junit", tmp_path / "." / "report.out")
    one_error_line(res, 2, f"--junit {tmp_path / '.' / 'report.out'} is the same file as --html")
    assert not same.exists() and not (targets["rank"] / "suscli-results.jsonl").exists()  # refused before measuring


@pytest.mark.parametrize("command", ["rank", "track"])
def test_an_output_on_the_results_file_is_refused_and_the_results_kept(command, targets, image_folder, train_folder, tmp_path) -> None:
    """Writing the report over the results file would replace every result measured, the default file or --results."""
    args = (command, targets[command], "-d", image_folder, "--train-data", train_folder, *FAST)
    assert invoke(*args).exit_code == 0
    stored = targets[command] / "suscli-results.jsonl"
    kept = stored.read_bytes()
    one_error_line(invoke(*args, "-f", "csv", "-o", stored), 2, f"--output {stored} is the same file as the results file")
    explicit = tmp_path / "mine.jsonl"
    one_error_line(invoke(*args, "--results", explicit, "--plot", explicit), 2, "--plot", "is the same file as the results file")
    assert stored.read_bytes() == kept and not explicit.exists()


@pytest.mark.parametrize("command", ["score", "rank", "track"])
def test_an_output_on_an_input_file_is_refused_and_the_input_kept(command, targets, image_folder, train_folder, tmp_path) -> None:
    """`-o m.safetensors` replaced the checkpoint with the report, and `--plot labels.csv` the label file, without a word."""
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{p},{i % 3}\n" for i, p in enumerate(sorted(image_folder.iterdir()))))
    kept = {p: p.read_bytes() for p in (targets["score"], labels)}
    args = (command, targets[command], "-d", image_folder, "--train-data", labels, *FAST)
    if command == "score":
        one_error_line(invoke(*args, "-f", "json", "-o", targets["score"]), 2, f"--output {targets['score']} is the same file as the input")
    one_error_line(invoke(*args, "-f", "csv", "-o", labels), 2, f"--output {labels} is the same file as the input {labels}")
    assert all(p.read_bytes() == data for p, data in kept.items())


@pytest.mark.parametrize("command", ["rank", "track"])
def test_an_output_on_a_file_an_input_folder_is_read_for_is_refused_and_the_file_kept(
    command, targets, image_folder, train_folder, tmp_path
) -> None:
    """`rank POOL -o POOL/m.safetensors` replaced a checkpoint of the pool with the report (and `rank man.csv -o man.csv`
    the manifest, `--junit train/cat/0.png` a training image), each said to be written, exit 0: only a label or
    checkpoint file given by name was an input the outputs were checked against, not what an input folder holds."""
    manifest = tmp_path / "pool.csv"
    manifest.write_text("path\nrun/epoch_1.safetensors\nrun/epoch_2.safetensors\n")
    image = sorted((train_folder / "class_0").iterdir())[0]
    guarded = [targets["score"], targets["score"].with_name("epoch_2.safetensors"), manifest, image]
    kept = {p: p.read_bytes() for p in guarded}
    args = (command, targets[command], "-d", image_folder, "--train-data", train_folder, *FAST)
    for option, path in (("-o", targets["score"]), ("--html", guarded[1]), ("--junit", image)):
        shown = "--output" if option == "-o" else option
        kind = "an image or label file under the input" if path == image else "a checkpoint file under the input"
        one_error_line(invoke(*args, option, path), 2, f"{shown} {path} is {kind} {path.parents[path == image]}", "a file of its own")
    if command == "rank":
        line = one_error_line(invoke("rank", manifest, *args[2:], "-f", "csv", "-o", manifest), 2)
        assert f"--output {manifest} is the same file as the input {manifest}" in line
        listed = invoke("rank", manifest, *args[2:], "--html", guarded[1])
        one_error_line(listed, 2, f"--html {guarded[1]} is a checkpoint file beside the input {manifest}")
    assert all(p.read_bytes() == data for p, data in kept.items())
    assert not (targets[command] / "suscli-results.jsonl").exists()  # refused before measuring
    report = targets[command] / "report.json"  # a file of its own in the pool's folder is still an output like any other
    assert invoke(*args, "-f", "json", "-o", report).exit_code == 0 and invoke(*args, "-f", "json", "-o", report).exit_code == 0


def test_on_a_case_insensitive_file_system_names_that_differ_in_case_are_one_file(
    targets, image_folder, train_folder, tmp_path, monkeypatch
) -> None:
    """macOS and Windows look names up regardless of case: `-o Report.json --html report.json` kept one report,
    `-o EPOCH_1.safetensors` replaced the checkpoint and `--junit r.jsonl` the results in R.jsonl (emulated here)."""
    monkeypatch.setattr(suscli.files, "case_insensitive", lambda folder: True)
    args = ("rank", targets["rank"], "-d", image_folder, "--train-data", train_folder, *FAST)
    one_error_line(invoke(*args, "-o", tmp_path / "Report.json", "--html", tmp_path / "report.json"), 2, "is the same file as --output")
    one_error_line(
        invoke(*args, "--results", tmp_path / "R.jsonl", "--junit", tmp_path / "r.jsonl"), 2, "is the same file as the results file"
    )
    checkpoint = targets["score"]
    kept = checkpoint.read_bytes()
    score = ("score", checkpoint, "-d", image_folder, *FAST)
    one_error_line(invoke(*score, "-o", checkpoint.with_name("EPOCH_1.safetensors")), 2, f"is the same file as the input {checkpoint}")
    assert checkpoint.read_bytes() == kept and not any(tmp_path.glob("*.json*"))


def test_on_a_case_sensitive_file_system_names_that_differ_in_case_are_two_files(targets, image_folder, train_folder, tmp_path) -> None:
    """Linux's file systems: Report.json and report.json are two reports, both written."""
    args = ("rank", targets["rank"], "-d", image_folder, "--train-data", train_folder, *FAST, "-f", "json")
    res = invoke(*args, "-o", tmp_path / "Report.json", "--html", tmp_path / "report.json")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "Report.json").read_text()) and (tmp_path / "report.json").read_text().startswith("<!DOCTYPE html>")
    linked = tmp_path / "linked.safetensors"  # one file under another name: compared by identity, not by name
    os.link(targets["score"], linked)
    one_error_line(
        invoke("score", targets["score"], "-d", image_folder, *FAST, "-o", linked), 2, f"is the same file as the input {targets['score']}"
    )


def test_a_folder_is_case_insensitive_where_its_name_in_the_other_case_is_the_same_folder(tmp_path: Path) -> None:
    """The probe: one lookup of the folder (or its nearest ancestor with letters in its name) with its case swapped."""
    sensitive, insensitive = tmp_path / "Sensitive", tmp_path / "Insensitive"
    (sensitive / "2024").mkdir(parents=True)
    (tmp_path / "sENSITIVE").mkdir()  # another folder: the name in the other case is not this one
    (insensitive / "2024").mkdir(parents=True)
    (tmp_path / "iNSENSITIVE").symlink_to(insensitive)  # a lookup regardless of case finds the folder under either name
    assert not suscli.files.case_insensitive(sensitive) and not suscli.files.case_insensitive(sensitive / "2024")
    assert suscli.files.case_insensitive(insensitive) and suscli.files.case_insensitive(insensitive / "2024")
    assert not suscli.files.case_insensitive(tmp_path / "missing")


def _rank_into(
    stdout: int | None, targets, image_folder, train_folder, junit: Path, shell: str = "", fmt: str = "json"
) -> subprocess.CompletedProcess:
    """A real rank process whose stdout is the file descriptor given (a pipe or device, as a shell makes it), or what
    `shell` makes it (`>&-`), writing its report in `fmt`."""
    cmd = [sys.executable, "-m", "suscli", "rank", targets["rank"], "-d", image_folder, "--train-data", train_folder, *FAST]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    args = [str(a) for a in (*cmd, "-f", fmt, "--junit", junit)]
    if shell:
        args = ["sh", "-c", f'exec "$@" {shell}', "sh", *args]
    return subprocess.run(args, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env, timeout=300)


def test_a_reader_that_stops_early_leaves_the_other_reports_and_the_exit_code(targets, image_folder, train_folder, tmp_path) -> None:
    """`suscli rank ... -f json | head -c 10`: the closed pipe ended the run in a silent exit 1, a failed gate to CI,
    before the JUnit report and the closing lines were written."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the report is written
    try:
        res = _rank_into(write, targets, image_folder, train_folder, tmp_path / "junit.xml")
    finally:
        os.close(write)
    assert res.returncode == 0, res.stderr
    assert f"junit report written to {tmp_path / 'junit.xml'}" in res.stderr and "ship " in res.stderr
    assert "Error" not in res.stderr and (tmp_path / "junit.xml").exists()


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_a_closed_stdout_leaves_the_other_reports_and_the_exit_code(fmt, targets, image_folder, train_folder, tmp_path) -> None:
    """`suscli rank ... >&-`: Python gives no stdout at all, which was an internal error; with the default table it
    still was one, asking whether that missing stdout was a terminal."""
    res = _rank_into(None, targets, image_folder, train_folder, tmp_path / "junit.xml", shell=">&-", fmt=fmt)
    assert res.returncode == 0, res.stderr
    assert "internal error" not in res.stderr and (tmp_path / "junit.xml").exists()


@pytest.mark.parametrize("stderr", ["closed pipe", "/dev/full"])
def test_a_stderr_that_cannot_take_the_messages_leaves_every_output_and_the_exit_code(
    stderr, targets, image_folder, train_folder, tmp_path
) -> None:
    """`suscli rank ... 2>&1 | head -1` (a log reader gone), or a stderr on a full disk: the first message that could
    not be written ("report written to ...") ended the run in exit 1, a failed gate to CI, before the JUnit and HTML
    reports were written; a passing run, or one whose model failed (3), exited 1 all the same."""
    if stderr == "/dev/full" and not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    out = {name: tmp_path / name for name in ("r.json", "j.xml", "r.html")}
    cmd = [sys.executable, "-m", "suscli", "rank", targets["rank"], "-d", image_folder, "--train-data", train_folder, *FAST]
    cmd += ["-f", "json", "-o", out["r.json"], "--junit", out["j.xml"], "--html", out["r.html"]]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    if stderr == "closed pipe":
        read, write = os.pipe()
        os.close(read)  # the reader is gone before the first message
    else:
        write = os.open("/dev/full", os.O_WRONLY)
    try:
        res = subprocess.run([str(a) for a in cmd], stdout=subprocess.DEVNULL, stderr=write, env=env, timeout=300)
    finally:
        os.close(write)
    assert res.returncode == 0
    assert all(path.stat().st_size for path in out.values())
    ET.parse(out["j.xml"])


FULL = "error: cannot write the report to stdout: No space left on device (write it to a file with --output)"


def _into_full(*args: object, summary: Path) -> subprocess.CompletedProcess:
    """A real suscli process whose stdout is /dev/full, with a GitHub step summary."""
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "OMP_NUM_THREADS": "1",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [sys.executable, "-m", "suscli", *map(str, args), *FAST], stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=300
        )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_stdout_that_cannot_take_the_report_leaves_every_other_output(targets, image_folder, train_folder, tmp_path) -> None:
    """`suscli rank ... --junit j.xml > /dev/full` (a full disk) was an internal error asking to be reported; then it
    ended at the report on stdout: the JUnit and HTML reports, the suspects, the step summary and the closing lines
    were lost, a CI job's test report with them. It is one error line, they are all written, and the exit code is
    still 3, for the stdout."""
    out = {name: tmp_path / name for name in ("j.xml", "r.html", "s.csv", "summary.md")}
    res = _into_full(
        "rank", targets["rank"], "-d", image_folder, "--train-data", train_folder, "--junit", out["j.xml"], "--html", out["r.html"],
        "--suspects", out["s.csv"], summary=out["summary.md"],
    )  # fmt: skip
    assert res.returncode == 3, res.stderr
    assert res.stderr.splitlines()[0] == FULL and res.stderr.count("error") == 1 and "\nship epoch_" in res.stderr
    assert all(path.stat().st_size for path in out.values()), res.stderr
    ET.parse(out["j.xml"])


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("command", ["score", "track"])
def test_score_and_track_finish_after_a_stdout_that_cannot_take_the_report(command, targets, image_folder, train_folder, tmp_path) -> None:
    """score's gate and closing lines, and track's epoch to keep and step summary, came after the report on stdout,
    and were lost with it; a failed gate under a failed stdout still exits 3, the graver code."""
    gate = ("--min-train-acc", "1.0") if command == "score" else ()
    res = _into_full(command, targets[command], "-d", image_folder, "--train-data", train_folder, *gate, summary=tmp_path / "summary.md")
    assert res.returncode == 3, res.stderr
    assert res.stderr.splitlines()[0] == FULL
    assert ("gate failed: training accuracy" if command == "score" else "keep epoch") in res.stderr
    assert (tmp_path / "summary.md").read_text(encoding="utf-8").count("|") > 4


def _disk_full_at(failing: Path, monkeypatch) -> None:
    """Writing `failing` fails as on a full disk (or a quota, or a folder made read-only after the run began): what no
    check before measuring can see. Every other file is written."""
    import errno

    import suscli.views.plot

    real = suscli.files.replacing

    @contextlib.contextmanager
    def replacing(path, *args, **kwargs):
        if Path(path) == failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        with real(path, *args, **kwargs) as f:
            yield f

    monkeypatch.setattr(suscli.files, "replacing", replacing)
    monkeypatch.setattr(suscli.views.plot, "replacing", replacing)


@pytest.mark.parametrize("failing", ["r.json", "r.html", "j.xml", "p.png", "s.csv"])
def test_an_output_that_cannot_be_written_leaves_every_other_output(
    failing, targets, image_folder, train_folder, tmp_path, monkeypatch
) -> None:
    """`--html` on a disk that filled during the run: the first output that could not be written ended the run, and
    the outputs after it (the JUnit report a CI job reads, the plot, the step summary), the closing lines and the
    gates were lost. As with a stdout that cannot take the report, its error line is said, every other output is
    written, and the exit code is 3."""
    pytest.importorskip("matplotlib")
    out = {name: tmp_path / name for name in ("r.json", "r.html", "j.xml", "p.png", "s.csv", "summary.md")}
    _disk_full_at(out[failing], monkeypatch)
    res = invoke(
        "rank", targets["rank"], "-d", image_folder, "--train-data", train_folder, *FAST, "-f", "json", "-o", out["r.json"],
        "--html", out["r.html"], "--junit", out["j.xml"], "--plot", out["p.png"], "--suspects", out["s.csv"],
        env={"GITHUB_STEP_SUMMARY": str(out["summary.md"])},
    )  # fmt: skip
    assert res.exit_code == 3, res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"{out[failing]}: No space left on device (choose a writable" in errors[0], res.stderr
    assert "\nship epoch_" in res.stderr and "Traceback" not in res.output
    assert not out[failing].exists()
    assert all(path.stat().st_size for name, path in out.items() if name != failing), res.stderr
    if failing != "j.xml":
        ET.parse(out["j.xml"])


@pytest.mark.parametrize("command", ["score", "track"])
def test_score_and_track_finish_after_an_output_that_cannot_be_written(
    command, targets, image_folder, train_folder, tmp_path, monkeypatch
) -> None:
    """score's gate and track's epoch to keep, their JUnit reports and step summaries, came after --html, and were
    lost when it could not be written; a failed gate under a failed output still exits 3, the graver code."""
    _disk_full_at(tmp_path / "r.html", monkeypatch)
    gate = ("--min-train-acc", "1.0") if command == "score" else ()
    res = invoke(
        command, targets[command], "-d", image_folder, "--train-data", train_folder, *FAST, *gate, "--html", tmp_path / "r.html",
        "--junit", tmp_path / "j.xml", env={"GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")},
    )  # fmt: skip
    assert res.exit_code == 3, res.output
    assert res.stderr.count("error: cannot write") == 1 and "Traceback" not in res.output
    assert ("gate failed: training accuracy" if command == "score" else "keep epoch") in res.stderr
    ET.parse(tmp_path / "j.xml")
    assert (tmp_path / "summary.md").read_text(encoding="utf-8").count("|") > 4


@pytest.mark.parametrize("fmt", ["table", "junit", "html"])
def test_reports_on_stdout_are_utf8_whatever_the_locale(fmt, targets, image_folder, train_folder, monkeypatch) -> None:
    """Under a Latin-1 stdout (its locale, PYTHONIOENCODING) the table and HTML report were an internal error on their
    characters, and the JUnit report, declared UTF-8, was written in Latin-1 bytes that XML parsers refuse."""
    from suscli.cli import app

    monkeypatch.setattr(time, "perf_counter", lambda: 0.0)  # the reports' timings, the only part that differs between runs
    args = [
        "rank",
        str(targets["rank"]),
        "-d",
        str(image_folder),
        "--train-data",
        str(train_folder),
        *FAST,
        "--batches",
        "2",
        "-f",
        fmt,
        "--fresh",
    ]
    latin = CliRunner(charset="latin-1").invoke(app, args)
    assert latin.exit_code == 0, latin.output
    assert latin.stdout_bytes == invoke(*args).stdout_bytes  # UTF-8, as with a UTF-8 locale and in --output
    if fmt == "junit":
        assert "±" in ET.fromstring(latin.stdout_bytes).find(".//testcase/system-out").text  # its susceptibility ± SEM


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_the_table_on_a_terminal_of_an_ascii_locale_is_drawn_not_an_internal_error(targets, image_folder, train_folder) -> None:
    """`suscli rank` on a terminal whose locale is not UTF-8 (LC_ALL=C with PYTHONUTF8=0, an old server's console)
    was "internal error: UnicodeEncodeError: 'ascii' codec can't encode character '\\xb1'" (exit 3), with no closing
    line nor gate: the table's susceptibility ± its standard error could not be drawn. Now such a character is
    written as its escape, as stderr writes one, and the run goes on."""
    import pty

    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "OMP_NUM_THREADS": "1",
        "PYTHONUTF8": "0",
        "LC_ALL": "C",
        "COLUMNS": "120",
    }
    env.pop("PYTHONIOENCODING", None)
    cmd = [
        sys.executable,
        "-m",
        "suscli",
        "rank",
        targets["rank"],
        "-d",
        image_folder,
        "--train-data",
        train_folder,
        *FAST,
        "--batches",
        "2",
    ]
    main, terminal = pty.openpty()
    try:
        res = subprocess.run([str(a) for a in cmd], stdout=terminal, stderr=subprocess.PIPE, env=env, timeout=300)
        os.close(terminal)
        shown = b""
        with contextlib.suppress(OSError):  # EIO once everything written was read
            while chunk := os.read(main, 65536):
                shown += chunk
    finally:
        os.close(main)
    assert res.returncode == 0, res.stderr
    assert b"ship epoch_" in res.stderr
    assert "\\xb1" in shown.decode("ascii") and b"epoch_1" in shown  # what an ASCII terminal can show


def test_reports_leave_per_image_predictions_to_the_results_file(targets: dict[str, Path], image_folder: Path, train_folder: Path) -> None:
    """A JSON report carries each model's summary; its per-image predictions only with --per-image, and the results
    file always keeps them (every later decision reads them there)."""
    pool = targets["rank"]
    common = ("rank", pool, "-d", image_folder, "--train-data", train_folder, *FAST, "-f", "json")
    lean, full = invoke(*common), invoke(*common, "--per-image")
    assert lean.exit_code == full.exit_code == 0, lean.output + full.output
    lean_doc, full_doc = json.loads(lean.stdout), json.loads(full.stdout)
    for row in lean_doc["results"]:
        assert not {"predictions", "train_predictions", "train_hits"} & row["details"].keys() and row["details"]["r"]
    assert all({"predictions", "train_predictions", "train_hits"} <= row["details"].keys() for row in full_doc["results"])
    strip = [
        {**r, "details": {k: v for k, v in r["details"].items() if k not in ("predictions", "train_predictions", "train_hits", "reused")}}
        for r in full_doc["results"]
    ]
    assert all(r["details"]["reused"] for r in full_doc["results"])  # the second run measured nothing
    assert [r | {"seconds": 0} for r in strip] == [r | {"seconds": 0} for r in lean_doc["results"]]  # nothing else differs
    stored = [json.loads(line) for line in (pool / "suscli-results.jsonl").read_text().splitlines()]
    assert all(rec["result"]["details"]["train_predictions"] for rec in stored)


@pytest.mark.parametrize("command", ["score", "rank", "track"])
def test_the_image_counts_are_of_the_images_measured_not_the_files_listed(command, targets, image_folder, tmp_path) -> None:
    """Unreadable files are skipped: the run's `unlabeled_images` and `val_images` count what every row was measured
    on, as the rows' notes and the closing line do, and say how many were skipped; so does a rerun that reuses every row."""
    for i in range(2):
        (image_folder / f"broken_{i}.png").write_bytes(b"not an image")
    val = tmp_path / "val"
    for c in range(3):
        write_images(val / f"class_{c}", 4, seed=20 + c)
    (val / "class_0" / "broken.png").write_bytes(b"not an image")
    args = [command, targets[command], "-d", image_folder, "--val-data", val, *FAST]
    if command != "score":
        args += ["--results", tmp_path / "r.jsonl"]
    for fmt in ("json", "json", "junit"):  # the second run and the JUnit one reuse the rows of a pool
        res = invoke(*args, "-f", fmt)
        assert res.exit_code == 0, res.output
        if fmt == "junit":
            assert '<property name="data.unlabeled_images" value="24" />' in res.stdout
            continue
        data = json.loads(res.stdout)["data"]
        assert (data["unlabeled_images"], data["unlabeled_unreadable"], data["unlabeled_population"]) == (24, 2, 26)
        assert (data["val_images"], data["val_unreadable"]) == (12, 1)


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown", "html"])
def test_a_file_name_that_is_not_utf8_is_written_with_an_escape_in_every_report(fmt, image_folder, train_folder, tmp_path) -> None:
    """A checkpoint named in Latin-1 (`caf\\xe9.pt`, from an old archive), which Python keeps as a lone surrogate: the
    table, CSV, Markdown and HTML reports, on stdout or in a file, and the step summary ended in "internal error:
    UnicodeEncodeError: 'utf-8' codec can't encode character '\\udce9'". They now write it as the JSON report
    escapes it, `caf\\udce9`."""
    pool = tmp_path / "pool"
    pool.mkdir()
    for i, name in enumerate([os.fsdecode(b"caf\xe9"), "m"]):
        torch.manual_seed(i)
        torch.save(tiny_cnn().state_dict(), pool / f"{name}.pt")
    summary, out = tmp_path / "summary.md", tmp_path / f"out.{fmt}"
    args = ("rank", pool, "-d", image_folder, "--train-data", train_folder, *FAST, "--arch", ARCH, "-f", fmt)
    res = invoke(*args, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    assert "caf\\udce9" in res.stdout and "caf\\udce9" in summary.read_text(encoding="utf-8")
    res = invoke(*args, "-o", out, "--html", tmp_path / "r.html")
    assert res.exit_code == 0, res.output
    assert "caf\\udce9" in out.read_text(encoding="utf-8") and "caf\\udce9" in (tmp_path / "r.html").read_text(encoding="utf-8")
