"""One ``--option`` per field of a dataclass (``TrainConfig``), typed and defaulted from the class.

The help text of each option is the field's ``metadata["help"]``; the dataclass validates the values
(names included), so a bad value comes back as its ``ValueError``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

__all__ = ["add_config_options", "field_default", "parse_bool"]

#: Fields that name a registered component (shown as ``NAME`` in ``--help``).
_NAMED = ("dataset", "model", "neuron", "surrogate", "encoding", "decoding", "device", "method")


def field_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; anything else -> ``(tp, False)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _or_none(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap an argument parser so that ``none`` gives None (for ``X | None`` fields)."""

    def parse_or_none(text: str) -> Any:
        return None if text.lower() == "none" else parse(text)

    parse_or_none.__name__ = getattr(parse, "__name__", "value")
    return parse_or_none


def parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _parse_json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"tau_mem\": 10}}': {e}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _show_default(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return "none" if value is None else str(value)


def _value_kwargs(name: str, tp: Any) -> dict[str, Any]:
    """``type``/``nargs``/``metavar`` of the option of a field annotated ``tp``."""
    origin = typing.get_origin(tp) or tp
    if origin in (tuple, list):
        elem = (typing.get_args(tp) or (int,))[0]
        return {"nargs": "+", "type": elem if elem in (int, float, str) else int, "metavar": "N"}
    if tp is bool:
        return {"type": parse_bool, "metavar": "BOOL"}
    if origin is dict:
        return {"type": _parse_json_object, "metavar": "JSON"}
    if tp in (int, float, str):
        return {"type": tp, "metavar": "NAME" if name in _NAMED else tp.__name__.upper()}
    return {"type": str, "metavar": "VALUE"}


def add_config_options(
    parser: argparse.ArgumentParser,
    config_cls: type,
    *,
    skip: Collection[str] = (),
    names: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Add ``--field-name`` for every init field of the dataclass ``config_cls`` not in ``skip``; the help of a
    field in ``names`` (field -> its valid values, e.g. :func:`spikeforge.training.choices.valid_names`) lists them.

    Options default to ``argparse.SUPPRESS``: only those given on the command line appear in the
    namespace, so a caller can start from another source (``train --resume`` reads the run's config.json).
    """
    hints = typing.get_type_hints(config_cls)
    group = parser.add_argument_group(f"training configuration ({config_cls.__name__} fields)")
    for f in dataclasses.fields(config_cls):
        if not f.init or f.name in skip:
            continue
        default = field_default(f)
        tp, optional = _unwrap_optional(hints.get(f.name, type(default)))
        kw = _value_kwargs(f.name, tp)
        text = str(f.metadata.get("help", "")) or f"{config_cls.__name__}.{f.name}"
        valid = list((names or {}).get(f.name, ()))
        if valid and not all(v in text for v in valid):
            text += f"; one of: {', '.join(valid)}"
        if optional:
            kw["type"] = _or_none(kw["type"])
            text += " ('none' for None)"
        text = f"{text}; default: {_show_default(default)}".replace("%", "%%")
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=argparse.SUPPRESS, help=text, **kw)
