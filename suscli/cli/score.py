"""`suscli score CHECKPOINT`: one model's susceptibility, training accuracy, verdict alone and gates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from suscli.cli.app import app
from suscli.cli.console import say, user_errors
from suscli.cli.options import (
    CHOICE,
    DataOpt,
    HtmlOpt,
    InputOptions,
    JunitOpt,
    MeasureOptions,
    OutputOptions,
    PerformanceOptions,
    PreprocessOptions,
    grouped,
    inputs,
    settings,
)
from suscli.cli.console import progress_bar
from suscli.run.launch import single_process


@app.command()
@grouped
def score(
    checkpoint: Annotated[
        Path,
        typer.Argument(
            help="Checkpoint: .safetensors, .pt/.pth/.th/.bin/.ckpt/.pth.tar, TorchScript, .pt2, or a Hugging Face model folder."
        ),
    ],
    data: DataOpt,
    given: InputOptions,
    preprocess: PreprocessOptions,
    measure: MeasureOptions,
    out: OutputOptions,
    performance: PerformanceOptions,
    *,
    num_classes: Annotated[
        Optional[int],
        typer.Option(min=1, help="Classes of the model; inferred from the classifier weights when omitted.", rich_help_panel="Inputs"),
    ] = None,
    max_susceptibility: Annotated[
        Optional[float], typer.Option(help="Gate: exit 1 when susceptibility is above this.", rich_help_panel=CHOICE)
    ] = None,
    min_train_acc: Annotated[
        Optional[float],
        typer.Option(min=0.0, max=1.0, help="Gate: exit 1 when training accuracy (0-1) is below this.", rich_help_panel=CHOICE),
    ] = None,
    html: HtmlOpt = None,
    junit: JunitOpt = None,
) -> None:
    """Measure one checkpoint's susceptibility (and training accuracy with --train-data)."""
    with user_errors():
        # they load torch and pandas: imported here, not for --help or a usage error; a Ctrl-C meanwhile is one line, 130
        from suscli.cli.output import also, check_destinations, emit, exit_code, step_summary, writing
        from suscli.run.score import Unscored, score as score_checkpoint

        single_process("score")
        chosen = settings(preprocess, measure)
        check_destinations(
            (out.output, "", "--output"),
            (html, "", "--html"),
            (junit, "", "--junit"),
            inputs=(data, given.train_data, given.val_data),
            models=checkpoint,
        )
        error: Unscored | None = None
        with progress_bar() as update:
            try:
                report = score_checkpoint(
                    checkpoint,
                    data,
                    given.train_data,
                    settings=chosen,
                    inputs=inputs(given, performance),
                    num_classes=num_classes,
                    max_susceptibility=max_susceptibility,
                    min_train_acc=min_train_acc,
                    val_data=given.val_data,
                    progress=update,
                    predictions=out.per_image,  # the only reader of the unlabeled images' predictions here (suscli.run.score)
                )
            except Unscored as e:  # its reports still written: a CI test reporter shows the error, not "no report found"
                report, error = e.report, e
        with writing(report):
            # an output that failed (stdout, a full disk) still leaves the other outputs, the closing lines and gates
            written = [emit(report, out.fmt, out.output, out.per_image), also(report, html, junit)]
            step_summary(report)
        if error is not None:
            raise error
        for line in report.lines:
            say(line)
    for failure in report.failures:
        say(f"gate failed: {failure}")
    exit_code(report.exit_code, *written)
