"""Every default a command, a design config or an estimator falls back to — defined once here,
read everywhere (the CLI's help texts show these values)."""

from __future__ import annotations

__all__ = ["DEFAULT_CLOCK_MHZ", "DEFAULT_IMAGES", "DEFAULT_VECTORS", "DEFAULT_SEED", "DEFAULT_TARGET",
           "SIMULATORS", "SIMULATOR_CHOICES", "DEFAULT_SIMULATOR", "DEFAULT_ENERGY_TABLE", "DEFAULT_CELLS",
           "DEFAULT_BUFFER_CODEC"]

DEFAULT_CLOCK_MHZ = 100.0     # clock for throughput figures
DEFAULT_IMAGES = 1000         # input images whose action counts give the energy per inference
DEFAULT_VECTORS = 500         # vectors (images for a network) co-simulated against the golden model
DEFAULT_SEED = 2026           # stimulus, handshake randomization and sampled checks
DEFAULT_TARGET = "ecp5"       # the FPGA target a summary (and a LUT budget) refers to
SIMULATORS = ("verilator", "icarus")
SIMULATOR_CHOICES = ("auto", *SIMULATORS, "none")  # auto: the first one installed; none: no co-simulation
DEFAULT_SIMULATOR = "auto"
DEFAULT_ENERGY_TABLE = "horowitz45"
DEFAULT_CELLS = "default"     # the MLC STT-RAM cell table
DEFAULT_BUFFER_CODEC = "none"
