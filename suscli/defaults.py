"""Defaults and named choices the command line offers (the measurement's, the choice of a model's, the reports'),
in a module that imports neither torch nor pandas: the options are declared from these, so `suscli --help` and a
usage error answer without loading them (about 2 s of CPU). Each is defined here once; the modules that use them
import them from here."""

from __future__ import annotations

from enum import Enum

# The susceptibility measurement. Set by the zoo evidence (docs/validation.md): the cheapest grid point whose
# ranking is within one bootstrap standard error of the best (Kendall tau 0.510 vs 0.515 with clean test accuracy,
# sym40 + asym40) and whose measurement repeats (split-half tau 0.959); lr 0.1 was worse everywhere (0.445-0.463).
DEFAULT_LR = 0.01
DEFAULT_BATCHES = 4
DEFAULT_BATCH_SIZE = 32

# Training accuracy (suscli.measure.sampling)
ADAPTIVE = "auto"  # --train-samples auto, the default: the sample grows while it changes a decision
START = 1000  # images of the first stage: chosen on the validation zoo (docs/performance.md)

# The preprocessing presets, the keys of suscli.data.images.PRESETS (which tests/test_cli_score.py holds to these)
PRESET_NAMES = ("cifar10", "imagenet", "none")

# How rank chooses the model to ship (suscli.judge.rules)
RULES = ("agreement", "regions", "pareto", "train-acc", "susceptibility")
DEFAULT_RULE = "agreement"  # the winner on the zoo (docs/validation.md, "Choosing the model to ship")

# Which epoch track keeps (suscli.run.epochs)
KEEP_RULES = {
    "train-acc": "keep the epoch with the highest training accuracy (the later one on ties)",
    "last": "keep the last measured epoch",
    "knee": (
        "keep the epoch with the largest gain in training accuracy minus gain in r, each scaled to its range "
        "over the run (past it, more training accuracy costs more susceptibility than it brings)"
    ),
    "agreement": (
        "keep the epoch whose predictions on the unlabeled images agree most with the consensus of the "
        "run's region-1 epochs, the best fit first among those within noise (suscli rank's rule)"
    ),
}
# The best of these on the validation zoo: the kept epoch's clean accuracy was closest to each run's best
# (docs/validation.md, "suscli track's keep-rule").
DEFAULT_KEEP = "train-acc"


class Format(str, Enum):
    """The report formats (suscli.views.formats renders them)."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    junit = "junit"
    html = "html"
