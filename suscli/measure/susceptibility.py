"""The measurement: how far one plain SGD step on uniformly random labels lowers the loss on them.

Post-hoc form of Forouzesh, Sedghi & Thiran (ICLR 2023), `compute_update_on_sout` in the official code
(github.com/mahf93/tracking-memorization): random labels drawn once; per batch, loss before, one step,
loss after on the same batch, r = before - after; the model's weights and buffers are restored afterwards.
Differences for saved checkpoints (docs/method.md): a fixed step size `lr` with plain SGD instead of the
training optimizer, and the mean of r over several batches instead of one batch per epoch. Inside a training
loop (suscli.training.tracker) the step can be the training optimizer's own, as the authors ran it.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import statistics
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from suscli.defaults import DEFAULT_BATCH_SIZE, DEFAULT_BATCHES, DEFAULT_LR
from suscli.errors import InputError, UsageError, require_number, require_type, summary_line
from suscli.load.state_dicts import wrapped_module
from suscli.measure.devices import resolve_device
from suscli.measure.steps import Step, optimizer_step, sgd_step, unwrapped_optimizer


Progress = Callable[[str, int, int], None]

# How a training loop's r is measured, in every record of suscli.training.tracker's log: raised when a release measures
# r of the same model on the same inputs otherwise (this module, the forward's checks, the tracker's decoding of an
# image folder), so that `suscli track --log` flags a run resumed across the change instead of averaging zeta over
# both. Not suscli.run.audit.READING: that one counts how checkpoints and images are read for score and rank, which
# a tracker given its loop's model and inputs does not do, and it was not raised when a bf16 Trainer's r read 16x too
# small (c010522). 1: the first release whose records carry it.
TRACKER_READING = 1


def plain(value: Any) -> Any:
    """A number as Python's own int or float (numpy's int64 and float32 included: json.dumps refuses them); anything
    else as it is."""
    if isinstance(value, bool) or type(value) in (int, float) or not isinstance(value, numbers.Real):
        return value
    return value.__int__() if isinstance(value, numbers.Integral) else float(value)


@dataclass(frozen=True)
class SusceptibilityConfig:
    """How the susceptibility is measured, the command line's --lr, --batches, --batch-size and --seed: the same
    config gives the same numbers for the same model and images."""

    lr: float = DEFAULT_LR  # size of the plain SGD step
    batches: int = DEFAULT_BATCHES  # random-label batches averaged
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = 0  # draws the random labels and the batches: same seed, same numbers for every model

    def __post_init__(self) -> None:
        """Values of the wrong type, as Python callers give them (lr="0.01" from a config file), failed deep inside the
        measurement ("'<' not supported between instances of 'int' and 'str'", torch's "manual_seed expected a long"):
        a UsageError naming the field now. The ranges are measure_susceptibility's to check."""
        for name, kind in (
            ("lr", numbers.Real),
            ("batches", numbers.Integral),
            ("batch_size", numbers.Integral),
            ("seed", numbers.Integral),
        ):
            value = getattr(self, name)
            if not isinstance(value, kind) or isinstance(value, bool):
                wanted = "a number" if kind is numbers.Real else "a whole number"
                raise UsageError(f"SusceptibilityConfig {name} takes {wanted}, got {value!r} ({type(value).__name__})")
            object.__setattr__(self, name, plain(value))  # numpy's int64 or float32: json.dumps, which writes every report, refuses them


@dataclass
class Susceptibility:
    mean: float  # mean of r over the batches: the score
    sem: float  # standard error of that mean (nan with one batch)
    r: list[float]  # loss_before - loss_after, per batch
    loss_before: list[float]
    loss_after: list[float]
    batch_size: int  # effective (the configured size, capped by the number of images)
    num_classes: int  # random labels are drawn over this many classes
    config: SusceptibilityConfig

    def as_dict(self) -> dict:
        return {**asdict(self), "config": asdict(self.config)}


def random_labels(n: int, num_classes: int, seed: int) -> torch.Tensor:
    """Uniform labels for n images, drawn once from `seed` (the same for every model compared)."""
    return torch.randint(num_classes, (n,), generator=torch.Generator().manual_seed(seed))


def batch_indices(n: int, batches: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """`batches` index sets of `batch_size` distinct images each, drawn from a generator separate from the labels'.
    Drawn as the loop reaches them: a list of all of them (`--batches 10**20`) ran out of memory before the first."""
    g = torch.Generator().manual_seed(seed + 1)
    for _ in range(batches):
        yield torch.randperm(n, generator=g)[:batch_size]


def logits_of(output: object) -> torch.Tensor:
    """Classifier logits from a model's output: a tensor, a tuple/list (first item), an object with .logits, or a
    dict with "logits" (a plain module written for the Hugging Face Trainer). A single logit z per image (a binary
    classifier trained with BCEWithLogitsLoss) is the two classes' logits (0, z), since sigmoid(z) = softmax(0, z)[1]:
    as one class, every random label was class 0, its cross-entropy 0 before and after the step, and r 0. So is a
    (batch,) output, the same logit squeezed as BCEWithLogitsLoss's targets are shaped: "logits have shape (32,)"."""
    logits = _output_tensor(output)
    if logits.ndim == 1:
        logits = logits.unsqueeze(1)
    if logits.ndim == 2 and logits.shape[1] == 1:
        return torch.cat([torch.zeros_like(logits), logits], dim=1)
    return logits


def _output_tensor(output: object) -> torch.Tensor:
    """The tensor of class scores a model's output holds, in whichever of the forms logits_of reads."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    logits = output.get("logits") if isinstance(output, dict) else getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    keys = f" with keys {', '.join(map(str, list(output)[:8]))} and none named 'logits'" if isinstance(output, dict) else ""
    raise InputError(f"the model returned {type(output).__name__}{keys}, not a tensor of class logits")


_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
# Stochastic depth, by class name: torchvision's StochasticDepth, timm's DropPath and DropBlock2d, and transformers'
# per-model copies (ConvNextDropPath, SwinDropPath, ...). In train mode they drop residual branches at random.
_DROPOUT_NAMES = {c.__name__ for c in _DROPOUT} | {"StochasticDepth", "DropBlock2d"}


def _is_dropout(m: nn.Module) -> bool:
    name = m.original_name if isinstance(m, torch.jit.ScriptModule) else type(m).__name__
    return isinstance(m, _DROPOUT) or name in _DROPOUT_NAMES or name.endswith("DropPath")


@contextlib.contextmanager
def reproducible_fp32() -> Iterator[None]:
    """float32 arithmetic and cuDNN's deterministic algorithms on CUDA for the block: no TF32 in convolutions (cuDNN's
    default) or matrix products (a user's `set_float32_matmul_precision("high")`), and no kernel that adds in an order
    of its own. Under TF32, two code paths of the same measurement on an H200 gave ResNet-50s reading about 0.25
    numbers 0.034 apart; with TF32 off but cuDNN free to choose, the same command run twice on an H100 read numbers
    up to 1.2e-5 apart (docs/performance.md). Both, so that the numbers match the CPU's and a rerun gives the same
    ones; the measurement is a few small batches, where full precision cost little. The user's settings are put back
    afterwards."""
    if not torch.cuda.is_available():
        yield
        return
    conv, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved_algorithms = conv.deterministic, conv.benchmark
    conv.deterministic, conv.benchmark = True, False
    new_flags = hasattr(conv, "conv") and hasattr(matmul, "fp32_precision")  # torch >= 2.9; the legacy flags then refuse mixed use
    saved = (conv.conv.fp32_precision, matmul.fp32_precision) if new_flags else (conv.allow_tf32, matmul.allow_tf32)
    if new_flags:
        conv.conv.fp32_precision = matmul.fp32_precision = "ieee"
    else:
        conv.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        conv.deterministic, conv.benchmark = saved_algorithms
        if new_flags:
            conv.conv.fp32_precision, matmul.fp32_precision = saved
        else:
            conv.allow_tf32, matmul.allow_tf32 = saved


def seeded(device: torch.device, seed: int) -> None:
    """The global RNG (the CPU's, and `device`'s where it is a GPU) seeded with the measurement's `seed`, inside the
    measurement's fork of it: a forward with random ops of its own (a functional dropout, which the tracker warns
    of) drew them where the loop's random state stood, and the same model read r 0.024 or -0.013 by the loop's seed."""
    torch.random.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


EVAL_SEED = 0  # the random ops of a forward in an eval pass (accuracy, predictions, the probes) draw from this seed


@contextlib.contextmanager
def fixed_draws(device: torch.device) -> Iterator[None]:
    """An eval pass whose forward draws random ops of its own (a functional dropout with its default training=True)
    from EVAL_SEED, in a fork of the global RNG: they drew where it stood, so a model's training accuracy and
    predictions changed with what ran before them (another model of the pool, a probe, the caller's loop), and a
    rerun could order a pool otherwise. The caller's RNG is left where it was."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        seeded(device, EVAL_SEED)
        yield


def train_without_dropout(model: nn.Module) -> None:
    """Train mode (BatchNorm on batch statistics) with every dropout and stochastic depth off: before and after the
    step must see the same network. A TorchScript submodule is a dropout by the class it was scripted from."""
    model.train()
    for m in model.modules():
        if _is_dropout(m):
            m.eval()


def measure_susceptibility(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    config: SusceptibilityConfig = SusceptibilityConfig(),
    num_classes: int | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str | None = None,
    progress: Progress | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    step: Step | None = None,
) -> Susceptibility:
    """Susceptibility of `model` on unlabeled `inputs` (N, ...), as defined in the module docstring.

    `transform` maps a batch of `inputs` (already on the model's device) to model inputs, e.g. uint8 pixels to
    normalized floats. The model is temporarily stepped in place and restored bit for bit, also on error; its
    train/eval flags are restored too. BatchNorm runs in train mode (batch statistics), dropout is off; float32,
    also when called inside `torch.autocast` and on a model trained in half precision (in_float32, with its
    optimizer's state); every weight steps, frozen (requires_grad=False) ones too; the global RNG is left as it was.
    With `optimizer` (the training optimizer of `model`), the step is a real `optimizer.step()` at its current
    learning rate, momentum and weight decay (`config.lr` is then unused; a trainer's wrapper is stepped through the
    optimizer it wraps), and the optimizer's state and the parameters' `.grad` are restored after every batch. `step`
    replaces the plain SGD update by another one (e.g. normalized_step), for experiments with the definition. Inputs
    or outputs it cannot use (not one tensor, logits that are not (batch, classes), `num_classes` beyond the logits)
    raise InputError.
    """
    if not isinstance(inputs, torch.Tensor):
        raise InputError(
            f"inputs must be one tensor of N model inputs (N, ...), got {type(inputs).__name__}",
            fix="torch.stack a list of them, torch.from_numpy an array",
        )
    require_type("config", config, SusceptibilityConfig)
    check_arguments(model, num_classes, optimizer)
    check_initialized(model)
    if num_classes is not None and num_classes < 2:  # random labels over one class are all one label: r would read 0
        raise InputError(f"num_classes must be 2 or more, got {num_classes}", fix="leave it out to take the model's own")
    fix = "pass device='cpu', or leave device out to measure where the model is"
    device = resolve_device(device, fix=fix) if device is not None else _device_of(model)
    n = len(inputs)
    if n == 0:
        raise InputError("no unlabeled images to measure susceptibility on")
    if config.batches < 1 or config.batch_size < 1 or not 0 < config.lr < math.inf:
        raise InputError(f"susceptibility needs batches >= 1, batch size >= 1 and a finite lr > 0, got {config}")
    model = unwrapped(model)
    check_batch_norm_modes(model)
    transform = transform or (lambda x: x)
    half = next((p.dtype for p in model.parameters() if p.dtype in (torch.float16, torch.bfloat16)), None)
    if half is not None:  # the model is measured as float32: so are the inputs its loop feeds it in its own precision
        transform = _floats_as_float32(transform)
    batch_size = min(config.batch_size, n)
    optimizer = unwrapped_optimizer(optimizer) if optimizer is not None else None
    params = [p for p in model.parameters() if p.requires_grad or p.is_floating_point()]
    if not params:
        raise InputError(f"the model ({model_name(model)}) has no weights for a step to move")
    if optimizer is not None:
        check_optimizes(optimizer, params, model)
    before: list[float] = []
    after: list[float] = []
    # outside any autocast the training loop opened: a bf16 loss would round the small step's drop away; and on a
    # fork of the global RNG, which a model's own random ops (a functional dropout) would otherwise move for the loop
    dev = torch.device(device)
    rng = torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else [])
    # gradients on, also where the loop calls it inside its own torch.no_grad() or inference_mode() block
    with (
        in_float32(model, optimizer) if half is not None else contextlib.nullcontext(),
        torch.inference_mode(False),
        torch.enable_grad(),
        preserved_modes(model),
        own_modules(model),
        reproducible_fp32(),
        torch.autocast(dev.type, enabled=False) if dev.type in ("cpu", "cuda") else contextlib.nullcontext(),
        all_trainable(params),
        rng,
    ):
        seeded(dev, config.seed)  # a forward's own random ops draw the same for every call, not where the loop's RNG stood
        # inside in_float32: the optimizer's state is saved as its step sees it
        step = step or (optimizer_step(optimizer) if optimizer is not None else sgd_step(config.lr))
        saved_params = [p.detach().clone() for p in params]
        buffers = kept_buffers(model)  # in_float32's, where it converted them
        try:
            # a copy: a slice of inputs made in inference_mode (where a loop evaluates) is an inference tensor, which
            # autograd refuses to save for the gradient ("Inference tensors cannot be saved for backward")
            probe = transform(inputs[:2].clone().to(device))
            if not isinstance(probe, torch.Tensor):
                raise InputError(
                    f"the transform returned {type(probe).__name__}, not a tensor: the model takes its batches as they come from it",
                    fix="make it return a torch tensor (torch.from_numpy for an array)",
                )
            with shape_errors(probe), dtype_errors(model, probe):
                classes = check_output_graph(model, probe)
            num_classes = classes if num_classes is None else num_classes
            labels = random_labels(n, num_classes, config.seed)
            train_without_dropout(model)
            for b, idx in enumerate(batch_indices(n, config.batches, batch_size, config.seed)):
                x = transform(inputs[idx].to(device, non_blocking=True))
                y = labels[idx].to(device)
                try:
                    with dtype_errors(model, x):
                        logits = _class_logits(model(x), num_classes)
                    if b == 0:  # once: a softmax in the forward ends every batch alike
                        check_not_probabilities(logits)
                    loss = F.cross_entropy(logits, y)
                except (ValueError, torch.jit.Error) as e:  # a TorchScript model's error holds its traceback too
                    if _BATCH_NORM_NEEDS_TWO not in str(e):
                        raise
                    raise _too_few_for_batch_norm(batch_size, config.batch_size, n) from None
                with reentrant_checkpoint_errors():
                    grads = torch.autograd.grad(loss, params, allow_unused=True)
                with torch.no_grad():
                    step(params, grads)
                    loss_after = F.cross_entropy(logits_of(model(x)), y)
                    for t, s in zip(params, saved_params):
                        t.copy_(s)  # back to the checkpoint: every batch steps from the same weights
                    put_back_buffers(buffers)
                before.append(loss.item())
                after.append(loss_after.item())
                if progress:
                    progress("susceptibility", b + 1, config.batches)
        finally:
            with torch.no_grad():
                for t, s in zip(params, saved_params):
                    t.copy_(s)
                put_back_buffers(buffers)
    return summarize(before, after, batch_size, num_classes, config, n)


KeptBuffers = list[tuple[nn.Module, str, torch.Tensor, torch.Tensor]]  # module, name, the buffer object, a copy of its value


def kept_buffers(model: nn.Module) -> KeptBuffers:
    """Every buffer of `model` where its module holds it, with a copy of its value, for put_back_buffers."""
    return [(m, name, b, b.detach().clone()) for m in model.modules() for name, b in m._buffers.items() if b is not None]


def put_back_buffers(kept: KeptBuffers) -> None:
    """The buffers as kept_buffers kept them: the same objects in their modules, with their values. A forward that
    updates a buffer by assignment (`self.center = 0.9 * self.center + ...`, as DINO keeps its center) replaces the
    object, which a copy into the old one left in the loop's model with the measurement's values."""
    with torch.no_grad():
        for m, name, b, value in kept:
            m._buffers[name] = b
            b.copy_(value)


def check_finite(sus: Susceptibility) -> None:
    """A loss that is not a finite number is no measurement: an InputError saying whether the model's outputs were
    already not finite, or the step broke it (a step size far too large), rather than a row with no number. Called
    where a row is built; a training loop's tracker keeps the nan, so as not to stop the training."""
    for a, b in zip(sus.loss_before, sus.loss_after):
        if not math.isfinite(a):
            raise InputError(
                f"the model's loss on random labels is {a} before any step: its outputs on these images are not finite numbers",
                fix="check the checkpoint's weights, and the preprocessing (--preset, --mean, --std, --image-size)",
            )
        if not math.isfinite(b):
            raise InputError(
                f"the loss on random labels is {a:.4g} before the step and {b} after it: the step made the model's outputs "
                "not finite numbers (a step size far too large for it)",
                fix=f"pass a smaller --lr (the default is {DEFAULT_LR:g})",
            )


def _class_logits(output: object, num_classes: int) -> torch.Tensor:
    """The logits of a batch, checked to be (batch, classes) with a logit for every class a random label is drawn
    from: otherwise the loss fails deep inside PyTorch ("Target 12 is out of bounds")."""
    logits = logits_of(output)
    if logits.ndim != 2:
        raise InputError(f"the model's logits have shape {tuple(logits.shape)}, not (batch, classes)")
    if logits.shape[1] < num_classes:
        raise InputError(
            f"random labels are drawn over {num_classes} classes, but the model outputs {logits.shape[1]} logits",
            fix="pass num_classes no larger than the model's, or leave it out",
        )
    return logits


def check_logits_item(model: nn.Module, x: torch.Tensor, classes: int) -> None:
    """An InputError where the model returns several tensors, the first (what logits_of reads) of another width than
    the `classes` its head or file names and a later one of that width: a forward returning (features, logits) was
    measured on its features (random labels over 16 feature channels read 0.002, "low susceptibility"). One eval
    forward on `x`, which the caller runs only where the widths already disagree."""
    with preserved_modes(model), torch.no_grad():
        model.eval()
        output = model(x)
    items = list(output.values()) if isinstance(output, dict) else output if isinstance(output, (tuple, list)) else []
    widths = [t.shape[-1] if isinstance(t, torch.Tensor) and t.ndim == 2 else None for t in items]
    if len(widths) > 1 and widths[0] != classes and classes in widths[1:]:
        raise InputError(
            f"the model returns {len(widths)} outputs, of widths {', '.join(map(str, widths))}: suscli reads the first as the "
            f"class logits, but the model has {classes} classes, the width of output {widths.index(classes, 1) + 1}",
            fix="make its forward return the logits first (or alone), for instance in the function --arch names",
        )


def check_not_probabilities(logits: torch.Tensor) -> None:
    """An InputError where a model's outputs are probabilities (a softmax at the end of its forward): each row of
    (..., classes) non-negative and summing to 1. Their cross-entropy is no loss the model was trained on, and one
    step barely moves it: a CNN whose logits read 0.10 read 0.001 with its softmax applied, "low susceptibility".
    Log-probabilities (log_softmax) are logits to the cross-entropy, and pass."""
    with torch.no_grad():
        p = logits.detach().float()
        if p.shape[-1] < 2 or p.numel() == 0 or not (p.min() >= 0 and p.max() <= 1):
            return
        if torch.allclose(p.sum(-1), torch.ones(()), atol=1e-3):
            raise InputError(
                "the model's outputs are probabilities (each row is non-negative and sums to 1: a softmax in its forward), "
                "not logits: their cross-entropy is not the loss susceptibility measures, and would read near 0",
                fix="make the model return its logits (or log_softmax of them): suscli applies the softmax itself",
            )


# autograd's nodes of the reshapes a forward may apply after its last operation (squeeze, view, flatten, reshape)
_RESHAPES = ("SqueezeBackward", "UnsqueezeBackward", "ViewBackward", "ReshapeAliasBackward")


def check_output_graph(model: nn.Module, x: torch.Tensor) -> int:
    """The classes the model's logits count (a single logit is two, logits_of), from one eval forward on `x` with
    gradients; an InputError where its autograd graph shows outputs the step cannot use: none at
    all (a forward under torch.no_grad or inference_mode, or detaching its output), which failed as "element 0 of
    tensors does not require grad" blamed on the image size, and read r 0.0 when measured together (torch.func's
    gradient of a cut graph is 0); or a sigmoid ending it (nn.Sigmoid or torch.sigmoid, as a binary classifier
    trained with BCELoss has it), through the reshapes after it: its probabilities p were read as the logits (0, p),
    whose cross-entropy one step barely moves, and no row sums to 1 for check_not_probabilities to see."""
    floats = [p for p in model.parameters() if p.is_floating_point()]
    rng = torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else [])  # a functional dropout draws
    with preserved_modes(model), torch.enable_grad(), all_trainable(floats), rng:
        model.eval()
        raw = model(x)
    output = _output_tensor(raw)
    if floats and not output.requires_grad:
        raise InputError(
            "the model's outputs carry no gradient (its forward runs under torch.no_grad or inference_mode, or detaches "
            "them): the measurement takes a gradient step on them",
            fix="measure the module without that in its forward (for instance the network it wraps)",
        )
    fn = output.grad_fn
    while fn is not None and type(fn).__name__.startswith(_RESHAPES):
        fn = fn.next_functions[0][0]
    if fn is not None and type(fn).__name__.startswith("SigmoidBackward"):
        raise InputError(
            "the model's outputs are probabilities (a sigmoid ends its forward, as in a classifier trained with BCELoss), "
            "not logits: their cross-entropy is not the loss susceptibility measures, and would read near 0",
            fix="make the model return the logits before its sigmoid (BCEWithLogitsLoss trains the same model): suscli applies it itself",
        )
    return logits_of(raw).shape[-1]


# What BatchNorm raises in train mode on a batch of one image whose feature map has one value per channel (after
# global pooling or in a BatchNorm1d): eager PyTorch as a ValueError, a TorchScript model as a torch.jit.Error.
_BATCH_NORM_NEEDS_TWO = "Expected more than 1 value per channel when training"


def _too_few_for_batch_norm(batch_size: int, configured: int, n: int) -> InputError:
    """The one-line error for a BatchNorm network stepped on batches of one image, with the way out: a larger batch
    size, or more images where the batch size was capped by their number."""
    fix = (
        "pass --batch-size 2 or more, the same for every model compared"
        if configured < 2
        else f"{n} image is measured: give --data 2 or more images, and --samples 2 or more if set"
    )
    return InputError(f"a training-mode step of a BatchNorm network needs at least 2 images per batch, got {batch_size}", fix=fix)


def summarize(
    before: list[float], after: list[float], batch_size: int, num_classes: int, config: SusceptibilityConfig, images: int
) -> Susceptibility:
    """The result from the per-batch losses: r = before - after per batch, its mean and standard error. Where every
    batch holds all the `images`, with the same random labels, the batches repeat one measurement, and their spread
    (nil) says nothing of its error: nan, as with one batch."""
    r = [a - b for a, b in zip(before, after)]
    return Susceptibility(
        mean=statistics.fmean(r),
        sem=statistics.stdev(r) / math.sqrt(len(r)) if len(r) > 1 and batch_size < images and all(map(math.isfinite, r)) else math.nan,
        r=r,
        loss_before=before,
        loss_after=after,
        batch_size=batch_size,
        num_classes=num_classes,
        config=config,
    )


def check_initialized(model: nn.Module) -> None:
    """An InputError where a lazy module (nn.LazyLinear, nn.LazyConv2d) has not had its first forward: its parameters
    have no shape yet. Measured, the tracker's float32 pass initialized them and the restore put the empty ones back,
    and the model raised "mat2 must be a matrix, got 1-D tensor" from then on, in the loop's training too."""
    lazy = [name for name, p in model.named_parameters() if nn.parameter.is_lazy(p)]
    if lazy:
        raise InputError(
            f"the model's parameters {', '.join(lazy[:3])} are not initialized yet (a lazy module before its first forward)",
            fix="run one forward on a batch of inputs before measuring",
        )


def check_arguments(model: object, num_classes: object, optimizer: object) -> None:
    """A UsageError where an argument is of the wrong kind: a function or a checkpoint's path where the model goes,
    num_classes as a string or a float, a string where the optimizer goes (a trainer's wrapper of one passes: it is
    stepped through the optimizer it wraps). Each failed deep inside, as an AttributeError or TypeError."""
    if not isinstance(model, nn.Module):
        raise UsageError(
            f"model takes a torch.nn.Module, got {type(model).__name__}",
            fix="pass the network itself; for a checkpoint file, use suscli.score",
        )
    require_number("num_classes", num_classes, whole=True)
    if optimizer is not None and not isinstance(unwrapped_optimizer(optimizer), torch.optim.Optimizer):
        raise UsageError(
            f"optimizer takes a torch.optim.Optimizer, got {type(optimizer).__name__}",
            fix="pass the optimizer that trains the model, or leave it out for the plain SGD step",
        )


class NotTaken(InputError):
    """The model's first forward failed on the inputs; the error it raised is the __cause__ (a checkpoint's row names
    it with the image size, suscli.run.model)."""


# What a forward raises on inputs it does not take: shapes (RuntimeError, and a TorchScript model's torch.jit.Error),
# or its own checks of the input size (timm's and torchvision's ViTs with torch._assert, transformers' ValueError, an
# IndexError from a fixed position read on smaller images).
FORWARD_ERRORS = (RuntimeError, torch.jit.Error, AssertionError, ValueError, IndexError)


@contextlib.contextmanager
def shape_errors(x: torch.Tensor) -> Iterator[None]:
    """A NotTaken where the model's first forward fails on the inputs (another channel count or size than it takes):
    PyTorch's RuntimeError ("expected input[2, 1, 8, 8] to have 3 channels") could not be told from a failure of
    suscli's own. Chained to it, for a forward of the caller's own code to debug."""
    try:
        yield
    except torch.cuda.OutOfMemoryError:
        raise
    except FORWARD_ERRORS as e:
        raise NotTaken(
            f"the model failed on inputs of shape (N, {', '.join(map(str, x.shape[1:]))}): {summary_line(e) or type(e).__name__}",
            fix="give inputs of the shape the model takes, or a transform that makes them so",
        ) from e


@contextlib.contextmanager
def dtype_errors(model: nn.Module, x: torch.Tensor) -> Iterator[None]:
    """A forward that fails on inputs (after `transform`) of another type than the model's weights is an InputError
    saying so: uint8 pixels or a float64 array from numpy failed deep in the first layer ("expected scalar type Byte
    but found Float"). Inputs a model converts itself, or token ids it embeds, never fail, so nothing is refused up front."""
    weight = next((p for p in model.parameters() if p.is_floating_point()), None)
    try:
        yield
    except RuntimeError as e:
        if weight is None or x.dtype == weight.dtype:
            raise
        fix = "pass transform=lambda b: b.float() / 255 for uint8 pixels" if x.dtype == torch.uint8 else f"pass inputs.to({weight.dtype})"
        raise InputError(
            f"the model failed on inputs of type {x.dtype}, its weights being {weight.dtype}: {summary_line(e)}",
            fix=fix + ", or a transform that makes them so",
        ) from None


@contextlib.contextmanager
def reentrant_checkpoint_errors() -> Iterator[None]:
    """An InputError where the model checkpoints activations with use_reentrant=True (torch.utils.checkpoint), whose
    backward refuses torch.autograd.grad, the measurement's gradient: PyTorch's RuntimeError ended a training loop's
    tracker as an internal error. Non-reentrant checkpointing (transformers' and timm's default) is measured."""
    try:
        yield
    except RuntimeError as e:
        if "compatible with .grad()" not in str(e):  # torch 2.4's "not compatible", later "incompatible"
            raise
        raise InputError(
            "the model checkpoints activations with use_reentrant=True (torch.utils.checkpoint), whose backward cannot "
            "give the measurement's gradient (torch.autograd.grad)",
            fix="use use_reentrant=False, or measure with gradient checkpointing off",
        ) from None


def check_batch_norm_modes(model: nn.Module) -> None:
    """An InputError where a TorchScript model's batch norms were fixed in one mode when it was traced
    (torch.jit.trace records the branch `self.training` took, as a constant): the step cannot put them in train mode,
    so it ran on the running statistics, and a traced BatchNorm CNN read 0.012 where the same weights eager or
    scripted read 0.0027. A scripted model's batch norms read `self.training`, and pass."""
    fixed = [
        name
        for name, m in model.named_modules()
        if isinstance(m, torch.jit.ScriptModule)
        and "BatchNorm" in m.original_name
        and "batch_norm" in m.code
        and "self.training" not in m.code
    ]
    if fixed:
        raise InputError(
            f"the model is a traced TorchScript archive whose batch norms ({', '.join(fixed[:3])}) were fixed in the mode they "
            "were traced in: the measurement's step needs them in train mode (batch statistics), which a traced graph ignores",
            # Not torch.jit.script, which torch deprecates: the weights are what stays readable.
            fix="measure its weights instead: its state dict with --arch, or a file suscli.save wrote",
        )


def unwrapped(model: nn.Module) -> nn.Module:
    """The module a wrapper holds, with the same parameters: torch.compile's (no recompilation), and DataParallel's
    or DistributedDataParallel's, whose forward syncs buffers with the other processes: measured on rank 0 alone,
    the wrapper waited for them forever. A forward that takes its input by keyword only is called by that keyword."""
    model = wrapped_module(model)
    keyword = input_keyword(model)
    return KeywordInput(model, keyword) if keyword else model


class KeywordInput(nn.Module):
    """`model` called as model(**{keyword: x}): the measurement calls model(x), which a keyword-only forward
    (`def forward(self, *, pixel_values)`) refused with "takes 1 positional argument but 2 were given"."""

    def __init__(self, model: nn.Module, keyword: str):
        super().__init__()
        self.model, self.keyword = model, keyword

    def forward(self, x: torch.Tensor) -> object:
        return self.model(**{self.keyword: x})


def model_name(model: nn.Module) -> str:
    """The class of the user's model, as an error names it, also where a KeywordInput calls it: the error named
    KeywordInput, a class the user never wrote."""
    return type(model.model if isinstance(model, KeywordInput) else model).__name__


def input_keyword(model: nn.Module) -> str | None:
    """The keyword a forward without positional parameters takes its input by (its one required keyword-only
    parameter, else its one keyword-only parameter), None where it takes a positional one; an InputError where
    no keyword names it alone, or where it requires more than its input."""
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):  # a forward without a Python signature (TorchScript): called as it is
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    if not params or any(p.kind in positional for p in params):
        check_one_input(model, params)
        return None
    keywords = [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    names = [p.name for p in keywords if p.default is inspect.Parameter.empty] or [p.name for p in keywords]
    if len(names) == 1:
        return names[0]
    raise InputError(
        f"the model's ({type(model).__name__}) forward takes no positional input, and no single keyword names it "
        f"({', '.join(names) or '**' + params[-1].name}): the measurement passes it one batch of inputs",
        fix="wrap the model in a module whose forward(x) calls it with x under the right keyword",
    )


def check_one_input(model: nn.Module, params: list[inspect.Parameter]) -> None:
    """An InputError where a forward that takes its input positionally requires more (`forward(self, x, meta)`, or a
    keyword-only `mask`): called with one batch of inputs, it raised "TypeError: forward() missing 1 required
    positional argument", an internal error that ended `rank` for the whole pool."""
    rest = params if params[0].kind is inspect.Parameter.VAR_POSITIONAL else params[1:]
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    more = [p.name for p in rest if p.default is inspect.Parameter.empty and p.kind not in variadic]
    if more:
        raise InputError(
            f"the model's ({type(model).__name__}) forward requires {', '.join(more)} beside its input: the measurement "
            "passes it one batch of inputs",
            fix="wrap the model in a module whose forward(x) calls it with x and values for the others",
        )


def check_optimizes(optimizer: torch.optim.Optimizer, params: list[nn.Parameter], model: nn.Module) -> None:
    """An InputError where `optimizer` holds none of `params`: its step moved nothing and r read 0.0 for every epoch,
    as for an EMA copy (`AveragedModel`, timm's `ModelEmaV3`) measured with the training model's optimizer."""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if not any(id(p) in held for p in params):
        raise InputError(
            f"the optimizer ({type(optimizer).__name__}) holds none of the model's ({model_name(model)}) parameters: "
            "its step would move nothing and r read 0 (an EMA or averaged copy, measured with the training model's optimizer?)",
            fix="measure that model without optimizer= (the plain SGD step), or pass the optimizer that trains it",
        )


@contextlib.contextmanager
def in_float32(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> Iterator[None]:
    """A model trained in half precision (bfloat16 or float16 weights) as float32 for the block, then exactly as it
    was: float32 images do not enter it, and in half precision the loss one small step moves rounds away. Its
    Parameter and buffer objects stay the same (an optimizer holds them); only their data is converted and put back.
    `optimizer`'s half-precision state (momentum, Adam's moments) goes to float32 with the weights, and its own tensors
    are put back afterwards; state it keeps in float32 stays as it is. Taken in half precision, the step of SGD at lr
    0.001 read r 0 in 3 of 4 batches in float16 and in all 4 in bfloat16 on a small CNN, where its float32 copy read
    4e-05 to 2e-04. `model.float()` converts
    the `.grad` a loop is accumulating too (the same tensor, its data float32): it is put back in its own precision,
    else the next micro-batches accumulate in float32 and the run no longer continues as it would have."""
    params = list(model.parameters())
    data = [p.data for p in params]
    grads = [(p.grad, p.grad.data) for p in params if p.grad is not None]
    buffers = [(m, name, b) for m in model.modules() for name, b in m._buffers.items() if b is not None]
    half = (torch.float16, torch.bfloat16)
    held = optimizer.state.values() if optimizer is not None else []
    state = [(s, k, v) for s in held for k, v in s.items() if isinstance(v, torch.Tensor) and v.dtype in half]
    model.float()
    try:
        for s, k, v in state:
            s[k] = v.float()
        yield
    finally:
        for p, d in zip(params, data):
            p.data = d
        for g, d in grads:
            g.data = d
        for m, name, b in buffers:
            m._buffers[name] = b
        for s, k, v in state:
            s[k] = v


def _floats_as_float32(transform: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """`transform`, then float32 where it gives floats (a half-precision model's bfloat16 inputs); other dtypes (token
    ids, pixels a model normalizes itself) as they are."""

    def as_float32(batch: torch.Tensor) -> torch.Tensor:
        out = transform(batch)
        return out.float() if out.is_floating_point() else out

    return as_float32


@contextlib.contextmanager
def all_trainable(params: list[nn.Parameter]) -> Iterator[None]:
    """Every weight steps, frozen ones too, as on a checkpoint `suscli score` loads: a training loop's model with
    frozen layers reads what its saved checkpoint reads. Their requires_grad flags are put back afterwards."""
    frozen = [p for p in params if not p.requires_grad]
    try:
        for p in frozen:
            p.requires_grad_(True)
        yield
    finally:
        for p in frozen:
            p.requires_grad_(False)


@contextlib.contextmanager
def own_modules(model: nn.Module) -> Iterator[None]:
    """Every forward the measurement takes runs the model's modules as a checkpoint scored outside the training run
    has them: eager where compiled in place (eager), SyncBatchNorm on the batch alone (local_batch_norm), without the
    autocast a mixed-precision Accelerator put into the forward (own_forward), parametrized weights not cached
    (uncached_parametrizations)."""
    with eager(model), local_batch_norm(model), own_forward(model), uncached_parametrizations():
        yield


@contextlib.contextmanager
def uncached_parametrizations() -> Iterator[None]:
    """Parametrized weights (weight_norm, spectral_norm, orthogonal) computed afresh on every forward, also inside a
    loop's `torch.nn.utils.parametrize.cached()`: there each is computed once and kept, so a step would never reach
    the cached weight, and the second gradient went through the first one's freed graph. The loop's cache is back
    as it was afterwards (the measurement puts the weights back too)."""
    from torch.nn.utils import parametrize

    if not getattr(parametrize, "_cache_enabled", 0):
        yield
        return
    enabled, cache = parametrize._cache_enabled, parametrize._cache
    parametrize._cache_enabled, parametrize._cache = 0, {}
    try:
        yield
    finally:
        parametrize._cache_enabled, parametrize._cache = enabled, cache


@contextlib.contextmanager
def own_forward(model: nn.Module) -> Iterator[None]:
    """Modules an Accelerator prepared under bf16 or fp16 (a Trainer's `bf16=True`) run their original forward, which
    it keeps as `_original_forward`: its own one enters autocast inside, past the measurement's, and the bf16 loss
    read a Trainer run's r 16 times too small. The loop's forward is put back afterwards."""
    patched = [(m, m.__dict__["forward"]) for m in model.modules() if {"forward", "_original_forward"} <= m.__dict__.keys()]
    for m, _ in patched:
        m.forward = m._original_forward
    try:
        yield
    finally:
        for m, forward in patched:
            m.forward = forward


@contextlib.contextmanager
def local_batch_norm(model: nn.Module) -> Iterator[None]:
    """SyncBatchNorm layers normalize by the measured batch's own statistics, as BatchNorm does (and as they do outside a
    distributed run, where a checkpoint is scored): in one, their train-mode forward gathers every process's
    statistics, so a loop that measures on rank 0 alone would wait for the others forever (on the CPU it raises)."""
    synced = [m for m in model.modules() if isinstance(m, nn.SyncBatchNorm)]
    for m in synced:
        m.forward = types.MethodType(nn.modules.batchnorm._BatchNorm.forward, m)
    try:
        yield
    finally:
        for m in synced:
            delattr(m, "forward")


@contextlib.contextmanager
def eager(model: nn.Module) -> Iterator[None]:
    """Modules compiled in place (`module.compile()`) run eagerly while measured, as torch.compile(model)'s wrapper is
    unwrapped (unwrapped): compiling the measurement's train-mode forward and its gradients took 18.7 s for a small
    BatchNorm CNN's first measurement (0.07 s eager), and the loop's compiled code is left as it was."""
    compiled = [(m, m._compiled_call_impl) for m in model.modules() if getattr(m, "_compiled_call_impl", None) is not None]
    for m, _ in compiled:
        m._compiled_call_impl = None
    try:
        yield
    finally:
        for m, impl in compiled:
            m._compiled_call_impl = impl


@contextlib.contextmanager
def preserved_modes(model: nn.Module) -> Iterator[None]:
    """Restore every submodule's train/eval flag afterwards: model.train(flag) would flatten a mixed setting."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _device_of(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def running_mean(epochs: Sequence[int | None], r: Sequence[float | None], *, count_epoch_0: bool = False) -> list[float | None]:
    """zeta at each epoch: the mean of r over the measured epochs up to it (epochs in increasing order).

    Epoch 0 is the initialization, whose r the paper drops, unless `count_epoch_0`; an epoch without r (it
    failed) gets no zeta and is left out of the later means. None where there is nothing to average yet.
    """
    zeta: list[float | None] = []
    total, n = 0.0, 0
    for epoch, value in zip(epochs, r, strict=True):
        if value is None or (epoch == 0 and not count_epoch_0):
            zeta.append(None)
            continue
        total, n = total + value, n + 1
        zeta.append(total / n)
    return zeta
