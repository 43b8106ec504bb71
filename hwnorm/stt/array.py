"""Array-level energy, latency and area of a weight buffer, as SRAM and as MLC STT-RAM, periphery
included — so a report compares like with like (the cells alone are not a memory).

The model is data (``hwnorm/data/stt/arrays.toml``, a source for every number):

* **STT-RAM periphery** (row decoder, word lines, H-tree, sense amplifiers / write drivers) from
  NVSim's single-level-cell array anchors, less the SLC cell's own share, as a power law in
  capacity, scaled by the bits an access moves::

      periphery_read(C, W)  = (NVSim_read(C) − 64·e_MTJ_read) · W / 64
      periphery_write(C, W) = periphery_read(C, W)                      (stated assumption)

* **MLC STT-RAM access** = periphery + the cells' own energies from the cell table, state by
  state (a read) or transition by transition (a write): content-dependent, which NVSim is not.
  Latency: NVSim's read + one more MTJ sensing step (two-step MLC read); the periphery's write
  time + the row's slowest transition.
* **SRAM access** = the energy table's published SRAM reads (array figures, periphery included),
  per bit × W; a write is taken equal to a read.
* **Area** = cells × cell area (F²) / array efficiency.

:func:`cross_check` sets the model's SLC-equivalent figures beside the NVSim anchors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from hwnorm.curves import power_law
from hwnorm.io import parse_toml, read_text
from hwnorm.stt.cells import TRANSITION_OF, CellTable

ANCHOR_FIELDS = ("capacity_kib", "word_bits", "read_pj", "read_ns", "write_pj", "write_ns")
SLC_FIELDS = ("read_pj", "read_ns", "write_pulse_ns", "switch_pj")
AREA_FIELDS = ("sram_cell_f2", "stt_cell_f2", "array_efficiency")


@dataclass(frozen=True)
class ArrayModel:
    name: str
    feature_nm: float
    anchors: tuple          # dicts with ANCHOR_FIELDS and source
    slc: dict               # SLC_FIELDS
    area: dict              # AREA_FIELDS
    sram_write_per_read: float
    sources: dict = field(default_factory=dict, compare=False)

    # ------------------------------------------------------------------ periphery
    def _anchor_curve(self, key: str, capacity_bits: int) -> float:
        points = sorted((a["capacity_kib"] * 8192, a[key] * 64 / a["word_bits"]) for a in self.anchors)
        if len(points) == 1:
            return points[0][1]
        return power_law(points, max(capacity_bits, 1))

    def periphery_read_pj(self, capacity_bits: int, word_bits: int) -> float:
        per64 = self._anchor_curve("read_pj", capacity_bits) - 64 * self.slc["read_pj"]
        return max(per64, 0.0) * word_bits / 64

    def periphery_write_pj(self, capacity_bits: int, word_bits: int) -> float:
        return self.periphery_read_pj(capacity_bits, word_bits)

    def read_ns(self, capacity_bits: int, table: CellTable) -> float:
        """An MLC row read: NVSim's SLC read time with the SLC sensing replaced by the cell table's
        (two-step) read of the slowest state."""
        return self._anchor_curve("read_ns", capacity_bits) - self.slc["read_ns"] + max(table.read_latency_ns)

    def write_periphery_ns(self, capacity_bits: int) -> float:
        return max(self._anchor_curve("write_ns", capacity_bits) - self.slc["write_pulse_ns"], 0.0)

    def area_mm2(self, cells: int, technology: str) -> float:
        f2 = self.area["sram_cell_f2" if technology == "sram" else "stt_cell_f2"]
        return cells * f2 * (self.feature_nm * 1e-6) ** 2 / self.area["array_efficiency"]


def load_array_model(source: str | Path | None = None) -> ArrayModel:
    """The bundled model (``None``) or a user's TOML file; every problem names the file and field."""
    if source is None:
        path, origin = Path(str(resources.files("hwnorm.data").joinpath("stt", "arrays.toml"))), "array model 'nvsim-45nm'"
    else:
        path, origin = Path(source), str(source)
    try:
        text = read_text(path)
    except ValueError as e:
        raise ValueError(f"{path}: cannot read array model ({str(e).removeprefix(f'{path}: ')})") from None
    doc = parse_toml(text, path)
    anchors = doc.get("stt_anchor")
    if not isinstance(anchors, list) or not anchors or not all(isinstance(a, dict) for a in anchors):
        raise ValueError(f"{origin}: needs at least one [[stt_anchor]] table")
    for k, a in enumerate(anchors):
        _numbers(a, ANCHOR_FIELDS, f"{origin}: stt_anchor[{k}]")
    slc = _numbers(doc.get("slc_cell"), SLC_FIELDS, f"{origin}: slc_cell")
    area = _numbers(doc.get("area"), AREA_FIELDS, f"{origin}: area")
    sram = _numbers(doc.get("sram"), ("write_per_read",), f"{origin}: sram")
    feature = _numbers(doc, ("feature_nm",), origin)["feature_nm"]
    sources = {"stt_anchor": [a.get("source", "unspecified") for a in anchors],
               **{k: doc.get(k, {}).get("source", "unspecified") for k in ("slc_cell", "periphery", "area", "sram")}}
    return ArrayModel(str(doc.get("name", path.stem)), feature, tuple(anchors), slc, area,
                      sram["write_per_read"], sources)


def _numbers(section, keys, where: str) -> dict:
    if not isinstance(section, dict):
        raise ValueError(f"{where}: missing table with fields {', '.join(keys)}")
    out = {}
    for key in keys:
        v = section.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{where}.{key} must be a finite number > 0, got {v!r}")
        out[key] = float(v)
    return out


# ---------------------------------------------------------------------- one memory
@dataclass
class MemoryCost:
    """One weight memory per inference (reads) and per model load (writes), both technologies."""

    name: str
    rows: int
    data_bits: int           # bits of a row as the datapath reads it
    cells_per_row: int       # MLC cells of a stored row (codec cells included)
    reads_per_inference: int  # row reads
    sram_read_pj: float
    sram_write_pj: float
    stt_read_pj: float
    stt_write_pj: float
    stt_read_ns: float
    stt_write_ns: float      # the whole load, row after row
    sram_area_mm2: float
    stt_area_mm2: float
    stt_cell_read_pj: float  # of stt_read_pj: the cells' own share

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def memory_cost(model: ArrayModel, cells_table: CellTable, energy_table, name: str, cells: np.ndarray,
                data_bits: int, reads_per_row: int, initial_state: int = 0) -> MemoryCost:
    """Costs of a memory of ``cells`` (rows, cells_per_row) holding rows of ``data_bits``, every
    row read ``reads_per_row`` times per inference, loaded once over cells in ``initial_state``."""
    rows, cpr = cells.shape
    sram_capacity = rows * data_bits
    stt_bits = 2 * cpr  # an MLC row moves two bits per cell through the periphery
    stt_capacity = rows * stt_bits
    sram_access = data_bits * energy_table.sram_read_bit(sram_capacity)
    reads = rows * reads_per_row
    state_counts = np.bincount(cells.ravel(), minlength=4)
    cell_read = math.fsum(int(c) * e for c, e in zip(state_counts, cells_table.read_energy_pj))
    cls = TRANSITION_OF[initial_state, cells.astype(np.intp)]
    write_counts = np.bincount(cls.ravel(), minlength=4)
    cell_write = math.fsum(int(c) * e for c, e in zip(write_counts, cells_table.write_energy_pj))
    row_write_ns = np.asarray(cells_table.write_latency_ns)[cls].max(axis=1, initial=0.0)
    periphery_ns = model.write_periphery_ns(stt_capacity)
    return MemoryCost(
        name, rows, data_bits, cpr, reads,
        sram_read_pj=reads * sram_access,
        sram_write_pj=rows * sram_access * model.sram_write_per_read,
        stt_read_pj=reads * model.periphery_read_pj(stt_capacity, stt_bits) + reads_per_row * cell_read,
        stt_write_pj=rows * model.periphery_write_pj(stt_capacity, stt_bits) + cell_write,
        stt_read_ns=model.read_ns(stt_capacity, cells_table),
        stt_write_ns=math.fsum((row_write_ns + periphery_ns).tolist()),
        sram_area_mm2=model.area_mm2(sram_capacity, "sram"),
        stt_area_mm2=model.area_mm2(rows * cpr, "stt"),
        stt_cell_read_pj=reads_per_row * cell_read)


def total(costs: list[MemoryCost]) -> dict:
    keys = ("sram_read_pj", "sram_write_pj", "stt_read_pj", "stt_write_pj", "sram_area_mm2", "stt_area_mm2",
            "stt_cell_read_pj")
    return {k: math.fsum(getattr(c, k) for c in costs) for k in keys}


# ---------------------------------------------------------------------- cross-check
def cross_check(model: ArrayModel, table: CellTable) -> list[dict]:
    """The model at each NVSim anchor's configuration, SLC-equivalent (the anchor's 64-bit word in
    64 SLC cells: Jadidi MTJ reads, random data so half the bits switch on a write), beside the
    anchor — and the MLC figures of the same array (32 cells, the cell table's mean state / write)."""
    out = []
    for a in model.anchors:
        cap, w = int(a["capacity_kib"] * 8192), int(a["word_bits"])
        slc_read = model.periphery_read_pj(cap, w) + w * model.slc["read_pj"]
        slc_write = model.periphery_write_pj(cap, w) + w / 2 * model.slc["switch_pj"]
        mlc_read = model.periphery_read_pj(cap, w) + w / 2 * float(np.mean(table.read_energy_pj))
        mlc_write = model.periphery_write_pj(cap, w) + w / 2 * float(table.write_energy_matrix.mean())
        out.append({"capacity_kib": a["capacity_kib"], "word_bits": w,
                    "nvsim_read_pj": a["read_pj"], "model_slc_read_pj": slc_read,
                    "nvsim_write_pj": a["write_pj"], "model_slc_write_pj": slc_write,
                    "nvsim_read_ns": a["read_ns"], "model_mlc_read_ns": model.read_ns(cap, table),
                    "nvsim_write_ns": a["write_ns"],
                    "model_mlc_read_pj": mlc_read, "model_mlc_write_pj": mlc_write, "source": a.get("source", "")})
    return out
