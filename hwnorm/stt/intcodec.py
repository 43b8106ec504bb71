"""Codecs for a memory of integer weight rows (binary and 2–8-bit QNN weights) in MLC STT-RAM.

A weight memory is a list of rows: an MVU's ROM row packs PE × SIMD weights of ``element_bits``
each (``hwnorm.layers.mvu.MVUBlock.weight_rows``: element ``e`` at bits ``[e·W, (e+1)·W)``). A
row's bits pair into 2-bit cells, low bits first — cell ``c`` holds bit ``2c + 1`` as its hard
bit and bit ``2c`` as its soft bit::

    row bits   … | w1[1] w1[0] | w0[1] w0[0] |        (2-bit weights: one weight per cell,
    cells      … |   cell 1    |   cell 0    |         its sign in the hard bit)

    row bits   … | w3 w2 | w1 w0 |                    (binary weights: two per cell)

A row with an odd number of bits gets one 0 pad bit. Cells repeat their role every
``period = lcm(W, 2) / 2`` cells (the *class* of cell ``c`` is ``c mod period``).

Codecs (``WeightCodec.codec``):

``none``          the bits as they are.
``remap``         content-aware rearrangement, no extra cells: per cell class, a bijection of the
                  four states, fitted to the stored content. The most frequent data state goes to
                  the best cell state (the cell table's lowest error probability, then lowest
                  read + write energy), the next to the next best, and so on. The decoder is a
                  4-entry table per class.
``remap+backup``  ``remap``, and the states the content never uses (the codes a narrow-range
                  quantizer leaves out; the sign-extension cell of small-magnitude weights, which
                  holds only 00 / 11) are decoded by MAP: a read of an unused state becomes the
                  used data state most likely to have produced it under the cell table's error
                  rates and the fitted state frequencies. That redundancy costs no cell.
``rearrange``     the FP16 codec's block transform on raw bits (:mod:`hwnorm.stt.codecs`):
                  16-bit words of the row, 4 words per block (fewer for a narrower row), 2 flag
                  cells per block.
``fnw``           Flip-N-Write per 16-bit word, one flag cell.
``hamming``       SEC-DED Hamming(22, 16) per 16-bit word: 11 cells. A detected double error
                  passes the data bits as read: for raw weight words 0 is no neutral value (a
                  binary 0 is a −1 weight), unlike an FP16 +0.

The first three keep a row's cell count (``⌈bits / 2⌉``) and decode cell by cell; the last three
work on 16-bit words (a row is padded to whole words or blocks) and decode raw bit words (no FP16
fallback). Every codec has a hardware decoder (:func:`hwnorm.hdl.stt.decode_cells`), whose cost
— LUTs and LUT levels — :meth:`WeightCodec.decoder_luts` / :meth:`WeightCodec.decoder_levels`
give the MVU's resource and timing models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwnorm.defaults import WEIGHT_CODECS
from hwnorm.spec import SpecIdentity
from hwnorm.stt.cells import load_table, CellTable
from hwnorm.stt.codecs import DEFAULT_BLOCK_WORDS, CodecSpec, make_codec, map_repair

INT_CODECS = WEIGHT_CODECS
ROW_CODECS = INT_CODECS[:3]   # decoded cell by cell
WORD_CODECS = INT_CODECS[3:]  # decoded per 16-bit word
IDENTITY = (0, 1, 2, 3)


@dataclass(frozen=True, eq=False)
class WeightCodec(SpecIdentity):
    """Frozen spec of a weight memory's codec: what the golden codec and the HDL decoder read.

    ``encode_map[k][d]`` is the stored state of data state ``d`` in cell class ``k``;
    ``decode_map[k][s]`` the data state a read state ``s`` decodes to."""

    codec: str
    element_bits: int
    encode_map: tuple = (IDENTITY,)
    decode_map: tuple = (IDENTITY,)
    repair: tuple = (0, 3)  # word codecs: the extreme state a flag cell read as 01 / 10 restores to
    block_words: int = 1    # rearrange: 16-bit words per block (at most 4, no more than a row holds)

    def __post_init__(self):
        if self.codec not in INT_CODECS:
            raise ValueError(f"unknown weight codec {self.codec!r}; allowed: {', '.join(INT_CODECS)}")
        if not 1 <= self.element_bits <= 32:
            raise ValueError(f"element_bits must be in 1..32, got {self.element_bits}")
        for name, maps in (("encode_map", self.encode_map), ("decode_map", self.decode_map)):
            if len(maps) != (self.period if self.codec in ROW_CODECS else 1) or \
                    not all(len(m) == 4 and all(v in IDENTITY for v in m) for m in maps):
                raise ValueError(f"{name} must hold one 4-entry state table per cell class, got {maps!r}")

    @property
    def period(self) -> int:
        """Cells after which the cells' roles repeat: lcm(W, 2) / 2."""
        return math.lcm(self.element_bits, 2) // 2

    @property
    def per_cell(self) -> bool:
        return self.codec in ROW_CODECS

    def cells_per_row(self, row_bits: int) -> int:
        if self.per_cell:
            return -(-row_bits // 2)
        spec = self.word_spec()
        words = -(-row_bits // 16)
        return spec.n_blocks(words) * spec.cells_per_block

    def to_dict(self) -> dict:
        return {"codec": self.codec, "element_bits": self.element_bits, "repair": list(self.repair),
                "block_words": self.block_words,
                "encode_map": [list(m) for m in self.encode_map], "decode_map": [list(m) for m in self.decode_map]}

    # ------------------------------------------------------------------ golden codec
    def classes(self, cells: int) -> np.ndarray:
        return np.arange(cells) % self.period

    def encode(self, bits: np.ndarray, table: CellTable) -> np.ndarray:
        """Cells ``(rows, cells_per_row)`` of bit rows ``(rows, row_bits)`` (0 / 1 per bit)."""
        bits = _even(np.asarray(bits, np.uint8))
        if self.per_cell:
            data = (bits[:, 1::2] << 1) | bits[:, 0::2]
            enc = np.asarray(self.encode_map, np.uint8)
            return enc[self.classes(data.shape[1]), data]
        spec = self._spec(table)
        words = _words(bits)
        blocks = spec.n_blocks(words.shape[1])
        return np.stack([spec.encode_words(w).reshape(blocks * spec.cells_per_block) for w in words]) \
            if len(words) else np.zeros((0, self.cells_per_row(bits.shape[1])), np.uint8)

    def decode(self, cells: np.ndarray, row_bits: int) -> np.ndarray:
        """Bit rows ``(rows, row_bits)`` of stored cells (any states: faults decode too)."""
        cells = np.asarray(cells, np.uint8)
        if self.per_cell:
            data = np.asarray(self.decode_map, np.uint8)[self.classes(cells.shape[1]), cells]
            bits = np.empty((cells.shape[0], 2 * cells.shape[1]), np.uint8)
            bits[:, 0::2], bits[:, 1::2] = data & 1, data >> 1
            return bits[:, :row_bits]
        spec = self.word_spec()
        out = []
        for row in cells:
            words, _ = spec.decode(row.reshape(-1, spec.cells_per_block), raw=True)
            w = words.view(np.uint16)
            out.append(((w[:, None] >> np.arange(16, dtype=np.uint16)) & 1).astype(np.uint8).ravel())
        return np.stack(out)[:, :row_bits] if out else np.zeros((0, row_bits), np.uint8)

    def _spec(self, table: CellTable | None = None) -> CodecSpec:
        return make_codec(self.codec, table or load_table(), block_words=self.block_words)

    def word_spec(self) -> CodecSpec:
        """The word codec's spec as its decoder reads it (the repair rule is the cell table's;
        ``fit`` stores it)."""
        return CodecSpec(self.codec, block_words=self.block_words, repair=tuple(self.repair))

    # ------------------------------------------------------------------ hardware cost
    def decoder_levels(self) -> int:
        """LUT levels between a stored row and its decoded bits (4-input LUTs): a state table or a
        flag's XOR is one; SEC-DED is the syndrome (11 of 22 bits: two), the overall parity (22
        bits: three), the correcting XOR and the double-error zeroing."""
        if self.per_cell:
            return 0 if all(tuple(m) == IDENTITY for m in self.decode_map) else 1
        return 5 if self.codec == "hamming" else 1

    def decoder_luts(self, cells: int) -> int:
        """LUTs of a row decoder of ``cells`` cells."""
        if self.per_cell:
            return 2 * sum(tuple(self.decode_map[c % self.period]) != IDENTITY for c in range(cells))
        spec = self.word_spec()
        if self.codec == "hamming":  # per word: syndrome 5 × 3, parity 7, correction 16 × 2, zeroing 16
            return (cells // spec.cells_per_block) * (15 + 7 + 32 + 16)
        return 2 * (cells - (cells // spec.cells_per_block) * spec.flag_cells)


def fit(codec: str, element_bits: int, bits: np.ndarray, table: CellTable) -> WeightCodec:
    """The codec for a memory holding bit rows ``bits``: ``remap`` tables fitted to its content."""
    if codec not in INT_CODECS:
        raise ValueError(f"unknown weight codec {codec!r}; allowed: {', '.join(INT_CODECS)}")
    period = math.lcm(element_bits, 2) // 2
    identity = (IDENTITY,) * (period if codec in ROW_CODECS else 1)
    bits = np.asarray(bits, np.uint8)
    # a row narrower than four words gets blocks of its own width, not padding to 64 bits
    block_words = min(DEFAULT_BLOCK_WORDS, -(-bits.shape[1] // 16)) if codec == "rearrange" else 1
    probe = WeightCodec(codec, element_bits, identity, identity, map_repair(table), max(block_words, 1))
    if codec not in ("remap", "remap+backup"):
        return probe
    bits = _even(bits)
    data = (bits[:, 1::2] << 1) | bits[:, 0::2]
    classes = probe.classes(data.shape[1])
    rank = state_rank(table)
    encode, decode = [], []
    for k in range(probe.period):
        freq = np.bincount(data[:, classes == k].ravel(), minlength=4)
        order = sorted(range(4), key=lambda d: (-freq[d], d))        # most frequent data state first
        enc = [0] * 4
        for d, s in zip(order, rank):
            enc[d] = s
        dec = [0] * 4
        for d in range(4):
            dec[enc[d]] = d
        if codec == "remap+backup":
            used = [d for d in range(4) if freq[d]]
            for s in range(4):
                if used and dec[s] not in used:
                    dec[s] = max(used, key=lambda d: (freq[d] * read_probability(table, enc[d], s), -d))
        encode.append(tuple(enc))
        decode.append(tuple(dec))
    return WeightCodec(codec, element_bits, tuple(encode), tuple(decode))


def state_rank(table: CellTable) -> list[int]:
    """Cell states best first: the lowest total bit-error probability, then the lowest read plus
    mean write energy (every state is written once per model load and read per inference)."""
    errors = np.asarray(table.p_hard) + np.asarray(table.p_soft)
    energy = np.asarray(table.read_energy_pj) + table.mean_write_energy_into
    return sorted(range(4), key=lambda s: (errors[s], energy[s], s))


def read_probability(table: CellTable, stored: int, read: int) -> float:
    """P(a cell storing ``stored`` reads back as ``read``): hard and soft bits flip independently."""
    flip = stored ^ read
    ps, ph = table.p_soft[stored], table.p_hard[stored]
    return (ps if flip & 1 else 1 - ps) * (ph if flip & 2 else 1 - ph)


def _even(bits: np.ndarray) -> np.ndarray:
    if bits.ndim != 2:
        raise ValueError(f"bit rows must be a 2-d array (rows, bits), got shape {bits.shape}")
    if bits.shape[1] % 2:
        bits = np.concatenate([bits, np.zeros((bits.shape[0], 1), np.uint8)], axis=1)
    return bits


def _words(bits: np.ndarray) -> np.ndarray:
    """Rows of 16-bit words, bit ``16k + i`` of a row at bit ``i`` of word ``k`` (so a word's cell
    pairing (15, 14), …, (1, 0) is the row's (2c + 1, 2c))."""
    pad = -bits.shape[1] % 16
    if pad:
        bits = np.concatenate([bits, np.zeros((bits.shape[0], pad), np.uint8)], axis=1)
    planes = bits.reshape(bits.shape[0], -1, 16).astype(np.uint16)
    return (planes << np.arange(16, dtype=np.uint16)).sum(axis=2, dtype=np.uint16)


def rows_to_bits(rows: list[int], row_bits: int) -> np.ndarray:
    """ROM rows (Python ints) as a bit matrix ``(rows, row_bits)``, bit ``j`` of row ``r`` at [r, j]."""
    out = np.zeros((len(rows), row_bits), np.uint8)
    for r, value in enumerate(rows):
        raw = value.to_bytes(-(-row_bits // 8) or 1, "little")
        out[r] = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[:row_bits]
    return out


def bits_to_rows(bits: np.ndarray) -> list[int]:
    """The inverse of :func:`rows_to_bits`."""
    packed = np.packbits(np.asarray(bits, np.uint8), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def cells_to_rows(cells: np.ndarray) -> list[int]:
    """Cell rows as ROM words: cell ``c`` at bits ``[2c, 2c + 2)`` (bit 2c soft, 2c + 1 hard)."""
    cells = np.asarray(cells, np.uint8)
    bits = np.empty((cells.shape[0], 2 * cells.shape[1]), np.uint8)
    bits[:, 0::2], bits[:, 1::2] = cells & 1, cells >> 1
    return bits_to_rows(bits)
