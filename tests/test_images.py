from __future__ import annotations

import dataclasses
import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from suscli.errors import InputError, UsageError
from suscli.data.images import Preprocess, Sizing, decode_images, deep_note, labeled_source, normalizer, seeded_subset, unlabeled_source
from suscli.data.imagesets import list_images, read_labeled
from suscli.data.tables import read_image_list
from tests.conftest import invoke, one_error_line, write_images
from tests.test_cli_rank import make_pool


def test_listing_is_recursive_sorted_and_filtered(tmp_path: Path) -> None:
    write_images(tmp_path / "b", 2, suffix=".jpg")
    write_images(tmp_path / "a" / "deep", 2, suffix=".png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    found = list_images(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a/deep/img_000.png",
        "a/deep/img_001.png",
        "b/img_000.jpg",
        "b/img_001.jpg",
    ]


@pytest.mark.parametrize("make", ["missing", "empty", "no_images", "file"])
def test_bad_folders(tmp_path: Path, make: str) -> None:
    target = tmp_path / "data"
    if make == "empty":
        target.mkdir()
    elif make == "no_images":
        target.mkdir()
        (target / "readme.md").write_text("hi")
    elif make == "file":
        target.write_text("x")
    with pytest.raises(InputError) as e:
        list_images(target)
    assert str(target) in e.value.line() and "\n" not in e.value.line()


def test_seeded_subset() -> None:
    a = seeded_subset(100, 10, seed=1)
    assert a == seeded_subset(100, 10, seed=1) and a != seeded_subset(100, 10, seed=2)
    assert a == sorted(a) and len(set(a)) == 10
    assert seeded_subset(5, 10, seed=0) == [0, 1, 2, 3, 4]


def test_channels_resize_and_crop(tmp_path: Path) -> None:
    gray = write_images(tmp_path / "g", 1, size=20, mode="L")
    rgba = write_images(tmp_path / "r", 1, size=12, mode="RGBA")
    wide = tmp_path / "wide.png"
    from PIL import Image

    Image.new("RGB", (40, 20), (255, 0, 0)).save(wide)
    d = decode_images(gray + rgba + [wide], 8, channels=3)
    assert d.pixels.shape == (3, 3, 8, 8) and d.pixels.dtype == torch.uint8
    assert torch.all(d.pixels[2, 0] == 255) and torch.all(d.pixels[2, 1] == 0)
    g = decode_images(rgba, 8, channels=1)
    assert g.pixels.shape == (1, 1, 8, 8)


def test_unreadable_files_are_counted_or_fatal_with_strict(tmp_path: Path) -> None:
    good = write_images(tmp_path, 3)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    d = decode_images(sorted(good + [bad]), 8)
    assert len(d.pixels) == 3 and [p for p, _ in d.unreadable] == [bad]
    with pytest.raises(InputError, match="broken.jpg"):
        decode_images(sorted(good + [bad]), 8, strict=True)
    with pytest.raises(InputError, match="none of the 1 image files"):
        decode_images([bad], 8)


def test_an_undecodable_image_of_a_dataset_is_named_by_its_row_not_a_memory_address() -> None:
    """An image held in a dataset file is opened from its bytes, and PIL's error named them as "cannot identify image
    file <_io.BytesIO object at 0x7f...>": an address that changes every run, in --strict's error and in the one
    that none of a set decodes. The error names the dataset's row, as the message's path does."""
    from suscli.data.embedded import Embedded

    rows = [Embedded(Path("data.parquet"), i, lambda row: b"not an image") for i in range(2)]
    with pytest.raises(InputError) as info:
        decode_images(rows, 8, strict=True)
    assert "cannot identify image file 'data.parquet[0]'" in str(info.value) and "BytesIO" not in str(info.value)
    with pytest.raises(InputError) as info:
        decode_images(rows, 8)
    assert "the first (data.parquet[0]): UnidentifiedImageError: cannot identify image file 'data.parquet[0]'" in str(info.value)


def test_file_and_folder_names_that_are_not_utf8_are_measured_and_reported(tmp_path: Path, image_folder: Path, train_folder: Path) -> None:
    """A Latin-1 name from an old archive (its bytes kept by Python as lone surrogates) crashed the cache key, the
    results file's data identity, the CSV report and the --suspects CSV: each now carries it as \\xNN, as `ls -b`."""
    try:
        os.rename(os.fsencode(image_folder / "img_000.png"), os.fsencode(image_folder) + b"/caf\xe9.png")
        (Path(os.fsdecode(os.fsencode(image_folder) + b"/bad_\xe9.png"))).write_bytes(b"not an image")
        os.rename(os.fsencode(train_folder / "class_2"), os.fsencode(train_folder) + b"/class_2\xe9")
    except (OSError, UnicodeError):
        pytest.skip("this file system takes UTF-8 names only")
    pool, suspects = make_pool(tmp_path / "pool"), tmp_path / "suspects.csv"
    for form in ("csv", "json"):
        res = invoke("rank", pool, "-d", image_folder, "--train-data", train_folder, "-f", form, "--batches", "2",
                     "--batch-size", "8", "--suspects", suspects)  # fmt: skip
        assert res.exit_code == 0, res.output
        notes = res.stdout if form == "csv" else " ".join(json.loads(res.stdout)["results"][0]["notes"])
        assert "1 unreadable image skipped, first: " in notes and "bad_\\xe9.png" in notes
    assert "class_2\\xe9" in suspects.read_text(encoding="utf-8")


def test_a_list_naming_files_in_bytes_that_are_not_utf8_finds_them(tmp_path: Path) -> None:
    """A list written by `find` over Latin-1 names holds those bytes as they are: it was refused ("'utf-8' codec
    can't decode byte"), though the folder itself is read; its rows now find their files, in a .txt and a CSV."""
    imgs = write_images(tmp_path / "imgs", 3)
    try:
        os.rename(os.fsencode(imgs[0]), os.fsencode(tmp_path / "imgs") + b"/caf\xe9.png")
    except (OSError, UnicodeError):
        pytest.skip("this file system takes UTF-8 names only")
    names = [b"caf\xe9.png", imgs[1].name.encode(), imgs[2].name.encode()]
    (tmp_path / "list.txt").write_bytes(b"".join(b"imgs/" + n + b"\n" for n in names))
    (tmp_path / "labels.csv").write_bytes(b"path,label\n" + b"".join(b"imgs/" + n + b",%d\n" % (i % 2) for i, n in enumerate(names)))
    wanted = [Path(os.fsdecode(os.fsencode(tmp_path / "imgs") + b"/" + n)).resolve() for n in names]
    assert read_image_list(tmp_path / "list.txt") == wanted
    assert read_labeled(tmp_path / "labels.csv").items == wanted


def test_image_folder_labels_follow_sorted_class_names(train_folder: Path) -> None:
    listing = read_labeled(train_folder)
    assert listing.labels == [0] * 6 + [1] * 6 + [2] * 6 and listing.label_names is None
    assert all(p.parent.name == f"class_{label}" for p, label in zip(listing.items, listing.labels))


def test_single_class_folder_is_an_error(tmp_path: Path) -> None:
    write_images(tmp_path / "train" / "only", 3)
    with pytest.raises(InputError, match="single class folder"):
        read_labeled(tmp_path / "train")


def test_label_csv(tmp_path: Path) -> None:
    imgs = write_images(tmp_path / "imgs", 3)
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "".join(f"imgs/{p.name},{i % 2}\n" for i, p in enumerate(imgs)))
    listing = read_labeled(csv)
    assert listing.items == [p.resolve() for p in imgs] and listing.labels == [0, 1, 0] and listing.label_names is None


@pytest.mark.parametrize("row", ["imgs/a.png,cat", "imgs/a.png", "imgs/a.png,-1", "imgs/a.png,1,2"])
def test_label_csv_bad_rows_name_the_row(tmp_path: Path, row: str) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text(f"x.png,0\n{row}\n")
    with pytest.raises(InputError, match="row 2"):
        read_labeled(csv)


def test_label_csv_with_one_class(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("a.png,3\nb.png,3\n")
    with pytest.raises(InputError, match="every row has label 3"):
        read_labeled(csv)


def test_sources_decode_once_and_keep_labels_aligned(tmp_path: Path, train_folder: Path) -> None:
    (train_folder / "class_1" / "img_002.png").write_bytes(b"garbage")
    src = labeled_source(train_folder)
    pixels, labels, bad = src.decoded(8, 3)
    assert len(pixels) == 17 and len(bad) == 1 and labels.tolist() == [0] * 6 + [1] * 5 + [2] * 6
    assert src.decoded(8, 3)[0] is pixels  # cached: a second model costs no decoding
    assert src.decoded(np.int64(8), 3)[0] is pixels  # a size read from numpy (a tracker's image_size) is the same side
    sub = unlabeled_source(train_folder, samples=5, seed=0)
    assert len(sub.paths) == 5 and sub.population == 18


def test_normalizer_matches_formula_and_adapts_to_gray() -> None:
    x = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    out = normalizer((0.5, 0.5, 0.5), (0.25, 0.5, 1.0))(x)
    assert out[0, :, 0, 0].tolist() == pytest.approx([2.0, 1.0, 0.5])
    gray = normalizer((0.2, 0.4, 0.6), (1.0, 1.0, 1.0))(torch.zeros((1, 1, 2, 2), dtype=torch.uint8))
    assert gray[0, 0, 0, 0].item() == pytest.approx(-0.4)
    with pytest.raises(UsageError):
        normalizer((0.1, 0.2), (1.0, 1.0))(x)


def test_a_bgr_model_gets_the_normalized_channels_reversed_and_the_same_decoded_pixels(train_folder: Path) -> None:
    """channel_order "BGR" reverses the channels after normalizing them with the RGB image's statistics (as MobileViT's
    and PP-LCNet's processors do), in the per-model transform: the decoded pixels and their cache key are an RGB
    model's. A record stored before the order was recorded was fed RGB."""
    x = torch.tensor([10, 120, 250], dtype=torch.uint8).view(1, 3, 1, 1)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    rgb = normalizer(mean, std)(x)
    assert torch.equal(normalizer(mean, std, "BGR")(x), rgb.flip(1)) and not torch.equal(rgb.flip(1), rgb)
    assert torch.equal(normalizer(mean, std, "RGB")(x), rgb)
    gray = torch.zeros((1, 1, 2, 2), dtype=torch.uint8)
    assert torch.equal(normalizer(mean, std, "BGR")(gray), normalizer(mean, std)(gray))  # one channel: nothing to reverse
    with pytest.raises(UsageError):
        normalizer(mean, std, "bgr")
    record = {"image_size": 8, "mean": [0.0] * 3, "std": [1.0] * 3, "crop_pct": 1.0}
    assert Preprocess.from_record(record).channel_order == "RGB"
    assert Preprocess.from_record({**record, "channel_order": "BGR"}).channel_order == "BGR"
    source, prep = unlabeled_source(train_folder), Preprocess(8, mean, std)
    assert source.decoded(prep.sizing, 3)[0] is source.decoded(dataclasses.replace(prep, channel_order="BGR").sizing, 3)[0]  # one decode


def test_a_macos_zips_metadata_folder_is_no_class_and_holds_no_images(train_folder: Path) -> None:
    """A zip made on macOS unpacks a `__MACOSX` folder of `._NAME` resource forks beside the class folders: taken as a
    class, it sorted first and shifted every class id by one."""
    clutter = train_folder / "__MACOSX" / "class_0"
    clutter.mkdir(parents=True)
    (clutter / "._img_000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (clutter / "img_000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # unpacked without its dot by some tools
    listing = read_labeled(train_folder)
    assert listing.folders == ["class_0", "class_1", "class_2"] and listing.labels == [0] * 6 + [1] * 6 + [2] * 6
    assert all("__MACOSX" not in str(p) for p in list_images(train_folder))


def test_every_suffix_torchvisions_image_folder_reads_is_listed_and_decoded(tmp_path: Path) -> None:
    """GTSRB's training images are .ppm and many face sets .pgm: a model trained on them with ImageFolder found "no
    image files" in its own training folder, or its .ppm images silently left out beside others."""
    import torchvision.datasets.folder

    for suffix in torchvision.datasets.folder.IMG_EXTENSIONS:
        write_images(tmp_path / "imgs" / suffix[1:], 1, mode="L" if suffix == ".pgm" else "RGB", suffix=suffix.upper())
    found = list_images(tmp_path / "imgs")
    assert sorted(p.suffix.lower() for p in found) == sorted(torchvision.datasets.folder.IMG_EXTENSIONS)
    assert len(decode_images(found, 8).kept) == len(found)


def test_class_folders_without_images_keep_their_ids_and_are_noted(train_folder: Path) -> None:
    """ImageFolder refuses an empty class folder; here it keeps its id (the folders after it are numbered as sorted
    names number them), and the notes say so: a stray empty folder that is no class was measured without a word."""
    (train_folder / "class_1a").mkdir()
    listing = read_labeled(train_folder)
    assert listing.labels == [0] * 6 + [1] * 6 + [3] * 6
    assert listing.notes == [
        f"{train_folder}: 1 class folder without images (class_1a) keeps its class id, as sorted folder names number them"
    ]
    for c in (0, 2):
        for p in (train_folder / f"class_{c}").iterdir():
            p.unlink()
    with pytest.raises(InputError, match=r"images in one class folder only \(class_1\); a set of one class"):
        read_labeled(train_folder)


def test_images_beside_the_class_folders_are_said_to_be_in_no_class(tmp_path: Path) -> None:
    """A folder of images holding two subfolders (`aug/`, `rejected/`) is read as two class folders, as ImageFolder
    reads it, and the images beside them, the set itself, belong to no class: they were left out without a word, and
    the training accuracy of the two stray folders measured as the set's. The notes say so now."""
    write_images(tmp_path / "flat", 5)
    write_images(tmp_path / "flat" / "aug", 2, seed=1)
    write_images(tmp_path / "flat" / "rejected", 2, seed=2)
    (tmp_path / "flat" / "._img_000.png").write_bytes(b"\x00\x05\x16\x07")  # hidden: no image, said of no one
    listing = read_labeled(tmp_path / "flat")
    assert listing.folders == ["aug", "rejected"] and listing.labels == [0, 0, 1, 1]
    assert listing.notes == [
        f"{tmp_path / 'flat'}: 5 images beside its class folders (first: img_000.png) are in no class: left out, as "
        "torchvision's ImageFolder leaves them out (a folder of images is --data; --train-data takes one subfolder per class)"
    ]


def test_pixels_are_those_torchvisions_image_folder_loads(tmp_path: Path) -> None:
    """Odd files users' folders hold decode as ImageFolder's loader reads them for training (docs/score.md, Pixels):
    CMYK and palette images converted, alpha dropped, a GIF's first frame, no EXIF rotation, 16-bit values clipped."""
    import numpy as np
    from PIL import Image
    from torchvision.datasets.folder import pil_loader

    rng = np.random.default_rng(0)

    def rgb() -> Image.Image:
        return Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))

    rgb().convert("CMYK").save(tmp_path / "cmyk.jpg")
    rgb().convert("P").save(tmp_path / "palette.png", transparency=0)
    Image.fromarray(rng.integers(0, 256, (12, 12, 4), dtype=np.uint8), "RGBA").save(tmp_path / "rgba.png")
    rgb().save(tmp_path / "anim.gif", save_all=True, append_images=[rgb(), rgb()])
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    rgb().save(tmp_path / "rotated.jpg", exif=exif)
    Image.fromarray(rng.integers(0, 65536, (12, 12)).astype(np.uint16)).save(tmp_path / "gray16.png")
    paths = sorted(tmp_path.iterdir())
    decoded = decode_images(paths, 12)
    for path, pixels in zip(paths, decoded.pixels):
        assert torch.equal(pixels, torch.from_numpy(np.array(pil_loader(str(path)))).permute(2, 0, 1)), path.name


def test_sixteen_bit_grayscale_images_are_read_clipped_and_said_to_be(tmp_path: Path) -> None:
    """A 16-bit grayscale PNG (PIL's I;16: a medical, microscopy or depth image) is read as ImageFolder's loader reads
    it, every value above 255 clipped to white (the test above pins it), and a model was measured on blank images
    without a word, in score, rank and the held-out set. Every row now says which set holds such images."""
    from PIL import Image

    pool = make_pool(tmp_path / "pool", n=2)
    values = np.random.default_rng(0).integers(0, 65536, (8, 8)).astype(np.uint16)
    for folder in ("deep", "deep_val/0", "deep_val/1", "deep_val/2"):
        (tmp_path / folder).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(values).save(tmp_path / folder / f"{i}.png")
    plain = write_images(tmp_path / "plain", 8)[0].parent
    res = invoke("score", pool / "m0.safetensors", "-d", tmp_path / "deep", "-f", "json", "--batches", "1")
    assert res.exit_code == 0, res.output
    (note,) = [n for n in json.loads(res.stdout)["results"][0]["notes"] if "bit grayscale" in n]
    assert "deep" in note and "I;16" in note and "clipped" in note and "high byte" in note
    res = invoke("rank", pool, "-d", plain, "--val-data", tmp_path / "deep_val", "-f", "json", "--batches", "1")
    assert res.exit_code == 0, res.output
    assert all(any("bit grayscale" in n and "deep_val" in n for n in row["notes"]) for row in json.loads(res.stdout)["results"])
    res = invoke("score", pool / "m0.safetensors", "-d", plain, "-f", "json", "--batches", "1")
    assert not any("bit grayscale" in n for n in json.loads(res.stdout)["results"][0]["notes"])


def test_a_set_mixing_float_and_sixteen_bit_images_says_how_each_kind_is_read(tmp_path: Path) -> None:
    """A folder of float and 16-bit grayscale images, read two ways (cut, clipped), got the float note alone: nothing
    said its 16-bit images were clipped."""
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), dtype=np.float32), "F").save(tmp_path / "a.tif")
    Image.fromarray(np.zeros((8, 8), dtype=np.uint16)).save(tmp_path / "b.png")
    Image.fromarray(np.zeros((8, 8), dtype=np.uint16)).save(tmp_path / "c.png")
    notes = deep_note(sorted(tmp_path.iterdir()), tmp_path)
    assert [n.split(":")[0] for n in notes] == [
        f"1 of the 3 images of {tmp_path} are floating-point grayscale (PIL mode F)",
        f"2 of the 3 images of {tmp_path} are 16- or 32-bit grayscale (PIL mode I;16)",
    ]
    (tmp_path / "d.png").write_bytes(b"")  # a file whose header does not read is not counted among the images read
    notes = deep_note(sorted(tmp_path.iterdir()), tmp_path)
    assert notes[1].startswith(f"2 of the 3 readable images of {tmp_path} are 16- or 32-bit grayscale"), notes


def test_float_grayscale_images_are_read_black_as_image_folder_reads_them_and_said_to_be(tmp_path: Path) -> None:
    """A float TIFF (PIL's mode F, values from 0 to 1: a depth map, a normalized scan) reads all black, as ImageFolder's
    loader reads it (convert cuts every value to a whole number from 0 to 255), and the note for 16-bit sets did not
    cover it: a model was measured on black images without a word. Its rows now say so, and how to convert them."""
    from PIL import Image
    from torchvision.datasets.folder import pil_loader

    (tmp_path / "float").mkdir()
    values = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    for i in range(4):
        Image.fromarray(values, "F").save(tmp_path / "float" / f"{i}.tif")
    paths = sorted((tmp_path / "float").iterdir())
    decoded = decode_images(paths, 8)
    assert int(decoded.pixels.max()) == 0
    assert torch.equal(decoded.pixels[0], torch.from_numpy(np.array(pil_loader(str(paths[0])))).permute(2, 0, 1))
    pool = make_pool(tmp_path / "pool", n=1)
    res = invoke("score", pool / "m0.safetensors", "-d", tmp_path / "float", "-f", "json", "--batches", "1")
    assert res.exit_code == 0, res.output
    (note,) = [n for n in json.loads(res.stdout)["results"][0]["notes"] if "float" in n]
    assert note == (
        f"4 of the 4 images of {tmp_path / 'float'} are floating-point grayscale (PIL mode F): read as torchvision's "
        "ImageFolder reads them, every value cut to a whole number from 0 to 255 (values from 0 to 1 reach the model "
        "black); if it was trained on them scaled to 8 bits, convert them so first (times 255)"
    )


def test_an_image_at_the_input_size_is_still_resized_and_cropped_below_crop_pct_1(tmp_path: Path) -> None:
    """`--preset imagenet` on 224 px images: torchvision resizes to 256 and crops the center 224, but an image already
    at the input size was passed through unchanged, so the model saw the whole image instead of its center."""
    import numpy as np
    from PIL import Image
    from torchvision import transforms

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)).save(tmp_path / "sq.png")
    theirs = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.PILToTensor()])
    ours = decode_images([tmp_path / "sq.png"], Sizing(224, crop_pct=0.875)).pixels[0]
    assert torch.equal(ours, theirs(Image.open(tmp_path / "sq.png").convert("RGB")))


def test_a_jpeg_is_never_decoded_smaller_than_the_side_it_is_resized_to(tmp_path: Path) -> None:
    """JPEG decoding at a reduced scale asked for the input size (224), not the side resized to (256 at crop 0.875): a
    450 px photo was decoded at 225 px and enlarged to 256, a blurred view. It is decoded whole, resized as torchvision's
    Resize(256) + CenterCrop(224) does; one at least twice that side is still decoded at a reduced scale, no smaller."""
    import numpy as np
    from PIL import Image
    from torchvision import transforms

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (450, 450, 3), dtype=np.uint8)).save(tmp_path / "photo.jpg", quality=95)
    Image.fromarray(rng.integers(0, 256, (520, 1040, 3), dtype=np.uint8)).save(tmp_path / "large.jpg", quality=95)
    theirs = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.PILToTensor()])
    ours = decode_images([tmp_path / "photo.jpg"], Sizing(224, crop_pct=0.875)).pixels[0]
    assert torch.equal(ours, theirs(Image.open(tmp_path / "photo.jpg").convert("RGB")))
    sizes: list[tuple[int, int]] = []
    resize = Image.Image.resize
    with pytest.MonkeyPatch.context() as m:
        m.setattr(Image.Image, "resize", lambda self, *a, **k: sizes.append(self.size) or resize(self, *a, **k))
        decode_images([tmp_path / "large.jpg"], Sizing(224, crop_pct=0.875, resize="stretch"))
    assert sizes == [(520, 260)]  # half its size: both sides at least 256


def test_a_link_among_class_folders_that_leads_back_up_is_no_class(train_folder: Path, tmp_path: Path) -> None:
    """`ln -s . self` beside the class folders made `self` a class holding every training image again; a link to a
    class folder kept elsewhere is still a class."""
    (train_folder / "self").symlink_to(".")
    (train_folder / "up").symlink_to("..")
    write_images(tmp_path / "elsewhere" / "class_3", 2)
    (train_folder / "class_3").symlink_to(tmp_path / "elsewhere" / "class_3")
    listing = read_labeled(train_folder)
    assert listing.folders == ["class_0", "class_1", "class_2", "class_3"] and listing.labels == [0] * 6 + [1] * 6 + [2] * 6 + [3] * 2
    assert listing.notes == [f"{train_folder}: skipped 2 links to a folder that holds them (a cycle)"]


def test_a_sliver_of_an_image_is_decoded_without_resizing_it_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1x100,000 PNG is 370 bytes, under PIL's decompression-bomb limit, and resized whole to a short side of 256
    (224 px at ImageNet's crop) it is 6.5 Gpixel: 20 GB, a MemoryError or the kernel's OOM killer. Only the part
    the center crop keeps is resized; an image of ordinary shape is resized whole, as before."""
    from PIL import Image

    Image.new("RGB", (1_000_000, 1), (10, 200, 30)).save(tmp_path / "wide.png")  # resized whole: 400 Mpixel
    Image.new("RGB", (1, 100_000), (90, 20, 250)).save(tmp_path / "tall.png")
    Image.new("RGB", (3000, 40), (5, 6, 7)).save(tmp_path / "banner.png")
    made: list[int] = []
    resize = Image.Image.resize

    def bounded(self: Image.Image, size: tuple[int, int], *args: object, **kwargs: object) -> Image.Image:
        made.append(size[0] * size[1])
        if made[-1] > Image.MAX_IMAGE_PIXELS:  # fail before allocating it
            raise MemoryError(f"resizing to {size}")
        return resize(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", bounded)
    decoded = decode_images(sorted(tmp_path.iterdir()), Sizing(224, crop_pct=0.875))
    assert not decoded.unreadable, decoded.unreadable
    assert 19200 * 256 in made  # the banner, resized whole
    colors = [tuple(decoded.pixels[i, :, 100, 100].tolist()) for i in range(3)]
    assert colors == [(5, 6, 7), (90, 20, 250), (10, 200, 30)]


def test_images_decode_where_pils_pixel_limit_is_lifted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Image.MAX_IMAGE_PIXELS = None` (PIL's way to lift its decompression-bomb limit, common in notebooks) made the
    memory bound of a resize compare a number with None: every image unreadable, "none of the image files could be
    decoded". PIL's default limit then bounds it, and a sliver is still resized in part."""
    from PIL import Image

    Image.new("RGB", (40, 30), (1, 2, 3)).save(tmp_path / "photo.png")
    Image.new("RGB", (1_000_000, 1), (10, 200, 30)).save(tmp_path / "wide.png")  # resized whole: 400 Mpixel
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    made: list[int] = []
    resize = Image.Image.resize
    monkeypatch.setattr(Image.Image, "resize", lambda self, size, *a, **k: made.append(size[0] * size[1]) or resize(self, size, *a, **k))
    decoded = decode_images(sorted(tmp_path.iterdir()), Sizing(16, crop_pct=0.8))
    assert not decoded.unreadable, decoded.unreadable
    assert max(made) < 10**6  # the sliver: its crop alone


@pytest.mark.parametrize("model_batch", ["1", "3"])
def test_a_pool_decodes_each_image_once(
    tmp_path: Path, image_folder: Path, train_folder: Path, monkeypatch: pytest.MonkeyPatch, model_batch: str
) -> None:
    """docs/performance.md, "Decode once per pool": every unlabeled, training and held-out image is decoded once for
    the whole pool, not once per model, with or without models measured together."""
    import collections

    import suscli.data.images

    decoded: collections.Counter[str] = collections.Counter()
    real = suscli.data.images._decode_one
    monkeypatch.setattr(suscli.data.images, "_decode_one", lambda p, *a: decoded.update([str(p)]) or real(p, *a))
    val = tmp_path / "val"
    for c in range(3):
        write_images(val / f"class_{c}", 2, seed=20 + c)
    pool = make_pool(tmp_path / "pool", n=4)
    res = invoke("rank", pool, "-d", image_folder, "--train-data", train_folder, "--val-data", val, "--no-cache",
                 "--model-batch", model_batch, "--batches", "2", "--batch-size", "8", "-f", "json")  # fmt: skip
    assert res.exit_code == 0 and len(json.loads(res.stdout)["results"]) == 4, res.output
    assert len(decoded) == 24 + 18 + 6 and set(decoded.values()) == {1}


@pytest.mark.parametrize("model_batch", [1, 3])
def test_rank_shows_the_decoding_in_its_progress(tmp_path: Path, image_folder: Path, train_folder: Path, model_batch: int) -> None:
    """rank's progress bar stood at "models 0/N" while it decoded the images (minutes for a large set at 224 px):
    its models are measured with the progress of score, decoding included."""
    import suscli

    stages: set[str] = set()
    report = suscli.rank(
        make_pool(tmp_path / "pool", n=3),
        image_folder,
        train_folder,
        settings=suscli.Settings(susceptibility=suscli.SusceptibilityConfig(batches=2, batch_size=8)),
        inputs=suscli.Inputs(cache=False, model_batch=model_batch),
        progress=lambda stage, done, total: stages.add(stage),
    )
    assert report is not None and {"models", "decode images", "susceptibility"} <= stages, stages


def test_an_imagefolders_orientation_scan_is_cached_with_its_decoded_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether a Hugging Face ImageFolder's images are turned by their EXIF orientation was read from every image's
    header on every run (60-70 us an image), though their decoded pixels came from the cache: the answer is kept
    in the cache too, keyed by the files' identities as a decoded entry is, so a changed file is scanned again, and
    --no-cache (no cache folder) scans every time."""
    from PIL import Image

    import suscli.data.images

    photos = write_images(tmp_path / "hf", 4)
    (tmp_path / "hf" / "metadata.csv").write_text("file_name,label\n" + "".join(f"{p.name},{i % 2}\n" for i, p in enumerate(photos)))
    scanned: list[object] = []
    sideways = suscli.data.images._sideways
    monkeypatch.setattr(suscli.data.images, "_sideways", lambda path: scanned.append(path) or sideways(path))
    cache = tmp_path / "cache"

    def turned(read: Callable[..., suscli.data.images.ImageSource], cache_dir: Path | None = cache) -> tuple[bool, int]:
        scanned.clear()
        return read(tmp_path / "hf", cache_dir=cache_dir).upright, len(scanned)

    assert turned(labeled_source) == (False, 4)
    assert turned(labeled_source) == turned(unlabeled_source) == (False, 0)  # the same files: the cached answer
    assert turned(labeled_source, None) == (False, 4)
    with Image.open(photos[2]) as img:
        exif = img.getexif()
        exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to view
        img.save(photos[2], exif=exif.tobytes())
    assert turned(unlabeled_source)[0] is True and scanned
    assert turned(labeled_source) == (True, 0)


def _split_folders(root: Path, splits: tuple[str, ...], classes: tuple[str, ...] = ("cat", "dog")) -> Path:
    for s, split in enumerate(splits):
        for c, name in enumerate(classes):
            write_images(root / split / name, 2, seed=10 * s + c)
    return root


@pytest.mark.parametrize(
    "splits, said, fix",
    [
        (("train", "test"), "(test, train)", "pass {root}/train as --train-data, and {root}/test as --val-data"),
        (
            ("train", "valid", "test"),
            "(test, train, valid)",
            "pass {root}/train as --train-data, and {root}/valid or {root}/test as --val-data",
        ),
        (("Training", "Testing"), "(Testing, Training)", "pass {root}/Training as --train-data, and {root}/Testing as --val-data"),
        (("val", "test"), "(test, val)", "pass {root}/val or {root}/test as --val-data"),
    ],
)
def test_a_folder_of_split_folders_is_refused_naming_the_splits(tmp_path: Path, splits: tuple[str, ...], said: str, fix: str) -> None:
    """The layout most image datasets are downloaded in, `ds/train/cat/0.png` and `ds/test/cat/0.png`, passed whole as
    the labelled set, was read as two class folders, `test` and `train`: the model's accuracy at telling splits apart
    was its training accuracy (50.0% for a 2-class model), without a word. An empty folder beside them changes nothing."""
    root = _split_folders(tmp_path / "ds", splits)
    (root / "empty").mkdir()
    with pytest.raises(InputError) as caught:
        read_labeled(root)
    assert caught.value.message == f"{root} holds split folders {said}, each of class folders, not classes"
    assert caught.value.fix == fix.format(root=root)


@pytest.mark.parametrize("labels", ["metadata.csv", "_classes.csv"])
def test_split_folders_each_labelled_by_a_metadata_file_are_refused_naming_it(tmp_path: Path, labels: str) -> None:
    """Hugging Face's ImageFolder with splits (`ds/train/metadata.csv`) and Roboflow's export (`ds/train/_classes.csv`)
    hold their images beside the split's label file: the split folders were read as class folders."""
    for split in ("train", "test"):
        write_images(tmp_path / "ds" / split, 4)
        rows = [f"img_{i:03d}.png,{i % 2}" for i in range(4)]
        header = "file_name,label" if labels == "metadata.csv" else "filename, cat, dog"
        if labels == "_classes.csv":
            rows = [f"img_{i:03d}.png, {1 - i % 2}, {i % 2}" for i in range(4)]
        (tmp_path / "ds" / split / labels).write_text("\n".join([header, *rows]) + "\n")
    with pytest.raises(InputError, match=rf"holds split folders \(test, train\), each labelled by its {labels}"):
        read_labeled(tmp_path / "ds")
    assert len(read_labeled(tmp_path / "ds" / "train").items) == 4  # a split itself is read


def test_split_folders_beside_a_test_split_without_labels_are_refused(tmp_path: Path) -> None:
    """Kaggle's layout, `ds/train/cat/0.png` beside a `ds/test/` of images without labels (or Hugging Face's, a test
    split whose metadata.csv names no label column), passed whole, was read as two classes, `test` and `train`, without
    a word, since the test split held its images; and the fix named an unlabelled split as --val-data, which refused it."""
    root = tmp_path / "ds"
    write_images(root / "train" / "cat", 2)
    write_images(root / "train" / "dog", 2, seed=1)
    write_images(root / "test", 3, seed=2)
    with pytest.raises(InputError) as caught:
        read_labeled(root)
    assert (
        caught.value.message
        == f"{root} holds split folders (test, train), not classes: train of class folders, test of images without labels"
    )
    assert caught.value.fix == f"pass {root}/train as --train-data, and {root}/test as --data (it holds no labels)"
    hf = tmp_path / "hf"
    for split, header in (("train", "file_name,label"), ("test", "file_name,text")):
        write_images(hf / split, 4)
        (hf / split / "metadata.csv").write_text("\n".join([header, *(f"img_{i:03d}.png,{i % 2}" for i in range(4))]) + "\n")
    with pytest.raises(InputError) as caught:
        read_labeled(hf)
    assert caught.value.message == (
        f"{hf} holds split folders (test, train), not classes: train labelled by its metadata.csv, test of images without labels"
    )
    assert caught.value.fix == f"pass {hf}/train as --train-data, and {hf}/test as --data (it holds no labels)"
    (hf / "test" / "metadata.csv").write_text((hf / "test" / "metadata.csv").read_text().replace("text", "category"))
    (hf / "train" / "metadata.csv").write_text((hf / "train" / "metadata.csv").read_text().replace("label", "category"))
    with pytest.raises(InputError, match=r"each labelled by its metadata.csv, not classes"):  # a label column of its own name
        read_labeled(hf)


def test_split_folders_each_labelled_by_a_compressed_metadata_file_name_it_to_pass(tmp_path: Path) -> None:
    """`ds/train/metadata.csv.gz` beside `ds/train/*.png`: the splits held images and no label file suscli reads in a
    folder, and were read as two classes, `test` and `train`, without a word. The fix names the files to pass, which
    are read as label files."""
    root = tmp_path / "ds"
    for split in ("train", "test"):
        write_images(root / split, 4, seed=len(split))
        with gzip.open(root / split / "metadata.csv.gz", "wt") as f:
            f.write("\n".join(["file_name,label", *(f"img_{i:03d}.png,{i % 2}" for i in range(4))]) + "\n")
    with pytest.raises(InputError) as caught:
        read_labeled(root)
    assert caught.value.message == f"{root} holds split folders (test, train), each labelled by its metadata.csv.gz, not classes"
    assert caught.value.fix == f"pass {root}/train/metadata.csv.gz as --train-data, and {root}/test/metadata.csv.gz as --val-data"
    assert read_labeled(root / "train" / "metadata.csv.gz").labels == [0, 1, 0, 1]


def test_classes_named_as_splits_that_hold_their_images_are_classes(tmp_path: Path) -> None:
    """A set whose classes are named `train` and `test` (and a folder of class folders beside a split's name) is read
    as its classes."""
    write_images(tmp_path / "ds" / "test", 2)
    write_images(tmp_path / "ds" / "train", 3, seed=1)
    listing = read_labeled(tmp_path / "ds")
    assert listing.folders == ["test", "train"] and listing.labels == [0, 0, 1, 1, 1]
    write_images(tmp_path / "mixed" / "cat" / "a", 2)
    write_images(tmp_path / "mixed" / "train" / "a", 2, seed=1)
    assert read_labeled(tmp_path / "mixed").folders == ["cat", "train"]


def test_split_folders_as_labelled_sets_stop_score_and_rank_before_measuring(tmp_path: Path) -> None:
    """score and rank stop on them with one line, as --train-data and as --val-data, the fix naming both options."""
    root = _split_folders(tmp_path / "ds", ("train", "test"))
    pool = make_pool(tmp_path / "pool", n=1, num_classes=2)
    fix = f"(pass {root}/train as --train-data, and {root}/test as --val-data)"
    said = f"error: {root} holds split folders (test, train), each of class folders, not classes {fix}"
    assert one_error_line(invoke("score", pool / "m0.safetensors", "-d", root / "test", "--train-data", root, "--no-cache"), 3) == said
    line = one_error_line(
        invoke("score", pool / "m0.safetensors", "-d", root / "test", "--train-data", root / "train", "--val-data", root, "--no-cache"), 3
    )
    assert line == said
    assert one_error_line(invoke("rank", pool, "-d", root / "test", "--train-data", root, "--no-cache"), 3) == said
