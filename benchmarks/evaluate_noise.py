"""How noisy are the labels: suscli's estimate beside cleanlab's on the same predictions (issue 27).

For every pool of a zoo (as evaluate_choice.py builds it: final models, every saved candidate), the voters that
`suscli rank` chooses and their predictions on the training images (the top classes the training-accuracy pass
keeps), then each estimator of the share of wrong training labels against the truth:

- consensus: what `rank` prints (suscli.judge.noise.estimate_noise: the share of labels the voters' consensus
  contradicts, with its bootstrap interval);
- cleanlab `estimate_joint` (1 - its trace) and `num_label_issues` on the voters' mean probabilities, the kept
  top classes with the rest of the mass spread evenly over the other classes;
- the per-class picture: the consensus's noise matrix P(given label | consensus class) and cleanlab's, each
  against the true P(given label | clean class): mean absolute error over the off-diagonal cells;
- suspects: precision of the most-sure 10% of each method's own list, and at the same count, against the true
  wrong labels (suscli: contradicted labels ranked by the consensus's vote share; cleanlab: find_label_issues
  ranked by self-confidence).

    python benchmarks/evaluate_noise.py --zoo benchmarks/out/zoo-human

Writes <zoo>/eval/noise.md (printed too) and noise.json.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_choice import load_pools, training_set, zoo_arguments, zoo_settings

from suscli.judge.noise import noise_matrix
from suscli.judge.regions import thresholds
from suscli.judge.rules import choose, train_predictions_of
from suscli.measure.predictions import Predictions


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


def evaluate_pool(rows: list, labels: np.ndarray, clean: np.ndarray) -> dict:
    import cleanlab.count
    import cleanlab.filter

    rows = copy.deepcopy(rows)
    choice = choose(rows, "agreement", thresholds(rows, "mean"))
    check = choice.labels
    assert check is not None
    voters = [r for r in rows if r.name in set(choice.voters)]
    preds = [p for p in map(train_predictions_of, voters) if p is not None]
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
        "declined": est.doubt,  # "not enough evidence", and why (suscli.judge.cost); None where rank prints the estimate
        "fit_cost_ratio": check.cost.ratio if check.cost else None,
        "cl_joint": float(1 - np.trace(joint)),
        "cl_num_issues": float(cleanlab.count.num_label_issues(labels, probs) / len(labels)),
        "matrix_mae_consensus": off_diagonal_mae(p_given(check.consensus, labels, classes), truth),
        "matrix_mae_cleanlab": off_diagonal_mae(cl_matrix, truth),
        "suspects_n": len(ours),
        "cl_issues_n": len(issues),
        "p10_consensus": precision_at(ours, wrong, max(1, len(ours) // 10)),
        "p10_cleanlab": precision_at(issues, wrong, max(1, len(issues) // 10)),
        "p_common_consensus": precision_at(ours, wrong, common),
        "p_common_cleanlab": precision_at(issues, wrong, common),
        "recall_consensus": float(check.contradicted[wrong].mean()) if wrong.any() else None,
        "recall_cleanlab": float(np.isin(np.flatnonzero(wrong), issues).mean()) if wrong.any() else None,
    }


def _p(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def render(results: dict) -> str:
    lines = [
        "# How noisy are the labels: suscli's estimate beside cleanlab's",
        "",
        "Shares of wrong training labels in %. consensus: what `rank` prints, with its 95% interval; cleanlab on the same "
        "voters' mean probabilities. Matrix: mean absolute error of P(given | class) over the off-diagonal cells, in points. "
        "Suspects: precision of the most-sure 10% of each list / at the same count (5% of the images). Fit cost: the "
        "best-agreeing model that fits >= 38% of the contradicted labels, its agreement over the best of the rest "
        "(suscli.judge.cost); at 0.8 or more rank prints 'not enough evidence' instead of the estimate.",
        "",
        "| setting | pool | voters (clean acc.) | true | consensus (interval) | covered | fit cost | rank prints "
        "| cleanlab joint | cleanlab issues | matrix error: consensus / cleanlab | suspects top 10%: consensus / cleanlab "
        "| at 5%: consensus / cleanlab |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in results.items():
        setting, pool = key.split("/")
        lines.append(
            f"| {setting} | {pool} | {r['voters']} ({_p(r['voter_clean_acc'])}) | {_p(r['true'])} | {_p(r['consensus'])} "
            f"({_p(r['consensus_low'])}-{_p(r['consensus_high'])}) | {'yes' if r['covered'] else 'no'} | "
            f"{'-' if r['fit_cost_ratio'] is None else format(r['fit_cost_ratio'], '.2f')} | "
            f"{'not enough evidence' if r['declined'] else 'the estimate'} | {_p(r['cl_joint'])} | "
            f"{_p(r['cl_num_issues'])} | {_p(r['matrix_mae_consensus'])} / {_p(r['matrix_mae_cleanlab'])} | "
            f"{_p(r['p10_consensus'])} / {_p(r['p10_cleanlab'])} | {_p(r['p_common_consensus'])} / {_p(r['p_common_cleanlab'])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = zoo_arguments(__doc__.splitlines()[0]).parse_args(argv)
    settings = zoo_settings(args)
    results = {}
    for (setting, pool_name), (_, rows, _) in load_pools(args.zoo, settings).items():
        _, labels, clean = training_set(args.zoo, setting)
        results[f"{setting}/{pool_name}"] = evaluate_pool(rows, labels, clean)
    report = render(results)
    (args.zoo / "eval" / "noise.json").write_text(json.dumps(results, indent=1))
    (args.zoo / "eval" / "noise.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
