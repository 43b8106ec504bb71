"""Code-generation hints shared by the Numba kernels.

LLVM's tuning for AVX-512 server cores prefers 256-bit vectors: it vectorizes loops with ymm
registers and splits explicit 512-bit vector types into halves. For this package's integer
kernels the 512-bit form measured clearly faster on the two AVX-512 cores we run on:

- quantized-BN requantization 2.8 → 4.0 G elements/s (``hwnorm bench bn``);
- the auto-vectorized XOR/popcount loop 1.28 → 1.41 T binary MAC/s (``bgemm``'s edge loop; its
  register-tiled micro-kernel spells out 512-bit types, which LLVM keeps whole without the hint).

The hint is a function attribute, so it must land on the function LLVM compiles the loop in:
for a ``prange`` loop that is Numba's outlined loop body, not the kernel that holds it. Call
:func:`prefer_512_bit_vectors` inside the loop body (it emits no instruction), or apply
:func:`set_512_bit_preference` from another intrinsic's code generator. On a CPU without AVX-512
the attribute is ignored and the code stays correct.
"""

from __future__ import annotations

from numba import types
from numba.extending import intrinsic

_ATTRIBUTES = ('"prefer-vector-width"="512"', '"min-legal-vector-width"="512"')


def set_512_bit_preference(builder) -> None:
    """Mark the function ``builder`` is emitting into.

    llvmlite only accepts attribute names from a fixed list, hence the plain ``set.add``; if a
    future llvmlite refuses it, LLVM keeps its own choice (slower, never wrong).
    """
    for attr in _ATTRIBUTES:
        try:
            set.add(builder.function.attributes, attr)
        except TypeError:
            pass


def or_in_python(python_version):
    """Decorate an intrinsic: under ``NUMBA_DISABLE_JIT=1`` (which users set to debug the kernels,
    and which makes every ``njit`` function plain Python) an intrinsic cannot run at all, so the
    name is bound to ``python_version`` instead — the same result, computed by numpy / Python."""
    def choose(compiled):
        from numba.core import config
        return python_version if config.DISABLE_JIT else compiled
    return choose


def _no_hint() -> None:
    return None


@or_in_python(_no_hint)
@intrinsic
def prefer_512_bit_vectors(typingctx):
    """No-op call that marks the enclosing compiled function (see the module docstring)."""
    def codegen(context, builder, signature, args):
        set_512_bit_preference(builder)
        return context.get_dummy_value()
    return types.void(), codegen
