"""MLC STT-RAM golden model: cell table, codecs (exhaustive), energy accounting, fault injection."""

from __future__ import annotations

import json

import numba
import numpy as np
import pytest

from hwnorm.stt import (CODECS, STATES, CodecSpec, inject, load_table, make_codec, read_cost, stream_write,
                        table_from_dict, transition_class, write_cost)
from hwnorm.stt import numpy_ref
from hwnorm.stt.buffer import inject_numpy
from hwnorm.stt.codecs import STATUS_CORRECTED, STATUS_DETECTED

TABLE = load_table()
ALL = np.arange(1 << 16, dtype=np.uint16)
FINITE = ALL[(ALL & 0x7C00) != 0x7C00]
UNIT = FINITE[np.abs(FINITE.view(np.float16).astype(np.float64)) <= 1]  # every FP16 in [−1, 1]
BIT14_FREE = FINITE[(FINITE & 0x4000) == 0]                             # every finite |x| < 2


def spec(name, **kw):
    return make_codec(name, TABLE, **kw)


def encoded_words(s, words, cells):
    return s.decode(cells, words.size)[0].view(np.uint16)


# ------------------------------------------------------------------ cell table

def test_transition_classes_match_the_reference_listing():
    listed = {"ZT": [(0, 0), (1, 1), (2, 2), (3, 3)],
              "ST": [(0, 1), (1, 0), (2, 3), (3, 2)],
              "HT": [(0, 3), (1, 3), (2, 0), (3, 0)],
              "TT": [(0, 2), (1, 2), (2, 1), (3, 1)]}
    for cls, pairs in listed.items():
        for old, new in pairs:
            assert ("ZT", "ST", "HT", "TT")[transition_class(old, new)] == cls, (old, new)


def test_bundled_tables_name_a_source_for_every_number():
    for name in ("default", "public-code"):
        t = load_table(name)
        assert len(t.sources) == 12 and all(t.sources.values())
        assert t.write_energy_pj[0] == 0
    assert load_table("public-code").write_energy_pj == (0.0, 0.843, 1.659, 2.502)


def test_table_round_trips_through_json(tmp_path):
    path = tmp_path / "cells.json"
    path.write_text(json.dumps(TABLE.to_dict()))
    assert load_table(path) == TABLE


def _bad(**change):
    doc = TABLE.to_dict()
    for dotted, value in change.items():
        *keys, last = dotted.split("__")
        node = doc
        for k in keys:
            node = node[k]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return doc


@pytest.mark.parametrize("doc, field", [
    (_bad(read=KeyError), "[read]"),
    (_bad(write__HT=KeyError), "write.HT"),
    (_bad(read__01__energy_pj=-1.0), "read.01.energy_pj"),
    (_bad(read__01__energy_pj="abc"), "read.01.energy_pj"),
    (_bad(read__01__energy_pj=True), "read.01.energy_pj"),
    (_bad(error__10__p_soft=1.5), "error.10.p_soft"),
    (_bad(error__10__p_hard=KeyError), "'p_hard'"),
    (_bad(error__10__p_typo=0.1), "'p_typo'"),
    (_bad(write__ZT__energy_pj=1.0), "write.ZT"),
    (_bad(read__22={"energy_pj": 1.0, "latency_ns": 1.0}), "read.'22'"),
    (_bad(colour="blue"), "'colour'"),
    (_bad(write__TT__latency_ns=float("nan")), "write.TT.latency_ns"),
])
def test_malformed_tables_are_rejected_naming_the_field(doc, field):
    with pytest.raises(ValueError, match="my.toml") as err:
        table_from_dict(doc, "my.toml")
    assert field in str(err.value)


def test_unreadable_or_broken_table_files(tmp_path):
    bad = tmp_path / "t.toml"
    bad.write_text("[read\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_table(bad)
    with pytest.raises(ValueError, match="cannot read cell table"):
        load_table(tmp_path / "missing.toml")


def test_at_ber_scales_every_probability_keeping_ratios():
    t = TABLE.at_ber(1e-3)
    assert max(t.p_soft) == pytest.approx(1e-3)
    ratio = 1e-3 / max(TABLE.p_soft)
    assert t.p_hard == pytest.approx(tuple(p * ratio for p in TABLE.p_hard))
    assert t.read_energy_pj == TABLE.read_energy_pj


# ------------------------------------------------------------------ codecs

@pytest.mark.parametrize("codec", CODECS)
def test_every_fp16_in_unit_range_round_trips_exactly(codec):
    s = spec(codec)
    cells = s.encode(UNIT.view(np.float16))
    assert cells.shape == (s.n_blocks(UNIT.size), s.cells_per_block) and cells.max() <= 3
    words, status = s.decode(cells, UNIT.size)
    assert np.array_equal(words.view(np.uint16), UNIT) and not status.any()


@pytest.mark.parametrize("codec", CODECS)
def test_wider_contract_round_trips(codec):
    s = spec(codec)
    domain = BIT14_FREE if s.uses_backup else FINITE  # backup: every |x| < 2; others: every finite FP16
    assert np.array_equal(encoded_words(s, domain, s.encode(domain.view(np.float16))), domain)


@pytest.mark.parametrize("codec", CODECS)
def test_numba_kernels_equal_the_numpy_implementation(codec):
    rng = np.random.default_rng(1)
    s = spec(codec)
    domain = BIT14_FREE if s.uses_backup else FINITE
    w = rng.choice(domain, 4099).view(np.float16)
    old = rng.integers(0, 4, (s.n_blocks(w.size), s.cells_per_block), dtype=np.uint8)
    cells = s.encode(w, old)
    assert np.array_equal(cells, numpy_ref.encode(s, w, old))
    noisy = rng.integers(0, 4, cells.shape, dtype=np.uint8)  # arbitrary (corrupted) content
    for c in (cells, noisy):
        got, st = s.decode(c, w.size)
        ref, ref_st = numpy_ref.decode(s, c, w.size)
        assert np.array_equal(got.view(np.uint16), ref.view(np.uint16)) and np.array_equal(st, ref_st)


@pytest.mark.parametrize("codec", ["backup", "backup+rearrange"])
@pytest.mark.parametrize("bad", [2.0, -2.0, 3.5, -65504.0])
def test_backup_rejects_weights_with_bit_14_set(codec, bad):
    w = np.array([0.5, bad, -0.25], np.float32)
    with pytest.raises(ValueError, match=r"weight\[1\].*outside \(−2, 2\)"):
        spec(codec).encode(w)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, 1e6])
def test_non_finite_weights_are_rejected(codec, bad):
    with pytest.raises(ValueError, match=r"weight\[2\].*not finite"):
        spec(codec).encode(np.array([0.0, 0.5, bad]))


def test_invalid_specs_are_rejected():
    with pytest.raises(ValueError, match="unknown codec 'zip'"):
        CodecSpec("zip")
    with pytest.raises(ValueError, match="pairing"):
        CodecSpec("none", pairing=((15, 14),) * 8)
    with pytest.raises(ValueError, match="bits 15 and 14 in one cell"):
        CodecSpec("backup", pairing=((15, 13), (14, 12)) + tuple((11 - 2 * i, 10 - 2 * i) for i in range(6)))
    with pytest.raises(ValueError, match="block_words"):
        CodecSpec("fnw", block_words=4)


def _all_cell_patterns(n_cells):
    codes = np.arange(1 << (2 * n_cells), dtype=np.int64)
    return ((codes[:, None] >> (2 * np.arange(n_cells))) & 3).astype(np.uint8)


@pytest.mark.parametrize("codec", ["none", "backup", "fnw", "hamming"])
def test_decoders_never_produce_nan_or_inf_exhaustive(codec):
    s = spec(codec)
    words, _ = s.decode(_all_cell_patterns(s.cells_per_block))
    assert np.isfinite(words).all()


@pytest.mark.parametrize("codec", ["rearrange", "backup+rearrange"])
def test_block_decoders_never_produce_nan_or_inf(codec):
    s = spec(codec)
    cells = np.random.default_rng(2).integers(0, 4, (200_000, s.cells_per_block), dtype=np.uint8)
    cells[:, :s.block_words * 8].reshape(-1, 8)[::7] = (3, 3, 3, 0, 0, 0, 0, 0)  # exponent all ones
    assert np.isfinite(s.decode(cells)[0]).all()


def test_backup_forces_bit_14_to_zero_and_keeps_the_sign_cell_extreme():
    s = spec("backup")
    cells = s.encode(UNIT.view(np.float16))
    assert set(np.unique(cells[:, s.sign_cell])) <= {0, 3}
    cells[:, s.sign_cell] ^= 1  # every soft-bit (bit 14) fault in the sign cell
    words, status = s.decode(cells, UNIT.size)
    assert np.array_equal(words.view(np.uint16), UNIT) and (status == STATUS_CORRECTED).all()


def test_backup_repair_follows_the_table_map_rule():
    assert spec("backup").repair == (0, 3)  # soft errors dominate: trust the hard bit
    doc = TABLE.to_dict()
    for st in STATES:
        doc["error"][st] = {"p_hard": 1e-3, "p_soft": 1e-6}
    hard_dominant = make_codec("backup", table_from_dict(doc))
    assert hard_dominant.repair == (3, 0)  # now the soft bit (the copy) is the likelier survivor
    cells = hard_dominant.encode(UNIT.view(np.float16))
    cells[:, 0] ^= 2  # every hard-bit fault in the sign cell
    assert np.array_equal(encoded_words(hard_dominant, UNIT, cells), UNIT)


def test_hamming_corrects_every_single_bit_fault_and_detects_doubles():
    s = spec("hamming")
    base = s.encode(UNIT.view(np.float16))
    for cell in range(s.cells_per_block):
        for bit in (1, 2):
            cells = base.copy()
            cells[:, cell] ^= bit
            words, status = s.decode(cells, UNIT.size)
            assert np.array_equal(words.view(np.uint16), UNIT), (cell, bit)
            assert (status == STATUS_CORRECTED).all()
    sample = base[::97]
    for a in range(22):
        for b in range(a + 1, 22):
            cells = sample.copy()
            cells[:, a // 2] ^= 1 << (a % 2)
            cells[:, b // 2] ^= 1 << (b % 2)
            words, status = s.decode(cells)
            assert (status == STATUS_DETECTED).all() and not words.view(np.uint16).any(), (a, b)


@pytest.mark.parametrize("codec", ["rearrange", "backup+rearrange"])
def test_rearrange_flag_cells_survive_soft_faults(codec):
    s = spec(codec)
    base = s.encode(UNIT.view(np.float16))
    assert set(np.unique(base[:, -2:])) <= {0, 3}
    for flag in (-1, -2):
        cells = base.copy()
        cells[:, flag] ^= 1
        words, status = s.decode(cells, UNIT.size)
        assert np.array_equal(words.view(np.uint16), UNIT) and (status == STATUS_CORRECTED).all()


@pytest.mark.parametrize("codec", ["rearrange", "backup+rearrange"])
def test_rearrange_picks_the_cheapest_transform(codec):
    s = spec(codec)
    rng = np.random.default_rng(3)
    w = rng.choice(UNIT, 4000).view(np.float16)
    plain = make_codec("backup" if s.uses_backup else "none", TABLE).encode(w).reshape(-1, 32)
    chosen = s.encode(w)
    cost = np.asarray(s.state_cost)
    movable = np.ones(32, bool)
    if s.uses_backup:
        movable[0::8] = False
    for t in range(4):
        alt = np.where(movable, plain ^ t, plain)
        alt_cost = cost[alt].sum(axis=1) + cost[3 * (t & 1)] + cost[3 * (t >> 1)]
        assert (cost[chosen].sum(axis=1) <= alt_cost).all()
    # the point of the transform: at most half of the transformable cells are intermediate
    inter = np.isin(chosen[:, :32], (1, 2)) & movable
    assert (inter.sum(axis=1) <= movable.sum() // 2).all()


def test_none_decoder_is_transparent_to_every_single_fault():
    s = spec("none")
    base = s.encode(UNIT.view(np.float16))
    for cell in range(8):
        for bit in (1, 2):
            cells = base.copy()
            cells[:, cell] ^= bit
            pos = s.pairing[cell][0 if bit == 2 else 1]
            expect = UNIT ^ (1 << pos)
            expect = np.where((expect & 0x7C00) == 0x7C00, (expect & 0x8000) | 0x7BFF, expect)
            assert np.array_equal(encoded_words(s, UNIT, cells), expect)


def test_short_tensors_pad_the_last_block():
    s = spec("rearrange")
    w = np.array([0.5, -0.75, 1.0, -1.0, 0.125], np.float16)
    cells = s.encode(w)
    assert cells.shape == (2, 34)
    assert np.array_equal(s.decode(cells, 5)[0], w)


# ------------------------------------------------------------------ energy accounting

def test_write_and_read_cost_by_hand():
    s = spec("none")
    one = s.encode(np.array([1.0]))       # 0x3C00: cells 00 11 11 00 00 00 00 00
    assert one.tolist() == [[0, 3, 3, 0, 0, 0, 0, 0]]
    w = write_cost(TABLE, np.zeros_like(one), one)
    assert w.counts == {"ZT": 6, "ST": 0, "HT": 2, "TT": 0}
    assert w.energy_pj == pytest.approx(2 * 3.192) and w.latency_ns == 10.0
    r = read_cost(TABLE, one)
    assert r.energy_pj == pytest.approx(6 * 0.032281 + 2 * 0.016140) and r.latency_ns == 1.924
    minus = s.encode(np.array([-1.0]))    # 0xBC00: cell 0 becomes 10, a two-step write
    w = write_cost(TABLE, one, minus)
    assert w.counts == {"ZT": 7, "ST": 0, "HT": 0, "TT": 1}
    assert w.energy_pj == pytest.approx(5.112) and w.latency_ns == 20.0
    assert write_cost(TABLE, one, one).energy_pj == 0


def test_fnw_stores_the_complement_when_it_is_cheaper():
    s = spec("fnw")
    old = np.full((1, 9), 3, np.uint8)
    cells = s.encode(np.array([0.0]), old)  # +0 is all 00: the complement (all 11) needs no write
    assert cells.tolist() == [[3] * 9]
    assert write_cost(TABLE, old, cells).energy_pj == 0
    assert s.decode(cells)[0][0] == 0


def test_stream_write_overwrites_tile_by_tile():
    s = spec("none")
    w = np.array([1.0, -1.0, 0.0, 0.0], np.float16)
    cells, cost = stream_write(s, TABLE, w, tile_words=2)
    assert cells.shape == (4, 8)
    # tile 1 over 00…: 1.0 → 2 HT, −1.0 (10 11 11 …) → 1 TT + 2 HT; tile 2 (zeros) over tile 1:
    # 1.0 → 0.0: 2 HT (11 → 00); −1.0 → 0.0: 10 → 00 is HT, 11 → 00 twice HT
    assert cost.counts == {"ZT": 32 - 10, "ST": 0, "HT": 9, "TT": 1}
    assert cost.energy_pj == pytest.approx(9 * 3.192 + 5.112)
    with pytest.raises(ValueError, match="tile_words"):
        stream_write(spec("rearrange"), TABLE, w, tile_words=6)


# ------------------------------------------------------------------ fault injection

def test_injection_is_seeded_and_thread_count_independent():
    cells = np.random.default_rng(4).integers(0, 4, (50_000, 8), dtype=np.uint8)
    t = TABLE.at_ber(1e-2)
    a, na = inject(t, cells, seed=7)
    b, nb = inject(t, cells, seed=7)
    c, _ = inject(t, cells, seed=8)
    assert np.array_equal(a, b) and na == nb == int(np.unpackbits((a ^ cells).ravel()).sum())
    assert not np.array_equal(a, c)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single, _ = inject(t, cells, seed=7)
    finally:
        numba.set_num_threads(threads)
    assert np.array_equal(a, single)


def test_injection_rates_per_state_match_the_table():
    rng = np.random.default_rng(5)
    cells = rng.integers(0, 4, 2_000_000, dtype=np.uint8)
    doc = TABLE.to_dict()
    probs = {"00": (1e-4, 2e-3), "01": (3e-4, 1e-2), "10": (0.0, 5e-3), "11": (2e-3, 0.0)}
    for st, (ph, ps) in probs.items():
        doc["error"][st] = {"p_hard": ph, "p_soft": ps}
    table = table_from_dict(doc)
    for label, out in (("numba", inject(table, cells, seed=11)[0]), ("numpy", inject_numpy(table, cells, rng))):
        flips = out ^ cells
        for s, st in enumerate(STATES):
            n = int((cells == s).sum())
            for bit, p in ((2, probs[st][0]), (1, probs[st][1])):
                got = int(((flips & bit) != 0)[cells == s].sum())
                sigma = max(np.sqrt(n * p * (1 - p)), 1.0)
                assert abs(got - n * p) <= 5 * sigma, (label, st, bit, got, n * p)


def test_zero_rate_injects_nothing():
    cells = np.random.default_rng(6).integers(0, 4, (1000, 8), dtype=np.uint8)
    out, n = inject(TABLE.at_ber(0.0), cells, seed=1)
    assert n == 0 and np.array_equal(out, cells)


@pytest.mark.parametrize("codec", ["rearrange-wa", "backup+rearrange-wa"])
def test_write_aware_rearrange_picks_the_cheapest_write_over_the_old_content(codec):
    s = spec(codec)
    assert s.write_aware and s.label == codec
    rng = np.random.default_rng(8)
    w = rng.choice(UNIT, 4000).view(np.float16)
    old = rng.integers(0, 4, (s.n_blocks(w.size), s.cells_per_block), dtype=np.uint8)
    chosen = s.encode(w, old)
    tc = np.asarray(s.transition_cost)[np.asarray([[transition_class(o, n) for n in range(4)] for o in range(4)])]
    cost = lambda cells: tc[old, cells].sum(axis=1)  # noqa: E731
    movable = np.ones(32, bool)
    if s.uses_backup:
        movable[0::8] = False
    base = chosen.copy()
    t_used = (base[:, -2] >> 1) | ((base[:, -1] >> 1) << 1)
    plain = np.where(movable, base[:, :32] ^ t_used[:, None], base[:, :32])
    for t in range(4):
        alt = np.concatenate([np.where(movable, plain ^ t, plain), np.full((len(plain), 1), 3 * (t & 1)),
                              np.full((len(plain), 1), 3 * (t >> 1))], axis=1).astype(np.uint8)
        assert (cost(chosen) <= cost(alt)).all()
    assert np.array_equal(s.decode(chosen, w.size)[0].view(np.uint16), w.view(np.uint16))


@pytest.mark.parametrize("tile_words", [64, 192, 8192])
@pytest.mark.parametrize("initial_state", [0, 3])
def test_stream_write_equals_writing_tile_by_tile(tile_words, initial_state):
    """All tiles at once (codecs that ignore the old cells) and the costs of all tiles at once give
    the cells and the very floats of the plain loop: each tile encoded over, and costed against,
    the one before."""
    from hwnorm.stt.buffer import blocks_per_row
    table = load_table("default")
    w = np.random.default_rng(tile_words).uniform(-1, 1, 64 * 7 + 5).astype(np.float16)
    for codec in ("none", "backup+rearrange", "fnw", "hamming", "rearrange-wa"):
        spec = make_codec(codec, table)
        prev = np.full((tile_words // spec.block_words, spec.cells_per_block), initial_state, np.uint8)
        tiles, total = [], None
        for start in range(0, w.size, tile_words):
            chunk = w[start:start + tile_words]
            nb = spec.n_blocks(chunk.size)
            cells = spec.encode(chunk, prev[:nb])
            cost = write_cost(table, prev[:nb], cells, blocks_per_row(spec))
            total = cost if total is None else total + cost
            prev[:nb] = cells
            tiles.append(cells)
        cells, got = stream_write(spec, table, w, tile_words, initial_state)
        assert np.array_equal(cells, np.concatenate(tiles)), codec
        assert (got.energy_pj, got.latency_ns, got.counts) == (total.energy_pj, total.latency_ns, total.counts), codec
