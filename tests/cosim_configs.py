"""Random block configurations for the co-simulation suite, each drawn from one seed.

Every draw picks the parameters a user could pick — widths, signedness, rounding and overflow
modes, per-channel shifts, K not a multiple of 64, threshold counts, foldings, codec pairings and
block sizes — and returns the component with a stimulus factory. Replay one with its seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hwnorm import bnn
from hwnorm.bnn import ThresholdSpec
from hwnorm.datatypes import IntType
from hwnorm.ir import MVULayer, InputThreshold
from hwnorm.layers.base import divisors
from hwnorm.sim import jobs
from hwnorm.stt import load_table, make_codec
from hwnorm.stt.blocks import STTDecoderBlock, STTEncoderBlock
from hwnorm.timing import UNTIMED, Timing
from tests.helpers import bn_block, random_spec, vectors

ROUNDINGS = ("floor", "half_up", "half_away", "half_even")
SEED_VARIABLE = "HWNORM_COSIM_SEED"
BASE_SEED = int(os.environ.get(SEED_VARIABLE, "2026"))  # every co-simulation stimulus derives from it


@dataclass
class Config:
    name: str
    description: str
    component: object
    job: Callable[[int, int], dict]  # (vectors, seed) → testbench job


def mvu_config(rng, k: int, rows: int, in_bits: int, n_thresholds: int, n: int = 150, weight_bits: int = 1):
    """A layer (±1 weights, or signed integers of ``weight_bits``) whose thresholds sit exactly on
    accumulator values the stimulus reaches (ties), and ``n`` input vectors starting with the extremes."""
    in_signed = in_bits > 1 and bool(rng.integers(2))
    if weight_bits == 1:
        weights = bnn.pack_bits(rng.integers(0, 2, (rows, k)))
    else:
        weights = rng.integers(*IntType(weight_bits, True).range, (rows, k), endpoint=True)
    wide = {} if weight_bits == 1 else {"weight_bits": weight_bits, "weight_signed": True}
    layer = MVULayer(weights, k, None, in_bits=in_bits, in_signed=in_signed, name="fc", **wide)
    if in_bits == 1:
        x = rng.integers(0, 2, (n, k))
        x[0], x[1] = 0, 1                                    # all −1, all +1
    else:
        lo, hi = layer.in_range
        x = rng.integers(lo, hi + 1, (n, k))
        x[0], x[1], x[2] = lo, hi, 0                         # extremes and all-zero
    if n_thresholds == 0:
        return layer, x
    acc = layer.accumulate(layer.golden_input(x))
    lo_acc, hi_acc = layer.acc_range
    picks = acc[rng.integers(0, len(x), (rows, n_thresholds)), np.arange(rows)[:, None]]
    thr = np.sort(picks + rng.integers(0, 2, picks.shape), axis=1)  # on a reached value, or one above
    return MVULayer(layer.weights, k, ThresholdSpec(np.clip(thr, lo_acc, hi_acc + 1), lo_acc, hi_acc,
                                                out_base=int(rng.integers(-2, 2)) if n_thresholds > 1 else 0),
                in_bits=in_bits, in_signed=in_signed, name="fc", **wide), x


# Target clocks a block may be pipelined for: none, the default, and clocks so fast that every
# level of every chain gets its own register (each placement of the cuts is then exercised).
TIMINGS = (UNTIMED, Timing(150), Timing(400), Timing(1000), Timing(150, "ice40"))


def random_timing(rng) -> Timing:
    return TIMINGS[int(rng.integers(len(TIMINGS)))]


def _pick(rng, values):
    return values[int(rng.integers(len(values)))]


def _fold(rng, n: int, at_most: int) -> int:
    """A divisor of ``n`` leaving at most ``at_most`` folds (bounded cycles per vector)."""
    return int(_pick(rng, [d for d in divisors(n) if n // d <= at_most]))


def random_qbn(rng) -> Config:
    rounding, overflow = _pick(rng, ROUNDINGS), _pick(rng, ("saturate", "wrap"))
    per_channel = bool(rng.integers(2))
    spec = random_spec(rng, int(rng.integers(1, 33)), rounding, overflow, per_channel,
                       in_signed=bool(rng.integers(2)), out_signed=bool(rng.integers(2)))
    lanes = _fold(rng, spec.channels, 8)
    dut = bn_block(spec, lanes).with_timing(random_timing(rng)).component()

    def job(n, seed):
        return jobs.layer_job(dut.block, vectors(spec, np.random.default_rng(seed), n), seed)
    return Config("qbn", f"BN {spec.channels} ch, {spec.in_fmt} → {spec.out_fmt}, {rounding}, {overflow}, "
                  f"{'per-channel' if per_channel else 'shared'} shift, {lanes} lanes, "
                  f"{dut.block.timing.describe()}", dut, job)


def _random_inputs(layer, rng, n: int) -> np.ndarray:
    lo, hi = layer.in_range  # stored values: bits 0 / 1 for a bipolar input
    return rng.integers(lo, hi + 1, (n, layer.in_features))


def random_mvu(rng) -> Config:
    """K = SIMD·SF and N = PE·NF with SF, NF ≤ 4 (≤ 16 clocks per vector); PE·SIMD·bits ≤ 512 keeps
    Icarus, which simulates wide adder trees slowly, at a few seconds per configuration."""
    in_bits = _pick(rng, (1, 1, 1, 2, 4, 8))
    simd, sf = int(rng.integers(1, 64 // in_bits + 1)), int(rng.integers(1, 5))
    pe, nf = int(rng.integers(1, max(2, 512 // (simd * in_bits)) + 1)), int(rng.integers(1, 5))
    pe = min(pe, 8)
    k, rows = simd * sf, pe * nf
    n_thr = _pick(rng, (0, 1, 1, 3)) if in_bits > 1 else _pick(rng, (0, 1, 1))
    weight_bits = _pick(rng, (1, 1, 2, 3, 4, 8))  # integer weights: PE·SIMD multipliers (or ±w adders)
    layer, probe = mvu_config(rng, k, rows, in_bits, n_thr, weight_bits=weight_bits)
    dut = layer.block({"pe": pe, "simd": simd}).with_timing(random_timing(rng)).component()

    def job(n, seed):  # the probe vectors (extremes, threshold ties) first, then fresh random ones
        x = np.concatenate([probe, _random_inputs(layer, np.random.default_rng(seed), max(0, n - len(probe)))])
        return jobs.layer_job(dut.block, x[:n], seed)
    kind = "binary (±1)" if in_bits == 1 else f"{in_bits}-bit {'signed' if layer.in_signed else 'unsigned'}"
    return Config("mvu", f"MVU K={k} N={rows}, {kind} input, {layer.weight_type} weights, {n_thr} thresholds, "
                  f"PE {pe} SIMD {simd}, {dut.block.timing.describe()}", dut, job)


def random_thresholding(rng) -> Config:
    channels, in_bits = int(rng.integers(1, 64)), int(rng.integers(1, 9))
    in_signed = in_bits > 1 and bool(rng.integers(2))
    n_thr = _pick(rng, (1, 1, 2, 3, 7))
    lo, hi = IntType(in_bits, in_signed).range
    thr = np.sort(rng.integers(lo, hi + 2, (channels, n_thr)), axis=1)  # acc_hi + 1: never fires
    out_base = int(rng.integers(-2, 2)) if n_thr > 1 else 0
    layer = InputThreshold(ThresholdSpec(thr, lo, hi, out_base=out_base), in_bits, in_signed, name="thr")
    pe = _fold(rng, channels, 8)
    dut = layer.block({"pe": pe}).with_timing(random_timing(rng)).component()
    return Config("thresholding", f"thresholds {channels} ch × {n_thr}, {in_bits}-bit "
                  f"{'signed' if in_signed else 'unsigned'} input, PE {pe}, {dut.block.timing.describe()}", dut,
                  dut.block.job)


def _random_pairing(rng, keep_sign_pair: bool):
    bits = [int(b) for b in rng.permutation(16)]
    if keep_sign_pair:
        bits = [15, 14] + [b for b in bits if b not in (14, 15)]
    pairs = [tuple(bits[2 * i:2 * i + 2]) for i in range(8)]
    return tuple(pairs[int(i)] for i in rng.permutation(8))


def random_stt(rng, kind: str) -> Config:
    codec = _pick(rng, ("none", "backup", "rearrange", "backup+rearrange"))
    block_words = int(rng.integers(1, 9)) if "rearrange" in codec else None
    spec = make_codec(codec, load_table(), pairing=_random_pairing(rng, "backup" in codec), block_words=block_words)
    block = (STTEncoderBlock if kind == "stt_encoder" else STTDecoderBlock)(spec)
    dut = block.with_timing(random_timing(rng)).component()
    return Config(kind, f"{kind} {spec.label}, {spec.block_words} words per block, pairing {spec.pairing}, "
                  f"{block.timing.describe()}", dut, dut.block.job)


DRAWS = (random_qbn, random_mvu, random_thresholding, lambda rng: random_stt(rng, "stt_encoder"),
         random_qbn, random_mvu, random_thresholding, lambda rng: random_stt(rng, "stt_decoder"))


def random_config(seed: int, index: int) -> Config:
    """Configuration ``index`` of a sweep: the block kinds take turns, everything else is drawn."""
    return DRAWS[index % len(DRAWS)](np.random.default_rng(seed))
