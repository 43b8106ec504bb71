"""hwnorm: bit-accurate golden models, Amaranth generators and cocotb co-verification for
low-precision neural-network hardware (see README.md)."""

import sys as _sys


class _KernelCacheFirst:
    """Installs the kernel cache's locators (:mod:`hwnorm._kernel_cache`) at the first import of
    any hwnorm submodule, before anything can decorate a kernel. A meta-path hook rather than an
    import here: importing the package stays instant (no numba), so the ``hwnorm`` command's own
    entry point (:mod:`hwnorm.entry`) is running — and handles Ctrl-C — before anything heavy loads."""

    done = False
    LIGHT = ("hwnorm.entry", "hwnorm._kernel_cache")

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if not cls.done and name.startswith("hwnorm.") and name not in cls.LIGHT:
            cls.done = True
            from hwnorm import _kernel_cache  # here, not at the top: it imports numba (see above)
            _kernel_cache.install()
        return None  # the ordinary finders import the module itself


_sys.meta_path.insert(0, _KernelCacheFirst)
