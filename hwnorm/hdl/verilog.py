"""Amaranth → Verilog text, the one conversion every view that needs Verilog uses (generate,
co-simulation, synthesis, calibration)."""

from __future__ import annotations

import os

__all__ = ["verilog_text"]


def verilog_text(component, name: str) -> str:
    """The Verilog of a component as module ``name``: deterministic, no source paths."""
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")  # the pinned Yosys, not a system one
    from amaranth.back import verilog  # after the setting above: it is read on import

    return verilog.convert(component, name=name, emit_src=False)
