"""Folding as a value: how many parallel lanes each layer's hardware gets.

A :class:`Fold` is one layer's folding, key → whole number ≥ 1 (``pe``, ``simd``: the keys its
kind takes), and a :class:`Folding` a network's, layer name → :class:`Fold`::

    Folding  {"MatMul_16": Fold(pe=16, simd=49), "MatMul_24": Fold(pe=4, simd=16), …}

Both are immutable and hashable: the folding search keys what it learns about a layer on them,
and a folding handed from one flow stage to the next cannot change on the way. They stay plain
mappings to everything that reads them (``fold["pe"]``, ``==`` with a dict, JSON and TOML
writers, manifests), so a folding written by hand in a test or a file compares equal to the one
the flow computed.

Every folding a user writes (a config's ``[folding]``, a folding file, a design's fields) is read
by :meth:`Folding.parse`: the one place that checks its form and names the entry at fault.
The values are then the kinds' to check (divisibility, signal widths) when they build their
block, and the layer names the network's (:func:`hwnorm.dataflow.check_folding`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping

__all__ = ["Fold", "Folding", "check_value", "EXAMPLE"]

EXAMPLE = "{ pe = 4, simd = 8 }"  # how a folding entry is written, for error messages


class _Frozen(dict):
    """A dict that cannot change after it is built (a dict, so JSON / TOML writers and ``==`` with
    plain dicts work unchanged)."""

    __slots__ = ()

    def _immutable(self, *args, **kwargs):
        raise TypeError(f"a {type(self).__name__} cannot change; build a new one (merged())")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _immutable

    def __hash__(self) -> int:
        return hash(frozenset(self.items()))

    def __reduce__(self):  # pickle and copy rebuild through __init__, never item by item
        return type(self), (dict(self),)

    def __or__(self, other):
        return self.merged(other)


class Fold(_Frozen):
    """One layer's folding: key → whole number ≥ 1, in the order it was written."""

    __slots__ = ()

    def __init__(self, values: Mapping | Iterable = (), /, **kwargs):
        super().__init__(values, **kwargs)
        for key, value in self.items():
            check_value(key, value, "a folding")
            if type(value) is not int:  # numpy integers become ints: hashing and JSON see one type
                dict.__setitem__(self, key, int(value))

    @classmethod
    def parse(cls, entry, *, layer: str, allowed: Iterable[str], where: str = "") -> "Fold":
        """A layer's folding as written by a user, with a clear error naming ``where``, the layer
        and the key at fault (``allowed``: the keys its kind takes)."""
        at = f"{where}: " if where else ""
        if not isinstance(entry, Mapping):
            raise ValueError(f"{at}folding.{layer} must be a table like {EXAMPLE}, got {entry!r}")
        allowed = tuple(allowed)
        for key, value in entry.items():
            if key not in allowed:
                raise ValueError(f"{at}folding.{layer}: unknown key {key!r}; allowed: {', '.join(allowed)}")
            check_value(f"{at}folding.{layer}.{key}", value)
        return entry if isinstance(entry, cls) else cls(entry)

    def merged(self, other: Mapping) -> "Fold":
        """This folding with ``other``'s keys set over it."""
        return Fold({**self, **other})

    @property
    def lanes(self) -> int:
        """The hardware it builds, as parallel lanes (the product of its keys: PE · SIMD)."""
        return math.prod(self.values())

    def __repr__(self) -> str:
        return f"Fold({', '.join(f'{k}={v}' for k, v in self.items())})"


class Folding(_Frozen):
    """A network's folding: layer name → :class:`Fold`, in layer order."""

    __slots__ = ()

    def __init__(self, values: Mapping | Iterable = (), /, **kwargs):
        super().__init__(values, **kwargs)
        for name, fold in self.items():
            if not isinstance(name, str):
                raise ValueError(f"a folding names layers by string, got {name!r}")
            if not isinstance(fold, Fold):
                dict.__setitem__(self, name, Fold(fold))

    @classmethod
    def parse(cls, doc, *, allowed: Iterable[str], where: str = "") -> "Folding":
        """A network's folding as written by a user (``allowed``: the keys any kind takes, when the
        network is not known yet)."""
        at = f"{where}: " if where else ""
        if not isinstance(doc, Mapping):
            raise ValueError(f"{at}[folding] must be a table of layers, like MatMul_16 = {EXAMPLE}, got {doc!r}")
        allowed = tuple(allowed)
        return cls({str(layer): Fold.parse(entry, layer=layer, allowed=allowed, where=where)
                    for layer, entry in doc.items()})

    def merged(self, other: Mapping) -> "Folding":
        """This folding with ``other``'s layers set over it, key by key."""
        out = dict(self)
        for name, fold in other.items():
            out[name] = out[name].merged(fold) if name in out else Fold(fold)
        return Folding(out)

    def to_json(self) -> dict:
        return {name: dict(fold) for name, fold in self.items()}

    def __repr__(self) -> str:
        return f"Folding({dict.__repr__(self)})"


def check_value(key: str, value, where: str | None = None) -> None:
    """One folding value: a whole number ≥ 1 (numpy integers are whole numbers; True is not)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        at = f"{where}: " if where else ""
        raise ValueError(f"{at}{key} must be a whole number ≥ 1, got {value!r}")
