"""Checkpoint loading: every supported format built from a tiny model in tmp_path, and every bad input."""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import zipfile
import os
import pickle
import random
import re
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import suscli.load.safe_read as safe_read
from suscli.load import restricted_pickle
from suscli.data.images import INTERPOLATIONS
from suscli.load.arch import build_model
from suscli.load.checkpoints import file_sha256, load_checkpoint, read_metadata, save
from suscli.load.safe_read import sidecar_path
from suscli.errors import InputError, UsageError
from suscli.models import bn_cnn
from tests.conftest import cli_json, invoke, one_error_line

ARCH = "suscli.models:bn_cnn"
KWARGS = {"width": 2}
X = torch.randn(2, 3, 8, 8)


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    model = bn_cnn(num_classes=3, **KWARGS)
    with torch.no_grad():  # non-default BatchNorm statistics, so a model that skipped loading them would differ
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    return model.eval()


def _same_outputs(a: nn.Module, b: nn.Module, x: torch.Tensor = X) -> bool:
    with torch.no_grad():
        return torch.allclose(a(x), b(x), atol=1e-6)


def _forbid_downloads(monkeypatch):
    """Fail the test if torchvision reaches for pretrained weights (it would download them)."""
    import torchvision.models._api

    def no_download(*args, **kwargs):
        raise AssertionError("torchvision tried to download weights")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)


def _input_error(path, **kwargs) -> str:
    """Load, expecting one InputError whose single line names the file."""
    with pytest.raises(InputError) as info:
        load_checkpoint(path, **kwargs)
    line = str(info.value)
    assert str(path) in line and "\n" not in line
    return line


def test_save_round_trip_keeps_arch_kwargs_and_meta(tmp_path):
    model = _tiny()
    meta = {"num_classes": 3, "preset": "cifar10", "epoch": 7, "run": "a1"}
    path = save(model, tmp_path / "m.safetensors", arch=ARCH, arch_kwargs=KWARGS, **meta)
    ckpt = load_checkpoint(path, default_arch="torchvision:resnet18")
    assert (ckpt.arch, ckpt.arch_source, ckpt.num_classes) == (ARCH, "metadata", 3)
    assert ckpt.meta == meta
    assert ckpt.notes == [f"--arch torchvision:resnet18 ignored: metadata says {ARCH}"]
    assert ckpt.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == file_sha256(path)
    assert not ckpt.model.training and _same_outputs(model, ckpt.model)


def test_the_weights_hash_is_one_for_every_file_of_the_same_weights(tmp_path):
    """A .safetensors, a .pt state dict and a training checkpoint (epoch and optimizer beside) of one model are three
    files' bytes but one weights_sha256; a BatchNorm statistic (a buffer) or a dtype changed makes another."""
    model = _tiny()
    save(model, tmp_path / "m.safetensors", arch=ARCH, arch_kwargs=KWARGS)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    torch.save({"model_state_dict": model.state_dict(), "epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "last.pt")
    loaded = [load_checkpoint(tmp_path / f, default_arch=ARCH, default_arch_kwargs=KWARGS) for f in ("m.safetensors", "m.pt", "last.pt")]
    assert len({c.sha256 for c in loaded}) == 3 and len({c.weights_sha256 for c in loaded}) == 1
    assert loaded[0].weights_sha256 is not None and len(loaded[0].weights_sha256) == 64
    buffer = _tiny()
    with torch.no_grad():
        next(m for m in buffer.modules() if isinstance(m, nn.BatchNorm2d)).running_var.add_(1e-3)
    torch.save(buffer.state_dict(), tmp_path / "buffer.pt")
    torch.save(_tiny().double().state_dict(), tmp_path / "double.pt")  # loads into float32: its float32 values
    other = [
        load_checkpoint(tmp_path / f, default_arch=ARCH, default_arch_kwargs=KWARGS).weights_sha256 for f in ("buffer.pt", "double.pt")
    ]
    assert other[0] != loaded[0].weights_sha256
    assert other[1] == loaded[0].weights_sha256  # the weights it ran: float64 values of float32 ones, loaded float32


def test_save_refuses_metadata_that_loading_would_refuse_before_writing_anything(tmp_path):
    """A Path or a tensor in the metadata raised TypeError from json; an image_size of "32" or an unknown preset was
    written, and refused only when the checkpoint was scored, maybe many epochs later. Both are UsageErrors now, and
    a folder where the file should go an InputError (it was IsADirectoryError)."""
    cases = [
        ({"run": tmp_path}, "the metadata must be JSON values: Object of type PosixPath is not JSON serializable"),
        ({"num_classes": torch.tensor(3)}, "Object of type Tensor is not JSON serializable"),
        ({"image_size": "32"}, "'image_size' must be a whole number above 0, not \"32\""),
        ({"preset": "cifar100"}, "'preset' must be one of"),
    ]
    for meta, message in cases:
        with pytest.raises(UsageError, match=re.escape(message)):
            save(_tiny(), tmp_path / "m.safetensors", arch=ARCH, arch_kwargs=KWARGS, **meta)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "m.safetensors").mkdir()
    with pytest.raises(InputError, match="cannot write .*m.safetensors: Is a directory"):
        save(_tiny(), tmp_path / "m.safetensors", arch=ARCH, arch_kwargs=KWARGS)


def test_save_refuses_a_name_that_is_not_safetensors_before_writing_anything(tmp_path):
    """suscli.save(model, "m.pt") wrote safetensors under a torch file's name, which every later score refused ("is a
    safetensors file, not a PyTorch checkpoint"), and under no suffix a file that no pool or run folder found."""
    for name, instead in (("m.pt", "m.safetensors"), ("m.pth.tar", "m.safetensors"), ("epoch_1", "epoch_1.safetensors")):
        with pytest.raises(UsageError, match=re.escape(f"the file name must end in .safetensors (save to {tmp_path / instead})")):
            save(_tiny(), tmp_path / name, arch=ARCH, arch_kwargs=KWARGS)
    assert list(tmp_path.iterdir()) == []
    assert load_checkpoint(save(_tiny(), tmp_path / "m.SafeTensors", arch=ARCH, arch_kwargs=KWARGS)).arch == ARCH


def test_save_of_a_state_dict_or_a_path_is_a_usage_error_before_writing_anything(tmp_path):
    """suscli.save(model.state_dict(), ...) (how torch.save is called) raised "AttributeError: 'dict' object has no
    attribute 'state_dict'", and a path where the model goes the same of 'str'."""
    for wrong, kind in ((_tiny().state_dict(), "OrderedDict"), ("m.pt", "str")):
        with pytest.raises(UsageError, match=rf"suscli.save takes the model \(a torch.nn.Module\), got {kind}"):
            save(wrong, tmp_path / "m.safetensors", arch=ARCH, arch_kwargs=KWARGS)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("wrap", [torch.compile, nn.DataParallel, lambda m: nn.DataParallel(torch.compile(m))])
def test_save_of_a_compiled_or_parallel_model_writes_the_architectures_own_weights(tmp_path, wrap):
    """A training loop saves the model it trains, often compiled or in DataParallel: the file held `_orig_mod.*` or
    `module.*` keys that the architecture it names does not take (load_state_dict of them failed), every row of its
    run said "stripped prefix '_orig_mod.'", and a rank pool took it for another model than the same weights saved
    plain."""
    plain = save(_tiny(), tmp_path / "plain.safetensors", arch=ARCH, arch_kwargs=KWARGS)
    wrapped = save(wrap(_tiny()), tmp_path / "wrapped.safetensors", arch=ARCH, arch_kwargs=KWARGS)
    assert wrapped.read_bytes() == plain.read_bytes()
    assert load_checkpoint(wrapped).notes == []


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_saved_models_follow_the_umask_like_reports(tmp_path, umask, mode):
    """A saved model is a file to share (a CI step of another user, a colleague): it gets the mode any new file gets,
    not the 0600 of a private temporary file; overwriting one does too, and leaves no temporary file."""
    old = os.umask(umask)
    try:
        path = save(_tiny(), tmp_path / "m.safetensors", arch=ARCH, arch_kwargs=KWARGS)
        assert stat.S_IMODE(path.stat().st_mode) == mode
        save(_tiny(), path, arch=ARCH, arch_kwargs=KWARGS)
        assert stat.S_IMODE(path.stat().st_mode) == mode
    finally:
        os.umask(old)
    assert [f.name for f in tmp_path.iterdir()] == ["m.safetensors"]


def test_read_metadata_reads_no_tensors(tmp_path, monkeypatch):
    path = save(_tiny(), tmp_path / "m.safetensors", arch=ARCH, arch_kwargs=KWARGS, preset="cifar10")
    monkeypatch.setattr(safe_read, "load_file", None)  # any tensor read would now fail
    assert read_metadata(path) == {"arch": ARCH, "arch_kwargs": KWARGS, "preset": "cifar10"}
    assert read_metadata(tmp_path / "other.pt") == {}


def test_safetensors_without_metadata_uses_default_arch(tmp_path):
    model = _tiny()
    save_file(model.state_dict(), str(tmp_path / "m.safetensors"))
    assert read_metadata(tmp_path / "m.safetensors") == {}
    ckpt = load_checkpoint(tmp_path / "m.safetensors", default_arch=ARCH, default_arch_kwargs=KWARGS)
    assert (ckpt.arch_source, ckpt.num_classes, ckpt.notes) == ("--arch", 3, [])
    assert _same_outputs(model, ckpt.model)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".th", ".bin", ".ckpt"])
def test_torch_state_dict_files(tmp_path, suffix):
    model = _tiny()
    torch.save(model.state_dict(), tmp_path / f"m{suffix}")
    ckpt = load_checkpoint(tmp_path / f"m{suffix}", default_arch=ARCH, default_arch_kwargs=KWARGS)
    assert _same_outputs(model, ckpt.model) and ckpt.arch == ARCH


def test_legacy_non_zip_torch_file(tmp_path):
    model = _tiny()
    torch.save(model.state_dict(), tmp_path / "m.pt", _use_new_zipfile_serialization=False)
    assert _same_outputs(model, load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS).model)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"state_dict": sd, "optimizer": {"lr": 0.1}},
        lambda sd: {"model": sd, "epoch": 2},
        lambda sd: {"model_state_dict": sd},
        lambda sd: {"net": sd},
        lambda sd: {"checkpoint": 1, "model": {"state_dict": sd}},
        lambda sd: {"model_ema": {k: v + 1 for k, v in sd.items()}, "state_dict": sd},  # plain weights win over EMA
    ],
)
def test_nested_weights_are_found(tmp_path, wrap):
    model = _tiny()
    torch.save(wrap(model.state_dict()), tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS)
    beside = ["the file also holds EMA weights under 'model_ema': --ema would measure them"] if "model_ema" in wrap({}) else []
    assert _same_outputs(model, ckpt.model) and ckpt.notes == beside


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"image_size": "big"}, "'image_size' must be a whole number above 0, not \"big\""),
        ({"num_classes": [3]}, "'num_classes' must be a whole number above 0, not [3]"),
        ({"epoch": -1}, "'epoch' must be a whole number from 0, not -1"),
        ({"mean": "0.5"}, "'mean' must be a list of numbers, not \"0.5\""),
        ({"std": [0.2, 0, 0.2]}, "'std' must be a list of numbers above 0, not [0.2, 0, 0.2]"),
        ({"crop_pct": 2}, "'crop_pct' must be a number above 0 and at most 1, not 2"),
        ({"preset": "cifar100"}, "'preset' must be one of cifar10, imagenet, none, not \"cifar100\""),
        ({"resize": "squish"}, "'resize' must be one of crop, stretch, not \"squish\""),
        ({"interpolation": "cubic"}, f"'interpolation' must be one of {', '.join(INTERPOLATIONS)}, not \"cubic\""),  # PIL's
        ({"interpolation": ["bicubic"]}, f"'interpolation' must be one of {', '.join(INTERPOLATIONS)}, not [\"bicubic\"]"),
        ({"preset": ["imagenet"]}, "'preset' must be one of cifar10, imagenet, none, not [\"imagenet\"]"),  # no hash
        ({"crop_offset": "ceil"}, "'crop_offset' must be one of round, floor, not \"ceil\""),
        ({"channel_order": "bgr"}, "'channel_order' must be one of RGB, BGR, not \"bgr\""),
    ],
)
def test_fields_of_the_wrong_type_are_refused_naming_the_field(tmp_path, fields, said):
    """A sidecar or metadata written by other code with "image_size": "big" ended score in an internal error
    (ValueError: invalid literal for int()), a std of 0 divided by zero, a list as a preset or interpolation
    (TypeError: unhashable type) too; each is now its file's error."""
    torch.save(_tiny().state_dict(), tmp_path / "m.pt")
    (tmp_path / "m.suscli.json").write_text(json.dumps(fields))
    with pytest.raises(InputError) as info:
        load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert str(info.value) == f"{tmp_path / 'm.suscli.json'}: {said} (fix or delete the sidecar file)"
    metadata = {"suscli": json.dumps({"arch": ARCH, "arch_kwargs": KWARGS, **fields})}  # written by other code
    save_file(_tiny().state_dict(), str(tmp_path / "n.safetensors"), metadata=metadata)
    assert f"metadata 'suscli': {said}" in _input_error(tmp_path / "n.safetensors")
    with pytest.raises(UsageError, match=re.escape(said)):  # suscli.save refuses to write it
        save(_tiny(), tmp_path / "m.safetensors", arch=ARCH, arch_kwargs=KWARGS, **fields)


def test_whole_numbers_an_earlier_save_wrote_as_floats_are_read_as_whole_numbers(tmp_path):
    """suscli.save wrote its metadata as given before it checked the fields: an image size or epoch computed as a float
    was kept as 16.0, and scored as 16. Such a file loads with the whole number, not refused."""
    model = _tiny()
    fields = {"arch": ARCH, "arch_kwargs": KWARGS, "image_size": 16.0, "epoch": 3.0, "num_classes": 3.0}
    save_file(model.state_dict(), str(tmp_path / "m.safetensors"), metadata={"suscli": json.dumps(fields, sort_keys=True)})
    ckpt = load_checkpoint(tmp_path / "m.safetensors")
    assert _same_outputs(model, ckpt.model) and ckpt.num_classes == 3
    assert {k: (v, type(v)) for k, v in ckpt.meta.items()} == {"image_size": (16, int), "epoch": (3, int), "num_classes": (3, int)}
    assert "'image_size' must be a whole number above 0, not 16.5" in _input_error_of(tmp_path, {**fields, "image_size": 16.5})


def test_save_records_the_resize_and_interpolation_the_images_get(tmp_path: Path) -> None:
    """A model trained on stretched, bicubic-resized images is measured on them: suscli.save and a sidecar carry
    `resize` and `interpolation` (validated), as a tool's own record does."""
    from suscli.run.settings import Settings, preprocessing

    save(_tiny(), tmp_path / "m.safetensors", arch=ARCH, arch_kwargs=KWARGS, image_size=16, resize="stretch", interpolation="bicubic")
    torch.save(_tiny().state_dict(), tmp_path / "p.pt")
    (tmp_path / "p.suscli.json").write_text(json.dumps({"image_size": 16, "resize": "stretch", "interpolation": "bicubic"}))
    for path in (tmp_path / "m.safetensors", tmp_path / "p.pt"):
        prep, _ = preprocessing(Settings(), load_checkpoint(path, arch=ARCH, arch_kwargs=KWARGS).meta)
        assert (prep.resize, prep.interpolation) == ("stretch", "bicubic"), path.name


def test_save_and_a_sidecar_record_the_channel_order_the_model_takes(tmp_path: Path) -> None:
    """A model trained on BGR images (OpenCV's) is fed BGR: suscli.save and a sidecar carry `channel_order`; a checkpoint
    that records none is fed RGB, and --preset keeps the checkpoint's order (it says nothing of the channels)."""
    from suscli.run.settings import Settings, preprocessing

    save(_tiny(), tmp_path / "m.safetensors", arch=ARCH, arch_kwargs=KWARGS, image_size=16, channel_order="BGR")
    torch.save(_tiny().state_dict(), tmp_path / "p.pt")
    (tmp_path / "p.suscli.json").write_text(json.dumps({"image_size": 16, "channel_order": "BGR"}))
    for path in (tmp_path / "m.safetensors", tmp_path / "p.pt"):
        meta = load_checkpoint(path, arch=ARCH, arch_kwargs=KWARGS).meta
        assert [preprocessing(s, meta)[0].channel_order for s in (Settings(), Settings(preset="imagenet"))] == ["BGR", "BGR"]
    torch.save(_tiny().state_dict(), tmp_path / "q.pt")
    plain = load_checkpoint(tmp_path / "q.pt", arch=ARCH, arch_kwargs=KWARGS).meta
    assert preprocessing(Settings(image_size=16), plain)[0].channel_order == "RGB"


def _input_error_of(tmp_path: Path, fields: dict) -> str:
    save_file(_tiny().state_dict(), str(tmp_path / "n.safetensors"), metadata={"suscli": json.dumps(fields)})
    return _input_error(tmp_path / "n.safetensors")


def test_ema_only_weights_are_used_with_a_note(tmp_path):
    model = _tiny()
    torch.save({"model_ema": model.state_dict(), "epoch": 4}, tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert _same_outputs(model, ckpt.model) and ckpt.meta == {"epoch": 4}
    assert ckpt.notes == ["using EMA weights from 'model_ema': the file holds no plain model weights"]


def test_an_averaged_models_state_dict_says_its_weights_are_averaged(tmp_path):
    """`torch.save(AveragedModel(model).state_dict())` (`module.*`, `n_averaged`) with --ema noted "the file holds no
    EMA weights; its plain weights were used", though the file holds nothing but the average."""
    model = _tiny()
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.5), use_buffers=True)
    torch.save(averaged.state_dict(), tmp_path / "m.pt")
    for ema, why in ((True, "--ema"), (False, "the file holds no plain model weights")):
        ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS, ema=ema)
        assert _same_outputs(model, ckpt.model)
        assert ckpt.notes == [
            f"using the averaged weights of an AveragedModel (under 'module.', beside 'n_averaged'): {why}",
            "stripped prefix 'module.', ignored 1 keys outside it",
        ]


@pytest.mark.parametrize("plain, averaged", [("state_dict", "swa_state_dict"), ("model", "swa_model")])
def test_an_swa_average_beside_the_weights(tmp_path, plain, averaged):
    """torch's SWA recipe (an AveragedModel, update_bn) saved beside the model's weights as the SWA authors' train.py
    names it (`swa_state_dict`) or as torch's docs name the model (`swa_model`): --ema said "the file holds no EMA
    weights; its plain weights were used", and the run without it did not say the average was there."""
    model = _tiny()
    swa = AveragedModel(model)
    _three_steps(model, lambda: swa.update_parameters(model))
    torch.optim.swa_utils.update_bn([X], swa)
    swa.eval()
    torch.save({plain: model.state_dict(), averaged: swa.state_dict(), "epoch": 3}, tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert _same_outputs(model, ckpt.model)
    assert ckpt.notes == [f"the file also holds SWA weights under {averaged!r}: --ema would measure them"]
    ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS, ema=True)
    assert _same_outputs(swa.module, ckpt.model) and not _same_outputs(model, ckpt.model)
    assert ckpt.notes == [f"using SWA weights from {averaged!r}: --ema", "stripped prefix 'module.', ignored 1 keys outside it"]


def test_ema_on_a_state_dict_under_module_does_not_say_it_holds_no_ema_weights(tmp_path):
    """timm's ModelEmaV2/V3 `state_dict()` saved alone is `module.*`, as a DataParallel model's: `--ema` said "the file
    holds no EMA weights", which for this file is false; the two cannot be told apart, and the note says no more."""
    model_ema = pytest.importorskip("timm.utils").ModelEmaV3
    model = _tiny()
    torch.save(model_ema(model, decay=0.5).state_dict(), tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS, ema=True)
    assert _same_outputs(model, ckpt.model) and ckpt.notes == [
        "--ema: the file holds one set of weights, under 'module.' (as DataParallel saves a model, and timm's ModelEmaV2/V3 "
        "its EMA copy); they were used",
        "stripped prefix 'module.'",
    ]
    assert load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS).notes == ["stripped prefix 'module.'"]


def _ema_pytorch(model: nn.Module, online: bool) -> nn.Module:
    """ema-pytorch's `EMA` of `model` after three SGD steps, each followed by the EMA's own update."""
    ema = pytest.importorskip("ema_pytorch").EMA(model, beta=0.5, update_after_step=0, update_every=1, include_online_model=online)
    _three_steps(model, ema.update)
    return ema


def _three_steps(model: nn.Module, update) -> None:
    """Three SGD steps of `model` on X, each followed by its EMA's `update()`, as the EMA libraries ask."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X), torch.tensor([0, 1])).backward()
        optimizer.step()
        update()


@pytest.mark.parametrize("beside", [False, True], ids=["alone", "beside"])
@pytest.mark.parametrize("online", [True, False], ids=["online", "ema-only"])
def test_ema_pytorch_state_dicts(tmp_path, image_folder, online, beside):
    """ema-pytorch's `EMA.state_dict()` (`initted`, `step`, `ema_model.*`, and `online_model.*` unless
    include_online_model=False), saved alone or as {"model": ..., "ema": ...}: `score --arch ... --ema` refused every
    one ("17 missing keys (0.weight, ...), 42 unexpected keys (initted, step, online_model.0.weight, ...)"), and so
    did plain `score` on the EMA's own file."""
    model = _tiny()
    ema = _ema_pytorch(model, online)
    path = tmp_path / "m.pt"
    torch.save({"model": model.state_dict(), "ema": ema.state_dict()} if beside else ema.state_dict(), path)
    flags = ["-d", image_folder, "--arch", ARCH, "--arch-kwargs", json.dumps(KWARGS), "--image-size", "8", "--mean", "0.5", "--std", "0.25"]
    by_hand = {}
    for name, weights in (("plain", model), ("ema", ema.ema_model)):
        torch.save(weights.state_dict(), tmp_path / f"{name}.pt")
        by_hand[name] = cli_json("score", tmp_path / f"{name}.pt", *flags)["results"][0]["susceptibility"]
    assert by_hand["plain"] != pytest.approx(by_hand["ema"], rel=1e-3)
    under = "ema/ema_model." if beside else "ema_model."
    row = cli_json("score", path, *flags, "--ema")["results"][0]
    assert row["notes"] == [f"using EMA weights under {under!r}: --ema"]
    assert row["susceptibility"] == pytest.approx(by_hand["ema"], rel=1e-6)
    row = cli_json("score", path, *flags)["results"][0]
    if online or beside:
        assert row["notes"] == [f"the file also holds EMA weights under {'ema' if beside else under!r}: --ema would measure them"]
        assert row["susceptibility"] == pytest.approx(by_hand["plain"], rel=1e-6)
    else:
        assert row["notes"] == ["using EMA weights under 'ema_model.': the file holds no plain model weights"]
        assert row["susceptibility"] == pytest.approx(by_hand["ema"], rel=1e-6)


def test_torch_ema_averages_beside_the_weights(tmp_path, image_folder):
    """torch_ema's `ExponentialMovingAverage.state_dict()` saved beside the model's (`{"model": ..., "ema": ...}`): its
    averages of the parameters have no names, and `score --ema` noted "the file holds no EMA weights; its plain
    weights were used", right after the plain run had said "--ema would measure them"."""
    average = pytest.importorskip("torch_ema").ExponentialMovingAverage
    model = _tiny()
    ema = average(model.parameters(), decay=0.5)
    _three_steps(model, ema.update)
    torch.save({"model": model.state_dict(), "ema": ema.state_dict()}, tmp_path / "m.pt")
    flags = ["-d", image_folder, "--arch", ARCH, "--arch-kwargs", json.dumps(KWARGS), "--image-size", "8", "--mean", "0.5", "--std", "0.25"]
    by_hand = {"plain": cli_json("score", save(model, tmp_path / "plain.safetensors", arch=ARCH, arch_kwargs=KWARGS), *flags)}
    with ema.average_parameters():  # torch_ema's own way to use the averages
        by_hand["ema"] = cli_json("score", save(model, tmp_path / "ema.safetensors", arch=ARCH, arch_kwargs=KWARGS), *flags)
    plain, averaged = (by_hand[k]["results"][0]["susceptibility"] for k in ("plain", "ema"))
    assert plain != pytest.approx(averaged, rel=1e-3)
    row = cli_json("score", tmp_path / "m.pt", *flags)["results"][0]
    assert row["notes"] == ["the file also holds EMA weights under 'ema': --ema would measure them"]
    assert row["susceptibility"] == pytest.approx(plain, rel=1e-6)
    row = cli_json("score", tmp_path / "m.pt", *flags, "--ema")["results"][0]
    assert row["notes"] == ["using EMA weights from 'ema' (torch_ema's averages of the parameters, the buffers from 'model'): --ema"]
    assert row["susceptibility"] == pytest.approx(averaged, rel=1e-6)
    some = average(list(model.parameters())[1:], decay=0.5)  # averages of other parameters than the model's
    torch.save({"model": model.state_dict(), "ema": some.state_dict()}, tmp_path / "m.pt")
    line = one_error_line(invoke("score", tmp_path / "m.pt", *flags, "--ema"), 3)
    assert line.endswith(
        f"m.pt: the EMA averages under 'ema' (torch_ema) do not fit {ARCH}: 10 averages for 11 parameters (torch_ema keeps the "
        "parameters it was given in order: pass the architecture whose parameters() they were, or leave out --ema)"
    )
    state = ema.state_dict()
    state["shadow_params"] = [t.to_sparse() for t in state["shadow_params"]]  # torch.load allows them; copy_ refuses them
    torch.save({"model": model.state_dict(), "ema": state}, tmp_path / "m.pt")
    line = one_error_line(invoke("score", tmp_path / "m.pt", *flags, "--ema"), 3)
    assert f"m.pt: the EMA averages under 'ema' (torch_ema) do not load into {ARCH} (copy_() between dense and sparse" in line


def test_ema_averages_without_names_saved_alone_say_what_they_are(tmp_path):
    """torch_ema's (or diffusers') EMA state dict saved alone holds averages without names and no model weights: the
    error said only "holds no state dict", and asked for a mapping of names to tensors under 'state_dict' or 'model'."""
    average = pytest.importorskip("torch_ema").ExponentialMovingAverage
    torch.save(average(_tiny().parameters(), decay=0.5).state_dict(), tmp_path / "m.pt")
    assert _input_error(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS) == (
        f"{tmp_path / 'm.pt'}: holds torch_ema's EMA averages alone: 11 tensors without names or buffers, no model weights "
        "(save them beside the model's weights as {'model': model.state_dict(), 'ema': ema.state_dict()}, which --ema reads, "
        "or save the model's state dict after ema.copy_to(model.parameters()))"
    )
    shadow = [p.detach().clone() for p in _tiny().parameters()]
    torch.save({"decay": 0.5, "min_decay": 0.0, "optimization_step": 3, "shadow_params": shadow}, tmp_path / "m.pt")
    assert "holds diffusers' EMAModel's EMA averages alone: 11 tensors" in _input_error(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS)


def test_an_ema_helpers_shadow_beside_the_weights(tmp_path):
    """A hand-written EMA helper's {"decay": ..., "shadow": {name: tensor}} (of `named_parameters()`, no buffers)
    beside the model's: --ema said "the file holds no EMA weights; its plain weights were used", and the run without
    it did not say the shadow was there; saved alone, with all the weights, it "holds no state dict"."""
    model = _tiny()
    shadow = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}

    def update() -> None:  # the helper's own update, as such helpers are written
        for name, p in model.named_parameters():
            shadow[name] = 0.5 * shadow[name] + 0.5 * p.detach()

    _three_steps(model, update)
    torch.save({"model": model.state_dict(), "ema": {"decay": 0.5, "shadow": shadow}, "epoch": 2}, tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert _same_outputs(model, ckpt.model) and ckpt.notes == ["the file also holds EMA weights under 'ema': --ema would measure them"]
    ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS, ema=True)
    assert ckpt.notes == ["using EMA weights from 'ema/shadow' (an EMA helper's shadow copies; the 9 tensors it lacks from 'model'): --ema"]
    averaged = _tiny()
    averaged.load_state_dict({**model.state_dict(), **shadow})  # the helper's apply_shadow()
    assert _same_outputs(averaged, ckpt.model) and not _same_outputs(model, ckpt.model)
    torch.save({"decay": 0.5, "shadow": averaged.state_dict()}, tmp_path / "alone.pt")
    ckpt = load_checkpoint(tmp_path / "alone.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert _same_outputs(averaged, ckpt.model) and ckpt.notes == ["using EMA weights from 'shadow': the file holds no plain model weights"]
    torch.save({"decay": 0.5, "shadow": shadow}, tmp_path / "alone.pt")  # the parameters alone cannot make the model
    assert _input_error(tmp_path / "alone.pt", arch=ARCH, arch_kwargs=KWARGS).endswith(
        "6 missing keys (1.running_mean, 1.running_var, 5.running_mean, ...), 0 unexpected keys (the file holds the parameters "
        "without the buffers (BatchNorm statistics): save model.state_dict(), which holds both, or save these beside it as an EMA "
        "copy, which --ema reads)"
    )


def test_diffusers_ema_model_averages_are_named_as_diffusers(tmp_path):
    """diffusers' `EMAModel.state_dict()` (its `optimization_step`, warm-up settings and `shadow_params`, written here
    as diffusers writes it) beside the model's: --ema measured its averages, but the note called them torch_ema's."""
    model = _tiny()
    shadow = [p.detach().clone() for p in model.parameters()]

    def update() -> None:
        with torch.no_grad():
            for s, p in zip(shadow, model.parameters()):
                s.mul_(0.5).add_(p, alpha=0.5)

    _three_steps(model, update)
    state = {"decay": 0.5, "min_decay": 0.0, "optimization_step": 3, "update_after_step": 0, "use_ema_warmup": False}
    state |= {"inv_gamma": 1.0, "power": 2 / 3, "shadow_params": shadow}
    torch.save({"model": model.state_dict(), "ema": state}, tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS, ema=True)
    assert ckpt.notes == [
        "using EMA weights from 'ema' (diffusers' EMAModel's averages of the parameters, the buffers from 'model'): --ema"
    ]
    assert all(torch.equal(a, b) for a, b in zip(ckpt.model.parameters(), shadow))
    assert all(torch.equal(a, b) for a, b in zip(ckpt.model.buffers(), model.buffers()))
    state["shadow_params"] = shadow[1:]
    torch.save({"model": model.state_dict(), "ema": state}, tmp_path / "m.pt")
    assert f"the EMA averages under 'ema' (diffusers' EMAModel) do not fit {ARCH}: 10 averages for 11 parameters" in _input_error(
        tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS, ema=True
    )


@pytest.mark.parametrize(
    "plain, averaged",
    [
        ("model_state_dict", "ema_state_dict"),
        ("model", "ema_model"),
        ("model_state_dict", "model_ema_state_dict"),
        ("model_state_dict", "ema_model_state_dict"),
    ],
)
def test_ema_state_dict_beside_model_state_dict_is_the_ema_copy(tmp_path, plain, averaged):
    """A script's {"model_state_dict", "ema_state_dict"}, {"model", "ema_model"} or {"model_state_dict",
    "model_ema_state_dict" or "ema_model_state_dict"}: --ema said "the file holds no EMA weights" and used the plain
    ones."""
    model, ema = _tiny(), bn_cnn(num_classes=3, **KWARGS).eval()
    torch.save({plain: model.state_dict(), averaged: ema.state_dict()}, tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS, ema=True)
    assert _same_outputs(ema, ckpt.model) and ckpt.notes == [f"using EMA weights from {averaged!r}: --ema"]
    ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert _same_outputs(model, ckpt.model) and ckpt.notes == [
        f"the file also holds EMA weights under {averaged!r}: --ema would measure them"
    ]
    assert not _same_outputs(model, ema)


def test_lightning_checkpoint(tmp_path):
    model = _tiny()
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    state["criterion.weight"] = torch.ones(3)  # a loss with class weights: part of the LightningModule, not the model
    extra = {"epoch": 3, "global_step": 30, "pytorch-lightning_version": "2.4.0", "hyper_parameters": {"lr": 0.1}}
    torch.save({"state_dict": state, **extra}, tmp_path / "last.ckpt")
    ckpt = load_checkpoint(tmp_path / "last.ckpt", default_arch=ARCH, default_arch_kwargs=KWARGS)
    assert _same_outputs(model, ckpt.model)
    assert ckpt.meta == {"epoch": 3}
    assert ckpt.notes == ["stripped prefix 'model.', ignored 1 keys outside it"]


EPOCHS = [
    (torch.tensor(4), 4),
    (torch.tensor(4, dtype=torch.int32), 4),
    (4.0, 4),
    (torch.tensor(4.0), 4),
    (4.5, None),
    (-1, None),
    (-2.0, None),
    (torch.tensor(-1), None),
    (float("nan"), None),
    (True, None),
    (torch.tensor(True), None),
    (torch.tensor([4]), None),
]


@pytest.mark.parametrize("epoch, read", EPOCHS, ids=[f"{e!r}" for e, _ in EPOCHS])
def test_an_epoch_saved_as_a_tensor_or_a_whole_float_is_read_as_its_int(tmp_path, epoch, read):
    """A loop that counts epochs on the device saves `torch.tensor(4)`, and one that takes a Trainer's `state.epoch`
    saves 4.0: only an int was read, and the epoch was dropped without a word (no epoch in score's and rank's rows; a
    run's files numbered by their names). A number that is no epoch (4.5, -1, True) is still none, silently."""
    from suscli.load.sources.lightning import recorded_epoch as lightning_epoch
    from suscli.load.sources.timm import recorded_epoch as timm_epoch
    from suscli.run.pool import checkpoint_epoch

    model = _tiny()
    torch.save({"state_dict": model.state_dict(), "epoch": epoch}, tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert (ckpt.meta.get("epoch"), ckpt.notes) == (read, [])
    # read without the tensors, where a run's files are numbered: timm's record, Lightning's (over its file name)
    torch.save({"epoch": epoch, "arch": "resnet18", "state_dict": model.state_dict()}, tmp_path / "last.pth.tar")
    assert timm_epoch(tmp_path / "last.pth.tar") == read
    lightning = {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "epoch": epoch}
    torch.save({**lightning, "global_step": 8, "pytorch-lightning_version": "2.4.0"}, tmp_path / "epoch=9-step=8.ckpt")
    assert lightning_epoch(tmp_path / "epoch=9-step=8.ckpt") == read
    assert checkpoint_epoch(tmp_path / "epoch=9-step=8.ckpt") == (9 if read is None else read)


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod.", "_orig_mod.module."])
def test_wrapper_prefixes_are_stripped(tmp_path, prefix):
    model = _tiny()
    torch.save({f"{prefix}{k}": v for k, v in model.state_dict().items()}, tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert _same_outputs(model, ckpt.model)
    assert ckpt.notes == ["stripped prefix " + " + ".join(repr(p + ".") for p in prefix.rstrip(".").split("."))]


@pytest.mark.parametrize("wrapped", ["compiled part", "parallel part", "mixed"])
def test_wrapper_names_inside_keys_or_on_some_keys_are_stripped(tmp_path, wrapped):
    """`model.backbone = torch.compile(model.backbone)` (or `nn.DataParallel` of one part) saves that part's keys as
    `backbone._orig_mod.0.weight`, beside `head.weight`; a state dict put together from a DDP model's and a plain
    one's keys has `module.` on some keys only. Each was refused with the right --arch, "2 missing keys (0.weight,
    ...), 2 unexpected keys (0._orig_mod.weight, ...) (pass the architecture and --arch-kwargs the checkpoint was
    trained with)", or after stripping 'module.' from the keys that had it, with the others missing."""
    model = _tiny()
    state = model.state_dict()
    if wrapped == "compiled part":
        saved = {(f"0._orig_mod.{k[2:]}" if k.startswith("0.") else k): v for k, v in state.items()}
    elif wrapped == "parallel part":
        saved = {(f"1.module.{k[2:]}" if k.startswith("1.") else k): v for k, v in state.items()}
    else:
        saved = {(f"module.{k}" if i % 2 else k): v for i, (k, v) in enumerate(state.items())}
    torch.save(saved, tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert _same_outputs(model, ckpt.model)
    assert ckpt.notes == [f"stripped prefix {'_orig_mod.' if wrapped == 'compiled part' else 'module.'!r} where keys had it"]


@pytest.mark.parametrize("prefix", ["backbone.", "module.encoder."])
def test_a_wrapper_modules_attribute_holding_the_whole_network_is_stripped(tmp_path, prefix):
    """A script that trains its network inside a module of its own (`self.backbone = resnet18()`, a Hugging Face
    Trainer's custom model) saves every key under that attribute. The file was refused, with the right --arch, as
    "102 missing keys (conv1.weight, ...), 122 unexpected keys (backbone.conv1.weight, ...) (pass the architecture
    and --arch-kwargs the checkpoint was trained with)", though only the attribute's name stood in the way."""
    model = _tiny()
    torch.save({f"{prefix}{k}": v for k, v in model.state_dict().items()}, tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", default_arch=ARCH, default_arch_kwargs=KWARGS)
    assert _same_outputs(model, ckpt.model) and ckpt.num_classes == 3
    assert ckpt.notes == ["stripped prefix " + " + ".join(repr(p + ".") for p in prefix.rstrip(".").split("."))]
    other = {f"{prefix}{k}": v for k, v in bn_cnn(num_classes=3, width=3).state_dict().items()}  # another width
    torch.save(other, tmp_path / "other.pt")
    assert "shape" in _input_error(tmp_path / "other.pt", default_arch=ARCH, default_arch_kwargs=KWARGS)


NET_PY = """
from torch import nn

class Wrapper(nn.Module):
    def __init__(self, num_classes, width):
        super().__init__()
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(12, width), nn.Linear(width, num_classes))

    def forward(self, x):
        return self.model(x)

def a(num_classes=2, width=4):
    return Wrapper(num_classes, width)

b = c = d = a
"""


def _wrapper_checkpoint(tmp_path, width=4):
    """A model whose own keys start with 'model.', stored as a plain state dict beside net.py."""
    (tmp_path / "net.py").write_text(NET_PY)
    model = build_model(f"{tmp_path / 'net.py'}:a", {"width": width}, num_classes=5).eval()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    return model, tmp_path / "w.pt"


def test_prefix_kept_when_the_model_has_it_and_file_spec_resolves_next_to_checkpoint(tmp_path, monkeypatch):
    model, path = _wrapper_checkpoint(tmp_path)
    sidecar_path(path).write_text(json.dumps({"arch": "net.py:a", "arch_kwargs": {"width": 4}, "mean": [0.5]}))
    monkeypatch.chdir(tmp_path.parent)  # the relative spec must resolve against the checkpoint's folder
    with pytest.raises(InputError, match="importing that file runs it"):
        load_checkpoint(path)  # a .py file named by the checkpoint's own sidecar runs only when trusted
    ckpt = load_checkpoint(path, trust=True)
    assert (ckpt.arch, ckpt.arch_source, ckpt.num_classes, ckpt.notes) == ("net.py:a", "sidecar", 5, [])
    assert ckpt.meta == {"mean": [0.5]}
    x = torch.randn(2, 3, 2, 2)
    assert _same_outputs(model, ckpt.model, x)


def test_arch_precedence_and_kwargs_travel_with_their_spec(tmp_path, monkeypatch):
    model, path = _wrapper_checkpoint(tmp_path, width=4)

    def spec(name: str) -> str:
        return f"{tmp_path / 'net.py'}:{name}"

    wrong = {"width": 9}  # would not fit: proves each source's kwargs stay with its spec
    st = tmp_path / "w.safetensors"
    save(model, st, arch=spec("b"), arch_kwargs={"width": 4})
    ckpt = load_checkpoint(st, default_arch=spec("d"), default_arch_kwargs=wrong, trust=True)  # stored .py specs need trust
    assert (ckpt.arch, ckpt.arch_source) == (spec("b"), "metadata")
    assert ckpt.notes == [f"--arch {spec('d')} with width=9 ignored: metadata says {spec('b')}"]
    # the same spec with other kwargs is ignored too, and said to be (it was not)
    ckpt = load_checkpoint(st, default_arch=spec("b"), default_arch_kwargs=wrong, trust=True)
    assert ckpt.notes == [f"--arch {spec('b')} with width=9 ignored: metadata says {spec('b')} with width=4"]
    assert load_checkpoint(st, default_arch=spec("b"), trust=True).notes == []  # a fallback for other files: nothing ignored

    sidecar_path(st).write_text(json.dumps({"arch": spec("c"), "arch_kwargs": {"width": 4}}))
    assert load_checkpoint(st, default_arch=spec("d"), default_arch_kwargs=wrong, trust=True).arch_source == "sidecar"

    ckpt = load_checkpoint(st, arch=spec("a"), arch_kwargs={"width": 4}, default_arch=spec("d"), default_arch_kwargs=wrong)
    assert (ckpt.arch, ckpt.arch_source) == (spec("a"), "manifest")
    assert _same_outputs(model, ckpt.model, torch.randn(2, 3, 2, 2))


def test_torchvision_num_classes_inferred_from_state_dict(tmp_path, monkeypatch):
    import torchvision

    _forbid_downloads(monkeypatch)
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), tmp_path / "r.pth")
    ckpt = load_checkpoint(tmp_path / "r.pth", default_arch="torchvision:resnet18")
    assert ckpt.num_classes == 10 and ckpt.model.fc.out_features == 10


def test_torchscript_needs_no_arch(tmp_path):
    model = _tiny()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated
        torch.jit.save(torch.jit.script(model), tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", default_arch="torchvision:resnet18")
    assert (ckpt.arch, ckpt.arch_source, ckpt.num_classes) == ("torchscript", "file", 3)
    assert ckpt.notes == ["--arch torchvision:resnet18 ignored: the file holds a torchscript model"]
    assert not ckpt.model.training and _same_outputs(model, ckpt.model)


def test_torch_export_needs_no_arch(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3)).eval()
    x = torch.randn(2, 4)
    torch.export.save(torch.export.export(model, (x,)), tmp_path / "m.pt2")
    ckpt = load_checkpoint(tmp_path / "m.pt2")
    assert (ckpt.arch, ckpt.arch_source, ckpt.num_classes) == ("torch.export", "file", 3)
    assert _same_outputs(model, ckpt.model, x)


def test_pickled_module_refused_without_trust_and_loaded_with_it(tmp_path):
    model = _tiny()
    torch.save(model, tmp_path / "whole.pt")
    line = _input_error(tmp_path / "whole.pt")
    assert "pickled Python objects: it imports torch.nn.modules.container.Sequential" in line and "--trust-checkpoint" in line
    ckpt = load_checkpoint(tmp_path / "whole.pt", trust=True)
    assert (ckpt.arch, ckpt.arch_source, ckpt.num_classes) == ("pickled nn.Module", "file", 3)
    assert _same_outputs(model, ckpt.model)


@pytest.mark.parametrize(("name", "stem"), [("model.pt", "model"), ("model.pth.tar", "model"), ("pytorch_model.bin", "pytorch_model")])
def test_a_safetensors_file_under_a_torch_name_is_called_one(tmp_path, name, stem):
    """It was "not a readable PyTorch checkpoint (UnpicklingError: Unsupported operand ...)", with the advice to
    download a file that is whole."""
    save_file(_tiny().state_dict(), str(tmp_path / name))
    line = _input_error(tmp_path / name)
    assert (
        line
        == f"{tmp_path / name}: is a safetensors file, not a PyTorch checkpoint (rename it to {stem}.safetensors, which suscli reads as such)"
    )


def test_the_note_promises_ema_weights_only_where_ema_measures_them(tmp_path):
    """{"model": state dict, "model_ema": whole model} (trusted) and {"model": ..., "ema": {"decay": 0.99}}: the plain
    run noted "--ema would measure them", and --ema then measured the plain weights, "the file holds no EMA weights"."""
    model, ema = _tiny(), bn_cnn(num_classes=3, **KWARGS).eval()
    torch.save({"model": model.state_dict(), "model_ema": ema}, tmp_path / "whole.pt")
    ckpt = load_checkpoint(tmp_path / "whole.pt", arch=ARCH, arch_kwargs=KWARGS, trust=True)
    assert _same_outputs(model, ckpt.model) and ckpt.notes == [
        "the file also holds EMA weights under 'model_ema': --ema would measure them"
    ]
    ckpt = load_checkpoint(tmp_path / "whole.pt", trust=True, ema=True)
    assert _same_outputs(ema, ckpt.model) and ckpt.notes == ["using EMA weights from 'model_ema': --ema"]
    torch.save({"model": model.state_dict(), "ema": {"decay": 0.99, "step": 10}}, tmp_path / "helper.pt")
    assert load_checkpoint(tmp_path / "helper.pt", arch=ARCH, arch_kwargs=KWARGS).notes == []
    assert load_checkpoint(tmp_path / "helper.pt", arch=ARCH, arch_kwargs=KWARGS, ema=True).notes == [
        "--ema: the file holds no EMA weights; its plain weights were used"
    ]


def test_a_trusted_model_pickled_inside_a_checkpoint_dict_is_loaded(tmp_path):
    """torch.save({"model": model, "epoch": 3}) with --trust-checkpoint said it "holds no state dict"."""
    model, ema = _tiny(), _tiny()
    torch.save({"model": model, "model_ema": ema, "epoch": 3}, tmp_path / "run.pt")
    assert "pickled Python objects" in _input_error(tmp_path / "run.pt")
    ckpt = load_checkpoint(tmp_path / "run.pt", trust=True)
    assert (ckpt.arch, ckpt.meta["epoch"], ckpt.notes) == ("pickled nn.Module", 3, ["the model pickled under 'model'"])
    assert _same_outputs(model, ckpt.model)
    ckpt = load_checkpoint(tmp_path / "run.pt", trust=True, ema=True)
    assert ckpt.notes == ["using EMA weights from 'model_ema': --ema"]
    assert _same_outputs(ema, ckpt.model)
    torch.save(model, tmp_path / "whole.pt")
    assert load_checkpoint(tmp_path / "whole.pt", trust=True, ema=True).notes == [
        "--ema: the file holds no EMA weights; its plain weights were used"
    ]


class _Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"weight": torch.zeros(1), "x": _Payload(marker)}, tmp_path / "evil.pt")
    line = _input_error(tmp_path / "evil.pt", default_arch=ARCH)
    assert "exec" in line and "--trust-checkpoint" in line
    assert not marker.exists()
    with pytest.raises(InputError):  # trusted, the payload does run: the file was a real threat
        load_checkpoint(tmp_path / "evil.pt", default_arch=ARCH, trust=True)
    assert marker.exists()


def test_no_arch_anywhere(tmp_path):
    torch.save(_tiny().state_dict(), tmp_path / "m.pt")
    line = _input_error(tmp_path / "m.pt")
    assert "holds no architecture" in line and "--arch torchvision:NAME" in line


def test_missing_file_directory_empty_and_unknown_suffix(tmp_path):
    assert "no such file" in _input_error(tmp_path / "nope.pt")
    (tmp_path / "d.pt").mkdir()
    assert "is a directory" in _input_error(tmp_path / "d.pt")
    (tmp_path / "e.safetensors").touch()
    assert "empty" in _input_error(tmp_path / "e.safetensors")
    (tmp_path / "m.h5").write_bytes(b"x")
    assert "unknown checkpoint type '.h5'" in _input_error(tmp_path / "m.h5")


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_truncated_and_random_files(tmp_path, suffix):
    path = tmp_path / f"m{suffix}"
    if suffix == ".safetensors":
        save(_tiny(), path, arch=ARCH, arch_kwargs=KWARGS)
    else:
        torch.save(_tiny().state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _input_error(path, default_arch=ARCH)
    path.write_bytes(random.Random(0).randbytes(2000))
    assert "truncated or corrupt" in _input_error(path, default_arch=ARCH)


def test_damaged_files_never_raise_anything_but_input_error(tmp_path):
    rng = random.Random(1)
    sources = {}
    for name, write in [
        ("zip.pt", lambda p: torch.save(_tiny().state_dict(), p)),
        ("legacy.pt", lambda p: torch.save(_tiny().state_dict(), p, _use_new_zipfile_serialization=False)),
    ]:
        write(tmp_path / name)
        sources[name] = (tmp_path / name).read_bytes()
    for name, data in sources.items():
        for _ in range(15):
            damaged = bytearray(data[: rng.randrange(1, len(data))] if rng.random() < 0.3 else data)
            for _ in range(rng.choice([1, 3, 10])):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            (tmp_path / name).write_bytes(bytes(damaged))
            try:
                load_checkpoint(tmp_path / name, arch=ARCH, arch_kwargs=KWARGS)
            except InputError:
                pass


def test_wrong_architecture_names_missing_and_unexpected_keys(tmp_path):
    torch.save(_tiny().state_dict(), tmp_path / "m.pt")
    line = _input_error(tmp_path / "m.pt", arch="suscli.models:plain_cnn", arch_kwargs=KWARGS)
    assert "weights do not fit suscli.models:plain_cnn" in line
    assert "7 missing keys (0.bias, 3.weight, 3.bias, ...)" in line
    assert "19 unexpected keys (1.weight, 1.bias, 1.running_mean, ...)" in line


def test_shape_mismatch_names_both_shapes(tmp_path):
    torch.save(_tiny().state_dict(), tmp_path / "m.pt")
    line = _input_error(tmp_path / "m.pt", arch=ARCH, arch_kwargs={"width": 3})
    assert "tensors differ in shape (0.weight: checkpoint 2x3x3x3 vs model 3x3x3x3," in line


def test_a_grayscale_first_layer_on_an_rgb_architecture_is_told_how_to_build_it(tmp_path):
    """A ResNet-18 whose first conv was replaced for grayscale images (`model.conv1 = nn.Conv2d(1, 64, ...)`, the
    usual way to train torchvision's on MNIST) was told "1 tensors differ in shape (conv1.weight: checkpoint 64x1x7x7
    vs model 64x3x7x7) (pass the architecture and --arch-kwargs the checkpoint was trained with)": right architecture,
    and torchvision's resnet18 takes no argument for its input channels."""
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    torch.save(model.state_dict(), tmp_path / "gray.pt")
    line = _input_error(tmp_path / "gray.pt", arch="torchvision:resnet18")
    assert "1 tensor differs in shape (conv1.weight: checkpoint 64x1x7x7 vs model 64x3x7x7)" in line
    assert "its first layer takes 1 input channel where torchvision:resnet18 as built takes 3" in line
    assert "a file.py:factory that builds it with that layer" in line
    torch.save(bn_cnn(num_classes=3, width=2, in_channels=1).state_dict(), tmp_path / "small.pt")  # a factory's own kwarg
    line = _input_error(tmp_path / "small.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert "its first layer takes 1 input channel where suscli.models:bn_cnn as built takes 3" in line


def test_one_tensor_of_another_shape_is_counted_in_the_singular(tmp_path):
    model = _tiny()
    state = model.state_dict()
    state["0.weight"] = torch.zeros(2, 3, 5, 5)  # one kernel size changed, its input channels not
    torch.save(state, tmp_path / "m.pt")
    line = _input_error(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert "1 tensor differs in shape (0.weight: checkpoint 2x3x5x5 vs model 2x3x3x3)" in line
    assert "input channel" not in line


def test_a_class_count_the_weights_contradict_is_blamed_on_what_gave_it(tmp_path):
    """It was "weights do not fit" asking for the architecture the checkpoint was trained with, which the user had
    right; with num_classes in --arch-kwargs it even said the count was inferred from the weights."""
    model = _tiny()  # 3 classes
    torch.save(model.state_dict(), tmp_path / "m.pt")
    line = _input_error(tmp_path / "m.pt", default_arch=ARCH, default_arch_kwargs=KWARGS, num_classes=5)
    assert ": --num-classes says 5 classes, but the output layer of the weights has 3: 2 tensors differ in shape (" in line
    assert line.endswith("(drop --num-classes or make it 3)")
    line = _input_error(tmp_path / "m.pt", default_arch=ARCH, default_arch_kwargs={**KWARGS, "num_classes": 5})
    assert "num_classes in --arch-kwargs says 5 classes" in line and "(drop num_classes in --arch-kwargs or make it 3)" in line
    line = _input_error(tmp_path / "m.pt", default_arch=ARCH, default_arch_kwargs={"width": 3}, num_classes=5)
    assert "(drop --num-classes or make it 3; other layers differ too: pass the architecture and --arch-kwargs" in line
    line = _input_error(tmp_path / "m.pt", default_arch=ARCH, default_arch_kwargs={"width": 3, "num_classes": 3})
    assert "weights do not fit" in line and "inferred" not in line  # the count was given, and it fits
    sidecar_path(tmp_path / "m.pt").write_text(json.dumps({"arch": ARCH, "arch_kwargs": {**KWARGS, "num_classes": 5}}))
    assert "num_classes in its suscli sidecar's arch_kwargs says 5 classes" in _input_error(tmp_path / "m.pt")
    save(model, tmp_path / "n.safetensors", arch=ARCH, arch_kwargs=KWARGS, num_classes=5)
    assert "num_classes in its suscli metadata says 5 classes" in _input_error(tmp_path / "n.safetensors")


def test_num_classes_that_the_arch_kwargs_of_the_file_contradict_is_refused(tmp_path):
    """`--num-classes 5` on a file whose suscli metadata builds the model with num_classes=3 was dropped without a
    word: the kwargs win, the model was measured as 3 classes, and the row said nothing of the option. It is the
    user's count against the file's, and one of them is wrong: refused, naming both, as the weights' count is."""
    save(_tiny(), tmp_path / "n.safetensors", arch=ARCH, arch_kwargs={**KWARGS, "num_classes": 3})
    line = _input_error(tmp_path / "n.safetensors", num_classes=5)
    assert ": --num-classes says 5 classes, but num_classes in its suscli metadata's arch_kwargs says 3" in line
    assert line.endswith("(drop --num-classes or make it 3)")
    assert load_checkpoint(tmp_path / "n.safetensors", num_classes=3).num_classes == 3  # the same count is no contradiction
    torch.save(_tiny().state_dict(), tmp_path / "m.pt")
    line = _input_error(tmp_path / "m.pt", default_arch=ARCH, default_arch_kwargs={**KWARGS, "num_classes": 3}, num_classes=5)
    assert ": --num-classes says 5 classes, but num_classes in --arch-kwargs says 3" in line


def test_file_without_tensors(tmp_path):
    torch.save({"epoch": 3, "step": 10}, tmp_path / "m.pt")
    line = _input_error(tmp_path / "m.pt", default_arch=ARCH)
    assert "holds no state dict (found a dict with keys 'epoch', 'step')" in line


def test_an_optimizers_state_alone_is_named_as_one(tmp_path):
    """`torch.save(optimizer.state_dict(), "adam-state.pt")` read as a model said "holds no state dict (found a dict
    with keys 'state', 'param_groups')", and asked for a mapping of names to tensors: the file is an optimizer's."""
    torch.save(torch.optim.Adam(_tiny().parameters()).state_dict(), tmp_path / "adam-state.pt")
    line = _input_error(tmp_path / "adam-state.pt", default_arch=ARCH)
    assert "adam-state.pt: holds an optimizer's state (torch.optim's state_dict: 'state' and 'param_groups'), not a model's weights" in line
    assert line.endswith("(pass the model's checkpoint, saved beside it with torch.save(model.state_dict(), PATH))")


def test_a_safetensors_file_without_tensors_says_so_and_how_to_save_one(tmp_path):
    """A .safetensors file written with metadata and no tensors (an empty dict saved by mistake) was "holds no state
    dict (found an empty dict)", with a fix about keys 'state_dict' and 'model' that a flat safetensors file has no
    place for."""
    save_file({}, str(tmp_path / "meta.safetensors"), metadata={"arch": ARCH, "epoch": "3"})
    line = _input_error(tmp_path / "meta.safetensors")
    assert line.endswith(
        "meta.safetensors: holds no tensors (its metadata alone: arch, epoch) (save the model's weights in it: "
        "safetensors.torch.save_file(model.state_dict(), PATH, metadata=...))"
    )
    save_file({}, str(tmp_path / "bare.safetensors"))
    assert "bare.safetensors: holds no tensors (save the model's weights" in _input_error(tmp_path / "bare.safetensors", default_arch=ARCH)


def test_a_state_dict_with_records_added_at_its_top_loads_its_weights_and_reads_the_epoch(tmp_path):
    """`sd = model.state_dict(); sd["epoch"] = 3; torch.save(sd, ...)` was refused: "holds no state dict (found a
    OrderedDict with keys '0.weight', ...)", which it plainly is. Its tensors are the weights and the numbers, names
    and lists of them beside them records (the epoch read), said in a note: model.load_state_dict would refuse them
    as unexpected keys. A value that is neither (an optimizer's state) is named as what keeps it from loading."""
    model = _tiny()
    state = model.state_dict()
    state["epoch"] = 3
    torch.save(state, tmp_path / "m.pt")
    ckpt = load_checkpoint(tmp_path / "m.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert _same_outputs(model, ckpt.model) and ckpt.meta == {"epoch": 3}
    assert ckpt.notes == ["left out 1 value of the state dict that is no tensor, a record beside the weights: 'epoch'"]
    state = model.state_dict()
    state.update(best_acc=0.91, arch="bn_cnn", classes=["a", "b", "c"], note=None)
    torch.save({"model": state, "epoch": 4}, tmp_path / "nested.pt")
    ckpt = load_checkpoint(tmp_path / "nested.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert _same_outputs(model, ckpt.model) and ckpt.meta == {"epoch": 4}
    assert ckpt.notes == [
        "left out 4 values of the state dict that are no tensors, records beside the weights: 'arch', 'best_acc', 'classes', ..."
    ]
    state = model.state_dict()
    state["optimizer"] = {"state": {}, "param_groups": [{"lr": 0.1}]}
    torch.save(state, tmp_path / "opt.pt")
    line = _input_error(tmp_path / "opt.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert "holds a state dict whose 'optimizer' is a dict with keys 'state', 'param_groups', neither a tensor nor a record" in line
    assert "save the weights apart from it" in line, line


def test_bad_sidecar_and_bad_metadata(tmp_path):
    torch.save(_tiny().state_dict(), tmp_path / "m.pt")
    sidecar_path(tmp_path / "m.pt").write_text("{not json")
    with pytest.raises(InputError, match="m.suscli.json is not valid JSON"):
        load_checkpoint(tmp_path / "m.pt", default_arch=ARCH)
    save_file(_tiny().state_dict(), str(tmp_path / "s.safetensors"), metadata={"suscli": '["a list"]'})
    assert "metadata 'suscli' is not a JSON object" in _input_error(tmp_path / "s.safetensors", default_arch=ARCH)


def test_sidecar_path():
    assert sidecar_path("runs/model.pt").as_posix() == "runs/model.suscli.json"


def _without_num_batches_tracked(state: dict) -> dict:
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def test_files_saved_before_pytorch_0_4_1_load_as_torch_loads_them(tmp_path):
    """BatchNorm gained num_batches_tracked in 0.4.1 and fills it in for older files (no module version recorded),
    which `load_state_dict(strict=True)` accepts; so does suscli."""
    model = _tiny()
    old = _without_num_batches_tracked(model.state_dict())
    torch.save(old, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    fresh = bn_cnn(num_classes=3, **KWARGS)
    fresh.load_state_dict(torch.load(tmp_path / "old.pth"), strict=True)  # torch's own verdict
    ckpt = load_checkpoint(tmp_path / "old.pth", arch=ARCH, arch_kwargs=KWARGS)
    assert _same_outputs(model, ckpt.model) and ckpt.notes == []
    torch.save({f"module.{k}": v for k, v in old.items()}, tmp_path / "ddp.pth")  # and through a stripped prefix
    assert _same_outputs(model, load_checkpoint(tmp_path / "ddp.pth", arch=ARCH, arch_kwargs=KWARGS).model)


def test_module_versions_saved_with_the_weights_decide(tmp_path):
    """A state dict that records BatchNorm version 2 must hold num_batches_tracked: torch refuses it, so does suscli,
    naming the keys; version 1 (saved by 0.4.0) fills them in."""
    state = _tiny().state_dict()  # an OrderedDict with torch's _metadata (module versions)
    for k in [k for k in state if k.endswith("num_batches_tracked")]:
        del state[k]
    torch.save(state, tmp_path / "v2.pth")
    with pytest.raises(RuntimeError, match="num_batches_tracked"):
        bn_cnn(num_classes=3, **KWARGS).load_state_dict(torch.load(tmp_path / "v2.pth"), strict=True)
    line = _input_error(tmp_path / "v2.pth", arch=ARCH, arch_kwargs=KWARGS)
    assert "3 missing keys (1.num_batches_tracked, 5.num_batches_tracked, 9.num_batches_tracked), 0 unexpected keys" in line
    assert "without the buffers" not in line  # it holds the running statistics
    for meta in state._metadata.values():
        if "version" in meta:
            meta["version"] = 1
    torch.save(state, tmp_path / "v1.pth")
    assert load_checkpoint(tmp_path / "v1.pth", arch=ARCH, arch_kwargs=KWARGS).notes == []


class _Args(argparse.Namespace):
    """A Namespace subclass: another global to the unpickler, and not allowed."""


def test_argparse_namespace_is_allowed_by_name_and_nothing_else(tmp_path):
    weights = _tiny().state_dict()
    torch.save({"state_dict": weights, "args": argparse.Namespace(lr=0.1, sizes=[1, 2])}, tmp_path / "ns.pt")
    assert _same_outputs(_tiny(), load_checkpoint(tmp_path / "ns.pt", arch=ARCH, arch_kwargs=KWARGS).model)
    torch.save({"state_dict": weights, "args": _Args(lr=0.1)}, tmp_path / "sub.pt")
    line = _input_error(tmp_path / "sub.pt", arch=ARCH)
    assert f"{_Args.__module__}._Args" in line and "--trust-checkpoint" in line
    marker = tmp_path / "pwned"
    torch.save({"state_dict": weights, "args": argparse.Namespace(x=_Payload(marker))}, tmp_path / "evil.pt")
    line = _input_error(tmp_path / "evil.pt", arch=ARCH)
    assert "exec" in line and "--trust-checkpoint" in line
    assert not marker.exists()
    assert argparse.Namespace not in torch.serialization.get_safe_globals()  # allowed for one load, not for the process


def test_paths_saved_beside_the_weights_load_as_inert_paths(tmp_path):
    """Lightning 2.0's checkpoints hold its ModelCheckpoint's `dirpath` as a pathlib.PosixPath, and other tools save
    paths too: weights-only loading refused each file ("pass --trust-checkpoint"). A path of either flavour is read
    as a pure path, which touches no file; a path class of anyone else's stays refused."""
    import pathlib

    weights = _tiny().state_dict()
    callbacks = {"ModelCheckpoint{'monitor': None}": {"dirpath": Path("/runs/ckpt"), "best": pathlib.PureWindowsPath("C:/r/b.ckpt")}}
    torch.save({"state_dict": weights, "callbacks": callbacks}, tmp_path / "paths.ckpt")
    assert _same_outputs(_tiny(), load_checkpoint(tmp_path / "paths.ckpt", arch=ARCH, arch_kwargs=KWARGS).model)
    torch.save({"state_dict": weights, "dir": _OwnPath("/x")}, tmp_path / "own.ckpt")
    line = _input_error(tmp_path / "own.ckpt", arch=ARCH)
    assert f"{_OwnPath.__module__}._OwnPath" in line and "--trust-checkpoint" in line


class _OwnPath(type(Path())):  # type: ignore[misc]
    """A Path subclass: another global to the unpickler, and not allowed."""


def _unpickler_without_named_globals(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch 2.5's weights-only unpickler: safe_globals exists, but every allowed entry is read as a callable's
    __module__ and __name__, so an (object, name) pair raises AttributeError ((object, name) pairs came later)."""
    from torch import _weights_only_unpickler as unpickler

    def user_allowed() -> dict:
        return {f"{f.__module__}.{f.__name__}": f for f in unpickler._marked_safe_globals_set}

    monkeypatch.setattr(unpickler, "_get_user_allowed_globals", user_allowed)
    monkeypatch.setattr(safe_read, "_NAMED_GLOBALS", None)  # probed again under this unpickler


def test_a_torch_without_named_safe_globals_still_loads_plain_data_and_refuses_the_rest(tmp_path, monkeypatch):
    """On torch 2.5 the (stand-in, name) pairs that allow OmegaConf's containers and numpy scalars made torch raise
    AttributeError for any checkpoint holding a global beyond a state dict's, which was reported as a corrupt file
    ("save or download it again"), argparse's Namespace included. There the pairs are left out: the Namespace loads,
    and a numpy scalar is refused by name, as on torch 2.4, which has no safe_globals at all."""
    _unpickler_without_named_globals(monkeypatch)
    weights = _tiny().state_dict()
    torch.save({"state_dict": weights, "args": argparse.Namespace(lr=0.1)}, tmp_path / "ns.pt")
    assert _same_outputs(_tiny(), load_checkpoint(tmp_path / "ns.pt", arch=ARCH, arch_kwargs=KWARGS).model)
    torch.save({"state_dict": weights, "epoch": np.int64(4)}, tmp_path / "np.pt")
    line = _input_error(tmp_path / "np.pt", arch=ARCH)
    assert "it imports numpy" in line and "--trust-checkpoint" in line and "corrupt" not in line, line


def test_numpy_scalars_beside_the_weights_are_read_as_numbers(tmp_path):
    """A script's metrics computed with numpy (`best_acc`, an epoch counted as np.int64) refused the whole file:
    "it imports numpy._core.multiarray.scalar ... pass --trust-checkpoint". The scalars are rebuilt as Python numbers
    from their dtype code and bytes, nothing they name is called, and the epoch is read."""
    model = _tiny()
    records = {"epoch": np.int64(4), "best_acc": np.float64(0.91), "loss": np.float32(0.25), "is_best": np.bool_(True)}
    records["big"] = np.array(1.5, dtype=">f8")[()]  # a big-endian float, as another machine writes it
    torch.save({"state_dict": model.state_dict(), **records}, tmp_path / "np.pt")  # protocol 2: bytes as _codecs.encode
    ckpt = load_checkpoint(tmp_path / "np.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert _same_outputs(model, ckpt.model) and ckpt.meta.get("epoch") == 4
    contents = safe_read.torch_load(tmp_path / "np.pt", trust=False)
    assert {k: (contents[k], type(contents[k])) for k in records} == {
        "epoch": (4, int),
        "best_acc": (0.91, float),
        "loss": (0.25, float),
        "is_best": (True, bool),
        "big": (1.5, float),
    }


def test_numpy_arrays_and_other_scalars_are_still_refused(tmp_path):
    """Only plain numeric scalars are rebuilt: an array could be weights read as nothing, and a string or object
    scalar has no number to read."""
    weights = _tiny().state_dict()
    for name, value, imports in [
        ("arr", np.ones(3), "numpy"),
        ("text", np.str_("abc"), "numpy.dtype"),
        ("date", np.datetime64("2026-12-06"), "numpy.dtype"),
    ]:
        torch.save({"state_dict": weights, "extra": value}, tmp_path / f"{name}.pt")
        line = _input_error(tmp_path / f"{name}.pt", arch=ARCH)
        assert f"it imports {imports}" in line and "--trust-checkpoint" in line, line


@pytest.mark.parametrize("protocol, zipped", [(4, True), (5, True), (4, False), (3, True)], ids=["p4", "p5", "p4-legacy", "p3-bytes"])
def test_a_state_dict_in_a_newer_pickle_protocol_loads_without_trust(tmp_path, image_folder, protocol, zipped):
    """torch.save(..., pickle_protocol=4) (code that saves objects over 4 GB, some libraries) writes opcodes torch's
    weights-only unpickler does not read, and protocol 3 writes bytes so: such a file of tensors was refused and
    needed --trust-checkpoint, i.e. running whatever it held. It is now read by an unpickler allowed exactly torch's
    weights-only globals, and scores as the protocol-2 file does."""
    model = _tiny()
    state = {"state_dict": model.state_dict(), "epoch": 3, "tag": b"run-1"}
    torch.save(state, tmp_path / "p2.pt")
    torch.save(state, tmp_path / "new.pt", pickle_protocol=protocol, _use_new_zipfile_serialization=zipped)
    flags = ["-d", image_folder, "--arch", ARCH, "--arch-kwargs", json.dumps(KWARGS), "--image-size", "8", "--mean", "0.5", "--std", "0.25"]
    expected = cli_json("score", tmp_path / "p2.pt", *flags)["results"][0]["susceptibility"]
    assert cli_json("score", tmp_path / "new.pt", *flags)["results"][0]["susceptibility"] == expected


def test_a_newer_protocol_file_under_forced_weights_only_loading_says_why(tmp_path, monkeypatch):
    """With TORCH_FORCE_WEIGHTS_ONLY_LOAD set, torch refuses any reader but its weights-only one, which cannot read a
    protocol-4 pickle: the file was called "truncated or corrupt". It is refused for what stops it, with the fix."""
    torch.save(_tiny().state_dict(), tmp_path / "p4.pt", pickle_protocol=4)
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")
    line = _input_error(tmp_path / "p4.pt", arch=ARCH)
    assert "is pickled with protocol 4, whose opcodes weights-only loading cannot read" in line, line
    assert "TORCH_FORCE_WEIGHTS_ONLY_LOAD is set" in line and "corrupt" not in line, line


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_a_payload_in_a_newer_pickle_protocol_is_refused_without_running(tmp_path, zipped):
    """A protocol-4 file that imports a callable is refused and named, and nothing in it runs, whether the opcode
    scan names it first or the restricted unpickler meets it; a truncated one is called corrupt."""
    model = _tiny()
    marker = tmp_path / "pwned"
    path = tmp_path / "evil4.pt"
    torch.save({"state_dict": model.state_dict(), "x": _Payload(marker)}, path, pickle_protocol=4, _use_new_zipfile_serialization=zipped)
    line = _input_error(path, arch=ARCH)
    assert "it imports builtins.exec" in line and "--trust-checkpoint" in line and not marker.exists(), line
    with pytest.raises(pickle.UnpicklingError, match="GLOBAL builtins.exec"):
        torch.load(path, weights_only=False, pickle_module=restricted_pickle)
    assert not marker.exists()
    torch.save({"state_dict": model.state_dict()}, tmp_path / "p4.pt", pickle_protocol=4)
    (tmp_path / "cut.pt").write_bytes((tmp_path / "p4.pt").read_bytes()[:200])
    assert "corrupt" in _input_error(tmp_path / "cut.pt", arch=ARCH)


@pytest.mark.parametrize(
    "payload, what",
    [
        (b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x8c\x04true\x85R.", "GLOBAL os.system"),  # STACK_GLOBAL
        (b"(cos\nsystem\nS'true'\no.", "GLOBAL os.system"),  # MARK GLOBAL ... OBJ
        (b"(S'true'\nios\nsystem\n.", "GLOBAL os.system"),  # INST
        (b"\x80\x02\x82\x01.", "Unsupported operand"),  # EXT1: copyreg's extension cache, not find_class
        (b"\x80\x04ccollections\nCounter\nN}\x8c\x01x\x8c\x01ys\x86b.", "Can only build"),  # BUILD setting a class attribute
        (b"\x80\x04cbuiltins\nset\n)RK\x00K\x01s.", "Can only add items"),  # SETITEM on what is not a dict
    ],
    ids=["stack-global", "obj", "inst", "ext", "build-class", "setitem-set"],
)
def test_the_restricted_unpickler_reaches_no_code_beyond_torchs_allowlist(payload, what):
    """Every way a pickle reaches code goes through the allowlist: find_class for GLOBAL, STACK_GLOBAL and INST, an
    allowed callee for REDUCE, NEWOBJ and OBJ, and BUILD never on a class (which would set attributes of
    collections.Counter for the whole process)."""
    with pytest.raises(pickle.UnpicklingError, match=what):
        restricted_pickle.load(io.BytesIO(payload))
    assert not hasattr(collections.Counter, "x")


def test_the_restricted_unpickler_builds_an_ordered_dict_as_torch_does():
    """BUILD on an ordered dict went through Python's handler, which calls a `__setstate__` an earlier BUILD set on the
    instance; torch's weights-only unpickler only updates its attributes, and so does this one now."""
    payload = (
        b"\x80\x04ccollections\nOrderedDict\n)R"  # OrderedDict()
        b"}\x8c\x0c__setstate__ccollections\nOrderedDict\nsb"  # BUILD: its __setstate__ attribute set to OrderedDict
        b"}\x8c\x01yK\x01sb."  # BUILD {"y": 1}: an attribute, not a call of that __setstate__
    )
    assert restricted_pickle.load(io.BytesIO(payload)).y == 1


def test_a_malformed_sparse_tensor_in_a_newer_protocol_is_refused_as_weights_only_loading_refuses_it(tmp_path):
    """torch validates sparse tensors' indices only under weights_only=True (an index beyond the size reads out of
    bounds later, in to_dense()); the restricted load of a protocol-4 file runs torch.load(weights_only=False), and
    loaded such a tensor unchecked."""
    bad = torch.sparse_coo_tensor(torch.tensor([[5]]), torch.tensor([1.0]), (2,), check_invariants=False)
    for protocol in (2, 4):
        torch.save({"w": bad}, tmp_path / f"s{protocol}.pt", pickle_protocol=protocol)
        line = _input_error(tmp_path / f"s{protocol}.pt", arch=ARCH)
        assert "size is 2 but found index 5" in line, line
    assert not torch.sparse.check_sparse_tensor_invariants.is_enabled()


def test_a_newer_protocol_pickle_refused_for_what_it_does_says_so(tmp_path):
    """A protocol-4 pickle that imports only allowed globals but sets a class attribute with BUILD (torch's
    weights-only unpickler refuses that too) is refused, not loaded and not called corrupt."""
    path = tmp_path / "bare.pt"
    path.write_bytes(b"\x80\x04ccollections\nCounter\nN}\x8c\x01x\x8c\x01ys\x86b.")
    line = _input_error(path, arch=ARCH)
    assert "pickled with protocol 4 and holds what weights-only loading does not allow" in line and "Can only build" in line, line
    assert "--trust-checkpoint" in line and not hasattr(collections.Counter, "x")


def test_pth_tar_is_a_torch_file(tmp_path):
    model = _tiny()
    torch.save({"state_dict": model.state_dict()}, tmp_path / "last.pth.tar")
    assert _same_outputs(model, load_checkpoint(tmp_path / "last.pth.tar", arch=ARCH, arch_kwargs=KWARGS).model)
    (tmp_path / "a.tar").write_bytes(b"x")
    assert "unknown checkpoint type '.tar'" in _input_error(tmp_path / "a.tar")


@pytest.mark.parametrize("arch", ["mobilenet_v3_small", "resnet"])
def test_an_arch_field_without_timms_args_is_not_read_as_a_timm_model(tmp_path: Path, arch: str) -> None:
    """PyTorch's ImageNet example (pytorch/examples imagenet/main.py) saves `epoch`, `arch` (a torchvision model's
    name), `state_dict` and `best_acc1`; timm's CheckpointSaver without the run's args saves `arch` as the model's class
    name (`resnet`). Both were read as timm's train.py with args, `arch` as timm:ARCH "from args.yaml", which neither
    folder holds: without --arch, "timm has no model 'mobilenet_v3_small' (arch from args.yaml)"; with it, the note
    "the args.yaml says timm:mobilenet_v3_small". Nothing in such a file says which library's model `arch` names."""
    model = torchvision.models.mobilenet_v3_small(num_classes=3).eval()
    state = {"module." + k: v for k, v in model.state_dict().items()}  # main.py wraps the model in DataParallel
    path = tmp_path / "checkpoint.pth.tar"
    timm_saver = {"version": 2} if arch == "resnet" else {"best_acc1": torch.tensor(41.5)}
    torch.save({"epoch": 2, "arch": arch, "state_dict": state, "optimizer": {"state": {}}, **timm_saver}, path)
    line = _input_error(path)
    assert "holds no architecture" in line and "args.yaml" not in line and "timm" not in line.split("(pass")[0]
    ckpt = load_checkpoint(path, default_arch="torchvision:mobilenet_v3_small")
    assert (ckpt.arch, ckpt.arch_source) == ("torchvision:mobilenet_v3_small", "--arch")
    assert not any("args.yaml" in n or "timm" in n for n in ckpt.notes), ckpt.notes
    assert _same_outputs(model, ckpt.model, torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("form", ["pickled", "torchscript"])
def test_a_whole_model_in_half_precision_is_measured_in_float32_as_its_state_dict_is(tmp_path: Path, dtype: torch.dtype, form: str) -> None:
    """A whole model saved after half-precision training failed on the float32 images ("Input type and weight type
    should be the same"), blamed on --arch and --image-size; it is now made float32, as the same weights are when a
    state dict of them loads into the float32 network, and the row says so."""
    half = _tiny().to(dtype).eval()
    path = tmp_path / "m.pt"
    if form == "pickled":
        torch.save(half, path)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; its files are still around
            torch.jit.save(torch.jit.script(half), path)
    ckpt = load_checkpoint(path, trust=form == "pickled")
    torch.save(half.state_dict(), tmp_path / "sd.pt")
    from_state = load_checkpoint(tmp_path / "sd.pt", arch=ARCH, arch_kwargs=KWARGS)
    assert all(p.dtype == torch.float32 for p in ckpt.model.parameters())
    assert _same_outputs(ckpt.model.eval(), from_state.model.eval())
    assert f"weights in {str(dtype).removeprefix('torch.')}, measured in float32 (as a state dict of them would be)" in ckpt.notes


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_state_dict_in_half_precision_is_said_to_be_measured_in_float32(tmp_path: Path, dtype: torch.dtype) -> None:
    """A whole model saved in half precision got the note that it is measured in float32; its state dict, rounded to
    float32 alike as it loads into the float32 network, loaded with no word. It gets the same note, and a float32
    state dict none."""
    torch.save(_tiny().to(dtype).state_dict(), tmp_path / "half.pt")
    torch.save(_tiny().state_dict(), tmp_path / "full.pt")
    half, full = (load_checkpoint(tmp_path / f, arch=ARCH, arch_kwargs=KWARGS) for f in ("half.pt", "full.pt"))
    assert all(p.dtype == torch.float32 for p in half.model.parameters())
    word = str(dtype).removeprefix("torch.")
    assert f"weights in {word}, measured in float32 (loaded into the network, built in float32)" in half.notes
    assert not any("measured in float32" in n for n in full.notes)


def test_torchvision_googlenet_weights_without_their_auxiliary_heads_load(tmp_path):
    """torchvision's pretrained GoogLeNet drops its auxiliary heads, and so do the weights fine-tuned from it: built
    with them, `--arch torchvision:googlenet` refused such weights, "18 missing keys (aux1.conv.conv.weight, ...)",
    with a fix naming no aux_logits. The heads are built where the weights have them, and without torchvision's
    initialization, whose default warned "The default weight initialization of GoogleNet will be changed"."""
    for aux in (False, True):
        model = torchvision.models.googlenet(weights=None, num_classes=3, aux_logits=aux, init_weights=False)
        torch.save(model.state_dict(), tmp_path / f"g{aux}.pt")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ckpt = load_checkpoint(tmp_path / f"g{aux}.pt", default_arch="torchvision:googlenet")
        assert (ckpt.model.aux1 is not None) is aux and ckpt.num_classes == 3


def _peft_adapter(folder: Path) -> Path:
    """A LoRA adapter of a ViT classifier as peft's `save_pretrained` writes it: its config naming the base model on
    the Hub, and the LoRA matrices and the retrained head under peft's names, in safetensors."""
    folder.mkdir(parents=True)
    tensors = {}
    for layer in range(2):
        for name in ("query", "value"):
            prefix = f"base_model.model.vit.encoder.layer.{layer}.attention.attention.{name}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(8, 32)
            tensors[f"{prefix}.lora_B.weight"] = torch.zeros(32, 8)
    tensors["base_model.model.classifier.modules_to_save.weight"] = torch.randn(3, 32)
    save_file(tensors, folder / "adapter_model.safetensors", metadata={"format": "pt"})
    config = {"peft_type": "LORA", "base_model_name_or_path": "google/vit-base-patch16-224-in21k", "r": 8, "lora_alpha": 16,
              "target_modules": ["query", "value"], "modules_to_save": ["classifier"], "task_type": None}  # fmt: skip
    (folder / "adapter_config.json").write_text(json.dumps(config))
    (folder / "README.md").write_text("---\nlibrary_name: peft\n---\n")
    return folder


def test_a_peft_adapter_is_named_as_one_with_the_merge_to_do(tmp_path: Path, image_folder: Path) -> None:
    """A LoRA adapter holds the weights it adds to its base model, not a model: its folder was "is a directory, not a
    checkpoint (... a Hugging Face model folder (config.json with model.safetensors ...)", its weights file "a state
    dict holds no architecture (pass --arch ...)", which no --arch could load."""
    adapter = _peft_adapter(tmp_path / "lora")
    for path in (adapter, adapter / "adapter_model.safetensors"):
        line = one_error_line(
            invoke("score", path, "-d", image_folder), 3, f"error: {path}: is a PEFT adapter (LORA) for google/vit-base-patch16-224-in21k"
        )
        assert (
            f"PeftModel.from_pretrained(AutoModelForImageClassification.from_pretrained('google/vit-base-patch16-224-in21k'), '{adapter}')"
            in line
        )
        assert (
            ".merge_and_unload().save_pretrained('merged'), with the base model's image processor saved there too, then score merged"
            in line
        )
    one_error_line(invoke("score", adapter / "adapter_model.safetensors", "-d", image_folder, "--arch", ARCH), 3, "is a PEFT adapter")


def test_a_peft_adapters_config_passed_itself_names_the_adapter(tmp_path: Path, image_folder: Path) -> None:
    """adapter_config.json is the file a user opens to see what an adapter is, and the one a shell completes first:
    given itself, it was "unknown checkpoint type '.json'", as if some other suffix would do; `rank` read it as a
    manifest that "lists no models"."""
    adapter = _peft_adapter(tmp_path / "lora")
    config = adapter / "adapter_config.json"
    line = one_error_line(
        invoke("score", config, "-d", image_folder),
        3,
        f"error: {config}: is part of {adapter}, which is a PEFT adapter (LORA) for google/vit-base-patch16-224-in21k",
    )
    assert f"'{adapter}').merge_and_unload()" in line
    rank = one_error_line(invoke("rank", config, "-d", image_folder), 3)  # it was read as a manifest: "lists no models"
    assert rank == line
    (adapter / "adapter_model.safetensors").unlink()  # no weights: no adapter to name
    one_error_line(invoke("score", config, "-d", image_folder), 3, "unknown checkpoint type '.json'")


def test_a_torch_distributed_checkpoint_folder_is_named_with_torchs_conversion(tmp_path: Path, image_folder: Path) -> None:
    """FSDP's sharded save (torch.distributed.checkpoint: `.metadata`, a pickle, beside `__0_0.distcp`) was "is a
    directory, not a checkpoint", its files "unknown checkpoint type '.distcp'" and "'(no suffix)'". It is refused
    without unpickling anything, naming torch's own conversion, whose output suscli reads."""
    import subprocess
    import sys

    import torch.distributed.checkpoint as dcp

    model = _tiny()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.distributed is disabled ...: assuming ... a single process"
        dcp.save({"model": model.state_dict()}, checkpoint_id=str(tmp_path / "fsdp"))
    folder = tmp_path / "fsdp"
    convert = f"python -m torch.distributed.checkpoint.format_utils dcp_to_torch {folder} model.pt, then score model.pt"
    for path in (folder, folder / "__0_0.distcp", folder / ".metadata"):
        line = one_error_line(
            invoke("score", path, "-d", image_folder, "--arch", ARCH), 3, f"error: {path}: ", "is a torch.distributed.checkpoint folder"
        )
        assert "1 .distcp file and .metadata" in line and convert in line
    subprocess.run([sys.executable, "-m", "torch.distributed.checkpoint.format_utils", "dcp_to_torch", str(folder), str(tmp_path / "model.pt")],
                   check=True, capture_output=True)  # fmt: skip
    assert _same_outputs(load_checkpoint(tmp_path / "model.pt", arch=ARCH, arch_kwargs=KWARGS).model, model)


def _deepspeed_run(root: Path, model: nn.Module, step: int = 100) -> Path:
    """save_checkpoint's layout (ZeRO-2): `latest` naming `global_stepN/`, the model states (`module`, the network's
    state dict, beside DeepSpeed's records) and each rank's optimizer shard."""
    folder = root / f"global_step{step}"
    folder.mkdir(parents=True)
    states = {"module": model.state_dict(), "buffer_names": ["1.running_mean"], "optimizer": None, "param_shapes": [{"0.weight": torch.Size([2, 3, 3, 3])}],
              "frozen_param_shapes": None, "shared_params": {}, "frozen_param_fragments": None, "lr_scheduler": None, "data_sampler": None,
              "random_ltd": None, "sparse_tensor_module_names": set(), "skipped_steps": 0, "global_steps": step, "global_samples": 8 * step,
              "dp_world_size": 1, "mp_world_size": 1, "ds_config": {"train_batch_size": 8, "zero_optimization": {"stage": 2}}, "ds_version": "0.16.4"}  # fmt: skip
    torch.save(states, folder / "mp_rank_00_model_states.pt")
    shard = {
        "optimizer_state_dict": {"single_partition_of_fp32_groups": [torch.zeros(10)], "partition_count": [1]},
        "ds_config": {},
        "ds_version": "0.16.4",
    }
    torch.save(shard, folder / "zero_pp_rank_0_mp_rank_00_optim_states.pt")
    (root / "latest").write_text(f"global_step{step}")
    return folder


def test_a_deepspeed_checkpoint_is_read_from_its_model_states(tmp_path: Path, image_folder: Path) -> None:
    """DeepSpeed's model states hold the network's state dict under `module`: "holds no state dict (found a dict with
    keys 'module', 'buffer_names', ...)"; its folders were "is a directory, not a checkpoint", its optimizer shard
    "holds no state dict", and ZeRO-3's partitioned model states, which hold no whole weight, were not told apart."""
    model = _tiny()
    step = _deepspeed_run(tmp_path / "ds", model)
    assert _same_outputs(load_checkpoint(step / "mp_rank_00_model_states.pt", arch=ARCH, arch_kwargs=KWARGS).model, model)
    for path in (tmp_path / "ds", step):
        one_error_line(
            invoke("score", path, "-d", image_folder),
            3,
            f"error: {path}: is a DeepSpeed checkpoint folder, not a checkpoint (score its model, {step / 'mp_rank_00_model_states.pt'})",
        )
    shard = step / "zero_pp_rank_0_mp_rank_00_optim_states.pt"
    one_error_line(
        invoke("score", shard, "-d", image_folder, "--arch", ARCH),
        3,
        f"{shard}: is DeepSpeed's optimizer state (a ZeRO shard), not a model",
    )
    (step / "mp_rank_00_model_states.pt").rename(step / "zero_pp_rank_0_mp_rank_00_model_states.pt")  # ZeRO-3's name
    for path in (tmp_path / "ds", step / "zero_pp_rank_0_mp_rank_00_model_states.pt"):
        line = one_error_line(
            invoke("score", path, "-d", image_folder, "--arch", ARCH),
            3,
            "is DeepSpeed's ZeRO-3 model states, whose weights are partitioned",
        )
        assert f"python {tmp_path / 'ds' / 'zero_to_fp32.py'} {tmp_path / 'ds'} fp32" in line


def test_an_onnx_model_is_refused_for_what_it_is(tmp_path: Path, image_folder: Path) -> None:
    """An ONNX graph (a protobuf: torch.onnx.export's ModelProto begins with its ir_version, field 1) was "unknown
    checkpoint type '.onnx'", as if suscli could read it once named otherwise; the measurement needs gradients."""
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x08\x12\x07pytorch\x1a\x052.5.0:" + bytes(40))
    line = one_error_line(
        invoke("score", path, "-d", image_folder, "--arch", ARCH), 3, f"error: {path}: is an ONNX model, which suscli cannot measure"
    )
    assert "takes a gradient step" in line and "score the PyTorch checkpoint it was exported from" in line


def test_keras_and_tensorflow_models_are_refused_for_what_they_are(tmp_path: Path, image_folder: Path) -> None:
    """A Keras model (`model.save("m.h5")`, an HDF5 file; `m.keras`, a zip archive) was "unknown checkpoint type", and a
    TensorFlow SavedModel folder "is a directory, not a checkpoint": as if suscli could read them once named otherwise.
    Each is now named, with the fix; an .h5 that is no HDF5 file is not called one."""
    h5 = tmp_path / "m.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(40))  # HDF5's signature, as every file h5py writes begins
    keras = tmp_path / "m.keras"
    with zipfile.ZipFile(keras, "w") as z:  # Keras 3's format: config.json, metadata.json, model.weights.h5
        z.writestr("metadata.json", "{}")
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(bytes(8))
    for path, said in (
        (
            h5,
            "is an HDF5 file (Keras's and TensorFlow's format for models and weights), which suscli cannot measure: suscli measures PyTorch",
        ),
        (keras, "is a Keras model, which suscli cannot measure: suscli measures PyTorch models, and this is Keras's format"),
        (saved, "is a TensorFlow SavedModel, which suscli cannot measure"),
        (saved / "saved_model.pb", "is a TensorFlow SavedModel, which suscli cannot measure"),
    ):
        line = one_error_line(invoke("score", path, "-d", image_folder, "--arch", ARCH), 3, f"error: {path}: {said}")
        assert "score the model's PyTorch checkpoint" in line
    h5.write_bytes(b"not hdf5" + bytes(40))
    one_error_line(invoke("score", h5, "-d", image_folder, "--arch", ARCH), 3, f"error: {h5}: unknown checkpoint type '.h5'")


def test_a_safetensors_file_whose_name_is_not_utf8_is_loaded(tmp_path: Path, image_folder: Path) -> None:
    """A .safetensors file named in Latin-1 bytes (`caf\\xe9.safetensors`, from an old archive), which Python keeps as a
    lone surrogate and safetensors' Rust binding refuses ("Path caf\\ufffd.safetensors is not valid UTF-8"): it was
    called "not a readable safetensors file ... (the file may be truncated or corrupt ...)", a file that is whole. It
    is now read as any other, its metadata (the architecture) and weights alike."""
    model = bn_cnn(num_classes=3, width=4)
    path = tmp_path / os.fsdecode(b"caf\xe9.safetensors")
    save(model, path, arch=ARCH, arch_kwargs={"num_classes": 3, "width": 4}, image_size=8)
    ckpt = load_checkpoint(path)
    assert ckpt.arch == ARCH and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ckpt.model.state_dict().values()))
    res = invoke("score", path, "-d", image_folder, "--batches", "1", "--batch-size", "8")
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output


def test_without_dev_fd_a_safetensors_name_that_is_not_utf8_is_said_to_be_the_cause(tmp_path: Path, monkeypatch) -> None:
    """Where no /dev/fd reopens the file (Windows), such a name is the error, with the fix, not a damaged file."""
    path = tmp_path / os.fsdecode(b"caf\xe9.safetensors")
    save(bn_cnn(num_classes=3, width=4), path, arch=ARCH, arch_kwargs={"num_classes": 3, "width": 4})
    isdir = os.path.isdir
    monkeypatch.setattr(safe_read.os.path, "isdir", lambda p: False if p == "/dev/fd" else isdir(p))
    with pytest.raises(InputError, match="safetensors cannot open a file whose name is not valid UTF-8") as caught:
        load_checkpoint(path)
    assert "truncated or corrupt" not in caught.value.line() and "rename the file" in caught.value.line()
