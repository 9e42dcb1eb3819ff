"""Is a model's susceptibility at initialization a reference that would make the fixed cuts comparable across
architectures (issue 26, item 1)? For every pool of a zoo: each candidate's susceptibility (evaluate_choice.py's
cache) and the same over the mean susceptibility of its own network re-initialized (PyTorch's default
initialization, two seeds, at the default step on the setting's unlabeled images), each against the share of its wrong
labels the candidate fits. Only the untrained networks are measured here. suscli does not divide by it; its verdict
reads the seed-0 reading (suscli.measure.untrained) to know whether its fixed cuts can judge an architecture
(suscli.judge.verdict.UNTRAINED_CUT), and the report says, per network, whether any zoo network reads above that bound.

    python benchmarks/init_reference.py --zoo benchmarks/out/zoo-human [--settings human-worst]

Writes <zoo>/eval/init-reference.md (printed too).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import Candidate, image_size, tau
from evaluate_choice import MEMORIZED_CUT, load_pools, zoo_arguments, zoo_settings
from evaluate_rules import MAX_BATCHES, source_of

from suscli.data.images import normalizer
from suscli.load.checkpoints import load_checkpoint
from suscli.judge.verdict import UNTRAINED_CUT
from suscli.defaults import DEFAULT_BATCH_SIZE, DEFAULT_LR
from suscli.measure.susceptibility import SusceptibilityConfig, measure_susceptibility
from suscli.measure.untrained import SEED, untrained

SEEDS = (SEED, SEED + 1)  # the first is the one suscli's verdict reads


def shape(c: Candidate) -> str:
    """The network without its training recipe (train_zoo's model id up to the lr)."""
    return c.model_id.split("-lr")[0]


def at_init(pool: list[Candidate], zoo: Path, setting: str) -> dict[str, list[float]]:
    """Per network shape of the pool, its susceptibility untrained at each of SEEDS."""
    source = source_of(setting, zoo)
    out = {}
    for c in pool:
        if shape(c) in out:
            continue
        ckpt = load_checkpoint(c.path)
        pixels, _, _ = source.decoded(image_size(ckpt.meta), 3)
        config = SusceptibilityConfig(lr=DEFAULT_LR, batches=MAX_BATCHES, batch_size=DEFAULT_BATCH_SIZE, seed=0)
        transform = normalizer(ckpt.meta["mean"], ckpt.meta["std"])
        out[shape(c)] = [measure_susceptibility(untrained(ckpt.model, s), pixels, config=config, transform=transform).mean for s in SEEDS]
    return out


def separation(x: np.ndarray, memorizer: np.ndarray) -> str:
    """The lowest memorizer's value, the highest other model's, and how many others read above that memorizer."""
    if not memorizer.any() or memorizer.all():
        return "-"
    low = x[memorizer].min()
    return f"{low:.2f} / {x[~memorizer].max():.2f} ({int((x[~memorizer] >= low).sum())})"


def main(argv: list[str] | None = None) -> None:
    ap = zoo_arguments(__doc__.splitlines()[0])
    args = ap.parse_args(argv)
    lines = [
        "| setting | pool | untrained, per network (seeds 0, 1) | networks above the verdict's bound | tau(susceptibility, memorized) | "
        "tau(over untrained, memorized) | susceptibility: lowest memorizer / highest other (others above it) | the same over untrained |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (setting, name), (pool, rows, _) in load_pools(args.zoo, zoo_settings(args)).items():
        init = at_init(pool, args.zoo, setting)
        s = np.array([r.susceptibility for r in rows], dtype=float)
        ratio = s / np.array([statistics.fmean(init[shape(c)]) for c in pool])
        mem = np.array([c.memorized for c in pool])
        memorizer = mem >= MEMORIZED_CUT
        per = ", ".join(f"{k} {v[0]:.3f} / {v[1]:.3f}" for k, v in sorted(init.items()))
        above = sum(v[0] > UNTRAINED_CUT for v in init.values())
        lines.append(
            f"| {setting} | {name} | {per} | {above} of {len(init)} | {tau(s.tolist(), mem.tolist()):.2f} | "
            f"{tau(ratio.tolist(), mem.tolist()):.2f} | {separation(s, memorizer)} | {separation(ratio, memorizer)} |"
        )
    report = "\n".join(lines) + "\n"
    (args.zoo / "eval" / "init-reference.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
