"""The codecs written the straightforward vectorized-numpy way.

Two jobs: the baseline of the ``stt`` benchmark (same algorithm, no Numba), and an independent
second implementation the tests hold the Numba kernels to, bit for bit.
"""

from __future__ import annotations

import numpy as np

from hwnorm.stt.cells import TRANSITION_OF
from hwnorm.stt.codecs import (EXPONENT_MASK, HAMMING_DATA_POS, MAX_FINITE, STATUS_CORRECTED, STATUS_DETECTED,
                               CodecSpec)

_PARITY_MASKS = [np.array([p for p in range(1, 22) if (p >> k) & 1 and p & (p - 1)]) for k in range(5)]


def _positions(spec: CodecSpec):
    if spec.codec == "hamming":
        c = np.arange(11)
        return 2 * c + 1, 2 * c
    return np.array([p[0] for p in spec.pairing]), np.array([p[1] for p in spec.pairing])


def _transformable(spec: CodecSpec) -> np.ndarray:
    """Which data cells of a block the rearrange transform touches."""
    return np.tile(spec.transformable, spec.block_words)


def _finite(w: np.ndarray) -> np.ndarray:
    return np.where((w & EXPONENT_MASK) == EXPONENT_MASK, (w & 0x8000) | MAX_FINITE, w)


def hamming_encode(words: np.ndarray) -> np.ndarray:
    w = words.astype(np.int64)
    bits = np.zeros((w.size, 22), np.int64)
    bits[:, HAMMING_DATA_POS] = (w[:, None] >> np.arange(16)) & 1
    for k, cover in enumerate(_PARITY_MASKS):
        bits[:, 1 << k] = bits[:, cover].sum(axis=1) & 1
    bits[:, 0] = bits[:, 1:].sum(axis=1) & 1
    return (bits << np.arange(22)).sum(axis=1)


def hamming_decode(cw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    bits = (cw[:, None] >> np.arange(22)) & 1
    syndrome = np.bitwise_xor.reduce(np.where(bits == 1, np.arange(22), 0), axis=1)
    parity = bits.sum(axis=1) & 1
    fixable = (parity == 1) & (syndrome <= 21)
    flip = np.where(fixable & (syndrome > 0), np.int64(1) << np.minimum(syndrome, 21), 0)
    fixed = cw ^ flip
    data = ((fixed[:, None] >> HAMMING_DATA_POS) & 1) << np.arange(16)
    words = data.sum(axis=1)
    detected = ((parity == 1) & (syndrome > 21)) | ((parity == 0) & (syndrome != 0))
    status = np.where(detected, STATUS_DETECTED, np.where(parity == 1, STATUS_CORRECTED, 0))
    return np.where(detected, 0, words), status.astype(np.int8)


def encode(spec: CodecSpec, weights, old: np.ndarray | None = None) -> np.ndarray:
    words = spec.check_weights(weights).astype(np.int64)
    nb = spec.n_blocks(words.size)
    words = np.concatenate([words, np.zeros(nb * spec.block_words - words.size, np.int64)])
    hard, soft = _positions(spec)
    if spec.codec == "hamming":
        cw = hamming_encode(words)
        return ((((cw[:, None] >> hard) & 1) << 1) | ((cw[:, None] >> soft) & 1)).astype(np.uint8)
    if spec.uses_backup:
        words = words | (((words >> 15) & 1) << 14)
    data = ((((words[:, None] >> hard) & 1) << 1) | ((words[:, None] >> soft) & 1)).reshape(nb, -1)
    if spec.is_block:
        movable = _transformable(spec)
        if spec.write_aware:
            old = np.zeros((nb, spec.cells_per_block), np.int64) if old is None else old.astype(np.int64)
            tc = np.asarray(spec.transition_cost)[TRANSITION_OF]
            totals = np.stack([tc[old[:, :-2], np.where(movable, data ^ t, data)].sum(axis=1)
                               + tc[old[:, -2], 3 * (t & 1)] + tc[old[:, -1], 3 * (t >> 1)]
                               for t in range(4)], axis=1)
        else:
            cost = np.asarray(spec.state_cost)
            totals = np.stack([cost[np.where(movable, data ^ t, data)].sum(axis=1)
                               + cost[3 * (t & 1)] + cost[3 * (t >> 1)] for t in range(4)], axis=1)
        t = np.argmin(totals, axis=1)[:, None]  # the first minimum: the lowest t, as the kernel
        data = np.where(movable, data ^ t, data)
        return np.concatenate([data, 3 * (t & 1), 3 * (t >> 1)], axis=1).astype(np.uint8)
    if spec.codec == "fnw":
        old = np.zeros((nb, 9), np.int64) if old is None else old.astype(np.int64)
        tc = np.asarray(spec.transition_cost)[TRANSITION_OF]
        keep = tc[old[:, :8], data].sum(axis=1) + tc[old[:, 8], 0]
        flip = tc[old[:, :8], 3 - data].sum(axis=1) + tc[old[:, 8], 3]
        inv = (flip < keep)[:, None]
        return np.concatenate([np.where(inv, 3 - data, data), 3 * inv], axis=1).astype(np.uint8)
    return data.astype(np.uint8)


def decode(spec: CodecSpec, cells: np.ndarray, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    cells = cells.astype(np.int64)
    nb = cells.shape[0]
    hard, soft = _positions(spec)
    repair = np.array([0, spec.repair[0], spec.repair[1], 3])
    status = np.zeros(nb, np.int8)
    if spec.codec == "hamming":
        cw = (((cells >> 1) << hard) | ((cells & 1) << soft)).sum(axis=1)
        words, status = hamming_decode(cw)
    else:
        data = cells[:, :spec.block_words * 8]
        if spec.is_block:
            flags = cells[:, -2:]
            status[((flags == 1) | (flags == 2)).any(axis=1)] = STATUS_CORRECTED
            f = repair[flags] >> 1
            t = (f[:, 0] | (f[:, 1] << 1))[:, None]
            data = np.where(_transformable(spec), data ^ t, data)
        if spec.codec == "fnw":
            data = np.where((repair[cells[:, 8]] == 3)[:, None], 3 - data, data)
        data = data.reshape(nb * spec.block_words, 8)
        if spec.uses_backup:
            sign = data[:, spec.sign_cell]
            bad = ((sign == 1) | (sign == 2)).reshape(nb, spec.block_words).any(axis=1)
            status[bad] = STATUS_CORRECTED
            data[:, spec.sign_cell] = repair[sign]
        words = (((data >> 1) << hard) | ((data & 1) << soft)).sum(axis=1)
        if spec.uses_backup:
            words &= ~0x4000
    words = _finite(words).astype(np.uint16)
    return words[:n].view(np.float16), status
