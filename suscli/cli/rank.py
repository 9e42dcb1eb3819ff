"""`suscli rank POOL`: a pool of models in one table, with regions, verdicts, the model to ship and CI gates."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Optional

import typer

from suscli.cli.app import app
from suscli.cli.console import progress_bar, say, user_errors
from suscli.cli.options import (
    CHOICE,
    INPUTS,
    OUTPUTS,
    DataOpt,
    FailOn,
    HtmlOpt,
    InputOptions,
    JunitOpt,
    MeasureOptions,
    OutputOptions,
    PerformanceOptions,
    PoolOptions,
    PreprocessOptions,
    SelectRule,
    Thresholds,
    grouped,
    inputs,
    settings,
)
from suscli.defaults import DEFAULT_RULE
from suscli.errors import UsageError
from suscli.run.launch import world
from suscli.run.store import default_results


@app.command()
@grouped
def rank(
    pool: Annotated[Path, typer.Argument(help="Folder of checkpoints (each subfolder one run), or a .json/.csv manifest.")],
    data: DataOpt,
    given: InputOptions,
    preprocess: PreprocessOptions,
    measure: MeasureOptions,
    out: OutputOptions,
    performance: PerformanceOptions,
    measured: PoolOptions,
    *,
    all_checkpoints: Annotated[
        bool, typer.Option("--all-checkpoints", help="Rank every checkpoint of a run folder, not only its latest.", rich_help_panel=INPUTS)
    ] = False,
    rule: Annotated[
        SelectRule,
        typer.Option(
            "--rule",
            help="How to choose the model to ship (docs/rank.md): 'agreement' (default: best on the validation zoo) ranks by agreement with the consensus of region 1 on the unlabeled images; 'regions' is the paper's rule.",
            rich_help_panel=CHOICE,
        ),
    ] = SelectRule(DEFAULT_RULE),
    thresholds_rule: Annotated[
        Thresholds,
        typer.Option("--thresholds", help="Split the pool at the mean (the paper's rule) or the median.", rich_help_panel=CHOICE),
    ] = Thresholds.mean,
    zeta_threshold: Annotated[
        Optional[float], typer.Option(help="Fixed susceptibility threshold (instead of the pool's).", rich_help_panel=CHOICE)
    ] = None,
    acc_threshold: Annotated[
        Optional[float],
        typer.Option(min=0.0, max=1.0, help="Fixed training-accuracy threshold, 0-1 (instead of the pool's).", rich_help_panel=CHOICE),
    ] = None,
    fail_on: Annotated[
        FailOn,
        typer.Option(help="Gate: 'memorized' exits 1 when any model's verdict is 'likely memorized noise'.", rich_help_panel=CHOICE),
    ] = FailOn.never,
    candidate: Annotated[
        Optional[list[str]],  # a list only to refuse a second one: Click keeps an option's last value, silently
        typer.Option(
            metavar="<str>",
            help="Gate: exit 1 unless the model of this name (or of this checkpoint, by file name or path) lands in region 1 of the pool and its verdict is not "
            "'likely memorized noise'.",
            rich_help_panel=CHOICE,
        ),
    ] = None,
    plot: Annotated[
        Optional[Path],
        typer.Option(
            help="Draw training accuracy against susceptibility to this image file (needs matplotlib); with --val-data, held-out "
            "accuracy with its interval in a second panel.",
            rich_help_panel=OUTPUTS,
        ),
    ] = None,
    suspects: Annotated[
        Optional[Path],
        typer.Option(
            help="Write the training images whose label the pool's consensus contradicts to this CSV, the surest first (path, given and consensus label with their class names, vote share, the voters' belief in the given label).",
            rich_help_panel=OUTPUTS,
        ),
    ] = None,
    html: HtmlOpt = None,
    junit: JunitOpt = None,
) -> None:
    """Rank a pool of models: regions, verdicts, the model to ship, the label-noise estimate, and CI gates."""
    with user_errors():
        # they load torch and pandas: imported here, not for --help or a usage error; a Ctrl-C meanwhile is one line, 130
        from suscli.cli.output import (
            also,
            check_destinations,
            emit,
            exit_code,
            kept_going,
            step_summary,
            write_plot,
            write_suspects,
            writing,
        )
        from suscli.run.rank import rank as rank_pool
        from suscli.views.formats import gate_lines
        from suscli.views.plot import check_plot, plot_pool

        chosen = settings(preprocess, measure)
        gated = one_candidate(candidate)
        if suspects is not None and given.train_data is None:
            raise UsageError("--suspects needs --train-data: the suspects are training labels")
        if plot is not None and given.train_data is None:  # known now, not after the whole pool was measured
            raise UsageError("--plot needs --train-data: it draws each model's training accuracy against its susceptibility")
        w = world()
        if w is None or w.rank == 0:  # the only process that writes them, maybe on another machine than the others
            check_destinations(
                (out.output, "", "--output"), (plot, "plot ", "--plot"), (suspects, "suspects ", "--suspects"), (html, "", "--html"), (junit, "", "--junit"),
                results=measured.results or default_results(pool), inputs=(data, given.train_data, given.val_data), models=pool,
            )  # fmt: skip
            if plot is not None:
                check_plot(plot)
        # rank 0's bars alone: the other ranks' own, on the terminal they share, garbled them
        with progress_bar() if w is None or w.rank == 0 else contextlib.nullcontext(None) as update:
            report = rank_pool(
                pool,
                data,
                given.train_data,
                settings=chosen,
                inputs=inputs(given, performance, measured),
                all_checkpoints=all_checkpoints,
                rule=rule.value,
                thresholds_rule=thresholds_rule.value,
                zeta_threshold=zeta_threshold,
                acc_threshold=acc_threshold,
                fail_on=fail_on.value,
                candidate=gated,
                results=measured.results,
                fresh=measured.fresh,
                val_data=given.val_data,
                suspects=suspects is not None,
                progress=update,
                say=say,
            )
        if report is None:
            return  # another rank than 0: rank 0 prints and writes everything
        with writing(report):
            # an output that failed (stdout, a full disk) still leaves every other output, the closing lines and gates
            written = [emit(report, out.fmt, out.output, out.per_image), also(report, html, junit)]
            if plot is not None:
                pick = report.choice.pick if report.choice else None
                written.append(write_plot(plot, report, lambda path: plot_pool(report.rows, report.thresholds, path, pick=pick)))
            step_summary(report)
            if report.error is not None:  # the closing line is the error: no model can be chosen
                raise report.error
            for line in report.lines:
                say(line)
            if suspects is not None:
                written.append(kept_going(lambda: write_suspects(suspects, report)))
    for line in gate_lines(report):
        say(line)
    exit_code(report.exit_code, *written)


def one_candidate(given: list[str] | None) -> str | None:
    """The --candidate to gate. Given twice, Click kept the last and the first went ungated while the job passed; the
    gate takes one model, so naming two different ones is refused before anything is measured."""
    named = list(dict.fromkeys(given or []))
    if len(named) > 1:
        raise UsageError(
            f"--candidate is given {len(given or [])} times ({', '.join(map(repr, named))}): rank gates one candidate",
            fix="run rank once per candidate; --fail-on memorized gates every model of the pool",
        )
    return named[0] if named else None
