"""Every default a command, a design config or an estimator falls back to — defined once here,
read everywhere (the CLI's help texts show these values)."""

from __future__ import annotations

__all__ = ["DEFAULT_CLOCK_MHZ", "DEFAULT_IMAGES", "DEFAULT_VECTORS", "DEFAULT_SEED", "DEFAULT_TARGET",
           "SIMULATORS", "SIMULATOR_CHOICES", "DEFAULT_SIMULATOR", "DEFAULT_ENERGY_TABLE", "DEFAULT_CELLS",
           "DEFAULT_BUFFER_CODEC", "WEIGHT_CODECS", "LIMITS", "COST_LIMITS", "check_limit"]

DEFAULT_CLOCK_MHZ = 150.0     # clock for throughput figures, and the flow's target clock (pipelining)
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
# codecs of integer weight memories in MLC STT-RAM (hwnorm.stt.intcodec): the first three decode
# cell by cell, the others per 16-bit word
# How quantized activations after accumulators are realized (hwnorm.activations)
ACTIVATION_CHOICES = ("thresholds", "requant", "auto")
WEIGHT_CODECS = ("none", "remap", "remap+backup", "rearrange", "fnw", "hamming")

# The ranges of every numeric setting, shared by the command line and the flow TOML: a value
# outside is one clear error before any work (1e11 vectors was a 745 GiB allocation, an infinite
# clock printed "inf images/s").
LIMITS = {
    "vectors": (1, 100_000),          # co-simulated per design: stimuli are held in memory
    "images": (1, 1_000_000),         # inputs behind the energy action counts
    "random": (1, 1_000_000),         # hwnorm check --random
    "limit": (1, 1_000_000),
    "seed": (0, 2**63 - 1),
    "seeds": (1, 10_000),
    "tile_words": (1, 1 << 20),
    "clock_mhz": (0.001, 10_000.0),   # 1 kHz … 10 GHz
    "throughput": (1e-6, 1e12),       # images/s
    "lut_budget": (1, 10**9),
    "score_bits": (2, 32),            # an imported model's class scores (the input width of argmax)
    "workers": (1, 1024),
    "repeat": (1, 1000),
}


# What a model may ask of the golden model and the hardware, checked before the work it would
# cost: multi-thresholds are 2^bits − 1 exact cuts per channel (a 16-bit quantizer of 64 channels
# took > 8 GB), and the golden model accumulates in int64.
COST_LIMITS = {
    "thresholds": 1 << 19,     # exact cuts one thresholding (or requantizer check) computes: channels × levels
    "operand_bits": 32,        # an MVU's weights and inputs
    "accumulator_bits": 63,    # |Σ w·x| < 2^63: the golden model's int64 never wraps
    "score_values": 1 << 24,   # (class, accumulator value) pairs the score layer's order proof enumerates
}


def check_limit(key: str, value, where: str | None = None):
    """``value`` if it lies in ``LIMITS[key]`` (and is finite), else a ValueError naming the setting."""
    import math

    lo, hi = LIMITS[key]
    if isinstance(value, float) and not math.isfinite(value) or not lo <= value <= hi:
        name = where or f"--{key.replace('_', '-')}"
        raise ValueError(f"{name} must be between {lo:,} and {hi:,}, got {value!r}")
    return value
