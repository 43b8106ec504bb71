"""STT-RAM buffer codecs in hardware: ``STTEncoder`` / ``STTDecoder``, built from the blocks of
:mod:`hwnorm.stt.blocks` (payload layouts, cycle model and inventory are described there).

Supported codecs: ``none``, ``backup``, ``rearrange``, ``backup+rearrange`` (static objective);
Flip-N-Write and the write-aware variants need the buffer's old content (a read-before-write port)
and are golden-model only for now.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwnorm.hdl.common import FromBlock, Retime, tree_sum
from hwnorm.stt.codecs import cost_type, CodecSpec, HAMMING_DATA_POS, HDL_CODECS, MAX_FINITE, STATE_COST_MAX, STATUS_BITS

__all__ = ["STTEncoder", "STTDecoder", "HDL_CODECS"]


def _cell_bits(spec: CodecSpec, word) -> list:
    """The 8 two-bit cells of one FP16 word per the spec's pairing."""
    return [Cat(word[soft], word[hard]) for hard, soft in spec.pairing]


def _lookup(table, index):
    """A 4-entry constant table indexed by a 2-bit cell state."""
    return Mux(index[1], Mux(index[0], table[3], table[2]), Mux(index[0], table[1], table[0]))


def _register_stage(m: Module, i, o, result) -> None:
    """One pipeline stage between stream ``i`` and stream ``o`` (accepts when the output is free)."""
    m.d.comb += i.ready.eq(o.ready | ~o.valid)
    with m.If(i.ready):
        m.d.sync += [o.valid.eq(i.valid), o.payload.eq(result)]


class _CodecStage(FromBlock, wiring.Component):
    """One registered stage from stream ``i`` to stream ``o`` for one codec block."""

    def __init__(self, block, out_shape=None):
        self.block, self.spec = block, block.spec
        super().__init__({"i": In(stream.Signature(block.in_type.shape())),
                          "o": Out(stream.Signature(out_shape or block.out_type.shape()))})


class STTEncoder(_CodecStage):
    """FP16 words → MLC cell states of one codec block (an ``STTEncoderBlock``)::

        cells ──► state-cost lookup ──► cost tree per transform t ──► compare t0:t1, t2:t3
              ──► compare the winners ──► cells XOR t ──► o       (registered at the block's cuts)
    """

    def elaborate(self, platform):
        spec, m = self.spec, Module()
        advance = Signal()
        m.d.comb += [advance.eq(self.o.ready | ~self.o.valid), self.i.ready.eq(advance)]
        retime = Retime(m, advance)
        cells = []
        for j in range(spec.block_words):
            word = Signal(16, name=f"word{j}")
            m.d.comb += word.eq(self.i.payload[16 * j:16 * j + 16])
            if spec.uses_backup:  # the sign's copy lives in bit 14 (free for every |x| < 2)
                word = Cat(word[:14], word[15], word[15])
            cells += _cell_bits(spec, word)
        ranks = len(self.block.cost_cuts)
        if spec.is_block:
            transform = self._choose_transform(m, cells, retime)
            cells = [retime.delay(c, ranks, f"cell{k}") for k, c in enumerate(cells)]
            out = [c ^ transform if spec.transformable[k % 8] else c for k, c in enumerate(cells)]
            out += [Cat(transform[0], transform[0]), Cat(transform[1], transform[1])]  # flags as 00 / 11
        else:
            out = cells
        valid = retime.valid(self.i.valid, ranks, "valid")
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(valid), self.o.payload.eq(Cat(*out))]
        return m

    def _choose_transform(self, m: Module, cells: list, retime: Retime):
        """The XOR transform t ∈ 0..3 with the lowest total state cost (the lowest t on ties) —
        the golden kernel's rule; the sign cells of backup+rearrange are the same for every t.
        The chain (lookup, tree levels, two compare levels) is registered at the block's cuts."""
        spec, cuts = self.spec, self.block.cost_cuts
        cost_table = [Const(c, STATE_COST_MAX.bit_length()) for c in spec.state_cost]
        width = cost_type(spec).width
        levels = self.block.cost_tree_levels

        def cut(index: int, values: list, name: str) -> list:
            return [retime.register(v, f"{name}{k}") for k, v in enumerate(values)] if index in cuts else values
        totals = []
        for t in range(4):
            flag_cost = spec.state_cost[3 * (t & 1)] + spec.state_cost[3 * (t >> 1)]
            terms = [_lookup(cost_table, c ^ t) for k, c in enumerate(cells) if spec.transformable[k % 8]]
            terms = cut(0, terms, f"cost_t{t}_") + [Const(flag_cost, width)]
            tree_cuts = tuple(i - 1 for i in cuts if 1 <= i <= levels)
            total = Signal(width, name=f"cost_t{t}")
            m.d.comb += total.eq(tree_sum(terms, tree_cuts, retime, f"cost_tree{t}"))
            totals.append(total)
        best01 = Mux(totals[1] < totals[0], 1, 0)
        cost01 = Mux(totals[1] < totals[0], totals[1], totals[0])
        best23 = Mux(totals[3] < totals[2], 3, 2)
        cost23 = Mux(totals[3] < totals[2], totals[3], totals[2])
        best01, cost01, best23, cost23 = cut(levels + 1, [best01, cost01, best23, cost23], "pair")
        transform = Signal(2)
        m.d.comb += transform.eq(Mux(cost23 < cost01, best23, best01))
        return cut(levels + 2, [transform], "transform")[0]


class STTDecoder(_CodecStage):
    """MLC cell states of one codec block → FP16 words and a status (an ``STTDecoderBlock``)."""

    def __init__(self, block):
        self.out_layout = data.StructLayout({"words": unsigned(16 * block.spec.block_words),
                                             "status": unsigned(STATUS_BITS)})
        super().__init__(block, self.out_layout)

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


def decode_cells(m: Module, cells, codec, row_bits: int, name: str = "decoded"):
    """A weight memory row decoded from its stored cells (:mod:`hwnorm.stt.intcodec`; cell ``c``
    at bits ``[2c, 2c + 2)`` of ``cells``): the hardware twin of ``WeightCodec.decode``.

    Per-cell codecs: cell ``c``, through its class's 4-entry state table, gives bits ``2c`` (soft)
    and ``2c + 1`` (hard) of the row; identity tables are plain wiring. Word codecs decode 16-bit
    words of the row (bit ``16k + i`` of the row is bit ``i`` of word ``k``).

    The row is one signal driven by one concatenation: a signal assembled from a part-select per
    cell makes an event simulator (Icarus) re-evaluate every reader once per part — 50× slower."""
    if codec.per_cell:
        n = -(-row_bits // 2)
        parts = []
        for c in range(n):
            table = codec.decode_map[c % codec.period]
            state = cells[2 * c:2 * c + 2]
            parts.append(state if tuple(table) == (0, 1, 2, 3) else _lookup([Const(v, 2) for v in table], state))
    else:
        parts = _decode_words(m, cells, codec.word_spec(), -(-row_bits // 16))
    out = Signal(len(Cat(*parts)), name=name)
    m.d.comb += out.eq(Cat(*parts))
    return out[:row_bits]


def _decode_words(m: Module, cells, spec: CodecSpec, words: int) -> list:
    """The 16-bit words of a row stored by a word codec (``rearrange``, ``fnw``, ``hamming``), raw:
    no FP16 fallback. A block's cells follow each other: ``cells_per_block`` per block."""
    repair = [Const(0, 2), Const(spec.repair[0], 2), Const(spec.repair[1], 2), Const(3, 2)]
    per = spec.cells_per_block
    out = []
    for b in range(spec.n_blocks(words)):
        block = [cells[2 * (b * per + k):2 * (b * per + k) + 2] for k in range(per)]
        if spec.codec == "hamming":
            out.append(_hamming_word(m, Cat(*block), f"hamming{b}"))
            continue
        if spec.is_block:   # two flag cells: the XOR transform t = (flag1, flag0), each repaired
            flip = Cat(_lookup(repair, block[-2])[1], _lookup(repair, block[-1])[1])
        else:               # Flip-N-Write: a flag read as 11 (after repair) complements every cell
            flip = _lookup(repair, block[-1])[1].replicate(2)
        flipped = Signal(2 * (per - spec.flag_cells), name=f"cells{b}")
        m.d.comb += flipped.eq(Cat(*block[:per - spec.flag_cells]) ^ flip.replicate(per - spec.flag_cells))
        for j in range(spec.block_words):
            bits = [None] * 16
            for c, (hard, soft) in enumerate(spec.pairing):
                bits[hard], bits[soft] = flipped[2 * (8 * j + c) + 1], flipped[2 * (8 * j + c)]
            out.append(Cat(*bits))
    return out


def _hamming_word(m: Module, cw, name: str):
    """SEC-DED Hamming(22, 16) (``hwnorm.stt.codecs``): position ``p`` of the codeword is bit ``p``
    of ``cw``; a single error is corrected, a detected double error passes the data bits as read
    (raw words: 0 is no neutral weight)."""
    syndrome = Signal(5, name=f"{name}_syndrome")
    m.d.comb += syndrome.eq(Cat(*[Cat(*[cw[p] for p in range(1, 22) if p >> k & 1]).xor() for k in range(5)]))
    parity = cw.xor()
    fixed = Signal(22, name=f"{name}_fixed")
    m.d.comb += fixed.eq(cw ^ Mux(parity, Const(1, 32) << syndrome, 0)[:22])
    detected = Mux(parity, syndrome > 21, syndrome != 0)
    return Mux(detected, Cat(*[cw[int(p)] for p in HAMMING_DATA_POS]), Cat(*[fixed[int(p)] for p in HAMMING_DATA_POS]))
