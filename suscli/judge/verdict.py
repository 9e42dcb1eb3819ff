"""The verdict column: which models likely memorized their noisy labels, which the evidence says resisted, and
which it cannot tell apart.

The paper's regions (suscli.judge.regions) split a pool at its mean susceptibility. On the CIFAR-10N zoo
(docs/validation.md) that missed moderate memorizers: a few extreme ones pull the mean up, and the missed ones
were then called "fits, resists noise". Two fixed susceptibility cuts, measured at the default step on the design
setting, fix both: above MEMORIZED_CUT a model that fits its labels is flagged whatever the pool, and "resists"
needs the low cut RESISTS_CUT. In a pool with training predictions the label-free estimate of memorization (its
fit on the labels the pool's consensus contradicts, suscli.judge.noise) is a second signal, free of susceptibility's
scale: a high fit flags, and "resists" needs a low one; and a low one withholds the paper's flag (region 2): where
susceptibility is low throughout, as in a pool of fine-tuned models, the pool's mean put models that fit under a
seventh of those labels, as the design setting's clean learners do, just above it. Nor does region 2 flag by the
pool's mean where no model of the pool is a clear memorizer (pool_held_up): without one the mean splits models that
learned alike. Between them the verdict is "unclear", with the reason.
The susceptibility cuts hold only for the step they were measured at, so with another --lr or --batch-size they
are left out; and only for models about as confident as those they were measured on (CONFIDENT_MARGIN), so beyond
that a fixed cut says "unclear" instead of flagging; and only for architectures that read far below them untrained
(UNTRAINED_CUT, suscli.measure.untrained): where the untrained network already reads about the cut, a reading above it
says nothing about training. Nor, in a pool, does a reading above the pool's mean: such a network is flagged there by
its fit on the contradicted labels alone.

The words must agree with the rest of the report. The memorization cuts are looked at before the pool's
training-accuracy threshold: a model above one is not "underfit". Under label noise eta a model that learned only
the clean signal fits about 1 - eta of its labels, below the pool's mean when memorizers pull it up (region 3):
where the pool's label-noise estimate (suscli.judge.noise) says that is all the labels allow, it "fits the clean
signal" instead. And where that estimate finds the labels (nearly) clean, or where fitting the labels the
consensus contradicts costs a model nothing on new images (suscli.judge.cost: then they are not shown to be noise),
there was no noise to memorize that the evidence can see: nothing is called "likely memorized noise", and nothing
"fits the clean signal" by an estimate that is not one.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import exp, log, log1p

from suscli.judge.noise import NoiseEstimate, chance_agreement
from suscli.errors import apart, first_few, plural
from suscli.measure.normalization import POINT_ELSEWHERE, points_elsewhere
from suscli.measure.predictions import train_predictions_of
from suscli.results import Result
from suscli.defaults import DEFAULT_BATCH_SIZE, DEFAULT_LR

MEMORIZED = "likely memorized noise"
RESISTS = "fits, resists noise"
# Judged alone at or below the low cut: what was measured, as SUSCEPTIBLE is above the high one. Not "resists noise":
# a fine-tuned model that fits 45% of its wrong labels reads 0.162 (docs/validation.md, "A held-out zoo of fine-tuned
# models"), so a low reading alone does not say that a model did not memorize its labels.
LOW_SUSCEPTIBILITY = "low susceptibility"
UNCLEAR = "unclear"
UNDERFIT = "underfit"
UNDERFIT_SUSCEPTIBLE = "underfit, susceptible"
# Below the pool's training-accuracy threshold, but fitting what noisy labels allow without fitting their noise
# (_fits_clean_signal below): in a noisy pool the best model sits there, and "underfit" would contradict shipping it.
FITS_CLEAN = "fits the clean signal"
# Judged alone, above the fixed cut and fitting better than chance: what was measured, not a claim about its labels.
# In the noisy pools every model alone above the cut was a memorizer, but models trained on clean labels read above
# it too (2 of 12 and 4 of 60 on the clean-label zoo, docs/validation.md): only a pool trained on the same labels
# tells them apart.
SUSCEPTIBLE = "susceptible"
# What tells whether a model judged alone memorized its labels, and in a pool of two
ALONE_MORE = "models trained on the same labels (suscli rank with --train-data)"
PAIR_MORE = "a third model trained on the same labels in the pool"
# a row whose labels point to another input normalization, channel order, size or crop (suscli.measure.normalization): its numbers are of inputs
# unlike its training's, so no word about what it memorized
MISMEASURED = (
    f"its labels {POINT_ELSEWHERE} (its note says which): its numbers are likely of inputs unlike those it was trained on; "
    "measure it again as its note says"
)


def mismeasured_pick(row: Result, name: str) -> str:
    """What the closing line of rank or track adds where the model it ships or the epoch it keeps (`name`) is one whose
    labels point to another normalization, channel order, size or crop (MISMEASURED): the choice was made on numbers likely of inputs unlike its
    training's, and the line must not read as a sound one; "" otherwise."""
    if not points_elsewhere(row.notes):
        return ""
    return f"; the labels of {name} {POINT_ELSEWHERE} (its note says which): measure the models again as its note says before choosing"


# Why a pool of two models is judged as each model alone: its means are the midpoint of the two, so one model is
# always above each threshold and the other below, and each model's consensus is the other's predictions. Over every
# pair of the CIFAR zoos' final models the pool's words were wrong where they matter most: "likely memorized noise" on
# 36 times in the 66 pairs of models trained on clean labels, and the more accurate model "underfit" in 15 of 66 human-worst
# pairs (docs/validation.md, "A pool of two").
PAIR = (
    "judged alone, as suscli score judges it: in a pool of two the pool's means lie between the two models, so one is "
    "above each threshold and the other below whatever either learned, and each one's consensus is the other's predictions"
)

# Measured on the design setting (human-worst, 60 candidates; docs/validation.md): the least susceptible model that
# fits >= 40% of its wrong labels reads 0.54, the most susceptible one that does not reads 0.365: the cut is their
# geometric mean. Models that learned only the clean signal (fit < 20% of the wrong labels) read at most 0.167 and
# fit at most 0.137 of the labels the consensus contradicts.
MEMORIZED_CUT = 0.44
RESISTS_CUT = 0.17
RESISTS_FITS_CONTRADICTED = 0.14
# The label-free signal, on the same setting: the memorizers fit at least 42.5% of the labels the pool's consensus
# contradicts, the others at most 33.5%; the cut is their geometric mean. It needs no common scale of
# susceptibility, which differs between architectures.
MEMORIZED_FITS_CONTRADICTED = 0.38
# At the default step r is about lr * |g|^2, and the gradient on random labels grows with how confident a model is,
# whatever labels made it confident: a public CIFAR ResNet-20 trained on clean labels reads 3.40 with a loss on the
# random labels of 12.6 before the step (5.5 times chance, ln K), a clean-label MLP 4.08 at 12.5, while the models the
# cuts were checked on read about 2-5 and the demo's flagged memorizer 5.7 (docs/validation.md, "The verdict outside
# the zoo"). Above this multiple of chance a fixed cut measures confidence, not memorization.
CONFIDENT_LOSS = 3.0
# ... at the ten classes it was measured on. What it bounds is how confident a model is, the margin by which its top
# class leads, and a loss on random labels reads that margin differently with the class count: a two-class model at
# the same margin reads 5.5 times chance (ln 2), a five-class one 3.8 (_margin). So the bound is the margin at
# CONFIDENT_LOSS times ln 10 (7.67), compared at every class count; at ten classes nothing changes.
CONFIDENT_CLASSES = 10
# The most classes of any model the fixed cuts were measured and checked on: the zoos hold ten-, five- and two-class
# models (docs/validation.md, "The confidence guard at other class counts"), and none above ten. With more classes
# (an ImageNet model's 1000) the cuts are left out, as at another step: alone the verdict is "unclear" with the
# reason, in a pool the regions and the fit on the contradicted labels decide, and the untrained reference, which
# only tells whether the cuts can judge an architecture, is not measured.
CUTS_MOST_CLASSES = 10
# What the same network reads untrained, re-initialized layer by layer (suscli.measure.untrained), measured where the
# cuts were chosen and beyond (docs/validation.md, "Which architectures the fixed cuts can judge"): the zoo's networks
# read at most 0.042 untrained, and on them the cuts held in every zoo, the held-out ones included. The CIFAR
# ResNet-20 reads 0.161: the cuts held on two small checks of it, then failed in a zoo of ResNet-20s and -56s on
# 2,000 images (two ResNet-20s that fit 27% and 32% of their wrong labels read 0.465 and 0.613). ResNet-56 reads
# 0.553, torchvision's ResNet-18 1.44, and regularized checkpoints of both read above the high cut. The bound is the
# geometric mean of 0.042 and 0.161: the cuts judge the networks that read like the ones they were chosen on, and
# every other network is judged by its pool alone (first set at 0.26, between ResNet-20 and ResNet-18).
UNTRAINED_CUT = 0.08
# The highest untrained reading of the networks the cuts were chosen and checked on, quoted when they cannot judge one.
UNTRAINED_ZOO = 0.042
# "Fits the clean signal": under a noise rate eta a model that learned only the clean signal fits about 1 - eta of
# its training labels and cannot fit more without memorizing. The labels allow it at least 1 - (the noise estimate's
# upper bound); the margin lets it miss a few points of the labels the consensus confirms (its own mistakes on them,
# which a clean learner makes too) and still be said to fit the clean signal. It also needs a fit on the
# contradicted labels under RESISTS_FITS_CONTRADICTED, at most what the clean learners of the design setting fit. A
# rule, not a measurement: the zoos' clean learners are to be checked against it (benchmarks/evaluate_choice.py).
CLEAN_SIGNAL_MARGIN = 0.05
# And a consensus that confirms most of the training labels (a noise estimate under half). One that contradicts most
# of them more likely did not learn them than found them wrong: in a pool of barely trained models it contradicts
# nearly every label, each model then fits about 1 - that estimate, and "fits the clean signal" would be said of all.
# Noisy voters that underfit also push the estimate up (docs/validation.md, "How noisy are the labels?").
CLEAN_SIGNAL_MAX_NOISE = 0.5
# And it fits most of the labels the consensus confirms: what a model that learned the clean signal does. Without
# it, a model near chance fitted "what the labels allow" wherever the noise interval was wide enough (a 2-model pool
# read 0-87.5%, and a model at 15.5% training accuracy, fitting 17% of the confirmed labels, was said to fit the
# clean signal). The zoos' rows that the rule names fit 60-93% of them (docs/rank.md, "The verdict").
CLEAN_SIGNAL_MOST = 0.5
# Labels (nearly) clean: the upper bound of the pool's noise estimate below this. On clean labels the consensus
# still contradicts a few: images every voter gets wrong, ambiguous ones, the odd true label error; 2% leaves room
# for them, and it is far below every noisy pool measured (the lowest upper end of an interval there is 13.5%,
# docs/validation.md). On the clean-label zoo the intervals reached 43.2% and 24.5% (weak voters contradict right
# labels): the fit-cost rule (suscli.judge.cost), not this one, kept those pools unflagged. The consensus cannot tell clean labels from noise that every voter memorized: a
# pool of memorizers alone reads clean too.
CLEAN_LABELS = 0.02
# The paper's region-2 flag reads susceptibility against the pool's own mean, which sets memorizers apart only where
# some of them hold it up. In a pool of procedural images where no model memorized (docs/validation.md, "rank's words
# on procedural pools it was never tuned on") the mean fell to 0.075 and put 4 of its 6 models in region 2, each
# fitting 3-10% of its wrong labels and 26-32% of the labels a weak consensus contradicted (right labels its two
# voters got wrong). So a flag from the pool's mean needs a clear memorizer in the pool (clear_memorizer: above the
# fixed cut, or fitting MEMORIZED_FITS_CONTRADICTED of the contradicted labels); every pool of the CIFAR zoos holds
# one by construction (each architecture's no-weight-decay, longest-trained corner fits nearly all its labels).


@dataclass(frozen=True)
class Verdict:
    word: str
    why: str


def at_cuts_step(lr: object, batch_size: object) -> bool:
    """Whether a step size and batch are those the fixed cuts were measured at (the defaults)."""
    return lr == DEFAULT_LR and batch_size == DEFAULT_BATCH_SIZE


def within_cut_classes(classes: object) -> bool:
    """Whether a class count is one the fixed cuts were measured at (CUTS_MOST_CLASSES or fewer); a row that does not
    say keeps them, as before the count was recorded."""
    return not isinstance(classes, int) or classes <= CUTS_MOST_CLASSES


def calibrated(row: Result) -> bool:
    """Whether the row was measured at the step and class count the fixed cuts were measured at (rows stored before
    the step was recorded are not: their verdict is the pool's alone)."""
    d = row.details if isinstance(row.details, dict) else {}
    return at_cuts_step(d.get("lr"), d.get("batch_size")) and within_cut_classes(d.get("num_classes"))


def beyond_cut_classes(row: Result) -> str | None:
    """Why the fixed cuts cannot judge `row` at the default step: more classes than any model they were measured on;
    None where they were measured at its class count, or at another step, where they are left out for that reason."""
    d = row.details if isinstance(row.details, dict) else {}
    classes = d.get("num_classes")
    if not at_cuts_step(d.get("lr"), d.get("batch_size")) or within_cut_classes(classes):
        return None
    return (
        f"susceptibility {row.susceptibility:.3f}, but the fixed cuts {RESISTS_CUT} and {MEMORIZED_CUT} were measured on models "
        f"of {CUTS_MOST_CLASSES} classes or fewer, and this one has {classes}: how far one step moves the loss on random labels "
        "over that many classes was never checked against what the models memorized; judge it in a pool trained on the same labels"
    )


def judge(
    row: Result,
    zeta: float | None,
    acc: float | None,
    noise: NoiseEstimate | None = None,
    held_up: bool = True,
    others: Others | None = None,
) -> Verdict | None:
    """The verdict of one scored row against the pool's thresholds (`zeta` susceptibility, `acc` training accuracy;
    None without a pool) and the pool's label-noise estimate `noise` (None without one: `suscli score`, or no
    training predictions). `held_up`: whether region 2 may flag by the pool's mean (pool_held_up); `others`: the
    training accuracy of the pool's models that are not clear memorizers (Others). None when nothing can be said: no
    pool, no training accuracy and no calibrated cut."""
    s, fixed, fit = row.susceptibility, calibrated(row), row.train_acc
    if s is None:
        return None
    if zeta is None or acc is None or fit is None:
        return judge_alone(row)
    if (unread := _unreadable(row)) is not None:
        return unread
    far = off_scale(row) if fixed else None
    v = _in_pool(row, s, fixed and far is None, fit, zeta, acc, noise, far, held_up, others)
    if v is not None and v.word == MEMORIZED and noise is not None and noise.doubt:
        return Verdict(UNCLEAR, f"not enough evidence of noise to memorize: {noise.doubt} (the flag it would get otherwise: {v.why})")
    if v is not None and v.word == MEMORIZED and noise is not None and noise.training_upper < CLEAN_LABELS:
        return Verdict(UNCLEAR, _no_noise(s, noise, v.why))
    return v


def overshot(row: Result) -> str | None:
    """Why a row's susceptibility says nothing of how readily the model fits noise: the step on random labels raised
    their loss on average. A gradient step small enough lowers it; one that raises it overshot (`--lr 10` on the
    demo's models), and its size, not the model, sets the number, so no word is built on it. None where it lowered
    it, as every batch of the 420 zoo checkpoints measured did at the default step (docs/reliability.md)."""
    s = row.susceptibility
    if s is None or s >= 0:
        return None
    lr = row.details.get("lr") if isinstance(row.details, dict) else None
    at = f" of lr {lr:g}" if isinstance(lr, (int, float)) else ""
    return (
        f"susceptibility {s:.4g} < 0: the step{at} on random labels raised their loss, so it overshot this model and "
        f"measures no readiness to fit them (measure again with a smaller --lr; the default is {DEFAULT_LR:g})"
    )


def judge_alone(row: Result, more: str = ALONE_MORE) -> Verdict | None:
    """The verdict of one scored row with no pool to compare with (_alone; `more`: what would tell whether it
    memorized); None when nothing can be said."""
    s, fixed = row.susceptibility, calibrated(row)
    if s is None:
        return None
    if (unread := _unreadable(row)) is not None:
        return unread
    far = off_scale(row) if fixed else None
    return Verdict(UNCLEAR, far) if far is not None else _alone(row, s, fixed, more)


def _unreadable(row: Result) -> Verdict | None:
    """'unclear' where the row's number is no reading of the model, in a pool or alone: its labels point to other
    inputs (MISMEASURED), or the step overshot (overshot)."""
    if points_elsewhere(row.notes):
        return Verdict(UNCLEAR, MISMEASURED)
    if (raised := overshot(row)) is not None:
        return Verdict(UNCLEAR, raised)
    return None


def _in_pool(
    row: Result,
    s: float,
    fixed: bool,
    fit: float,
    zeta: float,
    acc: float,
    noise: NoiseEstimate | None,
    far: str | None = None,
    held_up: bool = True,
    others: Others | None = None,
) -> Verdict:
    """judge's verdict in a pool. The memorization cuts come before the pool's training-accuracy threshold: the
    fixed cut was measured over every candidate of the design pool, early epochs below its mean training accuracy
    included, and the fit on contradicted labels is memorization itself, so a model above either is not "underfit".
    `far`: why the fixed cuts cannot judge this architecture (off_scale), if they cannot; `held_up`: whether the
    pool's mean may flag region 2 (pool_held_up)."""
    wrong = row.fits_contradicted
    # An architecture the fixed cuts cannot judge is off the pool's scale too: beside others its reading says what it
    # is more than what it did (a ResNet-56 reads 0.55 untrained, above a deep pool's mean), so there only the fit on
    # contradicted labels, which needs no common scale, flags it (MEMORIZED_FITS_CONTRADICTED, below).
    scaled = far is None or wrong is None
    if fit >= acc and not above_chance(row):  # a pool whose threshold is at chance (untrained or collapsed models)
        return Verdict(UNDERFIT_SUSCEPTIBLE if s > zeta else UNDERFIT, _guessed(row, fit, acc))
    region2 = fit >= acc and s > zeta and (wrong is None or wrong >= RESISTS_FITS_CONTRADICTED) and scaled
    if region2 and held_up:
        return Verdict(
            MEMORIZED, f"training accuracy {_vs(fit, acc)} >= {_vs(acc, fit)} and susceptibility {_vs(s, zeta)} > {_vs(zeta, s)}"
        )
    beyond = too_confident(row)
    # above the fixed cut: below the pool's threshold, which extreme memorizers pulled up, or below its training
    # accuracy; memorizing needs fitting better than chance, as alone
    # a fit as low as a clean learner's overrules the cut where the pool finds noise to memorize (elsewhere judge says
    # why nothing is flagged: labels that read clean, or no evidence that the contradicted labels are wrong)
    evident = noise is None or finds_noise(noise)
    cut = fixed and s > MEMORIZED_CUT  # above the fixed cut, where it judges this architecture
    few = cut and beyond is None and evident and _fits_few_contradicted(wrong)
    if cut and beyond is None and above_chance(row) and not few:
        return Verdict(MEMORIZED, f"susceptibility {s:.3f} > {MEMORIZED_CUT} (fixed cut at the default step)")
    # the same for the fit on contradicted labels: guessing fits 1 / classes of them, 50% at two classes, past the cut
    if wrong is not None and wrong >= MEMORIZED_FITS_CONTRADICTED and above_chance(row):
        return Verdict(
            MEMORIZED,
            f"it fits {100 * wrong:.0f}% of the training labels the pool contradicts (>= {100 * MEMORIZED_FITS_CONTRADICTED:.0f}%)",
        )
    if fit < acc:
        return (
            _fits_clean_signal(row, fit, acc, noise)
            or _fits_beyond_underfit(row, fit, acc, noise)
            or _held_above(fit, acc, s, zeta, others)
            or Verdict(
                UNDERFIT_SUSCEPTIBLE if s > zeta else UNDERFIT, f"training accuracy {_vs(fit, acc)} < {_vs(acc, fit)}{_at_guessing(row)}"
            )
        )
    doubts = []
    # region 2, not flagged: off the pool's scale, and a fit on contradicted labels short of the cut (that fit)
    short = wrong if s > zeta and not scaled and wrong is not None and wrong >= RESISTS_FITS_CONTRADICTED else None
    if short is not None:
        doubts.append(
            f"training accuracy {_vs(fit, acc)} >= {_vs(acc, fit)} and susceptibility {_vs(s, zeta)} > {_vs(zeta, s)} (region 2), but on a scale "
            f"this architecture does not share with the pool (below), and it fits {100 * short:.0f}% of the training labels "
            f"the pool contradicts (< {100 * MEMORIZED_FITS_CONTRADICTED:.0f}%)"
        )
    elif region2:  # region 2, not flagged: no clear memorizer holds the pool's mean up
        doubts.append(
            f"training accuracy {_vs(fit, acc)} >= {_vs(acc, fit)} and susceptibility {_vs(s, zeta)} > {_vs(zeta, s)} (region 2), but no model in "
            f"the pool reads above the fixed cut {MEMORIZED_CUT} or fits {100 * MEMORIZED_FITS_CONTRADICTED:.0f}% or more of the "
            "training labels the pool contradicts: with no clear memorizer to hold the pool's mean up, half of a pool of "
            "models that learned alike can sit above it"
        )
    elif s > zeta:  # region 2, not flagged: the fit on contradicted labels is as low as a clean learner's
        doubts.append(
            f"training accuracy {_vs(fit, acc)} >= {_vs(acc, fit)} and susceptibility {_vs(s, zeta)} > {_vs(zeta, s)} (region 2), but it fits "
            f"only {100 * (wrong or 0):.0f}% of the training labels the pool contradicts (< {100 * RESISTS_FITS_CONTRADICTED:.0f}%)"
        )
    if few:
        doubts.append(
            f"susceptibility {s:.3f} > {MEMORIZED_CUT} (fixed cut at the default step), but it fits only "
            f"{100 * (wrong or 0):.0f}% of the training labels the pool contradicts (< {100 * RESISTS_FITS_CONTRADICTED:.0f}%), "
            "as models that learned only the clean signal do"
        )
    elif cut and beyond is not None:
        doubts.append(beyond)
    elif far is not None and (s > MEMORIZED_CUT or short is not None):
        doubts.append(far)
    elif fixed and s > RESISTS_CUT:
        doubts.append(f"susceptibility {s:.3f} is between the fixed cuts {RESISTS_CUT} and {MEMORIZED_CUT}")
    if wrong is not None and wrong >= RESISTS_FITS_CONTRADICTED and short is None:
        doubts.append(f"it fits {100 * wrong:.0f}% of the training labels the pool contradicts")
    if doubts:
        return Verdict(UNCLEAR, "; ".join(doubts))
    return Verdict(RESISTS, f"training accuracy {_vs(fit, acc)} >= {_vs(acc, fit)} and susceptibility {_vs(s, zeta)} <= {_vs(zeta, s)}")


def _fits_what_labels_allow(row: Result, fit: float, noise: NoiseEstimate) -> bool:
    """Whether training accuracy `fit` is at least what a model that learned only the clean signal fits by the noise
    interval (1 - its upper end, less CLEAN_SIGNAL_MARGIN), in a pool whose consensus confirms most labels
    (CLEAN_SIGNAL_MAX_NOISE), and better than chance: the test both "fits the clean signal" and "not underfit" read."""
    return noise.rate < CLEAN_SIGNAL_MAX_NOISE and above_chance(row) and fit >= 1 - noise.training_upper - CLEAN_SIGNAL_MARGIN


def _fits_clean_signal(row: Result, fit: float, acc: float, noise: NoiseEstimate | None) -> Verdict | None:
    """FITS_CLEAN for a row below the pool's training-accuracy threshold `acc` that fits what its labels allow: its
    training accuracy `fit` at least 1 - the noise estimate's upper bound, less CLEAN_SIGNAL_MARGIN, and under
    RESISTS_FITS_CONTRADICTED of the labels the consensus contradicts and over half of those it confirms
    (CLEAN_SIGNAL_MOST), in a pool whose consensus confirms most labels (CLEAN_SIGNAL_MAX_NOISE), and better than chance. None when it does not, or nothing says: no noise estimate, or no fit on the
    confirmed and contradicted labels."""
    wrong, right = row.fits_contradicted, row.clean_fit
    if noise is None or noise.doubt or wrong is None or right is None or wrong >= RESISTS_FITS_CONTRADICTED:
        return None
    if right <= CLEAN_SIGNAL_MOST or not _fits_what_labels_allow(row, fit, noise):
        return None
    return Verdict(
        FITS_CLEAN,
        f"training accuracy {_vs(fit, acc)}, under the pool's threshold {_vs(acc, fit)}, against {1 - noise.training_upper:.3f}-{1 - noise.low:.3f} "
        f"(1 minus {_interval_name(noise)}; {1 - noise.rate:.3f} by the share of labels the consensus contradicts), about what a model that "
        f"learned only the clean signal fits; it fits {100 * right:.0f}% of the training labels the pool's consensus "
        f"confirms and {100 * wrong:.0f}% of those it contradicts (< {100 * RESISTS_FITS_CONTRADICTED:.0f}%)",
    )


def _fits_beyond_underfit(row: Result, fit: float, acc: float, noise: NoiseEstimate | None) -> Verdict | None:
    """UNCLEAR for a row below the pool's training-accuracy threshold `acc` that fits at least what a model that learned
    only the clean signal fits by the noise interval (as _fits_clean_signal reads it) but also RESISTS_FITS_CONTRADICTED
    or more of the labels the consensus contradicts: "underfit" would say it fits too little, and the evidence says
    it fits about as much as the labels allow and some of what the consensus calls wrong. In a procedural pool where
    every model memorized, the most-fitting ones held the pool's mean up to 0.90, and a model fitting 80% of its
    labels and 45% of its wrong ones was called "underfit" (docs/validation.md, "Region 2 needs a clear memorizer").
    None where the noise interval is not an estimate, says most labels are wrong, or the model does not fit that much."""
    wrong = row.fits_contradicted
    if noise is None or not noise.readable or wrong is None or wrong < RESISTS_FITS_CONTRADICTED:
        return None
    if not _fits_what_labels_allow(row, fit, noise):
        return None
    return Verdict(
        UNCLEAR,
        f"training accuracy {_vs(fit, acc)}, under the pool's threshold {_vs(acc, fit)}, but at least {1 - noise.training_upper:.3f} less "
        f"{CLEAN_SIGNAL_MARGIN} (1 minus {_interval_name(noise)}'s upper end), what a model that learned only the clean "
        f"signal fits: not underfit; and it fits {100 * wrong:.0f}% of the training labels the pool contradicts "
        f"(>= {100 * RESISTS_FITS_CONTRADICTED:.0f}%, under the cut {100 * MEMORIZED_FITS_CONTRADICTED:.0f}%)",
    )


@dataclass(frozen=True)
class Others:
    """The training accuracy of a pool's models that are not clear memorizers (clear_memorizer), centered as the
    pool's threshold is (mean or median): what "underfit" compares with where memorizers hold the pool's threshold up."""

    acc: float
    models: int  # how many models it centers
    memorizers: tuple[str, ...]  # the clear memorizers left out


def _held_above(fit: float, acc: float, s: float, zeta: float, others: Others | None) -> Verdict | None:
    """UNCLEAR for a row under the pool's training-accuracy threshold `acc` but at or above `others`, the models that
    are not clear memorizers: models that fit every label, the wrong ones too, hold the threshold up, and "underfit"
    would say it fits too little where it fits as much as the models that learned without memorizing. On the CIFAR
    zoos such rows were the third to sixth most accurate of twelve final models (docs/validation.md, "Underfit beside
    memorizers"). None where no clear memorizer holds the threshold up or the row is under the others too."""
    if others is None or fit < others.acc:
        return None
    names = first_few(others.memorizers)
    higher = f"; susceptibility {_vs(s, zeta)} > {_vs(zeta, s)}" if s > zeta else ""
    return Verdict(
        UNCLEAR,
        f"training accuracy {_vs(fit, acc)} < {_vs(acc, fit)}, a threshold that clear memorizers hold up ({names}), but at least "
        f"{others.acc:.3f}, that of the {others.models} {plural(others.models, 'model that is', 'models that are')} not: not clearly underfit{higher}",
    )


def _vs(a: float, b: float) -> str:
    """`a` as a reason shows it beside `b`, the number it is compared with: to the digits that tell them apart."""
    return apart(a, b)[0]


def _interval_name(noise: NoiseEstimate) -> str:
    """Which interval the clean-signal test read: the training labels' own where held-out labels raised the printed one."""
    return "the label-noise interval" if noise.training_high is None else "the training labels' own noise interval"


def _no_noise(s: float, noise: NoiseEstimate, flag: str) -> str:
    """Why a row that would be flagged is not: the pool's consensus finds (nearly) clean training labels. Where held-out
    labels read more (with_held_out), that is said too: voters' errors on new images raise it on clean labels, so it
    does not bring the flag back, but neither do the training labels alone rule out a consensus of memorizers."""
    held = noise.held_out
    more = (
        f"; on the {held.images:,} held-out labels the same consensus contradicts {100 * held.rate:.1f}%, which its errors on "
        "images it never saw can explain on clean labels, as can memorized wrong training labels: unclear"
        if held is not None and noise.training_high is not None
        else ""
    )
    return (
        f"the pool's consensus contradicts only {100 * noise.rate:.1f}% of the training labels (95% interval "
        f"{100 * noise.low:.1f}-{100 * noise.training_upper:.1f}%, under {100 * CLEAN_LABELS:g}%): little or no noise to "
        f"memorize{more}; susceptibility {s:.3f} says how readily it would fit noise (the flag it would get otherwise: {flag})"
    )


def _alone(row: Result, s: float, fixed: bool, more: str = ALONE_MORE) -> Verdict | None:
    """No pool to compare with: the fixed cuts alone, and fitting noise readily needs fitting better than chance.
    Nothing here is called "likely memorized noise": without a pool there is no evidence about the labels. `more`:
    what would tell whether it memorized."""
    if not fixed:
        many = beyond_cut_classes(row)
        return Verdict(UNCLEAR, many) if many is not None else None
    beyond = too_confident(row) if s > MEMORIZED_CUT else None
    if beyond is not None:
        return Verdict(UNCLEAR, beyond)
    if fit_decides_alone(row):
        if above_chance(row):
            return Verdict(
                SUSCEPTIBLE,
                f"susceptibility {s:.3f} > {MEMORIZED_CUT} (fixed cut at the default step) and it fits its labels: it would "
                f"fit noise readily, but whether its labels had any to memorize takes {more}",
            )
        return Verdict(UNCLEAR if row.train_acc is None else UNDERFIT_SUSCEPTIBLE, _not_fitting(row))
    if s <= RESISTS_CUT:
        return Verdict(
            LOW_SUSCEPTIBILITY,
            f"susceptibility {s:.3f} <= {RESISTS_CUT} (fixed cut at the default step): one step moves its loss on random labels "
            f"little; whether it memorized its labels takes {more}{_at_guessing(row)}",
        )
    return Verdict(
        UNCLEAR, f"susceptibility {s:.3f} is between the fixed cuts {RESISTS_CUT} and {MEMORIZED_CUT}, and no pool to compare with"
    )


def fit_decides_alone(row: Result) -> bool:
    """Whether the verdict of `row` judged alone depends on its training accuracy: only above the fixed cut, where
    _alone asks whether it fits better than chance (a sample of the training set that settles it must watch it)."""
    return (
        calibrated(row)
        and row.susceptibility is not None
        and row.susceptibility > MEMORIZED_CUT
        and too_confident(row) is None
        and off_scale(row) is None
    )


def wants_untrained(susceptibility: float, lr: float, batch_size: int, classes: int | None) -> bool:
    """Whether the verdict reads what the network reads untrained (off_scale): only where a fixed cut would judge
    it, above the low cut at the step and class count the cuts were measured at. Below it the row reads "low
    susceptibility", a statement of what was measured, and elsewhere no cut applies: the reference would cost a
    measurement for nothing."""
    return at_cuts_step(lr, batch_size) and within_cut_classes(classes) and susceptibility > RESISTS_CUT


def lacks_untrained(row: Result) -> bool:
    """Whether `row` wants the untrained reading (wants_untrained) and was stored without it, by a version before it."""
    s = row.susceptibility
    if not row.ok or s is None or not calibrated(row):
        return False
    d = row.details
    return wants_untrained(s, d["lr"], d["batch_size"], d.get("num_classes")) and "untrained" not in d


def off_scale(row: Result) -> str | None:
    """Why the fixed cuts cannot judge `row`'s architecture: its network untrained reads above UNTRAINED_CUT, or
    cannot be re-initialized to say; None when it reads below (or was not measured: at or below the low cut, and rows
    stored before it was kept)."""
    d = row.details if isinstance(row.details, dict) else {}
    ref = d.get("untrained")
    if not isinstance(ref, dict):
        return None
    s = row.susceptibility
    if "unknown" in ref:
        return (
            f"susceptibility {s:.3f}, but what this architecture reads untrained is unknown ({ref['unknown']}), so the "
            "fixed cuts, measured on architectures that read far below them untrained, cannot judge it; judge it in a "
            "pool trained on the same labels"
        )
    untrained = ref.get("susceptibility")
    if not isinstance(untrained, (int, float)) or untrained <= UNTRAINED_CUT:
        return None
    return (
        f"susceptibility {s:.3f}, but the same network untrained reads {untrained:.3f} (above {UNTRAINED_CUT}): the fixed "
        f"cuts {RESISTS_CUT} and {MEMORIZED_CUT}, measured on architectures that read at most {UNTRAINED_ZOO} untrained, cannot "
        "tell what training did from what this architecture reads; judge it in a pool trained on the same labels"
    )


def random_label_loss(margin: float, classes: int) -> float:
    """The mean cross-entropy on uniformly random labels of a model whose top class leads the other classes, all
    equal, by `margin` in logits: ln K at margin 0, then growing by (K-1)/K per unit of margin."""
    rest = (classes - 1) * exp(-margin)
    return log1p(rest) + (classes - 1) / classes * margin


def _margin(loss: float, classes: int) -> float:
    """The margin at which random_label_loss is `loss` (0 at or below chance), by bisection: it rises with the margin."""
    if loss <= log(classes):
        return 0.0
    low, high = 0.0, classes / (classes - 1) * loss + 1.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if random_label_loss(mid, classes) < loss else (low, mid)
    return low


CONFIDENT_MARGIN = _margin(CONFIDENT_LOSS * log(CONFIDENT_CLASSES), CONFIDENT_CLASSES)


def too_confident(row: Result) -> str | None:
    """Why the fixed cuts cannot judge `row`: its loss on the random labels before the step says a margin beyond
    CONFIDENT_MARGIN (CONFIDENT_LOSS times chance at ten classes); None when it is within (or the row does not say,
    as rows stored before it was kept)."""
    d = row.details if isinstance(row.details, dict) else {}
    losses, classes = d.get("loss_before"), d.get("num_classes")
    if not isinstance(losses, list) or not losses or not isinstance(classes, int) or classes < 2:
        return None
    loss, chance = sum(losses) / len(losses), log(classes)
    bound = random_label_loss(CONFIDENT_MARGIN, classes)  # the loss at that margin: it rises with the margin
    if loss <= bound:
        return None
    return (
        f"susceptibility {row.susceptibility:.3f} is above the fixed cut {MEMORIZED_CUT}, but its loss on random labels "
        f"before the step, {loss:.2f}, is {loss / chance:.1f} times chance (ln {classes}): far more confident than the models "
        f"the cut was measured on (up to {bound / chance:.1f} times at {classes} classes, a logit margin of {CONFIDENT_MARGIN:.1f}), "
        "where one step moves the loss far whatever labels it learned; judge it in a pool trained on the same labels"
    )


def above_chance(row: Result) -> bool:
    """Whether the model fits its training labels better than guessing: memorizing needs fitting. Without training
    accuracy nothing says so. Guessing is 1 / classes, or with the row's training predictions what its own class
    frequencies would score against the labels' (a network collapsed onto one class scores that class's share of
    the labels, and memorized nothing: docs/validation.md, MobileNetV3)."""
    low = row.train_acc_low if row.train_acc_low is not None else row.train_acc
    return low is not None and low > _guessing(row)[0]


def _guessing(row: Result) -> tuple[float, bool]:
    """What guessing scores on the row's training labels, and whether that is its own class frequencies' score
    (noise.chance_agreement of its top classes with the labels, where above 1 / classes) rather than 1 / classes."""
    classes = row.details.get("num_classes") if isinstance(row.details, dict) else None
    uniform = 1 / classes if isinstance(classes, int) and classes > 0 else 0.0
    pred = train_predictions_of(row)
    if pred is None or pred.labels is None or len(pred.labels) == 0:
        return uniform, False
    own = chance_agreement(pred.top1(), pred.labels)[1]
    return max(uniform, own), own > uniform


def _guessed(row: Result, fit: float, acc: float) -> str:
    """Why a row at or above the pool's threshold is underfit: it fits its labels no better than guessing, so the
    threshold is at chance too (a pool of untrained models at 20 classes read 5.0% each, and three of them "fits,
    resists noise")."""
    return (
        f"training accuracy {_vs(fit, acc)} >= {_vs(acc, fit)}, the pool's threshold, but {_than_guessing(row)}: the threshold is no higher"
    )


def _at_guessing(row: Result) -> str:
    """The clause "; its training accuracy is no better than guessing (...)" where it is, else "": under a 90% majority class a
    network that names that class on every image reads 90% and fits nothing, which its accuracy alone does not say."""
    if row.train_acc is None or above_chance(row):
        return ""
    return f"; its training accuracy {row.train_acc:.3f} is {_than_guessing(row)}"


def _than_guessing(row: Result) -> str:
    """How a row that above_chance turns down stands against guessing: "no better than guessing (...)" where its
    training accuracy is at most what guessing scores, "not clearly better" where only its interval's low end is
    (above_chance decides on the low end: a model at 0.060, guessing 0.050, read "0.060 is no better than guessing")."""
    chance, own = _guessing(row)
    said = f"{chance:.3f} from its own class frequencies" if own else f"guessing scores {chance:.3f}"
    low = row.train_acc_low
    if row.train_acc is not None and low is not None and row.train_acc > chance:
        return f"not clearly better than guessing ({said}; its 95% interval's low end {low:.3f})"
    return f"no better than guessing ({said})"


def _not_fitting(row: Result) -> str:
    s = row.susceptibility
    if row.train_acc is None:
        return f"susceptibility {s:.3f} > {MEMORIZED_CUT}, but no training accuracy (--train-data) to tell whether it fits its labels"
    return f"susceptibility {s:.3f} > {MEMORIZED_CUT}, but training accuracy {row.train_acc:.3f} is {_than_guessing(row)}"


# What a model alone (`suscli score`) may read beside each verdict in a pool without the two contradicting each other:
# alone "susceptible" says it would fit noise readily, "low susceptibility" that one step moves it little.
_ALONE_AGREES = {
    SUSCEPTIBLE: {MEMORIZED, UNDERFIT_SUSCEPTIBLE, UNCLEAR},
    LOW_SUSCEPTIBILITY: {RESISTS, FITS_CLEAN, UNDERFIT, UNCLEAR},
}


def clear_memorizer(row: Result) -> bool:
    """Whether `row` shows memorization whatever its pool: above the fixed cut where the cut can judge it, or fitting
    MEMORIZED_FITS_CONTRADICTED of the labels the pool's consensus contradicts, fitting its labels better than chance."""
    s, wrong = row.susceptibility, row.fits_contradicted
    cut = s is not None and calibrated(row) and off_scale(row) is None and s > MEMORIZED_CUT and too_confident(row) is None
    cut = cut and not _fits_few_contradicted(wrong)
    return (cut or (wrong is not None and wrong >= MEMORIZED_FITS_CONTRADICTED)) and above_chance(row)


def finds_noise(noise: NoiseEstimate | None) -> bool:
    """Whether the pool's label check finds noise to memorize: an estimate it does not doubt, whose training interval
    reaches CLEAN_LABELS. Where it does not, no model is a clear memorizer by the pool, and judge says why."""
    return noise is not None and not noise.doubt and noise.training_upper >= CLEAN_LABELS


def _fits_few_contradicted(wrong: float | None) -> bool:
    """Whether a fit on the labels the pool's consensus contradicts is as low as the design setting's clean learners'
    (under RESISTS_FITS_CONTRADICTED): in a pool that measures it, it overrules the fixed cut, as it does region 2. A
    MobileNetV3 trained on clean labels read 2.52, above the cut, and fitted 1% of the wrong labels of a pool beside
    models trained on 40% noise (docs/validation.md, "Models from timm and torchvision, trained here")."""
    return wrong is not None and wrong < RESISTS_FITS_CONTRADICTED


def pool_held_up(rows: list[Result]) -> bool:
    """Whether region 2 may flag by the pool's mean susceptibility: a model of the pool shows memorization whatever
    its pool (clear_memorizer), or nothing could show it (no fixed cut judges any row and none has the fit on
    contradicted labels: the paper's regions alone, as published)."""
    scored = [r for r in rows if r.ok and r.susceptibility is not None]
    could = any(r.fits_contradicted is not None or (calibrated(r) and off_scale(r) is None) for r in scored)
    return not could or any(clear_memorizer(r) for r in scored)


def assign(
    rows: list[Result],
    zeta: float | None,
    acc: float | None,
    noise: NoiseEstimate | None = None,
    pooled: bool = True,
    others: Others | None = None,
    pair: bool = False,
) -> None:
    """Set `verdict` and `verdict_why` on every scored row (`noise`: the pool's label-noise estimate, if any; `pooled`:
    `zeta` is the pool's own mean or median, not a value the user fixed, so pool_held_up applies; `others`: the training
    accuracy of the models that are not clear memorizers, where they hold up a threshold that is the pool's own;
    `pair`: the thresholds are a pool of two's midpoint, and each row is judged alone, PAIR). In a pool each row also
    keeps what it would read alone (details.verdict_alone), and where the two contradict each other the reason says
    why the pool's evidence decides."""
    held_up = not pooled or pool_held_up(rows)
    for r in rows:
        if not r.ok:
            continue
        v = judge(r, zeta, acc, noise, held_up, others)
        judged = zeta is not None and acc is not None and r.train_acc is not None
        alone = judge_alone(r, PAIR_MORE if pair else ALONE_MORE) if judged else None
        if pair and judged and alone is None:  # no fixed cut at this step either: nothing to say of it
            v = Verdict(UNCLEAR, f"{PAIR}; alone, no fixed cut judges it at this step")
        if alone is not None:
            r.details["verdict_alone"] = alone.word
            if pair:
                v = Verdict(alone.word, f"{PAIR}: {alone.why}")
            elif v is not None and v.word not in _ALONE_AGREES.get(alone.word, {v.word}):
                v = Verdict(v.word, f'{v.why}; alone (suscli score) it reads "{alone.word}" ({alone.why}): {_apart(v.word)}')
        r.verdict, r.verdict_why = (v.word, v.why) if v else (None, None)


def _apart(word: str) -> str:
    """Why the pool's verdict `word` stands where the model alone reads otherwise."""
    if word == MEMORIZED:
        return "the pool's evidence (its thresholds, the labels its consensus contradicts) shows what one number alone does not"
    if word == UNDERFIT_SUSCEPTIBLE:
        return "in a pool, susceptible means above the pool's mean susceptibility, not above the fixed cut"
    return "a fixed cut alone measures how readily it would fit noise; models trained on the same labels show whether it did"
