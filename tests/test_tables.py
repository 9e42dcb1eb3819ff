"""Image lists and label files as users keep them (suscli.data.tables): labels by id or by class name, headers, .txt and
CSV lists for --data, and the one-line refusals of bad rows and of files too large to read."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import re
import shutil
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import suscli
import suscli.data.tables
import suscli.run.audit
from suscli.errors import InputError
from suscli.data.images import labeled_source
from suscli.data.imagesets import read_labeled, read_unlabeled
from suscli.data.labels import CLASS_LABEL_ORDER
from suscli.data.tables import label_rows, read_image_list
from tests.conftest import cli_json, invoke, one_error_line, tiny_cnn, write_images

ARCH = "tests.conftest:tiny_cnn"


@pytest.fixture
def imgs(tmp_path: Path) -> list[Path]:
    return write_images(tmp_path / "imgs", 4)


def read_label_csv(
    path: Path, image_column: str | None = None, label_column: str | None = None
) -> tuple[list[Path], list[int], list[str] | None]:
    """A label file's (paths, labels, class names), as label_rows reads them."""
    rows = label_rows(path, image_column, label_column)
    return rows.paths, rows.labels, rows.names


def refused_as_labels(folder: Path, message: str, fix: str, imgs: list[Path]) -> None:
    """`folder` is refused as a labelled set with `message` and `fix`, and still read as the unlabelled set of `imgs`."""
    with pytest.raises(InputError) as e:
        read_labeled(folder)
    assert (e.value.message, e.value.fix) == (message, fix)
    assert read_unlabeled(folder).items == [p.resolve() for p in imgs]


def test_labels_by_class_name_are_numbered_in_sorted_order(tmp_path: Path, imgs: list[Path]) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("".join(f"imgs/{p.name},{name}\n" for p, name in zip(imgs, ["dog", "cat", "eel", "cat"])))
    paths, labels, names = read_label_csv(csv)
    assert paths == [p.resolve() for p in imgs] and names == ["cat", "dog", "eel"] and labels == [1, 0, 2, 0]
    listing = read_labeled(csv)
    assert listing.label_names == ["cat", "dog", "eel"] and listing.labels == [1, 0, 2, 0]


@pytest.mark.parametrize(
    "text",
    [
        "file_name,species,split\nimgs/img_000.png,dog,a\nimgs/img_001.png,cat,b\n",  # --label-column names it
        "image,label\nimgs/img_000.png,dog\nimgs/img_001.png,cat\n",
        "label,path\ndog,imgs/img_000.png\ncat,imgs/img_001.png\n",  # any order under a header
    ],
)
def test_headers_name_the_columns(tmp_path: Path, imgs: list[Path], text: str) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text(text)
    paths, labels, names = read_label_csv(csv, label_column="species" if "species" in text else None)
    assert paths == [p.resolve() for p in imgs[:2]] and names == ["cat", "dog"] and labels == [1, 0]


def test_a_header_must_have_the_named_columns(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label,extra\na.png,cat,1\nb.png,dog,2\n")
    with pytest.raises(InputError, match="has no column 'species'"):
        read_label_csv(csv, label_column="species")
    csv.write_text("file,kind,extra\na.png,cat,1\nb.png,dog,2\n")
    with pytest.raises(InputError, match="names no label column"):
        read_label_csv(csv)


@pytest.mark.parametrize(
    "rows, bad",
    [
        ("a.png,cat\nb.png,3\n", "row 2 is 'b.png,3', expected 'path,label' with a class name"),  # names, then an id
        ("a.png,0\nb.png,cat\n", "row 2 is 'b.png,cat', expected 'path,label' with a non-negative integer label"),
        ("a.png,cat\nb.png,\n", "row 2 is 'b.png,'"),
    ],
)
def test_mixed_or_missing_labels_name_the_row(tmp_path: Path, rows: str, bad: str) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text(rows)
    with pytest.raises(InputError, match=bad):
        read_label_csv(csv)


@pytest.mark.parametrize("first", ["-1", "1.5", "+2"])
def test_a_first_label_that_is_a_mistyped_class_id_is_blamed_not_the_next_row(tmp_path: Path, first: str) -> None:
    """The first row decides between ids and names: a first label like -1 made the file one of class names, and the
    next row's valid id would be blamed; the message names row 1's label instead. A CSV of names still reads."""
    csv = tmp_path / "labels.csv"
    csv.write_text(f"path,label\na.png,{first}\nb.png,0\nc.png,1\n")
    with pytest.raises(InputError) as e:
        read_label_csv(csv)
    assert f"row 1's label '{first}' is not a valid class id (a whole number, 0 or more), yet row 2's label '0' is one" in e.value.line()
    csv.write_text(f"a.png,{first}\nb.png,cat\n")  # names, one of them numeric: as before
    assert read_label_csv(csv)[1:] == ([0, 1], [first, "cat"])


def test_labels_that_are_all_numbers_but_no_class_id_are_refused(tmp_path: Path) -> None:
    """Read as class names and numbered as sorted strings, '10.5' came before '2.5', and a model naming no classes was
    measured on that order without a word; mixed with names, a numeric label is still a name."""
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\na.png,2.5\nb.png,10.5\nc.png,-3\n")
    with pytest.raises(
        InputError, match=r"every label is a number, yet none is a class id \(a whole number, 0 or more\): row 1's is '2.5'"
    ):
        read_label_csv(csv)
    csv.write_text("path,label\na.png,2.5\nb.png,cat\n")
    assert read_label_csv(csv)[1:] == ([0, 1], ["2.5", "cat"])


def test_class_ids_written_as_floats_are_class_ids(tmp_path: Path, imgs: list[Path]) -> None:
    """pandas writes an integer column holding a missing value as floats: '3.0' was read as a class name, and a model
    naming its classes refused it ("class '0.0' is not one of the model's 10 classes")."""
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "".join(f"imgs/{p.name},{v}\n" for p, v in zip(imgs, ["2.0", "0.0", "1", "10.00"])))
    assert read_label_csv(csv)[1:] == ([2, 0, 1, 10], None)
    csv.write_text("path,label\n" + "".join(f"imgs/{p.name},{v}\n" for p, v in zip(imgs, ["2.0", "0.5", "1", "1"])))
    with pytest.raises(InputError, match="row 2 is 'imgs/img_001.png,0.5', expected 'path,label' with a non-negative integer label"):
        read_label_csv(csv)


@pytest.mark.parametrize(
    "name, sep",
    [("labels.tsv", "\t"), ("labels.csv", ";"), ("labels.csv", "\t")],
)
def test_tab_and_semicolon_separated_files_are_read_by_their_header(tmp_path: Path, imgs: list[Path], name: str, sep: str) -> None:
    """A .tsv, or a .csv from Excel where the comma is the decimal mark (';'), was refused: "row 1 is 'path;label',
    expected 'path,label'". The header says how the file is separated; the same labels read the same."""
    table = tmp_path / name
    table.write_text(f"path{sep}label\n" + "".join(f"imgs/{p.name}{sep}{n}\n" for p, n in zip(imgs, ["dog", "cat", "eel", "cat"])))
    assert read_label_csv(table) == ([p.resolve() for p in imgs], [1, 0, 2, 0], ["cat", "dog", "eel"])
    table.write_text(f"id{sep}file\n" + "".join(f"{i}{sep}imgs/{p.name}\n" for i, p in enumerate(imgs)))
    assert read_image_list(table) == [p.resolve() for p in imgs]


def test_a_headerless_file_is_split_at_commas_only(tmp_path: Path, imgs: list[Path]) -> None:
    """A path may hold ';': without a header naming the columns, nothing says the file is ';'-separated."""
    (tmp_path / "a;b").mkdir()
    write_images(tmp_path / "a;b", 2)
    csv = tmp_path / "labels.csv"
    csv.write_text("a;b/img_000.png,cat\na;b/img_001.png,dog\n")
    assert read_label_csv(csv)[1:] == ([0, 1], ["cat", "dog"])
    csv.write_text("imgs/img_000.png;cat\nimgs/img_001.png;dog\n")
    with pytest.raises(InputError, match="row 1 is 'imgs/img_000.png;cat', expected 'path,label'"):
        read_label_csv(csv)


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_metadata_file_without_a_label_column_beside_no_class_folders_is_named(tmp_path: Path, imgs: list[Path], kind: str) -> None:
    """A Hugging Face ImageFolder whose metadata file names its labels under another name (`species`) was refused as "no
    class folders in FOLDER", the fix describing the layout it has ("or of images with a metadata.csv ... naming each
    file's label"): the line now names the metadata file and the option that names its label column."""
    meta = imgs[0].parent / f"metadata.{kind}"
    rows = [{"file_name": p.name, "species": n} for p, n in zip(imgs, ["dog", "cat", "dog", "cat"])]
    if kind == "csv":
        meta.write_text("file_name,species\n" + "".join(f"{r['file_name']},{r['species']}\n" for r in rows))
    else:
        meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=rf"no class folders in .*, and its metadata.{kind} names no label column \(label, labels"):
        read_labeled(imgs[0].parent)
    with pytest.raises(InputError, match=rf"and its metadata.{kind} names no column 'kind'") as e:
        read_labeled(imgs[0].parent, label_column="kind")
    assert e.value.fix == f"name the label column of metadata.{kind} with --label-column"
    assert read_labeled(imgs[0].parent, label_column="species").labels == [1, 0, 1, 0]


@pytest.mark.parametrize("name", ["metadata.csv.gz", "metadata.jsonl.gz", "metadata.csv.xz"])
def test_a_compressed_metadata_file_beside_no_class_folders_is_named(tmp_path: Path, imgs: list[Path], name: str) -> None:
    """Hugging Face's ImageFolder reads a metadata file by its exact name, metadata.csv or metadata.jsonl, and passes
    over a compressed one; so did suscli, without a word: a folder of images beside its metadata.csv.gz was refused as
    "no class folders in FOLDER", its fix describing the layout it has. The line now names the file and the two fixes,
    one of which reads it as it is: a compressed label file passed itself."""
    folder = imgs[0].parent
    opener = {".gz": gzip.open, ".xz": lzma.open}[Path(name).suffix]
    with opener(folder / name, "wt") as f:
        if ".csv" in name:
            f.write("file_name,label\n" + "".join(f"{p.name},{n}\n" for p, n in zip(imgs, ["dog", "cat", "dog", "cat"])))
        else:
            f.write("".join(json.dumps({"file_name": p.name, "label": n}) + "\n" for p, n in zip(imgs, ["dog", "cat", "dog", "cat"])))
    plain = name.rsplit(".", 1)[0]
    refused_as_labels(
        folder,
        f"no class folders in {folder}, and its {name} is not read: a folder's metadata file is {plain}, uncompressed, as "
        "Hugging Face's ImageFolder reads it",
        f"pass {folder / name} itself in place of the folder (a compressed label file is read), or decompress it",
        imgs,
    )
    assert read_labeled(folder / name).labels == [1, 0, 1, 0]


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_hugging_face_imagefolder_with_metadata_is_labelled_by_it(tmp_path: Path, imgs: list[Path], kind: str) -> None:
    """Hugging Face's ImageFolder layout, images beside a metadata.csv or metadata.jsonl naming each `file_name` and its
    label, was refused as "no class folders". It reads as the same table would; a metadata file without a label
    column (captions) leaves the folder to its class folders, and a JSON line that is no object is named."""
    folder = imgs[0].parent
    values = [("dog", 3), ("cat", 1), ("eel", 2), ("cat", 1)]
    meta = folder / f"metadata.{kind}"
    if kind == "csv":
        meta.write_text("file_name,label,caption\n" + "".join(f"{p.name},{n},a photo\n" for p, (n, _) in zip(imgs, values)))
    else:
        meta.write_text(
            "".join(json.dumps({"file_name": p.name, "label": n, "caption": "a photo"}) + "\n" for p, (n, _) in zip(imgs, values))
        )
    listing = read_labeled(folder)
    assert listing.items == [p.resolve() for p in imgs] and listing.labels == [1, 0, 2, 0] and listing.label_names == ["cat", "dog", "eel"]
    assert read_unlabeled(meta).items == [p.resolve() for p in imgs]
    meta.write_text(meta.read_text().replace('"label"', '"target"').replace(",label,", ",target,"))
    assert read_labeled(folder, label_column="target").labels == [1, 0, 2, 0]
    meta.write_text(meta.read_text().replace('"target"', '"text"').replace(",target,", ",text,"))
    with pytest.raises(InputError, match="no class folders in"):  # captions are no labels: the folder's subfolders are
        read_labeled(folder)
    if kind == "jsonl":
        meta.write_text(json.dumps({"file_name": imgs[0].name, "label": 1}) + "\n[1, 2]\n")
        with pytest.raises(InputError, match=r"row 2 is '\[1, 2\]', not a JSON object"):
            read_label_csv(meta)
        meta.write_text("".join(json.dumps({"file_name": p.name, "label": float(i)}) + "\n" for p, (_, i) in zip(imgs, values)))
        assert read_label_csv(meta)[1:] == ([3, 1, 2, 1], None)  # ids from pandas' to_json of a float column


@pytest.mark.parametrize("writer", ["pandas", "datasets"])
def test_a_hugging_face_imagefolder_with_a_metadata_parquet_is_labelled_by_it(tmp_path: Path, imgs: list[Path], writer: str) -> None:
    """Hugging Face's ImageFolder also reads a `metadata.parquet` beside the images; suscli refused that folder as "no
    class folders in FOLDER". It reads as a metadata.csv of the same rows does: its `file_name` and label columns, a
    repeated image counted once, a file it names that is not there refused, written by pandas or by datasets."""
    pytest.importorskip("pyarrow")
    folder = imgs[0].parent
    meta = folder / "metadata.parquet"

    def write(names: list[str], labels: list[Any], column: str = "label") -> None:
        data = {"file_name": names, column: labels, "caption": ["a photo"] * len(names)}
        if writer == "pandas":
            import pandas as pd

            pd.DataFrame(data).to_parquet(meta)
        else:
            datasets = pytest.importorskip("datasets")
            datasets.Dataset.from_dict(data).to_parquet(str(meta))

    names = [p.name for p in imgs]
    write(names, ["dog", "cat", "eel", "cat"])
    listing = read_labeled(folder)
    assert listing.items == [p.resolve() for p in imgs] and listing.labels == [1, 0, 2, 0] and listing.label_names == ["cat", "dog", "eel"]
    assert listing.imagefolder and listing.written == {p.resolve(): p.name for p in imgs}
    write(names, [3, 1, 2, 1], column="target")
    assert read_labeled(folder, label_column="target").labels == [3, 1, 2, 1]
    write(names, [3.0, 1.0, None, 1.0])  # an id column with a missing value, as pandas keeps it: that row is named
    with pytest.raises(InputError, match=r"metadata.parquet: row 3 is .*, expected 'path,label' with a non-negative integer label"):
        read_labeled(folder)
    write([*names, names[0]], ["dog", "cat", "eel", "cat", "dog"])
    listing = read_labeled(folder)
    assert len(listing.items) == 4 and "1 of 5 rows repeats an image and label listed before" in listing.notes[0]
    write([*names, "gone.png"], ["dog", "cat", "eel", "cat", "dog"])
    with pytest.raises(InputError, match=r"1 of the 5 files that .*metadata.parquet lists do not exist, first: .*gone.png"):
        read_labeled(folder)
    write(names, ["dog", "cat", "eel", "cat"], column="species")
    with pytest.raises(InputError, match=r"no class folders in .*, and its metadata.parquet names no label column \(label, labels"):
        read_labeled(folder)
    assert read_labeled(folder, label_column="species").labels == [1, 0, 2, 0]
    assert read_unlabeled(folder).imagefolder  # as --data, the folder's images, turned as load_dataset turns them
    write(names, [True, False, False, True])  # booleans are ids, as a parquet dataset reads them: they were names "False", "True"
    listing = read_labeled(folder)
    assert listing.labels == [1, 0, 0, 1] and not listing.label_names


def test_a_metadata_parquet_whose_column_name_is_not_utf8_is_refused_in_one_line(tmp_path: Path, imgs: list[Path]) -> None:
    """A metadata.parquet whose footer names a column in bytes that are not UTF-8 (a bit flip found by fuzzing:
    `file_n\\xe1me`): pyarrow raises UnicodeDecodeError opening it, which the parquet reader of label files let through
    as a traceback (exit 1). It is a label file suscli cannot read, refused in one line."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    folder = imgs[0].parent
    meta = folder / "metadata.parquet"
    pd.DataFrame({"file_name": [p.name for p in imgs], "label": [0, 1, 2, 1]}).to_parquet(meta)
    meta.write_bytes(meta.read_bytes().replace(b"file_name", b"file_n\xe1me"))
    with pytest.raises(InputError, match=r"cannot read label file .*metadata.parquet: not a readable parquet file \(UnicodeDecodeError"):
        read_labeled(folder)
    good = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch="tests.conftest:tiny_cnn", num_classes=3, image_size=8)
    one_error_line(
        invoke("score", good, "-d", folder, "--train-data", folder, "--batches", "1", "--batch-size", "4"), 3, "metadata.parquet"
    )


def test_a_metadata_parquet_of_class_label_ids_keeps_their_names(tmp_path: Path, imgs: list[Path]) -> None:
    """A metadata.parquet that `Dataset.to_parquet` wrote from a ClassLabel column holds its ids and, in the file's
    schema, their names (here dog 0, cat 1). Its ids were read as the model's own class ids, the names passed over:
    a model naming its classes cat, dog was measured against swapped labels, where the same file read as a parquet
    dataset maps its ids to the model's classes by name. The names now come with the ids, as a dataset's do."""
    datasets = pytest.importorskip("datasets")
    folder = imgs[0].parent
    features = datasets.Features({"file_name": datasets.Value("string"), "label": datasets.ClassLabel(names=["dog", "cat"])})
    table = {"file_name": [p.name for p in imgs], "label": [0, 1, 1, 0]}
    datasets.Dataset.from_dict(table, features=features).to_parquet(str(folder / "metadata.parquet"))
    listing = read_labeled(folder)
    assert listing.labels == [0, 1, 1, 0] and listing.label_names == ["dog", "cat"]
    assert listing.names_order == CLASS_LABEL_ORDER
    table["label"] = [0, 1, 2, 0]
    datasets.Dataset.from_dict(table).to_parquet(str(folder / "metadata.parquet"))  # plain ids: no names to keep
    assert read_labeled(folder).label_names is None


def test_a_metadata_parquet_without_pyarrow_or_damaged_is_one_line(
    tmp_path: Path, imgs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyarrow, which reads a metadata.parquet, comes with the datasets extra, not with suscli itself: without it the
    line names the extra, as a parquet dataset's does; a file that is no parquet is named, not a traceback."""
    pytest.importorskip("pyarrow")
    import pandas as pd

    meta = imgs[0].parent / "metadata.parquet"
    pd.DataFrame({"file_name": [p.name for p in imgs], "label": [0, 1, 0, 1]}).to_parquet(meta)
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "pyarrow", None)
        with pytest.raises(InputError, match=r"label file .*metadata.parquet needs pyarrow, which is not installed") as e:
            read_labeled(imgs[0].parent)
    assert e.value.fix == "pip install 'suscli[datasets]'"
    meta.write_bytes(b"PAR1" + bytes(16))
    with pytest.raises(InputError, match=r"cannot read label file .*metadata.parquet: not a readable parquet file \(ArrowInvalid"):
        read_labeled(imgs[0].parent)


@pytest.mark.parametrize("other", ["jsonl", "parquet"])
def test_a_folder_holding_two_metadata_files_is_refused(tmp_path: Path, imgs: list[Path], other: str) -> None:
    """A folder of images beside a metadata.csv and a metadata.jsonl (or metadata.parquet) was labelled by the first
    that names a label column, without a word, though the other may label the images otherwise (an old export left
    beside a new one); Hugging Face's ImageFolder refuses such a folder ("Found metadata files with different
    extensions"). suscli refuses it too, naming both files."""
    folder = imgs[0].parent
    (folder / "metadata.csv").write_text("file_name,label\n" + "".join(f"{p.name},{n}\n" for p, n in zip(imgs, "abab")))
    rows = [{"file_name": p.name, "label": n} for p, n in zip(imgs, "bbaa")]
    if other == "jsonl":
        (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pd = pytest.importorskip("pandas")
        pytest.importorskip("pyarrow")
        pd.DataFrame(rows).to_parquet(folder / "metadata.parquet")
    refused_as_labels(
        folder,
        f"{folder} holds metadata.csv and metadata.{other}: which of them labels its images is not said, "
        "and Hugging Face's ImageFolder refuses such a folder",
        f"keep one of them in {folder}, or pass the one that labels the images itself",
        imgs,
    )
    assert read_labeled(folder / "metadata.csv").labels == [0, 1, 0, 1]


def test_a_txt_of_path_and_label_lines_is_a_label_file(tmp_path: Path, imgs: list[Path]) -> None:
    """Caffe's and MMPretrain's annotation files (ImageNet's train.txt): `path label` lines. A .txt was read as a CSV,
    and its first line refused as "expected 'path,label'". The label is the last word, so a path may hold spaces."""
    (tmp_path / "my imgs").mkdir()
    spaced = [Path(shutil.copy(imgs[0], tmp_path / "my imgs" / "a b.png"))]
    txt = tmp_path / "train.txt"
    txt.write_text("".join(f"imgs/{p.name} {i}\n" for i, p in enumerate(imgs[:3])) + "\n  my imgs/a b.png\t2  \n")
    assert read_label_csv(txt) == ([*(p.resolve() for p in imgs[:3]), spaced[0].resolve()], [0, 1, 2, 2], None)
    assert read_labeled(txt).labels == [0, 1, 2, 2]
    txt.write_text(f"imgs/{imgs[0].name} cat\nimgs/{imgs[1].name}\n")
    with pytest.raises(InputError, match=f"row 2 is 'imgs/{imgs[1].name}', expected 'path label' with a class name"):
        read_label_csv(txt)


def test_an_archive_one_image_or_a_quoted_pattern_is_named_for_what_it_is(tmp_path: Path, imgs: list[Path]) -> None:
    """A dataset's .zip or .tar.gz, one image, or a pattern the shell did not expand ('imgs/*.png' quoted) was "not a
    folder or an image list" or "image folder not found"; as --train-data a zip was parsed as a label file and
    refused at a row of its bytes. Each is named for what it is, with what to pass instead."""
    archive = tmp_path / "imgs.tar.gz"
    archive.write_bytes(b"\x1f\x8b" + bytes(64))
    (tmp_path / "imgs.zip").write_bytes(b"PK\x03\x04" + bytes(64))
    cases = {
        archive: "is an archive, which suscli does not unpack",
        tmp_path / "imgs.zip": "is an archive, which suscli does not unpack",
        imgs[0]: "is one image, not a set of them",
        tmp_path / "imgs" / "*.png": "no such file or folder; suscli does not expand patterns",
    }
    for source, message in cases.items():
        for read, option in ((read_unlabeled, "--data"), (read_labeled, "--train-data")):
            with pytest.raises(InputError, match=re.escape(f"{option} {source} {message}".replace(f"{source} no", f"{source}: no"))):
                read(source)


def test_image_lists(tmp_path: Path, imgs: list[Path]) -> None:
    txt = tmp_path / "list.txt"
    txt.write_text(f"imgs/{imgs[0].name}\n\n  imgs/{imgs[2].name}  \n{imgs[3]}\n")
    assert read_image_list(txt) == [imgs[0].resolve(), imgs[2].resolve(), imgs[3]]
    with_header = tmp_path / "with_header.csv"
    with_header.write_text(f"id,filepath\n7,imgs/{imgs[1].name}\n")
    assert read_image_list(with_header) == [imgs[1].resolve()]
    labels = tmp_path / "train.csv"  # a label file is a list of its images too; options that name no header are ignored
    labels.write_text(f"imgs/{imgs[1].name},cat\nimgs/{imgs[0].name},dog\n")
    assert read_unlabeled(labels, image_column="img").items == [imgs[1].resolve(), imgs[0].resolve()]


def test_a_list_that_names_an_image_again_measures_it_once(tmp_path: Path, imgs: list[Path]) -> None:
    """A list concatenated with itself (or a label file appended to twice, passed as --data) named each image twice:
    each was measured and counted twice ("unlabeled_images": 8 for 4 images), without a word."""
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    twice = tmp_path / "twice.txt"
    twice.write_text("".join(f"imgs/{p.name}\n" for p in imgs) + "".join(f"./imgs/{p.name}\n" for p in imgs))
    assert read_unlabeled(twice).items == [p.resolve() for p in imgs]
    res = invoke("score", model, "-d", twice, "--batches", "1", "--batch-size", "2", "-f", "json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["data"]["unlabeled_images"] == 4
    assert (
        f"{twice}: 4 of 8 rows repeat an image listed before (first: {imgs[0].resolve()}): each image measured once"
        in (report["results"][0]["notes"])
    )


def test_a_label_file_whose_label_column_comes_first_is_a_list_of_its_paths(tmp_path: Path, imgs: list[Path]) -> None:
    """A label file `label,img_file` (its path column of a name suscli does not know) is read as --train-data, its
    paths in the second column; passed as --data, its labels were read as the paths: "none of the 4 files that
    labels.csv lists exist, first: 0"."""
    labels = tmp_path / "labels.csv"
    labels.write_text("label,img_file\n" + "".join(f"{i % 2},imgs/{p.name}\n" for i, p in enumerate(imgs)))
    assert read_labeled(labels).items == read_unlabeled(labels).items == [p.resolve() for p in imgs]


def test_a_path_label_txt_is_an_image_list_of_its_paths(tmp_path: Path, imgs: list[Path]) -> None:
    """A label CSV passed as --data is read as its path column; a `path label` .txt (ImageNet's val.txt, Caffe's and
    MMPretrain's annotation files) was read one path a line, the label part of it: "none of the 4 files that val.txt
    lists exist, first: imgs/img_000.png 0". Its header line, when it has one, is no image either."""
    val = tmp_path / "val.txt"
    val.write_text("".join(f"imgs/{p.name} {i % 3}\n" for i, p in enumerate(imgs)))
    assert read_unlabeled(val).items == [p.resolve() for p in imgs]
    val.write_text("path label\n" + val.read_text())
    assert read_unlabeled(val).items == [p.resolve() for p in imgs]
    spaced = imgs[0].rename(imgs[0].with_name("img 000.png"))  # a path that holds a space is still one path
    val.write_text("".join(f"imgs/{p.name}\n" for p in [spaced, *imgs[1:]]))
    assert read_unlabeled(val).items == [p.resolve() for p in [spaced, *imgs[1:]]]


@pytest.mark.parametrize(
    "text, bad",
    [("a.png\nb\x00.png\n", "row 2"), ("\x00\t\x00", "row 1"), ("a\x00 b\n", "row 1"), ("id,path\n1\n", "row 1 is '1'")],
)  # a NUL in a .txt list's first line, which is read for a `path label` line first, was "internal error: ValueError"
def test_bad_list_rows_are_named(tmp_path: Path, text: str, bad: str) -> None:
    lst = tmp_path / ("list.txt" if "\x00" in text else "list.csv")
    lst.write_text(text)
    with pytest.raises(InputError, match=bad):
        read_image_list(lst)


def test_score_on_lists_and_names(tmp_path: Path, imgs: list[Path]) -> None:
    """--data as a .txt list, --train-data as a CSV of class names; the row says how the names were numbered."""
    txt = tmp_path / "unlabeled.txt"
    txt.write_text("".join(f"imgs/{p.name}\n" for p in imgs))
    csv = tmp_path / "train.csv"
    csv.write_text("path,label\n" + "".join(f"imgs/{p.name},{n}\n" for p, n in zip(imgs, ["b", "a", "c", "a"])))
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8)
    res = invoke("score", model, "-d", txt, "--train-data", csv, "--batches", "1", "-f", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    row = doc["results"][0]
    assert doc["data"]["unlabeled_images"] == 4 and row["train_n"] == 4
    assert (
        "training labels are class names, numbered in sorted order of the names, as torchvision's ImageFolder "
        "(the model names no classes)" in row["notes"]
    )


def test_a_list_too_large_for_memory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    txt = tmp_path / "list.txt"
    txt.write_text("a.png\n" * 1000)
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    monkeypatch.setattr(suscli.data.tables, "available_memory", lambda: 10_000)
    res = invoke("score", model, "-d", txt)
    one_error_line(res, 3, "image list", "refused rather than swapping")
    # a folder's metadata.parquet too: its columns' size, unpacked, is what would not fit
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    folder = tmp_path / "imgs"
    folder.mkdir()
    names = [f"{i}.png" for i in range(200)]
    for name in names[:2]:
        (folder / name).write_bytes(b"")
    pd.DataFrame({"file_name": names, "label": [i % 2 for i in range(200)]}).to_parquet(folder / "metadata.parquet")
    monkeypatch.setattr(suscli.data.tables, "available_memory", lambda: 1_000)
    with pytest.raises(InputError, match=r"metadata.parquet holds .* of columns: its rows take about .* refused rather than swapping"):
        read_labeled(folder)


def test_other_files_are_not_lists(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("[]")
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    res = invoke("score", model, "-d", tmp_path / "x.json")
    one_error_line(res, 3, "not a folder or an image list", ".txt, .csv, .tsv or .jsonl list")


def test_other_files_are_not_label_files(tmp_path: Path, imgs: list[Path]) -> None:
    """A checkpoint or a .json passed as --train-data or --val-data was read as a CSV: "row 1 is '\\x18\\x08...'" (its
    bytes), "cannot read label file m.safetensors: new-line character seen in unquoted field", or "row 1 is '[{...}]',
    expected 'path,label'", the fix of a row for a file of another kind."""
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    (tmp_path / "labels.json").write_text(json.dumps([{"path": f"imgs/{p.name}", "label": i % 2} for i, p in enumerate(imgs)]))
    res = invoke("score", model, "-d", imgs[0].parent, "--train-data", model)
    one_error_line(res, 3, f"not a folder or a label file: {model}", "--train-data takes a folder of class folders")
    res = invoke("score", model, "-d", imgs[0].parent, "--val-data", tmp_path / "labels.json")
    one_error_line(res, 3, f"not a folder or a label file: {tmp_path / 'labels.json'}", "--val-data takes a folder of class folders")


def test_files_a_list_names_must_exist(tmp_path: Path, imgs: list[Path]) -> None:
    """A list that names missing files points elsewhere: refused before measuring, not skipped as unreadable images
    (which measured the few that were there, without saying so)."""
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8)
    some = tmp_path / "some.txt"
    some.write_text("".join(f"imgs/{p.name}\n" for p in imgs) + "imgs/gone.png\n")
    res = invoke("score", model, "-d", some)
    one_error_line(res, 3, f"1 of the 5 files that {some} lists do not exist, first: {(tmp_path / 'imgs' / 'gone.png').resolve()}")
    assert f"paths in a list are read relative to its folder ({tmp_path})" in res.stderr
    moved = tmp_path / "elsewhere" / "train.csv"  # a label file copied away from the images it names
    moved.parent.mkdir()
    moved.write_text("".join(f"imgs/{p.name},{i % 3}\n" for i, p in enumerate(imgs)))
    res = invoke("score", model, "-d", imgs[0].parent, "--train-data", moved)
    one_error_line(res, 3, f"none of the 4 files that {moved} lists exist")


def test_a_list_naming_folders_is_refused_naming_the_first(tmp_path: Path, imgs: list[Path]) -> None:
    """A list of class folders (`train/a`), or a row cut short at a folder: each folder was an unreadable image, and a
    list of folders alone ended in "none of the 3 image files under train could be decoded (check that they are valid
    images)", of files that are folders. Refused now before anything is measured, as a missing file is, naming the first."""
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8)
    for c in "ab":
        write_images(tmp_path / "train" / c, 2, seed=ord(c))
    for rows in (["train/a", "train/b"], [*(f"imgs/{p.name}" for p in imgs), "train/a"]):
        listed = tmp_path / "list.txt"
        listed.write_text("".join(f"{r}\n" for r in rows))
        res = invoke("score", model, "-d", listed)
        one_error_line(res, 3, f"of the {len(rows)} paths that {listed} lists are folders, not images, first: {tmp_path / 'train' / 'a'}")
        labels = tmp_path / "labels.csv"
        labels.write_text("path,label\n" + "".join(f"{r},{i % 2}\n" for i, r in enumerate(rows)))
        res = invoke("score", model, "-d", imgs[0].parent, "--train-data", labels)
        one_error_line(res, 3, f"of the {len(rows)} paths that {labels} lists are folders, not images, first: {tmp_path / 'train' / 'a'}")


def test_a_large_lists_folder_is_listed_once_to_check_its_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether each row names a file, and whether one names a folder, were two listings of every folder many rows name
    (missing_files, then named_folders), one after the other on the same rows. One listing answers both: the folder
    is listed once to read the rows (listed_paths) and once to check them, and a row naming a folder in it is refused
    as before."""
    imgs = write_images(tmp_path / "many", suscli.data.tables.LISTED_AFTER + 8, size=2)
    (tmp_path / "many" / "sub").mkdir()
    listed = tmp_path / "list.txt"
    scandir, seen = os.scandir, []

    def counted(path: Any = ".") -> Any:
        seen.append(os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", counted)
    listed.write_text("".join(f"many/{p.name}\n" for p in imgs))
    assert read_unlabeled(listed).items == [p.resolve() for p in imgs]
    assert seen.count(str((tmp_path / "many").resolve())) == 2, seen
    listed.write_text("".join(f"many/{p.name}\n" for p in imgs) + "many/sub\n")
    with pytest.raises(InputError, match=f"1 of the {len(imgs) + 1} paths that .* are folders, not images, first: .*sub"):
        read_unlabeled(listed)


def test_a_row_naming_a_link_in_a_loop_is_a_file_that_is_not_there(tmp_path: Path, imgs: list[Path]) -> None:
    """A link in a loop (`ln -s a b; ln -s b a`) leads to no file: a list naming one ended in "internal error:
    RuntimeError: Symlink loop from PATH"; it is now refused as a file that is not there, named, whichever row names it."""
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8)
    (tmp_path / "loop_a").symlink_to("loop_b")
    (tmp_path / "loop_b").symlink_to("loop_a")
    for rows in (["loop_a"], [f"imgs/{imgs[0].name}", "loop_a/x.png"]):
        listed = tmp_path / "list.txt"
        listed.write_text("".join(f"{r}\n" for r in [*rows, *(f"imgs/{p.name}" for p in imgs[1:])]))
        res = invoke("score", model, "-d", listed)
        one_error_line(res, 3, f"1 of the {len(rows) + 3} files that {listed} lists do not exist, first: {tmp_path / rows[-1]}")
        labels = tmp_path / "labels.csv"
        labels.write_text("path,label\n" + "".join(f"{r},{i % 3}\n" for i, r in enumerate([*rows, *(f"imgs/{p.name}" for p in imgs[1:])])))
        res = invoke("score", model, "-d", imgs[0].parent, "--train-data", labels)
        one_error_line(res, 3, f"1 of the {len(rows) + 3} files that {labels} lists do not exist, first: {tmp_path / rows[-1]}")


def test_a_list_naming_its_files_from_the_working_directory_is_read_from_there(
    tmp_path: Path, imgs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A label file kept in data/ that lists imgs/0.png, written from the project's root and run from there (as a
    parquet's path column is read), was refused: "none of the 4 files that data/train.csv lists exist". Read from one
    place only: a list whose files are some in its folder and some in the working directory is still refused."""
    monkeypatch.chdir(tmp_path)
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8)
    (tmp_path / "data").mkdir()
    train = tmp_path / "data" / "train.csv"
    train.write_text("".join(f"imgs/{p.name},{i % 3}\n" for i, p in enumerate(imgs)))
    listed = tmp_path / "data" / "unlabeled.txt"
    listed.write_text("".join(f"imgs/{p.name}\n" for p in imgs))
    res = invoke("score", model, "-d", Path("data/unlabeled.txt"), "--train-data", Path("data/train.csv"), "-f", "json")
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)["results"][0]
    assert row["train_n"] == 4 and json.loads(res.stdout)["data"]["unlabeled_images"] == 4
    notes = " ".join(row["notes"])
    for name in ("train.csv", "unlabeled.txt"):
        assert f"data/{name}: no file it lists is in its folder (data) and every one is in the working directory" in notes
    (tmp_path / "data" / "imgs").mkdir()
    shutil.copy(imgs[0], tmp_path / "data" / "imgs" / imgs[0].name)
    res = invoke("score", model, "-d", listed)
    one_error_line(res, 3, f"3 of the 4 files that {listed} lists do not exist", "or all of them relative to the working directory")


def test_a_byte_order_mark_is_not_part_of_the_first_path_or_column(tmp_path: Path, imgs: list[Path]) -> None:
    """Notepad and PowerShell 5 write UTF-8 with a byte-order mark: it made the first path of a list one that does not
    exist ('\\ufeffimgs/...'), and the first column name of a header one that names nothing."""
    txt = tmp_path / "list.txt"
    txt.write_text(f"\ufeffimgs/{imgs[0].name}\nimgs/{imgs[1].name}\n", encoding="utf-8")
    assert read_unlabeled(txt).items == [imgs[0].resolve(), imgs[1].resolve()]
    csv = tmp_path / "labels.csv"
    csv.write_text(f"\ufefflabel,path,split\ndog,imgs/{imgs[0].name},a\ncat,imgs/{imgs[1].name},b\n", encoding="utf-8")
    assert read_label_csv(csv) == ([imgs[0].resolve(), imgs[1].resolve()], [1, 0], ["cat", "dog"])


def test_utf16_files_and_rows_ended_by_a_lone_carriage_return_are_read(tmp_path: Path, imgs: list[Path]) -> None:
    """PowerShell 5's `>` and Excel's "Unicode Text" write UTF-16 with a byte-order mark (read as UTF-8, a row was its
    bytes with a NUL between them: "row 1 is '\\udcff\\udcfei\\x00m...'"), and Excel for Mac ends a CSV's rows with a
    lone '\\r' (read as one line: "new-line character seen in unquoted field")."""
    rows = [(f"imgs/{p.name}", name) for p, name in zip(imgs, ["dog", "cat", "dog", "cat"])]
    want = ([p.resolve() for p in imgs], [1, 0, 1, 0], ["cat", "dog"])
    listed = tmp_path / "list.txt"
    listed.write_text("".join(f"{p}\r\n" for p, _ in rows), encoding="utf-16", newline="")
    assert read_unlabeled(listed).items == want[0]
    for name, text in [
        ("u16.csv", "path,label\r\n" + "".join(f"{p},{n}\r\n" for p, n in rows)),
        ("u16.txt", "".join(f"{p}\t{n}\r\n" for p, n in rows)),
        ("u16.tsv", "path\tlabel\r\n" + "".join(f"{p}\t{n}\r\n" for p, n in rows)),
    ]:
        (tmp_path / name).write_text(text, encoding="utf-16", newline="")
        assert read_label_csv(tmp_path / name) == want, name
    for name, text in [
        ("mac.csv", "path;label\r" + "".join(f"{p};{n}\r" for p, n in rows)),
        ("mac.jsonl", "".join(json.dumps({"file_name": p, "label": n}) + "\r" for p, n in rows)),
    ]:
        (tmp_path / name).write_text(text, newline="")
        assert read_label_csv(tmp_path / name) == want, name
    folder = imgs[0].parent  # a Hugging Face ImageFolder whose metadata.csv is UTF-16: labelled by it, not taken for class folders
    (folder / "metadata.csv").write_text(
        "file_name,label\n" + "".join(f"{p.name},{n}\n" for p, (_, n) in zip(imgs, rows)), encoding="utf-16"
    )
    assert read_labeled(folder).labels == want[1]


def test_a_label_file_listing_an_image_twice_counts_it_once_or_names_its_two_labels(tmp_path: Path, imgs: list[Path]) -> None:
    """A label file appended to twice listed each image twice, and an old file joined to its corrections gave one image
    two labels: both were measured row by row, without a word (n=8 for 4 images; the image labelled both ways counted
    as one hit and one miss)."""
    once = "path,label\n" + "".join(f"imgs/{p.name},{n}\n" for p, n in zip(imgs, ["b", "a", "c", "a"]))
    twice = tmp_path / "twice.csv"
    twice.write_text(once + once.split("\n", 1)[1])
    listing = read_labeled(twice)
    assert listing.items == [p.resolve() for p in imgs] and listing.labels == [1, 0, 2, 0]
    assert listing.notes == [
        f"{twice}: 4 of 8 rows repeat an image and label listed before (first: row 5, {imgs[0].resolve()}): each image "
        "counted once, since a repeat is no new evidence and would narrow the interval"
    ]
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8)
    res = invoke("score", model, "-d", imgs[0].parent, "--train-data", twice, "--batches", "1", "-f", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["results"][0]["train_n"] == 4
    joined = tmp_path / "joined.csv"
    joined.write_text(once + f"imgs/{imgs[2].name},b\n")
    res = invoke("score", model, "-d", imgs[0].parent, "--train-data", joined, "--batches", "1")
    one_error_line(res, 3, f"{joined}: {imgs[2].resolve()} is labelled 'c' in row 3 and 'b' in row 5", "keep one label for each image")


def test_a_header_of_unknown_column_names_is_named_as_a_header(tmp_path: Path, imgs: list[Path]) -> None:
    """A header naming no column suscli knows (`filename_full,cls`) was read as a row of class name 'cls', so the next
    row's class id was blamed: "row 2 is 'imgs/img_000.png,0', expected 'path,label' with a class name, as in the rows
    before it"; as a list, its name was a file that does not exist."""
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8)
    labels = tmp_path / "labels.csv"
    labels.write_text("filename_full,cls\n" + "".join(f"imgs/{p.name},{i % 3}\n" for i, p in enumerate(imgs)))
    res = invoke("score", model, "-d", imgs[0].parent, "--train-data", labels, "--batches", "1")
    one_error_line(res, 3, f"{labels}: its first row (filename_full,cls) is no file but reads as a header", "--label-column")
    res = invoke("score", model, "-d", labels, "--batches", "1")
    one_error_line(res, 3, f"{labels}: its first row (filename_full,cls) is no file but reads as a header", "--image-column")
    named = ("--image-column", "filename_full", "--label-column", "cls")
    res = invoke("score", model, "-d", imgs[0].parent, "--train-data", labels, *named, "--batches", "1", "-f", "json")
    assert res.exit_code == 0 and json.loads(res.stdout)["results"][0]["train_n"] == 4, res.output


@pytest.mark.parametrize("name, sep", [("labels.csv", ","), ("labels.txt", " ")])
def test_a_first_row_whose_label_is_a_column_name_is_a_row(tmp_path: Path, imgs: list[Path], name: str, sep: str) -> None:
    """A headerless label file whose first image is of class 'y' (or 'category', 'target': names a header may give a
    label column) was read as having a header: its first image was dropped without a word, from --train-data and
    from --data alike. A first row whose path names a file is a row."""
    labels = tmp_path / name
    labels.write_text("".join(f"imgs/{p.name}{sep}{'yx'[i % 2]}\n" for i, p in enumerate(imgs)))
    assert read_label_csv(labels) == ([p.resolve() for p in imgs], [1, 0, 1, 0], ["x", "y"])
    assert read_unlabeled(labels).items == [p.resolve() for p in imgs]


def test_a_txt_label_file_that_begins_with_a_header_line_is_read_by_it(tmp_path: Path, imgs: list[Path]) -> None:
    """A `path label` .txt whose first line is a header was read as a row of class name 'label', and the next row's
    class id was blamed: "row 2 is 'imgs/img_000.png 0', expected 'path label' with a class name, as in the rows before
    it"; a header of names suscli does not know is named as one, as a CSV's is."""
    rows = "".join(f"imgs/{p.name} {i % 2}\n" for i, p in enumerate(imgs))
    known = tmp_path / "known.txt"
    known.write_text("filename label\n" + rows)
    assert read_label_csv(known) == ([p.resolve() for p in imgs], [0, 1, 0, 1], None)
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("fname cls\n" + rows)
    with pytest.raises(InputError, match=r"its first row \(fname cls\) is no file but reads as a header"):
        read_label_csv(unknown)
    assert read_label_csv(unknown, "fname", "cls") == read_label_csv(known)


def test_a_list_written_on_windows_or_in_another_unicode_form_finds_its_files(tmp_path: Path, imgs: list[Path]) -> None:
    """Rows `imgs\\img_000.png` (a CSV saved on Windows) and names typed composed (NFC) for files a Mac wrote decomposed
    (NFD) named files that were there, yet the run stopped: "none of the 4 files that LIST lists exist, first: ..."
    over a path that printed as the file's own."""
    decomposed = tmp_path / unicodedata.normalize("NFD", "café")
    decomposed.mkdir()
    for p in imgs:
        shutil.copy(p, decomposed / unicodedata.normalize("NFD", f"été {p.name}"))
    rows = [f"café/été {p.name}" for p in imgs]  # NFC, as typed
    assert not (tmp_path / rows[0]).exists()
    windows = tmp_path / "windows.csv"
    windows.write_text("path,label\r\n" + "".join(f"imgs\\{p.name},{i % 3}\r\n" for i, p in enumerate(imgs)))
    typed = tmp_path / "typed.csv"
    typed.write_text("path,label\n" + "".join(f"{r},{i % 3}\n" for i, r in enumerate(rows)))
    listed = tmp_path / "typed.txt"
    listed.write_text("".join(f"{r}\n" for r in rows))
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8)
    want = sorted(decomposed.iterdir())
    assert read_labeled(windows).items == [p.resolve() for p in imgs]
    assert read_labeled(typed).items == want and read_unlabeled(listed).items == want
    for data, train in ((imgs[0].parent, windows), (listed, typed)):
        res = invoke("score", model, "-d", data, "--train-data", train, "--batches", "1", "-f", "json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["results"][0]["train_n"] == 4


def roboflow_split(folder: Path, marks: list[int], *, seed: int = 0, header: str = "filename, dog, cat, eel") -> list[Path]:
    """A split of Roboflow's classification export: its images and a `_classes.csv` of a `filename` column and one 0/1
    column per class, written after ', ' as Roboflow writes them; image i's 1 in column marks[i] (-1: none). Its images."""
    paths = write_images(folder, len(marks), seed=seed)
    classes = header.count(",")
    rows = [f"{p.name}, " + ", ".join("1" if c == m else "0" for c in range(classes)) for p, m in zip(paths, marks)]
    (folder / "_classes.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return paths


def test_a_roboflow_classification_export_is_labelled_by_its_one_hot_classes_csv(tmp_path: Path) -> None:
    """Roboflow's classification export (a folder per split holding its images and a `_classes.csv`, a `filename`
    column and one 0/1 column per class) was refused: "no class folders in export/train" for the folder, "its header
    (filename, dog, cat, eel) names no label column" for the file. A row's class is the column holding its 1, the
    classes numbered by their columns' order, as a training script reading the table numbers them: a model that always
    says class 0 fits the 3 dogs of 6 (sorted names would make it cat, 2 of 6), and a model naming its classes is
    mapped by name. The same for --val-data."""
    from suscli.data.labels import ONE_HOT_ORDER
    from tests.test_labels import constant

    marks = [0, 1, 0, 2, 1, 0]
    train = tmp_path / "export" / "train"
    paths = roboflow_split(train, marks)
    roboflow_split(tmp_path / "export" / "valid", [2, 2, 0, 1], seed=1)
    for given in (train, train / "_classes.csv"):
        listing = read_labeled(given)
        assert listing.items == [p.resolve() for p in paths] and listing.labels == marks
        assert (listing.label_names, listing.names_order) == (["dog", "cat", "eel"], ONE_HOT_ORDER)
    assert read_unlabeled(train / "_classes.csv").items == [p.resolve() for p in paths]
    unnamed = suscli.save(constant(0), tmp_path / "unnamed.safetensors", arch=ARCH, num_classes=3, image_size=8)
    named = suscli.save(constant(0), tmp_path / "named.safetensors", arch=ARCH, num_classes=3, image_size=8, classes=["eel", "cat", "dog"])
    val = tmp_path / "export" / "valid"
    for model, (acc, val_acc), says in [(unnamed, (3 / 6, 1 / 4), "numbered in the order of"), (named, (1 / 6, 2 / 4), "mapped to")]:
        for given in (train, train / "_classes.csv"):
            res = invoke("score", model, "-d", train, "--train-data", given, "--val-data", val, "--batches", "1", "-f", "json")
            assert res.exit_code == 0, res.output
            row = json.loads(res.stdout)["results"][0]
            assert (row["train_acc"], row["train_n"], row["val_acc"], row["val_n"]) == pytest.approx((acc, 6, val_acc, 4))
            assert any(n.startswith(f"training labels are class names, {says}") for n in row["notes"]), row["notes"]
    row = cli_json("score", unnamed, "-d", train, "--val-data", val)["results"][0]  # nothing names the classes but the table
    says = "held-out class names numbered in the order of the label table's class columns"
    assert row["val_acc"] == 1 / 4 and any(n.startswith(says) for n in row["notes"]), row["notes"]


@pytest.mark.parametrize("option", ["--train-data", "--val-data"])
def test_a_roboflow_row_marking_no_class_or_several_is_refused_naming_it(tmp_path: Path, option: str) -> None:
    """A `_classes.csv` row of no 1 (an image left unlabelled) or several (a multi-label export) has no one label for
    susceptibility's measurement to count against: refused, naming the file, the row and its classes."""
    train = tmp_path / "export" / "train"
    paths = roboflow_split(train, [0, 1, 0, 2])
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, num_classes=3, image_size=8)
    table = train / "_classes.csv"
    rows = table.read_text().splitlines()
    for row, says in [(f"{paths[2].name}, 0, 0, 0", "marks no class"), (f"{paths[2].name}, 1, 0, 1", "marks 2 classes (dog, eel)")]:
        table.write_text("\n".join(rows[:3] + [row] + rows[4:]) + "\n")
        res = invoke("score", model, "-d", train, option, train, "--batches", "1")
        one_error_line(res, 3, f"{table}: row 3 ({paths[2].name}) {says}", "one label per image", "mark one class in that row")
    table.write_text("\n".join(rows[:3] + [f"{paths[2].name}, 1, 0, x"] + rows[4:]) + "\n")
    one_error_line(invoke("score", model, "-d", train, option, train, "--batches", "1"), 3, f"{table}: row 3 is", "fix or remove that row")


def _linked_rows(tmp_path: Path) -> tuple[Path, list[str]]:
    """A label file's folder holding images reached every way a row may reach one: by name, through a link to a file
    and one to a folder, with '..' and './', a name that is missing; more rows of one folder than
    suscli.data.tables.LISTED_AFTER, so that folder is listed (links told apart by its listing)."""
    many = suscli.data.tables.LISTED_AFTER + 8
    imgs = write_images(tmp_path / "imgs", many)
    (tmp_path / "imgs" / "zz_link.png").symlink_to(imgs[0])  # listed after the folder is: told by the listing
    (tmp_path / "imgs" / "aa_link.png").symlink_to(imgs[1])
    (tmp_path / "alias").symlink_to("imgs")
    rows = [f"imgs/{p.name}" for p in imgs] + ["imgs/aa_link.png", "imgs/zz_link.png", f"alias/{imgs[2].name}"]
    rows += [f"alias/../imgs/./{imgs[3].name}", f"./imgs/{imgs[4].name}/", "imgs/gone.png", "gone/x.png", "alias/zz_link.png"]
    return tmp_path, rows


def test_rows_lead_where_each_path_resolved_alone_leads(tmp_path: Path) -> None:
    """Read a folder at a time, rows lead where Path.resolve leads each."""
    folder, rows = _linked_rows(tmp_path)
    alone = [(folder / r).resolve() for r in rows]
    assert suscli.data.tables.listed_paths(folder, rows) == alone
    assert alone[rows.index("imgs/zz_link.png")] == alone[0] and alone[rows.index("imgs/aa_link.png")] == alone[1]  # one image


def test_a_large_list_resolves_each_folder_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolved row by row, every row walked each folder of its path again, link by link: reading a 50,000-row
    CSV of CIFAR-10 paths took 4.8 s. A folder is now resolved once and then listed, so the calls do not grow
    with the rows."""
    imgs = write_images(tmp_path / "deep" / "er" / "imgs", 8 * suscli.data.tables.LISTED_AFTER, size=2)
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "".join(f"deep/er/imgs/{p.name},{i % 2}\n" for i, p in enumerate(imgs)))
    want = [p.resolve() for p in imgs]
    calls = 0
    lstat = os.lstat

    def counted(*args: object, **kwargs: object) -> os.stat_result:
        nonlocal calls
        calls += 1
        return lstat(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "lstat", counted)
    paths, labels, _ = read_label_csv(csv)
    assert calls < len(imgs) / 2
    assert paths == want and labels == [i % 2 for i in range(len(imgs))]


def _counting(monkeypatch: pytest.MonkeyPatch, *names: str) -> dict[str, int]:
    """Count the calls of os.stat and os.lstat (what Path.exists and Path.resolve make, link by link)."""
    calls = dict.fromkeys(names, 0)

    def counter(name: str) -> Callable[..., os.stat_result]:
        real = getattr(os, name)

        def counted(*args: Any, **kwargs: Any) -> os.stat_result:
            calls[name] += 1
            return real(*args, **kwargs)

        return counted

    for name in names:
        monkeypatch.setattr(os, name, counter(name))
    return calls


def test_the_listings_say_which_files_are_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each file a list names was checked with its own stat after the rows were read (about 0.4 s of a 50,000-row
    CSV's 0.8 s), though the folders' listings hold the answer: a name a listing holds is there. The others (a link's
    target, a name missing from its folder, a folder not there) are answered as before."""
    imgs = write_images(tmp_path / "many", 8 * suscli.data.tables.LISTED_AFTER, size=2)
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "".join(f"many/{p.name},{i % 2}\n" for i, p in enumerate(imgs)))
    with monkeypatch.context() as patched:
        calls = _counting(patched, "stat")
        listing = read_labeled(csv)
    assert calls["stat"] < len(imgs) / 2
    assert listing.items == [p.resolve() for p in imgs] and listing.notes == []
    folder, rows = _linked_rows(tmp_path)
    paths = suscli.data.tables.listed_paths(folder, rows)
    missing, folders = suscli.data.tables.absent_and_folders(paths)
    assert missing == [p for p in paths if not p.exists()] != [] and folders == [p for p in paths if p.is_dir()]


def test_a_list_of_paths_from_the_working_directory_is_read_a_folder_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A list naming its files from the working directory was resolved row by row, link by link (3.1 s for 50,000
    rows, against 0.8 s for the same rows as absolute paths): it is read a folder at a time too, and its rows lead
    where each resolved alone from there leads, through links, '..' and './'."""
    root, rows = _linked_rows(tmp_path / "project")
    many = write_images(root / "many", 32 * suscli.data.tables.LISTED_AFTER, size=2)
    rows = [r for r in rows if "gone" not in r] + [f"many/{p.name}" for p in many]
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(root)
    listed = tmp_path / "data" / "list.txt"
    listed.write_text("".join(f"{r}\n" for r in rows))
    want = [(root / r).resolve() for r in rows]
    calls = _counting(monkeypatch, "stat", "lstat")
    listing = read_unlabeled(listed)
    assert calls["stat"] + calls["lstat"] < len(rows) / 2
    assert listing.items == list(dict.fromkeys(want)) and "every one is in the working directory" in listing.notes[0]


def test_a_list_written_on_windows_naming_its_files_from_the_working_directory_finds_them(
    tmp_path: Path, imgs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows written on Windows (`imgs\\img_000.png`) or typed composed (NFC) for names a Mac wrote decomposed (NFD)
    find their files relative to the list's folder, but were refused where they name them from the working directory:
    "none of the 4 files that data/list.txt lists exist". They find them there too."""
    monkeypatch.chdir(tmp_path)
    decomposed = tmp_path / unicodedata.normalize("NFD", "café")
    decomposed.mkdir()
    for p in imgs:
        shutil.copy(p, decomposed / p.name)
    (tmp_path / "data").mkdir()
    for rows, want in (([f"imgs\\{p.name}" for p in imgs], imgs), ([f"café/{p.name}" for p in imgs], sorted(decomposed.iterdir()))):
        listed = tmp_path / "data" / "list.txt"
        listed.write_text("".join(f"{r}\n" for r in rows))
        listing = read_unlabeled(Path("data/list.txt"))
        assert listing.items == [p.resolve() for p in want] and "every one is in the working directory" in listing.notes[0]


COMPRESSORS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}


@pytest.mark.parametrize("compression", COMPRESSORS)
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".txt"])
def test_compressed_lists_and_label_files_are_read_as_their_inner_file(
    tmp_path: Path, imgs: list[Path], suffix: str, compression: str
) -> None:
    """Label files are commonly downloaded compressed (CIFAR-10N's labels as a .csv.gz); pandas reads them as they
    are. A `labels.csv.gz` was refused, "not a folder or a label file": read it as its uncompressed form, its inner
    suffix deciding the format."""
    rows = [(f"imgs/{p.name}", name) for p, name in zip(imgs, ["dog", "cat", "eel", "cat"])]
    text = {
        ".csv": "path,label\n" + "".join(f"{p},{n}\n" for p, n in rows),
        ".tsv": "path\tlabel\n" + "".join(f"{p}\t{n}\n" for p, n in rows),
        ".jsonl": "".join(json.dumps({"path": p, "label": n}) + "\n" for p, n in rows),
        ".txt": "".join(f"{p} {n}\n" for p, n in rows),
    }[suffix]
    plain = tmp_path / f"labels{suffix}"
    plain.write_text(text)
    packed = tmp_path / f"labels{suffix}{compression}"
    packed.write_bytes(COMPRESSORS[compression](text.encode()))
    expected = read_labeled(plain)
    listing = read_labeled(packed)
    assert (listing.items, listing.labels, listing.label_names) == (expected.items, expected.labels, expected.label_names)
    assert listing.labels == [1, 0, 2, 0]
    assert read_unlabeled(packed).items == read_unlabeled(plain).items == [p.resolve() for p in imgs]


def test_a_compressed_label_file_gives_the_numbers_of_the_plain_one(tmp_path: Path, imgs: list[Path]) -> None:
    """The same run on a label file and on its .csv.gz: the same report; the data's identity (which keys stored
    results) is the same, and changes when the compressed file's labels change."""
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    text = "path,label\n" + "".join(f"imgs/{p.name},{i % 3}\n" for i, p in enumerate(imgs))
    (tmp_path / "labels.csv").write_text(text)
    (tmp_path / "labels.csv.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "list.txt.bz2").write_bytes(bz2.compress("".join(f"imgs/{p.name}\n" for p in imgs).encode()))
    plain = cli_json("score", model, "-d", imgs[0].parent, "--train-data", tmp_path / "labels.csv", "--no-cache")
    packed = cli_json("score", model, "-d", tmp_path / "list.txt.bz2", "--train-data", tmp_path / "labels.csv.gz", "--no-cache")
    keys = ("train_acc", "susceptibility", "train_n")
    assert [plain["results"][0][k] for k in keys] == [packed["results"][0][k] for k in keys]

    def identity(path: Path) -> str | None:
        return suscli.run.audit.data_identity(labeled_source(path))

    before = identity(tmp_path / "labels.csv.gz")
    assert before == identity(tmp_path / "labels.csv")
    (tmp_path / "labels.csv.gz").write_bytes(gzip.compress(text.replace(",0\n", ",2\n").encode()))
    assert identity(tmp_path / "labels.csv.gz") != before


def test_a_compressed_utf16_label_file_is_decoded(tmp_path: Path, imgs: list[Path]) -> None:
    """The byte-order mark is looked for in the decompressed bytes: a UTF-16 CSV (Excel's "Unicode Text") gzipped."""
    text = "path,label\n" + "".join(f"imgs/{p.name},{'catdog'[3 * (i % 2) :][:3]}\n" for i, p in enumerate(imgs))
    (tmp_path / "labels.csv.gz").write_bytes(gzip.compress(text.encode("utf-16")))
    (tmp_path / "bom.csv.xz").write_bytes(lzma.compress(text.encode("utf-8-sig")))
    for name in ("labels.csv.gz", "bom.csv.xz"):
        assert read_labeled(tmp_path / name).label_names == ["cat", "dog"]


@pytest.mark.parametrize("compression", COMPRESSORS)
def test_a_truncated_or_corrupt_compressed_label_file_is_one_error_line(tmp_path: Path, imgs: list[Path], compression: str) -> None:
    """A download cut short: one line naming the file (exit 3), never a traceback (EOFError, zlib.error and
    lzma.LZMAError are no OSError)."""
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    text = "path,label\n" + "".join(f"imgs/{p.name},{i % 2}\n" for i, p in enumerate(imgs * 50))
    packed = COMPRESSORS[compression](text.encode())
    cut = tmp_path / f"cut.csv{compression}"
    cut.write_bytes(packed[: len(packed) // 2])
    res = invoke("score", model, "-d", imgs[0].parent, "--train-data", cut)
    one_error_line(res, 3, f"cannot read label file {cut}", "truncated or corrupt")
    bad = tmp_path / f"bad.csv{compression}"
    bad.write_bytes(packed[:20] + bytes(b ^ 0x55 for b in packed[20:]))
    res = invoke("score", model, "-d", imgs[0].parent, "--val-data", bad)
    one_error_line(res, 3, f"cannot read label file {bad}", "truncated or corrupt")
    res = invoke("score", model, "-d", cut)
    one_error_line(res, 3, f"cannot read image list {cut}", "truncated or corrupt")


def test_a_compressed_list_too_large_for_memory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compressed file is small on disk: its decompressed text is what must fit (a 10 kB .gz may hold 10 MB)."""
    (tmp_path / "list.txt.gz").write_bytes(gzip.compress(b"a.png\n" * 1000))
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    monkeypatch.setattr(suscli.data.tables, "available_memory", lambda: 10_000)
    res = invoke("score", model, "-d", tmp_path / "list.txt.gz")
    one_error_line(res, 3, "image list", "refused rather than swapping")


@pytest.mark.parametrize("name", ["set.tar.gz", "set.tgz", "set.zip", "set.tar.xz", "labels.gz", "model.pt.gz"])
def test_archives_and_other_compressed_files_are_still_refused(tmp_path: Path, imgs: list[Path], name: str) -> None:
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    (tmp_path / name).write_bytes(gzip.compress(b"path,label\n"))
    res = invoke("score", model, "-d", imgs[0].parent, "--train-data", tmp_path / name)
    archive = name.startswith("set.")
    one_error_line(res, 3, "is an archive, which suscli does not unpack" if archive else "not a folder or a label file")


def test_label_column_names_the_column_of_the_training_and_held_out_files_alike(tmp_path: Path) -> None:
    """A label file of several label columns (CIFAR-10N's `path,clean,aggre,random1`) split into training and held-out
    rows: --label-column picks its column in both, by name wherever it stands; a held-out file whose header lacks it
    is refused naming the file. One split with its header dropped (`tail -n +2`) said "row 1 is '...', expected
    'path,label' with a class id or a class name", the fix of a row: it has no header to find the column in."""
    imgs = write_images(tmp_path / "imgs", 8)
    noisy = [(i % 3, (i + 1) % 3) for i in range(8)]  # (clean, random1)
    rows = [f"imgs/{p.name},{c},{c},{r}\n" for p, (c, r) in zip(imgs, noisy)]
    (tmp_path / "train.csv").write_text("path,clean,aggre,random1\n" + "".join(rows[:4]))
    (tmp_path / "val.csv").write_text("path,clean,aggre,random1\n" + "".join(rows[4:]))
    (tmp_path / "moved.csv").write_text("random1,path\n" + "".join(f"{r},imgs/{p.name}\n" for p, (_, r) in zip(imgs[4:], noisy[4:])))
    for name in ("train.csv", "val.csv", "moved.csv"):
        listing = read_labeled(tmp_path / name, label_column="random1")
        assert listing.labels == [r for p, (_, r) in zip(imgs, noisy) if p.resolve() in listing.items]
    (tmp_path / "other.csv").write_text("path,label\n" + "".join(f"imgs/{p.name},{c}\n" for p, (c, _) in zip(imgs[4:], noisy[4:])))
    with pytest.raises(InputError, match=r"other.csv: its header \(path,label\) has no column 'random1'"):
        read_labeled(tmp_path / "other.csv", label_column="random1")
    (tmp_path / "bare.csv").write_text("".join(rows[4:]))
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    res = invoke(
        "score",
        model,
        "-d",
        imgs[0].parent,
        "--train-data",
        tmp_path / "train.csv",
        "--val-data",
        tmp_path / "bare.csv",
        "--label-column",
        "random1",
    )
    one_error_line(res, 3, f"{tmp_path / 'bare.csv'}: its first row", "no header", "'random1'")


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(write_images(path.parent / ".made", 1)[0], path)
    return path


def _cifar10_kaggle(root: Path) -> Path:
    """Kaggle's CIFAR-10 competition: trainLabels.csv `id,label`, ids 1, 2, ... naming train/1.png."""
    for i in range(1, 5):
        _image(root / "train" / f"{i}.png")
    (root / "trainLabels.csv").write_text("id,label\n1,frog\n2,truck\n3,truck\n4,deer\n")
    return root / "trainLabels.csv"


def _kaggle_image_id(root: Path) -> Path:
    """A Kaggle `train.csv` of `image_id,label`, ids with their extension, the images in train_images/."""
    for i in range(4):
        _image(root / "train_images" / f"{1000015157 + i}.jpg")
    (root / "train.csv").write_text("image_id,label\n" + "".join(f"{1000015157 + i}.jpg,{i % 2}\n" for i in range(4)))
    return root / "train.csv"


def _kaggle_id_jpg(root: Path) -> Path:
    """A Kaggle `train.csv` of `id,label`, ids without the extension of their .jpg images, in train/."""
    for i in range(4):
        _image(root / "train" / f"0a{i}f3b.jpg")
    (root / "train.csv").write_text("id,label\n" + "".join(f"0a{i}f3b,{('cat', 'dog')[i % 2]}\n" for i in range(4)))
    return root / "train.csv"


def _tiny_imagenet_val(root: Path) -> Path:
    """Tiny ImageNet's val/val_annotations.txt: tab-separated `file wnid x0 y0 x1 y1`, no header, the images in
    val/images/; read as `path label` lines, its last field, a box coordinate, was the label."""
    wnids = ("n01443537", "n03444034")
    for i in range(4):
        _image(root / "val" / "images" / f"val_{i}.JPEG")
    rows = [f"val_{i}.JPEG\t{wnids[i % 2]}\t{i}\t32\t44\t{60 + i}\n" for i in range(4)]
    (root / "val" / "val_annotations.txt").write_text("".join(rows))
    return root / "val" / "val_annotations.txt"


def _pet_trainval(root: Path) -> Path:
    """Oxford-IIIT Pet's annotations/trainval.txt: `Abyssinian_100 1 1 1` (name without extension, CLASS-ID, SPECIES,
    BREED ID), the images in images/."""
    rows = [("Abyssinian_100", 1, 1, 1), ("Abyssinian_101", 1, 1, 1), ("american_bulldog_10", 2, 2, 1), ("Bengal_1", 6, 1, 3)]
    for name, *_ in rows:
        _image(root / "images" / f"{name}.jpg")
    (root / "annotations").mkdir()
    (root / "annotations" / "trainval.txt").write_text("".join(f"{n} {c} {s} {b}\n" for n, c, s, b in rows))
    return root / "annotations" / "trainval.txt"


def _pet_list(root: Path) -> Path:
    """Oxford-IIIT Pet's annotations/list.txt: trainval.txt's lines after six `#` comment lines naming the columns."""
    listed = _pet_trainval(root)
    comments = "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n#SPECIES: 1:Cat 2:Dog\n#BREED ID: 1-25:Cat 1:12:Dog\n"
    comments += "#All images with 1st letter as captial are cat images\n#images with small first letter are dog images\n"
    (root / "annotations" / "list.txt").write_text(comments + listed.read_text())
    return root / "annotations" / "list.txt"


@pytest.mark.parametrize(
    ("make", "hint"),
    [
        (_cifar10_kaggle, "once train/ is put before each and .png after it (row 1's 1 is train/1.png)"),
        (_kaggle_image_id, "once train_images/ is put before each (row 1's 1000015157.jpg is train_images/1000015157.jpg)"),
        (_kaggle_id_jpg, "once train/ is put before each and .jpg after it (row 1's 0a0f3b is train/0a0f3b.jpg)"),
        (
            _tiny_imagenet_val,
            "its lines hold more fields than a path and a label, and the last was read as the label; their first field names a file once images/ is put before it (row 1's val_0.JPEG is images/val_0.JPEG)",
        ),
        (
            _pet_trainval,
            "its lines hold more fields than a path and a label, and the last was read as the label; their first field names a file once ../images/ is put before it and .jpg after it (row 1's Abyssinian_100 is ../images/Abyssinian_100.jpg)",
        ),
        (
            _pet_list,
            "its lines hold more fields than a path and a label, and the last was read as the label; their first field names a file once ../images/ is put before it and .jpg after it (row 1's Abyssinian_100 is ../images/Abyssinian_100.jpg)",
        ),
    ],
)
def test_a_downloaded_label_file_whose_paths_need_a_folder_or_extension_says_which(
    tmp_path: Path, make: Callable[[Path], Path], hint: str
) -> None:
    """Public datasets' label files name their images by an id (Kaggle's CIFAR-10 `1` for train/1.png, Tiny
    ImageNet's `val_0.JPEG` in images/, Oxford-IIIT Pet's `Abyssinian_100` for images/Abyssinian_100.jpg): every file
    was missing, "none of the 4 files that trainLabels.csv lists exist, first: .../1", which did not say that each is
    there once a folder or extension is added, nor, for a line of several fields, that its label was read from the
    last one (a box coordinate, a breed id). The run still stops before measuring, naming the paths that would work."""
    labels = make(tmp_path)
    model = suscli.save(tiny_cnn(), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    images = write_images(tmp_path / "unlabeled", 4)
    res = invoke("score", model, "-d", images[0].parent, "--train-data", labels, "--batches", "1", "--batch-size", "2")
    one_error_line(res, 3, f"files that {labels} lists exist", hint, "as it is from the list's folder")


def test_comment_lines_of_a_txt_are_left_out_but_a_file_named_with_a_hash_is_a_row(tmp_path: Path, imgs: list[Path]) -> None:
    """`#` lines of a .txt are comments (Oxford-IIIT Pet's list.txt begins with six), unless one names a file."""
    hashed = imgs[0].rename(imgs[0].with_name("#0.png"))
    listed = tmp_path / "list.txt"
    listed.write_text(f"# path label\nimgs/{hashed.name} cat\n#imgs/{imgs[1].name} dog\nimgs/{imgs[2].name} dog\n")
    paths, labels, names = read_label_csv(listed)
    assert paths == [hashed.resolve(), imgs[2].resolve()] and names == ["cat", "dog"] and labels == [0, 1]
    assert read_unlabeled(listed).items == [hashed.resolve(), imgs[2].resolve()]


def _class_folder_list(root: Path, rows: list[str]) -> Path:
    """A .txt naming images in class folders, one path a line and no label, as ImageNet's
    `n01440764/n01440764_10026.JPEG` lists: the images are made where the rows say."""
    for row in rows:
        _image(root / row)
    (root / "list.txt").write_text("".join(f"{row}\n" for row in rows))
    return root / "list.txt"


def test_a_txt_of_images_in_class_folders_is_read_as_the_class_folders(tmp_path: Path) -> None:
    """A list of images in class folders without a label column was refused ("row 1 is 'n01/a.png', expected 'path
    label'"), though the folders give each image's class as a folder of class folders does. It is read so: the same
    images, labels and folders as the folder itself, with a note saying where the labels came from; a class folder
    none of its rows names keeps its id, as an empty class folder does."""
    rows = ["n02/b.png", "n01/a.png", "n03/c.png", "n01/d.png"]
    listed = _class_folder_list(tmp_path, rows)
    folder, read = read_labeled(tmp_path), read_labeled(listed)
    assert read.folders == folder.folders == ["n01", "n02", "n03"]
    assert dict(zip(read.items, read.labels or [])) == dict(zip(folder.items, folder.labels or []))
    assert any("labels are the class folders" in n for n in read.notes), read.notes
    listed.write_text("n01/a.png\nn03/c.png\n")
    read = read_labeled(listed)
    assert read.folders == ["n01", "n02", "n03"] and read.labels == [0, 2]
    (tmp_path / "self").symlink_to(tmp_path)  # a link back up is no class, in the folder or the list of it
    assert read_labeled(listed).folders == read_labeled(tmp_path).folders == ["n01", "n02", "n03"]
    model = suscli.save(tiny_cnn(3), tmp_path / "m.safetensors", arch=ARCH, image_size=8)
    res = invoke("score", model, "-d", tmp_path / "n01", "--train-data", listed, "--batches", "1", "--batch-size", "2")
    assert res.exit_code == 0, res.output


def test_a_txt_of_images_in_class_folders_at_unlike_depths_names_the_fix(tmp_path: Path) -> None:
    """Rows in class folders at different depths (`cat/1.png` beside `train/dog/2.png`) say no one level is the class:
    refused, and the line names the fixes rather than a 'path label' row to write."""
    listed = _class_folder_list(tmp_path, ["cat/1.png", "train/dog/2.png"])
    with pytest.raises(InputError, match="not all in class folders at one depth") as e:
        read_labeled(listed)
    assert "pass the images' folder" in str(e.value.fix) and "label" in str(e.value.fix)


def test_food101_meta_list_names_the_folder_and_extension_its_rows_need(tmp_path: Path) -> None:
    """Food-101's meta/train.txt (`apple_pie/1005649`, relative to ../images/, no .jpg) was refused as a bad row
    ("expected 'path label'"); read as a list of class folders, the run now stops naming what makes each row a file."""
    for row in ("apple_pie/1005649", "apple_pie/1011328", "baklava/1006121"):
        _image(tmp_path / "images" / f"{row}.jpg")
    (tmp_path / "meta").mkdir()
    listed = tmp_path / "meta" / "train.txt"
    listed.write_text("apple_pie/1005649\napple_pie/1011328\nbaklava/1006121\n")
    with pytest.raises(InputError, match=r"they are files once \.\./images/ is put before each and \.jpg after it"):
        read_labeled(listed)
