"""Lightning: checkpoints written by a real `Trainer.fit` with ModelCheckpoint, scored, ranked and tracked with no
--arch, --mean, --std or --image-size (the hyper-parameters name a timm model, whose data config gives the rest),
and compared with the same model loaded by Lightning itself."""

from __future__ import annotations

import copy
import os
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import suscli
from suscli.load.checkpoints import load_checkpoint
from suscli.errors import InputError
from suscli.load.sources.lightning import END, LAST_BATCH, MID_EPOCH, save_point
from tests.conftest import by_hand, cli_json, image_sets, invoke, one_error_line

L = pytest.importorskip("lightning")
timm = pytest.importorskip("timm")
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from timm.data import resolve_data_config  # noqa: E402
from timm.utils import ModelEmaV3  # noqa: E402


class Classifier(L.LightningModule):
    """A module as users write them: the network under `net`, a loss with class weights beside it."""

    def __init__(self, model_name: str = "test_resnet", num_classes: int = 3, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = timm.create_model(model_name, pretrained=False, num_classes=num_classes)
        self.loss = torch.nn.CrossEntropyLoss(weight=torch.ones(num_classes))

    def training_step(self, batch, _):
        x, y = batch
        return self.loss(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def fit(
    module: L.LightningModule,
    root: Path,
    checkpoint: ModelCheckpoint,
    callbacks: list | None = None,
    ckpt_path: Path | None = None,
    logger: bool = False,
    images: int = 8,
    **limits: int,
) -> None:
    """Lightning's own Trainer.fit on 8 random images (two batches an epoch), on the CPU and quiet (resumed from
    `ckpt_path`; with `logger`, Lightning's default one in lightning_logs/version_N): the files a test reads are the
    ones its ModelCheckpoint writes."""
    data = torch.utils.data.TensorDataset(torch.randn(images, 3, 32, 32), torch.randint(0, 3, (images,)))
    trainer = L.Trainer(
        accelerator="cpu",
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[checkpoint, *(callbacks or [])],
        default_root_dir=root,
        **limits,
    )
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=4), ckpt_path=ckpt_path)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """`ckpts/` after two epochs: epoch=0-step=2.ckpt, epoch=1-step=4.ckpt, last.ckpt."""
    root = tmp_path_factory.mktemp("lightning")
    image_sets(root)
    torch.manual_seed(0)
    fit(Classifier(), root, ModelCheckpoint(dirpath=root / "ckpts", save_top_k=-1, save_last=True), max_epochs=2)
    return root / "ckpts"


def lightning_by_hand(path: Path, root: Path) -> float:
    model = Classifier.load_from_checkpoint(path, map_location="cpu").net
    cfg = resolve_data_config({}, model=model)
    return by_hand(model, root / "unlabeled", mean=cfg["mean"], std=cfg["std"], image_size=cfg["input_size"][1], crop_pct=cfg["crop_pct"])


def test_score_track_and_rank_without_flags(run: Path, tmp_path: Path) -> None:
    root = run.parent
    assert sorted(p.name for p in run.iterdir()) == ["epoch=0-step=2.ckpt", "epoch=1-step=4.ckpt", "last.ckpt"]
    data = ("-d", root / "unlabeled", "--train-data", root / "train")
    row = cli_json("score", run / "last.ckpt", *data)["results"][0]
    assert (row["arch"], row["details"]["arch_source"], row["epoch"]) == ("timm:test_resnet", "Lightning checkpoint", 1)
    assert row["notes"] == [  # the loss's class weights, and the size only timm's data config gives
        "stripped prefix 'net.', ignored 1 keys outside it",
        "image size 160 from the defaults of timm:test_resnet: nothing recorded for this checkpoint says it",
    ]
    tracked = cli_json("track", run, *data, "--results", tmp_path / "t.jsonl")
    assert [r["epoch"] for r in tracked["results"]] == [0, 1]
    ranked = cli_json("rank", run, *data, "--results", tmp_path / "r.jsonl")
    assert len(ranked["results"]) == 3
    for r in [row] + tracked["results"] + ranked["results"]:
        assert r["susceptibility"] == pytest.approx(lightning_by_hand(Path(r["path"]), root), rel=1e-5), r["name"]


def test_a_lightning_2_0_checkpoint_holding_its_dirpath_as_a_path_is_read_without_flags(run: Path, tmp_path: Path) -> None:
    """Lightning 2.0 saved its ModelCheckpoint's `dirpath` as a pathlib.PosixPath, which weights-only loading refused:
    every checkpoint of such a run needed --trust-checkpoint. The same file with that one change reads as before."""
    ckpt = torch.load(run / "last.ckpt", map_location="cpu", weights_only=False)
    for state in ckpt["callbacks"].values():
        if "dirpath" in state:
            state["dirpath"] = Path(state["dirpath"])
    (tmp_path / "old").mkdir()
    torch.save(ckpt, tmp_path / "old" / "last.ckpt")
    data = ("-d", run.parent / "unlabeled", "--train-data", run.parent / "train")
    row = cli_json("score", tmp_path / "old" / "last.ckpt", *data)["results"][0]
    assert (row["arch"], row["epoch"]) == ("timm:test_resnet", 1)
    assert row["susceptibility"] == cli_json("score", run / "last.ckpt", *data)["results"][0]["susceptibility"]


def test_a_run_resumed_into_the_same_dirpath_is_tracked_on_its_newest_versions(tmp_path: Path) -> None:
    """A run resumed from an earlier epoch into the same dirpath: Lightning saves the epochs it trains again as
    `epoch=1-step=4-v1.ckpt` beside `epoch=1-step=4.ckpt`, and track stopped with "two checkpoints for epoch 1"
    (exit 3). The newest version of each epoch is measured, said in a warning; a later epoch left from before a
    resume that went back further is named."""
    unlabeled, train = image_sets(tmp_path)
    ckpts = tmp_path / "ckpts"

    def resume(ckpt: str, max_epochs: int) -> None:
        time.sleep(0.01)  # the resumed run's files are newer than the first run's, as they are
        fit(
            Classifier(),
            tmp_path,
            ModelCheckpoint(dirpath=ckpts, save_top_k=-1, save_last=True),
            ckpt_path=ckpts / ckpt,
            max_epochs=max_epochs,
        )

    fit(Classifier(), tmp_path, ModelCheckpoint(dirpath=ckpts, save_top_k=-1, save_last=True), max_epochs=3)
    resume("epoch=0-step=2.ckpt", 3)
    assert sorted(p.name for p in ckpts.iterdir()) == [
        "epoch=0-step=2.ckpt",
        "epoch=1-step=4-v1.ckpt",
        "epoch=1-step=4.ckpt",
        "epoch=2-step=6-v1.ckpt",
        "epoch=2-step=6.ckpt",
        "last-v1.ckpt",
        "last.ckpt",
    ]
    track = ["track", ckpts, "-d", unlabeled, "--train-data", train, "--count-epoch-0"]
    doc = cli_json(*track, "--results", tmp_path / "a.jsonl")
    assert [(r["name"], r["epoch"], r["status"]) for r in doc["results"]] == [
        ("epoch=0-step=2", 0, "ok"),
        ("epoch=1-step=4-v1", 1, "ok"),
        ("epoch=2-step=6-v1", 2, "ok"),
    ]
    assert doc["warnings"][0] == (
        "a resumed run saved 2 checkpoints again (Lightning's -vN names, or its logger's next version_N folder): the newest "
        "version of each is measured (epoch=1-step=4-v1 over epoch=1-step=4, epoch=2-step=6-v1 over epoch=2-step=6)"
    )
    assert doc["results"][1]["susceptibility"] == pytest.approx(lightning_by_hand(ckpts / "epoch=1-step=4-v1.ckpt", tmp_path), rel=1e-5)
    resume("epoch=0-step=2.ckpt", 2)  # back to epoch 0 again, stopped after epoch 1: epoch 2's file is the last resume's
    assert (ckpts / "epoch=1-step=4-v2.ckpt").exists() and not (ckpts / "epoch=2-step=6-v2.ckpt").exists()
    doc = cli_json(*track, "--results", tmp_path / "b.jsonl")
    assert [r["name"] for r in doc["results"]] == ["epoch=0-step=2", "epoch=1-step=4-v2", "epoch=2-step=6-v1"]
    assert doc["warnings"][1].startswith(
        "epoch=2-step=6-v1: written before epoch=1-step=4-v2 (file times), where a resumed run saved epoch 1 again"
    )


class LossNamed(Classifier):
    """A module that logs its loss, for a ModelCheckpoint that names its files by it."""

    def training_step(self, batch, _):
        loss = super().training_step(batch, _)
        self.log("train_loss", loss)
        return loss


def test_a_run_resumed_with_a_metric_in_its_names_is_tracked_on_its_later_saves(tmp_path: Path) -> None:
    """ModelCheckpoint(filename="{epoch}-{train_loss:.2f}"): a run resumed from epoch 0 saves epochs 1 and 2 again
    under other losses in their names, and track stopped with "two checkpoints for epoch 1" (exit 3). The later save
    of each is measured, said in a warning; a run started over into the same dirpath, which saves its first epoch
    again, is still refused."""
    unlabeled, train = image_sets(tmp_path)
    ckpts = tmp_path / "ckpts"

    def named(seed: int, max_epochs: int, ckpt_path: Path | None = None) -> None:
        torch.manual_seed(seed)  # another seed: other images, so that the resumed epochs' losses differ
        fit(
            LossNamed(),
            tmp_path,
            ModelCheckpoint(dirpath=ckpts, filename="{epoch}-{train_loss:.2f}", save_top_k=-1),
            ckpt_path=ckpt_path,
            max_epochs=max_epochs,
        )

    named(0, 3)
    first = sorted(p.name for p in ckpts.iterdir())
    time.sleep(0.01)  # the resumed run's files are newer than the first run's, as they are
    named(1, 3, ckpts / first[0])
    again = sorted(p.name for p in ckpts.iterdir() if p.name not in first)
    assert first[0].startswith("epoch=0-") and [n[:8] for n in again] == ["epoch=1-", "epoch=2-"] and "-v" not in "".join(again)
    track = ["track", ckpts, "-d", unlabeled, "--train-data", train, "--count-epoch-0"]
    doc = cli_json(*track, "--results", tmp_path / "a.jsonl")
    assert [(r["name"], r["status"]) for r in doc["results"]] == [(Path(n).stem, "ok") for n in [first[0], *again]]
    stems = [Path(n).stem for n in (*again, *first[1:])]
    assert doc["warnings"] == [
        "a resumed run saved 2 checkpoints again under other values in their names (a metric in ModelCheckpoint's "
        "filename): the later save of each is measured, told by its logger's version_N folder, the global_step it "
        f"records, then its file time ({stems[0]} over {stems[2]}, {stems[1]} over {stems[3]})"
    ]
    named(2, 1)  # started over: epoch 0 saved again, by another run
    starts = sorted(p.name for p in ckpts.glob("epoch=0-*"))
    assert len(starts) == 2
    one_error_line(invoke(*track), 3, f"two checkpoints for epoch 0: {starts[0]} and {starts[1]}")


def test_a_run_resumed_with_the_default_logger_is_tracked_across_its_version_folders(tmp_path: Path) -> None:
    """With Lightning's defaults a resumed run saves into its logger's next folder: lightning_logs/version_1/
    checkpoints holds the epochs trained again beside version_0's, and track on lightning_logs stopped with "two
    checkpoints for epoch 2" (exit 3). The newest version of each epoch is measured; a later folder that starts at
    epoch 0 again is another run, refused in one line."""
    unlabeled, train = image_sets(tmp_path)
    fit(Classifier(), tmp_path, ModelCheckpoint(save_top_k=-1), logger=True, max_epochs=3)
    logs = tmp_path / "lightning_logs"
    time.sleep(0.01)
    fit(
        Classifier(),
        tmp_path,
        ModelCheckpoint(save_top_k=-1),
        ckpt_path=logs / "version_0/checkpoints/epoch=1-step=4.ckpt",
        logger=True,
        max_epochs=4,
    )
    assert sorted(p.relative_to(logs).as_posix() for p in logs.rglob("*.ckpt")) == [
        "version_0/checkpoints/epoch=0-step=2.ckpt",
        "version_0/checkpoints/epoch=1-step=4.ckpt",
        "version_0/checkpoints/epoch=2-step=6.ckpt",
        "version_1/checkpoints/epoch=2-step=6.ckpt",
        "version_1/checkpoints/epoch=3-step=8.ckpt",
    ]
    doc = cli_json("track", logs, "-d", unlabeled, "--train-data", train, "--count-epoch-0")
    assert [(r["name"], r["status"]) for r in doc["results"]] == [
        ("version_0/checkpoints/epoch=0-step=2.ckpt", "ok"),
        ("version_0/checkpoints/epoch=1-step=4.ckpt", "ok"),
        ("version_1/checkpoints/epoch=2-step=6.ckpt", "ok"),
        ("version_1/checkpoints/epoch=3-step=8.ckpt", "ok"),
    ]
    assert doc["warnings"] == [
        "a resumed run saved 1 checkpoint again (Lightning's -vN names, or its logger's next version_N folder): the newest "
        "version of each is measured (version_1/checkpoints/epoch=2-step=6.ckpt over version_0/checkpoints/epoch=2-step=6.ckpt)"
    ]
    fit(Classifier(), tmp_path, ModelCheckpoint(save_top_k=-1), logger=True, max_epochs=1)  # another run: version_2
    one_error_line(invoke("track", logs, "-d", unlabeled), 3, "version_0 and version_2 both start at epoch 0: separate runs, or")


def test_a_later_epoch_left_in_an_earlier_version_folder_is_named_without_file_times(tmp_path: Path) -> None:
    """version_1 resumed from epoch 0 and stopped after epoch 2, leaving version_0's epoch 3: the earlier run's.
    It was named by the file times alone, and a copy without `cp -p` (here: version_1's files older than
    version_0's) lost the warning; the logger's folder numbers order the runs, and a copy keeps them."""
    unlabeled, train = image_sets(tmp_path)
    fit(Classifier(), tmp_path, ModelCheckpoint(save_top_k=-1), logger=True, max_epochs=4)
    logs = tmp_path / "lightning_logs"
    first = logs / "version_0/checkpoints/epoch=0-step=2.ckpt"
    fit(Classifier(), tmp_path, ModelCheckpoint(save_top_k=-1), ckpt_path=first, logger=True, max_epochs=3)
    for k, version in enumerate(("version_1", "version_0")):  # as copied: version_1 first
        for ckpt in (logs / version).rglob("*.ckpt"):
            os.utime(ckpt, (1_000_000 + k, 1_000_000 + k))
    doc = cli_json("track", logs, "-d", unlabeled, "--train-data", train, "--count-epoch-0")
    assert [r["name"] for r in doc["results"]] == [
        "version_0/checkpoints/epoch=0-step=2.ckpt",
        "version_1/checkpoints/epoch=1-step=4.ckpt",
        "version_1/checkpoints/epoch=2-step=6.ckpt",
        "version_0/checkpoints/epoch=3-step=8.ckpt",
    ]
    assert doc["warnings"][1] == (
        "version_0/checkpoints/epoch=3-step=8.ckpt: written before version_1/checkpoints/epoch=1-step=4.ckpt (an earlier "
        "version_N folder), where a resumed run saved epoch 1 again: likely the earlier run's, trained from weights the "
        "resume went back from; remove them, or list the run's epochs in a manifest"
    )


def test_a_run_resumed_during_epoch_0_is_told_to_track_its_own_folder(tmp_path: Path) -> None:
    """A run resumed from a checkpoint saved during epoch 0 (ModelCheckpoint(every_n_train_steps=1)) saves every
    epoch again in its logger's next folder, and track on lightning_logs said "version_0 and version_1 hold the
    checkpoints of separate runs". Its checkpoints are those of a new run, the folder aside (the same epoch,
    global_step and loop counts): the message says so, and names the folder to track, which holds the whole run."""
    unlabeled, train = image_sets(tmp_path)
    steps = ModelCheckpoint(dirpath=tmp_path / "steps", every_n_train_steps=1, save_top_k=-1)
    fit(Classifier(), tmp_path, ModelCheckpoint(save_top_k=-1), callbacks=[steps], logger=True, max_epochs=2)
    logs = tmp_path / "lightning_logs"
    fit(Classifier(), tmp_path, ModelCheckpoint(save_top_k=-1), ckpt_path=tmp_path / "steps/epoch=0-step=1.ckpt", logger=True, max_epochs=2)
    assert sorted(p.relative_to(logs).as_posix() for p in logs.rglob("*.ckpt")) == [
        "version_0/checkpoints/epoch=0-step=2.ckpt",
        "version_0/checkpoints/epoch=1-step=4.ckpt",
        "version_1/checkpoints/epoch=0-step=2.ckpt",
        "version_1/checkpoints/epoch=1-step=4.ckpt",
    ]
    line = one_error_line(invoke("track", logs, "-d", unlabeled), 3)
    assert line == (
        f"error: {logs}: version_0 and version_1 both start at epoch 0: separate runs, or version_1 resumed from a "
        "checkpoint saved during epoch 0, which their checkpoints do not tell apart (a run resumed during epoch 0 saved "
        f"all its epochs again: track its folder alone, suscli track {logs / 'version_1'}; separate runs: track one "
        "version_N folder, or list the run's epochs in a manifest with an epoch field)"
    )
    doc = cli_json("track", logs / "version_1", "-d", unlabeled, "--train-data", train, "--count-epoch-0")
    assert [r["name"] for r in doc["results"]] == ["checkpoints/epoch=0-step=2.ckpt", "checkpoints/epoch=1-step=4.ckpt"]


def test_a_run_saved_at_epoch_ends_and_during_epochs_is_tracked_on_its_epoch_ends(tmp_path: Path) -> None:
    """ModelCheckpoint(every_n_train_steps=1) beside the per-epoch one, into one dirpath: every file is named
    epoch=E-step=S, and track stopped with "two checkpoints for epoch 0" (exit 3). The loop counters saved in each
    file tell the end-of-epoch saves, which are the epochs; the others are left out, said. The step save at an
    epoch's last batch gets the same name as the epoch's own save, which was taken for a resumed run's -v1."""
    unlabeled, train = image_sets(tmp_path)
    ckpts = tmp_path / "ckpts"
    steps = ModelCheckpoint(dirpath=ckpts, every_n_train_steps=1, save_top_k=-1)
    fit(Classifier(), tmp_path, steps, callbacks=[ModelCheckpoint(dirpath=ckpts, save_top_k=-1)], max_epochs=2)
    assert sorted(p.name for p in ckpts.iterdir()) == [
        "epoch=0-step=1.ckpt",
        "epoch=0-step=2-v1.ckpt",
        "epoch=0-step=2.ckpt",
        "epoch=1-step=3.ckpt",
        "epoch=1-step=4-v1.ckpt",
        "epoch=1-step=4.ckpt",
    ]
    doc = cli_json("track", ckpts, "-d", unlabeled, "--train-data", train, "--count-epoch-0")
    assert [(r["name"], r["epoch"], r["status"]) for r in doc["results"]] == [
        ("epoch=0-step=2-v1", 0, "ok"),
        ("epoch=1-step=4-v1", 1, "ok"),
    ]
    assert doc["warnings"] == [
        "left out 4 checkpoints saved during their epoch (ModelCheckpoint's every_n_train_steps, train_time_interval or "
        "a mid-epoch validation, as their saved loop counters say): epoch=0-step=1, epoch=0-step=2, epoch=1-step=3, ...; "
        "the run's epochs are its end-of-epoch checkpoints"
    ]


def test_a_run_saved_only_during_its_epochs_is_measured_with_a_warning(tmp_path: Path) -> None:
    """every_n_train_steps=3 with 4 steps an epoch, stopped at step 10: epoch=0-step=3, epoch=1-step=6 and
    epoch=2-step=9, none of them an end-of-epoch model, were measured as epochs 0-2 with no word of it. They are
    measured, with a warning that names them; two saves of one epoch are refused in one line that says what they are."""
    unlabeled, train = image_sets(tmp_path)
    ckpts = tmp_path / "ckpts"
    fit(Classifier(), tmp_path, ModelCheckpoint(dirpath=ckpts, every_n_train_steps=3, save_top_k=-1), images=16, max_steps=10)
    assert sorted(p.name for p in ckpts.iterdir()) == ["epoch=0-step=3.ckpt", "epoch=1-step=6.ckpt", "epoch=2-step=9.ckpt"]
    doc = cli_json("track", ckpts, "-d", unlabeled, "--train-data", train, "--count-epoch-0")
    assert [r["epoch"] for r in doc["results"]] == [0, 1, 2]
    assert doc["warnings"] == [
        "epoch=0-step=3, epoch=1-step=6, epoch=2-step=9 were saved during their epoch (ModelCheckpoint's "
        "every_n_train_steps, train_time_interval or a mid-epoch validation, as their saved loop counters say), not at "
        "its end: each is measured as its epoch, and zeta averages r over these saves, not over whole epochs; save one "
        "at the end of every epoch, ModelCheckpoint(save_top_k=-1), to measure epochs"
    ]
    steps = tmp_path / "steps"
    fit(Classifier(), tmp_path, ModelCheckpoint(dirpath=steps, every_n_train_steps=1, save_top_k=-1), max_epochs=1)
    one_error_line(
        invoke("track", steps, "-d", unlabeled),
        3,
        "two checkpoints for epoch 0: epoch=0-step=1.ckpt and epoch=0-step=2.ckpt, saved during the epoch",
        "save one at the end of every epoch, ModelCheckpoint(save_top_k=-1)",
    )


def test_a_run_named_by_its_steps_is_numbered_by_the_epochs_it_records(tmp_path: Path) -> None:
    """ModelCheckpoint(filename="{step}") saves step=2.ckpt, step=4.ckpt, step=6.ckpt at the ends of epochs 0-2, and
    track measured them as epochs 2, 4 and 6 ("keep epoch 6"). Each file records its epoch: that is its number."""
    unlabeled, train = image_sets(tmp_path)
    ckpts = tmp_path / "ckpts"
    fit(Classifier(), tmp_path, ModelCheckpoint(dirpath=ckpts, filename="{step}", save_top_k=-1), max_epochs=3)
    assert sorted(p.name for p in ckpts.iterdir()) == ["step=2.ckpt", "step=4.ckpt", "step=6.ckpt"]
    doc = cli_json("track", ckpts, "-d", unlabeled, "--train-data", train, "--count-epoch-0")
    assert [(r["name"], r["epoch"]) for r in doc["results"]] == [("step=2", 0), ("step=4", 1), ("step=6", 2)]
    assert doc["recommendation"]["epoch"] == 2


@pytest.mark.parametrize(
    ("filename", "names"),
    [("{epoch}-{step}", ["0-2", "1-4", "2-6"]), ("{step}", ["2", "4", "6"]), ("epoch{epoch:02d}", ["epoch00", "epoch01", "epoch02"])],
)
def test_a_run_named_without_metric_names_is_numbered_by_the_epochs_it_records(filename: str, names: list[str], tmp_path: Path) -> None:
    """ModelCheckpoint(auto_insert_metric_name=False) names files by bare numbers: `{epoch}-{step}` saves 0-2.ckpt,
    1-4.ckpt, 2-6.ckpt, which track measured as epochs 2, 4 and 6, beside last.ckpt measured again as the only file
    of epoch 2. Each file records its epoch: that is its number."""
    unlabeled, train = image_sets(tmp_path)
    ckpts = tmp_path / "ckpts"
    saving = ModelCheckpoint(dirpath=ckpts, filename=filename, auto_insert_metric_name=False, save_top_k=-1, save_last=True)
    fit(Classifier(), tmp_path, saving, max_epochs=3)
    assert sorted(p.name for p in ckpts.iterdir()) == sorted([f"{n}.ckpt" for n in names] + ["last.ckpt"])
    doc = cli_json("track", ckpts, "-d", unlabeled, "--train-data", train, "--count-epoch-0")
    assert [(r["name"], r["epoch"]) for r in doc["results"]] == list(zip(names, [0, 1, 2]))
    assert doc["recommendation"]["epoch"] == 2


def test_where_in_its_epoch_a_checkpoint_was_saved_is_read_without_its_tensors(tmp_path: Path) -> None:
    """save_point reads the fit loop's counters from the file's pickle alone: a copy without the tensors' data
    gives the same answers."""
    ckpts = tmp_path / "ckpts"
    steps = ModelCheckpoint(dirpath=ckpts, every_n_train_steps=1, save_top_k=-1)
    fit(Classifier(), tmp_path, steps, callbacks=[ModelCheckpoint(dirpath=ckpts, save_top_k=-1)], max_epochs=1)
    points = {}
    for name in ("epoch=0-step=1", "epoch=0-step=2", "epoch=0-step=2-v1"):
        bare = tmp_path / f"{name}.ckpt"
        with zipfile.ZipFile(ckpts / f"{name}.ckpt") as full, zipfile.ZipFile(bare, "w") as copy_:
            for item in full.namelist():
                if "/data/" not in item:
                    copy_.writestr(item, full.read(item))
        points[name] = save_point(bare)
    assert points == {"epoch=0-step=1": MID_EPOCH, "epoch=0-step=2": LAST_BATCH, "epoch=0-step=2-v1": END}
    assert save_point(tmp_path / "epoch=0-step=1.ckpt") == save_point(ckpts / "epoch=0-step=1.ckpt")


class EmaClassifier(L.LightningModule):
    """A module that keeps its own EMA copy of its network: torch's AveragedModel as `ema_model` beside `model`,
    timm's ModelEmaV3 as `model_ema` beside `net`, ema-pytorch's EMA as `ema` beside `model`, or its own copy of the
    network as `net_ema` beside `net`, updated by hand."""

    def __init__(self, ema: str, model_name: str = "test_resnet", num_classes: int = 3):
        super().__init__()
        self.save_hyperparameters()
        net = timm.create_model(model_name, pretrained=False, num_classes=num_classes)
        if ema == "torch":
            self.model = net
            self.ema_model = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(0.5), use_buffers=True)
        elif ema == "ema-pytorch":
            self.model = net
            self.ema = pytest.importorskip("ema_pytorch").EMA(net, beta=0.5, update_after_step=0, update_every=1)
        elif ema == "copy":
            self.net = net
            self.net_ema = copy.deepcopy(net).requires_grad_(False)
        else:
            self.net = net
            self.model_ema = ModelEmaV3(net, decay=0.5)

    def networks(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """The network and its EMA copy."""
        if self.hparams.ema == "torch":
            return self.model, self.ema_model.module
        if self.hparams.ema == "ema-pytorch":
            return self.model, self.ema.ema_model
        if self.hparams.ema == "copy":
            return self.net, self.net_ema
        return self.net, self.model_ema.module

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.networks()[0](x), y)

    def on_train_batch_end(self, *_) -> None:
        if self.hparams.ema == "torch":
            self.ema_model.update_parameters(self.model)
        elif self.hparams.ema == "ema-pytorch":
            self.ema.update()
        elif self.hparams.ema == "copy":
            with torch.no_grad():
                for averaged, current in zip(self.net_ema.state_dict().values(), self.net.state_dict().values()):
                    averaged.copy_(averaged * 0.5 + current * 0.5 if averaged.is_floating_point() else current)
        else:
            self.model_ema.update(self.net)

    def configure_optimizers(self):
        return torch.optim.SGD(self.networks()[0].parameters(), lr=0.5)


@pytest.mark.parametrize(
    "ema, under, stripped",
    [
        ("torch", "ema_model.", "'ema_model.' + 'module.', ignored 1 keys outside it"),
        ("timm", "model_ema.", "'model_ema.' + 'module.'"),
        ("ema-pytorch", "ema.ema_model.", "'ema.' + 'ema_model.'"),
        ("copy", "net_ema.", "'net_ema.'"),
    ],
)
def test_a_modules_own_ema_copy_is_measured_with_ema(ema: str, under: str, stripped: str, tmp_path: Path) -> None:
    """`score x.ckpt --ema` measured the module's plain network and noted "the file holds no EMA weights", though
    its state dict holds the module's EMA copy (`ema_model.module.*` beside `model.*`); ema-pytorch's `EMA` (its
    copy under `ema.ema_model.*`, beside `ema.initted` and `ema.step`) and a copy kept by hand (`net_ema.*` beside
    `net.*`) were not loaded with --ema, nor noted without."""
    image_sets(tmp_path)
    fit(EmaClassifier(ema), tmp_path, ModelCheckpoint(dirpath=tmp_path / "ckpts"), max_steps=2)
    (path,) = (tmp_path / "ckpts").iterdir()
    net, averaged = EmaClassifier.load_from_checkpoint(path, map_location="cpu").networks()
    assert not torch.equal(net.fc.weight, averaged.fc.weight)
    score = [path, "-d", tmp_path / "unlabeled"]
    by_hand = {
        name: cli_json("score", suscli.save(model, tmp_path / f"{name}.safetensors", arch="timm:test_resnet", num_classes=3), *score[1:])
        for name, model in (("plain", net), ("ema", averaged))
    }
    row = cli_json("score", *score, "--ema")["results"][0]
    assert row["notes"][:2] == [f"using EMA weights under {under!r}: --ema", f"stripped prefix {stripped}"]
    assert row["susceptibility"] == pytest.approx(by_hand["ema"]["results"][0]["susceptibility"], rel=1e-6)
    row = cli_json("score", *score)["results"][0]
    assert row["notes"][0] == f"the file also holds EMA weights under {under!r}: --ema would measure them"
    assert row["susceptibility"] == pytest.approx(by_hand["plain"]["results"][0]["susceptibility"], rel=1e-6)
    assert by_hand["plain"]["results"][0]["susceptibility"] != pytest.approx(by_hand["ema"]["results"][0]["susceptibility"], rel=1e-3)


def test_weight_averaging_callbacks_plain_weights_by_default_the_average_with_ema(tmp_path: Path) -> None:
    """Lightning's EMAWeightAveraging saves the average as the `state_dict` and the network's own weights as
    `current_model_state`: `score` measured the average, noting nothing, and `score --ema` measured it too while
    saying "the file holds no EMA weights; its plain weights were used"."""
    averaging = getattr(L.pytorch.callbacks, "EMAWeightAveraging", None)
    if averaging is None:
        pytest.skip("Lightning before 2.5 has no WeightAveraging callbacks")
    image_sets(tmp_path)
    fit(Classifier(), tmp_path, ModelCheckpoint(dirpath=tmp_path / "ckpts"), max_steps=2, callbacks=[averaging(decay=0.5)])
    (path,) = (tmp_path / "ckpts").iterdir()
    raw = torch.load(path, map_location="cpu", weights_only=True)
    by_hand = {}
    for name, key in (("plain", "current_model_state"), ("averaged", "state_dict")):
        net = timm.create_model("test_resnet", num_classes=3)
        net.load_state_dict({k[len("net.") :]: v for k, v in raw[key].items() if k.startswith("net.")})
        saved = suscli.save(net, tmp_path / f"{name}.safetensors", arch="timm:test_resnet", num_classes=3)
        by_hand[name] = cli_json("score", saved, "-d", tmp_path / "unlabeled")["results"][0]["susceptibility"]
    assert by_hand["plain"] != pytest.approx(by_hand["averaged"], rel=1e-3)
    row = cli_json("score", path, "-d", tmp_path / "unlabeled")["results"][0]
    assert row["notes"][0] == (
        "the file also holds averaged weights under 'state_dict' (Lightning's WeightAveraging; the plain weights are its "
        "'current_model_state'): --ema would measure them"
    )
    assert row["susceptibility"] == pytest.approx(by_hand["plain"], rel=1e-6)
    row = cli_json("score", path, "-d", tmp_path / "unlabeled", "--ema")["results"][0]
    assert row["notes"][0] == "using the averaged weights from 'state_dict' (Lightning's WeightAveraging): --ema"
    assert row["susceptibility"] == pytest.approx(by_hand["averaged"], rel=1e-6)


def _lightning_file(path: Path, hparams: dict) -> Path:
    model = timm.create_model("test_resnet", num_classes=3)
    torch.save(
        {
            "epoch": 0,
            "pytorch-lightning_version": "2.6.0",
            "hyper_parameters": hparams,
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        },
        path,
    )
    return path


def test_an_ema_attribute_without_the_network_under_module_is_not_taken_for_an_ema_copy(tmp_path: Path) -> None:
    """`ema.ema_model.*` without ema-pytorch's `ema.initted` beside it is not known to be an EMA copy: no note promises it."""
    path = _lightning_file(tmp_path / "a.ckpt", {"model_name": "test_resnet"})
    raw = torch.load(path, weights_only=True)
    raw["state_dict"] |= {f"ema.ema_model.{k[len('model.') :]}": v for k, v in raw["state_dict"].items()}
    torch.save(raw, path)
    assert load_checkpoint(path).notes == ["stripped prefix 'model.', ignored 92 keys outside it"]


def test_hyper_parameters_naming_no_one_architecture(tmp_path: Path) -> None:
    path = _lightning_file(tmp_path / "a.ckpt", {"arch": "resnet18"})
    with pytest.raises(
        InputError, match="'resnet18', which both torchvision and timm define .*--arch torchvision:resnet18 or --arch timm:resnet18"
    ):
        load_checkpoint(path)
    assert load_checkpoint(path, default_arch="timm:test_resnet").notes == [  # the user's word settles it
        "--arch timm:test_resnet used: the Lightning checkpoint says resnet18",
        "stripped prefix 'model.'",
    ]
    with pytest.raises(InputError, match="'no_such_net', which neither torchvision nor timm defines"):
        load_checkpoint(_lightning_file(tmp_path / "b.ckpt", {"model_name": "no_such_net"}))
    with pytest.raises(InputError, match="names the architecture 'subprocess:run', which is not a model class"):
        load_checkpoint(_lightning_file(tmp_path / "c.ckpt", {"arch": "subprocess:run"}))


def test_an_arch_that_fails_over_the_recorded_one_says_it_was_used_over_it(tmp_path: Path) -> None:
    """`rank pool --arch torchvision:resnet18` for a pool's plain state dicts also overrides its Lightning files; their
    rows said only "weights do not fit torchvision:resnet18 ... (pass the architecture ... it was trained with)"."""
    path = _lightning_file(tmp_path / "a.ckpt", {"model_name": "test_resnet"})
    with pytest.raises(InputError, match="weights do not fit torchvision:resnet18") as info:
        load_checkpoint(path, default_arch="torchvision:resnet18")
    assert info.value.fix == (
        "--arch torchvision:resnet18 was used over the Lightning checkpoint's timm:test_resnet: leave it out for this file "
        "(a rank manifest gives each model its own arch)"
    )
    with pytest.raises(InputError, match="torchvision has no model") as info:
        load_checkpoint(path, arch="torchvision:no_such_net")
    assert info.value.fix is not None and info.value.fix.startswith("manifest arch torchvision:no_such_net was used over")


class HydraClassifier(L.LightningModule):
    """A Hydra-configured module: its config arrives as an OmegaConf DictConfig and is saved as the hyper-parameters."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.save_hyperparameters(cfg)
        self.net = timm.create_model(cfg.model.name, pretrained=False, num_classes=cfg.num_classes)

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.optim.lr)


def test_hydra_hyper_parameters_are_plain_data_with_or_without_omegaconf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hyper_parameters that are an OmegaConf DictConfig (every Hydra-configured Lightning project's) are read as the
    plain data they hold, by the weights-only unpickler, without omegaconf: nothing of omegaconf runs, and an
    interpolation stays its text."""
    omegaconf = pytest.importorskip("omegaconf")
    from suscli.load import configs
    from suscli.load.safe_read import _plain_data

    image_sets(tmp_path)
    cfg = omegaconf.OmegaConf.create(
        {
            "model": {"name": "test_resnet", "arch": "timm:test_resnet", "depth": None},
            "num_classes": 3,
            "optim": {"lr": 0.05, "betas": [0.9, 0.99], "nesterov": True},
            "run": {"tags": ["a", 1, None, 2.5], "seed": "${num_classes}", "out": "???", "data": None},
        }
    )
    model = HydraClassifier(cfg)
    model.hparams["arch"] = "timm:test_resnet"
    data = torch.utils.data.TensorDataset(torch.randn(4, 3, 32, 32), torch.randint(0, 3, (4,)))
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpts", save_last=True)],
        default_root_dir=tmp_path,
    )
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=4))
    path = tmp_path / "ckpts" / "last.ckpt"
    assert type(torch.load(path, weights_only=False)["hyper_parameters"]) is omegaconf.DictConfig  # as Lightning saved it
    with _plain_data():
        raw = torch.load(path, map_location="cpu", weights_only=True)
    assert configs.plain(raw["hyper_parameters"]) == {**omegaconf.OmegaConf.to_container(cfg, resolve=False), "arch": "timm:test_resnet"}
    net = HydraClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=False).net  # Lightning's own needs the pickle
    c = resolve_data_config({}, model=net)
    expected = by_hand(net, tmp_path / "unlabeled", mean=c["mean"], std=c["std"], image_size=c["input_size"][1], crop_pct=c["crop_pct"])
    for name in [m for m in sys.modules if m == "omegaconf" or m.startswith("omegaconf.")]:
        monkeypatch.setitem(sys.modules, name, None)  # omegaconf absent: importing any of it fails
    with pytest.raises(ImportError):
        import omegaconf.dictconfig  # noqa: F401
    row = cli_json("score", path, "-d", tmp_path / "unlabeled")["results"][0]
    assert (row["arch"], row["details"]["arch_source"], row["epoch"]) == ("timm:test_resnet", "Lightning checkpoint", 0)
    assert row["susceptibility"] == pytest.approx(expected, rel=1e-5)


class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_payload_inside_omegaconf_hyper_parameters_is_still_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-ins allow omegaconf's containers by name only: an object a config holds (allow_objects) is a global
    like any other, refused before it runs."""
    omegaconf = pytest.importorskip("omegaconf")
    monkeypatch.chdir(tmp_path)
    cfg = omegaconf.OmegaConf.create({"arch": "timm:test_resnet", "x": Payload()}, flags={"allow_objects": True})
    path = _lightning_file(tmp_path / "evil.ckpt", cfg)
    refused = r"evil.ckpt: holds pickled Python objects: it imports (os|posix)\.system, .* nothing in the file was run"
    with pytest.raises(InputError, match=refused):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


def test_stochastic_weight_averaging_plain_weights_by_default_the_average_with_ema(tmp_path: Path) -> None:
    """Lightning's StochasticWeightAveraging keeps its average in its callback state (`average_model_state`, with the
    buffers the network had when training began): `score --ema` said "the file holds no EMA weights; its plain
    weights were used", and the run without it did not say the average was there."""
    from lightning.pytorch.callbacks import StochasticWeightAveraging

    image_sets(tmp_path)
    torch.manual_seed(0)
    averaging = StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=2)  # averages from the second epoch
    fit(Classifier(), tmp_path, ModelCheckpoint(dirpath=tmp_path / "ckpts", save_top_k=-1), callbacks=[averaging], max_epochs=3)
    first, path = tmp_path / "ckpts" / "epoch=0-step=2.ckpt", tmp_path / "ckpts" / "epoch=2-step=6.ckpt"
    assert [n for n in load_checkpoint(first).notes if "Averaging" in n] == []
    assert load_checkpoint(first, ema=True).notes[0] == (
        "--ema: Lightning's StochasticWeightAveraging has averaged no epoch yet; its plain weights were used"
    )
    (state,) = (v for k, v in torch.load(path, weights_only=True)["callbacks"].items() if k.startswith("StochasticWeightAveraging"))
    by_hand = {}
    for name in ("plain", "averaged"):
        module = Classifier.load_from_checkpoint(path, map_location="cpu")
        if name == "averaged":  # the callback's own way to put its average into the module
            average = Classifier()
            average.load_state_dict(state["average_model_state"])
            StochasticWeightAveraging.transfer_weights(average, module)
        saved = suscli.save(module.net, tmp_path / f"{name}.safetensors", arch="timm:test_resnet", num_classes=3)
        by_hand[name] = cli_json("score", saved, "-d", tmp_path / "unlabeled")["results"][0]["susceptibility"]
    assert by_hand["plain"] != pytest.approx(by_hand["averaged"], rel=1e-3)
    row = cli_json("score", path, "-d", tmp_path / "unlabeled")["results"][0]
    assert (
        row["notes"][0] == "the file also holds the average of Lightning's StochasticWeightAveraging over 2 epochs: --ema would measure it"
    )
    assert row["susceptibility"] == pytest.approx(by_hand["plain"], rel=1e-6)
    row = cli_json("score", path, "-d", tmp_path / "unlabeled", "--ema")["results"][0]
    assert row["notes"][0] == (
        "using the average of Lightning's StochasticWeightAveraging over 2 epochs (its parameters; the buffers, BatchNorm "
        "statistics among them, from 'state_dict'): --ema"
    )
    assert row["susceptibility"] == pytest.approx(by_hand["averaged"], rel=1e-6)
    whole = torch.load(path, weights_only=True)  # the count as a tensor (AveragedModel's own n_averaged buffer) reads the same
    next(v for k, v in whole["callbacks"].items() if k.startswith("StochasticWeightAveraging"))["n_averaged"] = torch.tensor(2)
    torch.save(whole, tmp_path / "tensor-count.ckpt")
    assert "over 2 epochs" in load_checkpoint(tmp_path / "tensor-count.ckpt", ema=True).notes[0]


def test_a_stochastic_weight_average_that_does_not_fit_is_one_error(tmp_path: Path) -> None:
    """An `average_model_state` that lacks a parameter of the module's network is refused naming it, not half-copied."""
    path = _lightning_file(tmp_path / "a.ckpt", {"model_name": "test_resnet"})
    raw = torch.load(path, weights_only=True)
    average = {k: v + 1 for k, v in raw["state_dict"].items() if k != "model.fc.bias"}
    raw["callbacks"] = {"StochasticWeightAveraging": {"n_averaged": 2, "latest_update_epoch": 1, "average_model_state": average}}
    torch.save(raw, path)
    with pytest.raises(InputError) as info:
        load_checkpoint(path, ema=True)
    assert str(info.value).endswith(
        "a.ckpt: the average of StochasticWeightAveraging does not fit timm:test_resnet: 1 parameters missing or of another "
        "shape (fc.bias) (leave out --ema to measure the module's own weights)"
    )
