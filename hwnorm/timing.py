"""Pipelining from a target clock: where a datapath puts its registers.

A design may name a target clock (``clock_mhz``) and an FPGA target. Each block then asks the
target's delay model (``hwnorm/data/fpga/delays.toml``, calibrated against nextpnr) how much logic
fits between two registers, and registers its adder trees, compares, multiplies and fan-outs
accordingly. Without a target clock (:data:`UNTIMED`) every block keeps its shortest pipeline.

Only timing moves, never values: a register stage delays a block's outputs by one clock, which its
cycle model counts (``Block.depth``), so the co-simulation checks stay exact.

The model of one register-to-register path::

    clock_to_q + Σ operations + setup  ≤  margin / clock_mhz        (ns)

    adder, w bits              route + carry_in + w · carry_per_bit + carry_out
    compare, w bits            the adder + compare_out (the result is the carry out)
    memory read data           memory_clock_to_q in place of clock_to_q
    LUT level (mux, gate)      route + lut
    a × b product              route + dsp_multiply (a hard multiplier), else an adder array
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from hwnorm.defaults import check_limit

__all__ = ["DelayModel", "delay_models", "Timing", "UNTIMED", "tree_levels"]


@dataclass(frozen=True)
class DelayModel:
    """Delays (ns) of one FPGA family, from ``delays.toml``."""

    clock_to_q: float
    setup: float
    route: float
    lut: float
    carry_in: float
    carry_per_bit: float
    carry_out: float
    compare_out: float
    margin: float
    memory_clock_to_q: float
    dsp_multiply: float = 0.0   # an unregistered hard multiplier (≤ 18 × 18), 0: none (LUT arrays)
    # what a block RAM's own output register adds over a fabric flip-flop's output: its clock-to-out
    # and the route out of the block RAM row to the logic that gathers several RAMs (a bank mux)
    block_ram_register_out: float = 0.0

    def adder(self, width: int) -> float:
        """An adder or subtractor of ``width`` bits, from its inputs' source."""
        return self.route + self.carry_in + width * self.carry_per_bit + self.carry_out

    def compare(self, width: int) -> float:
        """A magnitude compare of ``width`` bits (its result is the carry out)."""
        return self.adder(width) + self.compare_out

    def memory_out(self) -> float:
        """What a memory's read data adds over a flip-flop's output."""
        return self.memory_clock_to_q - self.clock_to_q

    def multiply(self, a_bits: int, b_bits: int) -> float:
        """An ``a × b``-bit product: a hard multiplier where there is one, else an array of adders."""
        if self.dsp_multiply:
            wide = max(a_bits, b_bits) > 18  # several multipliers and an adder of their parts
            return self.route + self.dsp_multiply + (self.adder(a_bits + b_bits) if wide else 0.0)
        return tree_levels(min(a_bits, b_bits)) * self.adder(a_bits + b_bits)

    def shortest_path(self) -> tuple[str, float]:
        """The longest path no register can split (ns): a block RAM's read data into a register,
        or one LUT level between two registers. A network top has both."""
        paths = {"a block-RAM read": self.memory_clock_to_q + self.setup,
                 "one LUT level": self.clock_to_q + self.luts() + self.setup}
        return max(paths.items(), key=lambda kv: kv[1])

    def max_clock_mhz(self) -> float:
        """The fastest clock a pipeline can be cut for: no stage is shorter than :meth:`shortest_path`."""
        return 1000.0 / self.shortest_path()[1]

    def luts(self, levels: int = 1) -> float:
        """``levels`` LUTs in series (a mux, a gate, a small table)."""
        return levels * (self.route + self.lut)


@lru_cache(maxsize=None)
def delay_models() -> dict[str, DelayModel]:
    """Every target's delay model (bundled data)."""
    doc = tomllib.loads(resources.files("hwnorm.data").joinpath("fpga", "delays.toml").read_text())
    return {name: DelayModel(**values) for name, values in doc.items()}



def tree_levels(terms: int) -> int:
    """Adder levels of a balanced tree over ``terms`` operands."""
    return max(terms - 1, 0).bit_length()


@dataclass(frozen=True)
class Timing:
    """A target clock on a target family, or none (``clock_mhz = 0``: the shortest pipeline)."""

    clock_mhz: float = 0.0
    target: str = "ecp5"

    def __post_init__(self):
        if isinstance(self.clock_mhz, bool) or not isinstance(self.clock_mhz, (int, float)):
            raise ValueError(f"clock_mhz must be a number of MHz, got {self.clock_mhz!r}")
        if self.clock_mhz != 0:  # 0: no target clock
            check_limit("clock_mhz", self.clock_mhz, "clock_mhz")
        # one value whichever way it came (a TOML 150, a flow config's 150.0): manifests compare equal
        object.__setattr__(self, "clock_mhz", float(self.clock_mhz))
        if self.target not in delay_models():
            raise ValueError(f"no delay model for target {self.target!r}; known: {', '.join(delay_models())}")

    def meetable(self) -> "Timing":
        """This timing, if the delay model can meet its clock at all; else a ValueError saying what
        no register can split. (Any clock still pipelines — as deep as a block goes —, which the
        tests use to stress every cut; a user's design or flow is held to this.)"""
        if self.on and self.clock_mhz > self.model.max_clock_mhz():
            what, ns = self.model.shortest_path()
            raise ValueError(f"clock_mhz = {self.clock_mhz:g} cannot be met on {self.target}: {what} alone takes "
                             f"{ns:.2f} ns, more than the {1000 / self.clock_mhz:.3g} ns period (its delay model "
                             f"allows at most {self.model.max_clock_mhz():.0f} MHz)")
        return self

    @property
    def on(self) -> bool:
        return self.clock_mhz > 0

    @property
    def model(self) -> DelayModel:
        return delay_models()[self.target]

    @property
    def budget(self) -> float:
        """Logic delay (ns) one stage may hold; infinite without a target clock."""
        if not self.on:
            return math.inf
        m = self.model
        return m.margin * 1000.0 / self.clock_mhz - m.clock_to_q - m.setup

    def fits(self, *delays: float) -> bool:
        """Whether operations of these delays fit one stage in series."""
        return sum(delays) <= self.budget

    def memory_ranks(self, memory: bool, *after: float, block_ram: bool = False) -> int:
        """Registers a memory's read data passes before the logic ``after`` it: none when the data
        comes from no memory or both fit one stage, else one. (An ECP5 block RAM's read data
        without its output register, which Yosys does not infer, takes 5.6 ns on its own; on ECP5
        this one register becomes the RAM's output register before place and route —
        :func:`hwnorm.estimate.netlist.absorb_bram_output_registers`.) A ``block_ram`` memory's
        data still leaves that register from the block RAM row, far from the logic
        (``block_ram_register_out``): when that and the logic do not fit one stage, a second
        register in the fabric takes the route."""
        first = int(memory and self.on and not self.fits(self.model.memory_out(), *after))
        far = self.model.block_ram_register_out
        return first + int(bool(first and block_ram and far and not self.fits(far, *after)))

    def cuts(self, levels: list[float], tail: float = 0.0) -> tuple[int, ...]:
        """The levels of a chain (a tree's levels, in order, of these delays) after which a
        register rank goes: levels are packed greedily into stages. ``tail`` is logic after the
        last level in the same stage; when it does not fit there, the last level is cut too."""
        if not self.on:
            return ()
        cuts, used = [], 0.0
        for k, d in enumerate(levels):
            if used and used + d > self.budget:
                cuts.append(k - 1)
                used = 0.0
            used += d
        if levels and tail and used + tail > self.budget:
            cuts.append(len(levels) - 1)
        return tuple(cuts)

    def adder_tree_cuts(self, terms: int, term_bits: int, tail: float = 0.0) -> tuple[int, ...]:
        """:meth:`cuts` of a balanced adder tree over ``terms`` operands of ``term_bits`` bits
        (level ``l`` adds ``term_bits + l + 1``-bit values)."""
        m = self.model
        return self.cuts([m.adder(term_bits + level + 1) for level in range(tree_levels(terms))], tail)

    def to_dict(self) -> dict:
        return {"clock_mhz": self.clock_mhz, "target": self.target} if self.on else {}

    def describe(self) -> str:
        return f"pipelined for {self.clock_mhz:g} MHz on {self.target}" if self.on else "no target clock"


UNTIMED = Timing()
