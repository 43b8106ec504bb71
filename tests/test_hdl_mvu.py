"""MVU and Thresholding in the Amaranth simulator, bit-exact against the IR's golden layers:
binary (XNOR/popcount) and integer × binary inputs, 1-bit / multi-bit thresholds and raw
accumulators, several PE × SIMD foldings, random idle cycles and back-pressure; the declared
cycle model (latency, II, per-beat schedule) against the simulated handshakes."""

from __future__ import annotations

import numpy as np
import pytest

from hwnorm import bnn
from hwnorm.bnn import ThresholdSpec
from hwnorm.ir import MVULayer, Bits, InputThreshold
from tests.hdl_sim import full_rate_timing, lanes, run_stream


def random_layer(rng, k, rows, in_bits=1, in_signed=False, n_thresholds=1, out_base=0, raw=False):
    w = rng.integers(0, 2, (rows, k))
    layer = MVULayer(bnn.pack_bits(w), k, None, in_bits=in_bits, in_signed=in_signed, name="fc")
    if raw:
        return layer
    lo, hi = layer.acc_range
    thr = np.sort(rng.integers(lo, hi + 2, (rows, n_thresholds)), axis=1)
    thr[0] = lo          # always fires
    thr[-1, -1] = hi + 1  # never fires
    return MVULayer(layer.weights, k, ThresholdSpec(thr, lo, hi, out_base), in_bits=in_bits, in_signed=in_signed)


def random_inputs(rng, layer: MVULayer, n: int) -> np.ndarray:
    lo, hi = layer.in_range
    x = rng.integers(lo, hi + 1, (n, layer.in_features))
    if layer.in_bits == 1:
        return x
    x[0], x[1] = lo, hi  # accumulator extremes (with weights of one sign)
    return x


def golden(layer: MVULayer, x: np.ndarray) -> np.ndarray:
    act = Bits(bnn.pack_bits(x), layer.in_features) if layer.in_bits == 1 else x
    out = layer.run(act)
    return out.unpack() if isinstance(out, Bits) else out


def run_mvu(layer, x, pe, simd, seed):
    dut = layer.block({"pe": pe, "simd": simd}).component()
    got = run_stream(dut, x.reshape(-1, simd).tolist(), seed=seed, n_out=len(x) * dut.nf)
    return np.array([lanes(g, pe) for g in got]).reshape(len(x), -1)


@pytest.mark.parametrize("pe,simd", [(1, 1), (2, 4), (3, 12), (6, 3), (6, 24), (2, 24)])
def test_binary_mvu_with_sign_thresholds(pe, simd):
    rng = np.random.default_rng(pe * 100 + simd)
    layer = random_layer(rng, 24, 6)
    x = random_inputs(rng, layer, 6)
    np.testing.assert_array_equal(run_mvu(layer, x, pe, simd, seed=1), golden(layer, x))


@pytest.mark.parametrize("in_bits,in_signed", [(1, False), (4, False), (3, True), (8, False)])
def test_multibit_thresholds_and_integer_inputs(in_bits, in_signed):
    rng = np.random.default_rng(in_bits)
    layer = random_layer(rng, 12, 4, in_bits, in_signed, n_thresholds=3, out_base=-1)
    x = random_inputs(rng, layer, 5)
    np.testing.assert_array_equal(run_mvu(layer, x, 2, 3, seed=2), golden(layer, x))


@pytest.mark.parametrize("in_bits", [1, 8])
def test_raw_accumulator_out_reaches_the_extremes(in_bits):
    rng = np.random.default_rng(9)
    k = 16
    w = np.ones((4, k), np.uint8)
    w[1] = 0
    layer = MVULayer(bnn.pack_bits(w), k, None, in_bits=in_bits, in_signed=in_bits > 1)
    x = random_inputs(rng, layer, 4)
    if in_bits == 1:
        x[0], x[1] = 0, 1
    got = run_mvu(layer, x, 2, 8, seed=3)
    np.testing.assert_array_equal(got, golden(layer, x))
    lo, hi = layer.acc_range
    assert got.min() == lo and got.max() == hi


def test_declared_cycle_model_matches_the_simulation():
    rng = np.random.default_rng(11)
    layer = random_layer(rng, 12, 6)
    x = random_inputs(rng, layer, 3)
    dut = layer.block({"pe": 2, "simd": 4}).component()  # SF = 3, NF = 3
    t = full_rate_timing(dut, x.reshape(-1, 4).tolist(), n_out=3 * dut.nf)
    assert t.produced == dut.schedule([0] * len(t.accepted))
    assert t.produced[dut.nf - 1] - t.accepted[0] == dut.latency
    assert t.accepted[dut.sf] - t.accepted[0] == dut.initiation_interval  # next vector's first beat
    np.testing.assert_array_equal(np.array([lanes(o, 2) for o in t.outputs]).reshape(3, -1), golden(layer, x))


def _issue_clock_by_clock(arrivals, sf, nf, depth):
    """The MVU's issue rule stepped one clock at a time: what the vectorized model must equal."""
    taken, out, t = [], [], -1
    for v in range(len(arrivals) // sf):
        for fold in range(nf):
            for s in range(sf):
                if fold == 0:
                    t = max(t + 1, arrivals[v * sf + s])
                    taken.append(t)
                else:
                    t += 1
            out.append(t + depth)
    return taken, out


def test_the_vectorized_issue_model_equals_the_clock_by_clock_rule():
    rng = np.random.default_rng(5)
    layer = random_layer(rng, 12, 6)
    for pe, simd in [(1, 1), (2, 4), (3, 2), (6, 12)]:
        block = layer.block({"pe": pe, "simd": simd})
        for _ in range(40):
            n = int(rng.integers(0, 5 * block.sf))
            arrivals = rng.integers(0, 60, n)
            arrivals = (np.sort(arrivals) if rng.random() < 0.7 else arrivals).tolist()
            want = _issue_clock_by_clock(arrivals, block.sf, block.nf, block.depth)
            assert (block.accepts(arrivals), block.schedule(arrivals)) == want


@pytest.mark.parametrize("pe,simd,match", [(4, 1, "PE=4 must divide its 6 output rows; allowed: 1, 2, 3, 6"),
                                           (1, 5, "SIMD=5 must divide its 24 input columns"),
                                           (0, 1, r"folding.mvu.*\.pe must be a whole number ≥ 1, got 0")])
def test_folding_is_validated(pe, simd, match):
    layer = random_layer(np.random.default_rng(0), 24, 6)
    with pytest.raises(ValueError, match=match):
        layer.block({"pe": pe, "simd": simd})


@pytest.mark.parametrize("n_thresholds,pe", [(1, 4), (3, 2)])
def test_thresholding_equals_the_input_threshold_layer(n_thresholds, pe):
    rng = np.random.default_rng(n_thresholds)
    thr = np.sort(rng.integers(0, 257, (8, n_thresholds)), axis=1)
    layer = InputThreshold(ThresholdSpec(thr, 0, 255))
    x = rng.integers(0, 256, (6, 8))
    x[0] = thr[:, 0]  # exactly on the thresholds: acc ≥ T fires
    expect = golden_input(layer, x)
    block = layer.block({"pe": pe})
    got = run_stream(block.component(), x.reshape(-1, pe).tolist(), seed=4)
    np.testing.assert_array_equal(np.array([lanes(g, pe) for g in got]).reshape(x.shape), expect)
    t = full_rate_timing(block.component(), x.reshape(-1, pe).tolist(), n_out=x.size // pe)
    assert t.produced == block.schedule(t.accepted)
    assert t.produced[block.groups - 1] - t.accepted[0] == block.latency  # the first vector's last beat


@pytest.mark.parametrize("in_bits,signed,n_thresholds,pe,clock", [(4, True, 15, 2, 0), (8, False, 255, 1, 150),
                                                                  (8, False, 255, 3, 150)])
def test_many_thresholds_on_a_narrow_input_are_read_from_tables(in_bits, signed, n_thresholds, pe, clock):
    """The table form (a ROM per lane over beat and value) against the golden layer: every value
    of the input type in every channel, under random stalls; at 150 MHz a 1,536-row table goes to
    block RAM and takes a register after it."""
    from hwnorm.datatypes import IntType
    from hwnorm.timing import Timing
    rng = np.random.default_rng(in_bits + pe)
    lo, hi = IntType(in_bits, signed).range
    thr = np.sort(rng.integers(lo, hi + 2, (6, n_thresholds)), axis=1)
    layer = InputThreshold(ThresholdSpec(thr, lo, hi, out_base=-(n_thresholds + 1) // 2 if signed else 0),
                           in_bits=in_bits, in_signed=signed)
    block = layer.block({"pe": pe}).with_timing(Timing(clock, "ecp5"))
    assert block.table and (block.table_ranks == 1 or pe > 1)
    x = np.stack([rng.permutation(np.arange(lo, hi + 1)) for _ in range(6)], axis=1)  # (values, 6 channels)
    got = run_stream(block.component(), x.reshape(-1, pe).tolist(), seed=7)
    np.testing.assert_array_equal(np.array([lanes(g, pe) for g in got]).reshape(x.shape), golden_input(layer, x))
    t = full_rate_timing(block.component(), x[:8].reshape(-1, pe).tolist(), n_out=8 * 6 // pe)
    assert t.produced == block.schedule(t.accepted)


def test_few_thresholds_and_binarizing_thresholds_stay_compares():
    thr = np.sort(np.random.default_rng(1).integers(0, 257, (8, 3)), axis=1)
    assert not InputThreshold(ThresholdSpec(thr, 0, 255)).block({"pe": 2}).table
    assert not InputThreshold(ThresholdSpec(thr[:, :1], 0, 255)).block({"pe": 8}).table


def golden_input(layer: InputThreshold, x):
    out = layer.run(x)
    return out.unpack() if isinstance(out, Bits) else out


# ---------------------------------------------------------------- integer weights
def int_layer(rng, k, rows, in_bits, in_signed, weight_bits, weight_signed, n_thresholds=2, raw=False,
              in_range=None):
    from hwnorm.datatypes import IntType
    w = rng.integers(*IntType(weight_bits, weight_signed).range, (rows, k), endpoint=True)
    lo, hi = in_range or (None, None)
    layer = MVULayer(w, k, None, in_bits=in_bits, in_signed=in_signed, name="fc", weight_bits=weight_bits,
                 weight_signed=weight_signed, in_lo=lo, in_hi=hi)
    if raw:
        return layer
    a, b = layer.acc_range
    thr = np.sort(rng.integers(a, b + 2, (rows, n_thresholds)), axis=1)
    return MVULayer(w, k, ThresholdSpec(thr, a, b, out_base=-1), in_bits=in_bits, in_signed=in_signed, name="fc",
                weight_bits=weight_bits, weight_signed=weight_signed, in_lo=lo, in_hi=hi)


@pytest.mark.parametrize("in_bits,in_signed,weight_bits,weight_signed,raw", [
    (1, False, 2, True, False),   # ±1 inputs × ternary-capable int2 weights
    (2, True, 2, True, False),    # int2 × int2
    (4, False, 3, True, True),    # uint4 × int3, raw accumulator
    (3, True, 4, False, False),   # int3 × uint4
    (8, True, 8, True, True),     # int8 × int8 (multipliers)
    (2, False, 2, False, True),   # uint2 × uint2 (shift-add, both unsigned)
    (8, True, 2, False, True),    # int8 × uint2 (shift-add over the weight)
    (6, False, 4, True, False),   # uint6 × int4 (shift-add over the signed weight)
])
def test_integer_weights_golden_and_hardware(in_bits, in_signed, weight_bits, weight_signed, raw):
    rng = np.random.default_rng(in_bits * 10 + weight_bits)
    layer = int_layer(rng, 12, 4, in_bits, in_signed, weight_bits, weight_signed, raw=raw)
    x = random_inputs(rng, layer, 6)
    w = layer.weight_matrix()
    pm = x * 2 - 1 if layer.binary else x
    acc = pm @ w.T
    want = acc if raw else layer.thresholds.apply(acc)
    np.testing.assert_array_equal(golden(layer, x), want)
    lo, hi = layer.acc_range
    assert lo <= acc.min() and acc.max() <= hi
    for pe, simd in ((2, 3), (4, 12), (1, 1)):
        np.testing.assert_array_equal(run_mvu(layer, x, pe, simd, seed=pe + simd), want)


def test_narrow_input_range_tightens_the_accumulator_and_is_checked():
    rng = np.random.default_rng(5)
    wide = int_layer(rng, 16, 3, 2, True, 2, True, raw=True)
    narrow = int_layer(np.random.default_rng(5), 16, 3, 2, True, 2, True, raw=True, in_range=(-1, 1))
    assert np.array_equal(wide.weights, narrow.weights)
    assert narrow.acc_range[1] <= wide.acc_range[1] and narrow.to_dict()["in_range"] == [-1, 1]
    assert "in_range" not in wide.to_dict()
    with pytest.raises(ValueError, match=r"input outside its declared range \[-1, 1\]"):
        narrow.run(np.full((1, 16), -2))
    again = MVULayer.from_dict(narrow.to_dict())
    assert again.to_dict() == narrow.to_dict() and again.weight_type.name == "int2"


def test_integer_weights_are_checked_against_their_type():
    with pytest.raises(ValueError, match=r"weights outside their int2 range \[-2, 1\]"):
        MVULayer(np.array([[2, 0]]), 2, None, in_bits=4, weight_bits=2, weight_signed=True)


@pytest.mark.parametrize("target,pe,simd,k,rows,banks", [("ecp5", 3, 24, 1200, 66, 3), ("ice40", 1, 16, 320, 30, 3),
                                                         ("ecp5", 1, 36, 2304, 72, 9)])
def test_a_weight_rom_deeper_than_a_block_ram_is_banked_with_registered_banks(target, pe, simd, k, rows, banks):
    """With a target clock, a weight ROM deeper than one column of block RAM tiles is split into
    banks, each read into its own register before the bank mux: same outputs, the cycle model
    declared (one clock more of latency), and no more block RAM tiles than the ROM whole. Nine
    banks on ECP5 take a two-level mux, after a register of the banks' data in the fabric."""
    from hwnorm.estimate.resources import _tiles, place_memories
    from hwnorm.estimate.synthesis import TARGETS
    from hwnorm.timing import Timing
    rng = np.random.default_rng(k)
    layer = random_layer(rng, k, rows, n_thresholds=1)
    block = layer.block({"pe": pe, "simd": simd}).with_timing(Timing(150, target))
    assert block.weight_banks == banks
    # ECP5: the banks' data cross to the mux through a fabric register (the route out of the block
    # RAM row and a mux level over far-apart banks do not fit a stage); then the mux levels
    assert block.weight_bank_far_ranks == (target == "ecp5")
    assert block.weight_mux_cuts == ((1,) if banks > 8 else (0,))
    t = TARGETS[target]
    placed = place_memories(block.inventory(), t)
    width = pe * simd
    weight_tiles = sum(c for mem, place, c in placed if place == "bram" and mem.width == width)
    assert weight_tiles <= _tiles(width, block.sf * block.nf, t.rules["bram_modes"])
    x = random_inputs(rng, layer, 3)
    dut = block.component()
    timed = full_rate_timing(dut, x.reshape(-1, simd).tolist(), n_out=3 * dut.nf)
    assert timed.produced == dut.schedule([0] * len(timed.accepted))
    assert timed.produced[dut.nf - 1] - timed.accepted[0] == dut.latency
    np.testing.assert_array_equal(np.array([lanes(o, pe) for o in timed.outputs]).reshape(3, -1), golden(layer, x))
    got = run_stream(dut, x.reshape(-1, simd).tolist(), seed=4, n_out=3 * dut.nf)
    np.testing.assert_array_equal(np.array([lanes(g, pe) for g in got]).reshape(3, -1), golden(layer, x))


@pytest.mark.parametrize("make", [
    lambda rng: random_layer(rng, 12, 4, 8, False, n_thresholds=3),         # uint8 × ±1: a negation per lane
    lambda rng: int_layer(rng, 12, 4, 1, False, 4, True, raw=True),         # ±1 × int4
    lambda rng: int_layer(rng, 12, 4, 8, True, 8, True, raw=True),          # int8 × int8: multipliers
])
def test_pipelined_terms_keep_outputs_and_the_declared_clocks(make):
    """With a target clock, a lane's term (±x, ±w, a product) is registered before the adder tree
    when it and the tree's first adder do not fit one stage (the CIFAR CNV's first layer: 8-bit
    pixels × ±1): the same outputs under back-pressure, and the latency the model declares."""
    from hwnorm.timing import Timing
    rng = np.random.default_rng(17)
    layer = make(rng)
    block = layer.block({"pe": 2, "simd": 3}).with_timing(Timing(150, "ecp5"))
    if layer.bipolar_weights and layer.in_bits == 8:
        assert block.term_ranks == 1
    x = random_inputs(rng, layer, 4)
    dut = block.component()
    timed = full_rate_timing(dut, x.reshape(-1, 3).tolist(), n_out=4 * dut.nf)
    assert timed.produced == dut.schedule([0] * len(timed.accepted))
    assert timed.produced[dut.nf - 1] - timed.accepted[0] == dut.latency
    got = run_stream(dut, x.reshape(-1, 3).tolist(), seed=6, n_out=4 * dut.nf)
    np.testing.assert_array_equal(np.array([lanes(g, 2) for g in got]).reshape(4, -1), golden(layer, x))


@pytest.mark.parametrize("make,pe,simd", [
    (lambda rng: random_layer(rng, 52, 10, n_thresholds=2), 5, 26),          # 130-bit rows: slices 44, 44, 42
    (lambda rng: int_layer(rng, 24, 6, 1, False, 4, True, raw=True), 3, 12),  # ±1 × int4: 144-bit rows
])
def test_a_wide_weight_rom_in_logic_reads_each_slice_at_its_own_address_copy(make, pe, simd):
    """With a target clock, a weight ROM left in logic whose row is wider than one address
    register should drive is read as slices, each at its own copy of the address counter: the
    same outputs under back-pressure and the same clocks."""
    from hwnorm.timing import Timing
    rng = np.random.default_rng(23)
    layer = make(rng)
    block = layer.block({"pe": pe, "simd": simd}).with_timing(Timing(150, "ecp5"))
    assert block.weight_address_copies == 3 and block.weight_banks == 1
    x = random_inputs(rng, layer, 4)
    dut = block.component()
    timed = full_rate_timing(dut, x.reshape(-1, simd).tolist(), n_out=4 * dut.nf)
    assert timed.produced == dut.schedule([0] * len(timed.accepted))
    got = run_stream(dut, x.reshape(-1, simd).tolist(), seed=8, n_out=4 * dut.nf)
    np.testing.assert_array_equal(np.array([lanes(g, pe) for g in got]).reshape(4, -1), golden(layer, x))
