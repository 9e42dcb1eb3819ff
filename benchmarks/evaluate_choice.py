"""The choice under known label noise: the default rule, its "confident", the noise-rate estimate and each
model's label-free memorization estimate, checked against the truth on the zoo (issues 15 and 19).

For every setting of a zoo made by benchmarks/zoo/train_zoo.py (synthetic or CIFAR-10N human noise), two pools
(final models; every saved (model, epoch) candidate), each candidate measured with suscli's own code as `suscli
rank` measures it: susceptibility at the default step (evaluate.py's cache), top-5 predictions on the unlabeled
images (evaluate_rules.py's cache) and the training-accuracy pass on the noisy training labels, which keeps each
training image's top classes (suscli.measure.accuracy). The rows go through suscli.judge.rules.choose and suscli.judge.noise, the
functions `rank` calls, and are compared with the zoo's oracle: clean test accuracy, and the share of the wrong
training labels each model fits.

    python benchmarks/evaluate_choice.py --zoo benchmarks/out/zoo-human [--held-out human-random1,human-aggre]

Writes <zoo>/eval/choice.md (printed too) and choice.json; training predictions are cached per setting in
<zoo>/eval/train-predictions-<setting>.npz.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cifar
from evaluate import Candidate, candidates, image_size, measure_all, tau
from evaluate_rules import MAX_BATCHES, predictions, source_of

from suscli.judge import verdict
from suscli.measure.accuracy import Accuracy, training_accuracy
from suscli.measure.predictions import Predictions
from suscli.load.checkpoints import load_checkpoint
from suscli.data.images import ImageSource, normalizer
from suscli.judge.regions import REGION_NAMES, thresholds
from suscli.results import Result
from suscli.judge.rules import DEFAULT_NOISE_VOTERS, DEFAULT_TIE_BREAK, DEFAULT_VOTERS, TIE_BREAKS, VOTERS, choose
from suscli.defaults import DEFAULT_BATCH_SIZE, DEFAULT_BATCHES, DEFAULT_LR
from suscli.measure.susceptibility import SusceptibilityConfig
from suscli.measure.untrained import untrained_susceptibility

MEMORIZED_CUT = 0.4  # a model "memorized" when it fits at least this share of its wrong training labels (issue 19)


def training_set(zoo: Path, setting: str) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """The setting's training images, their noisy labels and their clean labels (the class folder's, numbered as
    the zoo numbers its classes: a zoo made with --classes has ids 0..k-1 in its own order, a group's id for each
    of its members' folders)."""
    with open(zoo / setting / "train_noisy.csv") as f:
        rows = list(csv.DictReader(f))
    paths = [Path(r["path"]) for r in rows]
    noisy = np.array([int(r["label"]) for r in rows])
    classes = cifar.zoo_classes(json.loads((zoo / "zoo.json").read_text()))
    clean = cifar.folder_ids([p.parent.name for p in paths], classes)
    return paths, noisy, clean


def train_predictions(cands: list[Candidate], zoo: Path, setting: str) -> dict[str, Predictions]:
    """Each candidate's training-accuracy pass on the noisy labels (suscli.measure.accuracy.training_accuracy, what rank
    runs), kept as its top classes per image with the given labels; cached in one .npz per setting."""
    paths, noisy, _ = training_set(zoo, setting)
    return labelled_passes(cands, zoo / "eval" / f"train-predictions-{setting}.npz", paths, noisy, f"{setting}: training-accuracy pass")


def labelled_passes(cands: list[Candidate], path: Path, paths: list[Path], labels: np.ndarray, what: str) -> dict[str, Predictions]:
    """Each candidate's accuracy pass on the labelled images (accuracy_passes), its top classes per image with the
    labels, cached in the .npz `path`: a cache written for other labels is measured again."""
    have: dict[str, Predictions] = {}
    if path.exists():
        z = np.load(path)
        if "labels" not in z or np.array_equal(z["labels"], labels):  # caches from before the labels were kept: the training set's own
            have = {str(p): Predictions(c, pr, int(z["num_classes"]), labels) for p, c, pr in zip(z["paths"], z["classes"], z["probs"])}
    todo = [c for c in cands if str(c.path) not in have]
    if todo:
        for c, acc in accuracy_passes(todo, paths, labels, what):
            assert acc.predictions is not None
            have[str(c.path)] = acc.predictions
        keys = sorted(have)
        np.savez(
            path,
            paths=np.array(keys),
            classes=np.stack([have[k].classes for k in keys]),
            probs=np.stack([have[k].probs for k in keys]),
            num_classes=have[keys[0]].num_classes,
            labels=labels,
        )
    return have


def accuracy_passes(todo: list[Candidate], paths: list[Path], labels: np.ndarray, what: str) -> Iterator[tuple[Candidate, Accuracy]]:
    """Each candidate's accuracy pass on the labelled images (suscli.measure.accuracy.training_accuracy, the pass rank
    runs for --train-data and --val-data), the images decoded once for all (at the size the zoo trained at)."""
    source = ImageSource(paths, labels.tolist(), population=len(paths))
    print(f"{what} of {len(todo)} candidates on {len(paths)} images", file=sys.stderr)
    for c in todo:
        ckpt = load_checkpoint(c.path)
        pixels, decoded, _ = source.decoded(image_size(ckpt.meta), 3)
        yield c, training_accuracy(ckpt.model, pixels, decoded, transform=normalizer(ckpt.meta["mean"], ckpt.meta["std"]))


def default_measured(c: Candidate, cache: dict) -> dict:
    """The candidate's measurement at the default step (measure_all's record for it)."""
    return cache[(str(c.path), DEFAULT_LR, DEFAULT_BATCH_SIZE, MAX_BATCHES, 0)]


def default_susceptibility(measured: dict) -> float:
    """Susceptibility at the default step, as `rank` reads it: the mean of the record's first default batches."""
    return statistics.fmean(measured["r"][:DEFAULT_BATCHES])


def untrained_references(cands: list[Candidate], cache: dict, zoo: Path, setting: str) -> dict[str, dict]:
    """What each candidate's network reads untrained, where the verdict reads it (suscli.judge.verdict.wants_untrained):
    the reference `rank` measures (suscli.measure.untrained) on the same unlabeled images at the default step, once
    per architecture. Without it the verdict applies the fixed cuts to architectures that read above them untrained."""
    source = source_of(setting, zoo)
    out = {}
    for c in cands:
        # every zoo has ten classes or fewer, where the cuts were measured: the count does not decide here
        if not verdict.wants_untrained(default_susceptibility(default_measured(c, cache)), DEFAULT_LR, DEFAULT_BATCH_SIZE, None):
            continue
        ckpt = load_checkpoint(c.path)
        size = image_size(ckpt.meta)
        pixels, _, _ = source.decoded(size, 3)
        transform = normalizer(ckpt.meta["mean"], ckpt.meta["std"])
        out[str(c.path)] = untrained_susceptibility(
            ckpt.model, pixels, config=SusceptibilityConfig(), transform=transform, device=torch.device("cpu"), inputs=(setting, size)
        )
    return out


def pool_rows(
    pool: list[Candidate], cache: dict, preds: dict[str, Predictions], train_preds: dict[str, Predictions], untrained: dict[str, dict]
) -> list[Result]:
    """The rows `suscli rank` would hold for this pool (names are the candidates' indices)."""
    rows = []
    for i, c in enumerate(pool):
        tp = train_preds[str(c.path)]
        measured = default_measured(c, cache)
        sus = default_susceptibility(measured)
        rows.append(
            Result(
                name=f"{i:04d}",
                path=str(c.path),
                arch=c.arch,
                epoch=c.epoch,
                susceptibility=sus,
                train_acc=float((tp.top1() == tp.labels).mean()),
                train_n=len(tp.labels),
                details={
                    "predictions": preds[str(c.path)].encode(),
                    "train_predictions": tp.encode(),
                    "lr": DEFAULT_LR,
                    "batch_size": DEFAULT_BATCH_SIZE,
                    # what the verdict reads to know whether a fixed cut applies (suscli.judge.verdict.too_confident);
                    # caches from before it was kept lack it, and the verdict then applies the cut as it did
                    **(
                        {"loss_before": measured["loss_before"][:DEFAULT_BATCHES], "num_classes": tp.num_classes}
                        if "loss_before" in measured
                        else {}
                    ),
                    **({"untrained": untrained[str(c.path)]} if str(c.path) in untrained else {}),
                },
            )
        )
    return rows


def load_pools(zoo: Path, settings: list[str]) -> dict[tuple[str, str], tuple[list[Candidate], list[Result], np.ndarray]]:
    """(setting, pool) -> (candidates, rows, which training labels are wrong)."""
    out = {}
    for setting in settings:
        cands = candidates(zoo, [setting])
        if len(cands) < 8:
            print(f"{setting}: only {len(cands)} candidates, skipped", file=sys.stderr)
            continue
        cache = measure_all(cands, zoo, [DEFAULT_LR], [DEFAULT_BATCH_SIZE], MAX_BATCHES, 0)
        preds = predictions(cands, zoo, setting)
        tpreds = train_predictions(cands, zoo, setting)
        _, noisy, clean = training_set(zoo, setting)
        untrained = untrained_references(cands, cache, zoo, setting)
        for name, pool in {"final": [c for c in cands if c.last], "all-epochs": cands}.items():
            out[(setting, name)] = (pool, pool_rows(pool, cache, preds, tpreds, untrained), noisy != clean)
    return out


# (label, voters, tie-break): the default first, then the variants it was chosen from
VARIANTS = [("default", DEFAULT_VOTERS, DEFAULT_TIE_BREAK)] + [
    (f"{v} / {tb}", v, tb) for v in VOTERS for tb in TIE_BREAKS if (v, tb) != (DEFAULT_VOTERS, DEFAULT_TIE_BREAK)
]


def judge(
    pool: list[Candidate], rows: list[Result], wrong: np.ndarray, voters: str, tie_break: str, noise_voters: str = DEFAULT_NOISE_VOTERS
) -> dict:
    """One rule variant on one pool, against the oracle."""
    rows = copy.deepcopy(rows)
    choice = choose(rows, "agreement", thresholds(rows, "mean"), voters=voters, tie_break=tie_break, noise_voters=noise_voters)
    tests = np.array([c.test_acc for c in pool])
    mem = np.array([c.memorized for c in pool])
    position = {r.name: len(rows) - k for k, r in enumerate(choice.ranked)}
    first = int(choice.ranked[0].name)
    out = {
        "tau": tau([position[r.name] for r in rows], tests),
        "regret": 100 * (tests.max() - tests[first]),
        "confident": choice.confident,
        "near_ties": len(choice.tied),
        "voters": len(choice.voters),
        "tied_regret": 100 * (tests.max() - max(tests[int(r.name)] for r in choice.tied)) if choice.tied else None,
    }
    if choice.labels is not None:
        est, flagged = choice.labels.estimate, choice.labels.contradicted
        fits = np.array([np.nan if r.fits_contradicted is None else r.fits_contradicted for r in rows])
        agreement = np.array([r.agreement for r in rows])
        out |= {
            "noise_est": est.rate,
            "noise_low": est.low,
            "noise_high": est.high,
            "noise_true": float(wrong.mean()),
            "tau_fits_vs_memorized": tau(fits, mem),
            "mae_fits_vs_memorized": float(np.nanmean(np.abs(fits - mem))),
            "suspects_precision": float(wrong[flagged].mean()) if flagged.any() else None,
            "suspects_recall": float(flagged[wrong].mean()),
            "agreement_minus_test": float(np.mean(agreement - tests)),
        }
    memorizer = mem >= MEMORIZED_CUT
    out |= {
        "memorizers": int(memorizer.sum()),
        "tau_sus_vs_memorized": tau([r.susceptibility for r in rows], mem),
        "tau_sus_vs_memorized_apart": tau_apart([r.susceptibility for r in rows], mem),
        "tau_train_acc": tau([r.train_acc for r in rows], tests),
        # within one pool every model trained on the same labels, so training accuracy beyond the clean share needs
        # memorized labels: the baseline any number that claims to measure memorization must beat
        "tau_train_acc_vs_memorized": tau([r.train_acc for r in rows], mem),
    }
    out |= {f"pool_{k}": v for k, v in verdict_scores([r.verdict for r in rows], mem).items()}
    out |= {f"paper_{k}": v for k, v in verdict_scores([REGION_NAMES.get(r.region) for r in rows], mem).items()}
    alone = [copy.deepcopy(r) for r in rows]
    verdict.assign(alone, None, None)  # each model judged alone: the fixed cuts of a pool of one (suscli score)
    # alone nothing says "likely memorized noise": how well its "susceptible" picks the memorizers
    out |= {f"alone_{k}": v for k, v in verdict_scores([r.verdict for r in alone], mem, verdict.SUSCEPTIBLE).items()}
    return out


def verdict_scores(words: list[str | None], mem: np.ndarray, flag_word: str = verdict.MEMORIZED) -> dict:
    """The flag `flag_word` ('likely memorized noise'; alone, 'susceptible') against the oracle (fits >= MEMORIZED_CUT of its wrong labels): recall,
    precision, memorizers called 'fits, resists noise' (or 'low susceptibility' alone, or 'fits the clean signal': each
    says it did not memorize), and how many rows say 'unclear'."""
    flag = np.array([w == flag_word for w in words])
    resists = np.array([w in (verdict.RESISTS, verdict.LOW_SUSCEPTIBILITY, verdict.FITS_CLEAN) for w in words])
    memorizer = mem >= MEMORIZED_CUT
    return {
        "flagged": int(flag.sum()),
        "recall": float(flag[memorizer].mean()) if memorizer.any() else None,
        "precision": float(memorizer[flag].mean()) if flag.any() else None,
        "memorizers_resisting": int((memorizer & resists).sum()),
        "memorizers_underfit": int(sum(m and w in (verdict.UNDERFIT, verdict.UNDERFIT_SUSCEPTIBLE) for m, w in zip(memorizer, words))),
        "resisting": int(resists.sum()),
        "unclear": int(sum(w == verdict.UNCLEAR for w in words)),
        "false_flag_min_fit": float(mem[flag & ~memorizer].min()) if (flag & ~memorizer).any() else None,
    }


def tau_apart(x: list[float], oracle: np.ndarray, apart: float = 0.05) -> float:
    """Kendall tau over the pairs whose oracle values differ by at least `apart`: most models of a pool fit their
    wrong labels within a few points of each other, and the order among those is the oracle's own noise."""
    x = np.asarray(x, dtype=float)
    i, j = np.triu_indices(len(x), 1)
    keep = np.abs(oracle[i] - oracle[j]) >= apart
    s = np.sign(x[i] - x[j])[keep] * np.sign(oracle[i] - oracle[j])[keep]
    return float(s.mean()) if keep.any() else float("nan")


def _f(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, fmt)


def render(results: list[dict], noise: list[dict], held_out: set[str]) -> str:
    keys = list(dict.fromkeys((r["setting"], r["pool"]) for r in results))
    default = {(r["setting"], r["pool"]): r for r in results if r["rule"] == "default"}
    lines = [
        "# The choice under known label noise",
        "",
        f"Default rule: voters `{DEFAULT_VOTERS}`, near-ties ordered by `{DEFAULT_TIE_BREAK}`. Held out from the design: "
        f"{', '.join(sorted(held_out)) or 'none'}. tau: Kendall tau of the order with clean test accuracy; regret: the "
        "pool's best clean test accuracy minus the first choice's, in points.",
        "",
        "## The default rule per pool",
        "",
        "| setting | pool | models | tau | tau train acc | regret | confident | near-ties | best near-tie's regret |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k in keys:
        d = default[k]
        lines.append(
            f"| {k[0]}{' (held out)' if k[0] in held_out else ''} | {k[1]} | {d['n']} | {_f(d['tau'])} | {_f(d['tau_train_acc'])} "
            f"| {d['regret']:.1f} | {'yes' if d['confident'] else 'no'} | {d['near_ties']} | {_f(d['tied_regret'], '.1f')} |"
        )
    lines += [
        "",
        "## Every variant: mean tau / worst regret / pools within 2 points / confident and right, over the design pools "
        "and over the held-out ones",
        "",
        "| voters / near-ties | design: tau | regret | within 2 | confident right | held out: tau | regret | within 2 | confident right |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, *_ in VARIANTS:
        cells = []
        for part in (False, True):
            xs = [r for r in results if r["rule"] == label and (r["setting"] in held_out) == part]
            if not xs:
                cells += ["-"] * 4
                continue
            said = [x for x in xs if x["confident"]]
            cells += [
                f"{statistics.fmean(x['tau'] for x in xs):.3f}",
                f"{max(x['regret'] for x in xs):.1f}",
                f"{sum(x['regret'] <= 2 for x in xs)}/{len(xs)}",
                f"{sum(x['regret'] <= 2 for x in said)}/{len(said)}",
            ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Label noise and memorization, estimated without clean labels (default voters)",
        "",
        "| setting | pool | true noise | estimate (95% interval) | suspects precision / recall | tau(fits contradicted, memorized) "
        "| mean abs. error | agreement minus clean accuracy (points) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k in keys:
        d = default[k]
        if "noise_est" not in d:
            continue
        lines.append(
            f"| {k[0]} | {k[1]} | {100 * d['noise_true']:.1f}% | {100 * d['noise_est']:.1f}% ({100 * d['noise_low']:.1f}-"
            f"{100 * d['noise_high']:.1f}) | {_f(d['suspects_precision'])} / {_f(d['suspects_recall'])} | "
            f"{_f(d['tau_fits_vs_memorized'])} | {_f(d['mae_fits_vs_memorized'])} | {100 * d['agreement_minus_test']:+.1f} |"
        )
    lines += [
        "",
        "## Whose consensus judges the training labels: noise estimate minus the truth (points) / tau(fits contradicted, "
        "memorized), per choice of voters",
        "",
        "| setting | pool | " + " | ".join(VOTERS) + " |",
        "|---|---|" + "---|" * len(VOTERS),
    ]
    for k in keys:
        cells = []
        for nv in VOTERS:
            x = next((n for n in noise if (n["setting"], n["pool"], n["noise_voters"]) == (*k, nv)), None)
            cells.append(
                "-"
                if x is None or "noise_est" not in x
                else f"{100 * (x['noise_est'] - x['noise_true']):+.1f} / {_f(x['tau_fits_vs_memorized'])}"
            )
        lines.append(f"| {k[0]} | {k[1]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"## The verdict against the oracle (a memorizer fits >= {MEMORIZED_CUT:.0%} of its wrong labels)",
        "",
        "recall / precision of 'likely memorized noise' (alone: of 'susceptible'); MR: memorizers called 'fits, resists noise' or 'fits the clean signal' (alone: 'low susceptibility'); MU: memorizers called 'underfit'; res: models called so; "
        "unc: models called 'unclear'; lowest fit of a wrongly flagged model. paper: the regions at the pool means; "
        "pool: suscli.judge.verdict in the pool; alone: suscli.judge.verdict on each model alone (suscli score).",
        "",
        "| setting | pool | memorizers | paper: R / P / MR / MU | pool: R / P / MR / MU / res / unc | wrongly flagged fit | alone: R / P / MR / MU / res / unc "
        "| tau(susceptibility, memorized) | the same, pairs 5+ points apart | tau(fits contradicted, memorized) | tau(train acc, memorized) "
        "| flagged: pool / alone |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in keys:
        d = default[k]
        scores = {
            v: f"{_f(d[v + '_recall'])} / {_f(d[v + '_precision'])} / {d[v + '_memorizers_resisting']} / {d[v + '_memorizers_underfit']}"
            for v in ("paper", "pool", "alone")
        }
        lines.append(
            f"| {k[0]}{' (held out)' if k[0] in held_out else ''} | {k[1]} | {d['memorizers']} | {scores['paper']} | "
            f"{scores['pool']} / {d['pool_resisting']} / {d['pool_unclear']} | {_f(d['pool_false_flag_min_fit'])} | "
            f"{scores['alone']} / {d['alone_resisting']} / {d['alone_unclear']} | {_f(d['tau_sus_vs_memorized'])} | "
            f"{_f(d['tau_sus_vs_memorized_apart'])} | {_f(d.get('tau_fits_vs_memorized'))} | {_f(d['tau_train_acc_vs_memorized'])} | "
            f"{d['pool_flagged']} / {d['alone_flagged']} |"
        )
    return "\n".join(lines) + "\n"


def zoo_arguments(description: str) -> argparse.ArgumentParser:
    """The options every zoo benchmark takes: which zoo, which of its settings, how many threads."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--zoo", type=Path, default=Path("benchmarks/out/zoo-human"))
    ap.add_argument("--settings", default=None, help="comma list; default: every setting in the zoo")
    ap.add_argument("--threads", type=int, default=None)
    return ap


def zoo_settings(args: argparse.Namespace) -> list[str]:
    """The settings to evaluate (every one in the zoo unless --settings names some), after applying --threads."""
    if args.threads:
        torch.set_num_threads(args.threads)
    manifest = json.loads((args.zoo / "zoo.json").read_text())
    return args.settings.split(",") if args.settings else list(manifest["settings"])


def main(argv: list[str] | None = None) -> None:
    ap = zoo_arguments(__doc__.splitlines()[0])
    ap.add_argument("--held-out", default="", help="comma list of settings no rule was tuned on (reported apart)")
    args = ap.parse_args(argv)
    settings = zoo_settings(args)
    held_out = {s for s in args.held_out.split(",") if s}
    results, noise = [], []
    for (setting, pool_name), (pool, rows, wrong) in load_pools(args.zoo, settings).items():
        for label, voters, tie_break in VARIANTS:
            results.append(
                {
                    "setting": setting,
                    "pool": pool_name,
                    "n": len(pool),
                    "rule": label,
                    "voters": voters,
                    "tie_break": tie_break,
                    **judge(pool, rows, wrong, voters, tie_break),
                }
            )
        for nv in VOTERS:  # whose consensus judges the training labels
            est = judge(pool, rows, wrong, DEFAULT_VOTERS, DEFAULT_TIE_BREAK, nv)
            noise.append(
                {
                    "setting": setting,
                    "pool": pool_name,
                    "noise_voters": nv,
                    **{k: v for k, v in est.items() if k.startswith(("noise", "suspects", "tau_fits", "mae_fits"))},
                }
            )
    report = render(results, noise, held_out)
    (args.zoo / "eval" / "choice.json").write_text(json.dumps({"held_out": sorted(held_out), "results": results, "noise": noise}, indent=1))
    (args.zoo / "eval" / "choice.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
