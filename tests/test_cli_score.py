"""`suscli score` driven through Typer's CliRunner: reports, gates, exit codes, and bad input."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from collections.abc import Callable
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
import typer
from torch import nn
from PIL import Image

import suscli
import suscli.data.images
import suscli.measure.sampling
import suscli.models
import suscli.run.model
import suscli.views.formats
from suscli.defaults import PRESET_NAMES
from suscli.errors import UsageError
from suscli import Inputs, Settings, score
from suscli.judge.verdict import MISMEASURED
from suscli.measure.normalization import CHANNELS_UNKNOWN, NO_NORMALIZATION, SIZE_ELSEWHERE
from suscli.measure.randomness import random_forward
from suscli.measure.susceptibility import SusceptibilityConfig
from tests.conftest import by_hand, cli_json, invoke, one_error_line, pooled_batch_norm, tiny_cnn, write_images

ARCH = "tests.conftest:tiny_cnn"


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    return suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8)


def test_json_report_is_one_document_with_everything_to_reproduce(ckpt: Path, image_folder: Path, train_folder: Path) -> None:
    res = invoke(
        "score", ckpt, "--data", image_folder, "--train-data", train_folder, "--format", "json", "--batches", "3", "--batch-size", "8"
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    row = doc["results"][0]
    assert row["status"] == "ok" and row["arch"] == ARCH and len(row["sha256"]) == 64
    assert len(row["details"]["r"]) == 3 and row["susceptibility"] == pytest.approx(sum(row["details"]["r"]) / 3)
    assert row["train_n"] == 18 and 0 <= row["train_acc"] <= 1
    assert doc["settings"]["susceptibility"] == {"lr": 0.01, "batches": 3, "batch_size": 8, "seed": 0}
    assert {"torch", "torchvision", "suscli", "python"} <= doc["environment"].keys()
    assert "seconds" in doc and "no normalization known" in row["notes"][0]


def test_cli_equals_python_api_and_is_deterministic(ckpt: Path, image_folder: Path) -> None:
    a = json.loads(invoke("score", ckpt, "-d", image_folder, "-f", "json", "--seed", "4").stdout)["results"][0]
    b = json.loads(invoke("score", ckpt, "-d", image_folder, "-f", "json", "--seed", "4").stdout)["results"][0]
    api = score(ckpt, image_folder, settings=Settings(susceptibility=SusceptibilityConfig(seed=4)), inputs=Inputs(device="cpu"))
    assert a["details"]["r"] == b["details"]["r"] == api.rows[0].details["r"]


def test_a_batch_capped_by_few_images_says_why_the_row_has_no_verdict(ckpt: Path, image_folder: Path) -> None:
    """24 images and the default batch of 32: the step is no longer the one the fixed cuts were measured at, so the
    verdict is left out; the note says so, where the row showed a bare '-' and no reason."""
    row = json.loads(invoke("score", ckpt, "-d", image_folder, "-f", "json").stdout)["results"][0]
    assert row["verdict"] is None and row["details"]["batch_size"] == 24
    assert (
        "batch size capped at 24, the number of unlabeled images: the verdict's fixed cuts, measured at batch size 32, do not apply"
        in row["notes"][-1]
    )
    asked = json.loads(invoke("score", ckpt, "-d", image_folder, "-f", "json", "--batch-size", "64").stdout)["results"][0]
    assert asked["notes"][-1] == "batch size capped at 24, the number of unlabeled images"  # another step was asked for: nothing lost


@pytest.mark.parametrize("fmt", ["csv", "markdown", "table"])
def test_other_formats(ckpt: Path, image_folder: Path, fmt: str) -> None:
    res = invoke("score", ckpt, "-d", image_folder, "-f", fmt)
    assert res.exit_code == 0, res.output
    assert {"csv": "\nm,", "markdown": "| m |", "table": "│ m "}[fmt] in res.stdout, res.stdout
    if fmt == "csv":
        assert res.stdout.splitlines()[0].startswith("name,path,status,error,arch")


def test_unknown_format_is_a_usage_error(ckpt: Path, image_folder: Path) -> None:
    assert invoke("score", ckpt, "-d", image_folder, "-f", "yaml").exit_code == 2


def test_output_file_is_written_and_stdout_stays_empty(ckpt: Path, image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "r.json"
    out.parent.mkdir()
    res = invoke("score", ckpt, "-d", image_folder, "-f", "json", "-o", out)
    assert res.exit_code == 0 and res.stdout == ""
    assert json.loads(out.read_text())["results"][0]["name"] == "m"
    assert not list(out.parent.glob(".*.tmp"))


def test_output_into_a_missing_folder_is_refused_not_created(ckpt: Path, image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "typo" / "r.json"
    one_error_line(invoke("score", ckpt, "-d", image_folder, "-f", "json", "-o", out), 3, f"the folder {out.parent} does not exist")
    assert not out.parent.exists()


def test_gates(ckpt: Path, image_folder: Path, train_folder: Path, tmp_path: Path) -> None:
    base = ("score", ckpt, "-d", image_folder, "--train-data", train_folder, "-f", "json")
    passed = invoke(*base, "--max-susceptibility", "100", "--min-train-acc", "0")
    assert passed.exit_code == 0 and json.loads(passed.stdout)["gate"]["passed"] is True
    summary = tmp_path / "summary.md"
    failed = invoke(*base, "--max-susceptibility", "-100", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert failed.exit_code == 1 and "gate failed: susceptibility" in failed.stderr
    assert json.loads(failed.stdout)["gate"]["passed"] is False  # the report is still written
    text = summary.read_text()  # GitHub's step summary, as rank and track write it: the table, the verdict, the gate
    assert "| m |" in text and text.rstrip().splitlines()[-1].startswith("gate failed: susceptibility"), text
    assert all(line in text for line in failed.stderr.splitlines() if line.startswith("verdict:"))
    assert invoke(*base, "--min-train-acc", "1.0").exit_code in (0, 1)
    assert invoke("score", ckpt, "-d", image_folder, "--min-train-acc", "0.5").exit_code == 2  # needs --train-data


def test_bad_inputs_give_one_line_and_exit_3(tmp_path: Path, ckpt: Path, image_folder: Path, train_folder: Path) -> None:
    one_error_line(invoke("score", tmp_path / "nope.pt", "-d", image_folder), 3, "nope.pt")
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    one_error_line(invoke("score", trunc, "-d", image_folder), 3, "trunc.safetensors")
    rnd = tmp_path / "random.pt"
    rnd.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    one_error_line(invoke("score", rnd, "-d", image_folder), 3, "random.pt")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_error_line(invoke("score", ckpt, "-d", empty), 3, "no image files")
    one_error_line(invoke("score", ckpt, "-d", tmp_path / "missing"), 3, "missing")


def test_wrong_architecture_and_shapes(tmp_path: Path, image_folder: Path) -> None:
    plain = tmp_path / "plain.pt"
    torch.save(tiny_cnn().state_dict(), plain)
    one_error_line(invoke("score", plain, "-d", image_folder, "--image-size", "8"), 3, "--arch")
    one_error_line(invoke("score", plain, "-d", image_folder, "--image-size", "8", "--arch", "torchvision:resnet18"), 3, "plain.pt")
    one_error_line(
        invoke("score", plain, "-d", image_folder, "--image-size", "8", "--arch", ARCH, "--arch-kwargs", "num_classes=5"), 3, "shape"
    )
    one_error_line(
        invoke("score", plain, "-d", image_folder, "--image-size", "8", "--arch", ARCH, "--num-classes", "5"),
        3,
        "--num-classes says 5 classes, but the output layer of the weights has 3",
        "(drop --num-classes or make it 3)",
    )
    ok = invoke("score", plain, "-d", image_folder, "--image-size", "8", "--arch", ARCH)
    assert ok.exit_code == 0, ok.output


def test_labels_out_of_range_and_one_class(tmp_path: Path, ckpt: Path, image_folder: Path, train_folder: Path) -> None:
    for c in range(3, 6):
        (train_folder / f"class_{c}").mkdir()
        (train_folder / "class_0" / "img_000.png").rename(train_folder / f"class_{c}" / "x.png") if c == 5 else None
    one_error_line(
        invoke("score", ckpt, "-d", image_folder, "--train-data", train_folder), 3, "5", "3 classes", f"on the training set {train_folder}:"
    )
    csv = tmp_path / "labels.csv"
    csv.write_text("train/class_0/img_001.png,0\ntrain/class_1/img_001.png,7\n")
    one_error_line(invoke("score", ckpt, "-d", image_folder, "--train-data", csv), 3, "up to 7", f"on the training set {csv}:")
    single = tmp_path / "single"
    (single / "only").mkdir(parents=True)
    (train_folder / "class_1" / "img_000.png").rename(single / "only" / "a.png")
    one_error_line(invoke("score", ckpt, "-d", image_folder, "--train-data", single), 3, "single class")


def test_bad_csv_row_named(tmp_path: Path, ckpt: Path, image_folder: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("a.png,0\nb.png,dog\n")
    one_error_line(invoke("score", ckpt, "-d", image_folder, "--train-data", csv), 3, "labels.csv", "row 2")


def test_corrupt_image_among_good_ones(ckpt: Path, image_folder: Path) -> None:
    (image_folder / "zz_bad.jpg").write_bytes(b"\xff\xd8\xffjunk")
    res = invoke("score", ckpt, "-d", image_folder, "-f", "json")
    assert res.exit_code == 0
    row = json.loads(res.stdout)["results"][0]
    assert row["details"]["unreadable_images"] == 1 and any("unreadable" in n for n in row["notes"])
    one_error_line(invoke("score", ckpt, "-d", image_folder, "--strict"), 3, "zz_bad.jpg")


def test_usage_errors_exit_2(ckpt: Path, image_folder: Path) -> None:
    assert invoke("score", ckpt, "-d", image_folder, "--mean", "0.5").exit_code == 2
    assert invoke("score", ckpt, "-d", image_folder, "--preset", "mnist").exit_code == 2
    assert invoke("score", ckpt, "-d", image_folder, "--device", "cuda:7").exit_code == 2
    assert invoke("score", ckpt, "-d", image_folder, "--lr", "0").exit_code == 2
    assert invoke("score", ckpt).exit_code == 2


def test_devices_suscli_does_not_run_on_are_usage_errors_and_cpu_0_is_the_cpu(ckpt: Path, image_folder: Path) -> None:
    """torch.device takes every device type torch knows: --device xpu and hip ended in "internal error:
    AssertionError: Torch not compiled with XPU enabled", meta in "the model failed on 8x8 images ... (check --arch,
    ...)" [3], and cpu:0 (as one writes cuda:0) in "internal error: KeyError: (Sizing(...), 3, 'cpu:0')"."""
    plain = json.loads(invoke("score", ckpt, "-d", image_folder, "--device", "cpu", "-f", "json").stdout)["results"][0]
    res = invoke("score", ckpt, "-d", image_folder, "--device", "cpu:0", "-f", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["results"][0]["susceptibility"] == plain["susceptibility"]
    for device in ("xpu", "hip", "meta", "cpu:1"):
        one_error_line(invoke("score", ckpt, "-d", image_folder, "--device", device), 2, f"unknown device {device!r}", "cuda:N")
    with pytest.raises(UsageError, match="unknown device 'gpu'"):
        Inputs(device="gpu")  # when made, as Settings and the command line check their values


def test_help_documents_exit_codes() -> None:
    assert "Exit codes: 0 ok, 1 gate failed, 2 usage error, 3" in invoke("--help").stdout


def test_version_names_suscli_and_the_torch_it_runs_on() -> None:
    """A bug report or a CI log needs the versions: `suscli --version` was "No such option" (exit 2)."""
    from importlib.metadata import version

    res = invoke("--version")
    assert res.exit_code == 0, res.output
    line = res.stdout.strip()
    assert line.startswith(f"suscli {version('suscli')} (") and f"torch {version('torch')}" in line, line
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in line and res.stderr == ""
    assert "--version" in invoke("--help").stdout


# Runs the command line as `suscli` does, then names which of torch and pandas it loaded.
LOADED = """import sys
sys.argv = ["suscli", *sys.argv[1:]]
from suscli.__main__ import main
try:
    main()
except SystemExit as e:
    print("exit", e.code, "loaded", [m for m in ("torch", "pandas") if m in sys.modules])
"""


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--help"], 0),
        (["rank", "--help"], 0),
        (["score", "--help"], 0),
        (["track", "--help"], 0),
        (["demo", "--help"], 0),
        (["--version"], 0),
        (["score", "--bogus"], 2),
    ],
)
def test_help_and_a_usage_error_load_neither_torch_nor_pandas(args: list[str], code: int) -> None:
    """`suscli --help` took 2.3 s of CPU, most of it importing torch and pandas, which no help text needs: the
    options are declared from suscli.defaults, and what runs a command is imported when it runs."""
    res = subprocess.run([sys.executable, "-c", LOADED, *args], capture_output=True, text=True, timeout=120)
    assert res.stdout.splitlines()[-1] == f"exit {code} loaded []", res.stdout[-500:] + res.stderr


def test_the_presets_help_names_are_the_presets() -> None:
    """--help names the presets from suscli.defaults, without importing suscli.data.images, which defines them."""
    assert PRESET_NAMES == tuple(suscli.data.images.PRESETS)


BATCH_NORM_NEEDS_TWO = "a training-mode step of a BatchNorm network needs at least 2 images per batch, got 1"


@pytest.mark.parametrize("kind", ["safetensors", "torchscript"])
def test_batches_of_one_image_on_a_batch_norm_network_are_one_line_with_the_way_out(kind: str, tmp_path: Path) -> None:
    """BatchNorm in train mode refuses one value per channel; the step says so in one line, for a TorchScript model
    too (whose error carries the interpreter's traceback), whether --batch-size or the images made the batch one."""
    model = pooled_batch_norm()
    if kind == "safetensors":
        ckpt = suscli.save(model, tmp_path / "m.safetensors", arch="tests.conftest:pooled_batch_norm", num_classes=3, image_size=8)
    else:
        ckpt = tmp_path / "m.pt"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated
            torch.jit.save(torch.jit.script(model.eval()), ckpt)
    write_images(tmp_path / "many", 4)
    write_images(tmp_path / "one", 1)
    common = ("--preset", "cifar10", "--image-size", "8", "--batches", "1")
    res = invoke("score", ckpt, "-d", tmp_path / "many", "--batch-size", "1", *common)
    one_error_line(res, 3, BATCH_NORM_NEEDS_TWO, "pass --batch-size 2 or more")
    res = invoke("score", ckpt, "-d", tmp_path / "one", *common)
    one_error_line(res, 3, BATCH_NORM_NEEDS_TWO, "give --data 2 or more images")
    assert invoke("score", ckpt, "-d", tmp_path / "many", "--batch-size", "2", *common).exit_code == 0


def _run_failing(command: Callable[[], None], monkeypatch: pytest.MonkeyPatch, debug: bool) -> object:
    """The exit code of suscli's entry point running `command` as its only command, with or without SUSCLI_DEBUG."""
    import suscli.cli as cli

    failing = typer.Typer()
    failing.command()(command)
    if debug:
        monkeypatch.setenv("SUSCLI_DEBUG", "1")
    else:
        monkeypatch.delenv("SUSCLI_DEBUG", raising=False)
    monkeypatch.setattr(cli, "app", failing)
    monkeypatch.setattr(sys, "argv", ["suscli"])
    with pytest.raises(SystemExit) as stop:
        cli._run()
    return stop.value.code


def test_an_internal_error_with_a_multi_line_message_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """An unexpected error whose text holds a traceback (TorchScript's do) still reaches the user as one line: the
    line that names the error, not the traceback."""

    def boom() -> None:
        raise RuntimeError(
            "The following operation failed in the TorchScript interpreter.\n"
            "Traceback of TorchScript, serialized code (most recent call last):\n"
            '  File "code/__torch__.py", line 3, in forward\n'
            "    ~~~~ <--- HERE\n\n"
            "builtins.ValueError: something went wrong\n"
        )

    assert _run_failing(boom, monkeypatch, debug=False) == 3
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err and "HERE" not in err, err
    assert lines[0].startswith("internal error: RuntimeError: builtins.ValueError: something went wrong"), err


def test_an_internal_error_with_its_traceback_asked_for_still_exits_3(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """SUSCLI_DEBUG=1 shows the traceback of an unexpected error; the exit code stays the internal error's 3. The
    error was re-raised to Python, which exits 1: a CI job debugging suscli read it as a failed gate."""

    def boom() -> None:
        raise RuntimeError("something went wrong")

    assert _run_failing(boom, monkeypatch, debug=True) == 3
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "in boom" in err, err
    assert err.rstrip().endswith("RuntimeError: something went wrong"), err


@pytest.mark.parametrize(
    "argv, says",
    [
        (["score", "m.pt", "-d", "x", "--format", "xml"], "Invalid value for '--format' / '-f': 'xml' is not one of 'table'"),
        (["score", "m.pt", "-d", "x", "--bogus"], "No such option: --bogus"),
        (["score"], "Missing argument 'checkpoint'"),
        (["bogus"], "No such command 'bogus'"),
    ],
)
def test_a_command_line_the_parser_refuses_is_one_line_and_exit_2(
    argv: list[str], says: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """An unknown option, a bad choice or a missing argument: one line naming it and the --help to read, exit 2, not
    the parser's usage block and boxed message."""
    import suscli.cli as cli

    monkeypatch.setattr(sys, "argv", ["suscli", *argv])
    with pytest.raises(SystemExit) as stop:
        cli._run()
    assert stop.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0] and "--help)" in lines[0], lines


@pytest.mark.parametrize(
    "argv, says, command",
    [
        (["rank", "m", "--data", "d", "--format"], "Option '--format' requires an argument.", "rank"),
        (["score", "m.pt", "-d"], "Option '-d' requires an argument.", "score"),
        (["--version=1"], "Option '--version' does not take a value.", ""),
    ],
)
def test_an_option_without_its_value_names_the_help_of_its_command(
    argv: list[str], says: str, command: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The parser raises these without its context: their line lacked the " (see suscli rank --help)" every other
    refused command line has. It names the help of the command the option belongs to."""
    import suscli.cli as cli

    monkeypatch.setattr(sys, "argv", ["suscli", *argv])
    with pytest.raises(SystemExit) as stop:
        cli._run()
    assert stop.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {says} (see "), lines
    assert lines[0].endswith(f"suscli {command} --help)".replace("  ", " ")), lines


def test_the_command_alone_still_prints_the_help(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import suscli.cli as cli

    monkeypatch.setattr(sys, "argv", ["suscli"])
    with pytest.raises(SystemExit) as stop:
        cli._run()
    out = capsys.readouterr()
    assert stop.value.code == 2 and "Commands" in out.out + out.err and "error:" not in out.out + out.err


@pytest.mark.parametrize(
    "option, value, says",
    [
        ("--lr", "inf", "--lr takes a finite number, got inf"),
        ("--lr", "nan", "--lr takes a finite number, got nan"),
        ("--lr", "-1", "--lr takes a number of at least 1e-12, got -1"),
        ("--max-susceptibility", "nan", "--max-susceptibility takes a finite number, got nan"),
        ("--max-susceptibility", "-inf", "--max-susceptibility takes a finite number, got -inf"),
        ("--min-train-acc", "nan", "--min-train-acc takes a finite number, got nan"),
        ("--min-train-acc", "1.5", "--min-train-acc takes a number from 0 to 1, got 1.5"),
        ("--batch-size", "0", "--batch-size takes a whole number of at least 1, got 0"),
        ("--num-classes", "0", "--num-classes takes a whole number of at least 1, got 0"),
        ("--seed", str(10**23), f"--seed takes a whole number from 0 to 4294967295, got {10**23}"),
    ],
)
def test_a_number_that_is_not_finite_or_out_of_range_is_one_usage_line(
    option: str, value: str, says: str, ckpt: Path, image_folder: Path, train_folder: Path
) -> None:
    """--lr inf used to give a row without susceptibility and no reason, a nan gate could never fail, and a seed past
    what torch takes ended in an internal error: each is now refused before anything runs, in one line."""
    res = invoke("score", ckpt, "-d", image_folder, "--train-data", train_folder, option, value)
    one_error_line(res, 2, says)
    assert res.stdout == ""


def test_a_mean_on_the_0_255_scale_is_refused_with_the_values_it_meant(ckpt: Path, image_folder: Path) -> None:
    """MMPretrain's configs and OpenCV code write the ImageNet mean as 123.675,116.28,103.53: taken as given against
    pixels scaled to 0-1, it made every image a flat field near -2, and the row's numbers were measured on that."""
    scaled = ("--mean", "123.675,116.28,103.53", "--std", "58.395,57.12,57.375")
    res = invoke("score", ckpt, "-d", image_folder, *scaled)
    one_error_line(res, 2, "--mean 123.675,116.28,103.53 is not on the scale", "--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225")
    assert res.stdout == ""
    one_error_line(invoke("score", ckpt, "-d", image_folder, "--mean=-1,0.5,300", "--std", "1,1,1"), 2, "from 0 to 1")


def test_a_mean_or_std_of_neither_one_nor_three_values_is_refused(ckpt: Path, image_folder: Path) -> None:
    """`--mean 0.1307,0.2 --std 0.3081,0.3` on a grayscale model was averaged to one value without a word, as three
    RGB values are, and measured; on an RGB model it failed only once measuring began. suscli feeds 1 or 3 channels."""
    for given in (("--mean", "0.1307,0.2", "--std", "0.3081"), ("--mean", "0.5", "--std", "0.2,0.2,0.2,0.2")):
        res = invoke("score", ckpt, "-d", image_folder, *given)
        one_error_line(res, 2, f"{given[0] if ',' in given[1] else given[2]} has", "values: give 1 (every channel) or 3 (R, G, B)")
        assert res.stdout == ""
    with pytest.raises(UsageError, match=re.escape("mean has 2 values: give 1 (every channel) or 3 (R, G, B)")):
        suscli.Settings(mean=(0.1, 0.2), std=(0.3,))


def test_a_checkpoints_mean_on_the_0_255_scale_is_its_error_unless_an_option_overrides_it(tmp_path: Path, image_folder: Path) -> None:
    """The same mean in a file's metadata was subtracted from 0-1 pixels without a word; refusing the file when read
    made --mean, which beats the metadata, useless. It is refused where it would be used, saying what to pass, and
    suscli.save refuses to write it."""
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    path = tmp_path / "m.pt"
    torch.save(tiny_cnn().state_dict(), path)
    fields = {"arch": ARCH, "num_classes": 3, "image_size": 8, "mean": mean, "std": std}
    path.with_name("m.suscli.json").write_text(json.dumps(fields))
    res = invoke("score", path, "-d", image_folder)
    one_error_line(res, 3, "the checkpoint's mean [123.675, 116.28, 103.53] is not on the scale", "--mean 0.485,0.456,0.406")
    assert invoke("score", path, "-d", image_folder, "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225").exit_code == 0
    with pytest.raises(UsageError, match="mean=0.485,0.456,0.406 std=0.229,0.224,0.225"):
        suscli.save(tiny_cnn(), tmp_path / "n.safetensors", arch=ARCH, num_classes=3, mean=mean, std=std)


def test_numeric_options_still_show_their_ranges_in_help() -> None:
    res = invoke("score", "--help", env={"COLUMNS": "200"})
    assert "[x>=1e-12]" in res.stdout and "[0<=x<=1]" in res.stdout and "[x>=1]" in res.stdout, res.stdout


def test_score_help_promises_only_what_score_writes(tmp_path: Path, image_folder: Path) -> None:
    """score's --help said its HTML page held "the plot" and that "the results file always has" the per-image
    predictions: score draws no plot and writes no results file, so a user looked for both in vain."""
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", invoke("score", "--help").stdout).split())
    assert "the plot (rank and track)" in text and "rank and track keep them in their results file" in text, text
    assert "the results file always has them" not in text
    assert "Default: every image" in text  # --samples
    ckpt = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8)
    res = invoke("score", ckpt, "-d", image_folder, "--html", tmp_path / "r.html")
    assert res.exit_code == 0 and "<img" not in (tmp_path / "r.html").read_text(), res.output
    assert not list(tmp_path.glob("*.jsonl"))


def test_image_size_from_the_images_when_nothing_names_it(tmp_path: Path) -> None:
    """A TorchScript model names no input size; images that all share one square size are used as they are."""
    model = tiny_cnn().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated
        torch.jit.save(torch.jit.script(model), tmp_path / "m.pt")
    write_images(tmp_path / "cifar", 16, size=32)
    res = invoke(
        "score",
        tmp_path / "m.pt",
        "-d",
        tmp_path / "cifar",
        "--mean",
        "0.5",
        "--std",
        "0.25",
        "-f",
        "json",
        "--batches",
        "2",
        "--batch-size",
        "8",
    )
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)["results"][0]
    assert row["details"]["preprocess"]["image_size"] == 32
    assert row["notes"] == ["image size 32 taken from the images (all 32x32): nothing names the model's input size"]
    assert row["susceptibility"] == pytest.approx(by_hand(model, tmp_path / "cifar", mean=[0.5], std=[0.25], image_size=32), rel=1e-5)
    write_images(tmp_path / "cifar" / "big", 1, size=40)
    one_error_line(
        invoke("score", tmp_path / "m.pt", "-d", tmp_path / "cifar", "--mean", "0.5", "--std", "0.25"),
        2,
        "the image size is unknown and the images differ in size (32x32, 40x40)",
    )
    write_images(tmp_path / "wide", 2, size=8)
    for p in (tmp_path / "wide").iterdir():
        Image.new("RGB", (12, 8)).save(p)
    line = one_error_line(
        invoke("score", tmp_path / "m.pt", "-d", tmp_path / "wide"), 2, "the images are 12x8 (width x height), not square"
    )
    # was "(pass --image-size, or ...)": which N, and whether the images are squashed or cropped to it, unsaid
    assert "(pass --image-size N, the side the model takes: each image's shorter side is resized to N and its center cropped" in line


def test_an_unknown_image_size_offers_the_presets_only_to_a_model_they_fit(tmp_path: Path) -> None:
    """The presets set CIFAR-10's and ImageNet's RGB statistics: a grayscale model (a first layer of 1 channel) whose
    input size nothing names was offered "--preset cifar10|imagenet" all the same. It is offered --image-size alone;
    an RGB model the presets too."""
    write_images(tmp_path / "images", 2, size=8)
    write_images(tmp_path / "images" / "big", 1, size=12)
    for channels in (1, 3):
        path = tmp_path / f"c{channels}.safetensors"
        suscli.save(
            tiny_cnn(in_channels=channels), path, arch="tests.conftest:tiny_cnn", arch_kwargs={"in_channels": channels}, num_classes=3
        )
        line = one_error_line(
            invoke("score", path, "-d", tmp_path / "images"), 2, "the image size is unknown and the images differ in size"
        )
        assert "(pass --image-size N, the side the model takes: each image's shorter side is resized to N and its center cropped" in line
        assert ("--preset" in line) == (channels == 3), line


def test_a_fully_connected_model_fed_another_size_is_told_the_size_its_first_layer_takes(tmp_path: Path) -> None:
    """An MLP trained on 28x28 grayscale images (a first layer of 784 inputs), scored on 32x32 images, was fed them
    as RGB and told "mat1 and mat2 shapes cannot be multiplied (2x3072 and 784x256) (check --arch, --image-size and
    --preset ...)": the first layer says the size, 1 channel of 28x28."""
    torch.save(suscli.models.mlp(num_classes=3, width=4, in_channels=1, image_size=8).state_dict(), tmp_path / "m.pt")
    write_images(tmp_path / "images", 4, size=12, mode="L")
    res = invoke(
        "score",
        tmp_path / "m.pt",
        "-d",
        tmp_path / "images",
        "--arch",
        "suscli.models:mlp",
        "--arch-kwargs",
        "width=4,in_channels=1,image_size=8",
    )
    line = one_error_line(res, 3, "the model failed on 12x12 images")
    assert line.endswith("(its first layer takes 64 inputs, 1 channel of 8x8: pass --image-size 8)")

    class Patches(nn.Module):  # a first Linear fed a patch, not the image: its inputs say nothing of the image size
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(48, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.proj(x[:, :, :4, :4].flatten(1))

    assert suscli.run.model.flat_input(Patches(), 12) is None
    assert suscli.run.model.flat_input(suscli.models.mlp(in_channels=1, image_size=8), 12) == (1, 8)


def test_options_that_override_the_checkpoint_say_so(tmp_path: Path, image_folder: Path) -> None:
    path = suscli.save(
        tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8, mean=[0.5, 0.4, 0.3], std=[0.2, 0.2, 0.2]
    )

    def notes(*options: str) -> list[str]:
        res = invoke("score", path, "-d", image_folder, "-f", "json", "--batches", "1", "--batch-size", "8", *options)
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)["results"][0]["notes"]

    assert notes() == []
    assert notes("--mean", "0.5,0.4,0.3", "--std", "0.2,0.2,0.2") == []  # the same values: nothing to say
    assert notes("--mean", "0.5", "--std", "0.25", "--image-size", "10") == [
        "--mean/--std used: the checkpoint says mean 0.5,0.4,0.3, std 0.2,0.2,0.2",
        "--image-size 10 used: the checkpoint says 8",
    ]
    assert notes("--preset", "cifar10") == ["--preset cifar10 used: the checkpoint says mean 0.5,0.4,0.3, std 0.2,0.2,0.2"]


def test_a_torchscript_model_that_does_not_fit_the_images_is_one_line_naming_the_error(tmp_path: Path) -> None:
    """A TorchScript model's error message starts with its interpreter's traceback ("The following operation failed
    in the TorchScript interpreter.", which was all the line said) and ends with the error: the line names the error,
    as for an eager model, with the options to check. (Some of its errors are torch.jit.Error, no RuntimeError.)"""
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3)).eval()  # fits 8x8 images only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated
        torch.jit.save(torch.jit.script(model), tmp_path / "m.pt")
    write_images(tmp_path / "imgs", 4, size=16)
    res = invoke("score", tmp_path / "m.pt", "-d", tmp_path / "imgs", "--preset", "cifar10", "--image-size", "16", "--batches", "1")
    one_error_line(res, 3, "the model failed on 16x16 images with 3 channels", "mat1 and mat2 shapes cannot be multiplied")
    assert "check --arch, --image-size and --preset" in res.stderr and "internal error" not in res.stderr


def wide(named: bool = True) -> nn.Module:
    """A model of 8x16 inputs only (height x width); `named`: its config names that shape, as a Hugging Face ViT's
    `config.image_size` [8, 16] does."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 16, 3))
    if named:
        model.config = SimpleNamespace(image_size=[8, 16])
    return model


def test_a_model_of_inputs_that_are_not_square_is_told_suscli_feeds_squares_only(tmp_path: Path, image_folder: Path) -> None:
    """A model that needs 8x16 inputs failed on 8x8 images with "check --arch, --image-size and --preset", an option
    that cannot help: --image-size is one side. The line says suscli feeds square images only, and the shape the
    model's config names where it names one; Settings(image_size=(8, 16)) says so too."""
    for named in (True, False):
        suscli.save(
            wide(named), tmp_path / f"{named}.safetensors", arch="tests.test_cli_score:wide", arch_kwargs={"named": named}, image_size=8
        )
    res = invoke("score", tmp_path / "True.safetensors", "-d", image_folder, "--batches", "1")
    line = one_error_line(res, 3, "the model failed on 8x8 images with 3 channels")
    assert "its config names 8x16 inputs (height x width), and suscli feeds square images only: it cannot be measured" in line
    res = invoke("score", tmp_path / "False.safetensors", "-d", image_folder, "--batches", "1")
    line = one_error_line(res, 3, "the model failed on 8x8 images with 3 channels")
    assert "check --arch, --image-size and --preset; suscli feeds square images only" in line
    with pytest.raises(UsageError, match=r"image_size takes the side of a square \(suscli feeds square images only\), got \(8, 16\)"):
        Settings(image_size=(8, 16))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("64x32", "--image-size takes the side of a square (32, or 32x32): suscli feeds square images only, got 64x32 (64 high, 32 wide)"),
        ("64X32", "--image-size takes the side of a square (32, or 32x32): suscli feeds square images only, got 64X32 (64 high, 32 wide)"),
        ("64,32", "--image-size takes a whole number of at least 1, the side of a square (32, or 32x32), got '64,32'"),
        ("0", "--image-size takes a whole number of at least 1, the side of a square (32, or 32x32), got '0'"),
        ("0x0", "--image-size takes a whole number of at least 1, the side of a square (32, or 32x32), got '0x0'"),
        # a digit to str.isdigit that int() refuses ended in "internal error: ValueError"
        ("\u00b2", "--image-size takes a whole number of at least 1, the side of a square (32, or 32x32), got '\u00b2'"),
        ("32x\u00b2", "--image-size takes a whole number of at least 1, the side of a square (32, or 32x32), got '32x\u00b2'"),
    ],
)
def test_an_image_size_of_height_and_width_apart_is_told_suscli_feeds_squares_only(image_folder: Path, given: str, said: str) -> None:
    """`--image-size 64x32`, the form of a model trained on inputs 64 high and 32 wide, was "Input should be a valid
    integer": it now says what the option takes, one side, and that suscli feeds square images only."""
    res = invoke("score", "no-such-model.pt", "-d", image_folder, "--image-size", given)
    one_error_line(res, 2, f"error: {said}")


def test_an_image_size_of_a_square_written_as_height_and_width_is_its_side(tmp_path: Path, image_folder: Path) -> None:
    """`--image-size 8x8` is the square of side 8: the same row as `--image-size 8`."""
    suscli.save(tiny_cnn(3), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    rows = []
    for given in ("8x8", "8"):
        res = invoke("score", tmp_path / "m.safetensors", "-d", image_folder, "--image-size", given, "-f", "json", "--batches", "1")
        assert res.exit_code == 0, res.output
        rows.append(json.loads(res.stdout)["results"][0]["details"]["preprocess"])
    assert rows[0] == rows[1] and rows[0]["image_size"] == 8


def test_a_model_with_more_classes_than_the_training_folders_says_how_they_were_numbered(tmp_path, image_folder, train_folder):
    """A 5-class model on 3 class folders was scored without a word: the folders are numbered 0-2 among themselves,
    which gives the model's training accuracy only if they are its first 3 classes."""
    for classes in (5, 3):
        suscli.save(tiny_cnn(classes), tmp_path / f"m{classes}.safetensors", arch=ARCH, image_size=8)
    rows = {}
    for classes in (5, 3):
        res = invoke(
            "score", tmp_path / f"m{classes}.safetensors", "-d", image_folder, "--train-data", train_folder, "-f", "json", "--batches", "1"
        )
        assert res.exit_code == 0, res.output
        rows[classes] = json.loads(res.stdout)["results"][0]["notes"]
    assert (
        "the model has 5 classes but the training set's 3 class folders are numbered 0-2 among themselves: if they are not "
        "the model's first 3 classes, its training accuracy is wrong (pass a path,label CSV of the model's class ids)"
    ) in rows[5]
    assert not any("numbered 0-" in n for n in rows[3])


def test_arch_kwargs_without_arch_is_a_usage_error(tmp_path, image_folder):
    """It was ignored without a word: the architecture a checkpoint names is built with its own kwargs."""
    suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    one_error_line(
        invoke("score", tmp_path / "m.safetensors", "-d", image_folder, "--arch-kwargs", "num_classes=5"),
        2,
        "--arch-kwargs goes with --arch",
    )


class SizeChecked(nn.Module):
    """A model that checks its input size, as timm's and torchvision's ViTs (torch._assert) and transformers' do."""

    def __init__(self, error: type[Exception] = AssertionError) -> None:
        super().__init__()
        self.error = error
        self.head = tiny_cnn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 8:
            raise self.error(f"Input height ({x.shape[-1]}) doesn't match model (8).")
        return self.head(x)


def size_checked(error: str = "AssertionError") -> nn.Module:
    return SizeChecked({"AssertionError": AssertionError, "ValueError": ValueError}[error])


@pytest.mark.parametrize("error", ["AssertionError", "ValueError"])
def test_a_model_that_refuses_the_image_size_is_its_rows_error(tmp_path, image_folder, error):
    """A timm ViT scored at 32 (AssertionError) or a transformers one (ValueError) was an internal error, and ended
    rank for the whole pool."""
    spec = "tests.test_cli_score:size_checked"
    suscli.save(size_checked(error), tmp_path / "pool" / "vit.safetensors", arch=spec, arch_kwargs={"error": error}, image_size=8)
    suscli.save(tiny_cnn(), tmp_path / "pool" / "cnn.safetensors", arch=ARCH, image_size=8)
    res = invoke("score", tmp_path / "pool" / "vit.safetensors", "-d", image_folder, "--image-size", "16", "--batches", "1")
    one_error_line(res, 3, "the model failed on 16x16 images with 3 channels: Input height (16) doesn't match model (8).")
    res = invoke("rank", tmp_path / "pool", "-d", image_folder, "--image-size", "16", "--batches", "1", "-f", "json")
    assert res.exit_code == 3 and "internal error" not in res.output
    assert {r["name"]: r["status"] for r in json.loads(res.stdout)["results"]} == {"cnn": "ok", "vit": "error"}


class FixedPixel(nn.Module):
    """A model that reads one fixed pixel position, as one trained at a larger size may: IndexError on smaller images."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x[:, :, 11, 11])


def fixed_pixel() -> nn.Module:
    return FixedPixel()


def test_a_model_that_indexes_past_the_images_is_its_rows_error(tmp_path, image_folder) -> None:
    """An IndexError from the model's forward was an internal error, and ended rank for the whole pool."""
    suscli.save(fixed_pixel(), tmp_path / "pool" / "pixel.safetensors", arch="tests.test_cli_score:fixed_pixel", image_size=8)
    suscli.save(tiny_cnn(), tmp_path / "pool" / "cnn.safetensors", arch=ARCH, image_size=8)
    res = invoke("score", tmp_path / "pool" / "pixel.safetensors", "-d", image_folder, "--batches", "1")
    one_error_line(res, 3, "the model failed on 8x8 images with 3 channels: index 11 is out of bounds")
    res = invoke("rank", tmp_path / "pool", "-d", image_folder, "--batches", "1", "-f", "json")
    assert res.exit_code == 3 and "internal error" not in res.output
    assert {r["name"]: r["status"] for r in json.loads(res.stdout)["results"]} == {"cnn": "ok", "pixel": "error"}


class HeadFirst(nn.Module):
    """A grayscale CNN whose classifier is declared before its convolutions, as some code declares it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 3)
        self.features = tiny_cnn(16, in_channels=1)[:-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.pad(self.features(x), (0, 48)))


def head_first() -> nn.Module:
    return HeadFirst()


def test_a_grayscale_model_declaring_its_classifier_first_is_fed_grayscale(tmp_path: Path, image_folder: Path) -> None:
    """Its first layer was taken from the declared order: the Linear(64, 3), an MLP's input layer of no whole number of
    16x16 channels, so it was fed RGB images, "the model failed on 16x16 images with 3 channels: ... expected
    input[2, 3, 16, 16] to have 1 channels" [3]. The layer a forward reaches first decides, alone and in a pool
    measured together."""
    for name in ("a", "b"):
        suscli.save(head_first(), tmp_path / "pool" / f"{name}.safetensors", arch="tests.test_cli_score:head_first", image_size=16)
    res = invoke("score", tmp_path / "pool" / "a.safetensors", "-d", image_folder, "--batches", "1", "-f", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["results"][0]["details"]["channels"] == 1
    res = invoke("rank", tmp_path / "pool", "-d", image_folder, "--batches", "1", "-f", "json", "--model-batch", "2")
    assert [r["details"]["channels"] for r in json.loads(res.stdout)["results"]] == [1, 1], res.output


def test_a_model_of_four_input_channels_is_refused_naming_its_file(tmp_path: Path, image_folder: Path) -> None:
    """An RGBA (or RGB plus depth) network: the line said "the model's first layer takes 4 channels" without saying
    which model, alone and in a pool's row, where the row's model was the one clue."""
    arch, kwargs = "suscli.models:bn_cnn", {"num_classes": 3, "width": 4, "in_channels": 4}
    path = suscli.save(suscli.models.bn_cnn(**kwargs), tmp_path / "pool" / "rgba.safetensors", arch=arch, arch_kwargs=kwargs, image_size=8)
    suscli.save(
        suscli.models.bn_cnn(3, width=4),
        tmp_path / "pool" / "rgb.safetensors",
        arch=arch,
        arch_kwargs={"num_classes": 3, "width": 4},
        image_size=8,
    )
    res = invoke("score", path, "-d", image_folder, "--batches", "1")
    one_error_line(res, 3, f"{path}: the model's first layer takes 4 channels", "1 (grayscale) or 3 (RGB)")
    res = invoke("rank", tmp_path / "pool", "-d", image_folder, "--batches", "1", "-f", "json", "--model-batch", "2")
    rows = {r["name"]: r for r in json.loads(res.stdout)["results"]}
    assert rows["rgb"]["status"] == "ok" and rows["rgba"]["error"].startswith(f"{path}: the model's first layer takes 4 channels")


def test_a_num_classes_the_models_outputs_contradict_is_noted(tmp_path: Path, image_folder: Path) -> None:
    """A whole model's outputs decide the random labels' classes, whatever --num-classes says; a count they
    contradict was taken silently as the model's, and the notes and held-out numbering that read it were wrong."""
    torch.save(tiny_cnn(3), tmp_path / "whole.pt")
    common = ("score", tmp_path / "whole.pt", "-d", image_folder, "--trust-checkpoint", "--image-size", "8", "-f", "json", "--batches", "2")
    row = json.loads(invoke(*common, "--num-classes", "5").stdout)["results"][0]
    assert row["details"]["num_classes"] == 3
    assert "the model outputs 3 classes, where --num-classes or its file said 5: random labels were drawn over its 3" in row["notes"]
    assert not any("outputs" in n for n in json.loads(invoke(*common).stdout)["results"][0]["notes"])
    # the training set's 3 class folders are the model's 3 classes: the notes read the classes it outputs, not the 5
    # said ("the model has 5 classes but the training set's 3 class folders are numbered 0-2" beside "outputs 3")
    for c in range(3):
        write_images(tmp_path / "train" / f"class_{c}", 4, seed=20 + c)
    row = json.loads(invoke(*common, "--num-classes", "5", "--train-data", tmp_path / "train").stdout)["results"][0]
    assert "the model outputs 3 classes, where --num-classes or its file said 5: random labels were drawn over its 3" in row["notes"]
    assert not any("the model has 5 classes" in n for n in row["notes"]), row["notes"]
    torch.save(tiny_cnn(4), tmp_path / "whole.pt")  # 4 outputs, 3 folders: the note stays, with the count measured
    four = json.loads(invoke(*common, "--num-classes", "5", "--train-data", tmp_path / "train").stdout)["results"][0]
    assert any("the model has 4 classes but the training set's 3 class folders are numbered 0-2" in n for n in four["notes"]), four["notes"]


class FunctionalDropout(nn.Module):
    """tiny_cnn's layers with a functional dropout in forward: always on (`always`, F.dropout's default training=True)
    or in training mode only (training=self.training), neither of which a dropout module's mode switches off."""

    def __init__(self, p: float, always: bool) -> None:
        super().__init__()
        self.net, self.p, self.always = tiny_cnn(), p, always

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.net(x), self.p, training=self.always or self.training)


def functional_dropout(p: float = 0.5, always: bool = True) -> nn.Module:
    return FunctionalDropout(p, always)


@pytest.mark.parametrize(
    "p, always, note",
    [(0.5, True, "differ between two eval-mode passes"), (0.5, False, "random in training mode"), (0.0, True, None)],
)
def test_a_forward_random_where_dropout_is_off_is_noted(
    tmp_path: Path, image_folder: Path, p: float, always: bool, note: str | None
) -> None:
    """A forward calling F.dropout(x, p) kept dropping units in eval mode: its predictions and susceptibility were of a
    randomly thinned network, the same on every run since the measurement is seeded, and nothing said so. The row
    says so, in score and in rank's models measured together; a model without random ops gets no note."""
    spec, kwargs = "tests.test_cli_score:functional_dropout", {"p": p, "always": always}
    for name in ("a", "b"):
        suscli.save(functional_dropout(p, always), tmp_path / "pool" / f"{name}.safetensors", arch=spec, arch_kwargs=kwargs, image_size=8)
    res = invoke("score", tmp_path / "pool" / "a.safetensors", "-d", image_folder, "--batches", "2", "-f", "json")
    ranked = invoke("rank", tmp_path / "pool", "-d", image_folder, "--batches", "2", "--model-batch", "2", "-f", "json")
    for rows in (json.loads(res.stdout)["results"], json.loads(ranked.stdout)["results"]):
        for row in rows:
            found = [n for n in row["notes"] if "thinned" in n]
            assert row["status"] == "ok" and len(found) == (note is not None) and all(note in n for n in found)


@pytest.mark.parametrize("model_batch", ["1", "6"])
def test_a_pools_networks_are_each_checked_for_a_random_forward_once(
    tmp_path: Path, image_folder: Path, monkeypatch, model_batch: str
) -> None:
    """A pool of three networks, two models each: one plain, two of one class whose settings make their forwards
    random in eval mode or in training mode only. Each network's forward is checked once (it was once per model),
    and every model's row carries its own network's note."""
    from tests.test_track import counted_forward_checks

    spec, notes = "tests.test_cli_score:functional_dropout", {}
    for i in range(2):
        for name, kwargs, note in (
            ("plain", None, None),
            ("eval", {"always": True}, "differ"),
            ("train", {"always": False}, "training mode"),
        ):
            torch.manual_seed(i)
            path = tmp_path / "pool" / f"{name}{i}.safetensors"
            if kwargs is None:
                suscli.save(tiny_cnn(), path, arch="tests.conftest:tiny_cnn", image_size=8)
            else:
                suscli.save(functional_dropout(**kwargs), path, arch=spec, arch_kwargs=kwargs, image_size=8)
            notes[path.stem] = note
    calls = counted_forward_checks(monkeypatch)
    res = invoke("rank", tmp_path / "pool", "-d", image_folder, "--batches", "2", "--model-batch", model_batch, "-f", "json")
    assert res.exit_code == 0, res.output
    assert len(calls) == 2 + 1 + 2  # plain: eval and training pairs; eval-random: its eval pair says it; train-random: both
    for row in json.loads(res.stdout)["results"]:
        found = [n for n in row["notes"] if "thinned" in n]
        note = notes[row["name"]]
        assert row["status"] == "ok" and len(found) == (note is not None) and all(note in n for n in found), row


class Jittered(nn.Module):
    """tiny_cnn whose logits move by 1e-6 of their scale from pass to pass: the rounding of a GPU's nondeterministic
    sums, which is no random network."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_cnn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out * (1 + 1e-6 * torch.randn_like(out))


def test_a_forward_that_varies_by_rounding_only_is_not_noted() -> None:
    model, x = Jittered(), torch.randn(20, 3, 8, 8)
    assert random_forward(model, x, transform=lambda b: b, device=torch.device("cpu")) is None
    assert random_forward(functional_dropout(0.1), x, transform=lambda b: b, device=torch.device("cpu")) is not None


class SelfCentering(torch.nn.Module):
    """A deterministic network whose train-mode output subtracts a running center it updates in the same forward
    (by assignment, as DINO's teacher centers its outputs): a second pass of the same batch sees the center the
    first left."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_cnn()
        self.register_buffer("center", torch.zeros(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.training:
            self.center = 0.5 * self.center + 0.5 * out.detach().mean(0)
        return out - self.center


def test_a_forward_that_updates_a_buffer_it_reads_is_not_called_random() -> None:
    """The check compared two train-mode passes of one batch without putting the buffers back between them, so the
    second read the center the first had moved and the model was noted "random in training mode"."""
    torch.manual_seed(0)
    model, x = SelfCentering(), torch.randn(20, 3, 8, 8)
    assert random_forward(model, x, transform=lambda b: b, device=torch.device("cpu")) is None
    assert torch.equal(model.center, torch.zeros(3))


def test_a_long_stage_logged_without_a_terminal_says_it_is_at_work(ckpt: Path, image_folder: Path, monkeypatch) -> None:
    """Where stderr is a log, only the stages that count models or training images said a line, so a large model's
    susceptibility batches and predictions on a CPU (117 s for a ResNet-50 at 224 px) passed in silence; now a line
    on the stage at work wherever LOG_AFTER_SECONDS pass without one, and stdout stays the report."""
    import suscli.cli.console

    monkeypatch.setattr(suscli.cli.console, "LOG_AFTER_SECONDS", 0)
    res = invoke("score", ckpt, "-d", image_folder, "-f", "json")
    assert res.exit_code == 0 and json.loads(res.stdout)["results"][0]["status"] == "ok", res.output
    said = [line for line in res.stderr.splitlines() if line.startswith("susceptibility: ")]
    assert said and all(re.fullmatch(r"susceptibility: \d+/4 done, \d:\d\d:\d\d into the run", line) for line in said), res.stderr


@pytest.fixture
def predicted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of images of each call of the unlabeled images' prediction pass (suscli.measure.predictions.predict)."""
    calls: list[int] = []
    real = suscli.run.model.predict

    def counted(model: nn.Module, inputs: torch.Tensor, **kwargs: object):  # type: ignore[no-untyped-def]
        calls.append(len(inputs))
        return real(model, inputs, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(suscli.run.model, "predict", counted)
    return calls


def _numbers(row: dict) -> dict:
    """A JSON report's row without its run time and its per-image records: every number and word it reports."""
    per_image = suscli.views.formats.PER_IMAGE
    return {**{k: v for k, v in row.items() if k != "seconds"}, "details": {k: v for k, v in row["details"].items() if k not in per_image}}


@pytest.mark.parametrize("train_samples", ["all", "auto"])
def test_score_predicts_the_unlabeled_images_only_for_per_image(
    ckpt: Path, tmp_path: Path, predicted: list[int], monkeypatch: pytest.MonkeyPatch, train_samples: str
) -> None:
    """Nothing that judges one checkpoint alone reads its top classes on the unlabeled images (the agreement rule, the
    fit cost and the noise reading's voters are a pool's), yet score made them on every image: an eval pass that took
    36 of 79 s for a ResNet-18 on 512 images at 224 px (docs/performance.md). Only --per-image shows them, so only
    --per-image makes them; the row's numbers, verdict and notes are those of before, on the full training pass and
    on the adaptive sample that grows."""
    monkeypatch.setattr(suscli.measure.sampling, "START", 8)  # 45 training images: a sample of 8, grown while the gate changes
    unlabeled = tmp_path / "unlabeled"
    write_images(unlabeled, 40, seed=7)  # the default batch of 32 fits: the verdict's fixed cuts apply
    for c in range(3):
        write_images(tmp_path / "train" / f"class_{c}", 15, seed=20 + c)
    args = ("score", ckpt, "-d", unlabeled, "--train-data", tmp_path / "train", "--train-samples", train_samples, "-f", "json")
    lean = invoke(*args, "--min-train-acc", "0.2")
    assert lean.exit_code in (0, 1), lean.output
    assert predicted == []
    full = invoke(*args, "--min-train-acc", "0.2", "--per-image")
    assert full.exit_code == lean.exit_code, full.output
    assert predicted == [40]
    lean_doc, full_doc = json.loads(lean.stdout), json.loads(full.stdout)
    lean_row, full_row = lean_doc["results"][0], full_doc["results"][0]
    assert lean_doc["train_sample"] == full_doc["train_sample"] and (
        train_samples == "all" or len(lean_doc["train_sample"]["sizes_tried"]) > 1
    )
    assert full_row["details"]["predictions"]["n"] == 40 and full_row["details"]["train_predictions"]["n"] == lean_row["train_n"]
    assert lean_row["verdict"] is not None and lean_row["susceptibility"] is not None and lean_row["train_acc"] is not None
    assert _numbers(lean_row) == _numbers(full_row)


def test_the_api_keeps_the_predictions_unless_told_not_to(ckpt: Path, image_folder: Path, predicted: list[int]) -> None:
    """suscli.score's rows held the unlabeled images' predictions, which a script may read or render with per_image:
    they stay by default, and predictions=False leaves them out (with their pass) and nothing else."""
    settings = Settings(susceptibility=SusceptibilityConfig(batches=2, batch_size=8))
    kept = score(ckpt, image_folder, settings=settings, inputs=Inputs(device="cpu")).rows[0]
    assert predicted == [24] and kept.details["predictions"]["n"] == 24
    lean = score(ckpt, image_folder, settings=settings, inputs=Inputs(device="cpu"), predictions=False).rows[0]
    assert predicted == [24] and "predictions" not in lean.details
    assert _numbers(lean.as_dict()) == _numbers(kept.as_dict())


def test_rank_still_predicts_every_model_and_keeps_the_predictions(
    tmp_path: Path, image_folder: Path, train_folder: Path, predicted: list[int]
) -> None:
    """rank's decisions read the predictions: every model is predicted, and its results file row keeps them without
    --per-image, whatever score now leaves out."""
    pool = tmp_path / "pool"
    for i in range(3):
        torch.manual_seed(i)
        suscli.save(tiny_cnn(), pool / f"m{i}.safetensors", arch=ARCH, num_classes=3, image_size=8)
    # cli_json runs on the CPU, whose default --model-batch 1 predicts through suscli.run.model (CUDA's 8 through the batched path)
    cli_json("rank", pool, "-d", image_folder, "--train-data", train_folder)
    assert predicted == [24, 24, 24]
    stored = [json.loads(line)["result"] for line in (pool / "suscli-results.jsonl").read_text().splitlines()]
    assert len(stored) == 3 and all(r["details"]["predictions"]["n"] == 24 for r in stored)


def test_score_names_a_checkpoint_as_rank_names_it_in_every_view(image_folder: Path, tmp_path: Path) -> None:
    """One checkpoint has one name: `score m.safetensors` called it `m.safetensors` where `rank` called the same file
    `m`, so the score's row and JUnit testcase matched none of the pool's by name."""
    pool = tmp_path / "pool"
    pool.mkdir()
    suscli.save(tiny_cnn(), pool / "m.safetensors", arch=ARCH, num_classes=3, image_size=8)
    torch.save(tiny_cnn().state_dict(), pool / "timm-style.pth.tar")  # a suffix of two dots
    arch = ("--arch", ARCH, "--image-size", "8")
    ranked = {r["path"]: r["name"] for r in cli_json("rank", pool, "-d", image_folder, *arch, "--results", tmp_path / "r.jsonl")["results"]}
    assert sorted(ranked.values()) == ["m", "timm-style"]
    for path, name in ranked.items():
        assert cli_json("score", path, "-d", image_folder, *arch)["results"][0]["name"] == name
        for fmt, shown in (("csv", f"\n{name},"), ("markdown", f"| {name} |"), ("table", f"│ {name} "), ("junit", f'name="{name}"')):
            res = invoke("score", path, "-d", image_folder, *arch, "-f", fmt)
            assert res.exit_code == 0 and shown in res.stdout, res.stdout
    broken = pool / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    res = invoke("score", broken, "-d", image_folder, "-f", "json")
    assert res.exit_code == 3 and json.loads(res.stdout)["results"][0]["name"] == "broken", res.output


def test_output_dash_is_stdout_and_a_dash_for_another_report_is_refused(
    ckpt: Path, image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-o -` is stdout, as `-` is to most tools that take an output file: it wrote a file named `-` in the working
    directory, so `suscli score ... -f json -o - | jq` read nothing. `--html -` (or --junit, --plot) cannot share
    stdout with the report: refused before measuring, where it too wrote a file named `-`."""
    monkeypatch.chdir(tmp_path)
    res = invoke("score", ckpt, "-d", image_folder, "-f", "json", "-o", "-")
    assert res.exit_code == 0 and json.loads(res.stdout)["results"][0]["name"] == "m", res.output
    assert "written" not in res.stderr and not (tmp_path / "-").exists()
    for option in ("--html", "--junit"):
        one_error_line(invoke("score", ckpt, "-d", image_folder, option, "-"), 2, f"{option} -", "stdout")
        assert not (tmp_path / "-").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_report_to_a_device_or_pipe_is_written_into_it_not_over_it(ckpt: Path, image_folder: Path, tmp_path: Path) -> None:
    """`-o /dev/null` (a CI job that keeps only --junit) and a named pipe: the report was written to a temporary file
    renamed over the path, which as root replaced /dev/null itself with a regular file, and otherwise failed on
    "the folder /dev cannot be written" (exit 3). A path that is neither a file nor a folder is now written into."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    read: list[bytes] = []
    reader = threading.Thread(target=lambda: read.append(pipe.read_bytes()), daemon=True)
    reader.start()
    res = invoke("score", ckpt, "-d", image_folder, "-f", "json", "-o", pipe, "--junit", tmp_path / "j.xml")
    reader.join(timeout=20)
    assert res.exit_code == 0 and json.loads(read[0])["results"][0]["name"] == "m", res.output
    assert stat.S_ISFIFO(pipe.stat().st_mode) and (tmp_path / "j.xml").is_file()
    assert not list(tmp_path.glob(".pipe.*"))
    res = invoke("score", ckpt, "-d", image_folder, "-f", "json", "-o", os.devnull)
    assert res.exit_code == 0 and not Path(os.devnull).is_file(), res.output


@pytest.mark.parametrize("command", ["score", "rank", "track"])
def test_the_help_says_output_dash_is_stdout(command: str) -> None:
    """--help named --output a file "instead of stdout" and said nothing of `-o -`, which the docs give for a pipe."""
    res = invoke(command, "--help")
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", res.stdout).split())
    assert res.exit_code == 0 and "instead of stdout; - is stdout." in words, words


def brightness(num_classes: int = 2) -> nn.Module:
    """Class 0 for bright images, 1 for dark ones, by the mean pixel: the bias says where inputs are centred."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, num_classes))


def test_a_model_trained_on_normalized_images_is_told_which_normalization_its_labels_point_to(tmp_path: Path) -> None:
    """With no mean and std known, a model trained on normalized images was measured on [0, 1] pixels and read near
    chance, and the note said only "pixels scaled to [0, 1]" (the public CIFAR ResNet-20 read 26% of its training
    labels so). With labels given, the note now names the common normalization under which it predicts clearly more
    of them, and the options to pass; a model that expects [0, 1] pixels gets no such word."""
    for label, value in (("bright", 200), ("dark", 50)):
        folder = tmp_path / "train" / label
        folder.mkdir(parents=True)
        for i in range(30):
            pixels = torch.full((8, 8, 3), value + (i % 5), dtype=torch.uint8)
            Image.fromarray(pixels.numpy()).save(folder / f"{i}.png")
    args = ["-d", tmp_path / "train", "--train-data", tmp_path / "train", "--batches", "2", "--batch-size", "8", "-f", "json"]
    notes = {}
    for name, centre in (("normalized", 0.0), ("unit", 0.5)):
        model = brightness()
        with torch.no_grad():
            model[-1].weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]) / 3)
            model[-1].bias.copy_(torch.tensor([-centre, centre]))
        torch.save(model.state_dict(), tmp_path / f"{name}.pt")
        row = cli_json("score", tmp_path / f"{name}.pt", "--arch", "tests.test_cli_score:brightness", *args)["results"][0]
        notes[name] = next(n for n in row["notes"] if n.startswith("no normalization known"))
        assert row["train_acc"] == (0.5 if name == "normalized" else 1.0)
        # measured on inputs unlike its training's, it gets no word on what it memorized
        assert (
            (row["verdict"], row["verdict_why"]) == ("unclear", MISMEASURED) if name == "normalized" else row["verdict_why"] != MISMEASURED
        )
    assert notes["unit"] == NO_NORMALIZATION
    hint = notes["normalized"].removeprefix(NO_NORMALIZATION + "; ")
    assert re.fullmatch(
        r"with ImageNet's mean and std it predicts 60 of 60 training images as labelled, against 30 as measured "
        r"\(CIFAR-10's mean and std: 60; mean and std 0\.5 \(pixels in \[-1, 1\]\): 60; ImageNet's mean and std, the channels "
        r"reversed: 60; CIFAR-10's mean and std, the channels reversed: 60; mean and std 0\.5 \(pixels in \[-1, 1\]\), the channels "
        r"reversed: 60, which these images do not tell apart\): "  # a mean of the channels reads them alike in either order
        r"if it was trained on normalized images, pass the mean and std it was trained with "
        r"\(--mean 0\.485,0\.456,0\.406 --std 0\.229,0\.224,0\.225 for ImageNet's mean and std\)",
        hint,
    ), hint
    normalized = ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"]
    row = cli_json("score", tmp_path / "normalized.pt", "--arch", "tests.test_cli_score:brightness", *args, *normalized)["results"][0]
    assert row["train_acc"] == 1.0 and not any("normalization" in n for n in row["notes"])
    # in a pool, the choice says whose numbers read inputs unlike their training's
    pool = tmp_path / "pool"
    pool.mkdir()
    for name in ("normalized", "unit"):
        (tmp_path / f"{name}.pt").rename(pool / f"{name}.pt")
    doc = cli_json("rank", pool, "--arch", "tests.test_cli_score:brightness", *args)
    assert doc["recommendation"].endswith(
        "; the labels of 1 of the 2 models (normalized) point to another input normalization, channel order, size or crop than the one measured, so "
        "their numbers are likely of inputs unlike their training's: they are ranked after the models counted, left out of the pool's thresholds, consensus and "
        "choice; rank them again as their notes say"
    ), doc["recommendation"]
    # left out of the thresholds, it leaves one model counted: no regions, and the model fed as trained comes first
    assert [r["name"] for r in doc["results"]] == ["unit", "normalized"] and doc["thresholds"] is None
    # a gate on that pool fails as not judged, saying why, rather than judging by the misfed model's numbers (it
    # judged both models before, by a threshold the misfed one set)
    res = invoke(
        "rank", pool, "--arch", "tests.test_cli_score:brightness", *args[:-2], "--fail-on", "memorized", "--results", tmp_path / "r.jsonl"
    )
    assert res.exit_code == 1, res.output  # the gate failed; every input was read
    assert (
        "--fail-on memorized cannot be judged: the labels of 1 of the 2 models point to other inputs than measured (left out), and regions need 2+"
        in res.stderr
    ), res.stderr


def test_a_model_trained_on_bgr_images_is_told_its_labels_point_to_the_other_channel_order(tmp_path: Path) -> None:
    """A plain state dict of a model trained on images read as OpenCV reads them (BGR) was fed RGB, since nothing
    recorded its channel order: it read its training labels worse than chance, and its row said nothing of why. With
    labels given, the note now says that the reversed order makes it predict clearly more of them and how to record
    it, and the verdict is unclear as for another normalization; a model trained on RGB gets no such word."""
    for label, colour in (("blue", (50, 60, 200)), ("red", (200, 60, 50))):
        folder = tmp_path / "train" / label
        folder.mkdir(parents=True)
        for i in range(30):
            pixels = torch.tensor(colour, dtype=torch.uint8).add(i % 5).expand(8, 8, 3).contiguous()
            Image.fromarray(pixels.numpy()).save(folder / f"{i}.png")
    args = ["-d", tmp_path / "train", "--train-data", tmp_path / "train", "--batches", "2", "--batch-size", "8", "-f", "json"]
    rows = {}
    for name, first in (("rgb", 1.0), ("bgr", -1.0)):
        model = brightness()  # class 0 (blue) where the third channel outweighs the first, in the order it was trained on
        with torch.no_grad():
            model[-1].weight.copy_(torch.tensor([[-first, 0.0, first], [first, 0.0, -first]]))
            model[-1].bias.zero_()
        torch.save(model.state_dict(), tmp_path / f"{name}.pt")
        rows[name] = cli_json("score", tmp_path / f"{name}.pt", "--arch", "tests.test_cli_score:brightness", *args)["results"][0]
    assert rows["rgb"]["train_acc"] == 1.0 and rows["bgr"]["train_acc"] == 0.0
    assert not any("channel" in n for n in rows["rgb"]["notes"]) and rows["rgb"]["verdict_why"] != MISMEASURED
    said = [n for n in rows["bgr"]["notes"] if "channel" in n]
    assert said == [
        f"{CHANNELS_UNKNOWN}; with the channels reversed (BGR, as OpenCV reads images) it predicts 60 of 60 training images "
        "as labelled, against 0 as fed (ImageNet's mean and std, the channels reversed: 60; CIFAR-10's mean and std, the "
        "channels reversed: 60; mean and std 0.5 (pixels in [-1, 1]), the channels reversed: 60, which these images do not "
        'tell apart): if it was trained on images read so, add {"channel_order": "BGR"} to bgr.suscli.json beside the checkpoint'
    ], rows["bgr"]["notes"]
    assert (rows["bgr"]["verdict"], rows["bgr"]["verdict_why"]) == ("unclear", MISMEASURED)
    (tmp_path / "bgr.suscli.json").write_text('{"channel_order": "BGR"}')
    row = cli_json("score", tmp_path / "bgr.pt", "--arch", "tests.test_cli_score:brightness", *args)["results"][0]
    assert row["train_acc"] == 1.0 and not any("channel" in n for n in row["notes"]) and row["verdict_why"] != MISMEASURED


def test_a_model_trained_on_normalized_bgr_images_is_told_both_in_one_note(tmp_path: Path) -> None:
    """With neither the normalization nor the channel order known, the normalization probe read every candidate in
    RGB: a model trained on BGR images with mean and std 0.5 was told to pass ImageNet's mean and std (the best RGB
    reading), and under those the reversed order read no better, so nothing said BGR and the advice left it fed the
    wrong order and normalization. Every candidate is now read in both orders, and one note names the combination
    the labels point to, with both fixes; passing them reads it as trained."""
    # the model reads its first channel (blue, as trained) centred at 0.5: blue above 0.5 is class 0 ("high")
    for label, reds, blue in (("high", (178,) * 10 + (77,) * 10, 153), ("low", (77,) * 40, 117)):
        folder = tmp_path / "train" / label
        folder.mkdir(parents=True)
        for i, red in enumerate(reds):
            pixels = torch.tensor((red + i % 3, 100, blue + i % 3), dtype=torch.uint8).expand(8, 8, 3).contiguous()
            Image.fromarray(pixels.numpy()).save(folder / f"{i}.png")
    model = brightness()
    with torch.no_grad():
        model[-1].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
        model[-1].bias.zero_()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    args = ["--arch", "tests.test_cli_score:brightness", "-d", tmp_path / "train", "--train-data", tmp_path / "train", "-f", "json"]
    row = cli_json("score", tmp_path / "m.pt", *args, "--batches", "2", "--batch-size", "8")["results"][0]
    said = [n for n in row["notes"] if "normalization" in n or "channel" in n]
    assert said == [
        f"{NO_NORMALIZATION}; with mean and std 0.5 (pixels in [-1, 1]) and the channels reversed (BGR, as OpenCV reads "
        "images) it predicts 60 of 60 training images as labelled, against 20 as measured: if it was trained on "
        "normalized images read so, pass the mean and std it was trained with (--mean 0.5,0.5,0.5 --std 0.5,0.5,0.5 for "
        'mean and std 0.5 (pixels in [-1, 1])) and add {"channel_order": "BGR"} to m.suscli.json beside the checkpoint'
    ], row["notes"]
    assert row["train_acc"] == 20 / 60 and (row["verdict"], row["verdict_why"]) == ("unclear", MISMEASURED)
    (tmp_path / "m.suscli.json").write_text('{"channel_order": "BGR"}')
    fixed = cli_json(
        "score", tmp_path / "m.pt", *args, "--batches", "2", "--batch-size", "8", "--mean", "0.5,0.5,0.5", "--std", "0.5,0.5,0.5"
    )
    row = fixed["results"][0]
    assert row["train_acc"] == 1.0 and not any("normalization" in n or "channel" in n for n in row["notes"]), row["notes"]


def test_the_model_to_ship_or_epoch_to_keep_says_where_its_labels_point_to_another_normalization(tmp_path: Path) -> None:
    """Plain state dicts of models trained on normalized images, ranked or tracked with no mean and std known: every
    row was "unclear" (its labels point to another normalization), yet the closing line said "ship n0" or "keep epoch
    3" on those numbers with no word of it. It now says that the pick's numbers are likely of inputs unlike its
    training's, and what to do; a pick measured as trained gets no such word."""
    for label, value in (("bright", 200), ("dark", 50)):
        folder = tmp_path / "train" / label
        folder.mkdir(parents=True)
        for i in range(30):
            Image.fromarray(torch.full((8, 8, 3), value + (i % 5), dtype=torch.uint8).numpy()).save(folder / f"{i}.png")
    (tmp_path / "pool").mkdir()
    for epoch in (1, 2, 3):
        model = brightness()
        with torch.no_grad():
            model[-1].weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]) * epoch / 3)
            model[-1].bias.zero_()  # centred at 0: trained on normalized pixels
        torch.save(model.state_dict(), tmp_path / "pool" / f"epoch_{epoch}.pt")
    args = ["--arch", "tests.test_cli_score:brightness", "-d", tmp_path / "train", "--train-data", tmp_path / "train"]
    rank = cli_json("rank", tmp_path / "pool", *args, "--results", tmp_path / "rank.jsonl")
    track = cli_json("track", tmp_path / "pool", *args, "--results", tmp_path / "track.jsonl")
    assert {r["verdict_why"] for r in rank["results"] + track["results"]} == {MISMEASURED}
    said = (
        "point to another input normalization, channel order, size or crop than the one measured (its note says which): measure the models again "
        "as its note says before choosing"
    )
    assert rank["recommendation"].endswith(
        "; the labels of 3 of the 3 models (epoch_1, epoch_2, epoch_3) point to another input normalization, channel order, size or crop than the one "
        "measured, and the pool's numbers read them as measured: rank again as their notes say"
    ), rank["recommendation"]
    assert rank["choice"]["pick"] and rank["choice"]["confident"] is False
    assert rank["label_noise"]["not_enough_evidence"] == (
        "the labels of 3 of the 3 voters point to another input normalization, channel order, size or crop than the one measured, so "
        "their consensus "
        "is of inputs likely unlike their training's"
    )
    assert track["recommendation"]["text"].endswith(f"; the labels of epoch 3 {said}"), track["recommendation"]["text"]
    normalized = ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"]
    rank = cli_json("rank", tmp_path / "pool", *args, *normalized, "--results", tmp_path / "known.jsonl")
    assert "normalization" not in rank["recommendation"], rank["recommendation"]


def test_the_probes_read_the_measuring_passes_hits_as_a_pass_of_their_own_would() -> None:
    """The probes take the row's own per-image hits for the inputs as measured instead of a pass of their own: the
    same counts, so the same notes, one eval pass over 200 images fewer per model."""
    from suscli.data.images import normalizer
    from suscli.measure.accuracy import training_accuracy
    from suscli.measure.normalization import channel_order_hint, combined_hint, normalization_hint

    torch.manual_seed(0)
    model = brightness()
    with torch.no_grad():
        model[-1].weight.copy_(torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]]))
        model[-1].bias.zero_()
    pixels = torch.randint(0, 256, (300, 3, 4, 4), dtype=torch.uint8)
    means = pixels.float().mean((2, 3))
    labels = (means[:, 0] > means[:, 2]).long()  # labelled as by a model fed BGR: red over blue is class 1
    cpu = torch.device("cpu")
    acc = training_accuracy(model, pixels, labels, transform=normalizer((0.0,), (1.0,), "RGB"), device=cpu)
    for measured in (None, acc.hits):
        hint = normalization_hint(model, pixels, labels, lambda m, s: normalizer(m, s, "RGB"), device=cpu, seed=0, measured=measured)
        order = channel_order_hint(
            model, pixels, labels, lambda o: normalizer((0.0,), (1.0,), o), device=cpu, seed=0, sidecar="m.suscli.json", measured=measured
        )
        both = combined_hint(model, pixels, labels, normalizer, device=cpu, seed=0, sidecar="m.suscli.json", measured=measured)
        if measured is None:
            fresh = (hint, order, both)
    assert (hint, order, both) == fresh and both is not None
    assert order is not None and "it predicts 200 of 200 training images as labelled, against 0 as fed" in order


def test_a_reversed_order_suggested_on_200_images_is_read_again_on_1000() -> None:
    """A model trained on BGR images whose reversed order reads right 22 images of the 200 probed that the order as fed
    does not, and 6 the other way (p = 0.004), got no note though more labelled images were decoded (a CNN so trained
    read 68 vs 52 of 200 and got none). That reversed order is now read again on up to 1,000 seeded images holding
    the 200, and noted where it is clearly better there, with those counts; on 200 images only there is no second
    look, and a model the reversed order reads no better gets no note."""
    from suscli.data.images import normalizer
    from suscli.measure.normalization import channel_order_hint, probe_positions

    model = brightness()  # trained on BGR: class 0 where the first channel (blue, as trained) outweighs the third
    with torch.no_grad():
        model[-1].weight.copy_(torch.tensor([[-1.0, 0.0, 1.0], [1.0, 0.0, -1.0]]))
        model[-1].bias.zero_()
    count = 1500
    probed = probe_positions(count, 0)
    reversed_only = set(probed[:22]) | {i for i in range(count) if i not in probed and i % 8 == 0}
    fed_only = set(probed[22:28]) | {i for i in range(count) if i not in probed and i % 25 == 1}
    pixels = torch.full((count, 3, 4, 4), 100, dtype=torch.uint8)  # both orders read the rest alike, as class 0
    labels = torch.zeros(count, dtype=torch.long)
    for i in reversed_only | fed_only:
        pixels[i, 0], pixels[i, 2] = 200, 50  # fed as is: class 1; reversed: class 0
        labels[i] = 0 if i in reversed_only else 1
    cpu = torch.device("cpu")

    def order(pixels: torch.Tensor, labels: torch.Tensor) -> str | None:
        return channel_order_hint(
            model, pixels, labels, lambda o: normalizer((0.0,), (1.0,), o), device=cpu, seed=0, sidecar="m.suscli.json"
        )

    assert order(pixels, labels) == (
        "with the channels reversed (BGR, as OpenCV reads images) it predicts 965 of 1,000 training images as labelled, "
        'against 878 as fed: if it was trained on images read so, add {"channel_order": "BGR"} to m.suscli.json beside '
        "the checkpoint"
    )
    assert order(pixels[probed], labels[probed]) is None  # only the 200 decoded: no second look
    labels[list(reversed_only)[:100]] = 1  # the reversed order's advantage gone: no note, however many are read
    assert order(pixels, labels) is None


class FineDetail(nn.Module):
    """Class 0 for a checkerboard, 1 for a flat image of the same mean, by the mean step between neighbouring pixels:
    upscaled 8 -> 256 px and cropped to 224, a checkerboard's steps shrink 32-fold and it reads as flat."""

    def __init__(self) -> None:
        super().__init__()
        self.classifier = nn.Linear(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier((x[..., 1:] - x[..., :-1]).abs().mean((1, 2, 3)).unsqueeze(1))


def fine_detail() -> nn.Module:
    return FineDetail()


def test_a_size_suggested_on_200_images_is_read_again_on_1000() -> None:
    """The size probe takes the same second look as the others: its images' own size, suggested on the 200 probed
    (22 vs 6) and clearly better on up to 1,000 holding them, is noted with those counts, whether the images as
    measured are read off the row's own pass or again."""
    from suscli.data.images import Preprocess, normalizer
    from suscli.measure.accuracy import training_accuracy
    from suscli.measure.normalization import probe_positions, second_positions
    from suscli.run.probes import size_noted

    model = brightness()  # class 0 for bright images
    with torch.no_grad():
        model[-1].weight.copy_(torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]) / 3)
        model[-1].bias.copy_(torch.tensor([-0.5, 0.5]))
    count = 1500
    probed = probe_positions(count, 0)
    own_only = set(probed[:22]) | {i for i in range(count) if i not in probed and i % 8 == 0}
    measured_only = set(probed[22:28]) | {i for i in range(count) if i not in probed and i % 25 == 1}
    measured = torch.full((count, 3, 4, 4), 200, dtype=torch.uint8)
    own = torch.full((count, 3, 2, 2), 200, dtype=torch.uint8)
    measured[list(own_only)] = 50
    own[list(measured_only)] = 50
    labels = torch.zeros(count, dtype=torch.long)
    transform, cpu = normalizer((0.0,), (1.0,)), torch.device("cpu")
    wider = second_positions(count, 0)
    acc = training_accuracy(model, measured, labels, transform=transform, device=cpu)
    for read in (None, acc):
        notes = size_noted(
            [],
            model,
            transform,
            Preprocess(4),
            (measured, labels, "training", read),
            (probed, own[probed], lambda: (wider, own[wider])),
            "--image-size 4",
            cpu,
        )
        assert notes == [
            f"{SIZE_ELSEWHERE}: at 2x2 it predicts 961 of 1,000 training images as labelled, against 878 at the 4x4 "
            "measured (the size --image-size 4 sets; nothing recorded for this checkpoint says it): if it was trained at "
            "2 px, pass --image-size 2"
        ], notes


def test_a_size_suggested_on_200_images_is_read_again_on_1000_in_score_and_rank_decoding_them_once_per_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through `suscli score` and `suscli rank`: 1,200 labelled 8 px images measured at --image-size 16, of which the
    200 probed suggest their own size (22 vs 6, p = 0.004) and the 1,000 of a second look hold it clearly better,
    get the size note with the second look's counts. The images are decoded at their own size once for the 200 and
    once for the 1,000: once per group of models measured together, not once per model."""
    from suscli.measure.normalization import probe_positions, second_positions

    count = 1200
    probed = probe_positions(count, 0)
    checkered = probed[22]  # the first `checkered` images, labelled so, hold 22 of the probed: read right at 8 px only
    flat_probed = [i for i in probed if i >= checkered]
    # labelled flat yet checkered: read right only when upscaled, 6 of the probed and one in 50 of the others
    misread = set(flat_probed[:6]) | {i for i in range(checkered, count) if i not in probed and i % 50 == 0}
    squares = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 == 0
    for i in range(count):
        folder = tmp_path / "train" / ("checkered" if i < checkered else "flat")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = torch.full((8, 8, 3), 128, dtype=torch.uint8)
        if i < checkered or i in misread:
            pixels[squares], pixels[~squares] = 168, 88
        Image.fromarray(pixels.numpy()).save(folder / f"{i:04d}.png")
    write_images(tmp_path / "unlabeled", 16, size=8)
    model = fine_detail()  # class 0 (checkered) where neighbouring pixels step by more than 0.15 on average
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        model.classifier.bias.copy_(torch.tensor([-0.15, 0.15]))
    pool = tmp_path / "pool"
    pool.mkdir()
    for k in range(3):
        torch.save(model.state_dict(), pool / f"m{k}.pt")
    own_size: list[int] = []  # how many images each decode at their own size (8 px) took
    decode = suscli.data.images.decode_images

    def counted(paths: list, sizing: object, *args: object, **kwargs: object) -> object:
        if sizing == suscli.data.images.Sizing(8):
            own_size.append(len(paths))
        return decode(paths, sizing, *args, **kwargs)

    monkeypatch.setattr(suscli.data.images, "decode_images", counted)
    args = ["--arch", "tests.test_cli_score:fine_detail", "-d", tmp_path / "unlabeled", "--train-data", tmp_path / "train"]
    args += ["--train-samples", "all", "--image-size", "16", "--mean", "0,0,0", "--std", "1,1,1"]
    wider = second_positions(count, 0)  # the second look's images: those at 8 px read wrong are the misread
    own_hits, as_measured = len(wider) - len(misread.intersection(wider)), len(wider) - sum(i < checkered for i in wider)
    said = [
        f"{SIZE_ELSEWHERE}: at 8x8 it predicts {own_hits} of 1,000 training images as labelled, against {as_measured} at "
        "the 16x16 measured (the size --image-size 16 sets; nothing recorded for this checkpoint says it): if it was "
        "trained at 8 px, pass --image-size 8"
    ]
    row = cli_json("score", pool / "m0.pt", *args)["results"][0]
    assert [n for n in row["notes"] if n.startswith(SIZE_ELSEWHERE)] == said, row["notes"]
    assert own_size == [200, 1000]
    for batch, decodes in (("3", [200, 1000]), ("1", [200, 1000] * 3)):  # measured together, and one at a time
        own_size.clear()
        doc = cli_json("rank", pool, *args, "--model-batch", batch, "--results", tmp_path / f"{batch}.jsonl")
        assert all([n for n in r["notes"] if n.startswith(SIZE_ELSEWHERE)] == said for r in doc["results"]), doc["results"]
        assert own_size == decodes, (batch, own_size)


def test_a_model_fed_another_size_than_its_images_is_told_their_own_size_fits(tmp_path: Path) -> None:
    """--preset imagenet (or --image-size) on a plain state dict of a model trained on small images upscaled them to
    224 px: the public CIFAR ResNet-20 read its training accuracy at chance, 9.4%, with no note at all. With labels
    given and every labelled image of one size, the note now says whether the model predicts clearly more of them at
    that size, and what to pass; the row is then judged as measured on inputs unlike its training's. A model measured
    at its images' size, or whose size is recorded, gets no such word, and no number changes."""
    for label, checkered in (("checkered", True), ("flat", False)):
        folder = tmp_path / "train" / label
        folder.mkdir(parents=True)
        for i in range(30):
            pixels = torch.full((8, 8, 3), 128, dtype=torch.uint8)
            if checkered:
                pixels[(torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 == 0] = 128 + 40 + i
                pixels[(torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 == 1] = 128 - 40 - i
            Image.fromarray(pixels.numpy()).save(folder / f"{i}.png")
    model = fine_detail()
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        model.classifier.bias.copy_(torch.tensor([-0.5, 0.5]))
    torch.save(model.state_dict(), tmp_path / "m.pt")
    args = ["--arch", "tests.test_cli_score:fine_detail", "-d", tmp_path / "train", "--train-data", tmp_path / "train"]
    imagenet = ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"]
    fixes = {
        "--preset imagenet": f"pass {' '.join(imagenet)} instead of --preset imagenet, which sets the size",
        "--image-size 224": "pass --image-size 8",
    }
    for option, fix in fixes.items():
        row = cli_json("score", tmp_path / "m.pt", *args, *option.split(), *([] if "preset" in option else imagenet))["results"][0]
        assert row["train_acc"] == 0.5, row  # as measured: the probe changes no number
        said = [n for n in row["notes"] if n.startswith(SIZE_ELSEWHERE)]
        assert said == [
            f"{SIZE_ELSEWHERE}: at 8x8 it predicts 60 of 60 training images as labelled, against 30 at the 224x224 "
            f"measured (the size {option} sets; nothing recorded for this checkpoint says it): if it was trained at 8 px, {fix}"
        ], row["notes"]
        assert (row["verdict"], row["verdict_why"]) == ("unclear", MISMEASURED)
    # measured at the images' own size: no word, and the numbers it reads there
    row = cli_json("score", tmp_path / "m.pt", *args, *imagenet)["results"][0]
    assert row["train_acc"] == 1.0 and not any(n.startswith(SIZE_ELSEWHERE) for n in row["notes"]), row["notes"]
    # a size recorded with the checkpoint is the model's: no probe
    suscli.save(model, tmp_path / "saved.safetensors", arch="tests.test_cli_score:fine_detail", image_size=224)
    row = cli_json("score", tmp_path / "saved.safetensors", *args[2:], *imagenet)["results"][0]
    assert row["train_acc"] == 0.5 and not any(n.startswith(SIZE_ELSEWHERE) for n in row["notes"]), row["notes"]
    # in a pool, the same word and the same verdict (models measured together)
    pool = tmp_path / "pool"
    pool.mkdir()
    for k in range(3):
        torch.save(model.state_dict(), pool / f"m{k}.pt")
    for batch in ("1", "3"):  # one at a time, and measured together
        doc = cli_json("rank", pool, *args, "--preset", "imagenet", "--model-batch", batch, "--results", tmp_path / f"{batch}.jsonl")
        assert {r["verdict_why"] for r in doc["results"]} == {MISMEASURED}
        assert all(sum(n.startswith(SIZE_ELSEWHERE) for n in r["notes"]) == 1 for r in doc["results"]), doc["results"]


def test_only_a_crop_that_the_architectures_defaults_alone_set_is_probed() -> None:
    """The crop probe reads whole images only where the center crop came from the architecture's defaults: not where
    the checkpoint records it, a --preset chose it, it is 1 (nothing cropped), or the row's labels already point to
    the images' own size, which that probe read whole."""
    from suscli.run.probes import unrecorded_crop
    from suscli.run.settings import Settings

    implied = {"crop_pct": 0.95, "implied": ["crop_pct"], "implied_by": "the defaults of timm:test_resnet"}
    assert unrecorded_crop(Settings(), implied, []) == "the defaults of timm:test_resnet"
    assert unrecorded_crop(Settings(), {**implied, "implied": []}, []) is None  # recorded for the checkpoint
    assert unrecorded_crop(Settings(preset="imagenet"), implied, []) is None
    assert unrecorded_crop(Settings(), {**implied, "crop_pct": 1.0}, []) is None
    assert unrecorded_crop(Settings(), implied, [f"{SIZE_ELSEWHERE}: at 8x8 ..."]) is None
