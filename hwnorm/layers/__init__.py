"""Layer kinds: one module per kind, one registry, one name per kind everywhere.

A layer kind is a frozen spec class (integers only) that also carries every view of itself,
FINN ``HWCustomOp``-style. Its ``kind`` name is the same in the IR JSON (``"kind"``), in design
TOML files (``kind = "mvu"``), in the manifest, the reports, the resource-cost keys and the
messages. Everything outside this package asks the registry (:func:`kind`, :func:`names`,
:func:`layer_from_dict`) or calls the layer's own methods — never ``isinstance`` on a layer class,
never a switch on the kind string.

The built-in kinds::

    thresholding.py   InputThreshold  elementwise multi-threshold of integers (e.g. pixel binarization)
    mvu.py            MVTU            matrix-vector(-threshold) unit, ±1 weights, binary or integer input
    qbn.py            QuantBN         the exact quantized batch-norm (A·x + B) >> k
    window.py         SlidingWindow   a convolution's sliding-window input generator (line buffer)
    maxpool.py        MaxPool         max over windows of a feature map (OR for bits)

Spatial layers stream feature maps channels last (``spatial.py``); the per-vector kinds take an
optional ``spatial = (H, W)`` and then process one vector per pixel (a convolution is a window
followed by an mvu over the ``OH · OW`` windows).

What a kind defines (the interface is :class:`hwnorm.layers.base.Layer`, with its docstrings):

    spec fields + validation     a frozen dataclass of ints and integer arrays
    tensors                      in_shape / out_shape (channels last), in_type / out_type
                                 (hwnorm.datatypes), in_range / out_range, vectors per image
    golden model                 run(x) on a batch (Numba kernels)
    JSON                         to_dict() / from_dict(d)
    folding                      folding_keys, foldings() (every legal one, cheapest first),
                                 auto_fold(prev_lanes, next_layer), preferred_in_lanes()
    hardware                     block(fold) → an hwnorm.blocks.Block: cycle model, resource
                                 inventory, and component() → the Amaranth component (hwnorm/hdl/)
    co-simulation                stimulus(n, rng): input vectors, corners first; the job is the
                                 golden output of run() on them
    energy                       energy_actions(fold) (action → count per inference) and
                                 stored_bits() (what the weight buffer holds)
    manifest                     describe(block): the design parameters of a one-layer top

How to add a layer kind
-----------------------
1. Write ``hwnorm/layers/<kind>.py``: a ``@register``-ed subclass of ``Layer`` with a unique
   ``kind`` name, and its ``Block`` subclass (cycle model, inventory, ``component()``).
2. Put its Amaranth component in ``hwnorm/hdl/<kind>.py`` (ports ``i`` / ``o`` as
   ``amaranth.lib.stream`` signatures, built from the block).
3. Import the module at the bottom of this file, so the kind registers when hwnorm loads.
4. Timing (optional): a block reads ``self.timing`` (:mod:`hwnorm.timing`) to place registers for
   a design's target clock — ``timing.cuts`` / ``adder_tree_cuts`` on its chains of operations,
   ``memory_ranks`` after memory reads — counts them in its cycle model (``depth``) and builds
   them with ``hwnorm.hdl.common.Retime``. A block that ignores it keeps its own pipeline.
5. Tests: ``tests/test_layers.py`` shows a kind defined in a test file alone going through the
   golden model, Verilog, co-simulation on both simulators and every estimate. Until
   ``hwnorm estimate --calibrate`` has synthesized blocks of the new kind, its resources are
   costed with the generic (all-kinds) fit and say so.

Nothing else changes: IR JSON, design files (``kind = "<kind>"``, ``layer``, the folding keys),
generate, verify, estimate, report, flow, sweep and config all find the kind here.
"""

from __future__ import annotations

from hwnorm.layers.base import Layer

__all__ = ["Layer", "register", "unregister", "kind", "names", "layer_from_dict", "folding_keys"]

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
    from hwnorm.hdl.names import check_identifier  # names reach Verilog, files, reports and terminals
    check_identifier(d["name"], f"{where}: name")
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


# The built-in kinds register themselves on import.
from hwnorm.layers import thresholding, mvu, qbn, window, maxpool  # noqa: E402,F401
