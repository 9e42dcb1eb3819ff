"""The human-noise settings of the benchmark zoo (benchmarks/zoo/train_zoo.py) read CIFAR-10N's table as it is laid out."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

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
