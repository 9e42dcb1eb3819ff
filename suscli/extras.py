"""Optional dependencies: timm, transformers and lightning are imported only when a checkpoint needs them, and a
missing one is a one-line error naming the pip extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from suscli.errors import InputError


def require(module: str, extra: str, needed_for: str) -> ModuleType:
    """Import `module`, or raise an InputError saying that `needed_for` needs `pip install 'suscli[extra]'`."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise InputError(f"{needed_for} needs {module}, which is not installed ({e})", fix=f"pip install 'suscli[{extra}]'") from None
