"""Numba's on-disk kernel cache, invalidated when any hwnorm module with compiled code changes.

Numba stamps a cached kernel with its *own* source file only. A kernel that inlines a helper
from another module — the quantized-BN kernel in ``bnspec.py`` inlines the rounding of
``fixed.py`` — would keep running the old helper after that module changed: silently wrong
results from a golden model that must be bit-exact (seen while mutation-testing the rounding).

For every function defined inside the hwnorm package, the locators installed here stamp the
cache with one digest of all hwnorm modules that mention numba, so editing any of them
recompiles all of hwnorm's kernels once. Functions outside the package keep numba's own
locators. ``install`` runs from ``hwnorm/__init__.py``, before any kernel is decorated (the
locator is chosen at decoration time).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from numba.core import caching

PACKAGE = Path(__file__).resolve().parent
_MARK = "_hwnorm_package_stamp"


@lru_cache(maxsize=1)
def kernel_sources_digest() -> str:
    """SHA-256 over the path and bytes of every package module that mentions numba."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_bytes()
        if b"numba" in text:
            digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + text)
    return digest.hexdigest()


def _in_package(py_file: str) -> bool:
    try:
        return Path(py_file).resolve().is_relative_to(PACKAGE)
    except (OSError, ValueError):
        return False


def _package_stamped(base: type) -> type:
    def from_function(cls, py_func, py_file):
        return super(locator, cls).from_function(py_func, py_file) if _in_package(py_file) else None

    def get_source_stamp(self):
        return kernel_sources_digest()

    locator = type(f"HwnormStamped{base.__name__.lstrip('_')}", (base,),
                   {"from_function": classmethod(from_function), "get_source_stamp": get_source_stamp, _MARK: True})
    return locator


def _numba_name(name: str):
    """Numba 0.61 spells these with a leading underscore, later releases without."""
    return getattr(caching, name, None) or getattr(caching, "_" + name, None)


def install() -> bool:
    """Put the package-stamped locators first; True once they are in place."""
    impl = _numba_name("CacheImpl")
    bases = [_numba_name(n) for n in ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")]
    if impl is None or None in bases or not hasattr(impl, "_locator_classes"):
        return False
    classes = impl._locator_classes
    if not any(getattr(c, _MARK, False) for c in classes):
        # Same precedence as numba's own: NUMBA_CACHE_DIR, then __pycache__, then the user cache.
        classes[:0] = [_package_stamped(b) for b in bases]
    return True


def installed() -> bool:
    impl = _numba_name("CacheImpl")
    return impl is not None and any(getattr(c, _MARK, False) for c in getattr(impl, "_locator_classes", ()))
