"""Open an HTML report of `suscli rank` in headless Chromium and check what a reviewer sees: the table's rows in the
report's order, the model to ship marked, the table sorted by the page's own script, no request leaving the page.
Optionally take a screenshot (docs/ci-report.png is one).

    apt-get install -y chromium        # Debian's package; any Chromium or Chrome on PATH will do
    suscli rank POOL --data UNLABELED --train-data TRAIN --html report.html -f json -o report.json
    python scripts/browser_check.py report.html --screenshot docs/ci-report.png

Exits 0 when every check holds, 1 naming the first that does not, 2 when the JSON report is not there.
tests/test_ci_reports.py runs the same checks.
"""

from __future__ import annotations

import argparse
import html.parser
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def headless(*args: str) -> subprocess.CompletedProcess:
    """Chromium without a display, a GPU or a network (root needs --no-sandbox: Chromium's sandbox refuses root)."""
    exe = browser()
    if exe is None:
        raise SystemExit(f"no Chromium on PATH (looked for {', '.join(BROWSERS)}): apt-get install -y chromium")
    flags = [
        "--headless",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--proxy-server=127.0.0.1:9",
        *(["--no-sandbox"] if os.geteuid() == 0 else []),
    ]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=120, check=True)


class Page(html.parser.HTMLParser):
    """What the rendered DOM shows: the table's rows (by data-model), the row marked as the pick, the closing line,
    and every address a tag would load."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.pick: str | None = None
        self.loads: list[str] = []
        self.closing = ""
        self._in_closing = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-model") is not None:
            self.rows.append(a["data-model"] or "")
            if "pick" in (a.get("class") or "").split():
                self.pick = a["data-model"]
        for name in ("src", "href"):
            if a.get(name):
                self.loads.append(a[name] or "")
        self._in_closing = a.get("id") == "closing"

    def handle_endtag(self, tag: str) -> None:
        self._in_closing = self._in_closing and tag != "p"

    def handle_data(self, data: str) -> None:
        if self._in_closing:
            self.closing += data


def rendered(report: Path, fragment: str = "") -> Page:
    """The report's DOM after its script ran, as Chromium renders it."""
    page = Page()
    page.feed(headless("--dump-dom", report.resolve().as_uri() + fragment).stdout)
    return page


def check(report: Path, expected_rows: list[str], pick: str | None, closing: str | None, sortable: dict[str, float]) -> list[str]:
    """The problems seen, none when the page shows what the JSON report says. `sortable` maps each model to its
    susceptibility, the column sorted through the page's `#sort=-susceptibility` link."""
    problems = []
    page = rendered(report)
    if page.rows != expected_rows:
        problems.append(f"rows {page.rows}, expected {expected_rows}")
    if page.pick != pick:
        problems.append(f"marked to ship: {page.pick}, expected {pick}")
    if closing and " ".join(page.closing.split()) != " ".join(closing.split()):
        problems.append(f"closing line {page.closing!r}, expected {closing!r}")
    external = [a for a in page.loads if not a.startswith(("data:", "#"))]
    if external:
        problems.append(f"loads from outside the page: {external}")
    by_sus = rendered(report, "#sort=-susceptibility").rows
    expected = sorted(sortable, key=lambda name: -sortable[name])
    if by_sus != expected:
        problems.append(f"sorted by susceptibility (descending): {by_sus}, expected {expected}")
    return problems


def shrink(png: Path) -> None:
    """256 colours: a page of flat colours looks the same at a third of the bytes (it goes into the repository)."""
    from PIL import Image

    with Image.open(png) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(png, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="the HTML report (suscli rank ... --html FILE)")
    parser.add_argument("--json", type=Path, help="the JSON report of the same run (-f json -o FILE); default: REPORT with .json")
    parser.add_argument("--screenshot", type=Path, help="also save a PNG of the page here")
    parser.add_argument("--size", default="1280,2000", help="window size for the screenshot, W,H")
    args = parser.parse_args()
    found = args.json or args.report.with_suffix(".json")
    if not found.is_file():
        # What the page should show comes from the JSON report; without it there is nothing to check against.
        print(
            f"error: no JSON report at {found}: write it in the same run (suscli rank ... --html {args.report} -f json -o {found}), or pass --json FILE",
            file=sys.stderr,
        )
        sys.exit(2)
    doc = json.loads(found.read_text(encoding="utf-8"))
    rows = doc["results"]
    sortable = {r["name"]: r["susceptibility"] for r in rows if r["susceptibility"] is not None}
    problems = check(args.report, [r["name"] for r in rows], doc["choice"]["pick"], doc.get("recommendation"), sortable)
    if args.screenshot:
        headless(f"--window-size={args.size}", f"--screenshot={args.screenshot.resolve()}", args.report.resolve().as_uri())
        shrink(args.screenshot)
        print(f"screenshot written to {args.screenshot}")
    for p in problems:
        print(f"FAIL: {p}")
    if not problems:
        print(
            f"ok: {len(rows)} rows in the report's order, {doc['choice']['pick']} marked to ship, the closing line shown, "
            "sorting by susceptibility works, nothing loaded from outside the page"
        )
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
