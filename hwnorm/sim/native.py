"""Batch co-simulation on Verilator as a plain C++ program: the harness of :mod:`hwnorm.sim.batch`
(clock as an input) verilated with a small ``main`` that clocks it until ``done``.

Why not cocotb here: in batch mode the cocotb test does nothing but wait for ``done``, yet
running the harness under cocotb needs ``--timing`` (the harness's ``#5`` clock) and cocotb's VPI
loop around every time step. On the CNV 1W1A top that cost 4–5× the simulation itself (0.26 M
against 1.2 M clocks/s); a ``main`` that toggles the clock and calls ``eval()`` is the
simulator's own ceiling. The per-clock cocotb testbench (``stream`` mode) is unchanged.

One build per harness and design text (a stamp of the sources and flags); a failing run is
rebuilt with VCD tracing and rerun, as the cocotb path does (the wheel's FST writer needs lz4
headers that a plain machine lacks).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

from hwnorm.verilator import verilator_env

__all__ = ["MAIN", "build", "run"]

BINARY = "Vhwnorm_batch"

# The loop: both clock edges per cycle, until the harness raises done (or $finish-es on bad
# plusargs); then the three result ports go to +hwnorm_result as JSON, as the cocotb test writes them.
MAIN = r"""// hwnorm batch co-simulation main (generated; see hwnorm/sim/native.py)
#include "Vhwnorm_batch.h"
#include "verilated.h"
#include <cstdio>
#include <cstring>
#include <memory>
#if VM_TRACE
#include "verilated_vcd_c.h"
#endif

int main(int argc, char** argv) {
    const std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
    ctx->commandArgs(argc, argv);
    const std::unique_ptr<Vhwnorm_batch> top{new Vhwnorm_batch{ctx.get(), "hwnorm_batch"}};
    const char* arg = ctx->commandArgsPlusMatch("hwnorm_result=");
    if (!arg || !*arg) {
        std::fprintf(stderr, "hwnorm_batch: missing +hwnorm_result=PATH\n");
        return 2;
    }
    const char* result = arg + std::strlen("+hwnorm_result=");
#if VM_TRACE
    ctx->traceEverOn(true);
    const std::unique_ptr<VerilatedVcdC> trace{new VerilatedVcdC};
    top->trace(trace.get(), 99);
    trace->open("dump.vcd");
#endif
    top->clk = 0;
    top->eval();
    while (!top->done && !ctx->gotFinish()) {
        for (int level = 1; level >= 0; --level) {
            ctx->timeInc(5);
            top->clk = level;
            top->eval();
#if VM_TRACE
            trace->dump(ctx->time());
#endif
        }
    }
    top->final();
#if VM_TRACE
    trace->close();
#endif
    FILE* out = std::fopen(result, "w");
    if (!out) return 3;
    std::fprintf(out, "{\"timed_out\": %d, \"first_in_cycle\": %llu, \"done\": %d}\n", (int)top->timed_out,
                 (unsigned long long)top->first_in_cycle, (int)top->done);
    std::fclose(out);
    return 0;
}
"""

# The wheel's verilated.mk leaves the precompiled-header flag empty (large designs split into
# several C++ files need it); -O2 instead of -Os simulates the large tops ~10% faster.
_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2 OPT_GLOBAL=-O2"


def build(sources: list[Path], build_dir: Path, waves: bool) -> Path:
    """The simulator binary of ``sources`` (the design and the harness), built once."""
    main = build_dir / "hwnorm_main.cpp"
    if not main.exists() or main.read_text() != MAIN:
        main.write_text(MAIN)
    obj = build_dir / ("obj_waves" if waves else "obj")
    cmd = ["verilator", "--cc", "--exe", "--build", "-O3", "-Wno-fatal", "-Wno-lint", "-Wno-style",
           "--top-module", "hwnorm_batch", "-Mdir", str(obj), "-j", "2", "-MAKEFLAGS", _MAKEFLAGS,
           *(["--trace"] if waves else []), *(str(s) for s in sources), str(main)]
    stamp = hashlib.sha256("\0".join([*cmd, *(Path(s).read_text() for s in sources)]).encode()).hexdigest()
    binary, stamp_file = obj / BINARY, obj / "hwnorm.stamp"
    if binary.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return binary
    proc = subprocess.run(cmd, cwd=build_dir, env=verilator_env(), capture_output=True, text=True)
    (build_dir / "build.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not binary.exists():
        tail = (proc.stdout + proc.stderr).strip()[-2000:]
        raise RuntimeError(f"verilator: building the batch harness failed (log: {build_dir / 'build.log'}):\n{tail}")
    stamp_file.write_text(stamp)
    return binary


def run(binary: Path, plusargs: list[str], build_dir: Path) -> tuple[dict, float]:
    """Run the binary on a job's plusargs: (the result ports, seconds simulated)."""
    result = build_dir / "result.json"
    result.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.run([str(binary), *plusargs, f"+hwnorm_result={result}"], cwd=binary.parent,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (build_dir / "test.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not result.exists():
        tail = (proc.stdout + proc.stderr).strip()[-2000:]
        raise RuntimeError(f"verilator: the batch harness ended without a result (exit {proc.returncode}):\n{tail}")
    return json.loads(result.read_text()), seconds
