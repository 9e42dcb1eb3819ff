"""suscli.training.tracker in a training loop: it leaves training bit for bit as it was, steps like the authors with an
optimizer, and writes the log that `suscli track --log` reads."""

from __future__ import annotations

import contextlib
import copy
import json
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.optim.optimizer import register_optimizer_step_post_hook
from typer.testing import CliRunner

from suscli.cli import app
from suscli.errors import InputError, UsageError
from suscli.run.epochs import AGREEMENT_FELL_BACK, KEEP_RULES
from suscli.measure.susceptibility import TRACKER_READING, SusceptibilityConfig, batch_indices, measure_susceptibility, random_labels
from suscli.training.tracker import SusceptibilityTracker, read_log, settings_warning
from tests.conftest import tiny_cnn

CONFIG = SusceptibilityConfig(lr=0.05, batches=2, batch_size=16, seed=1)


def setup(seed: int = 0):
    """A tiny model, SGD with momentum and weight decay under a step schedule, random data."""
    torch.manual_seed(seed)
    model = tiny_cnn(3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x, y = torch.randn(48, 3, 8, 8), torch.randint(3, (48,))
    return model, opt, sched, x, y


def train_epoch(model, opt, sched, x, y) -> float:
    """One epoch of minibatch SGD (dropout draws from the global RNG); returns the eval-mode training accuracy."""
    model.train()
    for i in range(0, len(x), 16):
        loss = F.cross_entropy(model(x[i : i + 16]), y[i : i + 16])
        opt.zero_grad()
        loss.backward()
        opt.step()
    sched.step()
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


def snapshot(model, opt) -> dict:
    return {
        "model": copy.deepcopy(model.state_dict()),
        "opt": copy.deepcopy(opt.state_dict()),
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "modes": [m.training for m in model.modules()],
    }


def assert_same(a: dict, b: dict) -> None:
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["opt"]["param_groups"] == b["opt"]["param_groups"]  # lr, momentum, weight decay, initial_lr
    assert a["opt"]["state"].keys() == b["opt"]["state"].keys()
    for k, state in a["opt"]["state"].items():
        assert state.keys() == b["opt"]["state"][k].keys()
        assert all(
            torch.equal(v, b["opt"]["state"][k][n]) if isinstance(v, torch.Tensor) else v == b["opt"]["state"][k][n]
            for n, v in state.items()
        )
    assert all((g is None and h is None) or torch.equal(g, h) for g, h in zip(a["grads"], b["grads"]))
    assert a["modes"] == b["modes"]


@pytest.mark.parametrize("with_optimizer", [False, True])
def test_measuring_changes_nothing_bit_for_bit(with_optimizer: bool) -> None:
    model, opt, sched, x, y = setup()
    train_epoch(model, opt, sched, x, y)  # momentum buffers exist, the lr has moved, .grad holds the last batch's
    model[5].train()  # a mixed train/eval setting must come back as it was
    grads = [p.grad for p in model.parameters()]
    before = snapshot(model, opt)
    SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG).measure(model, 1, optimizer=opt if with_optimizer else None)
    assert_same(before, snapshot(model, opt))
    assert all(p.grad is g for p, g in zip(model.parameters(), grads))


def test_measured_in_float32_inside_the_loops_autocast() -> None:
    """A loop that wraps its whole epoch in bf16 autocast calls the tracker inside it: r is still float32's, the
    number `suscli score` gives on the saved checkpoint, and the loop's autocast is on again afterwards."""
    model, *_ = setup()
    inputs = torch.randn(40, 3, 8, 8)
    plain = SusceptibilityTracker(inputs, config=CONFIG).measure(model, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = SusceptibilityTracker(inputs, config=CONFIG).measure(model, 1)
        assert torch.is_autocast_enabled("cpu")
    assert mixed.r == plain.r


@pytest.mark.parametrize("with_optimizer", [False, True])
def test_frozen_layers_step_as_on_the_saved_checkpoint_and_stay_frozen(with_optimizer: bool) -> None:
    """A fine-tuning loop freezes the first conv: the plain step still moves every weight, as suscli score does on
    the checkpoint (whose weights all load trainable); the optimizer's step moves only what it trains. Nothing
    about the freezing changes."""
    model, *_ = setup()
    checkpoint = copy.deepcopy(model)
    for p in model[0].parameters():
        p.requires_grad_(False)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    inputs = torch.randn(40, 3, 8, 8)
    before = snapshot(model, opt)
    frozen = SusceptibilityTracker(inputs, config=CONFIG).measure(model, 1, optimizer=opt if with_optimizer else None)
    assert_same(before, snapshot(model, opt))
    assert [p.requires_grad for p in model.parameters()] == [False, False] + [True] * 4
    if not with_optimizer:
        assert frozen.r == SusceptibilityTracker(inputs, config=CONFIG).measure(checkpoint, 1).r


class Residual(torch.nn.Module):
    """A residual block whose branch goes through `drop` (stochastic depth), and a functional dropout in forward."""

    def __init__(self, drop: torch.nn.Module, p: float = 0.0):
        super().__init__()
        self.conv, self.drop, self.p = torch.nn.Conv2d(3, 3, 3, padding=1), drop, p
        self.head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.dropout(x + self.drop(self.conv(x)), self.p, training=self.training))


class ConvNextDropPath(torch.nn.Module):
    """transformers' per-model copy of timm's DropPath, by name."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = (torch.rand(len(x), 1, 1, 1) > 0.5).float()
        return x * keep / 0.5 if self.training else x


def test_stochastic_depth_is_off_and_the_global_rng_untouched() -> None:
    """A network trained with stochastic depth (timm's drop_path_rate) reads what its checkpoint reads, where suscli
    builds it without drop rates: the same r every time, and the training loop's RNG is not moved, not even by a
    functional dropout in forward."""
    from torchvision.ops import StochasticDepth

    inputs = torch.randn(40, 3, 8, 8)
    torch.manual_seed(0)
    plain = Residual(torch.nn.Identity())
    r = SusceptibilityTracker(inputs, config=CONFIG).measure(plain, 1).r
    for drop in (StochasticDepth(0.5, "row"), ConvNextDropPath()):
        model = Residual(drop)
        model.load_state_dict(plain.state_dict())
        rng = torch.get_rng_state()
        assert SusceptibilityTracker(inputs, config=CONFIG).measure(model, 1).r == r
        assert torch.equal(torch.get_rng_state(), rng)
    functional = Residual(torch.nn.Identity(), p=0.5)
    rng = torch.get_rng_state()
    with pytest.warns(UserWarning, match="random in training mode outside its dropout modules"):  # and said so
        SusceptibilityTracker(inputs, config=CONFIG).measure(functional, 1)
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize("block", [torch.no_grad, torch.inference_mode])
def test_measured_inside_the_loops_no_grad_block(block) -> None:
    """A loop that measures where it evaluates, inside torch.no_grad() or inference_mode(), gets the same r (it
    raised autograd's "element 0 of tensors does not require grad"), with its optimizer too, and its block is
    still in force afterwards."""
    model, opt, sched, x, y = setup()
    train_epoch(model, opt, sched, x, y)
    inputs = torch.randn(40, 3, 8, 8)
    want = [SusceptibilityTracker(inputs, config=CONFIG).measure(model, 1, optimizer=o).r for o in (None, opt)]
    before = snapshot(model, opt)
    with block():
        got = [SusceptibilityTracker(inputs, config=CONFIG).measure(model, 1, optimizer=o).r for o in (None, opt)]
        assert not torch.is_grad_enabled()
    assert got == want
    assert_same(before, snapshot(model, opt))
    train_epoch(model, opt, sched, x, y)  # and training goes on


@pytest.mark.parametrize("outside", [True, False])
def test_inputs_made_inside_inference_mode_are_measured(outside: bool) -> None:
    """Unlabeled inputs made in the loop's torch.inference_mode() block (where it evaluates) are inference tensors:
    the measurement's first forward saved them for its gradient and raised autograd's "Inference tensors cannot be
    saved for backward", called in that block or after it. They give the r of the same values made outside it."""
    model, *_ = setup()
    inputs = torch.randn(40, 3, 8, 8)
    want = [SusceptibilityTracker(inputs, config=CONFIG).measure(model, 1).r, measure_susceptibility(model, inputs, config=CONFIG).mean]
    with torch.inference_mode():
        made = inputs.clone()
    with contextlib.nullcontext() if outside else torch.inference_mode():
        got = [SusceptibilityTracker(made, config=CONFIG).measure(model, 1).r, measure_susceptibility(model, made, config=CONFIG).mean]
    assert got == want


def test_a_fresh_optimizer_gets_no_state() -> None:
    model, opt, *_ = setup()
    SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG).measure(model, 0, optimizer=opt)
    assert not opt.state and all(p.grad is None for p in model.parameters())


def test_tracked_training_ends_bit_identical_to_untracked_training(tmp_path: Path) -> None:
    runs = []
    for tracked in (False, True):
        model, opt, sched, x, y = setup()
        tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), log=tmp_path / f"{tracked}.jsonl", config=CONFIG)
        for epoch in range(3):
            if tracked:
                tracker.measure(model, epoch, optimizer=opt)
                tracker.measure(model, epoch)
            train_epoch(model, opt, sched, x, y)
        runs.append(snapshot(model, opt))
    assert_same(*runs)


def test_optimizer_step_is_the_training_optimizers_own() -> None:
    """Against the straightforward computation: a copy of model and optimizer, one real step on the batch."""
    model, opt, sched, x, y = setup()
    train_epoch(model, opt, sched, x, y)
    inputs = torch.randn(40, 3, 8, 8)
    cfg = SusceptibilityConfig(batches=1, batch_size=16, seed=4)
    tracker = SusceptibilityTracker(inputs, config=cfg)
    got = tracker.measure(model, 1, optimizer=opt)
    plain = tracker.measure(model, 1)

    m = copy.deepcopy(model)
    o = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    o.load_state_dict(copy.deepcopy(opt.state_dict()))
    m.train()
    m[5].eval()  # dropout off
    idx = next(batch_indices(40, 1, 16, seed=4))
    labels = random_labels(40, 3, seed=4)[idx]
    before = F.cross_entropy(m(inputs[idx]), labels)
    o.zero_grad()
    before.backward()
    o.step()
    with torch.no_grad():
        after = F.cross_entropy(m(inputs[idx]), labels)
    assert got.r == pytest.approx(before.item() - after.item(), rel=1e-5, abs=1e-7)
    assert got.step == "optimizer" and got.lr == 0.05 and plain.step == "sgd" and plain.lr == cfg.lr
    assert got.r != pytest.approx(plain.r)


def test_training_loop_log_read_by_suscli_track(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    model, opt, sched, x, y = setup()
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), log=log, config=CONFIG)
    acc = None
    for epoch in range(4):
        tracker.measure(model, epoch, train_acc=acc)
        acc = train_epoch(model, opt, sched, x, y)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]
    assert {"epoch", "r", "zeta", "lr", "batches", "seed", "time"} <= records[0].keys()
    assert records[0]["zeta"] is None and records[2]["zeta"] == pytest.approx((records[1]["r"] + records[2]["r"]) / 2)

    res = CliRunner().invoke(app, ["track", "--log", str(log), "-f", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [r["zeta"] for r in doc["results"]] == pytest.approx([r["zeta"] for r in records])  # type: ignore[list-item]
    assert [r["train_acc"] for r in doc["results"]] == [r["train_acc"] for r in records]
    assert doc["recommendation"]["epoch"] in (1, 2, 3) and doc["warnings"] == []
    # the agreement rule needs predictions a log does not hold: the fallback is said, not only documented
    agreement = json.loads(CliRunner().invoke(app, ["track", "--log", str(log), "-f", "json", "--keep", "agreement"]).stdout)
    assert any("--keep agreement needs the epochs' predictions" in w and "regions order chose instead" in w for w in agreement["warnings"])
    # and the closing line and `rule` say that order chose: they gave the agreement rule's words, which no epoch met
    assert agreement["rule"] == f"agreement: {AGREEMENT_FELL_BACK}" and KEEP_RULES["agreement"] not in agreement["recommendation"]["text"]
    assert agreement["recommendation"]["text"].endswith(f"Rule (agreement): {AGREEMENT_FELL_BACK}")


def test_log_resumes_and_survives_a_cut_line(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    inputs = torch.randn(40, 3, 8, 8)
    model = tiny_cnn(3)
    first = SusceptibilityTracker(inputs, log=log, config=CONFIG)
    for epoch in range(4):
        first.measure(model, epoch)
    # the run crashed after epoch 3 was logged and resumes from its epoch-2 checkpoint
    resumed = SusceptibilityTracker(inputs, log=log, config=CONFIG)
    again = resumed.measure(model, 2)
    assert again.zeta == pytest.approx(first.history[2].zeta)
    with open(log, "a") as f:
        f.write('{"epoch": 3, "r": 0.')  # killed mid-write
    assert [r["epoch"] for r in read_log(log)] == [0, 1, 2]  # the rewritten epoch 2 replaced epochs 2 and 3
    # resumed once more: the cut line is cut off, not written onto (which made the log corrupt at that line)
    SusceptibilityTracker(inputs, log=log, config=CONFIG).measure(model, 3)
    assert [r["epoch"] for r in read_log(log)] == [0, 1, 2, 3] and log.read_text().count('"r": 0.{') == 0
    res = CliRunner().invoke(app, ["track", "--log", str(log), "-f", "json"])
    assert res.exit_code == 0, res.output


def test_a_log_that_goes_back_or_ends_in_a_cut_line_is_said_so(tmp_path: Path) -> None:
    """Records of a second run appended to a log (a script run again with the same log path, two logs joined with
    cat) were read as the last run alone, the first left out without a word; a last line cut short (the run still
    writing it, or killed) was dropped without one. Both are said; a log read whole, in epoch order, gets no word."""

    def line(epoch: int, r: float) -> str:
        return json.dumps({"epoch": epoch, "r": r, "train_acc": 0.1 * epoch}) + "\n"

    log = tmp_path / "run.jsonl"
    log.write_text("".join(line(e, 0.01 * e) for e in range(6)) + "".join(line(e, 0.02 * e) for e in range(4)))
    res = CliRunner().invoke(app, ["track", "--log", str(log), "-f", "json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and [r["epoch"] for r in doc["results"]] == [0, 1, 2, 3], res.output
    said = f"tracker log {log} goes back to an earlier epoch: line 7 to epoch 0 after epoch 5"
    assert any(w.startswith(said) and "epochs 0-5 of the records before it are not read" in w for w in doc["warnings"]), doc["warnings"]
    log.write_text("".join(line(e, 0.01 * e) for e in range(6)) + "".join(line(e, 0.02 * e) for e in range(3, 5)))
    doc = json.loads(CliRunner().invoke(app, ["track", "--log", str(log), "-f", "json"]).stdout)
    assert any(w.startswith(f"tracker log {log} goes back to an earlier epoch: line 7 to epoch 3 after epoch 5") for w in doc["warnings"])
    log.write_text("".join(line(e, 0.01 * e) for e in range(3)) + line(3, 0.03)[:12])
    res = CliRunner().invoke(app, ["track", "--log", str(log), "-f", "json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and [r["epoch"] for r in doc["results"]] == [0, 1, 2], res.output
    assert f"tracker log {log}: its last line (4) is cut short" in res.stderr
    log.write_text("".join(line(e, 0.01 * e) for e in range(3)))
    assert json.loads(CliRunner().invoke(app, ["track", "--log", str(log), "-f", "json"]).stdout)["warnings"] == []


def test_a_run_resumed_with_other_settings_is_flagged(tmp_path: Path) -> None:
    """A resumed run whose tracker was built with other settings appends r on another scale to the same log:
    track --log says so, rather than averaging the two silently; resumed with the same settings, no warning."""
    model, *_ = setup()
    inputs = torch.randn(40, 3, 8, 8)
    for epoch, config in enumerate([CONFIG, CONFIG, SusceptibilityConfig(lr=0.1, batches=2, batch_size=16, seed=1)]):
        SusceptibilityTracker(inputs, log=tmp_path / "run.jsonl", config=config).measure(model, epoch, train_acc=0.5)
        result = CliRunner().invoke(app, ["track", "--log", str(tmp_path / "run.jsonl"), "-f", "json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["warnings"] == ([] if epoch < 2 else [settings_warning(read_log(tmp_path / "run.jsonl"))])
    assert "(lr differs)" in json.loads(result.stdout)["warnings"][0]


def test_a_log_measured_by_releases_that_read_r_otherwise_is_flagged(tmp_path: Path) -> None:
    """Each record carries how the release measured r: a run resumed after an upgrade that changed the measurement
    (a bf16 Trainer's r read 16x too small before one) appended r on another scale, and zeta averaged across it with
    no word. Records of another reading, or none beside some with one, are flagged as other settings are; a log
    written wholly before records carried it reads as before, without a warning."""
    model, *_ = setup()
    inputs = torch.randn(40, 3, 8, 8)
    log = tmp_path / "run.jsonl"
    for epoch in range(3):
        SusceptibilityTracker(inputs, log=log, config=CONFIG).measure(model, epoch, train_acc=0.5)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {line["reading"] for line in lines} == {TRACKER_READING}

    def warned(records: list[dict]) -> list[str]:
        log.write_text("".join(json.dumps(r) + "\n" for r in records))
        result = CliRunner().invoke(app, ["track", "--log", str(log), "-f", "json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["warnings"]

    old = [{k: v for k, v in line.items() if k != "reading"} for line in lines]
    assert warned(lines) == [] and warned(old) == []  # one reading, or none at all (a log from before): as before
    for mixed in (old[:2] + lines[2:], lines[:2] + [{**lines[2], "reading": TRACKER_READING + 1}]):
        assert warned(mixed) == [settings_warning(read_log(log))]
        assert "(reading differs)" in warned(mixed)[0] and "upgrade" in warned(mixed)[0]
    # a tracker resumed on the old log says so when it opens it (its zeta goes to the loggers before track --log runs),
    # continues it, and the log it leaves is flagged
    log.write_text("".join(json.dumps(r) + "\n" for r in old[:2]))
    with pytest.warns(
        UserWarning, match="measured by a suscli release that measured r before records said how: the epochs this tracker adds"
    ):
        resumed = SusceptibilityTracker(inputs, log=log, config=CONFIG)
    resumed.measure(model, 2, train_acc=0.5)
    assert "(reading differs)" in (settings_warning(read_log(log)) or "")
    with warnings.catch_warnings():  # a log of this release's reading alone: no word
        warnings.simplefilter("error")
        SusceptibilityTracker(inputs, log=tmp_path / "new.jsonl", config=CONFIG).measure(model, 0, train_acc=0.5)
        SusceptibilityTracker(inputs, log=tmp_path / "new.jsonl", config=CONFIG)


def test_optimizer_step_under_a_schedule_is_flagged(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    model, opt, sched, x, y = setup()
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), log=log, config=CONFIG)
    for epoch in range(3):
        tracker.measure(model, epoch, optimizer=opt, train_acc=0.5)
        train_epoch(model, opt, sched, x, y)
    res = CliRunner().invoke(app, ["track", "--log", str(log), "-f", "json"])
    assert res.exit_code == 0, res.output
    assert "followed the schedule" in json.loads(res.stdout)["warnings"][0] and "warning:" in res.stderr


def test_every_param_groups_lr_is_logged_and_a_schedule_of_a_later_group_flagged(tmp_path: Path) -> None:
    """A backbone group at a constant lr and a head group whose lr a scheduler halves: the log showed the first
    group's constant 0.01 alone, and track --log said nothing of the schedule that shrank r."""
    log = tmp_path / "run.jsonl"
    model, _, _, x, y = setup()
    head = list(model[6].parameters())
    backbone = [p for p in model.parameters() if all(p is not h for h in head)]
    opt = torch.optim.SGD([{"params": backbone, "lr": 0.01}, {"params": head, "lr": 0.1, "weight_decay": 0}], lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, [lambda e: 1.0, lambda e: 0.5**e])
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), log=log, config=CONFIG)
    for epoch in range(3):
        tracker.measure(model, epoch, optimizer=opt, train_acc=0.5)
        train_epoch(model, opt, sched, x, y)
    assert [(r["lr"], r["lrs"]) for r in read_log(log)] == [(0.01, [0.01, 0.1]), (0.01, [0.01, 0.05]), (0.01, [0.01, 0.025])]
    assert SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG).measure(model, 3).lrs is None  # the plain step: one lr
    res = CliRunner().invoke(app, ["track", "--log", str(log), "-f", "json"])
    assert res.exit_code == 0, res.output
    assert "followed the schedule (lr 0.01 to 0.1)" in json.loads(res.stdout)["warnings"][0]


def test_lightning_callback_measures_every_epoch(tmp_path: Path) -> None:
    pl = pytest.importorskip("lightning.pytorch")
    from suscli.training.lightning import SusceptibilityCallback

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = tiny_cnn(3)

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            x, y = batch
            logits = self(x)
            self.log("train_acc", (logits.argmax(-1) == y).float().mean(), on_step=False, on_epoch=True)
            return F.cross_entropy(logits, y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

    data = torch.utils.data.TensorDataset(torch.randn(32, 3, 8, 8), torch.randint(3, (32,)))
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), log=tmp_path / "run.jsonl", config=CONFIG)
    callback = SusceptibilityCallback(tracker, with_optimizer=True, acc_metric="train_acc")
    trainer = pl.Trainer(
        max_epochs=2, callbacks=[callback], logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu"
    )
    trainer.fit(Module(), torch.utils.data.DataLoader(data, batch_size=16))
    records = read_log(tmp_path / "run.jsonl")
    assert [r["epoch"] for r in records] == [0, 1, 2]  # and the trained model at the end
    assert records[0]["train_acc"] is None and all(0 <= r["train_acc"] <= 1 for r in records[1:])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_model_trained_in_half_precision_is_measured_in_float32_and_left_as_it_was(dtype: torch.dtype) -> None:
    """A bfloat16 model (Lightning's "bf16-true") made tracker.measure raise "Input type and weight type should be the
    same" inside the training loop. It is measured as float32, reading what its saved weights read, and left with the
    same Parameter objects, dtype and bits. With the training optimizer the step is its own in float32 too, its momentum
    made float32 with the weights and put back: taken in half precision, a step of lr 0.001 read r 0."""
    torch.manual_seed(0)
    half = tiny_cnn(3).to(dtype)
    as_saved = copy.deepcopy(half).float()
    x = torch.randn(32, 3, 8, 8)
    params, before = list(half.parameters()), {k: v.clone() for k, v in half.state_dict().items()}
    r = SusceptibilityTracker(x, config=CONFIG).measure(half, 1).r
    assert r == SusceptibilityTracker(x, config=CONFIG).measure(as_saved, 1).r
    optimizer = torch.optim.SGD(half.parameters(), lr=0.001, momentum=0.9)
    F.cross_entropy(half(x.to(dtype)), torch.arange(32) % 3).backward()
    optimizer.step()  # momentum buffers, in the model's precision
    optimizer.zero_grad()
    params, before = list(half.parameters()), {k: v.clone() for k, v in half.state_dict().items()}
    state = copy.deepcopy(optimizer.state_dict())
    copied = copy.deepcopy(half).float()
    copied_optimizer = torch.optim.SGD(copied.parameters(), lr=0.001, momentum=0.9)
    copied_optimizer.load_state_dict(copy.deepcopy(state))  # its momentum as float32
    got = SusceptibilityTracker(x, config=CONFIG).measure(half, 1, optimizer=optimizer).r
    assert got == SusceptibilityTracker(x, config=CONFIG).measure(copied, 1, optimizer=copied_optimizer).r and got > 0
    assert list(half.parameters()) == params and all(p.dtype == dtype for p in params)
    assert all(torch.equal(v, before[k]) and v.dtype == before[k].dtype for k, v in half.state_dict().items())
    for p, saved in zip(params, state["state"].values()):
        now = optimizer.state[p]["momentum_buffer"]
        assert now.dtype == dtype and torch.equal(now, saved["momentum_buffer"])


@pytest.mark.parametrize(
    ("text", "said"),
    [("", "has no records"), ('{"epoch": 0, "r": 0.1', r"has no whole record: its last line \(1\) is cut short")],
)
def test_a_log_with_no_whole_record_yet_is_where_the_tracker_starts(tmp_path: Path, text: str, said: str) -> None:
    """A log file made before the first epoch (tempfile.mkstemp, touch), or one whose only line a crash cut short, made
    the tracker refuse to start: "has no records (call tracker.measure(model, epoch) in the training loop)", which is
    what the loop was about to do. The tracker starts on it; `suscli track --log` still says it has no records, and
    of the cut line that it is cut short (it told a loop that had called measure to call it)."""
    log = tmp_path / "run.jsonl"
    log.write_text(text)
    tracker = SusceptibilityTracker(torch.randn(16, 3, 8, 8), log=log, config=CONFIG)
    assert tracker.history == []
    tracker.measure(tiny_cnn(3), 1)
    assert [r["epoch"] for r in read_log(log)] == [1]
    log.write_text(text)
    with pytest.raises(InputError, match=said):
        read_log(log)


def test_a_forward_random_outside_its_dropout_modules_warns_once_in_the_training_loop(tmp_path: Path) -> None:
    """score and rank note it on the row; a tracker's records have no notes, and a training loop reads warnings."""
    from tests.test_cli_score import functional_dropout

    x = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8)
    transform = lambda b: b.float() / 255  # noqa: E731
    tracker = SusceptibilityTracker(x, config=SusceptibilityConfig(batches=2, batch_size=8), num_classes=3, transform=transform)
    with pytest.warns(UserWarning, match="random in training mode"):
        tracker.measure(functional_dropout(always=False), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracker.measure(functional_dropout(always=False), 1)  # once a run, not every epoch
        SusceptibilityTracker(x, config=SusceptibilityConfig(batches=2, batch_size=8), num_classes=3, transform=transform).measure(
            tiny_cnn(), 0
        )


@pytest.mark.parametrize("with_optimizer", [False, True])
def test_gradients_accumulated_in_half_precision_keep_their_precision(with_optimizer: bool) -> None:
    """A bf16-true loop that measures between accumulated micro-batches: measuring in float32 turned the .grad being
    accumulated into float32, and the next micro-batch then summed in float32, so the run went on differently."""
    torch.manual_seed(0)
    model = tiny_cnn(3).to(torch.bfloat16)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(16, 3, 8, 8, dtype=torch.bfloat16)
    F.cross_entropy(model(x).float(), torch.arange(16) % 3).backward()  # the first micro-batch
    grads = [(p.grad, p.grad.clone()) for p in model.parameters()]
    SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG).measure(model, 1, optimizer=opt if with_optimizer else None)
    for p, (g, saved) in zip(model.parameters(), grads):
        assert p.grad is g and g.dtype == torch.bfloat16 and torch.equal(g, saved)


class Augmented(torch.utils.data.Dataset):
    """Images with a random augmentation drawn from torch's, numpy's and Python's generators, as training sets have."""

    def __len__(self) -> int:
        return 20

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        noise = torch.rand(()) + float(np.random.rand()) + random.random()
        return torch.full((3, 8, 8), float(i)) + noise, 0


@pytest.mark.parametrize("loader", [False, True])
def test_reading_the_unlabeled_inputs_leaves_the_loops_random_streams(loader: bool) -> None:
    """A tracker made from a DataLoader, between the loop's seeding and its model's initialization, drew the loader's
    base seed from torch's generator: the tracked run started from other weights than the untracked one."""
    source = torch.utils.data.DataLoader(Augmented(), batch_size=8) if loader else Augmented()
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    assert len(SusceptibilityTracker(source).inputs) == 20
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_half_precision_model_fed_in_its_own_precision_is_measured_by_the_tracker(dtype: torch.dtype) -> None:
    """A bf16-true loop's transform gives the model bfloat16 images: the tracker's first measurement, whose check
    of the forward for randomness ran the model in float32, raised "Input type (c10::BFloat16) and bias type (float)
    should be the same" there. It reads what the model's float32 copy reads on those images."""
    torch.manual_seed(0)
    half = tiny_cnn(3).to(dtype)
    pixels = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8)
    own = lambda b: (b.float() / 255).to(dtype)  # noqa: E731
    r = SusceptibilityTracker(pixels, config=CONFIG, transform=own).measure(half, 1).r
    as_float32 = SusceptibilityTracker(pixels, config=CONFIG, transform=lambda b: own(b).float()).measure(copy.deepcopy(half).float(), 1).r
    assert r == as_float32


def test_the_loops_training_accuracy_is_logged_as_a_fraction_or_refused(tmp_path: Path) -> None:
    """`correct.float().mean()` or a numpy float32 made the log's json.dumps raise after the measurement ("Object of
    type Tensor is not JSON serializable"); a percentage was logged and shown as 4000% by `suscli track --log`."""
    log = tmp_path / "run.jsonl"
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), log=log, config=CONFIG)
    model = tiny_cnn(3)
    for epoch, acc in enumerate([torch.tensor(0.25), np.float32(0.5), torch.tensor([0.75]), float("nan")], start=1):
        tracker.measure(model, epoch, train_acc=acc)
    assert [r["train_acc"] for r in read_log(log)] == [0.25, 0.5, 0.75, None]
    for wrong in (40.0, -0.1, "0.9", torch.tensor([0.5, 0.6])):
        with pytest.raises(UsageError, match="train_acc takes a fraction from 0 to 1"):
            tracker.measure(model, 5, train_acc=wrong)
    assert len(read_log(log)) == 4


def test_the_epoch_and_step_are_logged_as_whole_numbers_or_refused(tmp_path: Path) -> None:
    """A float epoch (a Trainer's state.epoch, 2.0) was logged as written, and `suscli track --log` then refused the
    whole log, "not a suscli tracker log"; a numpy or tensor epoch made the log's json.dumps raise after the measurement."""
    log = tmp_path / "run.jsonl"
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), log=log, config=CONFIG)
    model = tiny_cnn(3)
    for epoch in (np.int64(0), torch.tensor(1), 2):
        tracker.measure(model, epoch, global_step=np.int64(4 * epoch))
    assert [(r["epoch"], r["global_step"]) for r in read_log(log)] == [(0, 0), (1, 4), (2, 8)]
    for wrong in (2.0, 2.5, -1, True, "3", torch.tensor([1, 2])):
        with pytest.raises(UsageError, match="epoch takes a whole number from 0"):
            tracker.measure(model, wrong)
    with pytest.raises(UsageError, match="global_step takes a whole number from 0"):
        tracker.measure(model, 3, global_step=12.5)
    assert len(read_log(log)) == 3
    assert CliRunner().invoke(app, ["track", "--log", str(log)]).exit_code == 0


@pytest.mark.parametrize("field,value", [("r", "NaN"), ("r", "Infinity"), ("train_acc", "NaN")])
def test_a_log_line_with_a_number_that_is_not_finite_is_refused(tmp_path: Path, field: str, value: str) -> None:
    """json reads NaN and Infinity, which the tracker never writes: `track --log` showed r as "-", every later zeta as
    nan, and kept an epoch by it (exit 0)."""
    log = tmp_path / "run.jsonl"
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), log=log, config=CONFIG)
    for epoch in range(3):
        tracker.measure(tiny_cnn(3), epoch, train_acc=0.5)
    lines = log.read_text().splitlines()
    record = json.loads(lines[1])
    record[field] = float(value.replace("Infinity", "inf"))
    log.write_text("\n".join([lines[0], json.dumps(record), lines[2]]) + "\n")
    res = CliRunner().invoke(app, ["track", "--log", str(log)])
    assert res.exit_code == 3, res.output
    assert f"line 2: {field} is {float(value.replace('Infinity', 'inf'))}, not a number the tracker writes" in res.output


class Float32Momentum(torch.optim.Optimizer):
    """SGD with its momentum kept in float32 for low-precision weights, as AnyPrecisionAdamW keeps its moments."""

    def __init__(self, params, lr: float = 0.01):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    buf = self.state[p].setdefault("buf", torch.zeros_like(p, dtype=torch.float32))
                    buf.mul_(0.9).add_(p.grad.float())
                    p.add_((-group["lr"] * buf).to(p.dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_optimizers_state_comes_back_in_its_own_tensors_and_precision(dtype: torch.dtype) -> None:
    """The step's state was put back with load_state_dict, which casts every state tensor to its parameter's dtype
    and makes new tensors: float32 momentum kept for bfloat16 weights came back rounded to bfloat16."""
    torch.manual_seed(0)
    model = tiny_cnn(3).to(dtype)
    opt = Float32Momentum(model.parameters())
    F.cross_entropy(model(torch.randn(8, 3, 8, 8, dtype=dtype)).float(), torch.arange(8) % 3).backward()
    opt.step()
    held = [(p, s["buf"], s["buf"].clone()) for p, s in opt.state.items()]
    SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG).measure(model, 1, optimizer=opt)
    for p, buf, saved in held:
        assert opt.state[p]["buf"] is buf and buf.dtype == torch.float32 and torch.equal(buf, saved)


def test_reading_a_loader_with_its_own_generator_leaves_the_loops_shuffling() -> None:
    """A loop seeded the reproducible way gives its loaders one generator (DataLoader(..., generator=g)): reading the
    unlabeled loader drew from it, and the training loader that shares it shuffled in another order."""
    data = torch.utils.data.TensorDataset(torch.arange(20.0).view(20, 1, 1, 1), torch.zeros(20))
    orders = []
    for tracked in (False, True):
        g = torch.Generator().manual_seed(0)
        unlabeled = torch.utils.data.DataLoader(Augmented(), batch_size=8, shuffle=True, generator=g)
        train = torch.utils.data.DataLoader(data, batch_size=5, shuffle=True, generator=g)
        if tracked:
            SusceptibilityTracker(unlabeled)
        orders.append([int(v) for x, _ in train for v in x.flatten()])
    assert orders[0] == orders[1]


def test_a_lazy_module_before_its_first_forward_is_refused_and_left_working() -> None:
    """Measured before its first forward, a model with nn.LazyLinear was initialized by the check of its forward and
    put back with empty parameters: "mat2 must be a matrix, got 1-D tensor", then in every forward of the loop too."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(3))
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG)
    with pytest.raises(InputError, match=r"parameters 2.weight, 2.bias are not initialized yet .*run one forward"):
        tracker.measure(model, 0)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 3)
    assert tracker.measure(model, 0).r


def test_an_ema_copy_measured_with_the_training_models_optimizer_is_refused_not_read_as_zero() -> None:
    """An `AveragedModel` kept beside the model, measured with the model's optimizer: the optimizer holds none of the
    copy's parameters, so its step moved nothing and r read 0.0 at every epoch. The plain step measures the copy."""
    model, opt, sched, x, y = setup()
    train_epoch(model, opt, sched, x, y)
    ema = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.9))
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG)
    with pytest.raises(InputError, match=r"holds none of the model's \(AveragedModel\) parameters.*without optimizer="):
        tracker.measure(ema, 1, optimizer=opt)
    assert tracker.measure(ema, 1).r > 0
    assert tracker.measure(model, 1, optimizer=opt).r > 0


class KeywordOnly(torch.nn.Module):
    """A forward written for keyword calls (`model(**batch)`, as the Hugging Face Trainer makes them)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, *, pixel_values, labels=None):
        return {"logits": self.net(pixel_values)}


class AnyKeywords(KeywordOnly):
    def forward(self, **batch):
        return {"logits": self.net(batch["pixel_values"])}


def test_a_forward_taking_its_input_by_keyword_only_is_measured_by_that_keyword() -> None:
    """model(x) raised TypeError "takes 1 positional argument but 2 were given" inside the loop; a forward whose
    keywords do not say which is the input is refused in one line."""
    model, _, _, _, _ = setup()
    inputs = torch.randn(40, 3, 8, 8)
    expected = SusceptibilityTracker(inputs, config=CONFIG).measure(model, 0).r
    assert SusceptibilityTracker(inputs, config=CONFIG).measure(KeywordOnly(model), 0).r == expected
    with pytest.raises(InputError, match=r"forward takes no positional input, and no single keyword names it \(\*\*batch\)"):
        SusceptibilityTracker(inputs, config=CONFIG).measure(AnyKeywords(model), 0)


def test_errors_on_a_keyword_only_model_name_its_class_not_the_wrapper_that_calls_it_by_keyword() -> None:
    """The measurement calls a keyword-only forward through a wrapper of its own, and an error named that wrapper:
    "holds none of the model's (KeywordInput) parameters", a class the user never wrote."""
    model, opt, _, _, _ = setup()
    copy = KeywordOnly(setup()[0])
    with pytest.raises(InputError, match=r"holds none of the model's \(KeywordOnly\) parameters"):
        SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG).measure(copy, 1, optimizer=opt)


def test_a_tensor_learning_rate_comes_back_as_the_same_tensor() -> None:
    """An lr given as a tensor (as for a compiled optimizer step, whose schedule fills it in place) came back from the
    measurement as a copy in the param group: a loop holding the tensor it made, and filling it to schedule the lr,
    no longer moved the optimizer's lr. The group holds the loop's own tensor afterwards, with its value."""
    torch.manual_seed(0)
    model = tiny_cnn(3)
    lr = torch.tensor(0.01)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    F.cross_entropy(model(torch.randn(8, 3, 8, 8)), torch.arange(8) % 3).backward()
    opt.step()
    SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG).measure(model, 1, optimizer=opt)
    lr.fill_(0.005)  # the loop's schedule
    assert opt.param_groups[0]["lr"] is lr and torch.equal(opt.param_groups[0]["lr"], torch.tensor(0.005))


def test_the_optimizers_hooks_do_not_run_on_the_measurements_step() -> None:
    """The measurement stepped `optimizer.step()` itself, so every hook on it ran on the random-label step: an EMA
    updated by `register_step_post_hook` took the stepped weights three times (every EMA tensor changed, and stayed
    changed), a global hook counted three training steps, and a scheduler read the step as the loop's own, hiding its
    warning that the loop calls it before the optimizer. The optimizer's own step runs now, without its hooks; r is
    the same."""
    torch.manual_seed(0)
    model = tiny_cnn(3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    inputs = torch.randn(40, 3, 8, 8)
    without_hooks = SusceptibilityTracker(inputs, config=CONFIG).measure(model, 1, optimizer=opt).r
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    before = {k: v.clone() for k, v in ema.items()}
    calls = {"pre": 0, "post": 0, "global": 0}

    def post(optimizer, args, kwargs):
        calls["post"] += 1
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                ema[k].mul_(0.9).add_(v, alpha=0.1)

    handles = [
        opt.register_step_pre_hook(lambda o, a, k: calls.__setitem__("pre", calls["pre"] + 1)),
        opt.register_step_post_hook(post),
        register_optimizer_step_post_hook(lambda o, a, k: calls.__setitem__("global", calls["global"] + 1)),
    ]
    scheduler = torch.optim.lr_scheduler.StepLR(opt, 1)
    try:
        r = SusceptibilityTracker(inputs, config=CONFIG).measure(model, 1, optimizer=opt).r
    finally:
        for h in handles:
            h.remove()
    assert calls == {"pre": 0, "post": 0, "global": 0}
    assert all(torch.equal(ema[k], before[k]) for k in ema)
    assert r == without_hooks
    with pytest.warns(UserWarning, match=r"lr_scheduler.step\(\)` before `optimizer.step\(\)"):
        scheduler.step()  # the loop's mistake is still said


class CenteredLogits(torch.nn.Module):
    """A network whose train-mode forward keeps a running center of its logits and a count of the images seen in
    buffers, updated by assignment (`self.center = ...`, as DINO updates its center), not in place; its eval-mode
    logits are centered."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_cnn(3)
        self.register_buffer("center", torch.zeros(3))
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.training:
            self.center = 0.9 * self.center + 0.1 * out.detach().mean(0)
            self.seen = self.seen + len(x)
        return out if self.training else out - self.center


@pytest.mark.parametrize("how", ["measure_susceptibility", "tracker", "tracker with optimizer"])
def test_buffers_a_forward_reassigns_are_put_back(how: str) -> None:
    """The measurement's train-mode forwards replace such buffers with new tensors: the module is left holding its own
    buffer objects, with their values, and the measurement reads what a copy of it measured alone reads."""
    torch.manual_seed(0)
    model = CenteredLogits()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(32, 3, 8, 8), torch.randint(3, (32,))
    model.train()
    for i in range(0, 32, 16):
        opt.zero_grad()
        F.cross_entropy(model(x[i : i + 16]), y[i : i + 16]).backward()
        opt.step()
    alone = copy.deepcopy(model)
    objects = dict(model.named_buffers())
    before = snapshot(model, opt)
    inputs = torch.randn(40, 3, 8, 8)
    if how == "measure_susceptibility":
        r = measure_susceptibility(model, inputs, config=CONFIG).r
        assert r == measure_susceptibility(alone, inputs, config=CONFIG).r
    else:
        SusceptibilityTracker(inputs, config=CONFIG).measure(model, 1, optimizer=opt if how == "tracker with optimizer" else None)
    assert all(b is objects[name] for name, b in model.named_buffers())
    assert_same(before, snapshot(model, opt))


@pytest.mark.parametrize("how", ["measure_susceptibility", "tracker"])
def test_a_measurement_inside_parametrizes_cache_reads_what_it_reads_outside(how: str) -> None:
    """Inside a loop's `torch.nn.utils.parametrize.cached()` a weight_norm weight is computed once and kept: the
    measurement's second gradient went through the freed graph of the first ("Trying to backward through the graph
    a second time"), and a step would never reach the cached weight. It measures with the cache off now, reading what
    it reads outside, and the loop's cache is as it was."""
    from torch.nn.utils import parametrizations, parametrize

    torch.manual_seed(0)
    model = tiny_cnn(3)
    parametrizations.weight_norm(model[-1])
    inputs = torch.randn(40, 3, 8, 8)
    outside = measure_susceptibility(copy.deepcopy(model), inputs, config=CONFIG).r
    with parametrize.cached():
        model(inputs[:2])  # the loop's own forward fills the cache
        cache = dict(parametrize._cache)
        if how == "measure_susceptibility":
            assert measure_susceptibility(model, inputs, config=CONFIG).r == outside
        else:
            SusceptibilityTracker(inputs, config=CONFIG).measure(model, 1)
        assert parametrize._cache_enabled == 1 and parametrize._cache.keys() == cache.keys()
        assert all(parametrize._cache[k] is v for k, v in cache.items())


def test_inputs_the_model_cannot_take_are_the_measurements_input_errors_at_the_first_epoch(tmp_path: Path) -> None:
    """The tracker's check of the forward ran before the measurement, outside its checks: uint8 pixels without a
    transform (an image folder given without transform=, as the tracker decodes it) raised PyTorch's "expected scalar
    type Byte but found Float", and an empty tensor "max(): Expected reduction dim to be specified", where
    measure_susceptibility on the same inputs says what to change. The tracker now says the same."""
    model = tiny_cnn(3)
    pixels = torch.randint(0, 256, (24, 3, 8, 8), dtype=torch.uint8)
    with pytest.raises(
        InputError, match=r"the model failed on inputs of type torch.uint8, its weights being torch.float32.*b.float\(\) / 255"
    ):
        SusceptibilityTracker(pixels, config=CONFIG).measure(model, 0)
    with pytest.raises(InputError, match="no unlabeled images to measure susceptibility on"):
        SusceptibilityTracker(torch.rand(0, 3, 8, 8), config=CONFIG)
    tracker = SusceptibilityTracker(pixels, config=CONFIG, transform=lambda b: b.float() / 255)
    assert tracker.measure(model, 0).r == measure_susceptibility(model, pixels.float() / 255, config=CONFIG).mean


def process_state() -> tuple:
    """What a training process holds beside its model: every global random state, the grad mode, the default dtype,
    the thread count and the cuDNN flags."""
    cudnn = torch.backends.cudnn
    return (
        torch.get_rng_state(),
        np.random.get_state()[1].copy(),
        random.getstate(),
        torch.is_grad_enabled(),
        torch.get_default_dtype(),
        torch.get_num_threads(),
        (cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32),
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.Adam(p, lr=0.01, amsgrad=True),
        lambda p: torch.optim.AdamW(p, lr=0.01),
        lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.9, centered=True),
        lambda p: torch.optim.Adagrad(p, lr=0.01),
        lambda p: torch.optim.NAdam(p, lr=0.01),
        lambda p: torch.optim.RAdam(p, lr=0.01),
        lambda p: torch.optim.Adamax(p, lr=0.01),
        lambda p: torch.optim.ASGD(p, lr=0.01),
        lambda p: torch.optim.Rprop(p, lr=0.01),
        lambda p: torch.optim.Adadelta(p),
    ],
    ids=["adam-amsgrad", "adamw", "rmsprop", "adagrad", "nadam", "radam", "adamax", "asgd", "rprop", "adadelta"],
)
def test_every_torch_optimizers_state_its_schedule_and_the_process_are_left_bit_for_bit(make) -> None:
    """Beside SGD's momentum (test_measuring_changes_nothing_bit_for_bit): the step counts, moments, maxima and
    per-parameter step sizes torch's other optimizers keep, a OneCycleLR schedule's state, and what the process
    holds (numpy's and Python's random states too), each as it was, with the optimizer's step and without."""
    model, *_ = setup()
    opt = make(model.parameters())
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.02, total_steps=50, cycle_momentum=False)
    x, y = torch.randn(48, 3, 8, 8), torch.randint(3, (48,))
    model.train()
    for i in range(0, len(x), 16):
        opt.zero_grad()
        F.cross_entropy(model(x[i : i + 16]), y[i : i + 16]).backward()
        opt.step()
        sched.step()
    F.cross_entropy(model(x[:16]), y[:16]).backward()  # a batch's gradients, not yet stepped
    tracker = SusceptibilityTracker(torch.randn(40, 3, 8, 8), config=CONFIG)
    for optimizer in (None, opt):
        np.random.seed(0), random.seed(0)
        before, schedule, process = snapshot(model, opt), copy.deepcopy(sched.state_dict()), process_state()
        tracker.measure(model, 1, optimizer=optimizer)
        assert_same(before, snapshot(model, opt))
        assert sched.state_dict() == schedule
        after = process_state()
        assert torch.equal(after[0], process[0]) and np.array_equal(after[1], process[1]) and after[2:] == process[2:]
