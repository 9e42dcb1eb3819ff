"""torch.export graphs as models the measurement can run: batch norm switched between train and eval mode.

`ExportedProgram.module()` refuses `.train()` and `.eval()` (torch 2.14: "Calling eval() is not supported yet"):
the graph holds the mode it was exported in as the constant `training` flag of each `aten.batch_norm` call and
the `train` flag of each dropout. The measurement needs batch norm in train mode (batch statistics) with dropout
off, and the predictions and training accuracy need eval mode, as for every other model. So here the batch-norm
flags follow the wrapper's mode and dropout is off for good. What Python code decided from `self.training` while
the model was exported (a branch, an auxiliary head) stays as it was exported.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import fx, nn

from suscli.errors import InputError

_BATCH_NORM = torch.ops.aten.batch_norm.default  # (input, weight, bias, running_mean, running_var, training, ...)
_BATCH_NORM_TRAINING = 5
_DROPOUTS = {  # (input, p, train)
    torch.ops.aten.dropout.default,
    torch.ops.aten.feature_dropout.default,
    torch.ops.aten.alpha_dropout.default,
    torch.ops.aten.feature_alpha_dropout.default,
    torch.ops.aten.native_dropout.default,
}
_DROPOUT_TRAIN = 2
# What run_decompositions() turns batch_norm into: one op per mode, with no flag left to switch.
_FIXED_NORMS = {
    torch.ops.aten._native_batch_norm_legit_no_training.default,
    torch.ops.aten._native_batch_norm_legit_functional.default,
    torch.ops.aten._native_batch_norm_legit.default,
    torch.ops.aten.native_batch_norm.default,
}
RESAVE = "save the program before run_decompositions(), or save the weights with suscli.save (or a TorchScript archive) instead"
DYNAMIC_BATCH = (
    "export it with a dynamic batch dimension, dynamic_shapes=({0: torch.export.Dim('batch')},), "
    "for the image size it is scored at (--image-size)"
)


class ExportedModel(nn.Module):
    """The module of a torch.export program, whose train/eval mode sets its batch norms' mode."""

    def __init__(self, graph: fx.GraphModule, path: Path):
        super().__init__()
        fixed = sorted({str(n.target) for n in graph.graph.nodes if n.target in _FIXED_NORMS})
        if fixed:
            raise InputError(
                f"{path}: this torch.export graph was decomposed ({fixed[0]}), which fixes its batch norms "
                "in the mode it was exported in; the measurement needs them in train mode",
                fix=RESAVE,
            )
        for node in graph.graph.nodes:
            if node.target in _DROPOUTS:
                node.update_arg(_DROPOUT_TRAIN, False)
        self.graph_module = graph
        self._norms = [n for n in graph.graph.nodes if n.target is _BATCH_NORM]
        self._graph_training: bool | None = None  # the mode the graph's flags are set to; None: not yet set
        self.training = False

    def train(self, mode: bool = True) -> ExportedModel:
        self.training = mode  # the graph itself refuses train(); its flags follow at the next forward
        return self

    def forward(self, *args: object, **kwargs: object) -> object:
        if self._graph_training is not self.training:
            for node in self._norms:
                node.update_arg(_BATCH_NORM_TRAINING, self.training)
            self.graph_module.recompile()
            self._graph_training = self.training
        try:
            return self.graph_module(*args, **kwargs)
        except AssertionError as e:  # the export's guards on input shapes
            shapes = ", ".join("x".join(map(str, a.shape)) for a in args if isinstance(a, torch.Tensor))
            reason = " ".join(str(e).split())
            # no path: the row's error names the checkpoint, as for every model that fails on the images
            raise InputError(f"the torch.export graph does not take inputs of shape {shapes} ({reason})", fix=DYNAMIC_BATCH) from None
