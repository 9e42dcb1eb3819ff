"""`suscli demo`: the built-in example, from nothing to a ranked pool with no download."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from suscli.cli.app import app
from suscli.cli.console import progress_bar, say, user_errors
from suscli.cli.options import PerformanceOptions
from suscli.cli.rank import rank
from suscli.run.launch import single_process


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's images, models and reports.")] = Path("suscli-demo"),
    small: Annotated[bool, typer.Option("--small", help="A smaller, faster pool (the one the tests use).")] = False,
    device: Annotated[
        str,
        typer.Option(
            help="Where the pool is ranked: auto, cpu, cuda, cuda:N or mps (auto takes the GPU when there is one); "
            "the models train on the CPU."
        ),
    ] = PerformanceOptions.device,
) -> None:
    """Make a procedural image set with 40% of its labels redrawn at random, train a small pool on it, and rank it: no download needed."""
    from suscli.demo import FULL, NUM_CLASSES, SMALL, build_demo, check_folder

    recipe = SMALL if small else FULL
    with user_errors():
        single_process("demo")  # every process built the same folder at once: one's files vanished under another
        replacing = bool(check_folder(out, overwrite=True))  # a folder it would refuse: the error before any other line
        say(
            f"suscli demo: drawing {recipe.n_train} training images, {recipe.noise:.0%} of their labels redrawn at random "
            f"(about {recipe.noise * (1 - 1 / NUM_CLASSES):.0%} wrong: a redrawn label may land on its own class), and training "
            f"{len(recipe.models)} models on them in {out}/ ..."
        )
        started = time.perf_counter()
        if replacing:
            say(f"replacing the earlier demo in {out}/ (its own files only: anything else there stops it)")
        with progress_bar() as update:
            built = build_demo(out, recipe, progress=update, overwrite=True)  # replaces only an earlier demo
        say(f"trained in {time.perf_counter() - started:.0f}s; ranking them with suscli rank:")
    plot = out / "pool.png"
    code = 0
    try:
        rank(built.models, data=built.unlabeled, train_data=built.train, plot=plot, device=device)
    except typer.Exit as e:
        code = e.exit_code
    truth = ", ".join(f"{r['name']} {100 * r['test_acc']:.1f}%" for r in sorted(built.records, key=lambda r: -r["test_acc"]))
    say(f"\nclean test accuracy, which suscli never saw: {truth}")
    say(f"wrong training labels, which suscli never saw either: {100 * built.mislabeled:.1f}% (its estimate: the label-noise line)")
    say(f"files: models {built.models}/, unlabeled images {built.unlabeled}/, training set {built.train}/, plot {plot}")
    say(f"rerun by hand: suscli rank {built.models} --data {built.unlabeled} --train-data {built.train} --plot {plot}")
    raise typer.Exit(code)
