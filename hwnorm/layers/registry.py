"""The layer-kind registry: kinds register here by name; everything else asks it (see
:mod:`hwnorm.layers`). Below the kinds, so a kind module imports it without importing the
package that imports every kind."""

from __future__ import annotations

from hwnorm.hdl.names import check_identifier
from hwnorm.layers.base import Layer

__all__ = ["register", "unregister", "kind", "names", "layer_from_dict", "folding_keys"]

_KINDS: dict[str, type] = {}
_ALIASES: dict[str, str] = {}  # names older IR files used: input_threshold → thresholding, mvtu → mvu


def register(cls):
    """Class decorator: make ``cls`` (a :class:`Layer` subclass) the kind named ``cls.kind``."""
    name = getattr(cls, "kind", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{cls.__name__}: a layer kind needs a `kind` name that is an identifier, got {name!r}")
    if not issubclass(cls, Layer):
        raise ValueError(f"{cls.__name__}: a layer kind must subclass hwnorm.layers.Layer")
    for n in (name, *cls.aliases):
        if (n in _KINDS and _KINDS[n] is not cls) or (n in _ALIASES and _ALIASES[n] != name):
            raise ValueError(f"layer kind name {n!r} is taken")
    _KINDS[name] = cls
    _ALIASES.update({alias: name for alias in cls.aliases})
    return cls


def unregister(name: str) -> None:
    """Remove a kind (tests that define one of their own clean up with this)."""
    cls = _KINDS.pop(name)
    for alias in cls.aliases:
        _ALIASES.pop(alias, None)


def kind(name: str) -> type:
    """The layer class registered as ``name`` (or one of its older aliases)."""
    cls = _KINDS.get(_ALIASES.get(name, name)) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown layer kind {name!r}; allowed: {', '.join(names())}")
    return cls


def names() -> tuple[str, ...]:
    return tuple(_KINDS)


def folding_keys() -> tuple[str, ...]:
    """Every folding key some kind takes (a config checks these before it knows the network)."""
    keys: list = []
    for cls in _KINDS.values():
        keys += [k for k in cls.folding_keys if k not in keys]
    return tuple(keys)


def layer_from_dict(d) -> Layer:
    """A layer from its IR JSON object (the kind's ``from_dict``; declared tensors are checked)."""
    if not isinstance(d, dict):
        raise ValueError(f"a layer must be a JSON object, got {type(d).__name__}")
    cls = kind(d.get("kind"))
    where = f"layer {str(d.get('name', '?'))[:64]!r} ({cls.kind})"
    for key, types in cls.json_fields.items():  # the kind's declared field types, before it reads them
        if key not in d:
            raise ValueError(f"{where}: missing field {key!r}")
        if not isinstance(d[key], types) or isinstance(d[key], bool) and bool not in types:
            names = " or ".join(_JSON_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise ValueError(f"{where}: field {key!r} must be {names}, got {type(d[key]).__name__}")
    check_identifier(d["name"], f"{where}: name")  # names reach Verilog, files, reports and terminals
    try:
        layer = cls.from_dict(d)
    except KeyError as e:
        raise ValueError(f"{where}: missing field {e.args[0]!r}") from None
    except (TypeError, IndexError, AttributeError, OverflowError) as e:  # a nested value of the wrong shape
        raise ValueError(f"{where}: malformed ({e})") from None
    except ValueError as e:
        raise ValueError(f"{where}: {e}" if not str(e).startswith("layer ") else str(e)) from None
    layer.check_declared(d)
    unknown = _unknown_keys(d, layer.to_dict())
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[:64]!r}; a {cls.kind} layer has: "
                         f"{', '.join(layer.to_dict())}")
    return layer


def _unknown_keys(given: dict, known: dict, prefix: str = "") -> str | None:
    """The first key of ``given`` (nested objects included) that the layer's own JSON lacks: a
    misspelt or foreign field is an error, never silently ignored."""
    for key, value in given.items():
        if key not in known:
            return prefix + str(key)
        if isinstance(value, dict) and isinstance(known[key], dict):
            deeper = _unknown_keys(value, known[key], f"{prefix}{key}.")
            if deeper:
                return deeper
    return None


_JSON_TYPE_NAMES = {str: "a string", int: "a whole number", bool: "true or false", list: "a list",
                    dict: "an object", type(None): "null"}

