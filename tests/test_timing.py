"""Pipelining from a target clock (hwnorm.timing): the delay model's cuts, the blocks' depths
that follow them, and the compare the threshold stages use. The RTL of every cut placement is
co-simulated in test_cosim (TIMINGS); here only what needs no simulator."""

from __future__ import annotations

import itertools
import math

import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from hwnorm.generate import Design, default_designs, load_designs, model_of
from hwnorm.hdl.common import at_least
from hwnorm.timing import UNTIMED, Timing, delay_models, tree_levels


def test_no_target_clock_adds_no_register():
    assert UNTIMED.cuts([9.0, 9.0, 9.0], tail=9.0) == ()
    assert UNTIMED.adder_tree_cuts(784, 1) == ()


def test_cuts_pack_levels_greedily_into_the_budget():
    t = Timing(150)
    b = t.budget
    assert t.cuts([b / 2] * 4) == (1,)                       # two levels per stage
    assert t.cuts([b] * 3) == (0, 1)                         # one per stage
    assert t.cuts([b / 2] * 2, tail=b / 2) == (1,)           # the tail needs a stage of its own
    assert t.cuts([2 * b, b / 4]) == (0,)                    # a level over budget still gets a stage


@pytest.mark.parametrize("target", sorted(delay_models()))
def test_a_faster_clock_never_takes_fewer_registers(target):
    clocks = [50, 100, 150, 250, 400, 1000]
    for terms, bits in [(2, 1), (49, 1), (784, 1), (64, 6), (10, 16)]:
        ranks = [len(Timing(c, target).adder_tree_cuts(terms, bits)) for c in clocks]
        assert ranks == sorted(ranks)
        assert ranks[-1] <= tree_levels(terms)


def test_default_designs_are_pipelined_for_150_mhz_and_deeper_than_untimed():
    for design in default_designs():
        assert design.params["clock_mhz"] == 150
        timed, params = model_of(design)
        assert params["timing"] == {"clock_mhz": 150, "target": "ecp5"}
        untimed = model_of(Design(design.name, design.kind, {k: v for k, v in design.params.items()
                                                             if k != "clock_mhz"}))[0]
        assert timed.latency >= untimed.latency
        assert timed.initiation_interval == untimed.initiation_interval  # only latency moves


def test_a_bad_target_clock_is_one_clear_line(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text('[[design]]\nname = "m"\nkind = "mvu"\nlayer = "MatMul_24"\nclock_mhz = "fast"\n')
    with pytest.raises(ValueError, match="field 'clock_mhz' must be a number"):
        load_designs(path)
    for value, target, message in [(-5, "ecp5", "clock_mhz must be between"), (150, "xilinx", "no delay model")]:
        path.write_text(f'[[design]]\nname = "m"\nkind = "mvu"\nlayer = "MatMul_24"\nclock_mhz = {value}\n'
                        f'target = "{target}"\n')
        with pytest.raises(ValueError, match=message):
            model_of(load_designs(path)[0])


@pytest.mark.parametrize("a_shape, b_shape", [(signed(3), signed(4)), (signed(4), unsigned(3)),
                                              (unsigned(3), signed(3)), (signed(1), signed(2)),
                                              (unsigned(2), unsigned(3))])
def test_at_least_equals_python_on_every_operand_pair(a_shape, b_shape):
    a, b, out = Signal(a_shape), Signal(b_shape), Signal()
    m = Module()
    m.d.comb += out.eq(at_least(a, b))
    sim, wrong = Simulator(m), []

    def values(shape):
        return range(-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed else range(1 << shape.width)

    async def bench(ctx):
        for x, y in itertools.product(values(a_shape), values(b_shape)):
            ctx.set(a, x)
            ctx.set(b, y)
            if ctx.get(out) != (x >= y):
                wrong.append((x, y))
    sim.add_testbench(bench)
    sim.run()
    assert wrong == []


def test_throughput_at_the_achieved_fmax():
    from hwnorm.estimate.design import at_fmax
    cycles = {"design": {"cycles_per_vector": 64}}
    resources = {"ecp5": {"timing": {"fmax_mhz": 128.0}}, "ice40": {"timing": {"fmax_mhz": None}}, "xilinx": {}}
    assert at_fmax(cycles, resources) == {"ecp5": {"fmax_mhz": 128.0, "vectors_per_second": 2e6}}


def test_a_network_with_a_target_clock_gets_a_register_slice_after_every_layer():
    from hwnorm.dataflow import NetworkBlock
    from hwnorm.generate import network_of
    (tfc,) = [d for d in default_designs() if d.name == "tfc"]
    net = network_of(tfc)
    timed = NetworkBlock(net, tfc.params["folding"], timing=Timing(150))
    untimed = NetworkBlock(net, tfc.params["folding"])
    slices = [s.name for s in timed.stages if s.block.kind == "slice"]
    assert slices == [f"{layer.name}_slice" for layer in net.layers]
    assert not any(s.block.kind == "slice" for s in untimed.stages)
    assert all(s.block.timing == Timing(150) for s in timed.stages if s.block.kind in ("mvu", "qbn", "argmax"))


def test_a_clock_the_delay_model_cannot_meet_is_refused_where_a_user_asks_for_it(tmp_path):
    """No register splits a block-RAM read or one LUT level: a user's clock above what they allow
    is refused (flow config, design file), never quoted as throughput; a target without a delay
    model says it cannot pipeline."""
    from hwnorm.config import config_from_dict
    for target in ("ecp5", "ice40"):
        top = Timing(150, target).model.max_clock_mhz()
        assert Timing(math.floor(top), target).meetable()
        with pytest.raises(ValueError, match=rf"clock_mhz = {math.ceil(top)} cannot be met on {target}: .* alone takes"):
            Timing(math.ceil(top), target).meetable()
    with pytest.raises(ValueError, match=r"c.toml: clock_mhz = 10000 cannot be met on ecp5: a block-RAM read alone "
                                         r"takes 5.93 ns, more than the 0.1 ns period \(its delay model allows at most 169"):
        config_from_dict({"clock_mhz": 10000}, "c.toml")
    with pytest.raises(ValueError, match=r"c.toml: clock_mhz = 150 cannot be pipelined for on xilinx: it has no delay "
                                         r"model \(targets with one: ecp5, ice40\)"):
        config_from_dict({"clock_mhz": 150, "target": "xilinx"}, "c.toml")
    assert config_from_dict({"target": "xilinx"}, "c.toml").target == "xilinx"  # the default clock: figures only
    path = tmp_path / "d.toml"
    path.write_text('[[design]]\nname = "x"\nkind = "network"\nmodel = "TFC_1W1A"\nclock_mhz = 10000\n')
    with pytest.raises(ValueError, match=r"d.toml: design 1 \('x'\): clock_mhz = 10000 cannot be met on ecp5"):
        model_of(load_designs(path)[0])
