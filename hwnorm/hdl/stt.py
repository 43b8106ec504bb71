"""STT-RAM buffer codecs in hardware: ``STTEncoder`` / ``STTDecoder`` built from a ``CodecSpec``.

Both are one pipeline stage (registered output, full valid/ready back-pressure): latency 1,
initiation interval 1. Payload layouts, for ``W = block_words`` and ``C = cells_per_block``::

    encoder in   words[16·W]          word j at bits [16j, 16j+16)  (FP16 bit patterns)
    encoder out  cells[2·C]           cell c at bits [2c, 2c+2): bit 2c = soft, bit 2c+1 = hard
    decoder in   cells[2·C]           as the encoder's output
    decoder out  words[16·W] status[2]  status 0 clean, 1 corrected, 2 detected

Supported codecs: ``none``, ``backup``, ``rearrange``, ``backup+rearrange`` (static objective);
Flip-N-Write and the write-aware variants need the buffer's old content (a read-before-write port)
and are golden-model only for now.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwnorm.hdl.common import BeatPipeline, Inventory, unused_ok

from hwnorm.stt.codecs import MAX_FINITE, STATE_COST_MAX, CodecSpec

HDL_CODECS = ("none", "backup", "rearrange", "backup+rearrange")


def _check(component, spec: CodecSpec) -> None:
    if spec.codec not in HDL_CODECS or spec.write_aware:
        unused_ok(component)  # refused at construction: not an unused design
        raise ValueError(f"codec {spec.label!r} has no hardware codec yet; available: {', '.join(HDL_CODECS)}")


def _cell_bits(spec: CodecSpec, word) -> list:
    """The 8 two-bit cells of one FP16 word per the spec's pairing."""
    return [Cat(word[soft], word[hard]) for hard, soft in spec.pairing]


def _lookup(table, index):
    """A 4-entry constant table indexed by a 2-bit cell state."""
    return Mux(index[1], Mux(index[0], table[3], table[2]), Mux(index[0], table[1], table[0]))


def _cost_width(spec: CodecSpec) -> int:
    """Width of a block's total state cost (one spare bit: the adders never overflow)."""
    return (spec.cells_per_block * max(spec.state_cost)).bit_length() + 1


def _register_stage(m: Module, i, o, result) -> None:
    """One pipeline stage between stream ``i`` and stream ``o`` (accepts when the output is free)."""
    m.d.comb += i.ready.eq(o.ready | ~o.valid)
    with m.If(i.ready):
        m.d.sync += [o.valid.eq(i.valid), o.payload.eq(result)]


class _CodecStage(BeatPipeline, wiring.Component):
    """One registered stage from stream ``i`` to stream ``o`` for one codec spec."""

    latency = 1

    def __init__(self, spec: CodecSpec, in_shape, out_shape):
        _check(self, spec)
        self.spec = spec
        super().__init__({"i": In(stream.Signature(in_shape)), "o": Out(stream.Signature(out_shape))})


class STTEncoder(_CodecStage):
    """FP16 words → MLC cell states of one codec block (see the module docstring for layouts)."""

    def __init__(self, spec: CodecSpec):
        super().__init__(spec, unsigned(16 * spec.block_words), unsigned(2 * spec.cells_per_block))

    def inventory(self) -> Inventory:
        spec = self.spec
        if not spec.is_block:  # a fixed bit permutation
            return Inventory(register=2 * spec.cells_per_block + 1)
        moved = sum(spec.transformable[k % 8] for k in range(8 * spec.block_words))
        width = _cost_width(spec)
        return Inventory(adder=4 * moved * width, compare=3 * width, mux=2 * width + 2,
                         logic=4 * moved * 2 + 2 * moved, register=2 * spec.cells_per_block + 1)

    def elaborate(self, platform):
        spec, m = self.spec, Module()
        cells = []
        for j in range(spec.block_words):
            word = Signal(16, name=f"word{j}")
            m.d.comb += word.eq(self.i.payload[16 * j:16 * j + 16])
            if spec.uses_backup:  # the sign's copy lives in bit 14 (free for every |x| < 2)
                word = Cat(word[:14], word[15], word[15])
            cells += _cell_bits(spec, word)
        if spec.is_block:
            transform = self._choose_transform(m, cells)
            out = [c ^ transform if spec.transformable[k % 8] else c for k, c in enumerate(cells)]
            out += [Cat(transform[0], transform[0]), Cat(transform[1], transform[1])]  # flags as 00 / 11
        else:
            out = cells
        _register_stage(m, self.i, self.o, Cat(*out))
        return m

    def _choose_transform(self, m: Module, cells: list):
        """The XOR transform t ∈ 0..3 with the lowest total state cost (the lowest t on ties) —
        the golden kernel's rule; the sign cells of backup+rearrange are the same for every t."""
        spec = self.spec
        cost_table = [Const(c, STATE_COST_MAX.bit_length()) for c in spec.state_cost]
        width = _cost_width(spec)
        totals = []
        for t in range(4):
            flag_cost = spec.state_cost[3 * (t & 1)] + spec.state_cost[3 * (t >> 1)]
            terms = [_lookup(cost_table, c ^ t) for k, c in enumerate(cells) if spec.transformable[k % 8]]
            total = Signal(width, name=f"cost_t{t}")
            m.d.comb += total.eq(sum(terms, Const(flag_cost, width)))
            totals.append(total)
        best01 = Mux(totals[1] < totals[0], 1, 0)
        cost01 = Mux(totals[1] < totals[0], totals[1], totals[0])
        best23 = Mux(totals[3] < totals[2], 3, 2)
        cost23 = Mux(totals[3] < totals[2], totals[3], totals[2])
        transform = Signal(2)
        m.d.comb += transform.eq(Mux(cost23 < cost01, best23, best01))
        return transform


class STTDecoder(_CodecStage):
    """MLC cell states of one codec block → FP16 words and a status (module docstring)."""

    def __init__(self, spec: CodecSpec):
        self.out_layout = data.StructLayout({"words": unsigned(16 * spec.block_words), "status": unsigned(2)})
        super().__init__(spec, unsigned(2 * spec.cells_per_block), self.out_layout)

    def inventory(self) -> Inventory:
        spec, words = self.spec, self.spec.block_words
        checks = (2 if spec.is_block else 0) + (words if spec.uses_backup else 0)  # repaired cells
        return Inventory(compare=5 * words, mux=16 * words, logic=2 * checks + (16 * words if spec.is_block else 0),
                         register=16 * words + 3)

    def elaborate(self, platform):
        spec, m = self.spec, Module()
        repair = [Const(0, 2), Const(spec.repair[0], 2), Const(spec.repair[1], 2), Const(3, 2)]
        cells = [self.i.payload[2 * c:2 * c + 2] for c in range(spec.cells_per_block)]
        mismatched = []  # cells stored as 00 / 11 that read back as 01 / 10 (repaired)
        transform = Const(0, 2)
        if spec.is_block:
            flags = cells[-2:]
            mismatched += [f[0] ^ f[1] for f in flags]
            transform = Cat(_lookup(repair, flags[0])[1], _lookup(repair, flags[1])[1])
        words = []
        for j in range(spec.block_words):
            states = []
            for c in range(8):
                s = cells[8 * j + c]
                if spec.uses_backup and c == spec.sign_cell:
                    mismatched.append(s[0] ^ s[1])
                    s = _lookup(repair, s)
                elif spec.is_block:
                    s = s ^ transform
                states.append(s)
            bits = [None] * 16
            for (hard, soft), s in zip(spec.pairing, states):
                bits[hard], bits[soft] = s[1], s[0]
            if spec.uses_backup:
                bits[14] = Const(0, 1)
            word = Signal(16, name=f"word{j}")
            m.d.comb += word.eq(Cat(*bits))
            # declared fallback: an exponent of all ones (reachable only through faults) → ±65504
            words.append(Mux(word[10:15].all(), Cat(Const(MAX_FINITE, 15), word[15]), word))
        status = Cat(Const(0, 1), Const(0, 1)) if not mismatched else Cat(Cat(*mismatched).any(), Const(0, 1))
        result = Signal(self.out_layout)
        m.d.comb += [result.words.eq(Cat(*words)), result.status.eq(status)]
        _register_stage(m, self.i, self.o, result)
        return m
