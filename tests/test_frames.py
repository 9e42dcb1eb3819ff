"""suscli.load_results: the report's rows as a DataFrame, for notebooks, without importing torch."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

import suscli
from suscli.errors import InputError
from tests.conftest import invoke
from tests.test_cli_rank import make_pool

FAST = ("--batches", "1", "--batch-size", "8")


def test_a_json_report_loads_as_the_csv_report_shows_it(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    pool = make_pool(tmp_path / "pool")
    args = ("rank", pool, "-d", image_folder, "--train-data", train_folder, *FAST)
    assert invoke(*args, "-f", "json", "-o", tmp_path / "r.json").exit_code == 0
    csv = invoke(*args, "-f", "csv")
    frame = suscli.load_results(tmp_path / "r.json")
    assert len(frame) == 4 and frame["region"].notna().all() and frame["agreement"].notna().all()
    assert frame.to_csv(index=False, lineterminator="\n") == csv.stdout


def test_a_failed_row_leaves_whole_number_columns_whole(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """A model that could not be scored has no region or training count: its cells are empty, and the other rows'
    whole numbers stay as a clean pool prints them (1, not 1.0), in the CSV report and in load_results alike."""
    pool = make_pool(tmp_path / "pool", n=2)
    (pool / "broken.pt").write_bytes(b"not a checkpoint")
    args = ("rank", pool, "-d", image_folder, "--train-data", train_folder, *FAST)
    assert invoke(*args, "-f", "json", "-o", tmp_path / "r.json").exit_code == 3
    res = invoke(*args, "-f", "csv")
    assert res.exit_code == 3, res.output
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(res.stdout))}
    assert rows["broken"]["status"] == "error" and rows["broken"]["region"] == rows["broken"]["train_n"] == ""
    for name in ("m0", "m1"):
        assert rows[name]["region"] in ("1", "2", "3", "4") and rows[name]["train_n"] == "18", rows[name]
    assert suscli.load_results(tmp_path / "r.json").to_csv(index=False, lineterminator="\n") == res.stdout


def test_csv_writes_an_epoch_as_a_whole_number_beside_a_row_without_one() -> None:
    from suscli.results import Result
    from suscli.views.formats import to_csv

    text = to_csv([Result("e8", "/r/e8.pt", epoch=8, train_n=200, val_n=50, region=1), Result("bad", "/r/x.pt", status="error")])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["epoch"], r["train_n"], r["val_n"], r["region"]) for r in rows] == [("8", "200", "50", "1"), ("", "", "", "")]


def test_a_results_file_loads_every_set_of_settings(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    pool = make_pool(tmp_path / "pool", n=2)
    for lr in ("0.1", "0.2"):
        assert invoke("rank", pool, "-d", image_folder, "--train-data", train_folder, *FAST, "--lr", lr).exit_code == 0
    frame = suscli.load_results(pool / "suscli-results.jsonl")
    assert len(frame) == 4 and frame["fingerprint"].nunique() == 2
    assert sorted(frame["name"]) == ["m0", "m0", "m1", "m1"]
    assert frame["susceptibility"].notna().all() and frame["region"].isna().all()  # measured, not yet ranked
    by_lr = frame.groupby("fingerprint")["susceptibility"].sum()
    assert by_lr.iloc[0] != pytest.approx(by_lr.iloc[1])


def test_a_number_column_no_row_has_a_value_in_is_numeric(tmp_path: Path, image_folder: Path) -> None:
    """A pool ranked without --train-data or --val-data has no training or held-out accuracy on any row: those columns
    were of object dtype, full of None, so `frame.train_acc.mean()` or `frame[frame.train_acc > 0.5]` raised TypeError
    where a column with one value in it gave NaN and False."""
    pool = make_pool(tmp_path / "pool", n=2)
    assert invoke("rank", pool, "-d", image_folder, *FAST, "-f", "json", "-o", tmp_path / "r.json").exit_code == 0
    for frame in (suscli.load_results(tmp_path / "r.json"), suscli.load_results(pool / "suscli-results.jsonl")):
        assert frame["train_acc"].isna().all() and frame["zeta"].isna().all() and frame["susceptibility"].notna().all()
        for column in ("train_acc", "train_acc_low", "val_acc", "gap", "zeta", "agreement", "susceptibility", "seconds"):
            assert frame[column].dtype == "float64", (column, frame[column].dtype)
        assert not (frame["train_acc"] > 0.5).any() and frame["keep"].dtype == "boolean"
        assert frame[frame["keep"].fillna(False)].empty


def test_a_file_that_is_neither_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"a": 1}\n[2]\n')
    with pytest.raises(InputError, match=r"x.json is not a suscli results file \(line 1\)") as e:
        suscli.load_results(tmp_path / "x.json")
    assert e.value.fix == "pass a JSON report (suscli rank ... -f json) or a results file (suscli-results.jsonl)"  # not rank's --fresh
    (tmp_path / "other.json").write_text('{"results": [{"accuracy": 0.9}]}')  # another tool's: a TypeError from Result
    with pytest.raises(InputError, match="other.json is a JSON file with results, not suscli's"):
        suscli.load_results(tmp_path / "other.json")
    (tmp_path / "notes.txt").write_text("best model: m1\n")  # one line that is no record: it read as an empty frame
    with pytest.raises(InputError, match=r"notes.txt is not a suscli results file \(line 1\)"):
        suscli.load_results(tmp_path / "notes.txt")
    (tmp_path / "cut.jsonl").write_text('{"fingerprint": "ab", "key": "k", "res')  # a first write cut by a kill
    with pytest.raises(InputError, match="cut.jsonl holds no suscli results: it is no JSON report, and no line of it is a whole record"):
        suscli.load_results(tmp_path / "cut.jsonl")
    with pytest.raises(InputError, match="cannot read results"):
        suscli.load_results(tmp_path / "missing.jsonl")


def test_a_report_in_memory_where_its_file_goes_is_a_usage_error() -> None:
    """suscli.load_results(report), the Report that rank just returned, raised "TypeError: expected str, bytes or
    os.PathLike object, not Report" from inside pathlib."""
    from suscli.errors import UsageError

    for wrong, kind in ((suscli.Report("rank", [], {}), "Report"), (None, "NoneType")):
        with pytest.raises(UsageError, match=rf"load_results takes the path of a JSON report or a results file, got {kind}"):
            suscli.load_results(wrong)  # type: ignore[arg-type]


def test_a_csv_report_is_named_as_one_not_as_a_corrupt_results_file(tmp_path: Path) -> None:
    """A CSV report kept from an earlier run (here as the 2026-12-01 release wrote it, before the held-out columns)
    read as a results file 'corrupt at line 1'."""
    header = "name,path,status,error,arch,epoch,susceptibility,susceptibility_sem,zeta,train_acc,train_acc_low,train_acc_high,"
    header += "train_n,agreement,region,verdict,sha256,seconds,notes"
    (tmp_path / "r.csv").write_text(
        f"{header}\nm1,/p/m1.safetensors,ok,,suscli.models:bn_cnn,12,0.09,0.007,,0.65,0.65,0.65,1500,0.967,1,fits,ab,6.9,\n"
    )
    with pytest.raises(InputError) as e:
        suscli.load_results(tmp_path / "r.csv")
    assert (
        e.value.message == f"{tmp_path / 'r.csv'} is a CSV report, which load_results does not read back: pandas.read_csv reads it as it is"
    )
    assert e.value.fix == "pass a JSON report (suscli rank ... -f json) or a results file (suscli-results.jsonl)"


def test_importing_suscli_and_load_results_imports_no_torch() -> None:
    code = (
        "import sys, suscli; assert 'pandas' not in sys.modules; suscli.load_results; "
        "assert 'torch' not in sys.modules, 'torch'; print('light')"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert res.returncode == 0 and res.stdout == "light\n", res.stderr
