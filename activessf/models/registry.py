"""Self-supervised methods by name: a method is encoder + head(s) + loss + views in one module.

A method module must provide:

- ``views(images)``: uint8 ``[N, H, W, 3]`` -> the float input(s) ``forward`` takes (the
  augmentation lives with the method because e.g. MoCo needs two views, MAE one);
- ``forward(views)``: a dict with at least a scalar ``"loss"``;
- ``encoder``: the timm backbone that is exported after pretraining;
- optionally ``no_weight_decay()``: parameter names exempt from weight decay;
- optionally ``on_step(progress)``: called by the engine after every optimiser step with the
  fraction of the run's steps done, in [0, 1] (MoCo v3's momentum-encoder update);
- optionally ``reconstruct(x, pred)`` (+ ``patch``, ``grid``): pixel reconstructions for the
  export figure (masked-image methods only).

Built in: ``mae``, ``mocov3``, ``convmae``, ``mixmim``.

Builders register with ``@register_method("name")`` and take the whole pretraining config.
"""

from __future__ import annotations

from typing import Any, Callable

import torch.nn as nn

MethodBuilder = Callable[[Any], nn.Module]
_METHODS: dict[str, MethodBuilder] = {}


def register_method(name: str) -> Callable[[MethodBuilder], MethodBuilder]:
    """Decorator: register ``builder(cfg) -> nn.Module`` under ``name``."""

    def wrap(builder: MethodBuilder) -> MethodBuilder:
        if name in _METHODS and _METHODS[name] is not builder:
            raise ValueError(f"method {name!r} is already registered")
        _METHODS[name] = builder
        return builder

    return wrap


def _load_builtin() -> None:
    # Importing the module runs its @register_method; done lazily so the registry has no
    # import-time dependency on every method.
    import activessf.models.convmae  # noqa: F401
    import activessf.models.mae  # noqa: F401
    import activessf.models.mixmim  # noqa: F401
    import activessf.models.mocov3  # noqa: F401


def available_methods() -> list[str]:
    """Names of every registered method."""
    _load_builtin()
    return sorted(_METHODS)


def build_method(name: str, cfg: Any) -> nn.Module:
    """Build the method registered as ``name`` from the pretraining config ``cfg``."""
    _load_builtin()
    if name not in _METHODS:
        raise KeyError(f"unknown pretraining method {name!r}; available: {', '.join(sorted(_METHODS))}")
    return _METHODS[name](cfg)
