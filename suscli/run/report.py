"""The record of one audit (`Report`): what suscli.score, suscli.rank and suscli.track return, and what every view
renders. The run-level part is a plain dict, the JSON report's top level, so that a report read back from a file
(suscli.load_results) and one made in this process say the same things."""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suscli.data.images import ImageSource
from suscli.errors import ExitCode, SuscliError
from suscli.judge.regions import Thresholds
from suscli.judge.rules import Choice
from suscli.results import Result
from suscli.run.settings import Settings


@dataclass
class Report:
    """What one audit found. `rows` are in the report's order (rank's ranking, track's epochs); `run` holds the
    settings, the data, the device, the choice, the gate and the training sample, as the JSON report does."""

    command: str  # "score", "rank" or "track"
    rows: list[Result]
    run: dict[str, Any]
    choice: Choice | None = None  # rank: the model to ship, why, and the consensus on the training labels
    thresholds: Thresholds | None = None  # rank: where the pool splits into regions
    keep: Result | None = None  # track: the epoch to keep
    failures: list[str] = field(default_factory=list)  # the gates that failed, in words
    lines: list[str] = field(default_factory=list)  # what the command says after the report, in order
    training_paths: list[str] = field(default_factory=list)  # the images the rows' training predictions are on
    class_names: list[str] = field(default_factory=list)  # rank: the name of each class id ('' unknown), as the training set names it
    error: SuscliError | None = None  # a pool that cannot be judged at all (models of different class counts)
    kept: str = ""  # rank, track: what the results file kept (run.inputs.kept_line), said where Ctrl-C stops the outputs

    @property
    def title(self) -> str:
        return f"suscli {self.command}"

    @property
    def settings(self) -> dict | None:
        return self.run.get("settings")

    @property
    def sample(self) -> dict | None:
        """The training sample the decisions settled on (images used, of how many, sizes tried); None for a full pass."""
        return self.run.get("train_sample")

    @property
    def label_noise(self) -> dict | None:
        """The share of training labels the voters' consensus contradicts, with its interval, and per class which
        given labels each consensus class carries (`noise_matrix`; rank with training data)."""
        return self.run.get("label_noise")

    @property
    def skipped(self) -> list[Result]:
        """The models that could not be loaded or run: each keeps its row, with its reason."""
        return [r for r in self.rows if not r.ok]

    @property
    def exit_code(self) -> ExitCode:
        """The command's exit code: 3 when a model could not be scored or the pool cannot be judged, 1 when a gate failed."""
        if self.error is not None or self.skipped:
            return ExitCode.INPUT
        return ExitCode.GATE_FAILED if self.failures else ExitCode.OK


def environment() -> dict[str, str]:
    """Library versions and the machine, so that a JSON report says what produced it."""
    import torch
    import torchvision

    from suscli import __version__

    env = {
        "suscli": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        env["cuda_device"] = torch.cuda.get_device_name()
    return env


def command_line() -> str:
    """The command as typed; from Python, the script that called the API with its arguments. Read as "suscli" and
    the script's arguments, a report made by `python train.py --epochs 3` named `suscli --epochs 3`, a command no
    one ran."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    if program.stem == "suscli" or (program.name == "__main__.py" and program.parent.name == "suscli"):
        return " ".join(["suscli", *sys.argv[1:]])  # the console script, python -m suscli, torchrun -m suscli
    return " ".join(["python", *sys.argv]).rstrip()


def run_info(
    settings: Settings,
    data: Path | str,
    unlabeled: ImageSource,
    train_data: Path | str | None,
    device,
    started: float,
    val: ImageSource | None = None,
    rows: list[Result] | None = None,
    **extra,
) -> dict:
    """The run-level part of a report: what was run, on what, where, with which versions, how long; `rows`, the
    models' rows, say how many images were measured."""
    scored = [r for r in rows or [] if r.ok]
    return {
        "command": command_line(),
        "settings": settings.as_dict(),
        "data": {
            "unlabeled": str(data),
            **measured_images("unlabeled", unlabeled, [r.details.get("images") for r in scored]),
            "unlabeled_population": unlabeled.population,
            "train": str(train_data) if train_data else None,
            **({"val": str(val.origin or ""), **measured_images("val", val, [r.val_n for r in scored])} if val is not None else {}),
        },
        "device": str(device),
        "environment": environment(),
        "seconds": round(time.perf_counter() - started, 3),
        **extra,
    }


def measured_images(name: str, source: ImageSource, counts: list[Any]) -> dict[str, int | None]:
    """`NAME_images`, the images of `source` the rows were measured on (`counts`, one per row), and
    `NAME_unreadable`, those of its listing skipped as unreadable. The listing's length counted the skipped ones as
    measured. Where no row was measured, the images listed, and the unreadable ones unknown (None)."""
    known = [n for n in counts if isinstance(n, int)]
    if not known:
        return {f"{name}_images": len(source.paths), f"{name}_unreadable": None}
    measured = max(known)  # every model reads the same files; the most any read, should a size decode one more
    return {f"{name}_images": measured, f"{name}_unreadable": len(source.paths) - measured}
