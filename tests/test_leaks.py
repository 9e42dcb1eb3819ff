"""Held-out images that are training images under another name (suscli.data.leaks): found by their bytes, reading few
training files when there are none."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import suscli.data.leaks as leaks
from suscli.data.leaks import copies
from tests.conftest import write_images


@pytest.fixture
def read(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file whose bytes copies() reads, in order."""
    seen: list[Path] = []
    digest = leaks._digest

    def counted(p):  # type: ignore[no-untyped-def]
        seen.append(p)
        return digest(p)

    monkeypatch.setattr(leaks, "_digest", counted)
    return seen


def test_without_copies_only_the_probe_of_training_files_is_read(tmp_path: Path, read: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leaks, "PROBE", 5)
    train = write_images(tmp_path / "train", 40, seed=1)
    val = write_images(tmp_path / "val", 6, seed=2)
    assert copies(train, val, set(), seed=0) == {}
    assert len([p for p in read if p.parent.name == "train"]) <= 5


def test_a_probe_that_finds_a_copy_reads_every_training_file(tmp_path: Path, read: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Twenty of forty training files copied into the held-out set: a probe of 5 finds some, and every copy is then
    found, each mapped to its original; the images outside `skip` only."""
    monkeypatch.setattr(leaks, "PROBE", 5)
    train = write_images(tmp_path / "train", 40, seed=1)
    (tmp_path / "val").mkdir()
    val = [shutil.copy(p, tmp_path / "val" / f"c{i}.png") for i, p in enumerate(train[:20])]
    val = [Path(p) for p in val] + write_images(tmp_path / "new", 3, seed=3)
    found = copies(train, val, {0}, seed=0)
    assert found == {i: i for i in range(1, 20)}
    assert len([p for p in read if p.parent.name == "train"]) > 5


def test_a_file_of_the_same_size_with_other_bytes_is_no_copy(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"\x89PNG" + b"\x00" * 60)
    (tmp_path / "b").write_bytes(b"\x89PNG" + b"\x01" * 60)
    (tmp_path / "c").write_bytes(b"\x89PNG" + b"\x00" * 60)
    assert copies([tmp_path / "a"], [tmp_path / "b", tmp_path / "c", tmp_path / "missing"], set(), seed=0) == {1: 0}
