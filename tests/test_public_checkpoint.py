"""A public checkpoint trained elsewhere, on clean labels: akamaster's CIFAR-10 ResNet-20, as a new user would score it
(../shared/data/public-checkpoints, with the model file a user would write). It reads susceptibility far above the
fixed cut because it is confident, not because it memorized noise: the verdict must not say it did. Two guards keep the
fixed cuts from it: its network reads above the bound untrained, and it is far more confident than the zoo's."""

from __future__ import annotations

import json
import math
import statistics
import tarfile
from pathlib import Path

import pytest

from suscli.judge import verdict
from tests.conftest import invoke

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PUBLIC = DATA / "public-checkpoints"
pytestmark = pytest.mark.skipif(
    not (PUBLIC / "resnet20-12fca82f.th").is_file() or not (DATA / "cifar10-jpeg.tar.gz").is_file(),
    reason="needs ../shared/data (the public checkpoint and the CIFAR-10 JPEG archive)",
)


def cifar_subset(root: Path, test: int, train_per_class: int) -> tuple[Path, Path]:
    """The first `test` test images (unlabeled) and `train_per_class` training images of each class, from the archive."""
    kept = 0
    with tarfile.open(DATA / "cifar10-jpeg.tar.gz") as archive:
        for member in archive:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 4:
                continue
            split, label, name = parts[-3], parts[-2], parts[-1]
            index = int(Path(name).stem)
            if split == "test" and index < test // 10 or split == "train" and index < train_per_class:
                target = root / ("unlabeled" if split == "test" else "train") / (label if split == "train" else "") / f"{label}-{name}"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())  # type: ignore[union-attr]
                kept += 1
                if kept == test + 10 * train_per_class:
                    break
    return root / "unlabeled", root / "train"


def test_resnet20_trained_on_clean_labels_is_not_called_a_memorizer(tmp_path: Path) -> None:
    unlabeled, train = cifar_subset(tmp_path, test=128, train_per_class=20)
    res = invoke(
        "score", PUBLIC / "resnet20-12fca82f.th", "--arch", f"{PUBLIC / 'resnet_cifar.py'}:resnet20", "--trust-checkpoint",
        "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "-d", unlabeled, "--train-data", train, "-f", "json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)["results"][0]
    assert row["train_acc"] > 0.8 and row["susceptibility"] > 1.0  # it fits its labels, and reads far above the cut
    # ResNet-20 reads above the bound untrained, so the fixed cuts cannot judge it; and it is too confident for them
    assert row["verdict"] == "unclear" and "untrained reads" in row["verdict_why"], row["verdict_why"]
    assert row["details"]["untrained"]["susceptibility"] > verdict.UNTRAINED_CUT
    assert statistics.fmean(row["details"]["loss_before"]) > verdict.CONFIDENT_LOSS * math.log(10)
