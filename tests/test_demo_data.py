"""The demo's data and models: deterministic images, the files build_demo writes, and the claim the demo shows.

One SMALL demo is built per module (about 15 s on one thread) and shared by the tests below.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from suscli import demo
from suscli.measure.accuracy import training_accuracy
from suscli.load.checkpoints import load_checkpoint
from suscli.errors import InputError
from suscli.data.images import decode_images, labeled_source, normalizer
from suscli.data.imagesets import list_images
from suscli.defaults import DEFAULT_LR
from suscli.measure.susceptibility import SusceptibilityConfig, measure_susceptibility
from tests.conftest import invoke, small_demo_copy


def test_make_images_is_deterministic_and_shaped() -> None:
    a, la = demo.make_images(64, demo.SMALL, seed=5)
    b, lb = demo.make_images(64, demo.SMALL, seed=5)
    c, lc = demo.make_images(64, demo.SMALL, seed=6)
    s = demo.SMALL.image_size
    assert a.shape == (64, 3, s, s) and a.dtype == torch.uint8
    assert la.shape == (64,) and la.dtype == torch.int64
    assert int(la.min()) >= 0 and int(la.max()) < demo.NUM_CLASSES
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(a, c)
    assert a.float().std(dim=(2, 3)).min() > 1  # every image has some structure, none is a flat colour


def test_the_unlabeled_images_classes_are_the_random_labels_of_seed_2_as_method_md_warns() -> None:
    """docs/method.md: under --seed 2 the demo's models are measured on their unlabeled images' own classes, which is
    why they read a fraction of their susceptibility there; any other seed draws labels unrelated to the classes."""
    from suscli.measure.susceptibility import random_labels

    for recipe in (demo.SMALL, demo.FULL):
        _, classes = demo.make_images(recipe.n_unlabeled, recipe, recipe.seed * 4 + 2)
        assert torch.equal(random_labels(len(classes), demo.NUM_CLASSES, 2), classes)
        assert (random_labels(len(classes), demo.NUM_CLASSES, 0) == classes).float().mean() < 0.2


def test_class_names_sort_in_label_order() -> None:
    assert list(demo.CLASS_NAMES) == sorted(demo.CLASS_NAMES)  # ImageFolder order = class id
    assert len(set(demo.CLASS_NAMES)) == demo.NUM_CLASSES


def test_noisy_labels_replace_about_the_recipe_fraction() -> None:
    clean = torch.arange(10).repeat(1000)
    noisy = demo.noisy_labels(clean, 0.4, seed=1)
    wrong = (noisy != clean).float().mean().item()
    assert abs(wrong - 0.4 * 0.9) < 0.02  # a replaced label is a uniform class, right one time in ten
    assert torch.equal(noisy, demo.noisy_labels(clean, 0.4, seed=1))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, small_demo_build: demo.DemoOutput) -> demo.DemoOutput:
    return small_demo_copy(small_demo_build, tmp_path_factory.mktemp("demo") / "suscli-demo")


def test_build_demo_writes_the_files(built: demo.DemoOutput) -> None:
    r = demo.SMALL
    assert len(list_images(built.unlabeled)) == r.n_unlabeled
    assert sorted(p.name for p in built.train.iterdir()) == sorted(demo.CLASS_NAMES)
    assert len(list_images(built.train)) == r.n_train
    assert len(list_images(built.test)) == r.n_test
    names = [m.name for m in r.models]
    assert sorted(p.name for p in built.models.iterdir()) == sorted(f"{n}.safetensors" for n in names)
    summary = json.loads((built.root / "demo.json").read_text())
    assert [m["name"] for m in summary["models"]] == names == [rec["name"] for rec in built.records]
    for rec in summary["models"]:
        assert {"test_acc", "train_acc", "memorized", "intent"} <= set(rec)
    assert abs(summary["mislabeled"] - r.noise * 0.9) < 0.06


def test_checkpoints_load_and_match_the_records(built: demo.DemoOutput) -> None:
    """Each checkpoint rebuilds from its metadata alone, and its accuracy on the train folder (noisy labels, class
    ids from sorted folder names) is the training accuracy recorded while building."""
    train = labeled_source(built.train)
    pixels, labels, _ = train.decoded(demo.SMALL.image_size, 3)
    for rec in built.records:
        ck = load_checkpoint(built.models / f"{rec['name']}.safetensors")
        assert ck.arch == rec["arch"] and ck.num_classes == demo.NUM_CLASSES
        assert ck.meta["image_size"] == demo.SMALL.image_size and len(ck.meta["mean"]) == len(ck.meta["std"]) == 3
        with demo.torch_threads(1):  # tiny models: a second thread only spin-waits on a busy machine
            acc = training_accuracy(ck.model, pixels, labels, transform=normalizer(ck.meta["mean"], ck.meta["std"]))
        assert acc.value == pytest.approx(rec["train_acc"], abs=1e-6), rec["name"]


def test_memorizers_are_more_susceptible_and_land_in_region_2(built: demo.DemoOutput) -> None:
    """The demo's claim: the models meant to memorize fit most mislabeled images and are more susceptible than
    every model meant to resist; with pool-mean thresholds, resisters are region 1 and memorizers region 2."""
    unlabeled = decode_images(list_images(built.unlabeled), demo.SMALL.image_size).pixels
    train = labeled_source(built.train)
    pixels, labels, _ = train.decoded(demo.SMALL.image_size, 3)
    by_intent: dict[str, list[dict]] = {}
    for rec in built.records:
        by_intent.setdefault(rec["intent"], []).append(rec)
    resist, memorize = by_intent["resist"], by_intent["memorize"]
    assert min(m["memorized"] for m in memorize) > 0.8
    assert max(m["memorized"] for m in resist) < 0.3
    mean_test = lambda recs: sum(m["test_acc"] for m in recs) / len(recs)  # noqa: E731
    assert mean_test(resist) > mean_test(memorize) + 0.05

    models = {rec["name"]: load_checkpoint(built.models / f"{rec['name']}.safetensors") for rec in built.records}
    with demo.torch_threads(1):
        train_acc = {
            n: training_accuracy(ck.model, pixels, labels, transform=normalizer(ck.meta["mean"], ck.meta["std"])).value
            for n, ck in models.items()
        }
        for lr in sorted({DEFAULT_LR, 0.01, 0.1}):
            sus = {
                n: measure_susceptibility(
                    ck.model, unlabeled, config=SusceptibilityConfig(lr=lr), transform=normalizer(ck.meta["mean"], ck.meta["std"])
                ).mean
                for n, ck in models.items()
            }
            assert min(sus[m["name"]] for m in memorize) > max(sus[m["name"]] for m in resist), (lr, sus)
            mean_acc, mean_sus = sum(train_acc.values()) / len(models), sum(sus.values()) / len(models)
            for m in resist:
                assert train_acc[m["name"]] >= mean_acc and sus[m["name"]] <= mean_sus, (lr, m["name"], train_acc, sus)
            for m in memorize:
                assert train_acc[m["name"]] >= mean_acc and sus[m["name"]] > mean_sus, (lr, m["name"], train_acc, sus)


def test_build_demo_refuses_a_used_folder(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine.safetensors").write_bytes(b"x")
    tiny = demo.DemoRecipe(n_train=20, n_unlabeled=4, n_test=4, image_size=8, noise=0.4, models=())
    with pytest.raises(InputError):
        demo.build_demo(tmp_path, tiny)
    with pytest.raises(InputError):  # no demo.json: not ours to delete, even with overwrite
        demo.build_demo(tmp_path, tiny, overwrite=True)
    assert (tmp_path / "models" / "mine.safetensors").exists()


def test_build_demo_overwrites_an_earlier_demo(tmp_path: Path) -> None:
    tiny = demo.DemoRecipe(
        n_train=20, n_unlabeled=4, n_test=4, image_size=8, noise=0.4, models=(demo.named_spec("mlp", 8, 1, 0.01, 0.0, 10, "underfit"),)
    )
    first = demo.build_demo(tmp_path, tiny)
    assert (first.models / "mlp-w8-nowd-e1.safetensors").exists()
    (first.models / "suscli-results.jsonl").write_text("{}\n")  # what `suscli rank` keeps beside the demo's models
    second = demo.build_demo(tmp_path, tiny, overwrite=True)
    assert len(list_images(second.train)) == 20 and len(second.records) == 1
    assert load_checkpoint(second.models / "mlp-w8-nowd-e1.safetensors").meta["image_size"] == 8
    # a file the demo did not write stops the overwrite, and nothing is deleted (a rerun deleted the user's files)
    for mine in (second.models / "mine.safetensors", second.train / "cls" / "notes.txt"):
        mine.parent.mkdir(exist_ok=True)
        mine.write_bytes(b"x")
        with pytest.raises(InputError, match="1 file it did not write, first: .*nothing is deleted"):
            demo.build_demo(tmp_path, tiny, overwrite=True)
        assert mine.exists() and (second.models / "mlp-w8-nowd-e1.safetensors").exists()
        mine.unlink()


def test_a_demo_interrupted_halfway_is_replaced_by_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C or a kill while the models train left data/ and models/ without the finished demo.json: the next demo
    refused the folder as someone else's ("no demo.json: not a demo folder"), so the user had to delete it by hand."""
    specs = (demo.named_spec("mlp", 8, 1, 0.01, 0.0, 10, "underfit"), demo.named_spec("mlp", 8, 2, 0.01, 0.0, 10, "underfit"))
    tiny = demo.DemoRecipe(n_train=20, n_unlabeled=4, n_test=4, image_size=8, noise=0.4, models=specs)
    real, trained = demo.train, []

    def interrupted(*a, **k):
        if trained:
            raise KeyboardInterrupt
        trained.append(1)
        return real(*a, **k)

    monkeypatch.setattr(demo, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        demo.build_demo(tmp_path, tiny)
    (tmp_path / "models" / ".mlp-w8-nowd-e2.safetensors.k1ll3d_x.tmp").write_bytes(b"half")  # what a SIGKILL in save leaves
    monkeypatch.setattr(demo, "train", real)
    built = demo.build_demo(tmp_path, tiny, overwrite=True)
    assert sorted(p.name for p in built.models.iterdir()) == ["mlp-w8-nowd-e1.safetensors", "mlp-w8-nowd-e2.safetensors"]
    assert [r["name"] for r in json.loads((tmp_path / "demo.json").read_text())["models"]] == [s.name for s in specs]


def test_the_demo_command_refuses_a_folder_before_saying_it_replaces_it(tmp_path: Path) -> None:
    """It printed "replacing the earlier demo in DIR/" and the plan of the run, then refused: the one line a refusal
    gets came after two that promised otherwise."""
    tiny = demo.DemoRecipe(n_train=20, n_unlabeled=4, n_test=4, image_size=8, noise=0.4, models=())
    built = demo.build_demo(tmp_path, tiny)
    built.models.mkdir(exist_ok=True)
    (built.models / "mine.safetensors").write_bytes(b"x")
    res = invoke("demo", "--out", tmp_path, "--small")
    assert res.exit_code == 3 and res.stderr.splitlines() == [res.stderr.strip()] and res.stderr.startswith("error: ")
    assert (built.models / "mine.safetensors").exists()
