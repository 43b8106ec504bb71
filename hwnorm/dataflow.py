"""A network as a streaming dataflow of blocks (FINN-style: one block per layer, streams between
them) — the plan the hardware top is built from, and its composed cycle and resource model::

    pixels[PE₀] ─► thresholding ─► [lane converters] ─► [FIFO] ─► mvu ─► … ─► mvu ─► qbn ─► argmax ─► class
                                                        (layers that replay their input)    (or raw scores)

Each layer's folding comes from a ``folding`` mapping ``{layer name: {key: value}}`` (the keys
its kind takes; a missing layer gets its kind's :meth:`~hwnorm.layers.Layer.auto_fold`). Lane
converters appear where a producer's output lanes differ from the consumer's input lanes; a FIFO
sits in front of every block that asks for one (``input_fifo_depth``), so its producer can run
ahead while it is busy, and in front of any layer whose refusals a slow producer could not make
up (:func:`fed_layers`), so the hardware keeps the composed model's clocks.

The composed cycle model: ``latency`` is the number of clocks from an image's first input beat to
its result on an idle pipeline, ``initiation_interval`` the clocks per image at full rate (the
slowest stage). Nothing here needs Amaranth: :meth:`NetworkBlock.component` builds the top.

With a target clock (``timing``, :mod:`hwnorm.timing`) every block places its pipeline registers
for it, and a register slice follows every layer: that cuts the ready chain the stall-all stages
would otherwise form across the whole network. Only latency moves; the II stays.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from hwnorm.blocks import (FIFO_MIN_DEPTH, ArgMaxBlock, Block, FIFOBlock, ForkBlock, Inventory, RegisterSliceBlock, fifo_depth,
                           lane_converters, timeline)
from hwnorm.ir import INPUT
from hwnorm.timing import UNTIMED, Timing
from hwnorm import data
from hwnorm.folding import Fold, Folding
from hwnorm.hdl.names import unique_names
from hwnorm.layers.base import with_corners
from hwnorm.sim.jobs import network_job
from hwnorm.stt.store import stored_network

__all__ = ["OUTPUTS", "LEAST", "Stage", "NetworkBlock", "auto_folding", "check_folding", "fed_layers", "minimal_fifos",
           "plan_sources"]

OUTPUTS = ("argmax", "raw")


def auto_folding(net) -> Folding:
    """The default folding. Each layer's kind proposes one from its neighbours (see the kinds);
    the slowest of those sets the pace, in clocks per image, and every layer then takes the
    cheapest of its foldings that keeps it (FINN's folding by target cycles): hardware a layer
    would only spend waiting is not built. A network whose proposals are balanced keeps them."""
    proposed, lanes = {}, {INPUT: None}
    layers, by_name = net.layers, {layer.name: layer for layer in net.layers}
    for layer, sources in zip(layers, net.inputs):  # (a graph: the first stream's producer, the first reader)
        readers = net.consumers(layer.name)
        proposed[layer.name] = Fold(layer.auto_fold(lanes[sources[0]], by_name[readers[0]] if readers else None))
        lanes[layer.name] = layer.out_lanes_at(proposed[layer.name])
    pace = max(layer.clocks_per_image(proposed[layer.name]) for layer in layers)
    fold = {}
    for layer in layers:
        mine = proposed[layer.name]
        cheaper = Fold(next((f for f in layer.foldings() if layer.clocks_per_image(f) <= pace), mine))
        fold[layer.name] = cheaper if cheaper.lanes < mine.lanes else mine
    return Folding(fold)


def check_folding(net, folding: Mapping | None) -> Folding:
    """The complete folding of ``net``: ``folding`` (its form checked by :meth:`Folding.parse`, its
    values by each layer's kind) set over :func:`auto_folding`."""
    folding = folding or {}
    names = [layer.name for layer in net.layers]
    for name in folding:
        if name not in names:
            raise ValueError(f"folding names layer {name!r}, which is not in the network; layers: {', '.join(names)}")
    full = dict(auto_folding(net))
    for layer in net.layers:
        given = folding.get(layer.name)
        if given is None:
            continue
        merged = full[layer.name].merged(layer.parse_fold(given))
        layer.block(merged)  # the kind validates the values (divisibility …)
        full[layer.name] = merged
    return Folding(full)


@dataclass(frozen=True)
class Stage:
    name: str       # the Verilog submodule name (sanitized from the layer name)
    block: Block
    vectors: int    # vectors per image through this stage
    # per input stream of the block, the stream it reads: (stage index, output port), or
    # (None, 0) for the network input; empty for a chain's stages (each reads the one before)
    sources: tuple = ()

    @property
    def cycles(self) -> int:
        """Clocks per image at full rate (``vectors`` counts the units the block's model counts)."""
        return self.block.initiation_interval * self.vectors


class NetworkBlock(Block):
    """The folded network as one block (module docstring)."""

    kind = "network"

    def __init__(self, net, folding: dict | None = None, output: str = "argmax", timing: Timing = UNTIMED,
                 store=None, fifo_depths: Mapping | str | None = None, size_fifos: bool = True, progress=None):
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; allowed: {', '.join(OUTPUTS)}")
        self.output, self.name = output, net.name
        self.folding = check_folding(net, folding)
        self.timing = timing
        # ``store`` (hwnorm.stt.store.WeightStore): the weight ROMs hold MLC STT-RAM cells, faults
        # and all; ``net`` becomes the network those memories make (the golden model to match)
        self.store, self.memories = store, {}
        if store is not None:

            net, self.memories = stored_network(net, self.folding, store)
        self.net = net
        # ``size_fifos=False``: a graph's FIFOs stay at their kinds' own depths and no fed layer
        # gets one, a lower bound on the sized plan's memory that costs no cycle-model run (a
        # folding search rules out with it)
        self.fed: dict = {}  # layer name → the depth of the FIFO fed_layers() put in front of it
        self._build(size_fifos)
        if size_fifos:
            fed = fed_layers(self)
            if fed:  # built again with the FIFOs, then each at its least depth
                self.fed = fed
                self._build(size_fifos)
                names = {self._stage_name(layer): layer for layer in fed}
                least = minimal_fifos(self, only=list(names), progress=progress)
                # never below the depth a layer that replays its input needs in front
                depths = {n: max(small, self.layer_blocks[names[n]].input_fifo_depth)
                          for n, (_, small) in least.items() if n in names}
                self.fed = {names[n]: depth for n, depth in depths.items()
                            if depth > self.layer_blocks[names[n]].input_fifo_depth}  # the FIFOs it changed
                self.stages = _with_depths(self.stages, depths)
        # fifo_depths: {FIFO stage name: depth} chosen elsewhere, or LEAST — each FIFO at the least
        # depth that keeps every output beat on its clock (minimal_fifos; ``least_fifos`` keeps
        # its answer: {name: (never-full depth, least depth)})
        self.least_fifos = self.least_fifos_seconds = None
        if fifo_depths == LEAST:
            t0 = time.perf_counter()
            self.least_fifos = minimal_fifos(self, progress=progress)
            self.least_fifos_seconds = time.perf_counter() - t0
            fifo_depths = {name: small for name, (never, small) in self.least_fifos.items() if small < never}
        elif isinstance(fifo_depths, str):
            raise ValueError(f"fifo_depths must be a table of FIFO depths or {LEAST!r}, got {fifo_depths!r}")
        if fifo_depths:
            self.stages = _with_depths(self.stages, fifo_depths)

    def _build(self, size_fifos: bool) -> None:
        self.stages = self._stages() if self.net.is_chain else _graph_stages(self, size_fifos)
        first, last = self.stages[0], self.stages[-1]
        self.in_type, self.in_lanes = first.block.in_type, first.block.in_lanes
        self.out_type, self.out_lanes = last.block.out_type, last.block.out_lanes
        self.in_beats = first.block.in_beats * first.vectors
        self.out_beats = last.block.out_beats * last.vectors

    def _stage_name(self, layer: str) -> str:
        """The FIFO stage in front of layer ``layer`` (its block's only input)."""
        block = self.layer_blocks[layer]
        k = next(k for k, s in enumerate(self.stages) if s.block is block)
        return self.stages[k - 1].name

    def _stages(self) -> list[Stage]:
        stages: list[Stage] = []
        self.layer_blocks = {}  # layer name → its block (the estimates read these, never build their own)
        names = unique_names([layer.name for layer in self.net.layers])
        lanes = element = None
        for name, layer in zip(names, self.net.layers):
            block = layer.block(self.folding[layer.name])
            if layer.name in self.memories:
                block.stored = self.memories[layer.name]
            block = block.with_timing(self.timing)
            self.layer_blocks[layer.name] = block
            units = layer.units_per_image
            if stages:
                for k, conv in enumerate(lane_converters(element, lanes, block.in_lanes, layer.in_features)):
                    stages.append(Stage(f"{name}_lanes{k}", conv, layer.vectors))
                depth = max(block.input_fifo_depth, self.fed.get(layer.name, 0))
                if depth:
                    fifo = FIFOBlock(element, block.in_lanes, depth, block.in_beats)
                    stages.append(Stage(f"{name}_fifo", fifo, units))
            stages.append(Stage(name, block, units))
            stages += self._slice(name, block, units)
            lanes, element = block.out_lanes, block.out_type
        if self.output == "argmax":
            last = self.net.layers[-1]
            argmax = ArgMaxBlock(element, lanes, last.out_features).with_timing(self.timing)
            stages.append(Stage("argmax", argmax, last.vectors))
        return stages

    def _slice(self, name: str, block: Block, units: int) -> list[Stage]:
        """A register slice after a layer when the design has a target clock: the stall-all
        stages chain their ready signals combinationally, and a network-long chain (with the
        fan-out of each stage's enable) would set the clock. Slices cut it after every layer."""
        if not self.timing.on:
            return []
        return [Stage(f"{name}_slice", RegisterSliceBlock(block.out_type, block.out_lanes, block.out_beats), units)]

    # ---- cycle model
    def schedule(self, arrivals: list[int]) -> list[int]:
        if self.net.is_chain:
            for stage in self.stages:
                arrivals = stage.block.schedule(arrivals)
            return arrivals
        return timeline(self.stages, arrivals)[0][(len(self.stages) - 1, 0)]

    @property
    def initiation_interval(self) -> int:
        return max(stage.cycles for stage in self.stages)

    @property
    def latency(self) -> int:
        return self.schedule([0] * self.in_beats)[-1]

    # ---- resource model: the sum of the stages' (the top itself is wiring)
    def inventory(self) -> Inventory:
        total = self.stages[0].block.inventory()
        for stage in self.stages[1:]:
            total = total + stage.block.inventory()
        return total

    def parts(self) -> list[Block]:
        return [stage.block for stage in self.stages]

    def component(self):
        from hwnorm.hdl.top import NetworkTop  # Amaranth: loaded when hardware is built
        return NetworkTop(self)

    def job(self, n: int, seed: int, images: str = "all") -> dict:
        """``n`` images: the vendored MNIST test images (of the set ``images``, see
        :data:`hwnorm.data.TEST_IMAGE_SETS`) for a 784-input network, else seeded random inputs of
        the first layer's range (corners first)."""
        if not data.takes_mnist(self.net):
            x = with_corners(np.random.default_rng(seed), *self.net.in_range, n, self.net.in_features)
            return network_job(self, x, seed)
        pixels, _ = data.mnist_test()
        chosen = data.mnist_ids(images)
        ids = chosen[np.arange(n) % len(chosen)]
        return network_job(self, pixels[ids].reshape(n, -1).astype(np.int64), seed, image_ids=ids)


# ---------------------------------------------------------------- graphs
#
# A graph's plan: layers in topological order; each input stream of a layer comes from its
# producer's output through lane converters and a FIFO where the stream may have to wait — on a
# fork's branch (the fork waits for its slowest reader), at each input of a join (an add takes
# both inputs together: the early one waits for the late one), and where the consumer's kind
# asks for one (an MVU replaying its input)::
#
#     … ─► conv ─► [slice] ─► fork ─┬─► [FIFO] ─► window ─► mvu ─► … ─► [FIFO] ─► add.i0 ─► …
#                                   └─► (lanes) ─────────────────────► [FIFO] ─► add.i1
#
# Each FIFO's depth is the least that never fills under the composed cycle model
# (:func:`hwnorm.blocks.fifo_depth` of the beats offered to it and the clocks its consumer takes
# them): no producer is held up, so the model — computed with every output always taken — stays
# exact, and the skip branch holds what the main branch delays.

SIZING_IMAGES = 3  # images the FIFO sizing runs the cycle model over (the first fills the pipeline)


def _graph_stages(top: "NetworkBlock", size_fifos: bool = True) -> list[Stage]:
    """The stages of a graph network (the notes above), FIFOs sized (or at their kinds' depths)."""
    net, folding, timing = top.net, top.folding, top.timing
    names = dict(zip([layer.name for layer in net.layers], unique_names([layer.name for layer in net.layers])))
    blocks = {}
    for layer in net.layers:
        block = layer.block(folding[layer.name]).with_timing(timing)
        if layer.name in top.memories:
            block.stored = top.memories[layer.name]
        blocks[layer.name] = block
    top.layer_blocks = blocks
    stages: list[Stage] = []
    ends: dict = {}      # producer (layer name, or INPUT) → its free stream ends (stage, port)
    forked: set = set()  # producers whose stream is forked: each branch gets a FIFO
    fifos: list = []     # (stage index, the kind's own depth) of the FIFOs to size

    def append(stage: Stage) -> tuple:
        stages.append(stage)
        return (len(stages) - 1, 0)

    def fan_out(key: str, end: tuple, block, vectors: int, label: str) -> None:
        n = len(net.consumers(key)) + (key == net.layers[-1].name)
        if n > 1:
            k = append(Stage(f"{label}_fork", ForkBlock(block.out_type, block.out_lanes, block.out_beats, n), vectors,
                             (end,)))[0]
            ends[key] = [(k, p) for p in range(n)]
            forked.add(key)
        else:
            ends[key] = [end]

    first = net.layers[0]
    fan_out(INPUT, (None, 0), _InputStream(blocks[first.name]), first.units_per_image, "input")
    for layer, sources in zip(net.layers, net.inputs):
        block, name, units = blocks[layer.name], names[layer.name], layer.units_per_image
        ports = []
        for p, (src, port) in enumerate(zip(sources, layer.in_ports())):
            end = ends[src].pop(0)
            given = _InputStream(blocks[first.name]) if src == INPUT else blocks[src]
            element = given.out_type
            tag = f"{name}_in{p}" if block.in_ports > 1 else name
            for k, conv in enumerate(lane_converters(element, given.out_lanes, block.in_lanes, port.in_features)):
                end = append(Stage(f"{tag}_lanes{k}", conv, layer.vectors, (end,)))
            fed = top.fed.get(layer.name, 0) if block.in_ports == 1 else 0
            if src in forked or block.input_fifo_depth or block.in_ports > 1 or fed:
                beats, depth = block.in_beats, max(block.input_fifo_depth, fed)
                end = append(Stage(f"{tag}_fifo", FIFOBlock(element, block.in_lanes, max(FIFO_MIN_DEPTH, depth),
                                                            beats), units, (end,)))
                fifos.append((end[0], depth))
            ports.append(end)
        end = append(Stage(name, block, units, tuple(ports)))
        if timing.on:
            end = append(Stage(f"{name}_slice", RegisterSliceBlock(block.out_type, block.out_lanes, block.out_beats),
                               units, (end,)))
        fan_out(layer.name, end, block, units, name)
    last = net.layers[-1]
    end = ends[last.name].pop(0)
    if top.output == "argmax":
        block = blocks[last.name]
        argmax = ArgMaxBlock(block.out_type, block.out_lanes, last.out_features).with_timing(timing)
        append(Stage("argmax", argmax, last.vectors, (end,)))
    elif end[0] != len(stages) - 1:  # the raw output is the last stage's own stream
        raise ValueError(f"{net.name}: the output layer's stream is read by other layers too; take the argmax output")
    return _sized(stages, fifos) if size_fifos else stages


class _InputStream:
    """The network input as a producer: the first layer's input type and lanes."""

    def __init__(self, block):
        self.out_type, self.out_lanes, self.out_beats = block.in_type, block.in_lanes, block.in_beats


def _sized(stages: list[Stage], fifos: list) -> list[Stage]:
    """``stages`` with each FIFO as deep as :func:`fifo_depth` says its beats need under the cycle
    model (at least the depth its consumer's kind asks for).

    The model is run on images offered back to back. Where a FIFO's need still grows from one
    image to the next — its producer, ahead of the network's slowest stage, outruns its reader in
    the model, where in the hardware the full FIFO would hold the producer back — the images are
    offered at the network's pace instead (one per initiation interval), the steady state the
    hardware settles into."""
    if not fifos:
        return stages
    first = stages[0]
    in_beats = first.block.in_beats * first.vectors
    needs = _fifo_needs(stages, fifos, [range(n * in_beats) for n in (SIZING_IMAGES, SIZING_IMAGES + 1)])
    if any(a != b for a, b in zip(*needs)):
        pace = max(stage.cycles for stage in stages)
        paced = [[i * pace + j for i in range(n) for j in range(in_beats)] for n in (SIZING_IMAGES, SIZING_IMAGES + 1)]
        needs = _fifo_needs(stages, fifos, paced)
    sized = list(stages)
    for (k, _), depth in zip(fifos, map(max, *needs)):
        b = stages[k].block
        sized[k] = replace(stages[k], block=FIFOBlock(b.in_type, b.in_lanes, depth, b.in_beats))
    return sized


def _fifo_needs(stages: list[Stage], fifos: list, runs: list) -> list[list[int]]:
    """Per run of input arrivals, each FIFO's least never-full depth (at least its kind's)."""
    readers = {src: (k, p) for k, stage in enumerate(stages) for p, src in enumerate(stage.sources)}
    needs = []
    for arrivals in runs:
        arrivals = list(arrivals)
        outs, taken = timeline(stages, arrivals)
        row = []
        for k, kind_depth in fifos:
            src, port = stages[k].sources[0]
            offers = arrivals if src is None else outs[(src, port)]
            row.append(max(kind_depth, fifo_depth(offers, taken[readers[(k, 0)]])))
        needs.append(row)
    return needs


# ---------------------------------------------------------------- FIFOs that keep the composed clocks
def fed_layers(top: "NetworkBlock", images: int = SIZING_IMAGES) -> dict:
    """The layers that need a FIFO in front for the hardware to keep the composed cycle model's
    clocks, each with a depth that does (never full under that model): ``{layer name: depth}``,
    empty when the clock-by-clock model (:mod:`hwnorm.clocked`) already gives the composed clocks.

    The composed model lets a block take its input beats later than they are offered (a line
    buffer's writer waits for room) as if they waited in a queue, and takes the backlog at one beat
    per clock once it may. In the hardware they wait in the producer, and a producer slower than one
    beat per clock (a lane converter gathering three narrow beats, a folded layer) cannot deliver
    a backlog: the consumer falls behind (FINN's CIFAR CNV at its fastest ECP5-85F folding: the
    first window's writer, 8,196 clocks per image where the composed model says 8,128). A FIFO
    between them is that queue. Layers with a FIFO in front already (``input_fifo_depth``, joins,
    forks) are left as they are; the caller shrinks each new FIFO to its least depth
    (:func:`minimal_fifos`)."""
    from hwnorm.clocked import Deadlock, Late  # the clocked models: only this analysis needs them
    from hwnorm.clocked_compiled import CompiledPlan
    stages = plan_sources(top.stages)
    arrivals = list(range(images * top.in_beats))
    outs, taken = timeline(stages, arrivals)
    by_block = {id(block): name for name, block in top.layer_blocks.items()}
    late = {}
    for k, stage in enumerate(stages):
        name = by_block.get(id(stage.block))
        if name is None or len(stage.sources) != 1:
            continue
        src, port = stage.sources[0]
        if src is not None and stages[src].block.kind == "fifo":
            # a FIFO in front already (the layer replays its input): deep enough for the backlog
            # of a producer that cannot hold one (a stall-all window of whole windows, bursting a
            # row's windows at one per clock into a slower MVU)?
            (fsrc, fport), fifo = stages[src].sources[0], stages[src].block
            if fsrc is not None:
                need = fifo_depth(outs[(fsrc, fport)], taken[(k, 0)])
                if need > fifo.depth:
                    late[name] = need
            continue
        if src is None or stage.block.input_fifo_depth:
            continue
        offers = outs[(src, port)]
        if taken[(k, 0)] != offers:
            late[name] = fifo_depth(offers, taken[(k, 0)])
    if not late:
        return {}
    composed = outs[(len(stages) - 1, 0)]
    limit = 2 * max(stage.cycles for stage in stages) + 100
    try:
        if CompiledPlan(stages).run(arrivals, len(composed), limit, held_to=composed) == composed:
            return {}
    except (Deadlock, Late):
        pass
    return late


# ---------------------------------------------------------------- least FIFO depths
LEAST = "least"  # fifo_depths = "least": each FIFO at its least depth (minimal_fifos)
MINIMAL_IMAGES = 3  # images the clocked model runs per candidate depth (the first fills the pipeline)
MINIMAL_WORTH = FIFO_MIN_DEPTH + 1  # a FIFO shallower than this is at the least depth a FIFO can have already


def plan_sources(stages: list[Stage]) -> list[Stage]:
    """``stages`` with every stage's sources spelled out (a chain's stages read the one before)."""
    if not stages or stages[0].sources:
        return stages
    return [replace(stage, sources=((k - 1 if k else None, 0),)) for k, stage in enumerate(stages)]


def minimal_fifos(top: "NetworkBlock", images: int = MINIMAL_IMAGES, progress=None, only=None) -> dict:
    """The least depth of each FIFO of ``top`` at which the network's output beats leave on the
    same clocks as with every FIFO never full (the composed cycle model's), under back-pressure
    (:mod:`hwnorm.clocked`: a full FIFO holds its producer back, and the stall spreads upstream).
    A producer with slack waits on a much shallower FIFO than the one that never fills.

    FIFOs are shrunk one at a time, deepest first, each by bisection with the others at their
    depths so far (so the result is checked as a whole); ``only`` names the FIFOs to shrink (default:
    every one at least :data:`MINIMAL_WORTH` deep). Returns ``{FIFO stage name: (never-full depth,
    least depth)}``; ``progress(text)`` hears of each search."""
    from hwnorm.clocked import Deadlock, Late  # the clocked models: only this analysis needs them
    from hwnorm.clocked_compiled import CompiledPlan
    stages = plan_sources(top.stages)
    arrivals = list(range(images * top.in_beats))
    expected = images * top.out_beats
    limit = 2 * max(stage.cycles for stage in stages) + 100
    full = {s.name: s.block.depth for s in stages if s.block.kind == "fifo"}
    plan = CompiledPlan(stages)  # built once; each candidate only changes FIFO depths
    key = (plan.digest(), images, None if only is None else tuple(sorted(only)))
    if key in _LEAST_FOUND:  # the same plan searched before (a folding search, then its flow)
        return dict(_LEAST_FOUND[key])
    reference = plan.run(arrivals, expected, limit)

    def keeps_time(depths: dict) -> bool:  # a too-shallow FIFO shows at its first late beat: stop there
        try:
            plan.run(arrivals, expected, limit, held_to=reference, depths=depths)
            return True
        except (Deadlock, Late):
            return False

    depths = dict(full)
    for name in sorted(full, key=lambda n: -full[n] * _fifo_width(stages, n)):
        lo, hi = FIFO_MIN_DEPTH, full[name]  # hi keeps the reference; find the least that does
        if (hi < MINIMAL_WORTH) if only is None else name not in only:
            continue
        if progress:
            progress(f"least depth of {name} (never full at {hi})")
        # gallop up from the shallowest (too-shallow runs stop early, so they are the cheap ones),
        # then bisect the last doubling
        probe = lo
        while probe < hi and not keeps_time({**depths, name: probe}):
            lo, probe = probe + 1, 2 * probe
        hi = min(hi, probe)
        while lo < hi:
            mid = (lo + hi) // 2
            if keeps_time({**depths, name: mid}):
                hi = mid
            else:
                lo = mid + 1
        depths[name] = hi
    found = {name: (full[name], depths[name]) for name in full}
    if len(_LEAST_FOUND) >= 64:
        _LEAST_FOUND.pop(next(iter(_LEAST_FOUND)))
    _LEAST_FOUND[key] = found
    return dict(found)


_LEAST_FOUND: dict = {}  # plan digest → minimal_fifos' answer (the oldest dropped past 64)


def _fifo_width(stages: list[Stage], name: str) -> int:
    return next(s.block.width for s in stages if s.name == name)


def _with_depths(stages: list[Stage], depths: Mapping) -> list[Stage]:
    fifos = {s.name for s in stages if s.block.kind == "fifo"}
    for name, depth in depths.items():
        if name not in fifos:
            raise ValueError(f"fifo_depths names {name!r}, which is not a FIFO of the plan; FIFOs: "
                             f"{', '.join(sorted(fifos)) or 'none'}")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < FIFO_MIN_DEPTH:
            raise ValueError(f"fifo_depths: {name} must be a whole number ≥ {FIFO_MIN_DEPTH}, got {depth!r}")
    return [replace(s, block=FIFOBlock(s.block.in_type, s.block.in_lanes, depths[s.name], s.block.in_beats))
            if s.name in depths else s for s in stages]
