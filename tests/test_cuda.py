"""On a CUDA GPU suscli gives the CPU's numbers, within what the GPU's arithmetic allows.

Skipped where there is no GPU (CI has none); run on one with `python -m pytest tests/test_cuda.py`. Two of the
GPU's paths do not compute bit for bit what the CPU does:
- the susceptibility passes run in float32 without TF32 and with cuDNN's deterministic algorithms
  (suscli.measure.susceptibility.reproducible_fp32), so they differ from the CPU's by the order of summation alone
  (the tolerance of tests/test_batched.py) and repeat bit for bit;
- the accuracy forwards run under bf16 autocast, where an image whose two top logits nearly tie can change its
  predicted class.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

import suscli.measure.batched
from suscli.measure.accuracy import training_accuracy
from suscli.measure.batched import measure_many, training_accuracy_many
from suscli.measure.susceptibility import measure_susceptibility
from suscli.measure.untrained import untrained_susceptibility
from tests.test_batched import ARCHS, CONFIG, TRANSFORM, mixed_models, pixels, refuse
from tests.test_cli_rank import make_pool, rank_json

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def on_cuda(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(model).to(CUDA)


def assert_close_measurement(got, want) -> None:
    for field in ("r", "loss_before", "loss_after"):
        assert getattr(got, field) == pytest.approx(getattr(want, field), rel=1e-4, abs=1e-4)
    assert got.mean == pytest.approx(want.mean, rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("name", ARCHS)
def test_susceptibility_on_cuda_equals_the_cpu(name: str) -> None:
    torch.manual_seed(3)
    model, x = ARCHS[name]().eval(), pixels()
    want = measure_susceptibility(model, x, config=CONFIG, transform=TRANSFORM)
    got = measure_susceptibility(on_cuda(model), x, config=CONFIG, transform=TRANSFORM, device=CUDA)
    assert_close_measurement(got, want)


def test_a_users_tf32_setting_neither_changes_the_numbers_nor_is_lost() -> None:
    if not hasattr(torch.backends.cudnn, "conv"):
        pytest.skip("torch < 2.9 has no fp32_precision settings")
    torch.manual_seed(4)
    model, x = ARCHS["resnet"]().eval(), pixels()
    want = measure_susceptibility(model, x, config=CONFIG, transform=TRANSFORM)
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    saved = conv.fp32_precision, matmul.fp32_precision
    conv.fp32_precision = matmul.fp32_precision = "tf32"  # what a training script sets for speed
    try:
        got = measure_susceptibility(on_cuda(model), x, config=CONFIG, transform=TRANSFORM, device=CUDA)
        assert (conv.fp32_precision, matmul.fp32_precision) == ("tf32", "tf32")
    finally:
        conv.fp32_precision, matmul.fp32_precision = saved
    assert_close_measurement(got, want)


def test_measure_many_on_cuda_equals_the_cpu_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    models, x = mixed_models(), pixels()
    want = [measure_susceptibility(m, x, config=CONFIG, transform=TRANSFORM) for m in models]
    monkeypatch.setattr(suscli.measure.batched, "measure_susceptibility", refuse)  # every group runs batched, on the GPU
    got = measure_many([on_cuda(m) for m in models], x, config=CONFIG, transform=TRANSFORM, device=CUDA)
    for g, w in zip(got, want):
        assert_close_measurement(g, w)


def test_a_measurement_on_cuda_repeats_bit_for_bit() -> None:
    """With cuDNN free to pick its algorithms, `perf.py` run on an H100 read susceptibilities up to 1.2e-5 apart
    (ResNet-50s) for the same models, images and seed, cold and warm: the same inputs must give the same numbers,
    one model at a time and batched."""
    models, x = [on_cuda(m) for m in mixed_models()], pixels()

    def alone() -> list:
        return [measure_susceptibility(m, x, config=CONFIG, transform=TRANSFORM, device=CUDA) for m in models]

    def together() -> list:
        return measure_many(models, x, config=CONFIG, transform=TRANSFORM, device=CUDA)

    for measure in (alone, together):
        first, second = measure(), measure()
        assert [(m.r, m.loss_before, m.loss_after) for m in first] == [(m.r, m.loss_before, m.loss_after) for m in second]


def test_training_accuracy_on_cuda_differs_from_the_cpu_only_on_near_ties() -> None:
    """bf16 autocast may flip an image whose two top logits (on the CPU) are within bf16's rounding of each other,
    and no other: each flipped image's top-2 gap is below 2% of its largest logit's size. On CUDA the models are
    counted one at a time (training_accuracy_many), so the pool's counts are each model's own."""
    models, x = mixed_models(), pixels(400)
    labels = torch.randint(5, (len(x),), generator=torch.Generator().manual_seed(2))
    pooled = training_accuracy_many([on_cuda(m) for m in models], x, labels, transform=TRANSFORM, device=CUDA)
    for model, many in zip(models, pooled):
        want = training_accuracy(model, x, labels, transform=TRANSFORM)
        alone = training_accuracy(on_cuda(model), x, labels, transform=TRANSFORM, device=CUDA)
        assert many == alone
        with torch.no_grad():
            logits = model.eval()(TRANSFORM(x))
        top2 = logits.topk(2, dim=-1).values
        gap = (top2[:, 0] - top2[:, 1]) / logits.abs().amax(-1).clamp_min(1e-6)
        flipped = torch.from_numpy(alone.hits != want.hits)
        assert int(flipped.sum()) <= 0.02 * len(x)
        assert bool((gap[flipped] < 0.02).all()), gap[flipped]
        assert abs(alone.correct - want.correct) <= int(flipped.sum())


def test_untrained_reference_on_cuda_equals_the_cpu() -> None:
    torch.manual_seed(5)
    model, x = ARCHS["bn_cnn"]().eval(), pixels()
    args = dict(config=CONFIG, transform=TRANSFORM, inputs="test", pixels=x)
    cpu = untrained_susceptibility(model, device=torch.device("cpu"), **args)
    gpu = untrained_susceptibility(on_cuda(model), device=CUDA, **{**args, "inputs": "test-cuda"})  # another cache key
    assert gpu["susceptibility"] == pytest.approx(cpu["susceptibility"], rel=1e-4, abs=1e-4)


def test_rank_on_cuda_batched_gives_the_cpu_table(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    pool = make_pool(tmp_path / "pool", n=6)
    cpu_res, cpu = rank_json(pool, image_folder, train_folder, "--device", "cpu", "--results", tmp_path / "cpu.jsonl")
    gpu_res, gpu = rank_json(
        pool, image_folder, train_folder, "--device", "cuda", "--model-batch", "4", "--results", tmp_path / "gpu.jsonl"
    )
    assert cpu_res.exit_code == gpu_res.exit_code == 0, gpu_res.output
    want = {r["name"]: r for r in cpu["results"]}
    for r in gpu["results"]:
        w = want[r["name"]]
        assert r["susceptibility"] == pytest.approx(w["susceptibility"], rel=1e-4, abs=1e-4)
        assert r["train_acc"] == pytest.approx(w["train_acc"], abs=2.5 / r["train_n"])  # two near-tied images may flip
