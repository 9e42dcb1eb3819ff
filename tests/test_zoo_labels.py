"""The human-noise settings of the benchmark zoo (benchmarks/zoo/train_zoo.py) read CIFAR-10N's table as it is laid out."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "zoo"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
train_zoo = pytest.importorskip("train_zoo")


def test_worst_is_the_first_wrong_annotator_else_the_agreed_label(tmp_path: Path) -> None:
    table = tmp_path / "labels.csv.gz"
    rows = [
        "path,clean,aggre,random1,random2,random3",
        "train/cat/0000.jpg,3,3,3,3,3",  # everyone right: worst is right
        "train/cat/0001.jpg,3,3,3,5,2",  # random2 is the first wrong one
        "train/dog/0000.jpg,5,3,3,3,5",  # random1 wrong, majority wrong too
        "train/dog/0001.jpg,5,5,5,5,4",
    ]  # only random3 wrong
    with gzip.open(table, "wt") as f:
        f.write("\n".join(rows) + "\n")
    root = tmp_path / "cifar"
    paths = [
        root / "train" / "dog" / "0001.jpg",
        root / "train" / "cat" / "0001.jpg",
        root / "train" / "cat" / "0000.jpg",
        root / "train" / "dog" / "0000.jpg",
    ]  # not in the table's order: looked up by path
    assert train_zoo.human_labels(paths, root, "worst", table).tolist() == [4, 5, 3, 3]
    assert train_zoo.human_labels(paths, root, "aggre", table).tolist() == [5, 3, 3, 3]
    assert train_zoo.parse_setting("human-worst")[0] == "human"
    with pytest.raises(ValueError, match="human-"):
        train_zoo.parse_setting("human-best")
    assert np.isnan(train_zoo.parse_setting("human-random2")[1])


def _table(tmp_path: Path, rows: list[str]) -> Path:
    table = tmp_path / "labels.csv.gz"
    with gzip.open(table, "wt") as f:
        f.write("\n".join(["path,clean,aggre,random1,random2,random3", *rows]) + "\n")
    return table


def test_a_zoo_of_some_classes_numbers_them_in_its_order_and_drops_labels_outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cifar

    classes = cifar.parse_classes("bird,cat,deer,dog,horse")
    assert cifar.subset_ids(np.array([2, 3, 4, 5, 7, 0, 9]), classes).tolist() == [0, 1, 2, 3, 4, -1, -1]
    assert cifar.subset_ids(np.array([7, 2]), ("horse", "bird")).tolist() == [0, 1]  # the order given, not CIFAR-10's
    for bad in ("bird", "bird,bird", "bird,cow"):
        with pytest.raises(ValueError, match="--classes"):
            cifar.parse_classes(bad)
    assert cifar.zoo_classes({"data": {}}) == cifar.CLASSES  # zoos made before --classes: all ten
    assert cifar.zoo_classes({"data": {"classes": list(classes)}}) == classes

    table = _table(
        tmp_path,
        [
            "train/cat/0000.jpg,3,3,3,3,3",  # right: cat is id 1 of the five
            "train/cat/0001.jpg,3,3,5,3,3",  # random1 says dog (3 of the five)
            "train/dog/0000.jpg,5,5,1,5,5",  # random1 says automobile: outside the five, dropped
            "train/horse/0000.jpg,7,7,4,7,7",  # random1 says deer
        ],
    )
    real = train_zoo.human_labels
    monkeypatch.setattr(train_zoo, "human_labels", lambda paths, root, column: real(paths, root, column, table))
    root = tmp_path / "cifar"
    paths = [root / "train" / c / f for c, f in (("cat", "0000.jpg"), ("cat", "0001.jpg"), ("dog", "0000.jpg"), ("horse", "0000.jpg"))]
    clean = np.array([1, 1, 3, 4])
    x = torch.arange(4, dtype=torch.uint8).view(4, 1, 1, 1).expand(4, 3, 32, 32)
    data = train_zoo.ZooData(root, paths, [], [], x, clean, x[:0], clean[:0])
    noisy = train_zoo.noisy_labels(clean, "human-random1", 0, data, classes)
    assert noisy.tolist() == [1, 3, -1, 2]
    kept = data.keeping(noisy >= 0)
    assert kept.train_paths == [paths[0], paths[1], paths[3]] and kept.y_train.tolist() == [1, 1, 4]
    assert kept.x_train[:, 0, 0, 0].tolist() == [0, 1, 3]
    assert data.keeping(np.ones(4, dtype=bool)) is data  # ten classes: the same data, the same training as before
    with pytest.raises(ValueError, match="clean labels"):  # the folder's classes must be the table's
        train_zoo.noisy_labels(np.array([1, 1, 3, 3]), "human-random1", 0, data, classes)


def test_synthetic_noise_on_some_classes_stays_among_them() -> None:
    import cifar

    classes = ("bird", "cat", "deer", "dog", "horse")
    clean = np.arange(5).repeat(200)
    sym = train_zoo.noisy_labels(clean, "sym60", 0, classes=classes)
    assert set(sym.tolist()) == set(range(5)) and 0.4 < (sym != clean).mean() < 0.55  # 60% redrawn, a fifth of them right
    # asym: cat<->dog, deer->horse inside the five; bird's pair (airplane) is outside, so bird stays
    assert train_zoo.noisy_labels(np.arange(5), "asym100", 0, classes=classes).tolist() == [0, 3, 4, 1, 4]
    ten = train_zoo.noisy_labels(np.arange(10), "asym100", 0)
    assert ten.tolist() == [train_zoo.ASYM_PAIRS.get(c, c) for c in range(10)]
    assert train_zoo.noisy_labels(np.arange(10), "asym100", 0, classes=cifar.CLASSES).tolist() == ten.tolist()
    assert train_zoo.ModelConfig("mlp", {"width": 8}, 0.1, 0.0, 1, False).build(5)(torch.zeros(2, 3, 32, 32)).shape == (2, 5)


def _annotated_cifar(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: ModuleType,
    folders: tuple[tuple[str, int], ...],
    human: dict[tuple[str, int], int],
) -> Path:
    """A CIFAR-10 image folder of 6 empty files per (class, CIFAR-10 id) of `folders`, whose CIFAR-10N table (read by
    `module`'s human_labels) gives each image its clean id except the random1 labels `human` ((class, image) -> id)."""
    root = tmp_path / "cifar"
    rows = []
    for name, cid in folders:
        (root / "train" / name).mkdir(parents=True)
        for i in range(6):
            (root / "train" / name / f"{i:04d}.jpg").write_bytes(b"")
            rows.append(f"train/{name}/{i:04d}.jpg,{cid},{cid},{human.get((name, i), cid)},{cid},{cid}")
    table = _table(tmp_path, rows)
    real = module.human_labels
    monkeypatch.setattr(module, "human_labels", lambda paths, r, column: real(paths, r, column, table))
    return root


def test_the_held_out_set_of_a_zoo_of_some_classes_keeps_to_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    evaluate_held_out = pytest.importorskip("evaluate_held_out")
    folders = (("airplane", 0), ("cat", 3), ("dog", 5))
    root = _annotated_cifar(
        tmp_path, monkeypatch, evaluate_held_out, folders, {("cat", 5): 0, ("cat", 4): 5}
    )  # cat 5: airplane, cat 4: dog
    zoo = tmp_path / "zoo"
    (zoo / "human-random1").mkdir(parents=True)
    (zoo / "zoo.json").write_text(json.dumps({"data": {"root": str(root), "classes": ["dog", "cat"]}}))
    (zoo / "human-random1" / "train_noisy.csv").write_text(f"path,label\n{root}/train/dog/0000.jpg,0\n{root}/train/cat/0000.jpg,1\n")
    (zoo / "human-random1" / "unlabeled.txt").write_text(f"{root}/train/dog/0001.jpg\n")
    paths, noisy, clean = evaluate_held_out.held_out_set(zoo, "human-random1", n=8)
    names = [p.relative_to(root / "train").as_posix() for p in paths]
    assert not any(n.startswith("airplane/") for n in names)  # only the zoo's classes
    assert not {"dog/0000.jpg", "cat/0000.jpg", "dog/0001.jpg"} & set(names)  # never a zoo model's image
    assert "cat/0005.jpg" not in names  # labelled airplane by the annotator: outside the classes
    assert clean.tolist() == [int(n.startswith("cat/")) for n in names]  # dog is 0, cat 1: the zoo's order
    assert noisy.tolist() == [0 if n == "cat/0004.jpg" else c for n, c in zip(names, clean.tolist())]


def test_a_fine_tuned_zoo_starts_from_the_backbone_with_a_new_head(tmp_path: Path) -> None:
    import suscli
    from suscli.load.checkpoints import load_checkpoint

    configs = train_zoo.finetune_configs(("bn_cnn",), 12)
    assert len({c.model_id for c in configs}) == 12 and all(c.model_id.startswith("bn_cnn-w32-") for c in configs)
    assert [c.frozen for c in configs] == [r[0] for r in train_zoo.FINETUNE_RECIPES]
    assert "-frozen-" in configs[0].model_id and "-full-" in configs[-1].model_id  # evaluators read the arch off the id's start
    assert train_zoo.finetune_configs(("bn_cnn", "mlp"), 3)[1].arch == "mlp"  # architectures interleaved

    torch.manual_seed(0)
    pretrained = train_zoo.ModelConfig("bn_cnn", {"width": 4}, 0.1, 0.0, 1, False).build(3)  # other classes: 3 outputs
    backbone = suscli.save(
        pretrained, tmp_path / "backbone.safetensors", arch="suscli.models:bn_cnn", arch_kwargs={"num_classes": 3, "width": 4}
    )
    before = {k: v.clone() for k, v in pretrained.state_dict().items()}
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(16) % 5
    classes = ("bird", "cat", "deer", "dog", "horse")
    data = train_zoo.ZooData(tmp_path, [tmp_path / f"{i}.jpg" for i in range(16)], [], [], x, y.numpy(), x[:4], y[:4].numpy())
    for frozen in (True, False):
        cfg = train_zoo.FineTuneConfig("bn_cnn", {"width": 4}, 0.1, 0.0, 2, False, frozen)
        rec = train_zoo.train_model(
            cfg, "human-worst", data, y.numpy(), tmp_path / cfg.model_id, torch.device("cpu"), "cosine", 2, classes, backbone
        )
        ckpt = load_checkpoint(tmp_path / cfg.model_id / rec["checkpoints"]["2"])  # loads as any zoo model: same builder, 5 outputs
        assert ckpt.arch == "suscli.models:bn_cnn" and ckpt.model(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
        assert ckpt.meta["classes"] == list(classes) and ckpt.meta["finetune"] == ("frozen" if frozen else "full")
        state = ckpt.model.state_dict()
        head = train_zoo.head_name(ckpt.model) + "."
        changed = {k for k in before if not k.startswith(head) and not torch.equal(state[k], before[k])}
        if frozen:  # the features are the backbone's, BatchNorm statistics included; only the head trained
            assert changed == set()
        else:
            assert any(k.endswith("running_mean") for k in changed) and any(k.endswith("weight") for k in changed)
    with pytest.raises(SystemExit):  # the backbone must not have seen the zoo's classes
        train_zoo.parse_args(["--out", str(tmp_path), "--classes", "cat,dog", "--pretrain-classes", "dog,truck"])
    args = train_zoo.parse_args(["--out", str(tmp_path), "--classes", "cat,dog", "--pretrain-classes", "ship,truck"])
    assert args.models_per_setting == 12 and train_zoo.plan(args)["pretrain"]["classes"] == ["ship", "truck"]
    assert "pretrain" not in train_zoo.plan(train_zoo.parse_args(["--out", str(tmp_path)]))  # other zoos' plans unchanged


GROUPS = "vehicle=airplane+automobile+ship+truck,animal=bird+cat+deer+dog+frog+horse"


def test_classes_may_be_groups_with_one_id_each() -> None:
    import cifar

    classes = cifar.parse_classes(GROUPS)
    assert classes == ("vehicle=airplane+automobile+ship+truck", "animal=bird+cat+deer+dog+frog+horse")  # as written: zoo.json's
    assert cifar.parse_classes(" vehicle = airplane + ship , animal=cat+dog") == ("vehicle=airplane+ship", "animal=cat+dog")
    assert cifar.class_names(classes) == ("vehicle", "animal")
    assert cifar.members(classes) == (("airplane", "automobile", "ship", "truck"), ("bird", "cat", "deer", "dog", "frog", "horse"))
    assert cifar.is_grouped(classes) and not cifar.is_grouped(("bird", "cat"))
    mixed = cifar.parse_classes("cat,pets=dog+horse")  # a plain class beside a group
    assert cifar.class_names(mixed) == ("cat", "pets") and cifar.members(mixed) == (("cat",), ("dog", "horse"))
    assert cifar.class_names(("bird", "cat")) == ("bird", "cat") and cifar.members(("bird", "cat")) == (("bird",), ("cat",))
    assert cifar.zoo_classes({"data": {"classes": list(classes)}}) == classes
    for bad in (
        "vehicle=airplane+ship",  # one entry
        "a=cat+dog,b=dog+deer",  # dog in two groups
        "cat,pets=cat+dog",  # cat alone and in a group
        "a=cat+dog,a=bird+deer",  # the same group name twice
        "cat=cat+dog,bird",  # a group named as a class
        "=cat+dog,bird",  # no name
        "a=cat+cow,bird",  # cow is no CIFAR-10 class
        "a=,bird",  # no member
        "a=b=cat,bird",
    ):
        with pytest.raises(ValueError, match="--classes"):
            cifar.parse_classes(bad)

    # every CIFAR-10 id maps to its group's; the order of the entries is the ids' order
    assert cifar.subset_ids(np.arange(10), classes).tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 0, 0]
    assert cifar.subset_ids(np.arange(10), mixed).tolist() == [-1, -1, -1, 0, -1, 1, -1, 1, -1, -1]
    assert cifar.folder_ids(["truck", "cat", "ship"], classes).tolist() == [0, 1, 0]


def test_a_grouped_split_lists_every_member_under_its_group(tmp_path: Path) -> None:
    import cifar

    for name in ("airplane", "cat", "dog", "truck"):
        (tmp_path / "train" / name).mkdir(parents=True)
        for i in range(2):
            (tmp_path / "train" / name / f"{i:04d}.jpg").write_bytes(b"")
    classes = cifar.parse_classes("pets=dog+cat,machines=truck+airplane")
    paths, labels = cifar.list_split(tmp_path, "train", classes)
    names = [p.relative_to(tmp_path / "train").as_posix() for p in paths]
    assert names == [f"{c}/{i:04d}.jpg" for c in ("dog", "cat", "truck", "airplane") for i in range(2)]  # members in the order given
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert cifar.balanced_sample(labels, 4, np.random.default_rng(0)).size == 4  # balanced by group
    assert np.bincount(labels[cifar.balanced_sample(labels, 4, np.random.default_rng(0))]).tolist() == [2, 2]


def test_human_labels_in_a_grouped_zoo_are_right_within_the_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cifar

    classes = cifar.parse_classes(GROUPS)
    table = _table(
        tmp_path,
        [
            "train/cat/0000.jpg,3,3,3,3,3",  # right
            "train/cat/0001.jpg,3,3,5,3,3",  # random1 says dog: an animal too, so right
            "train/cat/0002.jpg,3,3,9,3,3",  # random1 says truck: wrong
            "train/ship/0000.jpg,8,8,0,8,8",  # airplane for a ship: a vehicle, right
            "train/ship/0001.jpg,8,8,2,8,8",  # bird for a ship: wrong
        ],
    )
    real = train_zoo.human_labels
    monkeypatch.setattr(train_zoo, "human_labels", lambda paths, root, column: real(paths, root, column, table))
    root = tmp_path / "cifar"
    paths = [root / "train" / c / f"{i:04d}.jpg" for c, i in (("cat", 0), ("cat", 1), ("cat", 2), ("ship", 0), ("ship", 1))]
    clean = np.array([1, 1, 1, 0, 0])
    x = torch.zeros(5, 3, 32, 32, dtype=torch.uint8)
    data = train_zoo.ZooData(root, paths, [], [], x, clean, x[:0], clean[:0])
    noisy = train_zoo.noisy_labels(clean, "human-random1", 0, data, classes)
    assert noisy.tolist() == [1, 1, 0, 0, 1]  # nothing outside the groups: nothing dropped
    assert data.keeping(noisy >= 0) is data
    with pytest.raises(ValueError, match="clean labels"):  # the folder's group must be the table's
        train_zoo.noisy_labels(np.array([1, 1, 1, 1, 0]), "human-random1", 0, data, classes)
    sym = train_zoo.noisy_labels(np.arange(2).repeat(100), "sym100", 0, classes=classes)
    assert set(sym.tolist()) == {0, 1}  # symmetric noise draws among the groups
    with pytest.raises(ValueError, match="asymmetric"):
        train_zoo.noisy_labels(clean, "asym40", 0, classes=classes)
    with pytest.raises(SystemExit):
        train_zoo.parse_args(["--out", str(tmp_path), "--classes", GROUPS, "--settings", "sym20,asym40"])
    with pytest.raises(SystemExit):  # a group's member counts as a class the backbone must not have seen
        train_zoo.parse_args(["--out", str(tmp_path), "--classes", "pets=cat+dog,bird", "--pretrain-classes", "dog,truck"])
    args = train_zoo.parse_args(["--out", str(tmp_path), "--classes", GROUPS, "--settings", "human-worst"])
    assert train_zoo.plan(args)["classes"] == list(classes)


def test_a_grouped_checkpoint_names_the_groups(tmp_path: Path) -> None:
    import cifar
    from suscli.load.checkpoints import load_checkpoint

    classes = cifar.parse_classes(GROUPS)
    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    y = np.arange(8) % 2
    data = train_zoo.ZooData(tmp_path, [tmp_path / f"{i}.jpg" for i in range(8)], [], [], x, y, x[:4], y[:4])
    cfg = train_zoo.ModelConfig("mlp", {"width": 8}, 0.01, 0.0, 1, False)
    rec = train_zoo.train_model(cfg, "human-worst", data, y, tmp_path / cfg.model_id, torch.device("cpu"), "cosine", 1, classes)
    ckpt = load_checkpoint(tmp_path / cfg.model_id / rec["checkpoints"]["1"])
    assert ckpt.model(torch.zeros(2, 3, 32, 32)).shape == (2, 2)
    assert ckpt.meta["classes"] == ["vehicle", "animal"]  # suscli's class names: the groups'
    assert ckpt.meta["class_members"] == [list(m) for m in cifar.members(classes)]


def test_the_evaluators_number_a_grouped_zoo_by_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    evaluate_choice = pytest.importorskip("evaluate_choice")
    evaluate_held_out = pytest.importorskip("evaluate_held_out")
    folders = (("airplane", 0), ("truck", 9), ("cat", 3), ("dog", 5))
    human = {("cat", 4): 5, ("cat", 5): 9, ("truck", 5): 0}  # cat 4: dog, cat 5: truck, truck 5: airplane
    root = _annotated_cifar(tmp_path, monkeypatch, evaluate_held_out, folders, human)
    zoo = tmp_path / "zoo"
    (zoo / "human-random1").mkdir(parents=True)
    classes = ["vehicle=airplane+truck", "animal=cat+dog"]
    (zoo / "zoo.json").write_text(json.dumps({"data": {"root": str(root), "classes": classes}}))
    used = [("truck", 0, 0), ("dog", 0, 1), ("cat", 0, 0), ("airplane", 0, 0)]  # (folder, image, noisy label): the cat's is wrong
    (zoo / "human-random1" / "train_noisy.csv").write_text(
        "path,label\n" + "".join(f"{root}/train/{c}/{i:04d}.jpg,{y}\n" for c, i, y in used)
    )
    (zoo / "human-random1" / "unlabeled.txt").write_text(f"{root}/train/cat/0001.jpg\n")
    _, noisy, clean = evaluate_choice.training_set(zoo, "human-random1")
    assert clean.tolist() == [0, 1, 1, 0] and noisy.tolist() == [0, 1, 0, 0]

    paths, noisy, clean = evaluate_held_out.held_out_set(zoo, "human-random1", n=18)  # all 9 free animals, 9 of 10 vehicles
    names = [p.relative_to(root / "train").as_posix() for p in paths]
    assert not {"truck/0000.jpg", "dog/0000.jpg", "cat/0000.jpg", "airplane/0000.jpg", "cat/0001.jpg"} & set(names)
    assert {"cat/0004.jpg", "cat/0005.jpg"} <= set(names)  # no human label outside the groups: none left out
    assert clean.tolist() == [int(n.split("/")[0] in ("cat", "dog")) for n in names]  # vehicle 0, animal 1
    assert sum(clean) == 9  # balanced by group
    wrong = {"cat/0005.jpg"}  # labelled truck; a cat labelled dog and a truck labelled airplane stay right
    assert noisy.tolist() == [1 - c if n in wrong else c for n, c in zip(names, clean.tolist())]


def test_the_evaluators_judge_with_the_untrained_reference_rank_measures(tmp_path: Path) -> None:
    """A zoo row whose susceptibility the verdict would cut (above the low fixed cut) carries what its network reads
    untrained, measured as `rank` measures it; a row under the cut carries none (issue 26, the deep zoo)."""
    import numpy as np
    import torch
    from PIL import Image

    import suscli
    from suscli.data.images import ImageSource, normalizer
    from suscli.defaults import DEFAULT_BATCH_SIZE, DEFAULT_LR
    from suscli.measure.susceptibility import SusceptibilityConfig
    from suscli.measure.untrained import untrained_susceptibility

    evaluate_choice = pytest.importorskip("evaluate_choice")
    evaluate = pytest.importorskip("evaluate")
    zoo, rng = tmp_path / "zoo", np.random.default_rng(0)
    (zoo / "s").mkdir(parents=True)
    images = []
    for i in range(40):
        images.append(tmp_path / f"u{i}.png")
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(images[-1])
    (zoo / "s" / "unlabeled.txt").write_text("\n".join(map(str, images)))
    mean, std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    torch.manual_seed(0)
    net = suscli.models.resnet(num_classes=10, width=8, blocks=1)
    path = suscli.save(
        net,
        tmp_path / "m.safetensors",
        arch="suscli.models:resnet",
        arch_kwargs={"num_classes": 10, "width": 8, "blocks": 1},
        mean=mean,
        std=std,
    )
    cands = [evaluate.Candidate("s", name, 8, True, path, 0.9, 0.5, 0.4, "resnet") for name in ("high", "low")]
    cands[1].path = tmp_path / "low.safetensors"  # never loaded: under the cut, no reference is measured
    key = lambda c: (str(c.path), DEFAULT_LR, DEFAULT_BATCH_SIZE, evaluate_choice.MAX_BATCHES, 0)  # noqa: E731
    cache = {key(cands[0]): {"r": [0.9] * 16}, key(cands[1]): {"r": [0.05] * 16}}
    refs = evaluate_choice.untrained_references(cands, cache, zoo, "s")
    assert set(refs) == {str(path)}
    pixels, _, _ = ImageSource(images, population=len(images)).decoded(32, 3)
    expected = untrained_susceptibility(
        net, pixels, config=SusceptibilityConfig(), transform=normalizer(mean, std), device=torch.device("cpu"), inputs=("direct", 32)
    )
    assert refs[str(path)]["susceptibility"] == pytest.approx(expected["susceptibility"])
