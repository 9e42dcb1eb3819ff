"""Models whose outputs are not the plain (batch, classes) logits the measurement was built on: what suscli reads
from them, and what it refuses rather than print a number that is not susceptibility."""

from __future__ import annotations

import copy
import re
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import suscli
from suscli.errors import InputError
from suscli.measure.batched import measure_many
from suscli.measure.susceptibility import SusceptibilityConfig, measure_susceptibility
from tests.conftest import invoke, one_error_line, tiny_cnn, write_images

ARCH = "tests.conftest:tiny_cnn"
CONFIG = SusceptibilityConfig(batches=2, batch_size=8)


def softmax_cnn(num_classes: int = 3) -> nn.Module:
    """tiny_cnn with a softmax at the end of its forward: probabilities, not logits."""
    return nn.Sequential(tiny_cnn(num_classes), nn.Softmax(dim=1))


class TwoLogits(nn.Module):
    """A single-logit model's output z as the logits (0, z): the binary classifier BCEWithLogitsLoss trains."""

    def __init__(self, single: nn.Module) -> None:
        super().__init__()
        self.single = single

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.single(x)
        return torch.cat([torch.zeros_like(z), z], dim=1)


def test_a_single_logit_is_a_binary_classifier_not_one_class() -> None:
    """One logit per image read as one class drew every random label as class 0: the cross-entropy was 0 before and
    after the step, r 0.0, and the verdict "low susceptibility" whatever the model. It is measured as the binary
    classifier it is, with BCEWithLogitsLoss's loss on random 0/1 labels."""
    single, x = tiny_cnn(num_classes=1), torch.randn(24, 3, 8, 8)
    got = measure_susceptibility(single, x, config=CONFIG)
    want = measure_susceptibility(TwoLogits(single), x, config=CONFIG)
    assert got.num_classes == 2 and got.r == want.r and got.mean > 0
    with pytest.raises(InputError, match="num_classes must be 2 or more, got 1"):
        measure_susceptibility(single, x, config=CONFIG, num_classes=1)


def scored_on_two_classes(ckpt: Path) -> dict:
    """`score`'s JSON row of a binary classifier, on 16 unlabeled images and two class folders of 6 beside it."""
    write_images(ckpt.parent / "unlabeled", 16)
    for c in range(2):
        write_images(ckpt.parent / "train" / f"class_{c}", 6, seed=10 + c)
    args = ("-d", ckpt.parent / "unlabeled", "--train-data", ckpt.parent / "train", "-f", "json", "--batch-size", "8")
    res = invoke("score", ckpt, *args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)["results"][0]


def test_score_measures_a_single_logit_model_on_two_class_folders(tmp_path: Path) -> None:
    """With two class folders it was "the training labels go up to 1 but the model has 1 classes" [3]."""
    row = scored_on_two_classes(suscli.save(tiny_cnn(num_classes=1), tmp_path / "binary.safetensors", arch=ARCH, image_size=8))
    assert row["susceptibility"] > 0 and row["details"]["num_classes"] == 2 and row["train_n"] == 12
    assert any("one logit per image (a binary classifier" in n for n in row["notes"]), row["notes"]
    assert not any("where --num-classes or its file said" in n for n in row["notes"]), row["notes"]


class Squeezed(nn.Module):
    """A single-logit model's output squeezed to (batch,), as a binary classifier's forward often returns it for
    BCEWithLogitsLoss's (batch,) targets."""

    def __init__(self, single: nn.Module | None = None) -> None:
        super().__init__()
        self.single = single if single is not None else tiny_cnn(num_classes=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.single(x).squeeze(1)


def squeezed_binary() -> nn.Module:
    return Squeezed()


def test_a_single_logit_squeezed_to_one_number_per_image_is_the_same_binary_classifier(tmp_path: Path) -> None:
    """A (batch,) output was refused, "the model's logits have shape (8,), not (batch, classes)" [3], where the same
    logit as (batch, 1) is measured as a binary classifier: it reads the same numbers, alone, measured together and
    in score."""
    single, x = tiny_cnn(num_classes=1), torch.randn(24, 3, 8, 8)
    want = measure_susceptibility(single, x, config=CONFIG)
    assert measure_susceptibility(Squeezed(single), x, config=CONFIG).r == want.r
    together = measure_many([Squeezed(single), Squeezed(copy.deepcopy(single))], x, config=CONFIG)
    assert [t.num_classes for t in together] == [2, 2] and together[0].r == pytest.approx(want.r, abs=1e-6)
    ckpt = suscli.save(squeezed_binary(), tmp_path / "binary.safetensors", arch="tests.test_model_outputs:squeezed_binary", image_size=8)
    row = scored_on_two_classes(ckpt)
    assert row["details"]["num_classes"] == 2 and row["train_n"] == 12
    assert any("one logit per image (a binary classifier" in n for n in row["notes"]), row["notes"]


def test_probabilities_are_refused_and_log_probabilities_measured_as_logits() -> None:
    """A softmax at the end of the forward made the cross-entropy that of probabilities, which one step barely moves:
    a CNN read 0.001 "low susceptibility" with it, 0.10 without. Refused, in every path a model is measured by;
    log_softmax gives the logits' own numbers."""
    model, x = tiny_cnn(), torch.randn(24, 3, 8, 8)
    probabilities = nn.Sequential(model, nn.Softmax(dim=1))
    for call in (
        lambda: measure_susceptibility(probabilities, x, config=CONFIG),
        lambda: measure_susceptibility(probabilities, x, config=CONFIG, num_classes=3),
        lambda: measure_many([probabilities, copy.deepcopy(probabilities)], x, config=CONFIG),
    ):
        with pytest.raises(InputError, match=r"the model's outputs are probabilities \(each row is non-negative and sums to 1"):
            call()
    log_probabilities = measure_susceptibility(nn.Sequential(model, nn.LogSoftmax(dim=1)), x, config=CONFIG)
    assert log_probabilities.r == pytest.approx(measure_susceptibility(model, x, config=CONFIG).r, abs=1e-6)


def test_rank_keeps_a_probability_model_as_its_rows_error(tmp_path: Path) -> None:
    """In a pool, such a model is a failed row with the reason; the others are scored."""
    pool = tmp_path / "pool"
    suscli.save(tiny_cnn(), pool / "logits.safetensors", arch=ARCH, image_size=8)
    suscli.save(tiny_cnn(), pool / "plain.safetensors", arch=ARCH, image_size=8)
    suscli.save(softmax_cnn(), pool / "softmax.safetensors", arch="tests.test_model_outputs:softmax_cnn", image_size=8)
    write_images(tmp_path / "unlabeled", 16)
    res = invoke("rank", pool, "-d", tmp_path / "unlabeled", "-f", "json", "--batch-size", "8")
    assert res.exit_code == 3, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)["results"]}
    assert rows["softmax"]["status"] == "error" and "outputs are probabilities" in rows["softmax"]["error"]
    assert rows["logits"]["status"] == "ok"


def sigmoid_cnn() -> nn.Module:
    """tiny_cnn of one output with a sigmoid at the end of its forward: a binary classifier as BCELoss trains it."""
    return nn.Sequential(tiny_cnn(num_classes=1), nn.Sigmoid())


class SquashedLogit(nn.Module):
    """The same with torch.sigmoid in the forward, its output squeezed to (batch,)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_cnn(num_classes=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x)).squeeze(1)


def test_a_sigmoid_ending_the_forward_is_refused_alone_and_measured_with_others(tmp_path: Path) -> None:
    """Its probabilities p were read as the logits (0, p): no row sums to 1 for the softmax check, and the number was
    the cross-entropy of probabilities, which one step barely moves. Refused [3], alone, measured together, and in a
    pool that model's row; the same network without its sigmoid is measured."""
    x = torch.rand(24, 3, 8, 8)
    wrong = "the model's outputs are probabilities (a sigmoid ends its forward"
    for model in (sigmoid_cnn(), SquashedLogit()):
        with pytest.raises(InputError, match=re.escape(wrong)):
            measure_susceptibility(model, x, config=CONFIG)
        with pytest.raises(InputError, match=re.escape(wrong)):
            measure_many([model, copy.deepcopy(model)], x, config=CONFIG)
    assert measure_susceptibility(sigmoid_cnn()[0], x, config=CONFIG).num_classes == 2
    pool = tmp_path / "pool"
    suscli.save(tiny_cnn(num_classes=1), pool / "logit.safetensors", arch=ARCH, image_size=8)
    for name in ("a", "b"):
        suscli.save(sigmoid_cnn(), pool / f"{name}.safetensors", arch="tests.test_model_outputs:sigmoid_cnn", image_size=8)
    write_images(tmp_path / "unlabeled", 16)
    res = invoke("rank", pool, "-d", tmp_path / "unlabeled", "-f", "json", "--batch-size", "8", "--model-batch", "2")
    assert res.exit_code == 3, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)["results"]}
    assert rows["logit"]["status"] == "ok" and all(wrong in rows[n]["error"] for n in ("a", "b")), rows


class NoGradForward(nn.Module):
    """An inference wrapper whose forward runs without gradients, or detaches its output (`detach`)."""

    def __init__(self, detach: bool = False) -> None:
        super().__init__()
        self.net, self.detach = tiny_cnn(), detach

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.detach:
            return self.net(x).detach()
        with torch.no_grad():
            return self.net(x)


def no_grad_forward() -> nn.Module:
    return NoGradForward()


def test_a_forward_that_cuts_the_gradient_is_refused_not_read_as_zero(tmp_path: Path) -> None:
    """Alone it failed as "the model failed on 8x8 images with 3 channel(s): element 0 of tensors does not require
    grad" with "check --arch, --image-size and --preset" [3]; measured together, torch.func's gradient of the cut graph
    was 0, and every r read 0.0, "low susceptibility". Refused alike [3]."""
    x = torch.rand(24, 3, 8, 8)
    wrong = "the model's outputs carry no gradient (its forward runs under torch.no_grad or inference_mode, or detaches them)"
    for detach in (False, True):
        with pytest.raises(InputError, match=re.escape(wrong)):
            measure_susceptibility(NoGradForward(detach), x, config=CONFIG)
        with pytest.raises(InputError, match=re.escape(wrong)):
            measure_many([NoGradForward(detach), NoGradForward(detach)], x, config=CONFIG)
    ckpt = suscli.save(no_grad_forward(), tmp_path / "m.safetensors", arch="tests.test_model_outputs:no_grad_forward", image_size=8)
    write_images(tmp_path / "unlabeled", 16)
    one_error_line(invoke("score", ckpt, "-d", tmp_path / "unlabeled", "--batch-size", "8"), 3, wrong)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated
def test_a_traced_batch_norm_model_is_refused_and_a_scripted_one_measured(tmp_path: Path) -> None:
    """torch.jit.trace fixes a batch norm in the mode it was traced in; the step's train mode did not reach it, so it
    was measured on running statistics: a traced BatchNorm CNN read 0.012 where its weights eager or scripted read
    0.0027, with no word. Refused, advising the weights (the advice named torch.jit.script, which torch deprecates);
    the scripted archive gives the eager model's numbers."""
    model, x = tiny_cnn().eval(), torch.rand(24, 3, 8, 8)
    traced, scripted = tmp_path / "traced.pt", tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.trace(model, x[:2]), traced)
    torch.jit.save(torch.jit.script(model), scripted)
    with pytest.raises(InputError, match=r"a traced TorchScript archive whose batch norms \(1\) were fixed in the mode"):
        measure_susceptibility(torch.jit.load(traced), x, config=CONFIG)
    got = measure_susceptibility(torch.jit.load(scripted), x, config=CONFIG)
    assert got.r == pytest.approx(measure_susceptibility(model, x, config=CONFIG).r, abs=1e-6)
    write_images(tmp_path / "unlabeled", 16)
    res = invoke("score", traced, "-d", tmp_path / "unlabeled", "--batch-size", "8")
    one_error_line(
        res, 3, "traced.pt: the model is a traced TorchScript archive", "its state dict with --arch, or a file suscli.save wrote"
    )
    assert "torch.jit.script" not in res.stderr  # deprecated by torch: the advice names what stays supported


class FeaturesDict(nn.Module):
    """A forward returning a dict of tensors, none named 'logits' (as segmentation-style heads do)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_cnn(3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.net(x), "feat": x.mean((2, 3))}


def test_a_dict_output_without_logits_is_refused_naming_its_keys() -> None:
    with pytest.raises(InputError, match="dict with keys out, feat and none named 'logits'"):
        measure_susceptibility(FeaturesDict(), torch.rand(8, 3, 8, 8), config=CONFIG)


class Pair(nn.Module):
    """tiny_cnn's logits and its first layer's 4 pooled channels, in the order `logits_first` says (research code
    returns both)."""

    def __init__(self, logits_first: bool, num_classes: int = 3) -> None:
        super().__init__()
        self.net, self.logits_first = tiny_cnn(num_classes), logits_first

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, features = self.net(x), self.net[0](x).mean((2, 3))
        return (logits, features) if self.logits_first else (features, logits)


def features_first() -> nn.Module:
    return Pair(logits_first=False)


def logits_first() -> nn.Module:
    return Pair(logits_first=True)


def features_first_of(num_classes: int = 3) -> nn.Module:
    return Pair(logits_first=False, num_classes=num_classes)


def test_a_forward_returning_features_then_logits_is_refused_not_measured_on_the_features(tmp_path: Path) -> None:
    """(features, logits) was measured on the features: random labels over 4 feature channels, a number that is not
    the model's susceptibility, and only a note that the model "outputs 4 classes". Refused alone [3] and in a pool
    measured together, where it is the row's error; (logits, features) is measured."""
    pool = tmp_path / "pool"
    for name in ("a", "b"):
        suscli.save(features_first(), pool / f"{name}.safetensors", arch="tests.test_model_outputs:features_first", image_size=8)
    good = suscli.save(logits_first(), tmp_path / "good.safetensors", arch="tests.test_model_outputs:logits_first", image_size=8)
    write_images(tmp_path / "unlabeled", 16)
    wrong = "returns 2 outputs, of widths 4, 3: suscli reads the first as the class logits, but the model has 3 classes"
    res = invoke("score", pool / "a.safetensors", "-d", tmp_path / "unlabeled", "--batch-size", "8")
    one_error_line(res, 3, wrong)
    res = invoke("rank", pool, "-d", tmp_path / "unlabeled", "-f", "json", "--batch-size", "8", "--model-batch", "2")
    assert res.exit_code == 3, res.output
    assert all(r["status"] == "error" and wrong in r["error"] for r in json.loads(res.stdout)["results"])
    res = invoke("score", good, "-d", tmp_path / "unlabeled", "--batch-size", "8", "-f", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["results"][0]["details"]["num_classes"] == 3


def test_a_class_count_in_the_arch_kwargs_is_the_checkpoints(tmp_path: Path) -> None:
    """num_classes in --arch-kwargs (or a file's arch_kwargs) built the model but left its class count unknown: the
    same (features, logits) model was refused without it and measured on its 4 features with it, and a 5-class
    model on 3 class folders lost the note that they are numbered among themselves."""
    state = tmp_path / "pair.pt"
    torch.save(features_first_of().state_dict(), state)
    write_images(tmp_path / "unlabeled", 16)
    arch = ["--arch", "tests.test_model_outputs:features_first_of", "--batch-size", "8", "-d", tmp_path / "unlabeled"]
    res = invoke("score", state, *arch, "--arch-kwargs", "num_classes=3")
    one_error_line(res, 3, "returns 2 outputs, of widths 4, 3: suscli reads the first as the class logits, but the model has 3 classes")
    five = suscli.save(tiny_cnn(5), tmp_path / "five.safetensors", arch=ARCH, arch_kwargs={"num_classes": 5}, image_size=8)
    for c in range(3):
        write_images(tmp_path / "train" / f"class_{c}", 4, seed=10 + c)
    res = invoke("score", five, "-d", tmp_path / "unlabeled", "--train-data", tmp_path / "train", "-f", "json", "--batch-size", "8")
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout)["results"][0]["notes"]
    assert any("the model has 5 classes but the training set's 3 class folders are numbered 0-2" in n for n in notes), notes


def test_inputs_of_another_type_than_the_weights_are_named_not_a_torch_error() -> None:
    """uint8 pixels or a float64 array raised PyTorch's "expected scalar type Byte but found Float"; a model that
    converts its inputs itself is measured on them."""
    model = tiny_cnn()
    pixels = torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8)
    for x, fix in ((pixels, r"b.float\(\) / 255"), (torch.rand(8, 3, 8, 8, dtype=torch.float64), r"inputs.to\(torch.float32\)")):
        for given in (None, 3):
            with pytest.raises(InputError, match=f"inputs of type {x.dtype}, its weights being torch.float32") as e:
                measure_susceptibility(model, x, config=CONFIG, num_classes=given)
            assert re.search(fix, e.value.line()), e.value.line()

    class Converts(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x.float() / 255)

    assert measure_susceptibility(Converts(), pixels, config=CONFIG).mean >= 0
    converted = measure_susceptibility(model, pixels, config=CONFIG, transform=lambda b: b.float() / 255)
    assert converted.r == measure_susceptibility(Converts(), pixels, config=CONFIG).r


class KeywordOnly(nn.Module):
    """A forward that takes its input by keyword only, as a Hugging Face-style wrapper's does."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.net = tiny_cnn(num_classes)

    def forward(self, *, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values)


@pytest.mark.parametrize("batch", ["1", "2"])
def test_a_keyword_only_forward_is_called_by_its_keyword_in_every_pass(
    batch: str, tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """Susceptibility called it by its keyword, but training accuracy, the predictions and held-out accuracy called
    model(x): "internal error: TypeError: KeywordOnly.forward() takes 1 positional argument but 2 were given" [3]."""
    for i in range(2):
        torch.manual_seed(i)
        suscli.save(KeywordOnly(), tmp_path / "pool" / f"m{i}.safetensors", arch="tests.test_model_outputs:KeywordOnly", image_size=8)
    held = write_images(tmp_path / "held", 10, seed=40)
    (tmp_path / "val.csv").write_text("path,label\n" + "".join(f"{p},{i % 3}\n" for i, p in enumerate(held)))
    given = ("--train-data", train_folder, "--val-data", tmp_path / "val.csv", "--model-batch", batch, "--batch-size", "8")
    res = invoke("rank", tmp_path / "pool", "-d", image_folder, *given, "--batches", "2", "-f", "json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["results"]
    assert len(rows) == 2 and all(r["train_acc"] is not None and r["val_acc"] is not None for r in rows), rows


class WithMeta(nn.Module):
    """A forward that requires a second input beside the images (metadata, a mask), as multimodal models take."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.net = tiny_cnn(num_classes)

    def forward(self, x: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        return self.net(x) + meta


def test_a_forward_requiring_a_second_input_is_its_rows_error(tmp_path: Path, image_folder: Path) -> None:
    """Called with the images alone, it raised "internal error: TypeError: WithMeta.forward() missing 1 required
    positional argument: 'meta'" [3], which ended rank for the whole pool; now it is that model's row."""
    suscli.save(WithMeta(), tmp_path / "pool" / "meta.safetensors", arch="tests.test_model_outputs:WithMeta", image_size=8)
    suscli.save(tiny_cnn(), tmp_path / "pool" / "cnn.safetensors", arch=ARCH, image_size=8)
    wrong = "the model's (WithMeta) forward requires meta beside its input: the measurement passes it one batch of inputs"
    one_error_line(invoke("score", tmp_path / "pool" / "meta.safetensors", "-d", image_folder, "--batches", "1"), 3, wrong)
    res = invoke("rank", tmp_path / "pool", "-d", image_folder, "--batches", "1", "-f", "json")
    assert res.exit_code == 3 and "internal error" not in res.output, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)["results"]}
    assert rows["cnn"]["status"] == "ok" and wrong in rows["meta"]["error"], rows
