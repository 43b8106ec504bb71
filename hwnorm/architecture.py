"""The package's tiers, top to bottom: a module imports only modules of its own tier or below.

``tests/test_architecture.py`` reads the import graph from the source (grimp, local imports
included) and holds it to this table: no import cycle, no import up a tier. Nothing in hwnorm
imports this module; it is the architecture written down where a test can check it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

__all__ = ["Tier", "tiers", "tier_of", "upward_imports", "ALLOWED_UPWARD"]


@dataclass(frozen=True)
class Tier:
    name: str
    owns: str
    modules: tuple[str, ...]   # names under hwnorm (``x.*``: every module of the package x)


_TIERS = (
    Tier("entry", "the console command: signals while modules load", ("entry",)),
    Tier("command line", "argument parsing; each command loads its modules when it runs", ("cli",)),
    Tier("benchmarks", "hwnorm bench: figures against a baseline measured in the same run", ("bench", "bench.*")),
    Tier("sweeps", "design-space and fault sweeps over flow configs", ("sweep",)),
    Tier("flows", "hwnorm flow's stages; the STT weight-buffer study", ("flow", "stt.weights_report")),
    Tier("reports", "one page, JSON and plots per design from the stages' products", ("report",)),
    Tier("design stages", "a design's estimates, calibration and co-simulation",
         ("estimate.design", "estimate.calibration", "sim.verify")),
    Tier("designs", "designs and flow configs → blocks, Verilog, manifests", ("generate", "config")),
    Tier("model import", "a model file → a network; which activation realization",
         ("models", "check", "bnfold", "activations")),
    Tier("importer", "ONNX / QONNX → the integer IR; input quantization", ("qonnx", "inputs")),
    Tier("networks", "the IR (a chain or a graph of layers) and its folded hardware (NetworkBlock)", ("ir", "dataflow")),
    Tier("layer kinds", "one module per kind: spec, golden model, folding, block", ("layers", "layers.*")),
    Tier("cost models", "cycles, energy, resources and synthesis of blocks; FPGA parts; STT codec blocks",
         ("estimate", "stt.blocks", "estimate.resources", "estimate.energy", "estimate.synthesis", "estimate.cycles",
          "estimate.devices", "estimate.netlist")),
    Tier("blocks", "the hardware-model base: cycle model, inventory, stream plumbing; the clock-by-clock "
         "back-pressure models", ("blocks", "clocked", "clocked_compiled")),
    Tier("simulation", "co-simulation jobs, simulator runs, testbenches, scoreboards", ("sim", "sim.*", "verilator")),
    Tier("HDL", "Amaranth components built from blocks; Verilog text", ("hdl", "hdl.*")),
    Tier("STT-RAM", "MLC cells, codecs, the weight buffer and its faults", ("stt", "stt.*")),
    Tier("arithmetic", "golden kernels and exact number rules",
         ("bnn", "bnspec", "quantizer", "fixed", "exactfit", "intmm", "vectorize", "spec", "datatypes", "timing",
          "curves")),
    Tier("foundation", "files, defaults, data, terminal text, the kernel cache, folding values",
         ("io", "defaults", "data", "terminal", "_kernel_cache", "hwnorm", "qonnx_ref", "architecture", "folding")),
)

# (importer, imported) pairs allowed to run up the tiers, each with its reason. None today.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


def tiers() -> tuple[Tier, ...]:
    return _TIERS


def tier_of(module: str) -> int | None:
    """The index of a module's tier (0 the top); an exact name wins over a package's ``x.*``."""
    short = "hwnorm" if module == "hwnorm" else module.removeprefix("hwnorm.")
    wildcard = None
    for k, tier in enumerate(_TIERS):
        for pattern in tier.modules:
            if short == pattern:
                return k
            if wildcard is None and fnmatch.fnmatch(short, pattern):
                wildcard = k
    return wildcard


@dataclass(frozen=True)
class Upward:
    importer: str
    imported: str
    line: int
    text: str


def upward_imports(graph) -> list[Upward]:
    """Every import (a grimp graph's) of a module in a higher tier than its importer's."""
    out = []
    for m in sorted(graph.modules):
        for d in sorted(graph.find_modules_directly_imported_by(m)):
            if tier_of(d) is not None and tier_of(m) is not None and tier_of(d) < tier_of(m):
                out += [Upward(m, d, x["line_number"], x["line_contents"])
                        for x in graph.get_import_details(importer=m, imported=d)]
    return out
