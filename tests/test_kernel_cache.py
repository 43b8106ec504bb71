"""Numba's disk cache must not serve a kernel compiled against an older helper module."""

import subprocess
import sys

from hwnorm import _kernel_cache
from hwnorm.bnspec import _bn_apply

HELPER = "from numba import njit\n\n@njit(inline='always')\ndef value():\n    return {}\n"
KERNEL = "from numba import njit\nfrom helper import value\n\n@njit(cache=True)\ndef kernel():\n    return value()\n"


def _run(pkg, stamped: bool) -> int:
    """A fresh interpreter that imports ``kernel`` from ``pkg`` and prints its result."""
    setup = ("import hwnorm._kernel_cache as kc; from pathlib import Path; kc.install()\n"
             f"kc.PACKAGE = Path({str(pkg)!r}).resolve()\n") if stamped else ""
    code = setup + f"import sys; sys.path.insert(0, {str(pkg)!r})\nfrom kernel import kernel\nprint(kernel())\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


def _edit_helper_between_runs(tmp_path, stamped: bool) -> tuple[int, int]:
    pkg = tmp_path / ("stamped" if stamped else "plain")
    pkg.mkdir()
    (pkg / "kernel.py").write_text(KERNEL)
    (pkg / "helper.py").write_text(HELPER.format(1))
    first = _run(pkg, stamped)
    (pkg / "helper.py").write_text(HELPER.format(2))
    return first, _run(pkg, stamped)


def test_plain_numba_serves_a_stale_kernel_after_a_helper_changes(tmp_path):
    # The hazard this module exists for: kernel.py did not change, so numba reuses its cache.
    assert _edit_helper_between_runs(tmp_path, stamped=False) == (1, 1)


def test_package_stamp_recompiles_when_any_kernel_module_changes(tmp_path):
    assert _edit_helper_between_runs(tmp_path, stamped=True) == (1, 2)


def test_hwnorm_kernels_use_the_package_stamp():
    assert _kernel_cache.installed()
    locator = _bn_apply._cache._impl.locator
    assert getattr(locator, _kernel_cache._MARK, False)
    assert locator.get_source_stamp() == _kernel_cache.kernel_sources_digest()


def test_digest_covers_modules_that_mention_numba_only(tmp_path, monkeypatch):
    (tmp_path / "kern.py").write_text("import numba\n")
    (tmp_path / "plain.py").write_text("x = 1\n")
    monkeypatch.setattr(_kernel_cache, "PACKAGE", tmp_path)

    def digest():
        _kernel_cache.kernel_sources_digest.cache_clear()
        return _kernel_cache.kernel_sources_digest()

    try:
        before = digest()
        (tmp_path / "plain.py").write_text("x = 2\n")
        assert digest() == before
        (tmp_path / "kern.py").write_text("import numba\n# edited\n")
        assert digest() != before
    finally:
        _kernel_cache.kernel_sources_digest.cache_clear()
