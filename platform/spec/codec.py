"""An AppSpec as JSON and back, to ship it whole to another process (a local host, later the
push server's workers).

Every field travels except the parsed plumber.R (`api`), which the receiver parses again
from `plumber_file`; the receiver's AppSpec checks every value again as it is built.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

from plumbline.annotations import AnnotationError, parse_file
from plumbline.endpoints import PlumberFile
from plumbline.platform.spec.appspec import AppSpec, SpecError

_SKIPPED = {"api"}


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name not in _SKIPPED
        }
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, frozenset):
        return sorted(_encode(v) for v in value)
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def spec_to_json(spec: AppSpec) -> dict[str, Any]:
    encoded = _encode(spec)
    assert isinstance(encoded, dict)
    return encoded


def _decode(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _decode(inner[0], value, where)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise SpecError(f"{where}: expected an object")
        hints = typing.get_type_hints(hint)
        known = {f.name for f in dataclasses.fields(hint)} - _SKIPPED
        unknown = set(value) - known
        if unknown:
            raise SpecError(f"{where}: unknown fields {', '.join(sorted(unknown))}")
        cls: Any = hint
        return cls(**{k: _decode(hints[k], v, f"{where}.{k}") for k, v in value.items()})
    if hint is Path:
        return Path(_expect(value, str, where))
    if origin is tuple:
        items = _expect(value, list, where)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v, where) for v in items)
        if len(items) != len(args):
            raise SpecError(f"{where}: expected {len(args)} items")
        return tuple(_decode(a, v, where) for a, v in zip(args, items))
    if origin is frozenset:
        return frozenset(_decode(args[0], v, where) for v in _expect(value, list, where))
    if origin is dict:
        return {
            _expect(k, str, where): _decode(args[1], v, f"{where}.{k}")
            for k, v in _expect(value, dict, where).items()
        }
    if hint in (str, bool, int):
        return _expect(value, hint, where)
    raise SpecError(f"{where}: cannot be decoded")  # pragma: no cover - every field is handled


def _expect(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SpecError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def spec_from_json(data: dict[str, Any]) -> AppSpec:
    """The AppSpec `spec_to_json` wrote, with its plumber.R parsed again; SpecError if not."""
    spec = _decode(AppSpec, data, "spec")
    assert isinstance(spec, AppSpec)
    if not spec.plumber_file.is_file():
        raise SpecError(f"{spec.plumber_file}: no such file")
    try:
        api: PlumberFile | None = parse_file(spec.plumber_file)
    except AnnotationError as exc:
        if not exc.r_decides:
            raise SpecError(str(exc)) from None
        api = None  # a name the file registers: only plumber's route table can tell
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{spec.plumber_file}: cannot read: {exc}") from None
    return dataclasses.replace(spec, api=api)
