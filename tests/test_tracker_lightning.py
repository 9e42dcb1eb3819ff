"""The Lightning callback in a real Trainer: r and zeta reach Lightning's own loggers (read back from their files),
match a direct measurement on the same weights, and leave the run bit for bit as it was."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from suscli.cli import app
from suscli.measure.susceptibility import SusceptibilityConfig, measure_susceptibility
from suscli.errors import InputError, UsageError
from suscli.training.tracker import SusceptibilityTracker, read_log
from tests.conftest import tiny_cnn

pl = pytest.importorskip("lightning.pytorch")
from suscli.training.lightning import SusceptibilityCallback  # noqa: E402 (exists only with Lightning)

CONFIG = SusceptibilityConfig(lr=0.05, batches=2, batch_size=16, seed=1)


class Module(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = tiny_cnn(3)
        self.losses: list[torch.Tensor] = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.losses.append(loss.detach().clone())
        self.log("train_loss", loss, on_step=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)


def fit(tmp_path: Path, callbacks: list, **trainer_args) -> tuple[Module, pl.Trainer, dict]:
    pl.seed_everything(0, verbose=False)
    data = torch.utils.data.TensorDataset(torch.randn(32, 3, 8, 8), torch.randint(3, (32,)))
    module = Module()
    init = {k: v.clone() for k, v in module.state_dict().items()}
    loggers = [pl.loggers.CSVLogger(tmp_path, name="csv"), pl.loggers.TensorBoardLogger(tmp_path, name="tb")]
    trainer = pl.Trainer(
        max_epochs=3,
        callbacks=callbacks,
        logger=loggers,
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        deterministic=True,
        **trainer_args,
    )
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=8, shuffle=True))
    return module, trainer, init


def test_lightning_loggers_receive_r_and_zeta_and_training_is_unchanged(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    inputs = torch.randn(40, 3, 8, 8)
    tracker = SusceptibilityTracker(inputs, log=tmp_path / "run.jsonl", config=CONFIG)
    tracked, trainer, init = fit(tmp_path / "with", [SusceptibilityCallback(tracker, every_n_epochs=2)])
    plain, plain_trainer, _ = fit(tmp_path / "without", [])

    # nothing in the run changed: every loss, weight, buffer and momentum buffer
    assert torch.equal(torch.stack(tracked.losses), torch.stack(plain.losses))
    a, b = tracked.state_dict(), plain.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = trainer.optimizers[0].state_dict()["state"], plain_trainer.optimizers[0].state_dict()["state"]
    assert all(torch.equal(sa[k]["momentum_buffer"], sb[k]["momentum_buffer"]) for k in sa)

    # epochs 0 and 2 (every 2nd), and the trained model at the end (epoch 3)
    records = read_log(tmp_path / "run.jsonl")
    assert [r["epoch"] for r in records] == [0, 2, 3]
    model = tiny_cnn(3)
    model.load_state_dict({k.removeprefix("net."): v for k, v in init.items()})
    assert records[0]["r"] == pytest.approx(measure_susceptibility(model, inputs, config=CONFIG).mean, abs=1e-6)
    assert records[-1]["r"] == pytest.approx(measure_susceptibility(tracked.net, inputs, config=CONFIG).mean, abs=1e-6)

    rows = list(csv.DictReader(open(next((tmp_path / "with" / "csv").rglob("metrics.csv")))))
    csv_r = [(int(row["step"]), float(row["susceptibility/r"])) for row in rows if row.get("susceptibility/r")]
    csv_zeta = [float(row["susceptibility/zeta"]) for row in rows if row.get("susceptibility/zeta")]
    assert csv_r == [(0, pytest.approx(records[0]["r"])), (8, pytest.approx(records[1]["r"])), (12, pytest.approx(records[2]["r"]))]
    assert csv_zeta == [pytest.approx(records[1]["zeta"]), pytest.approx(records[2]["zeta"])]

    events = EventAccumulator(str(next((tmp_path / "with" / "tb").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("susceptibility/zeta")] == [
        (8, pytest.approx(records[1]["zeta"])),
        (12, pytest.approx(records[2]["zeta"])),
    ]
    assert len(events.Scalars("susceptibility/seconds")) == 3 and "train_loss" in events.Tags()["scalars"]
    from_events = read_log(tmp_path / "with" / "tb")  # suscli track --log reads the folder too
    assert [r["epoch"] for r in from_events] == [0, 2, 3]
    assert [r["r"] for r in from_events] == pytest.approx([r["r"] for r in records])


def test_mixed_precision_and_gradient_accumulation_leave_the_run_unchanged(tmp_path: Path) -> None:
    """The callback runs between steps, outside autocast: r is measured in float32 and the grads being accumulated
    come back as they were."""
    setting = {"precision": "bf16-mixed", "accumulate_grad_batches": 3}  # 4 batches an epoch: a step after 3, then after 1
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG)
    tracked, trainer, _ = fit(tmp_path / "with", [SusceptibilityCallback(tracker, with_optimizer=True)], **setting)
    plain, plain_trainer, _ = fit(tmp_path / "without", [], **setting)
    assert torch.equal(torch.stack(tracked.losses), torch.stack(plain.losses))
    a, b = tracked.state_dict(), plain.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r.epoch for r in tracker.history] == [0, 1, 2, 3]

    # by steps: measured between accumulated batches too, once per optimizer step, and still nothing changes
    by_steps = SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG)
    stepped, _, _ = fit(tmp_path / "steps", [SusceptibilityCallback(by_steps, with_optimizer=True, every_n_steps=2)], **setting)
    assert torch.equal(torch.stack(stepped.losses), torch.stack(plain.losses))
    a = stepped.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r.global_step for r in by_steps.history] == [0, 2, 4, 6]  # 2 optimizer steps an epoch, 3 epochs


def test_every_n_steps_logs_each_multiple_of_n_and_track_reads_the_log(tmp_path: Path) -> None:
    inputs = torch.randn(40, 3, 8, 8)
    log = tmp_path / "run.jsonl"
    tracker = SusceptibilityTracker(inputs, log=log, config=CONFIG)
    tracked, _, init = fit(tmp_path / "with", [SusceptibilityCallback(tracker, every_n_steps=3)])  # 4 steps an epoch, 12 in all

    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [rec["global_step"] for rec in lines] == [0, 3, 6, 9, 12]  # none replaced another of its epoch
    assert [rec["epoch"] for rec in lines] == [0, 0, 1, 2, 3]  # epochs completed at that step: step 12 ends epoch 2
    model = tiny_cnn(3)
    model.load_state_dict({k.removeprefix("net."): v for k, v in init.items()})
    assert lines[0]["r"] == pytest.approx(measure_susceptibility(model, inputs, config=CONFIG).mean, abs=1e-6)
    assert lines[-1]["r"] == pytest.approx(measure_susceptibility(tracked.net, inputs, config=CONFIG).mean, abs=1e-6)
    assert lines[0]["zeta"] is None and lines[-1]["zeta"] == pytest.approx(sum(rec["r"] for rec in lines[1:]) / 4)

    rows = list(csv.DictReader(open(next((tmp_path / "with" / "csv").rglob("metrics.csv")))))
    csv_r = [(int(row["step"]), float(row["susceptibility/r"])) for row in rows if row.get("susceptibility/r")]
    assert csv_r == [(rec["global_step"], pytest.approx(rec["r"])) for rec in lines]

    assert [(r["epoch"], r["global_step"]) for r in read_log(log)] == [(0, 3), (1, 6), (2, 9), (3, 12)]  # the last of each epoch
    res = CliRunner().invoke(app, ["track", "--log", str(log), "-f", "json"])
    assert res.exit_code == 0, res.output
    assert [row["epoch"] for row in json.loads(res.stdout)["results"]] == [0, 1, 2, 3]
    assert [row["epoch"] for row in read_log(next((tmp_path / "with" / "tb").rglob("events.out.tfevents.*")))] == [0, 1, 2, 3]


def test_every_n_epochs_and_every_n_steps_are_exclusive() -> None:
    tracker = SusceptibilityTracker(torch.randn(4, 3, 8, 8), config=CONFIG)
    with pytest.raises(UsageError, match="not both"):
        SusceptibilityCallback(tracker, every_n_epochs=1, every_n_steps=5)
    for bad in ("3", 0, 2.5, True):  # "3" from a config file was a TypeError from comparing it with 1
        with pytest.raises(UsageError, match=rf"every_n_epochs takes a whole number of at least 1, got {bad!r}"):
            SusceptibilityCallback(tracker, every_n_epochs=bad)


class AccModule(Module):
    def training_step(self, batch, i):
        x, y = batch
        logits = self(x)
        self.log("train_acc", (logits.argmax(-1) == y).float().mean(), on_step=False, on_epoch=True)
        return F.cross_entropy(logits, y)


def test_a_run_resumed_from_a_checkpoint_keeps_the_training_accuracy_of_its_first_epoch(tmp_path: Path) -> None:
    """Resumed, the first epoch is measured before the module has logged any accuracy: the value the checkpoint
    saved goes into its record, which replaces one that had it (without it the epoch could never be kept)."""
    data = torch.utils.data.TensorDataset(torch.randn(32, 3, 8, 8), torch.randint(3, (32,)))
    log = tmp_path / "run.jsonl"

    def fit_from(ckpt: Path | None) -> None:
        pl.seed_everything(0, verbose=False)
        callback = SusceptibilityCallback(SusceptibilityTracker(torch.randn(40, 3, 8, 8), log=log, config=CONFIG), acc_metric="train_acc")
        trainer = pl.Trainer(
            max_epochs=3,
            callbacks=[callback, pl.callbacks.ModelCheckpoint(tmp_path / "ckpt", save_top_k=-1)],
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
        )
        trainer.fit(AccModule(), torch.utils.data.DataLoader(data, batch_size=8), ckpt_path=ckpt)

    fit_from(None)
    first = {rec["epoch"]: rec["train_acc"] for rec in read_log(log)}
    saved = torch.load(tmp_path / "ckpt" / "epoch=0-step=4.ckpt", weights_only=True)["callbacks"]
    assert [v for k, v in saved.items() if k.startswith("SusceptibilityCallback")] == [{"train_acc": first[1]}]
    fit_from(tmp_path / "ckpt" / "epoch=0-step=4.ckpt")  # resumed after one epoch: epoch 1 is measured again
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(rec["epoch"], rec["train_acc"] is None) for rec in lines[4:]] == [(1, False), (2, False), (3, False)]
    assert lines[4]["train_acc"] == first[1]


def test_a_resumed_runs_tensorboard_versions_are_read_as_one_run(tmp_path: Path) -> None:
    """Resumed with `ckpt_path=`, a run logs to a new TensorBoardLogger version_1 beside version_0: `track --log tb`
    refused them as "event files of 2 runs", and either folder alone holds part of the run. version_1 starts at the
    epoch the run resumed at, not at an initialization: the two are read as one run, as its JSONL log reads it."""
    data = torch.utils.data.TensorDataset(torch.randn(32, 3, 8, 8), torch.randint(3, (32,)))
    inputs, log = torch.randn(40, 3, 8, 8), tmp_path / "run.jsonl"

    def fit_from(ckpt: Path | None, max_epochs: int) -> None:
        pl.seed_everything(0, verbose=False)
        trainer = pl.Trainer(
            max_epochs=max_epochs,
            callbacks=[
                SusceptibilityCallback(SusceptibilityTracker(inputs, log=log, config=CONFIG)),
                pl.callbacks.ModelCheckpoint(tmp_path / "ckpt", save_top_k=-1),
            ],
            logger=pl.loggers.TensorBoardLogger(tmp_path, name="tb"),
            log_every_n_steps=1,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
        )
        trainer.fit(Module(), torch.utils.data.DataLoader(data, batch_size=8), ckpt_path=ckpt)

    fit_from(None, 3)
    fit_from(tmp_path / "ckpt" / "epoch=1-step=8.ckpt", 5)  # resumed after two epochs, trained on to five
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["version_0", "version_1"]
    res = CliRunner().invoke(app, ["track", "--log", str(tmp_path / "tb"), "-f", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [row["epoch"] for row in doc["results"]] == [0, 1, 2, 3, 4, 5]
    assert [row["susceptibility"] for row in doc["results"]] == pytest.approx([rec["r"] for rec in read_log(log)], abs=1e-6)
    assert doc["warnings"] == [
        "read 2 TensorBoard folders as one resumed run, in the order written: version_0 (epochs 0-3), version_1 (epochs 2-5); "
        "each after the first starts past epoch 0, as a resumed run does, and its epochs replace the earlier ones' from there on"
    ]
    res = CliRunner().invoke(app, ["track", "--log", str(tmp_path / "tb" / "version_1"), "-f", "json"])  # the resumed part alone
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["warnings"] == [  # its zeta averages from epoch 2: it was said nowhere
        "the log begins at epoch 2: zeta averages r from there, not from epoch 1; where the run was resumed, its earlier epochs are in "
        "the log or TensorBoard folder it wrote before (give the folder that holds both, or the tracker's JSONL)"
    ]


def test_two_callbacks_save_their_state_side_by_side(tmp_path: Path) -> None:
    """One callback by epochs and one by steps, each with its own log, in one checkpointed run: Lightning refuses two
    stateful callbacks under one key, so each has its own."""
    callbacks = [
        SusceptibilityCallback(SusceptibilityTracker(torch.randn(40, 3, 8, 8), log=tmp_path / f"{n}.jsonl", config=CONFIG), **kw)
        for n, kw in (("epochs", {}), ("steps", {"every_n_steps": 2}))
    ]
    trainer = pl.Trainer(
        max_epochs=1,
        callbacks=[*callbacks, pl.callbacks.ModelCheckpoint(tmp_path / "ckpt")],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    data = torch.utils.data.TensorDataset(torch.randn(32, 3, 8, 8), torch.randint(3, (32,)))
    trainer.fit(Module(), torch.utils.data.DataLoader(data, batch_size=8))
    saved = torch.load(next((tmp_path / "ckpt").glob("*.ckpt")), weights_only=True)["callbacks"]
    assert len([k for k in saved if k.startswith("SusceptibilityCallback")]) == 2


def test_an_acc_metric_the_module_does_not_log_is_warned_of_once(tmp_path: Path) -> None:
    """A misspelt acc_metric left every record without training accuracy, said only when `suscli track` read the
    log; the callback now warns during training, once, naming the metrics the module logs."""
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), log=tmp_path / "run.jsonl", config=CONFIG)
    with pytest.warns(UserWarning, match=r"acc_metric 'train_accuracy' is not a metric the module logs \(.*train_loss") as caught:
        fit(tmp_path, [SusceptibilityCallback(tracker, acc_metric="train_accuracy")])
    assert sum("acc_metric" in str(w.message) for w in caught) == 1
    assert all(rec["train_acc"] is None for rec in read_log(tmp_path / "run.jsonl"))


class PercentModule(Module):
    def training_step(self, batch, batch_idx):
        self.log("acc_pct", 40.0)  # an accuracy logged as a percentage
        return super().training_step(batch, batch_idx)


def test_an_acc_metric_that_is_no_fraction_is_warned_of_not_raised(tmp_path: Path) -> None:
    """tracker.measure refuses a train_acc outside 0-1 (a percentage showed as 4000% in `suscli track --log`); raised
    from the callback, that ended the user's training run at the first measurement after the metric was logged. The
    run goes on, with one warning, and the records get no training accuracy."""
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), log=tmp_path / "run.jsonl", config=CONFIG)
    pl.seed_everything(0, verbose=False)
    data = torch.utils.data.TensorDataset(torch.randn(32, 3, 8, 8), torch.randint(3, (32,)))
    trainer = pl.Trainer(
        max_epochs=3,
        callbacks=[SusceptibilityCallback(tracker, acc_metric="acc_pct")],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    with pytest.warns(
        UserWarning, match=r"acc_metric 'acc_pct': train_acc takes a fraction from 0 to 1, got 40\.0 \(a percentage"
    ) as caught:
        trainer.fit(PercentModule(), torch.utils.data.DataLoader(data, batch_size=8))
    assert trainer.current_epoch == 3 and sum("acc_pct" in str(w.message) for w in caught) == 1
    records = read_log(tmp_path / "run.jsonl")
    assert len(records) == 4 and all(rec["train_acc"] is None for rec in records)


def test_a_measurement_that_fails_after_the_first_warns_and_training_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A callback that raised ended the user's training run, hours in, for what only its records lose (here the log
    cannot be written at the third measurement). Later failures warn and the run goes on; the first still raises,
    before anything is trained."""
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), log=tmp_path / "run.jsonl", config=CONFIG)
    measure, calls = tracker.measure, []

    def failing(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(args[1])
        if len(calls) == 3:
            raise InputError("cannot write tracker log run.jsonl: No space left on device")
        return measure(*args, **kwargs)

    monkeypatch.setattr(tracker, "measure", failing)
    with pytest.warns(UserWarning, match=r"susceptibility not measured at epoch 2, step 8: cannot write tracker log .*; training goes on"):
        module, trainer, _ = fit(tmp_path, [SusceptibilityCallback(tracker)])
    assert trainer.current_epoch == 3 and calls == [0, 1, 2, 3]
    assert [r["epoch"] for r in read_log(tmp_path / "run.jsonl")] == [0, 1, 3]
    first = SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG)
    monkeypatch.setattr(first, "measure", lambda *a, **k: (_ for _ in ()).throw(InputError("the model returned tuple")))
    with pytest.raises(InputError, match="the model returned tuple"):
        fit(tmp_path / "first", [SusceptibilityCallback(first)])


class ManualModule(pl.LightningModule):
    """Manual optimization that measures with `self.optimizers()`, Lightning's wrapper of the SGD optimizer, at the
    first batch of every epoch; `r` holds what that read and what the SGD optimizer itself reads."""

    def __init__(self, measure: bool):
        super().__init__()
        self.net, self.measure, self.automatic_optimization = tiny_cnn(3), measure, False
        self.r: list[tuple[float, float]] = []

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        if self.measure and batch_idx == 0:
            inputs = torch.randn(40, 3, 8, 8, generator=torch.Generator().manual_seed(1))
            self.r.append(
                tuple(
                    SusceptibilityTracker(inputs, config=CONFIG).measure(self.net, self.current_epoch, optimizer=o).r
                    for o in (opt, opt._optimizer)
                )
            )
        x, y = batch
        opt.zero_grad()
        self.manual_backward(F.cross_entropy(self.net(x), y))
        opt.step()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def test_a_trainers_wrapped_optimizer_steps_as_the_optimizer_it_wraps() -> None:
    """LightningOptimizer.step is the trainer's step (its closure, its precision plugin, its step count): measured
    with it, a manual-optimization run counted every batch of the measurement as a step of its own (global step 8,
    not 4), read r through it, and ended in other weights."""
    data = torch.utils.data.TensorDataset(torch.randn(32, 3, 8, 8), torch.randint(3, (32,)))
    runs = []
    for measure in (False, True):
        pl.seed_everything(0, verbose=False)
        module = ManualModule(measure)
        trainer = pl.Trainer(
            max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu"
        )
        trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=16))
        runs.append((trainer.global_step, module.state_dict()))
    assert runs[0][0] == runs[1][0] == 4
    assert all(torch.equal(v, runs[1][1][k]) for k, v in runs[0][1].items())
    assert len(module.r) == 2 and all(wrapped == plain for wrapped, plain in module.r)


def test_the_unlabeled_inputs_where_the_tracker_goes_are_a_usage_error_when_the_callback_is_made() -> None:
    """SusceptibilityCallback(images) (the tracker's inputs, passed where the tracker goes) was accepted, and the
    training run failed as it started with "AttributeError: 'Tensor' object has no attribute 'history'"."""

    for wrong in (torch.rand(8, 3, 8, 8), "data/unlabeled"):
        with pytest.raises(UsageError, match=r"SusceptibilityCallback tracker takes a suscli.SusceptibilityTracker, got (Tensor|str)"):
            SusceptibilityCallback(wrong)  # type: ignore[arg-type]
