"""The command line: parses options, calls the Python API, prints reports. No measurement happens here.

Exit codes: 0 ok, 1 a gate failed, 2 usage error, 3 an input could not be loaded or run (also used for an
unexpected internal error, which is reported in one line; SUSCLI_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from suscli.load.arch import parse_arch_kwargs
from suscli.run.audit import audit_pool, grow_locally, grow_pool, run_settings, settle_sample
from suscli.measure.batched import default_model_batch
from suscli.data.cache import default_cache_dir
from suscli.load.checkpoints import load_checkpoint
from suscli.run.distributed import audit_shards, grow_shards, process_group, rank_device, world
from suscli.errors import ExitCode, InputError, SuscliError, UsageError
from suscli.files import require_folder, write_atomic
from suscli.judge.gate import candidate_failure, threshold_failures
from suscli.data.images import PRESETS, ImageSource, labeled_source, unlabeled_source
from suscli.views.plot import plot_pool
from suscli.run.pool import discover
from suscli.judge.regions import MIN_POOL, pool_classes, thresholds
from suscli.judge.rules import DEFAULT_RULE, RULES, Choice, choose, pool_decisions
from suscli.run.epochs import DEFAULT_KEEP, KEEP_RULES
from suscli.views.formats import Format, command_line, environment, noise_line, render, suspects_csv, to_markdown, to_table
from suscli.results import Result
from suscli.run.store import ResultStore, fingerprint, results_location
from suscli.measure.sampling import ADAPTIVE, RECORD, START, Decisions, NestedSample, nested_sample
from suscli.run.model import Settings, resolve_device, score_checkpoint
from suscli.measure.susceptibility import DEFAULT_BATCH_SIZE, DEFAULT_BATCHES, DEFAULT_LR, SusceptibilityConfig
from suscli.judge import verdict
from suscli.judge.verdict import MEMORIZED

EXIT_CODES_HELP = "Exit codes: 0 ok, 1 gate failed, 2 usage error, 3 an input could not be loaded or run."

app = typer.Typer(
    help="Audit trained image classifiers for memorized label noise, with unlabeled images only.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
stderr = Console(stderr=True, soft_wrap=True)  # messages stay one line, whatever the width

# Options shared by the commands (typer's public Annotated API).
DataOpt = Annotated[
    Path,
    typer.Option(
        "--data",
        "-d",
        help="Unlabeled images: a folder (searched recursively, links followed once), a .txt or .csv list of image paths, a Hugging Face datasets folder (save_to_disk) or parquet file.",
    ),
]
TrainDataOpt = Annotated[
    Optional[Path],
    typer.Option(
        help="Training set with the labels the model was trained on: a folder of class folders, a path,label CSV (class ids or names), a Hugging Face datasets folder or parquet file."
    ),
]
ImageColumnOpt = Annotated[
    Optional[str],
    typer.Option(help="Column holding the images (or their paths) in a dataset or CSV; found from the dataset's features when omitted."),
]
LabelColumnOpt = Annotated[
    Optional[str],
    typer.Option(
        help="Column holding the training labels (class ids or names) in a dataset or CSV; found from the dataset's features when omitted."
    ),
]
ArchOpt = Annotated[
    Optional[str],
    typer.Option(
        help="Architecture for checkpoints that do not name one, or to override what a training tool recorded: torchvision:NAME, timm:NAME, package.module:factory or file.py:factory."
    ),
]
ArchKwargsOpt = Annotated[Optional[str], typer.Option(help="Keyword arguments for --arch: JSON object or k=v,k=v.")]
NumClassesOpt = Annotated[Optional[int], typer.Option(help="Classes of the model; inferred from the classifier weights when omitted.")]
TrustOpt = Annotated[
    bool,
    typer.Option(
        "--trust-checkpoint",
        help="Allow checkpoints that hold pickled Python objects (a whole nn.Module) or name an architecture that is not a model builder. Loading them can run ANY code the file's author chose: only for files you trust.",
    ),
]
EmaOpt = Annotated[
    bool,
    typer.Option(
        "--ema",
        help="Use the EMA weights a training checkpoint holds beside its plain weights (timm's state_dict_ema, torchvision's model_ema).",
    ),
]
PresetOpt = Annotated[Optional[str], typer.Option(help=f"Normalization and image size preset: {', '.join(PRESETS)}.")]
MeanOpt = Annotated[Optional[str], typer.Option(help="Per-channel mean, comma-separated (overrides the preset).")]
StdOpt = Annotated[Optional[str], typer.Option(help="Per-channel std, comma-separated (overrides the preset).")]
ImageSizeOpt = Annotated[Optional[int], typer.Option(min=1, help="Side of the square model input; images are resized and center-cropped.")]
SamplesOpt = Annotated[Optional[int], typer.Option(min=1, help="Use a seeded subset of this many unlabeled images.")]
TrainSamplesOpt = Annotated[
    str,
    typer.Option(
        help="Training images for training accuracy: 'auto' (default) a seeded sample that starts at "
        f"{START} images and doubles only while that changes a decision (regions, order, pick, gates); 'all' every image; "
        "N a fixed seeded sample of N. A sample's 95% interval and size are in the report."
    ),
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the random labels, batches and samples: same seed, same numbers.")]
LrOpt = Annotated[float, typer.Option(min=1e-12, help="Step size of the plain SGD step on random labels.")]
BatchesOpt = Annotated[int, typer.Option(min=1, help="Random-label batches averaged.")]
BatchSizeOpt = Annotated[int, typer.Option(min=1, help="Images per random-label batch.")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps. auto takes the GPU when there is one.")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Fail on an unreadable image instead of skipping it.")]
CacheDirOpt = Annotated[
    Optional[Path],
    typer.Option(help="Folder of the decoded-image cache. Default: $SUSCLI_CACHE_DIR, else $XDG_CACHE_HOME/suscli or ~/.cache/suscli."),
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Decode the images again, without reading or writing the cache.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Report format.")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the report to this file (atomically) instead of stdout.")]
ModelBatchOpt = Annotated[
    Optional[int],
    typer.Option(
        min=1,
        help="Measure up to N models of the same architecture and preprocessing together (torch.func vmap over their stacked weights); same numbers within float tolerance. Default: 8 on CUDA, where small models leave the GPU idle; 1 elsewhere, since on a few CPU cores the work is compute-bound and batching does not help. Under torchrun, per rank.",
    ),
]


def fail(error: SuscliError) -> typer.Exit:
    """The one place user-facing errors are printed: one line on stderr, then the error's exit code."""
    stderr.print(f"[bold red]error:[/] {escape(error.line())}", highlight=False, soft_wrap=True)
    return typer.Exit(int(error.code))


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except SuscliError as e:
        raise fail(e) from None
    except KeyboardInterrupt:
        stderr.print("interrupted", highlight=False)
        raise typer.Exit(130) from None


@contextlib.contextmanager
def progress_bar() -> Iterator:
    """A transient progress display on stderr (stdout stays machine-readable); silent when stderr is no terminal."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield update


def image_sources(
    data: Path,
    train_data: Path | None,
    settings: Settings,
    cache_dir: Path | None,
    no_cache: bool,
    image_column: str | None = None,
    label_column: str | None = None,
) -> tuple[ImageSource, ImageSource | None, NestedSample | None]:
    """The unlabeled images, the labelled training set (or None) and, with --train-samples auto, its nested sample
    (the training set is then the whole set in the sample's order: its identity keys the results file). Sampled by
    the settings' seed, decoded through the on-disk cache (docs/performance.md) unless --no-cache."""
    cache = None if no_cache else cache_dir or default_cache_dir()
    seed, strict = settings.susceptibility.seed, settings.strict
    unlabeled = unlabeled_source(data, samples=settings.samples, seed=seed, strict=strict, cache_dir=cache, image_column=image_column)
    if train_data is None:
        return unlabeled, None, None
    adaptive = settings.train_samples == ADAPTIVE
    train = labeled_source(
        train_data,
        samples=None if adaptive else settings.train_samples,
        seed=seed,
        strict=strict,
        cache_dir=cache,
        image_column=image_column,
        label_column=label_column,
    )
    if not adaptive:
        return unlabeled, train, None
    sample = nested_sample(train, seed)
    return unlabeled, sample.ordered, sample


def sample_line(sample: NestedSample, rows: list[Result], size: int) -> str | None:
    """One line on the training sample the decisions settled on; None when it is the whole set by its size."""
    if size == sample.population and sample.sizes == [size]:
        return None
    used = max((r.train_n or 0 for r in rows if r.ok), default=0)
    if size == sample.population:
        return f"training accuracy on all {used:,} training images: the sample grew to the whole set"
    before = sample.sizes[sample.sizes.index(size) - 1] if size != sample.sizes[0] else None
    why = f"the decisions were the same at {before:,} and {size:,} images" if before else "no decision depends on it"
    return (
        f"training accuracy on a seeded sample of {used:,} of {sample.population:,} training images ({why}); "
        "--train-samples all measures every image"
    )


def sample_info(sample: NestedSample | None, rows: list[Result], size: int | None) -> dict | None:
    """The run-level record of the sample: how many images it held and of how many, and the sizes tried."""
    if sample is None or size is None:
        return None
    return {
        "mode": ADAPTIVE,
        "images": max((r.train_n or 0 for r in rows if r.ok), default=0),
        "listed": size,
        "population": sample.population,
        "sizes_tried": [n for n in sample.sizes if n <= size],
    }


def open_store(
    results: Path | None,
    pool: Path,
    cache_dir: Path | None,
    fresh: bool,
    settings: Settings,
    unlabeled,
    train,
    device,
    arch: str | None,
    kwargs: dict,
    ema: bool = False,
) -> ResultStore:
    """The resumable results file, keyed by everything that decides the numbers; emptied first with --fresh. The
    default one (beside the pool, or in the cache folder when the pool's is read-only) keeps every set of settings'
    results side by side, so a changed setting is a rerun, not an error; an explicit --results is one experiment."""
    path, moved = (results, None) if results is not None else results_location(pool, cache_dir or default_cache_dir())
    if moved:
        stderr.print(moved, highlight=False)
    if fresh:
        ResultStore.reset(path)
    key_settings = {
        **run_settings(settings, unlabeled, train, device),
        "arch": arch,
        "arch_kwargs": kwargs,
        **({"ema": True} if ema else {}),
    }  # absent when off: results files from before --ema stay valid
    store = ResultStore(path, fingerprint(key_settings), key_settings, keep_others=results is None)
    if note := store.note():
        stderr.print(note, highlight=False)
    return store


def parse_floats(text: str | None, option: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{option} takes comma-separated numbers, got {text!r}") from None


def train_sample_setting(text: str) -> int | str | None:
    """--train-samples: 'auto' (the adaptive sample), 'all' (None: every image) or a positive number."""
    value = text.strip().lower()
    if value == ADAPTIVE:
        return ADAPTIVE
    if value == "all":
        return None
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise UsageError(f"--train-samples takes auto, all or a positive number, got {text!r}")


def make_settings(preset, mean, std, image_size, samples, train_samples, seed, lr, batches, batch_size, strict) -> Settings:
    if preset is not None and preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}", fix=f"use one of {', '.join(PRESETS)}")
    mean_t, std_t = parse_floats(mean, "--mean"), parse_floats(std, "--std")
    if (mean_t is None) != (std_t is None):
        raise UsageError("--mean and --std go together", fix="give both, or use --preset")
    if std_t is not None and any(s <= 0 for s in std_t):
        raise UsageError("--std values must be positive")
    return Settings(
        susceptibility=SusceptibilityConfig(lr=lr, batches=batches, batch_size=batch_size, seed=seed),
        samples=samples,
        train_samples=train_sample_setting(train_samples),
        preset=preset,
        mean=mean_t,
        std=std_t,
        image_size=image_size,
        strict=strict,
    )


def emit(rows: list[Result], fmt: Format, output: Path | None, run: dict, title: str) -> None:
    """Write the report atomically to --output, or to stdout: the same text either way (report.render). Only a
    table shown on a terminal is drawn differently, in colour and at the terminal's width."""
    if output is None and fmt == Format.table and sys.stdout.isatty():
        Console().print(to_table(rows, title))
        return
    text = render(rows, fmt, run, title)
    if output is None:
        sys.stdout.write(text)
        return
    write_atomic(output, text)
    stderr.print(f"report written to {output}", highlight=False)


def check_destinations(output: Path | None, plot: Path | None = None) -> None:
    """The folders of --output and --plot exist: checked before measuring, not after."""
    for path, what, option in ((output, "", "--output"), (plot, "plot ", "--plot")):
        if path is not None:
            require_folder(path, what, option)


def run_info(settings: Settings, data: Path, unlabeled, train_data: Path | None, device, started: float, **extra) -> dict:
    """The run-level part of a JSON report: what was run, on what, where, with which versions, how long."""
    return {
        "command": command_line(),
        "settings": settings.as_dict(),
        "data": {
            "unlabeled": str(data),
            "unlabeled_images": len(unlabeled.paths),
            "unlabeled_population": unlabeled.population,
            "train": str(train_data) if train_data else None,
        },
        "device": str(device),
        "environment": environment(),
        "seconds": round(time.perf_counter() - started, 3),
        **extra,
    }


@app.command()
def score(
    checkpoint: Annotated[
        Path,
        typer.Argument(
            help="Checkpoint: .safetensors, .pt/.pth/.th/.bin/.ckpt/.pth.tar, TorchScript, .pt2, or a Hugging Face model folder."
        ),
    ],
    data: DataOpt,
    train_data: TrainDataOpt = None,
    image_column: ImageColumnOpt = None,
    label_column: LabelColumnOpt = None,
    arch: ArchOpt = None,
    arch_kwargs: ArchKwargsOpt = None,
    num_classes: NumClassesOpt = None,
    trust_checkpoint: TrustOpt = False,
    ema: EmaOpt = False,
    preset: PresetOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    image_size: ImageSizeOpt = None,
    samples: SamplesOpt = None,
    train_samples: TrainSamplesOpt = ADAPTIVE,
    seed: SeedOpt = 0,
    lr: LrOpt = DEFAULT_LR,
    batches: BatchesOpt = DEFAULT_BATCHES,
    batch_size: BatchSizeOpt = DEFAULT_BATCH_SIZE,
    device: DeviceOpt = "auto",
    strict: StrictOpt = False,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    max_susceptibility: Annotated[Optional[float], typer.Option(help="Gate: exit 1 when susceptibility is above this.")] = None,
    min_train_acc: Annotated[
        Optional[float], typer.Option(min=0.0, max=1.0, help="Gate: exit 1 when training accuracy (0-1) is below this.")
    ] = None,
) -> None:
    """Measure one checkpoint's susceptibility (and training accuracy with --train-data)."""
    started = time.perf_counter()
    with user_errors():
        settings = make_settings(preset, mean, std, image_size, samples, train_samples, seed, lr, batches, batch_size, strict)
        if min_train_acc is not None and train_data is None:
            raise UsageError("--min-train-acc needs --train-data")
        check_destinations(output)
        dev = resolve_device(device)
        kwargs = parse_arch_kwargs(arch_kwargs)
        ckpt = load_checkpoint(
            checkpoint, default_arch=arch, default_arch_kwargs=kwargs, num_classes=num_classes, trust=trust_checkpoint, ema=ema
        )
        unlabeled, train, sample = image_sources(data, train_data, settings, cache_dir, no_cache, image_column, label_column)
        size = None
        with progress_bar() as update:
            if sample is None:
                result = score_checkpoint(ckpt, unlabeled, train, settings=settings, device=dev, progress=update)
            else:
                first = score_checkpoint(ckpt, unlabeled, sample.chunk(0, sample.sizes[0]), settings=settings, device=dev, progress=update)

                def decide(rows: list[Result]) -> Decisions | None:
                    """The gate on training accuracy, and the verdict where it asks whether the model fits better than
                    chance (above the fixed cut); None, so the first stage, when neither depends on training accuracy."""
                    r = rows[0]
                    gate = () if min_train_acc is None else (bool(threshold_failures(r, None, min_train_acc)),)
                    if not gate and not verdict.fit_decides_alone(r):
                        return None
                    judged = verdict.judge(r, None, None)
                    return Decisions(verdicts=((r.name, judged.word if judged else None),), gates=gate)

                rows = [first]
                [result], size = settle_sample(rows, sample, grow_locally(rows, sample, lambda i: ckpt, device=dev), decide, device=dev)
        failures = threshold_failures(result, max_susceptibility, min_train_acc)
        verdict.assign([result], None, None)  # a pool of one: the verdict's fixed cuts
        run = run_info(
            settings,
            data,
            unlabeled,
            train_data,
            dev,
            started,
            gate={"max_susceptibility": max_susceptibility, "min_train_acc": min_train_acc, "passed": not failures},
            train_sample=sample_info(sample, [result], size),
        )
        emit([result], fmt, output, run, title="suscli score")
        if sample is not None and size is not None and (line := sample_line(sample, [result], size)):
            stderr.print(line, highlight=False)
    if failures:
        for f in failures:
            stderr.print(f"gate failed: {f}", highlight=False)
        raise typer.Exit(int(ExitCode.GATE_FAILED))


class FailOn(str, Enum):
    never = "never"
    memorized = "memorized"


class Rule(str, Enum):
    mean = "mean"
    median = "median"


SelectRule = Enum("SelectRule", {name.replace("-", "_"): name for name in RULES}, type=str)
KeepRule = Enum("KeepRule", {name.replace("-", "_"): name for name in KEEP_RULES}, type=str)


@app.command()
def rank(
    pool: Annotated[Path, typer.Argument(help="Folder of checkpoints (each subfolder one run), or a .json/.csv manifest.")],
    data: DataOpt,
    train_data: TrainDataOpt = None,
    image_column: ImageColumnOpt = None,
    label_column: LabelColumnOpt = None,
    arch: ArchOpt = None,
    arch_kwargs: ArchKwargsOpt = None,
    trust_checkpoint: TrustOpt = False,
    ema: EmaOpt = False,
    all_checkpoints: Annotated[
        bool, typer.Option("--all-checkpoints", help="Rank every checkpoint of a run folder, not only its latest.")
    ] = False,
    preset: PresetOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    image_size: ImageSizeOpt = None,
    samples: SamplesOpt = None,
    train_samples: TrainSamplesOpt = ADAPTIVE,
    seed: SeedOpt = 0,
    lr: LrOpt = DEFAULT_LR,
    batches: BatchesOpt = DEFAULT_BATCHES,
    batch_size: BatchSizeOpt = DEFAULT_BATCH_SIZE,
    device: DeviceOpt = "auto",
    strict: StrictOpt = False,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    rule: Annotated[
        SelectRule,
        typer.Option(
            "--rule",
            help="How to choose the model to ship (docs/rank.md): 'agreement' (default: best on the validation zoo) ranks by agreement with the consensus of region 1 on the unlabeled images; 'regions' is the paper's rule.",
        ),
    ] = SelectRule(DEFAULT_RULE),
    thresholds_rule: Annotated[
        Rule, typer.Option("--thresholds", help="Split the pool at the mean (the paper's rule) or the median.")
    ] = Rule.mean,
    zeta_threshold: Annotated[Optional[float], typer.Option(help="Fixed susceptibility threshold (instead of the pool's).")] = None,
    acc_threshold: Annotated[
        Optional[float], typer.Option(min=0.0, max=1.0, help="Fixed training-accuracy threshold, 0-1 (instead of the pool's).")
    ] = None,
    results: Annotated[
        Optional[Path],
        typer.Option(
            help="Resumable results file (JSON lines) of this one set of settings: one holding other settings' results is refused. Default: POOL/suscli-results.jsonl, or beside a manifest (in the cache folder when that cannot be written), which keeps each set of settings' results."
        ),
    ] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start the results file over instead of reusing its results.")] = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    plot: Annotated[
        Optional[Path], typer.Option(help="Draw training accuracy against susceptibility to this image file (needs matplotlib).")
    ] = None,
    fail_on: Annotated[
        FailOn, typer.Option(help="Gate: 'memorized' exits 1 when any model's verdict is 'likely memorized noise'.")
    ] = FailOn.never,
    candidate: Annotated[
        Optional[str], typer.Option(help="Gate: exit 1 unless the model of this name lands in region 1 of the pool.")
    ] = None,
    model_batch: ModelBatchOpt = None,
    suspects: Annotated[
        Optional[Path],
        typer.Option(
            help="Write the training images whose label the pool's consensus contradicts to this CSV (path, given label, consensus label, vote share)."
        ),
    ] = None,
    html: Annotated[
        Optional[Path],
        typer.Option(
            help="Also write the HTML report to this file: one self-contained page with the sortable table, the plot, the gate's result and every model's numbers."
        ),
    ] = None,
    junit: Annotated[
        Optional[Path],
        typer.Option(
            help="Also write the JUnit XML report to this file, for CI test reporters: one testcase per model, a failure for each model that fails the gate."
        ),
    ] = None,
) -> None:
    """Rank a pool of models: regions, verdicts, the model to ship, the label-noise estimate, and CI gates."""
    started = time.perf_counter()
    with user_errors():
        settings = make_settings(preset, mean, std, image_size, samples, train_samples, seed, lr, batches, batch_size, strict)
        if candidate is not None and train_data is None:
            raise UsageError("--candidate needs --train-data: regions need training accuracy")
        if suspects is not None and train_data is None:
            raise UsageError("--suspects needs --train-data: the suspects are training labels")
        w = world()  # under torchrun: this process measures its share of the pool (docs/distributed.md)
        if w is None or w.rank == 0:  # the only process that writes them, maybe on another machine than the others
            check_destinations(output, plot)
            for path, what, option in ((suspects, "suspects ", "--suspects"), (html, "", "--html"), (junit, "", "--junit")):
                if path is not None:
                    require_folder(path, what, option)
        dev = resolve_device(device) if w is None else rank_device(w, resolve_device(device))
        kwargs = parse_arch_kwargs(arch_kwargs)
        entries = discover(pool, all_checkpoints=all_checkpoints)
        if candidate is not None and candidate not in {e.name for e in entries}:
            raise UsageError(f"--candidate {candidate!r} is not in the pool", fix=f"pool models: {', '.join(e.name for e in entries[:8])}")
        unlabeled, train, sample = image_sources(data, train_data, settings, cache_dir, no_cache, image_column, label_column)
        lead = w is None or w.rank == 0  # the results file and every report are rank 0's alone
        store = open_store(results, pool, cache_dir, fresh, settings, unlabeled, train, dev, arch, kwargs, ema) if lead else None
        results_path = store.path if store is not None else None
        reused = len(store) if store is not None else 0
        if w is None:
            audit = functools.partial(audit_pool, model_batch=model_batch or default_model_batch(dev))
        else:  # each rank measures its share of the models, up to --model-batch at a time
            audit = functools.partial(audit_shards, w, model_batch=model_batch or default_model_batch(dev))
        size = None
        try:
            with progress_bar() as update, process_group(dev) if w else contextlib.nullcontext():
                rows = audit(
                    entries,
                    unlabeled,
                    train if sample is None else sample.chunk(0, sample.sizes[0]),
                    settings=settings,
                    device=dev,
                    store=store,
                    default_arch=arch,
                    default_arch_kwargs=kwargs,
                    trust=trust_checkpoint,
                    ema=ema,
                    progress=update,
                )
                if sample is not None:  # then grow it while the decisions change (under torchrun, every rank its share)

                    def decide(rows: list[Result]) -> Decisions:
                        return pool_decisions(rows, rule.value, thresholds_rule.value, zeta_threshold, acc_threshold)

                    grow = functools.partial(grow_pool, rows) if w is None else functools.partial(grow_shards, w, rows)
                    grown = grow(
                        entries,
                        sample,
                        decide,
                        device=dev,
                        store=store,
                        default_arch=arch,
                        default_arch_kwargs=kwargs,
                        trust=trust_checkpoint,
                        ema=ema,
                        progress=update,
                        model_batch=model_batch or default_model_batch(dev),
                    )
                    rows, size = grown if grown is not None else (None, None)
        except KeyboardInterrupt:
            if store is not None:
                stderr.print(
                    f"interrupted: {len(store)} result(s) kept in {results_path}; rerun the same command to resume", highlight=False
                )
            raise typer.Exit(130) from None
        if rows is None:
            return  # another rank than 0: rank 0 prints and writes everything
        mixed = len(pool_classes(rows)) > 1
        t = None if mixed else thresholds(rows, thresholds_rule.value, zeta_threshold, acc_threshold)
        choice = choose(rows, rule.value, t)
        ranked, closing = choice.ranked, choice.why
        n_ok = sum(r.ok for r in rows)
        failures = [] if mixed else gate_messages(ranked, fail_on, candidate, t)  # mixed: the error below, not "needs regions"
        if t is None and train is not None and n_ok < MIN_POOL:
            stderr.print(
                f"regions need a pool of {MIN_POOL}+ scored models: pass --zeta-threshold and --acc-threshold to judge fewer",
                highlight=False,
            )
        run = run_info(
            settings,
            data,
            unlabeled,
            train_data,
            dev,
            started,
            pool=str(pool),
            thresholds=None if t is None else {"susceptibility": t.susceptibility, "train_acc": t.train_acc, "source": t.source},
            recommendation=closing,
            choice={
                "rule": rule.value,
                "pick": choice.pick.name if choice.pick else None,
                "confident": choice.confident,
                "within_noise": [r.name for r in choice.tied],
                "voters": choice.voters,
            },
            label_noise=choice.labels.estimate.as_dict() if choice.labels else None,
            results_file=str(results_path),
            counts={"models": len(rows), "scored": n_ok, "failed": len(rows) - n_ok, "reused": min(reused, n_ok)},
            gate={"fail_on": fail_on.value, "candidate": candidate, "passed": not failures},
            train_sample=sample_info(sample, rows, size),
            **({"world_size": w.size} if w else {}),
        )
        emit(ranked, fmt, output, run, title="suscli rank")
        for path, view, option in ((html, Format.html, "--html"), (junit, Format.junit, "--junit")):
            if path is not None:
                write_atomic(path, render(ranked, view, run, "suscli rank"), option)
                stderr.print(f"{view.value} report written to {path}", highlight=False)
        if plot is not None:
            plot_pool(ranked, t, plot, pick=choice.pick)
            stderr.print(f"plot written to {plot}", highlight=False)
        if summary := os.environ.get("GITHUB_STEP_SUMMARY"):
            noise = f"\n{noise_line(choice.labels)}\n" if choice.labels else ""
            append_summary(Path(summary), to_markdown(ranked, "suscli rank") + f"\n{closing}\n{noise}")
        if mixed:  # the closing line is the error: no model can be chosen
            raise InputError(closing, fix="rank models with the same number of classes together; every result is kept in the results file")
        if sample is not None and size is not None and (line := sample_line(sample, rows, size)):
            stderr.print(line, highlight=False)
        stderr.print(closing, highlight=False)
        if choice.labels is not None:
            stderr.print(noise_line(choice.labels), highlight=False)
        if suspects is not None:
            write_suspects(suspects, choice, training_paths(train, sample, rows, size))
    n_failed = sum(not r.ok for r in rows)
    if n_failed:
        stderr.print(f"error: {n_failed} model(s) could not be scored (see their rows)", highlight=False)
        raise typer.Exit(int(ExitCode.INPUT))
    if failures:
        for f in failures:
            stderr.print(f"gate failed: {f}", highlight=False)
        raise typer.Exit(int(ExitCode.GATE_FAILED))


def gate_messages(ranked: list[Result], fail_on: "FailOn", candidate: str | None, t) -> list[str]:
    failures = []
    if fail_on == FailOn.memorized:
        if t is None:
            raise UsageError(
                "--fail-on memorized needs regions", fix=f"pass --train-data and rank {MIN_POOL}+ models, or fix both thresholds"
            )
        flagged = [r.name for r in ranked if r.verdict == MEMORIZED]
        if flagged:
            failures.append(f"{len(flagged)} model(s) likely memorized noise: {', '.join(flagged)}")
    if candidate is not None:
        row = next(r for r in ranked if r.name == candidate)
        if t is None:
            raise UsageError("--candidate needs regions", fix=f"rank {MIN_POOL}+ models, or fix both thresholds")
        if reason := candidate_failure(row):
            failures.append(reason)
    return failures


def training_paths(train: ImageSource | None, sample: NestedSample | None, rows: list[Result], size: int | None) -> list[str]:
    """The training images the rows' training predictions are on, in their order."""
    if sample is None or size is None:
        return [str(p) for p in train.paths] if train is not None else []
    skipped: list[int] = next((r.details[RECORD]["skipped"] for r in rows if r.ok and isinstance(r.details.get(RECORD), dict)), [])
    return [str(p) for p in sample.paths_at(size, skipped)]


def write_suspects(path: Path, choice: Choice, paths: list[str]) -> None:
    """--suspects: the contradicted training labels as CSV, or one line saying why there are none to write."""
    if choice.labels is None:
        raise UsageError("--suspects needs --train-data and 2+ models measured with it (their training predictions)")
    if len(paths) != len(choice.labels.labels):
        raise InputError(
            f"{len(choice.labels.labels)} training images were predicted but {len(paths)} are listed "
            "(unreadable ones were skipped), so the suspects cannot be matched to files",
            fix="fix or remove the unreadable training images, then rerun with --fresh",
        )
    write_atomic(path, suspects_csv(choice.labels, paths))
    stderr.print(f"{int(choice.labels.contradicted.sum())} suspect label(s) written to {path}", highlight=False)


def append_summary(path: Path, markdown: str) -> None:
    """GitHub Actions shows what a step appends to $GITHUB_STEP_SUMMARY; a failure here must not fail the audit."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(markdown + "\n")
    except OSError as e:
        stderr.print(f"warning: cannot append to GITHUB_STEP_SUMMARY {path}: {e.strerror}", highlight=False)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's images, models and reports.")] = Path("suscli-demo"),
    small: Annotated[bool, typer.Option("--small", help="A smaller, faster pool (the one the tests use).")] = False,
    device: DeviceOpt = "auto",
) -> None:
    """Make a procedural image set with 40% label noise, train a small pool on it, and rank it: no download needed."""
    from suscli.demo import FULL, SMALL, build_demo

    recipe = SMALL if small else FULL
    with user_errors():
        stderr.print(
            f"suscli demo: drawing {recipe.n_train} training images with {recipe.noise:.0%} label noise and training "
            f"{len(recipe.models)} models on them in {out}/ ...",
            highlight=False,
        )
        started = time.perf_counter()
        with progress_bar() as update:
            built = build_demo(out, recipe, progress=update, overwrite=True)  # replaces only an earlier demo
        stderr.print(f"trained in {time.perf_counter() - started:.0f}s; ranking them with suscli rank:", highlight=False)
    plot = out / "pool.png"
    code = 0
    try:
        rank(built.models, data=built.unlabeled, train_data=built.train, plot=plot, device=device)
    except typer.Exit as e:
        code = e.exit_code
    truth = ", ".join(f"{r['name']} {100 * r['test_acc']:.1f}%" for r in sorted(built.records, key=lambda r: -r["test_acc"]))
    stderr.print(f"\nclean test accuracy, which suscli never saw: {truth}", highlight=False)
    stderr.print(
        f"files: models {built.models}/, unlabeled images {built.unlabeled}/, training set {built.train}/, plot {plot}", highlight=False
    )
    stderr.print(
        f"rerun by hand: suscli rank {built.models} --data {built.unlabeled} --train-data {built.train} --plot {plot}", highlight=False
    )
    raise typer.Exit(code)


@app.command()
def track(
    run: Annotated[
        Optional[Path],
        typer.Argument(
            metavar="RUN",
            help="Folder of a run's per-epoch checkpoints (searched recursively), or a .json/.csv manifest with path and epoch.",
        ),
    ] = None,
    data: Annotated[
        Optional[Path], typer.Option("--data", "-d", help="Folder of unlabeled images (searched recursively); needed with RUN.")
    ] = None,
    train_data: TrainDataOpt = None,
    image_column: ImageColumnOpt = None,
    label_column: LabelColumnOpt = None,
    log: Annotated[
        Optional[Path],
        typer.Option(
            help="Read r per epoch from a suscli.training.tracker log (JSON lines), or from the TensorBoard event file (or its folder) the "
            "tracker or its Lightning or Hugging Face callback wrote to, instead of measuring checkpoints."
        ),
    ] = None,
    arch: ArchOpt = None,
    arch_kwargs: ArchKwargsOpt = None,
    trust_checkpoint: TrustOpt = False,
    ema: EmaOpt = False,
    preset: PresetOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    image_size: ImageSizeOpt = None,
    samples: SamplesOpt = None,
    train_samples: TrainSamplesOpt = ADAPTIVE,
    seed: SeedOpt = 0,
    lr: LrOpt = DEFAULT_LR,
    batches: BatchesOpt = DEFAULT_BATCHES,
    batch_size: BatchSizeOpt = DEFAULT_BATCH_SIZE,
    device: DeviceOpt = "auto",
    strict: StrictOpt = False,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    count_epoch_0: Annotated[
        bool,
        typer.Option(
            "--count-epoch-0",
            help="Count epoch 0 in the running mean, for runs that number their first trained epoch 0 (Lightning's epoch=0-step=N.ckpt). By default epoch 0 is the initialization, which the paper leaves out.",
        ),
    ] = False,
    results: Annotated[
        Optional[Path],
        typer.Option(
            help="Resumable results file (JSON lines), shared with `suscli rank`, of this one set of settings. Default: RUN/suscli-results.jsonl, or beside a manifest (in the cache folder when that cannot be written), which keeps each set of settings' results."
        ),
    ] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Start the results file over instead of reusing its results.")] = False,
    fmt: FormatOpt = Format.table,
    output: OutputOpt = None,
    plot: Annotated[
        Optional[Path],
        typer.Option(help="Draw r, the running mean zeta and training accuracy against epoch to this image file (needs matplotlib)."),
    ] = None,
    model_batch: ModelBatchOpt = None,
    keep_rule: Annotated[
        KeepRule,
        typer.Option(
            "--keep",
            help="How to choose the epoch to keep (docs/track.md): 'train-acc' (default: the closest to each run's best epoch on the validation zoo), 'last', 'knee' (of training accuracy against r), 'agreement' (rank's rule over the run's epochs; needs checkpoints, not --log).",
        ),
    ] = KeepRule(DEFAULT_KEEP),
) -> None:
    """Susceptibility over one training run: r at every epoch, the paper's running mean zeta(t), the epoch to keep.

    zeta(t) is the mean of r over epochs 1..t (Forouzesh et al., ICLR 2023). The epoch to keep is chosen by
    --keep; every rule needs training accuracy: --train-data, or train_acc in the tracker's log. See docs/track.md.
    """
    from suscli.views.plot import plot_run
    from suscli.run.epochs import annotate, log_rows, recommendation, run_epochs
    from suscli.training.tracker import read_log, schedule_warning

    started = time.perf_counter()
    with user_errors():
        if (run is None) == (log is None):
            raise UsageError(
                "give a RUN of checkpoints or --log" + (", not both" if run else ""),
                fix="suscli track RUN --data unlabeled/, or suscli track --log run.jsonl",
            )
        check_destinations(output, plot)
        warnings: list[str] = []
        said: str | None = None  # the training sample the decisions settled on
        if log is not None:
            if data is not None or train_data is not None:
                raise UsageError("--log reads r and training accuracy from the tracker's log; --data and --train-data go with a RUN")
            records = read_log(log)
            rows = log_rows(records, log)
            warnings += [w for w in [schedule_warning(records)] if w]
            info = {"command": command_line(), "log": str(log), "environment": environment()}
        else:
            if data is None:
                raise UsageError("--data is needed to measure a RUN", fix="pass --data FOLDER of unlabeled images, or --log")
            settings = make_settings(preset, mean, std, image_size, samples, train_samples, seed, lr, batches, batch_size, strict)
            dev = resolve_device(device)
            kwargs = parse_arch_kwargs(arch_kwargs)
            entries, skipped = run_epochs(run)
            if skipped:
                warnings.append(f"skipped {len(skipped)} checkpoint(s) with no epoch number: {', '.join(e.name for e in skipped[:3])}")
            unlabeled, train, sample = image_sources(data, train_data, settings, cache_dir, no_cache, image_column, label_column)
            store = open_store(results, run, cache_dir, fresh, settings, unlabeled, train, dev, arch, kwargs, ema)
            results_path = store.path
            reused = len(store)
            size = None
            try:
                with progress_bar() as update:
                    rows = audit_pool(
                        entries,
                        unlabeled,
                        train if sample is None else sample.chunk(0, sample.sizes[0]),
                        settings=settings,
                        device=dev,
                        store=store,
                        default_arch=arch,
                        default_arch_kwargs=kwargs,
                        trust=trust_checkpoint,
                        ema=ema,
                        progress=update,
                        model_batch=model_batch or default_model_batch(dev),
                    )
                    if sample is not None:

                        def decide(rows: list[Result]) -> Decisions:  # the epoch to keep
                            for row, entry in zip(rows, entries):
                                row.epoch = entry.epoch
                            keep = annotate(rows, count_epoch_0=count_epoch_0, rule=keep_rule.value)
                            return Decisions(pick=keep.name if keep else None)

                        rows, size = grow_pool(
                            rows,
                            entries,
                            sample,
                            decide,
                            device=dev,
                            store=store,
                            default_arch=arch,
                            default_arch_kwargs=kwargs,
                            trust=trust_checkpoint,
                            ema=ema,
                            progress=update,
                            model_batch=model_batch or default_model_batch(dev),
                        )
            except KeyboardInterrupt:
                stderr.print(
                    f"interrupted: {len(store)} result(s) kept in {results_path}; rerun the same command to resume", highlight=False
                )
                raise typer.Exit(130) from None
            for row, entry in zip(rows, entries):
                row.epoch = entry.epoch  # the run's numbering (name or manifest) wins over a checkpoint's own metadata
            n_ok = sum(r.ok for r in rows)
            info = run_info(
                settings,
                data,
                unlabeled,
                train_data,
                dev,
                started,
                run=str(run),
                results_file=str(results_path),
                counts={"epochs": len(rows), "scored": n_ok, "failed": len(rows) - n_ok, "reused": min(reused, n_ok)},
                train_sample=sample_info(sample, rows, size),
            )
            said = sample_line(sample, rows, size) if sample is not None and size is not None else None
        keep = annotate(rows, count_epoch_0=count_epoch_0, rule=keep_rule.value)
        closing = recommendation(rows, keep, keep_rule.value)
        info.update(
            seconds=round(time.perf_counter() - started, 3),
            rule=f"{keep_rule.value}: {KEEP_RULES[keep_rule.value]}",
            recommendation={
                "text": closing,
                "epoch": keep.epoch if keep else None,
                "name": keep.name if keep else None,
                "path": keep.path if keep else None,
            },
            warnings=warnings,
        )
        emit(rows, fmt, output, info, title="suscli track")
        if plot is not None:
            plot_run(rows, keep, plot, rule=keep_rule.value)
            stderr.print(f"plot written to {plot}", highlight=False)
        for w in warnings:
            stderr.print(f"warning: {w}", highlight=False)
        if log is None and said:
            stderr.print(said, highlight=False)
        stderr.print(closing, highlight=False)
    n_failed = sum(not r.ok for r in rows)
    if n_failed:
        stderr.print(f"error: {n_failed} epoch(s) could not be scored (see their rows)", highlight=False)
        raise typer.Exit(int(ExitCode.INPUT))


def main() -> None:
    """Console-script entry point: no traceback reaches the user unless SUSCLI_DEBUG is set."""
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:  # outside a command's own handler: while parsing, or importing what a command needs
        stderr.print("interrupted", highlight=False)
        sys.exit(130)
    except Exception as e:  # a bug, not bad input: still one line and a documented code
        if os.environ.get("SUSCLI_DEBUG"):
            raise
        stderr.print(
            f"[bold red]internal error:[/] {type(e).__name__}: {escape(str(e))} (set SUSCLI_DEBUG=1 for the traceback, and please report it)",
            highlight=False,
        )
        sys.exit(int(ExitCode.INPUT))


if __name__ == "__main__":
    main()
