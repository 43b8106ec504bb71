"""FPGA parts as data (hwnorm/data/fpga/devices.toml): the folding search fits one in every
resource and says which binds; the flow synthesizes and places only where the estimate does not
rule a part out."""

import json

import pytest

from hwnorm.config import config_from_dict
from hwnorm.estimate.devices import DEVICES, RESOURCES, RULE_OUT_MARGIN, Device, device_named
from hwnorm.estimate.synthesis import TARGETS
from hwnorm.flow import _clocks, choose_folding, resource_estimator
from hwnorm.folding import Folding
from hwnorm.models import load_network


def test_every_part_belongs_to_a_target_and_each_target_places_on_one_of_its_parts():
    assert {"LFE5U-12F", "LFE5U-25F", "LFE5U-45F", "LFE5U-85F", "iCE40HX8K", "iCE40UP5K", "xc7z020", "xczu3eg"} <= set(DEVICES)
    for part in DEVICES.values():
        assert part.target in TARGETS and set(part.capacity) == set(RESOURCES)
        assert all(isinstance(v, int) and v >= 0 for v in part.capacity.values()) and part.capacity["lut"] > 0
    assert TARGETS["ecp5"].part.name == "LFE5U-85F" and TARGETS["ice40"].part.name == "iCE40HX8K"
    assert TARGETS["xilinx"].part is None and TARGETS["xilinx"].device == ()
    # the flags place and route always had (its cache keys do not move)
    assert TARGETS["ecp5"].device == ("--85k", "--package", "CABGA381", "--lpf-allow-unconstrained")
    assert TARGETS["ecp5"].on(DEVICES["LFE5U-25F"]).device[:1] == ("--25k",)
    with pytest.raises(ValueError, match="part LFE5U-25F is a ecp5 part, not ice40"):
        TARGETS["ice40"].on(DEVICES["LFE5U-25F"])


def test_names_are_case_blind_and_an_unknown_one_lists_the_parts():
    assert device_named("lfe5u-85f") is DEVICES["LFE5U-85F"]
    with pytest.raises(ValueError, match="device: unknown part 'ECP7'; allowed: LFE5U-12F, .*xc7z020"):
        device_named("ECP7")


def test_usage_pays_carry_and_lut_ram_in_luts_by_the_family_rule():
    counts = {"lut": 100, "ff": 50, "carry": 10, "lutram": 2, "bram": 3, "dsp": 1}
    assert TARGETS["ecp5"].usage(counts) == {"lut": 100 + 2 * 10 + 6 * 2, "ff": 50, "bram": 3, "dsp": 1}
    assert TARGETS["ice40"].usage(counts)["lut"] == 100 and TARGETS["xilinx"].usage(counts)["lut"] == 108


def test_shortfalls_and_the_rule_out_margin():
    part = Device("P", "a part", "ecp5", {"lut": 1000, "ff": 1000, "bram": 10, "dsp": 0}, ())
    assert part.fits({"lut": 1000, "ff": 0, "bram": 10, "dsp": 0})
    assert part.shortfalls({"lut": 1200, "ff": 0, "bram": 11, "dsp": 1}) == [("lut", 1200, 1000), ("bram", 11, 10),
                                                                             ("dsp", 1, 0)]
    # an estimate within the model's error of the part is not ruled out; far over it is
    assert part.shortfalls({"lut": 1300, "ff": 0, "bram": 0, "dsp": 0}, RULE_OUT_MARGIN) == []
    assert part.shortfalls({"lut": 1400, "ff": 0, "bram": 0, "dsp": 0}, RULE_OUT_MARGIN) == [("lut", 1400, 1000)]
    assert part.binding({"lut": 500, "ff": 100, "bram": 9, "dsp": 0}) == "bram"
    assert part.usage_line({"lut": 500, "ff": 100, "bram": 9, "dsp": 0}) == "LUT 50%, FF 10%, BRAM 90%, DSP — of P"


def test_a_device_sets_the_target_and_a_contradiction_is_refused():
    c = config_from_dict({"device": "lfe5u-25f"}, "c.toml")
    assert (c.device, c.target) == ("LFE5U-25F", "ecp5")
    with pytest.raises(ValueError, match="c.toml: device = 'LFE5U-25F' belongs to target 'ecp5', but target = 'ice40'"):
        config_from_dict({"device": "LFE5U-25F", "target": "ice40"}, "c.toml")
    with pytest.raises(ValueError, match="c.toml: device: unknown part 'virtex'"):
        config_from_dict({"device": "virtex"}, "c.toml")


@pytest.fixture(scope="module")
def tfc():
    return load_network("TFC_1W1A")[0]


@pytest.mark.parametrize("part", ["iCE40HX8K", "iCE40UP5K", "LFE5U-12F", "LFE5U-85F", "xc7z020", "xczu3eg"])
def test_the_search_gives_the_fastest_folding_that_fits_the_part_in_every_resource(tfc, part):
    config = config_from_dict({"device": part})
    estimate = resource_estimator(config, tfc)
    target, device = TARGETS[config.target], DEVICES[part]
    folding, how = choose_folding(config, tfc, estimate)
    assert isinstance(folding, Folding) and device.fits(target.usage(estimate(folding)))
    assert how.startswith(f"fastest fitting the {part} (estimated LUT ")
    assert f"; {device.binding(target.usage(estimate(folding))).upper()} the fullest)" in how
    # the next faster folding the search saw does not fit: the message names what it needs
    clocks = _clocks(tfc, folding)
    assert f"the next faster (" in how and f"{part} has" in how
    faster = int(how.split("the next faster (")[1].split(" clocks")[0])
    assert faster < clocks


def test_a_throughput_the_part_cannot_hold_is_refused_with_the_resources(tfc):
    config = config_from_dict({"device": "iCE40UP5K", "auto_folding": {"throughput": 2e6}}, "c.toml")
    with pytest.raises(ValueError, match=r"c.toml: the cheapest folding reaching 2e\+06 images/s needs [\d,]+ LUT, "
                                         r"iCE40UP5K has 5,280.*\(estimated; LUT at most 90% of the part\)"):
        choose_folding(config, tfc, resource_estimator(config, tfc))


def test_a_network_paced_by_one_layer_says_so():
    net = load_network("CNV_MNIST_1W1A")[0]
    config = config_from_dict({"model": "CNV_MNIST_1W1A", "device": "LFE5U-85F"})
    _, how = choose_folding(config, net, resource_estimator(config, net))
    # whole windows per beat take the first window off the pace: one input pixel per clock sets it
    assert "no folding is faster: thresholding node__symbolic_input (784 clocks per image)" in how


def test_the_flow_places_on_the_configured_part_and_skips_what_the_estimate_rules_out(monkeypatch):
    import hwnorm.estimate.design as design_stage
    from hwnorm.estimate.synthesis import PlaceAndRoute, Synthesis
    from hwnorm.generate import Verilog, default_designs, plan_of

    seen = {}

    def synthesize(text, name, target):
        seen.setdefault("synthesized", []).append(target.name)
        return Synthesis(target.name, name, {c: 0 for c in ("lut", "ff", "carry", "bram", "dsp", "lutram")}, {}, "-", 0.0)

    def place_and_route(text, name, ports, target, core=None):
        seen.setdefault("placed", []).append(target.device)
        return PlaceAndRoute(target.name, "x", True, 200.0, "")
    monkeypatch.setattr(design_stage, "synthesize", synthesize)
    monkeypatch.setattr(design_stage, "place_and_route", place_and_route)
    (tfc_design,) = [d for d in default_designs() if d.name == "tfc"]  # ~10k LUTs estimated on iCE40
    plan = plan_of(tfc_design)
    out = design_stage.design_resources(plan, ["ice40", "ecp5"], synth=True, fmax=True,
                                        verilog=Verilog("t", "module t; endmodule", ()),
                                        parts={"ecp5": DEVICES["LFE5U-25F"], "ice40": DEVICES["iCE40UP5K"]})
    assert seen["synthesized"] == ["ecp5"] and seen["placed"][0][:1] == ("--25k",)
    assert out["ecp5"]["usage"]["part"] == "LFE5U-25F" and "skipped" not in out["ecp5"]
    assert out["ice40"]["skipped"].startswith("not synthesized: the estimate rules out the iCE40UP5K (needs ")


def test_the_search_estimates_the_block_the_flow_builds(tfc):
    """Pipelined for the config's clock like the plan: a search on unpipelined blocks once chose a
    folding whose real top needed a third more flip-flops than the part has."""
    from hwnorm.estimate.resources import estimate_resources
    from hwnorm.flow import flow_design
    from hwnorm.generate import plan_of
    config = config_from_dict({"device": "iCE40UP5K", "clock_mhz": 150})
    folding, _ = choose_folding(config, tfc, resource_estimator(config, tfc))
    plan = plan_of(flow_design(config, folding))
    assert resource_estimator(config, tfc)(folding) == estimate_resources(plan.block, ["ice40"])["ice40"]


def test_a_folding_chosen_without_a_device_says_when_the_targets_part_cannot_hold_it():
    from hwnorm.flow import import_stage, plan_stage
    config = config_from_dict({"model": "TFC_1W1A", "target": "ice40"})
    _, how = plan_stage(config, import_stage(config))
    assert how.startswith("the default design's — its estimate does not fit the iCE40HX8K (needs ")
    assert how.endswith("set device (or --device) to fold for a part")
    config = config_from_dict({"model": "TFC_1W1A", "device": "iCE40HX8K"})
    assert "does not fit" not in plan_stage(config, import_stage(config))[1]


def test_estimate_on_a_part_names_its_share_and_refuses_a_part_of_another_family(tmp_path, capsys):
    from hwnorm.cli import main
    out = tmp_path / "est.json"
    assert main(["estimate", "--device", "iCE40UP5K", "--images", "1", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ecp5 " not in text and "LUT 27%, FF 24%, BRAM 0%, DSP 0% of iCE40UP5K" in text  # the tfc_mvu
    (mvu,) = [d for d in json.loads(out.read_text())["designs"] if d["design"] == "tfc_mvu"]
    assert list(mvu["resources"]) == ["ice40"] and mvu["resources"]["ice40"]["usage"]["part"] == "iCE40UP5K"
    assert main(["estimate", "--device", "LFE5U-25F", "--targets", "ice40,xilinx"]) == 2
    assert "--device LFE5U-25F is of the ecp5 family, which --targets does not list" in capsys.readouterr().err


def test_a_design_names_its_part_and_its_family_is_its_target(tmp_path, capsys):
    from hwnorm.cli import main
    from hwnorm.generate import load_designs
    toml = tmp_path / "d.toml"
    body = '[[design]]\nname = "mvu5k"\nkind = "mvu"\nmodel = "TFC_1W1A"\nlayer = "MatMul_16"\npe = 4\nsimd = 49\n'
    toml.write_text(body + 'device = "iCE40UP5K"\n')
    (design,) = load_designs(toml)
    assert design.device == "iCE40UP5K" and design.params["target"] == "ice40" and "device" not in design.params
    assert main(["estimate", str(toml)]) == 0
    assert "of iCE40UP5K" in capsys.readouterr().out
    toml.write_text(body + 'device = "iCE40UP5K"\ntarget = "ecp5"\n')
    with pytest.raises(ValueError, match=r"'mvu5k'\): device iCE40UP5K is of the ice40 family, not of target 'ecp5'"):
        load_designs(toml)
    toml.write_text(body + 'device = "XC9"\n')
    with pytest.raises(ValueError, match="'mvu5k'\\): device: unknown part 'XC9'"):
        load_designs(toml)


def test_a_graph_search_sizes_fifos_only_where_the_cheap_bound_lets_a_candidate_through():
    """For a graph, each candidate is first estimated with its FIFOs at their kinds' depths (no
    cycle-model run): a bound below the full estimate, so what it rules out the full estimate
    would too, and the search gives the same folding as without it."""
    net = load_network("RESNET_MNIST_W4A4")[0]
    # (the 85F: its answer is 50,176 clocks per image; the 25F's, 301,056, takes a minute of
    # least-FIFO search per candidate sized)
    config = config_from_dict({"model": "RESNET_MNIST_W4A4", "device": "LFE5U-85F"})
    estimate, calls, heard = resource_estimator(config, net), {"full": [], "lower": []}, []

    def full(folding):
        calls["full"].append(folding)
        return estimate(folding)

    def lower(folding):
        calls["lower"].append(folding)
        return estimate.lower(folding)
    full.lower = lower
    folding, how = choose_folding(config, net, full, progress=heard.append)
    assert calls["lower"] and len(calls["full"]) < len(calls["lower"])
    assert calls["full"][-1] == folding  # sized: only candidates the bound let through, the last of them the answer
    for f in (calls["lower"][0], calls["lower"][-2], folding):  # the fastest, the one just faster, the answer
        bound, whole = estimate.lower(f), estimate(f)
        assert all(bound[k] <= whole[k] for k in ("lut", "ff", "bram", "dsp"))
    assert heard and all(line.startswith("folding search: ") for line in heard)
    assert len(calls["lower"]) >= 3  # (the bound ruled faster candidates out first)
