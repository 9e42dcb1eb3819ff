"""Architecture specs: turning a name like `torchvision:resnet18` into an untrained nn.Module.

A state dict holds weights but no code, so suscli names the architecture separately from the checkpoint
(as timm does) with one of four spec forms:

- `torchvision:NAME`: `torchvision.models.get_model(NAME, weights=None)`; never downloads anything.
- `timm:NAME`: `timm.create_model(NAME, pretrained=False)` (the `timm` extra); never downloads anything.
- `package.module:factory`: an importable module.
- `path/to/file.py:factory`: a Python file, relative paths resolved against `base_dir`, then the cwd; a file inside
  a package is imported as the module it is there, so its relative imports work.

Every failure is an InputError that names the spec and the fix, because specs come from users and from
checkpoint metadata, never from suscli itself.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import re
import site
import sys
import sysconfig
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from suscli.errors import InputError, UsageError, first_line
from suscli.files import file_version
from suscli.extras import require

_SPEC_FORMS = "torchvision:NAME, timm:NAME, package.module:factory or path/to/file.py:factory"
# create_model arguments that would load or download weights: a spec builds an untrained model, whoever wrote it.
_TIMM_WEIGHT_ARGS = ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path", "cache_dir")
# torchvision's classifiers with auxiliary heads, by the prefixes of the heads' weights
_AUX_HEADS = {"googlenet": ("aux1.", "aux2."), "inception_v3": ("AuxLogits.",)}
# Per --arch package kept in sys.modules (by its unique name): _package_stamp when it was last imported from.
_PACKAGE_STAMPS: dict[str, tuple] = {}
# Per spec (and the file it names): the user's source files its building imported in this process. A module is
# imported once a process, so a second model of the spec imports nothing: it is built from the same files.
_BUILT_FROM: dict[tuple[str, str | None], set[str]] = {}


def build_model(
    spec: str,
    kwargs: dict[str, Any] | None = None,
    *,
    num_classes: int | None = None,
    base_dir: Path | None = None,
    sources: list[Path] | None = None,
) -> nn.Module:
    """Build the untrained model that `spec` names, called with `kwargs` (plus `num_classes` when the factory takes it).
    `sources` gets the user's source files the model was built from (built_from)."""
    kwargs = dict(kwargs or {})
    before = set(sys.modules)
    source, sep, name = spec.rpartition(":")  # rpartition: a Windows path holds a drive colon
    if not sep:
        raise InputError(f"architecture spec {spec!r} has no ':'", fix=_bare_name_fix(spec))
    if not source or not name:
        raise InputError(f"architecture spec {spec!r} names nothing {'after' if source else 'before'} its ':'", fix=f"use {_SPEC_FORMS}")
    if source.lower() in ("timm:hf-hub", "timm:hf_hub"):
        raise _hub_spec(spec, name)
    with _as_library(spec, source), _file_imports(spec, source, base_dir) as path:
        if source == "torchvision":
            factory = _torchvision_builder(spec, name)
        elif source == "timm":
            factory = _timm_builder(spec, name, kwargs)
        elif path is not None:
            factory = _factory(spec, _import_file(spec, path), name)
        else:
            factory = _factory(spec, _import_module(spec, source), name)
        if num_classes is not None and "num_classes" not in kwargs and _accepts(factory, "num_classes"):
            kwargs["num_classes"] = num_classes
        if source == "torchvision":
            kwargs["weights"] = None  # an explicit None: torchvision must never download weights
            if _names_param(factory, "weights_backbone"):  # its detection and segmentation models' ImageNet backbone
                kwargs["weights_backbone"] = None
        elif "pretrained" not in kwargs and _names_param(factory, "pretrained"):
            kwargs["pretrained"] = False  # a repository's `resnet(pretrained=True)`: the checkpoint's weights replace them
        model = _call(spec, factory, kwargs)
        if sources is not None:  # here, before _file_imports forgets the modules the file imported
            sources += built_from((spec, str(path) if path else None), factory, set(sys.modules) - before)
        return model


def built_from(key: tuple[str, str | None], factory: Callable[..., Any], imported: set[str]) -> list[Path]:
    """The user's source files a spec's model was built from (a repository's modules, a local package, an editable
    install; not the Python installation's own): those of the modules its building imported, of the factory's module
    and the user's modules it names, and those recorded for the spec earlier in the process. Keyed by the spec alone,
    a rerun after an edit of a module it imports reused the rows of the old network."""
    found = {_module_file(sys.modules.get(name)) for name in imported} | _named_files(inspect.getmodule(factory))
    files = _BUILT_FROM.setdefault(key, set())
    files |= {file for file in found if file is not None and _users(file)}
    return [Path(file) for file in sorted(files)]


def _module_file(module: object) -> str | None:
    file = getattr(module, "__file__", None)
    return os.path.abspath(file) if isinstance(file, str) and os.path.isfile(file) else None


def _named_files(module: types.ModuleType | None) -> set[str]:
    """The files of `module` and of the user's modules it names (imports, or whose classes and functions it holds),
    and theirs in turn: what built the model where they were imported before it was built."""
    files: set[str] = set()
    todo = [module] if module is not None else []
    seen: set[str] = set()
    while todo:
        current = todo.pop()
        if current.__name__ in seen:
            continue
        seen.add(current.__name__)
        file = _module_file(current)
        if file is None or not _users(file):
            continue
        files.add(file)
        for value in list(vars(current).values()):
            named = value if isinstance(value, types.ModuleType) else sys.modules.get(_module_name(value))
            if isinstance(named, types.ModuleType) and named.__name__ not in seen:
                todo.append(named)
    return files


def _module_name(value: object) -> str:
    try:
        name = getattr(value, "__module__", None)
    except Exception:  # a lazy or proxy object of the user's, whose attribute lookup runs code
        return ""
    return name if isinstance(name, str) else ""


def source_record(files: list[Path]) -> list[dict[str, str]]:
    """What a result keeps of the source files its model was built from (built_from): each one's sha256, its path from
    the working directory where it lies under it (a copy of the checkout at another path, run from its root, finds it
    there) and its absolute path (a rerun from another folder)."""
    cwd = Path.cwd()
    record = []
    for file in files:
        digest = _sha256(file)
        if digest is None:
            continue
        shown = file.relative_to(cwd).as_posix() if file.is_relative_to(cwd) else file.as_posix()
        record.append({"file": shown, "absolute": file.as_posix(), "sha256": digest})
    return record


def changed_sources(record: object) -> list[str]:
    """The files of a result's source_record that no longer hold the bytes its model was built from (edited, or gone):
    a result with one is measured again. [] for a result stored without a record, which is reused as before."""
    if not isinstance(record, list):
        return []
    changed = []
    for source in record:
        if not isinstance(source, dict):
            continue
        here = Path(str(source.get("file")))
        file = here if here.is_file() else Path(str(source.get("absolute")))
        if _sha256(file) != source.get("sha256"):
            changed.append(str(source.get("file")))
    return changed


def _sha256(file: Path) -> str | None:
    try:
        return hashlib.sha256(file.read_bytes()).hexdigest()
    except (OSError, ValueError):
        return None


@functools.cache
def _installed() -> tuple[str, ...]:
    """The folders of the Python installation's own modules (the standard library, site-packages) and suscli's."""
    paths = sysconfig.get_paths()
    folders = [paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")] + site.getsitepackages()
    folders += [site.getusersitepackages(), str(Path(__file__).resolve().parents[1])]
    return tuple(os.path.join(os.path.realpath(f), "") for f in folders if f)


@functools.cache
def _users(file: str) -> bool:
    return not os.path.realpath(file).startswith(_installed())


@contextlib.contextmanager
def _as_library(spec: str, source: str) -> Iterator[None]:
    """Run a repository's model code as a library, though it may be written as a script: what it prints goes to
    stderr, not into the report on stdout; its top-level argparse sees no suscli options; and its sys.exit is an
    error naming the spec (it ended suscli with the script's status: 0 passed a CI gate with nothing measured)."""
    argv = sys.argv
    sys.argv = [source]
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except SystemExit as e:
        raise InputError(
            f"architecture {spec!r}: its code called sys.exit({e.code!r}) while suscli imported or built it, as a "
            "script does (a top-level argparse, training or exit)",
            fix='put the script\'s top-level code under `if __name__ == "__main__":`, or point --arch at the module that defines the model',
        ) from e
    finally:
        sys.argv = argv


def _call(spec: str, factory: Callable[..., Any], kwargs: dict[str, Any]) -> nn.Module:
    """The factory's model, built with the caller's random state left as it was."""
    try:
        with torch.random.fork_rng(devices=[]):  # the random initialization the weights replace: the caller's RNG stays put
            model = factory(**kwargs)
    except Exception as e:  # user code: any failure is the spec's or the kwargs' fault
        raise InputError(
            f"architecture {spec!r} failed to build with {_show_kwargs(kwargs)}: {type(e).__name__}: {first_line(e, 200)}",
            fix="check the arch kwargs against the factory's parameters",
        ) from e
    if not isinstance(model, nn.Module):
        raise InputError(
            f"architecture {spec!r} returned {type(model).__name__}, not a torch.nn.Module",
            fix="point the spec at a function or class that returns the model",
        )
    return model


def infer_num_classes(state_dict: Mapping[str, torch.Tensor]) -> int | None:
    """Out-features of the classifier: the last 2-D floating `weight` whose `bias`, if any, has as many rows.

    Classifiers come last in key order for torchvision, timm and suscli models; BatchNorm and LayerNorm
    weights are 1-D, so they never qualify.
    """
    found = None
    for key, value in state_dict.items():
        if not (key == "weight" or key.endswith(".weight")):
            continue
        if not (isinstance(value, torch.Tensor) and value.ndim == 2 and value.is_floating_point()):
            continue
        bias = state_dict.get(key[: -len("weight")] + "bias")
        if bias is None or (isinstance(bias, torch.Tensor) and bias.ndim >= 1 and bias.shape[0] == value.shape[0]):
            found = int(value.shape[0])
    return found


# A comma splits pairs only when a `key=` follows, so JSON lists inside values ("sizes=[1,2]") stay whole.
_PAIR_SPLIT = re.compile(r",(?=\s*[A-Za-z_]\w*\s*=)")
_KWARGS_EXAMPLE = "e.g. '{\"width\": 32}' or width=32,dropout=0.1"


def parse_arch_kwargs(text: str | None) -> dict[str, Any]:
    """Parse `--arch-kwargs`: a JSON object, or `key=value,key=value` with each value read as JSON when it is JSON."""
    if text is None or not text.strip():
        return {}
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"--arch-kwargs is not valid JSON: {e}", fix=_KWARGS_EXAMPLE) from e
        if not isinstance(value, dict):
            raise UsageError("--arch-kwargs must be a JSON object", fix=_KWARGS_EXAMPLE)
        return value
    out: dict[str, Any] = {}
    for pair in _PAIR_SPLIT.split(text):
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"--arch-kwargs: {pair.strip()!r} is not key=value", fix=_KWARGS_EXAMPLE)
        if key in out:
            raise UsageError(f"--arch-kwargs gives {key!r} twice", fix="give each key once")
        out[key] = _json_or_str(raw.strip())
    return out


def _json_or_str(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _hub_spec(spec: str, name: str) -> InputError:
    """The error for timm's name of a Hugging Face Hub model (`timm:hf-hub:timm/resnet18.a1_in1k`), which said "no
    module named 'timm:hf-hub'" with "install the package that provides it": building it downloads its config."""
    org, _, model = name.partition("/")
    fix = f"use timm:{model}" if org == "timm" and model else "use timm:NAME, the architecture its config.json names"
    return InputError(
        f"architecture {spec!r} names a model on the Hugging Face Hub, which suscli does not download: a spec builds an "
        "untrained model from its name, which the checkpoint's weights fill",
        fix=f"{fix}, or pass the model's downloaded folder as the checkpoint",
    )


def auxiliary_heads(spec: str, keys: Iterable[str]) -> dict[str, Any]:
    """`aux_logits` for torchvision's GoogLeNet or Inception v3 as the checkpoint's weights (`keys`) have the auxiliary
    heads or not, {} for any other spec. Built with them, weights fine-tuned from torchvision's pretrained GoogLeNet,
    which drops them, were refused for 18 missing keys (aux1.conv.conv.weight, ...) with a fix naming no aux_logits.
    With `init_weights=False`: the weights replace torchvision's initialization, whose default for these two printed
    a FutureWarning on stderr beside suscli's lines."""
    source, _, name = spec.rpartition(":")
    prefixes = _AUX_HEADS.get(name.lower()) if source == "torchvision" else None
    if prefixes is None:
        return {}
    return {"aux_logits": any(f".{p}" in f".{k}" for k in keys for p in prefixes), "init_weights": False}


def _torchvision_builder(spec: str, name: str) -> Callable[..., Any]:
    import torchvision.models

    names = torchvision.models.list_models()
    if name.lower() not in names:
        close = difflib.get_close_matches(name.lower(), names, n=3)
        fix = "see torchvision.models.list_models()"
        if close:
            fix = f"did you mean {', '.join('torchvision:' + c for c in close)}?"
        raise InputError(f"architecture {spec!r}: torchvision has no model {name!r}", fix=fix)
    return torchvision.models.get_model_builder(name)


def _timm_builder(spec: str, name: str, kwargs: dict[str, Any]) -> Callable[..., Any]:
    timm = require("timm", "timm", f"architecture {spec!r}")
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        fix = f"did you mean {', '.join('timm:' + c for c in close)}?" if close else "see timm.list_models()"
        raise InputError(f"architecture {spec!r}: timm has no model {name!r}", fix=fix)
    loading = [k for k in _TIMM_WEIGHT_ARGS if k in kwargs]
    if loading:
        raise InputError(
            f"architecture {spec!r}: {', '.join(loading)} would load or download weights; a spec builds an "
            "untrained model and suscli fills it from the checkpoint",
            fix="drop those arch kwargs",
        )
    return functools.partial(timm.create_model, name, pretrained=False)


def _import_module(spec: str, module_name: str) -> object:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is None or not (module_name == e.name or module_name.startswith(e.name + ".")):
            raise _import_failed(spec, e) from e  # the module exists but one of its own imports is missing
        raise InputError(
            f"architecture {spec!r}: no module named {module_name!r}",
            fix="install the package that provides it, or use path/to/file.py:factory",
        ) from e
    except Exception as e:  # the module's own top-level code failed
        raise _import_failed(spec, e) from e


def spec_identity(spec: str | None) -> str | None:
    """What decides the model a spec builds, for keying results: a `file.py:factory` spec is its file's bytes and the
    factory's name, not the path as typed (a rerun from another folder is the same spec; an edited file is not)."""
    if spec is None:
        return None
    source, _, name = spec.rpartition(":")
    path = Path(source)
    if not source.endswith(".py") or not path.is_file():
        return spec
    return f"file sha256:{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}:{name}"


def spec_file(spec: str | None, base_dir: Path | None = None) -> Path | None:
    """The .py file a `file.py:factory` spec builds its model from, found as build_model finds it (`base_dir`, then the
    cwd); None for another spec, or a file that is not there (building it says so)."""
    source, sep, _ = (spec or "").rpartition(":")
    if not sep or not source.endswith(".py"):
        return None
    try:
        return _file_path(spec or "", source, base_dir)
    except InputError:
        return None


@contextlib.contextmanager
def _file_imports(spec: str, source: str, base_dir: Path | None) -> Iterator[Path | None]:
    """For a `file.py` spec, the file, with its repository's modules importable (like `python file.py` in its
    repository) until its model is built, then forgotten: a factory that imports its layers in its body failed with
    "No module named 'layers'", blamed on the arch kwargs. None for other specs."""
    if not source.endswith(".py"):
        yield None
        return
    path = _file_path(spec, source, base_dir)
    dirs = _import_dirs(path, _package_root(path))
    added = [folder for folder in dirs if folder not in sys.path]
    before = set(sys.modules)
    sys.path[:0] = added
    try:
        yield path
    finally:
        for folder in added:
            sys.path.remove(folder)
        _forget_imported(set(sys.modules) - before, [Path(folder) for folder in dirs])


def _file_path(spec: str, file: str, base_dir: Path | None) -> Path:
    """The .py file a spec names, relative paths resolved against `base_dir`, then the cwd."""
    candidates = [Path(file)] if Path(file).is_absolute() else [*([base_dir / file] if base_dir else []), Path.cwd() / file]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        tried = " or ".join(str(p) for p in candidates)
        raise InputError(
            f"architecture {spec!r}: file not found (tried {tried})",
            fix="give the path to the .py file that defines the factory",
        )
    return path.resolve()


def _import_file(spec: str, path: Path) -> object:
    """The module of a .py file, run while _file_imports makes its repository's modules importable."""
    root = _package_root(path)
    try:
        return _exec_file(spec, path) if root is None else _exec_in_package(path, root)
    except InputError:
        raise
    except Exception as e:  # the file's own code failed (syntax error, missing import, ...)
        raise _import_failed(spec, e) from e


def _exec_file(spec: str, path: Path) -> object:
    """Run a file that is in no package as a module of its own."""
    module_name = _unique_name(path)
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise InputError(f"architecture {spec!r}: {path} cannot be imported", fix="give the path to a .py file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module  # registered so dataclasses and pickling inside it work
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _exec_in_package(path: Path, root: Path) -> object:
    """Import a file as the module it is inside its package, so `from .layers import Block` finds its sibling; the
    package goes under a name of its own, so two repositories' `models` packages never meet."""
    package = _unique_name(root)
    if package in sys.modules and _PACKAGE_STAMPS.get(package) != _package_stamp(package):
        _forget_package(package)
    if package not in sys.modules:
        _exec_package(package, root)
    try:
        return importlib.import_module(".".join([package, *path.relative_to(root).with_suffix("").parts]))
    finally:
        _PACKAGE_STAMPS[package] = _package_stamp(package)


def _package_stamp(package: str) -> tuple:
    """The version (suscli.files.file_version) of every file the package's imported modules came from: a file edited
    since (a notebook that fixes the model code between two calls) changes it, where the modules kept in sys.modules
    built the old network again, under the new file's hash in the results file."""
    files = sorted(
        str(module.__file__)
        for name, module in list(sys.modules.items())
        if (name == package or name.startswith(package + ".")) and getattr(module, "__file__", None)
    )
    return tuple((file, file_version(file)) for file in files)


def _forget_package(package: str) -> None:
    """Drop the package and its submodules, so that the next import runs the files as they are now."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def _exec_package(name: str, root: Path) -> None:
    """Import the package folder `root` as `name`, running its `__init__.py` as Python would."""
    package_spec = importlib.util.spec_from_file_location(name, root / "__init__.py", submodule_search_locations=[str(root)])
    assert package_spec is not None and package_spec.loader is not None  # a .py file always has a spec
    package = importlib.util.module_from_spec(package_spec)
    sys.modules[name] = package
    try:
        package_spec.loader.exec_module(package)
    except BaseException:
        sys.modules.pop(name, None)
        raise


def _unique_name(path: Path) -> str:
    """A module name of its own for each file or package folder, so two repositories' `models` never meet."""
    return f"suscli_arch_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"


def _package_root(path: Path) -> Path | None:
    """The outermost folder of the packages (folders with an `__init__.py`) that hold `path`; None outside one."""
    root = None
    folder = path.parent
    while (folder / "__init__.py").is_file():
        root, folder = folder, folder.parent
    return root


def _import_dirs(path: Path, root: Path | None) -> list[str]:
    """Where a repository's own imports resolve: the file's folder (`from layers import Block`, as `python file.py`
    sees it), the folder that holds its package and the working directory (`from models.layers import Block`, as
    the repository's training script sees it from the repository's root)."""
    dirs = [path.parent, *([root.parent] if root is not None else []), Path.cwd()]
    return list(dict.fromkeys(str(d) for d in dirs))


def _forget_imported(names: set[str], folders: list[Path]) -> None:
    """Drop the modules a file imported through its import folders, so that the next file's `from layers import
    Block` finds its own repository's layers: a pool of two checkouts built the second with the first one's. Those
    folders include one already on sys.path (`python -m suscli` puts the working directory there), whose modules were
    kept; a submodule of a package imported before (`names` lacks its top) stays with its package."""
    for name in names:
        file = getattr(sys.modules.get(name), "__file__", None)
        top = name.partition(".")[0]
        if top not in names:
            continue
        if file and any(Path(file) == folder / f"{top}.py" or Path(file).is_relative_to(folder / top) for folder in folders):
            del sys.modules[name]


def _factory(spec: str, module: object, name: str) -> Callable[..., Any]:
    factory = getattr(module, name, None)
    if not callable(factory):
        public = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        close = difflib.get_close_matches(name, public, n=3)
        fix = f"did you mean {', '.join(close)}?" if close else "name a function or class defined in that module"
        where = getattr(module, "__file__", None) or getattr(module, "__name__", "the module")
        raise InputError(f"architecture {spec!r}: {name!r} is not a callable in {where}", fix=fix)
    return factory


def _accepts(factory: Callable[..., Any], param: str) -> bool:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # builtins and some C extensions have no signature
        return False
    return any(p.name == param or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _names_param(factory: Callable[..., Any], param: str) -> bool:
    """Whether the factory has a parameter of that name itself (not one its **kwargs would pass on)."""
    try:
        return param in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins and some C extensions have no signature
        return False


def _bare_name_fix(spec: str) -> str:
    """The registries that define a bare model name, as the specs to choose from."""
    import torchvision.models

    try:
        import timm
    except ImportError:
        timm = None
    found = [f"torchvision:{spec}"] if spec.lower() in torchvision.models.list_models() else []
    found += [f"timm:{spec}"] if timm is not None and timm.is_model(spec) else []
    return f"did you mean {' or '.join(found)}?" if found else f"use {_SPEC_FORMS}"


def _import_failed(spec: str, e: BaseException) -> InputError:
    return InputError(
        f"architecture {spec!r}: importing it failed: {type(e).__name__}: {first_line(e, 200)}",
        fix="fix the module or install what it imports",
    )


def _show_kwargs(kwargs: dict[str, Any]) -> str:
    shown = {k: v for k, v in kwargs.items() if k != "weights"}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items()) if shown else "no kwargs"
