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

`record` is the 3.9 form of ``@dataclass(slots=True)`` (``slots`` is new in Python 3.10): on 3.10
and later it is exactly that; on 3.9 it rebuilds the class with ``__slots__`` the way 3.10's
``dataclasses`` does, so the model has the same memory and attribute-access costs on every
supported Python.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**kwargs: Any) -> Callable[[Any], Any]:
        return lambda function: function


_C = TypeVar("_C", bound=type)
_NATIVE_SLOTS = sys.version_info >= (3, 10)


@overload
def record(cls: _C, /) -> _C: ...
@overload
def record(*, frozen: bool = False, order: bool = False) -> Callable[[_C], _C]: ...


@dataclass_transform()
def record(cls: _C | None = None, /, *, frozen: bool = False, order: bool = False) -> _C | Callable[[_C], _C]:
    """``@dataclass(slots=True)`` on every supported Python (``frozen`` and ``order`` as
    ``dataclass`` takes them).  Use as ``@record`` or ``@record(frozen=True)``."""
    if cls is None:
        return lambda c: _slotted(c, frozen, order)
    return _slotted(cls, frozen, order)


def _slotted(cls: _C, frozen: bool, order: bool) -> _C:
    if _NATIVE_SLOTS:
        made: Any = dataclasses.dataclass(frozen=frozen, order=order, slots=True)(cls)  # type: ignore[call-overload,unused-ignore]
        return made  # type: ignore[no-any-return]
    slotted: Any = _add_slots(dataclasses.dataclass(frozen=frozen, order=order)(cls), frozen)
    return slotted  # type: ignore[no-any-return]


def _add_slots(cls: Any, frozen: bool) -> Any:
    """What ``dataclass(slots=True)`` does on 3.10: a new class whose namespace lists the fields in
    ``__slots__`` (their defaults leave the class body: ``__init__`` holds them already)."""
    names = tuple(field.name for field in dataclasses.fields(cls))
    namespace = dict(cls.__dict__)
    for name in (*names, "__dict__", "__weakref__"):
        namespace.pop(name, None)
    namespace["__slots__"] = names
    if frozen:
        # A frozen class refuses ``setattr``, which the default unpickling of slots uses.
        namespace["__getstate__"] = _frozen_getstate
        namespace["__setstate__"] = _frozen_setstate
    made = type(cls)(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    return made


def _frozen_getstate(self: Any) -> list[Any]:
    return [getattr(self, field.name) for field in dataclasses.fields(self)]


def _frozen_setstate(self: Any, state: list[Any]) -> None:
    for field, value in zip(dataclasses.fields(self), state):
        object.__setattr__(self, field.name, value)


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
    made: Any = _slotted(cls, True, order)
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
