"""The GitHub Action: action.yml's step run as the action runs it, on a copy of the action, installing suscli into a
fresh virtual environment. The gate fails the step, and the reports and the step summary are there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.conftest import learned_pool

REPO = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((REPO / "action.yml").read_text())


def test_every_input_reaches_the_script_as_an_environment_variable() -> None:
    step = ACTION["runs"]["steps"][0]
    script = (REPO / "scripts" / "github-action.sh").read_text()
    for name in ACTION["inputs"]:
        if name in ("upload", "artifact-name"):  # used by the upload step itself
            continue
        var = "SUSCLI_" + name.upper().replace("-", "_")
        assert step["env"][var] == "${{ inputs.%s }}" % name
        assert f"${{{var}" in script, var
    assert "${{" not in step["run"]  # no input is spliced into the shell line


def test_the_action_installs_ranks_reports_and_fails_on_the_gate(tmp_path: Path) -> None:
    action = tmp_path / "action"  # what a workflow's `uses:` checks out
    action.mkdir()
    for part in ("action.yml", "pyproject.toml", "README.md"):
        shutil.copy(REPO / part, action / part)
    for folder in ("suscli", "scripts"):
        shutil.copytree(REPO / folder, action / folder, ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    learned_pool(work)  # models of suscli's own architecture (resolvable by the installed suscli), one a memorizer
    (work / "pool").rename(work / "models")
    outputs, summary = tmp_path / "outputs", tmp_path / "summary.md"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        GITHUB_ACTION_PATH=str(action),
        GITHUB_OUTPUT=str(outputs),
        GITHUB_STEP_SUMMARY=str(summary),
        RUNNER_TEMP=str(tmp_path / "runner"),
        SUSCLI_CACHE_DIR=str(tmp_path / "cache"),
        OMP_NUM_THREADS="1",
        SUSCLI_POOL="models",
        SUSCLI_DATA="unlabeled",
        SUSCLI_TRAIN_DATA="train",
        SUSCLI_VAL_DATA="val",
        SUSCLI_FAIL_ON="memorized",
        SUSCLI_ARGS="--batches 2  --batch-size 8",
        SUSCLI_REPORT_DIR="out",
        SUSCLI_INSTALL="",
        SUSCLI_PIP_ARGS="--no-deps",
    )  # this machine's dependencies: resolving them again takes seconds and shows nothing
    (tmp_path / "runner").mkdir()
    res = subprocess.run(["bash", "-c", ACTION["runs"]["steps"][0]["run"]], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 1, res.stdout + res.stderr  # the gate: the memorizer
    assert "model likely memorized noise" in res.stderr or "models likely memorized noise" in res.stderr
    assert "::error title=suscli gate failed::" in res.stdout
    assert dict(line.split("=", 1) for line in outputs.read_text().splitlines()) == {
        "exit-code": "1",
        "report-dir": "out",
        "html": "out/report.html",
        "junit": "out/junit.xml",
    }
    html = (work / "out" / "report.html").read_text()
    assert "Gate failed" in html and "data:image/svg+xml;base64," in html  # the installed suscli has its template and plot
    assert "held-out acc" in html and "of 12 held-out images" in res.stderr  # val-data reached rank
    assert re.search(r'<testsuite name="suscli rank models" tests="4" failures="[1-9]"', (work / "out" / "junit.xml").read_text())
    assert summary.read_text().startswith("### suscli rank\n\n| model |")
    installed = list((tmp_path / "runner" / "suscli-venv").glob("lib/python*/site-packages/suscli/views/templates/report.html.j2"))
    assert len(installed) == 1  # the action's own install ran (not this checkout's suscli), template included


STAND_IN = """#!/bin/bash
# python3 for the action's script: `-m venv DIR` makes a venv whose pip installs nothing and whose suscli prints
# its arguments, one a line
if [ "$1 $2" = "-m venv" ]; then
    venv="${@: -1}"
    mkdir -p "$venv/bin"
    printf '#!/bin/bash\\nprintf "pip:%%s\\\\n" "$@"\\n' > "$venv/bin/python"
    printf '#!/bin/bash\\nprintf "suscli:%%s\\\\n" "$@"\\n' > "$venv/bin/suscli"
    chmod +x "$venv/bin/python" "$venv/bin/suscli"
fi
"""


def test_options_on_lines_of_their_own_all_reach_suscli_and_pip(tmp_path: Path) -> None:
    """`args: |` in a workflow gives one option a line: the script read only the first line, and dropped the rest
    without a word. Inputs are data: a space, $(...) or * in a path is passed as it is."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3").write_text(STAND_IN)
    (tmp_path / "bin" / "python3").chmod(0o755)
    env = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "RUNNER_TEMP": str(tmp_path),
        "SUSCLI_POOL": "my pool",
        "SUSCLI_DATA": "data $(touch x) *",
        "SUSCLI_ARGS": "--arch torchvision:resnet18\n--preset cifar10\n  --samples 2000\n",
        "SUSCLI_PIP_ARGS": "--index-url https://download.pytorch.org/whl/cpu\n--no-deps",
    }
    res = subprocess.run(["bash", REPO / "scripts" / "github-action.sh"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    said = res.stdout.splitlines()
    pip = [line.removeprefix("pip:") for line in said if line.startswith("pip:")]
    assert pip[-4:-1] == ["--index-url", "https://download.pytorch.org/whl/cpu", "--no-deps"]  # then what it installs
    args = [line.removeprefix("suscli:") for line in said if line.startswith("suscli:")]
    assert args[:4] == ["rank", "my pool", "--data", "data $(touch x) *"]
    assert args[-6:] == ["--arch", "torchvision:resnet18", "--preset", "cifar10", "--samples", "2000"]
    assert not (tmp_path / "x").exists()
