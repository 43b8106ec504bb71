"""Analytic LUT / FF / BRAM / DSP model per FPGA target, calibrated against Yosys synthesis.

FINN-R style, but calibrated: every block (:mod:`hwnorm.blocks`) states an
:class:`~hwnorm.blocks.Inventory` of what it is built from (popcount inputs, adder and comparator
bits, multiplexers, registers, memories, multipliers) from its spec and folding — no Amaranth.
Per target this module

1. places each memory (block RAM, LUT RAM, or LUTs / flip-flops) and each multiplier (DSP or
   LUTs) by the target's rules in ``hwnorm/data/fpga/targets.toml`` — that gives BRAM, LUT-RAM
   and DSP counts directly;
2. turns the rest into *features* (bits of each kind of logic, and of ROMs, RAMs and products
   left in logic) and multiplies them by per-target costs (LUTs per feature bit, flip-flops per
   register bit, carry cells per adder bit).

The costs are fitted — non-negative least squares on relative error — to synthesis of a
calibration set of blocks that excludes the default designs (:mod:`hwnorm.estimate.calibration`),
one set of costs per block kind (keyed by the block's ``cost_key``: the layer kind's registry
name, or the plumbing's), each on the features its block class declares
(:attr:`hwnorm.blocks.Block.cost_features`), plus a ``generic`` set fitted on every block for a
kind that has none yet (a new layer kind before it is calibrated: its estimate says so). They
are kept as data in ``hwnorm/data/fpga/calibration.json`` with the tool versions they came from.
``hwnorm estimate --calibrate`` refits them. The default designs are then held-out checks: their
estimate-vs-synthesis error is what the report and the tests show.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from hwnorm.blocks import CALIBRATION_CLOCK_MHZ, Inventory
from hwnorm.estimate.synthesis import TARGETS, Target

__all__ = ["FEATURES", "place_memories", "goes_to_block_ram", "block_ram_bank_depth", "mux_fan_in", "mux_levels", "features", "ResourceModel", "load_calibration", "estimate_resources",
           "fit_costs", "relative_error", "parts", "rom_luts", "kind_features", "GENERIC", "fit_errors",
           "uncalibrated_kinds", "calibration_path"]

FEATURES = ("blocks", "popcount", "adder", "compare", "mux", "logic", "register",
            "rom_luts", "rom_width", "rom_shallow_width", "ram_bits", "ram_width", "mult_bits", "table_bits")
SHALLOW_ROM = 8  # rows: Yosys registers the address of a ROM this shallow rather than its wide output
# Costs for a block kind with none of its own (a new layer kind, before `--calibrate` has seen it):
# every feature, fitted on every calibration block. Coarser than a kind's own fit; reports say so.
GENERIC = "generic"
GENERIC_FEATURES = {"lut": ("blocks", "popcount", "adder", "compare", "mux", "logic", "rom_luts", "rom_width",
                            "ram_bits", "ram_width", "mult_bits", "table_bits"),
                    "ff": ("blocks", "register", "rom_width", "rom_shallow_width", "ram_bits", "ram_width"),
                    "carry": ("blocks", "adder", "compare", "mult_bits")}
CALIBRATION = "calibration.json"


def parts(block) -> list[tuple[str, Inventory]]:
    """(block kind, inventory) of each part of a block: a network's stages, or itself."""
    return [(b.cost_key, b.inventory()) for b in block.parts()]


def kind_features(blocks) -> dict:
    """The features each cost key of ``blocks`` (and of their parts) is fitted on, as the blocks
    declare them (:attr:`hwnorm.blocks.Block.cost_features`), in order of first appearance."""
    out: dict = {}
    for block in blocks:
        for part in block.parts():
            for key, features in part.cost_features.items():
                out.setdefault(key, features)
    return out


def uncalibrated_kinds(block, calibration: dict | None = None) -> list[str]:
    """The kinds in ``block`` that have no costs of their own (costed with the generic fit)."""
    costs = next(iter(models(calibration).values())).costs
    return sorted({kind for kind, _ in parts(block) if kind not in costs})


def rom_luts(width: int, depth: int, k: int) -> int:
    """k-input LUTs of a ``depth``-row ROM left in logic: per output bit ⌈depth / 2^k⌉ LUTs and a
    mux tree joining them."""
    n = math.ceil(depth / (1 << k))
    return width * (n + math.ceil((n - 1) / (k - 1)))


def _tiles(width: int, depth: int, modes) -> int:
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in modes)


def goes_to_block_ram(kind: str, width: int, depth: int, target: Target) -> bool:
    """Whether Yosys puts a ``kind`` (``rom`` / ``ram``) memory of this shape into block RAM."""
    r, bits = target.rules, width * depth
    if kind == "ram":
        return depth >= r["ram_bram_min_depth"] > 0 and bits >= r["ram_bram_min_bits"]
    return (r["rom_bram_min_depth"] > 0 and depth >= r["rom_bram_min_depth"] and bits >= r["rom_bram_min_bits"]
            and bits >= r.get("rom_bram_min_bits_per_tile", 0) * _tiles(width, depth, r["bram_modes"]))


def block_ram_bank_depth(width: int, depth: int, target: Target) -> int:
    """Rows per bank when a ``width``-bit ROM of ``depth`` rows is split by depth into banks that
    each fit one column of block RAM tiles (0: it is not split — it fits one tile deep, or it does
    not go to block RAM). The bank depth is the block RAM mode (``bram_modes``) that takes the
    fewest tiles for the whole memory (the deepest of equals: the fewest banks), so banking costs
    no tile more than :func:`_tiles` counts for the memory whole."""
    if not goes_to_block_ram("rom", width, depth, target):
        return 0
    modes = target.rules["bram_modes"]
    bank, _ = min(modes, key=lambda m: (math.ceil(width / m[1]) * math.ceil(depth / m[0]), -m[0]))
    return bank if depth > bank else 0


def mux_fan_in(target: Target) -> int:
    """Inputs one routed LUT level of a mux picks from: a k-input LUT with the slice's
    wide-function muxes (ECP5 PFUMX / L6MUX21, 7-series MUXF7 / MUXF8) picks one of 2^(k−1)."""
    return 1 << (target.rules["lut_inputs"] - 1)


def mux_levels(inputs: int, target: Target) -> int:
    """Routed LUT levels of an ``inputs``-to-1 mux (:func:`mux_fan_in` per level)."""
    return math.ceil(max(inputs - 1, 0).bit_length() / (target.rules["lut_inputs"] - 1))


def place_memories(inv: Inventory, target: Target) -> list[tuple]:
    """(memory, place, cells) per memory: place is ``bram``, ``lutram`` or ``logic``."""
    r = target.rules
    out = []
    for mem in inv.memories:
        if goes_to_block_ram(mem.kind, mem.width, mem.depth, target):
            out.append((mem, "bram", _tiles(mem.width, mem.depth, r["bram_modes"])))
        elif mem.kind == "ram" and mem.depth <= r["lutram_max_depth"]:
            depth, width = r["lutram"]
            out.append((mem, "lutram", math.ceil(mem.width / width) * math.ceil(mem.depth / depth)))
        else:
            out.append((mem, "logic", 0))
    return out


def _dsp_tiles(a: int, b: int, target: Target) -> int:
    """DSP tiles of an a × b multiplier (0: it stays in LUTs)."""
    da, db = target.rules["dsp"]
    if not da or min(a, b) < target.rules["dsp_min_width"]:
        return 0
    return min(math.ceil(a / da) * math.ceil(b / db), math.ceil(b / da) * math.ceil(a / db))


def features(inv: Inventory, target: Target) -> tuple[dict, dict]:
    """(linear features, directly counted cells: bram, lutram, dsp) of an inventory on a target."""
    f = {name: getattr(inv, name) for name in ("blocks", "popcount", "adder", "compare", "mux", "logic", "register")}
    f.update(rom_luts=0, rom_width=0, rom_shallow_width=0, ram_bits=0, ram_width=0, mult_bits=0, table_bits=0)
    direct = {"bram": 0, "lutram": 0, "dsp": 0, "lut": inv.luts}
    for mem, place, cells in place_memories(inv, target):
        if place == "logic" and mem.kind == "rom":
            f["rom_luts"] += rom_luts(mem.width, mem.depth, target.rules["lut_inputs"])
            f["rom_shallow_width" if mem.depth <= SHALLOW_ROM else "rom_width"] += mem.width
        elif place == "logic":
            f["ram_bits"] += mem.width * mem.depth
            f["ram_width"] += mem.width
        else:
            direct[place] += cells
            if place == "lutram":
                f["ram_width"] += mem.width  # read register
    for a, b in inv.multipliers:
        tiles = _dsp_tiles(a, b, target)
        direct["dsp"] += tiles
        if not tiles:
            f["mult_bits"] += a * b
    for a, b in inv.table_products:  # a product bit: one function of a + b inputs, 2^(a+b−k) k-input LUTs
        f["table_bits"] += (a + b) << max(0, a + b - target.rules["lut_inputs"])
    return f, direct


@dataclass(frozen=True)
class ResourceModel:
    """Fitted costs of one target: block kind → class → {feature: cells per feature unit}."""
    target: Target
    costs: dict

    def estimate_part(self, kind: str, inv: Inventory) -> dict:
        costs = self.costs.get(kind, self.costs.get(GENERIC))
        if costs is None:
            raise ValueError(f"no {self.target.name} resource costs for block kind {kind!r}; calibrated: "
                             f"{', '.join(sorted(self.costs))} (run `hwnorm estimate --calibrate`)")
        f, direct = features(inv, self.target)
        out = {cls: sum(c * f[name] for name, c in class_costs.items()) for cls, class_costs in costs.items()}
        for cls, cells in direct.items():
            out[cls] = out.get(cls, 0) + cells
        return out

    def estimate(self, block) -> dict:
        """Whole cells per class of a block (the sum of its parts' estimates)."""
        total: dict = {}
        for kind, inv in parts(block):
            for cls, v in self.estimate_part(kind, inv).items():
                total[cls] = total.get(cls, 0) + v
        return {cls: int(round(v)) for cls, v in total.items()}


def calibration_path() -> Path:
    return Path(str(resources.files("hwnorm.data").joinpath("fpga", CALIBRATION)))


def load_calibration(path=None) -> dict:
    path = Path(path) if path else calibration_path()
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no resource calibration; run `hwnorm estimate --calibrate`") from None


def models(calibration: dict | None = None) -> dict[str, ResourceModel]:
    cal = calibration or load_calibration()
    return {name: ResourceModel(TARGETS[name], entry["costs"]) for name, entry in cal["targets"].items()
            if name in TARGETS}


def estimate_resources(block, targets=None, calibration: dict | None = None) -> dict:
    """Analytic resources of a block per target: {target: {lut, ff, carry, bram, lutram, dsp}}."""
    return {name: m.estimate(block) for name, m in models(calibration).items()
            if targets is None or name in targets}


# ------------------------------------------------------------------ calibration
def nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Non-negative least squares by active-set elimination (a handful of features: exact enough)."""
    active = list(range(a.shape[1]))
    x = np.zeros(a.shape[1])
    while active:
        sol, *_ = np.linalg.lstsq(a[:, active], b, rcond=None)
        if (sol >= 0).all():
            x[active] = sol
            break
        active.pop(int(np.argmin(sol)))
    return x


def fit_costs(samples: list[tuple[dict, dict]], class_features: dict) -> dict:
    """Per class, costs minimizing the relative error over ``samples`` of (features, measured counts),
    on the features ``class_features[class]``."""
    costs = {}
    for cls, names in class_features.items():
        rows = [(f, m[cls]) for f, m in samples if m[cls] > 0]
        if not rows:
            costs[cls] = {}
            continue
        a = np.array([[f[n] / y for n in names] for f, y in rows], dtype=float)
        x = nnls(a, np.ones(len(rows)))
        costs[cls] = {n: round(float(c), 6) for n, c in zip(names, x) if round(float(c), 6) > 0}
    return costs


def fit_errors(entry: dict) -> dict:
    """Median |relative error| per class (lut, ff) over the blocks of one target's calibration."""
    errors = {cls: [abs(e - m) / m for e, m in (row[cls] for row in entry["fit"].values()) if m]
              for cls in ("lut", "ff")}
    return {cls: float(np.median(v)) for cls, v in errors.items()}


def relative_error(estimate: float, measured: float) -> float | None:
    """(estimate − measured) / measured; None when nothing was measured."""
    return None if not measured else (estimate - measured) / measured
