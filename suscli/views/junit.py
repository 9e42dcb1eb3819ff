"""The JUnit XML report: one testsuite for the pool (or run), one testcase per model, the settings as properties.

CI test reporters (GitLab, Jenkins, Azure Pipelines, Buildkite, GitHub's test-report actions) read this format;
it follows the schema they share (Jenkins' junit-10.xsd): a model that failed a gate is a <failure>, one that could
not be loaded or run an <error>, each with its reason.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from suscli.judge.gate import outcome
from suscli.judge.noise import noise_words
from suscli.results import Result
from suscli.views.columns import finite, gap_interval
from suscli.views.runview import closing, flat, keep_rule, subject

# XML 1.0 has no way to write these, escaped or not; a file name may hold them (a NUL, found by fuzzing).
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def text(value: Any) -> str:
    return NOT_XML.sub("\ufffd", "" if value is None else str(value))


def properties(run: dict[str, Any]) -> list[tuple[str, str]]:
    """The run's settings, thresholds, choice, gate, data and versions; the closing line, the label-noise line and a
    gate's pass that could flag no model are the suite's system-out."""
    return [(name, text(value)) for name, value in flat(run) if name not in ("recommendation", "recommendation.text")]


def numbers(row: Result, rule: str = "") -> str:
    """The row's numbers in one line, for the testcase's system-out; `rule`: track's --keep rule, by name."""
    parts = []
    low, high = row.train_acc_low, row.train_acc_high
    if row.train_acc is not None:
        interval = f" [{100 * low:.1f}, {100 * high:.1f}]" if low is not None and high is not None and low != high else ""
        parts.append(f"training accuracy {100 * row.train_acc:.1f}%{interval}")
    if row.val_acc is not None and row.val_acc_low is not None and row.val_acc_high is not None:
        parts.append(
            f"held-out accuracy {100 * row.val_acc:.1f}% [{100 * row.val_acc_low:.1f}, {100 * row.val_acc_high:.1f}] of {row.val_n:,} images"
        )
    if row.gap is not None:
        parts.append(f"gap {100 * row.gap:+.1f} points{gap_interval(row)}")
    if row.susceptibility is not None:
        sem = finite(row.susceptibility_sem)
        parts.append(f"susceptibility {row.susceptibility:.4f}" + ("" if sem is None else f" ± {sem:.4f}"))
    if row.zeta is not None:  # track: the running mean, the run's own number
        parts.append(f"zeta {row.zeta:.4f}")
    if row.agreement is not None:
        parts.append(f"agreement {100 * row.agreement:.1f}%")
    if row.fits_contradicted is not None:
        parts.append(f"fits contradicted {100 * row.fits_contradicted:.1f}%")
    if row.region is not None:
        parts.append(f"region {row.region} ({row.verdict})")
    elif row.verdict:  # score's verdict of one checkpoint alone, track's of each epoch: the word and its reason
        parts.append(f"verdict {row.verdict}" + (f": {row.verdict_why}" if row.verdict_why else ""))
    if row.keep:
        parts.append(f"the epoch to keep (--keep {rule or 'rule'})")
    if row.held_out_best:
        parts.append("the epoch with the highest held-out accuracy")
    return "; ".join(parts + row.notes)


def label_noise_line(run: dict[str, Any]) -> str | None:
    """The label-noise line of rank's stderr, the step summary and the HTML report: the suite's system-out held the
    closing line alone, so a CI log read through its test reporter lost the estimate."""
    noise = run.get("label_noise")
    return f"label noise: {noise_words(noise)}" if isinstance(noise, dict) and noise else None


def spent(row: Result) -> float:
    """The seconds this run spent measuring the row: none for one reused from a results file, whose `seconds` are
    those of the run that measured it."""
    return 0.0 if row.reused else row.seconds or 0.0


def named(row: Result, reason: str) -> str:
    """The reason after the checkpoint's path, which a reader of the CI log looks for; once, where the reason (a
    load error) begins with the path already."""
    return reason if reason.startswith(f"{row.path}: ") else f"{row.path}: {reason}"


def to_junit(rows: list[Result], run: dict[str, Any], title: str | None = None) -> str:
    """The report as JUnit XML text."""
    name = title or "suscli"
    about = subject(rows, run)
    outcomes = [outcome(r, run) for r in rows]
    counts = {
        "tests": str(len(rows)),
        "failures": str(sum(o.status == "failure" for o in outcomes)),
        "errors": str(sum(o.status == "error" for o in outcomes)),
    }
    seconds = f"{sum(spent(r) for r in rows):.3f}"
    root = ET.Element("testsuites", {"name": text(name), **counts, "time": seconds})
    suite = ET.SubElement(
        root, "testsuite", {"name": text(f"{name} {about}" if about else name), **counts, "skipped": "0", "time": seconds}
    )
    props = ET.SubElement(suite, "properties")
    for key, value in properties(run):
        ET.SubElement(props, "property", name=key, value=value)
    for row, result in zip(rows, outcomes):
        case = ET.SubElement(suite, "testcase", name=text(row.name), classname=name.replace(" ", "."), time=f"{spent(row):.3f}")
        if result.status != "passed":
            tag = "error" if result.status == "error" else "failure"
            ET.SubElement(case, tag, message=text(result.reason), type=text(result.kind)).text = text(named(row, result.reason or ""))
        if out := numbers(row, keep_rule(run)):
            ET.SubElement(case, "system-out").text = text(out)
    blind = (run.get("gate") or {}).get("flags_none")  # a pass that could flag no model: a test tab shows system-out
    lines = [line for line in (closing(run), label_noise_line(run), blind) if line]
    if lines:
        ET.SubElement(suite, "system-out").text = text("\n".join(lines))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
