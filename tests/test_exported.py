"""torch.export graphs: their batch norms follow train/eval mode, and what cannot be measured is said plainly."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch

from suscli.load.checkpoints import load_checkpoint
from tests.conftest import invoke, one_error_line, tiny_cnn


def export(path: Path, *, dynamic: bool = True, decompose: bool = False, train: bool = False) -> torch.nn.Module:
    model = tiny_cnn().train(train)
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    program = torch.export.export(model, (torch.randn(4, 3, 8, 8),), dynamic_shapes=shapes)
    torch.export.save(program.run_decompositions() if decompose else program, path)
    return model


@pytest.mark.parametrize("exported_in_train_mode", [False, True])
def test_batch_norm_follows_the_mode_and_dropout_is_off(tmp_path: Path, exported_in_train_mode: bool) -> None:
    eager = export(tmp_path / "m.pt2", train=exported_in_train_mode)
    graph = load_checkpoint(tmp_path / "m.pt2").model
    x = torch.randn(5, 3, 8, 8)
    eager.eval()
    assert not graph.training
    torch.testing.assert_close(graph(x), eager(x))  # running statistics
    eager.train()
    eager[5].eval()  # the dropout
    graph.train()
    torch.testing.assert_close(graph(x), eager(x))  # batch statistics, and the same output twice: no dropout
    torch.testing.assert_close(graph(x), graph(x))


def test_a_fixed_batch_size_is_one_line_with_the_way_out(tmp_path: Path, image_folder: Path) -> None:
    export(tmp_path / "m.pt2", dynamic=False)
    res = invoke("score", tmp_path / "m.pt2", "-d", image_folder, "--image-size", "8")
    line = one_error_line(
        res, 3, f"{tmp_path / 'm.pt2'}: the torch.export graph does not take inputs of shape 2x3x8x8", "== 4", "torch.export.Dim('batch')"
    )
    assert line.count(str(tmp_path / "m.pt2")) == 1, line  # was named twice: "m.pt2: m.pt2: the torch.export graph ..."


def test_a_decomposed_graph_is_refused_up_front(tmp_path: Path, image_folder: Path) -> None:
    export(tmp_path / "m.pt2", decompose=True)
    res = invoke("score", tmp_path / "m.pt2", "-d", image_folder, "--image-size", "8")
    one_error_line(res, 3, str(tmp_path / "m.pt2"), "run_decompositions", "suscli.save")


def export_as_torch_2_7_did(path: Path, sample_inputs: bytes | None = None) -> torch.nn.Module:
    """The archive torch.export.save wrote up to torch 2.7 (torch 2.4, pyproject's floor, included): its entries at
    the zip's top level, no `archive_format`. Later torch still loads it (torch.export.load's older-format path)."""
    from torch._export.serde.schema import SCHEMA_VERSION
    from torch._export.serde.serialize import serialize

    model = tiny_cnn().eval()
    program = torch.export.export(model, (torch.randn(4, 3, 8, 8),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    artifact = serialize(program)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("serialized_exported_program.json", artifact.exported_program)
        z.writestr("serialized_state_dict.pt", artifact.state_dict)
        z.writestr("serialized_constants.pt", artifact.constants)
        z.writestr("serialized_example_inputs.pt", artifact.example_inputs if sample_inputs is None else sample_inputs)
        z.writestr("version", ".".join(map(str, SCHEMA_VERSION)))
    return model


def test_an_export_archive_of_torch_2_7_and_before_is_one(tmp_path: Path) -> None:
    """Such a .pt2 was not told from a torch.save file and failed as "not a readable PyTorch checkpoint ... truncated
    or corrupt", although torch.export.load reads it: every .pt2 a user of torch 2.4 to 2.7 saved."""
    eager = export_as_torch_2_7_did(tmp_path / "m.pt2")
    ckpt = load_checkpoint(tmp_path / "m.pt2")
    assert ckpt.arch == "torch.export"
    x = torch.randn(5, 3, 8, 8)
    torch.testing.assert_close(ckpt.model.eval()(x), eager(x))


def test_a_payload_in_an_older_export_archive_never_runs(tmp_path: Path, image_folder: Path) -> None:
    """Its sample inputs are a torch.save pickle that torch.export.load retries with weights_only=False: refused."""
    marker = tmp_path / "pwned"
    payload = tmp_path / "payload.pt"
    torch.save({"x": _Payload(marker)}, payload)
    export_as_torch_2_7_did(tmp_path / "m.pt2", sample_inputs=payload.read_bytes())
    line = one_error_line(invoke("score", tmp_path / "m.pt2", "-d", image_folder, "--image-size", "8"), 3)
    assert "refused" in line and "--trust-checkpoint" in line, line
    assert not marker.exists()


class _Payload:
    """Creates `marker` when unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))
