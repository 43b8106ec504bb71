"""Passes over a synthesized netlist (Yosys ``write_json``) before place and route.

Yosys maps a memory's synchronous read port onto a block RAM but never its *output register*:
the register the design puts right after the read data stays a row of fabric flip-flops, and
the block RAM's clock-to-out (5.8 ns on an ECP5 ``DP16KD`` without it) plus the route to those
flip-flops eats most of a 150 MHz cycle. :func:`absorb_bram_output_registers` moves such a
register into the block RAM — the same register, with the same clock and enable, so the design's
behaviour and its cycle count do not change:

    before:  DP16KD (REGMODE NOREG) ─DO[k]─▶ TRELLIS_FF (CLK, CE) ─Q─▶ logic
    after:   DP16KD (REGMODE OUTREG, OCE = CE) ─DO[k] = Q─▶ logic

A port is moved only when every read-data bit it drives feeds exactly one flip-flop and nothing
else, all those flip-flops share the RAM port's clock (not inverted) and one clock enable, and
none has a set/reset; otherwise the port is left as Yosys made it. Which pass a target runs is
data (``netlist_passes`` in ``targets.toml``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

__all__ = ["PassResult", "absorb_bram_output_registers", "NETLIST_PASSES", "run_passes"]

_CONST = ("0", "1", "x", "z")


@dataclass(frozen=True)
class PassResult:
    name: str
    changed: int      # block RAM ports that took the register in
    removed: int      # flip-flops removed

    def text(self) -> str:
        return f"{self.removed} read-data registers moved into {self.changed} block RAM output registers"


def _loads(module: dict) -> dict:
    """net bit → [(cell name, port, index)] of everything that reads it (module outputs as ``None``)."""
    loads = defaultdict(list)
    for name, cell in module["cells"].items():
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) != "output":
                for i, bit in enumerate(bits):
                    if bit not in _CONST:
                        loads[bit].append((name, port, i))
    for port in module.get("ports", {}).values():
        if port["direction"] != "input":
            for bit in port["bits"]:
                loads[bit].append((None, None, 0))
    return loads


def _param(cell: dict, key: str, default: str = "") -> str:
    return str(cell["parameters"].get(key, default)).strip()


def _width(cell: dict, key: str) -> int:
    value = _param(cell, key, "0")
    return int(value, 2) if set(value) <= {"0", "1"} and value else int(value or 0)


def _one(cell: dict, port: str):
    bits = cell["connections"].get(port, ["0"])
    return bits[0] if bits else "0"


def _absorbable(module, loads, ram, data_ports, clock):
    """The flip-flops (bit → cell name) behind ``data_ports`` of ``ram`` and their clock enable,
    or ``None`` when the register cannot move into the RAM."""
    ffs, enables = {}, set()
    for port in data_ports:
        bit = _one(ram, port)
        if bit in _CONST or not loads.get(bit):
            continue                      # an unused read-data bit: registering it changes nothing
        sinks = loads[bit]
        if len(sinks) != 1 or sinks[0][0] is None:
            return None
        name, pin, _ = sinks[0]
        ff = module["cells"][name]
        if ff["type"] != "TRELLIS_FF" or pin != "DI":
            return None
        if _one(ff, "CLK") != clock or _param(ff, "CLKMUX", "CLK") != "CLK":
            return None
        if _one(ff, "LSR") != "0" or _param(ff, "REGSET", "RESET") != "RESET":
            return None                   # a set/reset the RAM's output register would not copy
        mux = _param(ff, "CEMUX", "1")
        if mux == "CE":
            enables.add(_one(ff, "CE"))
        elif mux == "1":
            enables.add("1")
        else:
            return None
        ffs[port] = name
    if not ffs or len(enables) != 1:
        return None
    return ffs, enables.pop()


def absorb_bram_output_registers(netlist: dict, top: str) -> PassResult:
    """Move the register after each ECP5 ``DP16KD`` read port into the RAM (in place)."""
    module = netlist["modules"][top]
    loads = _loads(module)
    changed = removed = 0
    for ram in [c for c in module["cells"].values() if c["type"] == "DP16KD"]:
        if _width(ram, "DATA_WIDTH_A") == 36:
            # 36-bit pseudo-dual-port mode: one read port (B) drives both output buses, and
            # its output register is enabled by OCEB (nextpnr's PDPW16KD mapping sets both REGMODEs)
            groups = [("B", [f"DO{s}{k}" for s in "AB" for k in range(18)], ("A", "B"))]
        else:
            groups = [(p, [f"DO{p}{k}" for k in range(18)], (p,)) for p in "AB"]
        for port, data_ports, modes in groups:
            if any(_param(ram, f"REGMODE_{m}", "NOREG") != "NOREG" for m in modes):
                continue
            if _one(ram, f"RST{port}") != "0" or _param(ram, f"CLK{port}MUX", f"CLK{port}") != f"CLK{port}":
                continue
            found = _absorbable(module, loads, ram, data_ports, _one(ram, f"CLK{port}"))
            if found is None:
                continue
            ffs, enable = found
            for pin, name in ffs.items():
                ram["connections"][pin] = list(module["cells"].pop(name)["connections"]["Q"])
            for m in modes:
                ram["parameters"][f"REGMODE_{m}"] = "OUTREG"
                ram["connections"][f"OCE{m}"] = [enable]
            changed, removed = changed + 1, removed + len(ffs)
    return PassResult("bram_output_register", changed, removed)


NETLIST_PASSES = {"bram_output_register": absorb_bram_output_registers}


def run_passes(netlist: dict, top: str, names) -> list[PassResult]:
    """Run the named passes (``targets.toml``'s ``netlist_passes``) over ``netlist`` in order."""
    return [NETLIST_PASSES[name](netlist, top) for name in names]
