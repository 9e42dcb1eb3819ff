"""Training accuracy: how well the model fits the (possibly noisy) labels it was trained with.

The same forward pass keeps each image's top classes: a pool's consensus on the training images says which
labels it contradicts (suscli.judge.noise), without a second pass over the training set.
"""

from __future__ import annotations

import base64
import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import nn

from suscli.measure.predictions import Predictions, top_k
from suscli.errors import InputError, plural, shown
from suscli.measure.devices import cpu_batch
from suscli.measure.susceptibility import fixed_draws, logits_of, preserved_modes

Progress = Callable[[str, int, int], None]

# Images per forward pass. Larger on CUDA, where big batches keep the GPU busy; on the CPU, fewer for images larger
# than 32x32 (suscli.measure.devices.cpu_batch), and at 32x32 the size (and so exactly the numbers) it always had.
CPU_BATCH_SIZE = 512
CUDA_BATCH_SIZE = 2048
TRAIN_TOP_K = 3  # classes kept per training image: the consensus label and its vote share need no more


@dataclass
class Accuracy:
    correct: int
    total: int
    population: int  # size of the labelled set the images were drawn from
    low: float  # 95% Wilson interval; equal to the value when every image was used
    high: float
    batch_size: int  # images per forward pass at the end: smaller than asked after CUDA out-of-memory retries
    halvings: int = 0  # times the batch was halved after CUDA ran out of memory
    predictions: Predictions | None = field(default=None, repr=False, compare=False)  # top classes, given label per image
    hits: np.ndarray | None = field(default=None, repr=False, compare=False)  # per image: predicted as labelled (suscli.measure.sampling)

    @property
    def value(self) -> float:
        return self.correct / self.total

    @property
    def sampled(self) -> bool:
        return self.total < self.population

    def as_dict(self) -> dict:
        """The counts and interval (predictions and hits are stored apart: scoring.scored_row, suscli.measure.sampling)."""
        plain = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("predictions", "hits")}
        return {**plain, "value": self.value, "sampled": self.sampled}


def wilson_interval(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion: well behaved near 0 and 1, unlike the normal one."""
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    # at 0 or `total` correct the bound is exactly 0 or 1, which rounding would otherwise leave just inside
    return 0.0 if correct == 0 else max(0.0, centre - half), 1.0 if correct == total else min(1.0, centre + half)


def held_out(acc: Accuracy) -> tuple[float, float, float]:
    """Accuracy on held-out images and its 95% Wilson interval, always: unlike the training set, which is the whole
    population the training accuracy is about, the held-out images are a sample of the images the model will see."""
    return (acc.value, *wilson_interval(acc.correct, acc.total))


def gap(train: tuple[float, float, float], val: tuple[float, float, float]) -> tuple[float, float, float]:
    """Training accuracy minus held-out accuracy, each given as (value, low, high), with its 95% interval by
    Newcombe's hybrid score method (Newcombe 1998, method 10) from the two Wilson intervals: the two sets are different
    images, so independent samples. A training accuracy on every training image has no interval (low = high), and the
    gap's interval is then the held-out one's alone."""
    (p1, l1, u1), (p2, l2, u2) = train, val
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def training_accuracy(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    population: int | None = None,
    batch_size: int | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str | None = None,
    progress: Progress | None = None,
    what: str = "training accuracy",
) -> Accuracy:
    """Accuracy of `model` (eval mode, no gradients) on `inputs` against `labels`.

    `what` names the pass in the progress display and in errors: "held-out accuracy" for the --val-data pass.

    `population` is the size of the set `inputs` were sampled from; when it is larger than len(inputs), the
    result is an estimate and carries its binomial interval. On CUDA the forward passes run under bf16 autocast
    (an argmax barely notices it), and a batch that runs out of GPU memory is halved and retried, as timm's
    validate.py does: the count does not depend on the batch size.
    """
    if len(inputs) != len(labels) or len(inputs) == 0:
        raise InputError(f"{what} needs as many labels as images, got {len(labels)} labels for {len(inputs)} images")
    target = torch.device(device) if device is not None else next(model.parameters()).device
    transform = transform or (lambda x: x)
    cuda = target.type == "cuda"
    batch_size = min(batch_size or (CUDA_BATCH_SIZE if cuda else cpu_batch(CPU_BATCH_SIZE, inputs)), len(inputs))
    top_label = int(labels.max())
    correct = start = halvings = 0
    kept: list[tuple[torch.Tensor, torch.Tensor]] = []
    hits: list[torch.Tensor] = []
    with preserved_modes(model), fixed_draws(target):
        model.eval()
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext():
            while start < len(inputs):
                try:
                    logits = _logits(model, inputs[start : start + batch_size], transform, target, top_label if start == 0 else None)
                except torch.cuda.OutOfMemoryError:
                    if batch_size == 1:
                        raise InputError(
                            f"{what} ran out of GPU memory with one image per batch", fix="free the GPU, or use --device cpu"
                        ) from None
                    batch_size, halvings = batch_size // 2, halvings + 1
                    continue
                hit = logits.argmax(-1) == labels[start : start + batch_size].to(target)
                correct += int(hit.sum())
                hits.append(hit.cpu())
                kept.append(top_k(logits, TRAIN_TOP_K))
                start += batch_size
                if progress:
                    progress(what, min(start, len(inputs)), len(inputs))
    predictions = gathered(kept, int(logits.shape[-1]), labels)
    return from_counts(correct, len(inputs), population, batch_size, halvings, predictions, torch.cat(hits).numpy())


def gathered(batches: list[tuple[torch.Tensor, torch.Tensor]], num_classes: int, labels: torch.Tensor) -> Predictions:
    """One Predictions from the (classes, probabilities) of consecutive batches, with the images' given labels."""
    return Predictions(
        torch.cat([c for c, _ in batches]).numpy(),
        torch.cat([p for _, p in batches]).numpy(),
        num_classes,
        labels.cpu().numpy().astype("int64"),
    )


def from_counts(
    correct: int,
    total: int,
    population: int | None,
    batch_size: int,
    halvings: int = 0,
    predictions: Predictions | None = None,
    hits: np.ndarray | None = None,
) -> Accuracy:
    """The Accuracy of `correct` out of `total` images sampled from `population` (an interval when sampled)."""
    population = max(population or total, total)
    low, high = wilson_interval(correct, total) if population > total else (correct / total, correct / total)
    return Accuracy(
        correct=correct,
        total=total,
        population=population,
        low=low,
        high=high,
        batch_size=batch_size,
        halvings=halvings,
        predictions=predictions,
        hits=hits,
    )


def encode_hits(hits: np.ndarray) -> dict:
    """Per-image hits for the results file: one bit per image, base64."""
    return {"n": int(len(hits)), "bits": base64.b64encode(np.packbits(hits.astype(bool)).tobytes()).decode("ascii")}


def decode_hits(data: dict) -> np.ndarray:
    bits = np.frombuffer(base64.b64decode(data["bits"]), dtype=np.uint8)
    return np.unpackbits(bits, count=int(data["n"])).astype(bool)


def _logits(
    model: nn.Module,
    inputs: torch.Tensor,
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    top_label: int | None,
) -> torch.Tensor:
    """The model's logits on one batch; with `top_label`, first check that the model has that many classes."""
    logits = logits_of(model(transform(inputs.to(device, non_blocking=True))))
    if top_label is not None:
        check_label_range(top_label, logits.shape[-1])
    return logits


def check_label_range(top_label: int, classes: int, beyond: Sequence[str] = (), empty: Sequence[str] = ()) -> None:
    """An InputError where labels go beyond a model's class ids 0 to `classes` - 1: from its logits in the pass, or
    from a forward on two images before anything is measured (suscli.run.label_ids.labels_in_range). `beyond`: the class
    names (a label file's, or class folders) that the set numbers past the model's classes. Labels given by name
    hold no ids, and a misspelt or stray class (zebra among CIFAR-10's) read as ids that go up to the class count,
    with a fix about ids, and did not say which name it was. `empty`: the class folders without images numbered
    before them, which keep their ids: a stray empty folder pushes the model's own last class past its classes, and
    the error named that class alone, with a fix about its images and its name."""
    if top_label >= classes and beyond:
        after = (
            f", after {len(empty)} {plural(len(empty), 'class folder')} without images ({shown(empty, 3)}), "
            f"which {plural(len(empty), 'keeps its class id', 'keep their class ids')}"
            if empty
            else ""
        )
        fix = (
            f"remove the {plural(len(empty), 'class folder without images that is', 'class folders without images that are')} no class of the model, or "
            if empty
            else ""
        )
        raise InputError(
            f"the training labels go up to {top_label} but the model has {classes} classes: the set's class names give "
            + (f"{beyond[0]} id {classes}" if len(beyond) == 1 else f"{shown(beyond, 3)} ids {classes} and above")
            + after,
            fix=f"{fix}check that --train-data is the set this model was trained on; remove the images of classes it was not "
            "trained on, or correct a misspelt class name",
        )
    if top_label >= classes:
        raise InputError(
            f"the training labels go up to {top_label} but the model has {classes} classes",
            fix=f"check that --train-data is the set this model was trained on, labelled with class ids 0 to {classes - 1}; "
            "class folders are numbered in sorted name order, and a label file's ids are read as written",
        )


def mcnemar_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for paired hits: `b` images only the first model gets right, `c` only the
    second. Under "equally accurate" each discordant image goes either way with probability 1/2, so the smaller count
    is Binomial(b + c, 1/2); the p-value doubles its tail (capped at 1). Summed in log space: exact for any n."""
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    return min(1.0, 2 * binomial_mass(range(k + 1), n, 0.5))


def binomial_mass(counts: range, n: int, p: float) -> float:
    """P(X in `counts`) for X ~ Binomial(n, p), 0 < p < 1, summed in log space: exact for any n (the paired test's
    tail here, suscli.judge.noise.clearly_above's)."""
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) + (n - i) * math.log1p(-p) for i in counts]
    top = max(logs)
    return math.exp(top) * sum(math.exp(x - top) for x in logs)


PAIRED_ALPHA = 0.05  # the paired test's level wherever held-out hits compare two models (rank, track)


def paired_p(first: np.ndarray, second: np.ndarray) -> float:
    """mcnemar_p of per-image hits of two models on the same held-out images."""
    return mcnemar_p(int((first & ~second).sum()), int((second & ~first).sum()))


def paired_separates(first: np.ndarray, second: np.ndarray, alpha: float = PAIRED_ALPHA) -> bool:
    """Whether per-image hits of two models on the same held-out images tell their accuracies apart (mcnemar_p < alpha)."""
    return paired_p(first, second) < alpha
