"""`record` and `frozen`: the model's dataclasses behave the same on every supported Python
(slots are native from 3.10 on and rebuilt on 3.9)."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from sphinxext_qemudbus.diagnostics.frozen import frozen, record


@record(frozen=True)
class Point:
    x: int
    y: int = 0
    label: str = dataclasses.field(default="", compare=False)


@record
class Counter:
    name: str
    seen: list[str] = dataclasses.field(default_factory=list)


@frozen(order=True)
class Version:
    major: int
    minor: int = 0


@pytest.mark.parametrize("cls", [Point, Counter, Version])
def test_instances_have_slots_and_no_dict(cls: type) -> None:
    instance = cls(1) if cls is not Counter else cls("a")
    assert cls.__slots__ == tuple(field.name for field in dataclasses.fields(cls))
    assert not hasattr(instance, "__dict__")
    # Frozen slotted dataclasses refuse with TypeError (CPython's own quirk, 3.10 and later alike).
    with pytest.raises((AttributeError, TypeError)):
        instance.other = 1


def test_frozen_records_refuse_assignment_and_keep_their_defaults() -> None:
    point = Point(1)
    assert (point.x, point.y, point.label) == (1, 0, "")
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    assert dataclasses.replace(point, y=3) == Point(1, 3)
    assert Point(1, label="a") == Point(1, label="b")  # compare=False is kept
    assert hash(Point(1)) == hash(Point(1))


def test_mutable_records_take_factories() -> None:
    first, second = Counter("a"), Counter("b")
    first.seen.append("x")
    assert second.seen == []
    first.name = "c"
    assert first == Counter("c", ["x"])


@pytest.mark.parametrize("value", [Point(1, 2, "p"), Counter("a", ["x"]), Version(7, 2)])
def test_pickle_and_copy_round_trip(value: object) -> None:
    # Sphinx pickles its environment, and the checker's workers send their results pickled.
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(value, protocol)) == value
    assert copy.copy(value) == value
    assert copy.deepcopy(value) == value


def test_order() -> None:
    assert sorted([Version(10, 0), Version(7, 2), Version(7)]) == [Version(7), Version(7, 2), Version(10, 0)]
