"""What held-out labels are worth, and what suscli adds to them (issue 25): on every zoo pool, random held-out
subsets of each size with the setting's own noisy labels, ranked three ways against clean test accuracy.

(a) held-out accuracy alone, what a user with a noisy validation split does; (b) suscli's label-free default
(the rule `suscli rank` runs without --val-data); (c) the rule `suscli rank --val-data` runs: every pair of
models a paired McNemar test tells apart in the held-out set's order, the rest by held-out accuracy and the
label-free order weighted by how well each predicts the clean ranking (suscli.judge.held_out.blend).

The held-out images are CIFAR-10 training images that no zoo model trained on and that are not the zoo's unlabeled
set, class-balanced and seeded. Their labels are the setting's own: the same CIFAR-10N annotator column for human
noise, the same noise process (another seed) for synthetic noise, the original labels for `clean`. Each
candidate's hits come from suscli.measure.accuracy.training_accuracy, the pass `--val-data` runs.

    python benchmarks/evaluate_held_out.py --zoo benchmarks/out/zoo-human [--draws 50] [--held-out human-random1] \
        [--levels 0.32,0.5]

--levels reruns (c) on the same draws with the paired test at other levels than the product's (PAIRED_ALPHA): a
looser test lets the held-out set order more pairs itself, which helps once it is large and costs while it is small.

Writes <zoo>/eval/held-out.md (printed too) and held-out.json; the hits are cached in
<zoo>/eval/held-out-hits-<setting>.npz. Needs evaluate_choice.py's caches or builds them.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "zoo"))
import cifar
from evaluate import Candidate, tau
from evaluate_choice import MEMORIZED_CUT, accuracy_passes, load_pools, zoo_arguments, zoo_settings
from train_zoo import human_labels, noisy_labels, parse_setting

import suscli.judge.held_out as held_out
import suscli.judge.rules as rules
from suscli.judge.regions import thresholds
from suscli.judge.verdict import MEMORIZED, UNCLEAR
from suscli.judge.held_out import held_out_beats
from suscli.judge.rules import Choice, _with_held_out, choose, predictions_of
from suscli.measure.accuracy import encode_hits
from suscli.results import Result

SIZES = (25, 50, 100, 200, 500, 1000, 2000)
HELD_OUT_IMAGES = 2000
SEED = 1234  # held-out images and their synthetic noise: not the zoo's seed


def held_out_set(zoo: Path, setting: str, n: int = HELD_OUT_IMAGES) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """`n` class-balanced training images that neither the setting's training subset nor its unlabeled set holds,
    with the setting's noisy labels and their clean labels. In a zoo of some classes (train_zoo.py --classes) the
    images are of those classes, ids numbered as the zoo numbers them, and as in its training set an image whose
    human label is outside them is never drawn."""
    manifest = json.loads((zoo / "zoo.json").read_text())
    root = Path(manifest["data"]["root"])
    classes = cifar.zoo_classes(manifest)
    used = {line.split(",")[0] for line in (zoo / setting / "train_noisy.csv").read_text().splitlines()[1:]}
    used |= set((zoo / setting / "unlabeled.txt").read_text().split())
    every, clean_all = cifar.list_split(root, "train", classes)
    free = np.array([i for i, p in enumerate(every) if str(p) not in used and str(p.resolve()) not in used])
    if len(every) - len(free) < 2:
        raise SystemExit(f"{setting}: none of the zoo's training images found under {root}; paths differ?")
    kind, _ = parse_setting(setting)
    human = None
    if kind == "human":
        human = cifar.subset_ids(human_labels([every[i] for i in free], root, setting[len("human-") :]), classes)
        human, free = human[human >= 0], free[human >= 0]
    rng = np.random.default_rng(SEED)
    drawn = cifar.balanced_sample(clean_all[free], n, rng)
    pick = free[drawn]
    paths = [every[i] for i in pick]
    clean = clean_all[pick]
    noisy = human[drawn] if human is not None else noisy_labels(clean, setting, SEED, classes=classes)
    return paths, noisy, clean


def held_out_hits(cands: list[Candidate], zoo: Path, setting: str) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Per candidate, whether it predicts each held-out image's noisy label (cached), and the labels (noisy, clean)."""
    path = zoo / "eval" / f"held-out-hits-{setting}.npz"
    paths, noisy, clean = held_out_set(zoo, setting)
    have: dict[str, np.ndarray] = {}
    if path.exists():
        z = np.load(path)
        if np.array_equal(z["labels"], noisy):
            have = dict(zip(map(str, z["paths"]), z["hits"]))
    todo = [c for c in cands if str(c.path) not in have]
    if todo:
        for c, acc in accuracy_passes(todo, paths, noisy, f"{setting}: held-out pass"):
            assert acc.hits is not None
            have[str(c.path)] = acc.hits.astype(bool)
        keys = sorted(have)
        np.savez(path, paths=np.array(keys), hits=np.stack([have[k] for k in keys]), labels=noisy)
    return have, noisy, clean


def order_score(ranked: list[Result], rows: list[Result]) -> list[int]:
    """Per row (in `rows` order), a score whose order is `ranked`'s: higher = ranked earlier."""
    position = {id(r): len(ranked) - k for k, r in enumerate(ranked)}
    return [position[id(r)] for r in rows]


def held_out_alone(hits: np.ndarray, tests: np.ndarray) -> tuple[float, float]:
    """(a): tau of held-out accuracy with clean test accuracy (ties as ties), and the expected regret of picking
    among the models that share the highest held-out accuracy at random."""
    acc = hits.mean(1)
    leaders = np.flatnonzero(acc == acc.max())
    return tau(acc.tolist(), tests.tolist()), float(100 * (tests.max() - tests[leaders].mean()))


def combined(label_free: Choice, rows: list[Result], hits: np.ndarray, tests: np.ndarray) -> tuple[float, ...]:
    """(c): the rule `rank --val-data` runs on these hits (suscli.judge.rules, applied to the label-free choice
    that `choose` made: the same call `choose` ends with): tau, regret, confident; then the tau and regret of
    variant (s) on the same tied set, of (t), of (z), of (q) and of (g); then (c0), the previous rule, and the weight
    (c) gave held-out accuracy."""
    for r, h in zip(rows, hits):
        r.details["val_hits"] = encode_hits(h)
    choice = _with_held_out(dataclasses.replace(label_free, ranked=list(label_free.ranked)), "agreement")
    assert choice.held_out is not None, choice.why
    first = rows.index(choice.ranked[0])
    with previous_rule():
        before = _with_held_out(dataclasses.replace(label_free, ranked=list(label_free.ranked)), "agreement")
    s_tau, s_regret = variant(shrunk(rows, hits), choice.tied, rows, tests)
    base = [rows.index(r) for r in label_free.ranked]
    decided = held_out_beats(hits)
    position = np.empty(len(rows))
    position[base] = np.arange(len(rows), 0, -1)
    t_score = shrunk(rows, hits, position)
    z = stouffer(rows, hits)
    return (
        tau(order_score(choice.ranked, rows), tests.tolist()),
        float(100 * (tests.max() - tests[first])),
        choice.confident,
        s_tau,
        s_regret,
        *scored(constrained(t_score[:, None] - t_score[None, :], decided, base), tests),
        *scored(constrained(z, decided, base), tests),
        *scored(constrained(trusted(hits, base), decided, base), tests),
        *scored(constrained(split_half(hits, base), decided, base), tests),
        tau(order_score(before.ranked, rows), tests.tolist()),
        float(100 * (tests.max() - tests[rows.index(before.ranked[0])])),
        choice.held_out["weights"]["held_out"],
    )


@contextlib.contextmanager
def previous_rule():
    """(c0): the rule `rank --val-data` ran before the blend: held-out accuracy
    orders the pairs the paired test leaves where it predicts the other half of the images better than the label-free
    order in each of 2 x OLD_SPLITS halvings (predicts_better), the label-free order otherwise."""
    kept = rules.blend
    rules.blend = lambda hits: held_out.Blend(math.nan, math.nan, 1.0, 0.0) if predicts_better(hits) else held_out.LABEL_FREE
    try:
        yield
    finally:
        rules.blend = kept


OLD_SPLITS = 5  # the previous rule's halvings, each way round


def halvings(hits: np.ndarray, place: np.ndarray) -> tuple[list[float], list[float]]:
    """Over 2 x OLD_SPLITS seeded halvings: tau-b of held-out accuracy on one half (ties in the label-free order,
    `place`, higher first) with accuracy on the other, and of the label-free order with it."""
    rng = np.random.default_rng(held_out.SPLIT_SEED)
    acc_side, free_side = [], []
    for _ in range(OLD_SPLITS):
        half = rng.permutation(hits.shape[1])
        one, two = half[: len(half) // 2], half[len(half) // 2 :]
        for fit, check in ((one, two), (two, one)):
            target = hits[:, check].mean(1)
            free_side.append(tau(place.tolist(), target.tolist()))
            acc_side.append(tau(accuracy_first(hits[:, fit].mean(1), place).tolist(), target.tolist()))
    return acc_side, free_side


def predicts_better(hits) -> bool:
    """The previous rule's check: held-out accuracy scores higher than the label-free order (`hits` in that order) in
    every comparison of `halvings`."""
    h = np.stack(list(hits)).astype(np.float64)
    if h.shape[1] < 2:
        return False
    acc_side, free_side = halvings(h, -np.arange(len(h), dtype=np.float64))
    return all(a > f for a, f in zip(acc_side, free_side))


def accuracy_first(acc: np.ndarray, place: np.ndarray) -> np.ndarray:
    """Held-out accuracy's order as a score, equal accuracies in the label-free order (`place`, higher first)."""
    score = np.empty(len(acc))
    score[np.lexsort((place, acc))] = np.arange(len(acc))
    return score


def split_half(hits: np.ndarray, base: list[int]) -> np.ndarray:
    """Variant (g): the previous rule's check (predicts_better), but held-out accuracy orders the undecided pairs where
    it scores higher on average over the halvings, not in every comparison."""
    rank_of = np.empty(len(base), dtype=int)
    rank_of[base] = np.arange(len(base))
    acc_side, free_side = halvings(hits, -rank_of.astype(float))
    acc = hits.mean(1)
    label_free = np.where(rank_of[:, None] < rank_of[None, :], 1.0, -1.0)
    return acc[:, None] - acc[None, :] if np.nanmean(acc_side) > np.nanmean(free_side) else label_free


def trusted(hits: np.ndarray, base: list[int]) -> np.ndarray:
    """Variant (q): per pair, the held-out set's direction where it is surer of it than the label-free order is right,
    the label-free order's elsewhere. The held-out set's confidence in a pair is Phi(z) of its paired z; the label-free
    order's share of pairs right, q, is estimated from how often it agrees with the held-out set, corrected for the
    held-out set's own errors: agreeing = q p + (1 - q)(1 - p) summed over pairs, solved for q (clipped to 0.5-1).
    Preferring the held-out direction exactly where p > q is what the two together favour (odds q/(1-q) against p/(1-p))."""
    z, only = paired_z(hits)
    p = 0.5 * (1 + np.vectorize(math.erf)(np.abs(z) / math.sqrt(2)))
    rank_of = np.empty(len(base), dtype=int)
    rank_of[base] = np.arange(len(base))
    label_free = np.where(rank_of[:, None] < rank_of[None, :], 1.0, -1.0)
    upper = np.triu(only != only.T, k=1)
    agree = (np.sign(only - only.T) == label_free)[upper].sum()
    weight = (2 * p - 1)[upper].sum()
    q = 1.0 if weight == 0 else float(np.clip((agree - (1 - p)[upper].sum()) / weight, 0.5, 1.0))
    return np.where((p > q) & (only != only.T), np.sign(only - only.T), label_free)


def shrunk(rows: list[Result], hits: np.ndarray, by: np.ndarray | None = None) -> np.ndarray:
    """Variants (s) and (t): each model's held-out accuracy shrunk toward what a label-free number `by` predicts
    (its agreement for (s), its place in the label-free order for (t); a line fitted over the pool), each weighted
    by its precision: binomial variance for the held-out accuracy, the spread of the pool's accuracies around the
    line beyond that for the prediction (empirical Bayes)."""
    n = hits.shape[1]
    acc = hits.mean(1)
    x = np.array([r.agreement for r in rows], dtype=float) if by is None else by
    smooth = (hits.sum(1) + 1) / (n + 2)
    var = smooth * (1 - smooth) / n
    slope, icept = np.polyfit(x, acc, 1)
    prior = icept + slope * x
    spread = max(float(np.var(acc - prior, ddof=2)) - float(var.mean()), 1e-6)
    return (acc / var + prior / spread) / (1 / var + 1 / spread)


def variant(score: np.ndarray, tied: list[Result], rows: list[Result], tests: np.ndarray) -> tuple[float, float]:
    """tau and regret of ordering the held-out tied set first, then the rest, each by `score` (higher first)."""
    first = {rows.index(r) for r in tied}
    return scored(sorted(range(len(rows)), key=lambda i: (i not in first, -score[i])), tests)


def paired_z(hits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[i, j]: the held-out set's paired z for model i over model j (images only i gets right minus only j, over their
    root; 0 where none differ), and only[i, j], the count of images only i gets right."""
    h = hits.astype(np.int64)
    only = (h @ (1 - h).T).astype(float)
    discordant = only + only.T
    return np.divide(only - only.T, np.sqrt(discordant), out=np.zeros_like(only), where=discordant > 0), only


def stouffer(rows: list[Result], hits: np.ndarray) -> np.ndarray:
    """Variant (z): [i, j] > 0 when the two pieces of evidence together prefer model i to model j: the held-out
    set's paired z (images only i gets right minus only j, over their root) plus the agreement difference over its
    standard error on the unlabeled images (unpaired binomial, as the near-tie test)."""
    z_held, _ = paired_z(hits)
    agree = np.array([r.agreement for r in rows], dtype=float)
    preds = predictions_of(rows[0])
    assert preds is not None
    var = agree * (1 - agree)
    se = np.sqrt(np.maximum(var[:, None] + var[None, :], 1e-12) / preds.classes.shape[0])
    return z_held + (agree[:, None] - agree[None, :]) / se


def constrained(prefer: np.ndarray, decided: np.ndarray, base: list[int]) -> list[int]:
    """An order that never puts a model before one the held-out set decides over it (`decided`, as in `rank
    --val-data`: held_out_beats), as (c) orders: repeatedly, of the models left
    that no model left is decided over, the one preferred (prefer[i, j] > 0) over the most models left, the earlier
    in the label-free order `base` on ties."""
    left, out = list(base), []
    while left:
        free = [j for j in left if not decided[left, j].any()]
        pick = max(free, key=lambda j: (sum(prefer[j, k] > 0 for k in left if k != j), -base.index(j)))
        out.append(pick)
        left.remove(pick)
    return out


def scored(order: list[int], tests: np.ndarray) -> tuple[float, float]:
    """tau and regret of an order of the pool's models (indices, best first)."""
    position = np.empty(len(order))
    position[order] = np.arange(len(order), 0, -1)
    return tau(position.tolist(), tests.tolist()), float(100 * (tests.max() - tests[order[0]]))


LEARNED_ONLY_CLEAN = 0.2  # under this share of its wrong labels fitted, a model learned only the clean signal (docs/rank.md)


def taus_above(gap: list[float], fits: list[float | None], mem: list[float]) -> dict:
    """tau of the gap and of the fit on contradicted labels with the share of wrong labels fitted, among the models
    fitting at least LEARNED_ONLY_CLEAN of them (None with fewer than 3 such models)."""
    keep = [i for i, m in enumerate(mem) if m >= LEARNED_ONLY_CLEAN]
    if len(keep) < 3:
        return {"above": len(keep), "tau_gap_above": None, "tau_fits_above": None}
    sub = [mem[i] for i in keep]
    fits_ok = all(fits[i] is not None for i in keep)
    return {
        "above": len(keep),
        "tau_gap_above": tau([gap[i] for i in keep], sub),
        "tau_fits_above": tau([fits[i] for i in keep], sub) if fits_ok else None,
    }


def flagged(estimate: list[float], memorized: list[float]) -> dict:
    """Recall and precision of calling a model a memorizer where `estimate` (a share of wrong labels fitted) is at
    least the oracle's cut, against the oracle (the share it truly fits)."""
    said = np.array(estimate) >= MEMORIZED_CUT
    truth = np.array(memorized) >= MEMORIZED_CUT
    hit = int((said & truth).sum())
    return {
        "flagged": int(said.sum()),
        "memorizers": int(truth.sum()),
        "recall": hit / max(int(truth.sum()), 1),
        "precision": hit / max(int(said.sum()), 1),
    }


def exchange_rate(sizes: tuple[int, ...], taus: list[float], target: float) -> float | None:
    """The held-out size at which (a)'s mean tau reaches `target` (log-linear between measured sizes); None when it
    does not within the sizes measured, 0 when even the smallest size reaches it."""
    if taus[0] >= target:
        return 0.0
    for (s0, t0), (s1, t1) in zip(zip(sizes, taus), zip(sizes[1:], taus[1:])):
        if t0 < target <= t1:
            f = (target - t0) / (t1 - t0)
            return float(math.exp(math.log(s0) + f * (math.log(s1) - math.log(s0))))
    return None


@contextlib.contextmanager
def paired_level(alpha: float):
    """The product's paired test (held_out.held_out_beats) at level `alpha` for the duration."""
    kept, held_out.PAIRED_ALPHA = held_out.PAIRED_ALPHA, alpha
    try:
        yield
    finally:
        held_out.PAIRED_ALPHA = kept


def evaluate_pool(
    pool: list[Candidate], rows: list[Result], hits: dict[str, np.ndarray], draws: int, seed: int, levels: tuple[float, ...] = ()
) -> dict:
    tests = np.array([c.test_acc for c in pool])
    matrix = np.stack([hits[str(c.path)] for c in pool])
    rows = copy.deepcopy(rows)
    label_free = choose(rows, "agreement", thresholds(rows, "mean"))
    b_first = rows.index(label_free.ranked[0])
    mem = [c.memorized for c in pool]
    gap = [r.train_acc - a for r, a in zip(rows, matrix.mean(1))]
    fits = [r.fits_contradicted for r in rows]
    labels = label_free.labels
    noise = None if labels is None or labels.estimate.doubt else labels.estimate.rate
    out: dict = {
        # item 3: the gap (training minus held-out accuracy, all held-out images) as evidence of memorization, beside
        # the label-free fit on the labels the consensus contradicts; each as a verdict at the oracle's cut, the gap
        # read as the share of wrong labels fitted by dividing it by the noise estimate
        "tau_gap_memorized": tau(gap, mem),
        "tau_fits_memorized": tau(fits, mem) if all(f is not None for f in fits) else None,
        # the same among the models that fit LEARNED_ONLY_CLEAN or more of their wrong labels: below it the share a model
        # "fits" is what its mistakes share with the annotators', not memorization
        **taus_above(gap, fits, mem),
        "gap_verdict": None if noise is None else flagged([g / noise for g in gap], mem),
        "fits_verdict": flagged(fits, mem) if all(f is not None for f in fits) else None,
        # the product's verdict in the pool, and the same with the rows it calls 'unclear' decided by the gap
        "product_verdict": flagged([1.0 if r.verdict == MEMORIZED else 0.0 for r in rows], mem),
        "gap_on_unclear": None
        if noise is None
        else flagged([1.0 if r.verdict == MEMORIZED else g / noise if r.verdict == UNCLEAR else 0.0 for r, g in zip(rows, gap)], mem),
        "n": len(pool),
        "label_free": {
            "tau": tau(order_score(label_free.ranked, rows), tests.tolist()),
            "regret": float(100 * (tests.max() - tests[b_first])),
            "confident": label_free.confident,
        },
        "sizes": {},
    }
    rng = np.random.default_rng(seed)
    for size in SIZES:
        if size > matrix.shape[1]:
            continue
        a, c, at = [], [], {level: [] for level in levels}
        for _ in range(draws if size < matrix.shape[1] else 1):  # the whole set has one draw
            idx = np.sort(rng.choice(matrix.shape[1], size=size, replace=False))
            a.append(held_out_alone(matrix[:, idx], tests))
            c.append(combined(label_free, rows, matrix[:, idx], tests))
            for level in levels:
                with paired_level(level):
                    at[level].append(combined(label_free, rows, matrix[:, idx], tests)[:2])
        out["sizes"][size] = {
            "draws": len(a),
            "a_tau": statistics.fmean(x[0] for x in a),
            "a_regret": statistics.fmean(x[1] for x in a),
            "c_tau": statistics.fmean(x[0] for x in c),
            "c_regret": statistics.fmean(x[1] for x in c),
            "c_confident": statistics.fmean(float(x[2]) for x in c),
            # the claim checked: the worst regret of a pick (c) called confident (None: never called so)
            "c_confident_worst_regret": max((x[1] for x in c if x[2]), default=None),
            "c_tau_min": min(x[0] for x in c),
            "s_tau": statistics.fmean(x[3] for x in c),
            "s_regret": statistics.fmean(x[4] for x in c),
            "t_tau": statistics.fmean(x[5] for x in c),
            "t_regret": statistics.fmean(x[6] for x in c),
            "z_tau": statistics.fmean(x[7] for x in c),
            "z_regret": statistics.fmean(x[8] for x in c),
            "q_tau": statistics.fmean(x[9] for x in c),
            "q_regret": statistics.fmean(x[10] for x in c),
            "g_tau": statistics.fmean(x[11] for x in c),
            "g_regret": statistics.fmean(x[12] for x in c),
            "c0_tau": statistics.fmean(x[13] for x in c),
            "c0_regret": statistics.fmean(x[14] for x in c),
            "c_held_out_weight": statistics.fmean(x[15] for x in c),  # the blend's mean weight of held-out accuracy
            "a_tau_sd": statistics.pstdev(x[0] for x in a),
            "c_at_level": {
                str(level): {"tau": statistics.fmean(x[0] for x in v), "regret": statistics.fmean(x[1] for x in v)}
                for level, v in at.items()
            },
        }
    sizes = tuple(out["sizes"])
    out["exchange_tau"] = exchange_rate(sizes, [out["sizes"][s]["a_tau"] for s in sizes], out["label_free"]["tau"])
    return out


def confident(size: dict) -> str:
    """How often (c) said "confident", and the worst regret of those picks: the claim, checked."""
    share, worst = size["c_confident"], size.get("c_confident_worst_regret")
    return f"{100 * share:.0f}%" + ("" if worst is None else f" ({worst:.1f})")


def render(results: dict, kept_out: set[str], draws: int) -> str:
    lines = [
        "# What held-out labels are worth, and what suscli adds to them",
        "",
        f"Random held-out subsets ({draws} draws per size; the full {HELD_OUT_IMAGES:,} once) with the setting's own noisy "
        "labels. (a) held-out accuracy alone; (b) suscli's label-free default; (c) `rank --val-data`; variants of (c), not in the product: "
        "(s) the same tied set, ordered by held-out accuracy shrunk toward what the label-free agreement predicts; (t) every pair the "
        "held-out set decides left to it, the rest by held-out accuracy shrunk toward what the place in the label-free order predicts; "
        "(z) the same, the rest by the held-out paired z plus the agreement difference's z; (q) every pair by the held-out set "
        "where its paired test is surer than the label-free order is right (estimated on the held-out set), by the label-free "
        "order elsewhere; (g) every pair the held-out set decides left to it, the rest by held-out accuracy where it predicts "
        "held-out accuracy on the other half of the held-out set better than the label-free order does (split halves), by the "
        "label-free order elsewhere; (c0) the previous rule of `rank --val-data`: the same, but only where held-out accuracy "
        "predicts better in every split. "
        "tau: Kendall tau with "
        "clean test accuracy; regret: the pool's best clean test accuracy minus the first choice's, in points (for (a), the "
        "mean over the models sharing the top held-out accuracy). Means over draws. Held out from the design: "
        f"{', '.join(sorted(kept_out)) or 'none'}.",
        "",
        "| setting | pool | models | (b) tau / regret | exchange rate | size | (a) tau | (c) tau | (c)-(a) | (a) regret | (c) regret | (c) confident (worst regret when so) | (s) tau / regret | (t) tau / regret | (z) tau / regret | (q) tau / regret | (g) tau / regret | (c0) tau / regret | (c) weight of held-out accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in results.items():
        setting, pool = key.split("/")
        b = r["label_free"]
        rate = r["exchange_tau"]
        rate_s = "-" if rate is None else ("< 25" if rate == 0 else f"{rate:,.0f}")
        for k, (size, s) in enumerate(r["sizes"].items()):
            head = (
                f"| {setting}{' (held out)' if setting in kept_out else ''} | {pool} | {r['n']} | {b['tau']:.2f} / {b['regret']:.1f} | {rate_s} "
                if k == 0
                else "| | | | | "
            )
            lines.append(
                head + f"| {int(size):,} | {s['a_tau']:.2f} | {s['c_tau']:.2f} | {s['c_tau'] - s['a_tau']:+.2f} | {s['a_regret']:.1f} | "
                f"{s['c_regret']:.1f} | {confident(s)} | {s['s_tau']:.2f} / {s['s_regret']:.1f} | "
                f"{s['t_tau']:.2f} / {s['t_regret']:.1f} | {s['z_tau']:.2f} / {s['z_regret']:.1f} | "
                f"{s['q_tau']:.2f} / {s['q_regret']:.1f} | {s['g_tau']:.2f} / {s['g_regret']:.1f} | "
                f"{s['c0_tau']:.2f} / {s['c0_regret']:.1f} | {s['c_held_out_weight']:.2f} |"
            )
    lines += ["", "Exchange rate: the held-out size at which (a)'s mean tau reaches (b)'s (log-linear between sizes).", ""]
    levels = list(next(iter(results.values()))["sizes"].values())[0]["c_at_level"] if results else {}
    if levels:
        lines += [
            f"## (c) with the paired test at other levels than the product's {held_out.PAIRED_ALPHA:g}",
            "",
            "Mean tau / regret on the same draws; (c)-(a) after each.",
            "",
            "| setting | pool | size | (a) | (c) at " + f"{held_out.PAIRED_ALPHA:g} | " + " | ".join(f"(c) at {x}" for x in levels) + " |",
            "|---|---|---|---|---|" + "---|" * len(levels),
        ]
        for key, r in results.items():
            setting, pool = key.split("/")
            for size, s in r["sizes"].items():
                cells = [(s["c_tau"], s["c_regret"])] + [(v["tau"], v["regret"]) for v in s["c_at_level"].values()]
                lines.append(
                    f"| {setting} | {pool} | {int(size):,} | {s['a_tau']:.2f} / {s['a_regret']:.1f} | "
                    + " | ".join(f"{t:.2f} / {g:.1f} ({t - s['a_tau']:+.2f})" for t, g in cells)
                    + " |"
                )
        lines.append("")
    lines += [
        "## The gap as evidence of memorization",
        "",
        "Kendall tau with the share of its wrong training labels each model fits: the gap (training accuracy minus accuracy "
        f"on all {HELD_OUT_IMAGES:,} held-out images) beside the label-free fit on the labels the consensus contradicts.",
        "",
        f"As verdicts (a memorizer where the number, the gap divided by the noise estimate, is at least {MEMORIZED_CUT:.0%}): "
        "recall / precision against the oracle, and models flagged / memorizers.",
        "",
        "| setting | pool | tau(gap, memorized) | tau(fits contradicted, memorized) | the same among the models fitting "
        f"{LEARNED_ONLY_CLEAN:.0%} or more (how many) | gap verdict: R / P (flagged / memorizers) | fits-contradicted verdict | "
        "the product's verdict in the pool | the same, its 'unclear' rows decided by the gap |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def number(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    def verdict(v: dict | None) -> str:
        return "-" if v is None else f"{v['recall']:.2f} / {v['precision']:.2f} ({v['flagged']} / {v['memorizers']})"

    for key, r in results.items():
        setting, pool = key.split("/")
        fits = r["tau_fits_memorized"]
        lines.append(
            f"| {setting} | {pool} | {r['tau_gap_memorized']:.2f} | {'-' if fits is None else format(fits, '.2f')} | "
            f"{number(r['tau_gap_above'])} / {number(r['tau_fits_above'])} ({r['above']}) | "
            f"{verdict(r['gap_verdict'])} | {verdict(r['fits_verdict'])} | {verdict(r['product_verdict'])} | "
            f"{verdict(r['gap_on_unclear'])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = zoo_arguments(__doc__.splitlines()[0])
    ap.add_argument("--held-out", default="", help="comma list of settings no rule was tuned on (reported apart)")
    ap.add_argument("--draws", type=int, default=50)
    ap.add_argument("--levels", default="", help="comma list of other levels of the paired test to run (c) at, e.g. 0.32,0.5")
    args = ap.parse_args(argv)
    levels = tuple(float(x) for x in args.levels.split(",") if x)
    settings = zoo_settings(args)
    results = {}
    for (setting, pool_name), (pool, rows, _) in load_pools(args.zoo, settings).items():
        hits, noisy, clean = held_out_hits(pool, args.zoo, setting)
        noise = float((noisy != clean).mean())
        print(f"{setting} {pool_name}: held-out labels {100 * noise:.1f}% wrong", file=sys.stderr)
        results[f"{setting}/{pool_name}"] = {**evaluate_pool(pool, rows, hits, args.draws, seed=0, levels=levels), "held_out_noise": noise}
    held_out = {s for s in args.held_out.split(",") if s}
    report = render(results, held_out, args.draws)
    (args.zoo / "eval" / "held-out.json").write_text(
        json.dumps({"held_out": sorted(held_out), "draws": args.draws, "results": results}, indent=1)
    )
    (args.zoo / "eval" / "held-out.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
