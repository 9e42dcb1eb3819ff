"""Models measured together (torch.func vmap over stacked weights) give the numbers of one model at a time."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import suscli
import suscli.run.audit
import suscli.measure.batched
from suscli.measure.accuracy import training_accuracy
from suscli.run.audit import PoolRequest, audit_pool
from suscli.measure.batched import batchable, groups, measure_many, training_accuracy_many
from suscli.errors import InputError
from suscli.data.images import labeled_source, normalizer, unlabeled_source
from suscli.models import bn_cnn, mlp, plain_cnn, resnet
from suscli.run.pool import discover
from suscli.run.settings import Settings
from suscli.run.store import ResultStore
from suscli.measure.susceptibility import SusceptibilityConfig, measure_susceptibility
from tests.test_cache import OOMAbove
from tests.test_cli_rank import make_pool, rank_json

CONFIG = SusceptibilityConfig(lr=0.5, batches=3, batch_size=8, seed=1)
TRANSFORM = normalizer((0.5,), (0.25,))
ARCHS = {  # small variants of every shipped architecture, for 16x16 images
    "plain_cnn": lambda: plain_cnn(num_classes=5, width=4),
    "bn_cnn": lambda: bn_cnn(num_classes=5, width=4),
    "mlp": lambda: mlp(num_classes=5, width=16, image_size=16),
    "resnet": lambda: resnet(num_classes=5, width=4, blocks=1),
}


def pixels(n: int = 20, size: int = 16) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(7))


def mixed_models() -> list[nn.Module]:
    """Two models of each architecture, interleaved, each with its own random weights, in eval mode as loaded."""
    models = []
    for _ in range(2):
        for make in ARCHS.values():
            torch.manual_seed(len(models))
            models.append(make().eval())
    return models


def refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("fell back to one model at a time")


def assert_same_measurement(got, want) -> None:
    assert (got.batch_size, got.num_classes, got.config) == (want.batch_size, want.num_classes, want.config)
    for field in ("r", "loss_before", "loss_after"):
        assert getattr(got, field) == pytest.approx(getattr(want, field), rel=1e-4, abs=1e-5)
    assert got.mean == pytest.approx(want.mean, rel=1e-4, abs=1e-5)
    assert got.sem == pytest.approx(want.sem, rel=1e-4, abs=1e-5)


def test_measure_many_equals_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    models, x = mixed_models(), pixels()
    want = [measure_susceptibility(m, x, config=CONFIG, transform=TRANSFORM) for m in models]
    assert groups(models) == [[0, 4], [1, 5], [2, 6], [3, 7]]
    monkeypatch.setattr(suscli.measure.batched, "measure_susceptibility", refuse)  # every group must run batched
    got = measure_many(models, x, config=CONFIG, transform=TRANSFORM)
    for g, w in zip(got, want):
        assert_same_measurement(g, w)


def test_models_are_left_bit_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    models, x = mixed_models(), pixels()
    for m in models:
        next(m.children()).train()  # a mixed setting of the user's must come back as it was
        m.get_parameter(next(n for n, _ in m.named_parameters())).requires_grad_(False)  # and a frozen parameter
    state = [{k: v.clone() for k, v in m.state_dict(keep_vars=True).items()} for m in models]
    flags = [[(s.training, [p.requires_grad for p in s.parameters(recurse=False)]) for s in m.modules()] for m in models]
    monkeypatch.setattr(suscli.measure.batched, "measure_susceptibility", refuse)
    monkeypatch.setattr(suscli.measure.batched, "training_accuracy", refuse)
    measure_many(models, x, config=CONFIG, transform=TRANSFORM)
    training_accuracy_many(models, x, torch.randint(5, (len(x),)), transform=TRANSFORM)
    for m, before, modes in zip(models, state, flags):
        after = m.state_dict(keep_vars=True)
        assert all(torch.equal(before[k], after[k]) and after[k].grad is None for k in before)
        assert [(s.training, [p.requires_grad for p in s.parameters(recurse=False)]) for s in m.modules()] == modes


def test_frozen_parameters_are_stepped_as_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    models, x = [ARCHS["bn_cnn"]().eval() for _ in range(3)], pixels()
    for m in models:
        m[0].weight.requires_grad_(False)
    want = [measure_susceptibility(m, x, config=CONFIG, transform=TRANSFORM) for m in models]
    monkeypatch.setattr(suscli.measure.batched, "measure_susceptibility", refuse)
    for g, w in zip(measure_many(models, x, config=CONFIG, transform=TRANSFORM), want):
        assert_same_measurement(g, w)


class ItemCalling(nn.Module):
    """A forward vmap cannot batch: it reads a value out of a tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.net = plain_cnn(num_classes=5, width=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out * (1.0 + 0.0 * out.mean().item())


class Branching(nn.Module):
    """A forward vmap cannot batch: data-dependent control flow."""

    def __init__(self) -> None:
        super().__init__()
        self.net = bn_cnn(num_classes=5, width=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out if out.sum() > -1e30 else -out


@pytest.mark.parametrize("cls", [ItemCalling, Branching])
def test_unbatchable_forward_falls_back_to_the_reference(cls: type[nn.Module], monkeypatch: pytest.MonkeyPatch) -> None:
    models, x = [cls().eval() for _ in range(3)], pixels()
    labels = torch.randint(5, (len(x),))
    want = [measure_susceptibility(m, x, config=CONFIG, transform=TRANSFORM) for m in models]
    want_acc = [training_accuracy(m, x, labels, transform=TRANSFORM) for m in models]
    calls: list[str] = []
    for name in ("measure_susceptibility", "training_accuracy"):
        real = getattr(suscli.measure.batched, name)
        monkeypatch.setattr(suscli.measure.batched, name, lambda *a, real=real, name=name, **k: calls.append(name) or real(*a, **k))
    got = measure_many(models, x, config=CONFIG, transform=TRANSFORM)
    got_acc = training_accuracy_many(models, x, labels, transform=TRANSFORM)
    assert calls == ["measure_susceptibility"] * 3 + ["training_accuracy"] * 3
    assert [g.r for g in got] == [w.r for w in want] and got_acc == want_acc
    assert all((g.predictions.classes == w.predictions.classes).all() for g, w in zip(got_acc, want_acc))


def test_what_cannot_share_a_vmap() -> None:
    a = plain_cnn(num_classes=5, width=4)
    assert batchable(a, plain_cnn(num_classes=5, width=4))
    assert not batchable(a, plain_cnn(num_classes=5, width=8))  # shapes
    assert not batchable(a, bn_cnn(num_classes=5, width=4))  # names
    assert not batchable(a, plain_cnn(num_classes=5, width=4).double())  # dtypes
    assert not batchable(a, plain_cnn(num_classes=5, width=4, dropout=0.5))  # a plain attribute: Dropout's p
    assert not batchable(a, plain_cnn(num_classes=5, width=4).eval())  # the top-level flag stack_module_state checks
    hooked = plain_cnn(num_classes=5, width=4)
    hooked[0].register_forward_hook(lambda *args: None)
    assert not batchable(a, hooked)


def test_training_accuracy_many_equals_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    models, x = mixed_models(), pixels(n=23)
    labels = torch.randint(5, (len(x),), generator=torch.Generator().manual_seed(3))
    want = [training_accuracy(m, x, labels, population=100, batch_size=5, transform=TRANSFORM) for m in models]
    monkeypatch.setattr(suscli.measure.batched, "training_accuracy", refuse)
    got = training_accuracy_many(models, x, labels, population=100, batch_size=5, transform=TRANSFORM)
    assert got == want and all(a.sampled for a in got)
    for g, w in zip(got, want):  # the top classes per training image too (suscli.judge.noise reads them)
        assert (g.predictions.classes[:, 0] == w.predictions.classes[:, 0]).all() and (g.predictions.labels == labels.numpy()).all()
        assert g.predictions.probs == pytest.approx(w.predictions.probs, rel=1e-4, abs=1e-5)


def test_training_accuracy_many_raises_the_reference_error() -> None:
    models, x = [ARCHS["mlp"]() for _ in range(2)], pixels(n=4)
    with pytest.raises(InputError, match="up to 7 but the model has 5 classes"):
        training_accuracy_many(models, x, torch.tensor([0, 7, 1, 2]), transform=TRANSFORM)


def test_out_of_gpu_memory_counts_one_at_a_time_as_the_reference_does() -> None:
    models = [OOMAbove(limit=7) for _ in range(2)]
    x, y = torch.randn(40, 3, 8, 8), torch.randint(3, (40,))
    want = [training_accuracy(m, x, y) for m in models]
    got = training_accuracy_many(models, x, y)
    assert got == want and all(a.halvings == 3 for a in got)


def test_on_cuda_training_accuracy_counts_each_model_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """One model's batch of 2,048 images fills a GPU; stacked models only multiply the memory (docs/performance.md).
    The routing alone, on the CPU: the GPU's numbers are tests/test_cuda.py's."""
    models, x, y = mixed_models(), pixels(), torch.randint(5, (20,))
    seen: list[tuple[nn.Module, object]] = []

    def alone(model: nn.Module, *args: object, device: object = None, **kwargs: object) -> str:
        seen.append((model, device))
        return f"counted {len(seen)}"

    stacked: list[int] = []
    monkeypatch.setattr(suscli.measure.batched, "_count_together", lambda members, *a, **k: stacked.append(len(members)))
    monkeypatch.setattr(suscli.measure.batched, "training_accuracy", alone)
    got = training_accuracy_many(models, x, y, transform=TRANSFORM, device="cuda")
    assert stacked == []  # not even tried: a failed try would fall back to the same calls
    assert [m for m, _ in seen] == [models[i] for g in groups(models) for i in g]
    assert {d for _, d in seen} == {"cuda"} and sorted(got) == sorted(f"counted {i + 1}" for i in range(len(models)))


def save_pool(folder: Path) -> Path:
    """Mixed architectures in an interleaved order, two models that do not fit the images, and a corrupt file."""
    specs = ["bn_cnn", "plain_cnn", "bn_cnn", "corrupt", "mlp16", "resnet", "mlp16", "resnet", "plain_cnn", "bn_cnn", "mlp", "plain_cnn"]
    kwargs = {
        "bn_cnn": {"width": 4},
        "plain_cnn": {"width": 4},
        "resnet": {"width": 4, "blocks": 1},
        "mlp": {"width": 8, "image_size": 8},
        "mlp16": {"width": 8, "image_size": 16},
    }
    for i, spec in enumerate(specs):
        path = folder / f"m{i:02d}_{spec}.safetensors"
        if spec == "corrupt":
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"not a checkpoint")
            continue
        torch.manual_seed(i)
        arch = spec.removesuffix("16")
        model = getattr(suscli.models, arch)(num_classes=3, **kwargs[spec])
        suscli.save(model, path, arch=f"suscli.models:{arch}", arch_kwargs={"num_classes": 3, **kwargs[spec]}, image_size=8, epoch=i)
    return folder


def test_audit_pool_model_batch_gives_the_same_rows(
    tmp_path: Path, image_folder: Path, train_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = discover(save_pool(tmp_path / "pool"))
    unlabeled, train = unlabeled_source(image_folder), labeled_source(train_folder)
    options = {"settings": Settings(susceptibility=SusceptibilityConfig(batches=2, batch_size=8)), "device": torch.device("cpu")}
    one = audit_pool(PoolRequest(entries, **options, model_batch=1), unlabeled, train)

    together: list[list[str]] = []
    alone: list[str] = []
    group, single = suscli.run.audit.score_group, suscli.run.audit.score_checkpoint
    monkeypatch.setattr(
        suscli.run.audit, "score_group", lambda ckpts, names, *a, **k: together.append(names) or group(ckpts, names, *a, **k)
    )
    monkeypatch.setattr(suscli.run.audit, "score_checkpoint", lambda *a, name, **k: alone.append(name) or single(*a, name=name, **k))
    store = ResultStore(tmp_path / "results.jsonl", "fp", {})
    many = audit_pool(PoolRequest(entries, **options, store=store, model_batch=4), unlabeled, train)

    # windows of 4 models: the corrupt file is a row, the bn_cnn pair runs together; then the mlp16 pair (which fails
    # together, then alone) and the resnet pair; then the plain_cnn pair
    assert together == [
        ["m00_bn_cnn", "m02_bn_cnn"],
        ["m04_mlp16", "m06_mlp16"],
        ["m05_resnet", "m07_resnet"],
        ["m08_plain_cnn", "m11_plain_cnn"],
    ]
    assert alone == ["m01_plain_cnn", "m04_mlp16", "m06_mlp16", "m09_bn_cnn", "m10_mlp"]
    assert [r.name for r in many] == [e.name for e in entries] == [r.name for r in one]
    assert [r.status for r in many] == [r.status for r in one]
    assert [r.status for r in many].count("error") == 3
    for a, b in zip(many, one):
        assert (a.error, a.epoch, a.notes, a.train_acc, a.train_n, a.arch) == (b.error, b.epoch, b.notes, b.train_acc, b.train_n, b.arch)
        if a.ok:
            assert a.susceptibility == pytest.approx(b.susceptibility, rel=1e-4, abs=1e-5)
            assert a.details["r"] == pytest.approx(b.details["r"], rel=1e-4, abs=1e-5)
            assert {k: v for k, v in a.details.items() if k not in ("r", "loss_before", "loss_after")} == {
                k: v for k, v in b.details.items() if k not in ("r", "loss_before", "loss_after")
            }
    assert "m03_corrupt" in many[3].error and all("failed on 8x8 images" in many[i].error for i in (4, 6))
    assert len(store) == sum(r.ok for r in many)


def test_rank_model_batch_option(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    pool = make_pool(tmp_path / "pool")
    docs = [
        rank_json(pool, image_folder, train_folder, "--model-batch", n, "--results", tmp_path / f"{n}.jsonl")[1]["results"]
        for n in ("1", "4")
    ]
    assert [(r["name"], r["train_acc"]) for r in docs[0]] == [(r["name"], r["train_acc"]) for r in docs[1]]
    assert [r["susceptibility"] for r in docs[1]] == pytest.approx([r["susceptibility"] for r in docs[0]], rel=1e-4, abs=1e-5)
