"""Small building blocks shared by the hwnorm components: an adder tree, constant ROMs, the
spec's rounding shift, the stall-all pipeline idiom, and the link from a component to the
:class:`hwnorm.blocks.Block` it is built from (which owns its cycle and resource model).

Every pipelined component here uses one *advance* signal: all pipeline registers (and the
synchronous read ports of their memories) move together when the output register is free or is
being read (``advance = ~o.valid | o.ready``). That gives one result per clock at full rate and
full valid/ready back-pressure with no skid buffers; the price is a combinational path from
``o.ready`` to ``i.ready``, as in FINN's simplest stream stages (a network top with a target
clock cuts it with register slices). The registers a target clock adds (:class:`Retime`, at the
cuts :mod:`hwnorm.timing` chooses) move with the same ``advance``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value
from amaranth.lib import data, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwnorm.fixed import Rounding

__all__ = ["at_least", "tree_sum", "pairwise_tree", "Retime", "rom", "round_shift", "fit_wrap", "advance_signal", "group_counter", "FromBlock",
           "unused_ok", "lane_format", "lane_array"]


def lane_array(element, lanes: int) -> data.ArrayLayout:
    """The payload layout of a stream of ``lanes`` elements of a :mod:`hwnorm.datatypes` type."""
    return data.ArrayLayout(element.shape(), lanes)


def stream_ports(block) -> dict:
    """A one-in, one-out component's ports: streams of the block's lanes of its element types."""
    return {"i": In(stream.Signature(lane_array(block.in_type, block.in_lanes))),
            "o": Out(stream.Signature(lane_array(block.out_type, block.out_lanes)))}


class FromBlock:
    """A component built from a :class:`hwnorm.blocks.Block`: its cycle model and inventory are
    the block's (the estimators read the block; the component only answers for convenience)."""

    block = None
    #: the consumer of ``o`` is a register slice (set by the network top): see :func:`advance_signal`
    registered_consumer = False
    #: ``i.ready`` is a flip-flop that does not wait for ``i.valid`` (a register slice's skid-free flag)
    ready_from_register = False

    @property
    def in_beats(self) -> int:
        return self.block.in_beats

    @property
    def out_beats(self) -> int:
        return self.block.out_beats

    @property
    def initiation_interval(self) -> int:
        return self.block.initiation_interval

    @property
    def latency(self) -> int:
        return self.block.latency

    def schedule(self, arrivals: list[int]) -> list[int]:
        return self.block.schedule(arrivals)

    def inventory(self):
        return self.block.inventory()


def lane_format(shape) -> tuple[int, int, bool]:
    """(lanes, element width, element signed) of a stream payload shape: the lanes of an
    ArrayLayout, else one lane holding the whole payload (a struct counts as unsigned)."""
    if isinstance(shape, data.ArrayLayout):
        lanes, shape = shape.length, shape.elem_shape
    else:
        lanes = 1
    if isinstance(shape, data.Layout):
        return lanes, shape.size, False
    shape = Shape.cast(shape)
    return lanes, shape.width, shape.signed


class Retime:
    """The pipeline registers a component adds for its target clock (:mod:`hwnorm.timing`): each
    moves with the component's stall-all ``advance``, like its other stages.

    Data registers have no reset: what they hold matters only when the valid bit beside them is
    set, and a reset reaching every flip-flop of a wide datapath is a net of thousands of loads
    that sets the clock (15 ns of routing on the pipelined TFC). Valid bits (:meth:`valid`) keep it."""

    def __init__(self, m: Module, advance):
        self.m, self.advance = m, advance

    def register(self, value, name: str, reset: bool = False):
        # a layout stays a layout (lanes keep their indexing)
        reg = Signal(value.shape(), name=name, reset_less=not reset)
        with self.m.If(self.advance):
            self.m.d.sync += reg.eq(value)
        return reg

    def delay(self, value, clocks: int, name: str, reset: bool = False):
        """``value`` ``clocks`` stages later."""
        for k in range(clocks):
            value = self.register(value, f"{name}_d{k}", reset)
        return value

    def valid(self, value, clocks: int, name: str):
        """A valid bit ``clocks`` stages later (its registers are reset)."""
        return self.delay(value, clocks, name, reset=True)


def pairwise_tree(items: list, combine, cuts=(), retime: Retime | None = None, name: str = "tree"):
    """Balanced tree of ``combine(a, b)`` over ``items`` (tuples of values): ⌈log2 n⌉ levels
    instead of a chain of n − 1; level ``l``'s results are registered when ``l`` is in ``cuts``."""
    level = 0
    while len(items) > 1:
        pairs = [combine(items[k], items[k + 1]) for k in range(0, len(items) - 1, 2)]
        items = pairs + ([items[-1]] if len(items) % 2 else [])
        if level in cuts:
            items = [tuple(retime.register(v, f"{name}_l{level}_{k}_{j}") for j, v in enumerate(item))
                     for k, item in enumerate(items)]
        level += 1
    return items[0]


def tree_sum(terms: list, cuts=(), retime: Retime | None = None, name: str = "sum"):
    """Balanced adder tree, registered after the levels in ``cuts`` (see :func:`pairwise_tree`)."""
    if not terms:
        return Const(0, 1)
    return pairwise_tree([(t,) for t in terms], lambda a, b: (a[0] + b[0],), cuts, retime, name)[0]


def rom(m: Module, name: str, shape, rows: list, advance, addr):
    """A constant memory with one synchronous read port (``en = advance``); returns its data.

    A single row becomes a constant signal instead (no address, no memory cell)."""
    if len(rows) == 1:
        const = Signal(shape, name=name)
        m.d.comb += const.eq(shape.const(rows[0]) if hasattr(shape, "const") else rows[0])
        return const
    mem = Memory(shape=shape, depth=len(rows), init=rows)
    m.submodules[name] = mem
    port = mem.read_port(domain="sync")
    m.d.comb += [port.addr.eq(addr), port.en.eq(advance)]
    return port.data


def banked_rom(m: Module, name: str, shape, rows: list, bank_depth: int, advance, addr, fan_in: int,
               cuts=(), far: int = 0):
    """A constant memory split by depth into banks of ``bank_depth`` rows (a power of two), each
    read into a register of its own (and ``far`` more, in the fabric: the route out of the block
    RAM row), then picked by a tree of muxes of ``fan_in`` (a power of two) inputs per level, with
    a register after each level in ``cuts``; returns the tree's output, ``2 + far + len(cuts)``
    clocks after ``addr`` (:func:`rom` takes one). ::

        addr ─┬─ [bank_depth−1:0] ─▶ bank 0 ─▶ reg ─┐
              │                  ─▶ bank 1 ─▶ reg ─┼─▶ mux ─▶ (reg) ─▶ … mux ─▶ (reg) ─▶ data
              │                  ─▶  …     ─▶ reg ─┘    ▲                ▲
              └─ [top bits] ─▶ reg ─▶ reg ─────────────┴── (reg) ────────┘

    Level ``j`` is picked by bits ``j·b … j·b + b − 1`` of the bank number (``fan_in = 2^b``), which
    travels beside the data through the same registers. The registers have no reset and one
    enable (``advance``), so the netlist pass can move each bank's into its block RAM's output
    register."""
    assert bank_depth & (bank_depth - 1) == 0 and len(rows) > bank_depth, (bank_depth, len(rows))
    assert fan_in >= 2 and fan_in & (fan_in - 1) == 0, fan_in
    shift, b = bank_depth.bit_length() - 1, fan_in.bit_length() - 1
    banks = [rows[k:k + bank_depth] for k in range(0, len(rows), bank_depth)]
    read_bank = Signal(range(len(banks)), name=f"{name}_bank_read")
    bank = Signal(range(len(banks)), name=f"{name}_bank_out")
    with m.If(advance):
        m.d.sync += [read_bank.eq(addr[shift:]), bank.eq(read_bank)]
    items = [Signal(shape, name=f"{name}_bank{k}_q", reset_less=True) for k in range(len(banks))]
    # read outside ``If(advance)``: inside it, a stall drops the read port's enable to its reset
    # value (1) and its address to 0, and the bank would read row 0
    read = [rom(m, f"{name}_bank{k}", shape, rows_k, advance, addr[:shift]) for k, rows_k in enumerate(banks)]
    with m.If(advance):
        m.d.sync += [h.eq(r) for h, r in zip(items, read)]
    for k in range(far):
        held = [Signal(shape, name=f"{name}_bank{j}_far{k}", reset_less=True) for j in range(len(items))]
        later = Signal.like(bank, name=f"{name}_bank_far{k}")
        with m.If(advance):
            m.d.sync += [h.eq(v) for h, v in zip(held, items)] + [later.eq(bank)]
        items, bank = held, later
    level = 0
    while len(items) > 1:
        pick = bank[level * b:(level + 1) * b]
        items = [_mux_tree(items[k:k + fan_in], pick) for k in range(0, len(items), fan_in)]
        if level in cuts:
            held = [Signal(shape, name=f"{name}_mux{level}_{k}", reset_less=True) for k in range(len(items))]
            later = Signal.like(bank, name=f"{name}_bank_mux{level}")
            with m.If(advance):
                m.d.sync += [h.eq(v) for h, v in zip(held, items)] + [later.eq(bank)]
            items, bank = held, later
        level += 1
    data = Signal(shape, name=name)
    m.d.comb += data.eq(items[0])
    return data


def _mux_tree(items: list, pick):
    """``items[pick]`` as a tree of two-way muxes, one select bit per level (bit 0 first): what
    Yosys maps onto a LUT and the slice's wide-function muxes (ECP5 PFUMX / L6MUX21), where a
    chain of ``pick == k`` compares took three routed LUT levels for eight inputs. A continuous
    assignment (see hdl.window on Icarus and cases)."""
    bit = 0
    while len(items) > 1:
        items = [Mux(pick[bit], items[k + 1], items[k]) if k + 1 < len(items) else items[k]
                 for k in range(0, len(items), 2)]
        bit += 1
    return items[0]


def at_least(a, b):
    """``a ≥ b`` as an unsigned compare: both operands widened to one width ``w`` and their top
    bits flipped (``x + 2^(w−1)`` keeps the order of ``w``-bit two's complement values). Its result
    is the carry chain's carry out, with none of the sign logic after the chain that a signed
    compare needs — one compare then fits a 150 MHz stage on ECP5."""
    a, b = Value.cast(a), Value.cast(b)
    if not (a.shape().signed or b.shape().signed):
        return a >= b
    w = max(len(x) + (not x.shape().signed) for x in (a, b))

    def biased(x):
        fill = x[-1] if x.shape().signed else Const(0, 1)
        wide = Cat(x, fill.replicate(w - len(x)))
        return Cat(wide[:w - 1], ~wide[w - 1])
    return biased(a) >= biased(b)


def round_shift(v, s, rounding: Rounding):
    """``v / 2^s`` rounded by ``rounding``: the hardware twin of ``hwnorm.fixed._round_shift_half``.

    ``v`` is signed; ``s`` is a Python int (the shared shift: plain wiring) or an unsigned signal
    (a per-channel shift from the ROM). With ``rem = v mod 2^s`` and
    ``half = 2^(s−1)``::

        floor      q
        half_up    q + (rem ≥ half)
        half_away  q + (rem > half  or  rem = half and v ≥ 0)
        half_even  q + (rem > half  or  rem = half and q odd)

    For ``s = 0`` nothing is added (``rem = 0``).
    """
    v = v.as_signed()
    if isinstance(s, int):
        if s == 0:
            return v
        q = v >> s
        top = v[s - 1]                                   # rem ≥ half
        low = v[:s - 1].any() if s > 1 else Const(0, 1)  # rem has bits below half
    else:
        q = v >> s
        nonzero = s != 0
        s_minus_1 = (s - 1)[:len(s)]
        top = nonzero & (v >> s_minus_1)[0]
        below_half = ((Const(1, 1) << s_minus_1) - 1)[:len(v)]
        low = nonzero & (v.as_unsigned() & below_half).any()
    if rounding == Rounding.FLOOR:
        return q
    if rounding == Rounding.HALF_UP:
        inc = top
    elif rounding == Rounding.HALF_AWAY:
        inc = top & (low | ~v[-1])
    else:  # half_even
        inc = top & (low | q[0])
    return q + inc


def fit_wrap(r, shape: Shape):
    """Keep the low ``shape.width`` bits of the signed value ``r`` (two's-complement wrap)."""
    r = r.as_signed()
    if len(r) < shape.width:
        return r  # sign extension on assignment is already the wrapped value
    return r[:shape.width].as_signed() if shape.signed else r[:shape.width]


def wrapped_increment(counter, n: int):
    """``(counter + 1) mod n`` for a counter that stays in ``0 … n − 1``, without ``%``: Yosys
    builds a divider for a ``%`` by any constant, even a power of two (an MVU's fold counters
    were the 24 MHz path of a whole network on ECP5). A power of two drops the carry; any other
    count compares with ``n − 1``."""
    if n == 1:
        return 0
    if n & (n - 1) == 0:
        return (counter + 1)[:(n - 1).bit_length()]
    return Mux(counter == n - 1, 0, counter + 1)


def group_counter(m: Module, i, groups: int) -> Signal:
    """Which beat of its vector the input beat is (0 … groups − 1): it addresses the per-group
    constants of an elementwise block, and moves on every input handshake."""
    group = Signal(range(max(groups, 2)))
    with m.If(i.valid & i.ready):
        m.d.sync += group.eq(wrapped_increment(group, groups))
    return group


def advance_signal(m: Module, o, registered_consumer: bool = False) -> Signal:
    """The stall-all pipeline enable for output stream ``o`` (see the module docstring).

    ``~o.valid | o.ready`` in general. When the consumer of ``o`` is a register slice (a
    component's ``registered_consumer``, set by the network top), ``o.ready`` is that slice's
    skid-free flip-flop and never waits for ``valid``: the enable is then ``o.ready`` alone, so the
    enable of every register and memory port of the component is driven by a flip-flop, not a LUT
    of two far-apart ones (the path that set the clock of a large MVU). It only gives up filling an empty output register while the slice
    is full, which the slice's two beats cover: the rate and every full-rate clock are the same."""
    advance = Signal()
    m.d.comb += advance.eq(o.ready if registered_consumer else ~o.valid | o.ready)
    return advance


def unused_ok(component):
    """Mark a component that is built only for its metadata (ports, cycle model) or refused during
    construction, so Amaranth does not warn that it was never elaborated."""
    component._MustUse__silence = True
    for part in getattr(component, "components", list)():  # a network top's parts
        unused_ok(part)
    return component
