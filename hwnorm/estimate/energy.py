"""Energy per inference, Accelergy-style: an energy reference table kept as data
(``hwnorm/data/energy/*.toml``: component → action → pJ) times action counts, summed.

Action counts come from the golden model run on real inputs, layer by layer, in the order the
generated hardware streams them (its folding). Each layer kind states its own data-independent
actions per inference (``energy_actions``: e.g. XNOR and popcount input bits, adds of a width,
comparator bits, multiplies) and what its weight buffer holds (``stored_bits``); this module adds
the data-dependent register toggles of each block's output and prices everything:

    xnor_bits, popcount_input_bits, comparator_bits   derived per-bit entries of the table
    add_<w>b, mult_<w>b                                the published adds / multiplies, interpolated
    register_toggles                                   toggled output-register bits (from the data)
    argmax                                             (C − 1) compares of the score width

Register energy counts toggled bits only (consecutive beats on each block's output register), so
that part depends on the data. The weight memories — one per MVU, each row read once per input
vector of its layer — are costed twice at array level, periphery included, like for like
(:mod:`hwnorm.stt.array`): as SRAM arrays of the same size and word (Horowitz's SRAM reads,
interpolated in capacity) and as MLC STT-RAM arrays (NVSim periphery plus the cell table's
content-dependent cell energies, the weights encoded by the chosen codec).

Interpolation rules for widths and capacities the paper does not list (derived, not published):
adds are linear in width between the published 8 / 16 / 32-bit points (extrapolated with the
nearest segment's slope); multiplies follow the power law through the published 8- and 32-bit
points (≈ width²); an SRAM's 64-bit read follows the log-log line between the published capacities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwnorm.curves import piecewise_linear, power_law
from hwnorm.defaults import DEFAULT_ENERGY_TABLE
from hwnorm.io import load_toml
from hwnorm.bnn import Bits
from hwnorm.stt import load_table
from hwnorm.stt.array import total
from hwnorm.stt.store import buffer_costs

__all__ = ["EnergyTable", "load_energy_table", "EnergyReport", "network_energy"]

_DIR = Path(__file__).resolve().parent.parent / "data" / "energy"
_PUBLISHED = {"int_add": "bits", "int_mult": "bits", "sram_read_64b": "kib"}
_DERIVED = {"xnor": "bit", "popcount": "input_bit", "comparator": "bit", "register": "bit_toggle"}


@dataclass(frozen=True)
class EnergyTable:
    name: str
    title: str
    published: dict  # component → sorted ((size, pJ), …)
    derived: dict    # component → (action, pJ, how)
    origin: str = ""

    # ---- rules for sizes between the published points
    def add(self, bits: int) -> float:
        return piecewise_linear(self.published["int_add"], bits)

    def mult(self, bits: int) -> float:
        (b0, e0), (b1, e1) = self.published["int_mult"][0], self.published["int_mult"][-1]
        power = math.log(e1 / e0) / math.log(b1 / b0)
        return e0 * (bits / b0) ** power

    def sram_read_bit(self, capacity_bits: int) -> float:
        return power_law(self.published["sram_read_64b"], max(capacity_bits, 1) / 8192) / 64

    def pj(self, component: str) -> float:
        return self.derived[component][1]

    def entries(self) -> list[dict]:
        """Every entry, published or derived (with how), for reports."""
        rows = [{"component": c, "size": f"{s} {_PUBLISHED[c]}", "pj": pj, "kind": "published"}
                for c, points in self.published.items() for s, pj in points]
        rows += [{"component": c, "size": f"per {a}", "pj": pj, "kind": "derived", "how": how}
                 for c, (a, pj, how) in self.derived.items()]
        return rows


def load_energy_table(source: str | Path | None = None) -> EnergyTable:
    """An energy table by name (``hwnorm/data/energy/NAME.toml``) or path; errors name the key."""
    source = source or DEFAULT_ENERGY_TABLE
    path = Path(source)
    if not path.suffix:
        path = _DIR / f"{source}.toml"
    if not path.exists():
        names = ", ".join(sorted(p.stem for p in _DIR.glob("*.toml")))
        raise ValueError(f"{path}: no such energy table (built in: {names})")
    doc = load_toml(path)
    published: dict = {c: [] for c in _PUBLISHED}
    for k, entry in enumerate(_entries(doc, "published", path)):
        where = f"{path}: published[{k}]"
        component = entry.get("component")
        if component not in _PUBLISHED:
            raise ValueError(f"{where}.component: {component!r} is not one of {', '.join(_PUBLISHED)}")
        size, pj = entry.get(_PUBLISHED[component]), entry.get("pj")
        if not _number(size) or size <= 0 or not _number(pj) or pj <= 0:
            raise ValueError(f"{where}: needs a positive {_PUBLISHED[component]} and a positive pj")
        published[component].append((float(size), float(pj)))
    for component, points in published.items():
        if len(points) < 2:
            raise ValueError(f"{path}: published {component} needs at least two sizes, has {len(points)}")
        published[component] = tuple(sorted(points))
    derived = {}
    for k, entry in enumerate(_entries(doc, "derived", path)):
        where = f"{path}: derived[{k}]"
        component = entry.get("component")
        if component not in _DERIVED or entry.get("action") != _DERIVED[component]:
            allowed = ", ".join(f"{c}/{a}" for c, a in _DERIVED.items())
            raise ValueError(f"{where}: component/action {component}/{entry.get('action')} is not one of {allowed}")
        if not _number(entry.get("pj")) or entry["pj"] < 0 or not isinstance(entry.get("how"), str) or \
                not entry["how"].strip():
            raise ValueError(f"{where}: needs pj ≥ 0 and a 'how' saying how it was derived")
        derived[component] = (entry["action"], float(entry["pj"]), str(entry["how"]))
    missing = sorted(set(_DERIVED) - set(derived))
    if missing:
        raise ValueError(f"{path}: derived entries missing for {', '.join(missing)}")
    return EnergyTable(str(doc.get("name", path.stem)), str(doc.get("title", "")), published, derived, str(path))


def _number(v) -> bool:
    """A finite TOML number (a boolean is none; nan and inf would print as "nan pJ")."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _entries(doc: dict, key: str, path) -> list:
    entries = doc.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"{path}: {key} must be an array of tables ([[{key}]]), got {entries!r}"[:300])
    return entries


@dataclass
class LayerEnergy:
    name: str
    counts: dict = field(default_factory=dict)  # action → count per inference
    pj: dict = field(default_factory=dict)      # component → pJ per inference

    @property
    def total(self) -> float:
        return sum(self.pj.values())


@dataclass
class EnergyReport:
    layers: list
    images: int
    table: str
    buffer_bits: int
    buffer_sram_pj: float       # the weight memories read per inference, as SRAM arrays
    buffer_stt_pj: float        # … as MLC STT-RAM arrays (periphery and cells)
    arrays: dict                # hwnorm.stt.array totals, and each memory's costs
    stt_codec: str = "none"
    stt_cells: int = 0          # MLC cells holding the weights (codec cells included)

    @property
    def compute_pj(self) -> float:
        return sum(layer.total for layer in self.layers)

    def per_component(self) -> dict:
        out: dict = {}
        for layer in self.layers:
            for component, pj in layer.pj.items():
                out[component] = out.get(component, 0.0) + pj
        return out

    def total_pj(self, buffer: str = "sram") -> float:
        return self.compute_pj + (self.buffer_sram_pj if buffer == "sram" else self.buffer_stt_pj)

    def to_dict(self) -> dict:
        return {"images": self.images, "table": self.table,
                "layers": [{"name": l.name, "counts": l.counts, "pj": l.pj, "total_pj": l.total} for l in self.layers],
                "per_component_pj": self.per_component(), "compute_pj": self.compute_pj,
                "weight_buffer": {"bits": self.buffer_bits, "sram_pj": self.buffer_sram_pj,
                                  "stt_pj": self.buffer_stt_pj, "stt_codec": self.stt_codec,
                                  "stt_cells": self.stt_cells, **self.arrays},
                "total_pj_sram_buffer": self.total_pj("sram"), "total_pj_stt_buffer": self.total_pj("stt")}


class ToggleCounter:
    """Bits that change on a register carrying beats of ``lanes`` elements of ``width`` bits, fed
    a batch of values at a time, images back to back (the register starts at 0; each batch's
    first beat is compared with the last beat of the one before, so batches add up exactly)."""

    def __init__(self, lanes: int, width: int):
        self.lanes, self.width = lanes, width
        self.last = np.zeros(lanes, np.uint64)
        self.toggles = 0

    def add(self, values) -> None:
        v = np.asarray(values.unpack() if isinstance(values, Bits) else values, np.int64).reshape(-1, self.lanes)
        if not len(v):
            return
        codes = v.view(np.uint64) & np.uint64((1 << min(self.width, 64)) - 1)  # two's complement, width bits
        changed = codes ^ np.concatenate([self.last[None], codes[:-1]])
        self.toggles += _popcount(changed)
        self.last = codes[-1].copy()


def _popcount(words: np.ndarray) -> int:
    if hasattr(np, "bitwise_count"):  # numpy ≥ 2
        return int(np.bitwise_count(words).sum(dtype=np.int64))
    return int(np.unpackbits(np.ascontiguousarray(words).view(np.uint8)).sum(dtype=np.int64))


def register_toggles(values: np.ndarray, lanes: int, width: int) -> int:
    """Bits that change on an output register carrying ``values`` (images, features) as beats of
    ``lanes`` elements of ``width`` bits, images back to back (the register starts at 0)."""
    counter = ToggleCounter(lanes, width)
    counter.add(values)
    return counter.toggles


def _layer_energy(layer, block, fold: dict, toggles: int, table: EnergyTable,
                  images: int) -> tuple[LayerEnergy, int, int]:
    """Energy of one layer (its ``block`` at ``fold``) per inference, the weight-buffer bits it
    reads per inference, and the width of its output elements (``toggles``: its output register's
    over ``images``)."""
    counts = {action: count * layer.units_per_image for action, count in layer.energy_actions(fold).items()}
    counts["register_toggles"] = toggles / images
    buffer_bits = sum(bits.size for bits in layer.stored_bits())
    return LayerEnergy(layer.name, counts, _price(counts, table)), buffer_bits, block.out_type.width


# The actions layer kinds count (Layer.energy_actions), as data: a name → (component, price of one
# action from the table); a family ``<prefix><bits>b`` is priced at its width. A kind that counts
# an action not listed here is refused by name, with the list.
ACTIONS = {
    "xnor_bits": ("xnor", lambda table: table.pj("xnor")),
    "popcount_input_bits": ("popcount", lambda table: table.pj("popcount")),
    "comparator_bits": ("comparator", lambda table: table.pj("comparator")),
    "register_toggles": ("register", lambda table: table.pj("register")),
}
ACTION_FAMILIES = {
    "add_": ("add", lambda table, bits: table.add(bits)),
    "mult_": ("mult", lambda table, bits: table.mult(bits)),
    # a line buffer: bits written and read, priced as SRAM reads of that capacity
    "ram_access_": ("line_buffer", lambda table, bits: table.sram_read_bit(bits)),
}


def _unit_price(action: str, table: EnergyTable) -> tuple[str, float]:
    """(component, pJ of one) of an action name."""
    if action in ACTIONS:
        component, price = ACTIONS[action]
        return component, price(table)
    for prefix, (component, price) in ACTION_FAMILIES.items():
        width = action[len(prefix):-1]
        if action.startswith(prefix) and action.endswith("b") and width.isdigit():
            return component, price(table, int(width))
    names = ", ".join([*ACTIONS, *(f"{prefix}<bits>b" for prefix in ACTION_FAMILIES)])
    raise ValueError(f"no energy entry for action {action!r}; actions are {names}")


def _price(counts: dict, table: EnergyTable) -> dict:
    pj: dict = {}
    for action, count in counts.items():
        component, one = _unit_price(action, table)
        pj[component] = pj.get(component, 0.0) + count * one
    return pj


def energy_batch(net, values: int = 1 << 22) -> int:
    """Images per batch of the energy estimate: about ``values`` output values of the widest layer
    (a convolution's windows are the widest), at least one image."""
    widest = max(math.prod(layer.out_shape) for layer in net.layers)
    return max(1, values // widest)


def network_energy(top, x: np.ndarray, table: EnergyTable | None = None, cells=None, codec: str = "none",
                   arrays=None) -> EnergyReport:
    """pJ per inference of a folded network (its :class:`~hwnorm.dataflow.NetworkBlock` ``top``:
    network, folding, output and the layers' blocks) on inputs ``x`` (images, features), per layer
    and component, with its weight memories as SRAM and as MLC STT-RAM arrays, periphery included
    (:mod:`hwnorm.stt.array`; cell table ``cells``, weights encoded by ``codec``, one of
    :data:`hwnorm.stt.intcodec.INT_CODECS`)."""
    net, folding, blocks = top.net, top.folding, top.layer_blocks

    table = table or load_energy_table()
    cells = cells or load_table()
    x = np.asarray(x).reshape(len(x), -1)
    images = len(x)
    if images < 1:
        raise ValueError("energy needs at least one input vector")
    layers, buffer_bits, out_w = [], 0, None
    first = blocks[net.layers[0].name]
    inputs = ToggleCounter(first.in_lanes, first.in_type.width)
    toggles = {layer.name: ToggleCounter(blocks[layer.name].out_lanes, blocks[layer.name].out_type.width)
               for layer in net.layers}
    # the golden model runs a batch of images at a time and only the toggle counts are kept, so
    # memory stays that of one batch however many images the estimate averages over
    batch = energy_batch(net)
    for start in range(0, images, batch):
        inputs.add(x[start:start + batch])
        for layer, out in net.trace(x[start:start + batch]):
            toggles[layer.name].add(out)
    counts = {"register_toggles": inputs.toggles / images}
    layers.append(LayerEnergy("input", counts, _price(counts, table)))
    for layer in net.layers:
        energy, bits, out_w = _layer_energy(layer, blocks[layer.name], folding[layer.name],
                                            toggles[layer.name].toggles, table, images)
        layers.append(energy)
        buffer_bits += bits
    if top.output == "argmax":
        counts = {"comparator_bits": (net.out_features - 1) * out_w}
        layers.append(LayerEnergy("argmax", counts, _price(counts, table)))
    memories = buffer_costs(net, folding, codec, cells, table, arrays, blocks)
    sums = total(memories)
    return EnergyReport(layers, images, table.name, buffer_bits, sums["sram_read_pj"], sums["stt_read_pj"],
                        {"memories": [m.to_dict() for m in memories], **sums, "cell_table": cells.name},
                        codec, sum(m.rows * m.cells_per_row for m in memories))
