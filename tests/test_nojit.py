"""``NUMBA_DISABLE_JIT=1`` (set by users to debug a kernel) turns every compiled function into
plain Python, where Numba intrinsics cannot run: their Python stand-ins must give the compiled
results. Checked in a subprocess, since the switch is read when Numba is imported."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from hwnorm import bnn
from hwnorm.intmm import igemm_threshold
from tests.helpers import random_spec, vectors

SCRIPT = "import sys, numpy as np; from tests.test_nojit import kernel_results; np.savez(sys.argv[1], **kernel_results())"


def kernel_results() -> dict:
    """The kernels that use intrinsics (and the fused MVU kernel), on shapes that reach every path of each."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, (9, 100)).astype(np.uint8)      # two full 4-row tiles and an edge row
    w = rng.integers(0, 2, (70, 100)).astype(np.uint8)     # two full 32-column tiles and an edge
    x = rng.integers(-128, 128, (9, 100))
    specs = [random_spec(rng, 70, r, o, True) for r in ("half_up", "half_even", "floor") for o in ("saturate", "wrap")]
    thr = np.sort(rng.integers(-300, 300, (70, 3)), axis=1)
    return {"clocked": _clocked_run(),
            "bgemm": bnn.binary_matmul(bnn.pack_bits(a), bnn.pack_bits(w), 100),
            "bitplanes": bnn.int_binary_matmul(x, bnn.pack_bits(w), 100, 8, True),
            "qbn": np.stack([spec.apply(vectors(spec, rng, 9)) for spec in specs]),
            "igemm_threshold": igemm_threshold(x[:, :20], w[:, :20].astype(np.int64) * 2 - 1, thr, 1, (-128, 127),
                                               (-1, 1)),
            "igemm_threshold_bits": igemm_threshold(x[:, :20], w[:, :20].astype(np.int64) * 2 - 1, thr[:, :1], 0,
                                                    (-128, 127), (-1, 1), bits=True)}


def _clocked_run() -> np.ndarray:
    """The compiled back-pressure loop on TFC_1W1A pipelined for 150 MHz (register slices, FIFOs,
    replaying MVUs), one FIFO too shallow: the output clocks."""
    from hwnorm.clocked_compiled import CompiledPlan
    from hwnorm.dataflow import NetworkBlock, plan_sources
    from hwnorm.models import import_model
    from hwnorm.timing import Timing

    top = NetworkBlock(import_model("TFC_1W1A").network, timing=Timing(150))
    plan = CompiledPlan(plan_sources(top.stages))
    fifo = next(iter(plan.fifo_index))
    return np.array(plan.run(range(3 * top.in_beats), 3 * top.out_beats, 1000, depths={fifo: 4}))


def test_pure_python_kernels_equal_the_compiled_ones(tmp_path):
    out = tmp_path / "nojit.npz"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env={**os.environ, "NUMBA_DISABLE_JIT": "1"},
                         capture_output=True, text=True, timeout=600, cwd=root)
    assert run.returncode == 0, run.stderr[-2000:]
    got = np.load(out)
    for name, compiled in kernel_results().items():
        np.testing.assert_array_equal(got[name], compiled, err_msg=name)
