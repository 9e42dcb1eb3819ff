"""docs/api.md: its examples run as written, in order, on the small demo; the package exports exactly the names it
documents; and the API's report is the command's report."""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path

import pytest

import suscli
from suscli.demo import SMALL, DemoOutput
from suscli.errors import UsageError
from tests.conftest import invoke, small_demo_copy

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
TEXT = DOC.read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.S)


def test_the_package_exports_exactly_the_documented_names() -> None:
    table = TEXT.split("\n\n")[2]  # the table of names under the first paragraph
    documented = set(re.findall(r"`suscli\.(\w+)", table))
    assert documented == set(suscli.__all__) - {"__version__"}


def test_the_signatures_the_table_shows_are_the_functions_own() -> None:
    """Each `suscli.NAME(...)` of the table shows the leading parameters as the function takes them: the positional
    ones in order, `*` before the keyword-only ones, each default as it is. It showed track's `log=None` and save's
    `arch=...` where a fourth and a third positional argument would go, which both refuse."""
    table = TEXT.split("\n\n")[2]
    shown = re.findall(r"`suscli\.(\w+)\(([^`]*)\)`", table)
    assert {name for name, _ in shown} == {"score", "rank", "track", "measure_susceptibility", "save", "load_results"}
    for name, params in shown:
        parameters = inspect.signature(getattr(suscli, name)).parameters
        positional = [p for p in parameters.values() if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD]
        keyword_only = False
        for at, part in enumerate(part.strip() for part in params.split(",")):
            if part == "...":
                break
            if part == "*":
                keyword_only = True
                continue
            pname, _, default = part.partition("=")
            param = parameters[pname]
            expected = inspect.Parameter.KEYWORD_ONLY if keyword_only else inspect.Parameter.POSITIONAL_OR_KEYWORD
            assert param.kind == expected and (keyword_only or positional.index(param) == at), (name, part)
            if default != "...":  # `arch=...`: a value to give
                assert default == ("" if param.default is param.empty else repr(param.default)), (name, part)


def test_every_public_name_says_what_it_is() -> None:
    """help(suscli.SusceptibilityConfig) showed only the signature the dataclass wrote in place of a docstring."""
    for name in set(suscli.__all__) - {"__version__"}:
        doc = getattr(suscli, name).__doc__
        assert doc and not doc.startswith(f"{name}("), name


def test_importing_the_package_loads_no_torch() -> None:
    import subprocess

    code = "import sys, suscli; assert 'torch' not in sys.modules, 'torch loaded'; print(len(suscli.__all__))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, small_demo_build: DemoOutput) -> Path:
    root = tmp_path_factory.mktemp("api")
    small_demo_copy(small_demo_build, root / "suscli-demo")
    return root


def test_the_examples_run_in_order(demo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(demo)
    assert len(BLOCKS) >= 7
    namespace: dict = {}
    for i, block in enumerate(BLOCKS):
        exec(compile(block, f"docs/api.md, example {i + 1}", "exec"), namespace)
    printed = capsys.readouterr().out
    report, one, run = namespace["report"], namespace["one"], namespace["run"]
    assert report.command == "rank" and report.choice.pick is report.rows[0] and report.exit_code == 0
    assert 0 < report.label_noise["rate"] < 1 and report.choice.why in report.lines
    assert one.rows[0].train_n == SMALL.n_train and one.failures == []  # train_samples=None: every image
    assert [r.epoch for r in run.rows] == [1, 2, 3] and run.keep is run.rows[-1] and run.rows[-1].zeta is not None
    assert "| model |" in printed and (demo / "mine.safetensors").is_file()
    assert [json.loads(line)["epoch"] for line in (demo / "tracked.jsonl").read_text().splitlines()] == [0, 1, 2]


def run_examples(doc: str, blocks: list[str], demo: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`blocks` of `doc` in order, in `folder` beside the demo's, so that the files they write meet no other doc's."""
    (folder / "suscli-demo").symlink_to(demo / "suscli-demo")
    monkeypatch.chdir(folder)
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{doc}, example {i + 1}", "exec"), namespace)


@pytest.mark.parametrize("doc", ["README.md", "docs/score.md"])
def test_the_python_examples_of_the_readme_and_score_md_run_as_written(
    doc: str, demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """They took `model.safetensors`, `unlabeled/`, `model` and `inputs` that nothing made, and score.md's saved a
    ResNet-20 with a `width` its factory does not take: the checkpoint it wrote could not be loaded."""
    blocks = re.findall(r"```python\n(.*?)```", (DOC.parents[1] / doc).read_text(), re.S)
    assert blocks
    run_examples(doc, blocks, demo, tmp_path, monkeypatch)
    assert "low susceptibility" in capsys.readouterr().out
    if doc == "docs/score.md":
        assert invoke("score", "run/epoch_010.safetensors", "--data", "suscli-demo/data/unlabeled", "--samples", "64").exit_code == 0


def test_the_tracker_examples_of_track_md_run_as_written_or_are_the_examples_lines(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its loop used `unlabeled_inputs`, `normalize`, `train_one_epoch` and `last_epoch_acc` that nothing made; the
    Lightning and Hugging Face lines are the scripts' own, which tests/test_examples.py runs."""
    loop, lightning, hf, writer = re.findall(r"```python\n(.*?)```", (DOC.parent / "track.md").read_text(), re.S)
    run_examples("docs/track.md", [loop, writer], demo, tmp_path, monkeypatch)
    records = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2, 3] and records[-1]["train_acc"] > 0.15  # it learned: chance is 0.1
    assert next((tmp_path / "tb").iterdir()).name.startswith("events.out.tfevents")
    for excerpt, script in ((lightning, "track_lightning.py"), (hf, "track_hf_trainer.py")):
        source = (DOC.parents[1] / "examples" / script).read_text()
        assert all(line.strip() in source for line in excerpt.splitlines()), script


def test_the_notebook_example_of_ci_md_runs_on_the_report_its_comment_names(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ci.md's load_results example reads the report of `suscli rank ... -f json -o report.json` and the demo's
    results file: run as written after that command, it prints the columns it names and the sets of settings."""
    (block,) = re.findall(r"```python\n(.*?)```", (DOC.parent / "ci.md").read_text(), re.S)
    (tmp_path / "suscli-demo").symlink_to(demo / "suscli-demo")
    monkeypatch.chdir(tmp_path)
    data = ["--data", "suscli-demo/data/unlabeled", "--train-data", "suscli-demo/data/train"]
    assert invoke("rank", "suscli-demo/models", *data, "-f", "json", "-o", "report.json").exit_code == 0
    capsys.readouterr()
    exec(compile(block, "docs/ci.md, example 1", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.split("\n")[0].split() == ["name", "train_acc", "susceptibility", "agreement", "region"]
    assert "fingerprint" in printed and "Name: train_acc" in printed


def test_rank_returns_what_the_command_prints(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(demo)
    paths = ("suscli-demo/models", "suscli-demo/data/unlabeled", "suscli-demo/data/train")
    report = suscli.rank(*paths)
    res = invoke("rank", paths[0], "--data", paths[1], "--train-data", paths[2], "-f", "json", "--per-image")
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)
    assert [r.as_dict() | {"seconds": None} for r in report.rows] == [r | {"seconds": None} for r in printed["results"]]
    for key in ("recommendation", "choice", "label_noise", "thresholds", "gate", "train_sample", "settings"):
        assert report.run[key] == printed[key], key


def test_a_gate_and_an_error_are_values(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(demo)
    report = suscli.rank("suscli-demo/models", "suscli-demo/data/unlabeled", "suscli-demo/data/train", fail_on="memorized")
    assert report.failures and report.exit_code == 1 and report.run["gate"]["passed"] is False
    with pytest.raises(UsageError, match="--candidate needs --train-data"):
        suscli.rank("suscli-demo/models", "suscli-demo/data/unlabeled", candidate="x")


@pytest.mark.parametrize(
    ("option", "fix"), [("rule", "agreement, regions"), ("thresholds_rule", "mean, median"), ("fail_on", "never, memorized")]
)
def test_a_choice_the_command_line_would_refuse_is_a_usage_error_before_anything_is_measured(option: str, fix: str) -> None:
    """The command line offers these as choices; from Python `fail_on="memorised"` was ignored (no gate, exit code 0)
    and `rule="bogus"` failed with a ValueError once the whole pool was measured. Refused first, as the command does."""
    with pytest.raises(UsageError, match=f"unknown {option} 'bogus'") as e:
        suscli.rank("no-such-pool", "no-such-images", "no-such-labels", **{option: "bogus"})
    assert e.value.fix is not None and e.value.fix.startswith(f"use one of {fix}")


def test_values_the_command_line_refuses_are_usage_errors_from_python_too() -> None:
    """The options' bounds held on the command line only: Settings(mean=...) without its std and image_size=0 were
    silently not used, image_size=-3 failed deep in the resize, a nan gate passed every model and min_train_acc=65 (a
    percentage) failed every one; Inputs(arch_kwargs=...) without arch, a model_batch of 0 and score's num_classes=0 were
    not used either. Each is a UsageError, before any file is read."""
    refused = {
        "mean and std go together": lambda: suscli.Settings(mean=(0.5, 0.5, 0.5)),
        "std takes a finite number above 0, got 0": lambda: suscli.Settings(mean=(0.5,), std=(0,)),
        "mean 123.675 is not on the scale of the pixels": lambda: suscli.Settings(mean=(123.675,), std=(58.395,)),
        "image_size takes a whole number of at least 1, got 0": lambda: suscli.Settings(image_size=0),
        "image_size takes a whole number of at least 1, got 32.0": lambda: suscli.Settings(image_size=32.0),
        "unknown preset 'cifar100'": lambda: suscli.Settings(preset="cifar100"),
        "max_susceptibility takes a finite number, got nan": lambda: suscli.score("m.pt", "images", max_susceptibility=float("nan")),
        "min_train_acc takes a finite number from 0 to 1, got 65": lambda: suscli.score("m.pt", "images", "train", min_train_acc=65),
        "zeta_threshold takes a finite number, got inf": lambda: suscli.rank("pool", "images", zeta_threshold=float("inf")),
        "acc_threshold takes a finite number from 0 to 1, got -0.1": lambda: suscli.rank("pool", "images", acc_threshold=-0.1),
        "num_classes takes a whole number of at least 1, got 0": lambda: suscli.score("m.pt", "images", num_classes=0),
        "model_batch takes a whole number of at least 1, got 0": lambda: suscli.Inputs(model_batch=0),
        "arch_kwargs goes with arch": lambda: suscli.Inputs(arch_kwargs={"width": 16}),
        "samples takes a whole number of at least 1, got 2.5": lambda: suscli.Settings(samples=2.5),
        "train_samples takes a whole number of at least 1, got 0": lambda: suscli.Settings(train_samples=0),
        "train_samples takes 'auto', 'all', a number or None (every image), got 'foo'": lambda: suscli.Settings(train_samples="foo"),
    }
    for message, call in refused.items():
        with pytest.raises(UsageError, match=re.escape(message)):
            call()
    assert suscli.Settings(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), image_size=32).image_size == 32
    assert suscli.Inputs(arch_kwargs={}).arch is None  # what the command line passes without --arch-kwargs
    assert suscli.Settings(train_samples="all") == suscli.Settings(train_samples=None)  # the command line's spelling


def test_numpy_numbers_in_settings_are_written_as_python_numbers() -> None:
    """Settings computed with numpy (np.int64 sample sizes, an np.float32 lr) passed the checks, and the measurement
    ran, but the report's JSON and the results file's key refused them: "Object of type float32 is not JSON
    serializable", after the work. They are Python's own numbers from the moment the settings are made."""
    import numpy as np

    config = suscli.SusceptibilityConfig(lr=np.float32(0.01), batches=np.int64(2), batch_size=np.int64(8), seed=np.int64(3))
    settings = suscli.Settings(
        config, samples=np.int64(100), train_samples=np.int64(50), image_size=np.int64(8), mean=np.array([0.5]), std=np.array([0.25])
    )
    inputs = suscli.Inputs(model_batch=np.int64(2))
    values = [
        *vars(config).values(),
        settings.samples,
        settings.train_samples,
        settings.image_size,
        *settings.mean,
        *settings.std,
        inputs.model_batch,
    ]
    assert {type(v) for v in values} <= {int, float}
    assert config.lr == pytest.approx(0.01) and (config.batches, settings.samples, inputs.model_batch) == (2, 100, 2)
    json.dumps(settings.as_dict())


def test_a_model_or_tensors_where_a_path_goes_point_to_measure_susceptibility() -> None:
    """suscli.score(model, tensors) is the natural first try in a notebook: it raised "TypeError: expected str, bytes
    or os.PathLike object, not Linear" from inside pathlib. A UsageError names the argument and the function that
    takes a model and tensors in memory."""
    import torch

    calls = {
        "checkpoint takes a path, got Linear": lambda: suscli.score(torch.nn.Linear(2, 2), "images"),
        "data takes a path, got Tensor": lambda: suscli.rank("pool", torch.zeros(4, 3, 8, 8)),
        "data takes a path, got NoneType": lambda: suscli.score("m.pt", None),
        "run takes a path, got Linear": lambda: suscli.track(torch.nn.Linear(2, 2)),
    }
    for message, call in calls.items():
        with pytest.raises(UsageError, match=message) as e:
            call()
        assert e.value.fix == "for a model and inputs in memory, use suscli.measure_susceptibility(model, inputs)"


def test_a_type_checker_sees_the_api_s_own_types(tmp_path: Path) -> None:
    """The names are imported on first use (suscli.__getattr__), so mypy typed each one `object` and rejected every
    call, and without a py.typed marker an installed suscli was not type-checked at all. A script that uses the API
    passes, and a wrong use of a returned value is caught."""
    api = pytest.importorskip("mypy.api", reason="mypy is in the dev extras (CI installs them)")
    import ast

    root = Path(suscli.__file__).parent
    assert (root / "py.typed").is_file()
    typed = [
        n for n in ast.walk(ast.parse((root / "__init__.py").read_text())) if isinstance(n, ast.ImportFrom) and n.module != "importlib"
    ]
    assert {a.name: n.module for n in typed for a in n.names if a.name != "TYPE_CHECKING"} == suscli._API
    script = tmp_path / "script.py"
    script.write_text(
        "import torch\nimport suscli\n"
        "one: suscli.Report = suscli.score('m.safetensors', 'images', settings=suscli.Settings(), inputs=suscli.Inputs())\n"
        "mean: float = suscli.measure_susceptibility(torch.nn.Linear(2, 2), torch.zeros(4, 2)).mean\n"
        "tracker = suscli.SusceptibilityTracker('images', image_size=16)\n"
        "wrong: int = suscli.rank('pool', 'images')\n"
    )
    config = tmp_path / "mypy.ini"
    # suscli as an installed package is read, not reported on; the libraries beneath it are left out (Any), for speed
    config.write_text(f"[mypy]\nmypy_path = {root.parent}\nfollow_imports = skip\n[mypy-suscli,suscli.*]\nfollow_imports = silent\n")
    out, _, _ = api.run([str(script), "--config-file", str(config), "--cache-dir", str(tmp_path / "cache")])
    assert out.splitlines()[0].startswith(f"{script}:6: error: Incompatible types in assignment"), out
    assert "Found 1 error" in out


def test_score_and_rank_leave_the_callers_random_state_as_it_was(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """Building the network a checkpoint's weights load into drew its random initialization from the global RNG: a
    training script that scored a checkpoint between epochs trained on other random draws than without it."""
    import torch

    from suscli.models import bn_cnn

    (tmp_path / "pool").mkdir()
    suscli.save(bn_cnn(num_classes=3, width=2), tmp_path / "pool" / "m.safetensors", arch="suscli.models:bn_cnn", arch_kwargs={"width": 2})
    settings = suscli.Settings(susceptibility=suscli.SusceptibilityConfig(batches=1, batch_size=8), train_samples=None)
    state = torch.random.get_rng_state()
    suscli.score(tmp_path / "pool" / "m.safetensors", image_folder, train_folder, settings=settings)
    suscli.rank(tmp_path / "pool", image_folder, train_folder, settings=settings, results=tmp_path / "results.jsonl")
    assert torch.equal(torch.random.get_rng_state(), state)


def test_a_report_made_from_python_names_the_script_not_a_suscli_command(
    tmp_path: Path, image_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report's `command` was "suscli" and the script's arguments: `python train.py --epochs 3` wrote
    `suscli --epochs 3` into the JSON, HTML and JUnit reports, a command no one ran."""
    from suscli.models import bn_cnn
    from suscli.run.report import command_line

    suscli.save(bn_cnn(num_classes=3, width=2), tmp_path / "m.safetensors", arch="suscli.models:bn_cnn", arch_kwargs={"width": 2})
    settings = suscli.Settings(susceptibility=suscli.SusceptibilityConfig(batches=1, batch_size=8))
    monkeypatch.setattr(sys, "argv", ["train.py", "--epochs", "3"])
    report = suscli.score(tmp_path / "m.safetensors", image_folder, settings=settings, predictions=False)
    assert report.run["command"] == "python train.py --epochs 3"
    for program in ("/venv/bin/suscli", "/src/suscli/__main__.py"):  # the console script; python -m suscli and torchrun
        monkeypatch.setattr(sys, "argv", [program, "rank", "models"])
        assert command_line() == "suscli rank models"


def test_a_dict_where_an_option_class_goes_is_a_usage_error_naming_the_class() -> None:
    """settings={"seed": 1} raised "AttributeError: 'dict' object has no attribute 'samples'" from deep inside score;
    a dict as a SusceptibilityConfig was kept by Settings and the tracker, and failed at the first measurement."""
    import torch

    from suscli.training.tracker import SusceptibilityTracker

    calls = {
        "settings takes a suscli.Settings, got dict": lambda: suscli.score("m.pt", "images", settings={"seed": 1}),  # type: ignore[arg-type]
        "inputs takes a suscli.Inputs, got str": lambda: suscli.rank("pool", "images", inputs="cpu"),  # type: ignore[arg-type]
        "settings takes a suscli.Settings, got SusceptibilityConfig": lambda: suscli.track(
            "run",
            "images",
            settings=suscli.SusceptibilityConfig(),  # type: ignore[arg-type]
        ),
        "Settings susceptibility takes a suscli.SusceptibilityConfig, got dict": lambda: suscli.Settings(susceptibility={"seed": 1}),  # type: ignore[arg-type]
        "config takes a suscli.SusceptibilityConfig, got dict": lambda: suscli.measure_susceptibility(
            torch.nn.Linear(2, 2),
            torch.zeros(4, 2),
            config={"batches": 2},  # type: ignore[arg-type]
        ),
        "SusceptibilityTracker config takes a suscli.SusceptibilityConfig, got dict": lambda: SusceptibilityTracker(
            torch.zeros(4, 2),
            config={"batches": 2},  # type: ignore[arg-type]
        ),
    }
    for message, call in calls.items():
        with pytest.raises(UsageError, match=message):
            call()


def test_a_list_of_paths_where_one_path_goes_says_where_a_list_goes() -> None:
    """suscli.rank([checkpoints...], ...) was told to use measure_susceptibility for "a model and inputs in memory",
    which a list of files is not: the fix names the folder or manifest (or image list) that takes them."""
    calls = {
        r"pool takes one path, got a list of 2 \(pass a folder of the checkpoints, or a manifest": lambda: suscli.rank(
            ["a.safetensors", Path("b.safetensors")], "images"
        ),
        r"checkpoint takes one path, got a list of 2 \(score measures one checkpoint; for several, suscli.rank": lambda: suscli.score(
            ["a.safetensors", "b.safetensors"], "images"
        ),
        r"run takes one path, got a tuple of 1 \(pass the run's folder, or a manifest": lambda: suscli.track(("e1.safetensors",), "images"),
        r"train_data takes one path, got a list of 1 \(pass a folder of the images, or a .txt file": lambda: suscli.score(
            "m.safetensors", "images", ["x.png"]
        ),
    }
    for message, call in calls.items():
        with pytest.raises(UsageError, match=message):
            call()
