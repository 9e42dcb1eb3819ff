"""Results as a pandas DataFrame, for notebooks: the rows every report is a view of, one row per model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from suscli.errors import InputError, UsageError
from suscli.files import encodable
from suscli.results import BOOL_COLUMNS, FLAT_COLUMNS, FLOAT_COLUMNS, INT_COLUMNS, Result
from suscli.run.store import read_records, record_result, require_regular


def load_results(path: str | Path) -> pd.DataFrame:
    """The results in `path` with the CSV report's columns, one row per model.

    `path` is a JSON report (`suscli rank ... -f json`: ranked, with regions, agreement and verdicts, in the
    report's order) or a results file (`suscli-results.jsonl`: the measurements as they were stored, before
    ranking, with a `fingerprint` column telling apart the sets of settings the file holds).
    """
    if not isinstance(path, (str, os.PathLike)):  # the Report rank just returned: "expected str, bytes or os.PathLike object"
        raise UsageError(
            f"load_results takes the path of a JSON report or a results file, got {type(path).__name__}",
            fix="a Report in memory holds its rows in report.rows; or write it with -f json -o FILE and load that",
        )
    path = Path(path)
    require_regular(path, fix=_READABLE)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte order mark an editor saved it with is no part of it
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read results {path}: {e}") from None
    report = _report(text)
    if report is not None:
        try:
            rows = [Result.from_dict(r).flat() for r in report]
        except TypeError:  # a row without a model's name or path (Result's required fields): another tool's results
            raise InputError(
                f"{path} is a JSON file with results, not suscli's: a row lacks a model's name or path", fix=_READABLE
            ) from None
        return flat_frame(rows, FLAT_COLUMNS)
    if text.startswith(",".join(FLAT_COLUMNS[:3]) + ","):  # the header every release's CSV report begins with
        raise InputError(f"{path} is a CSV report, which load_results does not read back: pandas.read_csv reads it as it is", fix=_READABLE)
    latest: dict[tuple[str, str], dict] = {}  # as the results file is read: a later line for the same model wins
    try:
        for n, record in read_records(path):
            latest[(record["fingerprint"], record["key"])] = {**record_result(path, n, record).flat(), "fingerprint": record["fingerprint"]}
    except InputError as e:  # its fix speaks of rank's --results and --fresh
        raise InputError(e.message, fix=_READABLE) from None
    if not latest and text.strip():  # a lone line that is no record, which the reader leaves out as a killed run's last
        raise InputError(f"{path} holds no suscli results: it is no JSON report, and no line of it is a whole record", fix=_READABLE)
    return flat_frame(list(latest.values()), [*FLAT_COLUMNS, "fingerprint"])


_READABLE = "pass a JSON report (suscli rank ... -f json) or a results file (suscli-results.jsonl)"


def flat_frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """Flat rows (Result.flat) as a DataFrame whose whole-number columns stay whole where a row has no value (a failed
    model's region): pandas' nullable Int64, an empty cell in CSV, rather than floats for all (region 1.0). Number
    columns are float64 and yes/no columns pandas' nullable boolean also where no row has a value: a column of None
    alone was of object dtype, and comparing or averaging it raised TypeError. A name whose bytes are not UTF-8 is
    held with its escape (files.encodable), as the JSON report writes it."""
    frame = pd.DataFrame([{k: encodable(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows], columns=columns)
    for dtype, names in (("Int64", INT_COLUMNS), ("float64", FLOAT_COLUMNS), ("boolean", BOOL_COLUMNS)):
        for column in names:
            try:
                frame[column] = frame[column].astype(dtype)
            except (TypeError, ValueError):  # a value of another kind (a hand-edited file): the column as it was read
                pass
    return frame


def _report(text: str) -> list[dict] | None:
    """The rows of a JSON report, or None when `text` is not one (a results file is JSON lines)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("results"), list) and all(isinstance(r, dict) for r in doc["results"]):
        return doc["results"]
    return None
