"""The Hugging Face Trainer callback in a real Trainer: r and zeta reach state.log_history and the TensorBoard
report (read back from its event file), match a direct measurement on the same weights, and leave the run bit for
bit as it was."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner
from torch import nn

from suscli.cli import app
from suscli.errors import UsageError
from suscli.measure.susceptibility import SusceptibilityConfig, measure_susceptibility
from suscli.training.tracker import SusceptibilityTracker, read_log
from tests.conftest import tiny_cnn

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")
from suscli.training.huggingface import SusceptibilityTrainerCallback  # noqa: E402

CONFIG = SusceptibilityConfig(lr=0.05, batches=2, batch_size=16, seed=1)


class Classifier(nn.Module):
    """What the Trainer expects: keyword inputs, a dict with the loss when labels are given."""

    def __init__(self):
        super().__init__()
        self.net = tiny_cnn(3)

    def forward(self, pixel_values, labels=None):
        logits = self.net(pixel_values)
        return {"logits": logits} if labels is None else {"loss": F.cross_entropy(logits, labels), "logits": logits}


class Images(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(32, 3, 8, 8, generator=g), torch.randint(3, (32,), generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"pixel_values": self.x[i], "labels": self.y[i]}


def arguments(out: Path, **settings) -> transformers.TrainingArguments:
    """The Trainer's arguments of these tests: 3 epochs on the CPU, reported to TensorBoard, nothing saved, unless
    `settings` say otherwise."""
    settings = {"num_train_epochs": 3, "save_strategy": "no", "learning_rate": 0.1, **settings}
    return transformers.TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=8,
        logging_steps=1,
        report_to=["tensorboard"],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
        dataloader_num_workers=0,
        **settings,
    )


def train(out: Path, tracker: SusceptibilityTracker | None, every: dict | None = None, **settings):
    transformers.set_seed(0)
    model = Classifier()
    init = {k: v.clone() for k, v in model.net.state_dict().items()}
    trainer = transformers.Trainer(model=model, args=arguments(out, **settings), train_dataset=Images())
    if tracker is not None:
        trainer.add_callback(SusceptibilityTrainerCallback(trainer, tracker, **(every or {"every_n_epochs": 2})))
    trainer.train()
    return trainer, init


def test_trainer_log_history_and_tensorboard_receive_r_and_zeta_and_training_is_unchanged(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    inputs = torch.randn(40, 3, 8, 8)
    tracker = SusceptibilityTracker(inputs, log=tmp_path / "run.jsonl", config=CONFIG)
    tracked, init = train(tmp_path / "with", tracker)
    plain, _ = train(tmp_path / "without", None)

    losses = [[h["loss"] for h in t.state.log_history if "loss" in h] for t in (tracked, plain)]
    assert len(losses[0]) == 12 and losses[0] == losses[1]
    a, b = tracked.model.state_dict(), plain.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    sa, sb = tracked.optimizer.state_dict()["state"], plain.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k][n], sb[k][n]) for k in sa for n in sa[k])

    records = read_log(tmp_path / "run.jsonl")
    assert [r["epoch"] for r in records] == [0, 2, 3]  # the start, every 2nd epoch, the last
    start = tiny_cnn(3)
    start.load_state_dict(init)
    assert records[0]["r"] == pytest.approx(measure_susceptibility(start, inputs, config=CONFIG).mean, abs=1e-6)
    assert records[-1]["r"] == pytest.approx(measure_susceptibility(tracked.model, inputs, config=CONFIG).mean, abs=1e-6)

    logged = [h for h in tracked.state.log_history if "susceptibility/r" in h]
    assert [(h["step"], h["susceptibility/r"]) for h in logged] == [(0, records[0]["r"]), (8, records[1]["r"]), (12, records[2]["r"])]
    assert "susceptibility/zeta" not in logged[0] and logged[-1]["susceptibility/zeta"] == pytest.approx(records[-1]["zeta"])

    events = EventAccumulator(str(next((tmp_path / "with").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/susceptibility/zeta")] == [
        (8, pytest.approx(records[1]["zeta"])),
        (12, pytest.approx(records[2]["zeta"])),
    ]
    from_events = read_log(next((tmp_path / "with").rglob("events.out.tfevents.*")))  # suscli track --log reads it too
    assert [r["epoch"] for r in from_events] == [0, 2, 3]
    assert [r["r"] for r in from_events] == pytest.approx([r["r"] for r in records])


def test_mixed_precision_and_gradient_accumulation_leave_the_run_unchanged(tmp_path: Path) -> None:
    setting = {"bf16": True, "gradient_accumulation_steps": 3}
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG)
    tracked, _ = train(tmp_path / "with", tracker, **setting)
    plain, _ = train(tmp_path / "without", None, **setting)
    assert [h.get("loss") for h in plain.state.log_history] == [
        h.get("loss") for h in tracked.state.log_history if "susceptibility/r" not in h
    ]
    a, b = tracked.model.state_dict(), plain.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r.epoch for r in tracker.history] == [0, 2, 3]

    # by steps: after every optimizer step (not between accumulated batches), and still nothing changes
    by_steps = SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG)
    stepped, _ = train(tmp_path / "steps", by_steps, every={"every_n_steps": 1}, **setting)
    assert [h.get("loss") for h in plain.state.log_history] == [
        h.get("loss") for h in stepped.state.log_history if "susceptibility/r" not in h
    ]
    a = stepped.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r.global_step for r in by_steps.history] == list(range(plain.state.global_step + 1))


def test_a_bf16_runs_records_are_the_float32_measurement_of_its_weights(tmp_path: Path) -> None:
    """Under bf16 the Trainer's Accelerator runs the model's forward under autocast (a patched `forward`): measured
    through it, the start's r read 0.0012 where the same weights score 0.019."""
    inputs = torch.randn(40, 3, 8, 8)
    tracker = SusceptibilityTracker(inputs, config=CONFIG)
    tracked, init = train(tmp_path / "bf16", tracker, every={"every_n_epochs": 3}, bf16=True)
    start, end = tiny_cnn(3), tiny_cnn(3)
    start.load_state_dict(init)
    end.load_state_dict(tracked.model.net.state_dict())
    assert [r.epoch for r in tracker.history] == [0, 3]
    assert tracker.history[0].r == pytest.approx(measure_susceptibility(start, inputs, config=CONFIG).mean, abs=1e-6)
    assert tracker.history[-1].r == pytest.approx(measure_susceptibility(end, inputs, config=CONFIG).mean, abs=1e-6)


def test_every_n_steps_logs_each_multiple_of_n_and_track_reads_the_log(tmp_path: Path) -> None:
    inputs = torch.randn(40, 3, 8, 8)
    log = tmp_path / "run.jsonl"
    tracker = SusceptibilityTracker(inputs, log=log, config=CONFIG)
    tracked, init = train(tmp_path / "with", tracker, every={"every_n_steps": 3})  # 4 steps an epoch, 12 in all

    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [rec["global_step"] for rec in lines] == [0, 3, 6, 9, 12]  # none replaced another of its epoch
    assert [rec["epoch"] for rec in lines] == [0, 0, 1, 2, 3]  # epochs completed at that step
    start = tiny_cnn(3)
    start.load_state_dict(init)
    assert lines[0]["r"] == pytest.approx(measure_susceptibility(start, inputs, config=CONFIG).mean, abs=1e-6)
    assert lines[-1]["r"] == pytest.approx(measure_susceptibility(tracked.model, inputs, config=CONFIG).mean, abs=1e-6)
    assert lines[0]["zeta"] is None and lines[-1]["zeta"] == pytest.approx(sum(rec["r"] for rec in lines[1:]) / 4)

    logged = [h for h in tracked.state.log_history if "susceptibility/r" in h]
    assert [(h["step"], h["susceptibility/r"]) for h in logged] == [(rec["global_step"], rec["r"]) for rec in lines]

    assert [(r["epoch"], r["global_step"]) for r in read_log(log)] == [(0, 3), (1, 6), (2, 9), (3, 12)]  # the last of each epoch
    res = CliRunner().invoke(app, ["track", "--log", str(log), "-f", "json"])
    assert res.exit_code == 0, res.output
    assert [row["epoch"] for row in json.loads(res.stdout)["results"]] == [0, 1, 2, 3]
    events = next((tmp_path / "with").rglob("events.out.tfevents.*"))
    assert [row["epoch"] for row in read_log(events)] == [0, 1, 2, 3]


def test_a_run_ended_mid_epoch_by_max_steps_logs_its_final_model_as_the_epoch_it_ended(tmp_path: Path) -> None:
    """max_steps=10 at 4 steps an epoch ends 2.5 epochs in: rounded, the final model was logged as epoch 2 and replaced
    epoch 2's record; and with every_n_epochs=3 the final model of max_steps=6 (1.5 epochs) was not measured at all."""
    inputs = torch.randn(40, 3, 8, 8)
    tracker = SusceptibilityTracker(inputs, log=tmp_path / "run.jsonl", config=CONFIG)
    tracked, _ = train(tmp_path / "ten", tracker, every={"every_n_epochs": 1}, max_steps=10)
    records = read_log(tmp_path / "run.jsonl")
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]  # the third epoch, cut short, as Lightning counts it
    assert records[-1]["r"] == pytest.approx(measure_susceptibility(tracked.model, inputs, config=CONFIG).mean, abs=1e-6)
    assert records[2]["r"] != records[3]["r"]  # epoch 2's own record is kept

    sparse = SusceptibilityTracker(inputs, config=CONFIG)
    tracked, _ = train(tmp_path / "six", sparse, every={"every_n_epochs": 3}, max_steps=6)
    assert [r.epoch for r in sparse.history] == [0, 2]
    assert sparse.history[-1].r == pytest.approx(measure_susceptibility(tracked.model, inputs, config=CONFIG).mean, abs=1e-6)


def test_every_n_epochs_and_every_n_steps_are_exclusive(tmp_path: Path) -> None:
    trainer = transformers.Trainer(model=Classifier(), args=transformers.TrainingArguments(output_dir=str(tmp_path), use_cpu=True))
    tracker = SusceptibilityTracker(torch.randn(4, 3, 8, 8), config=CONFIG)
    with pytest.raises(UsageError, match="not both"):
        SusceptibilityTrainerCallback(trainer, tracker, every_n_epochs=1, every_n_steps=5)


class StopAfter(transformers.TrainerCallback):
    """A run cut short after `epochs` epochs, as a crash or a lost node would, its checkpoints kept."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_epoch_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
        control.should_training_stop = round(state.epoch) >= self.epochs


def test_a_resumed_trainers_tensorboard_folders_are_read_as_one_run(tmp_path: Path) -> None:
    """`trainer.train(resume_from_checkpoint=True)` opens a second TensorBoard folder (runs/TIME_HOST) beside the
    first under the same output_dir: `track --log` refused the output_dir as "event files of 2 runs", and either
    folder alone holds part of the run. The second starts at the epoch it resumed at: they are one run, read in the
    order written, as the JSONL log reads it."""
    out, inputs = tmp_path / "out", torch.randn(40, 3, 8, 8)

    def trainer(*callbacks: transformers.TrainerCallback) -> transformers.Trainer:
        transformers.set_seed(0)
        t = transformers.Trainer(model=Classifier(), args=arguments(out, num_train_epochs=4, save_strategy="epoch"), train_dataset=Images())
        tracker = SusceptibilityTracker(inputs, log=out / "run.jsonl", config=CONFIG)
        for callback in (SusceptibilityTrainerCallback(t, tracker, every_n_epochs=1), *callbacks):
            t.add_callback(callback)
        return t

    trainer(StopAfter(2)).train()
    time.sleep(1.1)  # the folder is named by the second training started in
    trainer().train(resume_from_checkpoint=True)
    folders = sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("*tfevents*"))
    assert len(folders) == 2 and all(f.startswith("runs/") for f in folders)

    res = CliRunner().invoke(app, ["track", "--log", str(out), "-f", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [row["epoch"] for row in doc["results"]] == [0, 1, 2, 3, 4]
    assert [row["susceptibility"] for row in doc["results"]] == pytest.approx([rec["r"] for rec in read_log(out / "run.jsonl")], abs=1e-6)
    assert doc["warnings"] == [
        f"read 2 TensorBoard folders as one resumed run, in the order written: {folders[0]} (epochs 0-2), {folders[1]} (epochs 2-4); "
        "each after the first starts past epoch 0, as a resumed run does, and its epochs replace the earlier ones' from there on"
    ]


def test_the_unlabeled_inputs_where_the_tracker_goes_are_a_usage_error_when_the_callback_is_made() -> None:
    """SusceptibilityTrainerCallback(trainer, images) (the tracker's inputs where the tracker goes) was accepted, and
    the training run failed as it started with an AttributeError from inside the callback."""

    for wrong in (torch.rand(8, 3, 8, 8), "data/unlabeled"):
        with pytest.raises(
            UsageError, match=r"SusceptibilityTrainerCallback tracker takes a suscli.SusceptibilityTracker, got (Tensor|str)"
        ):
            SusceptibilityTrainerCallback(None, wrong)  # type: ignore[arg-type]
