"""The options the commands share, declared once, in groups by the stage of an audit they set; `--help` shows each
group in its own panel. A command names the groups it takes as parameters (`inputs: InputOptions`), and
`grouped` turns every field of a group into an option for Typer and hands the command one object per group. It also
checks every number option of a command in one place before the command runs: a float must be finite, and any number
within the min and max its option declares (shown in --help), else one line and exit code 2."""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, NamedTuple, Optional, get_args, get_type_hints

import typer
from rich.markup import escape

from suscli.cli.console import fail
from suscli.defaults import ADAPTIVE, DEFAULT_BATCH_SIZE, DEFAULT_BATCHES, DEFAULT_LR, KEEP_RULES, PRESET_NAMES, RULES, START, Format
from suscli.errors import UsageError

if TYPE_CHECKING:  # imported where they are made: they load torch, which --help and a usage error do without
    from suscli.run.inputs import Inputs
    from suscli.run.settings import Settings

# The panels of --help, in the order of an audit.
INPUTS = "Inputs"
PREPROCESSING = "Preprocessing"
MEASUREMENT = "Measurement"
CHOICE = "Choice and gates"
OUTPUTS = "Outputs"
PERFORMANCE = "Performance"
PANELS = (INPUTS, PREPROCESSING, MEASUREMENT, CHOICE, OUTPUTS, PERFORMANCE)

DATA_HELP = "Unlabeled images: a folder (searched recursively, links followed once), a .txt, .csv, .tsv or .jsonl list of image paths, a Hugging Face datasets folder (save_to_disk) or parquet file; a list may be gzip, bz2 or xz compressed (list.csv.gz)."
DataOpt = Annotated[Path, typer.Option("--data", "-d", help=DATA_HELP, rich_help_panel=INPUTS)]


# Beside the main report (rank, score and track alike): a CI job keeps the table on stdout and hands these on
HtmlOpt = Annotated[
    Optional[Path],
    typer.Option(
        help="Also write the HTML report to this file: one self-contained page with the sortable table, the plot (rank and track), the gate's result and every row's numbers.",
        rich_help_panel=OUTPUTS,
    ),
]
JunitOpt = Annotated[
    Optional[Path],
    typer.Option(
        help="Also write the JUnit XML report to this file, for CI test reporters: one testcase per row (model or epoch), a failure for each that fails a gate.",
        rich_help_panel=OUTPUTS,
    ),
]


@dataclass
class InputOptions:
    """The labelled training set and how to read the checkpoints."""

    train_data: Annotated[
        Optional[Path],
        typer.Option(
            help="Training set with the labels the model was trained on: a folder of class folders (or of images with a metadata.csv), a path,label CSV (class ids or names; also .tsv, .jsonl, a path-label .txt; each also .gz, .bz2 or .xz), a Hugging Face datasets folder or parquet file.",
            rich_help_panel=INPUTS,
        ),
    ] = None
    val_data: Annotated[
        Optional[Path],
        typer.Option(
            help="Held-out images the models did not train on, with their labels (noisy ones will do), in any layout --train-data takes: each model's held-out accuracy, the gap to its training accuracy, and for rank, the choice made on them first.",
            rich_help_panel=INPUTS,
        ),
    ] = None
    image_column: Annotated[
        Optional[str],
        typer.Option(
            help="Column holding the images (or their paths) in a dataset or CSV; found from the dataset's features when omitted.",
            rich_help_panel=INPUTS,
        ),
    ] = None
    label_column: Annotated[
        Optional[str],
        typer.Option(
            help="Column holding the training labels (class ids or names) in a dataset or CSV; found from the dataset's features when omitted.",
            rich_help_panel=INPUTS,
        ),
    ] = None
    arch: Annotated[
        Optional[str],
        typer.Option(
            help="Architecture for checkpoints that do not name one, or to override what a training tool recorded: torchvision:NAME, timm:NAME, package.module:factory or file.py:factory.",
            rich_help_panel=INPUTS,
        ),
    ] = None
    arch_kwargs: Annotated[
        Optional[str], typer.Option(help="Keyword arguments for --arch: JSON object or k=v,k=v.", rich_help_panel=INPUTS)
    ] = None
    trust_checkpoint: Annotated[
        bool,
        typer.Option(
            "--trust-checkpoint",
            help="Allow checkpoints that hold pickled Python objects (a whole nn.Module) or name an architecture that is not a model builder. Loading them can run ANY code the file's author chose: only for files you trust.",
            rich_help_panel=INPUTS,
        ),
    ] = False
    ema: Annotated[
        bool,
        typer.Option(
            "--ema",
            help="Use the averaged (EMA or SWA) weights a training checkpoint holds beside its plain weights (timm's state_dict_ema, torchvision's model_ema, ema-pytorch, torch_ema, diffusers' EMAModel, an EMA helper's shadow, Lightning's averaging callbacks).",
            rich_help_panel=INPUTS,
        ),
    ] = False


@dataclass
class PreprocessOptions:
    """How images become model inputs, where the checkpoint does not say."""

    preset: Annotated[
        Optional[str], typer.Option(help=f"Normalization and image size preset: {', '.join(PRESET_NAMES)}.", rich_help_panel=PREPROCESSING)
    ] = None
    mean: Annotated[
        Optional[str], typer.Option(help="Per-channel mean, comma-separated (overrides the preset).", rich_help_panel=PREPROCESSING)
    ] = None
    std: Annotated[
        Optional[str], typer.Option(help="Per-channel std, comma-separated (overrides the preset).", rich_help_panel=PREPROCESSING)
    ] = None
    image_size: Annotated[
        Optional[str],
        typer.Option(
            metavar="N",
            help="Side of the square model input (32, or 32x32); images are resized and center-cropped. suscli feeds square images only.",
            rich_help_panel=PREPROCESSING,
        ),
    ] = None


@dataclass
class MeasureOptions:
    """What decides the numbers: the images used, the random labels and the step."""

    samples: Annotated[
        Optional[int],
        typer.Option(min=1, help="Use a seeded subset of this many unlabeled images. Default: every image.", rich_help_panel=MEASUREMENT),
    ] = None
    train_samples: Annotated[
        str,
        typer.Option(
            help="Training images for training accuracy: 'auto' (default) a seeded sample that starts at "
            f"{START} images and doubles only while that changes a decision (rank: regions, verdicts, order, pick; score: its verdict and gates; track: the epoch "
            "to keep); 'all' every image; "
            "N a fixed seeded sample of N. A sample's 95% interval and size are in the report.",
            rich_help_panel=MEASUREMENT,
        ),
    ] = ADAPTIVE
    seed: Annotated[
        int,
        typer.Option(
            min=0,
            max=2**32 - 1,
            help="Seed of the random labels, batches and samples: same seed, same numbers.",
            rich_help_panel=MEASUREMENT,
        ),
    ] = 0
    lr: Annotated[float, typer.Option(min=1e-12, help="Step size of the plain SGD step on random labels.", rich_help_panel=MEASUREMENT)] = (
        DEFAULT_LR
    )
    batches: Annotated[int, typer.Option(min=1, help="Random-label batches averaged.", rich_help_panel=MEASUREMENT)] = DEFAULT_BATCHES
    batch_size: Annotated[int, typer.Option(min=1, help="Images per random-label batch.", rich_help_panel=MEASUREMENT)] = DEFAULT_BATCH_SIZE
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail on an unreadable image instead of skipping it.", rich_help_panel=MEASUREMENT)
    ] = False


@dataclass
class PerformanceOptions:
    """Where the work runs and what is kept between runs; none of it changes a number."""

    device: Annotated[
        str, typer.Option(help="auto, cpu, cuda, cuda:N or mps. auto takes the GPU when there is one.", rich_help_panel=PERFORMANCE)
    ] = "auto"
    cache_dir: Annotated[
        Optional[Path],
        typer.Option(
            help="Folder of the decoded-image cache. Default: $SUSCLI_CACHE_DIR, else $XDG_CACHE_HOME/suscli or ~/.cache/suscli.",
            rich_help_panel=PERFORMANCE,
        ),
    ] = None
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="Decode the images again, without reading or writing the cache.", rich_help_panel=PERFORMANCE),
    ] = False


@dataclass
class PoolOptions:
    """How a pool (rank) or a run (track) is measured and resumed."""

    model_batch: Annotated[
        Optional[int],
        typer.Option(
            min=1,
            help="Measure up to N models of the same architecture and preprocessing together (torch.func vmap over their stacked weights); same numbers within float tolerance. Default: 8 on CUDA, where small models leave the GPU idle; 1 elsewhere, since on a few CPU cores the work is compute-bound and batching does not help. Under torchrun, per rank.",
            rich_help_panel=PERFORMANCE,
        ),
    ] = None
    results: Annotated[
        Optional[Path],
        typer.Option(
            help="Resumable results file (JSON lines) of this one set of settings, shared by rank and track: one holding other settings' results is refused; a folder of it that does not exist is created (and said), unlike the reports'. Default: suscli-results.jsonl in the pool or run folder, or beside a manifest (in the cache folder when that cannot be written), which keeps each set of settings' results.",
            rich_help_panel=OUTPUTS,
        ),
    ] = None
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start the results file over instead of reusing its results.", rich_help_panel=OUTPUTS)
    ] = False


@dataclass
class OutputOptions:
    """The report: its format and where it goes."""

    fmt: Annotated[Format, typer.Option("--format", "-f", help="Report format.", rich_help_panel=OUTPUTS)] = Format.table
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output", "-o", help="Write the report to this file (atomically) instead of stdout; - is stdout.", rich_help_panel=OUTPUTS
        ),
    ] = None
    per_image: Annotated[
        bool,
        typer.Option(
            "--per-image",
            help="Keep each model's per-image predictions in the JSON report (rank and track keep them in their results file).",
            rich_help_panel=OUTPUTS,
        ),
    ] = False


class FailOn(str, Enum):
    never = "never"
    memorized = "memorized"


class Thresholds(str, Enum):
    mean = "mean"
    median = "median"


SelectRule = Enum("SelectRule", {name.replace("-", "_"): name for name in RULES}, type=str)  # type: ignore[misc]
KeepRule = Enum("KeepRule", {name.replace("-", "_"): name for name in KEEP_RULES}, type=str)  # type: ignore[misc]


def grouped(command: Callable[..., Any]) -> Callable[..., Any]:
    """`command` with each parameter annotated by an option group (a dataclass of Typer options) replaced, for Typer,
    by the group's fields; called, it gets one group object per such parameter. Options are listed panel by panel."""
    hints = get_type_hints(command, include_extras=True)
    own: list[inspect.Parameter] = []
    options: list[inspect.Parameter] = []
    groups: dict[str, tuple[type, list[str]]] = {}
    for name, param in inspect.signature(command).parameters.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind) and isinstance(kind, type):
            fields = get_type_hints(kind, include_extras=True)
            groups[name] = (kind, [f.name for f in dataclasses.fields(kind)])
            options += [
                inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=fields[f.name], default=f.default)
                for f in dataclasses.fields(kind)
            ]
        elif param.kind == inspect.Parameter.KEYWORD_ONLY:
            options.append(param.replace(annotation=kind))
        else:
            own.append(param.replace(annotation=kind))
    options.sort(key=lambda p: PANELS.index(_panel(p.annotation)))
    numbers = [number for number in map(_number, options) if number is not None]
    options = [p.replace(annotation=_unbounded(p.annotation)) for p in options]

    @functools.wraps(command)
    def run(*args: Any, **values: Any) -> Any:
        for number in numbers:
            number.check(values.get(number.name))
        for name, (kind, fields) in groups.items():
            values[name] = kind(**{f: values.pop(f) for f in fields if f in values})
        return command(*args, **values)

    parameters = own + options
    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    return run


class _Number(NamedTuple):
    """A numeric option's bounds, checked here rather than by Typer: its error is a panel of several lines."""

    name: str
    flag: str
    finite: bool  # a float: inf and nan are refused as well
    low: int | float | None
    high: int | float | None

    def check(self, value: Any) -> None:
        """One line and exit code 2 for a value that is not a finite number (a float option) or is out of bounds."""
        if value is None:
            return
        if self.finite and not math.isfinite(value):
            raise fail(UsageError(f"{self.flag} takes a finite number, got {value}"))
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            whole = "" if self.finite else "whole "
            shown = int(value) if isinstance(value, float) and value.is_integer() else value  # -1, as typed, not -1.0
            raise fail(UsageError(f"{self.flag} takes a {whole}number {_bounds_words(self.low, self.high)}, got {shown}"))


def _number(param: inspect.Parameter) -> _Number | None:
    """The checks of an int or float option (a float must be finite; either within the min and max it declares)."""
    info = _option(param.annotation)
    kind = param.annotation.__origin__
    types = {kind, *get_args(kind)}
    if info is None or not types & {int, float} or bool in types:
        return None
    flags = [d for d in (info.default, *info.param_decls) if isinstance(d, str) and d.startswith("--")]
    flag = flags[0] if flags else "--" + param.name.replace("_", "-")
    return _Number(param.name, flag, float in types, info.min, info.max)


def _unbounded(annotation: Any) -> Any:
    """`annotation` with its option's min and max moved from Typer's check (see _Number) to the help text."""
    info = _option(annotation)
    if info is None or (info.min is None and info.max is None):
        return annotation
    shown = copy.copy(info)
    if info.min is not None and info.max is not None:
        bounds = f"{_show(info.min)}<=x<={_show(info.max)}"
    else:
        bounds = f"x>={_show(info.min)}" if info.min is not None else f"x<={_show(info.max)}"
    shown.help = f"{info.help or ''}  {escape(f'[{bounds}]')}".strip()  # escaped: Rich would take [x>=1] for a style
    shown.min = shown.max = None
    return Annotated[annotation.__origin__, shown]


def _option(annotation: Any) -> Any:
    """The typer.Option of an Annotated parameter, or None."""
    return next((m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, typer.models.OptionInfo)), None)


def _show(bound: int | float) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def _bounds_words(low: int | float | None, high: int | float | None) -> str:
    if low is not None and high is not None:
        return f"from {_show(low)} to {_show(high)}"
    if low is not None:
        return f"of at least {_show(low)}"
    return f"of at most {_show(high)}" if high is not None else "of any size"


def _panel(annotation: Any) -> str:
    """The --help panel of an Annotated option."""
    return next(m.rich_help_panel for m in getattr(annotation, "__metadata__", ()) if hasattr(m, "rich_help_panel"))


def settings(preprocess: PreprocessOptions, measure: MeasureOptions) -> Settings:
    """The Settings the options spell, checked: a preset that exists, --mean with --std on the pixels' 0-1 scale, positive stds."""
    from suscli.measure.susceptibility import SusceptibilityConfig
    from suscli.run.settings import Settings, require_channel_values, require_pixel_mean

    if preprocess.preset is not None and preprocess.preset not in PRESET_NAMES:
        raise UsageError(f"unknown preset {preprocess.preset!r}", fix=f"use one of {', '.join(PRESET_NAMES)}")
    mean, std = _floats(preprocess.mean, "--mean"), _floats(preprocess.std, "--std")
    if (mean is None) != (std is None):
        raise UsageError("--mean and --std go together", fix="give both, or use --preset")
    require_channel_values({"--mean": mean, "--std": std})
    require_pixel_mean("--mean", mean, std)
    if std is not None and any(s <= 0 for s in std):
        raise UsageError("--std values must be positive")
    return Settings(
        susceptibility=SusceptibilityConfig(lr=measure.lr, batches=measure.batches, batch_size=measure.batch_size, seed=measure.seed),
        samples=measure.samples,
        train_samples=_train_samples(measure.train_samples),
        preset=preprocess.preset,
        mean=mean,
        std=std,
        image_size=_image_size(preprocess.image_size),
        strict=measure.strict,
    )


def inputs(given: InputOptions, performance: PerformanceOptions, pool: PoolOptions | None = None) -> Inputs:
    """The API's Inputs from the options that say how to read images and checkpoints and where to run."""
    from suscli.load.arch import parse_arch_kwargs
    from suscli.run.inputs import Inputs

    if given.arch_kwargs is not None and given.arch is None:
        raise UsageError(
            "--arch-kwargs goes with --arch: an architecture a checkpoint names is built with the kwargs it names",
            fix="pass --arch too, or leave --arch-kwargs out",
        )
    return Inputs(
        image_column=given.image_column,
        label_column=given.label_column,
        arch=given.arch,
        arch_kwargs=parse_arch_kwargs(given.arch_kwargs),
        trust_checkpoint=given.trust_checkpoint,
        ema=given.ema,
        device=performance.device,
        cache_dir=performance.cache_dir,
        cache=not performance.no_cache,
        model_batch=pool.model_batch if pool else None,
    )


def _floats(text: str | None, option: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{option} takes comma-separated numbers, got {text!r}") from None


def _image_size(text: str | None) -> int | None:
    """--image-size: one side, or a square as height x width (32x32), as a model's input shape is written; height and
    width apart (64x32) are told that suscli feeds square images only, where an int option said "Input should be a
    valid integer"."""
    from suscli.data.images import SQUARE_ONLY

    if text is None:
        return None
    sides = text.strip().lower().split("x")
    # isdecimal, not isdigit: "²" is a digit that int() refuses
    if len(sides) in (1, 2) and all(s.strip().isdecimal() and int(s) > 0 for s in sides):
        if len({int(s) for s in sides}) == 1:
            return int(sides[0])
        raise UsageError(
            f"--image-size takes the side of a square (32, or 32x32): {SQUARE_ONLY}, got {text} ({int(sides[0])} high, {int(sides[1])} wide)"
        )
    raise UsageError(f"--image-size takes a whole number of at least 1, the side of a square (32, or 32x32), got {text!r}")


def _train_samples(text: str) -> int | str | None:
    """--train-samples: 'auto' (the adaptive sample), 'all' (None: every image) or a positive number."""
    value = text.strip().lower()
    if value == ADAPTIVE:
        return ADAPTIVE
    if value == "all":
        return None
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise UsageError(f"--train-samples takes auto, all or a positive number, got {text!r}")
