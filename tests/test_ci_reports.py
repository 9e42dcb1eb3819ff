"""The CI reports: JUnit XML read by a JUnit parser, the HTML page read by an HTML parser and rendered by a real
browser. One `rank` run of a pool with a broken checkpoint and a hostile model name feeds most checks."""

from __future__ import annotations

import base64
import html.parser
import importlib.util
import json
import os
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from junitparser.xunit2 import JUnitXml

import suscli
from suscli.judge.gate import flags_none
from suscli.views.html import to_html
from suscli.views.junit import to_junit
from suscli.results import Result
from tests.conftest import invoke, learned_pool, one_error_line, tiny_cnn
from tests.test_cli_rank import ARCH, make_pool, rank_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import browser_check  # noqa: E402  (scripts/ is no package: the documented script, run by its path)

HOSTILE = "x<i>&amp;"  # a file name is text: never markup in the page, always escaped in the XML


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("ci")
    pool, unlabeled, train, _ = learned_pool(root, learners=4)  # one model memorized its wrong labels: a flag to report
    shutil.copy(pool / "learner0.safetensors", pool / f"{HOSTILE}.safetensors")
    (pool / "broken.safetensors").write_bytes(b"not a checkpoint")
    out = {"json": root / "r.json", "html": root / "r.html", "junit": root / "r.xml"}
    res = invoke(
        "rank",
        pool,
        "-d",
        unlabeled,
        "--train-data",
        train,
        "--batches",
        "2",
        "--batch-size",
        "8",
        "--cache-dir",
        root / "cache",
        "--fail-on",
        "memorized",
        "-f",
        "json",
        "-o",
        out["json"],
        "--html",
        out["html"],
        "--junit",
        out["junit"],
    )
    return {"res": res, "doc": json.loads(out["json"].read_text()), **out}


def test_junit_has_a_testcase_per_model_and_the_gate_as_failures(audited) -> None:
    assert audited["res"].exit_code == 3  # a broken model: exit 3 wins over the gate's 1
    doc, xml = audited["doc"], JUnitXml.fromfile(str(audited["junit"]))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    memorized = [r["name"] for r in doc["results"] if r["verdict"] == "likely memorized noise"]
    assert memorized and suite.name == f"suscli rank {doc['pool']}"
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (7, len(memorized), 1, 0)
    assert (xml.tests, xml.failures, xml.errors) == (7, len(memorized), 1)
    cases = {case.name: case for case in suite}
    assert list(cases) == [r["name"] for r in doc["results"]]
    for name, case in cases.items():
        results = list(case.result)
        if name in memorized:
            assert len(results) == 1 and case.is_failure and results[0].type == "memorized"
            assert results[0].message.startswith("likely memorized noise: training accuracy")
        elif name == "broken":
            assert case.is_error and results[0].type == "load" and "not a readable safetensors file" in results[0].message
        else:
            assert case.is_passed
    assert cases[HOSTILE].classname == "suscli.rank"
    props = {p.name: p.value for p in suite.properties()}
    assert props["settings.susceptibility.batches"] == "2" and props["gate.fail_on"] == "memorized"
    assert props["thresholds.source"] == "pool mean" and props["environment.torch"]
    # the element order of the schema GitLab and Jenkins read (junit-10.xsd): properties, testcases, system-out
    tags = [child.tag for child in ET.parse(audited["junit"]).getroot()[0]]
    assert tags == ["properties", *["testcase"] * 7, "system-out"]


def test_junit_carries_the_label_noise_line_and_each_models_fit_on_contradicted_labels(audited) -> None:
    """The suite's system-out held the closing line alone and each testcase's left out 'fits contradicted': a CI log
    read through its test reporter lost the noise estimate and the evidence of memorization the table shows."""
    doc, root = audited["doc"], ET.parse(audited["junit"]).getroot()
    suite_out = root[0].find("system-out")
    assert suite_out is not None and suite_out.text is not None
    closing, noise = suite_out.text.split("\n")
    assert closing == doc["recommendation"]
    assert noise.startswith("label noise: ") and doc["label_noise"]
    fits = {r["name"]: r["fits_contradicted"] for r in doc["results"] if r["fits_contradicted"] is not None}
    assert fits
    for case in root[0].iter("testcase"):
        if case.get("name") in fits:
            assert f"fits contradicted {100 * fits[case.get('name')]:.1f}%" in case.find("system-out").text


def test_junit_fails_nothing_without_a_gate_and_writes_any_name() -> None:
    rows = [
        Result("a\x00b", "/p/a", susceptibility=0.5, train_acc=0.9, region=2, verdict="likely memorized noise"),
        Result("c", "/p/c", status="error", error="bad\x1b[31m bytes"),
    ]
    xml = JUnitXml.fromstring(to_junit(rows, {"pool": "/p", "gate": {"fail_on": "never"}}, "suscli rank").encode())
    suite = next(iter(xml))
    assert (suite.tests, suite.failures, suite.errors) == (2, 0, 1)
    assert [c.name for c in suite] == ["a\ufffdb", "c"]


def test_score_gate_is_a_failure_in_junit(tmp_path: Path, image_folder: Path) -> None:
    ckpt = make_pool(tmp_path / "one", n=1) / "m0.safetensors"
    res = invoke("score", ckpt, "-d", image_folder, "--batches", "1", "--batch-size", "8", "-f", "junit", "--max-susceptibility", "-1")
    assert res.exit_code == 1
    case = next(iter(next(iter(JUnitXml.fromstring(res.stdout.encode())))))
    assert (
        case.is_failure
        and next(iter(case.result)).message.startswith("susceptibility")
        and "> --max-susceptibility -1" in case.result[0].message
    )


def test_score_and_track_write_the_html_and_junit_reports_beside_the_table(tmp_path: Path, image_folder: Path) -> None:
    """score is the quality gate of one checkpoint in CI, yet took no --junit or --html (Click answered "No such
    option: --html (Possible options: --help, --lr)"): a CI job had to choose between the table and the test report.
    Both now write them beside the table, as rank does; track too, one testcase per epoch."""
    pool = make_pool(tmp_path / "run", n=2)
    ckpt = pool / "m0.safetensors"
    res = invoke(
        *("score", ckpt, "-d", image_folder, "--batches", "1", "--batch-size", "8", "--max-susceptibility", "-1"),
        *("--junit", tmp_path / "s.xml", "--html", tmp_path / "s.html"),
    )
    assert res.exit_code == 1 and "│ m0 " in res.stdout, res.output  # the table, on stdout
    case = next(iter(next(iter(JUnitXml.fromfile(str(tmp_path / "s.xml"))))))
    assert case.name == "m0" and case.is_failure and "> --max-susceptibility -1" in case.result[0].message
    assert "<!doctype html>" in (tmp_path / "s.html").read_text().lower() and "junit report written to" in res.stderr
    for i, f in enumerate(sorted(pool.glob("*.safetensors"))):
        f.rename(pool / f"epoch={i}.safetensors")
    res = invoke(
        "track",
        pool,
        "-d",
        image_folder,
        "--batches",
        "1",
        "--batch-size",
        "8",
        "--junit",
        tmp_path / "t.xml",
        "--html",
        tmp_path / "t.html",
    )
    assert res.exit_code == 0, res.output
    suite = next(iter(JUnitXml.fromfile(str(tmp_path / "t.xml"))))
    assert suite.tests == 2 and (tmp_path / "t.html").is_file()


def test_junit_times_and_the_reused_count_are_of_this_run(tmp_path: Path, image_folder: Path) -> None:
    """A row reused from the results file took no time in this run: its testcase's time is 0, the suite's is that of
    the models measured, and `counts.reused` counts the rows reused, not the results the file held."""
    pool = make_pool(tmp_path / "pool", n=3)
    args = ("rank", pool, "-d", image_folder, "--batches", "1", "--batch-size", "8", "--results", tmp_path / "r.jsonl", "-f", "json")
    assert invoke(*args).exit_code == 0
    (pool / "m2.safetensors").unlink()  # the file keeps its result
    shutil.copy(make_pool(tmp_path / "more", n=4) / "m3.safetensors", pool)
    res = invoke(*args, "--junit", tmp_path / "r.xml", "--html", tmp_path / "r.html")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["counts"]["reused"] == 2 and {r["name"]: r["details"].get("reused") for r in doc["results"]} == {
        "m0": True,
        "m1": True,
        "m3": None,
    }
    suite = next(iter(JUnitXml.fromfile(str(tmp_path / "r.xml"))))
    times = {case.name: case.time for case in suite}
    assert times["m0"] == times["m1"] == 0 and times["m3"] > 0 and suite.time == pytest.approx(times["m3"], abs=1e-3)
    assert (tmp_path / "r.html").read_text().count("taken from the results file: its seconds are those of the run that measured it") == 2
    stored = [json.loads(line)["result"]["details"] for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(stored) == 4 and not any("reused" in d for d in stored)  # a fact of a run, never stored


class Collect(html.parser.HTMLParser):
    """Tags with their attributes, and the text of the whole page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text = ""

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))
        self.text += " " if tag in ("td", "th", "li", "p", "div") else ""  # cells read apart, as a browser shows them

    def handle_data(self, data) -> None:
        self.text += data


def test_html_is_one_page_with_the_table_plot_gate_and_numbers(audited) -> None:
    doc, page = audited["doc"], audited["html"].read_text(encoding="utf-8")
    parsed = Collect()
    parsed.feed(page)
    rows = [a["data-model"] for tag, a in parsed.tags if tag == "tr" and "data-model" in a]
    assert rows == [r["name"] for r in doc["results"]]
    picked = [a["data-model"] for tag, a in parsed.tags if tag == "tr" and "pick" in a.get("class", "").split()]
    assert picked == [doc["choice"]["pick"]]
    text = " ".join(parsed.text.split())
    assert " ".join(doc["recommendation"].split()) in text
    assert "Could not audit every model: 1 model could not be loaded or run" in text and "failed the gate (--fail-on memorized)" in text
    for r in doc["results"]:
        if r["verdict"] == "likely memorized noise":
            assert f"{r['name']}: likely memorized noise: {r['verdict_why']}" in text
    assert text.count("95% interval [") == len(doc["results"]) - 1  # every scored model's susceptibility interval
    assert doc["settings"]["susceptibility"]["lr"] == 0.01 and "settings.susceptibility.lr 0.01" in text
    assert f"torch {doc['environment']['torch']}" in text
    # self-contained: nothing to fetch, one inline script, the plot inline
    loads = [a[k] for _, a in parsed.tags for k in ("src", "href") if a.get(k)]
    assert loads and all(v.startswith("data:") for v in loads), loads
    assert [a for tag, a in parsed.tags if tag == "script"] == [{}]
    (plot,) = [a["src"] for tag, a in parsed.tags if tag == "img"]
    assert base64.b64decode(plot.removeprefix("data:image/svg+xml;base64,")).lstrip().startswith(b"<?xml")
    # autoescaped: the hostile name is text
    assert "x&lt;i&gt;&amp;amp;" in page and "<i>" not in page


def test_html_draws_the_noise_matrix_as_a_heatmap_and_names_the_largest_confusions(audited) -> None:
    """The label-noise section: one row per consensus class, one cell per given label, coloured by its share; the
    JSON's largest confusions in words; the matrix neither in the settings table nor in JUnit's properties."""
    matrix = audited["doc"]["label_noise"]["noise_matrix"]
    page = audited["html"].read_text(encoding="utf-8")
    noise = audited["doc"]["label_noise"]  # the estimate's interval, and where its low end comes from
    assert noise["not_enough_evidence"] is None and noise["voter_disagreement"] is not None
    assert (
        f"(interval {100 * noise['low']:.1f}–{100 * noise['high']:.1f}%, its low end allowing for the voters' own errors: "
        f"they leave their consensus on {100 * noise['voter_disagreement']:.1f}% of the unlabeled images)"
    ) in page
    parsed = Collect()
    parsed.feed(page)
    assert ("table", {"class": "heat", "id": "noise-heatmap"}) in parsed.tags
    heat = page[page.index('id="noise-heatmap"') : page.index("</table>", page.index('id="noise-heatmap"'))]
    body = heat[heat.index("<tbody>") :]
    assert body.count("<tr>") == 3 and body.count("<td") == 3 * 4  # 3 classes, and each row's image count
    for c, name in enumerate(matrix["classes"]):
        assert name == f"class_{c}" and f'<th scope="row">{name}</th>' in body and f'<th scope="col">{name}</th>' in heat
    shares = [v for row in matrix["p_label_given_consensus"] for v in row]
    cells = Collect()
    cells.feed(body)
    shaded = [a.get("class", "") for tag, a in cells.tags if tag == "td" and a.get("class") != "total"]
    assert len(shaded) == len(shares) == 9
    for (i, v), shade in zip(enumerate(shares), shaded):
        diagonal = i // 3 == i % 3
        assert (shade == "") == (not v) and (not v or shade[0] == ("d" if diagonal else "o")), (i, v, shade)
    text = " ".join(parsed.text.split())
    assert matrix["top_confusions"], "the tiny models contradict some labels"
    for pair in matrix["top_confusions"]:
        words = (
            f"{pair['consensus_class']} labelled as {pair['given_class']}: {100 * pair['share']:.1f}% of the {pair['of']} images "
            f"the consensus calls {pair['consensus_class']}"
        )
        assert words in text
    assert "label_noise.noise_matrix" not in page
    props = {p.name for p in next(iter(JUnitXml.fromfile(str(audited["junit"])))).properties()}
    assert "label_noise.rate" in props and not any(name.startswith("label_noise.noise_matrix") for name in props)


@pytest.mark.skipif(
    browser_check.browser() is None and not os.environ.get("CI"),
    reason="no Chromium on PATH (apt-get install -y chromium); CI installs it, so there it must run",
)
def test_a_browser_shows_the_rows_the_pick_and_sorts(audited) -> None:
    doc = audited["doc"]
    sortable = {r["name"]: r["susceptibility"] for r in doc["results"] if r["susceptibility"] is not None}
    sortable["broken"] = float("-inf")  # no value: last, whichever way the column is sorted
    problems = browser_check.check(
        audited["html"], [r["name"] for r in doc["results"]], doc["choice"]["pick"], doc["recommendation"], sortable
    )
    assert problems == []


def test_the_browser_check_without_its_json_report_says_how_to_write_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its usage line showed the HTML report alone, and without report.json beside it the script ended in a traceback."""
    page = tmp_path / "report.html"
    page.write_text("<html></html>", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["browser_check.py", str(page)])
    with pytest.raises(SystemExit) as ended:
        browser_check.main()
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert f"no JSON report at {tmp_path / 'report.json'}" in err and "-f json -o" in err and "Traceback" not in err


def test_load_results_reads_the_reports_json(audited) -> None:
    frame = suscli.load_results(audited["json"])
    assert list(frame["name"]) == [r["name"] for r in audited["doc"]["results"]] and frame["status"].iloc[-1] == "error"


def test_html_says_why_there_is_no_plot(monkeypatch: pytest.MonkeyPatch) -> None:
    from suscli.views.html import to_html

    rows = [Result("a", "/p/a", susceptibility=0.1, agreement=0.9), Result("b", "/p/b", susceptibility=0.2, agreement=0.8)]
    run = {"pool": "/p", "thresholds": None, "gate": {"fail_on": "never"}, "choice": {"pick": "a"}}
    assert "No plot: it needs training accuracy (--train-data)." in to_html(rows, run, "suscli rank")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    page = to_html(rows, run, "suscli rank")
    assert "No plot: it needs matplotlib (pip install &#39;suscli[plot]&#39;)." in page and "<img" not in page


def test_html_suggests_only_a_gate_the_command_has() -> None:
    """track has no gate: its page said 'No gate was set (e.g. --fail-on memorized)', an option track refuses."""
    from suscli.views.html import to_html

    rows = [Result("epoch 1", "/r/e1", epoch=1, susceptibility=0.1), Result("epoch 2", "/r/e2", epoch=2, susceptibility=0.2)]
    pages = {title: " ".join(to_html(rows, {"run": "/r"}, title).split()) for title in ("suscli rank", "suscli score", "suscli track")}
    assert "<strong>No gate</strong> was set (e.g. <code>--fail-on memorized</code>)." in pages["suscli rank"]
    assert "(e.g. <code>--max-susceptibility</code> or <code>--min-train-acc</code>)" in pages["suscli score"]
    assert "<strong>No gate</strong> was set." in pages["suscli track"] and "--fail-on" not in pages["suscli track"]


def test_junit_names_a_broken_checkpoints_path_once() -> None:
    """A load error begins with the checkpoint's path, and the <error> text put the path before it again
    ("p/m.safetensors: p/m.safetensors: not a readable ..."); a gate's reason, which does not, still gets it."""
    rows = [
        Result("m", "p/m.safetensors", status="error", error="p/m.safetensors: not a readable safetensors file"),
        Result("n", "p/n.safetensors", susceptibility=0.9, train_acc=0.9, region=2, verdict="likely memorized noise", verdict_why="why"),
    ]
    root = ET.fromstring(to_junit(rows, {"pool": "p", "gate": {"fail_on": "memorized"}}, "suscli rank"))
    error, failure = root.find(".//testcase[@name='m']/error"), root.find(".//testcase[@name='n']/failure")
    assert error is not None and error.text == "p/m.safetensors: not a readable safetensors file"
    assert failure is not None and failure.text == "p/n.safetensors: likely memorized noise: why"


def test_html_counts_images_as_every_other_view_does() -> None:
    """The HTML report's per-model numbers wrote "1950 of 3000 images" and "of 2000 unlabeled images" where the
    table, Markdown, JUnit and the closing line write "n=3,000" and "1,000 held-out images"."""
    details = {"train_acc": {"correct": 1950, "total": 3000, "population": 12000}, "predictions": {"n": 2000}}
    row = Result("m", "p/m.safetensors", susceptibility=0.1, train_acc=0.65, agreement=0.9, details=details)
    page = to_html([row], {"pool": "p"}, "suscli rank")
    assert "65.0% (1,950 of 3,000 images sampled from 12,000)" in page
    assert "90.0% of 2,000 unlabeled images" in page


@pytest.mark.parametrize("pool_kind", ["mixed classes", "broken file"])
@pytest.mark.parametrize("gate", [("--fail-on", "memorized"), ("--candidate", "m0")])
def test_a_gate_that_cannot_be_judged_fails_in_every_report(
    gate: tuple[str, str], pool_kind: str, tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """A pool without regions (models of 3 and 5 classes; or a broken file leaving one model) cannot be judged: the
    run exits 3, but the JSON report said the gate passed on a mixed pool, and on both the HTML page said 'Gate
    passed' or listed no model failing it, and JUnit passed every model the gate never judged: a CI test reporter
    showed green."""
    pool = make_pool(tmp_path / "pool", n=2 if pool_kind == "mixed classes" else 1)
    if pool_kind == "mixed classes":
        make_pool(tmp_path / "five", n=1, num_classes=5)
        (tmp_path / "five" / "m0.safetensors").rename(pool / "five.safetensors")
        why = "the pool mixes models with 3 and 5 classes"
    else:
        (pool / "broken.safetensors").write_bytes(b"not a checkpoint")
        why = "1 of the 2 models could not be scored"
    out = {"html": tmp_path / "r.html", "junit": tmp_path / "r.xml", "summary": tmp_path / "summary.md"}
    res = invoke(
        *("rank", pool, "-d", image_folder, "--train-data", train_folder, *gate, "--batches", "2", "--batch-size", "8"),
        *("-f", "json", "--html", out["html"], "--junit", out["junit"]),
        env={"GITHUB_STEP_SUMMARY": str(out["summary"])},
    )
    assert res.exit_code == 3, res.output
    doc = json.loads(res.stdout)
    said = f"{' '.join(gate)} cannot be judged: {why}"
    assert doc["gate"]["passed"] is False and f"gate failed: {said}" in out["summary"].read_text()
    judged = [r["name"] for r in doc["results"] if r["status"] == "ok" and (gate[0] == "--fail-on" or r["name"] == gate[1])]
    suite = next(iter(JUnitXml.fromfile(str(out["junit"]))))
    assert suite.failures == len(judged) and suite.errors == (pool_kind == "broken file")
    for case in suite:
        if case.name in judged:
            assert case.is_failure and case.result[0].type == "not-judged" and case.result[0].message.startswith(said)
    page = Collect()
    page.feed(out["html"].read_text(encoding="utf-8"))
    (gate_div,) = [a for tag, a in page.tags if a.get("id") == "gate"]
    assert gate_div["class"] == ("gate failed" if pool_kind == "mixed classes" else "gate error")
    assert said in " ".join(page.text.split())


@pytest.mark.parametrize("broken", ["unreadable file", "NaN weights"])
def test_score_of_a_checkpoint_that_cannot_be_scored_writes_its_error_to_every_report(
    broken: str, tmp_path: Path, image_folder: Path
) -> None:
    """A checkpoint that could not be loaded (or, loaded, run) ended score on its error line and exit 3 with no
    report written: a CI job's test reporter found "no test report files were found" instead of a test in error.
    Each report asked for now holds its row with the error, as rank's does for a pool's broken model."""
    ckpt = make_pool(tmp_path / "one", n=1) / "m0.safetensors"
    if broken == "unreadable file":
        ckpt.write_bytes(b"not a checkpoint")
    else:  # loads, but its outputs are not finite numbers: it cannot be run
        model = tiny_cnn(3)
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))
        suscli.save(model, ckpt, arch=ARCH, arch_kwargs={"num_classes": 3}, image_size=8)
    out = {"json": tmp_path / "r.json", "html": tmp_path / "r.html", "junit": tmp_path / "r.xml", "summary": tmp_path / "s.md"}
    res = invoke(
        *("score", ckpt, "-d", image_folder, "--batches", "1", "--batch-size", "8", "--max-susceptibility", "1"),
        *("-f", "json", "-o", out["json"], "--html", out["html"], "--junit", out["junit"]),
        env={"GITHUB_STEP_SUMMARY": str(out["summary"])},
    )
    assert res.exit_code == 3, res.output
    (line,) = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    error = line.removeprefix("error: ")
    suite = next(iter(JUnitXml.fromfile(str(out["junit"]))))
    (case,) = list(suite)
    assert (suite.tests, suite.errors, suite.failures) == (1, 1, 0) and case.name == "m0"
    assert case.result[0].message == error and case.result[0].type == "load"
    doc = json.loads(out["json"].read_text())
    assert [(r["status"], r["error"]) for r in doc["results"]] == [("error", error)] and doc["gate"]["passed"] is False
    page = Collect()
    page.feed(out["html"].read_text(encoding="utf-8"))
    assert error in " ".join(page.text.split())
    assert "| m0 |" in out["summary"].read_text() and "could not be scored" in out["summary"].read_text()


def test_score_writes_no_report_where_the_images_cannot_be_read(tmp_path: Path) -> None:
    """No model is tried where the image set fails: score reads it before the checkpoint, ends on its one line, and
    writes no report, as rank and track do (docs/ci.md)."""
    ckpt = tmp_path / "bad.safetensors"
    ckpt.write_bytes(b"not a checkpoint")
    (tmp_path / "empty").mkdir()
    junit = tmp_path / "r.xml"
    res = invoke("score", ckpt, "-d", tmp_path / "empty", "--junit", junit)
    one_error_line(res, 3, "no image files in")
    assert not junit.exists() and res.stdout == ""


def test_score_ends_on_the_error_of_a_row_that_failed_while_its_training_sample_grew(
    tmp_path: Path, image_folder: Path, train_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Growing the training sample keeps a model's failure as its row rather than raising it (suscli.run.audit): score
    then exited 3 with no error line at all. It ends on that row's line, its reports written, as a load failure does."""
    import suscli.run.score as run_score
    from suscli.errors import InputError
    from suscli.run.model import failed

    ckpt = make_pool(tmp_path / "one", n=1) / "m0.safetensors"
    why = InputError(f"{ckpt}: training accuracy on more images failed: device lost")
    monkeypatch.setattr(run_score, "_settled", lambda *args: (failed(ckpt, why), 2000))
    junit = tmp_path / "r.xml"
    res = invoke("score", ckpt, "-d", image_folder, "--train-data", train_folder, "--batches", "1", "--batch-size", "8", "--junit", junit)
    assert res.exit_code == 3 and res.stderr.splitlines()[-1] == f"error: {why.line()}", res.output
    assert next(iter(next(iter(JUnitXml.fromfile(str(junit)))))).result[0].message == why.line()


def test_fail_on_memorized_does_not_pass_over_a_model_that_could_not_be_scored(
    tmp_path: Path, image_folder: Path, train_folder: Path
) -> None:
    """`--fail-on memorized` says no model of the pool memorized noise; a broken checkpoint was never judged, yet the
    JSON report said `gate.passed: true` (exit 3, the HTML page "could not audit every model"), where score says false
    of a gate on a checkpoint it could not score. A candidate that was scored still passes its own gate."""
    pool = make_pool(tmp_path / "pool", n=3)
    (pool / "broken.safetensors").write_bytes(b"not a checkpoint")
    res, doc = rank_json(pool, image_folder, train_folder, "--fail-on", "memorized")
    assert res.exit_code == 3 and not any(r["verdict"] == "likely memorized noise" for r in doc["results"]), res.output
    assert doc["gate"]["passed"] is False
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 3 and doc["gate"]["passed"] is True  # no gate set: nothing failed it
    candidate = next(r["name"] for r in doc["results"] if r["region"] == 1)
    res, doc = rank_json(pool, image_folder, train_folder, "--candidate", candidate)
    assert res.exit_code == 3 and doc["gate"]["passed"] is True


def test_a_fail_on_gate_that_could_flag_no_model_says_so(tmp_path: Path) -> None:
    """A pool of two is judged as two models alone, so `--fail-on memorized` cannot flag its memorizer: it exited 0
    without a word, a green CI step that says nothing of memorization. It still passes, and stderr, the JSON gate, the
    JUnit suite's system-out (a test tab's text; a property alone is not shown there) and the HTML page's gate box say
    that it could flag no model; a pool whose verdicts can flag says nothing of the kind."""
    pool, unlabeled, train, _ = learned_pool(tmp_path / "two", learners=1)
    html, junit = tmp_path / "r.html", tmp_path / "r.xml"
    res = invoke(
        *("rank", pool, "-d", unlabeled, "--train-data", train, "--fail-on", "memorized", "-f", "json", "--device", "cpu"),
        *("--html", html, "--junit", junit),
    )
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["gate"]["passed"] is True, res.output
    assert "could flag none of the 2 models" in doc["gate"]["flags_none"]
    assert res.stderr.strip().splitlines()[-1] == doc["gate"]["flags_none"]  # last, with the gate lines
    suite_out = ET.parse(junit).getroot()[0].find("system-out")
    assert suite_out is not None and suite_out.text is not None
    assert suite_out.text.splitlines()[-1] == doc["gate"]["flags_none"]  # last, after the closing and noise lines
    gate_box = Collect()  # the gate's box alone: the settings table lists gate.flags_none too, far below it
    gate_box.feed(html.read_text(encoding="utf-8").split('id="gate">', 1)[1].split("</div>", 1)[0])
    assert gate_box.text.split()[:2] == ["Gate", "passed"]
    assert " ".join(doc["gate"]["flags_none"].split()) in " ".join(gate_box.text.split())
    summary = tmp_path / "summary.md"
    res = invoke("rank", pool, "-d", unlabeled, "--train-data", train, "--fail-on", "memorized", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert res.exit_code == 0 and doc["gate"]["flags_none"] in summary.read_text(), res.output  # the CI page says it too
    pool, unlabeled, train, _ = learned_pool(tmp_path / "four")
    res = invoke("rank", pool, "-d", unlabeled, "--train-data", train, "--fail-on", "memorized", "-f", "json", "--device", "cpu")
    doc = json.loads(res.stdout)
    assert res.exit_code == 1 and doc["gate"]["flags_none"] is None and "could flag none" not in res.stderr, res.output


def test_a_fail_on_gate_that_could_flag_its_one_model_says_so_in_the_singular() -> None:
    """A pool of one ranked with both thresholds fixed (or one whose other checkpoints could not be loaded) leaves one
    scored model: the line said "could flag none of the 1 models: each is 'unclear' ... (their rows say why)", where
    every count suscli prints agrees with its number."""
    row = Result("m", "p/m.safetensors", susceptibility=0.399, train_acc=0.99, region=1, verdict="unclear", verdict_why="why")
    line = flags_none([row], "memorized")
    assert line is not None and "1 models" not in line and "each is" not in line and "their rows" not in line
    assert (
        line.startswith("--fail-on memorized passes, but it could not flag its one model: it is 'unclear'") and "(its row says why)" in line
    )
    two = flags_none([row, Result("n", "p/n.safetensors", susceptibility=0.1, train_acc=0.5, verdict="unclear")], "memorized")
    assert two is not None and "could flag none of the 2 models: each is 'unclear'" in two


def test_score_and_track_junit_carry_each_verdict_and_its_reason() -> None:
    """The table, the step summary and the HTML report give score's verdict and its reason (track's per epoch); the
    JUnit testcase's system-out gave the numbers alone ("training accuracy 100.0%; susceptibility 0.7913 ± 0.0386"),
    so a CI log read through its test reporter lost the verdict, which rank's testcases carry beside their region."""
    why = "susceptibility 0.791 > 0.44 (fixed cut at the default step) and it fits its labels"
    row = Result("m", "p/m.safetensors", susceptibility=0.7913, train_acc=1.0, verdict="susceptible", verdict_why=why)
    for run, title in (({}, "suscli score"), ({"run": "p", "rule": "train-acc: keep ..."}, "suscli track")):
        out = ET.fromstring(to_junit([row], run, title)).find(".//testcase[@name='m']/system-out")
        assert out is not None and out.text == f"training accuracy 100.0%; susceptibility 0.7913; verdict susceptible: {why}"
    ranked = Result("n", "p/n.safetensors", susceptibility=0.1, region=1, verdict="fits, resists noise", verdict_why="why")
    out = ET.fromstring(to_junit([ranked], {"pool": "p"}, "suscli rank")).find(".//system-out")
    assert out is not None and out.text == "susceptibility 0.1000; region 1 (fits, resists noise)"  # rank's, as before
