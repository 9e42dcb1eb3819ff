"""How noisy are the labels: suscli's estimate beside cleanlab's on the same predictions (issue 27).

For every pool of a zoo (as evaluate_choice.py builds it: final models, every saved candidate), the voters that
`suscli rank` chooses and their predictions on the training images (the top classes the training-accuracy pass
keeps), then each estimator of the share of wrong training labels against the truth:

- consensus: what `rank` prints (suscli.judge.noise.estimate_noise: the share of labels the voters' consensus
  contradicts, with its interval, whose low end allows for the voters' own errors);
- cleanlab `estimate_joint` (1 - its trace) and `num_label_issues` on the voters' mean probabilities, the kept
  top classes with the rest of the mass spread evenly over the other classes;
- the per-class picture: the consensus's noise matrix P(given label | consensus class) and cleanlab's, each
  against the true P(given label | clean class): mean absolute error over the off-diagonal cells;
- suspects: precision of the most-sure 10% of each method's own list, and at the same count, against the true
  wrong labels (suscli: contradicted labels ranked by the consensus's vote share; cleanlab: find_label_issues
  ranked by self-confidence);
- candidates that try to correct the consensus share for the voters' own errors, each with no constant of its own
  (CANDIDATES), and cleanlab's estimate_joint, every one with a bootstrap interval over the voters and the images:
  how often each interval covers the truth, by how much it misses, how wide it is.

cleanlab gets the voters whose consensus `rank` counts (the noise voters, suscli.judge.rules.annotate_labels), so
that every estimator reads the same predictions.

With held-out labels (`rank --val-data`): every candidate's predictions on evaluate_held_out.py's 2,000 held-out
images with the setting's own noisy labels (cached in <zoo>/eval/held-out-predictions-<setting>.npz), and what `rank`
then prints: the same voters' consensus on them (suscli.judge.noise.with_held_out) and the interval it leaves.

    python benchmarks/evaluate_noise.py --zoo benchmarks/out/zoo-human --threads 1

Writes <zoo>/eval/noise.md (printed too) and noise.json (--out names them otherwise).
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_choice import labelled_passes, load_pools, training_set, zoo_arguments, zoo_settings
from evaluate_held_out import held_out_set

import suscli.judge.noise as noise
from suscli.judge.noise import BOOTSTRAP_IMAGES, chance_agreement, consensus, corrected_share, given_labels, noise_matrix
from suscli.judge.regions import thresholds
from suscli.judge.rules import DEFAULT_NOISE_VOTERS, _measured, _voters, choose, predictions_of, train_predictions_of
from suscli.measure.predictions import Predictions
from suscli.results import Result

RESAMPLES = 100  # bootstrap draws of (voters, training images, unlabeled images) per pool for every candidate


def dense(preds: list[Predictions]) -> np.ndarray:
    """The voters' mean probabilities (images, classes): each model's kept top classes, the rest of its mass spread
    evenly over the classes it did not keep."""
    n, k = preds[0].classes.shape
    classes = preds[0].num_classes
    total = np.zeros((n, classes))
    rows = np.arange(n)[:, None]
    for p in preds:
        rest = np.clip(1 - p.probs.astype(float).sum(1, keepdims=True), 0, None) / max(classes - k, 1)
        one = np.repeat(rest, classes, axis=1)
        one[rows, p.classes] = p.probs
        total += one
    return total / len(preds)


def p_given(true: np.ndarray, given: np.ndarray, classes: int) -> np.ndarray:
    """P(given label | class) with `true` standing for the class: the consensus's matrix (suscli.judge.noise, what the
    report prints) with the consensus, the truth with the clean labels. A class without images is a zero row."""
    return np.nan_to_num(noise_matrix(true, given, classes).p_label_given_consensus())


def off_diagonal_mae(a: np.ndarray, b: np.ndarray) -> float:
    off = ~np.eye(len(a), dtype=bool)
    return float(np.abs(a - b)[off].mean())


def precision_at(order: np.ndarray, wrong: np.ndarray, k: int) -> float | None:
    return float(wrong[order[:k]].mean()) if k > 0 and len(order) >= k else None


def noise_voters(rows: list[Result], t) -> list[Result]:
    """The rows whose consensus `rank` counts on the training labels (what suscli.judge.rules._label_check hands
    annotate_labels, under the agreement rule), after choose() measured their agreement."""
    measured = [r for r in _measured(rows) if r.agreement is not None]
    return [r for r, v in zip(measured, _voters(measured, t, DEFAULT_NOISE_VOTERS)[0]) if v]


@dataclass(frozen=True)
class Votes:
    """The voters' predictions as arrays, (voters, images, classes): what each candidate estimator reads."""

    kept: np.ndarray  # the kept top-k probabilities on the training images, 0 elsewhere (what the consensus sums)
    dense: np.ndarray  # the same with the rest of each voter's mass spread over the other classes (as `dense`)
    top1: np.ndarray  # (voters, images): each voter's top class
    unlabeled: list[Predictions]  # the voters' predictions on the unlabeled images, as rank keeps them
    labels: np.ndarray  # the given training labels

    @classmethod
    def of(cls, train: list[Predictions], unlabeled: list[Predictions]) -> Votes:
        def kept(preds: list[Predictions]) -> np.ndarray:
            out = np.zeros((len(preds), preds[0].classes.shape[0], preds[0].num_classes), dtype=np.float32)
            for v, p in enumerate(preds):
                np.put_along_axis(out[v], p.classes.astype(np.int64), p.probs.astype(np.float32), axis=1)
            return out

        dense_ = np.stack([dense([p]) for p in train]).astype(np.float32)
        return cls(
            kept(train),
            dense_,
            np.stack([p.top1() for p in train]),
            list(unlabeled),
            np.asarray(train[0].labels),
        )


def consensus_share(v: Votes, who: np.ndarray, images: np.ndarray, unl: np.ndarray) -> float:
    """Today's estimate: the share of the labels that the voters' consensus (summed kept probabilities) contradicts."""
    return float((v.kept[who][:, images].sum(0).argmax(1) != v.labels[images]).mean())


def voter_disagreement(v: Votes, who: np.ndarray, unl: np.ndarray) -> float:
    """1 - the drawn voters' mean agreement with their consensus on the drawn unlabeled images: what `rank`'s low end
    reads (suscli.judge.noise.voter_disagreement)."""
    return noise.voter_disagreement([v.unlabeled[i] for i in who], unl)


def corrected(v: Votes, who: np.ndarray, images: np.ndarray, unl: np.ndarray) -> float:
    """The consensus share s corrected for the voters' own error rate e as their agreement on the unlabeled images
    shows it (e = 1 - a voter's mean agreement with the voters' consensus there): (s - e) / (1 - e), at least 0
    (suscli.judge.noise.corrected_share, the low end of what `rank` prints)."""
    return corrected_share(consensus_share(v, who, images, unl), voter_disagreement(v, who, unl))


def dawid_skene(v: Votes, who: np.ndarray, images: np.ndarray, unl: np.ndarray, iterations: int = 50) -> float:
    """Dawid and Skene's EM with the given label as one more annotator beside the voters' top classes: each
    annotator's confusion matrix and the latent true class are fitted together; the estimate is the mean posterior
    that the given label is not the true class. It assumes the annotators err independently given the class."""
    labels = v.labels[images]
    votes = np.vstack([labels[None], v.top1[who][:, images]]).astype(np.int64)
    classes = v.kept.shape[2]
    onehot = np.eye(classes, dtype=np.float64)[votes]  # (annotators, images, classes)
    q = onehot.mean(0)
    for _ in range(iterations):
        prior = q.mean(0)
        conf = np.matmul(q.T, onehot) + 1e-6  # conf[a, true, said]
        log_conf = np.log(conf / conf.sum(2, keepdims=True))
        log_q = np.log(prior)[None] + sum(log_conf[a][:, votes[a]].T for a in range(len(votes)))
        q = np.exp(log_q - log_q.max(1, keepdims=True))
        q /= q.sum(1, keepdims=True)
    return float(1 - q[np.arange(len(labels)), labels].mean())


def _noise_fit(p: np.ndarray, labels: np.ndarray, iterations: int) -> tuple[float, float]:
    """Class-conditional noise P(label | x) = sum_k p_k(x) T[k, label]: the maximum-likelihood transition matrix
    T by EM (the log-likelihood is concave in T); returns (log-likelihood, mean posterior of a wrong label)."""
    classes = p.shape[1]
    onehot = np.eye(classes)[labels]
    t = np.full((classes, classes), 1 / classes) * 0.1 + np.eye(classes) * 0.9
    for _ in range(iterations):
        r = p * t[:, labels].T
        r /= np.maximum(r.sum(1, keepdims=True), 1e-300)
        t = r.T @ onehot
        t /= np.maximum(t.sum(1, keepdims=True), 1e-300)
    joint = p * t[:, labels].T
    evidence = np.maximum(joint.sum(1), 1e-300)
    return float(np.log(evidence).sum()), float(1 - (joint[np.arange(len(labels)), labels] / evidence).mean())


def calibrated_noise(v: Votes, who: np.ndarray, images: np.ndarray, unl: np.ndarray, iterations: int = 60) -> float:
    """The voters' mean probabilities, sharpened or flattened by the power that together with a class-conditional
    noise matrix explains the given labels best (maximum likelihood over both: the power by a bounded scalar
    search, the matrix by EM), and the share of labels that noise matrix calls wrong. It assumes the power makes
    the voters' probabilities calibrated and that the noise depends on the class only."""
    from scipy.optimize import minimize_scalar

    log_p = np.log(np.maximum(v.dense[who][:, images].mean(0), 1e-12)).astype(np.float64)
    labels = v.labels[images]

    def sharpened(log_power: float) -> np.ndarray:
        z = log_p * np.exp(log_power)
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    best = minimize_scalar(
        lambda a: -_noise_fit(sharpened(a), labels, iterations)[0], bounds=(-1.0, 4.0), method="bounded", options={"xatol": 0.05}
    )
    return _noise_fit(sharpened(float(best.x)), labels, iterations)[1]


def cleanlab_joint(v: Votes, who: np.ndarray, images: np.ndarray, unl: np.ndarray) -> float:
    """cleanlab's estimate_joint on the voters' mean probabilities: 1 - its trace."""
    import cleanlab.count

    return float(1 - np.trace(cleanlab.count.estimate_joint(v.labels[images], v.dense[who][:, images].mean(0))))


CANDIDATES = {
    "consensus": consensus_share,
    "corrected": corrected,
    "dawid-skene": dawid_skene,
    "calibrated": calibrated_noise,
    "cleanlab": cleanlab_joint,
}


def bootstrap_all(v: Votes, truth: float, resamples: int = RESAMPLES, seed: int = 0) -> dict[str, dict]:
    """Every candidate on all voters and images, and its 95% interval from `resamples` draws of the voters, the
    training images (on a seeded sample of BOOTSTRAP_IMAGES, as suscli.judge.noise) and the unlabeled images, the
    same draws for every candidate; the interval is widened to hold the point estimate, as rank's is."""
    voters, n = v.top1.shape
    every, unl = np.arange(voters), np.arange(v.unlabeled[0].classes.shape[0])
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, BOOTSTRAP_IMAGES), replace=False))
    draws = [
        (rng.integers(0, voters, voters), rng.choice(sample, size=len(sample)), rng.choice(unl, size=len(unl))) for _ in range(resamples)
    ]
    out = {}
    for name, f in CANDIDATES.items():
        rate = f(v, every, np.arange(n), unl)
        spread = [f(v, *d) for d in draws]
        low, high = np.quantile(spread, [0.025, 0.975]) if spread else (rate, rate)
        low, high = float(min(low, rate)), float(max(high, rate))
        out[name] = {
            "rate": rate,
            "low": low,
            "high": high,
            "covered": bool(low <= truth <= high),
            "miss": float(max(low - truth, truth - high, 0.0)),
            "width": high - low,
        }
    return out


def held_out_predictions(cands: list, zoo: Path, setting: str) -> tuple[dict[str, Predictions], np.ndarray, np.ndarray]:
    """Per candidate, its predictions on the held-out images with their noisy labels (cached), and the labels (noisy,
    clean): the pass `rank --val-data` runs."""
    paths, noisy, clean = held_out_set(zoo, setting)
    path = zoo / "eval" / f"held-out-predictions-{setting}.npz"
    return labelled_passes(cands, path, paths, noisy, f"{setting}: held-out predictions"), noisy, clean


def with_held_out(pool: list, rows: list, held: dict[str, Predictions], noisy: np.ndarray, clean: np.ndarray, truth: float) -> dict:
    """What `rank --val-data` prints of the label noise: the rows with their held-out predictions, ranked again."""
    rows = copy.deepcopy(rows)
    for c, r in zip(pool, rows):
        r.details["val_predictions"] = held[str(c.path)].encode()
    check = choose(rows, "agreement", thresholds(rows, "mean")).labels
    est = check.estimate
    h = est.held_out
    assert h is not None, "no held-out reading: a voter without held-out predictions?"
    voters = [held[str(c.path)] for c, r in zip(pool, rows) if r.name in check.voter_names]
    return {
        "held_true": float((noisy != clean).mean()),
        # Cohen's kappa of the voters' consensus with the held-out labels (rank declines clearly under 0.2)
        "held_kappa": chance_agreement(consensus(voters)[0], given_labels(voters))[0],
        "held_rate": h.rate,
        "held_low": h.low,
        "held_high": h.high,
        "raised": est.training_high is not None,
        "low": est.low,
        "high": est.high,
        "covered": bool(est.low <= truth <= est.high),
        "miss": float(max(est.low - truth, truth - est.high, 0.0)),
        "width": est.high - est.low,
        "wrong_labels": est.wrong_labels,
        "declined": not est.said,  # "not enough evidence": no interval is printed as an estimate (the held-out decline too)
    }


def evaluate_pool(rows: list, labels: np.ndarray, clean: np.ndarray, resamples: int = RESAMPLES) -> dict:
    import cleanlab.count
    import cleanlab.filter

    rows = copy.deepcopy(rows)
    t = thresholds(rows, "mean")
    choice = choose(rows, "agreement", t)
    check = choice.labels
    assert check is not None
    voters = noise_voters(rows, t)
    preds = [p for p in map(train_predictions_of, voters) if p is not None]
    assert len(preds) == check.estimate.voters, "the voters differ from the ones rank's estimate counted"
    unlabeled = [p for p in map(predictions_of, voters) if p is not None]
    votes = Votes.of(preds, unlabeled)
    probs = dense(preds)
    wrong = labels != clean
    classes = probs.shape[1]
    joint = cleanlab.count.estimate_joint(labels, probs)
    issues = cleanlab.filter.find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    ours = check.suspects()
    common = int(0.05 * len(labels))
    truth = p_given(clean, labels, classes)
    # cleanlab's joint is P(label=i, true_label=j); P(given=j | true=i) is its transpose normalized by row
    cl_matrix = joint.T / np.maximum(joint.T.sum(1, keepdims=True), 1e-12)
    est = check.estimate
    return {
        "true": float(wrong.mean()),
        "voters": len(preds),
        "voter_clean_acc": float(np.mean([(p.top1() == clean).mean() for p in preds])),
        "consensus": est.rate,
        "consensus_low": est.low,
        "consensus_high": est.high,
        "covered": bool(est.low <= wrong.mean() <= est.high),
        "miss": float(max(est.low - wrong.mean(), wrong.mean() - est.high, 0.0)),
        "width": est.high - est.low,
        "rank_corrected": est.corrected,  # the low end's point: the share corrected for the voters' disagreement
        "declined": est.doubt,  # why the contradicted share is not the estimate (suscli.judge.cost); None where it is
        "wrong_labels": est.wrong_labels,  # the one figure rank gives: the contradicted or the corrected share, or None
        "point_withheld": est.point_withheld,  # why rank gives the interval alone; None where it gives a figure or declines
        "fit_cost_ratio": check.cost.ratio if check.cost else None,
        "cl_joint": float(1 - np.trace(joint)),
        "cl_num_issues": float(cleanlab.count.num_label_issues(labels, probs) / len(labels)),
        "matrix_mae_consensus": off_diagonal_mae(p_given(check.consensus, labels, classes), truth),
        "matrix_mae_cleanlab": off_diagonal_mae(cl_matrix, truth),
        "suspects_n": len(ours),
        "cl_issues_n": len(issues),
        "p10_consensus": precision_at(ours, wrong, max(1, len(ours) // 10)),
        "p10_cleanlab": precision_at(issues, wrong, max(1, len(issues) // 10)),
        # the same count as cleanlab's surest 10%: its list is shorter, so its own 10% reaches less far down
        "p_cl10_consensus": precision_at(ours, wrong, max(1, len(issues) // 10)),
        "p_common_consensus": precision_at(ours, wrong, common),
        "p_common_cleanlab": precision_at(issues, wrong, common),
        "recall_consensus": float(check.contradicted[wrong].mean()) if wrong.any() else None,
        "recall_cleanlab": float(np.isin(np.flatnonzero(wrong), issues).mean()) if wrong.any() else None,
        # where the consensus share comes from (s = eta (1 - m) + (1 - eta) e_r), with the clean labels
        "consensus_on_right": float(check.contradicted[~wrong].mean()),  # e_r: right labels it contradicts
        "consensus_confirms_wrong": float((~check.contradicted[wrong]).mean()) if wrong.any() else None,  # m
        "voter_disagreement": noise.voter_disagreement(unlabeled),  # e
        "candidates": bootstrap_all(votes, float(wrong.mean()), resamples),
    }


def _p(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _table(results: dict, head: list[str], cells: Callable[[dict], list[str]]) -> list[str]:
    """A Markdown table with a row per pool: setting, pool, then `cells` of its results under `head`."""
    lines = ["| setting | pool | " + " | ".join(head) + " |", "|---|---|" + "---|" * len(head)]
    for key, r in results.items():
        setting, pool = key.split("/")
        lines.append(f"| {setting} | {pool} | " + " | ".join(cells(r)) + " |")
    return lines


def _estimate(r: dict) -> list[str]:
    return [
        f"{r['voters']} ({_p(r['voter_clean_acc'])})",
        _p(r["true"]),
        f"{_p(r['consensus'])} ({_p(r['consensus_low'])}-{_p(r['consensus_high'])})",
        "yes" if r["covered"] else f"no, by {100 * r['miss']:.1f}",
        f"{100 * r['width']:.1f}",
        "-" if r["fit_cost_ratio"] is None else format(r["fit_cost_ratio"], ".2f"),
        _reads(r),
        _p(r["cl_joint"]),
        _p(r["cl_num_issues"]),
        f"{_p(r['matrix_mae_consensus'])} / {_p(r['matrix_mae_cleanlab'])}",
        f"{_p(r['p10_consensus'])} / {_p(r['p10_cleanlab'])}",
        _p(r["p_cl10_consensus"]),
        f"{_p(r['p_common_consensus'])} / {_p(r['p_common_cleanlab'])}",
    ]


def _reads(r: dict) -> str:
    """What `rank` prints: one figure (the contradicted share, or the corrected one where fitting the contradicted
    labels is free) and how far it is from the truth, the interval alone where the voters err too often for one
    figure, or nothing where the consensus is too weak."""
    withheld, reads = r.get("point_withheld"), r.get("wrong_labels")
    if r["declined"] and not withheld and reads is None:
        return "not enough evidence"
    head = "no evidence the contradicted labels are wrong: " if r["declined"] else ""
    if withheld:
        return head + "the interval alone"
    return head + f"{_p(reads)}, {100 * abs(reads - r['true']):.1f} off"


def _candidate(c: dict) -> str:
    return f"{_p(c['rate'])} ({_p(c['low'])}-{_p(c['high'])})" + ("" if c["covered"] else f", miss {100 * c['miss']:.1f}")


def render(results: dict) -> str:
    lines = [
        "# How noisy are the labels: suscli's estimate beside cleanlab's",
        "",
        "Shares of wrong training labels in %. consensus: what `rank` prints, with its interval (from the share corrected "
        "for the voters' own disagreement on the unlabeled images to the contradicted share's 97.5% quantile) and its "
        "width in points; cleanlab on the same "
        "voters' mean probabilities. Matrix: mean absolute error of P(given | class) over the off-diagonal cells, in points. "
        "Suspects: precision of the most-sure 10% of each list / the consensus's list at the count of cleanlab's most-sure "
        "10% / both at the same count (5% of the images). Fit cost: the best-agreeing model that fits most (over half) "
        "of the contradicted labels, its agreement over the best other model's (suscli.judge.cost); where it is not "
        "clearly below (two binomial standard errors), rank prints 'no evidence that the labels the consensus contradicts are wrong' and the share corrected "
        "for the voters' disagreement instead of the estimate; where the consensus is too weak, 'not enough evidence'. "
        "Rank prints one figure (and how far it is from the truth) only where the voters leave their consensus on at most "
        "10% of the unlabeled images (suscli.judge.noise.POINT_MAX_DISAGREEMENT), the interval alone elsewhere.",
        "",
        *_table(
            results,
            [
                "voters (clean acc.)",
                "true",
                "consensus (interval)",
                "covered",
                "width",
                "fit cost",
                "rank prints",
                "cleanlab joint",
                "cleanlab issues",
                "matrix error: consensus / cleanlab",
                "suspects top 10%: consensus / cleanlab",
                "consensus at cleanlab's top-10% count",
                "at 5%: consensus / cleanlab",
            ],
            _estimate,
        ),
        "",
        "## Where the consensus share comes from (with the clean labels)",
        "",
        "s = eta (1 - m) + (1 - eta) e_r: e_r the share of right labels the consensus contradicts, m the share of wrong "
        "labels it confirms; e the voters' disagreement with their consensus on the unlabeled images (what `corrected` "
        "subtracts).",
        "",
        *_table(
            results,
            ["true", "consensus share s", "e_r", "m", "e"],
            lambda r: [_p(r[k]) for k in ("true", "consensus", "consensus_on_right", "consensus_confirms_wrong", "voter_disagreement")],
        ),
        "",
        "## With held-out labels (`rank --val-data`, 2,000 held-out images)",
        "",
        "The same voters' consensus on the held-out labels, which no model fitted (suscli.judge.noise.with_held_out): "
        "the share it contradicts (its interval), against the held-out labels' true share; where it is clearly above the "
        "training interval's high end (an exact one-sided binomial test at 2.5%), rank raises that end to the held-out one's and gives no single figure. "
        "Then the interval rank prints, against the training labels' truth.",
        "",
        *_table(
            results,
            ["held-out true", "held-out consensus (interval)", "its kappa", "raised", "rank prints", "covered", "width", "width without"],
            lambda r: [
                _p(r["with_val"]["held_true"]),
                f"{_p(r['with_val']['held_rate'])} ({_p(r['with_val']['held_low'])}-{_p(r['with_val']['held_high'])})",
                f"{r['with_val']['held_kappa']:.2f}",
                "yes" if r["with_val"]["raised"] else "no",
                ("not enough evidence " if r["with_val"].get("declined") else "")
                + ("" if r["with_val"]["wrong_labels"] is None else f"{_p(r['with_val']['wrong_labels'])} ")
                + f"({_p(r['with_val']['low'])}-{_p(r['with_val']['high'])})",
                "yes" if r["with_val"]["covered"] else f"no, by {100 * r['with_val']['miss']:.1f}",
                f"{100 * r['with_val']['width']:.1f}",
                f"{100 * r['width']:.1f}",
            ],
        ),
        "",
        "## Candidate estimators, each with a bootstrap interval over the voters and the images",
        "",
        "Each cell: estimate (95% interval), in %; `miss` = how far the truth lies outside the interval, in points. "
        "consensus: today's share (its own bootstrap here, the same draws as the others); corrected: (s - e) / (1 - e) "
        "with e the voters' disagreement with their consensus on the unlabeled images; dawid-skene: the given label "
        "as one more annotator; calibrated: class-conditional noise fitted with the voters' probabilities sharpened "
        "by maximum likelihood; cleanlab: estimate_joint on the same voters.",
        "",
        *_table(results, ["true", *CANDIDATES], lambda r: [_p(r["true"]), *(_candidate(r["candidates"][n]) for n in CANDIDATES)]),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = zoo_arguments(__doc__.splitlines()[0])
    ap.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap draws per pool for the candidates")
    ap.add_argument("--out", default="noise", help="what <zoo>/eval/OUT.md and OUT.json are called")
    args = ap.parse_args(argv)
    settings = zoo_settings(args)
    results = {}
    for (setting, pool_name), (pool, rows, _) in load_pools(args.zoo, settings).items():
        _, labels, clean = training_set(args.zoo, setting)
        results[f"{setting}/{pool_name}"] = r = evaluate_pool(rows, labels, clean, args.resamples)
        held, noisy, held_clean = held_out_predictions(pool, args.zoo, setting)
        r["with_val"] = with_held_out(pool, rows, held, noisy, held_clean, r["true"])
    report = render(results)
    (args.zoo / "eval" / f"{args.out}.json").write_text(json.dumps(results, indent=1))
    (args.zoo / "eval" / f"{args.out}.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
