"""The Hugging Face Trainer callback in a real Trainer: r and zeta reach state.log_history and the TensorBoard
report (read back from its event file), match a direct measurement on the same weights, and leave the run bit for
bit as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from suscli.susceptibility import SusceptibilityConfig, measure_susceptibility
from suscli.tracker import SusceptibilityTracker, read_log
from tests.conftest import tiny_cnn

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")
from suscli.hf_tracker import SusceptibilityTrainerCallback  # noqa: E402

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


def train(out: Path, tracker: SusceptibilityTracker | None, **settings):
    transformers.set_seed(0)
    model = Classifier()
    init = {k: v.clone() for k, v in model.net.state_dict().items()}
    args = transformers.TrainingArguments(output_dir=str(out), num_train_epochs=3, per_device_train_batch_size=8,
                                          learning_rate=0.1, logging_steps=1, report_to=["tensorboard"], save_strategy="no",
                                          use_cpu=True, seed=0, disable_tqdm=True, dataloader_num_workers=0,
                                          **settings)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Images())
    if tracker is not None:
        trainer.add_callback(SusceptibilityTrainerCallback(trainer, tracker, every_n_epochs=2))
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
        (8, pytest.approx(records[1]["zeta"])), (12, pytest.approx(records[2]["zeta"]))]
    from_events = read_log(next((tmp_path / "with").rglob("events.out.tfevents.*")))  # suscli track --log reads it too
    assert [r["epoch"] for r in from_events] == [0, 2, 3]
    assert [r["r"] for r in from_events] == pytest.approx([r["r"] for r in records])


def test_mixed_precision_and_gradient_accumulation_leave_the_run_unchanged(tmp_path: Path) -> None:
    setting = {"bf16": True, "gradient_accumulation_steps": 3}
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG)
    tracked, _ = train(tmp_path / "with", tracker, **setting)
    plain, _ = train(tmp_path / "without", None, **setting)
    assert [h.get("loss") for h in plain.state.log_history] == [h.get("loss") for h in tracked.state.log_history
                                                                if "susceptibility/r" not in h]
    a, b = tracked.model.state_dict(), plain.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r.epoch for r in tracker.history] == [0, 2, 3]
