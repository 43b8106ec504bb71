"""BNRequant in the Amaranth simulator, bit-exact against ``BNSpec.apply`` for every rounding mode,
both overflow rules, shared and per-channel shifts, several lane counts, with random back-pressure."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from hwnorm.fixed import FixedFormat
from hwnorm.bnspec import BNSpec, fold_bn
from tests.hdl_sim import full_rate_timing, lanes, run_stream
from tests.helpers import bn_block, random_spec, vectors


def run_bn(spec: BNSpec, x: np.ndarray, n_lanes: int, seed: int) -> np.ndarray:
    beats = x.reshape(-1, n_lanes).tolist()
    got = run_stream(bn_block(spec, n_lanes).component(), beats, seed=seed)
    return np.array([lanes(g, n_lanes) for g in got]).reshape(x.shape)


@pytest.mark.parametrize("rounding", ["floor", "half_up", "half_away", "half_even"])
@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
@pytest.mark.parametrize("per_channel_shift", [False, True])
def test_bn_requant_equals_the_golden_model(rounding, overflow, per_channel_shift):
    rng = np.random.default_rng(zlib.crc32(f"{rounding}{overflow}{per_channel_shift}".encode()))
    spec = random_spec(rng, 6, rounding, overflow, per_channel_shift, out_signed=bool(rng.integers(2)))
    x = vectors(spec, rng, 12)
    np.testing.assert_array_equal(run_bn(spec, x, n_lanes=int(rng.choice([1, 2, 3])), seed=1), spec.apply(x))


def test_exact_ties_round_by_the_declared_mode():
    # mult 1, bias 0, shift 2: x = ±2, ±6 sit exactly on .5 ties
    x = np.array([[-6, -2, 2, 6], [-7, -5, 5, 7]])
    for rounding in ("floor", "half_up", "half_away", "half_even"):
        spec = BNSpec(4, FixedFormat.integer(5), FixedFormat.integer(4), mult=1, bias=0, shift=2, rounding=rounding)
        np.testing.assert_array_equal(run_bn(spec, x, 4, seed=2), spec.apply(x), err_msg=rounding)


def test_folded_float_bn_runs_bit_exact():
    rng = np.random.default_rng(5)
    c = 8
    fold = fold_bn(rng.normal(1, 0.5, c), rng.normal(0, 1, c), rng.normal(0, 2, c), rng.uniform(0.5, 2, c),
                   in_fmt=FixedFormat(4, 4), out_fmt=FixedFormat(4, 4), rounding="half_even")
    x = vectors(fold.spec, rng, 10)
    np.testing.assert_array_equal(run_bn(fold.spec, x, 4, seed=3), fold.spec.apply(x))


def test_declared_latency_and_one_beat_per_clock():
    rng = np.random.default_rng(7)
    spec = random_spec(rng, 4, "half_up", "saturate", False)
    x = vectors(spec, rng, 5)
    dut = bn_block(spec, 2).component()
    t = full_rate_timing(dut, x.reshape(-1, 2).tolist(), n_out=10)
    assert np.all(np.diff(t.accepted) == 1)  # one beat per clock
    assert t.accepted[dut.groups] - t.accepted[0] == dut.initiation_interval  # next vector's first beat
    assert t.produced == dut.schedule(t.accepted)
    assert t.produced[dut.groups - 1] - t.accepted[0] == dut.latency  # the first vector's last beat
    np.testing.assert_array_equal(np.array([lanes(o, 2) for o in t.outputs]).reshape(x.shape), spec.apply(x))


def test_lanes_must_divide_the_channels():
    spec = BNSpec(6, FixedFormat.integer(8), FixedFormat.integer(8), mult=1, bias=0, shift=0)
    with pytest.raises(ValueError, match="PE=4 must divide its 6 channels; allowed: 1, 2, 3, 6"):
        bn_block(spec, 4)
