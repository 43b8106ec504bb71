"""The clock-by-clock back-pressure model (:mod:`hwnorm.clocked`): where no FIFO fills, it gives
the composed cycle model's clocks exactly (every vendored network and the graphs, untimed and
pipelined for 150 MHz); where one does, the RTL's (tests/test_cosim.py: the least skip-FIFO depth
and one less, clock for clock on Verilator)."""

from __future__ import annotations

import pytest

import random

from hwnorm.blocks import FIFO_MIN_DEPTH
from hwnorm.clocked import Deadlock, FIFOModel, Late, simulate
from hwnorm.clocked_compiled import CompiledPlan
from hwnorm.dataflow import LEAST, NetworkBlock, _with_depths, minimal_fifos, plan_sources
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
    """The stream FIFO: depth − 2 in its memory, one in the read register, one in the output register."""
    fifo = FIFOModel(5)
    accepted = 0
    for _ in range(10):  # nothing read: it fills up and refuses
        ready = fifo.ready([False], [True])[0]
        fifo.tick([True], [ready], [False], [False])
        accepted += ready
    assert accepted == 5 and fifo.peak == 5  # the first two moved on to the registers, three behind them


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
    with pytest.raises(ValueError, match="whole number ≥ 4"):
        NetworkBlock(net, fifo_depths={"node_add_in1_fifo": 3})


def _outcome(run):
    try:
        return run()
    except (Deadlock, Late) as e:
        return f"{type(e).__name__}: {e}"


@pytest.mark.parametrize("name", ["TFC_2W2A", "CNV_MNIST_2W2A", "MOBILENET_MNIST_W4A4", "RESNET_MNIST_W4A4"])
@pytest.mark.parametrize("clock", [0, 150])
def test_the_compiled_plan_answers_as_the_python_models(name, clock):
    """The compiled loop (hwnorm.clocked_compiled) against the Python models it is read from: the
    same clocks, deadlocks and late beats, at the sized depths and at random shallower ones (where
    the residual network deadlocks and the chains fall behind), held to the reference or not."""
    top = NetworkBlock(import_model(name).network, timing=Timing(clock) if clock else Timing())
    stages = plan_sources(top.stages)
    arrivals, expected, limit = list(range(3 * top.in_beats)), 3 * top.out_beats, 2 * top.initiation_interval + 100
    plan = CompiledPlan(stages)
    reference = simulate(stages, arrivals, expected, limit)
    assert plan.run(arrivals, expected, limit) == reference
    rng = random.Random(f"{name}{clock}")
    sized = {s.name: s.block.depth for s in stages if s.block.kind == "fifo"}
    outcomes = set()
    for _ in range(4):
        depths = {f: rng.randint(FIFO_MIN_DEPTH, d) for f, d in sized.items()}
        for held in (reference, None):
            python = _outcome(lambda: simulate(_with_depths(stages, depths), arrivals, expected, limit, held_to=held))
            compiled = _outcome(lambda: plan.run(arrivals, expected, limit, held_to=held, depths=depths))
            assert compiled == python
            outcomes.add(str(python).split(":")[0])
    if name == "RESNET_MNIST_W4A4":
        assert "Deadlock" in outcomes  # the skip FIFOs too shallow: the comparison covered a deadlock


def test_a_graph_design_builds_its_fifos_at_their_least_depths():
    """A residual network's design defaults to fifo_depths = "least" (its skip FIFOs never full
    would hold hundreds of beats); the manifest records the depths chosen; a chain keeps its kinds'
    depths unless asked, and a wrong value is refused by name."""
    from hwnorm.generate import Design, plan_of

    design = Design("resnet", "network", {"model": "RESNET_MNIST_W4A4"})
    plan = plan_of(design)
    least = plan.block.least_fifos
    assert least is not None and any(small < never for never, small in least.values())
    built = {s.name: s.block.depth for s in plan.block.stages if s.block.kind == "fifo"}
    assert built == {name: small for name, (_, small) in least.items()} == plan.params["fifo_depths"]
    assert plan.block.schedule(list(range(plan.block.in_beats))) == \
        NetworkBlock(plan.block.net).schedule(list(range(plan.block.in_beats)))
    chain = plan_of(Design("tfc", "network", {"model": "TFC_1W1A"}))
    assert chain.block.least_fifos is None and "fifo_depths" not in chain.params
    asked = plan_of(Design("tfc", "network", {"model": "TFC_1W1A", "fifo_depths": LEAST}))
    assert asked.block.least_fifos is not None
    with pytest.raises(ValueError, match="fifo_depths must be a table of FIFO depths or 'least', got 'smallest'"):
        NetworkBlock(import_model("TFC_1W1A").network, fifo_depths="smallest")
