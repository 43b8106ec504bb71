"""hwnorm: bit-accurate golden models, Amaranth generators and cocotb co-verification for
low-precision neural-network hardware (see README.md)."""

from hwnorm import _kernel_cache

_kernel_cache.install()  # before any kernel module is imported (see hwnorm/_kernel_cache.py)
