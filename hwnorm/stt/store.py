"""A network's weight memories stored in MLC STT-RAM: encoded, optionally hit by seeded soft
errors, decoded on read.

:class:`WeightStore` is the setting (codec, cell table, bit-error rate, seed). Applied to an MVU
block it gives a :class:`StoredWeights` — the cells the ROM holds (the fault map applied to the
encoded image) — and the *effective* layer: the same layer with the weights its decoder delivers.
The golden model runs the effective layer; the RTL stores the cells and decodes them itself
(:func:`hwnorm.hdl.stt.decode_cells`), so a co-simulation checks the hardware decoder against the
golden one under the same faults, bit for bit.

Faults: :func:`hwnorm.stt.buffer.inject` with the cell table scaled to ``ber`` (the largest
soft-bit probability; :meth:`hwnorm.stt.cells.CellTable.at_ber`), one stream per layer seeded
from (seed, layer index) — the sampler of the FP16 experiment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hwnorm.defaults import DEFAULT_CELLS
from hwnorm.stt.buffer import inject
from hwnorm.stt.cells import CellTable, load_table
from hwnorm.stt.intcodec import INT_CODECS, WeightCodec, bits_to_rows, cells_to_rows, fit, rows_to_bits
from hwnorm.stt.array import load_array_model, memory_cost

SEED_STRIDE = 0x9E3779B1  # decorrelates the layers' fault streams


@dataclass(frozen=True)
class WeightStore:
    """How a design's weight memories are stored: ``codec`` (:data:`INT_CODECS`), the cell table
    ``cells`` (bundled name or file), and a fault map drawn at ``ber`` from ``seed`` (ber 0: none)."""

    codec: str = "none"
    ber: float = 0.0
    seed: int = 0
    cells: str = DEFAULT_CELLS

    def __post_init__(self):
        if self.codec not in INT_CODECS:
            raise ValueError(f"stt codec {self.codec!r} is not a weight codec; allowed: {', '.join(INT_CODECS)}")
        if isinstance(self.ber, bool) or not isinstance(self.ber, (int, float)) or not 0 <= self.ber <= 0.5:
            raise ValueError(f"stt ber must be a number in [0, 0.5], got {self.ber!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2 ** 63:
            raise ValueError(f"stt seed must be an integer in [0, 2^63), got {self.seed!r}")
        if not isinstance(self.cells, str) or not self.cells:
            raise ValueError(f"stt cells must be a cell table name or file, got {self.cells!r}"[:200])

    def table(self) -> CellTable:
        return load_table(self.cells)

    def to_dict(self) -> dict:
        return {"codec": self.codec, "ber": float(self.ber), "seed": self.seed, "cells": str(self.cells)}


@dataclass
class StoredWeights:
    """One weight memory as stored: its codec, the clean encoded cells and the cells after faults."""

    codec: WeightCodec
    row_bits: int
    clean: np.ndarray   # (rows, cells_per_row) uint8 states
    cells: np.ndarray   # the same after the fault map
    flips: int

    @property
    def cell_rows(self) -> list[int]:
        """The ROM image: one word of 2·cells bits per row (cell c at bits [2c, 2c + 2))."""
        return cells_to_rows(self.cells)

    def decoded_rows(self) -> list[int]:
        return bits_to_rows(self.codec.decode(self.cells, self.row_bits))


def store_block(block, store: WeightStore, table: CellTable, index: int):
    """(effective layer, StoredWeights) of an MVU block's weight memory under ``store``."""
    row_bits = block.pe * block.simd * block.element_bits
    bits = rows_to_bits(block.weight_rows(), row_bits)
    codec = fit(store.codec, block.element_bits, bits, table)
    clean = codec.encode(bits, table)
    cells, flips = clean, 0
    if store.ber > 0:
        cells, flips = inject(table.at_ber(store.ber), clean, store.seed + SEED_STRIDE * (index + 1))
    stored = StoredWeights(codec, row_bits, clean, cells, flips)
    layer = block.layer
    if flips:
        layer = _with_weights(layer, block.weights_from_rows(stored.decoded_rows()))
    return layer, stored


def _with_weights(layer, weights):
    """``layer`` multiplying by ``weights``. Faulty weights can reach accumulator values the clean
    ones never did. Behind thresholds, the thresholds' declared range widens with them (the
    compares are the same; the threshold words get the bits the wider range needs). A raw
    accumulator output saturates at the clean layer's range instead: the next layer was built for
    that range (a requantizer is proven exact on it), so the guard keeps the network well formed —
    the hardware gets the same two compares."""
    probe = dataclasses.replace(layer, weights=weights, thresholds=None, acc_clip=None)
    lo, hi = probe.acc_range
    t = layer.thresholds
    if t is not None:
        t = dataclasses.replace(t, acc_lo=min(t.acc_lo, lo), acc_hi=max(t.acc_hi, hi))
        return dataclasses.replace(layer, weights=weights, thresholds=t)
    clean_lo, clean_hi = layer.out_range
    clip = None if clean_lo <= lo and hi <= clean_hi else (clean_lo, clean_hi)
    return dataclasses.replace(layer, weights=weights, acc_clip=clip)


def stored_network(net, folding: dict, store: WeightStore, table: CellTable | None = None, blocks: dict | None = None):
    """The network as its stored weight memories make it compute, and each weight memory's
    StoredWeights (layer name → StoredWeights). ``table`` overrides the store's cell table (a table
    already loaded); ``blocks`` are the layers' blocks at ``folding`` when the caller has them."""
    table = table or store.table()
    layers, memories = [], {}
    for index, layer in enumerate(net.layers):
        if layer.has_weight_memory:
            block = blocks[layer.name] if blocks else layer.block(folding[layer.name])
            layer, memories[layer.name] = store_block(block, store, table, index)
        layers.append(layer)
    return dataclasses.replace(net, layers=tuple(layers)), memories


def buffer_costs(net, folding: dict, codec: str, table: CellTable, energy_table, model=None,
                 blocks: dict | None = None) -> list:
    """Array-level costs (:func:`hwnorm.stt.array.memory_cost`) of every MVU weight memory of a
    folded network stored with ``codec``: each row is read once per input vector of its layer
    (a convolution: once per output pixel) and written once per model load."""
    return memory_costs(net, stored_network(net, folding, WeightStore(codec), table, blocks)[1], table, energy_table,
                        model)


def memory_costs(net, memories: dict, table: CellTable, energy_table, model=None) -> list:
    """:func:`buffer_costs` of memories already stored (layer name → StoredWeights, clean cells)."""
    model = model or load_array_model()
    return [memory_cost(model, table, energy_table, layer.name, memories[layer.name].clean,
                        memories[layer.name].row_bits, layer.units_per_image)
            for layer in net.layers if layer.name in memories]
