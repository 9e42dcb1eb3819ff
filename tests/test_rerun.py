"""Reruns of `rank` with the default results file: other settings are a rerun, not an error, and a read-only
model folder keeps its results in the cache folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import suscli.load.checkpoints
import suscli.run.audit
import suscli.run.pool
import suscli.run.store
from suscli.results import Result
from tests.conftest import invoke, tiny_cnn, write_images
from tests.test_cli_rank import make_pool, rank_json

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    return make_pool(tmp_path / "pool")


def test_results_of_an_earlier_way_of_reading_checkpoints_are_measured_again(
    pool: Path, image_folder: Path, train_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release that reads some checkpoint differently (suscli.run.audit.READING) does not reuse what an earlier one
    measured: the same file may now give other weights. The line says which setting differs."""
    monkeypatch.setattr(suscli.run.audit, "READING", suscli.run.audit.READING - 1)
    rank_json(pool, image_folder, train_folder)
    monkeypatch.undo()
    res, again = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0 and again["counts"]["reused"] == 0, res.output
    assert (
        "holds results of an earlier suscli, which read some checkpoints or class folders in another way: "
        "these settings are measured again beside them"
    ) in res.stderr


def measured_again(*args: object) -> str:
    """rank's stderr, after checking that it measured every model again (none reused) and exited 0."""
    res, doc = rank_json(*args)
    assert res.exit_code == 0 and doc["counts"]["reused"] == 0, res.output
    return res.stderr


def _as_written_by(results: Path, reading: int | None) -> None:
    """Rewrite `results` as a release with another checkpoint reading wrote it: `reading` in the key (None: the releases
    before the key held one, such as 2026-12-04's), and the fingerprint of that key."""
    records = [json.loads(line) for line in results.read_text().splitlines()]
    for r in records:
        if reading is None:
            del r["settings"]["reading"]
        else:
            r["settings"]["reading"] = reading
        r["fingerprint"] = suscli.run.store.fingerprint(r["settings"])
    results.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_an_explicit_results_file_of_an_earlier_release_is_measured_again_beside(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path
) -> None:
    """The same command rerun after an upgrade, with its --results file: measured again beside the earlier release's
    results with one line saying why, not refused as another experiment's (exit 2, with --fresh to delete them)."""
    results = tmp_path / "ci.jsonl"
    rank_json(pool, image_folder, train_folder, "--results", results)
    _as_written_by(results, None)
    assert (
        f"{results} holds results of an earlier suscli, which read some checkpoints or class folders in another way: "
        "these settings are measured again beside them"
    ) in measured_again(pool, image_folder, train_folder, "--results", results)
    assert rank_json(pool, image_folder, train_folder, "--results", results)[1]["counts"]["reused"] == 4
    res, _ = rank_json(pool, image_folder, train_folder, "--results", results, "--lr", "0.5")
    assert res.exit_code == 2 and "holds results measured with other parameters" in res.stderr


def test_results_of_a_newer_release_are_not_reused_nor_misread(pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path) -> None:
    """A results file written by a later release (a higher checkpoint reading): the default file keeps them beside this
    release's own, saying whose they are; an explicit --results of them alone is refused without offering --fresh,
    which would delete them."""
    rank_json(pool, image_folder, train_folder)
    default = pool / "suscli-results.jsonl"
    _as_written_by(default, suscli.run.audit.READING + 1)
    kept = default.read_text()
    assert (
        f"{default} holds results of a newer suscli, which this one does not reuse: these settings start their own results beside them"
    ) in measured_again(pool, image_folder, train_folder)
    assert default.read_text().startswith(kept)
    explicit = tmp_path / "newer.jsonl"
    explicit.write_text(kept)
    res, _ = rank_json(pool, image_folder, train_folder, "--results", explicit)
    assert res.exit_code == 2 and explicit.read_text() == kept
    assert (
        f"error: results file {explicit} holds results of a newer suscli, which this one cannot reuse "
        "(upgrade suscli to reuse them, or pass --results NEW.jsonl)"
    ) in res.stderr
    records = [json.loads(line) for line in kept.splitlines()]
    for r in records:  # a later scheme of data identities, under this release's reading
        r["settings"]["reading"] = suscli.run.audit.READING
        r["settings"]["unlabeled_data"], r["settings"]["train_data"] = "v9:0123456789abcdef", "v9:fedcba9876543210"
        r["fingerprint"] = suscli.run.store.fingerprint(r["settings"])
    explicit.write_text("".join(json.dumps(r) + "\n" for r in records))
    res, _ = rank_json(pool, image_folder, train_folder, "--results", explicit)
    assert res.exit_code == 2 and "holds results of a newer suscli (--train-data, --data differ)" in res.stderr


def test_a_touched_image_says_why_the_same_data_option_differs(pool: Path, image_folder: Path, train_folder: Path) -> None:
    """An image touched (a checkout, a copy that did not keep times) under the same --data: the line said "(--data
    differs)" of the very option the user passed unchanged, with no word of what makes two sets of images one, which
    the refusal of an explicit --results says."""
    assert rank_json(pool, image_folder, train_folder)[0].exit_code == 0
    image = next(image_folder.iterdir())
    os.utime(image, (image.stat().st_atime, image.stat().st_mtime + 10))
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0 and doc["counts"]["reused"] == 0, res.output
    assert (
        "holds results of other settings (--data differs): images are the same data only as the same files (sizes, "
        "modification times) in their order, which draws the random labels; these settings start their own results beside them"
    ) in res.stderr, res.stderr


def test_labelled_images_given_another_way_say_what_makes_two_training_sets_one(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path
) -> None:
    """The training images of the class folders listed in a CSV of class names, in the same order: the line said they
    were the same data only as the same files in their order "which draws the random labels", which the training set
    does not draw, and nothing of the labels, which were what differed."""
    assert rank_json(pool, image_folder, train_folder)[0].exit_code == 0
    names = tmp_path / "train.csv"
    names.write_text("path,label\n" + "".join(f"{p},{p.parent.name}\n" for p in sorted(train_folder.rglob("*.png"))))
    res, _ = rank_json(pool, image_folder, names)
    assert res.exit_code == 0, res.output
    assert (
        "(--train-data differs): labelled images are the same data only as the same files (sizes, modification times) in "
        "their order, with the same labels given the same way (class folders, ids or names); these settings start"
    ) in res.stderr, res.stderr


def test_the_default_results_file_keeps_each_set_of_settings(pool: Path, image_folder: Path, train_folder: Path) -> None:
    """Changing a setting and back measures nothing twice, and each switch is said in one line."""
    first = rank_json(pool, image_folder, train_folder)[1]
    res, other = rank_json(pool, image_folder, train_folder, "--train-samples", "9")
    assert res.exit_code == 0 and other["counts"]["reused"] == 0, res.output
    assert (
        f"{pool / 'suscli-results.jsonl'} holds results of other settings (--train-data, --train-samples differ): these settings start their own results beside them"
        in res.stderr
    )
    res, again = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0 and again["counts"]["reused"] == 4
    assert (
        "holds 4 results of these settings, reused for the models they match" in res.stderr
        and "(--train-data, --train-samples differ)" in res.stderr
    )
    assert [r["susceptibility"] for r in again["results"]] == [r["susceptibility"] for r in first["results"]]
    assert len((pool / "suscli-results.jsonl").read_text().splitlines()) == 8
    # a sample as large as the set is the set: the same results, reused (it was measured again)
    res, whole = rank_json(pool, image_folder, train_folder, "--samples", "100000")
    assert res.exit_code == 0 and whole["counts"]["reused"] == 4, res.output
    # the line names what differs from the nearest other settings, not from the last ones written (train-samples 9)
    res, _ = rank_json(pool, image_folder, train_folder, "--seed", "1")
    assert "holds results of other settings (--seed differs)" in res.stderr, res.stderr


def test_a_rerun_says_how_many_models_it_took_from_the_results_file(pool: Path, image_folder: Path, train_folder: Path) -> None:
    """A rerun, or a run resumed after Ctrl-C, said nothing of the results it took: one that measured nothing read as
    one that measured every model (only the JSON's counts told)."""
    results = pool / "suscli-results.jsonl"
    res, _ = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0 and "taken from the results file" not in res.stderr, res.output
    res, _ = rank_json(pool, image_folder, train_folder)
    line = (
        f"4 of 4 models taken from the results file {results}, where an earlier run with these settings measured them; "
        "none measured now (--fresh measures every one again)"
    )
    assert res.exit_code == 0 and line in res.stderr.splitlines(), res.stderr
    kept = results.read_text().splitlines()
    results.write_text("\n".join(kept[:3]) + "\n")  # as a run stopped after its third model leaves it
    res, doc = rank_json(pool, image_folder, train_folder)
    assert doc["counts"]["reused"] == 3 and f"3 of 4 models taken from the results file {results}" in res.stderr
    assert "; 1 measured now (--fresh measures every one again)" in res.stderr
    res, doc = rank_json(pool, image_folder, train_folder, "--fresh")
    assert doc["counts"]["reused"] == 0 and "taken from the results file" not in res.stderr


def read_only(folder: Path, command: list[str]) -> list[str]:
    """`command` run with `folder` read-only: a private read-only bind mount for root (whom permission bits do not
    stop), the permission bits for anyone else."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return command
    if shutil.which("unshare") is None:
        pytest.skip("root needs unshare(1) to make a folder read-only")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return ["unshare", "--mount", "sh", "-c", script, str(folder), *command]


def test_a_read_only_model_folder_keeps_its_results_in_the_cache_folder(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    args = [
        "rank",
        str(pool),
        "-d",
        str(image_folder),
        "--train-data",
        str(train_folder),
        "--batches",
        "1",
        "--batch-size",
        "8",
        "--cache-dir",
        str(cache),
        "-f",
        "json",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    try:
        res = subprocess.run(read_only(pool, [sys.executable, "-m", "suscli", *args]), env=env, capture_output=True, text=True, timeout=300)
    finally:
        pool.chmod(0o755)  # writable again, for pytest to clean up (and for the in-process run below to be pretended)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    kept = list((cache / "results").glob("pool-*.jsonl"))
    assert len(kept) == 1 and len(kept[0].read_text().splitlines()) == 4
    assert f"{pool} cannot be written: results are kept in {kept[0]}" in res.stderr
    assert not (pool / "suscli-results.jsonl").exists()
    # The next run finds the same file: here in-process, where only the folder's writability is pretended.
    monkeypatch.setattr(suscli.run.store, "writable", lambda folder: False)
    again = invoke(*args)
    assert again.exit_code == 0 and json.loads(again.stdout)["counts"]["reused"] == 4
    assert json.loads(again.stdout)["results_file"] == str(kept[0])


def test_a_pool_measured_before_its_folder_became_read_only_reuses_its_own_results(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool measured while its folder could be written, then mounted read-only (a shared model store): its own
    results file was ignored for the empty one in the cache folder, and every model measured again."""
    args = ["rank", str(pool), "-d", str(image_folder), "--train-data", str(train_folder), "--batches", "1", "--batch-size", "8"]
    args += ["--cache-dir", str(tmp_path / "cache"), "-f", "json"]
    first = invoke(*args)
    assert first.exit_code == 0 and json.loads(first.stdout)["counts"]["reused"] == 0
    monkeypatch.setattr(suscli.run.store, "writable", lambda folder: False)  # the folder, read-only from now on
    again = invoke(*args)
    report = json.loads(again.stdout)
    assert again.exit_code == 0 and report["counts"]["reused"] == report["counts"]["models"] == 4
    assert report["results_file"] != str(pool / "suscli-results.jsonl")
    assert f"starting from the results in {pool / 'suscli-results.jsonl'}" in again.stderr
    assert "starting from" not in invoke(*args).stderr  # the cache's file, once made, is the one read


def test_a_read_only_pool_at_another_path_reuses_the_results_of_a_restored_cache_folder(
    pool: Path,
    image_folder: Path,
    train_folder: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read-only pool's results live in the cache folder under a name of the pool's absolute path: a CI job whose
    checkout lies elsewhere (a GitLab runner's `/builds/.../1/...` after `.../0/...`) with the cache folder restored
    found no file of that name, and measured every model again."""
    writable = suscli.run.store.writable
    monkeypatch.setattr(suscli.run.store, "writable", lambda folder: folder.name != "pool" and writable(folder))  # a read-only mount
    cache = tmp_path_factory.mktemp("ci-cache") / "suscli"
    res, first = rank_json(pool, image_folder, train_folder, "--cache-dir", cache)
    assert res.exit_code == 0 and first["counts"]["reused"] == 0, res.stderr
    moved = tmp_path_factory.mktemp("other-runner") / "checkout"
    shutil.copytree(tmp_path, moved, symlinks=True)  # copy2: the files keep their modification times
    restored = tmp_path_factory.mktemp("restored") / "suscli"
    shutil.copytree(cache, restored)
    (kept,) = (restored / "results").glob("pool-*.jsonl")  # the file of the restored cache, named by the first path
    res, doc = rank_json(moved / "pool", moved / "unlabeled", moved / "train", "--cache-dir", restored)
    assert res.exit_code == 0 and doc["counts"]["reused"] == doc["counts"]["models"] == 4, res.stderr
    assert [r["susceptibility"] for r in doc["results"]] == [r["susceptibility"] for r in first["results"]]
    assert "starting from the results in" in res.stderr and str(kept) in res.stderr


def test_a_rerun_from_another_folder_or_a_moved_checkout_reuses_every_result(
    pool: Path,
    image_folder: Path,
    train_folder: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The data's identity is what the sets hold (names under their root, sizes, modification times), not the paths as
    typed: the same command from inside the checkout, with absolute paths, or in a copy of the checkout elsewhere (a CI
    runner's new path, files copied with their times) measures nothing again."""
    monkeypatch.chdir(tmp_path)
    first = rank_json(Path("pool"), Path("unlabeled"), Path("train"))[1]
    assert first["counts"]["reused"] == 0
    monkeypatch.chdir(pool)
    runs = [rank_json(Path("."), Path("../unlabeled"), Path("../train")), rank_json(pool, image_folder, train_folder)]
    moved = tmp_path_factory.mktemp("other-runner") / "checkout"
    shutil.copytree(tmp_path, moved, symlinks=True)  # copy2: the files keep their modification times
    monkeypatch.chdir(moved)
    runs.append(rank_json(Path("pool"), Path("unlabeled"), Path("train")))
    for res, doc in runs:
        assert res.exit_code == 0 and doc["counts"]["reused"] == 4, res.output
        assert "other settings" not in res.stderr, res.stderr
        assert [r["susceptibility"] for r in doc["results"]] == [r["susceptibility"] for r in first["results"]]
    assert len((moved / "pool" / "suscli-results.jsonl").read_text().splitlines()) == 4
    # A changed image is other data: measured again. The identity keeps whole seconds (tar and zip copies keep no
    # more), so the edit is dated a second after the file's time, as any edit made after the first run would be.
    edited = moved / "train" / "class_0" / "img_000.png"
    stamp = edited.stat().st_mtime
    edited.write_bytes((moved / "train" / "class_1" / "img_000.png").read_bytes())
    os.utime(edited, (stamp + 1, stamp + 1))
    res, doc = rank_json(Path("pool"), Path("unlabeled"), Path("train"))
    assert doc["counts"]["reused"] == 0 and "(--train-data differs)" in res.stderr


def test_a_list_of_a_folders_images_in_its_order_is_the_same_data(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path
) -> None:
    """`-d unlabeled/` and then `-d list.txt` naming the folder's images in the order suscli reads them (sorted by path),
    the list beside the folder: the same images in the same order give the same numbers, but the list's files were
    named from its own folder ("unlabeled/img_000.png", not "img_000.png") and an explicit --results refused the rerun,
    "(--data differs)". Another order is other data (it draws other random labels), refused saying that order counts."""
    results = tmp_path / "r.jsonl"
    first = rank_json(pool, image_folder, train_folder, "--results", results)[1]
    images = sorted(image_folder.iterdir())
    beside, inside = tmp_path / "list.txt", image_folder / "list.txt"
    beside.write_text("".join(f"{image_folder.name}/{p.name}\n" for p in images))
    inside.write_text("".join(f"{p.name}\n" for p in images))
    for listed in (beside, inside):
        res, doc = rank_json(pool, listed, train_folder, "--results", results)
        assert res.exit_code == 0 and doc["counts"]["reused"] == 4, res.output
        assert [r["susceptibility"] for r in doc["results"]] == [r["susceptibility"] for r in first["results"]]
    beside.write_text("".join(f"{image_folder.name}/{p.name}\n" for p in reversed(images)))
    res, _ = rank_json(pool, beside, train_folder, "--results", results)
    assert res.exit_code == 2 and "(--data differs)" in res.stderr, res.output
    assert "their order" in res.stderr, res.stderr


def test_results_keyed_by_the_list_files_folder_are_still_reused(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Results files written while a set's files were named from the folder listed, or the list file's folder, keep
    their rows: a list beside its images (or a folder whose images all lie in one subfolder) is now named from the
    folder holding them all, and a rerun after the upgrade measured every model again, or with --results was refused."""
    results = tmp_path / "r.jsonl"
    listed = tmp_path / "list.txt"
    listed.write_text("".join(f"{image_folder.name}/{p.name}\n" for p in sorted(image_folder.iterdir())))
    monkeypatch.setattr(suscli.run.audit, "_common_folder", lambda source: suscli.run.audit._root(source.origin))
    assert rank_json(pool, listed, train_folder, "--results", results)[1]["counts"]["reused"] == 0
    monkeypatch.undo()
    res, doc = rank_json(pool, listed, train_folder, "--results", results)
    assert res.exit_code == 0 and doc["counts"]["reused"] == 4, res.output
    assert "other settings" not in res.stderr, res.stderr


def test_results_of_an_earlier_suscli_that_keyed_data_by_path_are_measured_again(
    pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path
) -> None:
    """A results file written before the data's identity ignored its paths holds the paths' hashes: the same settings
    are measured again beside them, with one line saying why, even under an explicit --results (not refused)."""
    results = tmp_path / "old.jsonl"
    rank_json(pool, image_folder, train_folder, "--results", results)
    records = [json.loads(line) for line in results.read_text().splitlines()]
    for r in records:  # as the earlier version wrote them: 16 hex digits of a hash that included the typed paths
        r["settings"]["unlabeled_data"], r["settings"]["train_data"] = "0123456789abcdef", "fedcba9876543210"
        r["fingerprint"] = "00000000aaaaaaaa"
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert (
        f"{results} holds results of an earlier suscli, which identified the images by their paths as typed "
        "(--train-data, --data differ): these settings are measured again beside them"
    ) in measured_again(pool, image_folder, train_folder, "--results", results)
    again = rank_json(pool, image_folder, train_folder, "--results", results)[1]
    assert again["counts"]["reused"] == 4


def test_an_architecture_file_is_keyed_by_its_contents(
    tmp_path: Path, image_folder: Path, train_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--arch nets.py:factory` from another folder is the same architecture; an edited nets.py is not."""
    (tmp_path / "nets.py").write_text("from tests.conftest import tiny_cnn as net\n")
    (tmp_path / "pool").mkdir()
    for i in range(3):
        torch.manual_seed(i)
        torch.save(tiny_cnn().state_dict(), tmp_path / "pool" / f"m{i}.pt")  # plain state dicts: they need --arch
    monkeypatch.syspath_prepend(str(REPO))  # nets.py imports the tests' model
    monkeypatch.chdir(tmp_path)
    assert rank_json(Path("pool"), image_folder, train_folder, "--arch", "nets.py:net", "--image-size", "8")[1]["counts"]["reused"] == 0
    monkeypatch.chdir(tmp_path / "pool")
    res, doc = rank_json(Path("."), image_folder, train_folder, "--arch", "../nets.py:net", "--image-size", "8")
    assert doc["counts"]["reused"] == 3 and "other settings" not in res.stderr, res.output
    (tmp_path / "nets.py").write_text("from tests.conftest import tiny_cnn as net  # edited\n")
    res, doc = rank_json(Path("."), image_folder, train_folder, "--arch", "../nets.py:net", "--image-size", "8")
    assert doc["counts"]["reused"] == 0 and "(--arch differs)" in res.stderr, res.output


def test_results_of_the_releases_before_seeded_random_ops_and_refused_outputs_are_measured_again(
    tmp_path: Path, image_folder: Path, train_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The releases of reading 13 drew a forward's own random ops (a functional dropout) from wherever the global RNG
    stood, measured a sigmoid's probabilities, a forward that cuts the gradient and a timm model at its pretrained size:
    numbers this release computes otherwise, or refuses. Their rows are measured again, not reused."""
    (tmp_path / "nets.py").write_text(
        "import torch.nn.functional as F\n"
        "from torch import nn\n"
        "from tests.conftest import tiny_cnn\n\n\n"
        "class Drop(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.net = tiny_cnn()\n\n"
        "    def forward(self, x):\n"
        "        return F.dropout(self.net(x), 0.5, training=True)\n"
    )
    monkeypatch.syspath_prepend(str(REPO))  # nets.py imports the tests' model
    monkeypatch.syspath_prepend(str(tmp_path))
    from nets import Drop  # type: ignore[import-not-found]

    (tmp_path / "pool").mkdir()
    for i in range(3):
        torch.manual_seed(i)
        torch.save(Drop().state_dict(), tmp_path / "pool" / f"m{i}.pt")
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "r.jsonl"
    args = (Path("pool"), image_folder, train_folder, "--arch", "nets.py:Drop", "--image-size", "8", "--results", results)
    first = rank_json(*args)[1]
    records = [json.loads(line) for line in results.read_text().splitlines()]
    for r in records:  # the loop's RNG gave another draw
        r["result"]["susceptibility"] += 0.5
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    _as_written_by(results, 13)
    res, again = rank_json(*args)
    assert res.exit_code == 0 and again["counts"]["reused"] == 0, res.output
    assert "holds results of an earlier suscli" in res.stderr
    assert [r["susceptibility"] for r in again["results"]] == [r["susceptibility"] for r in first["results"]]


def test_results_stored_without_the_untrained_reading_the_verdict_needs_are_measured_again(
    pool: Path, train_folder: Path, tmp_path: Path
) -> None:
    """A results file of a version before the architecture guard holds rows above the low cut without their network's
    untrained reading: those are measured again (and get it), the others reused, so the verdict never judges a stored
    row by cuts whose domain it could not check."""
    unlabeled = tmp_path / "many"
    write_images(unlabeled, 40)  # a full batch of 32: the default step, where the fixed cuts apply
    results = tmp_path / "r.jsonl"
    step = ("--batch-size", "32", "--batches", "4")  # the default step (rank_json's own is a small, faster one)
    first = rank_json(pool, unlabeled, train_folder, *step, "--results", results)[1]
    wanting = {r["name"] for r in first["results"] if "untrained" in r["details"]}
    assert 0 < len(wanting) < 4, [r["susceptibility"] for r in first["results"]]
    records = [json.loads(line) for line in results.read_text().splitlines()]
    for r in records:  # as the earlier version wrote them
        r["result"]["details"].pop("untrained", None)
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    res, again = rank_json(pool, unlabeled, train_folder, *step, "--results", results)
    assert res.exit_code == 0 and again["counts"]["reused"] == 4 - len(wanting), res.output
    assert {r["name"] for r in again["results"] if "untrained" in r["details"]} == wanting
    assert len(results.read_text().splitlines()) == 4 + len(wanting)  # only those measured again, and kept


def test_the_settings_that_differ_are_named_as_the_options_that_set_them() -> None:
    """The stored names (susceptibility.lr, val_numbering) were shown as they are stored; a release's own number names
    no option and is left to the line's own words ("an earlier suscli")."""
    from suscli.run.store import differ

    keys = ["reading", "susceptibility.batch_size", "susceptibility.lr", "train_data", "unlabeled_data", "val_data", "val_numbering"]
    assert differ(keys, release=False) == " (--batch-size, --lr, --train-data, --data, --val-data differ)"
    assert differ(["device_type"]) == " (--device differs)"
    assert differ(["reading", "val_numbering"], release=False) == ""
    assert differ(["val_numbering"]) == " (the release's numbering of held-out classes differs)"
    # --val-data added or dropped: the numbering is stored with it, so only --val-data differs
    assert differ(["val_data", "val_numbering"]) == " (--val-data differs)"


def strict_json(line: str) -> dict:
    """The line as a strict JSON parser (jq, JavaScript's JSON.parse, Go) reads it: NaN and Infinity are no JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_a_results_file_of_one_batch_is_strict_json_and_reused(pool: Path, image_folder: Path, train_folder: Path, tmp_path: Path) -> None:
    """One batch has no standard error (nan), which the results file wrote as NaN: jq and JSON.parse refused the line.
    It is written as null, and read back as the nan it was, by rank and track alike."""
    from tests.test_track import make_run

    results = tmp_path / "r.jsonl"
    args = ("-d", image_folder, "--train-data", train_folder, "--batches", "1", "--batch-size", "8", "-f", "json")
    first = invoke("rank", pool, *args, "--results", results)
    assert first.exit_code == 0 and all(r["susceptibility_sem"] is None for r in json.loads(first.stdout)["results"]), first.output
    records = [strict_json(line) for line in results.read_text().splitlines()]
    assert len(records) == 4 and all(r["result"]["susceptibility_sem"] is None for r in records)
    again = invoke("rank", pool, *args, "--results", results)
    assert again.exit_code == 0 and json.loads(again.stdout)["counts"]["reused"] == 4, again.output
    assert [r["susceptibility"] for r in json.loads(again.stdout)["results"]] == [
        r["susceptibility"] for r in json.loads(first.stdout)["results"]
    ]
    run = make_run(tmp_path / "run")
    track = [invoke("track", run, *args) for _ in range(2)]
    assert all(res.exit_code == 0 for res in track), track[0].output
    assert len([strict_json(line) for line in (run / "suscli-results.jsonl").read_text().splitlines()]) == 4
    reused, *rest = track[1].stderr.splitlines()
    assert json.loads(track[1].stdout)["counts"]["reused"] == 4 and rest == track[0].stderr.splitlines()
    assert reused.startswith("4 of 4 epochs taken from the results file ")  # the one line a rerun adds


def test_numbers_that_are_not_finite_come_back_from_the_results_file_as_they_were_measured(tmp_path: Path) -> None:
    """NaN and infinities are null in the line, and read back as the same floats (a stored nan read as None would
    change what reads it: an untrained reading of nan is not an absent one); a line written with NaN literals, as
    earlier releases did, reads as before."""
    import math

    from suscli.errors import InputError
    from suscli.results import Result
    from suscli.run.store import ResultStore
    from suscli.views.frames import load_results

    measured = Result(
        "m",
        "m.pt",
        susceptibility=0.5,
        susceptibility_sem=math.nan,
        details={"untrained": {"susceptibility": math.nan}, "r": [0.5, math.inf, -math.inf]},
    )
    new, old = tmp_path / "new.jsonl", tmp_path / "old.jsonl"
    ResultStore(new, "fp", {}).append("k", measured)
    record = strict_json(new.read_text())
    assert record["result"]["susceptibility_sem"] is None and record["result"]["details"]["r"] == [0.5, None, None]
    old.write_text(json.dumps({"fingerprint": "fp", "key": "k", "settings": {}, "result": measured.as_dict()}) + "\n")
    assert "NaN" in old.read_text()
    for path in (new, old):
        back = ResultStore(path, "fp", {}).get("k")
        assert back is not None and back.susceptibility == 0.5 and math.isnan(back.susceptibility_sem)
        assert math.isnan(back.details["untrained"]["susceptibility"]) and back.details["r"][1:] == [math.inf, -math.inf]
        assert math.isnan(load_results(path).susceptibility_sem[0])
    record["not_finite"] = [[["result", "name"], "NaN"]]  # edited by hand: a place that holds no null
    new.write_text(json.dumps(record) + "\n")
    with pytest.raises(InputError, match=r"line 1 is not a row suscli writes: not_finite is \[\[\['result', 'name'\], 'NaN'\]\]"):
        ResultStore(new, "fp", {})


def test_each_checkpoint_is_read_for_its_digest_once_a_run(
    pool: Path, image_folder: Path, train_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run hashes every checkpoint to look up its stored results, and again as it loads it: the file was read twice
    whole (a second full read of every model of a pool). The bytes are read once; a file written again is read again."""
    read: list[Path] = []
    real = suscli.load.checkpoints._read_digest
    monkeypatch.setattr(suscli.load.checkpoints, "_read_digest", lambda p: read.append(p) or real(p))
    monkeypatch.setattr(suscli.load.checkpoints, "_DIGESTS", {})
    res, first = rank_json(pool, image_folder, train_folder)
    models = sorted(pool.glob("*.safetensors"))
    assert res.exit_code == 0 and len(models) == 4 and sorted(read) == models, (res.output, read)
    changed = models[0]
    changed.write_bytes(changed.read_bytes())  # the same bytes, written again: a new identity, read again
    read.clear()
    res, again = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0 and read == [changed] and again["counts"]["reused"] == 4, (res.output, read)


def test_an_edited_sidecar_measures_its_model_again(pool: Path, image_folder: Path, train_folder: Path) -> None:
    """A .suscli.json sidecar decides a checkpoint's architecture and preprocessing (its mean and std here; the resize a
    Hugging Face note asks to put in it), but a model was keyed by its checkpoint's bytes alone: the rerun after an edit
    reused the row measured with the old mean, silently. The sidecar's bytes are in the key; models without one keep
    theirs, so that their results are reused as before."""
    first, doc = rank_json(pool, image_folder, train_folder)
    assert first.exit_code == 0 and doc["counts"]["reused"] == 0, first.output
    (pool / "m0.suscli.json").write_text(json.dumps({"mean": [0.2, 0.2, 0.2], "std": [0.5, 0.5, 0.5]}))
    res, again = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0 and again["counts"]["reused"] == 3, res.output
    row = next(r for r in again["results"] if r["name"] == "m0")
    assert row["details"]["preprocess"]["mean"] == [0.2, 0.2, 0.2] and not row["details"].get("reused")
    res, third = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0 and third["counts"]["reused"] == 4, res.output


def test_a_model_with_no_files_beside_it_keeps_the_key_of_earlier_releases(pool: Path) -> None:
    """Results files already written key a model by its bytes and the architecture asked for: a model with no sidecar
    and no file its layout reads beside it keeps exactly that key, so that its stored results are reused."""
    path = pool / "m0.safetensors"
    key = suscli.run.audit.model_key(suscli.run.pool.PoolEntry("m0", path))
    assert key == f"{suscli.load.checkpoints.file_sha256(path)}::[]"


@pytest.mark.parametrize("named_by", ["manifest", "metadata", "sidecar"])
def test_an_edited_architecture_file_a_model_names_measures_it_again(
    tmp_path: Path, image_folder: Path, train_folder: Path, monkeypatch: pytest.MonkeyPatch, named_by: str
) -> None:
    """A `nets.py:factory` architecture named by a manifest entry, a checkpoint's metadata (suscli.save) or its sidecar
    is built from that file, but the model was keyed by the spec as written: a rerun after an edit of nets.py (here the
    logits tripled, the weights the same) reused the rows measured with the old network, silently."""
    nets = tmp_path / "pool" / "nets.py"
    nets.parent.mkdir()
    nets.write_text("from tests.conftest import tiny_cnn as net\n")
    entries = []
    for i in range(2):
        torch.manual_seed(i)
        path = tmp_path / "pool" / f"m{i}.safetensors"
        suscli.save(tiny_cnn(), path, arch="nets.py:net" if named_by == "metadata" else "tests.conftest:tiny_cnn", image_size=8)
        if named_by == "sidecar":
            (tmp_path / "pool" / f"m{i}.suscli.json").write_text(json.dumps({"arch": "nets.py:net"}))
        entries.append({"path": path.name, "arch": "nets.py:net"})
    pool: Path = tmp_path / "pool"
    if named_by == "manifest":
        pool = tmp_path / "pool" / "models.json"
        pool.write_text(json.dumps(entries))
    monkeypatch.syspath_prepend(str(REPO))  # nets.py imports the tests' model
    # a file the checkpoint names is imported only when trusted; one the user's manifest names is the user's
    results = ("--results", tmp_path / "r.jsonl", *(() if named_by == "manifest" else ("--trust-checkpoint",)))
    first = rank_json(pool, image_folder, train_folder, *results)[1]
    assert first["counts"] == {"models": 2, "scored": 2, "failed": 0, "reused": 0}
    nets.write_text(
        "import torch\nfrom tests.conftest import tiny_cnn\n\n\nclass Triple(torch.nn.Module):\n"
        "    def forward(self, x):\n        return 3 * x\n\n\n"
        "def net(num_classes=3):\n    return torch.nn.Sequential(*tiny_cnn(num_classes), Triple())\n"
    )
    res, again = rank_json(pool, image_folder, train_folder, *results)
    assert res.exit_code == 0 and again["counts"] == {"models": 2, "scored": 2, "failed": 0, "reused": 0}, res.output
    assert [r["susceptibility"] for r in again["results"]] != [r["susceptibility"] for r in first["results"]]
    assert rank_json(pool, image_folder, train_folder, *results)[1]["counts"]["reused"] == 2


HEAD = "import torch\n\n\nclass Head(torch.nn.Module):\n    def forward(self, x):\n        return {}\n"


def _repo(root: Path, form: str) -> str:
    """A model repository whose network is built in one module and its head in another it imports; the spec naming it."""
    if form == "file":
        (root / "blocks.py").write_text(HEAD.format("x"))
        (root / "nets.py").write_text(
            "import torch\nfrom blocks import Head\nfrom tests.conftest import tiny_cnn\n\n\n"
            "def net(num_classes=3):\n    return torch.nn.Sequential(*tiny_cnn(num_classes), Head())\n"
        )
        return str(root / "nets.py") + ":net"
    (root / "mynets").mkdir()
    (root / "mynets" / "__init__.py").write_text("")
    (root / "mynets" / "blocks.py").write_text(HEAD.format("x"))
    (root / "mynets" / "models.py").write_text(
        "import torch\nfrom .blocks import Head\nfrom tests.conftest import tiny_cnn\n\n\n"
        "def net(num_classes=3):\n    return torch.nn.Sequential(*tiny_cnn(num_classes), Head())\n"
    )
    return "mynets.models:net"


def _blocks(root: Path) -> Path:
    return next(root.rglob("blocks.py"))


def _forget(prefix: str) -> None:
    """Drop a package imported by an earlier run of this process, as a new process would not have it."""
    for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
        del sys.modules[name]


@pytest.mark.parametrize("form", ["file", "package"])
def test_an_edited_module_the_architecture_imports_measures_its_models_again(
    tmp_path: Path, image_folder: Path, train_folder: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    """`--arch nets.py:net` whose nets.py imports blocks.py, or `--arch mynets.models:net` from a local package (a folder
    on PYTHONPATH, an editable install): the model was keyed by nets.py's bytes or the spec alone, so a rerun after an
    edit of blocks.py (the head triples the logits) reused the rows of the old network, silently. The sources the
    building imported are recorded with the row; an edited one measures its model again, once."""
    repo = tmp_path / "repo"
    repo.mkdir()
    spec = _repo(repo, form)
    (tmp_path / "pool").mkdir()
    for i in range(2):
        torch.manual_seed(i)
        torch.save(tiny_cnn().state_dict(), tmp_path / "pool" / f"m{i}.pt")
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.syspath_prepend(str(repo))
    monkeypatch.chdir(repo)
    args = (tmp_path / "pool", image_folder, train_folder, "--arch", spec, "--image-size", "8", "--results", tmp_path / "r.jsonl")
    first = rank_json(*args)[1]
    assert first["counts"]["reused"] == 0
    recorded = first["results"][0]["details"]["arch_sources"]
    expected = {"blocks.py", "nets.py"} if form == "file" else {"mynets/__init__.py", "mynets/blocks.py", "mynets/models.py"}
    assert expected <= {f["file"] for f in recorded}, recorded
    _blocks(repo).write_text(HEAD.format("3 * x"))
    _forget("mynets")
    res, again = rank_json(*args)
    assert res.exit_code == 0 and again["counts"]["reused"] == 0, res.output
    assert [r["susceptibility"] for r in again["results"]] != [r["susceptibility"] for r in first["results"]]
    blocks = "blocks.py" if form == "file" else "mynets/blocks.py"
    assert f"measured again: {blocks} changed since the stored result" in again["results"][0]["notes"]
    _forget("mynets")
    res, third = rank_json(*args)
    assert res.exit_code == 0 and third["counts"]["reused"] == 2, res.output
    assert not any(n.startswith("measured again") for r in third["results"] for n in r["notes"])


def test_results_stored_without_their_architectures_sources_are_reused_as_before(
    tmp_path: Path, image_folder: Path, train_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A results file written before the sources were recorded keeps being reused: nothing says what was imported."""
    repo = tmp_path / "repo"
    repo.mkdir()
    spec = _repo(repo, "file")
    (tmp_path / "pool").mkdir()
    torch.save(tiny_cnn().state_dict(), tmp_path / "pool" / "m0.pt")
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.chdir(repo)
    results = tmp_path / "r.jsonl"
    args = (tmp_path / "pool", image_folder, train_folder, "--arch", spec, "--image-size", "8", "--results", results)
    assert rank_json(*args)[1]["counts"]["reused"] == 0
    records = [json.loads(line) for line in results.read_text().splitlines()]
    for r in records:
        del r["result"]["details"]["arch_sources"]
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    _blocks(repo).write_text(HEAD.format("3 * x"))
    res, again = rank_json(*args)
    assert res.exit_code == 0 and again["counts"]["reused"] == 1, res.output


def test_a_rerun_under_torchrun_measures_a_model_whose_sources_changed_again(
    tmp_path: Path, image_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rank 0 of a torchrun run reuses stored rows as audit_pool does (suscli.run.audit.cached_row): an edited module
    of the architecture measures the model again there too, with the note."""
    from suscli.data.images import unlabeled_source
    from suscli.measure.susceptibility import SusceptibilityConfig
    from suscli.run.audit import PoolRequest
    from suscli.run.distributed import audit_shards, process_group
    from suscli.run.launch import World
    from suscli.run.settings import Settings
    from suscli.run.store import ResultStore
    from tests.test_distributed import free_port

    for name, value in {"WORLD_SIZE": "1", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}.items():
        monkeypatch.setenv(name, value)
    repo = tmp_path / "repo"
    repo.mkdir()
    spec = _repo(repo, "file")
    torch.save(tiny_cnn().state_dict(), tmp_path / "m0.pt")
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.chdir(repo)
    entries = [suscli.run.pool.PoolEntry("m0", tmp_path / "m0.pt", arch=spec)]
    options = {"settings": Settings(susceptibility=SusceptibilityConfig(batches=1, batch_size=8)), "device": torch.device("cpu")}

    def run() -> Result:
        store = ResultStore(tmp_path / "r.jsonl", "fp", {})
        with process_group(options["device"]):
            rows = audit_shards(World(0, 0, 1), PoolRequest(entries, **options, store=store), unlabeled_source(image_folder), None)
        assert rows is not None
        return rows[0]

    assert not run().reused and run().reused
    _blocks(repo).write_text(HEAD.format("3 * x"))
    again = run()
    assert not again.reused and "measured again: blocks.py changed since the stored result" in again.notes
    assert run().reused


def test_the_reused_line_of_one_model_calls_it_it() -> None:
    """A rerun of a pool of one said "1 of 1 model taken from the results file F, where an earlier run with these
    settings measured them": the pronoun is of the models taken, one here."""
    from types import SimpleNamespace

    from suscli.run.inputs import reused_line

    def row(name: str, reused: bool) -> Result:
        return Result(name=name, path=name, status="ok", details={"reused": True} if reused else {})

    store = SimpleNamespace(path=Path("r.jsonl"))
    line = reused_line([row("a", True)], store, "models")  # type: ignore[arg-type]
    assert line is not None and line.startswith(
        "1 of 1 model taken from the results file r.jsonl, where an earlier run with these settings measured it;"
    )
    line = reused_line([row("a", True), row("b", False)], store, "models")  # type: ignore[arg-type]
    assert line is not None and "1 of 2 models taken" in line and "measured it; 1 measured now" in line
    line = reused_line([row("a", True), row("b", True)], store, "models")  # type: ignore[arg-type]
    assert line is not None and "measured them; none measured now" in line


def test_a_copy_measured_once_in_this_run_is_not_said_to_come_from_an_earlier_run(
    pool: Path, image_folder: Path, train_folder: Path
) -> None:
    """A checkpoint copied under a second name is measured once and its row shared: the first run said "1 of 5 models
    taken from the results file F, where an earlier run with these settings measured it", of a copy whose original
    this very run measured. The line says it is the same weights as another model of the pool, measured once."""
    shutil.copy2(pool / "m1.safetensors", pool / "copy.safetensors")
    res, doc = rank_json(pool, image_folder, train_folder)
    assert res.exit_code == 0, res.output
    line = "1 of 5 models is the same checkpoint as another model of this pool (m1 as copy), measured once for both; 4 measured now"
    assert line in res.stderr.splitlines() and "where an earlier run" not in res.stderr, res.stderr  # copy sorts first
    assert doc["counts"]["reused"] == 1  # the JSON's count is of rows whose numbers this run did not measure
    res, _ = rank_json(pool, image_folder, train_folder)  # a rerun takes all five from the file: the earlier run's
    assert "5 of 5 models taken from the results file" in res.stderr and "measured once for both" not in res.stderr
