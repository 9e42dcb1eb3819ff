"""Folders walked with links followed once (suscli.data.walk): each real folder and image once, cycles ended, and what was
skipped counted in the report."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

import suscli
import suscli.data.walk
from suscli.data.walk import BROKEN, CYCLE, LOOP, SEEN_FOLDER, SEEN_IMAGE, UNREADABLE, walk_images
from tests.conftest import invoke, tiny_cnn, write_images

ARCH = "tests.conftest:tiny_cnn"


def names(root: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_each_real_folder_and_image_once(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_images(root / "a", 2)
    write_images(root / "b", 1, seed=1)
    write_images(tmp_path / "elsewhere", 1, seed=2)
    (root / "self").symlink_to(".")
    (root / "a" / "up").symlink_to("..")
    (root / "alias").symlink_to("b")  # met before b: b keeps its real path all the same
    (root / "b" / "copy.png").symlink_to("../a/img_000.png")
    (root / "more").symlink_to(tmp_path / "elsewhere")  # outside: walked, under the link's name
    (root / "gone").symlink_to("nowhere")
    (root / "me.png").symlink_to("me.png")  # leads back to itself: it was called a broken link
    walk = walk_images(root)
    assert names(root, walk.paths) == ["a/img_000.png", "a/img_001.png", "b/img_000.png", "more/img_000.png"]
    assert walk.skipped == {CYCLE: 2, SEEN_FOLDER: 1, SEEN_IMAGE: 1, BROKEN: 1, LOOP: 1}
    assert walk.note(root) == (
        f"{root}: skipped 2 links to a folder that holds them (a cycle), 1 link to a folder "
        "listed already, 1 link to an image listed already, 1 broken link, 1 link that leads back to itself (a loop)"
    )


def test_two_links_up_end_at_once(tmp_path: Path) -> None:
    """`ln -s . self; ln -s .. up`: a walk that follows links blindly branches at every level and never ends."""
    root = tmp_path / "data"
    write_images(root / "x", 2)
    (root / "x" / "self").symlink_to(".")
    (root / "x" / "up").symlink_to("..")
    done: list = []
    worker = threading.Thread(target=lambda: done.append(walk_images(root)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert done, "the walk did not end"
    assert names(root, done[0].paths) == ["x/img_000.png", "x/img_001.png"] and done[0].skipped == {CYCLE: 2}


def test_an_unreadable_folder_is_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_images(tmp_path / "ok", 1)
    (tmp_path / "locked").mkdir()
    real = os.scandir

    def scandir(path):  # chmod 000 would not stop root, who runs the tests in CI containers
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(suscli.data.walk.os, "scandir", scandir)
    walk = walk_images(tmp_path)
    assert names(tmp_path, walk.paths) == ["ok/img_000.png"] and walk.skipped == {UNREADABLE: 1}


def test_score_counts_the_skipped_links_on_its_row(tmp_path: Path) -> None:
    write_images(tmp_path / "data", 6)
    (tmp_path / "data" / "up").symlink_to("..")
    for c in range(2):
        write_images(tmp_path / "train" / f"c{c}", 2, seed=c)
    (tmp_path / "train" / "c0" / "again").symlink_to(".")
    model = suscli.save(tiny_cnn(2), tmp_path / "m.safetensors", arch=ARCH, arch_kwargs={"num_classes": 2}, image_size=8)
    res = invoke("score", model, "-d", tmp_path / "data", "--train-data", tmp_path / "train", "--batches", "1", "-f", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    row = doc["results"][0]
    assert doc["data"]["unlabeled_images"] == 6 and row["train_n"] == 4
    assert f"{tmp_path / 'data'}: skipped 1 link to a folder that holds it (a cycle)" in row["notes"]
    assert f"{tmp_path / 'train' / 'c0'}: skipped 1 link to a folder that holds it (a cycle)" in row["notes"]
