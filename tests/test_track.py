"""`suscli track` and suscli.run.epochs: a run's epochs, the running mean, the knee rule, and the command end to end."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import suscli
import suscli.run.audit
import suscli.run.track
from suscli.cli import app
from suscli.errors import InputError, UsageError
from suscli.results import Result
from suscli.defaults import DEFAULT_BATCH_SIZE, DEFAULT_LR
from suscli.measure.susceptibility import running_mean
from suscli.run.epochs import DEFAULT_KEEP, KEEP_RULES, annotate, epoch_to_keep, gaps, knee, late_start, recommendation, run_epochs
from tests.conftest import invoke, tiny_cnn, write_images

runner = CliRunner()
ARCH = "tests.conftest:tiny_cnn"


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize(
    "names",
    [
        ["epoch_2.pt", "epoch_10.pt", "epoch_1.pt"],
        ["ckpt-000002.safetensors", "ckpt-000010.safetensors", "ckpt-000001.safetensors"],
        [
            "lightning_logs/version_0/checkpoints/epoch=2-step=300.ckpt",
            "lightning_logs/version_0/checkpoints/epoch=10-step=1100.ckpt",
            "lightning_logs/version_0/checkpoints/epoch=1-step=200.ckpt",
        ],
    ],
)
def test_epochs_from_each_naming_scheme_in_epoch_order(tmp_path: Path, names: list[str]) -> None:
    for name in names:
        touch(tmp_path / "run" / name)
    touch(tmp_path / "run" / "last.ckpt")  # Lightning's copy of the latest epoch: no number, skipped
    entries, skipped, _ = run_epochs(tmp_path / "run")
    assert [e.epoch for e in entries] == [1, 2, 10]
    assert [e.path.name for e in skipped] == ["last.ckpt"]


@pytest.mark.parametrize("kind", ["json", "csv"])
def test_epochs_from_a_manifest_beat_the_file_names(tmp_path: Path, kind: str) -> None:
    for name in ("a.pt", "b.pt", "epoch_7.pt"):
        touch(tmp_path / "ckpt" / name)
    rows = [("ckpt/b.pt", 2), ("ckpt/a.pt", 1), ("ckpt/epoch_7.pt", "")]
    if kind == "json":
        manifest = tmp_path / "run.json"
        manifest.write_text(json.dumps([{"path": p, **({"epoch": e} if e != "" else {})} for p, e in rows]))
    else:
        manifest = tmp_path / "run.csv"
        manifest.write_text("path,epoch\n" + "".join(f"{p},{e}\n" for p, e in rows))
    entries, _, _ = run_epochs(manifest)
    assert [(e.path.name, e.epoch) for e in entries] == [("a.pt", 1), ("b.pt", 2), ("epoch_7.pt", 7)]


def test_two_checkpoints_of_one_epoch_or_none_numbered_are_refused(tmp_path: Path) -> None:
    touch(tmp_path / "dup" / "epoch_3.pt")
    touch(tmp_path / "dup" / "epoch_3.safetensors")
    with pytest.raises(InputError, match="two checkpoints for epoch 3"):
        run_epochs(tmp_path / "dup")
    touch(tmp_path / "bare" / "best.pt")
    with pytest.raises(InputError, match="no checkpoint .* has an epoch number"):
        run_epochs(tmp_path / "bare")


def test_two_checkpoints_of_one_epoch_are_named_as_their_files(tmp_path: Path) -> None:
    """A run's epoch_3.pt beside more/epoch_3.pt: the error named the first by its stem and the second by its path,
    "epoch_3 and more/epoch_3.pt", as if the first were no file of the run; both are named by their path in it."""
    touch(tmp_path / "one" / "epoch_3.pt")
    touch(tmp_path / "one" / "more" / "epoch_3.pt")
    with pytest.raises(InputError, match=r"two checkpoints for epoch 3: epoch_3\.pt and more/epoch_3\.pt \(keep one per epoch"):
        run_epochs(tmp_path / "one")


def test_a_folder_of_several_runs_is_told_to_track_one(tmp_path: Path, image_folder: Path) -> None:
    """runs/a/ and runs/b/, each a run of epochs 1 and 2: track said "two checkpoints for epoch 1: a/epoch_1.pt and
    b/epoch_1.pt (keep one per epoch, ...)", as if one run had saved an epoch twice, and had the user delete
    another run's files; it now says the folders are separate runs and which one to track."""
    for run in ("a", "b"):
        for e in (1, 2):
            torch.manual_seed(e)
            suscli.save(
                tiny_cnn(3), tmp_path / "runs" / run / f"epoch_{e}.safetensors", arch=ARCH, arch_kwargs={"num_classes": 3}, image_size=8
            )
    with pytest.raises(InputError) as err:
        run_epochs(tmp_path / "runs")
    said = str(err.value)
    assert "in folders a/ and b/ that each hold their own: separate runs" in said, said
    assert f"suscli track {tmp_path / 'runs' / 'a'}" in said and "keep one per epoch" not in said, said
    res = invoke("track", tmp_path / "runs", "-d", image_folder)
    assert res.exit_code == 3 and "separate runs" in res.stderr and "Traceback" not in res.output
    touch(tmp_path / "one" / "epoch_3.pt")  # one run's two files of an epoch, in its own subfolders
    touch(tmp_path / "one" / "more" / "epoch_3.pt")
    with pytest.raises(InputError, match=r"two checkpoints for epoch 3: .*\(keep one per epoch"):
        run_epochs(tmp_path / "one")


def test_running_mean_drops_the_initialization_and_failed_epochs() -> None:
    assert running_mean([0, 1, 2, 3], [9.0, 1.0, 2.0, 3.0]) == [None, 1.0, 1.5, 2.0]
    assert running_mean([0, 1, 2, 3], [9.0, 1.0, 2.0, 3.0], count_epoch_0=True) == [9.0, 5.0, 4.0, 3.75]
    assert running_mean([1, 2, 4], [2.0, None, 4.0]) == [2.0, None, 3.0]  # epoch 3 not saved, epoch 2 failed
    assert running_mean([0], [1.0]) == [None]


def test_knee_is_where_accuracy_stops_paying_for_susceptibility() -> None:
    # learns the classes (accuracy up fast, r flat) until index 4, then memorizes (accuracy up slowly, r steep)
    acc = [0.2, 0.35, 0.5, 0.6, 0.65, 0.7, 0.8, 0.9, 0.99]
    r = [0.01, 0.011, 0.012, 0.013, 0.015, 0.05, 0.1, 0.15, 0.2]
    assert knee(acc, r) == 4


def test_knee_of_a_run_that_never_memorizes_is_its_last_epoch() -> None:
    assert knee([0.2, 0.4, 0.6, 0.8], [0.05, 0.04, 0.03, 0.03]) == 3


def test_knee_ties_take_the_later_epoch_and_missing_values_are_skipped() -> None:
    assert knee([0.5, 0.5, 0.5], [0.1, 0.1, 0.1]) == 2
    assert knee([None, 0.4, 0.9, None], [0.01, 0.02, 0.03, 0.04]) == 2
    assert knee([None, None], [0.1, 0.2]) is None


def test_annotate_sets_zeta_and_keeps_no_initialization() -> None:
    step = {"lr": DEFAULT_LR, "batch_size": DEFAULT_BATCH_SIZE}  # measured at the step the verdict's cuts hold for
    rows = [
        Result(name=f"e{e}", path="", epoch=e, susceptibility=x, train_acc=a, details=dict(step))
        for e, x, a in [(0, 0.001, 0.99), (1, 0.01, 0.3), (2, 0.02, 0.6), (3, 0.3, 0.65)]
    ]
    keep = annotate(rows, rule="knee")
    assert [r.zeta for r in rows] == pytest.approx([None, 0.01, 0.015, 0.11])  # type: ignore[list-item]
    assert keep is rows[2] and [r.keep for r in rows] == [
        False,
        False,
        True,
        False,
    ]  # epoch 0 would win on both counts, but is no candidate
    assert rows[2].verdict == "low susceptibility" and rows[3].verdict == "unclear"  # each epoch as `suscli score` judges it
    assert "initialization" in rows[0].notes[-1]


def test_track_help_names_every_layout_data_takes() -> None:
    """track's --data said "Folder of unlabeled images", though it reads a list or a dataset as rank's does."""
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", invoke("track", "--help").stdout).split())
    assert "a .txt, .csv, .tsv or .jsonl list of image paths, a Hugging Face datasets folder" in text, text
    assert "Needed with RUN" in text


def test_the_closing_line_names_an_epoch_once_where_its_name_is_the_epoch() -> None:
    """A tracker log's epochs are named "epoch N", and the closing line read "keep epoch 10 (epoch 10): ..."; a
    checkpoint's file name, which says something the number does not, is still given."""
    rows = [Result(name=f"epoch {e}", path="", epoch=e, susceptibility=0.01 * e, train_acc=0.2 * e) for e in range(4)]
    line = recommendation(rows, annotate(rows))
    assert line.startswith("keep epoch 3: train acc 60.0%") and "(epoch 3)" not in line, line
    rows = [Result(name=f"epoch_{e:03d}", path="", epoch=e, susceptibility=0.01 * e, train_acc=0.2 * e) for e in range(4)]
    assert recommendation(rows, annotate(rows)).startswith("keep epoch 3 (epoch_003): ")


@pytest.mark.parametrize("rule,kept", [("train-acc", 2), ("last", 3), ("knee", 2)])
def test_keep_rules(rule: str, kept: int) -> None:
    # epoch 0 (initialization) is no candidate; epoch 3 has no training accuracy, so "last" is the last with one
    rows = [
        Result(name=f"e{e}", path="", epoch=e, susceptibility=x, train_acc=a)
        for e, x, a in [(0, 0.001, 0.99), (1, 0.01, 0.3), (2, 0.02, 0.7), (3, 0.3, 0.65), (4, 0.5, None)]
    ]
    assert annotate(rows, rule=rule) is rows[kept]


def test_agreement_keep_rule_uses_the_runs_predictions() -> None:
    from tests.test_rules import preds_from

    truth, wrong = [0, 1, 2] * 100, [1, 2, 0] * 100
    # epochs 2-4 fit and resist (region 1 of the run) and agree; epoch 5 fits best but memorized and disagrees
    spec = [(1, 0.01, 0.10, wrong), (2, 0.02, 0.70, truth), (3, 0.03, 0.72, truth), (4, 0.04, 0.71, truth), (5, 0.9, 0.75, wrong)]
    rows = [
        Result(name=f"e{e}", path="", epoch=e, susceptibility=x, train_acc=a, details={"predictions": preds_from(p).encode()})
        for e, x, a, p in spec
    ]
    assert annotate(rows, rule="agreement") is rows[2]  # tied with epochs 2 and 4 on agreement, fits best of them
    assert annotate(rows, rule="train-acc") is rows[4]
    with pytest.raises(ValueError):
        epoch_to_keep(rows, "vibes")


def test_the_agreement_rule_fallen_back_on_checkpoints_says_why_not_that_a_tracker_log_holds_no_predictions() -> None:
    """A run of checkpoints whose epochs hold their predictions, where the agreement rule cannot compare two of them:
    the closing line said "(a tracker log holds none)" of a run that is no tracker log."""
    from tests.test_rules import preds_from

    truth = [0, 1, 2] * 100

    def epoch(e: int) -> Result:
        details = {"predictions": preds_from(truth).encode()}
        return Result(
            name=f"epoch_{e}", path="", epoch=e, susceptibility=0.01 * (e + 1), train_acc=0.5, sha256=f"{e}" * 64, details=details
        )

    fallen = "keep the first epoch of the paper's regions order (suscli rank --rule regions), since the agreement rule could not compare"
    one = [epoch(0), epoch(1)]  # the initialization is no candidate: one epoch to choose from
    line = recommendation(one, annotate(one, rule="agreement"), "agreement")
    assert line.endswith(f"Rule (agreement): {fallen} the epochs: fewer than 2 epochs after the initialization have training accuracy")
    copies = [epoch(0), epoch(1), dataclasses.replace(epoch(2), sha256="1" * 64, name="epoch_2")]  # epoch 2: epoch 1's file again
    line = recommendation(copies, annotate(copies, rule="agreement"), "agreement")
    assert line.endswith(f"Rule (agreement): {fallen} the epochs: the 2 models measured hold the same weights"), line


def make_run(folder: Path, epochs: int = 4) -> Path:
    """Tiny checkpoints whose classifier grows with the epoch, so r rises along the run."""
    for e in range(epochs):
        torch.manual_seed(e)
        model = tiny_cnn(3)
        with torch.no_grad():
            model[-1].weight.mul_(1 + 2 * e)
        suscli.save(model, folder / f"epoch_{e}.safetensors", arch=ARCH, arch_kwargs={"num_classes": 3}, image_size=8)
    return folder


def track_json(*args):
    res = runner.invoke(app, ["track", *map(str, args), "-f", "json", "--batches", "2", "--batch-size", "8"])
    return res, (json.loads(res.stdout) if res.stdout.strip() else None)


def test_track_reports_r_zeta_and_the_epoch_to_keep(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    run = make_run(tmp_path / "run")
    res, doc = track_json(run, "-d", image_folder, "--train-data", train_folder, "--plot", tmp_path / "run.png")
    assert res.exit_code == 0, res.output
    rows = doc["results"]
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3] and all(r["status"] == "ok" for r in rows)
    r = [row["susceptibility"] for row in rows]
    assert [row["zeta"] for row in rows] == pytest.approx([None, r[1], (r[1] + r[2]) / 2, sum(r[1:]) / 3])  # type: ignore[list-item]
    keep = doc["recommendation"]
    assert doc["rule"].startswith(DEFAULT_KEEP) and KEEP_RULES[DEFAULT_KEEP] in doc["rule"] and keep["epoch"] in (1, 2, 3)
    assert [row["keep"] for row in rows].count(True) == 1 and rows[[r["keep"] for r in rows].index(True)]["epoch"] == keep["epoch"]
    assert "keep" not in [row["verdict"] for row in rows]  # the kept epoch keeps its own verdict
    assert keep["text"] in res.stderr and "Rule (train-acc)" in res.stderr
    assert (tmp_path / "run.png").stat().st_size > 0
    assert len((run / "suscli-results.jsonl").read_text().splitlines()) == 4
    accs = {row["epoch"]: row["train_acc"] for row in rows if row["epoch"] > 0}
    assert keep["epoch"] == max(sorted(accs), key=lambda e: (accs[e], e))  # the default: highest training accuracy, later on ties
    for rule, kept in (("last", 3), ("agreement", None)):
        res, doc = track_json(run, "-d", image_folder, "--train-data", train_folder, "--keep", rule)  # reuses the results file
        assert res.exit_code == 0 and doc["rule"].startswith(rule) and f"Rule ({rule})" in res.stderr, res.output
        assert kept is None or doc["recommendation"]["epoch"] == kept
        assert doc["rule"] == f"{rule}: {KEEP_RULES[rule]}"  # the agreement rule met on the checkpoints' predictions


def test_the_kept_epochs_verdict_is_said_with_its_reason(tmp_path: Path, train_folder: Path) -> None:
    """The table has room for each epoch's verdict word only: a run whose middle epochs read "susceptible" and whose
    kept last epoch read "unclear" (a model too confident for the fixed cuts) said nothing of why, where `suscli
    score` on the same checkpoint gives the reason; the kept epoch's verdict is now said with it, as score says it."""
    run, unlabeled = make_run(tmp_path / "run"), tmp_path / "unlabeled-64"
    write_images(unlabeled, 64)  # batches of 32, the fixed cuts' step
    res = runner.invoke(app, ["track", str(run), "-d", str(unlabeled), "--train-data", str(train_folder), "-f", "json", "--batches", "2"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    kept = next(r for r in doc["results"] if r["keep"])
    assert kept["verdict"] and kept["verdict_why"], kept  # judged by the fixed cuts, as score judges it
    said = f"verdict of epoch {kept['epoch']} ({kept['name']}) alone, as suscli score judges it: {kept['verdict']}: {kept['verdict_why']}"
    lines = res.stderr.strip().splitlines()
    assert said in lines and lines[-1] == doc["recommendation"]["text"], res.stderr  # before the closing line, which stays last


def counted_forward_checks(monkeypatch) -> list[int]:
    """Calls of the forward randomness check's pair of passes (suscli.measure.randomness._differ), one entry each."""
    import suscli.measure.randomness as randomness

    calls: list[int] = []
    real = randomness._differ

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(randomness, "_differ", counted)
    return calls


@pytest.mark.parametrize("random", [False, True])
def test_a_runs_forward_is_checked_for_randomness_once_and_every_epoch_keeps_the_note(
    tmp_path: Path, image_folder: Path, monkeypatch, random: bool
) -> None:
    """Whether a forward is random is its network's, not its weights': every checkpoint of a run ran the check's four
    forwards again (docs/performance.md, "A run of one network"). Checked once, each epoch's row still says what it
    found."""
    from tests.test_cli_score import functional_dropout

    spec, kwargs = ("tests.test_cli_score:functional_dropout", {"always": False}) if random else (ARCH, {"num_classes": 3})
    for e in range(4):
        torch.manual_seed(e)
        model = functional_dropout(always=False) if random else tiny_cnn(3)
        suscli.save(model, tmp_path / "run" / f"epoch_{e}.safetensors", arch=spec, arch_kwargs=kwargs, image_size=8)
    calls = counted_forward_checks(monkeypatch)
    res, doc = track_json(tmp_path / "run", "-d", image_folder)
    assert res.exit_code == 0, res.output
    assert len(calls) == 2  # one check: an eval-mode pair, then a training-mode pair (the only random one here)
    noted = [[n for n in row["notes"] if "random in training mode" in n] for row in doc["results"]]
    assert len(noted) == 4 and all(len(n) == (1 if random else 0) for n in noted)


class HeldLayers(torch.nn.Module):
    """tiny_cnn with a setting that reaches its weights: a plain list of its layers (as code keeps for feature
    extraction), a bound method, or a closure over the module."""

    def __init__(self, held: str) -> None:
        super().__init__()
        self.net = tiny_cnn(3)
        self.held = {"list": lambda: [self.net], "method": lambda: self.extra_repr, "closure": lambda: lambda: self}[held]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize("held", ["list", "method", "closure"])
def test_a_runs_forward_check_keeps_no_checkpoints_weights_alive(held: str) -> None:
    """What a run remembers of each network it checked held the modules' settings as they were: a setting that
    reaches the weights kept every checkpoint of the run in memory (on the GPU) until the run ended, each one a network
    of its own, since no two such settings are equal. Such a network is checked each time and nothing of it kept."""
    import gc
    import weakref

    from suscli.measure.randomness import Checked, random_forward

    seen, weights = Checked(), []
    x = torch.rand(16, 3, 8, 8)
    for seed in range(3):
        torch.manual_seed(seed)
        model = HeldLayers(held)
        weights.append(weakref.ref(model.net[0].weight))
        assert random_forward(model, x, transform=lambda b: b, device=torch.device("cpu"), seen=seen) is None
        del model
    gc.collect()
    assert sum(w() is not None for w in weights) == 0  # each checkpoint's weights went with its model


def test_track_resumes_from_the_results_file(tmp_path: Path, image_folder: Path, monkeypatch) -> None:
    run = make_run(tmp_path / "run", epochs=3)
    _, first = track_json(run, "-d", image_folder)

    def must_not_run(*a, **k):
        raise AssertionError("an epoch already measured was measured again")

    monkeypatch.setattr(suscli.run.audit, "score_checkpoint", must_not_run)
    res, again = track_json(run, "-d", image_folder)
    assert res.exit_code == 0, res.output
    assert again["counts"]["reused"] == 3
    assert "3 of 3 epochs taken from the results file " in res.stderr and "; none measured now (--fresh" in res.stderr
    assert [r["zeta"] for r in again["results"]] == [r["zeta"] for r in first["results"]]
    assert again["recommendation"]["epoch"] is None and "needs training accuracy" in res.stderr


def test_ctrl_c_while_the_report_is_built_says_what_was_kept(tmp_path: Path, image_folder: Path, monkeypatch) -> None:
    """Every epoch measured, then Ctrl-C while the epoch to keep is chosen: the line still names what was kept."""
    run = make_run(tmp_path / "run", epochs=3)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(suscli.run.track, "annotate", interrupted)
    res, _ = track_json(run, "-d", image_folder)
    assert res.exit_code == 130, res.output
    assert res.stderr.strip() == f"interrupted: 3 results kept in {run / 'suscli-results.jsonl'}; rerun the same command to resume"


def test_the_epoch_suscli_save_wrote_numbers_the_run(tmp_path: Path, image_folder: Path) -> None:
    """Names without an epoch (init, alpha, ...) or with other numbers (m_30 for epoch 1) are numbered by the epoch
    saved with the weights: the run was refused ('no epoch number') or averaged out of order."""
    run = tmp_path / "run"
    for e, name in enumerate(["init", "m_30", "m_20", "m_10"]):
        torch.manual_seed(e)
        suscli.save(tiny_cnn(3), run / f"{name}.safetensors", arch=ARCH, arch_kwargs={"num_classes": 3}, image_size=8, epoch=e)
    res, doc = track_json(run, "-d", image_folder)
    assert res.exit_code == 0, res.output
    assert [(r["name"], r["epoch"]) for r in doc["results"]] == [("init", 0), ("m_30", 1), ("m_20", 2), ("m_10", 3)]


def test_a_best_or_last_copy_saved_with_its_epoch_is_skipped_not_a_second_checkpoint_of_it(tmp_path: Path, image_folder: Path) -> None:
    """track.md: files named as another epoch's alias (last, best, ...) are skipped with a warning. A script that saved
    its best model with suscli.save(..., epoch=N) beside epoch_N had the run refused: 'two checkpoints for epoch N'."""
    run = tmp_path / "run"
    for e in (1, 2):
        torch.manual_seed(e)
        model = tiny_cnn(3)
        for name in (f"epoch_{e}", "best" if e == 1 else "last"):
            suscli.save(model, run / f"{name}.safetensors", arch=ARCH, arch_kwargs={"num_classes": 3}, image_size=8, epoch=e)
    res, doc = track_json(run, "-d", image_folder)
    assert res.exit_code == 0, res.output
    assert [(r["name"], r["epoch"]) for r in doc["results"]] == [("epoch_1", 1), ("epoch_2", 2)]
    assert (
        "skipped 2 checkpoints named as a copy of another epoch (last, best, latest, final, or no number), whose epoch "
        "another checkpoint holds: best, last"
    ) in doc["warnings"]


def test_a_manifests_epochs_are_stored_as_the_report_gives_them(tmp_path: Path, image_folder: Path) -> None:
    """The results file kept the checkpoints' own epochs (0-2) while the report gave the manifest's (2, 4, 6): a
    notebook reading the results file plotted other epochs."""
    run = tmp_path / "run"
    for e in range(3):
        torch.manual_seed(e)
        suscli.save(tiny_cnn(3), run / f"epoch_{e}.safetensors", arch=ARCH, arch_kwargs={"num_classes": 3}, image_size=8, epoch=e)
    manifest = tmp_path / "run.json"
    manifest.write_text(json.dumps([{"path": f"run/epoch_{e}.safetensors", "epoch": 2 * e + 2} for e in range(3)]))
    res, doc = track_json(manifest, "-d", image_folder, "--results", tmp_path / "r.jsonl")
    assert res.exit_code == 0, res.output
    assert [r["epoch"] for r in doc["results"]] == [2, 4, 6]
    assert suscli.load_results(tmp_path / "r.jsonl")["epoch"].tolist() == [2, 4, 6]


def test_track_bad_input(tmp_path: Path, image_folder: Path) -> None:
    (tmp_path / "empty").mkdir()
    res, _ = track_json(tmp_path / "empty", "-d", image_folder)
    assert res.exit_code == 3 and len(res.stderr.strip().splitlines()) == 1 and "no checkpoints" in res.stderr
    assert "a run holds files ending in" in res.stderr and "pool" not in res.stderr  # track reads a run, not a pool
    res, _ = track_json(tmp_path / "missing", "-d", image_folder)
    assert res.exit_code == 3 and "run not found" in res.stderr and "pool" not in res.stderr
    res, _ = track_json()
    assert res.exit_code == 2 and "RUN of checkpoints or --log" in res.stderr
    res, _ = track_json(make_run(tmp_path / "run", epochs=1))
    assert res.exit_code == 2 and "--data" in res.stderr


def test_lightnings_trained_epoch_0_is_not_taken_for_the_initialization_silently(tmp_path: Path, image_folder: Path) -> None:
    """Lightning names its first trained epoch epoch=0-step=N: track said only "epoch 0 taken as the
    initialization" and left a trained epoch out of zeta and the choice; it now says the file was saved N steps in."""
    run = tmp_path / "run"
    for e in range(3):
        torch.manual_seed(e)
        suscli.save(tiny_cnn(3), run / f"epoch={e}-step={4 * (e + 1)}.safetensors", arch=ARCH, arch_kwargs={"num_classes": 3}, image_size=8)
    res, doc = track_json(run, "-d", image_folder)
    assert res.exit_code == 0, res.output
    assert [r["epoch"] for r in doc["results"]] == [0, 1, 2]
    assert [w for w in doc["warnings"] if "epoch=0-step=4 was saved 4 training steps in" in w and "--count-epoch-0" in w]
    res, doc = track_json(run, "-d", image_folder, "--count-epoch-0")
    assert res.exit_code == 0 and doc["warnings"] == [] and doc["results"][0]["zeta"] is not None
    (run / "epoch=0-step=4.safetensors").rename(run / "epoch=0-step=0.safetensors")  # saved before any step: the initialization
    res, doc = track_json(run, "-d", image_folder)
    assert res.exit_code == 0 and doc["warnings"] == []


def test_measurement_options_with_a_log_are_refused_not_ignored(tmp_path: Path) -> None:
    """A tracker's log holds r as the tracker measured it: `track --log run.jsonl --lr 0.5` (or settings=, results=,
    fresh= in Python) printed the log's numbers as if the options had been used, and `--arch` or `--device` (inputs=)
    as if they had loaded or run anything. Refused, before the log is read."""
    log = tmp_path / "run.jsonl"
    for given in (
        {"settings": suscli.Settings(susceptibility=suscli.SusceptibilityConfig(lr=0.5))},
        {"settings": suscli.Settings(preset="cifar10")},
        {"results": tmp_path / "r.jsonl"},
        {"fresh": True},
    ):
        with pytest.raises(UsageError, match="--log reads r as the tracker measured it"):
            suscli.track(log=log, **given)
    res = invoke("track", "--log", log, "--lr", "0.5")
    assert res.exit_code == 2 and "--log reads r as the tracker measured it" in res.stderr
    # nor do the options that load checkpoints and images: `--arch x:y --device cuda` printed the log, on a CPU machine too
    for given in ({"inputs": suscli.Inputs(arch="x:y")}, {"inputs": suscli.Inputs(device="cpu")}, {"inputs": suscli.Inputs(cache=False)}):
        with pytest.raises(UsageError, match="the options that load checkpoints and images"):
            suscli.track(log=log, **given)
    for option in (["--arch", "x:y"], ["--device", "cpu"], ["--model-batch", "2"], ["--ema"], ["--image-column", "img"]):
        res = invoke("track", "--log", log, *option)
        assert res.exit_code == 2 and "(--arch, --device, --cache-dir, ...) go with a RUN" in res.stderr, option


def test_a_run_whose_first_checkpoints_were_deleted_is_said_to_start_late(tmp_path: Path, image_folder: Path) -> None:
    """A Trainer keeping its last two checkpoints (save_total_limit=2) leaves epochs 2 and 3: zeta averaged r from
    epoch 2 without a word, where the tracker's log says it. A run saving every other epoch (2, 4) is not warned."""
    run = make_run(tmp_path / "run")
    (run / "epoch_0.safetensors").unlink()
    (run / "epoch_1.safetensors").unlink()
    res, doc = track_json(run, "-d", image_folder)
    assert res.exit_code == 0, res.output
    warning = "the run's checkpoints begin at epoch 2, 1 epoch apart after it: zeta averages r from there, not from epoch 1"
    assert any(w.startswith(warning) for w in doc["warnings"]) and warning in res.stderr
    assert late_start([0, 2, 4, 6]) is None and late_start([5, 10]) is None and late_start([1, 2]) is None and late_start([3]) is None


def test_a_run_with_epochs_deleted_inside_it_is_said_to_skip_them(tmp_path: Path, image_folder: Path) -> None:
    """timm's max_history keeps a run's best checkpoints and deletes the rest: epochs 0, 1 and 3 of a run saving every
    epoch were averaged into zeta without a word, as if the run had saved those alone. Regular spacing (every 5th) and
    runs too short to show a spacing are not warned."""
    run = make_run(tmp_path / "run")
    (run / "epoch_2.safetensors").unlink()
    res, doc = track_json(run, "-d", image_folder)
    assert res.exit_code == 0, res.output
    warning = "the run's checkpoints skip epoch 2, saved every 1 epoch elsewhere: zeta averages r over the epochs kept"
    assert any(w.startswith(warning) for w in doc["warnings"]) and warning in res.stderr
    assert gaps([0, 1, 4]) is not None and "2, 3," in (gaps([0, 1, 4]) or "")
    assert gaps([0, 5, 10, 15]) is None and gaps([1, 4]) is None and gaps([0, 1, 2, 3]) is None and gaps([3, None, 4]) is None


def test_a_run_of_two_networks_is_said_to_mix_them(tmp_path: Path, image_folder: Path) -> None:
    """A run folder holding checkpoints of two networks (an experiment's files copied into another's folder, a head
    of 5 classes from epoch 2 on) was tracked as one run: zeta averaged r of both and the rule chose among them, said
    nowhere. It is said, naming the networks and their epochs; one network is not warned."""
    run = make_run(tmp_path / "run")
    for e in (2, 3):
        torch.manual_seed(e)
        suscli.save(tiny_cnn(5), run / f"epoch_{e}.safetensors", arch=ARCH, arch_kwargs={"num_classes": 5}, image_size=8)
    res, doc = track_json(run, "-d", image_folder)
    assert res.exit_code == 0, res.output
    warning = (
        f"the run's checkpoints are of 2 networks: {ARCH} with 3 classes (epochs 0, 1), {ARCH} with 5 classes "
        "(epochs 2, 3): zeta averages r of different networks"
    )
    assert any(w.startswith(warning) for w in doc["warnings"]) and warning in res.stderr
    res, doc = track_json(make_run(tmp_path / "one"), "-d", image_folder)
    assert res.exit_code == 0 and not any("networks" in w for w in doc["warnings"]), res.output


def test_a_run_of_its_initialization_alone_is_said_to_hold_no_later_epoch(tmp_path: Path, image_folder: Path) -> None:
    """A run with its first checkpoint saved (epoch 0), or a tracker log read while the run has logged only its
    initialization, closed on "no epoch after the initialization could be measured", which says a measurement failed
    where none did. A later epoch that failed is still said so."""
    run = make_run(tmp_path / "run", epochs=1)
    res, doc = track_json(run, "-d", image_folder)
    assert res.exit_code == 0, res.output
    said = "no epoch to keep: the run holds only its initialization, epoch 0, which is no candidate"
    assert doc["recommendation"]["text"].startswith(said) and "--count-epoch-0" in doc["recommendation"]["text"] and said in res.stderr
    log = tmp_path / "run.jsonl"
    log.write_text(json.dumps({"epoch": 0, "r": 0.01, "train_acc": 0.1}) + "\n")
    res = runner.invoke(app, ["track", "--log", str(log)])
    assert res.exit_code == 0 and said in res.stderr, res.output
    (run / "epoch_1.safetensors").write_bytes(b"not a checkpoint")
    res, doc = track_json(run, "-d", image_folder)
    assert res.exit_code == 3 and doc["recommendation"]["text"] == "no epoch to keep: no epoch after the initialization could be measured"


def test_a_deepspeed_run_says_its_steps_are_no_epochs_and_tracks_by_a_manifest(tmp_path: Path, image_folder: Path) -> None:
    """DeepSpeed's save_checkpoint names its saves global_stepN, N optimizer steps, and records no epoch: track said
    "no checkpoint of run has an epoch number (name them like epoch_12.pt ...)", a name DeepSpeed gives its files
    itself. It says why, and the manifest it names is tracked; saves under epoch tags (`tag=f"epoch_{epoch}"`) are
    numbered by them, as a file is by its name."""
    from tests.conftest import one_error_line
    from tests.test_checkpoints import ARCH as DS_ARCH, KWARGS, _deepspeed_run, _tiny

    run = tmp_path / "ds"
    for step in (100, 200):
        _deepspeed_run(run, _tiny(), step)
    model = ("-d", image_folder, "--arch", DS_ARCH, "--arch-kwargs", json.dumps(KWARGS), "--image-size", "8")
    line = one_error_line(
        invoke("track", run, *model),
        3,
        f"error: no checkpoint of {run} has an epoch number: DeepSpeed's model states record none, and the folders it names them "
        "by (global_step100, global_step200) count optimizer steps, not epochs",
    )
    assert (
        f'give a manifest in {run} with the epoch each save ended, [{{"path": "global_step100/mp_rank_00_model_states.pt", "epoch": 1}}, ...]'
        in line
    )
    manifest = run / "epochs.json"
    manifest.write_text(json.dumps([{"path": f"global_step{s}/mp_rank_00_model_states.pt", "epoch": e} for e, s in ((1, 100), (2, 200))]))
    res, doc = track_json(manifest, *model)
    assert res.exit_code == 0 and [(r["epoch"], r["status"]) for r in doc["results"]] == [(1, "ok"), (2, "ok")], res.output
    for epoch, step in ((1, 100), (2, 200)):
        (run / f"global_step{step}").rename(run / f"epoch_{epoch}")
    assert [(e.name, e.epoch) for e in run_epochs(run)[0]] == [
        ("epoch_1/mp_rank_00_model_states.pt", 1),
        ("epoch_2/mp_rank_00_model_states.pt", 2),
    ]
    for old, tag in (("epoch_1", "warmup"), ("epoch_2", "tuned")):  # tags that number nothing: not said to count steps
        (run / old).rename(run / tag)
    with pytest.raises(InputError) as refused:
        run_epochs(run)
    assert (refused.value.message, refused.value.fix) == (
        f"no checkpoint of {run} has an epoch number",
        "name them like epoch_12.pt, or give a manifest with an epoch field",
    )


def test_a_run_of_saves_named_by_step_says_they_count_steps_and_tracks_by_a_manifest(tmp_path: Path, image_folder: Path) -> None:
    """A script saving step_100.safetensors, step_200.safetensors, ... (every N optimizer steps): track read the steps
    as epochs 100, 200, 300 and averaged zeta over them as epochs. It says the names count steps, and the manifest
    it names is tracked."""
    from tests.conftest import one_error_line

    run = tmp_path / "run"
    for step in (100, 200, 300):
        suscli.save(tiny_cnn(3), run / f"step_{step}.safetensors", arch=ARCH, arch_kwargs={"num_classes": 3}, image_size=8)
    line = one_error_line(
        invoke("track", run, "-d", image_folder),
        3,
        f"error: no checkpoint of {run} has an epoch number: their names (step_100, step_200, step_300) count optimizer steps, not epochs",
    )
    assert f'give a manifest in {run} with the epoch each save ended, [{{"path": "step_100.safetensors", "epoch": 1}}, ...]' in line
    manifest = run / "epochs.json"
    manifest.write_text(json.dumps([{"path": f"step_{100 * e}.safetensors", "epoch": e} for e in (1, 2, 3)]))
    res, doc = track_json(manifest, "-d", image_folder)
    assert res.exit_code == 0 and [(r["epoch"], r["status"]) for r in doc["results"]] == [(1, "ok"), (2, "ok"), (3, "ok")], res.output


@pytest.mark.parametrize(
    "names",
    [
        ["iter_1000.pth", "iter_2000.pth", "iter_3000.pth"],  # MMEngine's CheckpointHook(by_epoch=False)
        ["model_0000999.pth", "model_0001999.pth", "model_0002999.pth"],  # detectron2's PeriodicCheckpointer
    ],
)
def test_a_run_saved_by_iteration_says_they_count_steps(tmp_path: Path, image_folder: Path, names: list[str]) -> None:
    """MMEngine and detectron2 name their periodic saves by the iteration: track measured them as epochs 1000, 2000,
    3000 (999, 1999, 2999) and averaged zeta over them as epochs. It says they count steps, as for step_N names; the
    final model beside them (detectron2's model_final.pth) is no step save."""
    from tests.conftest import one_error_line

    run = tmp_path / "run"
    for name in names:
        touch(run / name)
    touch(run / "model_final.pth")
    (run / "last_checkpoint").write_text("model_final.pth")  # the pointer names a run's model for rank, no epoch
    shown = ", ".join(n.removesuffix(".pth") for n in names)
    line = one_error_line(
        invoke("track", run, "-d", image_folder, "--arch", ARCH),
        3,
        f"error: no checkpoint of {run} has an epoch number: their names ({shown}) count optimizer steps, not epochs",
    )
    assert f'[{{"path": "{names[0]}", "epoch": 1}}, ...]' in line


def test_step_saves_beside_epoch_saves_are_said_to_count_steps(tmp_path: Path, image_folder: Path) -> None:
    """A run saving epoch_N and, every N steps, step_M: the step saves were skipped as checkpoints "with no epoch
    number", which did not say their names count steps."""
    run = tmp_path / "run"
    for name in ("epoch_1", "epoch_2", "step_500"):
        suscli.save(tiny_cnn(3), run / f"{name}.safetensors", arch=ARCH, arch_kwargs={"num_classes": 3}, image_size=8)
    res, doc = track_json(run, "-d", image_folder)
    assert res.exit_code == 0 and [r["epoch"] for r in doc["results"]] == [1, 2], res.output
    assert "skipped 1 checkpoint whose name counts optimizer steps, not epochs: step_500" in res.stderr
    assert "with no epoch number" not in res.stderr


def test_a_run_of_sharded_saves_is_named_with_torchs_conversion(tmp_path: Path, image_folder: Path) -> None:
    """An FSDP run of torch.distributed.checkpoint folders (epoch_1/, epoch_2/), which suscli does not read: track said
    "no checkpoint of run has an epoch number (name them like epoch_12.pt ...)", as they are named; it names the
    format and torch's conversion, as score does, also for folders named by the step."""
    import warnings

    import torch.distributed.checkpoint as dcp

    from tests.conftest import one_error_line

    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.distributed is disabled ...: assuming ... a single process"
        for epoch in (1, 2):
            dcp.save({"model": tiny_cnn(3).state_dict()}, checkpoint_id=str(run / f"epoch_{epoch}"))
    line = one_error_line(
        invoke("track", run, "-d", image_folder), 3, f"error: {run / 'epoch_1'}: is a torch.distributed.checkpoint folder"
    )
    assert f"python -m torch.distributed.checkpoint.format_utils dcp_to_torch {run / 'epoch_1'} model.pt" in line
    for epoch in (1, 2):  # FSDP's usual step_N folders: not "their names count optimizer steps", which a manifest would not fix
        (run / f"epoch_{epoch}").rename(run / f"step_{100 * epoch}")
    one_error_line(invoke("track", run, "-d", image_folder), 3, f"error: {run / 'step_100'}: is a torch.distributed.checkpoint folder")
