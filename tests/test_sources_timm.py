"""timm: checkpoints written by timm's own CheckpointSaver with train.py's args, scored, ranked and tracked with
no --arch, --mean, --std or --image-size, and compared with the same model loaded by timm itself."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from suscli.load.checkpoints import load_checkpoint
from suscli.cli import app
from suscli.errors import InputError
from tests.conftest import by_hand, cli_json, image_sets, tiny_cnn, write_images

timm = pytest.importorskip("timm")
yaml = pytest.importorskip("yaml")
from timm.data import resolve_data_config  # noqa: E402
from timm.utils import CheckpointSaver, ModelEmaV3  # noqa: E402

MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]


def train_args() -> argparse.Namespace:
    """What train.py's parser gives for `train.py DATA --model test_resnet --num-classes 3 --input-size 3 32 32
    --mean .5 .4 .3 --std .2 .25 .3 --model-ema --model-ema-decay 0.5` (the fields the checkpoint needs, and a few more)."""
    return argparse.Namespace(
        data_dir="data",
        model="test_resnet",
        pretrained=False,
        initial_checkpoint="",
        num_classes=3,
        gp=None,
        img_size=None,
        in_chans=None,
        input_size=[3, 32, 32],
        crop_pct=None,
        mean=MEAN,
        std=STD,
        interpolation="",
        batch_size=4,
        opt="sgd",
        lr=0.05,
        epochs=3,
        drop=0.0,
        drop_path=None,
        bn_momentum=None,
        bn_eps=None,
        model_kwargs={},
        model_ema=True,
        model_ema_decay=0.5,
        output="out",
        seed=42,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A timm output folder: checkpoint-0..2.pth.tar, last.pth.tar, model_best.pth.tar and args.yaml."""
    root = tmp_path_factory.mktemp("timm")
    image_sets(root)
    out = root / "run"
    out.mkdir()
    args = train_args()
    torch.manual_seed(0)
    model = timm.create_model(args.model, pretrained=False, num_classes=args.num_classes)
    ema = ModelEmaV3(model, decay=args.model_ema_decay)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    saver = CheckpointSaver(model, optimizer, args=args, model_ema=ema, checkpoint_dir=str(out), recovery_dir=str(out), max_history=5)
    (out / "args.yaml").write_text(yaml.safe_dump(vars(args), default_flow_style=False))  # as train.py writes it
    for epoch in range(3):
        model.train()
        loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update(model, step=epoch)
        saver.save_checkpoint(epoch, metric=float(epoch))
    return out


def timm_by_hand(path: Path, root: Path, use_ema: bool = False) -> float:
    """The model as timm loads it (timm.models.load_checkpoint), preprocessed as timm's data config says."""
    args = train_args()
    model = timm.create_model(args.model, pretrained=False, num_classes=args.num_classes)
    timm.models.load_checkpoint(model, str(path), use_ema=use_ema)
    cfg = resolve_data_config(vars(args), model=model)
    return by_hand(model, root / "unlabeled", mean=cfg["mean"], std=cfg["std"], image_size=cfg["input_size"][1], crop_pct=cfg["crop_pct"])


def test_score_reads_the_whole_checkpoint(run: Path) -> None:
    root = run.parent
    doc = cli_json("score", run / "checkpoint-1.pth.tar", "-d", root / "unlabeled", "--train-data", root / "train")
    row = doc["results"][0]
    cfg = resolve_data_config(vars(train_args()), model=timm.create_model("test_resnet", num_classes=3))
    assert (row["arch"], row["details"]["arch_source"], row["epoch"]) == ("timm:test_resnet", "timm checkpoint", 1)
    assert row["details"]["preprocess"] == {
        "image_size": 32,
        "mean": MEAN,
        "std": STD,
        "crop_pct": cfg["crop_pct"],
        "resize": "crop",
        "interpolation": cfg["interpolation"],
        "crop_offset": "round",  # torchvision's CenterCrop, which timm's transform uses
        "channel_order": "RGB",
    }
    assert row["susceptibility"] == pytest.approx(timm_by_hand(run / "checkpoint-1.pth.tar", root), rel=1e-5)
    assert row["notes"] == ["the file also holds EMA weights under 'state_dict_ema': --ema would measure them"]


def test_ema_weights_on_request(run: Path) -> None:
    root, path = run.parent, run / "last.pth.tar"
    plain = cli_json("score", path, "-d", root / "unlabeled")["results"][0]
    ema = cli_json("score", path, "-d", root / "unlabeled", "--ema")["results"][0]
    assert ema["susceptibility"] == pytest.approx(timm_by_hand(path, root, use_ema=True), rel=1e-5)
    assert ema["susceptibility"] != pytest.approx(plain["susceptibility"], rel=1e-5)  # the EMA weights differ
    assert ema["notes"] == ["using EMA weights from 'state_dict_ema': --ema"]


def test_track_and_rank_the_run(run: Path, tmp_path: Path) -> None:
    root = run.parent
    tracked = cli_json("track", run, "-d", root / "unlabeled", "--train-data", root / "train", "--results", tmp_path / "t.jsonl")
    assert [r["epoch"] for r in tracked["results"]] == [0, 1, 2]  # last and model_best carry no number: skipped
    assert tracked["warnings"] == [
        "skipped 2 checkpoints named as a copy of another epoch (last, best, latest, final, or no number), whose epoch "
        "another checkpoint holds: last, model_best",
        TRAINED_0,
    ]
    ranked = cli_json("rank", run, "-d", root / "unlabeled", "--train-data", root / "train", "--results", tmp_path / "r.jsonl")
    assert sorted(r["name"] for r in ranked["results"]) == ["checkpoint-0", "checkpoint-1", "checkpoint-2", "last", "model_best"]
    for row in tracked["results"] + ranked["results"]:
        assert row["arch"] == "timm:test_resnet"
        assert row["susceptibility"] == pytest.approx(timm_by_hand(Path(row["path"]), root), rel=1e-5), row["name"]


TRAINED_0 = (
    "checkpoint-0 records epoch 0 as timm's CheckpointSaver writes it, after that epoch trained: its epoch 0 is a trained "
    "epoch (timm numbers its first trained epoch 0), not the initialization; pass --count-epoch-0 to count it in zeta "
    "and the choice"
)


def test_timms_trained_epoch_0_is_not_taken_for_the_initialization_silently(run: Path, tmp_path: Path) -> None:
    """train.py saves checkpoint-0.pth.tar after its first epoch trained: track said only "epoch 0 taken as the
    initialization" and left that trained epoch out of zeta and the choice, where Lightning's epoch=0-step=N got a
    warning."""
    root = run.parent
    args = ("-d", root / "unlabeled", "--train-data", root / "train", "--results", tmp_path / "t.jsonl")
    tracked = cli_json("track", run, *args)
    assert TRAINED_0 in tracked["warnings"] and tracked["results"][0]["zeta"] is None
    tracked = cli_json("track", run, *args, "--count-epoch-0")
    assert TRAINED_0 not in tracked["warnings"] and tracked["results"][0]["zeta"] is not None
    from suscli.run.epochs import run_epochs, trained_epoch_0

    other = tmp_path / "other"  # the same name without CheckpointSaver's record: epoch 0 may be the initialization
    other.mkdir()
    torch.save(tiny_cnn(3).state_dict(), other / "checkpoint-0.pth.tar")
    assert trained_epoch_0(run_epochs(other)[0]) is None


def test_a_file_whose_name_says_another_epoch_than_it_records_is_named_so(run: Path, tmp_path: Path) -> None:
    """checkpoint-1.pth.tar copied to checkpoint-3.pth.tar: the copy records epoch 1, which wins over its name, and
    track refused "two checkpoints for epoch 1: checkpoint-1 and checkpoint-3" without saying why checkpoint-3 is
    epoch 1; the error now says what the file records and what its name says."""
    import shutil

    out = tmp_path / "run"
    out.mkdir()
    for name in ("checkpoint-0.pth.tar", "checkpoint-1.pth.tar"):
        shutil.copy(run / name, out / name)
    shutil.copy(run / "checkpoint-1.pth.tar", out / "checkpoint-3.pth.tar")
    root = run.parent
    res = CliRunner().invoke(app, ["track", str(out), "-d", str(root / "unlabeled")])
    assert res.exit_code == 3, res.output
    assert (
        "two checkpoints for epoch 1: checkpoint-1.pth.tar and checkpoint-3.pth.tar (its file records epoch 1, its name says 3)"
        in res.stderr
    )


def test_the_last_epoch_that_max_history_kept_only_in_last_pth_tar_is_tracked_and_ranked(run: Path, tmp_path: Path) -> None:
    """CheckpointSaver keeps the max_history best checkpoint-N files: a last epoch that is not among them lives on
    only in last.pth.tar, which records its epoch. track measured the run without it, and rank took checkpoint-2
    for the run's latest."""
    root, out = run.parent, tmp_path / "pool" / "run"
    out.mkdir(parents=True)
    args = train_args()
    torch.manual_seed(0)
    model = timm.create_model(args.model, pretrained=False, num_classes=args.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    saver = CheckpointSaver(model, optimizer, args=args, checkpoint_dir=str(out), recovery_dir=str(out), max_history=2)
    for epoch, metric in enumerate([1.0, 3.0, 2.0, 0.0]):  # the best two: epochs 1 and 2
        loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        saver.save_checkpoint(epoch, metric=metric)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-1.pth.tar", "checkpoint-2.pth.tar", "last.pth.tar", "model_best.pth.tar"]
    tracked = cli_json("track", out, "-d", root / "unlabeled", "--train-data", root / "train", "--results", tmp_path / "t.jsonl")
    assert [(r["name"], r["epoch"]) for r in tracked["results"]] == [("checkpoint-1", 1), ("checkpoint-2", 2), ("last", 3)]
    assert tracked["warnings"] == [
        "skipped 1 checkpoint named as a copy of another epoch (last, best, latest, final, or no number), whose epoch "
        "another checkpoint holds: model_best",
        "last (epoch 3): the only checkpoint of its epoch, as its file records it (the numbered one was not kept: timm's "
        "max_history, Lightning's save_top_k), measured as that epoch",
    ]
    ranked = cli_json("rank", out.parent, "-d", root / "unlabeled", "--results", tmp_path / "r.jsonl")
    assert [Path(r["path"]).name for r in ranked["results"]] == ["last.pth.tar"]


def test_renamed_to_pth_loads_without_trust(run: Path, tmp_path: Path) -> None:
    """Its `args` is an argparse.Namespace: allowed by name to the weights_only unpickler."""
    (tmp_path / "m.pth").write_bytes((run / "checkpoint-2.pth.tar").read_bytes())
    ckpt = load_checkpoint(tmp_path / "m.pth")
    assert (ckpt.arch, ckpt.meta["epoch"], ckpt.meta["image_size"], ckpt.num_classes) == ("timm:test_resnet", 2, 32, 3)


def test_args_yaml_beside_a_cleaned_checkpoint(run: Path) -> None:
    """timm's clean_checkpoint.py keeps the weights alone; the run's args.yaml still names the model."""
    weights = torch.load(run / "checkpoint-2.pth.tar", weights_only=False)["state_dict"]
    torch.save(weights, run / "cleaned.pth")
    try:
        ckpt = load_checkpoint(run / "cleaned.pth")
    finally:
        (run / "cleaned.pth").unlink()
    assert (ckpt.arch, ckpt.arch_source, ckpt.meta["mean"], ckpt.meta["image_size"]) == ("timm:test_resnet", "args.yaml", MEAN, 32)


def test_another_scripts_args_yaml_naming_a_model_is_not_read_as_timms(run: Path, tmp_path: Path) -> None:
    """An args.yaml is what many training scripts write: one that names a `model` but lacks train.py's other fields
    made a plain state dict beside it timm's model of that name, with timm's preprocessing, without a word."""
    weights = torch.load(run / "checkpoint-2.pth.tar", weights_only=False)["state_dict"]
    torch.save(weights, tmp_path / "weights.pth")
    (tmp_path / "args.yaml").write_text(yaml.safe_dump({"model": "test_resnet", "lr": 0.1, "epochs": 3}))
    with pytest.raises(InputError, match="--arch"):
        load_checkpoint(tmp_path / "weights.pth")


def test_class_map_names_the_classes(run: Path, tmp_path: Path) -> None:
    """train.py --class-map: class i is line i of the file, found as given or, moved with the run, beside the
    checkpoint. Labels by name must fit the model as its own ids do; without the file the note says why."""
    root, ckpt = run.parent, torch.load(run / "checkpoint-2.pth.tar", weights_only=False)
    ckpt["args"].class_map = "/data/gone/class_map.txt"  # where it was trained
    torch.save(ckpt, tmp_path / "mapped.pth.tar")
    rows = [(p, ["cat", "zebra", "cat"][c]) for c in range(3) for p in sorted((root / "train" / f"class_{c}").iterdir())]
    by_name, by_id = tmp_path / "names.csv", tmp_path / "ids.csv"
    by_name.write_text("".join(f"{p},{name}\n" for p, name in rows))
    by_id.write_text("".join(f"{p},{ {'zebra': 0, 'cat': 2}[name] }\n" for p, name in rows))
    missing = cli_json("score", tmp_path / "mapped.pth.tar", "-d", root / "unlabeled", "--train-data", by_name)["results"][0]
    assert any(
        n.endswith("timm's class map /data/gone/class_map.txt was not found as given, in the data folder or beside the checkpoint")
        for n in missing["notes"]
    )
    (tmp_path / "class_map.txt").write_text("zebra\nant\ncat\n")
    named, ids = (
        cli_json("score", tmp_path / "mapped.pth.tar", "-d", root / "unlabeled", "--train-data", csv, "--per-image")["results"][0]
        for csv in (by_name, by_id)
    )
    assert named["details"]["train_predictions"] == ids["details"]["train_predictions"] and named["train_acc"] == ids["train_acc"]
    assert f"training labels are class names, mapped to the model's ids by timm's class map {tmp_path / 'class_map.txt'}" in named["notes"]


def test_class_folders_are_numbered_as_timms_folder_reader_numbered_them(run: Path, tmp_path: Path) -> None:
    """timm's folder reader numbers class folders in natural order (class_2 before class_10), not as sorted strings:
    a timm run's training accuracy must be measured against the ids it trained with, which its own reader gives."""
    from timm.data import ImageDataset

    root, ckpt = run.parent, torch.load(run / "checkpoint-2.pth.tar", weights_only=False)
    ckpt["args"].dataset = ""  # train.py's default: an image folder, read by timm's reader
    torch.save(ckpt, tmp_path / "natural.pth.tar")
    train = tmp_path / "train"
    for c, name in enumerate(["class_1", "class_2", "class_10"]):
        write_images(train / name, 4, size=32, seed=20 + c)
    reader = ImageDataset(str(train)).reader  # the ids timm trained with
    assert list(reader.class_to_idx) == ["class_1", "class_2", "class_10"]
    as_timm = tmp_path / "as_timm.csv"
    as_timm.write_text("".join(f"{path},{label}\n" for path, label in sorted(reader.samples)))  # in the folder's listing order
    folders, ids = (
        cli_json("score", tmp_path / "natural.pth.tar", "-d", root / "unlabeled", "--train-data", t, "--per-image")["results"][0]
        for t in (train, as_timm)
    )
    assert folders["details"]["train_predictions"] == ids["details"]["train_predictions"]
    assert folders["train_acc"] == ids["train_acc"]
    assert "class folders numbered in natural order (class_1, class_2, class_10), as timm's folder reader numbers them" in folders["notes"]
    # A run that read its folder with torchvision's ImageFolder numbered them as sorted strings: nothing to say.
    ckpt["args"].dataset = "torch/folder"
    torch.save(ckpt, tmp_path / "sorted.pth.tar")
    row = cli_json("score", tmp_path / "sorted.pth.tar", "-d", root / "unlabeled", "--train-data", train)["results"][0]
    assert not any("class folders" in n for n in row["notes"]), row["notes"]


def test_a_model_that_does_not_say_how_it_numbered_folders_gets_a_note_when_it_matters(tmp_path: Path) -> None:
    """suscli cannot know which tool a plain model was trained with: when the folder names sort differently as strings
    and naturally, the row says which order was used, and the other."""
    import suscli

    unlabeled, _ = image_sets(tmp_path, size=8)
    train = tmp_path / "folders"
    for c, name in enumerate(["class_1", "class_2", "class_10"]):
        write_images(train / name, 4, size=8, seed=20 + c)
    torch.manual_seed(0)
    model = tmp_path / "m.safetensors"
    suscli.save(tiny_cnn(3), model, arch="tests.conftest:tiny_cnn", arch_kwargs={"num_classes": 3}, image_size=8)
    notes = cli_json("score", model, "-d", unlabeled, "--train-data", train)["results"][0]["notes"]
    assert (
        "class folders numbered in sorted order of their names (class_1, class_10, class_2), as torchvision's ImageFolder; "
        "timm's folder reader numbers them naturally (class_1, class_2, class_10): if the model was trained so, pass a "
        "path,label CSV with its ids"
    ) in notes


@pytest.mark.parametrize(
    "names",
    [
        ["class_10", "class_2", "class_1", "Class_3"],
        ["a10b2", "a10b10", "a9", "b", "A1", "10", "9x", "x٣", "x12", ""],
        ["n01440764", "n1440765"],
    ],
)
def test_natural_order_is_timms(names: list[str]) -> None:
    from timm.utils.misc import natural_key as timms

    from suscli.data.labels import natural_key

    assert sorted(names, key=natural_key) == sorted(names, key=timms)


def test_timm_spec_takes_timms_data_config(tmp_path: Path) -> None:
    model = timm.create_model("test_resnet", num_classes=3)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", default_arch="timm:test_resnet")
    cfg = resolve_data_config({}, model=model)
    assert ckpt.meta == {
        "image_size": cfg["input_size"][1],
        "mean": list(cfg["mean"]),
        "std": list(cfg["std"]),
        "crop_pct": cfg["crop_pct"],
        "interpolation": cfg["interpolation"],
        "implied": ["crop_pct", "image_size", "interpolation", "mean", "std"],  # the architecture's, not this checkpoint's
        "implied_by": "the defaults of timm:test_resnet",
    }
    # what the notes say of them: a --preset wins over the architecture's size too (its mean/std/crop already did),
    # and the defaults are named as such, not as what "the checkpoint says"
    images = tmp_path / "imgs"
    write_images(images, 4, size=32)
    row = cli_json("score", tmp_path / "m.pt", "-d", images, "--arch", "timm:test_resnet", "--batches", "1", "--preset", "cifar10")[
        "results"
    ][0]
    assert row["details"]["preprocess"]["image_size"] == 32  # the preset's, not the architecture's 160
    notes = " ".join(row["notes"])
    assert "--preset cifar10 used: the defaults of timm:test_resnet say mean" in notes and "the checkpoint says" not in notes
    if cfg["input_size"][1] != 32:
        assert f"--preset cifar10 used: the defaults of timm:test_resnet say image size {cfg['input_size'][1]}" in notes
    # --image-size over the architecture's size: one note, naming the defaults (it said "the checkpoint says", and
    # with --preset too a second note credited the preset with the size --image-size chose)
    sized = cli_json(
        "score",
        tmp_path / "m.pt",
        "-d",
        images,
        "--arch",
        "timm:test_resnet",
        "--batches",
        "1",
        "--preset",
        "cifar10",
        "--image-size",
        "24",
    )["results"][0]["notes"]
    assert [n for n in sized if "image size" in n or "--image-size" in n] == [
        f"--image-size 24 used: the defaults of timm:test_resnet say {cfg['input_size'][1]}"
    ]
    plain = cli_json("score", tmp_path / "m.pt", "-d", images, "--arch", "timm:test_resnet", "--batches", "1")["results"][0]
    assert f"image size {cfg['input_size'][1]} from the defaults of timm:test_resnet" in " ".join(plain["notes"])
    sized = cli_json("score", tmp_path / "m.pt", "-d", images, "--arch", "timm:test_resnet", "--batches", "1", "--image-size", "32")
    notes = " ".join(sized["results"][0]["notes"])
    if cfg["input_size"][1] != 32:
        assert f"--image-size 32 used: the defaults of timm:test_resnet say {cfg['input_size'][1]}" in notes
    assert "the checkpoint says" not in notes
    with pytest.raises(InputError, match="did you mean timm:test_resnet"):
        load_checkpoint(tmp_path / "m.pt", default_arch="timm:test_resnett")
    with pytest.raises(InputError, match="pretrained would load or download weights"):
        load_checkpoint(tmp_path / "m.pt", default_arch="timm:test_resnet", default_arch_kwargs={"pretrained": True})


def test_a_vit_built_for_another_size_takes_the_size_it_was_built_for(tmp_path: Path) -> None:
    """`--arch timm:test_vit --arch-kwargs img_size=32`: the pretrained config's 160 px fed the ViT built for 32 px
    images 160 px ones (measured at that size here; vit_tiny_patch16_224 refused them: "Input height (224) doesn't
    match model (32)"); timm's scripts pass the size given as --img-size into the data config, as suscli now passes
    the size the model was built for."""
    model = timm.create_model("test_vit", num_classes=3, img_size=32)
    assert model.pretrained_cfg["input_size"][1] != 32
    torch.save(model.state_dict(), tmp_path / "m.pt")
    images = tmp_path / "imgs"
    write_images(images, 4, size=32)
    args = ("score", tmp_path / "m.pt", "-d", images, "--arch", "timm:test_vit", "--arch-kwargs", "img_size=32", "--batches", "1")
    row = cli_json(*args)["results"][0]
    assert row["status"] == "ok" and row["details"]["preprocess"]["image_size"] == 32
    assert "image size 32 from the defaults of timm:test_vit" in " ".join(row["notes"])


def test_a_folder_timm_saved_for_the_hub_is_one_checkpoint(run: Path, tmp_path: Path) -> None:
    """save_for_hf (what push_to_hub uploads) writes config.json and model.safetensors: it was taken for a Hugging
    Face transformers folder and refused as "the model type None, which transformers ... does not define"."""
    root = run.parent
    model = timm.create_model("test_resnet", num_classes=3)
    model.pretrained_cfg = {**model.pretrained_cfg, "input_size": (3, 32, 32), "mean": MEAN, "std": STD, "crop_pct": 0.9}
    timm.models.save_for_hf(model, tmp_path / "hub", model_args={"num_classes": 3})
    row = cli_json("score", tmp_path / "hub", "-d", root / "unlabeled")["results"][0]
    assert (row["arch"], row["details"]["arch_source"], row["notes"]) == ("timm:test_resnet", "config.json", [])
    assert row["details"]["preprocess"] == {
        "image_size": 32,
        "mean": MEAN,
        "std": STD,
        "crop_pct": 0.9,
        "resize": "crop",
        "interpolation": model.pretrained_cfg["interpolation"],
        "crop_offset": "round",  # torchvision's CenterCrop, which timm's transform uses
        "channel_order": "RGB",
    }
    assert row["susceptibility"] == pytest.approx(
        by_hand(model, root / "unlabeled", mean=MEAN, std=STD, image_size=32, crop_pct=0.9), rel=1e-5
    )
    ranked = cli_json("rank", tmp_path, "-d", root / "unlabeled", "--results", tmp_path / "r.jsonl")["results"]
    assert [(r["name"], r["susceptibility"]) for r in ranked] == [("hub", row["susceptibility"])]


@pytest.mark.parametrize(
    ("model", "spec"),
    [
        ("hf-hub:timm/test_resnet.r160_in1k", "timm:test_resnet.r160_in1k"),
        ("timm/test_resnet.r160_in1k", "timm:test_resnet.r160_in1k"),
        ("timm:test_resnet", "timm:test_resnet"),
        ("hf-hub:me/my-finetune", None),
    ],
)
def test_a_model_named_as_train_py_takes_it(tmp_path: Path, model: str, spec: str | None) -> None:
    """`train.py --model hf-hub:timm/NAME.TAG` (fine-tuning Hub weights) recorded a name that built
    'timm:hf-hub:timm/...': "no module named 'timm:hf-hub'"; `timm/NAME.TAG` was "timm has no model"."""
    weights = timm.create_model("test_resnet", num_classes=3).state_dict()
    args = argparse.Namespace(**{**vars(train_args()), "model": model})
    torch.save({"epoch": 0, "arch": model, "state_dict": weights, "args": args}, tmp_path / "last.pth.tar")
    if spec is None:
        with pytest.raises(InputError, match="whose architecture only that model's config.json names") as info:
            load_checkpoint(tmp_path / "last.pth.tar")
        assert info.value.fix == "pass --arch timm:NAME with the architecture of that model"
        assert load_checkpoint(tmp_path / "last.pth.tar", default_arch="timm:test_resnet").arch == "timm:test_resnet"
        return
    ckpt = load_checkpoint(tmp_path / "last.pth.tar")
    assert ckpt.arch == spec
    assert ckpt.notes == (
        [f"timm's {model} read as {spec}, its repository's name (the Hub's config.json is not downloaded)"] if "hf-hub" in model else []
    )


def test_users_arch_and_mean_win_with_a_note(run: Path) -> None:
    root = run.parent
    row = cli_json(
        "score",
        run / "checkpoint-0.pth.tar",
        "-d",
        root / "unlabeled",
        "--arch",
        "timm.models.resnet:test_resnet",
        "--mean",
        "0.5",
        "--std",
        "0.5",
        "--preset",
        "none",
    )["results"][0]
    assert row["arch"] == "timm.models.resnet:test_resnet"
    assert row["notes"] == [
        "--arch timm.models.resnet:test_resnet used: the timm checkpoint says timm:test_resnet",
        "the file also holds EMA weights under 'state_dict_ema': --ema would measure them",
        "--mean/--std used: the checkpoint says mean 0.5,0.4,0.3, std 0.2,0.25,0.3",
    ]
    model = timm.create_model("test_resnet", num_classes=3)
    timm.models.load_checkpoint(model, str(run / "checkpoint-0.pth.tar"))
    assert row["susceptibility"] == pytest.approx(
        by_hand(model, root / "unlabeled", mean=[0.5], std=[0.5], image_size=32, crop_pct=row["details"]["preprocess"]["crop_pct"]),
        rel=1e-5,
    )


def test_missing_timm_is_one_line_naming_the_extra(tmp_path: Path, monkeypatch) -> None:
    torch.save({"w": torch.zeros(1)}, tmp_path / "m.pt")
    monkeypatch.setitem(sys.modules, "timm", None)  # as if timm were not installed
    write_images(tmp_path / "images", 2, seed=3)  # images that can be read: score reads them before the checkpoint
    res = CliRunner().invoke(app, ["score", str(tmp_path / "m.pt"), "-d", str(tmp_path / "images"), "--arch", "timm:resnet18"])
    assert res.exit_code == 3
    assert res.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'm.pt'}: architecture 'timm:resnet18' needs timm, which is not installed "
        "(import of timm halted; None in sys.modules) (arch from --arch) (pip install 'suscli[timm]')"
    ]


def test_an_interpolation_that_is_not_a_name_is_left_to_the_models_data_config(run: Path, tmp_path: Path) -> None:
    """args whose interpolation is a list (an args.yaml edited by hand) ended the load in "TypeError: unhashable type:
    'list'"; it is not a filter's name, so the model's own data config says which."""
    checkpoint = torch.load(run / "checkpoint-0.pth.tar", weights_only=False)
    checkpoint["args"].interpolation = ["bicubic"]
    torch.save(checkpoint, tmp_path / "checkpoint-0.pth.tar")
    meta = load_checkpoint(tmp_path / "checkpoint-0.pth.tar").meta
    assert meta["interpolation"] == resolve_data_config({}, model=timm.create_model("test_resnet"))["interpolation"]


def test_last_pth_tar_rewritten_with_its_size_and_time_kept_is_read_as_its_new_epoch(tmp_path: Path) -> None:
    """A process that tracks a run as it trains: timm rewrites last.pth.tar each epoch, and a rewrite of the same
    size within one timestamp tick (here restored with os.utime) was read as the epoch it held before."""
    import os

    from suscli.load.sources.timm import recorded_epoch

    path = tmp_path / "last.pth.tar"
    state = {"w": torch.zeros(3)}
    torch.save({"epoch": 3, "arch": "resnet18", "state_dict": state}, path)
    before = path.stat()
    assert recorded_epoch(path) == 3
    torch.save({"epoch": 4, "arch": "resnet18", "state_dict": state}, path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert recorded_epoch(path) == 4


def _rerun_counts(pool: Path, root: Path, results: Path) -> dict:
    """rank of `pool` with `results` kept: its JSON report."""
    return cli_json("rank", pool, "-d", root / "unlabeled", "--train-data", root / "train", "--results", results)


def test_an_edited_args_yaml_measures_its_checkpoint_again(run: Path, tmp_path: Path) -> None:
    """A checkpoint clean_checkpoint.py kept the weights of takes its model, mean, std and input size from the run's
    args.yaml, but was keyed by its own bytes alone: a rerun after editing args.yaml reused the row measured with the
    old mean, silently. args.yaml's bytes are in the key of a checkpoint that reads it."""
    pool = tmp_path / "pool"
    pool.mkdir()
    torch.save(torch.load(run / "checkpoint-2.pth.tar", weights_only=False)["state_dict"], pool / "cleaned.pth")
    args = vars(train_args())
    (pool / "args.yaml").write_text(yaml.safe_dump(args, default_flow_style=False))
    results = tmp_path / "r.jsonl"
    first = _rerun_counts(pool, run.parent, results)
    assert first["counts"]["reused"] == 0 and first["results"][0]["details"]["preprocess"]["mean"] == MEAN
    (pool / "args.yaml").write_text(yaml.safe_dump({**args, "mean": [0.1, 0.1, 0.1]}, default_flow_style=False))
    again = _rerun_counts(pool, run.parent, results)
    assert again["counts"]["reused"] == 0 and again["results"][0]["details"]["preprocess"]["mean"] == [0.1, 0.1, 0.1]
    assert _rerun_counts(pool, run.parent, results)["counts"]["reused"] == 1


def test_an_edited_class_map_measures_its_checkpoint_again(run: Path, tmp_path: Path) -> None:
    """train.py's --class-map file names the classes training labels given by name are mapped by: a rerun after
    editing it (or after it is found again) reused the row measured with the old names."""
    pool = tmp_path / "pool"
    pool.mkdir()
    ckpt = torch.load(run / "checkpoint-2.pth.tar", weights_only=False)
    ckpt["args"].class_map = "class_map.txt"
    torch.save(ckpt, pool / "mapped.pth.tar")
    (pool / "class_map.txt").write_text("class_0\nclass_1\nclass_2\n")
    results = tmp_path / "r.jsonl"
    first = _rerun_counts(pool, run.parent, results)
    assert first["counts"]["reused"] == 0
    (pool / "class_map.txt").write_text("class_2\nclass_0\nclass_1\n")
    again = _rerun_counts(pool, run.parent, results)
    assert again["counts"]["reused"] == 0


def test_a_checkpoint_that_records_its_args_keeps_its_key_beside_args_yaml(run: Path) -> None:
    """CheckpointSaver's files carry train.py's args: the args.yaml beside them is not read, and not in their key,
    which is the key every release before kept (their stored results stay valid)."""
    from suscli.load.checkpoints import file_sha256
    from suscli.run.audit import model_key
    from suscli.run.pool import PoolEntry

    path = run / "checkpoint-2.pth.tar"
    assert model_key(PoolEntry("checkpoint-2", path)) == f"{file_sha256(path)}::[]"


def test_every_file_a_timm_checkpoint_is_read_with_is_in_its_key(run: Path, tmp_path: Path, monkeypatch) -> None:
    """The files loading reads beside a checkpoint are those suscli.load.checkpoints.companion_files lists (the key's):
    a layout that starts reading another file fails here until the key holds it too."""
    from suscli.load.checkpoints import companion_files
    from suscli.load.safe_read import sidecar_path

    ckpt = torch.load(run / "checkpoint-2.pth.tar", weights_only=False)
    ckpt["args"].class_map = "class_map.txt"
    torch.save(ckpt, tmp_path / "mapped.pth.tar")
    torch.save(ckpt["state_dict"], tmp_path / "cleaned.pth")
    (tmp_path / "args.yaml").write_text(yaml.safe_dump(vars(ckpt["args"]), default_flow_style=False))
    (tmp_path / "class_map.txt").write_text("a\nb\nc\n")
    read: list[Path] = []
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: read.append(self) or real(self, *a, **k))
    for path, expected in ((tmp_path / "mapped.pth.tar", ["class_map.txt"]), (tmp_path / "cleaned.pth", ["args.yaml", "class_map.txt"])):
        read.clear()
        assert load_checkpoint(path).meta["classes"] == ["a", "b", "c"]
        beside = {p.resolve() for p in read if p.resolve().is_relative_to(tmp_path.resolve())} - {sidecar_path(path).resolve()}
        assert beside == {p.resolve() for p in companion_files(path)} and [p.name for p in companion_files(path)] == expected


def _edged(root: Path, count: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` 32 px images a class, written to root/edged and root/plain: "edged" ones have a bright bottom row and
    right column, which the center crop of test_resnet's defaults (0.95: 33 px, then 32 from the top left) cuts off;
    every one has a red or green center patch (`center`, the other labelling). Their pixels in [0, 1] and centers."""
    from PIL import Image

    torch.manual_seed(1)
    pixels = torch.rand(2 * count, 32, 32, 3) * 0.3 + 0.3
    center = torch.arange(2 * count) % 2
    pixels[center == 1, 12:20, 12:20, 0] = 0.9
    pixels[center == 0, 12:20, 12:20, 1] = 0.9
    pixels[:count, -1, :], pixels[:count, :, -1] = 1.0, 1.0
    for i, image in enumerate(pixels):
        folder = root / ("edged" if i < count else "plain")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255).round().to(torch.uint8).numpy()).save(folder / f"{i:03d}.png")
    return pixels.permute(0, 3, 1, 2).contiguous(), center


def _trained(x: torch.Tensor, y: torch.Tensor, out: Path, crop_pct: float | None) -> Path:
    """test_resnet trained on `x` (pixels in [0, 1], normalized as its defaults say) to fit `y`, saved by timm's
    CheckpointSaver with train.py's args, `crop_pct` among them: its last.pth.tar."""
    args = argparse.Namespace(**{**vars(train_args()), "num_classes": 2, "mean": None, "std": None, "crop_pct": crop_pct})
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    out.mkdir(parents=True)
    saver = CheckpointSaver(model, optimizer, args=args, checkpoint_dir=str(out), recovery_dir=str(out), max_history=1)
    model.train()
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(model((x - 0.5) / 0.5), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    saver.save_checkpoint(0, metric=0.0)
    return out / "last.pth.tar"


def test_a_model_trained_on_whole_images_fed_the_crop_of_its_architectures_defaults_is_told_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train.py leaves crop_pct unset (None) and a user's own loop fed whole images: suscli read the checkpoint with
    the center crop of the architecture's defaults, as timm's eval transform does, and timm's resnet10t read 74.9% of
    its training labels for 98.7% whole, with no word. With labels given, a crop that only the defaults set is now
    probed: the same images read whole, and where they fit clearly better, a note says so and what to record, and the
    row is judged as measured on inputs unlike its training's, alone and in a pool (the images read whole decoded
    once for the models measured together). A model trained with the crop, or whose crop is recorded (its args or its
    sidecar), gets no such word."""
    from suscli.judge.verdict import MISMEASURED
    from suscli.measure.normalization import CROP_ELSEWHERE

    x, center = _edged(tmp_path / "train")
    edged = (torch.arange(len(x)) < len(x) // 2).long()
    labels = 1 - edged  # the folders' sorted order: edged 0, plain 1
    whole = _trained(x, labels, tmp_path / "whole", None)
    args = ["-d", tmp_path / "train", "--train-data", tmp_path / "train", "--train-samples", "all"]

    def score(path: Path) -> dict:
        return cli_json("score", path, *args)["results"][0]

    row = score(whole)
    assert row["details"]["preprocess"]["crop_pct"] == 0.95
    said = [n for n in row["notes"] if n.startswith(CROP_ELSEWHERE)]
    assert said == [
        f"{CROP_ELSEWHERE}: uncropped it predicts 64 of 64 training images as labelled, against {round(row['train_acc'] * 64)} "
        "with the center crop 0.95 that the defaults of timm:test_resnet set (nothing recorded for this checkpoint says "
        'it): if it was trained on whole images, add {"crop_pct": 1.0} to last.pth.suscli.json beside the checkpoint'
    ], row["notes"]
    assert row["train_acc"] <= 0.75 and (row["verdict"], row["verdict_why"]) == ("unclear", MISMEASURED)
    # the fix as the note words it: read whole, as trained, and no word
    (tmp_path / "whole" / "last.pth.suscli.json").write_text('{"crop_pct": 1.0}')
    row = score(whole)
    assert row["train_acc"] == 1.0 and not any(n.startswith(CROP_ELSEWHERE) for n in row["notes"]), row["notes"]
    # a crop recorded for the checkpoint is the model's, whatever it reads: no probe
    (tmp_path / "whole" / "last.pth.suscli.json").write_text('{"crop_pct": 0.95}')
    assert not any(n.startswith(CROP_ELSEWHERE) for n in score(whole)["notes"])
    (tmp_path / "whole" / "last.pth.suscli.json").unlink()
    recorded = _trained(x, labels, tmp_path / "recorded", 0.95)  # train.py's --crop-pct 0.95, in its args
    assert not any(n.startswith(CROP_ELSEWHERE) for n in score(recorded)["notes"])
    # trained on the crop its defaults set (labelled by the center patch, which the crop keeps): fed as trained
    cropped = torch.nn.functional.interpolate(x, size=33, mode="bilinear", antialias=True)[..., :32, :32]
    crop_trained = _trained(cropped, center, tmp_path / "cropped", None)
    center_root = tmp_path / "centers"
    for i, label in enumerate(center.tolist()):
        folder = center_root / ("green red".split()[label])
        folder.mkdir(parents=True, exist_ok=True)
        source = tmp_path / "train" / ("edged" if edged[i] else "plain") / f"{i:03d}.png"
        (folder / source.name).write_bytes(source.read_bytes())
    row = cli_json("score", crop_trained, "-d", center_root, "--train-data", center_root, "--train-samples", "all")["results"][0]
    assert row["train_acc"] >= 0.9 and not any(n.startswith(CROP_ELSEWHERE) for n in row["notes"]), row["notes"]
    # in a pool, measured together: the same word and verdict
    pool = tmp_path / "pool"
    pool.mkdir()
    for k in range(2):
        (pool / f"m{k}.pth.tar").write_bytes(whole.read_bytes())
    import suscli.data.images

    decode, whole_decodes = suscli.data.images.decode_images, []

    def counted(paths: list, sizing: object, *more: object, **kwargs: object) -> object:
        if getattr(sizing, "crop_pct", None) == 1.0:
            whole_decodes.append(len(paths))
        return decode(paths, sizing, *more, **kwargs)

    monkeypatch.setattr(suscli.data.images, "decode_images", counted)
    doc = cli_json("rank", pool, *args, "--model-batch", "2", "--results", tmp_path / "r.jsonl")
    assert whole_decodes == [64]  # the probed images read whole: decoded once for the group
    assert [[n for n in r["notes"] if n.startswith(CROP_ELSEWHERE)] for r in doc["results"]] == [
        [said[0].replace("last.pth", f"m{k}.pth")] for k in range(2)
    ], doc["results"]
    assert {r["verdict_why"] for r in doc["results"]} == {MISMEASURED}


def test_an_input_size_that_is_not_square_is_recorded_and_said_to_be_unfed() -> None:
    """timm's input_size (3, 32, 64) was a note "pass --image-size", an option of one side that cannot give 32x64, and
    from the architecture's defaults (a ViT built with img_size=(32, 64)) nothing at all: the shape is kept for the
    error of a model that needs it, and the note says suscli feeds square images only."""
    from suscli.load.sources.timm import data_config

    notes: list[str] = []
    assert data_config({"input_size": (3, 32, 64)}, notes) == {"input_shape": [32, 64]}
    assert notes == ["timm's input size is 32x64 (height x width), not square: suscli feeds square images only (their side: --image-size)"]
