"""Where the targets of the open issues stand, pool by pool, in one place (the top of docs/validation.md).

For every zoo given: the verdict in each pool, judged here from evaluate_choice.py's caches (seconds; issue 26), and
the figures evaluate_held_out.py (issue 25) and evaluate_noise.py (issue 27) wrote to <zoo>/eval/held-out.json and
noise.json. Run those first; this script measures nothing new and says which file it lacks. A cell reads "met" or
the figure that misses, so a reader sees what is left without reading the sections below it.

    python benchmarks/targets.py benchmarks/out/zoo-human benchmarks/out/zoo-clean ...
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import tau
from evaluate_choice import MEMORIZED_CUT, load_pools, zoo_settings

from suscli.judge import verdict
from suscli.judge.regions import thresholds
from suscli.judge.rules import choose

SMALL = ("25", "50", "100", "200")  # held-out sizes where (c) must beat (a) by ADDS
ADDS = 0.05
TAU_2000, REGRET_2000 = 0.85, 1.0
RECALL, PRECISION, TAU_VERDICT = 0.9, 0.9, 0.85
POINT_STRONG, POINT_WEAK, STRONG_VOTERS, MISS = 0.03, 0.05, 0.70, 0.03
MISSED = (verdict.RESISTS, verdict.UNDERFIT, verdict.FITS_CLEAN)  # words a memorizer must never get


def _load(zoo: Path, name: str) -> dict | None:
    path = zoo / "eval" / name
    if not path.exists():
        print(f"{path}: missing (run the evaluator first)", file=sys.stderr)
        return None
    return json.loads(path.read_text())


def _below(x: float, cut: float) -> str:
    """x at two decimals, or three where two would round it up to the cut it misses."""
    return f"{x:.3f}" if x < cut <= round(x, 2) else f"{x:.2f}"


def _mark(ok: bool, figure: str) -> str:
    return "met" if ok else f"**{figure}**"


def held_out_row(r: dict, clean: bool) -> list[str]:
    """Issue 25's three targets for one pool: (c) - (a) at every size and at 200 labels and fewer, (c) - (b), and
    tau / regret at 2,000 labels (human noise only). Figures at two decimals, as the tables below print them."""
    sizes = r["sizes"]
    ca = {k: round(s["c_tau"] - s["a_tau"], 2) for k, s in sizes.items()}
    cb = {k: round(s["c_tau"] - r["label_free"]["tau"], 2) for k, s in sizes.items()}
    worst_ca = min(ca, key=ca.__getitem__)
    small = min((k for k in SMALL if k in ca), key=ca.__getitem__)
    worst_cb = min(cb, key=cb.__getitem__)
    top = sizes.get("2000")
    if clean:
        at_2000 = "-"
    elif top is None:
        at_2000 = "not measured"
    else:
        ok = top["c_tau"] >= TAU_2000 and top["c_regret"] <= REGRET_2000
        at_2000 = _mark(ok, f"{_below(top['c_tau'], TAU_2000)} / {top['c_regret']:.1f}")
    return [
        _mark(ca[worst_ca] >= 0, f"{ca[worst_ca]:+.2f} at {int(worst_ca):,}"),
        _mark(ca[small] >= ADDS, f"{ca[small]:+.2f} at {small}"),
        _mark(cb[worst_cb] >= 0, f"{cb[worst_cb]:+.2f} at {int(worst_cb):,}"),
        at_2000,
    ]


def verdict_row(pool: list, rows: list, clean: bool) -> list[str]:
    """Issue 26's targets for one pool: nothing flagged on clean labels; elsewhere recall and precision of "likely
    memorized noise" against the oracle (fits at least MEMORIZED_CUT of its wrong labels), no memorizer called
    resists / underfit / fits the clean signal, and tau of the fit on contradicted labels with the share memorized."""
    rows = copy.deepcopy(rows)
    choose(rows, "agreement", thresholds(rows, "mean"))
    flagged = np.array([r.verdict == verdict.MEMORIZED for r in rows])
    if clean:
        return [_mark(not flagged.any(), f"{flagged.sum()} flagged"), "-", "-", "-"]
    mem = np.array([c.memorized for c in pool])
    memorizer = mem >= MEMORIZED_CUT
    recall = (flagged & memorizer).sum() / max(memorizer.sum(), 1)
    precision = (flagged & memorizer).sum() / flagged.sum() if flagged.any() else float("nan")
    missed = sum(r.verdict in MISSED for r, m in zip(rows, memorizer) if m)
    fits = [np.nan if r.fits_contradicted is None else r.fits_contradicted for r in rows]
    t = tau(fits, mem)
    both = recall >= RECALL and (not flagged.any() or precision >= PRECISION)
    return [
        _mark(both, f"{recall:.2f} / {precision:.2f} ({flagged.sum()} flagged, {memorizer.sum()} memorizers)"),
        _mark(missed == 0, f"{missed}"),
        _mark(t >= TAU_VERDICT, _below(t, TAU_VERDICT)),
        f"{memorizer.sum()} of {len(rows)}",
    ]


def noise_row(r: dict, clean: bool) -> list[str]:
    """Issue 27's targets for one pool: the one figure `rank` prints within 3 points of the truth (voters at least
    70% accurate) or 5 (elsewhere), clean labels read under 3%, the interval covering the truth (missing by at most
    3 points), and the suspects' surest 10% at least as precise as cleanlab's (and at cleanlab's count; with each
    list's recall, as the lists differ in length: precision at a share of a list rewards the shorter one)."""
    reads, true = r.get("wrong_labels"), r["true"]
    if reads is None:
        why = "no figure: the interval alone" if r.get("point_withheld") else "declined"
        point = f"**{why}**" if clean else why  # no figure is a miss on clean labels only: they must read under 3%
    else:
        cut = POINT_STRONG if (clean or r["voter_clean_acc"] >= STRONG_VOTERS) else POINT_WEAK
        point = _mark(abs(reads - true) <= cut, f"{100 * reads:.1f} for {100 * true:.1f}")
    if r["declined"] and not r.get("point_withheld") and reads is None:
        interval = "declined"  # "not enough evidence": no interval printed
    elif r["covered"]:
        interval = "met (covers)"
    else:
        interval = f"misses by {100 * r['miss']:.1f}"
        interval = f"**{interval}**" if r["miss"] > MISS else interval
    if clean:
        suspects = "-"
    else:
        ours, theirs, same = r["p10_consensus"], r["p10_cleanlab"], r["p_cl10_consensus"]
        at_count = f"{100 * same:.1f} at cleanlab's count; recall {100 * r['recall_consensus']:.0f} / {100 * r['recall_cleanlab']:.0f}"
        suspects = _mark(ours >= theirs, f"{100 * ours:.1f} < {100 * theirs:.1f}") + f" ({at_count})"
    return [point, interval, suspects]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("zoos", nargs="+", type=Path)
    args = ap.parse_args(argv)
    h25 = ["(c) >= (a), every size", "(c) - (a) >= 0.05 at <= 200", "(c) >= (b), every size", "2,000 labels: tau >= 0.85, regret <= 1"]
    h26 = [
        "R / P >= 0.9 (clean: 0 flagged)",
        "memorizers called resists / underfit / fits the clean signal",
        "tau(fits contradicted, memorized) >= 0.85",
        "memorizers",
    ]
    h27 = [
        "the figure rank prints, within 3 / 5 points (clean: under 3%)",
        "interval (covers; miss <= 3 points)",
        "suspects' surest 10% >= cleanlab's",
    ]
    tables: dict[str, list[str]] = {"25": [], "26": [], "27": []}
    for zoo in args.zoos:
        held, noise = _load(zoo, "held-out.json"), _load(zoo, "noise.json")
        for (setting, name), (pool, rows, wrong) in load_pools(
            zoo, zoo_settings(argparse.Namespace(zoo=zoo, settings=None, threads=None))
        ).items():
            key, clean = f"{setting}/{name}", not wrong.any()
            head = f"| {zoo.name.removeprefix('zoo-')} | {setting} {name} | "
            tables["26"].append(head + " | ".join(verdict_row(pool, rows, clean)) + " |")
            if held and key in held["results"]:
                tables["25"].append(head + " | ".join(held_out_row(held["results"][key], clean)) + " |")
            if noise and key in noise:
                tables["27"].append(head + " | ".join(noise_row(noise[key], clean)) + " |")
    for issue, head in (("25", h25), ("26", h26), ("27", h27)):
        print(f"\n### Issue {issue}\n\n| zoo | pool | " + " | ".join(head) + " |\n|---|---|" + "---|" * len(head))
        print("\n".join(tables[issue]))
        cells = [[c.strip(" |") for c in line.split(" | ")[2:]] for line in tables[issue]]
        counts = [
            f"{sum(c.startswith('met') for c in col)} of {sum(c.startswith(('met', '**')) for c in col)}"
            for col, name in zip(zip(*cells), head)
            if name != "memorizers"
        ]
        print(f"\nmet / pools where it applies, per target: {', '.join(counts)}")


if __name__ == "__main__":
    main()
