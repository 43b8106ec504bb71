"""STTEncoder / STTDecoder in the Amaranth simulator, held to the golden codecs bit for bit, with
random idle cycles on the input and random back-pressure on the output."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog

from hwnorm.stt.blocks import HDL_CODECS, STTDecoderBlock, STTEncoderBlock
from hwnorm.stt import load_table, make_codec
from tests.hdl_sim import run_stream

TABLE = load_table()
ALL = np.arange(1 << 16, dtype=np.uint16)
BIT14_FREE = ALL[((ALL & 0x7C00) != 0x7C00) & ((ALL & 0x4000) == 0)]


def pack(rows: np.ndarray, width: int) -> list[int]:
    return [sum(int(v) << (width * k) for k, v in enumerate(row)) for row in rows]


def directed_and_random(spec, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    corners = np.array([0x0000, 0x8000, 0x3C00, 0xBC00, 0x0001, 0x8001, 0x3BFF, 0xBBFF], np.uint16)
    words = np.concatenate([np.resize(corners, 2 * spec.block_words * 4), rng.choice(BIT14_FREE, n)])
    return words[: len(words) // spec.block_words * spec.block_words]


@pytest.mark.parametrize("codec", HDL_CODECS)
def test_encoder_equals_the_golden_encoder(codec):
    spec = make_codec(codec, TABLE)
    words = directed_and_random(spec, 60, seed=1)
    golden = spec.encode(words.view(np.float16))
    got = run_stream(STTEncoderBlock(spec).component(), pack(words.reshape(-1, spec.block_words), 16), seed=2)
    assert got == pack(golden, 2)


@pytest.mark.parametrize("codec", HDL_CODECS)
def test_decoder_equals_the_golden_decoder_on_clean_and_corrupted_cells(codec):
    spec = make_codec(codec, TABLE)
    rng = np.random.default_rng(3)
    clean = spec.encode(directed_and_random(spec, 40, seed=4).view(np.float16))
    noisy = rng.integers(0, 4, (24, spec.cells_per_block), dtype=np.uint8)  # arbitrary faults
    cells = np.concatenate([clean, noisy])
    words, status = spec.decode(cells)
    got = run_stream(STTDecoderBlock(spec).component(), pack(cells, 2), seed=5)
    expect_words = pack(words.view(np.uint16).reshape(-1, spec.block_words), 16)
    assert [int(g.words) for g in got] == expect_words
    assert [int(g.status) for g in got] == status.tolist()


@pytest.mark.parametrize("codec", ["fnw", "hamming", "rearrange-wa"])
def test_codecs_without_hardware_are_refused_clearly(codec):
    with pytest.raises(ValueError, match="no hardware codec yet"):
        STTEncoderBlock(make_codec(codec, TABLE))


def test_verilog_export_is_deterministic():
    spec = make_codec("backup+rearrange", TABLE)
    a = verilog.convert(STTEncoderBlock(spec).component(), name="stt_encoder", emit_src=False)
    b = verilog.convert(STTEncoderBlock(spec).component(), name="stt_encoder", emit_src=False)
    assert a == b and "module stt_encoder" in a
