"""MMEngine's Runner saves (OpenMMLab: mmpretrain, mmdet, ...): weights in `state_dict`, the run's logs in
`message_hub` as HistoryBuffer objects, which weights-only loading refuses.

mmengine is not installed here (it brings OpenCV and matplotlib), so its HistoryBuffer is defined below under its own
module name, as mmengine 0.10.7 pickles it, and the save is laid out as that release's Runner wrote it for
`CheckpointHook` (checked against files the Runner wrote: the same globals, in the same places).
"""

from __future__ import annotations

import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from suscli.errors import InputError
from suscli.load.checkpoints import load_checkpoint
from tests.conftest import cli_json, image_sets, invoke, one_error_line, tiny_cnn

_MODULE = "mmengine.logging.history_buffer"


class HistoryBuffer:
    """mmengine.logging.history_buffer.HistoryBuffer's pickled state: numpy histories and the statistics methods."""

    def __init__(self, log: list[float], count: list[int]) -> None:
        self.max_length = 1000000
        self._log_history = np.array(log)
        self._count_history = np.array(count)
        self.statistics_methods = {
            "min": HistoryBuffer.min,
            "max": HistoryBuffer.max,
            "current": HistoryBuffer.current,
            "mean": HistoryBuffer.mean,
        }

    def min(self) -> float:
        return float(self._log_history.min())

    def max(self) -> float:
        return float(self._log_history.max())

    def current(self) -> float:
        return float(self._log_history[-1])

    def mean(self) -> float:
        return float(self._log_history.mean())


for _f in (HistoryBuffer, HistoryBuffer.min, HistoryBuffer.max, HistoryBuffer.current, HistoryBuffer.mean):
    _f.__module__ = _MODULE


@pytest.fixture
def mmengine_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module a save's pickle names, present while the test writes one (as when MMEngine wrote it)."""
    module = types.ModuleType(_MODULE)
    module.HistoryBuffer = HistoryBuffer  # type: ignore[attr-defined]
    for name in ("mmengine", "mmengine.logging"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, _MODULE, module)


def runner_save(path: Path, model: torch.nn.Module, *, epoch: int = 3, extra: dict | None = None) -> Path:
    """A save laid out as MMEngine's Runner.save_checkpoint writes it (protocol 2, torch.save's default)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    meta = {
        "epoch": epoch,
        "iter": 12,
        "cfg": "\n",
        "seed": 1,
        "experiment_name": "run",
        "time": "20261206_194828",
        "mmengine_version": "0.10.7",
    }
    hub = {
        "log_scalars": OrderedDict(
            (k, HistoryBuffer([0.01] * 4, [1] * 4)) for k in ("train/lr", "train/data_time", "train/loss", "train/time")
        ),
        "runtime_info": OrderedDict(
            [("cfg", "\n"), ("epoch", epoch - 1), ("iter", 11), ("eta", np.float64(0.0)), ("last_ckpt", str(path))]
        ),
        "resumed_keys": OrderedDict([("cfg", True), ("epoch", True), ("train/lr", True)]),
    }
    torch.save(
        {"meta": meta, "state_dict": model.state_dict(), "message_hub": hub, "optimizer": optimizer.state_dict(), **(extra or {})}, path
    )
    return path


def test_an_mmengine_runner_save_loads_its_weights(tmp_path: Path, mmengine_module: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every MMEngine save was refused ("it imports mmengine.logging.history_buffer.HistoryBuffer ... pass
    --trust-checkpoint"), and trusting it needed mmengine installed: its weights load now, the message hub read as
    inert stand-ins and dropped, without mmengine or any of the file's code."""
    torch.manual_seed(0)
    model = tiny_cnn().eval()
    path = runner_save(tmp_path / "epoch_3.pth", model)
    monkeypatch.delitem(sys.modules, _MODULE)  # mmengine absent when suscli reads the file
    ckpt = load_checkpoint(path, arch="tests.conftest:tiny_cnn")
    for name, tensor in model.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[name], tensor), name
    unlabeled, train = image_sets(tmp_path)
    row = cli_json("score", path, "--arch", "tests.conftest:tiny_cnn", "-d", unlabeled, "--train-data", train)["results"][0]
    assert row["error"] is None and row["susceptibility"] is not None


def test_score_reads_an_mmengine_saves_epoch_as_rank_does(tmp_path: Path, mmengine_module: None) -> None:
    """`score epoch_3.pth` showed no epoch (MMEngine keeps it under `meta`, not beside the weights), where `rank` on
    the folder numbered the same file 3 by its name: the model alone and in a pool now read the same epoch."""
    pool = tmp_path / "work_dir"
    pool.mkdir()
    path = runner_save(pool / "epoch_3.pth", tiny_cnn().eval())
    unlabeled, _ = image_sets(tmp_path)
    alone = cli_json("score", path, "--arch", "tests.conftest:tiny_cnn", "-d", unlabeled, "--batches", "2")["results"][0]
    ranked = cli_json("rank", pool, "--arch", "tests.conftest:tiny_cnn", "-d", unlabeled, "--batches", "2")["results"][0]
    assert alone["epoch"] == ranked["epoch"] == 3


def test_numpy_beside_the_weights_of_an_mmengine_save_is_still_refused(tmp_path: Path, mmengine_module: None) -> None:
    """The stand-ins answer for the message hub only: a numpy array anywhere else (here among the weights) would be
    read as nothing, so the file is refused as before, naming what it imports."""
    model = tiny_cnn().eval()
    path = runner_save(tmp_path / "epoch_3.pth", model, extra={"ema": {"weight": np.ones(3)}})
    with pytest.raises(InputError, match=r"holds pickled Python objects: it imports numpy\.ndarray.*refused"):
        load_checkpoint(path, arch="tests.conftest:tiny_cnn")
    res = invoke("score", path, "--arch", "tests.conftest:tiny_cnn", "-d", image_sets(tmp_path)[0])
    one_error_line(res, 3, "numpy.ndarray")


class _Getattr:
    """A pickle that asks getattr for something other than the HistoryBuffer's methods: str.join here, a step towards
    any attribute of anything the unpickler can reach."""

    def __reduce__(self):
        return (getattr, (str, "join"))


def test_getattr_in_an_mmengine_save_answers_for_the_history_buffer_only(tmp_path: Path, mmengine_module: None) -> None:
    path = runner_save(tmp_path / "epoch_3.pth", tiny_cnn(), extra={"hook": _Getattr()})
    with pytest.raises(InputError, match=r"it imports builtins\.getattr.*refused, nothing in the file was run"):
        load_checkpoint(path, arch="tests.conftest:tiny_cnn")


def pickle_globals(path: Path) -> list[str]:
    from suscli.load.pickles import imported

    return list(imported(path))


def test_the_save_holds_what_mmengine_pickles(tmp_path: Path, mmengine_module: None) -> None:
    """The layout above imports what mmengine 0.10.7's saves import (read off files its Runner wrote), so the tests
    above read what users have."""
    path = runner_save(tmp_path / "epoch_3.pth", tiny_cnn())
    found = set(pickle_globals(path))
    # torch.save's protocol 2 spells the statistics methods getattr(HistoryBuffer, name), under Python 2's builtins name
    assert {f"{_MODULE}.HistoryBuffer", "__builtin__.getattr", "_codecs.encode", "numpy.ndarray", "numpy.dtype"} <= found
    assert any(n.endswith("multiarray._reconstruct") for n in found) and any(n.endswith("multiarray.scalar") for n in found)
