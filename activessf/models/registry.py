"""Self-supervised methods by name: a method is encoder + head(s) + loss + views in one module.

A method module must provide:

- ``views(images)``: uint8 ``[N, H, W, 3]`` -> the float input(s) ``forward`` takes (the
  augmentation lives with the method because e.g. MoCo needs two views, MAE one);
- ``forward(views)``: a dict with at least a scalar ``"loss"``;
- ``encoder``: the network that is exported after pretraining;
- optionally ``no_weight_decay()``: parameter names exempt from weight decay;
- optionally ``on_step(progress)``: called by the engine after every optimiser step with the
  fraction of the run's steps done, in [0, 1] (MoCo v3's momentum-encoder update);
- optionally ``reconstruct(x, pred)`` (+ ``patch``, ``grid``): pixel reconstructions for the
  export figure (masked-image methods only).

Built in: ``mae``, ``mocov3``, ``convmae``, ``mixmim``, each in the module :data:`METHOD_MODULES`
names. A module registers its builder and its own config class (the ``model.<name>`` section of
the pretraining config, as timm's entrypoints own their arguments) with
``@register_method("name", NameConfig)`` when it is imported; the registry imports a module only
when its method is asked for, and never imports one statically (no import cycle).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

MethodBuilder = Callable[[Any], Any]

# Method name -> the module that registers it (imported on first use).
METHOD_MODULES = {
    "mae": "activessf.models.mae",
    "mocov3": "activessf.models.mocov3",
    "convmae": "activessf.models.convmae",
    "mixmim": "activessf.models.mixmim",
}


@dataclass
class NoOptions:
    """The config of a method that takes none of its own."""


@dataclass(frozen=True)
class _Entry:
    builder: MethodBuilder
    config: type


_METHODS: dict[str, _Entry] = {}


def register_method(name: str, config: type = NoOptions) -> Callable[[MethodBuilder], MethodBuilder]:
    """Decorator: register ``builder(cfg) -> nn.Module`` and its config dataclass under ``name``.

    Args:
        name: Method name (``model.method``).
        config: Dataclass of the method's ``model.<name>`` section; the builder reads it as
            ``cfg.model.params``.
    """

    def wrap(builder: MethodBuilder) -> MethodBuilder:
        entry = _METHODS.get(name)
        if entry is not None and (entry.builder.__qualname__, entry.builder.__module__) != (
                builder.__qualname__, builder.__module__):
            raise ValueError(f"method {name!r} is already registered")
        _METHODS[name] = _Entry(builder, config)
        return builder

    return wrap


def available_methods() -> list[str]:
    """Names of every method, built in or registered (imports no method module)."""
    return sorted(set(METHOD_MODULES) | set(_METHODS))


def _entry(name: str) -> _Entry:
    if name not in _METHODS and name in METHOD_MODULES:
        importlib.import_module(METHOD_MODULES[name])  # its @register_method runs on import
    if name not in _METHODS:
        raise KeyError(f"unknown pretraining method {name!r}; available: {', '.join(available_methods())}")
    return _METHODS[name]


def method_config_class(name: str) -> type:
    """The dataclass of method ``name``'s own config section (imports only that method's module)."""
    return _entry(name).config


def build_method(name: str, cfg: Any) -> Any:
    """Build the method registered as ``name`` (an ``nn.Module``) from the pretraining config ``cfg``."""
    return _entry(name).builder(cfg)
