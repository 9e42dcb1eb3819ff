"""The HTML report: one self-contained page for a reviewer to open from CI, viewable with no network: the table
(sortable by a few lines of inline script), the plot as an inline SVG, the closing line, the gate's result and why,
every model's numbers with their intervals, the settings and the versions.

Rendered by jinja2 with autoescaping, so a model name or an error message is shown as text, never run as markup.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import math
from typing import Any

import jinja2
from markupsafe import Markup, escape

from suscli.judge import verdict
from suscli.errors import SuscliError, plural
from suscli.judge.gate import gates, outcome
from suscli.judge.noise import noise_words
from suscli.judge.regions import Thresholds
from suscli.views.columns import display_columns, finite
from suscli.results import Result
from suscli.views.runview import closing, flat, keep_rule, subject

# The Result field each numeric column of the table sorts by; "#" sorts by the report's order, the others by their text.
SORT_KEYS = {
    "epoch": "epoch",
    "train acc": "train_acc",
    "held-out acc": "val_acc",
    "gap": "gap",
    "susceptibility": "susceptibility",
    "zeta": "zeta",
    "agreement": "agreement",
    "fits contradicted": "fits_contradicted",
    "region": "region",
}
Z95 = 1.959964  # a normal 95% interval: mean ± Z95 standard errors


@functools.cache
def template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("suscli.views", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["plural"] = plural  # "1 model", "2 models", as the terminal's lines count them
    return env.get_template("report.html.j2")


# What a reader with no gate set could pass, per command (track has none: its closing line names the epoch to keep)
GATE_HINTS = {
    "suscli rank": "e.g. <code>--fail-on memorized</code>",
    "suscli score": "e.g. <code>--max-susceptibility</code> or <code>--min-train-acc</code>",
}


def to_html(rows: list[Result], run: dict[str, Any], title: str | None = None) -> str:
    """The report as one HTML page."""
    title = title or "suscli"
    pick = (run.get("choice") or {}).get("pick")
    figure, note = plot(rows, run, title, pick)
    return (
        template().render(
            title=title,
            subject=subject(rows, run),
            command=run.get("command"),
            gate=gate_view(rows, run),
            gate_hint=GATE_HINTS.get(title, ""),
            closing=closing(run),
            noise=noise_paragraph(run.get("label_noise")),
            matrix=matrix_view(run.get("label_noise")),
            columns=[{"name": n} for n, _ in table_columns(rows)],
            rows=table_rows(rows, pick),
            figure=figure,
            figure_note=note,
            figure_alt=figure_alt(rows, run, title),
            models=[{"name": r.name, "facts": model_facts(r, run)} for r in rows],
            settings=[(k, v) for k, v in flat(run) if not k.startswith(("environment.", "recommendation")) and k != "command"],
            versions=flat(run.get("environment") or {}),
        )
        + "\n"
    )


def noise_paragraph(noise: dict[str, Any] | None) -> Markup | None:
    """The label-noise estimate in the closing line's words (suscli.judge.noise.noise_words), with the page's dash and
    the reason, which names models, escaped."""
    if not noise:
        return None
    return Markup(f"Label noise: {noise_words(noise, '–', lambda text: str(escape(text)))}.")


SHADES = 8  # colour levels of the noise matrix's cells


def matrix_view(noise: dict[str, Any] | None) -> dict[str, Any] | None:
    """The label-noise section's heatmap (rows the consensus class, columns the given label, cells P(given label |
    consensus class) in percent, each cell's colour class by its value) and the largest confusions in words; None
    when the report has no matrix (no training data, or a report from before it had one)."""
    m = (noise or {}).get("noise_matrix")
    if not isinstance(m, dict):
        return None
    k = int(m["num_classes"])
    names = m.get("classes") or [""] * k

    def named(i: int, name: str) -> str:
        return name or f"class {i}"

    confusions = [
        f"{named(c['consensus'], c['consensus_class'])} labelled as {named(c['given'], c['given_class'])}: "
        f"{100 * c['share']:.1f}% of the {c['of']:,} images the consensus calls {named(c['consensus'], c['consensus_class'])} "
        f"({c['images']:,} image{'s' if c['images'] != 1 else ''})"
        for c in m.get("top_confusions") or []
    ]
    rows = None
    if m.get("full") and "p_label_given_consensus" in m:
        rows = [
            {
                "name": named(i, names[i]),
                "total": f"{m['consensus_totals'][i]:,}",
                "cells": [{"text": _percent(v), "shade": _shade(v, i == j)} for j, v in enumerate(shares)],
            }
            for i, shares in enumerate(m["p_label_given_consensus"])
        ]
    return {
        "columns": [named(i, names[i]) for i in range(k)],
        "rows": rows,
        "confusions": confusions,
        "num_classes": k,
    }


def _percent(share: float | None) -> str:
    """A cell's share in percent, one decimal; empty for none (no image) or 0."""
    share = _number(share)
    return "" if not share else f"{100 * share:.1f}"


def _shade(share: float | None, diagonal: bool) -> str:
    """The cell's colour class: d1-d8 on the diagonal, o1-o8 off it, on a square-root scale so that the few percent
    that make a confusion show (1% is level 1, 10% level 3, 50% level 6); '' for an empty cell."""
    share = _number(share)
    if not share:
        return ""
    level = min(SHADES, max(1, math.ceil(math.sqrt(share) * SHADES)))
    return f"{'d' if diagonal else 'o'}{level}"


def figure_alt(rows: list[Result], run: dict[str, Any], title: str) -> str:
    """The plot in words, for a reader who cannot see it."""
    held = any(r.val_acc is not None for r in rows)
    if "thresholds" in run:
        return f"{title}: training accuracy" + (" and held-out accuracy" if held else "") + " against susceptibility of every model"
    return f"{title}: r, zeta, training" + (" and held-out" if held else "") + " accuracy against epoch"


def gate_view(rows: list[Result], run: dict[str, Any]) -> dict[str, Any]:
    """The gate's result, each model that failed it or could not be audited, with the reason, and why a pass could
    flag no model (rank's `gate.flags_none`): a green box alone said nothing of that."""
    outcomes = [(r.name, outcome(r, run)) for r in rows]
    errors = [(name, o.reason) for name, o in outcomes if o.status == "error"]
    failures = [(name, o.reason) for name, o in outcomes if o.status == "failure"]
    named = gates(run)
    status = "error" if errors else "failed" if failures else "passed" if named else "none"
    blind = (run.get("gate") or {}).get("flags_none")
    return {"status": status, "gates": named, "failures": failures, "errors": errors, "flags_none": blind}


def table_columns(rows: list[Result]) -> list[tuple[str, list[str]]]:
    """The Rich table's and Markdown's columns (suscli.views.formats), after the report's order."""
    return [("#", [str(i) for i in range(1, len(rows) + 1)]), *display_columns(rows)]


def table_rows(rows: list[Result], pick: str | None) -> list[dict[str, Any]]:
    columns = table_columns(rows)
    out = []
    for i, r in enumerate(rows):
        cells = []
        for name, values in columns:
            numeric = name == "#" or name in SORT_KEYS
            key = (i + 1) if name == "#" else _number(getattr(r, SORT_KEYS[name])) if name in SORT_KEYS else None
            cells.append(
                {
                    "text": values[i],
                    "numeric": numeric,
                    "key": "" if numeric and key is None else key,
                    "badge": "ship" if name == "model" and r.name == pick else None,
                }
            )
        classes = ["pick"] if r.name == pick else []
        shade = {verdict.MEMORIZED: "memorized", verdict.RESISTS: "resists", verdict.FITS_CLEAN: "resists"}.get(r.verdict or "")
        classes += ["failed-row"] if not r.ok else [shade] if shade else []
        out.append({"name": r.name, "classes": " ".join(classes), "cells": cells})
    return out


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def model_facts(r: Result, run: dict[str, Any]) -> list[tuple[str, str]]:
    """One model's numbers in words, with their intervals and what they were measured on."""
    d = r.details
    items: list[tuple[str, Any]] = [
        ("file", r.path),
        ("architecture", f"{r.arch or '-'}" + (f" (from {d['arch_source']})" if d.get("arch_source") else "")),
    ]
    if not r.ok:
        return [*items, ("error", r.error or "could not be loaded or run")]
    if r.susceptibility is not None:
        text = f"{r.susceptibility:.4f}"
        if (sem := finite(r.susceptibility_sem)) is not None:
            batches = len(d.get("r") or [])
            low, high = r.susceptibility - Z95 * sem, r.susceptibility + Z95 * sem
            text += f" ± {sem:.4f} (standard error over {batches} random-label batches; 95% interval [{low:.4f}, {high:.4f}])"
        items.append(("susceptibility", text))
        if d.get("r"):
            items.append(("r per batch", ", ".join(f"{v:.4f}" for v in d["r"])))
    if r.zeta is not None:
        items.append(("zeta (running mean)", f"{r.zeta:.4f}"))
    if r.train_acc is not None:
        acc = d.get("train_acc") or {}
        text = f"{100 * r.train_acc:.1f}%"
        if acc.get("total"):
            text += f" ({acc['correct']:,} of {acc['total']:,} images"
            text += f" sampled from {acc['population']:,})" if acc.get("population", acc["total"]) != acc["total"] else ")"
        wilson = (r.train_acc_low, r.train_acc_high)
        if wilson[0] is not None and wilson[1] is not None and wilson[0] != wilson[1]:
            text += f"; 95% Wilson interval [{100 * wilson[0]:.1f}%, {100 * wilson[1]:.1f}%]"
        items.append(("training accuracy", text))
    if r.val_acc is not None and r.val_acc_low is not None and r.val_acc_high is not None:  # --val-data
        text = f"{100 * r.val_acc:.1f}% of {r.val_n:,} held-out images; 95% Wilson interval [{100 * r.val_acc_low:.1f}%, {100 * r.val_acc_high:.1f}%]"
        items.append(("held-out accuracy", text))
    if r.gap is not None:
        interval = "" if r.gap_low is None or r.gap_high is None else f"; 95% interval [{100 * r.gap_low:+.1f}, {100 * r.gap_high:+.1f}]"
        items.append(("gap (training - held-out)", f"{100 * r.gap:+.1f} points{interval}"))
    if r.agreement is not None:
        n = (d.get("predictions") or {}).get("n")
        items.append(("agreement", f"{100 * r.agreement:.1f}%" + (f" of {n:,} unlabeled images" if n else "")))
    if r.fits_contradicted is not None:
        items.append(("fits contradicted labels", f"{100 * r.fits_contradicted:.1f}%"))
    if r.clean_fit is not None:
        items.append(("fits confirmed labels", f"{100 * r.clean_fit:.1f}%"))
    if r.region is not None:
        items.append(("region", str(r.region)))
    if r.verdict is not None:
        items.append(("verdict", f"{r.verdict}: {r.verdict_why}"))
    if r.keep or r.held_out_best:  # track
        rule = f"by the --keep {keep_rule(run) or 'rule'} rule"
        by = [words for words, marked in ((rule, r.keep), ("by held-out accuracy", r.held_out_best)) if marked]
        items.append(("epoch to keep", " and ".join(by)))
    result = outcome(r, run)
    if result.status != "passed" or gates(run):
        items.append(("gate", result.reason or "passed"))
    if prep := d.get("preprocess"):
        items.append(("preprocessing", ", ".join(f"{k} {v}" for k, v in prep.items())))
    items += [(label, value) for label, value in (("sha256", r.sha256), ("seconds", r.seconds)) if value is not None]
    if r.reused:
        items.append(("reused", "taken from the results file: its seconds are those of the run that measured it"))
    items += [("note", n) for n in r.notes]
    return [(label, str(value)) for label, value in items]


def plot(rows: list[Result], run: dict[str, Any], title: str, pick: str | None) -> tuple[str | None, str | None]:
    """The pool's (rank) or run's (track) plot as a data: URI of an SVG, or None and a line saying why there is none."""
    if "thresholds" not in run and "rule" not in run:
        return None, None  # score: one model, nothing to compare it with
    if not any(r.ok for r in rows):  # said as such: every row's error, not a missing option, is why
        return None, f"No plot: no {'model' if 'thresholds' in run else 'epoch'} could be scored."
    if importlib.util.find_spec("matplotlib") is None:
        return None, "No plot: it needs matplotlib (pip install 'suscli[plot]')."
    if "thresholds" in run and all(r.train_acc is None for r in rows):
        return None, "No plot: it needs training accuracy (--train-data)."
    from suscli.views.plot import pool_figure, run_figure, svg

    by_name = {r.name: r for r in rows}
    try:
        if "thresholds" in run:
            t = Thresholds(**run["thresholds"]) if run["thresholds"] else None
            fig = pool_figure(rows, t, title, pick=by_name.get(pick) if pick else None)
        else:
            keep = (run.get("recommendation") or {}).get("name")
            fig = run_figure(rows, by_name.get(keep) if keep else None, title, rule=str(run["rule"]).split(":")[0])
    except SuscliError as e:
        return None, f"No plot: {e.line()}."
    return "data:image/svg+xml;base64," + base64.b64encode(svg(fig)).decode("ascii"), None
