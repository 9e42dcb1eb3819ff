"""The plain-loop tracker's writer (a TensorBoard SummaryWriter or a callable) and its sources of unlabeled inputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from suscli.cli import app
from suscli.errors import InputError
from suscli.data.images import unlabeled_source
from suscli.measure.susceptibility import SusceptibilityConfig
from suscli.training.tracker import SusceptibilityTracker, read_log, unlabeled_inputs
from tests.conftest import tiny_cnn, write_images

CONFIG = SusceptibilityConfig(lr=0.05, batches=2, batch_size=8, seed=1)


def test_summary_writer_receives_r_and_zeta_at_the_given_step(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(0)
    model = tiny_cnn(3)
    writer = SummaryWriter(tmp_path / "tb")
    tracker = SusceptibilityTracker(torch.randn(24, 3, 8, 8), config=CONFIG, writer=writer)
    records = [tracker.measure(model, epoch, step=10 * epoch, train_acc=0.5 if epoch else None) for epoch in range(3)]
    writer.close()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("susceptibility/r")] == [(10 * r.epoch, pytest.approx(r.r)) for r in records]
    assert [e.step for e in events.Scalars("susceptibility/zeta")] == [10, 20]  # none at the initialization
    assert events.Scalars("susceptibility/zeta")[-1].value == pytest.approx(records[-1].zeta)

    # suscli track reads the event file (or its folder) as it reads the JSONL log
    from_events = read_log(tmp_path / "tb")
    assert [(r["epoch"], r["train_acc"]) for r in from_events] == [(0, None), (1, 0.5), (2, 0.5)]
    assert [r["r"] for r in from_events] == pytest.approx([r.r for r in records])
    result = CliRunner().invoke(app, ["track", "--log", str(tmp_path / "tb"), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["recommendation"]["epoch"] == 2


def test_an_event_file_whose_last_measurement_is_written_in_part_is_read_without_it(tmp_path: Path) -> None:
    """A SummaryWriter flushes its queue of events as it goes, so an event file read while the run writes it (or
    after it was killed) can end on a measurement's susceptibility/epoch without its susceptibility/r: track --log
    ended in "internal error: TypeError: unsupported format string passed to NoneType.__format__". That measurement
    is left out, and said."""
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(tmp_path / "tb")
    for epoch in range(3):
        writer.add_scalar("susceptibility/epoch", epoch, epoch)
        writer.add_scalar("susceptibility/r", 0.01 * epoch, epoch)
        writer.add_scalar("susceptibility/train_acc", 0.1 * epoch, epoch)
    writer.add_scalar("susceptibility/epoch", 3, 3)  # the rest of epoch 3's measurement not yet written
    writer.close()
    result = CliRunner().invoke(app, ["track", "--log", str(tmp_path / "tb"), "-f", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [row["epoch"] for row in doc["results"]] == [0, 1, 2] and doc["recommendation"]["epoch"] == 2
    said = "1 measurement written in part left out (the run still writing the event file, or stopped while writing it): epoch 3"
    assert any(said in w for w in doc["warnings"]), doc["warnings"]
    # cut after its r: the tracker writes epoch, r, zeta, seconds, then train_acc, so a record without seconds where
    # the others have it lacks its training accuracy too (the rule kept epoch 2 over it, "last epoch 3: train acc -")
    writer = SummaryWriter(tmp_path / "cut")
    for epoch in range(4):
        for name, value in (("epoch", epoch), ("r", 0.01 * epoch), ("seconds", 0.1), ("train_acc", 0.1 * epoch))[: 2 if epoch == 3 else 4]:
            writer.add_scalar(f"susceptibility/{name}", value, epoch)
    writer.close()
    doc = json.loads(CliRunner().invoke(app, ["track", "--log", str(tmp_path / "cut"), "-f", "json"]).stdout)
    assert [row["epoch"] for row in doc["results"]] == [0, 1, 2] and any(said in w for w in doc["warnings"]), doc["warnings"]


def test_a_callable_writer_gets_a_dict_and_the_epoch() -> None:
    got = []
    tracker = SusceptibilityTracker(torch.randn(24, 3, 8, 8), config=CONFIG, writer=lambda values, step: got.append((step, values)))
    tracker.measure(tiny_cnn(3), 1)
    record = tracker.measure(tiny_cnn(3), 2, train_acc=0.5)
    assert got[1] == (
        2,
        {
            "susceptibility/epoch": 2,
            "susceptibility/r": record.r,
            "susceptibility/zeta": record.zeta,
            "susceptibility/seconds": record.seconds,
            "susceptibility/train_acc": 0.5,
        },
    )
    assert "susceptibility/train_acc" not in got[0][1]
    # seconds, which every record has, is written last: a record read with it is whole (track --log reads an event
    # file cut before it as written in part), where train_acc after it was lost without a word from a cut file
    assert [list(values)[-1] for _, values in got] == ["susceptibility/seconds"] * 2


def test_inputs_from_a_dataset_a_dataloader_or_an_image_folder(tmp_path: Path) -> None:
    x = torch.randn(20, 3, 8, 8)
    data = torch.utils.data.TensorDataset(x, torch.zeros(20, dtype=torch.long))
    assert torch.equal(unlabeled_inputs(data), x)
    assert torch.equal(unlabeled_inputs(torch.utils.data.DataLoader(data, batch_size=6)), x)
    write_images(tmp_path / "unlabeled", 5, size=8)
    pixels = unlabeled_inputs(tmp_path / "unlabeled", image_size=8)
    assert torch.equal(pixels, unlabeled_source(tmp_path / "unlabeled").decoded(8, 3)[0]) and pixels.dtype == torch.uint8
    with pytest.raises(InputError, match="image_size"):
        unlabeled_inputs(tmp_path / "unlabeled")


def test_a_compiled_model_is_measured_through_its_original_module() -> None:
    torch.manual_seed(0)
    model = tiny_cnn(3)
    inputs = torch.randn(24, 3, 8, 8)
    compiled = SusceptibilityTracker(inputs, config=CONFIG).measure(torch.compile(model), 0)  # nothing gets compiled
    assert compiled.r == SusceptibilityTracker(inputs, config=CONFIG).measure(model, 0).r


def _train_ddp_measuring_on_rank_0(rank: int, port: int, out: str) -> None:
    """One process of a two-process gloo run: rank 0 measures the DDP-wrapped model, as a loop that measures on
    the main process writes it, then both take a training step together."""
    import datetime

    import torch.distributed as dist
    import torch.nn.functional as F

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=datetime.timedelta(seconds=30))
    torch.manual_seed(0)
    model = tiny_cnn(3)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    if rank == 0:
        inputs = torch.randn(24, 3, 8, 8)
        r = SusceptibilityTracker(inputs, config=CONFIG).measure(ddp, 0).r
        Path(out).write_text(json.dumps([r, SusceptibilityTracker(inputs, config=CONFIG).measure(model, 0).r]))
    F.cross_entropy(ddp(torch.randn(8, 3, 8, 8)), torch.randint(3, (8,))).backward()
    dist.barrier()
    # Out without tearing gloo down: after a Lightning Trainer has run in the parent process, gloo's teardown at exit
    # sometimes aborts a child (SIGABRT, "terminate called without an active exception") after all its work is done.
    os._exit(0)


def test_a_ddp_model_measured_on_rank_0_alone_is_measured_through_its_module(tmp_path: Path) -> None:
    """DDP's forward syncs buffers with the other processes: through the wrapper, rank 0 alone would wait on them."""
    from tests.test_distributed import free_port

    torch.multiprocessing.spawn(_train_ddp_measuring_on_rank_0, args=(free_port(), str(tmp_path / "r.json")), nprocs=2)
    wrapped, plain = json.loads((tmp_path / "r.json").read_text())
    assert wrapped == plain


def test_an_event_file_without_susceptibility_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(tmp_path) as writer:
        writer.add_scalar("loss", 1.0, 0)
    with pytest.raises(InputError, match="no susceptibility/epoch"):
        read_log(tmp_path)


def test_a_tensorboard_whose_reader_cannot_import_is_one_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tensorboard before 2.17.1 under NumPy 2: its event reader's own import raises AttributeError (np.string_ is
    gone), which went past the ImportError the reader was guarded by, as a traceback."""
    import builtins

    real = builtins.__import__

    def old_tensorboard(name, *args, **kwargs):
        if name.startswith("tensorboard.backend.event_processing"):
            raise AttributeError("`np.string_` was removed in the NumPy 2.0 release. Use `np.bytes_` instead.")
        return real(name, *args, **kwargs)

    (tmp_path / "events.out.tfevents.1.host").write_bytes(b"")
    monkeypatch.setattr(builtins, "__import__", old_tensorboard)
    with pytest.raises(InputError, match=r"cannot be imported here \(AttributeError: `np.string_` was removed") as e:
        read_log(tmp_path)
    assert "pip install -U 'suscli[tensorboard]'" in (e.value.fix or "")


def test_a_resumed_runs_event_files_are_read_in_order_and_runs_are_told_apart(tmp_path: Path) -> None:
    """A SummaryWriter reopened on a resumed run writes a second event file beside the first: both are read, in the
    order written, the resumed epochs replacing the ones after the restart (the folder was refused: 2 event files).
    Event files in two folders (Lightning's version_0, version_1) are two runs: refused, naming them."""
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    inputs, model = torch.randn(24, 3, 8, 8), tiny_cnn(3)
    first = SummaryWriter(tmp_path / "tb", filename_suffix=".a")
    tracker = SusceptibilityTracker(inputs, config=CONFIG, writer=first)
    for epoch in range(3):
        tracker.measure(model, epoch, train_acc=0.5)
    first.close()
    second = SummaryWriter(tmp_path / "tb", filename_suffix=".b")  # resumed from the epoch-1 checkpoint
    resumed = SusceptibilityTracker(inputs, config=CONFIG, writer=second)
    records = [resumed.measure(model, epoch, train_acc=0.6) for epoch in (1, 2, 3)]
    second.close()
    assert len(list((tmp_path / "tb").glob("*tfevents*"))) == 2
    read = read_log(tmp_path / "tb")
    assert [r["epoch"] for r in read] == [0, 1, 2, 3] and [r["train_acc"] for r in read] == pytest.approx([0.5, 0.6, 0.6, 0.6])
    assert [r["r"] for r in read[1:]] == pytest.approx([r.r for r in records])
    (tmp_path / "runs" / "version_0").mkdir(parents=True)
    (tmp_path / "tb").rename(tmp_path / "runs" / "version_1")
    with SummaryWriter(tmp_path / "runs" / "version_0") as writer:  # another run, from its initialization
        writer.add_scalar("susceptibility/epoch", 0, 0)
        writer.add_scalar("susceptibility/r", 0.1, 0)
    with pytest.raises(InputError, match=r"holds TensorBoard event files of 2 runs \(version_0, version_1\): version_0 starts at epoch 0"):
        read_log(tmp_path / "runs")


def test_a_writer_that_is_neither_is_refused_when_the_tracker_is_made(tmp_path: Path) -> None:
    """writer="tb" (a folder name, not a SummaryWriter) raised only after the first epoch was measured and logged,
    stopping the training loop there; the tracker refuses it when it is made, with nothing written."""
    with pytest.raises(TypeError, match="writer must be a SummaryWriter or a callable"):
        SusceptibilityTracker(torch.randn(24, 3, 8, 8), log=tmp_path / "run.jsonl", config=CONFIG, writer="tb")
    assert not (tmp_path / "run.jsonl").exists()


def test_a_dataset_that_is_not_one_tensor_of_inputs_is_one_input_error() -> None:
    """Items that are dicts without pixel_values (a dataset of {"image", "label"}), inputs of different sizes and an
    empty dataset raised KeyError: 'pixel_values' or PyTorch's "stack expects each tensor to be equal size"."""

    class Items(torch.utils.data.Dataset):
        def __init__(self, items: list) -> None:
            self.items = items

        def __len__(self) -> int:
            return len(self.items)

        def __getitem__(self, i: int) -> object:
            return self.items[i]

    dicts = Items([{"image": torch.randn(3, 8, 8), "label": 1}] * 4)
    for source in (dicts, torch.utils.data.DataLoader(dicts, batch_size=2)):
        with pytest.raises(InputError, match=r"a dataset item is a dict without 'pixel_values' \(its keys: image, label\)"):
            unlabeled_inputs(source)
    with pytest.raises(InputError, match=r"differ in shape \(\(3, 8, 8\) and \(3, 9, 9\)\)"):
        unlabeled_inputs(Items([torch.randn(3, 9, 9), torch.randn(3, 8, 8)]))
    with pytest.raises(InputError, match="the dataset of unlabeled inputs is empty"):
        unlabeled_inputs(Items([]))
    assert unlabeled_inputs(Items([{"pixel_values": torch.randn(3, 8, 8)}] * 3)).shape == (3, 3, 8, 8)
