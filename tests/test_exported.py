"""torch.export graphs: their batch norms follow train/eval mode, and what cannot be measured is said plainly."""

from __future__ import annotations

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
    one_error_line(
        res, 3, f"{tmp_path / 'm.pt2'}: the torch.export graph does not take inputs of shape 2x3x8x8", "== 4", "torch.export.Dim('batch')"
    )


def test_a_decomposed_graph_is_refused_up_front(tmp_path: Path, image_folder: Path) -> None:
    export(tmp_path / "m.pt2", decompose=True)
    res = invoke("score", tmp_path / "m.pt2", "-d", image_folder, "--image-size", "8")
    one_error_line(res, 3, str(tmp_path / "m.pt2"), "run_decompositions", "suscli.save")
