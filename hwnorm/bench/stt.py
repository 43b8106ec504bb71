"""``stt``: STT-RAM buffer codec throughput — encode + inject soft errors + decode — against the same
pipeline in numpy (the codecs' numpy twin, with the faster of two numpy fault samplers)."""

from __future__ import annotations

import numpy as np

from hwnorm.bench.registry import benchmark, best_rate, figure
from hwnorm.stt import inject, load_table, make_codec
from hwnorm.stt import numpy_ref
from hwnorm.stt.buffer import inject_numpy

WEIGHTS = 1 << 22
BER = 1e-3


def inject_numpy_sparse(table, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """numpy fault sampler that, like the Numba kernel, only visits hit bits (geometric gaps at the
    largest probability, thinned per state)."""
    flat = cells.ravel()
    p = np.concatenate([table.p_soft, table.p_hard])
    p_max = float(p.max())
    slots = 2 * flat.size
    gaps = rng.geometric(p_max, size=int(slots * p_max * 1.1) + 1000)
    pos = np.cumsum(gaps) - 1
    while pos[-1] < slots:  # rare: draw more gaps
        pos = np.concatenate([pos, pos[-1] + np.cumsum(rng.geometric(p_max, size=pos.size))])
    pos = pos[pos < slots]
    cell, bit = pos // 2, pos & 1
    hit = rng.random(pos.size) < p[4 * bit + flat[cell]] / p_max
    out = flat.copy()
    np.bitwise_xor.at(out, cell[hit], (1 << bit[hit]).astype(np.uint8))
    return out.reshape(cells.shape)


@benchmark("stt")
def bench_stt(repeat: int = 5):
    table = load_table().at_ber(BER)
    rng = np.random.default_rng(0)
    weights = rng.uniform(-1, 1, WEIGHTS).astype(np.float16)
    for codec in ("backup+rearrange", "hamming"):
        spec = make_codec(codec, table)
        # correctness of what is timed: error-free round trips agree in both implementations
        cells = spec.encode(weights)
        if not np.array_equal(cells, numpy_ref.encode(spec, weights)) or not np.array_equal(
                spec.decode(cells, WEIGHTS)[0].view(np.uint16), weights.view(np.uint16)):
            raise AssertionError(f"stt benchmark: {codec} kernel and numpy twin disagree")

        def kernel():
            bad, _ = inject(table, spec.encode(weights), seed=1)
            return spec.decode(bad, WEIGHTS)

        def numpy_with(sampler):
            def run():
                bad = sampler(table, numpy_ref.encode(spec, weights), rng)
                return numpy_ref.decode(spec, bad, WEIGHTS)
            return run

        fast = best_rate(kernel, WEIGHTS, repeat)
        dense = best_rate(numpy_with(inject_numpy), WEIGHTS, max(1, repeat // 2))
        sparse = best_rate(numpy_with(inject_numpy_sparse), WEIGHTS, max(1, repeat // 2))
        which, base = ("numpy, sparse sampler", sparse) if sparse >= dense else ("numpy, dense sampler", dense)
        yield figure(f"stt.{codec}.encode_inject_decode", fast, "weights/s", which, base)
