"""Typed stage configs: YAML defaults, ``--set key=value`` overrides, validation, saving.

Every stage owns one dataclass (nested dataclasses allowed). This module turns a YAML mapping
plus dotted overrides into such a dataclass, rejecting unknown keys and ill-typed values before any
work starts, with an error that names the offending field.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import os
import re
import types
import typing
from typing import Any, Mapping, TypeVar

import yaml

T = TypeVar("T")

# Top-level sections of a pipeline YAML. A ``--set other_stage.key=v`` is skipped by a stage
# whose section differs, so one override list can serve every stage; any other unknown key
# still fails.
SECTIONS = ("regions", "features", "selection", "pretrain", "finetune", "evaluation", "sweep", "pipeline", "predict",
            "query", "tracking")


class ConfigError(ValueError):
    """A config key or value is invalid; the message names the field. ``local`` (from :func:`check`):
    ``(name, message)`` relative to the raising dataclass; :func:`from_dict` adds its path."""

    def __init__(self, message: str, local: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.local = local


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key.sub=value`` and parse the value as YAML (so ``1``, ``0.5``, ``true``, ``[1,2]``).

    Args:
        text: One ``--set`` argument.

    Returns:
        The dotted key and the parsed value.
    """
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set has an empty key in {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"{key}: cannot parse value {raw!r}: {exc}") from exc
    return key, value


def set_dotted(tree: dict, key: str, value: Any) -> None:
    """Set ``tree[a][b][c] = value`` for ``key='a.b.c'``, creating mappings on the way."""
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def load_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML mapping; an empty file is an empty mapping."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def build_config(
    cls: type[T],
    yaml_path: str | os.PathLike | None = None,
    overrides: list[str] | None = None,
    section: str | None = None,
) -> T:
    """Defaults of ``cls``, then the YAML file, then ``--set`` overrides, validated.

    Args:
        cls: The stage's config dataclass.
        yaml_path: Optional YAML file; if ``section`` is given and the file has that top-level key,
            only that sub-mapping is used (so one pipeline YAML can feed every stage).
        overrides: ``key=value`` strings, dotted keys relative to ``cls``.
        section: Optional name of the stage's section in a pipeline YAML.

    Returns:
        A validated instance of ``cls``.
    """
    tree: dict = {}
    if yaml_path is not None:
        tree = load_yaml(yaml_path)
        if section is not None and any(isinstance(tree.get(s), dict) for s in SECTIONS):
            # A pipeline YAML: this stage's section, or its defaults when the file has none. A
            # misspelled section would otherwise be ignored and its values silently not applied.
            unknown = sorted(str(k) for k in tree if k not in SECTIONS)
            if unknown:
                raise ConfigError(f"{yaml_path}: unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}")
            tree = tree.get(section) or {}
    for text in overrides or []:
        key, value = parse_override(text)
        head = key.split(".", 1)[0]
        if section is not None and head == section and "." in key:
            key = key[len(section) + 1 :]
        elif section is not None and head in SECTIONS and "." in key:
            continue
        set_dotted(tree, key, value)
    return from_dict(cls, tree)


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, checking keys and value types recursively."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: expected a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("inline")}
    inline = [f.name for f in dataclasses.fields(cls) if f.metadata.get("inline")]
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown and not inline:
        names = ", ".join(prefix + k for k in unknown)
        raise ConfigError(f"unknown config field(s): {names}; valid: {', '.join(sorted(fields))}")
    # Other keys go raw to an inline field; the class resolves them in __post_init__ (a method's
    # own section, whose dataclass depends on the method chosen).
    kwargs: dict[str, Any] = {inline[0]: {k: data[k] for k in unknown}} if inline else {}
    for name, value in ((k, v) for k, v in data.items() if k in fields):
        kwargs[name] = _coerce(hints[name], value, prefix + name)
        if (name == "seed" or name.endswith("_seed")) and isinstance(value, int):
            # numpy, torch and OpenCV all refuse a negative seed, but only deep inside the run.
            require(0 <= value < 2**32, prefix + name, "must be in [0, 2**32)")
    try:
        obj = cls(**kwargs)
    except ConfigError as exc:
        if exc.local is None:
            raise
        name, message = exc.local
        raise ConfigError(f"{prefix}{name}: {message}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {exc}") from exc
    return obj


def _coerce(hint: Any, value: Any, field: str) -> Any:
    """Check ``value`` against the type ``hint``; int->float is allowed, nothing else is cast."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if dataclasses.is_dataclass(value):
            return value
        return from_dict(hint, value, prefix=field + ".")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, field)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{field}: invalid value {value!r}")
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{field}: {value!r} is not one of {list(allowed)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{field}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [_coerce(item, v, f"{field}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{field}: expected a mapping, got {value!r}")
        return dict(value)
    return _coerce_scalar(hint, value, field)


def _coerce_scalar(hint: Any, value: Any, field: str) -> Any:
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{field}: expected a number, got {value!r}")
        if not math.isfinite(value):
            # No field means anything by inf or nan (null says "no limit"); they only fail mid-run.
            raise ConfigError(f"{field}: expected a finite number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{field}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{field}: expected true/false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{field}: expected a string, got {value!r}")
        return value
    return value


def to_dict(obj: Any) -> dict:
    """A dataclass as plain nested dicts/lists (tuples become lists) for YAML/JSON.

    A field marked ``inline`` (a mapping of named sections) is written into its parent, where
    :func:`from_dict` reads it back from.
    """
    return _plain(obj)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = _plain(getattr(value, f.name))
            if f.metadata.get("inline"):
                out.update(item)
            else:
                out[f.name] = item
        return out
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_config(obj: Any, out_dir: str | os.PathLike, name: str = "config.yaml") -> str:
    """Write the resolved config beside a stage's outputs (atomically; local or object storage).

    Returns:
        The written path or URI.
    """
    from activessf.io import fs as afs
    from activessf.io.atomic import atomic_write_text

    path = afs.join(str(out_dir), name)
    atomic_write_text(path, yaml.safe_dump(to_dict(obj), sort_keys=False))
    return path


def require(condition: bool, field: str, message: str) -> None:
    """Raise ``ConfigError`` naming ``field`` unless ``condition`` holds (for ``__post_init__``)."""
    if not condition:
        raise ConfigError(f"{field}: {message}")


def check(condition: bool, name: str, message: str) -> None:
    """Like :func:`require` with ``name`` relative to the dataclass (``crop_scale``, ``decoder.dim``).

    For parts used in several places: :func:`from_dict` names the field by its full path.
    """
    if not condition:
        raise ConfigError(f"{name}: {message}", local=(name, message))


# Files that earlier stages of the same run will write (``activessf run`` fine-tunes the encoder a
# pretraining stage exports): ``require_file`` accepts them before they exist.
_PLANNED_FILES: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("planned_files", default=frozenset())


@contextlib.contextmanager
def planned_files(paths: list[str]):
    """Within this block, ``require_file`` accepts ``paths`` as if they existed."""
    token = _PLANNED_FILES.set(_PLANNED_FILES.get() | frozenset(paths))
    try:
        yield
    finally:
        _PLANNED_FILES.reset(token)


def require_file(path: str, field: str) -> None:
    """Raise ``ConfigError`` naming ``field`` unless ``path`` is an existing file (or a planned one).

    Object-storage URIs are checked by the stage that reads them (a listing per field is slow).
    """
    from activessf.io import fs as afs

    if afs.is_remote(path) or path in _PLANNED_FILES.get():
        return
    require(os.path.isfile(path), field, f"no such file {path!r}")


def patch_of_name(model_name: str) -> int | None:
    """Patch size a timm model name states (``vit_base_patch16_224`` -> 16), else None."""
    match = re.search(r"patch(\d+)", model_name)
    return int(match.group(1)) if match else None


def require_patch_multiple(img_size: int, patch_size: int | None, model_name: str, field: str) -> None:
    """``img_size`` must be a multiple of the patch size (the field's, else the name's)."""
    patch = patch_size or patch_of_name(model_name)
    if patch:
        require(img_size % patch == 0, field, f"{img_size} is not a multiple of the patch size {patch} "
                f"({'the patch_size field' if patch_size else model_name})")
