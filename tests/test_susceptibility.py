"""The measurement against an independent computation of its definition, and its guarantees."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from suscli.errors import InputError, UsageError
import suscli.measure.susceptibility as susceptibility
from suscli.measure.batched import measure_many
from suscli.measure.randomness import random_forward
from suscli.measure.susceptibility import (
    SusceptibilityConfig,
    batch_indices,
    check_finite,
    reproducible_fp32,
    measure_susceptibility,
    random_labels,
)
from suscli.training.tracker import SusceptibilityTracker
from tests.conftest import tiny_cnn


def expected_r(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float) -> float:
    """The definition, written the straightforward way: copy, train mode with dropout off, one torch.optim.SGD step."""
    m = copy.deepcopy(model)
    m.train()
    for mod in m.modules():
        if isinstance(mod, nn.Dropout):
            mod.eval()
    opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=0.0, weight_decay=0.0)
    before = F.cross_entropy(m(x), y)
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = F.cross_entropy(m(x), y)
    return before.item() - after.item()


def test_matches_independent_computation() -> None:
    model = tiny_cnn(num_classes=5)
    inputs = torch.randn(40, 3, 8, 8)
    cfg = SusceptibilityConfig(lr=0.5, batches=4, batch_size=16, seed=3)
    got = measure_susceptibility(model, inputs, config=cfg)

    labels = random_labels(40, 5, seed=3)
    want = [expected_r(model, inputs[idx], labels[idx], 0.5) for idx in batch_indices(40, 4, 16, seed=3)]
    assert got.r == pytest.approx(want, rel=1e-5, abs=1e-6)
    assert got.mean == pytest.approx(sum(want) / 4, rel=1e-5)
    mu = sum(want) / 4
    sd = math.sqrt(sum((w - mu) ** 2 for w in want) / 3)
    assert got.sem == pytest.approx(sd / 2, rel=1e-4)
    assert all(b - a == pytest.approx(r, abs=1e-6) for b, a, r in zip(got.loss_before, got.loss_after, got.r))


def test_random_labels_are_uniform_and_batches_distinct() -> None:
    labels = random_labels(20000, 10, seed=0)
    counts = torch.bincount(labels, minlength=10).float() / 20000
    assert counts.min() > 0.09 and counts.max() < 0.11
    for idx in batch_indices(50, 5, 20, seed=0):
        assert len(set(idx.tolist())) == 20 and int(idx.max()) < 50


def test_a_huge_batch_count_starts_measuring_instead_of_running_out_of_memory() -> None:
    """--batches 10**20 (a typo for 20) used to build every batch's indices first: std::bad_alloc before the first
    batch. They are drawn as the loop reaches them, so the run starts, shows its progress and can be stopped."""
    reached: list[int] = []

    def stop_at_three(stage: str, done: int, total: int) -> None:
        reached.append(done)
        if done == 3:
            raise KeyboardInterrupt

    model = tiny_cnn()
    with pytest.raises(KeyboardInterrupt):
        measure_susceptibility(
            model, torch.randn(20, 3, 8, 8), config=SusceptibilityConfig(batches=10**20, batch_size=8), progress=stop_at_three
        )
    assert reached == [1, 2, 3]
    with pytest.raises(KeyboardInterrupt):
        measure_many(
            [tiny_cnn(), tiny_cnn()],
            torch.randn(20, 3, 8, 8),
            config=SusceptibilityConfig(batches=10**20, batch_size=8),
            progress=stop_at_three,
        )


def test_model_is_left_bit_identical_and_modes_restored() -> None:
    model = tiny_cnn()
    model.eval()
    model[5].train()  # a mixed mode the user chose must come back as it was
    before = {k: v.clone() for k, v in model.state_dict().items()}
    measure_susceptibility(model, torch.randn(32, 3, 8, 8), config=SusceptibilityConfig(lr=1.0, batches=3, batch_size=8))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model.training and model[5].training and not model[1].training


def test_a_module_compiled_in_place_is_measured_eagerly_and_stays_compiled() -> None:
    """`model.compile()` (in place, unlike torch.compile(model), whose wrapper is unwrapped) made the first measurement
    compile the train-mode forward and its gradients: 14 s on a small CNN. Its compiled call (here a stand-in that
    refuses to run) is set aside while measuring and put back; the numbers are the eager model's."""
    x, config = torch.randn(32, 3, 8, 8), SusceptibilityConfig(lr=0.5, batches=3, batch_size=8)
    model = tiny_cnn()
    want = measure_susceptibility(copy.deepcopy(model), x, config=config).r

    def compiled(*args: object, **kwargs: object) -> torch.Tensor:
        raise AssertionError("the compiled forward ran")

    model._compiled_call_impl = compiled
    model[1]._compiled_call_impl = compiled  # a submodule compiled on its own
    assert measure_susceptibility(model, x, config=config).r == want
    assert random_forward(model, x, transform=lambda b: b, device=torch.device("cpu")) is None  # the check of its forward too
    assert model._compiled_call_impl is compiled and model[1]._compiled_call_impl is compiled


def test_sync_batch_norm_in_a_distributed_run_normalizes_by_the_measured_batch(tmp_path: Path) -> None:
    """SyncBatchNorm's train-mode forward gathers every process's statistics in a distributed run: a loop measuring
    on rank 0 alone would wait for the others forever (on a GPU; on the CPU it raises "SyncBatchNorm expected input
    tensor to be on GPU"). It normalizes by the measured batch while measured, the numbers of the same model outside
    a distributed run, and is a SyncBatchNorm again afterwards."""
    import torch.distributed as dist

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    x, config = torch.randn(32, 3, 8, 8), SusceptibilityConfig(lr=0.5, batches=2, batch_size=8)
    want = measure_susceptibility(copy.deepcopy(model), x, config=config).r
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert measure_susceptibility(synced, x, config=config).r == want
        assert random_forward(synced, x, transform=lambda b: b, device=torch.device("cpu")) is None  # its train-mode pass too
        assert "forward" not in vars(synced[1])
        with pytest.raises(ValueError, match="SyncBatchNorm expected input tensor to be on GPU"):
            synced.train()(x)  # the layer's own forward, as the training loop runs it
    finally:
        dist.destroy_process_group()


def test_model_restored_when_the_forward_fails() -> None:
    model = tiny_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = {"n": 0}

    def flaky(x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom")
        return x

    with pytest.raises(RuntimeError):
        measure_susceptibility(
            model, torch.randn(16, 3, 8, 8), config=SusceptibilityConfig(batches=4, batch_size=8), transform=flaky, num_classes=3
        )
    assert all(torch.equal(before[k], model.state_dict()[k]) for k in before)


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    model, inputs = tiny_cnn(), torch.randn(64, 3, 8, 8)
    a = measure_susceptibility(model, inputs, config=SusceptibilityConfig(seed=1, batches=3, batch_size=16))
    b = measure_susceptibility(model, inputs, config=SusceptibilityConfig(seed=1, batches=3, batch_size=16))
    c = measure_susceptibility(model, inputs, config=SusceptibilityConfig(seed=2, batches=3, batch_size=16))
    assert a.r == b.r
    assert a.r != c.r


def test_batch_size_capped_by_images_and_bad_config_rejected() -> None:
    got = measure_susceptibility(tiny_cnn(), torch.randn(6, 3, 8, 8), config=SusceptibilityConfig(batches=2, batch_size=128))
    assert got.batch_size == 6 and len(got.r) == 2
    # every batch holds all 6 images with the same labels: one measurement repeated, so no standard error (it read 0)
    assert got.r[0] == pytest.approx(got.r[1]) and math.isnan(got.sem)
    smaller = measure_susceptibility(tiny_cnn(), torch.randn(6, 3, 8, 8), config=SusceptibilityConfig(batches=3, batch_size=4))
    assert smaller.sem > 0
    many = measure_many([tiny_cnn(), tiny_cnn()], torch.randn(6, 3, 8, 8), config=SusceptibilityConfig(batches=2, batch_size=128))
    assert all(math.isnan(m.sem) for m in many)  # the batched path says the same
    with pytest.raises(InputError):
        measure_susceptibility(tiny_cnn(), torch.randn(0, 3, 8, 8))
    with pytest.raises(InputError):
        measure_susceptibility(tiny_cnn(), torch.randn(4, 3, 8, 8), config=SusceptibilityConfig(batches=0))
    for lr in (math.inf, math.nan, 0.0):  # inf gave a non-finite loss after the step, read as no susceptibility
        with pytest.raises(InputError, match="a finite lr > 0"):
            measure_susceptibility(tiny_cnn(), torch.randn(4, 3, 8, 8), config=SusceptibilityConfig(lr=lr))


def test_larger_step_moves_the_loss_further_on_a_linear_model() -> None:
    """Sanity of sign: on a convex model a small step lowers the loss, so r > 0."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    got = measure_susceptibility(model, torch.randn(64, 3, 2, 2), config=SusceptibilityConfig(lr=0.01, batches=4, batch_size=32))
    assert all(r > 0 for r in got.r)


@pytest.mark.skipif(not hasattr(torch.backends.cudnn, "conv"), reason="torch < 2.9 has no fp32_precision settings")
def test_reproducible_fp32_turns_tf32_and_free_algorithms_off_on_cuda_and_puts_the_users_settings_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The GPU half is in tests/test_cuda.py; here the settings alone, as if a GPU were there: a training script's
    TF32 and cuDNN autotuning (benchmark mode, which may pick a nondeterministic algorithm) are off inside, back after."""
    monkeypatch.setattr(susceptibility.torch.cuda, "is_available", lambda: True)
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = cudnn.conv.fp32_precision, matmul.fp32_precision, cudnn.deterministic, cudnn.benchmark
    users = ("tf32", "tf32", False, True)

    def settings() -> tuple:
        return cudnn.conv.fp32_precision, matmul.fp32_precision, cudnn.deterministic, cudnn.benchmark

    try:
        cudnn.conv.fp32_precision, matmul.fp32_precision, cudnn.deterministic, cudnn.benchmark = users
        with reproducible_fp32():
            assert settings() == ("ieee", "ieee", True, False)
        assert settings() == users
        with pytest.raises(RuntimeError), reproducible_fp32():
            raise RuntimeError("a forward that fails")
        assert settings() == users
    finally:
        cudnn.conv.fp32_precision, matmul.fp32_precision, cudnn.deterministic, cudnn.benchmark = saved


def test_a_loss_that_is_not_finite_is_an_error_where_a_row_is_built() -> None:
    """A step far too large leaves outputs that are not finite: no number, and an error saying so (the row had status
    ok and no susceptibility). A training loop's tracker keeps the nan instead: measure_susceptibility returns it."""
    model = tiny_cnn()
    got = measure_susceptibility(model, torch.randn(8, 3, 8, 8), config=SusceptibilityConfig(lr=1e30, batches=2, batch_size=4))
    assert not math.isfinite(got.mean)
    with pytest.raises(InputError, match="the step made the model's outputs not finite numbers") as e:
        check_finite(got)
    assert e.value.fix == "pass a smaller --lr (the default is 0.01)"
    with torch.no_grad():
        next(model.parameters()).fill_(math.nan)
    broken = measure_susceptibility(model, torch.randn(8, 3, 8, 8), config=SusceptibilityConfig(batches=2, batch_size=4))
    with pytest.raises(InputError, match="before any step: its outputs on these images are not finite"):
        check_finite(broken)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_half_precision_model_takes_inputs_in_its_own_precision(dtype: torch.dtype) -> None:
    """A bfloat16 model is fed bfloat16 inputs by its training loop; measured as float32, it raised "Input type and
    bias type should be the same" on them. They are read as float32 too: the number its float32 inputs give."""
    torch.manual_seed(0)
    half, x = tiny_cnn().to(dtype), torch.randn(32, 3, 8, 8).to(dtype)
    config = SusceptibilityConfig(batches=2, batch_size=16)
    got = measure_susceptibility(half, x, config=config)
    assert got.r == measure_susceptibility(half, x.float(), config=config).r
    assert all(p.dtype == dtype for p in half.parameters())


def test_inputs_and_outputs_it_cannot_use_are_one_line_input_errors() -> None:
    """A list or an array of inputs, a num_classes beyond the model's logits, outputs that are no (batch, classes) logits
    and a model without weights raised AttributeError, IndexError ("Target 19 is out of bounds") or RuntimeError from
    deep inside PyTorch; each is an InputError a caller can catch, saying what to change."""
    model, x = tiny_cnn(), torch.randn(8, 3, 8, 8)
    config = SusceptibilityConfig(batches=1, batch_size=4)
    for inputs in (list(x), x.numpy()):
        with pytest.raises(InputError, match=r"inputs must be one tensor of N model inputs \(N, ...\), got (list|ndarray)"):
            measure_susceptibility(model, inputs, config=config)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="random labels are drawn over 20 classes, but the model outputs 3 logits"):
        measure_susceptibility(model, x, config=config, num_classes=20)
    with pytest.raises(InputError, match="num_classes must be 2 or more, got 0"):
        measure_susceptibility(model, x, config=config, num_classes=0)
    with pytest.raises(InputError, match=r"the model's logits have shape \(4, 2, 8, 8\), not \(batch, classes\)"):
        measure_susceptibility(nn.Conv2d(3, 2, 1), x, config=config)  # a segmentation head
    with pytest.raises(InputError, match="has no weights for a step to move"):
        measure_susceptibility(nn.Flatten(), x, config=config)
    assert measure_susceptibility(model, x, config=config, num_classes=2).num_classes == 2  # fewer classes than logits: as before


class FunctionalDropout(nn.Module):
    """tiny_cnn with a functional dropout before its head, F.dropout(x, p, training=self.training): no dropout module
    for the measurement to switch off."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_cnn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[-1](F.dropout(self.net[:-1](x), 0.5, training=self.training))


def test_a_random_forward_reads_the_same_whatever_the_global_seed() -> None:
    """A forward with random ops of its own drew them from the caller's global RNG: the same small model read r 0.024
    under torch.manual_seed(1) and -0.013 under seed 2, and a loop's epochs differed by the draw, not the model. The draws come from the config's seed now: the same config gives the same numbers for the same model
    and images, as it says, and the caller's RNG is left as it was."""
    torch.manual_seed(0)
    model, x = FunctionalDropout(), torch.randn(48, 3, 8, 8)
    config = SusceptibilityConfig(batches=3, batch_size=16)
    got = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        state = torch.get_rng_state()
        got.append(measure_susceptibility(model, x, config=config).r)
        assert torch.equal(torch.get_rng_state(), state)
    assert got[0] == got[1]


class Checkpointed(nn.Module):
    """tiny_cnn's layers with its middle checkpointed in training (torch.utils.checkpoint), as a loop short of memory has it."""

    def __init__(self, reentrant: bool) -> None:
        super().__init__()
        self.net, self.reentrant = tiny_cnn(), reentrant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.net[0](x)
        if self.training:
            x = torch.utils.checkpoint.checkpoint(self.net[1:3], x, use_reentrant=self.reentrant)
        else:
            x = self.net[1:3](x)
        return self.net[3:](x)


def test_reentrant_gradient_checkpointing_is_an_input_error_saying_so() -> None:
    """A model that checkpoints activations with use_reentrant=True cannot give torch.autograd.grad the gradient of
    the step: the measurement raised PyTorch's RuntimeError from the backward, an internal error in a training loop's
    tracker. It is an InputError naming the fix now, with the model left as it was; use_reentrant=False measures
    what the model without checkpointing measures."""
    torch.manual_seed(0)
    model, x = Checkpointed(reentrant=True), torch.randn(32, 3, 8, 8)
    config = SusceptibilityConfig(batches=2, batch_size=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(InputError, match=r"checkpoints activations with use_reentrant=True .*\(use use_reentrant=False"):
        measure_susceptibility(model, x, config=config)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.reentrant = False
    assert measure_susceptibility(model, x, config=config).r == measure_susceptibility(model.net, x, config=config).r


def test_a_device_this_machine_lacks_is_a_usage_error_naming_what_it_has() -> None:
    """device="cuda" on a machine without one raised PyTorch's "Found no NVIDIA driver on your system" from inside
    the measurement; it is the one-line UsageError the command line's --device gives, with the devices there are."""
    model, x = tiny_cnn(), torch.randn(8, 3, 8, 8)
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU: absent on every machine
    for device in (missing, torch.device(missing)):
        with pytest.raises(UsageError, match=rf"device {missing} is not available: this machine has cpu\b.*pass device='cpu'"):
            measure_susceptibility(model, x, device=device)
    with pytest.raises(UsageError, match="unknown device 'gpu'"):
        measure_susceptibility(model, x, device="gpu")


@pytest.mark.parametrize(
    "field, value", [("lr", "0.01"), ("lr", None), ("batches", "4"), ("batch_size", 3.5), ("seed", "1"), ("batches", True)]
)
def test_a_config_value_of_the_wrong_type_is_a_usage_error_naming_it(field: str, value: object) -> None:
    """lr="0.01" raised "'<' not supported between instances of 'int' and 'str'" and seed="1" torch's "manual_seed
    expected a long" from inside the measurement."""
    with pytest.raises(UsageError, match=rf"SusceptibilityConfig {field} takes a (whole )?number, got {re.escape(repr(value))}"):
        SusceptibilityConfig(**{field: value})  # type: ignore[arg-type]


DDP_LOOP = """
import datetime, os, sys, torch, torch.distributed as dist, torch.nn.functional as F
from suscli.measure.susceptibility import SusceptibilityConfig, measure_susceptibility
from tests.conftest import tiny_cnn

dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))  # first imports on a busy machine take a while
weights = []
for measure in (False, True):
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(tiny_cnn(3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(dist.get_rank())), torch.arange(32) % 3
    inputs = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    for i in range(0, 32, 8):
        if measure and dist.get_rank() == 0:
            r = measure_susceptibility(model, inputs, config=SusceptibilityConfig(batches=2, batch_size=8)).mean
        F.cross_entropy(model(x[i : i + 8]), y[i : i + 8]).backward()
        opt.step()
        opt.zero_grad()
    weights.append(model.module.state_dict())
if dist.get_rank() == 0:
    print("same weights" if all(torch.equal(v, weights[1][k]) for k, v in weights[0].items()) else "other weights", r)
dist.barrier()  # gloo aborts a process that tears its group down while the other still uses it
dist.destroy_process_group()
# and its threads can abort a finished process in the interpreter's teardown ("terminate called without an active
# exception", SIGABRT, 1 run in 8 on a loaded 2-core machine): leave as suscli's own ranks do (suscli.cli)
sys.stdout.flush()
os._exit(0)
"""


def test_a_ddp_model_measured_on_rank_0_alone(tmp_path: Path) -> None:
    """A loop that measures its DistributedDataParallel model on rank 0 only: the wrapper's forward syncs buffers with
    the other process, which was not measuring, so rank 0 waited for it until the process group timed out. Measured
    through the module it wraps, the run goes on, in the same weights."""
    from tests.test_distributed import torchrun

    (tmp_path / "loop.py").write_text(DDP_LOOP)
    run = torchrun(str(tmp_path / "loop.py"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "same weights" in run.stdout


# True of the hook, not of the measurement: model[0]'s input, the images, needs no gradient, so its grad_input is None;
# a training step's loss.backward() warns the same for this hook
@pytest.mark.filterwarnings("ignore:Full backward hook is firing when gradients are computed with respect to module outputs")
def test_the_models_hooks_run_on_the_measurements_passes() -> None:
    """docs/api.md: the model's forward hooks run on the measurement's forwards (two a batch, and one to count the
    classes), and its backward hooks, module and tensor ones, on the step's gradient (one a batch); the `.grad` a
    post-accumulate hook watches is never written, so that hook does not run."""
    model, x = tiny_cnn(), torch.randn(48, 3, 8, 8)
    calls = dict.fromkeys(("forward", "module backward", "tensor", "post-accumulate"), 0)

    def count(kind: str):
        return lambda *args: calls.__setitem__(kind, calls[kind] + 1)

    model.register_forward_hook(count("forward"))
    model[0].register_full_backward_hook(count("module backward"))
    model[0].weight.register_hook(count("tensor"))
    model[0].weight.register_post_accumulate_grad_hook(count("post-accumulate"))
    measure_susceptibility(model, x, config=SusceptibilityConfig(batches=3, batch_size=16))
    assert calls == {"forward": 7, "module backward": 3, "tensor": 3, "post-accumulate": 0}


def test_arguments_of_the_wrong_kind_are_suscli_errors_naming_the_argument() -> None:
    """Each raised from deep inside: a function or a path where the model goes ("'function' object has no attribute
    'named_parameters'"), num_classes="10" ("'<' not supported between instances of 'str' and 'int'") or 3.0 (torch's
    randint signature), a string where the optimizer goes, a transform returning a numpy array ("'str' object has no
    attribute 'type'"), and inputs of a shape the model does not take (its conv's "expected input[2, 1, 8, 8] to have
    3 channels"), a RuntimeError a caller could not tell from a failure of suscli's own."""
    model, x = tiny_cnn(), torch.randn(8, 3, 8, 8)
    config = SusceptibilityConfig(batches=1, batch_size=4)
    for wrong in (lambda b: b, "model.pt"):
        with pytest.raises(UsageError, match=r"model takes a torch.nn.Module, got (function|str)"):
            measure_susceptibility(wrong, x, config=config)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match=r"model takes a torch.nn.Module, got (function|str)"):
            SusceptibilityTracker(x, config=config).measure(wrong, 0)  # type: ignore[arg-type]
    for classes in ("10", 3.0, True):
        with pytest.raises(UsageError, match=r"num_classes takes a whole number, got"):
            measure_susceptibility(model, x, config=config, num_classes=classes)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"optimizer takes a torch.optim.Optimizer, got str"):
        measure_susceptibility(model, x, config=config, optimizer="sgd")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"the transform returned ndarray, not a tensor"):
        measure_susceptibility(model, x, config=config, transform=lambda b: b.numpy())  # type: ignore[arg-type,return-value]
    with pytest.raises(InputError, match=r"the model failed on inputs of shape \(N, 1, 8, 8\): .*3 channels"):
        measure_susceptibility(model, torch.randn(8, 1, 8, 8), config=config)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(InputError, match=r"the optimizer's \(LBFGS\) step failed on the random-label gradients: .*closure"):
        measure_susceptibility(model, x, config=config, optimizer=torch.optim.LBFGS(model.parameters()))
    with pytest.raises(InputError, match=r"the optimizer's \(SparseAdam\) step failed on the random-label gradients: .*dense gradients"):
        measure_susceptibility(model, x, config=config, optimizer=torch.optim.SparseAdam(list(model.parameters())))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
