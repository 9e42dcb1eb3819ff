"""Train a model zoo on CIFAR-10 with known label noise, to test susceptibility against clean accuracy.

Noise is synthetic (symNN, asymNN) or real human labels from CIFAR-10N (human-aggre, human-random1..3 and
human-worst, read from ../shared/data/cifar10n-labels.csv.gz): people's mistakes follow what they confuse and
which images are hard, so the wrong labels are ones a model finds plausible.

Every noise setting gets the same deterministic list of configurations (architecture x width x lr x weight
decay x epochs x augmentation: per architecture a memorizing and a regularized corner plus a balanced seeded
sample of the grid), trained on the same noisy labels. Some configurations memorize the wrong labels (no
weight decay, no augmentation, many epochs, wide) and some do not; the per-epoch records hold the oracle (fit on the mislabeled images, clean test accuracy) that a later
script compares with susceptibility measured from the saved checkpoints and the unlabeled images.

    python benchmarks/zoo/train_zoo.py --out benchmarks/out/zoo [--quick] [--settings sym20,asym40] ...
    python benchmarks/zoo/train_zoo.py --out benchmarks/out/zoo-human --settings human-worst,human-random1 \
        --n-train 8000 --models-per-setting 12 --epoch-levels 8,20,40 --threads 1
    python benchmarks/zoo/train_zoo.py --out benchmarks/out/zoo-animals5 --classes bird,cat,deer,dog,horse \
        --settings human-worst --n-train 8000 --models-per-setting 12 --epoch-levels 8,20,40 --threads 1
    python benchmarks/zoo/train_zoo.py --out benchmarks/out/zoo-vehicles2 \
        --classes vehicle=airplane+automobile+ship+truck,animal=bird+cat+deer+dog+frog+horse \
        --settings human-worst --n-train 8000 --models-per-setting 12 --epoch-levels 8,20,40 --threads 1

--classes trains on a subset of CIFAR-10's classes, ids 0..k-1 in the order given: the subsets are drawn from
those classes only, and a human label set keeps the training images whose human label is one of them too (a
label outside the subset has no output to fit; zoo.json records how many each setting dropped). An entry
name=class+class+... is a group: one id, named `name` in the checkpoints, for the images of all its members, and a
human label is right when it names any member of the image's group (a cat labelled dog is an animal either way).
The subsets are balanced by group (the 2-class zoo above draws 4,000 vehicles and 4,000 animals), no class may be
in two entries, and asymmetric noise, which pairs CIFAR-10 classes, is refused for groups.

--pretrain-classes makes a zoo of fine-tuned models instead (issue 26): one backbone per architecture of
--pretrain-archs is first trained on other classes with their clean labels (images disjoint from the zoo's, whose
classes are --classes), then each of the FINETUNE_RECIPES starts from it with a new linear head: the features
frozen (only the head trains, BatchNorm statistics kept) or fully fine-tuned, at several lrs, lengths, weight decays
and with or without augmentation. The checkpoints are the same architectures with len(--classes) outputs, so they
load and evaluate like any other zoo's; the backbones are under <out>/pretrain/.

    python benchmarks/zoo/train_zoo.py --out benchmarks/out/zoo-finetune5 --classes bird,cat,deer,dog,horse \
        --pretrain-classes airplane,automobile,frog,ship,truck --pretrain-epochs 15 --settings human-worst \
        --n-train 6000 --evals-per-model 5 --threads 1

--image-size 64 trains at another input size (issue 26): CIFAR's 32 px images upsampled bilinearly (as
arch_check.py does; suscli decodes the unlabeled images at 64 itself, within a grey level of it), augmentation
padding an eighth of the side, the MLP's input layer sized for it, and image_size recorded in every checkpoint:

    python benchmarks/zoo/train_zoo.py --out benchmarks/out/zoo-64 --settings human-worst --n-train 4000 \
        --models-per-setting 12 --epoch-levels 8,20,40 --image-size 64 --threads 2

--deep trains CIFAR ResNets as deep as the public files instead (issue 26): ResNet-20 and ResNet-56 (width 16, 3
or 9 blocks a stage), the same grid of lr, weight decay, length and augmentation:

    python benchmarks/zoo/train_zoo.py --out benchmarks/out/zoo-deep --deep --settings human-worst --n-train 2000 \
        --models-per-setting 10 --epoch-levels 8,20,40 --threads 2

--deep-blocks picks other depths: a second deep zoo of ResNet-20 and ResNet-32 on twice the images, another seed:

    python benchmarks/zoo/train_zoo.py --out benchmarks/out/zoo-deep2 --deep --deep-blocks 3,5 --seed 1 \
        --settings human-worst --n-train 4000 --models-per-setting 8 --epoch-levels 8,20,40 --threads 2

and a third, held out for the verdict's rules on deep networks: ResNet-20 and ResNet-56 on CIFAR-10N's random1 labels:

    python benchmarks/zoo/train_zoo.py --out benchmarks/out/zoo-deep3 --deep --deep-blocks 3,9 --seed 2 \
        --settings human-random1 --n-train 3000 --models-per-setting 8 --epoch-levels 8,20,40 --threads 2

Outputs under --out: zoo.json (plan, data, where every file is), test.csv (clean test subset), and per
setting train_noisy.csv, unlabeled.txt and <model_id>/{record.json, epoch_EEE.safetensors}. A rerun skips
models whose record.json is complete, so an interrupted zoo resumes where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ for the shared data helper
import cifar

import suscli
from suscli import models as zoo_models

NUM_CLASSES = 10
BATCH_SIZE = 128
MOMENTUM = 0.9
EVAL_BATCH = 256
CHECKPOINTS_PER_MODEL = 5
EVALS_PER_MODEL = 20  # one evaluation (train + test subsets) costs about a training epoch: not every epoch of long runs
# Usual CIFAR-10 asymmetric protocol (Patrini et al. 2017): truck->automobile, bird->airplane, deer->horse, cat<->dog.
ASYM_PAIRS = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}


@dataclass(frozen=True)
class ArchSpace:
    """The values one architecture is sampled from; the lr range is per architecture so that each spans slow to
    fast fitting (the MLP memorizes 2000 images in ~20 epochs at 0.02, the plain CNN barely fits at 0.05)."""

    variants: tuple[dict[str, int], ...]
    lrs: tuple[float, ...]


ARCHS: dict[str, ArchSpace] = {
    "plain_cnn": ArchSpace(({"width": 16}, {"width": 32}), (0.02, 0.05, 0.1)),
    "bn_cnn": ArchSpace(({"width": 16}, {"width": 32}), (0.01, 0.05, 0.1)),
    "mlp": ArchSpace(({"width": 512}, {"width": 1024}), (0.005, 0.02, 0.05)),
    "resnet": ArchSpace(({"width": 8, "blocks": 1}, {"width": 8, "blocks": 2}), (0.01, 0.05, 0.1)),
}
# --deep (issue 26): CIFAR ResNets as the public files are, width 16 and 3 or 9 blocks a stage (ResNet-20, ResNet-56)
DEEP_BLOCKS = (3, 9)


def deep_archs(blocks: tuple[int, ...] = DEEP_BLOCKS) -> dict[str, ArchSpace]:
    """CIFAR ResNets of width 16 with `blocks` blocks a stage (6n + 2 layers: 3 is ResNet-20, 5 ResNet-32, 9
    ResNet-56); the deepest is the corners' "widest" variant."""
    return {"resnet": ArchSpace(tuple({"width": 16, "blocks": b} for b in sorted(blocks)), (0.02, 0.05, 0.1))}


DEEP_ARCHS = deep_archs()
WEIGHT_DECAYS = (0.0, 5e-4, 5e-3)
EPOCHS_FULL = (15, 40, 100)  # at 2000 images the small CNNs memorize 40% noise only after ~50-70 epochs
EPOCHS_QUICK = (4, 16)
QUICK = {"settings": "sym40,asym40", "models_per_setting": 6, "n_train": 1000, "n_test": 500, "n_unlabeled": 200}
FULL = {"settings": "sym20,sym40,sym60,asym40", "models_per_setting": 24, "n_train": 2000, "n_test": 2000, "n_unlabeled": 1000}


@dataclass(frozen=True)
class ModelConfig:
    arch: str  # factory name in suscli.models
    arch_kwargs: dict[str, int]
    lr: float
    weight_decay: float
    epochs: int
    augment: bool

    @property
    def shape(self) -> str:
        """The network without its training recipe, e.g. bn_cnn-w32 or resnet-w8b2: what an epoch costs."""
        return self.arch + "-" + "".join(f"{k[0]}{v}" for k, v in self.arch_kwargs.items())

    @property
    def model_id(self) -> str:
        return f"{self.shape}-lr{self.lr:g}-wd{_short(self.weight_decay)}-e{self.epochs}-{'aug' if self.augment else 'noaug'}"

    @property
    def seed(self) -> int:
        """Stable across runs and machines (unlike hash()), and the same model id gets the same init everywhere."""
        return zlib.crc32(self.model_id.encode()) & 0x7FFFFFFF

    def build(self, num_classes: int = NUM_CLASSES) -> nn.Module:
        return getattr(zoo_models, self.arch)(num_classes=num_classes, **self.arch_kwargs)


@dataclass(frozen=True)
class FineTuneConfig(ModelConfig):
    """A recipe that starts from a pretrained backbone with a new head: `frozen` trains the head only."""

    frozen: bool = False

    @property
    def model_id(self) -> str:
        mode = "frozen" if self.frozen else "full"
        return f"{self.shape}-{mode}-lr{self.lr:g}-wd{_short(self.weight_decay)}-e{self.epochs}-{'aug' if self.augment else 'noaug'}"


# (frozen, lr, weight decay, epochs, augment): the frozen features with a new linear head (cannot fit what the
# backbone's features do not separate), then full fine-tuning from small to large lr, short and long, with and
# without augmentation and weight decay; the long, high-lr, unregularized ones are there to memorize. On the
# animal classes' human-worst labels (bn_cnn, 5,148 images) only a 25-epoch lr-0.1 run fit 40% of its wrong labels
# in a first grid, so two 10-epoch runs it held (frozen at lr 0.1, full at lr 0.001) gave way to 40-epoch ones.
FINETUNE_RECIPES: tuple[tuple[bool, float, float, int, bool], ...] = (
    (True, 0.01, 0.0, 10, False),
    (True, 0.1, 0.0, 30, False),
    (True, 0.05, 5e-4, 10, True),
    (False, 0.001, 0.0, 25, False),
    (False, 0.01, 5e-4, 10, True),
    (False, 0.01, 0.0, 25, False),
    (False, 0.05, 5e-3, 10, True),
    (False, 0.1, 0.0, 10, False),
    (False, 0.1, 0.0, 25, False),
    (False, 0.05, 5e-4, 25, True),
    (False, 0.05, 0.0, 40, False),
    (False, 0.1, 0.0, 40, False),
)
PRETRAIN_RECIPE = {"lr": 0.05, "weight_decay": 5e-4, "augment": True}  # the zoo's regularized corner: generalize, do not memorize


def finetune_configs(archs: tuple[str, ...], n: int) -> list[FineTuneConfig]:
    """The first n of FINETUNE_RECIPES x archs (each arch at its widest variant), architectures interleaved."""
    per_arch = [
        [FineTuneConfig(a, dict(ARCHS[a].variants[-1]), lr, wd, e, aug, frozen) for frozen, lr, wd, e, aug in FINETUNE_RECIPES]
        for a in archs
    ]
    return [batch[j] for j in range(len(FINETUNE_RECIPES)) for batch in per_arch][:n]


def pretrain_config(arch: str, epochs: int) -> ModelConfig:
    return ModelConfig(
        arch, dict(ARCHS[arch].variants[-1]), PRETRAIN_RECIPE["lr"], PRETRAIN_RECIPE["weight_decay"], epochs, PRETRAIN_RECIPE["augment"]
    )


def head_name(model: nn.Module) -> str:
    """The classifier: the model's last nn.Linear (the head of every architecture in suscli.models)."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)][-1]


def load_backbone(model: nn.Module, backbone: Path, frozen: bool) -> None:
    """Copy every weight but the head's from the pretrained checkpoint (the head keeps its seeded fresh init; the
    backbone's head has the pretraining classes' outputs); `frozen` stops gradients outside the head."""
    from safetensors.torch import load_file

    head = head_name(model) + "."
    state = {k: v for k, v in load_file(str(backbone)).items() if not k.startswith(head)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith(head) for k in missing):
        raise ValueError(f"{backbone} does not fit the model: missing {missing}, unexpected {unexpected}")
    if frozen:
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(head))


def _short(x: float) -> str:
    return "0" if x == 0 else f"{x:.0e}".replace("e-0", "e-")


def build_configs(
    n: int, epoch_levels: tuple[int, ...], seed: int, image_size: int = 32, archs: dict[str, ArchSpace] = ARCHS
) -> list[ModelConfig]:
    """n configurations, spread round-robin over the architectures (`archs`: ARCHS, or DEEP_ARCHS).

    Per architecture, first its two corners, so that every architecture has a model that memorizes and one that
    does not (a random sample often misses the memorizing corner, which needs all of its factors at once):
    widest, highest lr, no weight decay, most epochs, no augmentation; and widest, highest lr, strongest weight
    decay, fewest epochs, augmentation. The rest is a seeded sample of the grid in which every factor's levels
    are used about equally often (Latin-hypercube-like), for the models in between. The MLP's input layer is sized
    for `image_size` (its kwargs name it only where that is not 32, so the 32 px zoos keep their model ids).
    """
    rng = np.random.default_rng(seed)
    names = list(archs)
    per_arch: list[list[ModelConfig]] = []
    for a, name in enumerate(names):
        k = len(range(a, n, len(names)))
        space = archs[name]
        if name == "mlp" and image_size != 32:
            space = ArchSpace(tuple({**v, "image_size": image_size} for v in space.variants), space.lrs)
        wide, lr = space.variants[-1], max(space.lrs)
        corners = [
            ModelConfig(name, dict(wide), lr, 0.0, max(epoch_levels), False),
            ModelConfig(name, dict(wide), lr, max(WEIGHT_DECAYS), min(epoch_levels), True),
        ][:k]
        factors = [list(range(len(space.variants))), list(space.lrs), list(WEIGHT_DECAYS), list(epoch_levels), [False, True]]
        while True:
            # Levels in random order, tiled to the count (fewer slots than levels: a random subset), then shuffled.
            columns = [rng.permutation(np.resize(rng.permutation(np.array(levels, dtype=object)), k - len(corners))) for levels in factors]
            batch = corners + [
                ModelConfig(name, dict(space.variants[v]), float(lr), float(wd), int(e), bool(aug)) for v, lr, wd, e, aug in zip(*columns)
            ]
            if len({c.model_id for c in batch}) == k:  # a repeated configuration would waste a slot
                break
        per_arch.append(batch)
    # Interleave architectures so that a partial run already covers all of them.
    return [batch[j] for j in range(max(map(len, per_arch))) for batch in per_arch if j < len(batch)]


HUMAN_COLUMNS = ("aggre", "random1", "random2", "random3", "worst")


def parse_setting(name: str) -> tuple[str, float]:
    """'sym40' -> ('sym', 0.4); 'asym40' -> ('asym', 0.4); 'human-random1' -> ('human', nan): a human label
    set's noise rate is whatever the annotators got wrong on the subset, measured, not chosen. 'clean' keeps the
    original CIFAR-10 labels: the zoo where nothing can have memorized noise."""
    if name == "clean":
        return "sym", 0.0
    if name.startswith("human-") and name[len("human-") :] in HUMAN_COLUMNS:
        return "human", float("nan")
    for kind in ("asym", "sym"):
        if name.startswith(kind) and name[len(kind) :].isdigit():
            return kind, int(name[len(kind) :]) / 100
    raise ValueError(f"unknown noise setting {name!r} (expected clean, symNN, asymNN or human-{{{','.join(HUMAN_COLUMNS)}}})")


def human_labels(paths: list[Path], root: Path, column: str, table: Path = cifar.DEFAULT_HUMAN_LABELS) -> np.ndarray:
    """The CIFAR-10N labels of `column` for `paths` (images under root/train/). 'worst' is CIFAR-10N's worst
    label set rebuilt from the three annotators: the first wrong label among random1-3 where any is wrong,
    else the (right) label they agree on (40.2% wrong over all 50,000 images in the CIFAR-10N paper)."""
    frame = cifar.read_human_labels(table)
    keys = [p.resolve().relative_to(root.resolve()).as_posix() for p in paths]
    rows = frame.loc[keys]
    if column != "worst":
        return rows[column].to_numpy(dtype=np.int64, copy=True)
    votes = rows[["random1", "random2", "random3"]].to_numpy(dtype=np.int64)
    clean = rows["clean"].to_numpy(dtype=np.int64)
    wrong = votes != clean[:, None]
    first_wrong = votes[np.arange(len(votes)), wrong.argmax(1)]
    return np.where(wrong.any(1), first_wrong, clean)


def noisy_labels(
    clean: np.ndarray, setting: str, seed: int, data: ZooData | None = None, classes: tuple[str, ...] = cifar.CLASSES
) -> np.ndarray:
    """Symmetric: with probability p the label is redrawn uniformly from all classes (so ~p/k stay right),
    as in the paper. Asymmetric: with probability p a class with a pair flips to it; other classes stay (and so
    does a class whose pair is outside `classes`). Human: the CIFAR-10N annotators' labels of the training subset
    (`data` names its images), -1 where the annotator chose a class outside `classes`. Ids are positions in
    `classes` (CIFAR-10's own for all ten), `clean` included."""
    kind, p = parse_setting(setting)
    if kind == "human":
        if data is None:
            raise ValueError("human label noise needs the training subset's image paths")
        noisy = cifar.subset_ids(human_labels(data.train_paths, data.root, setting[len("human-") :]), classes)
        if not np.array_equal(cifar.subset_ids(human_labels(data.train_paths, data.root, "clean"), classes), clean):
            raise ValueError("the CIFAR-10N table's clean labels do not match the image folder's classes")
        return noisy
    k = len(classes)
    rng = np.random.default_rng([seed, zlib.crc32(setting.encode())])
    hit = rng.random(len(clean)) < p
    noisy = clean.copy()
    if kind == "sym":
        noisy[hit] = rng.integers(0, k, size=int(hit.sum()))
    else:
        if cifar.is_grouped(classes):
            raise ValueError(
                f"{setting}: asymmetric noise pairs CIFAR-10 classes, it has no meaning for groups of them ({','.join(classes)})"
            )
        ids = [cifar.CLASSES.index(name) for name in classes]
        pair = cifar.subset_ids(np.array([ASYM_PAIRS.get(c, c) for c in ids]), classes)
        pair = np.where(pair >= 0, pair, np.arange(k))
        noisy[hit] = pair[clean[hit]]
    return noisy


@dataclass
class ZooData:
    """The subsets: training and test images decoded, the unlabeled ones only listed (this script never reads them)."""

    root: Path
    train_paths: list[Path]
    unlabeled_paths: list[Path]
    test_paths: list[Path]
    x_train: torch.Tensor  # uint8 (N, 3, S, S), S the zoo's --image-size
    y_train: np.ndarray  # clean labels
    x_test: torch.Tensor
    y_test: np.ndarray

    def keeping(self, keep: np.ndarray) -> ZooData:
        """The same subsets with only the training images where `keep` is true (itself when it keeps all)."""
        if keep.all():
            return self
        return dataclasses.replace(
            self,
            train_paths=[p for p, k in zip(self.train_paths, keep) if k],
            x_train=self.x_train[torch.from_numpy(keep)],
            y_train=self.y_train[keep],
        )


def load_data(
    root: Path, n_train: int, n_test: int, n_unlabeled: int, seed: int, threads: int, classes: tuple[str, ...] = cifar.CLASSES
) -> ZooData:
    """Seeded class-balanced subsets of `classes`' images (ids their positions there); the unlabeled images come
    from train/ but never from the training subset."""
    rng = np.random.default_rng(seed)
    train_all, ytr_all = cifar.list_split(root, "train", classes)
    test_all, yte_all = cifar.list_split(root, "test", classes)
    tr = cifar.balanced_sample(ytr_all, n_train, rng)
    un = cifar.balanced_sample(ytr_all, n_unlabeled, rng, exclude=tr)
    te = cifar.balanced_sample(yte_all, n_test, rng)
    train_paths = [train_all[i] for i in tr]
    test_paths = [test_all[i] for i in te]
    return ZooData(
        root=root,
        train_paths=train_paths,
        unlabeled_paths=[train_all[i] for i in un],
        test_paths=test_paths,
        x_train=cifar.decode(train_paths, threads),
        y_train=ytr_all[tr],
        x_test=cifar.decode(test_paths, threads),
        y_test=yte_all[te],
    )


def load_pretrain_data(root: Path, classes: tuple[str, ...], n_train: int, n_test: int, seed: int, threads: int) -> ZooData:
    """Seeded class-balanced training and test images of the pretraining classes, with their clean labels (ids
    their positions in `classes`). The zoo's classes are others, so none of its images is among them."""
    rng = np.random.default_rng([seed, zlib.crc32(b"pretrain")])
    train_all, ytr_all = cifar.list_split(root, "train", classes)
    test_all, yte_all = cifar.list_split(root, "test", classes)
    tr = cifar.balanced_sample(ytr_all, n_train, rng)
    te = cifar.balanced_sample(yte_all, n_test, rng)
    train_paths, test_paths = [train_all[i] for i in tr], [test_all[i] for i in te]
    return ZooData(
        root, train_paths, [], test_paths, cifar.decode(train_paths, threads), ytr_all[tr], cifar.decode(test_paths, threads), yte_all[te]
    )


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random crop of the image's own size from it zero-padded by an eighth of its side (4 px at CIFAR's 32, 8 px at
    64: the same shift relative to the image), plus horizontal flip, for a whole uint8 batch at once."""
    b, _, h, w = x.shape
    pad = max(1, min(h, w) // 8)
    padded = F.pad(x, (pad, pad, pad, pad))
    dy, dx = torch.randint(0, 2 * pad + 1, (2, b), generator=g).to(x.device)
    flip = (torch.rand(b, generator=g) < 0.5).to(x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)
    cols = dx[:, None] + torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(3, device=x.device)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


def _channels_last(image_size: int) -> bool:
    """Whether to train in channels_last: oneDNN's CPU convolutions ran up to 2x faster in it here (plain/bn CNNs,
    width 32), but at 64 px torch 2.14's CPU backward of the CIFAR ResNet crashes in it (SIGSEGV), so larger images
    keep the default layout, for the model and its inputs alike."""
    return image_size == 32


def _prep(x: torch.Tensor) -> torch.Tensor:
    x = cifar.normalize(x)
    return x.contiguous(memory_format=torch.channels_last) if _channels_last(x.shape[-1]) else x


def train_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    use_aug: bool,
    g: torch.Generator,
    frozen: bool = False,
    label_smoothing: float = 0.0,
) -> float:
    """One pass over (x, y) in shuffled batches of BATCH_SIZE; returns the mean training loss. `frozen` (features
    frozen) keeps BatchNorm in eval mode, so its running statistics stay the backbone's. `label_smoothing` caps how
    confidently the model may fit its labels, the recipe many users train with."""
    model.train()
    if frozen:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    perm = torch.randperm(len(x), generator=g).to(x.device)
    total, seen = 0.0, 0
    for i in range(0, len(x), BATCH_SIZE):
        idx = perm[i : i + BATCH_SIZE]
        xb = augment(x[idx], g) if use_aug else x[idx]
        loss = F.cross_entropy(model(_prep(xb)), y[idx], label_smoothing=label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / seen


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Arg-max predictions in eval mode (BatchNorm running statistics, no dropout)."""
    model.eval()
    return torch.cat([model(_prep(x[i : i + EVAL_BATCH])).argmax(1) for i in range(0, len(x), EVAL_BATCH)])


def epoch_metrics(
    model: nn.Module, x_train: torch.Tensor, noisy: torch.Tensor, clean: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor
) -> dict[str, float]:
    """The oracle view of one state: fit on noisy labels, memorized fraction, clean-subset fit, test accuracy."""
    pred = predict(model, x_train)
    wrong = noisy != clean
    pt = predict(model, x_test)

    def frac(mask: torch.Tensor) -> float:
        return float(mask.float().mean()) if mask.numel() else float("nan")

    return {
        "train_acc_noisy": frac(pred == noisy),
        "memorized": frac(pred[wrong] == noisy[wrong]),  # mislabeled images predicted as their wrong label
        "mislabeled_true_acc": frac(pred[wrong] == clean[wrong]),
        "clean_subset_acc": frac(pred[~wrong] == clean[~wrong]),
        "test_acc": frac(pt == y_test),
    }


def _spaced(epochs: int, count: int) -> set[int]:
    return {max(1, round(epochs * k / count)) for k in range(1, count + 1)}


def save_epochs(epochs: int, count: int = CHECKPOINTS_PER_MODEL) -> list[int]:
    """`count` evenly spaced epochs, always including the last."""
    return sorted(_spaced(epochs, count))


def eval_epochs(epochs: int, count: int = CHECKPOINTS_PER_MODEL, evals: int = EVALS_PER_MODEL) -> list[int]:
    """Epochs whose state is measured: every epoch up to `evals` epochs, else evenly spaced ones, and
    always the saved ones, so every checkpoint has its oracle numbers."""
    return sorted(_spaced(epochs, evals) | _spaced(epochs, count))


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def is_complete(model_dir: Path) -> bool:
    rec = model_dir / "record.json"
    if not rec.is_file():
        return False
    data = json.loads(rec.read_text())
    return bool(data.get("complete")) and all((model_dir / p).is_file() for p in data["checkpoints"].values())


def train_model(
    cfg: ModelConfig,
    setting: str,
    data: ZooData,
    noisy_np: np.ndarray,
    model_dir: Path,
    device: torch.device,
    schedule: str = "cosine",
    checkpoints: int = CHECKPOINTS_PER_MODEL,
    classes: tuple[str, ...] = cifar.CLASSES,
    backbone: Path | None = None,
    evals: int = EVALS_PER_MODEL,
    label_smoothing: float = 0.0,
) -> dict[str, Any]:
    """Train one configuration on the noisy labels, checkpointing at save_epochs(); returns its record.
    schedule "constant" keeps the learning rate, so a run that memorizes loses clean accuracy late in training
    instead of being rescued by the decay (what `suscli track` must catch). A subset of `classes` gets one output
    per class, and its checkpoints name them (suscli reads `classes` as the model's class names: a group's name,
    its members under `class_members`). `backbone`: start
    from that checkpoint's weights with a new head (a FineTuneConfig with frozen=True trains the head only). The
    side of `data`'s images is recorded in the checkpoints for suscli to decode at. `label_smoothing`: that
    smoothing of the training loss, recorded in the checkpoints and the record when not 0."""
    num_classes = len(classes)
    frozen = bool(getattr(cfg, "frozen", False))
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    model = cfg.build(num_classes)
    if backbone is not None:
        load_backbone(model, backbone, frozen)
    image_size = data.x_train.shape[-1]
    model = model.to(device)
    if _channels_last(image_size):
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=MOMENTUM, weight_decay=cfg.weight_decay)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
        if schedule == "cosine"
        else torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0)
    )
    x_train, x_test = data.x_train.to(device), data.x_test.to(device)
    noisy = torch.from_numpy(noisy_np).to(device)
    clean = torch.from_numpy(data.y_train).to(device)
    y_test = torch.from_numpy(data.y_test).to(device)
    to_save, to_eval = save_epochs(cfg.epochs, checkpoints), eval_epochs(cfg.epochs, checkpoints, evals)
    meta = {
        "num_classes": num_classes,
        "preset": "cifar10",
        "mean": list(cifar.MEAN),
        "std": list(cifar.STD),
        "image_size": image_size,
        "noise": setting,
        "model_id": cfg.model_id,
        "lr": cfg.lr,
        "weight_decay": cfg.weight_decay,
        "epochs_total": cfg.epochs,
        "augment": cfg.augment,
        "seed": cfg.seed,
        **({"classes": list(cifar.class_names(classes))} if classes != cifar.CLASSES else {}),
        **({"class_members": [list(m) for m in cifar.members(classes)]} if cifar.is_grouped(classes) else {}),
        **({"backbone": str(backbone), "finetune": "frozen" if frozen else "full"} if backbone is not None else {}),
        **({"label_smoothing": label_smoothing} if label_smoothing else {}),
    }
    record: dict[str, Any] = {
        "model_id": cfg.model_id,
        "setting": setting,
        "config": {
            **asdict(cfg),
            "seed": cfg.seed,
            "batch_size": BATCH_SIZE,
            "momentum": MOMENTUM,
            "schedule": schedule,
            **({"backbone": str(backbone)} if backbone is not None else {}),
            **({"label_smoothing": label_smoothing} if label_smoothing else {}),
        },
        "device": str(device),
        "threads": torch.get_num_threads(),
        "per_epoch": [],
        "epochs": [],
        "checkpoints": {},
        "diverged_at": None,
        "complete": False,
    }
    start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        loss = train_epoch(model, opt, x_train, noisy, cfg.augment, g, frozen, label_smoothing)
        sched.step()
        step = {
            "epoch": epoch,
            "lr": lr,
            "lr_after": opt.param_groups[0]["lr"],
            "train_loss": loss,
            "train_seconds": time.perf_counter() - t0,
        }
        record["per_epoch"].append(step)
        diverged = not math.isfinite(loss)
        if epoch not in to_eval and not diverged:
            continue
        row = {
            **step,
            **epoch_metrics(model, x_train, noisy, clean, x_test, y_test),
            "epoch_seconds": time.perf_counter() - t0,
            "seconds": time.perf_counter() - start,
        }
        record["epochs"].append(row)
        if diverged:  # an untrainable config: keep what it did, save nothing meaningless
            record["diverged_at"] = epoch
            break
        if epoch in to_save:
            name = f"epoch_{epoch:03d}.safetensors"
            suscli.save(
                model,
                model_dir / name,
                arch=f"suscli.models:{cfg.arch}",
                arch_kwargs={"num_classes": num_classes, **cfg.arch_kwargs},
                epoch=epoch,
                train_acc_noisy=row["train_acc_noisy"],
                test_acc=row["test_acc"],
                **meta,
            )
            record["checkpoints"][str(epoch)] = name
    record["seconds"] = time.perf_counter() - start
    record["complete"] = True
    write_json(model_dir / "record.json", record)
    return record


def write_setting_files(out: Path, setting: str, data: ZooData, noisy: np.ndarray) -> None:
    sdir = out / setting
    sdir.mkdir(parents=True, exist_ok=True)
    write_text(sdir / "train_noisy.csv", "path,label\n" + "".join(f"{p.resolve()},{int(y)}\n" for p, y in zip(data.train_paths, noisy)))
    write_text(sdir / "unlabeled.txt", "".join(f"{p.resolve()}\n" for p in data.unlabeled_paths))


def zoo_manifest(
    args: argparse.Namespace, data: dict[str, ZooData], settings: list[str], configs: list[ModelConfig], noise: dict[str, np.ndarray]
) -> dict[str, Any]:
    """`data` and `noise` per setting: its training images (all of the subset's unless a human annotator chose a
    class outside --classes) and their noisy labels."""

    def noise_stats(s: str) -> dict[str, Any]:
        kind, p = parse_setting(s)
        kept = {"n_train": len(data[s].train_paths), "dropped_outside_classes": args.n_train - len(data[s].train_paths)}
        return {
            "kind": kind,
            "p": None if kind == "human" else p,
            "noise_seed": [args.seed, zlib.crc32(s.encode())],
            "mislabeled_fraction": float((noise[s] != data[s].y_train).mean()),
            "train_labels": f"{s}/train_noisy.csv",
            "unlabeled": f"{s}/unlabeled.txt",
            **(kept if args.classes else {}),
        }

    first = data[settings[0]]
    return {
        "data": {
            "root": str(first.root.resolve()),
            "seed": args.seed,
            "n_train": args.n_train,
            "n_test": args.n_test,
            "n_unlabeled": args.n_unlabeled,
            "image_size": args.image_size,
            "test_labels": "test.csv",
            "mean": list(cifar.MEAN),
            "std": list(cifar.STD),
            **({"classes": list(args.classes)} if args.classes else {}),
        },
        "plan": plan(args),
        "settings": {s: noise_stats(s) for s in settings},
        "training": {
            "optimizer": "SGD",
            "momentum": MOMENTUM,
            "batch_size": BATCH_SIZE,
            "schedule": f"{args.schedule}, stepped per epoch",
            "loss": "cross-entropy on the noisy labels" + (f", label smoothing {args.label_smoothing}" if args.label_smoothing else ""),
            **({"label_smoothing": args.label_smoothing} if args.label_smoothing else {}),
            "augment": "random crop (zero padding of an eighth of the side: 4 px at 32) + horizontal flip",
            **(
                {
                    "init": "pretrained backbone (pretrain/), new linear head; frozen: head only, BatchNorm statistics kept; full: every weight",
                    "backbones": {a: pretrain_entry(args.out, pretrain_config(a, args.pretrain_epochs)) for a in args.pretrain_archs},
                }
                if args.pretrain_classes
                else {}
            ),
        },
        "models": [model_entry(args.out, s, c, args.checkpoints) for s in settings for c in configs],
    }


def model_entry(out: Path, setting: str, cfg: ModelConfig, checkpoints: int = CHECKPOINTS_PER_MODEL) -> dict[str, Any]:
    """Where one model's files are: the planned checkpoints, or the ones written once its record is complete."""
    rel = f"{setting}/{cfg.model_id}"
    complete = is_complete(out / rel)
    saved = json.loads((out / rel / "record.json").read_text())["checkpoints"].values() if complete else None
    names = saved if saved is not None else [f"epoch_{e:03d}.safetensors" for e in save_epochs(cfg.epochs, checkpoints)]
    return {
        "setting": setting,
        "model_id": cfg.model_id,
        "dir": rel,
        "record": f"{rel}/record.json",
        "checkpoints": [f"{rel}/{n}" for n in names],
        "config": asdict(cfg),
        "complete": complete,
    }


def pretrain_entry(out: Path, cfg: ModelConfig) -> dict[str, Any]:
    """Where a backbone is, and once trained, its clean test accuracy on the pretraining classes."""
    rel = f"pretrain/{cfg.model_id}"
    entry: dict[str, Any] = {"dir": rel, "record": f"{rel}/record.json", "config": asdict(cfg), "complete": is_complete(out / rel)}
    if entry["complete"]:
        rec = json.loads((out / rel / "record.json").read_text())
        entry |= {
            "checkpoint": f"{rel}/{rec['checkpoints'][str(cfg.epochs)]}",
            "test_acc": rec["epochs"][-1]["test_acc"],
            "seconds": rec["seconds"],
        }
    return entry


def pretrain(args: argparse.Namespace, root: Path, device: torch.device) -> dict[str, Path]:
    """Each architecture's backbone, trained on --pretrain-classes' clean labels unless already complete."""
    paths = {}
    data = None
    for arch in args.pretrain_archs:
        cfg = pretrain_config(arch, args.pretrain_epochs)
        mdir = args.out / "pretrain" / cfg.model_id
        if not is_complete(mdir):
            if data is None:
                data = load_pretrain_data(
                    root, args.pretrain_classes, args.pretrain_n_train, args.pretrain_n_test, args.seed, max(4, os.cpu_count() or 1)
                )
            rec = train_model(cfg, "pretrain", data, data.y_train, mdir, device, "cosine", 1, args.pretrain_classes, evals=3)
            last = rec["epochs"][-1]
            print(
                f"pretrained {cfg.model_id} on {len(data.train_paths)} images of {','.join(args.pretrain_classes)}: "
                f"train {last['train_acc_noisy']:.3f} test {last['test_acc']:.3f} {rec['seconds']:.0f}s",
                flush=True,
            )
        rec = json.loads((mdir / "record.json").read_text())
        paths[arch] = mdir / rec["checkpoints"][str(cfg.epochs)]
    return paths


def plan(args: argparse.Namespace) -> dict[str, Any]:
    """What makes two runs' models comparable: the same subsets and the same configuration list."""
    out = {
        "seed": args.seed,
        "n_train": args.n_train,
        "n_test": args.n_test,
        "n_unlabeled": args.n_unlabeled,
        "models_per_setting": args.models_per_setting,
        "epoch_levels": list(args.epoch_levels),
    }
    if (args.schedule, args.checkpoints) != ("cosine", CHECKPOINTS_PER_MODEL):  # zoos made before these options
        out |= {"schedule": args.schedule, "checkpoints": args.checkpoints}
    if args.deep:  # likewise: a zoo of the small networks says nothing
        out["archs"] = "deep"
        if tuple(args.deep_blocks) != DEEP_BLOCKS:
            out["deep_blocks"] = list(args.deep_blocks)
    if args.classes:  # likewise: a zoo of all ten classes says nothing
        out["classes"] = list(args.classes)
    if args.label_smoothing:  # likewise: a zoo trained on hard labels says nothing
        out["label_smoothing"] = args.label_smoothing
    if args.pretrain_classes:  # and a zoo trained from scratch
        out["pretrain"] = {
            "classes": list(args.pretrain_classes),
            "archs": list(args.pretrain_archs),
            "n_train": args.pretrain_n_train,
            "n_test": args.pretrain_n_test,
            "epochs": args.pretrain_epochs,
            **PRETRAIN_RECIPE,
            "finetune_recipes": [list(r) for r in FINETUNE_RECIPES],
        }
    return out


def previous_settings(path: Path, args: argparse.Namespace) -> list[str]:
    """The settings an earlier run put in this zoo folder (kept in zoo.json when a run adds others); refuses a
    folder made with another plan, whose models could not be compared with these."""
    if not path.is_file():
        return []
    old = json.loads(path.read_text())
    if old.get("plan") != plan(args):
        raise SystemExit(f"{path} was made with {old.get('plan')}, this run is {plan(args)}: use another --out")
    return list(old["settings"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--quick", action="store_true", help="a few minutes on 2 CPU cores: 2 settings, 6 small models, 1000 images")
    p.add_argument("--settings", help=f"comma-separated clean/symNN/asymNN/human-COLUMN (default {FULL['settings']})")
    p.add_argument(
        "--classes",
        type=cifar.parse_classes,
        help="comma-separated CIFAR-10 class names to train on, ids in this order (default: all ten); an entry "
        "name=class+class+... is a group, one id for its members",
    )
    p.add_argument(
        "--pretrain-classes",
        type=cifar.parse_classes,
        help="fine-tuned zoo: pretrain a backbone on these classes' clean labels, then fine-tune on --classes with FINETUNE_RECIPES",
    )
    p.add_argument(
        "--pretrain-archs", default="bn_cnn", help=f"comma-separated architectures to pretrain and fine-tune (of {', '.join(ARCHS)})"
    )
    p.add_argument("--pretrain-epochs", type=int, default=15)
    p.add_argument("--pretrain-n-train", type=int, default=10000, help="pretraining images (class-balanced, from train/)")
    p.add_argument("--pretrain-n-test", type=int, default=1000, help="test images of the pretraining classes, for the backbone's accuracy")
    p.add_argument("--models-per-setting", type=int)
    p.add_argument("--n-train", type=int)
    p.add_argument("--n-test", type=int)
    p.add_argument("--n-unlabeled", type=int)
    p.add_argument("--seed", type=int, default=0, help="subsets, noise and the configuration sample")
    p.add_argument("--cifar-root", type=Path, default=cifar.DEFAULT_ROOT, help="unpacked cifar10-jpeg/ (made from the archive if missing)")
    p.add_argument("--data-archive", type=Path, default=cifar.DEFAULT_ARCHIVE)
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--image-size", type=int, default=32, help="train and measure at N x N px, CIFAR's 32 px images upsampled (bilinear)")
    p.add_argument("--deep", action="store_true", help="CIFAR ResNet-20 and ResNet-56 recipes (DEEP_ARCHS) instead of the small networks")
    p.add_argument(
        "--deep-blocks",
        type=lambda v: tuple(int(b) for b in v.split(",")),
        default=DEEP_BLOCKS,
        help="with --deep: blocks a stage of each depth (comma-separated; 3 = ResNet-20, 5 = ResNet-32, 9 = ResNet-56)",
    )
    p.add_argument(
        "--label-smoothing",
        type=float,
        default=0.0,
        help="label smoothing of every zoo model's training loss (0: hard labels; the backbones of --pretrain-classes keep 0)",
    )
    p.add_argument("--schedule", choices=("cosine", "constant"), default="cosine", help="learning-rate schedule")
    p.add_argument("--checkpoints", type=int, default=CHECKPOINTS_PER_MODEL, help="evenly spaced checkpoints saved per model")
    p.add_argument(
        "--evals-per-model",
        type=int,
        default=EVALS_PER_MODEL,
        help="evenly spaced epochs measured by the oracle, the saved ones always among them (each costs about an epoch)",
    )
    p.add_argument(
        "--epoch-levels", help=f"comma-separated training lengths sampled by the grid (default {','.join(map(str, EPOCHS_FULL))})"
    )
    args = p.parse_args(argv)
    args.pretrain_archs = tuple(a.strip() for a in args.pretrain_archs.split(",") if a.strip())
    if args.pretrain_classes:
        unknown = [a for a in args.pretrain_archs if a not in ARCHS]
        if unknown or not args.pretrain_archs:
            p.error(f"--pretrain-archs: unknown {unknown}, want names of {', '.join(ARCHS)}")
        if not args.classes or set(cifar.covered(args.classes)) & set(cifar.covered(args.pretrain_classes)):
            p.error("--pretrain-classes needs --classes, and no class in both (the backbone must not have seen the zoo's images)")
        if args.models_per_setting is None:
            args.models_per_setting = len(FINETUNE_RECIPES) * len(args.pretrain_archs)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.classes and cifar.is_grouped(args.classes):
        asym = [s for s in args.settings.split(",") if s.strip() and parse_setting(s.strip())[0] == "asym"]
        if asym:
            p.error(f"--settings {','.join(asym)}: asymmetric noise pairs CIFAR-10 classes, not groups of them")
    if not 0 <= args.label_smoothing < 1:
        p.error(f"--label-smoothing {args.label_smoothing}: want 0 <= X < 1")
    if args.epoch_levels:
        args.epoch_levels = tuple(int(e) for e in args.epoch_levels.split(","))
    else:
        args.epoch_levels = EPOCHS_QUICK if args.quick else EPOCHS_FULL
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    for s in settings:
        parse_setting(s)
    configs: list[ModelConfig] = (
        finetune_configs(args.pretrain_archs, args.models_per_setting)
        if args.pretrain_classes
        else build_configs(
            args.models_per_setting, args.epoch_levels, args.seed, args.image_size, deep_archs(args.deep_blocks) if args.deep else ARCHS
        )
    )
    root = cifar.ensure_unpacked(args.cifar_root, args.data_archive)
    t0 = time.perf_counter()
    classes = args.classes or cifar.CLASSES
    data = load_data(root, args.n_train, args.n_test, args.n_unlabeled, args.seed, threads=max(4, os.cpu_count() or 1), classes=classes)
    data = dataclasses.replace(
        data, x_train=cifar.upsample(data.x_train, args.image_size), x_test=cifar.upsample(data.x_test, args.image_size)
    )
    print(
        f"data: {len(data.train_paths)} train, {len(data.test_paths)} test, {len(data.unlabeled_paths)} unlabeled "
        f"from {root} ({time.perf_counter() - t0:.1f}s); device {device}, {torch.get_num_threads()} threads",
        flush=True,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "zoo.json"
    listed = previous_settings(manifest_path, args)
    listed += [s for s in settings if s not in listed]
    noise = {s: noisy_labels(data.y_train, s, args.seed, data, classes) for s in listed}
    sets = {s: data.keeping(noise[s] >= 0) for s in listed}  # a human label outside --classes: the image is dropped
    noise = {s: noise[s][noise[s] >= 0] for s in listed}
    for s in settings:
        if len(sets[s].train_paths) < len(data.train_paths):
            print(
                f"{s}: {len(data.train_paths) - len(sets[s].train_paths)} training images dropped, labelled outside the classes", flush=True
            )
        wrong = int((noise[s] != sets[s].y_train).sum())
        print(f"{s}: {wrong} of {len(noise[s])} training labels wrong ({wrong / max(len(noise[s]), 1):.1%})", flush=True)
    write_text(args.out / "test.csv", "path,label\n" + "".join(f"{p.resolve()},{int(y)}\n" for p, y in zip(data.test_paths, data.y_test)))
    for s in settings:
        write_setting_files(args.out, s, sets[s], noise[s])
    write_json(manifest_path, zoo_manifest(args, sets, listed, configs, noise))

    jobs = [(s, c) for s in settings for c in configs if not is_complete(args.out / s / c.model_id)]
    print(
        f"{len(settings)} settings x {len(configs)} models; {len(settings) * len(configs) - len(jobs)} already complete, {len(jobs)} to train",
        flush=True,
    )
    backbones = pretrain(args, root, device) if args.pretrain_classes else {}
    if backbones:
        write_json(manifest_path, zoo_manifest(args, sets, listed, configs, noise))
    sec_per_epoch: dict[str, list[float]] = {}  # by architecture shape: for the ETA
    run_start = time.perf_counter()
    for k, (s, cfg) in enumerate(jobs, 1):
        rec = train_model(
            cfg,
            s,
            sets[s],
            noise[s],
            args.out / s / cfg.model_id,
            device,
            args.schedule,
            args.checkpoints,
            classes,
            backbones.get(cfg.arch),
            args.evals_per_model,
            args.label_smoothing,
        )
        sec_per_epoch.setdefault(cfg.shape, []).append(rec["seconds"] / len(rec["per_epoch"]))
        mean_all = float(np.mean([v for vs in sec_per_epoch.values() for v in vs]))
        eta = sum(c.epochs * float(np.mean(sec_per_epoch.get(c.shape, [mean_all]))) for _, c in jobs[k:])
        last = rec["epochs"][-1]
        print(
            f"[{k}/{len(jobs)}] {s} {cfg.model_id}: train(noisy) {last['train_acc_noisy']:.3f} memorized {last['memorized']:.3f} "
            f"test {last['test_acc']:.3f} {rec['seconds']:.0f}s{' DIVERGED' if rec['diverged_at'] else ''} | "
            f"elapsed {_hms(time.perf_counter() - run_start)} ETA {_hms(eta)}",
            flush=True,
        )
        write_json(manifest_path, zoo_manifest(args, sets, listed, configs, noise))
    print(f"done: {args.out / 'zoo.json'}", flush=True)


def _hms(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"


if __name__ == "__main__":
    main()
