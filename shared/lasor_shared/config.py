"""YAML → typed dataclasses, validated; every error names the field (`camera.elevation_deg: ...`).

Supported field types: bool, int, float, str, `X | None`, `list[X]`, `dict[str, X]`, `Literal[...]`,
nested dataclasses and `tuple[float, float]`, which is read as a [min, max] range (min ≤ max is
checked). Per-field bounds come from `field(metadata={"ge": 0, "le": 1, "gt": 0})`; cross-field
checks from an optional `validate(self, where)` method on the dataclass that raises `LasorError`.
Unknown keys are refused (with the list of known ones), so a typo never silently falls back to a
default.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from lasor_shared.errors import LasorError


def _name(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _type_name(tp) -> str:
    if tp is type(None):
        return "null"
    if isinstance(tp, type):
        return {"int": "an integer", "float": "a number", "str": "a string", "bool": "true/false"}.get(
            tp.__name__, tp.__name__)
    return str(tp).replace("typing.", "")


def _convert(value: Any, tp, where: str):
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except LasorError as e:
                errors.append(str(e))
        raise LasorError(errors[0] if len(errors) == 1 else
                         f"{where}: expected {' or '.join(_type_name(o) for o in options)}, got {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise LasorError(f"{where}: expected one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise LasorError(f"{where}: expected a list, got {value!r}")
        (item,) = get_args(tp)
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise LasorError(f"{where}: expected a mapping, got {value!r}")
        _, item = get_args(tp)
        return {str(k): _convert(v, item, _name(where, str(k))) for k, v in value.items()}
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise LasorError(f"{where}: expected [min, max] (a list of {len(args)} numbers), got {value!r}")
        out = tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        if len(out) == 2 and all(isinstance(v, (int, float)) for v in out) and out[0] > out[1]:
            raise LasorError(f"{where}: min ({out[0]}) > max ({out[1]})")
        return out
    if tp is bool:
        if not isinstance(value, bool):
            raise LasorError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise LasorError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LasorError(f"{where}: expected a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise LasorError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise LasorError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is Any:
        return value
    if tp is list:
        if not isinstance(value, (list, tuple)):
            raise LasorError(f"{where}: expected a list, got {value!r}")
        return list(value)
    raise TypeError(f"unsupported config type {tp} at {where}")


def _check_bounds(value, meta, where):
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if "ge" in meta and v < meta["ge"]:
            raise LasorError(f"{where}: must be >= {meta['ge']}, got {v}")
        if "gt" in meta and v <= meta["gt"]:
            raise LasorError(f"{where}: must be > {meta['gt']}, got {v}")
        if "le" in meta and v > meta["le"]:
            raise LasorError(f"{where}: must be <= {meta['le']}, got {v}")
        if "lt" in meta and v >= meta["lt"]:
            raise LasorError(f"{where}: must be < {meta['lt']}, got {v}")


def from_dict(cls, data: Any, where: str = ""):
    """Build dataclass `cls` from a mapping, validating every field; LasorError names the field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise LasorError(f"{where or 'recipe'}: expected a mapping, got {data!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise LasorError(f"{_name(where, str(unknown[0]))}: unknown field (known: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        key = _name(where, name)
        if name in data:
            value = _convert(data[name], hints[name], key)
            _check_bounds(value, f.metadata, key)
            kwargs[name] = value
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise LasorError(f"{key}: required field missing")
    obj = cls(**kwargs)
    if hasattr(obj, "validate"):
        obj.validate(where)
    return obj


def to_dict(obj) -> Any:
    """Plain (JSON/YAML-able) form of a dataclass tree; tuples become lists."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


MAX_YAML_BYTES = 4 * 2**20  # recipes and configs are a few kB


def load_yaml(path: str) -> Any:
    """Parse a YAML file; LasorError naming the file if it cannot be read, is not UTF-8 text, is
    implausibly large or cannot be parsed."""
    try:
        if os.path.getsize(path) > MAX_YAML_BYTES:
            raise LasorError(f"{path}: {os.path.getsize(path)} bytes, larger than a YAML config can be "
                             f"({MAX_YAML_BYTES // 2**20} MiB)")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if "\0" in text:
            raise LasorError(f"{path}: not a text file (NUL bytes)")
        return yaml.safe_load(text)
    except OSError as e:
        raise LasorError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise LasorError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except RecursionError:
        raise LasorError(f"{path}: YAML nested too deeply") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise LasorError(f"{path}: not valid YAML{at}") from None
