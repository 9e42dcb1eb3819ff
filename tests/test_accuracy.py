from __future__ import annotations

import pytest
import torch
from torch import nn

from suscli.measure.accuracy import training_accuracy, wilson_interval
from suscli.errors import InputError


class Fixed(nn.Module):
    """Predicts class = first input value, so the expected accuracy is known exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(x[:, 0].long(), 4).float() + 0 * self.w


def test_counts_and_full_set_has_no_interval() -> None:
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [1.0]])
    y = torch.tensor([0, 1, 2, 0, 0])
    acc = training_accuracy(Fixed(), x, y, batch_size=2)
    assert (acc.correct, acc.total) == (3, 5)
    assert acc.value == pytest.approx(0.6)
    assert not acc.sampled and acc.low == acc.high == acc.value


def test_sample_reports_wilson_interval() -> None:
    x = torch.zeros(100, 1)
    y = torch.cat([torch.zeros(80), torch.ones(20)]).long()
    acc = training_accuracy(Fixed(), x, y, population=1000)
    assert acc.sampled
    assert acc.low == pytest.approx(0.7112, abs=1e-3) and acc.high == pytest.approx(0.8666, abs=1e-3)


def test_wilson_interval_edges() -> None:
    low, high = wilson_interval(10, 10)
    assert high == pytest.approx(1.0) and 0.69 < low < 0.73
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12) and 0.27 < high < 0.31


def test_labels_out_of_range_for_the_model() -> None:
    with pytest.raises(InputError, match="up to 7 but the model has 4 classes"):
        training_accuracy(Fixed(), torch.zeros(3, 1), torch.tensor([0, 7, 1]))


def test_the_pass_keeps_each_images_top_classes_and_given_label() -> None:
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [1.0]])
    y = torch.tensor([0, 1, 2, 0, 0])
    pred = training_accuracy(Fixed(), x, y, batch_size=2).predictions
    assert pred.top1().tolist() == [0, 1, 2, 3, 1]  # in input order across batches
    assert pred.labels.tolist() == y.tolist() and pred.num_classes == 4 and pred.classes.shape == (5, 3)
    assert pred.probs[:, 0] == pytest.approx(torch.softmax(torch.tensor([1.0, 0, 0, 0]), 0)[0].item())
    again = type(pred).decode(pred.encode())  # what the results file keeps
    assert (again.classes == pred.classes).all() and (again.labels == pred.labels).all()


def test_a_forward_with_random_ops_reads_the_same_wherever_the_global_rng_stands() -> None:
    """A forward with random ops of its own (a functional dropout, F.dropout(x, p) with its default training=True)
    drew them where the global RNG stood: its training accuracy and predictions changed with whatever ran before
    (another model of the pool, a probe's pass, the caller's loop), so a rerun ordered a pool otherwise and a row's
    numbers depended on its neighbours. Each pass now draws from a fixed seed, and leaves the caller's RNG as it was."""
    from suscli.measure.predictions import predict

    class Drop(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.dropout(self.fc(x), 0.5, training=True)

    torch.manual_seed(0)
    model, x = Drop(), torch.randn(200, 8)
    y = torch.randint(3, (200,))
    readings = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        acc = training_accuracy(model, x, y)
        pred = predict(model, x)
        readings.append((acc.correct, acc.hits.tolist(), pred.classes.tolist(), torch.rand(1).item()))
        torch.manual_seed(seed)
        assert readings[-1][3] == torch.rand(1).item()  # the caller's RNG is where it was
    assert readings[0][:3] == readings[1][:3]
