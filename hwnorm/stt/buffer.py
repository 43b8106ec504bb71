"""Energy / latency accounting of an MLC STT-RAM buffer and seeded soft-error injection.

Cells are the uint8 state arrays a codec produces (``(blocks, cells_per_block)``). Accounting:

* **write** cells over the buffer's old content: every cell makes one transition (ZT / ST / HT /
  TT, counted); energy = Σ per-transition energy. The array writes one *row* at a time — 64 data
  bits (``ROW_WORDS`` = 4 FP16 words) plus the cells a codec adds to them — all cells of a row in
  parallel, so a row's latency is its slowest transition and rows follow one another.
* **read** a row: energy = Σ per-state read energy; latency = its slowest cell.
* **errors**: each cell's hard and soft bit flip independently with the probabilities of the
  state the cell stores. The Monte-Carlo sampler walks the 2·cells bit slots with geometric gaps
  at the largest probability and thins each hit to its own state's probability (exact, and
  O(flips) rather than O(cells)). Random streams are per fixed chunk of cells, seeded from
  (seed, chunk), so a seed gives the same faults on any number of threads.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from hwnorm.stt.cells import TRANSITION_OF, TRANSITIONS, CellTable
from hwnorm.stt.codecs import CodecSpec

CHUNK_CELLS = 1 << 14
ROW_WORDS = 4  # FP16 words per array row (64 data bits, the word size of the NVSim anchors)


@dataclass(frozen=True)
class Cost:
    energy_pj: float
    latency_ns: float
    counts: dict  # transition class (write) or state (read) → number of cells

    def __add__(self, other: "Cost") -> "Cost":
        keys = {**self.counts, **other.counts}  # keeps the ZT…TT / 00…11 order
        return Cost(self.energy_pj + other.energy_pj, self.latency_ns + other.latency_ns,
                    {k: self.counts.get(k, 0) + other.counts.get(k, 0) for k in keys})


def rows_of(cells: np.ndarray, blocks_per_row: int) -> np.ndarray:
    """Per-cell values regrouped one array row per line (a short last row is padded with 0)."""
    n = cells.shape[0]
    rows = -(-n // blocks_per_row)
    flat = cells.reshape(n, -1)
    pad = rows * blocks_per_row - n
    if pad:
        flat = np.concatenate([flat, np.zeros((pad, flat.shape[1]), flat.dtype)])
    return flat.reshape(rows, -1)


def _row_latency(per_cell: np.ndarray, cells_shape: tuple, blocks_per_row: int) -> float:
    rows = rows_of(per_cell.reshape(cells_shape[0], -1), blocks_per_row)
    return math.fsum(rows.max(axis=1, initial=0.0).tolist())  # exact, so the same on every CPU


def exact_dot(counts, energies) -> float:
    """``Σ count·energy``, correctly rounded: a BLAS dot product adds in an order (and with FMAs)
    that depends on the CPU, which changed a committed report's last digit between machines."""
    return math.fsum(int(c) * float(e) for c, e in zip(counts, energies))


def write_cost(table: CellTable, old: np.ndarray, new: np.ndarray, blocks_per_row: int = 1) -> Cost:
    """Cost of writing cells ``new`` over ``old`` (same shape, one line per codec block;
    ``blocks_per_row`` blocks share an array row for the latency)."""
    if old.shape != new.shape:
        raise ValueError(f"old cells {old.shape} and new cells {new.shape} differ in shape")
    cls = TRANSITION_OF[old.astype(np.intp), new.astype(np.intp)]
    counts = np.bincount(cls.ravel(), minlength=4)
    energy = exact_dot(counts, table.write_energy_pj)
    lat = _row_latency(np.asarray(table.write_latency_ns)[cls], new.shape, blocks_per_row)
    return Cost(energy, lat, dict(zip(TRANSITIONS, map(int, counts))))


def read_cost(table: CellTable, cells: np.ndarray, blocks_per_row: int = 1) -> Cost:
    """Cost of reading every cell once (``blocks_per_row`` blocks per array row)."""
    counts = np.bincount(cells.ravel(), minlength=4)
    energy = exact_dot(counts, table.read_energy_pj)
    lat = _row_latency(np.asarray(table.read_latency_ns)[cells.astype(np.intp)], cells.shape, blocks_per_row)
    return Cost(energy, lat, dict(zip(("00", "01", "10", "11"), map(int, counts))))


def blocks_per_row(spec: CodecSpec) -> int:
    return max(1, ROW_WORDS // spec.block_words)


def stream_write(spec: CodecSpec, table: CellTable, weights, tile_words: int,
                 initial_state: int = 0) -> tuple[np.ndarray, Cost]:
    """Write ``weights`` through a buffer of ``tile_words`` words, tile after tile, each tile over
    the previous tile's cells (the first over cells all in ``initial_state``). Returns the cells of
    every tile, concatenated, and the total write cost (tile by tile, in order: the same floats
    whatever the tile count)."""
    if tile_words < spec.block_words or tile_words % spec.block_words:
        raise ValueError(f"tile_words must be a positive multiple of the codec's {spec.block_words} words "
                         f"per block, got {tile_words}")
    words = np.asarray(spec.check_weights(weights)).view(np.float16)
    per_tile = tile_words // spec.block_words
    if spec.write_aware or spec.codec == "fnw":  # a tile's encoding reads the cells it writes over
        prev = np.full((per_tile, spec.cells_per_block), initial_state, np.uint8)
        tiles = []
        for start in range(0, words.size, tile_words):
            chunk = words[start:start + tile_words]
            cells = spec.encode(chunk, prev[:spec.n_blocks(chunk.size)])
            prev[:len(cells)] = cells
            tiles.append(cells)
        cells = np.concatenate(tiles) if tiles else np.zeros((0, spec.cells_per_block), np.uint8)
    else:  # block by block, whatever was there: all tiles at once (tiles hold whole blocks)
        cells = spec.encode(words) if words.size else np.zeros((0, spec.cells_per_block), np.uint8)
    old = np.full_like(cells, initial_state)  # block b of a tile overwrites block b of the tile before
    old[per_tile:] = cells[:-per_tile] if len(cells) > per_tile else old[per_tile:]
    return cells, _tile_costs(table, old, cells, per_tile, blocks_per_row(spec))


def _tile_costs(table: CellTable, old: np.ndarray, new: np.ndarray, per_tile: int, per_row: int) -> Cost:
    """Σ over tiles, in order, of :func:`write_cost` of each tile — its transition counts and row
    latencies computed for all tiles at once."""
    total = Cost(0.0, 0.0, {t: 0 for t in TRANSITIONS})
    if not len(new):
        return total
    if per_tile % per_row:  # rows straddle tiles: each tile on its own
        for s in range(0, len(new), per_tile):
            total = total + write_cost(table, old[s:s + per_tile], new[s:s + per_tile], per_row)
        return total
    cls = TRANSITION_OF[old.astype(np.intp), new.astype(np.intp)]
    tiles = -(-len(new) // per_tile)
    tile_of = np.repeat(np.arange(tiles), per_tile)[:len(new)]
    counts = np.bincount((tile_of[:, None] * 4 + cls).ravel(), minlength=4 * tiles).reshape(tiles, 4)
    row_max = rows_of(np.asarray(table.write_latency_ns)[cls], per_row).max(axis=1, initial=0.0)
    rows_per_tile = per_tile // per_row
    for t in range(tiles):
        lat = math.fsum(row_max[t * rows_per_tile:(t + 1) * rows_per_tile].tolist())
        total = total + Cost(exact_dot(counts[t], table.write_energy_pj), lat, dict(zip(TRANSITIONS, map(int, counts[t]))))
    return total


def inject(table: CellTable, cells: np.ndarray, seed: int) -> tuple[np.ndarray, int]:
    """A copy of ``cells`` with seeded random bit flips per the table's per-state probabilities,
    and the number of bits flipped."""
    flat = np.ascontiguousarray(cells, np.uint8).ravel()
    out = flat.copy()
    p_soft = np.asarray(table.p_soft, np.float64)
    p_hard = np.asarray(table.p_hard, np.float64)
    p_max = float(max(p_soft.max(), p_hard.max()))
    if p_max == 0 or flat.size == 0:
        return out.reshape(cells.shape), 0
    accept = np.concatenate([p_soft, p_hard]) / p_max  # slot 2c: soft bit of cell c, 2c+1: hard bit
    flips = _inject(flat, out, accept, p_max, np.uint64(seed & 0xFFFFFFFFFFFFFFFF))
    return out.reshape(cells.shape), int(flips)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, inline="always")
def _splitmix(state):
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _uniform(state):
    state, z = _splitmix(state)
    return state, ((z >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)  # in (0, 1)


@njit(cache=True)
def _inject_chunk(cells, out, accept, p_max, seed, k):
    state = seed ^ (np.uint64(k) * np.uint64(0xD1B54A32D192ED03))
    state, _ = _splitmix(state)
    lo = k * CHUNK_CELLS
    slots = 2 * (min(cells.size, lo + CHUNK_CELLS) - lo)
    log_q = np.log1p(-p_max)
    i = -1
    count = 0
    while True:
        gap = 0.0
        if p_max < 1.0:
            state, u = _uniform(state)
            gap = np.floor(np.log(u) / log_q)
        if gap >= slots - i - 1:
            return count
        i += 1 + np.int64(gap)
        c = lo + i // 2
        bit = i & 1                      # slot 2c: soft bit, 2c+1: hard bit
        state, u = _uniform(state)
        if u < accept[4 * bit + cells[c]]:
            out[c] ^= np.uint8(1 << bit)  # the soft bit is bit 0 of a state, the hard bit bit 1
            count += 1


@njit(parallel=True, cache=True)
def _inject(cells, out, accept, p_max, seed):
    chunks = (cells.size + CHUNK_CELLS - 1) // CHUNK_CELLS
    flips = np.zeros(chunks, np.int64)
    for k in prange(chunks):
        flips[k] = _inject_chunk(cells, out, accept, p_max, seed, k)
    return flips.sum()


def inject_numpy(table: CellTable, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same error model written the direct numpy way (one uniform per bit): the baseline of the
    ``stt`` benchmark and an independent check of the sampler's statistics in the tests."""
    u = rng.random(cells.shape + (2,))
    soft = u[..., 0] < np.asarray(table.p_soft)[cells]
    hard = u[..., 1] < np.asarray(table.p_hard)[cells]
    return cells ^ (soft.astype(np.uint8) | (hard.astype(np.uint8) << 1))
