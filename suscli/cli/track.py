"""`suscli track RUN`: susceptibility over one training run, the paper's running mean, and the epoch to keep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from suscli.cli.app import app
from suscli.cli.console import progress_bar, say, user_errors
from suscli.cli.options import (
    CHOICE,
    DATA_HELP,
    INPUTS,
    OUTPUTS,
    HtmlOpt,
    InputOptions,
    JunitOpt,
    KeepRule,
    MeasureOptions,
    OutputOptions,
    PerformanceOptions,
    PoolOptions,
    PreprocessOptions,
    grouped,
    inputs,
    settings,
)
from suscli.defaults import DEFAULT_KEEP
from suscli.run.launch import single_process
from suscli.run.store import default_results


@app.command()
@grouped
def track(
    given: InputOptions,
    preprocess: PreprocessOptions,
    measure: MeasureOptions,
    out: OutputOptions,
    performance: PerformanceOptions,
    measured: PoolOptions,
    run: Annotated[
        Optional[Path],
        typer.Argument(
            metavar="RUN",
            help="Folder of a run's per-epoch checkpoints (searched recursively), or a .json/.csv manifest with path and epoch.",
        ),
    ] = None,
    *,
    data: Annotated[
        Optional[Path],
        typer.Option("--data", "-d", help=f"{DATA_HELP} Needed with RUN.", rich_help_panel=INPUTS),
    ] = None,
    log: Annotated[
        Optional[Path],
        typer.Option(
            help="Read r per epoch from a suscli.training.tracker log (JSON lines), or from the TensorBoard event file (or its folder) the "
            "tracker or its Lightning or Hugging Face callback wrote to, instead of measuring checkpoints.",
            rich_help_panel=INPUTS,
        ),
    ] = None,
    count_epoch_0: Annotated[
        bool,
        typer.Option(
            "--count-epoch-0",
            help="Count epoch 0 in the running mean, for runs that number their first trained epoch 0 (Lightning's epoch=0-step=N.ckpt). By default epoch 0 is the initialization, which the paper leaves out.",
            rich_help_panel=CHOICE,
        ),
    ] = False,
    keep_rule: Annotated[
        KeepRule,
        typer.Option(
            "--keep",
            help="How to choose the epoch to keep (docs/track.md): 'train-acc' (default: the closest to each run's best epoch on the validation zoo), 'last', 'knee' (of training accuracy against r), 'agreement' (rank's rule over the run's epochs; needs checkpoints, not --log).",
            rich_help_panel=CHOICE,
        ),
    ] = KeepRule(DEFAULT_KEEP),
    plot: Annotated[
        Optional[Path],
        typer.Option(
            help="Draw r, the running mean zeta and training accuracy against epoch to this image file (needs matplotlib); with "
            "--val-data also held-out accuracy with its interval, and the epoch it would keep.",
            rich_help_panel=OUTPUTS,
        ),
    ] = None,
    html: HtmlOpt = None,
    junit: JunitOpt = None,
) -> None:
    """Susceptibility over one training run: r at every epoch, the paper's running mean zeta(t), the epoch to keep.

    zeta(t) is the mean of r over epochs 1..t (Forouzesh et al., ICLR 2023). The epoch to keep is chosen by
    --keep; every rule needs training accuracy: --train-data, or train_acc in the tracker's log. With --val-data the
    epoch of the highest held-out accuracy is marked beside it. See docs/track.md.
    """
    with user_errors():
        # they load torch and pandas: imported here, not for --help or a usage error; a Ctrl-C meanwhile is one line, 130
        from suscli.cli.output import also, check_destinations, emit, exit_code, step_summary, write_plot, writing
        from suscli.run.track import track as track_run
        from suscli.views.formats import gate_lines
        from suscli.views.plot import check_plot, plot_run

        single_process("track")
        results = measured.results or (default_results(run) if run is not None else None)
        check_destinations(
            (out.output, "", "--output"),
            (plot, "plot ", "--plot"),
            (html, "", "--html"),
            (junit, "", "--junit"),
            results=results,
            inputs=(log, data, given.train_data, given.val_data),
            models=run,
        )
        if plot is not None:
            check_plot(plot)
        with progress_bar() as update:
            report = track_run(
                run,
                data,
                given.train_data,
                log=log,
                settings=settings(preprocess, measure),
                inputs=inputs(given, performance, measured),
                keep=keep_rule.value,
                count_epoch_0=count_epoch_0,
                results=measured.results,
                fresh=measured.fresh,
                val_data=given.val_data,
                progress=update,
                say=say,
            )
        with writing(report):
            # an output that failed (stdout, a full disk) still leaves the other outputs, the closing lines and gates
            written = [emit(report, out.fmt, out.output, out.per_image), also(report, html, junit)]
            if plot is not None:
                written.append(
                    write_plot(plot, report, lambda path: plot_run(report.rows, report.keep, path, rule=keep_rule.value), "epoch")
                )
            step_summary(report)
        for line in report.lines:
            say(line)
    if report.skipped:
        for line in gate_lines(report):
            say(line)
    exit_code(report.exit_code, *written)
