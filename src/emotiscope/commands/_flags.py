"""Command-line flags generated from a dataclass: each field's metadata holds its help text (and
its flag when that is not --field-name), so an option and its default are written once.

Flags default to None ("not given"), so that a flag given explicitly can override another
source of settings (a config file, a resumed run); `given()` returns those."""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, Field, fields
from typing import Any

from ..options import comma_list, finite_float


def _base_type(hint) -> type:
    """The type behind `X | None` / `Optional[X]`; list for list[...]."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_origin(hint) or hint


def default_of(f: Field) -> Any:
    """The field's default value (built by its default_factory where it has one)."""
    if f.default is not MISSING:
        return f.default
    factory = f.default_factory
    return factory() if callable(factory) else None


def _help(f: Field, kind: type) -> str:
    meta = f.metadata
    text, default = meta["help"], default_of(f)
    shown = meta.get("default_text")
    if shown is None and kind is not bool and default is not None:
        shown = f"{default:g}" if isinstance(default, float) else str(default)
    return f"{text} (default: {shown})" if shown else text


def generated(cls) -> list[Field]:
    """The fields of `cls` that get a generated flag."""
    return [f for f in fields(cls) if f.metadata.get("help") and f.metadata.get("generate", True)]


def add_flags(parser: argparse.ArgumentParser, cls, groups: dict[str, argparse._ActionsContainer]
              | None = None) -> None:
    """One flag per generated field of the dataclass `cls`, in the argparse group its metadata
    names (`groups`: group title -> group; a title not there gets a new group)."""
    hints = typing.get_type_hints(cls)
    groups = groups if groups is not None else {}
    for f in generated(cls):
        meta, kind = f.metadata, _base_type(hints[f.name])
        title = str(meta.get("group") or "")
        if title and title not in groups:
            groups[title] = parser.add_argument_group(title)
        target = groups.get(title, parser)
        kwargs: dict = {"dest": f.name, "default": None, "help": _help(f, kind)}
        if kind is bool:  # a flag that is on by default is turned off (--no-amp), and vice versa
            kwargs["action"] = "store_false" if default_of(f) else "store_true"
        else:
            kwargs["type"] = {list: comma_list, float: finite_float}.get(kind, kind)
            kwargs.update({k: meta[k] for k in ("metavar", "choices") if k in meta})
        target.add_argument(meta.get("flag") or "--" + f.name.replace("_", "-"), **kwargs)


def given(args: argparse.Namespace, cls) -> dict[str, Any]:
    """{field: value} of the generated flags given on the command line."""
    return {f.name: getattr(args, f.name) for f in generated(cls)
            if getattr(args, f.name, None) is not None}
