"""score, rank and track called from inside a user's own code: in a notebook or a training loop's evaluation block,
under torch's inference_mode, an autocast region or another default dtype, they give the command line's numbers and
leave those settings as they were."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

import suscli
from suscli import Inputs, Settings
from suscli.measure.susceptibility import SusceptibilityConfig
from suscli.results import Result
from tests.conftest import tiny_cnn

ARCH = "tests.conftest:tiny_cnn"
SETTINGS = Settings(susceptibility=SusceptibilityConfig(batches=2, batch_size=8), train_samples=None)
CPU = Inputs(device="cpu")


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """Two epochs of one small network, saved as a run (and ranked as a pool of two)."""
    for epoch in (1, 2):
        torch.manual_seed(epoch)
        suscli.save(tiny_cnn(), tmp_path / "run" / f"epoch_{epoch}.safetensors", arch=ARCH, num_classes=3, image_size=8, epoch=epoch)
    return tmp_path / "run"


def numbers(rows: list[Result]) -> list[tuple]:
    """What a row measured: an error, or its numbers and the top classes on the unlabeled images."""
    return [(r.name, r.error, r.susceptibility, r.details.get("r"), r.train_acc, r.details.get("predictions")) for r in rows]


def calls(run: Path, image_folder: Path, train_folder: Path) -> dict[str, Callable[[], list[Result]]]:
    def scored() -> list[Result]:
        try:
            return suscli.score(run / "epoch_1.safetensors", image_folder, train_folder, settings=SETTINGS, inputs=CPU).rows
        except suscli.run.score.Unscored as e:
            return e.report.rows

    def ranked() -> list[Result]:
        report = suscli.rank(run, image_folder, train_folder, settings=SETTINGS, inputs=CPU, fresh=True)
        assert report is not None
        return report.rows

    return {
        "score": scored,
        "rank": ranked,
        "track": lambda: suscli.track(run, image_folder, train_folder, settings=SETTINGS, inputs=CPU, fresh=True).rows,
    }


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


CONTEXTS: dict[str, Callable[[], contextlib.AbstractContextManager]] = {
    "inference_mode": torch.inference_mode,
    "no_grad": torch.no_grad,
    "cpu autocast": lambda: torch.autocast("cpu", dtype=torch.bfloat16),
    "default float64": lambda: default_dtype(torch.float64),
}


@pytest.mark.parametrize("context", list(CONTEXTS))
@pytest.mark.parametrize("command", ["score", "rank", "track"])
def test_a_call_inside_the_users_torch_context_measures_as_the_command_and_leaves_it_as_it_was(
    command: str, context: str, run: Path, image_folder: Path, train_folder: Path
) -> None:
    """Inside inference_mode (where a loop or a notebook evaluates) every checkpoint loaded into inference tensors,
    which the step cannot update: each row was an error, "the model failed on 8x8 images with 3 channels: Inplace
    update to inference tensor outside InferenceMode is not allowed (check --arch, --image-size and --preset)". Under
    a default dtype of float64 the network was built in float64 and failed on the float32 images alike. Under the
    loop's CPU autocast the accuracy and prediction passes ran in bfloat16: a demo model's training accuracy read
    0.649 instead of 0.65, and rank stored that number in its results file for later runs to reuse."""
    call = calls(run, image_folder, train_folder)[command]
    expected = numbers(call())
    with CONTEXTS[context]():
        state = (torch.is_inference_mode_enabled(), torch.is_grad_enabled(), torch.is_autocast_enabled("cpu"), torch.get_default_dtype())
        got = numbers(call())
        assert (
            torch.is_inference_mode_enabled(),
            torch.is_grad_enabled(),
            torch.is_autocast_enabled("cpu"),
            torch.get_default_dtype(),
        ) == state
    assert all(error is None for _, error, *_ in got), got
    assert got == expected
