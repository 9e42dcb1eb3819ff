"""Training labels given by class name, mapped through the model's own class names (suscli.data.labels)."""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path

import pytest
import torch

import suscli
from suscli.errors import InputError
from suscli.data.labels import class_ids, id_names, id_table
from tests.conftest import invoke, one_error_line, tiny_cnn, write_images

ARCH = "tests.conftest:tiny_cnn"


def test_names_map_through_the_models_classes() -> None:
    meta = {"classes": ["fox", "cat", "dog"], "classes_source": "config.json's id2label"}
    assert class_ids(["cat", "dog", "fox"], meta, "t.csv") == (
        [1, 2, 0],
        "training labels are class names, mapped to the model's ids by config.json's id2label",
    )
    ids, note = class_ids(["cat", "dog"], {}, "t.csv")
    assert ids == [0, 1] and "numbered in sorted order" in note
    ids, _ = class_ids(["a", "b"], {"classes": ["LABEL_0", "LABEL_1"]}, "t.csv")  # transformers' default names name nothing
    assert ids == [0, 1]
    table, notes = id_table(["cat", "dog", "fox"], meta, "t.csv")
    assert table[torch.tensor([0, 2, 1])].tolist() == [1, 0, 2] and len(notes) == 1
    assert id_table(None, meta, "t.csv") == (None, [])


def test_each_model_id_is_named_as_the_training_set_names_its_labels() -> None:
    """The names a report gives the class ids: the training set's name mapped to each id, else the model's own."""
    folders = ["class_1", "class_10", "class_2"]  # sorted as strings; naturally: class_1, class_2, class_10
    assert id_names(3, {}, folders=folders) == folders  # ImageFolder's numbering
    assert id_names(3, {"class_order": "natural"}, folders=folders) == ["class_1", "class_2", "class_10"]  # timm's
    meta = {"classes": ["fox", "cat", "dog"], "classes_source": "config.json's id2label"}
    assert id_names(3, meta, names=["cat", "dog"]) == ["fox", "cat", "dog"]  # by name, the model names the third
    assert id_names(4, {}, names=["cat", "dog"]) == ["cat", "dog", "", ""]  # sorted names; the rest unknown
    assert id_names(3, meta) == ["fox", "cat", "dog"] and id_names(2, {}) == ["", ""]  # labels given as ids
    assert id_names(2, {"classes": ["LABEL_0", "LABEL_1"]}) == ["", ""]  # transformers' default names name nothing
    assert id_names(3, meta, names=["cat", "eel"]) == ["fox", "cat", "dog"]  # a name the model lacks: its own names


def test_a_pools_class_names_are_those_its_models_agree_on() -> None:
    """rank's names (suscli.run.inputs.class_names): unknown where the models name a class differently, or where a
    row from before rows recorded the checkpoint's class_order cannot say whether folders were numbered naturally."""
    from suscli.data.images import ImageSource
    from suscli.results import Result
    from suscli.run.inputs import class_names

    def row(**details) -> Result:
        return Result("m", "m.pt", details={"train_predictions": {"n": 1}, **details})

    train = ImageSource([], [], folders=["class_1", "class_10", "class_2"])
    assert class_names([row(class_order=None), row(class_order=None)], train, 3) == ["class_1", "class_10", "class_2"]
    assert class_names([row(class_order=None), row(class_order="natural")], train, 3) == ["class_1", "", ""]
    assert class_names([row()], train, 3) == ["", "", ""]  # an older row: sorted or natural order, it does not say
    assert class_names([row()], ImageSource([], [], folders=["a", "b"]), 2) == ["a", "b"]  # both orders agree
    assert class_names([row(classes=["x", "y"])], None, 2) == ["x", "y"] and class_names([], None, 2) == ["", ""]


def test_a_name_the_model_does_not_know_is_named() -> None:
    with pytest.raises(InputError) as e:
        class_ids(["cat", "dgo", "eel"], {"classes": ["cat", "dog"], "classes_source": "its suscli metadata"}, "t.csv")
    line = e.value.line()
    assert "class 'dgo' is not one of the model's 2 classes (its suscli metadata: cat, dog); 1 more unknown" in line
    with pytest.raises(InputError, match="not a list of distinct strings"):
        class_ids(["cat"], {"classes": ["cat", "cat"]}, "t.csv")


def constant(first: int) -> torch.nn.Module:
    """A model that predicts class `first` for every image: its accuracy counts the labels that map to it."""
    model = tiny_cnn()
    with torch.no_grad():
        model[-1].weight.zero_()
        model[-1].bias.copy_(torch.nn.functional.one_hot(torch.tensor(first), 3) * 5.0)
    return model


def test_score_maps_names_by_the_checkpoints_classes(tmp_path: Path) -> None:
    """Labels dog, dog, cat, fox: a model that always says class 0 fits half of them when its class 0 is dog
    (its own names), and a quarter when class 0 is the first name in sorted order (cat)."""
    imgs = write_images(tmp_path / "imgs", 4)
    csv = tmp_path / "train.csv"
    csv.write_text("".join(f"imgs/{p.name},{n}\n" for p, n in zip(imgs, ["dog", "dog", "cat", "fox"])))
    named = suscli.save(constant(0), tmp_path / "named.safetensors", arch=ARCH, num_classes=3, image_size=8, classes=["dog", "fox", "cat"])
    unnamed = suscli.save(constant(0), tmp_path / "unnamed.safetensors", arch=ARCH, num_classes=3, image_size=8)
    rows = []
    for model in (named, unnamed):
        res = invoke("score", model, "-d", tmp_path / "imgs", "--train-data", csv, "--batches", "1", "-f", "json")
        assert res.exit_code == 0, res.output
        rows.append(json.loads(res.stdout)["results"][0])
    assert rows[0]["train_acc"] == 0.5 and rows[1]["train_acc"] == 0.25
    assert "training labels are class names, mapped to the model's ids by its suscli metadata" in rows[0]["notes"]
    assert any("numbered in sorted order of the names" in n for n in rows[1]["notes"])
    (tmp_path / "more").mkdir()
    shutil.copy(imgs[0], tmp_path / "more" / "wolf.png")  # an image of its own: one image with two labels is refused first
    csv.write_text(csv.read_text() + "more/wolf.png,wolf\n")
    one_error_line(
        invoke("score", named, "-d", tmp_path / "imgs", "--train-data", csv),
        3,
        f"{named} on {csv}: class 'wolf' is not one of the model's 3 classes (its suscli metadata: dog, fox, cat)",
    )


def test_class_folders_that_lack_one_of_the_models_named_classes_keep_its_ids(tmp_path: Path) -> None:
    """A training set in which no image has class 0 (fox) has no fox folder: numbered in sorted order among
    themselves, cat and dog became 0 and 1, and a model that always says class 2 (cat) fitted none of the cat
    images. Mapped by the model's own names it fits the two cat images of three, as with the same labels by name."""
    write_images(tmp_path / "train" / "cat", 2)
    write_images(tmp_path / "train" / "dog", 1, seed=1)
    model = suscli.save(constant(2), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8, classes=["fox", "dog", "cat"])
    res = invoke("score", model, "-d", tmp_path / "train", "--train-data", tmp_path / "train", "--batches", "1", "-f", "json")
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)["results"][0]
    assert row["train_acc"] == pytest.approx(2 / 3)
    assert "class folders mapped to the model's ids by its suscli metadata (2 folders for its 3 classes)" in row["notes"]
    assert id_names(3, {"classes": ["fox", "dog", "cat"]}, folders=["cat", "dog"]) == ["fox", "dog", "cat"]


def test_class_folders_of_which_some_name_none_of_the_models_classes_are_named(tmp_path: Path) -> None:
    """Folders cat, dog and wolf for a model naming fox, dog and cat: numbered in sorted order they were read as
    cat 0 (the model's fox), dog 1 and wolf 2 (its cat), and the training accuracy was measured on those ids without a
    word. Refused, as a label file's unknown class name is, naming the folder; folders naming none of its classes
    (ImageNet's wnids for a model that names its classes in words) are still numbered in sorted order."""
    for seed, name in enumerate(("cat", "dog", "wolf")):
        write_images(tmp_path / "train" / name, 1, seed=seed)
    model = suscli.save(constant(2), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8, classes=["fox", "dog", "cat"])
    one_error_line(
        invoke("score", model, "-d", tmp_path / "train", "--train-data", tmp_path / "train", "--batches", "1"),
        3,
        f"{model} on {tmp_path / 'train'}: class folder wolf names no class of the model, though the other 2 do "
        "(3 classes, its suscli metadata: fox, dog, cat)",
    )
    (tmp_path / "train" / "dog").rename(tmp_path / "train" / "n02084071")
    (tmp_path / "train" / "cat").rename(tmp_path / "train" / "n02121808")
    res = invoke("score", model, "-d", tmp_path / "train", "--train-data", tmp_path / "train", "--batches", "1", "-f", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["results"][0]["train_acc"] == pytest.approx(1 / 3)  # wolf, sorted last: class 2


def test_class_names_in_another_unicode_form_are_the_models_classes(tmp_path: Path) -> None:
    """Folders a Mac wrote (names decomposed, NFD) for a model whose class names were typed composed (NFC): `café`
    was "no class of the model" beside the model's own `café`. The same class in either form; as class folders, as a
    label file's names and as held-out folders."""
    classes = ["thé", "café", "crème"]
    decomposed = [unicodedata.normalize("NFD", c) for c in classes]
    assert decomposed != classes
    model = suscli.save(constant(2), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8, classes=classes)
    for seed, name in enumerate(decomposed[1:]):  # café 1 image, crème 2: the model always says crème
        write_images(tmp_path / "train" / name, seed + 1, seed=seed)
        write_images(tmp_path / "val" / name, seed + 1, seed=10 + seed)
    args = ("-d", tmp_path / "train", "--batches", "1", "-f", "json")
    res = invoke("score", model, *args, "--train-data", tmp_path / "train", "--val-data", tmp_path / "val")
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)["results"][0]
    assert row["train_acc"] == pytest.approx(2 / 3) and row["val_acc"] == pytest.approx(2 / 3)
    assert "class folders mapped to the model's ids by its suscli metadata (2 folders for its 3 classes)" in row["notes"]
    assert class_ids(decomposed, {"classes": classes}, "labels.csv")[0] == [0, 1, 2]
    # two classes that differ only in their Unicode form stay two, compared as written
    both = [classes[1], decomposed[1]]
    assert class_ids(both[::-1], {"classes": both}, "labels.csv")[0] == [1, 0]


def test_ids_beyond_the_models_classes_in_a_label_file_get_a_fix_for_a_label_file(tmp_path: Path) -> None:
    """The fix spoke of sorted folder names for a CSV of ids; it now names the ids the model takes and both layouts,
    in one sentence (it read "... its class ids 0 to 2 (class folders are numbered ..., a label file's ids read as
    written))", parentheses inside the error's own)."""
    ckpt = suscli.save(tiny_cnn(3), tmp_path / "m.safetensors", arch="tests.conftest:tiny_cnn", image_size=8)
    write_images(tmp_path / "unlabeled", 8)
    paths = write_images(tmp_path / "train", 4, seed=3)
    (tmp_path / "labels.csv").write_text("path,label\n" + "".join(f"train/{p.name},{i * 4}\n" for i, p in enumerate(paths)))
    res = invoke("score", ckpt, "-d", tmp_path / "unlabeled", "--train-data", tmp_path / "labels.csv", "--batch-size", "4")
    line = one_error_line(res, 3, "the training labels go up to 12 but the model has 3 classes")
    assert line.endswith(
        "(check that --train-data is the set this model was trained on, labelled with class ids 0 to 2; class folders are "
        "numbered in sorted name order, and a label file's ids are read as written)"
    ), line


def test_labels_that_may_be_the_models_numbered_class_names_say_so(tmp_path: Path) -> None:
    """A model whose class names are numbers other than their ids (ratings '1' to '3' for the ids 0 to 2), and a label
    file of those names: they read as class ids, each another class, and with rating 3 absent were measured without a
    word; with it, the error said "the labels go up to 3 but the model has 3 classes" and nothing of the names. Both
    say so now; labels written as the ids (0 among them, no name) say nothing."""
    ckpt = suscli.save(tiny_cnn(3), tmp_path / "m.safetensors", arch=ARCH, image_size=8, classes=["1", "2", "3"])
    paths = write_images(tmp_path / "train", 6)
    hint = "the labels are read as class ids, but the model's class names are numbers other than their ids (its suscli metadata: class 0 is '1')"
    for name, labels in (("two.csv", [1, 2]), ("all.csv", [1, 2, 3]), ("ids.csv", [0, 1, 2])):
        (tmp_path / name).write_text("path,label\n" + "".join(f"train/{p.name},{labels[i % len(labels)]}\n" for i, p in enumerate(paths)))
    run = ("score", ckpt, "-d", tmp_path / "train", "--batches", "1", "--batch-size", "2", "-f", "json", "--train-data")
    res = invoke(*run, tmp_path / "two.csv")
    assert res.exit_code == 0, res.output
    assert any(n.startswith(hint) for n in json.loads(res.stdout)["results"][0]["notes"])
    res = invoke(*run, tmp_path / "all.csv")
    one_error_line(res, 3, f"the training labels go up to 3 but the model has 3 classes; {hint}")
    res = invoke(*run, tmp_path / "ids.csv")
    assert res.exit_code == 0 and not any("numbers other than their ids" in n for n in json.loads(res.stdout)["results"][0]["notes"])


def test_class_names_beyond_the_models_classes_are_named(tmp_path: Path) -> None:
    """A label file of names with one the model lacks (a typo, a stray class) for a model naming no classes: the names
    number 0 to 3 in sorted order, and the error read "the training labels go up to 3 but the model has 3 classes",
    with a fix about class ids the file does not hold. It names the class now; so for class folders."""
    ckpt = suscli.save(tiny_cnn(3), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    write_images(tmp_path / "unlabeled", 8)
    paths = write_images(tmp_path / "train", 4, seed=3)
    names = ["ant", "bee", "cat", "zebra"]
    (tmp_path / "labels.csv").write_text("path,label\n" + "".join(f"train/{p.name},{n}\n" for p, n in zip(paths, names)))
    res = invoke("score", ckpt, "-d", tmp_path / "unlabeled", "--train-data", tmp_path / "labels.csv", "--batch-size", "4")
    line = one_error_line(res, 3, "the training labels go up to 3 but the model has 3 classes: the set's class names give zebra id 3")
    assert "correct a misspelt class name" in line and "class ids 0 to 2" not in line
    for seed, name in enumerate(names + ["zoo"]):
        write_images(tmp_path / "folders" / name, 1, seed=seed)
    res = invoke("score", ckpt, "-d", tmp_path / "unlabeled", "--train-data", tmp_path / "folders", "--batch-size", "4")
    one_error_line(
        res, 3, "the training labels go up to 4 but the model has 3 classes: the set's class names give zebra, zoo ids 3 and above"
    )


def test_an_empty_class_folder_that_pushes_a_class_past_the_models_is_named(tmp_path: Path) -> None:
    """A stray empty folder among the class folders (`b0` beside `a`, `b`, `c` of a 3-class model) keeps its id, so
    `c` is numbered 3: the error named `c`, a class the model has, and told the user to remove its images or correct
    its name, while the note naming the empty folder was not shown, since the run stopped. It names the folder now."""
    ckpt = suscli.save(tiny_cnn(3), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    write_images(tmp_path / "unlabeled", 8)
    for seed, name in enumerate("abc"):
        write_images(tmp_path / "train" / name, 2, seed=seed)
    (tmp_path / "train" / "b0").mkdir()
    res = invoke("score", ckpt, "-d", tmp_path / "unlabeled", "--train-data", tmp_path / "train", "--batch-size", "4")
    line = one_error_line(
        res,
        3,
        "the training labels go up to 3 but the model has 3 classes: the set's class names give c id 3, after 1 class "
        "folder without images (b0), which keeps its class id",
    )
    assert "remove the class folder without images that is no class of the model" in line, line


def test_ids_counting_from_one_say_so(tmp_path: Path) -> None:
    """Oxford-IIIT Pet's CLASS-ID runs 1 to 37 for 37 classes: the refusal "the training labels go up to 37 but the
    model has 37 classes" did not say that the ids may count from 1. It says so now, with the fix. With the last class
    absent (ids 1 to K-1, every one used, 0 never) the ids read as 0-based without a word: a note says what 0's
    absence may mean. Ids from 0 say nothing."""
    ckpt = suscli.save(tiny_cnn(4), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    paths = write_images(tmp_path / "train", 8)
    for name, labels in (("all.csv", [1, 2, 3, 4]), ("absent.csv", [1, 2, 3]), ("ids.csv", [0, 1, 2]), ("gap.csv", [1, 3])):
        (tmp_path / name).write_text("path,label\n" + "".join(f"train/{p.name},{labels[i % len(labels)]}\n" for i, p in enumerate(paths)))
    run = ("score", ckpt, "-d", tmp_path / "train", "--batches", "1", "--batch-size", "2", "-f", "json", "--train-data")
    res = invoke(*run, tmp_path / "all.csv")
    one_error_line(
        res,
        3,
        "the training labels go up to 4 but the model has 4 classes; the smallest label is 1 and the largest 4, the class "
        "count: the ids may count from 1 (subtract 1 from each label, so that they run 0 to 3)",
    )
    note = "label 0 is never used while every other id (1 to 3) is: if the ids count from 1"
    res = invoke(*run, tmp_path / "absent.csv")
    assert res.exit_code == 0, res.output
    assert any(n.startswith(note) for n in json.loads(res.stdout)["results"][0]["notes"]), res.stdout
    for name in ("ids.csv", "gap.csv"):
        res = invoke(*run, tmp_path / name)
        assert res.exit_code == 0 and not any("count from 1" in n for n in json.loads(res.stdout)["results"][0]["notes"])
