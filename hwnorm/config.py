"""The design configuration of ``hwnorm flow`` (and ``hwnorm sweep``): one TOML file for
everything a user sets. Every key is optional; unknown keys and bad values are errors that name
the key and what is allowed::

    model = "TFC_1W1A"        # the vendored model, or an ONNX / IR JSON path (relative to this file)
    name = "tfc"              # Verilog module name of the network top
    output = "argmax"         # argmax | raw
    score_bits = 16           # width of the class scores of an imported model (2..32; the input width
                              # is the data's: 8-bit MNIST pixels)
    activations = "auto"      # quantized activations after an accumulator: thresholds (default) | requant
                              # | auto (the cheaper on `target`), or a table {MatMul_20 = "requant", …}
    clock_mhz = 150.0         # the clock of the throughput figures, and the one the datapath is
                              # pipelined for on `target` (ecp5, ice40: delay model in data/fpga/delays.toml)
    target = "ecp5"           # ice40 | ecp5 | xilinx: the family the summary shows (all are reported)
    device = "LFE5U-85F"      # a part (hwnorm/data/fpga/devices.toml): its family is the target; the
                              # folding search fits it in LUT, FF, BRAM and DSP, and Fmax is placed on it
    synth = true              # Yosys synthesis of the top for every target
    fmax = true               # nextpnr place-and-route for Fmax where the top fits (~2 min for TFC)
    simulator = "auto"        # auto | verilator | icarus | none
    vectors = 500             # MNIST images co-simulated against the golden model
    test_images = "all"       # all | held-out: the 2,000 MNIST test images hwnorm's own training
                              # scripts leave out (index a multiple of 5), for models trained on the rest
    seed = 2026
    images = 1000             # images whose action counts give the energy
    energy_table = "horowitz45"
    rtl_dir = "rtl"           # relative to the current directory
    reports_dir = "reports"

    [folding]                 # per layer {pe, simd}; layers not named are folded automatically
    MatMul_16 = { pe = 16, simd = 49 }

    [auto_folding]            # how the layers not in [folding] are folded (default: hwnorm's choice,
                              # or with a `device` the fastest folding whose estimate fits it)
    throughput = 1.0e6        # images/s at clock_mhz: the cheapest folding that reaches it
    lut_budget = 20000        # or the fastest folding whose LUT estimate on `target` fits

    [stt]                     # the MLC STT-RAM weight buffer of the energy estimate
    codec = "none"            # none | remap | remap+backup | rearrange | fnw | hamming (weight codecs)
    cells = "default"         # a cell table name or TOML path
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from hwnorm.data import TEST_IMAGE_SETS
from hwnorm.dataflow import OUTPUTS
from hwnorm.defaults import (DEFAULT_BUFFER_CODEC, DEFAULT_CELLS, DEFAULT_CLOCK_MHZ, DEFAULT_ENERGY_TABLE, DEFAULT_IMAGES,
                             DEFAULT_SEED, DEFAULT_SIMULATOR, DEFAULT_TARGET, DEFAULT_VECTORS, LIMITS, SIMULATOR_CHOICES,
                             WEIGHT_CODECS, check_limit)
from hwnorm.io import load_toml
from hwnorm.models import DEFAULT_MODEL
from hwnorm.activations import check_choice
from hwnorm.estimate.devices import device_named
from hwnorm.estimate.synthesis import TARGETS
from hwnorm.hdl.names import check_identifier
from hwnorm.folding import Folding
from hwnorm.layers import folding_keys
from hwnorm.timing import delay_models, Timing

__all__ = ["FlowConfig", "load_config", "config_from_dict", "BUFFER_CODECS"]

BUFFER_CODECS = WEIGHT_CODECS


@dataclass(frozen=True)
class FlowConfig:
    model: str = DEFAULT_MODEL
    name: str = "tfc"
    output: str = "argmax"
    score_bits: int | None = None       # None: the importer's default (16)
    activations: str | dict | None = None  # thresholds | requant | auto, or {layer = …}; None: thresholds
    clock_mhz: float = DEFAULT_CLOCK_MHZ
    target: str = DEFAULT_TARGET
    device: str | None = None           # a part of devices.toml (its family is the target)
    synth: bool = True
    fmax: bool = True
    simulator: str = DEFAULT_SIMULATOR
    vectors: int = DEFAULT_VECTORS
    test_images: str = "all"
    seed: int = DEFAULT_SEED
    images: int = DEFAULT_IMAGES
    energy_table: str = DEFAULT_ENERGY_TABLE
    rtl_dir: str = "rtl"
    reports_dir: str = "reports"
    folding: Folding = field(default_factory=Folding)
    throughput: float | None = None     # [auto_folding]
    lut_budget: int | None = None       # [auto_folding]
    codec: str = DEFAULT_BUFFER_CODEC   # [stt] codec of the weight memories as MLC STT-RAM (energy)
    cells: str = DEFAULT_CELLS          # [stt] cell table
    stt_store: bool = False             # [stt] store = true: the generated top holds its weights as
    stt_ber: float = 0.0                # [stt]   encoded cells, hit by a fault map drawn at ber
    stt_seed: int = 0                   # [stt]   from seed, decoded on read (hwnorm.stt.store)
    origin: str = "<defaults>"          # the file it came from (for messages)
    base: Path | None = None            # folder relative model paths resolve against

    def to_dict(self) -> dict:
        out = asdict(self)
        out["base"] = None if self.base is None else str(self.base)
        return out


_TABLES = {"auto_folding": {"throughput": "throughput", "lut_budget": "lut_budget"},
           "stt": {"codec": "codec", "cells": "cells", "store": "stt_store", "ber": "stt_ber", "seed": "stt_seed"}}
_TOP = [f.name for f in fields(FlowConfig) if f.name not in ("throughput", "lut_budget", "codec", "cells", "stt_store",
                                                             "stt_ber", "stt_seed", "origin", "base", "activations")]


def _check(where: str, key: str, value, kind, allowed=None, positive: bool = False):
    """``value`` of ``kind`` (int / float / str / bool), optionally one of ``allowed`` or > 0."""
    if isinstance(value, bool) != (kind is bool):  # TOML true is no number, 1 is no boolean
        raise ValueError(f"{where}: {key} must be {kind.__name__}, got {value!r}")
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind):
        raise ValueError(f"{where}: {key} must be {kind.__name__}, got {value!r}")
    if kind is float and not math.isfinite(value):
        raise ValueError(f"{where}: {key} must be finite, got {value!r}")
    if callable(allowed):
        allowed = allowed()
    if allowed is not None and value not in allowed:
        raise ValueError(f"{where}: {key} = {value!r} is not allowed; allowed: {', '.join(map(str, allowed))}")
    if positive and not value > 0:
        raise ValueError(f"{where}: {key} must be positive, got {value!r}")
    if key in LIMITS:
        check_limit(key, value, f"{where}: {key}")
    return value


def _target_names() -> tuple:
    return tuple(TARGETS)


_RULES = {
    "model": (str, None, False), "name": (str, None, False), "output": (str, OUTPUTS, False),
    "score_bits": (int, None, True),
    "clock_mhz": (float, None, True), "target": (str, _target_names, False), "synth": (bool, None, False),
    "device": (str, None, False),
    "fmax": (bool, None, False), "simulator": (str, SIMULATOR_CHOICES, False), "vectors": (int, None, True),
    "test_images": (str, TEST_IMAGE_SETS, False), "seed": (int, None, False), "images": (int, None, True),
    "energy_table": (str, None, False),
    "rtl_dir": (str, None, False), "reports_dir": (str, None, False),
    "throughput": (float, None, True), "lut_budget": (int, None, True),
    "codec": (str, BUFFER_CODECS, False), "cells": (str, None, False),
    "stt_store": (bool, None, False), "stt_ber": (float, None, False), "stt_seed": (int, None, False),
}


def config_from_dict(doc: dict, origin: str = "<config>", base: Path | None = None) -> FlowConfig:
    """A validated config from a parsed TOML document."""
    if not isinstance(doc, dict):
        raise ValueError(f"{origin}: a config is a TOML table of keys")
    values: dict = {}
    for key, value in doc.items():
        if key == "folding":
            values["folding"] = Folding.parse(value, allowed=folding_keys(), where=origin)
        elif key == "activations":
            values["activations"] = check_choice(value, origin)
        elif key in _TABLES:
            if not isinstance(value, dict):
                raise ValueError(f"{origin}: [{key}] must be a table; allowed keys: {', '.join(_TABLES[key])}")
            for sub, sub_value in value.items():
                if sub not in _TABLES[key]:
                    raise ValueError(f"{origin}: unknown key {key}.{sub!r}; allowed: {', '.join(_TABLES[key])}")
                values[_TABLES[key][sub]] = _check(origin, f"{key}.{sub}", sub_value, *_RULES[_TABLES[key][sub]])
        elif key in _TOP:
            values[key] = _check(origin, key, value, *_RULES[key])
        else:
            allowed = sorted(_TOP + list(_TABLES) + ["activations"])
            raise ValueError(f"{origin}: unknown key {key!r}; allowed: {', '.join(allowed)}")
    for key in ("rtl_dir", "reports_dir", "model", "energy_table", "cells"):
        if key in values and not values[key].strip():  # "" would mean the working folder, or nothing
            raise ValueError(f"{origin}: {key} must not be empty")
    if not 0 <= values.get("stt_ber", 0.0) <= 0.5:
        raise ValueError(f"{origin}: stt.ber must be in [0, 0.5], got {values['stt_ber']}")
    if not 0 <= values.get("stt_seed", 0) < 2 ** 63:
        raise ValueError(f"{origin}: stt.seed must be in [0, 2^63), got {values['stt_seed']}")
    if not values.get("stt_store", False) and ("stt_ber" in values or "stt_seed" in values):
        key = "ber" if "stt_ber" in values else "seed"  # faults are drawn only in stored weights
        raise ValueError(f"{origin}: stt.{key} applies to weights stored in STT-RAM cells: set stt.store = true")
    if "device" in values:  # a part names its family: the target follows, or must agree
        part = device_named(values["device"], f"{origin}: device")
        if values.get("target", part.target) != part.target:
            raise ValueError(f"{origin}: device = {part.name!r} belongs to target {part.target!r}, but target = "
                             f"{values['target']!r}; leave target out or set it to {part.target!r}")
        values.update(device=part.name, target=part.target)
    target, clock = values.get("target", DEFAULT_TARGET), values.get("clock_mhz", FlowConfig.clock_mhz)
    if target in delay_models():  # the flow pipelines for its clock on this target: one it can meet
        try:
            Timing(clock, target).meetable()
        except ValueError as e:
            raise ValueError(f"{origin}: {e}") from None
    elif "clock_mhz" in values:  # as a design file says it: no pipelining without a delay model
        raise ValueError(f"{origin}: clock_mhz = {clock:g} cannot be pipelined for on {target}: it has no delay model "
                         f"(targets with one: {', '.join(delay_models())})")
    if "score_bits" in values:
        check_limit("score_bits", values["score_bits"], f"{origin}: score_bits")
    if "name" in values:
        check_identifier(values["name"], f"{origin}: name")
    return FlowConfig(**values, origin=origin, base=base)


def load_config(path) -> FlowConfig:
    path = Path(path)
    doc = load_toml(path)
    return config_from_dict(doc, str(path), path.parent)
