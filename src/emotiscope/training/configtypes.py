"""Type checks of a config.json's values against the dataclass fields they fill (training/config.py):
a value of the wrong JSON type is a one-line ConfigError, not a crash later in training."""

from __future__ import annotations

import json
import reprlib
import types
import typing
from dataclasses import fields, is_dataclass
from typing import Any

from ..errors import ConfigError


def check_types(cls: type, data: dict, prefix: str = "") -> None:
    """A ConfigError for the first known key of `data` whose value does not have the type its
    dataclass field (of `cls`) declares; nested dataclasses (augment) are checked the same way."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name not in data:
            continue
        hint, value = hints[f.name], data[f.name]
        if not _accepts(hint, value):
            raise ConfigError(f"{prefix}{f.name} must be {_describe(hint)}, got {_shown(value)}")
        if is_dataclass(hint):
            check_types(typing.cast(type, hint), value, f"{prefix}{f.name}.")


def _shown(value: Any) -> str:
    """A config value as JSON writes the few that Python spells otherwise (null, true), else short."""
    return json.dumps(value) if value is None or isinstance(value, bool) else reprlib.repr(value)


def _accepts(hint: Any, value: Any) -> bool:
    """Whether a JSON value fits the field type `hint` (a bool is no number; an int is a float)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_accepts(h, value) for h in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_accepts(item, v) for v in value)
    if hint is type(None):
        return value is None
    if hint in (int, float) and isinstance(value, bool):
        return False
    if hint is float:
        return isinstance(value, (int, float))
    return isinstance(value, dict if is_dataclass(hint) else hint)


def _describe(hint: Any) -> str:
    """'an integer', 'a number or null', 'a list of strings or null', ... for messages."""
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             dict: "a JSON object", type(None): "null"}
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return "a list of " + _describe(typing.get_args(hint)[0]).split(" ", 1)[1] + "s"
    return names.get(hint, "a JSON object")
