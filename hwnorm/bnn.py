"""Binary (XNOR / popcount) layers: bit packing, Numba kernels, BN → threshold folding.

Encoding (DESIGN.md, identical in every view): bit 1 ↔ +1, bit 0 ↔ −1, sign(0) = +1.

Packing and the padding rule
----------------------------
A vector of ``K`` binary values is packed along its reduction axis into ``W = ⌈K/64⌉`` uint64
words, little-endian inside a word::

    word w:   bit 63 … bit 1  bit 0
              x[64w+63] … x[64w+1]  x[64w]        (pad bits above K are 0)

**Pad bits are 0 in both operands and K stays the real length.** The kernels count
*mismatches* with XOR, ``dot = K − 2·popcount(a ⊕ w)``, which equals
``2·popcount(XNOR(a, w)) − K`` over the K real bits; a pad pair (0, 0) XORs to 0 and so
never contributes. (Counting XNOR over the padded words would add one per pad bit.)

Thresholds
----------
An output channel with thresholds ``T_1 ≤ … ≤ T_n`` emits ``count(acc ≥ T_i)`` (QONNX
``MultiThreshold``); a binary activation is ``n = 1`` and the count is the output bit. A
channel whose BN has γ < 0 is folded by flipping its weights (the ``flip`` mask of a fold) so
every threshold compares ``≥``; γ = 0 gives thresholds saturated to always (``acc_lo``) or
never (``acc_hi + 1``). The fold is exact: decisions are taken in exact rational arithmetic
on the float parameters (``√`` handled by squaring), not in floats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from hwnorm.datatypes import IntType, int_array, whole
from hwnorm.exactfit import Dyadic
from hwnorm.intmm import RANGE_KERNEL_DTYPES, outside
from hwnorm.fixed import Rounding
from hwnorm.spec import SpecIdentity
from hwnorm.vectorize import or_in_python, set_512_bit_preference

__all__ = [
    "WORD_BITS", "Bits", "words_for", "pack_bits", "pack_bipolar", "unpack_bits", "valid_mask", "flip_rows",
    "binary_matmul", "binary_dense_threshold", "int_binary_matmul", "binary_conv2d", "im2col_packed",
    "conv_out_size", "pack_conv_weights", "ThresholdSpec", "ThresholdFold", "SurdAffine", "fold_thresholds", "fold_sign_threshold",
    "fold_multithreshold", "quantizer_levels",
]

WORD_BITS = 64


class Bits:
    """A batch of binary activations: ``words`` (batch, ⌈n/64⌉) uint64, ``n`` real channels
    (this module's layout); what a layer with a bipolar output hands on."""

    __slots__ = ("words", "n")

    def __init__(self, words: np.ndarray, n: int):
        self.words, self.n = words, n

    def unpack(self) -> np.ndarray:
        return unpack_bits(self.words, self.n)


def words_for(k: int) -> int:
    """Number of uint64 words holding ``k`` packed bits."""
    return (int(k) + WORD_BITS - 1) // WORD_BITS


# ---------------------------------------------------------------------------- packing
def pack_bits(bits) -> np.ndarray:
    """Pack a {0,1} array along its last axis into uint64 words (pad bits 0)."""
    b = np.asarray(bits)
    if b.dtype != np.bool_:
        if b.dtype.kind not in "iub" or (b.size and (b.min() < 0 or b.max() > 1)):
            raise ValueError("pack_bits expects values in {0, 1}")
    k = b.shape[-1]
    by = np.packbits(b.astype(np.uint8, copy=False), axis=-1, bitorder="little")
    pad = words_for(k) * 8 - by.shape[-1]
    if pad:
        by = np.concatenate([by, np.zeros(by.shape[:-1] + (pad,), np.uint8)], axis=-1)
    return np.ascontiguousarray(by).view("<u8").astype(np.uint64, copy=False)


def pack_bipolar(x) -> np.ndarray:
    """Pack ±1 (or any real: sign with sign(0) = +1) values along the last axis."""
    return pack_bits(np.asarray(x) >= 0)


def unpack_bits(packed, k: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: uint8 {0,1} array with last axis ``k``."""
    p = np.ascontiguousarray(packed, dtype=np.uint64)
    by = p.view(np.uint8)
    return np.unpackbits(by, axis=-1, bitorder="little")[..., :k]


def valid_mask(k: int) -> np.ndarray:
    """Per-word mask of the ``k`` real bits (pad bits 0)."""
    return pack_bits(np.ones(k, np.uint8))


def flip_rows(packed, k: int, flip) -> np.ndarray:
    """Negate the ±1 rows selected by ``flip`` (invert their real bits, keep pads 0)."""
    out = np.array(packed, dtype=np.uint64, copy=True)
    out[np.asarray(flip, bool)] ^= valid_mask(k)
    return out


def _check_packed(name: str, arr, k: int) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype != np.uint64:
        raise ValueError(f"{name} must be packed uint64 words (use pack_bits), got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[1] != words_for(k):
        raise ValueError(f"{name} must have shape (rows, {words_for(k)}) for K = {k}, got {a.shape}")
    return np.ascontiguousarray(a)


# ---------------------------------------------------------------------------- kernels
def _popcount64_python(x):
    return np.uint64(int(x).bit_count())


@or_in_python(_popcount64_python)
@intrinsic
def popcount64(typingctx, x):
    """One LLVM ``ctpop`` on a uint64 (VPOPCNTQ / POPCNT after vectorization)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        set_512_bit_preference(builder)
        return builder.ctpop(args[0])
    return types.uint64(types.uint64), codegen


@njit(cache=True, inline="always")
def _mismatches(a, i, b, j, nwords):
    s = np.uint64(0)
    for w in range(nwords):
        s += popcount64(a[i, w] ^ b[j, w])
    return s


# ---- binary GEMM: a register-tiled micro-kernel written directly in LLVM IR
#
# The weights are transposed to (words, N), so eight neighbouring output columns are one
# contiguous 512-bit vector. A tile of TILE_ROWS activation rows × TILE_VECTORS such vectors keeps
# its 16 running mismatch counts in registers for the whole K loop; each step loads 4 weight
# vectors and broadcasts 4 activation words, then does 16 × (XOR, VPOPCNTQ, ADD). The ALU ports,
# not memory, are then the limit (measured 2.4 T binary MAC/s on two AVX-512 cores at
# M = N = 512, K = 4096, against 1.2 T for the auto-vectorized loop it replaces, which kept its
# counts in memory). It is written in IR because LLVM's vectorizer, given the same loops in
# Python, either kept the counts in memory or fell back to gathers (bounds wrap-around checks).
LANES = 8  # uint64 lanes in a 512-bit vector
TILE_ROWS = 4
TILE_VECTORS = 4
TILE_COLS = LANES * TILE_VECTORS


def _is_c_matrix(ty, dtype) -> bool:
    return isinstance(ty, types.Array) and ty.ndim == 2 and ty.layout == "C" and ty.dtype == dtype


def _mismatch_tile_python(a, bt, out, i0, j0, k):
    rows, cols = slice(i0, i0 + TILE_ROWS), slice(j0, j0 + TILE_COLS)
    mism = np.bitwise_xor(a[rows, :, None], bt[None, :, cols])  # (rows, words, cols)
    counts = np.vectorize(lambda v: int(v).bit_count(), otypes=[np.int64])(mism).sum(axis=1)
    out[rows, cols] = k - 2 * counts


@or_in_python(_mismatch_tile_python)
@intrinsic
def _mismatch_tile(typingctx, a, bt, out, i0, j0, k):
    """``out[i0+r, j0+c] = k − 2·popcount(a[i0+r] ⊕ bt[:, j0+c])`` for one full tile (no bounds checks).

    ``a`` is (M, W) uint64, ``bt`` (W, N) uint64, ``out`` (M, N) int32, all C-contiguous; the
    caller guarantees ``i0 + TILE_ROWS ≤ M`` and ``j0 + TILE_COLS ≤ N``.
    """
    if not (_is_c_matrix(a, types.uint64) and _is_c_matrix(bt, types.uint64) and _is_c_matrix(out, types.int32)
            and all(isinstance(t, types.Integer) for t in (i0, j0, k))):
        return None
    sig = types.void(a, bt, out, types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        a_arr, bt_arr, out_arr = (context.make_array(t)(context, builder, v)
                                  for t, v in zip(signature.args[:3], args[:3]))
        i0, j0, k = args[3:]
        i32, i64 = ir.IntType(32), ir.IntType(64)
        vec, vec32 = ir.VectorType(i64, LANES), ir.VectorType(i32, LANES)
        words = builder.extract_value(a_arr.shape, 1)
        n = builder.extract_value(bt_arr.shape, 1)
        ctpop = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec]),
                                               f"llvm.ctpop.v{LANES}i64")

        def const(v):
            return ir.Constant(i64, v)

        def splat(scalar):
            one = builder.insert_element(ir.Constant(vec, ir.Undefined), scalar, ir.Constant(i32, 0))
            return builder.shuffle_vector(one, ir.Constant(vec, ir.Undefined), ir.Constant(vec32, None))

        def vector_at(base, index, ty):
            return builder.bitcast(builder.gep(base, [index]), ty.as_pointer())

        # Allocas of vectors: LLVM's mem2reg turns them into loop-carried registers.
        counts = [[cgutils.alloca_once_value(builder, ir.Constant(vec, None)) for _ in range(TILE_VECTORS)]
                  for _ in range(TILE_ROWS)]
        row_start = [builder.mul(builder.add(i0, const(r)), words) for r in range(TILE_ROWS)]
        with cgutils.for_range(builder, words) as loop:
            w = loop.index
            col = builder.add(builder.mul(w, n), j0)
            ys = [builder.load(vector_at(bt_arr.data, builder.add(col, const(LANES * v)), vec), align=8)
                  for v in range(TILE_VECTORS)]
            for r in range(TILE_ROWS):
                x = splat(builder.load(builder.gep(a_arr.data, [builder.add(row_start[r], w)])))
                for v in range(TILE_VECTORS):
                    mism = builder.call(ctpop, [builder.xor(x, ys[v])])
                    builder.store(builder.add(builder.load(counts[r][v]), mism), counts[r][v])
        k_vec = splat(k)
        n_out = builder.extract_value(out_arr.shape, 1)
        for r in range(TILE_ROWS):
            out_row = builder.add(builder.mul(builder.add(i0, const(r)), n_out), j0)
            for v in range(TILE_VECTORS):
                twice = builder.add(builder.load(counts[r][v]), builder.load(counts[r][v]))
                dot = builder.trunc(builder.sub(k_vec, twice), vec32)
                builder.store(dot, vector_at(out_arr.data, builder.add(out_row, const(LANES * v)), vec32), align=4)
        return context.get_dummy_value()
    return sig, codegen


@njit(cache=True, parallel=True)
def _bgemm(a, bt, k, out):
    m, nwords = a.shape
    n = bt.shape[1]
    row_tiles = m // TILE_ROWS
    col_tiles = n // TILE_COLS
    # Column tile outermost: one weight panel (32 columns × K, 16 KiB at K = 4096) stays in L1
    # while the row tiles stream past it.
    for t in prange(row_tiles * col_tiles):
        _mismatch_tile(a, bt, out, (t % row_tiles) * TILE_ROWS, (t // row_tiles) * TILE_COLS, k)
    # The rest, one row at a time with the counts in memory: columns right of the last full
    # column tile on tiled rows, every column on the rows below the last full row tile.
    row_edge = row_tiles * TILE_ROWS
    col_edge = col_tiles * TILE_COLS
    for i in prange(m):
        j0 = col_edge if i < row_edge else 0
        if j0 == n:
            continue
        counts = np.zeros(n - j0, np.uint64)
        for w in range(nwords):
            x = a[i, w]
            for j in range(j0, n):
                counts[j - j0] += popcount64(x ^ bt[w, j])
        for j in range(j0, n):
            out[i, j] = k - 2 * np.int64(counts[j - j0])


def binary_matmul(a_packed, w_packed, k: int) -> np.ndarray:
    """``out[i, j] = Σ_k a[i,k]·w[j,k]`` for ±1 operands packed along K → int32 ``(M, N)``."""
    k = int(k)
    if k < 1:
        raise ValueError(f"K must be ≥ 1, got {k}")
    a = _check_packed("activations", a_packed, k)
    w = _check_packed("weights", w_packed, k)
    out = np.empty((a.shape[0], w.shape[0]), np.int32)
    if a.shape[0] and w.shape[0]:
        _bgemm(a, np.ascontiguousarray(w.T), k, out)
    return out


@njit(cache=True, parallel=True)
def _bdense_sign_packed(a, w, k, thr, out):
    """Fused matrix-vector + single threshold: output bits packed like the input."""
    m, nwords = a.shape
    n = w.shape[0]
    for i in prange(m):
        for wo in range(out.shape[1]):
            word = np.uint64(0)
            for jj in range(min(64, n - 64 * wo)):
                j = 64 * wo + jj
                acc = k - 2 * np.int64(_mismatches(a, i, w, j, nwords))
                if acc >= thr[j]:
                    word |= np.uint64(1) << np.uint64(jj)
            out[i, wo] = word


def binary_dense_threshold(a_packed, w_packed, k: int, thresholds) -> np.ndarray:
    """Binary matrix-vector-threshold with one threshold per channel, packed bit output."""
    a = _check_packed("activations", a_packed, k)
    w = _check_packed("weights", w_packed, k)
    thr = np.ascontiguousarray(thresholds, dtype=np.int64).reshape(-1)
    if thr.size != w.shape[0]:
        raise ValueError(f"need one threshold per output channel ({w.shape[0]}), got {thr.size}")
    out = np.empty((a.shape[0], words_for(w.shape[0])), np.uint64)
    _bdense_sign_packed(a, w, int(k), thr, out)
    return out


# ---- integer inputs × binary weights (first layers): bit-serial over the input's bit planes
@njit(cache=True, parallel=True)
def _bitplane_matmul(planes, plane_weight, w, out):
    m, nbits, nwords = planes.shape
    n = w.shape[0]
    for i in prange(m):
        ones = np.empty(nbits, np.int64)
        for b in range(nbits):
            s = np.uint64(0)
            for v in range(nwords):
                s += popcount64(planes[i, b, v])
            ones[b] = np.int64(s)
        for j in range(n):
            acc = np.int64(0)
            for b in range(nbits):
                s = np.uint64(0)
                for v in range(nwords):
                    s += popcount64(planes[i, b, v] & w[j, v])
                # plane b contributes 2^b·(Σ_{w=+1} x_b − Σ_{w=−1} x_b) = 2^b·(2·s − ones_b)
                acc += plane_weight[b] * (2 * np.int64(s) - ones[b])
            out[i, j] = acc


def int_binary_matmul(x, w_packed, k: int, bits: int, signed: bool) -> np.ndarray:
    """Integer activations (``bits`` wide, two's complement if ``signed``) × ±1 weights → int64.

    Computed the way a bit-serial FPGA datapath does it: one XNOR/popcount pass per input bit
    plane, weighted by ``2^b`` (``−2^(bits−1)`` for the sign plane).
    """
    x = np.asarray(x)
    if x.dtype.kind not in "iu" or x.ndim != 2 or x.shape[1] != k:
        raise ValueError(f"integer input must be an int array of shape (rows, {k}), got {x.dtype} {x.shape}")
    lo, hi = IntType(bits, signed).range
    if outside(x, lo, hi):
        raise ValueError(f"integer input outside {'signed' if signed else 'unsigned'} {bits}-bit range [{lo}, {hi}]")
    w = _check_packed("weights", w_packed, k)
    xu = x.astype(np.int64) & ((1 << bits) - 1)
    planes = np.stack([pack_bits((xu >> b) & 1) for b in range(bits)], axis=1)
    plane_weight = np.array([1 << b for b in range(bits)], np.int64)
    if signed:
        plane_weight[-1] = -plane_weight[-1]
    out = np.empty((x.shape[0], w.shape[0]), np.int64)
    _bitplane_matmul(np.ascontiguousarray(planes), plane_weight, w, out)
    return out


# ---- convolution: im2col on channel-packed bits
def conv_out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


@njit(cache=True, parallel=True)
def _im2col_words(x, kh, kw, stride, pad, pad_word, out):
    bsz, h, wd, cw = x.shape
    oh = out.shape[1]
    ow = out.shape[2]
    for bi in prange(bsz):
        for oy in range(oh):
            for ox in range(ow):
                col = 0
                for ky in range(kh):
                    y = oy * stride + ky - pad
                    for kx in range(kw):
                        xx = ox * stride + kx - pad
                        inside = (y >= 0) and (y < h) and (xx >= 0) and (xx < wd)
                        for c in range(cw):
                            out[bi, oy, ox, col] = x[bi, y, xx, c] if inside else pad_word[c]
                            col += 1


def im2col_packed(x_packed, channels: int, kernel: int, stride: int = 1, padding: int = 0,
                  pad_value: int = -1) -> np.ndarray:
    """Sliding windows of a channel-packed NHWC bit map → ``(B, OH, OW, k·k·Wc)`` words.

    The reduction axis is ordered (ky, kx, channel word) — FINN's sliding-window order — so
    weights are packed per kernel position with the same per-position pad bits (0). Spatial
    padding inserts ``pad_value`` (±1) for every real channel.
    """
    x = np.asarray(x_packed)
    if x.dtype != np.uint64 or x.ndim != 4 or x.shape[3] != words_for(channels):
        raise ValueError(f"conv input must be packed uint64 (B, H, W, {words_for(channels)}), got {x.dtype} {x.shape}")
    if pad_value not in (1, -1):
        raise ValueError(f"pad_value must be +1 or -1 (binary data has no 0), got {pad_value}")
    if kernel < 1 or stride < 1 or padding < 0:
        raise ValueError("kernel and stride must be ≥ 1 and padding ≥ 0")
    oh = conv_out_size(x.shape[1], kernel, stride, padding)
    ow = conv_out_size(x.shape[2], kernel, stride, padding)
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {kernel} does not fit a {x.shape[1]}×{x.shape[2]} input with padding {padding}")
    pad_word = valid_mask(channels) if pad_value == 1 else np.zeros(words_for(channels), np.uint64)
    out = np.empty((x.shape[0], oh, ow, kernel * kernel * x.shape[3]), np.uint64)
    _im2col_words(np.ascontiguousarray(x), kernel, kernel, stride, padding, pad_word, out)
    return out


def binary_conv2d(x_packed, w_packed, channels: int, kernel: int, stride: int = 1, padding: int = 0,
                  pad_value: int = -1) -> np.ndarray:
    """Binary conv2d, NHWC, → int32 ``(B, OH, OW, C_out)``.

    ``w_packed`` is ``(C_out, k·k·Wc)``: for each (ky, kx) the ``channels`` weight bits packed
    into ``Wc = ⌈channels/64⌉`` words (see :func:`pack_conv_weights`).
    """
    cols = im2col_packed(x_packed, channels, kernel, stride, padding, pad_value)
    b, oh, ow, nw = cols.shape
    w = np.asarray(w_packed)
    if w.dtype != np.uint64 or w.ndim != 2 or w.shape[1] != nw:
        raise ValueError(f"conv weights must be packed uint64 (C_out, {nw}), got {w.dtype} {w.shape}")
    acc = np.empty((b * oh * ow, w.shape[0]), np.int32)
    # The pad bits inside each position's words are 0 on both sides, so the whole window is
    # one K = k·k·channels dot product over k·k·Wc words.
    _bgemm(cols.reshape(-1, nw), np.ascontiguousarray(w.T), kernel * kernel * channels, acc)
    return acc.reshape(b, oh, ow, -1)


def pack_conv_weights(w_pm1) -> np.ndarray:
    """±1 weights ``(C_out, k, k, C_in)`` → packed ``(C_out, k·k·⌈C_in/64⌉)``."""
    w = np.asarray(w_pm1)
    if w.ndim != 4:
        raise ValueError(f"conv weights must be (C_out, k, k, C_in), got shape {w.shape}")
    p = pack_bipolar(w)  # packs C_in per (o, ky, kx)
    return np.ascontiguousarray(p.reshape(w.shape[0], -1))



# ---------------------------------------------------------------------------- thresholds
@dataclass(frozen=True, eq=False)
class ThresholdSpec(SpecIdentity):
    """Frozen multi-threshold activation (integers only).

    Per channel ``c``: ``out = out_base + #{i : acc ≥ thresholds[c, i]}`` for ``acc`` in
    ``[acc_lo, acc_hi]``. Rows are non-decreasing; a threshold of ``acc_lo`` always fires,
    ``acc_hi + 1`` never does, so every threshold fits ``threshold_bits``. Channels are the
    last axis of the data.
    """

    thresholds: np.ndarray
    acc_lo: int
    acc_hi: int
    out_base: int = 0
    name: str = "thr"

    def __post_init__(self):
        t = np.asarray(self.thresholds)
        if t.dtype.kind not in "iu":
            raise ValueError(f"{self.name}: thresholds must be integers, got dtype {t.dtype}")
        if t.ndim == 1:
            t = t[:, None]
        if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 1:
            raise ValueError(f"{self.name}: thresholds must be (channels, n ≥ 1), got shape {t.shape}")
        t = np.array(t, dtype=np.int64)
        lo, hi = int(self.acc_lo), int(self.acc_hi)
        if lo > hi:
            raise ValueError(f"{self.name}: empty accumulator range [{lo}, {hi}]")
        if t.min() < lo or t.max() > hi + 1:
            raise ValueError(f"{self.name}: thresholds must lie in [acc_lo, acc_hi + 1] = [{lo}, {hi + 1}]")
        bad = np.flatnonzero(np.any(np.diff(t, axis=1) < 0, axis=1))
        if bad.size:
            raise ValueError(f"{self.name}: thresholds of channel {bad[0]} are not non-decreasing")
        t.setflags(write=False)
        object.__setattr__(self, "thresholds", t)
        object.__setattr__(self, "acc_lo", lo)
        object.__setattr__(self, "acc_hi", hi)
        object.__setattr__(self, "out_base", int(self.out_base))

    @property
    def channels(self) -> int:
        return self.thresholds.shape[0]

    @property
    def n_thresholds(self) -> int:
        return self.thresholds.shape[1]

    @property
    def threshold_type(self) -> IntType:
        """Type of one threshold: the accumulator range plus the "never" value ``acc_hi + 1``."""
        return IntType.from_range(self.acc_lo, self.acc_hi + 1)

    @property
    def channel_bits(self) -> int:
        """Bits of one channel's thresholds side by side: its share of a threshold-ROM row, of the
        comparator operands and of the comparison energy (every view reads this one width)."""
        return self.n_thresholds * self.threshold_type.width

    @property
    def out_range(self) -> tuple[int, int]:
        """Values the activation takes: ``out_base`` … ``out_base + n_thresholds``."""
        return self.out_base, self.out_base + self.n_thresholds

    @property
    def out_type(self) -> IntType:
        return IntType.from_range(*self.out_range)

    def as_rule(self, rule: str) -> np.ndarray:
        """Thresholds for another tool's compare rule: ``"ge"`` (acc ≥ T, hwnorm/FINN
        compiler/QONNX) or ``"gt"`` (acc > T, finn-hlslib default / BNN-PYNQ)."""
        if rule == "ge":
            return self.thresholds.copy()
        if rule == "gt":
            return self.thresholds - 1
        raise ValueError(f"unknown threshold rule {rule!r}; allowed: 'ge', 'gt'")

    def apply(self, acc) -> np.ndarray:
        """Counts (plus ``out_base``) for integer ``acc`` of shape ``(..., channels)``."""
        acc = np.asarray(acc)
        if acc.dtype.kind not in "iu":
            raise ValueError(f"{self.name}: accumulator must be integers, got dtype {acc.dtype}")
        if acc.ndim == 0 or acc.shape[-1] != self.channels:
            raise ValueError(f"{self.name}: last axis must have {self.channels} channels, got shape {acc.shape}")
        message = f"{self.name}: accumulator outside the declared range [{self.acc_lo}, {self.acc_hi}]"
        flat = acc.reshape(-1, self.channels)
        if flat.dtype not in RANGE_KERNEL_DTYPES:  # uint64: would not compare exactly in the kernel
            if outside(flat, self.acc_lo, self.acc_hi):
                raise ValueError(message)
            flat = flat.astype(np.int64)
        out = np.empty(flat.shape, np.int64)
        flat = np.ascontiguousarray(flat)
        if self.channels >= self.n_thresholds:
            bad = _multithreshold_rows(flat, np.ascontiguousarray(self.thresholds.T), self.out_base, self.acc_lo,
                                       self.acc_hi, out)
        else:
            bad = _multithreshold(flat, self.thresholds, self.out_base, self.acc_lo, self.acc_hi, out)
        if bad:
            raise ValueError(message)
        return out.reshape(acc.shape)

    def to_dict(self) -> dict:
        return {"kind": "thresholds", "name": self.name, "acc_range": [self.acc_lo, self.acc_hi],
                "out_base": self.out_base, "thresholds": self.thresholds.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "ThresholdSpec":
        try:
            return cls(thresholds=int_array(d["thresholds"], "thresholds"),
                       acc_lo=whole(d["acc_range"][0], "thresholds.acc_range"),
                       acc_hi=whole(d["acc_range"][1], "thresholds.acc_range"),
                       out_base=whole(d.get("out_base", 0), "thresholds.out_base"), name=d.get("name", "thr"))
        except KeyError as e:
            raise ValueError(f"threshold spec is missing field {e.args[0]!r}") from None



@njit(cache=True, parallel=True)
def _multithreshold(acc, thr, base, lo, hi, out):
    """``out = base + #{t : acc ≥ thr[c, t]}``, one element at a time over its thresholds (the
    order that vectorizes when there are many thresholds and few channels); returns how many
    ``acc`` lie outside ``[lo, hi]`` (the range check rides along: one pass, not three)."""
    m, c = acc.shape
    n = thr.shape[1]
    bad = 0
    for i in prange(m):
        for j in range(c):
            a = np.int64(acc[i, j])
            bad += (a < lo) | (a > hi)
            cnt = 0
            for t in range(n):
                cnt += a >= thr[j, t]
            out[i, j] = base + cnt
    return bad


@njit(cache=True, parallel=True)
def _multithreshold_rows(acc, thr_t, base, lo, hi, out):
    """:func:`_multithreshold` a threshold at a time over a whole row (``thr_t``: the thresholds
    transposed, one contiguous row per threshold): the order that vectorizes when there are many
    channels and few thresholds."""
    m, c = acc.shape
    n = thr_t.shape[0]
    bad = 0
    for i in prange(m):
        row_bad = 0
        for j in range(c):
            a = np.int64(acc[i, j])
            row_bad += (a < lo) | (a > hi)
            out[i, j] = base
        for t in range(n):
            for j in range(c):
                out[i, j] += np.int64(acc[i, j]) >= thr_t[t, j]
        bad += row_bad
    return bad


@dataclass(frozen=True)
class ThresholdFold:
    """A folded BN + activation: the spec, and which channels' weights must be negated."""

    spec: ThresholdSpec
    flip: np.ndarray  # bool per channel: γ < 0, weights negated so every compare is "≥"


def _frac(v, what: str, c: int) -> Fraction:
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"parameter {what} is {v} in channel {c}; it must be finite")
    return Fraction(v)


def _affine_sqrt_sign_ge(p: Fraction, q: Fraction, s: Fraction, strict: bool) -> bool:
    """Exactly decide ``p + q·√s ≥ 0`` (``> 0`` if strict) for rationals, ``s > 0``."""
    if p >= 0 and q >= 0:
        return (p > 0 or q > 0) if strict else True
    if p <= 0 and q <= 0:
        return False if strict else (p == 0 and q == 0)
    lhs, rhs = p * p, q * q * s
    if p > 0:  # q < 0: p ≥ |q|√s
        return lhs > rhs if strict else lhs >= rhs
    return rhs > lhs if strict else rhs >= lhs  # p < 0 < q: q√s ≥ |p|


@dataclass(frozen=True)
class SurdAffine:
    """An exact per-channel real map of an integer ``x``: ``v_c(x) = (p1_c·x + p0_c)/√s_c + q_c``.

    Rationals only (float parameters taken at their exact binary values), ``s_c > 0``. It is
    closed under what sits between an integer accumulator and a quantizer in real models —
    multiply / divide / add a constant, and one BatchNormalization — so a whole float chain
    folds to thresholds with no float rounding anywhere.
    """

    p1: tuple
    p0: tuple
    q: tuple
    s: tuple

    @property
    def channels(self) -> int:
        return len(self.p1)

    @classmethod
    def identity(cls, channels: int, scale=1) -> "SurdAffine":
        one, zero = Fraction(1), Fraction(0)
        return cls((Fraction(scale),) * channels, (zero,) * channels, (zero,) * channels, (one,) * channels)

    @classmethod
    def from_bn(cls, gamma, beta, mean, var, eps=1e-5, name: str = "bn") -> "SurdAffine":
        """``γ(x − μ)/√(σ² + ε) + β`` per channel; bad parameters raise naming the channel."""
        g = np.atleast_1d(np.asarray(gamma, dtype=np.float64))
        return cls.identity(g.size).then_bn(g, beta, mean, var, eps, name)

    def _per_channel(self, values, what: str) -> list[Fraction]:
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.size == 1:
            v = np.repeat(v, self.channels)
        if v.size != self.channels:
            raise ValueError(f"{what} has {v.size} values for {self.channels} channels")
        return [_frac(x, what, c) for c, x in enumerate(v)]

    def _scaled(self, k: list[Fraction]) -> "SurdAffine":
        return SurdAffine(tuple(a * b for a, b in zip(self.p1, k)), tuple(a * b for a, b in zip(self.p0, k)),
                          tuple(a * b for a, b in zip(self.q, k)), self.s)

    def take(self, index) -> "SurdAffine":
        """The maps of channels ``index``, in that order (a per-channel map spread over the
        elements of a flattened feature map)."""
        idx = [int(i) for i in index]
        return SurdAffine(*(tuple(v[i] for i in idx) for v in (self.p1, self.p0, self.q, self.s)))

    def distinct(self) -> tuple[list[int], np.ndarray]:
        """The first channel of each distinct map, and for every channel the index of its map among
        those: a per-tensor quantizer over a feature map has one map for all its channels."""
        first, inverse, seen = [], np.empty(self.channels, np.intp), {}
        for c, key in enumerate(zip(self.p1, self.p0, self.q, self.s)):
            if key not in seen:
                seen[key] = len(first)
                first.append(c)
            inverse[c] = seen[key]
        return first, inverse

    def then_mul(self, c, what: str = "constant") -> "SurdAffine":
        return self._scaled(self._per_channel(c, what))

    def then_div(self, c, what: str = "constant") -> "SurdAffine":
        k = self._per_channel(c, what)
        for ch, v in enumerate(k):
            if v == 0:
                raise ValueError(f"{what} divides by zero in channel {ch}")
        return self._scaled([1 / v for v in k])

    def then_add(self, c, what: str = "constant") -> "SurdAffine":
        k = self._per_channel(c, what)
        return SurdAffine(self.p1, self.p0, tuple(a + b for a, b in zip(self.q, k)), self.s)

    def then_bn(self, gamma, beta, mean, var, eps, name: str = "bn") -> "SurdAffine":
        if not self.is_affine():
            raise ValueError(f"{name}: a second BatchNormalization in one elementwise chain is not supported")
        g, b = self._per_channel(gamma, f"{name} gamma"), self._per_channel(beta, f"{name} beta")
        mu = self._per_channel(mean, f"{name} mean")
        var_, e = self._per_channel(var, f"{name} var"), self._per_channel(eps, f"{name} eps")
        for c in range(self.channels):
            if var_[c] < 0 or e[c] < 0:
                raise ValueError(f"{name}: channel {c}: var and eps must be ≥ 0")
            if var_[c] + e[c] == 0:
                raise ValueError(f"{name}: channel {c}: var + eps = 0, BN divides by zero (set eps > 0)")
        # γ((p1·x + p0 + q) − μ)/√(σ² + ε) + β   (the current map has √s = 1)
        n = range(self.channels)
        return SurdAffine(tuple(g[c] * self.p1[c] for c in n),
                          tuple(g[c] * (self.p0[c] + self.q[c] - mu[c]) for c in n),
                          tuple(b), tuple(var_[c] + e[c] for c in n))

    def is_affine(self) -> bool:
        return all(v == 1 for v in self.s)

    def dyadic(self, c: int, precision: int = 160) -> Dyadic:
        """Channel ``c`` as a dyadic map ``(N·x + C) / 2^P``: exact when the map is affine with
        dyadic coefficients (float parameters always are), else within ``2^-precision``·(|p1|·|x| + |p0|)
        of the true value (the square root is the only irrational part)."""
        s = self.s[c]
        inv = Fraction(1) if s == 1 else Fraction(math.isqrt((s.denominator << (2 * precision)) // s.numerator),
                                                  1 << precision)
        a, b = self.p1[c] * inv, self.p0[c] * inv + self.q[c]
        if all(v.denominator & (v.denominator - 1) == 0 for v in (a, b)):  # dyadic already: exact
            m = max(a.denominator, b.denominator, 2)
            return Dyadic(int(a * m), int(b * m), m)
        m = 1 << precision
        return Dyadic(round(a * m), round(b * m), m)

    def as_bn(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(γ, β, μ, σ²)`` (float64, ε = 0) of a BN computing this map: ``γ(x − μ)/√σ² + β``.
        A constant channel (``p1 = 0``) gets μ = 0 and its value in β."""
        gamma = np.array([float(v) for v in self.p1])
        var = np.array([float(v) for v in self.s])
        mean = np.array([float(-p0 / p1) if p1 != 0 else 0.0 for p0, p1 in zip(self.p0, self.p1)])
        beta = np.array([float(q) + (float(p0) / math.sqrt(float(s)) if p1 == 0 else 0.0)
                         for p0, p1, q, s in zip(self.p0, self.p1, self.q, self.s)])
        return gamma, beta, mean, var

    def ge(self, c: int, x: int, cut: Fraction, strict: bool = False) -> bool:
        """Exactly ``v_c(x) ≥ cut`` (``> cut`` if strict)."""
        return _affine_sqrt_sign_ge(self.p1[c] * x + self.p0[c], self.q[c] - cut, self.s[c], strict)

    def approx(self, c: int, x) -> np.ndarray:
        """Float64 value (for reports and margins, never for decisions)."""
        return (float(self.p1[c]) * np.asarray(x, np.float64) + float(self.p0[c])) / math.sqrt(float(self.s[c])) \
            + float(self.q[c])

    def crossing(self, c: int, cut: Fraction) -> float | None:
        """Float estimate of the x where ``v_c(x) = cut`` (None if v_c is constant)."""
        if self.p1[c] == 0:
            return None
        with np.errstate(all="ignore"):
            x = ((float(cut) - float(self.q[c])) * math.sqrt(float(self.s[c])) - float(self.p0[c])) / float(self.p1[c])
        return x if math.isfinite(x) else None


def _level_predicates(rounding: Rounding, scale: Fraction, zero: Fraction, level: int):
    """``round(y/scale + zero) ≥ level`` ⇔ ``y ≥ c`` (or ``> c`` if strict): returns (c, strict)."""
    half = Fraction(level) - Fraction(1, 2)
    if rounding == Rounding.FLOOR:
        return (Fraction(level) - zero) * scale, False
    if rounding == Rounding.HALF_UP:
        return (half - zero) * scale, False
    if rounding == Rounding.HALF_AWAY:  # halves round away from zero
        return (half - zero) * scale, half < 0
    return (half - zero) * scale, level % 2 == 1  # HALF_EVEN: a half rounds to the even level


def fold_thresholds(form: SurdAffine, levels, *, acc_lo: int, acc_hi: int, out_base: int = 0,
                    name: str = "thr") -> ThresholdFold:
    """Thresholds of ``out = out_base + #{i : v(acc) ≥ cut_i}`` for ``levels = [(cut_i, strict_i)]``.

    A channel whose map decreases (``p1 < 0``) is flipped: its weights are to be negated and
    its thresholds apply to ``−acc``, so every compare in the spec is ``acc ≥ T``.
    """
    first, inverse = form.distinct()
    if len(first) < form.channels:  # equal maps, equal thresholds: each computed once
        fold = fold_thresholds(form.take(first), levels, acc_lo=acc_lo, acc_hi=acc_hi, out_base=out_base, name=name)
        spec = fold.spec
        return ThresholdFold(ThresholdSpec(spec.thresholds[inverse], spec.acc_lo, spec.acc_hi, out_base=spec.out_base,
                                           name=spec.name), fold.flip[inverse])
    lo, hi = int(acc_lo), int(acc_hi)
    flip = np.array([p < 0 for p in form.p1], bool)
    rows, ranges = [], []
    for c in range(form.channels):
        sign = -1 if flip[c] else 1
        # After the flip the channel sees acc' = sign·acc in [lo_c, hi_c]; v is non-decreasing in it.
        lo_c, hi_c = (lo, hi) if sign > 0 else (-hi, -lo)
        row = []
        for cut, strict in levels:
            guess = form.crossing(c, cut)
            fires = lambda t: form.ge(c, sign * t, cut, strict)  # noqa: B023,E731 (used at once)
            row.append(_smallest_firing(fires, lo_c, hi_c, None if guess is None else sign * guess))
        rows.append(row)
        ranges.append((lo_c, hi_c))
    lo_all, hi_all = (min(lo, -hi), max(hi, -lo)) if flip.any() else (lo, hi)
    # Saturated thresholds take the spec-wide "always" / "never" values, whatever the channel's range.
    t = np.array([[lo_all if v <= lo_c else (hi_all + 1 if v > hi_c else v) for v in row]
                  for row, (lo_c, hi_c) in zip(rows, ranges)], dtype=np.int64).reshape(form.channels, len(levels))
    return ThresholdFold(ThresholdSpec(t, lo_all, hi_all, out_base=out_base, name=name), flip)


def _smallest_firing(fires, lo: int, hi: int, guess) -> int:
    """Smallest t in [lo, hi] with ``fires(t)`` for a monotone predicate; hi + 1 if none.

    The float guess is right (or off by an ulp) almost always, so two exact evaluations
    usually settle it; otherwise it narrows the bracket of a binary search.
    """
    if not fires(hi):
        return hi + 1
    if fires(lo):
        return lo
    a, b = lo, hi  # invariant: not fires(a), fires(b)
    if guess is not None and lo < guess <= hi:
        t = min(max(math.ceil(guess), a + 1), b)
        if fires(t):
            b = t
            if not fires(t - 1):
                return t
            b = t - 1
        else:
            a = t
    while b - a > 1:
        mid = (a + b) // 2
        if fires(mid):
            b = mid
        else:
            a = mid
    return b


def fold_sign_threshold(gamma, beta, mean, var, eps=1e-5, *, acc_lo: int, acc_hi: int,
                        name: str = "thr") -> ThresholdFold:
    """BN followed by sign (sign(0) = +1) → one threshold per channel, exactly.

    Output bit 1 (+1) iff ``γ(acc − μ)/√(σ² + ε) + β ≥ 0``; for γ < 0 the channel's weights
    are to be negated (``flip``) and the threshold applies to the negated accumulator.
    """
    form = SurdAffine.from_bn(gamma, beta, mean, var, eps, name)
    return fold_thresholds(form, [(Fraction(0), False)], acc_lo=acc_lo, acc_hi=acc_hi, name=name)


def quantizer_levels(out_bits: int, out_scale: float, out_zero_point: int = 0, signed: bool = False,
                     rounding="half_even", narrow: bool = False):
    """Cut points of ``clip(R(y/s + z), qmin, qmax)``: returns ``(qmin, [(cut, strict), …])``."""
    rounding = Rounding.parse(rounding)
    if not 1 <= out_bits <= 16:
        raise ValueError(f"out_bits must be 1 … 16, got {out_bits}")
    if not (out_scale > 0 and math.isfinite(out_scale)):
        raise ValueError(f"out_scale must be a positive finite number, got {out_scale}")
    qmin, qmax = IntType(out_bits, signed).range
    if narrow:
        qmin, qmax = (qmin + 1, qmax) if signed else (qmin, qmax - 1)
    s, z = Fraction(float(out_scale)), Fraction(int(out_zero_point))
    return qmin, [_level_predicates(rounding, s, z, level) for level in range(qmin + 1, qmax + 1)]


def fold_multithreshold(gamma, beta, mean, var, eps=1e-5, *, acc_lo: int, acc_hi: int, out_bits: int,
                        out_scale: float, out_zero_point: int = 0, signed: bool = False,
                        rounding="half_even", name: str = "thr") -> ThresholdFold:
    """BN followed by an n-bit quantized activation ``clip(R(BN/s + z), qmin, qmax)`` →
    ``qmax − qmin`` thresholds per channel (output = qmin + count), exactly."""
    qmin, levels = quantizer_levels(out_bits, out_scale, out_zero_point, signed, rounding)
    form = SurdAffine.from_bn(gamma, beta, mean, var, eps, name)
    return fold_thresholds(form, levels, acc_lo=acc_lo, acc_hi=acc_hi, out_base=qmin, name=name)
