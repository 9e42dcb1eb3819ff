"""Hugging Face transformers: folders written by `save_pretrained` and by a Trainer run, scored, ranked and tracked
with no --arch, --mean, --std or --image-size, and compared with the same model loaded by transformers itself."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from suscli.load.checkpoints import file_sha256, load_checkpoint
from suscli.cli import app
from suscli.errors import InputError
from suscli.run.epochs import run_epochs
from suscli.run.pool import discover
from PIL import Image

from tests.conftest import by_hand, cli_json, image_sets, invoke, one_error_line

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # the Trainer needs it
from transformers import (  # noqa: E402
    AutoModelForImageClassification,
    Trainer,
    TrainingArguments,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
)

MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
LABELS = {0: "cat", 1: "dog", 2: "fox"}


class Pictures(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        return {"pixel_values": torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(i)), "labels": i % 3}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """`saved/` (save_pretrained of a model and its image processor) and `run/` (a Trainer's output_dir after two
    epochs: checkpoint-2/ and checkpoint-4/)."""
    root = tmp_path_factory.mktemp("hf")
    image_sets(root)
    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
    )
    model = ViTForImageClassification(config)
    processor = ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=MEAN, image_std=STD)
    model.save_pretrained(root / "saved")
    processor.save_pretrained(root / "saved")
    args = TrainingArguments(
        output_dir=str(root / "run"),
        num_train_epochs=2,
        per_device_train_batch_size=4,
        learning_rate=0.05,
        save_strategy="epoch",
        report_to=[],
        use_cpu=True,
        logging_strategy="no",
        disable_tqdm=True,
    )
    Trainer(model=model, args=args, train_dataset=Pictures(), processing_class=processor).train()
    return root


def hf_by_hand(folder: Path, root: Path) -> float:
    model = AutoModelForImageClassification.from_pretrained(folder)
    return by_hand(model, root / "unlabeled", mean=MEAN, std=STD, image_size=32)


def test_score_a_saved_folder(root: Path) -> None:
    row = cli_json("score", root / "saved", "-d", root / "unlabeled", "--train-data", root / "train")["results"][0]
    assert (row["arch"], row["details"]["arch_source"]) == ("transformers:ViTForImageClassification", "config.json")
    assert row["details"]["classes"] == ["cat", "dog", "fox"] and row["details"]["num_classes"] == 3
    assert row["details"]["preprocess"] == {
        "image_size": 32,
        "mean": MEAN,
        "std": STD,
        "crop_pct": 1.0,
        "resize": "stretch",
        "interpolation": "bilinear",  # ViTImageProcessor's: the whole image, resample 2
        "crop_offset": "floor",  # its processors' center_crop
        "channel_order": "RGB",
    }
    assert row["susceptibility"] == pytest.approx(hf_by_hand(root / "saved", root), rel=1e-5)
    assert row["notes"] == []


def test_trainer_run_is_one_run_of_epochs(root: Path, tmp_path: Path) -> None:
    run = root / "run"
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["checkpoint-2", "checkpoint-4"]
    tracked = cli_json("track", run, "-d", root / "unlabeled", "--train-data", root / "train", "--results", tmp_path / "t.jsonl")
    assert [(r["name"], r["epoch"]) for r in tracked["results"]] == [("checkpoint-2", 1), ("checkpoint-4", 2)]  # trainer_state.json
    shutil.copytree(root / "saved", tmp_path / "pool" / "saved")
    (tmp_path / "pool" / "run").symlink_to(run)
    ranked = cli_json(
        "rank",
        tmp_path / "pool",
        "-d",
        root / "unlabeled",
        "--train-data",
        root / "train",
        "--all-checkpoints",
        "--results",
        tmp_path / "r.jsonl",
    )
    assert [r["name"] for r in sorted(ranked["results"], key=lambda r: r["name"])] == ["run/checkpoint-2", "run/checkpoint-4", "saved"]
    for row in tracked["results"] + ranked["results"]:
        assert row["susceptibility"] == pytest.approx(hf_by_hand(Path(row["path"]), root), rel=1e-5), row["name"]


def test_a_trainer_resumed_from_an_earlier_checkpoint_names_the_earlier_runs_later_checkpoints(root: Path, tmp_path: Path) -> None:
    """A Trainer resumed from checkpoint-2 into the same output_dir, with another learning rate, for fewer epochs:
    it writes checkpoint-4 over the first run's and leaves its checkpoint-6, and track read the three as one run.
    The checkpoints' own logs (trainer_state.json) tell it, also in a copy that kept no file times."""

    def train(epochs: int, lr: float, resume: Path | None = None) -> None:
        torch.manual_seed(0)
        model = AutoModelForImageClassification.from_pretrained(root / "saved")
        args = TrainingArguments(
            output_dir=str(tmp_path / "run"),
            num_train_epochs=epochs,
            per_device_train_batch_size=4,
            learning_rate=lr,
            save_strategy="steps",
            save_steps=2,
            logging_steps=1,
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
        )
        Trainer(model=model, args=args, train_dataset=Pictures()).train(resume_from_checkpoint=resume and str(resume))

    train(3, 0.05)
    train(2, 0.01, tmp_path / "run" / "checkpoint-2")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
    shutil.copytree(tmp_path / "run", tmp_path / "copy", copy_function=shutil.copy)  # cp -r: every file time is the copy's
    for run in ("run", "copy"):
        doc = cli_json("track", tmp_path / run, "-d", root / "unlabeled", "--train-data", root / "train")
        assert [r["name"] for r in doc["results"]] == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
        assert doc["warnings"] == [
            "checkpoint-6: its trainer_state.json log does not continue checkpoint-4's (the two part after step 2): likely "
            "the earlier run's, left in the output_dir by a run resumed from an earlier checkpoint; remove it, or list the "
            "run's epochs in a manifest"
        ]
    shutil.rmtree(tmp_path / "run" / "checkpoint-6")
    assert cli_json("track", tmp_path / "run", "-d", root / "unlabeled", "--train-data", root / "train")["warnings"] == []


def test_a_trainers_final_model_saved_beside_its_checkpoints_is_not_a_second_last_epoch(root: Path, tmp_path: Path) -> None:
    """`trainer.save_model()` and `trainer.save_state()` after `train()`, as the Trainer's examples end, write the
    final model and its trainer_state.json into the output_dir beside checkpoint-4, saved at the same step: track
    stopped with "two checkpoints for epoch 2: run and checkpoint-4" (exit 3)."""
    model = AutoModelForImageClassification.from_pretrained(root / "saved")
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        num_train_epochs=2,
        per_device_train_batch_size=4,
        save_strategy="epoch",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=Pictures())
    trainer.train()
    trainer.save_model()
    trainer.save_state()
    doc = cli_json("track", tmp_path / "run", "-d", root / "unlabeled", "--train-data", root / "train")
    assert [(r["name"], r["epoch"]) for r in doc["results"]] == [("checkpoint-2", 1), ("checkpoint-4", 2)]
    assert doc["warnings"] == [
        "run: the Trainer's final model (save_model), saved at step 4 as checkpoint-4 was, left out: the run's epochs "
        "are its checkpoint-N folders"
    ]


def test_a_trainer_run_saved_only_mid_epoch_says_how_to_save_epochs(root: Path, tmp_path: Path) -> None:
    """The Trainer saves every save_steps steps by default, mid-epoch, where trainer_state.json's epoch is not whole:
    track said "name them like epoch_12.pt", which does not apply to a Trainer's checkpoint-N folders."""
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=3,
        per_device_train_batch_size=4,
        save_strategy="steps",
        save_steps=3,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    Trainer(model=AutoModelForImageClassification.from_pretrained(root / "saved"), args=args, train_dataset=Pictures()).train()
    assert json.loads((tmp_path / "run" / "checkpoint-3" / "trainer_state.json").read_text())["epoch"] == 1.5
    one_error_line(
        invoke("track", tmp_path / "run", "-d", root / "unlabeled"),
        3,
        f"no checkpoint of {tmp_path / 'run'} has an epoch number: the Trainer saved checkpoint-3 mid-epoch (the epoch in "
        'trainer_state.json is not whole) (save one at the end of every epoch, TrainingArguments(save_strategy="epoch"), '
        "or give a manifest with an epoch field)",
    )


def test_a_resume_with_other_save_steps_names_the_checkpoint_the_earlier_runs_log_parts_from(root: Path, tmp_path: Path) -> None:
    """A run saving every 2 steps resumed from checkpoint-2 to save every 4: checkpoint-4 and checkpoint-8 are the
    resumed run's, checkpoint-6 the earlier run's. The warning said it did not continue checkpoint-8's, a later
    checkpoint than itself. trainer_state.json written as the Trainer writes it."""
    first = [{"epoch": s / 2, "loss": 1.0 / s, "step": s} for s in range(1, 7)]
    resumed = first[:2] + [{"epoch": s / 2, "loss": 2.0 / s, "step": s} for s in range(3, 9)]
    for step, log in ((2, first), (4, resumed), (6, first), (8, resumed)):
        folder = tmp_path / "run" / f"checkpoint-{step}"
        shutil.copytree(root / "saved", folder)
        state = {"epoch": step / 2, "global_step": step, "log_history": log[:step], "max_steps": 8}
        (folder / "trainer_state.json").write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    entries, _, notes = run_epochs(tmp_path / "run")
    assert [e.name for e in entries] == ["checkpoint-2", "checkpoint-4", "checkpoint-6", "checkpoint-8"]
    assert notes == [
        "checkpoint-6: its trainer_state.json log does not continue checkpoint-4's (the two part after step 2): likely "
        "the earlier run's, left in the output_dir by a run resumed from an earlier checkpoint; remove it, or list the "
        "run's epochs in a manifest"
    ]


def test_a_trainers_mid_epoch_checkpoints_are_said_to_be_mid_epoch_not_unnumbered(root: Path, tmp_path: Path) -> None:
    """save_strategy="steps" saves at steps that end no epoch: trainer_state.json's epoch 1.5. track skipped them
    with "no epoch number", which their own records contradict. trainer_state.json written as the Trainer writes it."""
    log = [{"epoch": s / 2, "loss": 1.0 / s, "step": s} for s in range(1, 5)]
    for step in (2, 3, 4):
        folder = tmp_path / "run" / f"checkpoint-{step}"
        shutil.copytree(root / "saved", folder)
        state = {"epoch": step / 2, "global_step": step, "log_history": log[:step], "max_steps": 4}
        (folder / "trainer_state.json").write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    entries, skipped, notes = run_epochs(tmp_path / "run")
    assert [(e.name, e.epoch) for e in entries] == [("checkpoint-2", 1), ("checkpoint-4", 2)]
    assert skipped == []
    assert notes == [
        "left out 1 checkpoint the Trainer saved mid-epoch (the epoch in trainer_state.json is not whole): "
        "checkpoint-3; the run's epochs are its end-of-epoch checkpoints"
    ]


def test_users_mean_and_arch_win_with_a_note(root: Path) -> None:
    row = cli_json("score", root / "saved", "-d", root / "unlabeled", "--mean", "0.5", "--std", "0.5")["results"][0]
    assert row["notes"] == ["--mean/--std used: the checkpoint says mean 0.5,0.4,0.3, std 0.2,0.25,0.3"]
    model = AutoModelForImageClassification.from_pretrained(root / "saved")
    assert row["susceptibility"] == pytest.approx(by_hand(model, root / "unlabeled", mean=[0.5], std=[0.5], image_size=32), rel=1e-5)
    res = CliRunner().invoke(app, ["score", str(root / "saved"), "-d", str(root / "unlabeled"), "--arch", "tests.conftest:tiny_cnn"])
    assert res.exit_code == 3 and "weights do not fit tests.conftest:tiny_cnn" in res.stderr  # the user's arch was built


def test_sharded_and_pickled_weights(root: Path, tmp_path: Path) -> None:
    model = AutoModelForImageClassification.from_pretrained(root / "saved")
    model.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    ckpt = load_checkpoint(tmp_path / "sharded")
    shards = sorted(p.name for p in (tmp_path / "sharded").glob("model-*.safetensors"))
    assert len(shards) > 1 and ckpt.sha256 == file_sha256(tmp_path / "sharded")
    shutil.copytree(root / "saved", tmp_path / "bin")
    weights = load_file(tmp_path / "bin" / "model.safetensors")
    (tmp_path / "bin" / "model.safetensors").unlink()
    torch.save(weights, tmp_path / "bin" / "pytorch_model.bin")  # as transformers 4 wrote it
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x).logits
        for folder in ("sharded", "bin"):
            assert torch.allclose(load_checkpoint(tmp_path / folder).model(x).logits, expected, atol=1e-6), folder


def test_damaged_weights_and_a_config_that_does_not_fit_are_named(root: Path, tmp_path: Path) -> None:
    """A truncated model.safetensors was "transformers cannot load it as an image classifier ... check that config.json
    and the weights belong together"; a num_labels the weights do not have was transformers' "look at the above
    report", a report suscli mutes."""
    shutil.copytree(root / "saved", tmp_path / "cut")
    weights = tmp_path / "cut" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    line = one_error_line(invoke("score", tmp_path / "cut", "-d", root / "unlabeled"))
    assert f"{weights}: not a readable safetensors file" in line and "truncated or corrupt" in line
    shutil.copytree(root / "saved", tmp_path / "five")
    config = json.loads((tmp_path / "five" / "config.json").read_text())
    del config["id2label"], config["label2id"]
    (tmp_path / "five" / "config.json").write_text(json.dumps({**config, "num_labels": 5}))
    with pytest.raises(InputError) as info:
        load_checkpoint(tmp_path / "five")
    assert info.value.message == (
        f"{tmp_path / 'five'}: weights do not fit ViTForImageClassification: 2 mismatched keys "
        "(classifier.bias: checkpoint 3 vs model 5, classifier.weight: checkpoint 3x16 vs model 5x16)"
    )


def test_a_folder_missing_half_of_save_pretrained_says_which_half(root: Path, tmp_path: Path) -> None:
    """Weights without their config.json (or the reverse) were "is a directory, not a checkpoint"."""
    shutil.copytree(root / "saved", tmp_path / "no_config")
    (tmp_path / "no_config" / "config.json").unlink()
    one_error_line(
        invoke("score", tmp_path / "no_config", "-d", root / "unlabeled"),
        3,
        f"{tmp_path / 'no_config'}: is not a checkpoint folder: it holds model.safetensors but no config.json",
    )
    # the same folder in a pool: rank lists its weights file, whose row names the missing half too
    with pytest.raises(
        InputError,
        match="a state dict holds no architecture; its folder is not a whole checkpoint folder: it holds model.safetensors but no config.json",
    ):
        load_checkpoint(tmp_path / "no_config" / "model.safetensors")
    shutil.copytree(root / "saved", tmp_path / "no_weights")
    (tmp_path / "no_weights" / "model.safetensors").unlink()
    with pytest.raises(InputError, match="is not a checkpoint folder: it holds config.json but no weights"):
        load_checkpoint(tmp_path / "no_weights")
    # save_pretrained of a TensorFlow model: its weights are there, for another framework (it said "no weights")
    (tmp_path / "no_weights" / "tf_model.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(8))
    with pytest.raises(
        InputError, match=r"it holds TensorFlow weights \(tf_model.h5\) but no PyTorch weights \(model.safetensors, .*\): suscli measures"
    ) as e:
        load_checkpoint(tmp_path / "no_weights")
    assert "from_tf=True" in e.value.fix


@pytest.mark.parametrize("problem, labels", [("multi_label_classification", 3), ("regression", 1)])
def test_a_multi_label_or_regression_head_is_refused(tmp_path: Path, root: Path, problem: str, labels: int) -> None:
    """A head config.json says is trained with a sigmoid per class, or a regression loss, was measured as a softmax
    classifier's (a regression's one output as a binary logit) without a word."""
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    config.num_labels, config.problem_type = labels, problem
    ViTForImageClassification(config).save_pretrained(tmp_path / "m")
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=MEAN, image_std=STD).save_pretrained(tmp_path / "m")
    line = one_error_line(invoke("score", tmp_path / "m", "-d", root / "unlabeled"))
    assert f"problem_type '{problem}': suscli measures single-label classifiers" in line, line


def test_a_trainer_output_dir_is_not_one_checkpoint(root: Path) -> None:
    with pytest.raises(InputError, match="is a Hugging Face Trainer's output_dir, a run of 2 checkpoint-N folders, not one checkpoint"):
        load_checkpoint(root / "run")


def test_missing_transformers_is_one_line_naming_the_extra(root: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    res = CliRunner().invoke(app, ["score", str(root / "saved"), "-d", str(root / "unlabeled")])
    assert res.exit_code == 3
    lines = res.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "a Hugging Face checkpoint needs transformers" in lines[0] and lines[0].endswith("(pip install 'suscli[hf]')")
    )


def test_config_json_is_read_as_data(root: Path, tmp_path: Path) -> None:
    """Unknown model types and labels that are not 0..n-1 are refused or ignored, never guessed."""
    shutil.copytree(root / "saved", tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "model_type": "my_own_vit", "architectures": ["MyOwnViT"]}))
    with pytest.raises(InputError, match="model type 'my_own_vit', which transformers .* does not define"):
        load_checkpoint(tmp_path / "m")


def test_training_labels_by_name_follow_id2label(root: Path, tmp_path: Path) -> None:
    """id2label is cat, dog, fox: a training set of dogs and foxes numbers them 0 and 1 in sorted order, 1 and 2 in
    the model; labels by name must fit the model as its own ids do."""
    rows = [(p, ["fox", "dog", "fox"][c]) for c in range(3) for p in sorted((root / "train" / f"class_{c}").iterdir())]
    by_name, by_id = tmp_path / "names.csv", tmp_path / "ids.csv"
    by_name.write_text("".join(f"{p},{name}\n" for p, name in rows))
    by_id.write_text("".join(f"{p},{ {'dog': 1, 'fox': 2}[name] }\n" for p, name in rows))
    named, ids = (
        cli_json("score", root / "saved", "-d", root / "unlabeled", "--train-data", csv, "--per-image")["results"][0]
        for csv in (by_name, by_id)
    )
    assert named["details"]["train_predictions"] == ids["details"]["train_predictions"] and named["train_acc"] == ids["train_acc"]
    assert named["notes"] == ["training labels are class names, mapped to the model's ids by config.json's id2label"]


def test_a_vit_without_its_image_processor_is_told_the_size_its_config_names(root: Path, tmp_path: Path) -> None:
    """Without preprocessor_config.json nothing says the input size, so the images are measured as they are, and a
    ViT refuses them; the one-line error names the size its config.json gives rather than "check --image-size"."""
    shutil.copytree(root / "saved", tmp_path / "bare")
    (tmp_path / "bare" / "preprocessor_config.json").unlink()
    small, _ = image_sets(tmp_path / "small", size=8)
    res = invoke("score", tmp_path / "bare", "-d", small)
    assert res.exit_code == 3
    assert one_error_line(res).endswith("(pass --image-size 32, the size its config names)"), res.output
    row = cli_json("score", tmp_path / "bare", "-d", small, "--image-size", "32")["results"][0]
    assert row["details"]["preprocess"]["image_size"] == 32


def test_a_size_taken_from_the_images_says_where_the_models_config_agrees(root: Path, tmp_path: Path) -> None:
    """A ViT saved without its image processor, measured on images of the size its config.json names, was noted
    "image size 32 taken from the images (all 32x32): nothing names the model's input size", which its config does."""
    shutil.copytree(root / "saved", tmp_path / "bare")
    (tmp_path / "bare" / "preprocessor_config.json").unlink()
    row = cli_json("score", tmp_path / "bare", "-d", root / "unlabeled")["results"][0]
    assert "image size 32 taken from the images (all 32x32), the size the model's config names" in row["notes"], row["notes"]


def test_a_model_saved_without_its_image_processor_on_images_of_several_sizes_is_offered_its_configs_size(
    tmp_path: Path,
) -> None:
    """A model built from its config and saved with save_pretrained alone records no preprocessing: on photos of several
    sizes the fix said "pass --image-size, or --preset cifar10|imagenet", and --preset imagenet then failed on 224 px
    for a ViT of 32. The fix names the size the model's config names."""
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ViTForImageClassification(config).save_pretrained(tmp_path / "bare")
    (tmp_path / "photos").mkdir()
    for i, size in enumerate([(40, 30), (30, 40), (48, 48)]):
        Image.new("RGB", size, (40 * i, 90, 200)).save(tmp_path / "photos" / f"p{i}.png")
    res = invoke("score", tmp_path / "bare", "-d", tmp_path / "photos")
    one_error_line(
        res, 2, "the image size is unknown and the images differ in size", "pass --image-size 32, the size the model's config names"
    )


def test_an_int_size_of_a_processor_suscli_does_not_know_is_read_as_the_shorter_side_with_a_note(root: Path, tmp_path: Path) -> None:
    """An int `size` is a square for some processor classes (ViT's) and the shorter side for others (ConvNeXt's); for a
    class suscli does not know it stays the shorter side, and the row says so and how to have the whole image resized.
    A sidecar that says the resize wins, and the note goes."""
    shutil.copytree(root / "saved", tmp_path / "m")
    prep = {"image_processor_type": "MyImageProcessor", "size": 32, "image_mean": MEAN, "image_std": STD}
    (tmp_path / "m" / "preprocessor_config.json").write_text(json.dumps(prep))
    row = cli_json("score", tmp_path / "m", "-d", root / "unlabeled")["results"][0]
    assert (row["details"]["preprocess"]["image_size"], row["details"]["preprocess"]["resize"]) == (32, "crop")
    assert row["notes"] == [
        "preprocessor_config.json's size 32 read as the shorter side (MyImageProcessor is not a processor suscli knows): if "
        'its processor resizes the whole image to 32x32, put {"resize": "stretch"} in m.suscli.json beside the folder'
    ]
    (tmp_path / "m.suscli.json").write_text(json.dumps({"resize": "stretch"}))
    row = cli_json("score", tmp_path / "m", "-d", root / "unlabeled")["results"][0]
    assert (row["details"]["preprocess"]["image_size"], row["details"]["preprocess"]["resize"]) == (32, "stretch")
    assert row["notes"] == []


@pytest.mark.parametrize("size", [32, [32, 32]])
def test_a_preprocessor_file_naming_no_class_is_read_as_the_class_of_its_models_type(root: Path, tmp_path: Path, size) -> None:
    """A preprocessor_config.json without image_processor_type is read, as AutoImageProcessor reads it, by the class
    config.json's model_type maps to: ViT's resizes the whole image to its int size, where suscli read the shorter side
    with a note. A list size is [height, width] in every class, where suscli said it was not square. A model type
    suscli knows no class for keeps the shorter side, and the note names it."""
    from suscli.load.sources.huggingface import LAYOUT

    shutil.copytree(root / "saved", tmp_path / "m")
    prep = {"size": size, "image_mean": MEAN, "image_std": STD}
    (tmp_path / "m" / "preprocessor_config.json").write_text(json.dumps(prep))
    row = cli_json("score", tmp_path / "m", "-d", root / "unlabeled")["results"][0]
    assert (row["details"]["preprocess"]["image_size"], row["details"]["preprocess"]["resize"]) == (32, "stretch")
    assert row["notes"] == []
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "model_type": "mymodel"}))
    found = LAYOUT.recognize(tmp_path / "m", None)
    assert found is not None
    if size == 32:
        assert (found.meta["image_size"], found.meta.get("resize")) == (32, None)  # None: the shorter side
        assert found.notes == [
            "preprocessor_config.json's size 32 read as the shorter side (it names no processor class, and suscli knows none "
            "for config.json's model_type 'mymodel'): if its processor resizes the whole image to 32x32, put "
            '{"resize": "stretch"} in m.suscli.json beside the folder'
        ]
    else:  # a list is [height, width] whatever the class
        assert (found.meta["image_size"], found.meta.get("resize"), found.notes) == (32, "stretch", [])


def test_a_processor_size_that_is_not_square_is_recorded_and_said_to_be_unfed(root: Path, tmp_path: Path) -> None:
    """A `size` of {"height": 32, "width": 64} was a note "pass --image-size", an option of one side that cannot give
    32x64: the shape is kept for the error of a model that needs it, and the note says suscli feeds square images
    only."""
    from suscli.load.sources.huggingface import LAYOUT

    shutil.copytree(root / "saved", tmp_path / "m")
    prep = {"size": {"height": 32, "width": 64}, "image_mean": MEAN, "image_std": STD}
    (tmp_path / "m" / "preprocessor_config.json").write_text(json.dumps(prep))
    found = LAYOUT.recognize(tmp_path / "m", None)
    assert found is not None and found.meta["input_shape"] == [32, 64] and "image_size" not in found.meta
    assert found.notes == [
        "preprocessor_config.json's size is 32x64 (height x width), not square: suscli feeds square images only (their side: --image-size)"
    ]


def test_a_model_folder_given_as_dot_is_named_by_its_folder(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`suscli score .` inside a save_pretrained folder (or `rank .`) named the model "" in every report: the name of
    the path `.`, an empty table cell and JUnit testcase."""
    monkeypatch.chdir(root / "saved")
    unlabeled = root / "unlabeled"
    assert cli_json("score", ".", "-d", unlabeled)["results"][0]["name"] == "saved"
    assert [r["name"] for r in cli_json("rank", ".", "-d", unlabeled, "--results", root / "dot.jsonl")["results"]] == ["saved"]


def test_an_edited_preprocessor_config_measures_the_folder_again(root: Path, tmp_path: Path, monkeypatch) -> None:
    """A folder's key is its folder's files that decide the model (config.json, the weights, preprocessor_config.json,
    trainer_state.json): a rerun after editing the processor's mean measures it again, and every file loading reads
    in the folder is among them."""
    from suscli.load.safe_read import sidecar_path
    from suscli.load.sources import checkpoint_folder

    pool = tmp_path / "pool"
    shutil.copytree(root / "saved", pool / "saved")
    ranked = ("rank", pool, "-d", root / "unlabeled", "--train-data", root / "train", "--results", tmp_path / "r.jsonl")
    assert cli_json(*ranked)["counts"]["reused"] == 0
    processor = pool / "saved" / "preprocessor_config.json"
    processor.write_text(json.dumps({**json.loads(processor.read_text()), "image_mean": [0.1, 0.1, 0.1]}))
    again = cli_json(*ranked)
    assert again["counts"]["reused"] == 0 and again["results"][0]["details"]["preprocess"]["mean"] == [0.1, 0.1, 0.1]
    assert cli_json(*ranked)["counts"]["reused"] == 1
    read: list[Path] = []
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: read.append(self) or real(self, *a, **k))
    load_checkpoint(pool / "saved")
    folder = checkpoint_folder(pool / "saved")
    assert folder is not None
    beside = {p.resolve() for p in read if p.is_file() and p.resolve().is_relative_to(pool.resolve())} - {
        sidecar_path(pool / "saved").resolve()
    }
    assert beside and beside <= {p.resolve() for p in folder.files}


def test_a_trainer_checkpoint_without_a_processor_reads_the_one_saved_to_its_run_folder(root: Path, tmp_path: Path) -> None:
    """A Trainer not given processing_class writes checkpoint-N/ without preprocessor_config.json; the processor is
    saved once, to the output_dir (processor.save_pretrained(output_dir), save_model). suscli read checkpoint-5 alone:
    pixels in [0, 1] with the "no normalization known" note, and track and rank gave wrong training accuracies. It reads
    the run folder's, as if it were the checkpoint's own, and says so; one of the checkpoint's own wins."""
    own = tmp_path / "own" / "checkpoint-5"
    shutil.copytree(root / "run" / "checkpoint-4", own)
    run = tmp_path / "run"
    shutil.copytree(own, run / "checkpoint-5")
    (run / "checkpoint-5" / "preprocessor_config.json").rename(run / "preprocessor_config.json")
    train = ("-d", root / "unlabeled", "--train-data", root / "train")
    expected = cli_json("score", own, *train, "--per-image")["results"][0]
    row = cli_json("score", run / "checkpoint-5", *train, "--per-image")["results"][0]
    assert row["details"]["preprocess"] == expected["details"]["preprocess"]
    assert row["details"]["train_predictions"] == expected["details"]["train_predictions"]
    assert (row["train_acc"], row["susceptibility"]) == (expected["train_acc"], pytest.approx(expected["susceptibility"], rel=1e-6))
    assert row["notes"] == [
        f"preprocessing from the run folder's preprocessor_config.json ({run / 'preprocessor_config.json'}): the checkpoint holds none"
    ]
    tracked = cli_json("track", run, *train, "--results", tmp_path / "t.jsonl")["results"]
    assert [(r["name"], r["train_acc"], r["notes"]) for r in tracked] == [("checkpoint-5", expected["train_acc"], row["notes"])]
    # the run folder's processor is part of the checkpoint's identity: editing it measures the checkpoint again
    assert cli_json("track", run, *train, "--results", tmp_path / "t.jsonl")["counts"]["reused"] == 1
    processor = run / "preprocessor_config.json"
    processor.write_text(json.dumps({**json.loads(processor.read_text()), "image_mean": [0.1, 0.1, 0.1]}))
    again = cli_json("track", run, *train, "--results", tmp_path / "t.jsonl")
    assert again["counts"]["reused"] == 0 and again["results"][0]["details"]["preprocess"]["mean"] == [0.1, 0.1, 0.1]
    # the checkpoint's own processor wins, with no note
    shutil.copy(own / "preprocessor_config.json", run / "checkpoint-5")
    row = cli_json("score", run / "checkpoint-5", *train)["results"][0]
    assert row["details"]["preprocess"] == expected["details"]["preprocess"] and row["notes"] == []


def test_a_model_folder_that_is_no_trainer_checkpoint_never_borrows_its_parents_processor(root: Path, tmp_path: Path) -> None:
    """Models saved side by side under one folder are not one run: a save_pretrained folder without a processor is
    measured as before, whatever preprocessor_config.json its parent holds; so is a Trainer's output_dir holding its
    final model and trainer_state.json (save_model, save_state), whose parent holds other runs, not its own."""
    shutil.copytree(root / "saved", tmp_path / "pool" / "bare")
    (tmp_path / "pool" / "bare" / "preprocessor_config.json").rename(tmp_path / "pool" / "preprocessor_config.json")
    shutil.copytree(tmp_path / "pool" / "bare", tmp_path / "pool" / "final")
    shutil.copy(root / "run" / "checkpoint-4" / "trainer_state.json", tmp_path / "pool" / "final")
    for name in ("bare", "final"):
        row = cli_json("score", tmp_path / "pool" / name, "-d", root / "unlabeled")["results"][0]
        assert row["details"]["preprocess"]["mean"] == [0.0, 0.0, 0.0], name
        assert not any("run folder" in n for n in row["notes"]), row["notes"]


def best_run(root: Path, out: Path, *, limit: int | None = None, save: bool = False) -> Path:
    """A Trainer run of 4 epochs (checkpoint-2 ... checkpoint-8) with load_best_model_at_end, whose metric_for_best_model
    is best after epoch 2: best_model_checkpoint is checkpoint-4. save_total_limit=1 deletes checkpoint-8 at the end;
    `save` ends with save_model() and save_state(), which write the loaded best model and the record into out."""
    torch.manual_seed(0)
    scores = iter([0.3, 0.9, 0.5, 0.4])
    args = TrainingArguments(
        output_dir=str(out),
        num_train_epochs=4,
        per_device_train_batch_size=4,
        save_strategy="epoch",
        eval_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="acc",
        save_total_limit=limit,
        report_to=[],
        use_cpu=True,
        logging_strategy="no",
        disable_tqdm=True,
    )
    model = AutoModelForImageClassification.from_pretrained(root / "saved")
    trainer = Trainer(
        model=model, args=args, train_dataset=Pictures(), eval_dataset=Pictures(), compute_metrics=lambda _: {"acc": next(scores)}
    )
    trainer.train()
    if save:
        trainer.save_model()
        trainer.save_state()
    return out


def test_a_trainer_run_is_ranked_by_its_best_checkpoint_wherever_the_run_folder_moved(root: Path, tmp_path: Path) -> None:
    """load_best_model_at_end with metric_for_best_model: the run's model is best_model_checkpoint; rank took its latest
    checkpoint-8. The path is recorded as the run's cwd saw it: a moved run's copy is read by the folder's name."""
    run = best_run(root, tmp_path / "pool" / "run")
    assert json.loads((run / "checkpoint-8" / "trainer_state.json").read_text())["best_model_checkpoint"] == str(run / "checkpoint-4")
    shutil.copytree(run, tmp_path / "pool" / "moved")
    for state in (tmp_path / "pool" / "moved").glob("*/trainer_state.json"):
        state.write_text(json.dumps({**json.loads(state.read_text()), "best_model_checkpoint": "outputs/vit/checkpoint-4"}))
    said: list[str] = []
    assert [(e.name, e.path.name) for e in discover(tmp_path / "pool", say=said.append)] == [
        ("moved", "checkpoint-4"),
        ("run", "checkpoint-4"),
    ]
    assert said == [
        f"{name}/checkpoint-4: the Trainer's best checkpoint (best_model_checkpoint in trainer_state.json) is the run's model, "
        f"not its latest save ({name}/checkpoint-8)"
        for name in ("moved", "run")
    ]
    ranked = cli_json("rank", tmp_path / "pool", "-d", root / "unlabeled", "--results", tmp_path / "r.jsonl")
    assert sorted((r["name"], Path(r["path"]).name, r["epoch"]) for r in ranked["results"]) == [
        ("moved", "checkpoint-4", 2),
        ("run", "checkpoint-4", 2),
    ]
    entries, _, notes = run_epochs(run)  # track still sees every epoch
    assert ([(e.name, e.epoch) for e in entries], notes) == (
        [("checkpoint-2", 1), ("checkpoint-4", 2), ("checkpoint-6", 3), ("checkpoint-8", 4)],
        [],
    )
    one_error_line(
        invoke("score", run, "-d", root / "unlabeled"),
        3,
        f"{run}: is a Hugging Face Trainer's output_dir, a run of 4 checkpoint-N folders, not one checkpoint (score its best "
        f"checkpoint, {run / 'checkpoint-4'} (best_model_checkpoint in trainer_state.json), or every epoch with suscli track {run})",
    )


def test_a_best_checkpoint_the_run_no_longer_holds_is_said_and_the_latest_ranked(root: Path, tmp_path: Path) -> None:
    run = best_run(root, tmp_path / "pool" / "run")
    shutil.rmtree(run / "checkpoint-4")
    said: list[str] = []
    assert [e.path.name for e in discover(tmp_path / "pool", say=said.append)] == ["checkpoint-8"]
    assert said == [
        f"run/checkpoint-8/trainer_state.json names the best checkpoint {run / 'checkpoint-4'} (best_model_checkpoint), which "
        "the run does not hold: its model is taken by the saves' numbers (checkpoint-8)"
    ]


def test_a_final_model_that_loaded_the_best_is_not_the_last_epoch(root: Path, tmp_path: Path) -> None:
    """save_total_limit=1 keeps only the best checkpoint-4; save_model() then writes the model load_best_model_at_end
    loaded, and save_state() numbers it step 8. rank took that root model as the run's latest (epoch 4), and track
    measured it as epoch 4: neither is the run's record of which weights it holds."""
    run = best_run(root, tmp_path / "pool" / "run", limit=1, save=True)
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["checkpoint-4"]
    said: list[str] = []
    assert [e.path.name for e in discover(tmp_path / "pool", say=said.append)] == ["checkpoint-4"]
    assert said == [
        "run/checkpoint-4: the Trainer's best checkpoint (best_model_checkpoint in trainer_state.json) is the run's model, "
        "not its latest save (run, the final model save_model wrote)"
    ]
    entries, _, notes = run_epochs(run)
    assert [(e.name, e.epoch) for e in entries] == [("checkpoint-4", 2)]
    assert notes == [
        "run: the Trainer's final model (save_model), saved at step 8, left out: its trainer_state.json records a best "
        "checkpoint (checkpoint-4), which load_best_model_at_end loads before save_model, so its weights need not be step "
        "8's; the run's epochs are its checkpoint-N folders"
    ]
