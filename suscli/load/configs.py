"""OmegaConf containers in a checkpoint, read as plain data: the `hyper_parameters` of every Hydra-configured Lightning
run are a pickled `DictConfig`.

omegaconf is never imported and none of its code runs: the weights-only unpickler is allowed omegaconf's container
and node classes by name only, each as an inert stand-in here that keeps the attributes the pickle sets, and
`plain` turns them into dicts, lists and values. Interpolations (`${model.width}`, `${oc.env:HOME}`) stay the text
they were saved as: resolving one may read the environment or run a registered resolver. A structured config's
dataclass, an enum value or any other global is still refused by torch.load like every pickled object.
"""

from __future__ import annotations

import typing
from typing import Any


class _State:
    """An omegaconf object as its pickle left it: attributes only (no __setstate__, so the unpickler updates
    __dict__), no behaviour."""


class _Container(_State):
    pass


class _Node(_State):
    pass


def _defaultdict(*_: object) -> dict:
    """collections.defaultdict as a plain dict (OmegaConf's resolver cache is one): its items follow in the pickle."""
    return {}


_CONTAINERS = ("omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig")
_NODES = tuple(
    f"omegaconf.nodes.{n}"
    for n in ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "BytesNode", "PathNode", "InterpolationResultNode")
)
_METADATA = ("omegaconf.base.Metadata", "omegaconf.base.ContainerMetadata")
_MAX_DEPTH = 64  # a hostile pickle may nest containers without end, or in a cycle

# For torch.serialization.safe_globals: (stand-in, the global's name as the pickle spells it).
SAFE_GLOBALS: list[tuple[Any, str]] = [
    *[(type(n.rsplit(".", 1)[1], (_Container,), {}), n) for n in _CONTAINERS],
    *[(type(n.rsplit(".", 1)[1], (_Node,), {}), n) for n in _NODES],
    *[(type(n.rsplit(".", 1)[1], (_State,), {}), n) for n in _METADATA],
    (_defaultdict, "collections.defaultdict"),
    (typing.Any, "typing.Any"),  # a node's ref_type and key_type
    # The types a container or node records as its object, key and element types: built-in types, harmless to call.
    *[(t, f"builtins.{t.__name__}") for t in (dict, list, int, float, str, bool, bytes)],
]


def plain(value: object) -> object:
    """`value` with every OmegaConf stand-in turned into what it holds: a DictConfig into a dict, a ListConfig into a
    list, a node into its value; a container set to None or '???' (missing) into None or '???', an interpolation into
    its text. Anything else is returned as it is. Each object is converted once (a pickle may share one many times),
    and a container inside itself, or nested deeper than any config, is None there."""
    done: dict[int, object] = {}

    def convert(v: object, depth: int) -> object:
        if depth > _MAX_DEPTH:
            return None
        if isinstance(v, (_State, dict, list)):
            if id(v) in done:
                return done[id(v)]
            done[id(v)] = None  # while it is converted: a cycle back to it reads None
            done[id(v)] = out = _one(v, lambda w: convert(w, depth + 1))
            return out
        return v

    return convert(value, 0)


def _one(value: object, convert: typing.Callable[[object], object]) -> object:
    if isinstance(value, _Node):
        return convert(vars(value).get("_val"))
    if isinstance(value, _Container):
        content = vars(value).get("_content")
        if isinstance(content, dict):
            return {k: convert(v) for k, v in content.items()}
        if isinstance(content, list):
            return [convert(v) for v in content]
        return content if isinstance(content, (str, type(None))) else None
    if isinstance(value, dict):
        return {k: convert(v) for k, v in value.items()}
    if isinstance(value, list):
        return [convert(v) for v in value]
    return None  # metadata: nothing of the config's
