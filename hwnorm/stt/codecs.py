"""FP16 weight codecs for an MLC STT-RAM buffer: encoder + decoder pairs, bit-exact, in Numba.

A codec maps a tensor of FP16 words to *blocks* of 2-bit cells (uint8 states 0..3, ``2·hard +
soft``). Word layout: cell ``c`` of a word holds bit ``pairing[c][0]`` as its hard bit and bit
``pairing[c][1]`` as its soft bit; the default pairing is (15,14), (13,12), …, (1,0)::

    FP16   15 | 14 13 12 11 10 | 9 8 7 6 5 4 3 2 1 0
           s  |  exponent (14 is always 0 for |x| < 2) | fraction
    cells  [15 14] [13 12] [11 10] [9 8] [7 6] [5 4] [3 2] [1 0]
            cell 0  cell 1 …                               cell 7

Codecs (``CodecSpec.codec``):

``none``              8 cells per word, the bits as they are.
``backup``            the sign is copied into bit 14, so cell 0 holds 00 or 11 only (extreme,
                      reliable states). The decoder repairs a cell 0 read as 01 / 10 with the
                      most likely original (MAP under the cell table's error rates: normally
                      "trust the hard bit") and always forces bit 14 back to 0.
``rearrange``         blocks of ``block_words`` words (default 4) plus two flag cells. The encoder
                      tries the four cell-state XOR transforms t ∈ {0, 1, 2, 3} (keep; invert every
                      soft bit, which swaps extreme ↔ intermediate states; invert every hard bit;
                      invert both) and keeps the one with the lowest total ``state_cost`` — the
                      cell table's expected write energy into each state plus its read energy.
                      The flag cells store t's two bits as 00 / 11 each (extreme states, decoded
                      by the same MAP rule), and their cost is part of the choice.
``backup+rearrange``  both: cell 0 of each word is the backup cell and is left out of the
                      transform so it stays extreme.
``…-wa`` variants     ``rearrange-wa``, ``backup+rearrange-wa``: the same block format, but the
                      encoder picks the transform with the lowest write energy over the buffer's
                      old content (read-before-write, as Flip-N-Write) instead of the static
                      per-state cost. The decoder is the same.
``fnw``               Flip-N-Write (Cho & Lee 2009) for MLC: per word, store the cells or their
                      complement (00↔11, 01↔10), whichever costs less write energy over the
                      buffer's old content; one flag cell (00 / 11).
``hamming``           SEC-DED Hamming(22,16): 11 cells per word. Positions 1..21 are an extended
                      Hamming code (parity at 1, 2, 4, 8, 16), position 0 the overall parity; cell
                      c holds positions (2c+1, 2c). A single flipped bit is corrected; a double
                      error is detected and the weight decodes to +0 (declared fallback).

Every decoder returns finite values: a word whose exponent reads 11111 (only reachable through
an uncorrected error) becomes the largest finite FP16 of the same sign, ±65504 (declared
fallback). Encoders reject non-finite weights; the backup codecs also reject |x| ≥ 2, the only
FP16 values with bit 14 set — exact for all of [−1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from hwnorm.datatypes import IntType
from hwnorm.spec import SpecIdentity
from hwnorm.stt.cells import TRANSITION_OF, CellTable

BASE_CODECS = ("none", "backup", "rearrange", "backup+rearrange", "fnw", "hamming")
NONE, BACKUP, REARRANGE, BACKUP_REARRANGE, FNW, HAMMING = range(len(BASE_CODECS))
WRITE_AWARE = "-wa"
CODECS = BASE_CODECS + ("rearrange" + WRITE_AWARE, "backup+rearrange" + WRITE_AWARE)
DEFAULT_PAIRING = tuple((15 - 2 * i, 14 - 2 * i) for i in range(8))
DEFAULT_BLOCK_WORDS = 4
STATE_COST_MAX = 1023      # rearrange objective: 10-bit integer cost per cell state
TRANSITION_COST_MAX = 255  # Flip-N-Write objective: 8-bit integer cost per transition class

HAMMING_CELLS = 11
HAMMING_DATA_POS = np.array([p for p in range(3, 22) if p & (p - 1)], dtype=np.int64)  # 16 positions
assert HAMMING_DATA_POS.size == 16

STATUS_CLEAN, STATUS_CORRECTED, STATUS_DETECTED = 0, 1, 2
EXPONENT_MASK = 0x7C00
MAX_FINITE = 0x7BFF  # magnitude bits of ±65504, the decoders' fallback for an all-ones exponent


@dataclass(frozen=True, eq=False)
class CodecSpec(SpecIdentity):
    """Frozen codec spec: everything the golden codec, the HDL codec and the estimators read."""

    codec: str
    pairing: tuple = DEFAULT_PAIRING
    block_words: int = 1
    state_cost: tuple = (0, 0, 0, 0)       # rearrange objective per cell state (integers)
    transition_cost: tuple = (0, 0, 0, 0)  # Flip-N-Write objective per ZT, ST, HT, TT (integers)
    repair: tuple = (0, 3)                 # extreme state restored from a read 01, 10
    write_aware: bool = False              # block codecs: choose by write energy over the old cells

    def __post_init__(self):
        if self.codec not in BASE_CODECS:
            raise ValueError(f"unknown codec {self.codec!r}; allowed: {', '.join(BASE_CODECS)}")
        if self.write_aware and not self.is_block:
            raise ValueError(f"write_aware applies to the rearrange codecs only, not {self.codec!r}")
        _check_pairing(self.pairing)
        if self.uses_backup and {15, 14} not in [set(p) for p in self.pairing]:
            raise ValueError("pairing: the backup codecs need bits 15 and 14 in one cell "
                             "(that is what keeps the sign cell in an extreme state)")
        if self.is_block and not 1 <= self.block_words <= 64:
            raise ValueError(f"block_words must be in 1..64, got {self.block_words}")
        if not self.is_block and self.block_words != 1:
            raise ValueError(f"codec {self.codec!r} works per word: block_words must be 1")
        for name, values, hi in (("state_cost", self.state_cost, STATE_COST_MAX),
                                 ("transition_cost", self.transition_cost, TRANSITION_COST_MAX)):
            if len(values) != 4 or not all(isinstance(v, int) and 0 <= v <= hi for v in values):
                raise ValueError(f"{name} must be 4 integers in 0..{hi}, got {values}")
        if tuple(self.repair) not in {(0, 0), (0, 3), (3, 0), (3, 3)}:
            raise ValueError(f"repair must map states 01 and 10 to 0 or 3, got {self.repair}")

    # ------------------------------------------------------------------ layout
    @property
    def kind(self) -> int:
        return BASE_CODECS.index(self.codec)

    @property
    def label(self) -> str:
        return self.codec + (WRITE_AWARE if self.write_aware else "")

    @property
    def uses_backup(self) -> bool:
        return self.codec in ("backup", "backup+rearrange")

    @property
    def is_block(self) -> bool:
        return self.codec in ("rearrange", "backup+rearrange")

    @property
    def cells_per_word(self) -> int:
        return HAMMING_CELLS if self.codec == "hamming" else 8

    @property
    def flag_cells(self) -> int:
        return 2 if self.is_block else 1 if self.codec == "fnw" else 0

    @property
    def cells_per_block(self) -> int:
        return self.block_words * self.cells_per_word + self.flag_cells

    @property
    def sign_cell(self) -> int:
        return next(i for i, p in enumerate(self.pairing) if 15 in p)

    @property
    def transformable(self) -> tuple:
        """Per cell of a word: does the rearrange transform touch it (all but the backup's sign cell)."""
        return tuple(not (self.uses_backup and c == self.sign_cell) for c in range(8))

    @property
    def cells_per_weight(self) -> float:
        return self.cells_per_block / self.block_words

    def n_blocks(self, n_words: int) -> int:
        return -(-n_words // self.block_words)

    def to_dict(self) -> dict:
        return {"codec": self.codec, "pairing": [list(p) for p in self.pairing],
                "block_words": self.block_words, "state_cost": list(self.state_cost),
                "transition_cost": list(self.transition_cost), "repair": list(self.repair),
                "write_aware": self.write_aware, "cells_per_block": self.cells_per_block}

    # ------------------------------------------------------------------ views
    def encode(self, weights, old: np.ndarray | None = None) -> np.ndarray:
        """Cells ``(n_blocks, cells_per_block)`` of ``weights`` (Flip-N-Write decides over ``old``,
        the buffer's previous cells; default: every cell in state 00)."""
        return self._encode(self.check_weights(weights), old)

    def encode_words(self, words: np.ndarray, old: np.ndarray | None = None) -> np.ndarray:
        """Cells of raw 16-bit words — any bit pattern, e.g. packed binary weights and thresholds —
        for the codecs whose encoding does not rely on FP16 (every codec but the sign backups)."""
        words = np.ascontiguousarray(np.asarray(words).ravel())
        if words.dtype != np.uint16:
            raise ValueError(f"words must be uint16 bit patterns (got {words.dtype})")
        if self.uses_backup:
            raise ValueError(f"codec {self.codec!r} stores a sign backup in FP16 bit 14 and needs FP16 "
                             f"weights; for raw bit words use one without backup")
        return self._encode(words, old)

    def _encode(self, words: np.ndarray, old: np.ndarray | None) -> np.ndarray:
        nb = self.n_blocks(words.size)
        padded = np.zeros(nb * self.block_words, np.uint16)  # pad words are +0
        padded[:words.size] = words
        if old is None:
            old = np.zeros((nb, self.cells_per_block), np.uint8)
        elif old.shape != (nb, self.cells_per_block):
            raise ValueError(f"old cells have shape {old.shape}, expected {(nb, self.cells_per_block)}")
        out = np.empty((nb, self.cells_per_block), np.uint8)
        hard, soft = self._bit_positions()
        _encode(self.kind, self.write_aware, padded, np.ascontiguousarray(old, np.uint8), hard, soft,
                np.asarray(self.transformable), self.block_words, np.asarray(self.state_cost, np.int64),
                np.asarray(self.transition_cost, np.int64), _TRANSITIONS, out)
        return out

    def decode(self, cells: np.ndarray, n: int | None = None, raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """FP16 weights (the first ``n``) and a status per block (0 clean, 1 corrected, 2 detected
        but not correctable). ``raw`` decodes raw bit words: no FP16 fallback for an all-ones
        exponent (the words of :meth:`encode_words`)."""
        cells = np.ascontiguousarray(cells, np.uint8)
        if cells.ndim != 2 or cells.shape[1] != self.cells_per_block:
            raise ValueError(f"cells must have shape (blocks, {self.cells_per_block}), got {cells.shape}")
        words = np.empty(cells.shape[0] * self.block_words, np.uint16)
        status = np.empty(cells.shape[0], np.int8)
        hard, soft = self._bit_positions()
        _decode(self.kind, cells, hard, soft, self.sign_cell, self.block_words,
                np.asarray(self.repair, np.int64), not raw, words, status)
        n = words.size if n is None else n
        return words[:n].view(np.float16), status

    def check_weights(self, weights) -> np.ndarray:
        """FP16 bit patterns of ``weights`` after the encoder's input contract (see module doc)."""
        w = np.asarray(weights)
        if w.dtype != np.float16:
            if not np.issubdtype(w.dtype, np.floating):
                raise ValueError(f"weights must be floating point (got {w.dtype})")
            with np.errstate(over="ignore"):  # overflow to ±inf is reported just below
                w = w.astype(np.float16)
        w = np.ascontiguousarray(w.ravel())
        bad = np.flatnonzero(~np.isfinite(w))
        if bad.size:
            raise ValueError(f"codec {self.codec!r}: weight[{bad[0]}] = {w[bad[0]]} is not finite "
                             f"(in FP16); {bad.size} such weights")
        words = w.view(np.uint16)
        if self.uses_backup:
            bad = np.flatnonzero(words & 0x4000)
            if bad.size:
                raise ValueError(f"codec {self.codec!r}: weight[{bad[0]}] = {w[bad[0]]} is outside (−2, 2); "
                                 f"the sign backup lives in FP16 bit 14, which is free only for |x| < 2 "
                                 f"({bad.size} such weights) — normalize the tensor to [−1, 1] first")
        return words

    def _bit_positions(self) -> tuple[np.ndarray, np.ndarray]:
        if self.codec == "hamming":
            c = np.arange(HAMMING_CELLS, dtype=np.int64)
            return 2 * c + 1, 2 * c
        return (np.array([p[0] for p in self.pairing], np.int64),
                np.array([p[1] for p in self.pairing], np.int64))


def _check_pairing(pairing) -> None:
    try:
        flat = [int(b) for p in pairing for b in p]
        ok = all(len(p) == 2 for p in pairing) and len(pairing) == 8
    except (TypeError, ValueError):
        ok = False
    if not ok or sorted(flat) != list(range(16)):
        raise ValueError(f"pairing must be 8 (hard bit, soft bit) pairs using each FP16 bit 0..15 once, "
                         f"got {pairing!r}")


def make_codec(codec: str, table: CellTable, pairing=DEFAULT_PAIRING, block_words: int | None = None,
               reads_per_write: float = 1.0) -> CodecSpec:
    """Build a codec spec (any name in :data:`CODECS`), deriving its integer objectives from the
    cell table."""
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; allowed: {', '.join(CODECS)}")
    write_aware = codec.endswith(WRITE_AWARE)
    codec = codec.removesuffix(WRITE_AWARE)
    if block_words is None:
        block_words = DEFAULT_BLOCK_WORDS if codec in ("rearrange", "backup+rearrange") else 1
    cost = table.mean_write_energy_into + reads_per_write * np.asarray(table.read_energy_pj)
    state_cost = _scale_ints(cost, STATE_COST_MAX)
    transition_cost = _scale_ints(np.asarray(table.write_energy_pj), TRANSITION_COST_MAX)
    return CodecSpec(codec, tuple(tuple(int(b) for b in p) for p in pairing), block_words, state_cost,
                     transition_cost, map_repair(table), write_aware)


def map_repair(table: CellTable) -> tuple[int, int]:
    """The most likely extreme state behind a cell read as 01 / 10 (one bit flipped). A tie trusts
    the hard bit (soft errors dominate in MLC STT-RAM)."""
    ph, ps = table.p_hard, table.p_soft
    from01 = 0 if ps[0] >= ph[3] else 3   # 00 with its soft bit flipped, or 11 with its hard bit flipped
    from10 = 3 if ps[3] >= ph[0] else 0   # 11 with its soft bit flipped, or 00 with its hard bit flipped
    return from01, from10


def _scale_ints(values: np.ndarray, top: int) -> tuple:
    m = float(np.max(values))
    if m <= 0:
        return (0,) * len(values)
    return tuple(int(round(top * float(v) / m)) for v in values)


_TRANSITIONS = TRANSITION_OF.astype(np.int64)


# ---------------------------------------------------------------------- kernels

@njit(cache=True, inline="always")
def _restore(s, repair):
    if s == 1:
        return repair[0]
    if s == 2:
        return repair[1]
    return s


@njit(cache=True, inline="always")
def _finite(w, fp16):
    if fp16 and (w & EXPONENT_MASK) == EXPONENT_MASK:
        return (w & 0x8000) | MAX_FINITE
    return w


@njit(cache=True)
def _hamming_encode(w):
    cw = np.int64(0)
    for i in range(16):
        if (w >> i) & 1:
            cw |= np.int64(1) << HAMMING_DATA_POS[i]
    for k in range(5):
        p = 0
        for pos in range(1, 22):
            if (pos >> k) & 1 and pos & (pos - 1):
                p ^= (cw >> pos) & 1
        cw |= p << (1 << k)
    parity = 0
    for pos in range(1, 22):
        parity ^= (cw >> pos) & 1
    return cw | parity


@njit(cache=True)
def _hamming_decode(cw):
    syndrome = 0
    parity = 0
    for pos in range(22):
        bit = (cw >> pos) & 1
        parity ^= bit
        if bit:
            syndrome ^= pos
    status = STATUS_CLEAN
    if parity:
        status = STATUS_CORRECTED
        if syndrome > 21:
            return 0, STATUS_DETECTED
        if syndrome:
            cw ^= np.int64(1) << syndrome
    elif syndrome:
        return 0, STATUS_DETECTED
    w = 0
    for i in range(16):
        w |= ((cw >> HAMMING_DATA_POS[i]) & 1) << i
    return w, status


@njit(parallel=True, cache=True)
def _encode(kind, write_aware, words, old, hard, soft, movable, bw, state_cost, trans_cost, trans_of, out):
    nb = out.shape[0]
    for b in prange(nb):
        if kind == HAMMING:
            cw = _hamming_encode(np.int64(words[b]))
            for c in range(HAMMING_CELLS):
                out[b, c] = (((cw >> (2 * c + 1)) & 1) << 1) | ((cw >> (2 * c)) & 1)
            continue
        for j in range(bw):
            w = np.int64(words[b * bw + j])
            if kind == BACKUP or kind == BACKUP_REARRANGE:
                w |= ((w >> 15) & 1) << 14
            for c in range(8):
                out[b, j * 8 + c] = (((w >> hard[c]) & 1) << 1) | ((w >> soft[c]) & 1)
        if kind == REARRANGE or kind == BACKUP_REARRANGE:
            best_t = 0
            best = np.int64(1) << 62
            for t in range(4):
                if write_aware:  # the two flag cells, then every data cell, over the old content
                    cost = (trans_cost[trans_of[old[b, bw * 8], 3 * (t & 1)]]
                            + trans_cost[trans_of[old[b, bw * 8 + 1], 3 * (t >> 1)]])
                else:
                    cost = state_cost[3 * (t & 1)] + state_cost[3 * (t >> 1)]
                for j in range(bw):
                    for c in range(8):
                        s = out[b, j * 8 + c]
                        if movable[c]:
                            s ^= t
                        if write_aware:
                            cost += trans_cost[trans_of[old[b, j * 8 + c], s]]
                        else:
                            cost += state_cost[s]
                if cost < best:
                    best, best_t = cost, t
            for j in range(bw):
                for c in range(8):
                    if movable[c]:
                        out[b, j * 8 + c] ^= best_t
            out[b, bw * 8] = 3 * (best_t & 1)
            out[b, bw * 8 + 1] = 3 * (best_t >> 1)
        elif kind == FNW:
            keep = trans_cost[trans_of[old[b, 8], 0]]
            flip = trans_cost[trans_of[old[b, 8], 3]]
            for c in range(8):
                keep += trans_cost[trans_of[old[b, c], out[b, c]]]
                flip += trans_cost[trans_of[old[b, c], 3 - out[b, c]]]
            if flip < keep:
                for c in range(8):
                    out[b, c] = 3 - out[b, c]
                out[b, 8] = 3
            else:
                out[b, 8] = 0


@njit(parallel=True, cache=True)
def _decode(kind, cells, hard, soft, sign_cell, bw, repair, fp16, out, status):
    nb = cells.shape[0]
    for b in prange(nb):
        if kind == HAMMING:
            cw = np.int64(0)
            for c in range(HAMMING_CELLS):
                s = np.int64(cells[b, c])
                cw |= ((s >> 1) << (2 * c + 1)) | ((s & 1) << (2 * c))
            w, st = _hamming_decode(cw)
            if st == STATUS_DETECTED and not fp16:  # raw words: 0 is no neutral value (a binary 0 is a −1
                w = 0                              # weight), so an uncorrectable word passes as read
                for i in range(16):
                    w |= ((cw >> HAMMING_DATA_POS[i]) & 1) << i
            out[b] = _finite(w, fp16)
            status[b] = st
            continue
        st = STATUS_CLEAN
        t = 0
        if kind == REARRANGE or kind == BACKUP_REARRANGE:
            f0 = np.int64(cells[b, bw * 8])
            f1 = np.int64(cells[b, bw * 8 + 1])
            if f0 == 1 or f0 == 2 or f1 == 1 or f1 == 2:
                st = STATUS_CORRECTED
            t = (_restore(f0, repair) >> 1) | ((_restore(f1, repair) >> 1) << 1)
        invert = False
        if kind == FNW:
            invert = _restore(np.int64(cells[b, 8]), repair) == 3
        for j in range(bw):
            w = np.int64(0)
            for c in range(8):
                s = np.int64(cells[b, j * 8 + c])
                if kind == BACKUP or kind == BACKUP_REARRANGE:
                    if c == sign_cell:
                        if s == 1 or s == 2:
                            st = STATUS_CORRECTED
                        s = _restore(s, repair)
                    else:
                        s ^= t
                elif kind == REARRANGE:
                    s ^= t
                elif invert:
                    s = 3 - s
                w |= ((s >> 1) << hard[c]) | ((s & 1) << soft[c])
            if kind == BACKUP or kind == BACKUP_REARRANGE:
                w &= ~np.int64(0x4000)
            out[b * bw + j] = _finite(w, fp16)
        status[b] = st


# ------------------------------------------------------------------ what the hardware codecs share
# (the encoder / decoder blocks in hwnorm.stt.blocks and their Amaranth in hwnorm.hdl.stt)
HDL_CODECS = ("none", "backup", "rearrange", "backup+rearrange")  # the codecs that have hardware
STATUS_BITS = 2  # the decoder's status field per block


def cost_type(spec: CodecSpec) -> IntType:
    """A block's total state cost, with one spare bit: the adders never overflow."""
    return IntType((spec.cells_per_block * max(spec.state_cost)).bit_length() + 1)
