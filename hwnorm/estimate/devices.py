"""FPGA parts: what a design must fit into, kept as data (``hwnorm/data/fpga/devices.toml``).

A :class:`Device` is a named part of one synthesis target (``ecp5``, ``ice40``, ``xilinx``) with
its LUT, flip-flop, block RAM and multiplier counts and its place-and-route flags. What a design
takes of it comes from an estimate or a synthesis through the target's rules
(:meth:`hwnorm.estimate.synthesis.Target.usage`: carry and LUT-RAM cells pay in LUTs where the
family builds them from LUTs)::

    usage {lut, ff, bram, dsp}  ──►  Device.utilization  ──►  fits? which resource binds?

The folding search asks for the fastest folding whose estimate fits a part in every resource;
the flow synthesizes and places only where the estimate does not rule the part out.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["RESOURCES", "Device", "load_devices", "DEVICES", "device_named", "RULE_OUT_MARGIN", "SEARCH_FILL"]

RESOURCES = ("lut", "ff", "bram", "dsp")
# An estimate rules a part out only when it exceeds the part by more than the model's error: the
# default designs' LUT estimates are held to ±25% of Yosys (tests/test_resources.py), so a design
# estimated at 1.2× a part may still fit, and is synthesized; at 1/(1 − 0.25) = 1.33× it is not.
RULE_OUT_MARGIN = 0.25
# What the folding search may fill of a part's logic cells: a placer needs room to route (vendors
# advise well under 100%), and the estimate has an error (the CIFAR CNV's fastest folding,
# estimated at 96% of an ECP5-85F before the popcount carry refit, synthesized to 110%). Block
# RAMs and multipliers are placed whole, so they may be used to the last one.
SEARCH_FILL = {"lut": 0.90}


@dataclass(frozen=True)
class Device:
    name: str
    description: str
    target: str
    capacity: dict        # resource → count (RESOURCES)
    nextpnr: tuple        # device and package flags ([] : no open-source place and route)

    def utilization(self, usage: dict) -> dict:
        """usage / capacity per resource (a resource the part lacks: 0 unused, inf used)."""
        return {cls: (usage.get(cls, 0) / self.capacity[cls] if self.capacity[cls]
                      else (math.inf if usage.get(cls, 0) else 0.0)) for cls in RESOURCES}

    def shortfalls(self, usage: dict, margin: float = 0.0, fill: dict | None = None) -> list[tuple[str, int, int]]:
        """(resource, needed, available) of every resource ``usage`` exceeds — by more than
        ``margin`` of itself (:data:`RULE_OUT_MARGIN`: the estimate's error) when given; with
        ``fill`` (:data:`SEARCH_FILL`), only that share of a resource is available."""
        fill = fill or {}
        return [(cls, int(usage.get(cls, 0)), self.capacity[cls]) for cls in RESOURCES
                if usage.get(cls, 0) * (1 - margin) > self.capacity[cls] * fill.get(cls, 1.0)]

    def fits(self, usage: dict) -> bool:
        return not self.shortfalls(usage)

    def binding(self, usage: dict) -> str:
        """The resource closest to full (the first of RESOURCES on a tie)."""
        util = self.utilization(usage)
        return max(RESOURCES, key=lambda cls: util[cls])

    def usage_line(self, usage: dict) -> str:
        """``LUT 61%, FF 40%, BRAM 98%, DSP 0% of LFE5U-85F``."""
        util = self.utilization(usage)
        parts = [f"{cls.upper()} " + ("—" if not self.capacity[cls] and not usage.get(cls, 0) else
                                      f"{usage.get(cls, 0)}/0" if not self.capacity[cls] else f"{100 * util[cls]:.0f}%")
                 for cls in RESOURCES]
        return f"{', '.join(parts)} of {self.name}"

    @staticmethod
    def shortfall_text(shortfalls, name: str) -> str:
        """``needs 457 BRAM, iCE40HX8K has 32; …``."""
        return "; ".join(f"needs {need:,} {cls.upper()}, {name} has {have:,}" for cls, need, have in shortfalls)


def load_devices(path=None) -> dict[str, Device]:
    """The parts of a TOML file (default: the bundled ``fpga/devices.toml``)."""
    text = (Path(path).read_text() if path else
            resources.files("hwnorm.data").joinpath("fpga", "devices.toml").read_text())
    return {name: Device(name, d["description"], d["target"], {cls: int(d[cls]) for cls in RESOURCES},
                         tuple(d["nextpnr"]))
            for name, d in tomllib.loads(text).items()}


DEVICES = load_devices()


def device_named(name: str, where: str = "device") -> Device:
    """A part by name (case does not matter), or a clear error listing the parts."""
    for known, device in DEVICES.items():
        if known.lower() == str(name).lower():
            return device
    raise ValueError(f"{where}: unknown part {name!r}; allowed: {', '.join(DEVICES)} (hwnorm/data/fpga/devices.toml)")
