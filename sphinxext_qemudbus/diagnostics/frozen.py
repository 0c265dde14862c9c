"""Immutable dataclasses that are cheap to create.

The model is built in the checker's hot path: tens of objects per interface, millions in a big
run.  ``@dataclass(frozen=True, slots=True)`` generates an ``__init__`` that goes through
``object.__setattr__`` for every field (to get past the frozen ``__setattr__``), which makes it
about 2.4 times slower than a plain slotted class.  `frozen` keeps everything ``dataclass`` gives
(immutability, equality, hashing, ``replace``, pickling) and only swaps ``__init__`` for one that
stores each field through its slot descriptor, which is what ``object.__setattr__`` ends up
doing, minus the dispatch.

Pickling gets the same treatment: a slotted dataclass pickles through ``__getstate__`` and
``__setstate__`` written in Python, which loop over the fields and, on loading, go through
``object.__setattr__`` again.  ``__reduce__`` here pickles an object as its class and field values,
so loading it is one call of the fast ``__init__``.  The checker's worker processes send every
file's results this way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

_C = TypeVar("_C", bound=type)


@overload
def frozen(cls: _C, /) -> _C: ...
@overload
def frozen(*, order: bool = False) -> Callable[[_C], _C]: ...


@dataclass_transform(frozen_default=True)
def frozen(cls: _C | None = None, /, *, order: bool = False) -> _C | Callable[[_C], _C]:
    """``@dataclass(frozen=True, slots=True)`` (optionally ``order=True``) with a faster
    ``__init__``.  Use as ``@frozen`` or ``@frozen(order=True)``."""
    if cls is None:
        return lambda c: _make(c, order)
    return _make(cls, order)


def _make(cls: _C, order: bool) -> _C:
    made: Any = dataclasses.dataclass(frozen=True, slots=True, order=order)(cls)
    fields = dataclasses.fields(made)
    namespace: dict[str, Any] = {}
    parameters: list[str] = []
    for field in fields:
        if field.default is not dataclasses.MISSING:
            namespace[f"_default_{field.name}"] = field.default
            parameters.append(f"{field.name}=_default_{field.name}")
        elif field.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{made.__name__}.{field.name}: default_factory is not supported")
        else:
            parameters.append(field.name)
        namespace[f"_set_{field.name}"] = made.__dict__[field.name].__set__
    body = "".join(f"    _set_{f.name}(self, {f.name})\n" for f in fields) or "    pass\n"
    values = "".join(f"self.{f.name}, " for f in fields)
    namespace["_cls"] = made
    source = (
        f"def __init__(self, {', '.join(parameters)}):\n{body}def __reduce__(self):\n    return (_cls, ({values}))\n"
    )
    exec(source, namespace)  # the same technique dataclasses itself uses to build __init__
    for name in ("__init__", "__reduce__"):
        method: Callable[..., Any] = namespace[name]
        method.__qualname__ = f"{made.__qualname__}.{name}"
        setattr(made, name, method)
    return made  # type: ignore[no-any-return]
