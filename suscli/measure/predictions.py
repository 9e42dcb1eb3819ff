"""Predictions on the unlabeled images, and how far each model agrees with a pool's consensus on them.

A model that generalizes predicts on fresh images what the other good models predict; one that memorized its
noisy labels or underfits agrees less. That needs no labels at all, only the images susceptibility already uses,
so a pool's agreement with the consensus of its trustworthy models ranks models by clean accuracy without labels
(docs/validation.md measures how well; suscli.judge.rules uses it). It is not an estimate of clean accuracy itself:
the consensus shares the pool's mistakes, and agreement read 6-10 points above clean accuracy on human noise. Each model's top-k class probabilities
are kept in its result, compactly, so that a pool can be re-ranked from the results file without the models.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from suscli.errors import InputError
from suscli.results import Result
from suscli.measure.devices import cpu_batch
from suscli.measure.susceptibility import fixed_draws, logits_of, preserved_modes

TOP_K = 5  # classes kept per image: enough for a consensus over 10 classes, small for 1000 (ImageNet)
BATCH_SIZE = 256


@dataclass(frozen=True)
class Predictions:
    """The k most probable classes per image and their probabilities, row i = image i; for a training set also
    the label each image was given (what the pool's consensus may contradict: suscli.judge.noise)."""

    classes: np.ndarray  # int (N, k), most probable first
    probs: np.ndarray  # float (N, k)
    num_classes: int
    labels: np.ndarray | None = None  # int (N,): the given labels, for training images

    def top1(self) -> np.ndarray:
        return self.classes[:, 0]

    def with_labels(self, labels: np.ndarray) -> Predictions:
        return Predictions(self.classes, self.probs, self.num_classes, np.asarray(labels, dtype=np.int64))

    def encode(self) -> dict:
        """JSON-safe form for the results file: float16 probabilities and int16 classes (int32 past 32767
        classes), base64: about 26 KB per model for 1,000 images and k = 5."""
        dtype = "<i2" if self.num_classes <= 32767 else "<i4"
        out = {
            "k": int(self.classes.shape[1]),
            "n": int(self.classes.shape[0]),
            "num_classes": self.num_classes,
            "classes_dtype": dtype,
            "classes": _b64(self.classes.astype(dtype)),
            "probs": _b64(self.probs.astype("<f2")),
        }
        if self.labels is not None:
            out["labels"] = _b64(self.labels.astype(dtype))
        return out

    @classmethod
    def decode(cls, data: dict) -> Predictions:
        shape = (data["n"], data["k"])
        dtype = data.get("classes_dtype", "<i4")
        if dtype not in ("<i2", "<i4"):
            raise ValueError(f"unknown class dtype {dtype!r}")
        classes = np.frombuffer(base64.b64decode(data["classes"]), dtype=dtype).astype(np.int64).reshape(shape)
        probs = np.frombuffer(base64.b64decode(data["probs"]), dtype="<f2").astype(np.float32).reshape(shape)
        labels = None
        if "labels" in data:
            labels = np.frombuffer(base64.b64decode(data["labels"]), dtype=dtype).astype(np.int64)
            if labels.shape != (shape[0],):
                raise ValueError("labels do not match the predictions")
        num_classes = int(data["num_classes"])
        if classes.size and (classes.min() < 0 or classes.max() >= num_classes):
            raise ValueError("class index out of range")
        return cls(classes, probs, num_classes, labels)


def train_predictions_of(row: Result) -> Predictions | None:
    """The row's top classes on the training images with their given labels; None when it has none or they are
    damaged (a results file edited by hand or cut short)."""
    return _labelled(row, "train_predictions")


def val_predictions_of(row: Result) -> Predictions | None:
    """The row's top classes on the held-out images (--val-data) with their labels, as train_predictions_of: what
    the voters' consensus reads of labels that no model fitted (suscli.judge.noise.with_held_out)."""
    return _labelled(row, "val_predictions")


def _labelled(row: Result, key: str) -> Predictions | None:
    data = row.details.get(key) if isinstance(row.details, dict) else None
    try:
        pred = Predictions.decode(data) if isinstance(data, dict) else None
    except (ValueError, KeyError, TypeError):
        return None
    return pred if pred is not None and pred.labels is not None else None


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(a.tobytes()).decode()


def predict(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str | None = None,
    k: int = TOP_K,
) -> Predictions:
    """Eval-mode top-k softmax probabilities of `model` on `inputs`; the model's modes are restored."""
    target = torch.device(device) if device is not None else next(model.parameters()).device
    transform = transform or (lambda x: x)
    classes, probs = [], []
    batch_size, start = BATCH_SIZE if target.type == "cuda" else cpu_batch(BATCH_SIZE, inputs), 0
    with preserved_modes(model), fixed_draws(target):
        model.eval()
        with torch.inference_mode():
            while start < len(inputs):
                try:
                    logits = logits_of(model(transform(inputs[start : start + batch_size].to(target, non_blocking=True))))
                except torch.cuda.OutOfMemoryError:  # as for training accuracy: the predictions do not depend on it
                    if batch_size == 1:
                        raise InputError(
                            "predicting the unlabeled images ran out of GPU memory with one image per batch",
                            fix="free the GPU, or use --device cpu",
                        ) from None
                    batch_size //= 2
                    continue
                c, p = top_k(logits, k)
                classes.append(c)
                probs.append(p)
                start += batch_size
    num_classes = int(logits.shape[-1])
    return Predictions(torch.cat(classes).numpy(), torch.cat(probs).numpy(), num_classes)


def top_k(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(classes, softmax probabilities) of the k most probable classes per row, on the CPU."""
    p, c = logits.float().softmax(-1).topk(min(k, logits.shape[-1]), dim=-1)
    return c.cpu(), p.cpu()


def votes(pred: Predictions) -> np.ndarray:
    """One model's (images, classes) probabilities, zero outside its top k."""
    out = np.zeros((pred.classes.shape[0], pred.num_classes), dtype=np.float32)
    out[np.arange(len(out))[:, None], pred.classes] = pred.probs
    return out


def agreement_with_consensus(preds: Sequence[Predictions], voters: Sequence[bool]) -> list[float]:
    """Per model, the fraction of images whose top class is the voters' consensus (the class with the highest
    summed probability). A voter is left out of the consensus it is compared with, so that no model is
    rewarded for agreeing with itself. With no voters at all, every model votes. Memory: two (images, classes)
    arrays, whatever the pool's size."""
    if not preds:
        return []
    if len({(p.classes.shape[0], p.num_classes) for p in preds}) > 1:
        raise ValueError("agreement needs every model's predictions on the same images and classes")
    mask = np.asarray(voters, dtype=bool) if any(voters) else np.ones(len(preds), dtype=bool)
    nobody = np.zeros((preds[0].classes.shape[0], preds[0].num_classes), dtype=np.float32)
    total = sum((votes(p) for p, v in zip(preds, mask) if v), nobody)
    out = []
    for p, v in zip(preds, mask):
        others = total - votes(p) if v and mask.sum() > 1 else total
        out.append(float((p.top1() == others.argmax(-1)).mean()))
    return out


def difference_is_clear(a: float, b: float, n: int, z: float = 1.96) -> bool:
    """Whether agreement rates a > b on n images differ by more than z standard errors of a binomial difference
    (a conservative, unpaired bound): below it, the pool gives no confident choice between the two."""
    se = math.sqrt(max(a * (1 - a) + b * (1 - b), 1e-12) / max(n, 1))
    return a - b > z * se
