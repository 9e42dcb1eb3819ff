"""Scoring one loaded checkpoint: choose its preprocessing, measure susceptibility and training accuracy, make its
row. suscli.run.score, .rank and .track build on it; `Settings` decides the numbers of every audit."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from suscli.measure.devices import resolve_device
from suscli.measure.accuracy import Accuracy, encode_hits, gap, held_out, training_accuracy
from suscli.measure.predictions import Predictions, predict
from suscli.measure.randomness import Checked, random_forward
from suscli.load.checkpoints import Checkpoint
from suscli.load.safe_read import checkpoint_stem, sidecar_path
from suscli.errors import InputError, SuscliError, plural, summary_line
from suscli.files import printable
from suscli.data.embedded import ImageRef
from suscli.data.images import SQUARE_ONLY, ImageSource, Preprocess, check_channels, named_set
from suscli.results import Result
from suscli.defaults import DEFAULT_BATCH_SIZE
from suscli.measure.susceptibility import (
    FORWARD_ERRORS,
    NotTaken,
    Susceptibility,
    SusceptibilityConfig,
    check_finite,
    check_logits_item,
    measure_susceptibility,
    preserved_modes,
)
from suscli.measure.untrained import untrained_susceptibility
from suscli.judge.verdict import at_cuts_step, wants_untrained
from suscli.run.label_ids import (
    commonest_label,
    counted_val_ids,
    held_out_errors,
    label_ids,
    labels_in_range,
    model_labels,
    sorted_val_note,
    training_errors,
    val_ids,
)
from suscli.run.placement import on_device
from suscli.run.probes import crop_noted, normalization_noted, own_size_pixels, size_noted, unrecorded_crop, unrecorded_size, whole_pixels
from suscli.run.settings import Settings, preprocessing

Progress = Callable[[str, int, int], None]
_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def input_channels(model: nn.Module, image_size: int) -> int:
    """Channels the model's first layer expects: a conv's in_channels, or an MLP's in_features / pixels. The first
    layer is the first one a forward reaches (first_layer), else the first one declared: declared order alone took a
    classifier declared before the convolutions (`self.fc` first in __init__) for the first layer, and fed a
    grayscale network RGB images ("expected input[2, 3, 32, 32] to have 1 channels")."""
    layers = [m for m in model.modules() if isinstance(m, _LAYERS)]
    first = first_layer(model, layers, image_size) or next(iter(layers), None)
    if isinstance(first, nn.Linear):
        c, rest = divmod(first.in_features, image_size * image_size)
        return c if rest == 0 and c in (1, 3) else 3
    return first.in_channels if first is not None else 3


def flat_input(model: nn.Module, image_size: int) -> tuple[int, int] | None:
    """The channels and side of the square images a fully connected first layer takes where that is not `image_size`:
    an MLP trained on 28x28 grayscale images (784 inputs) fed 32x32 ones was told "check --arch, --image-size and
    --preset", where its first layer says the size. None unless the first layer a forward reaches is a Linear fed the
    whole image flattened (not a transformer's patches), or where its inputs fit no square."""
    layers = [m for m in model.modules() if isinstance(m, _LAYERS)]
    reached = _reach(model, layers, image_size)
    if reached is None or not isinstance(reached.layer, nn.Linear) or reached.width != 3 * image_size**2:
        return None
    for c in (1, 3):
        side = math.isqrt(reached.layer.in_features // c)
        if c * side * side == reached.layer.in_features and side != image_size:
            return c, side
    return None


class _Reached(Exception):
    """Stops first_layer's forward at the first layer it reaches, with the width (last dimension) of that layer's input."""

    def __init__(self, layer: nn.Module, width: int):
        super().__init__()
        self.layer, self.width = layer, width


def first_layer(model: nn.Module, layers: list[nn.Module], image_size: int) -> nn.Module | None:
    """The first of `layers` that an eval forward of one blank RGB image reaches, stopped before that layer runs (so
    before its channel count can refuse the image); None where the forward fails before reaching one."""
    reached = _reach(model, layers, image_size)
    return None if reached is None else reached.layer


def _reach(model: nn.Module, layers: list[nn.Module], image_size: int) -> _Reached | None:
    """first_layer's forward, with the width of the input the layer it reached was given."""

    def reached(layer: nn.Module, args: tuple) -> None:
        raise _Reached(layer, args[0].shape[-1] if args and isinstance(args[0], torch.Tensor) and args[0].ndim else 0)

    weight = next((p for p in model.parameters() if p.is_floating_point()), None)
    if weight is None or not layers:
        return None
    hooks = [m.register_forward_pre_hook(reached) for m in layers]
    try:
        with preserved_modes(model), torch.no_grad(), torch.random.fork_rng(devices=[]):
            model.eval()
            model(torch.zeros(1, 3, image_size, image_size, dtype=weight.dtype, device=weight.device))
    except _Reached as e:
        return e
    except Exception:  # a forward that fails before any layer: the declared order decides
        return None
    finally:
        for hook in hooks:
            hook.remove()
    return None


def _takes(model: nn.Module) -> Callable[[int], int]:
    """The channels `model` takes fed images of a side (input_channels), asked by preprocessing only where no size
    is known: its error offers the presets to a model they fit."""
    return lambda side: input_channels(model, side)


def score_checkpoint(
    checkpoint: Checkpoint,
    data: ImageSource,
    train: ImageSource | None = None,
    *,
    val: ImageSource | None = None,
    settings: Settings = Settings(),
    device: torch.device | None = None,
    progress: Progress | None = None,
    name: str | None = None,
    predictions: bool = True,
    checked: Checked | None = None,
) -> Result:
    """Susceptibility and training accuracy of a loaded checkpoint, and its accuracy on the held-out images `val`
    (--val-data) when given. Input problems raise SuscliError. `predictions`: also its top classes on the unlabeled
    images (details["predictions"]), what a pool's decisions read (suscli.judge.rules); one checkpoint judged alone
    reads none of them, and they cost an eval pass over every unlabeled image (suscli.run.score). `checked`: the
    networks a pool's earlier models showed random or not (suscli.measure.randomness), not checked again."""
    start = time.perf_counter()
    device = device or resolve_device()
    images = [s for s in (data, train, val) if s is not None]
    prep, notes = preprocessing(settings, checkpoint.meta, images, configured_size(checkpoint.model), _takes(checkpoint.model))
    notes += source_notes(data, train) + (val.notes if val is not None else [])
    val_map = val_ids(checkpoint, val, train)
    ids, mapping = label_ids(checkpoint, train)
    notes += mapping + sorted_val_note(checkpoint, val, train)
    model, transform = on_device(checkpoint.model, prep.normalizer(), device)
    channels = input_channels(model, prep.side)
    try:
        check_channels(channels)
    except InputError as e:  # which model: in a pool's row, or a script's loop over checkpoints, the path is the clue
        raise InputError(f"{checkpoint.path}: {e.message}", fix=e.fix) from None
    with named_set("unlabeled set", data):
        pixels, _, unreadable = data.decoded(prep.sizing, channels, device, progress)
    bad = None
    try:
        labels_in_range(checkpoint, model, transform(pixels[:2].to(device)), train, ids, val, val_map)
        try:
            sus = measure_susceptibility(
                model, pixels, config=settings.susceptibility, transform=transform, device=device, progress=progress
            )
        except torch.cuda.OutOfMemoryError:  # the batch size is part of the measurement: never shrunk behind the user's back
            raise InputError(
                f"{checkpoint.path}: out of GPU memory measuring susceptibility with batches of "
                f"{min(settings.susceptibility.batch_size, len(pixels))} images",
                fix="pass a smaller --batch-size, the same for every model compared",
            ) from None
        except NotTaken:  # named below with the images' size, as any forward failing on them
            raise
        except InputError as e:  # a model whose outputs are no class logits, a BatchNorm step on one image: which model
            raise InputError(f"{checkpoint.path}: {e.message}", fix=e.fix) from None
        check_finite(sus)
        checked_logits(checkpoint, model, sus, pixels, transform, device)
        val_map = counted_val_ids(val_map, checkpoint, val, train, sus.num_classes)
        notes = recounted(notes, mapping, checkpoint, train, sus.num_classes)
        random = random_forward(model, pixels, transform=transform, device=device, most=sus.batch_size, seen=checked)
        notes += [random] if random else []
        preds = predict(model, pixels, transform=transform, device=device) if predictions else None
        reference = untrained_reference(model, sus, pixels, settings=settings, inputs=(prep, channels), transform=transform, device=device)
        acc = None
        if train is not None:
            with named_set("training set", train):
                train_pixels, labels, bad = train.decoded(prep.sizing, channels, device, progress)
            labels = model_labels(labels, ids)
            with training_errors(train):
                acc = training_accuracy(
                    model, train_pixels, labels, population=train.population, transform=transform, device=device, progress=progress
                )
        val_acc, val_bad, commonest = None, None, None
        if val is not None:
            with named_set("held-out set", val):
                val_pixels, val_labels, val_bad = val.decoded(prep.sizing, channels, device, progress)
            commonest = commonest_label(val_labels, val)
            val_labels = model_labels(val_labels, val_map)
            with held_out_errors(val):
                val_acc = training_accuracy(
                    model,
                    val_pixels,
                    val_labels,
                    transform=transform,
                    device=device,
                    progress=progress,
                    what="held-out accuracy",
                )
        labelled = (train_pixels, labels, "training", acc) if train is not None else None
        if labelled is None and val is not None:
            labelled = (val_pixels, val_labels, "held-out", val_acc)
        notes = normalization_noted(notes, checkpoint, model, prep, labelled, device, settings.susceptibility.seed)
        source = train if train is not None else val  # the labelled images, as `labelled` holds them decoded
        if (fed := unrecorded_size(settings, checkpoint.meta)) is not None and labelled is not None:
            own = own_size_pixels(prep, source, len(labelled[0]), channels, device, settings.susceptibility.seed)
            notes = size_noted(notes, model, transform, prep, labelled, own, fed, device)
        if (by := unrecorded_crop(settings, checkpoint.meta, notes)) is not None and labelled is not None:
            whole = whole_pixels(prep, source, len(labelled[0]), channels, device, settings.susceptibility.seed)
            notes = crop_noted(notes, model, transform, prep, labelled, whole, by, sidecar_path(checkpoint.path).name, device)
    # Shape errors from a model that does not fit these images, or device errors. Models check their input size too:
    # timm's and torchvision's ViTs with torch._assert (AssertionError), transformers' with ValueError; one that
    # indexes a fixed position (x[:, :, 39]) raises IndexError on smaller images.
    except (*FORWARD_ERRORS, NotTaken) as e:
        cause = e.__cause__ if isinstance(e, NotTaken) and e.__cause__ is not None else e  # the measurement's first forward
        first = summary_line(cause) or type(cause).__name__  # a TorchScript model's message carries its interpreter's traceback
        named, shape = configured_size(checkpoint.model), needed_shape(checkpoint)
        if shape is not None:
            fix = f"{shape}, and {SQUARE_ONLY}: it cannot be measured"
        elif named not in (None, prep.image_size):
            fix = f"pass --image-size {named}, the size its config names"
        elif (flat := flat_input(model, prep.side)) is not None:
            fix = f"its first layer takes {flat[0] * flat[1] ** 2} inputs, {flat[0]} {plural(flat[0], 'channel')} of {flat[1]}x{flat[1]}: pass --image-size {flat[1]}"
        else:
            fix = f"check --arch, --image-size and --preset; {SQUARE_ONLY}"
        raise InputError(
            f"{checkpoint.path}: the model failed on {prep.image_size}x{prep.image_size} images with {channels} {plural(channels, 'channel')}: {first}",
            fix=fix,
        ) from None
    return scored_row(
        checkpoint,
        sus,
        acc,
        preds,
        settings=settings,
        prep=prep,
        channels=channels,
        notes=notes,
        images=len(pixels),
        unreadable=unreadable,
        train_unreadable=bad,
        seconds=time.perf_counter() - start,
        name=name,
        val=val_acc,
        val_unreadable=val_bad,
        untrained=reference,
        commonest=commonest,
    )


def checked_logits(
    checkpoint: Checkpoint,
    model: nn.Module,
    sus: Susceptibility,
    pixels: torch.Tensor,
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
) -> None:
    """Where the classes measured are not those the checkpoint names, an InputError if the model's output holds the
    logits in another place than the first (check_logits_item); a file's count and a whole model's outputs may
    differ otherwise, and the row then says so (scored_row). `model` is the checkpoint's, as on_device placed it."""
    said = checkpoint.num_classes
    if said is not None and said not in (sus.num_classes, 1):
        try:
            check_logits_item(model, transform(pixels[:2].to(device)), said)
        except InputError as e:
            raise InputError(f"{checkpoint.path}: {e.message}", fix=e.fix) from None


def recounted(notes: list[str], mapping: list[str], checkpoint: Checkpoint, train: ImageSource | None, classes: int) -> list[str]:
    """`notes` with the training labels' mapping notes (`mapping`, label_ids's) read again at the classes the model
    outputs, where the checkpoint or --num-classes said another count: a whole model given --num-classes 5 that outputs
    3 was noted "the model has 5 classes but the training set's 3 class folders are numbered 0-2 among themselves"
    beside "the model outputs 3 classes"."""
    if classes == checkpoint.num_classes or not mapping:
        return notes
    at = notes.index(mapping[0])
    return [*notes[:at], *label_ids(checkpoint, train, classes)[1], *notes[at + len(mapping) :]]


def untrained_reference(
    model: nn.Module,
    sus: Susceptibility,
    pixels: torch.Tensor,
    *,
    settings: Settings,
    inputs: tuple,
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
) -> dict | None:
    """What `model`'s network reads untrained, where the verdict reads it (suscli.judge.verdict.off_scale); None elsewhere."""
    if not wants_untrained(sus.mean, sus.config.lr, sus.batch_size, sus.num_classes):
        return None
    return untrained_susceptibility(model, pixels, config=settings.susceptibility, transform=transform, device=device, inputs=inputs)


def source_notes(data: ImageSource, train: ImageSource | None) -> list[str]:
    """What listing the images left out (links skipped, dataset rows without a label): a note on every row, once where
    --data and --train-data name the same set."""
    return list(dict.fromkeys(data.notes + (train.notes if train is not None else [])))


def configured_size(model: nn.Module) -> int | None:
    """The input size a model's own config names (a Hugging Face ViT's `config.image_size`), for the fix of a model
    that fails on the images' size: not used to resize, since a CNN's config may name a size it was never trained at."""
    for m in model.modules():
        size = getattr(getattr(m, "config", None), "image_size", None)
        if isinstance(size, (list, tuple)) and len(size) == 2 and size[0] == size[1]:
            size = size[0]
        if isinstance(size, int) and not isinstance(size, bool) and size > 0:
            return size
    return None


def needed_shape(checkpoint: Checkpoint) -> str | None:
    """Who names an input shape that is not square (height, width), and the shape: the checkpoint's tool (a Hugging
    Face processor's `size`, timm's `input_size`: `input_shape`, suscli.load.sources) or the model's own config (a
    Hugging Face ViT's `config.image_size`, a timm ViT's patch embedding). A model that needs it cannot be measured,
    as suscli feeds square images only, and --image-size, one side, cannot help."""
    if shape := _oblong(checkpoint.meta.get("input_shape")):
        return f"the checkpoint records {shape[0]}x{shape[1]} inputs (height x width)"
    for m in checkpoint.model.modules():
        for size in (getattr(getattr(m, "config", None), "image_size", None), getattr(getattr(m, "patch_embed", None), "img_size", None)):
            if shape := _oblong(size):
                return f"its config names {shape[0]}x{shape[1]} inputs (height x width)"
    return None


def _oblong(size: object) -> tuple[int, int] | None:
    """`size` where it is a (height, width) pair of whole numbers above 0 that differ."""
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        return (size[0], size[1]) if size[0] != size[1] else None
    return None


TRAIN_SKIPPED = re.compile(r"\d+ unreadable training image(?:s|\(s\))? skipped, first: .*", re.DOTALL)  # and an older row's "(s)"


def train_skipped_note(count: int, first: ImageRef) -> str:
    """A row's note on the training images it skipped as unreadable (TRAIN_SKIPPED finds it again: a growing sample
    recounts it at each stage, suscli.run.audit)."""
    return f"{count} unreadable training {plural(count, 'image')} skipped, first: {printable(first)}"


def scored_row(
    checkpoint: Checkpoint,
    sus: Susceptibility,
    acc: Accuracy | None,
    preds: Predictions | None,
    *,
    settings: Settings,
    prep: Preprocess,
    channels: int,
    notes: list[str],
    images: int,
    unreadable: list[tuple[ImageRef, str]],
    train_unreadable: list[tuple[ImageRef, str]] | None,
    seconds: float,
    name: str | None = None,
    val: Accuracy | None = None,
    val_unreadable: list[tuple[ImageRef, str]] | None = None,
    untrained: dict | None = None,
    commonest: dict | None = None,
) -> Result:
    """The row of a measured model, with its notes: one function for models measured alone or together (`untrained`:
    what its network reads untrained, where it was measured; `preds`: its predictions on the unlabeled images, None
    where they were not made, and the row then holds no "predictions" key; `commonest`: the held-out set's commonest
    label and its share, label_ids.commonest_label)."""
    notes = list(notes)
    if val_unreadable:
        notes.append(
            f"{len(val_unreadable)} unreadable held-out {plural(len(val_unreadable), 'image')} skipped, first: {printable(val_unreadable[0][0])}"
        )
    heldout = held_out(val) if val is not None else None
    between = gap((acc.value, acc.low, acc.high), heldout) if acc is not None and heldout is not None else None
    if unreadable:
        notes.append(f"{len(unreadable)} unreadable {plural(len(unreadable), 'image')} skipped, first: {printable(unreadable[0][0])}")
    if train_unreadable:
        notes.append(train_skipped_note(len(train_unreadable), train_unreadable[0][0]))
    if acc is not None and acc.halvings:
        notes.append(
            f"training-accuracy batch halved {acc.halvings} {plural(acc.halvings, 'time')} to {acc.batch_size} after CUDA ran out of memory"
        )
    if sus.batch_size < settings.susceptibility.batch_size:
        notes.append(_capped(sus.batch_size, settings.susceptibility))
    notes += _class_count_notes(checkpoint.num_classes, sus.num_classes)
    return Result(
        name=name or checkpoint_stem(checkpoint.path),
        path=str(checkpoint.path),
        arch=checkpoint.arch,
        epoch=checkpoint.meta.get("epoch"),
        susceptibility=sus.mean,
        susceptibility_sem=sus.sem,
        train_acc=acc.value if acc else None,
        train_acc_low=acc.low if acc else None,
        train_acc_high=acc.high if acc else None,
        train_n=acc.total if acc else None,
        val_acc=heldout[0] if heldout else None,
        val_acc_low=heldout[1] if heldout else None,
        val_acc_high=heldout[2] if heldout else None,
        val_n=val.total if val else None,
        gap=between[0] if between else None,
        gap_low=between[1] if between else None,
        gap_high=between[2] if between else None,
        sha256=checkpoint.sha256,
        weights_sha256=checkpoint.weights_sha256,
        seconds=round(seconds, 3),
        notes=checkpoint.notes + notes,
        details={
            "r": sus.r,
            "loss_before": sus.loss_before,
            "loss_after": sus.loss_after,
            "batch_size": sus.batch_size,
            "lr": sus.config.lr,  # with batch_size: whether the verdict's fixed cuts apply (suscli.judge.verdict)
            "num_classes": sus.num_classes,
            **({"untrained": untrained} if untrained is not None else {}),  # the fixed cuts' domain (suscli.judge.verdict)
            "images": images,
            "unreadable_images": len(unreadable),
            "preprocess": asdict(prep),
            "channels": channels,
            "arch_source": checkpoint.arch_source,
            # a rerun measures the model again once one of these files changed (suscli.run.audit.cached_row)
            **({"arch_sources": checkpoint.sources} if checkpoint.sources else {}),
            **({"classes": checkpoint.meta["classes"]} if checkpoint.meta.get("classes") else {}),  # a Hugging Face config's id2label
            # how its tool numbered class folders (suscli.data.labels.folder_ids): the class names of a report (suscli.run.inputs)
            **({"class_order": checkpoint.meta.get("class_order")} if acc is not None else {}),
            "train_acc": acc.as_dict() if acc else None,
            # top-k on the unlabeled images: the agreement rule (suscli.judge.rules); `score` makes them only when asked
            **({"predictions": preds.encode()} if preds is not None else {}),
            # top-k on the training images with their given labels: what the pool's consensus contradicts (suscli.judge.noise)
            "train_predictions": acc.predictions.encode() if acc and acc.predictions is not None else None,
            "train_hits": encode_hits(acc.hits) if acc and acc.hits is not None else None,  # per image: predicted as labelled
            # per held-out image: predicted as labelled (--val-data), what the paired comparisons of suscli.judge.rules read
            # the counts with the row's interval: every held-out image was measured, yet they are a sample (held_out)
            **(
                {
                    "val_acc": {**val.as_dict(), "low": heldout[1], "high": heldout[2]},
                    "val_hits": encode_hits(val.hits) if val.hits is not None else None,
                    # top-k with the held-out labels: what the voters' consensus reads of labels no model fitted
                    "val_predictions": val.predictions.encode() if val.predictions is not None else None,
                    # what answering the commonest held-out label on every image scores: a pick must clearly beat it
                    **({"val_majority": commonest} if commonest is not None else {}),
                }
                if val and heldout
                else {}
            ),
        },
    )


def _capped(batch_size: int, asked: SusceptibilityConfig) -> str:
    """The note on a batch capped by the number of unlabeled images: where it moves the default step, which the
    verdict's fixed cuts were measured at, the row loses them, and the note says why rather than leave a bare "-"."""
    note = f"batch size capped at {batch_size}, the number of unlabeled images"
    if at_cuts_step(asked.lr, asked.batch_size):
        note += f": the verdict's fixed cuts, measured at batch size {DEFAULT_BATCH_SIZE}, do not apply (measure {DEFAULT_BATCH_SIZE} unlabeled images or more)"
    return note


def _class_count_notes(said: int | None, measured: int) -> list[str]:
    """What the row says of the classes the random labels were drawn over, where they are not those the checkpoint
    or --num-classes said: a single logit read as a binary classifier's two (logits_of), or a whole model's outputs,
    which rule."""
    if said == 1 and measured == 2:
        return [
            "the model outputs one logit per image (a binary classifier, as BCEWithLogitsLoss trains one): read as the "
            "logits (0, z) of classes 0 and 1, since sigmoid(z) = softmax(0, z)[1]"
        ]
    if said is not None and said != measured:
        return [
            f"the model outputs {measured} classes, where --num-classes or its file said {said}: random labels were drawn over its {measured}"
        ]
    return []


def failed(path: str | Path, error: SuscliError, name: str | None = None) -> Result:
    """The row of a model that could not be scored: it stays in every report, with its reason."""
    return Result(name=name or checkpoint_stem(path), path=str(path), status="error", error=error.line())
