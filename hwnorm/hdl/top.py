"""``NetworkTop``: a streaming dataflow top generated from the IR (one block per layer, FINN-style).

::

    pixels[PE₀] ─► Thresholding ─► [lane converter] ─► [FIFO] ─► MVU ─► … ─► MVU ─► BNRequant ─► ArgMax ─► class
                   (InputThreshold)                   (MVUs that replay their input buffer)        (or raw scores)

Each layer's folding comes from a ``folding`` mapping ``{layer name: {"pe": …, "simd": …}}``
(``simd`` for MVUs only; a missing layer gets :func:`auto_folding`'s choice). Lane converters
appear where a producer's PE differs from the consumer's SIMD; a FIFO of one input vector sits in
front of every MVU that replays its buffer, so its producer can run ahead while it is busy.

The top's cycle model composes its stages' models: ``latency`` is the number of clocks from a
vector's first input beat to its result on an idle pipeline, ``initiation_interval`` the clocks
per vector at full rate (the slowest stage).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwnorm.hdl.common import unused_ok

from hwnorm.hdl.bn import BNRequant
from hwnorm.hdl.mvu import MVU, Thresholding, check_fold, divisors
from hwnorm.hdl.names import unique_names
from hwnorm.hdl.stream import ArgMax, StreamFIFO, width_converter
from hwnorm.ir import MVTU, InputThreshold, Network, QuantBN

__all__ = ["NetworkTop", "auto_folding", "check_folding", "OUTPUTS"]

OUTPUTS = ("argmax", "raw")
_KEYS = {InputThreshold: ("pe",), MVTU: ("pe", "simd"), QuantBN: ("pe",)}


def _largest_divisor(n: int, limit: int) -> int:
    return max(d for d in divisors(n) if d <= limit)


def auto_folding(net: Network, max_pe: int = 16, max_simd: int = 64) -> dict:
    """A default folding: each MVU with the largest PE ≤ ``max_pe`` and SIMD ≤ ``max_simd`` that
    divide its matrix; the input thresholds as wide as the first MVU's SIMD (no converter); the
    final BN as wide as the PE before it."""
    fold, prev_pe = {}, 1
    for k, layer in enumerate(net.layers):
        if isinstance(layer, MVTU):
            fold[layer.name] = {"pe": _largest_divisor(layer.out_features, max_pe),
                                "simd": _largest_divisor(layer.in_features, max_simd)}
        elif isinstance(layer, InputThreshold):
            nxt = net.layers[k + 1] if k + 1 < len(net.layers) else None
            want = _largest_divisor(nxt.in_features, max_simd) if isinstance(nxt, MVTU) else max_simd
            fold[layer.name] = {"pe": _largest_divisor(layer.in_features, want)}
        else:
            fold[layer.name] = {"pe": _largest_divisor(layer.in_features, prev_pe)}
        prev_pe = fold[layer.name]["pe"]
    return fold


def check_folding(net: Network, folding: dict | None) -> dict:
    """The complete folding of ``net``: ``folding`` (validated) over :func:`auto_folding`."""
    folding = dict(folding or {})
    names = [layer.name for layer in net.layers]
    for name in folding:
        if name not in names:
            raise ValueError(f"folding names layer {name!r}, which is not in the network; layers: {', '.join(names)}")
    full = auto_folding(net)
    for layer in net.layers:
        given = folding.get(layer.name)
        if given is None:
            continue
        if not isinstance(given, dict):
            raise ValueError(f"folding of layer {layer.name!r} must be a table like {{pe = 4, simd = 8}}")
        allowed = _KEYS[type(layer)]
        for key, value in given.items():
            if key not in allowed:
                raise ValueError(f"folding of layer {layer.name!r}: unknown key {key!r}; allowed: {', '.join(allowed)}")
        merged = {**full[layer.name], **given}
        rows = layer.out_features
        check_fold(layer.name, "PE", merged["pe"], rows, "output rows" if isinstance(layer, MVTU) else "channels")
        if "simd" in merged:
            check_fold(layer.name, "SIMD", merged["simd"], layer.in_features, "input columns")
        full[layer.name] = merged
    return full


@dataclass(frozen=True)
class Stage:
    name: str
    component: wiring.Component
    cycles: int  # clocks per vector at full rate


class NetworkTop(wiring.Component):
    """The whole network as one stream component (module docstring)."""

    def __init__(self, net: Network, folding: dict | None = None, output: str = "argmax"):
        if output not in OUTPUTS:
            unused_ok(self)
            raise ValueError(f"unknown output {output!r}; allowed: {', '.join(OUTPUTS)}")
        try:
            self.folding = check_folding(net, folding)
        except ValueError:
            unused_ok(self)
            raise
        self.net, self.output = net, output
        built: list = []
        try:
            self.stages = self._build_stages(built)
        except ValueError:
            for component in [self, *built]:
                unused_ok(component)
            raise
        first, last = self.stages[0].component, self.stages[-1].component
        super().__init__({"i": In(stream.Signature(first.i.payload.shape())),
                          "o": Out(stream.Signature(last.o.payload.shape()))})

    def _build_stages(self, stages: list) -> list[Stage]:
        names = unique_names([layer.name for layer in self.net.layers])
        lanes = element = None
        for name, layer in zip(names, self.net.layers):
            f = self.folding[layer.name]
            if isinstance(layer, InputThreshold):
                comp, in_lanes = Thresholding(layer, f["pe"]), f["pe"]
                cycles = layer.in_features // f["pe"]
            elif isinstance(layer, MVTU):
                comp, in_lanes = MVU(layer, f["pe"], f["simd"]), f["simd"]
                cycles = comp.initiation_interval
            else:
                comp, in_lanes = BNRequant(layer.spec, f["pe"]), f["pe"]
                cycles = layer.in_features // f["pe"]
            if stages:
                for k, conv in enumerate(width_converter(element, lanes, in_lanes)):
                    beats = max(layer.in_features // lanes, layer.in_features // in_lanes)
                    stages.append(Stage(f"{name}_lanes{k}", conv, beats))
                if isinstance(comp, MVU) and comp.nf > 1:
                    fifo = StreamFIFO(data.ArrayLayout(element, in_lanes), depth=max(3, comp.sf + 1))
                    stages.append(Stage(f"{name}_fifo", fifo, comp.sf))
            stages.append(Stage(name, comp, cycles))
            lanes, element = f["pe"], comp.out_shape
        if self.output == "argmax":
            channels = self.net.out_features
            stages.append(Stage("argmax", ArgMax(element, lanes, channels), channels // lanes))
        return stages

    # ---- cycle model
    def schedule(self, arrivals: list[int]) -> list[int]:
        for stage in self.stages:
            arrivals = stage.component.schedule(arrivals)
        return arrivals

    @property
    def in_beats(self) -> int:
        return self.net.in_features // self.folding[self.net.layers[0].name]["pe"]

    @property
    def out_beats(self) -> int:
        return 1 if self.output == "argmax" else self.net.out_features // self.folding[self.net.layers[-1].name]["pe"]

    @property
    def latency(self) -> int:
        return self.schedule([0] * self.in_beats)[-1]

    @property
    def initiation_interval(self) -> int:
        return max(stage.cycles for stage in self.stages)

    # ---- resource model: the sum of the stages' (the top itself is wiring)
    def inventory(self):
        total = self.stages[0].component.inventory()
        for stage in self.stages[1:]:
            total = total + stage.component.inventory()
        return total

    def elaborate(self, platform):
        m = Module()
        for stage in self.stages:
            m.submodules[stage.name] = stage.component
        _join(m, self.i, self.stages[0].component.i)
        for a, b in zip(self.stages, self.stages[1:]):
            _join(m, a.component.o, b.component.i)
        _join(m, self.stages[-1].component.o, self.o)
        return m


def _join(m: Module, src, dst) -> None:
    """Connect two streams whose payloads have the same lane count (elements may differ in width:
    each lane is assigned, which sign- or zero-extends it like the value it carries)."""
    m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready)]
    s_shape = src.payload.shape()
    if isinstance(s_shape, data.ArrayLayout) and s_shape != dst.payload.shape():
        m.d.comb += [dst.payload[k].eq(src.payload[k]) for k in range(s_shape.length)]
    else:
        m.d.comb += dst.payload.eq(src.payload)
