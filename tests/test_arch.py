"""Architecture specs: building, num_classes inference and --arch-kwargs parsing."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from suscli.load.arch import build_model, infer_num_classes, parse_arch_kwargs
from suscli.errors import InputError, UsageError
from suscli.models import bn_cnn


def _write(path, text):
    path.write_text(text)
    return path


def _forbid_downloads(monkeypatch):
    """Fail the test if torchvision reaches for pretrained weights (it would download them)."""
    import torchvision.models._api

    def no_download(*args, **kwargs):
        raise AssertionError("torchvision tried to download weights")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)


def test_torchvision_spec_takes_num_classes_and_never_downloads(monkeypatch):
    _forbid_downloads(monkeypatch)
    model = build_model("torchvision:resnet18", num_classes=7)
    assert model.fc.out_features == 7


def test_a_torchvision_model_with_a_backbone_downloads_no_backbone_weights(monkeypatch):
    """torchvision's segmentation and detection builders default to ImageNet weights for their backbone: with
    weights=None alone, `--arch torchvision:lraspp_mobilenet_v3_large` downloaded them, or failed offline as "failed
    to build with num_classes=3: URLError" with "check the arch kwargs"."""
    _forbid_downloads(monkeypatch)
    model = build_model("torchvision:lraspp_mobilenet_v3_large", num_classes=3)
    assert model.classifier.low_classifier.out_channels == 3


def test_timms_name_of_a_hub_model_is_refused_naming_the_architecture():
    """timm's spelling of a Hub model, `timm:hf-hub:timm/resnet18.a1_in1k`, said "no module named 'timm:hf-hub'" with
    "install the package that provides it"; building it would download its config."""
    with pytest.raises(InputError, match=r"names a model on the Hugging Face Hub, which suscli does not download") as e:
        build_model("timm:hf-hub:timm/resnet18.a1_in1k")
    assert e.value.fix.startswith("use timm:resnet18.a1_in1k,")
    with pytest.raises(InputError, match="Hugging Face Hub") as e:
        build_model("timm:hf_hub:someone/net")
    assert e.value.fix.startswith("use timm:NAME, the architecture its config.json names")


def test_unknown_torchvision_name_suggests_close_ones():
    with pytest.raises(InputError, match="did you mean torchvision:resnet18"):
        build_model("torchvision:resnet181")


def test_spec_without_colon_suggests_torchvision_prefix():
    with pytest.raises(InputError, match="did you mean torchvision:resnet18"):
        build_model("resnet18")


def test_spec_without_colon_suggests_each_registry_that_has_the_name():
    """A bare timm name got the generic list of spec forms; one both define names both to choose from."""
    pytest.importorskip("timm")
    with pytest.raises(InputError, match=r"did you mean timm:resnet10t\?"):
        build_model("resnet10t")
    with pytest.raises(InputError, match=r"did you mean torchvision:resnet18 or timm:resnet18\?"):
        build_model("resnet18")


@pytest.mark.parametrize(("spec", "said"), [("torchvision:", "nothing after its ':'"), (":resnet18", "nothing before its ':'")])
def test_spec_with_an_empty_side_is_not_said_to_lack_its_colon(spec, said):
    with pytest.raises(InputError, match=said) as info:
        build_model(spec)
    assert "has no ':'" not in str(info.value)


def test_module_spec_with_kwargs_and_num_classes():
    model = build_model("suscli.models:bn_cnn", {"width": 4}, num_classes=5)
    assert model[-1].out_features == 5 and model[0].out_channels == 4


def test_kwargs_num_classes_wins_over_argument():
    assert build_model("suscli.models:mlp", {"num_classes": 2, "width": 4}, num_classes=9)[-1].out_features == 2


def test_num_classes_not_passed_to_factory_without_it(tmp_path):
    _write(tmp_path / "fixed.py", "from torch import nn\ndef net():\n    return nn.Linear(2, 4)\n")
    assert build_model("fixed.py:net", num_classes=10, base_dir=tmp_path).out_features == 4


def test_file_spec_tries_base_dir_then_cwd(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder, width in (("a", 2), ("b", 3)):
        source = f"from torch import nn\ndef net(num_classes=1):\n    return nn.Linear({width}, 1)\n"
        _write(tmp_path / folder / "net.py", source)
    monkeypatch.chdir(tmp_path / "b")
    assert build_model("net.py:net", base_dir=tmp_path / "a").in_features == 2
    assert build_model("net.py:net", base_dir=tmp_path).in_features == 3  # not in base_dir: falls back to the cwd


def test_file_spec_can_import_its_siblings(tmp_path):
    _write(tmp_path / "layers.py", "from torch import nn\ndef head(n):\n    return nn.Linear(2, n)\n")
    _write(tmp_path / "net.py", "from layers import head\ndef net(num_classes=1):\n    return head(num_classes)\n")
    assert build_model(f"{tmp_path / 'net.py'}:net", num_classes=3).out_features == 3


def _repo(root):
    """A training repository's layout: a `models` package whose files import each other three ways."""
    (root / "models").mkdir(parents=True)
    _write(root / "models" / "__init__.py", "from .net import net\n")
    _write(root / "models" / "layers.py", "from torch import nn\ndef head(n):\n    return nn.Linear(2, n)\n")
    _write(root / "models" / "net.py", "from .layers import head\ndef net(num_classes=1):\n    return head(num_classes)\n")
    _write(root / "models" / "absolute.py", "from models.layers import head\ndef net(num_classes=1):\n    return head(num_classes)\n")


@pytest.mark.parametrize("file", ["net.py", "absolute.py"])
def test_a_file_inside_its_repositorys_package_imports_its_siblings_from_anywhere(tmp_path, monkeypatch, file):
    _repo(tmp_path / "repo")
    monkeypatch.chdir(tmp_path)  # not the repository's root: `suscli` run from elsewhere, with a path to the file
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert build_model(f"repo/models/{file}:net", num_classes=3).out_features == 3


def test_two_repositories_with_a_models_package_of_their_own_each_build_their_own(tmp_path):
    for name, width in (("a", 2), ("b", 5)):
        _repo(tmp_path / name)
        _write(tmp_path / name / "models" / "layers.py", f"from torch import nn\ndef head(n):\n    return nn.Linear({width}, n)\n")
    assert build_model(f"{tmp_path / 'a/models/net.py'}:net").in_features == 2
    assert build_model(f"{tmp_path / 'b/models/net.py'}:net").in_features == 5


def test_a_package_file_edited_between_two_builds_in_one_process_builds_the_edited_network(tmp_path):
    """A notebook that fixes its model code between two calls: the package kept in sys.modules built the old
    network again, which the results file then kept under the edited file's hash."""
    _repo(tmp_path / "repo")
    spec = f"{tmp_path / 'repo/models/net.py'}:net"
    assert build_model(spec).in_features == 2
    _write(tmp_path / "repo" / "models" / "layers.py", "from torch import nn\ndef head(n):\n    return nn.Linear(17, n)\n")
    assert build_model(spec).in_features == 17


def test_an_unchanged_package_builds_its_models_from_the_same_classes(tmp_path):
    """Not imported again per model: models of one class are measured together (suscli.measure.batched)."""
    (tmp_path / "repo" / "models").mkdir(parents=True)
    _write(tmp_path / "repo" / "models" / "__init__.py", "")
    _write(
        tmp_path / "repo" / "models" / "net.py",
        "from torch import nn\nclass Net(nn.Linear):\n    pass\ndef net(num_classes=1):\n    return Net(2, num_classes)\n",
    )
    spec = f"{tmp_path / 'repo/models/net.py'}:net"
    assert type(build_model(spec)) is type(build_model(spec))


@pytest.mark.parametrize("imported", ["from layers import head", "from parts.layers import head"])
def test_two_checkouts_with_a_sibling_module_of_the_same_name_each_build_with_their_own(tmp_path, imported):
    for name, width in (("a", 2), ("b", 5)):
        (tmp_path / name / "parts").mkdir(parents=True)
        _write(tmp_path / name / "parts" / "__init__.py", "")
        for folder in (tmp_path / name, tmp_path / name / "parts"):
            _write(folder / "layers.py", f"from torch import nn\ndef head(n):\n    return nn.Linear({width}, n)\n")
        _write(tmp_path / name / "net.py", f"{imported}\ndef net(num_classes=1):\n    return head(num_classes)\n")
    assert build_model(f"{tmp_path / 'a/net.py'}:net").in_features == 2
    assert build_model(f"{tmp_path / 'b/net.py'}:net").in_features == 5  # was 2: the first checkout's layers


def test_two_checkouts_build_their_own_where_the_first_is_the_working_directory_on_sys_path(tmp_path, monkeypatch):
    """`python -m suscli` run inside one checkout puts it on sys.path: its modules were not forgotten, and the other
    checkout's model was built with its layers, silently."""
    for name, width in (("a", 2), ("b", 5)):
        (tmp_path / name).mkdir()
        _write(tmp_path / name / "layers.py", f"from torch import nn\ndef head(n):\n    return nn.Linear({width}, n)\n")
        _write(tmp_path / name / "net.py", "from layers import head\ndef net(num_classes=1):\n    return head(num_classes)\n")
    monkeypatch.chdir(tmp_path / "a")
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    assert build_model(f"{tmp_path / 'a/net.py'}:net").in_features == 2
    assert build_model(f"{tmp_path / 'b/net.py'}:net").in_features == 5  # was 2: the working directory's layers


def test_a_factory_that_imports_its_layers_in_its_body_builds(tmp_path):
    """The file's folder left sys.path once the file had run, before its factory was called: a factory importing
    its layers in its body failed with "No module named 'layers'", blamed on the arch kwargs."""
    _write(tmp_path / "layers.py", "from torch import nn\ndef head(n):\n    return nn.Linear(2, n)\n")
    _write(tmp_path / "net.py", "def net(num_classes=1):\n    from layers import head\n    return head(num_classes)\n")
    assert build_model(f"{tmp_path / 'net.py'}:net", num_classes=3).out_features == 3
    assert "layers" not in sys.modules  # forgotten once built, as after the file's own imports


_SCRIPT_TAIL = "from torch import nn\ndef net(num_classes=1):\n    print('building')\n    return nn.Linear(2, num_classes)\n"


@pytest.mark.parametrize(
    ("top", "code"),
    [
        ("import argparse\np = argparse.ArgumentParser()\np.add_argument('--lr', default=0.1)\np.parse_args()\n", None),
        ("import argparse\np = argparse.ArgumentParser()\np.add_argument('--lr', required=True)\np.parse_args()\n", 2),
        ("import sys\nsys.exit(0)\n", 0),
    ],
)
def test_a_model_file_written_as_a_script_never_ends_suscli_nor_prints_into_its_report(tmp_path, monkeypatch, capsys, top, code):
    _write(tmp_path / "train.py", "print('training starts')\n" + top + _SCRIPT_TAIL)
    argv = ["suscli", "score", "m.pt", "--arch", "train.py:net", "-f", "json"]
    monkeypatch.setattr(sys, "argv", argv)
    if code is None:
        assert build_model(f"{tmp_path / 'train.py'}:net", num_classes=3).out_features == 3
    else:  # a script's exit was suscli's, with the script's status: sys.exit(0) passed a CI gate with nothing measured
        with pytest.raises(InputError, match=rf"called sys.exit\({code}\) .*if __name__ == "):
            build_model(f"{tmp_path / 'train.py'}:net")
    out, err = capsys.readouterr()
    assert out == "" and "training starts" in err  # the report on stdout stays the report
    assert sys.argv == argv


@pytest.mark.parametrize(
    ("spec", "source", "match"),
    [
        ("no_such_pkg_xyz.models:net", None, "no module named 'no_such_pkg_xyz.models'"),
        ("suscli.models:bn_cnm", None, "did you mean bn_cnn"),
        ("missing.py:net", None, "file not found"),
        ("broken.py:net", "def net(:\n", "importing it failed: SyntaxError"),
        ("needs.py:net", "import no_such_dep_xyz\n", "importing it failed: ModuleNotFoundError"),
        ("raises.py:net", "def net():\n    raise ValueError('bad width')\n", "failed to build .*ValueError: bad width"),
        ("notmodule.py:net", "def net():\n    return 3\n", "returned int, not a torch.nn.Module"),
    ],
)
def test_bad_specs_are_input_errors_naming_the_spec(tmp_path, spec, source, match):
    if source is not None:
        _write(tmp_path / spec.split(":")[0], source)
    with pytest.raises(InputError, match=match) as info:
        build_model(spec, base_dir=tmp_path)
    assert spec in str(info.value) and "\n" not in str(info.value)


def test_unknown_kwarg_is_input_error():
    with pytest.raises(InputError, match="failed to build with depth=3"):
        build_model("suscli.models:bn_cnn", {"depth": 3})


def test_infer_num_classes_reads_the_classifier():
    assert infer_num_classes(bn_cnn(num_classes=7, width=2).state_dict()) == 7


def test_infer_num_classes_skips_weights_whose_bias_disagrees_and_non_float():
    state = {
        "fc.weight": torch.zeros(5, 4),
        "fc.bias": torch.zeros(5),
        "odd.weight": torch.zeros(6, 5),
        "odd.bias": torch.zeros(2),
        "codes.weight": torch.zeros(9, 5, dtype=torch.int64),
    }
    assert infer_num_classes(state) == 5
    assert infer_num_classes({"weight": torch.zeros(4, 2)}) == 4
    assert infer_num_classes(nn.BatchNorm1d(3).state_dict()) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, {}),
        ("  ", {}),
        ('{"width": 32, "act": "relu"}', {"width": 32, "act": "relu"}),
        ("width=32,dropout=0.1", {"width": 32, "dropout": 0.1}),
        ("act=relu, flag=true, sizes=[1,2,3], none=null", {"act": "relu", "flag": True, "sizes": [1, 2, 3], "none": None}),
    ],
)
def test_parse_arch_kwargs(text, expected):
    assert parse_arch_kwargs(text) == expected


@pytest.mark.parametrize("text", ["[1, 2]", "{width: 3}", "width", "=3", "a=1,a=2", "2x=1"])
def test_parse_arch_kwargs_rejects_bad_text(text):
    with pytest.raises(UsageError):
        parse_arch_kwargs(text)


def test_a_factory_that_downloads_weights_by_default_builds_untrained(tmp_path, monkeypatch):
    _forbid_downloads(monkeypatch)  # no network in CI: the download failed as "failed to build ... URLError"
    source = (
        "import torch\nfrom torch import nn\n"
        "def net(num_classes=1, pretrained=True):\n"
        "    model = nn.Linear(2, num_classes)\n"
        "    if pretrained:\n"
        "        model.load_state_dict(torch.hub.load_state_dict_from_url('https://example.com/net.pth'))\n"
        "    return model\n"
    )
    _write(tmp_path / "net.py", source)
    assert build_model(f"{tmp_path / 'net.py'}:net", num_classes=3).out_features == 3
    with pytest.raises(InputError, match="failed to build with pretrained=True"):  # asked for: the user's word
        build_model(f"{tmp_path / 'net.py'}:net", {"pretrained": True})


@pytest.mark.parametrize("spec", ["torchvision:resnet18", "timm:resnet18", "torch.nn:Identity"])
def test_installed_architectures_record_no_sources(spec):
    """torchvision's, timm's and any site-packages' code is the installation's, not the user's: a result built from it
    records no source files to check on a rerun (suscli.run.audit.cached_row)."""
    pytest.importorskip(spec.partition(":")[0].partition(".")[0])
    sources: list = []
    build_model(spec, {} if spec.startswith("torch.nn") else {"num_classes": 3}, sources=sources)
    assert sources == []


def test_every_build_of_a_spec_records_the_modules_its_first_build_imported(tmp_path):
    """A module is imported once a process: a factory that imports its layers in its body imports nothing when it
    builds the second model of a pool, which is built from the same layers all the same."""
    (tmp_path / "layers.py").write_text("import torch\nBlock = torch.nn.Identity\n")
    (tmp_path / "nets.py").write_text("def net():\n    from . import layers\n\n    return layers.Block()\n")
    (tmp_path / "__init__.py").write_text("")  # a package: its modules stay imported between two builds
    spec = f"{tmp_path / 'nets.py'}:net"
    first: list = []
    second: list = []
    build_model(spec, sources=first)
    build_model(spec, sources=second)
    assert first == second and {p.name for p in first} == {"layers.py", "nets.py", "__init__.py"}, first
