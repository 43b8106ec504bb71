"""The clock-by-clock back-pressure model (:mod:`hwnorm.clocked`): where no FIFO fills, it gives
the composed cycle model's clocks exactly (every vendored network and the graphs, untimed and
pipelined for 150 MHz); where one does, the RTL's (tests/test_cosim.py: the least skip-FIFO depth
and one less, clock for clock on Verilator)."""

from __future__ import annotations

import pytest

from hwnorm.clocked import Deadlock, FIFOModel, Late, simulate
from hwnorm.dataflow import NetworkBlock, minimal_fifos, plan_sources
from hwnorm.estimate.cycles import full_rate_output_cycles
from hwnorm.models import import_model
from hwnorm.timing import Timing


@pytest.mark.parametrize("name", ["TFC_1W1A", "CNV_MNIST_2W2A", "MOBILENET_MNIST_W4A4", "RESNET_MNIST_W4A4"])
@pytest.mark.parametrize("clock", [0, 150])
def test_without_a_full_fifo_the_clocked_model_is_the_composed_one(name, clock):
    top = NetworkBlock(import_model(name).network, timing=Timing(clock) if clock else Timing())
    images = 3
    got = simulate(plan_sources(top.stages), list(range(images * top.in_beats)), images * top.out_beats,
                   2 * top.initiation_interval + 100)
    assert got == full_rate_output_cycles(top, images)


def test_the_fifo_model_holds_depth_beats():
    """Amaranth's SyncFIFOBuffered: depth − 1 in the inner FIFO, one in the output register."""
    fifo = FIFOModel(5)
    accepted = 0
    for _ in range(10):  # nothing read: it fills up and refuses
        ready = fifo.ready([False], [True])[0]
        fifo.tick([True], [ready], [False], [False])
        accepted += ready
    assert accepted == 5 and fifo.peak == 5  # the first moved on to the output register, four behind it


def test_least_fifo_depths_keep_the_clocks_and_save_bits():
    top = NetworkBlock(import_model("RESNET_MNIST_W4A4").network)
    least = minimal_fifos(top, only=["node_Conv_192_fifo"])  # (the skip's: tests/test_cosim.py)
    never, small = least["node_Conv_192_fifo"]
    assert small < never
    plan = NetworkBlock(top.net, top.folding, fifo_depths={k: v[1] for k, v in least.items()})
    got = simulate(plan_sources(plan.stages), list(range(3 * plan.in_beats)), 3, 20_000)
    assert got == full_rate_output_cycles(top, 3)


def test_a_run_held_to_clocks_stops_at_the_first_late_beat():
    """The least-depth search holds each candidate to the reference clocks: a beat off its clock
    ends the run there (a too-shallow FIFO costs one image, not the whole run)."""
    top = NetworkBlock(import_model("TFC_1W1A").network)
    stages, arrivals = plan_sources(top.stages), list(range(3 * top.in_beats))
    reference = simulate(stages, arrivals, 3 * top.out_beats, 1000)
    assert simulate(stages, arrivals, 3 * top.out_beats, 1000, held_to=reference) == reference
    early = [t - 1 for t in reference]
    with pytest.raises(Late, match=f"output beat 0 left at clock {reference[0]}, not {reference[0] - 1}"):
        simulate(stages, arrivals, 3 * top.out_beats, 1000, held_to=early)


def test_a_deadlock_is_reported_not_waited_for():
    """A join whose inputs come from one fork with a FIFO too shallow on the skip side never
    deadlocks here (the line buffer takes rows as they come), so feed a plan that cannot move:
    an input never offered."""
    top = NetworkBlock(import_model("TFC_1W1A").network)
    with pytest.raises(Deadlock, match="no stream moved"):
        simulate(plan_sources(top.stages), [10 ** 9] * top.in_beats, top.out_beats, 50)


def test_fifo_depths_are_checked_by_name():
    net = import_model("RESNET_MNIST_W4A4").network
    with pytest.raises(ValueError, match="not a FIFO of the plan"):
        NetworkBlock(net, fifo_depths={"node_add": 4})
    with pytest.raises(ValueError, match="whole number ≥ 3"):
        NetworkBlock(net, fifo_depths={"node_add_in1_fifo": 2})
