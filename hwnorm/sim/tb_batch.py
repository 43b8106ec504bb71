"""The cocotb side of a batch co-simulation (runs inside the simulator).

Everything per clock happens in the Verilog harness (:mod:`hwnorm.sim.batch`), its clock and
reset included; this test only sleeps until the harness raises ``done``, so the run costs no
Python per clock cycle. The runner compares the harness's output file afterwards.
"""

from __future__ import annotations

import json
import os

import cocotb
from cocotb.triggers import RisingEdge


@cocotb.test()
async def batch_run_to_done(dut):
    await RisingEdge(dut.done)
    with open(os.environ["HWNORM_RESULT"], "w") as fh:
        json.dump({"timed_out": int(dut.timed_out.value), "first_in_cycle": int(dut.first_in_cycle.value)}, fh)
