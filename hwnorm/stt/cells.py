"""The MLC STT-RAM cell model, kept as data (Accelergy style): a table, not code.

A cell stores two bits, written ``"hard soft"``; the state index is ``2·hard + soft``::

    state   "00"  "01"  "10"  "11"
    index    0     1     2     3        extreme states: 00, 11   intermediate: 01, 10

A write moves a cell from its old state to a new one; the cost depends on the transition class
(REFERENCES.md §3), derived here from the two states by the rule of a serial MLC cell:

    ZT  no change                        old == new
    ST  soft bit only                    hard unchanged
    HT  hard bit, one step               hard changes, new state extreme (soft dragged along)
    TT  two steps                        hard changes, new state intermediate (hard, then soft)

The numbers (read energy / latency per state, write energy / latency per transition, hard and
soft bit-error probability per state) come from a TOML or JSON table; the defaults live in
``hwnorm/data/stt/`` with a source named for every number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from hwnorm.defaults import DEFAULT_CELLS
from hwnorm.io import parse_json, parse_toml, read_text
from hwnorm.spec import SpecIdentity

STATES = ("00", "01", "10", "11")
TRANSITIONS = ("ZT", "ST", "HT", "TT")
ZT, ST, HT, TT = range(4)
BUNDLED = {
    "default": "serial_mlc_default.toml",
    "public-code": "public_code_transitions.toml",
}


def transition_class(old: int, new: int) -> int:
    """ZT / ST / HT / TT index of writing state ``new`` over state ``old``."""
    if old == new:
        return ZT
    if (old >> 1) == (new >> 1):
        return ST
    return HT if (new >> 1) == (new & 1) else TT


TRANSITION_OF = np.array([[transition_class(o, n) for n in range(4)] for o in range(4)], dtype=np.int8)
"""``TRANSITION_OF[old, new]`` — the transition class table every view uses."""


@dataclass(frozen=True, eq=False)
class CellTable(SpecIdentity):
    name: str
    read_energy_pj: tuple[float, float, float, float]
    read_latency_ns: tuple[float, float, float, float]
    write_energy_pj: tuple[float, float, float, float]   # indexed by ZT, ST, HT, TT
    write_latency_ns: tuple[float, float, float, float]
    p_hard: tuple[float, float, float, float]            # per state
    p_soft: tuple[float, float, float, float]
    sources: dict = field(default_factory=dict, compare=False)
    description: str = ""

    # ------------------------------------------------------------------ derived views
    @property
    def write_energy_matrix(self) -> np.ndarray:
        """``[old, new]`` → pJ."""
        return np.asarray(self.write_energy_pj)[TRANSITION_OF]

    @property
    def write_latency_matrix(self) -> np.ndarray:
        return np.asarray(self.write_latency_ns)[TRANSITION_OF]

    @property
    def mean_write_energy_into(self) -> np.ndarray:
        """Expected energy of writing each state over a uniformly random old state."""
        return self.write_energy_matrix.mean(axis=0)

    @property
    def max_soft_error(self) -> float:
        return max(self.p_soft)

    def at_ber(self, ber: float) -> "CellTable":
        """The same table with every error probability scaled so the largest soft-bit probability
        equals ``ber`` (the ratios between states and between hard and soft bits are kept)."""
        if not 0 <= ber <= 1:
            raise ValueError(f"bit-error rate must be in [0, 1], got {ber}")
        ref = self.max_soft_error
        if ref == 0:
            raise ValueError(f"cell table {self.name!r}: all soft-bit error probabilities are 0, cannot scale")
        k = ber / ref
        clip = lambda ps: tuple(min(1.0, p * k) for p in ps)  # noqa: E731
        return CellTable(self.name, self.read_energy_pj, self.read_latency_ns, self.write_energy_pj,
                         self.write_latency_ns, clip(self.p_hard), clip(self.p_soft), self.sources,
                         self.description)

    def to_dict(self) -> dict:
        def per_state(a, b, names):
            return {s: {names[0]: a[i], names[1]: b[i]} for i, s in enumerate(STATES)}

        write = {t: {"energy_pj": self.write_energy_pj[i], "latency_ns": self.write_latency_ns[i]}
                 for i, t in enumerate(TRANSITIONS)}
        return {"name": self.name,
                "read": per_state(self.read_energy_pj, self.read_latency_ns, ("energy_pj", "latency_ns")),
                "write": write,
                "error": per_state(self.p_hard, self.p_soft, ("p_hard", "p_soft"))}


# ---------------------------------------------------------------------- loading

_SECTIONS = {
    "read": (STATES, ("energy_pj", "latency_ns")),
    "write": (TRANSITIONS, ("energy_pj", "latency_ns")),
    "error": (STATES, ("p_hard", "p_soft")),
}


def _number(where: str, value, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where} must be a finite number ≥ 0, got {value!r}")
    if upper is not None and value > upper:
        raise ValueError(f"{where} must be ≤ {upper}, got {value!r}")
    return float(value)


def table_from_dict(doc: dict, origin: str = "cell table") -> CellTable:
    """Validate a parsed table; every problem is a ValueError naming ``origin`` and the field."""
    if not isinstance(doc, dict):
        raise ValueError(f"{origin}: expected a table (object) at the top level")
    allowed = {"name", "description", *_SECTIONS}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ValueError(f"{origin}: unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    name = doc.get("name", Path(origin).stem)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{origin}: name must be a non-empty string")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"{origin}: description must be a string")
    columns, sources = {}, {}
    for section, (keys, fields) in _SECTIONS.items():
        body = doc.get(section)
        if not isinstance(body, dict):
            raise ValueError(f"{origin}: missing section [{section}] with entries {', '.join(keys)}")
        extra = sorted(set(body) - set(keys))
        if extra:
            raise ValueError(f"{origin}: {section}.{extra[0]!r} is not a valid entry; allowed: {', '.join(keys)}")
        for f in fields:
            columns[(section, f)] = []
        for key in keys:
            where = f"{origin}: {section}.{key}"
            entry = body.get(key)
            if not isinstance(entry, dict):
                raise ValueError(f"{where} is missing (needs {', '.join(fields)})")
            bad = sorted(set(entry) - {*fields, "source"})
            if bad:
                raise ValueError(f"{where}: unknown field {bad[0]!r}; allowed: {', '.join((*fields, 'source'))}")
            for f in fields:
                if f not in entry:
                    raise ValueError(f"{where}: missing field {f!r}")
                upper = 1.0 if f.startswith("p_") else None
                columns[(section, f)].append(_number(f"{where}.{f}", entry[f], upper))
            src = entry.get("source", "unspecified (user table)")
            if not isinstance(src, str):
                raise ValueError(f"{where}.source must be a string")
            sources[f"{section}.{key}"] = src
    if columns[("write", "energy_pj")][ZT] != 0 or columns[("write", "latency_ns")][ZT] != 0:
        raise ValueError(f"{origin}: write.ZT must cost 0 (a cell that keeps its state is not written)")
    col = lambda s, f: tuple(columns[(s, f)])  # noqa: E731
    return CellTable(name, col("read", "energy_pj"), col("read", "latency_ns"), col("write", "energy_pj"),
                     col("write", "latency_ns"), col("error", "p_hard"), col("error", "p_soft"), sources,
                     description)


def load_table(source: str | Path | None = None) -> CellTable:
    """A bundled table by name (``default``, ``public-code``) or a user's ``.toml`` / ``.json`` file."""
    source = DEFAULT_CELLS if source is None else source
    if str(source) in BUNDLED:
        path = Path(str(resources.files("hwnorm.data").joinpath("stt", BUNDLED[str(source)])))
    else:
        path = Path(source)
    try:
        text = read_text(path)
    except ValueError as e:  # missing, a folder, unreadable, not UTF-8: said with the file's name
        reason = str(e).removeprefix(f"{path}: ")
        raise ValueError(f"{path}: cannot read cell table ({reason}); bundled tables: {', '.join(BUNDLED)}") from None
    doc = parse_json(text, path) if path.suffix == ".json" else parse_toml(text, path)
    return table_from_dict(doc, str(path) if str(source) not in BUNDLED else f"cell table {source!r}")
