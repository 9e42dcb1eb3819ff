from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from suscli.errors import InputError
from suscli.run.pool import discover, epoch_from_name, read_manifest


@pytest.mark.parametrize(
    "name,epoch",
    [
        ("epoch_12.pt", 12),
        ("epoch-7.safetensors", 7),
        ("epoch=12-step=3400.ckpt", 12),
        ("ckpt-000012.safetensors", 12),
        ("model_ep3.pth", 3),
        ("checkpoint_5.pt", 5),
        ("final.pt", None),
        ("resnet18-run2-100.pt", 100),
        ("model_12.pth", 12),
        # a name by the optimizer step counts steps, not epochs (it read 32, 1000, 3, 300, 100); Lightning's epoch wins
        ("step_32.safetensors", None),
        ("model-step-1000.safetensors", None),
        ("step-3.pt", None),
        ("step=300.pt", None),
        ("step_100", None),  # a DeepSpeed tag folder
        ("run2_global_step100.pt", None),
        # iteration saves count steps too (they read 1000, 4999): MMEngine's CheckpointHook(by_epoch=False), and
        # detectron2's PeriodicCheckpointer, whose iteration is zero-padded to 7 digits, which no epoch name is
        ("iter_1000.pth", None),
        ("model_0004999.pth", None),
        ("model_3.pt", 3),
        ("model_000012.pth", 12),
        ("model_20241201.pth", 20241201),  # a date, not detectron2's 7-digit iteration
        ("epoch_3_iter_1000.pth", 3),
        # a number inside a word or a name saying it is an alias of some epoch: no epoch (it read 16, 50, 1, 18)
        ("bn_cnn16_best.safetensors", None),
        ("resnet50_best.pt", None),
        ("last-v1.ckpt", None),
        ("resnet18.pth", None),
        ("epoch=3-last.ckpt", 3),  # an explicit epoch still wins
        ("model_12-v1.ckpt", 12),  # Lightning's version suffix on a name saved again: the 12 (it read none)
        ("epoch=3-step=100-v2.ckpt", 3),
        # the end of a metric formatted into the name is no epoch: a run read in the metric's order (it read 8533, 42, 3)
        ("model_3_0.8533.pt", None),
        ("weights.05-0.42.pt", None),
        ("model_lr1e-3.pt", None),
        ("model.12.pt", 12),
    ],
)
def test_epoch_from_name(name: str, epoch: int | None) -> None:
    assert epoch_from_name(name) == epoch


def test_saves_numbered_by_step_have_no_epoch_and_are_ordered_by_it(tmp_path: Path) -> None:
    """A script's step_N saves (and DeepSpeed's global_stepN/ folders) number optimizer steps: no epoch, which track
    read them as; a run's saves are still ordered by them, its latest the highest step whatever the file times (a
    copy without them: DeepSpeed's run was ordered by file time alone)."""
    from tests.test_checkpoints import _deepspeed_run, _tiny

    for step, mtime in ((100, 1000), (200, 3000), (1000, 2000)):
        touch(tmp_path / "run" / f"step_{step}.pt", mtime)
    for step, mtime in ((100, 2000), (1000, 1000)):
        os.utime(_deepspeed_run(tmp_path / "ds", _tiny(), step) / "mp_rank_00_model_states.pt", (mtime, mtime))
    assert [(e.name, e.path.relative_to(tmp_path).as_posix(), e.epoch) for e in discover(tmp_path)] == [
        ("ds", "ds/global_step1000/mp_rank_00_model_states.pt", None),
        ("run", "run/step_1000.pt", None),
    ]
    assert [(e.name, e.epoch) for e in discover(tmp_path, all_checkpoints=True)] == [
        ("ds/global_step100/mp_rank_00_model_states.pt", None),
        ("ds/global_step1000/mp_rank_00_model_states.pt", None),
        ("run/step_100.pt", None),
        ("run/step_200.pt", None),
        ("run/step_1000.pt", None),
    ]


def test_iteration_saves_are_ordered_by_their_iteration_and_none_is_an_epoch(tmp_path: Path) -> None:
    """MMEngine's iter_N.pth and detectron2's model_NNNNNNN.pth count optimizer iterations: they were read as epochs
    1000, 2000, 999, .... detectron2's model_final.pth, written after the last iteration, is the run's final model
    (it was skipped as an alias, and the run's model was its last periodic save)."""
    for it in (1000, 2000, 10000):
        touch(tmp_path / "mm" / f"iter_{it}.pth", 3000 - it / 10)
    for name, mtime in (("model_0000999.pth", 1000), ("model_0001999.pth", 2000), ("model_final.pth", 1500)):
        touch(tmp_path / "d2" / name, mtime)
    assert [(e.name, e.path.name, e.epoch) for e in discover(tmp_path)] == [
        ("d2", "model_final.pth", None),
        ("mm", "iter_10000.pth", None),
    ]
    assert [(e.name, e.epoch) for e in discover(tmp_path, all_checkpoints=True)] == [
        ("d2/model_0000999.pth", None),
        ("d2/model_0001999.pth", None),
        ("d2/model_final.pth", None),
        ("mm/iter_1000.pth", None),
        ("mm/iter_2000.pth", None),
        ("mm/iter_10000.pth", None),
    ]


def test_a_runs_pointer_file_names_its_model(tmp_path: Path) -> None:
    """The file a training tool writes naming its newest save: MMEngine's last_checkpoint (the save's path, here the
    training machine's), detectron2's (its file name) and DeepSpeed's latest (its tag). A run resumed from an earlier
    save keeps the later saves of the run before: the highest number was taken, the pointer was not read. A manifest
    entry naming the run takes the same model."""
    from tests.test_checkpoints import _deepspeed_run, _tiny

    for it in (1000, 2000, 3000):
        touch(tmp_path / "mm" / f"iter_{it}.pth")
    (tmp_path / "mm" / "last_checkpoint").write_text("/home/user/work_dirs/mm/iter_2000.pth")
    for it in (999, 1999):
        touch(tmp_path / "d2" / f"model_{it:07d}.pth")
    touch(tmp_path / "d2" / "model_final.pth", 1000)
    (tmp_path / "d2" / "last_checkpoint").write_text("model_0001999.pth")
    for step in (200, 100):  # latest names global_step100, written last
        _deepspeed_run(tmp_path / "ds", _tiny(), step)
    said: list[str] = []
    assert [(e.name, e.path.relative_to(tmp_path).as_posix()) for e in discover(tmp_path, say=said.append)] == [
        ("d2", "d2/model_0001999.pth"),
        ("ds", "ds/global_step100/mp_rank_00_model_states.pt"),
        ("mm", "mm/iter_2000.pth"),
    ]
    assert said == []
    (tmp_path / "pool.json").write_text(json.dumps([{"path": p} for p in ("mm", "ds")]))
    assert [e.path for e in discover(tmp_path / "pool.json")] == [
        (tmp_path / "mm" / "iter_2000.pth").resolve(),
        (tmp_path / "ds" / "global_step100" / "mp_rank_00_model_states.pt").resolve(),
    ]


def test_a_pointer_file_naming_a_save_the_run_does_not_hold_is_said(tmp_path: Path) -> None:
    """A pointer naming a save that was deleted or moved: one line says so, and the run's model is taken by its
    numbers, as without a pointer."""
    from tests.test_checkpoints import _deepspeed_run, _tiny

    for it in (1000, 2000):
        touch(tmp_path / "mm" / f"iter_{it}.pth")
    (tmp_path / "mm" / "last_checkpoint").write_text("work_dirs/mm/iter_4000.pth")
    for step in (100, 200):
        _deepspeed_run(tmp_path / "ds", _tiny(), step)
    (tmp_path / "ds" / "latest").write_text("global_step300")
    for run, pointer, content in (("bin", "latest", b"\x80\x02epoch_1.pt"), ("lines", "last_checkpoint", b"epoch_1.pt\nepoch_2.pt\n")):
        for epoch in (1, 2):  # a file of a pointer's name that is no line of text is none: the numbers choose, unsaid
            touch(tmp_path / run / f"epoch_{epoch}.pt")
        (tmp_path / run / pointer).write_bytes(content)
    if hasattr(os, "mkfifo"):  # a pipe of that name: reading it would wait for a writer
        os.mkfifo(tmp_path / "bin" / "last_checkpoint")
    said: list[str] = []
    assert [(e.name, e.path.relative_to(tmp_path).as_posix()) for e in discover(tmp_path, say=said.append)] == [
        ("bin", "bin/epoch_2.pt"),
        ("ds", "ds/global_step200/mp_rank_00_model_states.pt"),
        ("lines", "lines/epoch_2.pt"),
        ("mm", "mm/iter_2000.pth"),
    ]
    assert said == [
        "ds/latest names global_step300, which the run does not hold: its model is taken by the saves' numbers "
        "(global_step200/mp_rank_00_model_states.pt)",
        "mm/last_checkpoint names work_dirs/mm/iter_4000.pth, which the run does not hold: its model is taken by the "
        "saves' numbers (iter_2000.pth)",
    ]


def touch(path: Path, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_folder_files_and_run_subfolders(tmp_path: Path) -> None:
    touch(tmp_path / "b.pt")
    touch(tmp_path / "a.safetensors")
    touch(tmp_path / "a.suscli.json")
    touch(tmp_path / "notes.txt")
    for e in (2, 10, 9):
        touch(tmp_path / "run1" / f"epoch_{e}.pt")
    touch(tmp_path / "run2" / "nested" / "last.ckpt", mtime=2000)
    touch(tmp_path / "run2" / "nested" / "first.ckpt", mtime=1000)
    (tmp_path / "empty").mkdir()
    entries = discover(tmp_path)
    assert [(e.name, e.path.name) for e in entries] == [
        ("a", "a.safetensors"),
        ("b", "b.pt"),
        ("run1", "epoch_10.pt"),
        ("run2", "last.ckpt"),
    ]
    every = discover(tmp_path, all_checkpoints=True)
    assert [e.name for e in every if e.name.startswith("run1")] == ["run1/epoch_2.pt", "run1/epoch_9.pt", "run1/epoch_10.pt"]


def test_a_training_tools_state_files_are_not_models(tmp_path: Path) -> None:
    """A run folder as a training script or a Trainer without a config.json leaves it: the weights, then the optimizer,
    scheduler and RNG state saved after them. The newest file was taken as the run's model, and failed."""
    touch(tmp_path / "run" / "model.pt", mtime=1000)
    state = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state.pth", "rng_state_1.pth", "training_args.bin", "optimizer_1.bin")
    for name in state:
        touch(tmp_path / "run" / name, mtime=2000)
        touch(tmp_path / name)
    touch(tmp_path / "a.safetensors")
    assert [(e.name, e.path.relative_to(tmp_path).as_posix()) for e in discover(tmp_path)] == [
        ("a", "a.safetensors"),
        ("run", "run/model.pt"),
    ]
    assert [e.name for e in discover(tmp_path, all_checkpoints=True)] == ["a", "run/model.pt"]


def test_an_optimizers_state_saved_under_any_name_is_not_a_model(tmp_path: Path) -> None:
    """A script saving `torch.save(optimizer.state_dict(), f"optim_{epoch}.pt")` after each epoch's weights: the
    optimizer's file was the run's newest and was taken as its model ("holds no state dict", exit 3), and one at the
    pool's top was a failed row. Told by what it holds ('state' and 'param_groups'), whatever its name."""
    import torch

    optimizer = torch.optim.Adam(torch.nn.Linear(2, 2).parameters())
    for epoch in (1, 2):
        touch(tmp_path / "run" / f"model_{epoch}.safetensors", mtime=1000 * epoch)
        torch.save(optimizer.state_dict(), tmp_path / "run" / f"optim_{epoch}.pt")
        os.utime(tmp_path / "run" / f"optim_{epoch}.pt", (1000 * epoch + 1, 1000 * epoch + 1))
    torch.save(optimizer.state_dict(), tmp_path / "adam-state.pt")
    torch.save({"state": {}, "param_groups": "not a list"}, tmp_path / "other.pt")  # not torch.optim's: still a model to try
    touch(tmp_path / "a.safetensors")
    said: list[str] = []
    found = discover(tmp_path, say=said.append)
    assert [(e.name, e.path.relative_to(tmp_path).as_posix()) for e in found] == [
        ("a", "a.safetensors"),
        ("other", "other.pt"),
        ("run", "run/model_2.safetensors"),
    ]
    assert said == [f"left out 1 file of {tmp_path} holding an optimizer's state, not a model (adam-state.pt)"]
    assert [e.name for e in discover(tmp_path, all_checkpoints=True)] == [
        "a",
        "other",
        "run/model_1.safetensors",
        "run/model_2.safetensors",
    ]


def test_a_file_and_a_run_folder_of_one_name_are_two_rows_of_two_names(tmp_path: Path) -> None:
    """`m.safetensors` beside the run folder `m/`: both rows were named `m`, so "ship m" and `--candidate m` could
    mean either."""
    touch(tmp_path / "m.safetensors")
    touch(tmp_path / "m" / "epoch_1.safetensors")
    touch(tmp_path / "x.pt")
    assert [e.name for e in discover(tmp_path)] == ["m", "m.safetensors", "x"]


def test_a_run_folder_holding_no_checkpoint_is_said_to_be_left_out(tmp_path: Path) -> None:
    """A run whose model was never saved (its optimizer's state alone) or saved as a file suscli does not read: it was
    missing from the table without a word; hidden folders stay unsaid."""
    touch(tmp_path / "a" / "epoch_1.pt")
    touch(tmp_path / "crashed" / "optimizer.pt")
    touch(tmp_path / "keras" / "model.h5")
    touch(tmp_path / ".git" / "HEAD")
    said: list[str] = []
    assert [e.name for e in discover(tmp_path, say=said.append)] == ["a"]
    assert said == [f"left out 2 folders of {tmp_path} holding no checkpoint (crashed, keras)"]


def test_manifest_json_and_csv(tmp_path: Path) -> None:
    touch(tmp_path / "m" / "x.pt")
    (tmp_path / "pool.json").write_text(
        json.dumps([{"path": "m/x.pt", "name": "X", "arch": "torchvision:resnet18", "arch_kwargs": {"num_classes": 3}}])
    )
    (e,) = discover(tmp_path / "pool.json")
    assert (e.name, e.path, e.arch, e.arch_kwargs) == ("X", (tmp_path / "m" / "x.pt").resolve(), "torchvision:resnet18", {"num_classes": 3})
    (tmp_path / "pool2.json").write_text(json.dumps([{"path": "m/x.pt", "arch": "archs/net.py:build"}]))
    (e,) = discover(tmp_path / "pool2.json")
    assert e.arch == f"{(tmp_path / 'archs' / 'net.py').resolve()}:build"
    (tmp_path / "pool.csv").write_text('path,arch,arch_kwargs\nm/x.pt,suscli.models:mlp,"{""width"": 8}"\n')
    (e,) = discover(tmp_path / "pool.csv")
    assert (e.name, e.arch, e.arch_kwargs) == ("m/x.pt", "suscli.models:mlp", {"width": 8})


def test_a_manifests_relative_architecture_file_is_looked_up_beside_it_then_in_the_working_directory(tmp_path, monkeypatch):
    """A manifest written in a subfolder (`out/pool.json`, with paths relative to it) naming `net.py:Net` that lies in
    the folder the command runs from was "file not found (tried out/net.py)": a sidecar's relative spec is tried
    beside the checkpoint, then in the working directory, and `--arch net.py:Net` in the working directory."""
    (tmp_path / "out").mkdir()
    (tmp_path / "net.py").write_text("")
    (tmp_path / "out" / "pool.json").write_text(json.dumps([{"path": "m.pt", "arch": "net.py:Net"}]))
    monkeypatch.chdir(tmp_path)
    (e,) = discover(Path("out/pool.json"))
    assert e.arch == f"{(tmp_path / 'net.py').resolve()}:Net"
    (tmp_path / "out" / "net.py").write_text("")  # beside the manifest first
    (e,) = discover(Path("out/pool.json"))
    assert e.arch == f"{(tmp_path / 'out' / 'net.py').resolve()}:Net"


def test_a_manifest_entry_naming_a_run_folder_is_its_latest_checkpoint(tmp_path: Path) -> None:
    """As a pool folder's run: it was an error row, 'is a directory, not a checkpoint'. A model folder stays itself."""
    touch(tmp_path / "run" / "epoch_1.safetensors")
    touch(tmp_path / "run" / "epoch_3.safetensors")
    touch(tmp_path / "run" / "optimizer.pt")
    touch(tmp_path / "hf" / "config.json")
    touch(tmp_path / "hf" / "model.safetensors")
    touch(tmp_path / "empty" / "notes.txt")
    (tmp_path / "pool.json").write_text(json.dumps([{"path": p} for p in ("run", "hf", "empty")]))
    assert [(e.name, e.path, e.epoch) for e in discover(tmp_path / "pool.json")] == [
        ("run", (tmp_path / "run" / "epoch_3.safetensors").resolve(), 3),
        ("hf", (tmp_path / "hf").resolve(), None),
        ("empty", (tmp_path / "empty").resolve(), None),
    ]


def test_all_checkpoints_takes_every_checkpoint_of_a_manifests_run_folder(tmp_path: Path) -> None:
    """rank manifest.json --all-checkpoints ranked each run folder's latest checkpoint alone, the option accepted and
    changing nothing. Each run an entry names now gives every checkpoint, named NAME/file as a pool folder's run, with
    the entry's arch; a file or model folder stays one entry, and an epoch given for a run of several checkpoints is
    refused: it cannot be every one's."""
    touch(tmp_path / "run" / "epoch_1.safetensors")
    touch(tmp_path / "run" / "epoch_3.safetensors")
    touch(tmp_path / "run" / "optimizer.pt")
    touch(tmp_path / "hf" / "config.json")
    touch(tmp_path / "hf" / "model.safetensors")
    touch(tmp_path / "solo.pt")
    entries = [{"path": "run", "name": "A", "arch": "suscli.models:mlp"}, {"path": "hf"}, {"path": "solo.pt", "epoch": 7}]
    (tmp_path / "pool.json").write_text(json.dumps(entries))
    assert [(e.name, e.path, e.epoch, e.arch) for e in discover(tmp_path / "pool.json", all_checkpoints=True)] == [
        ("A/epoch_1.safetensors", (tmp_path / "run" / "epoch_1.safetensors").resolve(), 1, "suscli.models:mlp"),
        ("A/epoch_3.safetensors", (tmp_path / "run" / "epoch_3.safetensors").resolve(), 3, "suscli.models:mlp"),
        ("hf", (tmp_path / "hf").resolve(), None, None),
        ("solo.pt", (tmp_path / "solo.pt").resolve(), 7, None),
    ]
    assert [e.name for e in discover(tmp_path / "pool.json")] == ["A", "hf", "solo.pt"]  # without it, the latest
    (tmp_path / "pool.json").write_text(json.dumps([{"path": "run", "epoch": 3}]))
    with pytest.raises(InputError, match="entry 1 gives epoch 3 for the run folder run, whose 2 checkpoints"):
        discover(tmp_path / "pool.json", all_checkpoints=True)


@pytest.mark.parametrize(
    "content,msg",
    [
        ("[]", "lists no models"),
        ("{not json", "cannot read manifest"),
        ('[{"name": "a"}]', "entry 1 has no path"),
        ('[{"path": "a.pt"}, {"path": "a.pt"}]', "used twice"),
    ],
)
def test_bad_manifests(tmp_path: Path, content: str, msg: str) -> None:
    (tmp_path / "pool.json").write_text(content)
    with pytest.raises(InputError, match=msg):
        discover(tmp_path / "pool.json")


def test_empty_or_missing_pool(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no checkpoints"):
        discover(tmp_path)
    with pytest.raises(InputError, match="not found"):
        discover(tmp_path / "nope")
    with pytest.raises(InputError, match="suscli score"):
        discover(touch(tmp_path / "one.pt"))


def hf_folder(path: Path, epoch: float | None = None) -> Path:
    """The files a Hugging Face Trainer checkpoint holds (contents do not matter to discovery)."""
    for name in ("config.json", "model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"):
        touch(path / name)
    if epoch is not None:
        (path / "trainer_state.json").write_text(json.dumps({"epoch": epoch, "global_step": 10}))
    return path


def test_model_folders_are_one_checkpoint_and_a_trainer_output_dir_is_a_run(tmp_path: Path) -> None:
    hf_folder(tmp_path / "vit")
    for step, epoch in ((500, 1.0), (1000, 2.0), (1250, 2.5)):
        hf_folder(tmp_path / "run" / f"checkpoint-{step}", epoch)
    touch(tmp_path / "timm" / "checkpoint-3.pth.tar")
    touch(tmp_path / "timm" / "last.pth.tar")
    (tmp_path / "timm" / "args.yaml").write_text("model: resnet10t\n")
    assert [(e.name, e.path.relative_to(tmp_path).as_posix(), e.epoch) for e in discover(tmp_path)] == [
        ("run", "run/checkpoint-1000", 2),  # the latest whole epoch (trainer_state.json), not the highest step
        ("timm", "timm/checkpoint-3.pth.tar", 3),
        ("vit", "vit", None),
    ]
    assert [(e.name, e.epoch) for e in discover(tmp_path / "run")] == [  # a checkpoint saved mid-epoch has no epoch
        ("checkpoint-1000", 2),
        ("checkpoint-1250", None),
        ("checkpoint-500", 1),
    ]
    assert [e.name for e in discover(tmp_path / "timm")] == ["checkpoint-3", "last"]
    hf_folder(tmp_path / "run")  # Trainer.save_model wrote the final model beside the checkpoints
    assert [e.name for e in discover(tmp_path / "run")] == ["run", "checkpoint-1000", "checkpoint-1250", "checkpoint-500"]


def test_a_trainers_checkpoint_folders_with_deepspeed_states_are_the_runs_checkpoints(tmp_path: Path) -> None:
    """A Hugging Face Trainer run with DeepSpeed writes DeepSpeed's own save (global_stepN/ and its `latest` pointer)
    inside each checkpoint-N folder: those were walked as checkpoints of the run, and the pointer made a DeepSpeed
    model-states file the run's model, where the Trainer's checkpoint folder is it."""
    for step, epoch in ((500, 1.0), (1000, 2.0)):
        folder = hf_folder(tmp_path / "run" / f"checkpoint-{step}", epoch)
        touch(folder / f"global_step{step}" / "mp_rank_00_model_states.pt")
        (folder / "latest").write_text(f"global_step{step}")
    assert [(e.name, e.path.relative_to(tmp_path).as_posix()) for e in discover(tmp_path)] == [("run", "run/checkpoint-1000")]
    assert [e.name for e in discover(tmp_path / "run")] == ["checkpoint-1000", "checkpoint-500"]
    assert [e.name for e in discover(tmp_path, all_checkpoints=True)] == ["run/checkpoint-500", "run/checkpoint-1000"]


def test_checkpoints_of_other_training_stacks_in_a_pool_are_rows(tmp_path: Path, image_folder: Path) -> None:
    """A pool holding a PEFT adapter, FSDP's sharded save and a DeepSpeed run beside a model suscli reads: the
    DeepSpeed run is measured by its model states (its optimizer shard, saved after them, was taken as its model: "holds
    no state dict"), the adapter and the sharded save are failed rows saying what they are (the sharded save was left
    out as a folder "holding no checkpoint"), and the model is scored."""
    import warnings

    import torch.distributed.checkpoint as dcp

    import suscli
    from tests.conftest import invoke
    from tests.test_checkpoints import ARCH, KWARGS, _deepspeed_run, _peft_adapter, _tiny

    pool = tmp_path / "pool"
    suscli.save(_tiny(), pool / "good.safetensors", arch=ARCH, arch_kwargs=KWARGS, image_size=8)
    step = _deepspeed_run(pool / "ds", _tiny())
    os.utime(step / "mp_rank_00_model_states.pt", (1000, 1000))
    _peft_adapter(pool / "lora")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.distributed is disabled ...: assuming ... a single process"
        dcp.save({"model": _tiny().state_dict()}, checkpoint_id=str(pool / "fsdp"))
    res = invoke(
        "rank",
        pool,
        "-d",
        image_folder,
        "--arch",
        ARCH,
        "--arch-kwargs",
        json.dumps(KWARGS),
        "--image-size",
        "8",
        "--batches",
        "1",
        "-f",
        "json",
    )
    assert res.exit_code == 3 and "holding no checkpoint" not in res.stderr, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)["results"]}
    assert rows["good"]["status"] == rows["ds"]["status"] == "ok" and rows["ds"]["path"].endswith("mp_rank_00_model_states.pt")
    assert "is a PEFT adapter (LORA) for google/vit-base-patch16-224-in21k, not a model" in rows["lora"]["error"]
    assert rows["fsdp"]["error"].startswith(f"{pool / 'fsdp'}: is a torch.distributed.checkpoint folder")
    assert [e.name for e in discover(pool, all_checkpoints=True)] == [
        "ds/global_step100/mp_rank_00_model_states.pt",
        "fsdp",
        "good",
        "lora/adapter_model.safetensors",
    ]


def test_a_run_folder_of_sharded_saves_is_the_runs_row_naming_them(tmp_path: Path) -> None:
    """An FSDP run saving torch.distributed.checkpoint folders (run1/step_100/, run1/step_200/), which suscli does not
    read, was left out as a folder "holding no checkpoint", where the same folder at the pool's top is a row naming it
    with torch's conversion: the run is that row, its latest save's, also where a manifest's entry names the run."""
    import warnings

    import torch.distributed.checkpoint as dcp

    from suscli.load.foreign import refusal
    from tests.test_checkpoints import _tiny

    touch(tmp_path / "a" / "epoch_1.pt")
    touch(tmp_path / "crashed" / "optimizer.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.distributed is disabled ...: assuming ... a single process"
        for step in (100, 200):
            dcp.save({"model": _tiny().state_dict()}, checkpoint_id=str(tmp_path / "run1" / f"step_{step}"))
    os.utime(tmp_path / "run1" / "step_100", (1000, 1000))
    said: list[str] = []
    entries = discover(tmp_path, say=said.append)
    assert [(e.name, e.path) for e in entries] == [("a", tmp_path / "a" / "epoch_1.pt"), ("run1", tmp_path / "run1" / "step_200")]
    assert said == [f"left out 1 folder of {tmp_path} holding no checkpoint (crashed)"]
    why = refusal(entries[1].path)
    assert why is not None and why.message.startswith(f"{tmp_path / 'run1' / 'step_200'}: is a torch.distributed.checkpoint folder")
    assert [e.name for e in discover(tmp_path, all_checkpoints=True)] == ["a/epoch_1.pt", "run1/step_100", "run1/step_200"]
    manifest = tmp_path / "m.json"  # a manifest's entry naming the run: its row was "is a directory, not a checkpoint"
    manifest.write_text(json.dumps([{"path": "run1"}]))
    assert [(e.name, e.path) for e in read_manifest(manifest)] == [("run1", tmp_path / "run1" / "step_200")]


def test_onnx_models_in_a_pool_are_said_to_be_left_out(tmp_path: Path) -> None:
    """A folder of exports holds ONNX graphs beside the checkpoints they came from: they were left out without a word,
    and a run holding only one was "holding no checkpoint". They are no rows (each would fail the whole rank, exit 3,
    for the copy of a model scored beside it), and no run's model beside its model.pt, but named on stderr; a pool of
    them alone says what they are."""
    touch(tmp_path / "a.safetensors")
    touch(tmp_path / "b.onnx")
    touch(tmp_path / "run" / "model.pt")
    touch(tmp_path / "run" / "model.onnx", mtime=2e9)
    touch(tmp_path / "export" / "model.onnx")
    said: list[str] = []
    assert [(e.name, e.path.name) for e in discover(tmp_path, say=said.append)] == [("a", "a.safetensors"), ("run", "model.pt")]
    assert said == [
        f"left out 2 ONNX models of {tmp_path} (b.onnx, export/model.onnx): suscli cannot measure an ONNX graph, exported "
        "for inference without gradients (score the PyTorch checkpoint each was exported from)"
    ]
    (tmp_path / "a.safetensors").unlink()
    shutil.rmtree(tmp_path / "run")
    with pytest.raises(InputError, match=r"no checkpoints in .*: 2 ONNX models \(b.onnx, export/model.onnx\): suscli cannot measure"):
        discover(tmp_path)


def test_keras_and_tensorflow_models_in_a_pool_are_said_to_be_left_out(tmp_path: Path) -> None:
    """A pool folder holding Keras files beside PyTorch checkpoints (a team's older models) left them out without a
    word, and a run holding a TensorFlow SavedModel was "holding no checkpoint". Each kind is now named on stderr with
    why; a pool of them alone says what they are; an .h5 that is no HDF5 file is not one."""
    touch(tmp_path / "a.safetensors")
    (tmp_path / "b.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(8))
    touch(tmp_path / "c.keras")
    touch(tmp_path / "notes.h5")
    touch(tmp_path / "tf" / "saved_model.pb")
    touch(tmp_path / "tf" / "variables" / "variables.index")
    said: list[str] = []
    assert [e.name for e in discover(tmp_path, say=said.append)] == ["a"]
    assert said == [
        f"left out 1 Keras model of {tmp_path} (c.keras): suscli measures PyTorch models (score each model's PyTorch checkpoint)",
        f"left out 1 HDF5 file of {tmp_path} (b.h5): suscli measures PyTorch models, and HDF5 is Keras's and TensorFlow's format "
        "(score each model's PyTorch checkpoint)",
        f"left out 1 TensorFlow model of {tmp_path} (tf/saved_model.pb): suscli measures PyTorch models (score each model's PyTorch checkpoint)",
    ]
    (tmp_path / "a.safetensors").unlink()
    with pytest.raises(InputError, match=r"no checkpoints in .*: 1 Keras model \(c.keras\): suscli measures PyTorch models; 1 HDF5"):
        discover(tmp_path)


def test_a_run_of_epoch_and_step_saves_takes_the_newer_of_each_kinds_last(tmp_path: Path) -> None:
    """A script that saves every epoch and every N steps writes epoch_3.pt beside step_5000.pt: the step counted as a
    higher epoch than any, and a run that ended on an epoch save was ranked by an earlier mid-epoch save. Epochs and
    steps share no scale; the newer file of each kind's last is the run's model."""
    for name, mtime in (("epoch_1.pt", 100), ("step_2000.pt", 150), ("epoch_2.pt", 200), ("step_5000.pt", 250), ("epoch_3.pt", 300)):
        touch(tmp_path / "ended" / name, mtime)
    for name, mtime in (("epoch_1.pt", 100), ("step_2000.pt", 150), ("epoch_2.pt", 200), ("step_5000.pt", 250)):
        touch(tmp_path / "crashed" / name, mtime)  # stopped mid-epoch, after its last step save
    assert [(e.name, e.path.name) for e in discover(tmp_path)] == [("crashed", "step_5000.pt"), ("ended", "epoch_3.pt")]


def test_a_run_folder_holding_the_saves_of_several_folders_says_so(tmp_path: Path) -> None:
    """`runs/exp7/epoch_1..3` beside `runs/exp8/epoch_1..2`: the row `runs` was exp7's epoch 3 and exp8 vanished
    without a word. It is still one run (a pool's subfolder is one), said on stderr with the pool that ranks each; the
    layouts a training tool writes as one run across folders say nothing: Lightning's version_N folders, DeepSpeed's
    tag folders, a Trainer's checkpoint-N folders."""
    pool = tmp_path / "pool"
    for exp, epochs in (("exp7", 3), ("exp8", 2)):
        for e in range(1, epochs + 1):
            touch(pool / "runs" / exp / f"epoch_{e}.safetensors", mtime=1000 * e)
    touch(pool / "deep" / "a" / "ckpt" / "step_100.pt")
    touch(pool / "deep" / "b" / "ckpt" / "step_200.pt")
    touch(pool / "kept" / "epoch_5.pt")  # saves beside a folder of older ones: no two sibling folders
    touch(pool / "kept" / "old" / "epoch_2.pt")
    touch(pool / "kept" / "export" / "model.pt")  # a folder of no numbered save
    for version in (0, 1):
        touch(pool / "lt" / "lightning_logs" / f"version_{version}" / "checkpoints" / f"epoch={version}-step=2.ckpt")
    for step in (100, 200):
        touch(pool / "ds" / f"global_step{step}" / "mp_rank_00_model_states.pt")
    for step in (500, 1000):
        hf_folder(pool / "hf" / f"checkpoint-{step}")
    said: list[str] = []
    found = discover(pool, say=said.append)
    assert [(e.name, e.path.relative_to(pool).as_posix()) for e in found] == [
        ("deep", "deep/b/ckpt/step_200.pt"),
        ("ds", "ds/global_step200/mp_rank_00_model_states.pt"),
        ("hf", "hf/checkpoint-1000"),
        ("kept", "kept/epoch_5.pt"),
        ("lt", "lt/lightning_logs/version_1/checkpoints/epoch=1-step=2.ckpt"),
        ("runs", "runs/exp7/epoch_3.safetensors"),
    ]
    assert said == [
        f"deep: holds saves in 2 folders (a, b), ranked as one run by its latest save (b/ckpt/step_200.pt); to rank each, "
        f"pass {pool / 'deep'} as the pool (suscli rank {pool / 'deep'})",
        f"runs: holds saves in 2 folders (exp7, exp8), ranked as one run by its latest save (exp7/epoch_3.safetensors); to "
        f"rank each, pass {pool / 'runs'} as the pool (suscli rank {pool / 'runs'})",
    ]
    said.clear()
    assert len(discover(pool, all_checkpoints=True, say=said.append)) == 16 and said == []  # every save is a row
