"""Hardware blocks as the estimators see them: computed from a spec and a folding, never from
Amaranth (FINN-style: each hardware op carries its own cycle and resource model).

A :class:`Block` states

* its stream ports: element type (:mod:`hwnorm.datatypes`) and lanes per beat, in and out;
* its cycle model: beats per vector in and out, clocks per vector at full rate
  (``initiation_interval``), and ``schedule(arrivals)`` — the clock each output beat is valid
  for input beats offered from the clocks in ``arrivals``, with the output always ready;
  ``accepts(arrivals)`` — the clock each input beat is taken (later than offered while the block
  is busy: what a FIFO in front must hold); ``latency`` follows from them (first input beat →
  last output beat of one vector, idle pipeline). A block with several input streams (an
  ``add``) or output streams (a fork) answers per port: ``schedule_ports`` / ``accepts_ports``;
* its resource inventory (:class:`Inventory`), which ``hwnorm.estimate.resources`` costs per
  FPGA target under the block's ``kind``;
* ``component()``: the Amaranth component, built from the block — the only step that needs
  Amaranth, taken only to write Verilog or to simulate.

Layer kinds (:mod:`hwnorm.layers`) make blocks from their specs; this module holds the base and
the stream plumbing a network top adds between layers (lane converters, FIFOs, argmax)::

    payload of a stream: ArrayLayout(element, lanes); lane k of beat g is element g·lanes + k
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from hwnorm.datatypes import IntType, counter_bits
from hwnorm.timing import UNTIMED, Timing

__all__ = ["MemoryUse", "Inventory", "CalibrationPoint", "CALIBRATION_CLOCK_MHZ", "Block", "BeatPipeline", "GatherBlock", "SplitBlock", "FIFOBlock",
           "ArgMaxBlock", "RegisterSliceBlock", "ForkBlock", "PLUMBING", "FIFO_MIN_DEPTH", "fifo_depth", "one_per_clock", "last_beats_out", "timeline", "lane_converters", "MAX_SIGNAL_BITS", "check_signal_bits", "TABLE_PRODUCT_BITS",
           "table_product", "tree_register_bits", "halved"]

MAX_SIGNAL_BITS = (1 << 16) - 1  # Amaranth's limit on the width of one value (a ROM row, a payload)
# A product whose operands have at most this many bits together is a lookup table (each product bit
# one LUT6, or a few LUT4s, on every target); wider ones are `*`, which synthesis maps to DSPs by the
# target's rule — ECP5's maps even 2 × 2 products to DSPs, and a 2-bit MVU needs hundreds of lanes.
TABLE_PRODUCT_BITS = 6
# The resource model's calibration clock: every calibration block is pipelined for it, as the
# default designs are (hwnorm.estimate.calibration).
CALIBRATION_CLOCK_MHZ = 150


def table_product(a_bits: int, b_bits: int) -> bool:
    """Whether an ``a_bits × b_bits`` product is built as a lookup table, not a multiplier."""
    return a_bits + b_bits <= TABLE_PRODUCT_BITS


def check_signal_bits(name: str, what: str, bits: int, fold: str) -> None:
    """A signal of ``bits`` must fit one Amaranth value; otherwise a clear error saying which
    folding key to lower."""
    if bits > MAX_SIGNAL_BITS:
        raise ValueError(f"{name}: its {what} would be {bits} bits wide, over the {MAX_SIGNAL_BITS} bits one signal "
                         f"can have: fold with a smaller {fold}")


# Features shared by many kinds' fits (see Block.cost_features)
FF_FEATURES = ("blocks", "register", "rom_width", "rom_shallow_width", "ram_bits", "ram_width")
CARRY_FEATURES = ("blocks", "adder", "compare")
REGISTER_FF = ("blocks", "register")


@dataclass(frozen=True)
class MemoryUse:
    """One memory of a block: ``rom`` (constant, from the spec) or ``ram`` (written)."""
    kind: str
    width: int
    depth: int


@dataclass(frozen=True)
class CalibrationPoint:
    """One design the resource model is calibrated on (:mod:`hwnorm.estimate.calibration`), owned
    by the kind it calibrates: its name, its design fields (a layer of a vendored model at a
    folding other than the default designs', a codec at a block size, …), and why it is only
    measured and shown, not fitted (``held_out``; empty: fitted)."""
    name: str
    params: dict
    held_out: str = ""


@dataclass(frozen=True)
class Inventory:
    """What a block is made of, counted from its spec and folding.

    Counts are in bits: ``popcount`` XNOR/popcount inputs, ``adder`` adder and accumulator output
    bits, ``compare`` comparator operand bits, ``mux`` 2:1 multiplexer bits, ``logic`` other
    bit-level gates, ``register`` flip-flops."""

    blocks: int = 1                                     # blocks summed into this inventory
    popcount: int = 0
    adder: int = 0
    compare: int = 0
    mux: int = 0
    logic: int = 0
    register: int = 0
    memories: tuple = field(default_factory=tuple)      # MemoryUse per memory (depth ≥ 2)
    multipliers: tuple = field(default_factory=tuple)   # (a bits, b bits) per multiplier (DSP or LUTs: the target's rule)
    table_products: tuple = field(default_factory=tuple)  # (a, b) per narrow product read from a table (LUTs)
    luts: int = 0  # LUTs counted by construction, not fitted (a stored weight row's decoder tables)

    def __add__(self, other: "Inventory") -> "Inventory":
        counts = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        return Inventory(**counts)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["memories"] = [vars(mem) for mem in self.memories]
        out["multipliers"] = [list(m) for m in self.multipliers]
        out["table_products"] = [list(m) for m in self.table_products]
        return out


class Block:
    """Base of every hardware block (module docstring). Subclasses set the port attributes and
    the beat counts, and define ``schedule``, ``inventory`` and ``component``."""

    kind: str = ""          # the resource-cost key and the stage kind in reports
    # Which resource-model features (hwnorm.estimate.resources.FEATURES) this block's costs are
    # fitted on, per cost key (usually just ``kind``) and resource class: few per kind, each a
    # quantity the block is really built from (a flip-flop is never spent on a comparator). A kind
    # without them is costed with the generic fit, and its estimates say so.
    cost_features: dict = {}
    name: str = ""
    in_type = out_type = None
    in_lanes = out_lanes = 1
    in_beats = out_beats = 1  # per vector
    input_fifo_depth = 0      # a FIFO this deep must sit in front (a block that replays its input)
    timing: Timing = UNTIMED  # the target clock its pipeline registers are placed for (hwnorm.timing)
    net = None                # the network a network block runs (None: a block of its own)
    stages: tuple = ()        # a composed block's stages, in stream order (empty: one stage)

    def parts(self) -> list["Block"]:
        """The blocks this one is built from, each priced by its own costs (itself, unless composed)."""
        return [self]

    @classmethod
    def calibration_blocks(cls) -> list[tuple[str, "Block"]]:
        """(name, block) pairs the costs of a block with no design kind of its own (the stream
        plumbing) are fitted on; a design kind lists CalibrationPoints instead."""
        return []

    def with_timing(self, timing: Timing) -> "Block":
        """This block, pipelined for ``timing`` (set before its cycle model or component is used)."""
        self.timing = timing
        return self

    @property
    def cost_key(self) -> str:
        """Which fitted resource costs price this block: its kind's, unless the kind has datapaths
        built from different logic (see the MVU)."""
        return self.kind

    @property
    def initiation_interval(self) -> int:
        """Clocks per vector at full rate."""
        return max(self.in_beats, self.out_beats)

    @property
    def latency(self) -> int:
        """Clocks from a vector's first input beat to its last output beat, idle pipeline."""
        return self.schedule(list(range(self.in_beats)))[-1]

    def schedule(self, arrivals: list[int]) -> list[int]:
        raise NotImplementedError

    def accepts(self, arrivals: list[int]) -> list[int]:
        """The clock each input beat offered from ``arrivals`` is taken, the output always ready:
        one beat per clock for a block that takes a beat whenever it advances (most)."""
        return one_per_clock(arrivals)

    # ---- several streams: a block reads ``in_ports`` streams and writes ``out_ports``
    in_ports = 1
    out_ports = 1

    def schedule_ports(self, arrivals: list[list[int]]) -> list[list[int]]:
        """Per output stream, the clocks its beats are valid, for the input beats offered per
        input stream from ``arrivals``."""
        return [self.schedule(arrivals[0])]

    def accepts_ports(self, arrivals: list[list[int]]) -> list[list[int]]:
        """Per input stream, the clock each beat is taken."""
        return [self.accepts(arrivals[0])]

    def inventory(self) -> Inventory:
        raise NotImplementedError

    def component(self):
        raise NotImplementedError

    def job(self, n: int, seed: int) -> dict:
        """A co-simulation job (:mod:`hwnorm.sim.jobs`) of ``n`` vectors of this block's own
        stimulus, corners first, drawn from ``seed``."""
        raise NotImplementedError(f"{self.kind} blocks have no stimulus of their own")


class BeatPipeline(Block):
    """A block that takes one beat per clock through ``depth`` register stages; a vector is
    ``in_beats`` beats in and as many out."""

    depth = 1

    def schedule(self, arrivals: list[int]) -> list[int]:
        return one_per_clock(arrivals, self.depth)


def one_per_clock(arrivals: list[int], delay: int = 0) -> list[int]:
    """Beats taken one per clock, each no earlier than offered (``t_j = max(t_{j-1} + 1, a_j)``),
    plus ``delay``. ``t_j − j`` is the running maximum of ``a_j − j`` (and of 0, the start): one
    vectorized pass, where a slow folding offers millions of beats."""
    a = np.asarray(arrivals, dtype=np.int64)
    j = np.arange(a.size, dtype=np.int64)
    return (j + np.maximum(np.maximum.accumulate(a - j), 0) + delay).tolist() if a.size else []


def last_beats_out(arrivals: list[int], per_unit: int, last: int, depth: int) -> list[int]:
    """Beats taken one per clock; each of the ``last`` beats of every unit of ``per_unit`` makes an
    output ``depth`` clocks after it is taken (a unit's results leave as its last beats come)."""
    first_out = per_unit - last
    return [t + depth for k, t in enumerate(one_per_clock(arrivals)) if k % per_unit >= first_out]


# ------------------------------------------------------------------ stream plumbing
def _every_nth_plus_one(arrivals: list[int], n: int) -> list[int]:
    """One beat accepted per clock; an output one clock after every ``n``-th beat."""
    return one_per_clock(arrivals, 1)[n - 1::n]


class _LaneConverter(Block):
    def __init__(self, element, in_lanes: int, out_lanes: int, elements: int | None = None):
        self.in_type = self.out_type = element
        self.in_lanes, self.out_lanes = in_lanes, out_lanes
        elements = max(in_lanes, out_lanes) if elements is None else elements  # per vector
        self.in_beats, self.out_beats = elements // in_lanes, elements // out_lanes


class GatherBlock(_LaneConverter):
    """``factor`` beats of ``lanes`` elements → one beat of ``factor · lanes`` (the first beat in
    the low lanes). Output valid one clock after the last beat's handshake."""

    kind = "gather"
    cost_features = {"gather": {"lut": ("blocks", "logic", "register"), "ff": REGISTER_FF, "carry": CARRY_FEATURES}}

    def __init__(self, element, lanes: int, factor: int, elements: int | None = None):
        self.factor = factor
        super().__init__(element, lanes, lanes * factor, elements)

    @classmethod
    def calibration_blocks(cls):
        return [(f"cal_gather_l{lanes}_f{factor}", cls(IntType(1), lanes, factor))
                for lanes, factor in ((8, 2), (16, 4), (4, 8))]

    def schedule(self, arrivals: list[int]) -> list[int]:
        return _every_nth_plus_one(arrivals, self.factor)

    def inventory(self) -> Inventory:
        n = self.in_lanes * self.in_type.width
        return Inventory(adder=counter_bits(self.factor), logic=self.factor,
                         register=n * (2 * self.factor - 1) + counter_bits(self.factor) + 1)

    def component(self):
        from hwnorm.hdl.stream import Gather  # Amaranth: loaded when hardware is built
        return Gather(self)


class SplitBlock(_LaneConverter):
    """One beat of ``factor · lanes`` elements → ``factor`` beats of ``lanes`` (low lanes first).
    The first piece is valid one clock after the handshake; the pieces follow back to back."""

    kind = "split"
    cost_features = {"split": {"lut": ("blocks", "mux"), "ff": REGISTER_FF, "carry": CARRY_FEATURES}}

    def __init__(self, element, lanes: int, factor: int, elements: int | None = None):
        self.factor = factor
        super().__init__(element, lanes * factor, lanes, elements)

    @classmethod
    def calibration_blocks(cls):
        return [(f"cal_split_l{lanes}_f{factor}", cls(IntType(1), lanes, factor))
                for lanes, factor in ((8, 2), (16, 4), (4, 8))]

    def schedule(self, arrivals: list[int]) -> list[int]:
        return [t + 1 + k for t in self.accepts(arrivals) for k in range(self.factor)]

    def accepts(self, arrivals: list[int]) -> list[int]:
        out, accept = [], None
        for a in arrivals:  # a beat is taken as the last piece of the one before leaves
            accept = a if accept is None else max(a, accept + self.factor)
            out.append(accept)
        return out

    def inventory(self) -> Inventory:
        n = self.out_lanes * self.out_type.width
        return Inventory(adder=2 * counter_bits(self.factor + 1), mux=n * (self.factor - 1),
                         register=n * self.factor + 2 * counter_bits(self.factor + 1))

    def component(self):
        from hwnorm.hdl.stream import Split  # Amaranth: loaded when hardware is built
        return Split(self)


def lane_converters(element, n_in: int, n_out: int, elements: int) -> list[Block]:
    """The converters from ``n_in`` to ``n_out`` lanes for vectors of ``elements``: none, a
    gather, a split, or a split to ``gcd(n_in, n_out)`` lanes followed by a gather."""
    if n_in == n_out:
        return []
    if n_out % n_in == 0:
        return [GatherBlock(element, n_in, n_out // n_in, elements)]
    if n_in % n_out == 0:
        return [SplitBlock(element, n_out, n_in // n_out, elements)]
    g = math.gcd(n_in, n_out)
    return [SplitBlock(element, g, n_in // g, elements), GatherBlock(element, g, n_out // g, elements)]


FIFO_MIN_DEPTH = 4  # a stream FIFO's two output registers and a memory of at least two beats


class FIFOBlock(Block):
    """A synchronous FIFO (block-RAM friendly) of ``lanes`` elements per entry, so a producer can
    run ahead of a consumer that reads its input only part of the time (an MVU replaying its
    buffer). ``beats`` per vector pass through it."""

    kind = "fifo"
    cost_features = {"fifo": {"lut": ("blocks", "adder", "ram_bits", "ram_width"), "ff": FF_FEATURES,
                              "carry": CARRY_FEATURES}}
    pipeline = 3  # written at t, through the memory's read register and the output register: offered at t + 3

    @classmethod
    def calibration_blocks(cls):
        return [(f"cal_fifo_w{width}_d{depth}", cls(IntType(1), width, depth))
                for width, depth in ((8, 4), (49, 17), (32, 5), (160, 9), (16, 33))]

    def __init__(self, element, lanes: int, depth: int, beats: int = 1):
        if depth < FIFO_MIN_DEPTH:  # two beats in registers, the rest in memory: 1 would be a 0-bit address
            raise ValueError(f"a stream FIFO must be at least {FIFO_MIN_DEPTH} deep, got {depth}")
        self.in_type = self.out_type = element
        self.in_lanes = self.out_lanes = lanes
        self.depth, self.in_beats, self.out_beats = depth, beats, beats

    @property
    def width(self) -> int:
        return self.in_lanes * self.in_type.width

    def schedule(self, arrivals: list[int]) -> list[int]:
        return one_per_clock([a + self.pipeline for a in arrivals])

    def accepts(self, arrivals: list[int]) -> list[int]:
        """As offered: a FIFO deep enough (its depth from :func:`fifo_depth`) is never full."""
        return list(arrivals)

    def inventory(self) -> Inventory:
        depth = self.depth - 2  # memory + read register (the memory's: ram_width) + output register
        return Inventory(adder=3 * counter_bits(depth + 1), register=self.width + 3 * counter_bits(depth + 1) + 2,
                         memories=(MemoryUse("ram", self.width, depth),))

    def component(self):
        from hwnorm.hdl.stream import StreamFIFO  # Amaranth: loaded when hardware is built
        return StreamFIFO(self)


class RegisterSliceBlock(BeatPipeline):
    """A full-rate register slice (skid buffer) on a stream: valid, payload *and ready* come out of
    flip-flops, so it cuts the combinational ready chain of the stall-all stages on either side.
    One clock of latency; two payload registers."""

    kind = "slice"
    cost_features = {"slice": {"lut": ("blocks", "mux"), "ff": REGISTER_FF, "carry": CARRY_FEATURES}}
    depth = 1

    @classmethod
    def calibration_blocks(cls):
        return [(f"cal_slice_w{width}_l{lanes}", cls(IntType(width), lanes, 4))
                for width, lanes in ((1, 16), (2, 8), (16, 10), (8, 2))]

    def __init__(self, element, lanes: int, beats: int):
        self.in_type = self.out_type = element
        self.in_lanes = self.out_lanes = lanes
        self.in_beats = self.out_beats = beats

    def accepts(self, arrivals: list[int]) -> list[int]:
        return list(arrivals)  # the skid takes a beat while the output waits

    def inventory(self) -> Inventory:
        width = self.in_lanes * self.in_type.width
        return Inventory(mux=width, register=2 * width + 2, logic=4)

    def component(self):
        from hwnorm.hdl.stream import RegisterSlice  # Amaranth: loaded when hardware is built
        return RegisterSlice(self)


class ArgMaxBlock(Block):
    """Index of the largest of ``channels`` values arriving ``lanes`` per beat (the first index on
    ties, like numpy and ONNX ArgMax). One index per vector, valid ``1 + ranks`` clocks after its
    last beat: the compare tree over a beat's lanes is registered at ``tree_cuts`` (timing)."""

    kind = "argmax"
    cost_features = {"argmax": {"lut": ("blocks", "compare", "mux"), "ff": REGISTER_FF, "carry": CARRY_FEATURES}}

    @classmethod
    def calibration_blocks(cls):
        return [(f"cal_argmax{'' if bits == 16 else bits}_l{lanes}",
                 cls(IntType(bits, signed=True), lanes, channels).with_timing(Timing(CALIBRATION_CLOCK_MHZ)))
                for lanes in (1, 2, 5) for bits, channels in ((16, 10), (8, 20))]

    def __init__(self, element, lanes: int, channels: int):
        self.in_type, self.in_lanes = element, lanes
        self.channels, self.groups = channels, channels // lanes
        self.out_type = IntType.from_range(0, channels - 1)
        self.in_beats, self.out_beats = self.groups, 1

    @property
    def tree_cuts(self) -> tuple[int, ...]:
        """Levels of the lane compare tree followed by a register rank; the running compare with
        the best so far (one more compare and mux) closes the last stage."""
        m, w = self.timing.model, self.in_type.width
        level = m.compare(w) + m.luts(1)
        return self.timing.cuts([level] * (self.in_lanes - 1).bit_length(), tail=level)

    def schedule(self, arrivals: list[int]) -> list[int]:
        ranks = len(self.tree_cuts)
        return [t + ranks for t in _every_nth_plus_one(arrivals, self.groups)]

    def inventory(self) -> Inventory:
        width, index = self.in_type.width, self.out_type.width
        piped = sum(halved(self.in_lanes, cut + 1) for cut in self.tree_cuts) * (width + index + 1)
        return Inventory(adder=counter_bits(self.groups), compare=self.in_lanes * width,
                         mux=self.in_lanes * (width + index),
                         register=width + 2 * index + counter_bits(self.groups) + 1 + piped)

    def component(self):
        from hwnorm.hdl.stream import ArgMax  # Amaranth: loaded when hardware is built
        return ArgMax(self)


def tree_register_bits(terms: int, term_bits: int, cuts) -> int:
    """Flip-flops of the register ranks at ``cuts`` of a balanced adder tree over ``terms``
    operands of ``term_bits`` bits (level ``l`` leaves ``halved(terms, l + 1)`` sums of
    ``term_bits + l + 1`` bits)."""
    return sum(halved(terms, cut + 1) * (term_bits + cut + 1) for cut in cuts)


def halved(n: int, levels: int) -> int:
    """Operands left after ``levels`` levels of a pairwise tree over ``n`` (an odd one passes on)."""
    for _ in range(levels):
        n = (n + 1) // 2
    return n


class ForkBlock(Block):
    """One stream to ``n`` consumers (FINN's DuplicateStreams): each output takes the beat on its
    own, the input is done when all have — no register, no latency (an eager fork)::

        i ──┬──► o0      o_k.valid = i.valid & ~taken_k
            ├──► o1      i.ready   = ∧_k (taken_k | o_k.ready)
            └──► …       taken_k: o_k took the beat, its producer has not yet let go of it
    """

    kind = "fork"
    cost_features = {"fork": {"lut": ("blocks", "logic"), "ff": REGISTER_FF, "carry": ()}}

    @classmethod
    def calibration_blocks(cls):
        return [(f"cal_fork_w{width}_l{lanes}_n{n}", cls(IntType(width), lanes, 4, n))
                for width, lanes, n in ((4, 16, 2), (1, 32, 2), (8, 4, 3))]

    def __init__(self, element, lanes: int, beats: int, n: int = 2):
        self.in_type = self.out_type = element
        self.in_lanes = self.out_lanes = lanes
        self.in_beats = self.out_beats = beats
        self.out_ports = n

    def schedule(self, arrivals: list[int]) -> list[int]:
        return list(arrivals)

    def schedule_ports(self, arrivals: list[list[int]]) -> list[list[int]]:
        return [list(arrivals[0]) for _ in range(self.out_ports)]

    def accepts(self, arrivals: list[int]) -> list[int]:
        return list(arrivals)

    def inventory(self) -> Inventory:
        return Inventory(logic=3 * self.out_ports, register=self.out_ports)

    def component(self):
        from hwnorm.hdl.stream import Fork  # Amaranth: loaded when hardware is built
        return Fork(self)


def fifo_depth(offers: list[int], taken: list[int]) -> int:
    """The least depth of a :class:`FIFOBlock` that is never full for beats offered at ``offers``
    and taken by its consumer at ``taken`` (the consumer's :meth:`Block.accepts` of the FIFO's
    output beats). The FIFO (:class:`hwnorm.hdl.stream.StreamFIFO`) is a memory of ``depth − 2``
    beats (``i.ready`` while its level is below that) read into a read register and on into an
    output register; each register loads when the next is free or being read. Beat ``k`` reaches
    the output register at ``s_k = max(o_k + 2, c_{k−1})`` and leaves the memory at
    ``r_k = max(o_k + 1, s_{k−1})``; when beat ``k`` is offered, the memory holds
    ``k − #{j : r_j < o_k}`` beats, which must stay below ``depth − 2``."""
    o, c = np.asarray(offers, np.int64), np.asarray(taken, np.int64)
    if not o.size:
        return FIFO_MIN_DEPTH
    s = np.maximum(o + 2, np.concatenate(([o[0] + 2], c[:-1])))
    r = np.maximum(o + 1, np.concatenate(([o[0] + 1], s[:-1])))
    moved = np.searchsorted(np.sort(r), o, side="left")  # #{j : r_j < o_k}
    held = np.arange(o.size) - moved
    return max(FIFO_MIN_DEPTH, int(held.max()) + 3)


def timeline(stages: list, arrivals: list[int]) -> tuple[dict, dict]:
    """The composed cycle model of a plan of stages (each with a ``block`` and ``sources``: per input
    stream, the (stage index, output port) it reads, or (None, 0) for the plan's input):
    ``(outs, taken)`` — per (stage, output port) the clocks its beats are valid, per (stage, input
    port) the clocks its beats are taken — for input beats offered from ``arrivals``."""
    outs, taken = {}, {}
    for k, stage in enumerate(stages):
        ins = [arrivals if src is None else outs[(src, port)] for src, port in stage.sources]
        for p, times in enumerate(stage.block.schedule_ports(ins)):
            outs[(k, p)] = times
        for p, times in enumerate(stage.block.accepts_ports(ins)):
            taken[(k, p)] = times
    return outs, taken


# The stream plumbing a network top adds between layers: calibrated as blocks (no design kind)
PLUMBING = (FIFOBlock, GatherBlock, SplitBlock, ArgMaxBlock, RegisterSliceBlock, ForkBlock)
