"""`suscli rank` under torchrun: two CPU processes (gloo) give the single-process report, and rank 0 alone writes."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import suscli
import suscli.run.distributed
import suscli.run.rank
from suscli.run.audit import PoolRequest, audit_pool
from suscli.results import Result
from suscli.run.distributed import _grown_window, audit_shards, grow_shards, process_group
from suscli.run.launch import World, world
from suscli.data.images import unlabeled_source
from suscli.errors import InputError
from suscli.run.pool import PoolEntry, discover
from suscli.run.settings import Settings
from suscli.measure.susceptibility import SusceptibilityConfig
from suscli.load.checkpoints import file_sha256
from tests.conftest import invoke, tiny_cnn, write_images
from tests.test_cli_rank import ARCH, make_pool

ROOT = Path(__file__).resolve().parents[1]
# torchrun gives each process one thread; the single-process run must too, or float sums differ in the last bits.
# PYTHONFAULTHANDLER: should a rank still abort, its Python stack is in the failure's stderr.
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONFAULTHANDLER": "1"}
RUN_ONLY = {"seconds", "command", "results_file", "world_size"}  # fields that differ between two runs by design


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_args(pool: Path, image_folder: Path, train_folder: Path, results: Path) -> list[str]:
    return [
        "-m",
        "suscli",
        "rank",
        str(pool),
        "-d",
        str(image_folder),
        "--train-data",
        str(train_folder),
        "-f",
        "json",
        "--batches",
        "2",
        "--batch-size",
        "8",
        "--results",
        str(results),
    ]


def single(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ENV, timeout=120)


def torchrun(*args: str) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port())]
    return subprocess.run([*launcher, *args], capture_output=True, text=True, env=ENV, timeout=120)


def comparable(doc: dict) -> dict:
    rows = [{k: v for k, v in r.items() if k != "seconds"} for r in doc["results"]]
    return {**{k: v for k, v in doc.items() if k not in RUN_ONLY}, "results": rows}


def stored_names(results: Path) -> list[str]:
    return sorted(json.loads(line)["result"]["name"] for line in results.read_text().splitlines())


def test_two_ranks_give_the_single_process_report(tmp_path: Path, image_folder: Path) -> None:
    """5 models on 2 ranks (the last round has one rank idle) and 1,200 training images: the adaptive sample's first
    stage of 1,000, then the rest, which the ranks share as they shared the pool."""
    train = tmp_path / "train"
    for c in range(3):
        write_images(train / f"class_{c}", 400, seed=30 + c)
    pool = make_pool(tmp_path / "pool", n=5)
    one = single(*rank_args(pool, image_folder, train, tmp_path / "single.jsonl"))
    two = torchrun(*rank_args(pool, image_folder, train, tmp_path / "dist.jsonl"))
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    doc = json.loads(two.stdout)  # one document: the other rank printed nothing
    assert doc["world_size"] == 2 and doc["counts"]["scored"] == 5
    assert doc["train_sample"]["sizes_tried"] == [1000, 1200] and {r["train_n"] for r in doc["results"]} == {1200}
    assert comparable(doc) == comparable(json.loads(one.stdout))
    assert sorted(set(stored_names(tmp_path / "dist.jsonl"))) == ["m0", "m1", "m2", "m3", "m4"]  # each stage's rows stored
    assert two.stderr.count("ship ") == 1  # the closing line comes from rank 0 only


def test_model_batch_under_torchrun_gives_the_single_process_report(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """--model-batch 2 on 2 ranks: each rank measures 2 models together per round, as one process does per window."""
    pool = make_pool(tmp_path / "pool", n=5)
    one = single(*rank_args(pool, image_folder, train_folder, tmp_path / "single.jsonl"), "--model-batch", "2")
    two = torchrun(*rank_args(pool, image_folder, train_folder, tmp_path / "dist.jsonl"), "--model-batch", "2")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    doc = json.loads(two.stdout)
    assert doc["world_size"] == 2 and comparable(doc) == comparable(json.loads(one.stdout))
    assert stored_names(tmp_path / "dist.jsonl") == ["m0", "m1", "m2", "m3", "m4"]


def test_broken_checkpoint_is_a_row_and_exit_3_without_hanging(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    pool = make_pool(tmp_path / "pool", n=3)
    results = tmp_path / "dist.jsonl"
    assert invoke(*rank_args(pool, image_folder, train_folder, results)[2:]).exit_code == 0  # one process stores them
    (pool / "broken.pt").write_bytes(b"not a checkpoint")
    run = torchrun(*rank_args(pool, image_folder, train_folder, results))  # the 3 stored models are reused
    # torchrun exits 1 whenever a process fails, and names rank 0's own exit code in its report
    assert run.returncode != 0 and re.search(r"exitcode\s*:\s*3\b", run.stderr), run.stderr
    doc = json.loads(run.stdout)
    assert [(r["name"], r["status"]) for r in doc["results"]][-1] == ("broken", "error")
    assert "broken.pt" in doc["results"][-1]["error"] and doc["counts"] == {"models": 4, "scored": 3, "failed": 1, "reused": 3}
    assert stored_names(results) == ["m0", "m1", "m2"]


@pytest.mark.parametrize("model_batch", [1, 3])
def test_unexpected_exception_becomes_an_error_row(tmp_path: Path, image_folder: Path, monkeypatch, model_batch: int) -> None:
    """A model that raises a non-suscli error is a row, and the others match audit_pool: with --model-batch 3 the
    models of its window were all given its error."""
    for name, value in {"WORLD_SIZE": "1", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}.items():
        monkeypatch.setenv(name, value)
    entries = discover(make_pool(tmp_path / "pool", n=3))
    unlabeled = unlabeled_source(image_folder)
    options = {"settings": Settings(susceptibility=SusceptibilityConfig(batches=2, batch_size=8)), "device": torch.device("cpu")}
    expected = audit_pool(PoolRequest(entries, **options), unlabeled, None)
    real = suscli.run.distributed.scored_window

    def bug_on_m1(window, *a, **k):
        if any(entry.name == "m1" for _, entry in window):
            raise ValueError("a bug")
        return real(window, *a, **k)

    monkeypatch.setattr(suscli.run.distributed, "scored_window", bug_on_m1)
    assert world() is None  # WORLD_SIZE 1 is a plain run
    with process_group(options["device"]):
        rows = audit_shards(World(0, 0, 1), PoolRequest(entries, **options, model_batch=model_batch), unlabeled, None)
    assert [r.status for r in rows] == ["ok", "error", "ok"] and "ValueError: a bug" in rows[1].error
    assert [r.susceptibility for r in rows[::2]] == [r.susceptibility for r in expected[::2]]


def test_an_unexpected_exception_growing_one_row_is_that_rows_error_only(tmp_path: Path, monkeypatch) -> None:
    """Growing a stage, a non-suscli error of one model was given to every row of its rank's window."""
    entries = discover(make_pool(tmp_path / "pool", n=3))
    rows = [Result(name=e.name, path=str(e.path)) for e in entries]

    def bug_on_m1(part, loaded, sample, size, device):
        if any(row.name == "m1" for row in part):
            raise ValueError("a bug")
        return part

    monkeypatch.setattr(suscli.run.distributed, "grown_rows", bug_on_m1)
    window = [(i, row.as_dict()) for i, row in enumerate(rows)]
    grown = _grown_window(window, entries, None, 2000, torch.device("cpu"), lambda entry: None)  # type: ignore[arg-type]
    assert [(i, r.name, r.status) for i, r in grown] == [(0, "m0", "ok"), (1, "m1", "error"), (2, "m2", "ok")]
    assert "ValueError: a bug" in grown[1][1].error


def test_a_rank_ends_with_its_exit_code_and_one_line_without_the_interpreter_teardown(tmp_path: Path) -> None:
    """Under torchrun (WORLD_SIZE > 1) the command line ends through os._exit, which must pass on the exit code: an
    error before any group forms is still its one line on stderr and exit code 3, and --help exits 0 with its text."""
    env = {**ENV, "WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}
    bad = subprocess.run(
        # on the CPU: on a machine with one GPU, local rank 1 has none of its own (a usage error, before the pool is read)
        [sys.executable, "-m", "suscli", "rank", str(tmp_path / "missing"), "-d", str(tmp_path), "--device", "cpu"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 3 and bad.stderr.strip().startswith("error:") and "Traceback" not in bad.stderr, bad.stderr
    helped = subprocess.run([sys.executable, "-m", "suscli", "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert helped.returncode == 0 and "Exit codes" in helped.stdout


@pytest.mark.parametrize("command", ["score", "track"])
def test_score_and_track_refuse_to_run_whole_in_every_process(tmp_path: Path, image_folder: Path, command: str) -> None:
    """Under torchrun score and track ran whole in every process: two reports on stdout, every row twice in the
    results file."""
    pool = make_pool(tmp_path / "pool", n=2)
    target = pool / "m0.safetensors" if command == "score" else pool
    env = {**ENV, "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    run = subprocess.run(
        [sys.executable, "-m", "suscli", command, str(target), "-d", str(image_folder), "--batches", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 2 and run.stdout == "", run.stderr
    assert run.stderr.strip().splitlines() == [
        f"error: suscli {command} does not split its work across processes, and torchrun started 2: each would measure "
        f"everything and write the same files (run suscli {command} without torchrun; suscli rank shares a pool among the processes)"
    ]


def test_demo_refuses_to_run_in_every_process(tmp_path: Path) -> None:
    """Under torchrun every process built the same demo folder at once: one replaced the images another was reading,
    and it ended in "internal error: FileNotFoundError"."""
    env = {**ENV, "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    out = tmp_path / "demo"
    run = subprocess.run(
        [sys.executable, "-m", "suscli", "demo", "--small", "--out", str(out)], capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 2 and run.stdout == "" and not out.exists(), run.stderr
    assert run.stderr.strip().splitlines() == [
        "error: suscli demo does not split its work across processes, and torchrun started 2: each would measure "
        "everything and write the same files (run suscli demo without torchrun; suscli rank shares a pool among the processes)"
    ]


def _listing_rank(rank: int, port: int, pool: str, late: str, images: str, out: str) -> None:
    """One of two ranks; rank 1 lists the pool after a new checkpoint, which sorts first, was written into it."""
    os.environ.update({"WORLD_SIZE": "2", "RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    entries = discover(Path(pool))
    if rank == 1:
        entries = [PoolEntry("a-new", Path(late)), *entries]
    options = {"settings": Settings(susceptibility=SusceptibilityConfig(batches=1, batch_size=8)), "device": torch.device("cpu")}
    with process_group(options["device"]):
        rows = audit_shards(World(rank, rank, 2), PoolRequest(entries, **options), unlabeled_source(images), None)
    if rows is not None:
        Path(out).write_text(json.dumps([(r.name, r.sha256) for r in rows]))


def test_ranks_measure_the_models_rank_0_listed(tmp_path: Path, image_folder: Path) -> None:
    """A checkpoint written between two ranks' listings shifted rank 1's indices: rank 0 received another model's row
    for its model, and would have stored it under that model's key."""
    pool = make_pool(tmp_path / "pool", n=3)
    late = suscli.save(tiny_cnn(), tmp_path / "late" / "a-new.safetensors", arch=ARCH, num_classes=3, image_size=8)
    expected = [(e.name, file_sha256(e.path)) for e in discover(pool)]
    out = tmp_path / "rows.json"
    torch.multiprocessing.spawn(_listing_rank, args=(free_port(), str(pool), str(late), str(image_folder), str(out)), nprocs=2)
    assert [tuple(pair) for pair in json.loads(out.read_text())] == expected


def test_only_rank_0_draws_progress(tmp_path: Path, image_folder: Path, monkeypatch) -> None:
    """Every rank drew its own progress bars on the terminal they share (seen with a TTY: rank 1's 'decode images'
    and 'susceptibility' bars over rank 0's)."""
    given: dict[str, object] = {}
    monkeypatch.setattr(suscli.run.rank, "rank", lambda *a, progress=None, **k: given.update({os.environ["RANK"]: progress}))
    pool = make_pool(tmp_path / "pool", n=2)
    for rank in ("0", "1"):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", rank)
        assert invoke("rank", pool, "-d", image_folder).exit_code == 0
    assert callable(given["0"]) and given["1"] is None


def _stopped_rank(rank: int, port: int, stop: str, out: str) -> None:
    """One of two ranks growing four rows; rank 0 stops (`stop`: Ctrl-C, or its results file cannot be written) once
    it holds the first round's rows, while rank 1 has gone on to the next round's gather."""
    os.environ.update({"WORLD_SIZE": "2", "RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    os.environ["SUSCLI_DIST_TIMEOUT"] = "30"
    rows = [Result(name=f"m{i}", path=f"m{i}.safetensors") for i in range(4)]
    request = PoolRequest([PoolEntry(r.name, Path(r.path)) for r in rows], Settings(), torch.device("cpu"))
    suscli.run.distributed._grown_window = lambda window, *a: [(i, Result.from_dict(data)) for i, data in window]

    def grow_pool(request, rows, sample, decide, grow):
        next(grow([0, 1, 2, 3], 2000))
        raise KeyboardInterrupt if stop == "interrupt" else InputError("cannot write results file")

    suscli.run.distributed.grow_pool = grow_pool
    started = time.perf_counter()
    try:
        with process_group(torch.device("cpu")):
            grow_shards(World(rank, rank, 2), request, rows if rank == 0 else None, None, lambda rows: None)  # type: ignore[arg-type]
        ended = "returned"
    except BaseException as e:
        ended = f"{type(e).__name__}: {e}"
    Path(f"{out}.{rank}").write_text(json.dumps([ended, time.perf_counter() - started]))


@pytest.mark.parametrize("stop", ["interrupt", "unwritable"])
def test_rank_0_stopping_mid_stage_ends_at_once_with_its_own_error(tmp_path: Path, stop: str) -> None:
    """Rank 0 sent its 'no more stages' message even when it stopped mid-stage: rank 1, waiting at that stage's gather,
    never matched it, so both waited out the timeout (a Ctrl-C under torchrun hung 30 s until torchrun killed them),
    and rank 0's own error (the interrupt, with what was kept; a results file it could not write) became 'lost
    contact with the other ranks'."""
    out = tmp_path / "ended"
    torch.multiprocessing.spawn(_stopped_rank, args=(free_port(), stop, str(out)), nprocs=2)
    (first, seconds), (other, _) = (json.loads(Path(f"{out}.{r}").read_text()) for r in (0, 1))
    expected = "KeyboardInterrupt: " if stop == "interrupt" else "InputError: cannot write results file"
    assert first == expected and seconds < 20
    assert other.startswith("InputError: lost contact with the other ranks")


def test_gpu_ranks_talk_over_gloo_where_torch_has_no_nccl(monkeypatch) -> None:
    """Windows' torch has no NCCL: asking for it was "lost contact with the other ranks: Distributed package doesn't
    have NCCL built in" at the start of every CUDA run."""
    dist = suscli.run.distributed.dist
    asked: list[str] = []
    monkeypatch.setattr(dist, "is_nccl_available", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: asked.append(backend))
    monkeypatch.setattr(dist, "barrier", lambda: None)
    monkeypatch.setattr(dist, "destroy_process_group", lambda: None)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    with process_group(torch.device("cuda", 0)):
        pass
    assert asked == ["gloo"]
