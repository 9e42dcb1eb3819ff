"""What a network reads untrained (suscli.measure.untrained): the same network as its constructor draws it, measured
as its trained self is, once per architecture and inputs; unknown, not guessed, where no layer re-initializes a
parameter."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

import suscli
from suscli.judge import verdict
from suscli.measure import untrained as reference
from suscli.measure.susceptibility import SusceptibilityConfig, measure_susceptibility
from tests.conftest import invoke, tiny_cnn, write_images

CONFIG = SusceptibilityConfig(batches=2, batch_size=8)
CPU = torch.device("cpu")


def trained(seed: int) -> nn.Module:
    """A tiny CNN whose weights and BatchNorm statistics are no longer its initialization's."""
    torch.manual_seed(seed)
    model = tiny_cnn()
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point():
                t.add_(torch.rand_like(t))
    return model


def scaled(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255


def test_the_untrained_network_is_the_one_its_constructor_draws_and_leaves_the_global_random_state() -> None:
    torch.manual_seed(reference.SEED)
    expected = tiny_cnn().state_dict()  # layers drawn in construction order, as reset_parameters walks them
    model = trained(1)
    state = torch.get_rng_state()
    fresh = reference.untrained(model)
    assert torch.equal(torch.get_rng_state(), state)
    assert fresh.state_dict().keys() == expected.keys()
    assert all(torch.equal(fresh.state_dict()[k], expected[k]) for k in expected)


def test_it_is_measured_as_the_trained_model_is_and_once_per_architecture_and_inputs(monkeypatch) -> None:
    pixels = torch.randint(0, 256, (24, 3, 8, 8), dtype=torch.uint8)
    torch.manual_seed(reference.SEED)
    expected = measure_susceptibility(tiny_cnn(), pixels, config=CONFIG, transform=scaled).mean
    calls = []
    measure = reference.measure_susceptibility
    monkeypatch.setattr(reference, "measure_susceptibility", lambda *a, **k: calls.append(1) or measure(*a, **k))
    first = reference.untrained_susceptibility(trained(1), pixels, config=CONFIG, transform=scaled, device=CPU, inputs="a")
    assert first == {"susceptibility": expected}
    # another model of the architecture, on the same inputs: the same reference, not measured again
    assert reference.untrained_susceptibility(trained(2), pixels, config=CONFIG, transform=scaled, device=CPU, inputs="a") == first
    assert len(calls) == 1
    other = pixels.flip(0)  # other images, other preprocessing, another architecture: measured afresh
    reference.untrained_susceptibility(trained(1), other, config=CONFIG, transform=scaled, device=CPU, inputs="a")
    reference.untrained_susceptibility(trained(1), pixels, config=CONFIG, transform=scaled, device=CPU, inputs="b")
    reference.untrained_susceptibility(tiny_cnn(num_classes=4), pixels, config=CONFIG, transform=scaled, device=CPU, inputs="a")
    assert len(calls) == 4


def test_a_runs_images_are_hashed_once_while_they_stay_the_same_tensor(monkeypatch) -> None:
    """Every checkpoint of a run above the low cut copied the decoded images off the device and hashed them again to
    find the reference (0.17 s for 1,000 images at 224 px); now once, while the tensor is the same and unchanged."""
    pixels = torch.randint(0, 256, (24, 3, 8, 8), dtype=torch.uint8)
    hashed = []
    monkeypatch.setattr(reference, "hashlib", SimpleNamespace(sha256=lambda b: hashed.append(1) or hashlib.sha256(b)))
    measure = reference.measure_susceptibility
    calls = []
    monkeypatch.setattr(reference, "measure_susceptibility", lambda *a, **k: calls.append(1) or measure(*a, **k))

    def untrained(images: torch.Tensor) -> dict:
        return reference.untrained_susceptibility(trained(1), images, config=CONFIG, transform=scaled, device=CPU, inputs="digest")

    first = untrained(pixels)
    assert untrained(pixels) == untrained(pixels) == first and len(hashed) == 1 and len(calls) == 1
    assert untrained(pixels.clone()) == first and len(hashed) == 2 and len(calls) == 1  # the same bytes elsewhere: the same key
    pixels[0] = 255 - pixels[0]  # changed in place: hashed again, and measured on the new images
    untrained(pixels)
    assert len(hashed) == 3 and len(calls) == 2


class Scaled(nn.Module):
    """A layer-scale factor: a parameter of no layer that re-initializes it."""

    def __init__(self) -> None:
        super().__init__()
        self.body = tiny_cnn()
        self.gamma = nn.Parameter(torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) * self.gamma


def test_a_parameter_no_layer_re_initializes_leaves_the_reference_unknown() -> None:
    pixels = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    assert reference.not_reset(tiny_cnn()) is None and reference.not_reset(Scaled()) == "gamma"
    got = reference.untrained_susceptibility(Scaled(), pixels, config=CONFIG, transform=scaled, device=CPU, inputs=None)
    assert got == {"unknown": "its parameter gamma belongs to no layer that re-initializes it"}


def test_score_records_the_reference_where_the_verdict_reads_it(tmp_path: Path) -> None:
    """A confident tiny model reads above the low cut: its row carries what its network reads untrained, near zero
    as the zoo's networks do, so the fixed cuts judge it (here the confidence guard says why they cannot)."""
    model = tiny_cnn()
    with torch.no_grad():
        model[-1].weight.mul_(40)
    ckpt = suscli.save(model, tmp_path / "m.safetensors", arch="tests.conftest:tiny_cnn", num_classes=3, image_size=8)
    write_images(tmp_path / "unlabeled", 40)
    res = invoke("score", ckpt, "-d", tmp_path / "unlabeled", "-f", "json")
    assert res.exit_code == 0, res.stderr
    r = json.loads(res.stdout)["results"][0]
    assert r["susceptibility"] > verdict.RESISTS_CUT
    untrained = r["details"]["untrained"]["susceptibility"]
    assert untrained < verdict.UNTRAINED_CUT < r["susceptibility"]
    assert r["verdict"] == verdict.UNCLEAR and "times chance" in r["verdict_why"] and "untrained" not in r["verdict_why"]


def test_an_untrained_copy_that_fails_leaves_the_reference_unknown(monkeypatch) -> None:
    """Out of memory beside the model, or a module that refuses a deepcopy: the model's own row must stand."""

    def refuse(model: nn.Module, seed: int = 0) -> nn.Module:
        raise TypeError("cannot pickle 'torch._C.Generator' object")

    monkeypatch.setattr(reference, "untrained", refuse)
    pixels = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8).flip(1)  # inputs no other test cached
    got = reference.untrained_susceptibility(tiny_cnn(), pixels, config=CONFIG, transform=scaled, device=CPU, inputs="refused")
    assert got == {"unknown": "its untrained copy failed: cannot pickle 'torch._C.Generator' object"}
