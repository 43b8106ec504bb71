"""What the spatial layer kinds share: a window geometry over a channels-last feature map, and the
golden kernels that slide it (Numba).

A feature map streams channels last, pixel by pixel in raster order: element ``(y, x, c)`` of an
``H × W × C`` map is element ``(y·W + x)·C + c`` of its stream. A window of ``kh × kw`` pixels
moves by ``(sh, sw)`` over the map padded by ``(top, left, bottom, right)`` pixels::

    OH = (H + top + bottom − kh) // sh + 1          OW = (W + left + right − kw) // sw + 1

Output pixel ``(oy, ox)`` reads input pixels ``(oy·sh − top + ky, ox·sw − left + kx)``; those
outside the map are padding. The window's elements are ordered ``(ky, kx, c)`` (FINN's
sliding-window order), so a convolution's weight columns are permuted to the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from hwnorm.blocks import CARRY_FEATURES, FF_FEATURES, Inventory, MemoryUse
from hwnorm.bnn import words_for
from hwnorm.datatypes import counter_bits, element_type
from hwnorm.layers.base import check_fold, divisors, largest_divisor, MAX_AUTO_LANES
from hwnorm.spec import content_hash

__all__ = ["Geometry", "map_shape_of", "im2col", "maxpool", "buffer_rows", "line_buffer_schedule", "line_buffer_writes",
           "steady_interval",
           "LineBufferBlock", "MapLayer",
           "im2col_bits", "maxpool_bits"]


def _pair(value, what: str) -> tuple[int, int]:
    v = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(v) != 2 or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in v):
        raise ValueError(f"{what} must be two whole numbers, got {value!r}")
    return int(v[0]), int(v[1])


def map_shape_of(d: dict, what: str = "in_shape") -> tuple:
    """An ``(H, W, C)`` shape from IR JSON."""
    shape = d.get(what)
    if not isinstance(shape, list) or len(shape) != 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape):
        raise ValueError(f"{what} must be [H, W, C], three whole numbers ≥ 1, got {shape!r}")
    return tuple(shape)


@dataclass(frozen=True)
class Geometry:
    """A window sliding over an ``H × W`` map (module docstring); plain integers."""

    height: int
    width: int
    kernel: tuple
    stride: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)  # top, left, bottom, right

    def __post_init__(self):
        object.__setattr__(self, "kernel", _pair(self.kernel, "kernel"))
        object.__setattr__(self, "stride", _pair(self.stride, "stride"))
        pads = tuple(self.pads)
        if len(pads) != 4 or not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in pads):
            raise ValueError(f"pads must be four whole numbers (top, left, bottom, right), got {self.pads!r}")
        object.__setattr__(self, "pads", tuple(int(p) for p in pads))
        if min(self.height, self.width) < 1:
            raise ValueError(f"the feature map must be at least 1×1, got {self.height}×{self.width}")
        if min(self.kernel) < 1 or min(self.stride) < 1 or min(self.pads) < 0:
            raise ValueError(f"kernel and stride must be ≥ 1 and pads ≥ 0, got kernel {self.kernel}, stride "
                             f"{self.stride}, pads {self.pads}")
        kh, kw = self.kernel
        top, left, bottom, right = self.pads
        if max(top, bottom) >= kh or max(left, right) >= kw:  # a window of padding alone has no value
            raise ValueError(f"pads {self.pads} must be smaller than the kernel {self.kernel}")
        if self.out_height < 1 or self.out_width < 1:
            raise ValueError(f"a {kh}×{kw} kernel does not fit a {self.height}×{self.width} map padded {self.pads}")

    @property
    def out_height(self) -> int:
        return (self.height + self.pads[0] + self.pads[2] - self.kernel[0]) // self.stride[0] + 1

    @property
    def out_width(self) -> int:
        return (self.width + self.pads[1] + self.pads[3] - self.kernel[1]) // self.stride[1] + 1

    @property
    def pointwise(self) -> bool:
        """A 1×1 kernel at stride 1 without padding: every window is one pixel, in stream order, so
        no line buffer (no ``window`` layer) is needed."""
        return self.kernel == (1, 1) and self.stride == (1, 1) and not self.padded

    @property
    def taps(self) -> int:
        """Pixels per window."""
        return self.kernel[0] * self.kernel[1]

    @property
    def padded(self) -> bool:
        return any(self.pads)

    def to_dict(self) -> dict:
        return {"kernel": list(self.kernel), "stride": list(self.stride), "pads": list(self.pads)}

    @classmethod
    def from_dict(cls, d: dict, height: int, width: int) -> "Geometry":
        return cls(height, width, tuple(d["kernel"]), tuple(d.get("stride", (1, 1))), tuple(d.get("pads", (0,) * 4)))

    def describe(self) -> str:
        kh, kw = self.kernel
        text = f"{kh}×{kw}"
        if self.stride != (1, 1):
            text += f" stride {self.stride[0]}×{self.stride[1]}" if self.stride[0] != self.stride[1] \
                else f" stride {self.stride[0]}"
        if self.padded:
            text += f" pad {','.join(map(str, self.pads))}"
        return text


@njit(cache=True, parallel=True)
def _im2col(x, kh, kw, sh, sw, top, left, pad, out):
    b, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    for i in prange(b):
        for oy in range(oh):
            for ox in range(ow):
                col = 0
                for ky in range(kh):
                    y = oy * sh - top + ky
                    for kx in range(kw):
                        xx = ox * sw - left + kx
                        inside = y >= 0 and y < h and xx >= 0 and xx < w
                        for ch in range(c):
                            out[i, oy, ox, col] = x[i, y, xx, ch] if inside else pad
                            col += 1


def im2col(x: np.ndarray, g: Geometry, pad: int) -> np.ndarray:
    """Windows of a batch of maps ``x`` (B, H, W, C) → (B·OH·OW, kh·kw·C), padding reads ``pad``."""
    out = np.empty((x.shape[0], g.out_height, g.out_width, g.taps * x.shape[3]), x.dtype)
    _im2col(np.ascontiguousarray(x), g.kernel[0], g.kernel[1], g.stride[0], g.stride[1], g.pads[0], g.pads[1],
            x.dtype.type(pad), out)
    return out.reshape(-1, out.shape[3])


@njit(cache=True, parallel=True)
def _maxpool(x, kh, kw, sh, sw, top, left, out):
    b, h, w, c = x.shape
    oh, ow = out.shape[1], out.shape[2]
    for i in prange(b):
        for oy in range(oh):
            for ox in range(ow):
                first = True
                for ky in range(kh):
                    y = oy * sh - top + ky
                    if y < 0 or y >= h:
                        continue
                    for kx in range(kw):
                        xx = ox * sw - left + kx
                        if xx < 0 or xx >= w:
                            continue
                        for ch in range(c):
                            v = x[i, y, xx, ch]
                            if first or v > out[i, oy, ox, ch]:
                                out[i, oy, ox, ch] = v
                        first = False


def maxpool(x: np.ndarray, g: Geometry) -> np.ndarray:
    """Max over each window of a batch of maps ``x`` (B, H, W, C) → (B·OH·OW, C); padding is
    ignored (ONNX MaxPool pads with −∞). Every window holds at least one pixel of the map."""
    out = np.empty((x.shape[0], g.out_height, g.out_width, x.shape[3]), x.dtype)
    _maxpool(np.ascontiguousarray(x), g.kernel[0], g.kernel[1], g.stride[0], g.stride[1], g.pads[0], g.pads[1], out)
    return out.reshape(-1, x.shape[3])


class MapLayer:
    """What the spatial layer kinds share (mix in before :class:`hwnorm.layers.Layer`; the kind
    declares the fields ``map_shape = (H, W, C)``, ``geometry``, ``element``, ``lo``, ``hi``,
    ``name``): tensors, the checks, JSON, folding by channels per beat, and its block class
    ``block_class`` (a :class:`LineBufferBlock`) under the kind's one folding key."""

    block_class: type = None

    def check_map(self) -> None:
        h, w, _ = self.map_shape
        g = self.geometry
        if (g.height, g.width) != (h, w):
            raise ValueError(f"{self.name}: geometry of a {g.height}×{g.width} map for a {h}×{w} input")
        if not self.element_range[0] <= self.lo <= self.hi <= self.element_range[1]:
            raise ValueError(f"{self.name}: range [{self.lo}, {self.hi}] is not inside {self.element}")

    @property
    def element_range(self) -> tuple[int, int]:
        return (0, 1) if self.element.is_bipolar else self.element.range

    # ---- tensors: a map in, one unit per map
    @property
    def in_shape(self) -> tuple:
        return tuple(self.map_shape)

    @property
    def in_features(self) -> int:
        return self.map_shape[2]

    @property
    def out_features(self) -> int:
        return self.out_shape[2]

    @property
    def unit_vectors(self) -> int:
        return self.map_shape[0] * self.map_shape[1]

    in_type = property(lambda self: self.element)
    out_type = in_type

    @property
    def in_range(self) -> tuple[int, int]:
        return self.lo, self.hi

    # ---- JSON
    def spec_fields(self) -> dict:
        return {**self.geometry.to_dict(), "element": self.element.name, "range": [self.lo, self.hi]}

    json_fields = {"name": (str,), "in_shape": (list,), "kernel": (list,), "stride": (list,), "pads": (list,),
                   "element": (str,), "range": (list,)}

    @classmethod
    def map_fields(cls, d: dict) -> dict:
        """The shared fields of a spatial layer from its IR JSON."""
        shape = map_shape_of(d)
        lo, hi = d["range"]
        return {"map_shape": shape, "geometry": Geometry.from_dict(d, shape[0], shape[1]),
                "element": element_type(d["element"]), "lo": int(lo), "hi": int(hi), "name": d["name"]}

    # ---- folding: channels per beat, dividing C
    def foldings(self) -> list[dict]:
        return [{self.folding_keys[0]: d} for d in divisors(self.map_shape[2])]

    def auto_fold(self, prev_lanes, next_layer) -> dict:
        """As wide as the producer's beats (no lane converter in front)."""
        return {self.folding_keys[0]: largest_divisor(self.map_shape[2], prev_lanes or MAX_AUTO_LANES)}

    def block(self, fold: dict):
        fold = self.parse_fold(fold)
        return self.block_class(self, fold.get(self.folding_keys[0], 1))

    def describe(self, block) -> dict:
        return {"layer": self.name, self.folding_keys[0]: block.lanes, "spec_hash": content_hash(self.to_dict()),
                "map": list(self.map_shape), **self.geometry.to_dict()}

    def summary(self) -> dict:
        return {**super().summary(), "window": self.geometry.describe(), "map": "×".join(map(str, self.map_shape))}


# ---- the line buffer both spatial blocks are built on (hwnorm/hdl/window.py), as a cycle model
#
# The input map is written beat by beat (C/L beats of L lanes per pixel, raster order) into a
# circular buffer of R rows, R = the power of two ≥ kh + sh; windows are read from it one beat per
# clock. A read waits until its beat is written (padding reads nothing); a write waits until its
# row's slot is free: rows below the lowest row the current output row still reads are done.
# Both decide on the registered state at the start of a clock, so a beat written at t is
# readable at t + 1. Read beats leave the block two clocks after their issue (memory, output
# register); a max-pool hands on one beat per window and channel fold: its last tap's.

def buffer_rows(g: Geometry) -> int:
    """R: the rows the line buffer holds, a power of two so a row index wraps for free."""
    need = g.kernel[0] + g.stride[0]
    return 1 << (need - 1).bit_length()


@njit(cache=True)
def _line_buffer(arrivals, h, w, cf_n, kh, kw, sh, sw, top, left, oh, ow, rows, taps_inner, latency, out, writes):
    n_in = arrivals.size
    per_image = oh * ow * kh * kw * cf_n
    reads = (n_in // (h * w * cf_n)) * per_image
    wi = 0
    wrow = 0
    wcol = 0
    wcf = 0
    oy = 0
    ox = 0
    ky = 0
    kx = 0
    cf = 0
    iy_base = -top
    ix_base = -left
    k = 0
    t = 0
    ri = 0
    seen = rows  # the writer's row limit: the reader's, a clock late (module notes of hwnorm.hdl.window)
    while ri < reads or wi < n_in:  # (beats no window reads, a strided map's last rows, are written too)
        limit = (iy_base if iy_base > 0 else 0) + rows
        write = wi < n_in and arrivals[wi] <= t and wrow < seen
        if ri >= reads and wi < n_in and arrivals[wi] <= t and not write:
            break  # nothing left to read frees the slot it waits for
        iy = iy_base + ky
        ix = ix_base + kx
        padded = iy < 0 or iy >= h or ix < 0 or ix >= w
        rebase = 0
        read = padded or wrow > iy or (wrow == iy and (wcol > ix or (wcol == ix and wcf > cf)))
        if read:
            last_tap = ky == kh - 1 and kx == kw - 1
            if not taps_inner or last_tap:
                out[k] = t + latency
                k += 1
            ri += 1
            # the next read: (oy, ox, ky, kx, cf) for a window, (oy, ox, cf, ky, kx) for a pool
            if taps_inner:
                inner_done = last_tap and cf == cf_n - 1
                if last_tap:
                    ky = 0
                    kx = 0
                    cf = 0 if cf == cf_n - 1 else cf + 1
                elif kx == kw - 1:
                    kx = 0
                    ky += 1
                else:
                    kx += 1
            else:
                inner_done = last_tap and cf == cf_n - 1
                if cf < cf_n - 1:
                    cf += 1
                else:
                    cf = 0
                    if kx < kw - 1:
                        kx += 1
                    else:
                        kx = 0
                        ky = 0 if ky == kh - 1 else ky + 1
            if inner_done:
                if ox < ow - 1:
                    ox += 1
                    ix_base += sw
                else:
                    ox = 0
                    ix_base = -left
                    if oy < oh - 1:
                        oy += 1
                        iy_base += sh
                    else:
                        oy = 0
                        iy_base = -top
                        rebase = h
        if write:
            writes[wi] = t
            wi += 1
            if wcf < cf_n - 1:
                wcf += 1
            else:
                wcf = 0
                if wcol < w - 1:
                    wcol += 1
                else:
                    wcol = 0
                    wrow += 1
        wrow -= rebase
        seen = limit - rebase
        if not read and not write and wi < n_in and arrivals[wi] > t + 1:
            t = arrivals[wi]  # nothing changes until the next beat is offered: skip the idle clocks
        else:
            t += 1
    return k


def line_buffer_schedule(g: Geometry, channel_folds: int, arrivals, taps_inner: bool, latency: int = 2) -> list[int]:
    """Output-valid clocks of a line-buffer block (module notes above) for input beats offered from
    ``arrivals``, the output always ready: one per read for a window (``taps_inner`` False), one
    per window and channel fold for a pool."""
    return _line_buffer_run(g, channel_folds, arrivals, taps_inner, latency)[0]


def line_buffer_writes(g: Geometry, channel_folds: int, arrivals, taps_inner: bool) -> list[int]:
    """The clock each input beat offered from ``arrivals`` is written (taken) by a line-buffer
    block: later than offered while its row's slot still holds a row a window reads."""
    return _line_buffer_run(g, channel_folds, arrivals, taps_inner, 2)[1]


def _line_buffer_run(g: Geometry, channel_folds: int, arrivals, taps_inner: bool, latency: int):
    a = np.asarray(arrivals, dtype=np.int64)
    images = a.size // (g.height * g.width * channel_folds)
    per_image = g.out_height * g.out_width * channel_folds * (1 if taps_inner else g.taps)
    out = np.empty(images * per_image, np.int64)
    writes = np.full(a.size, -1, np.int64)
    n = _line_buffer(a, g.height, g.width, channel_folds, g.kernel[0], g.kernel[1], g.stride[0], g.stride[1],
                     g.pads[0], g.pads[1], g.out_height, g.out_width, buffer_rows(g), taps_inner, latency, out, writes)
    return out[:n].tolist(), writes.tolist()


def steady_interval(schedule, in_beats: int, out_beats: int, images: int = 4) -> int:
    """Clocks per image at full rate: between the last output beats of the last two of ``images``
    fed back to back (the pipeline has settled by then)."""
    done = schedule(list(range(images * in_beats)))
    return done[images * out_beats - 1] - done[(images - 1) * out_beats - 1]


class LineBufferBlock:
    """What the ``window`` and ``maxpool`` blocks share (mix in before :class:`hwnorm.blocks.Block`):
    ``lanes`` channels per beat, a whole map per unit, the line buffer's cycle model."""

    taps_inner = False
    # what the line buffer is built from: counters (adders, comparators), the read multiplexer,
    # registers, and its RAM (block RAM, LUT RAM or logic by the target's rules)
    LINE_BUFFER_FEATURES = {"lut": ("blocks", "adder", "compare", "mux", "ram_bits", "ram_width"), "ff": FF_FEATURES,
                            "carry": CARRY_FEATURES}

    def __init__(self, layer, lanes: int):
        h, w, c = layer.map_shape
        self.lanes = check_fold(layer.name, layer.folding_keys[0].upper(), lanes, c, "channels")
        self.layer, self.name, self.geometry = layer, layer.name, layer.geometry
        self.channel_folds = c // self.lanes
        self.in_type = self.out_type = layer.element
        self.in_lanes = self.out_lanes = self.lanes
        g = self.geometry
        self.in_beats = h * w * self.channel_folds
        self.out_beats = g.out_height * g.out_width * self.channel_folds * (1 if self.taps_inner else g.taps)
        self._interval = None

    @property
    def read_stages(self) -> int:
        """Clocks from a read's issue to its beat in the output register: the RAM read and the
        output register — and, pipelined for a clock, a register on the RAM's data before any
        logic (a block RAM's own output register: ``hwnorm.estimate.netlist`` moves it in; without
        it an ECP5 DP16KD's 5.8 ns clock-to-out runs on into the padding mux or the pool)."""
        return 3 if self.timing.on else 2

    def schedule(self, arrivals: list[int]) -> list[int]:
        return line_buffer_schedule(self.geometry, self.channel_folds, arrivals, self.taps_inner, self.read_stages)

    def accepts(self, arrivals: list[int]) -> list[int]:
        return line_buffer_writes(self.geometry, self.channel_folds, arrivals, self.taps_inner)

    @property
    def rows(self) -> int:
        """The rows the line buffer holds (:func:`buffer_rows`)."""
        return buffer_rows(self.geometry)

    @property
    def beat_bits(self) -> int:
        """Bits of the beat counts the writer and the reader keep (:mod:`hwnorm.hdl.window`),
        counted modulo 2^bits: twice any distance between them (the buffer's rows, a window's and
        a stride's, the top padding), so the sign of a difference says which is ahead."""
        g = self.geometry
        beats_per_row = g.width * self.channel_folds
        return (2 * (self.rows + g.kernel[0] + g.stride[0] + g.pads[0] + 4) * beats_per_row - 1).bit_length() + 1

    @property
    def initiation_interval(self) -> int:
        if self._interval is None:
            self._interval = steady_interval(self.schedule, self.in_beats, self.out_beats)
        return self._interval

    @property
    def reads(self) -> int:
        """Beats read from the buffer per image."""
        g = self.geometry
        return g.out_height * g.out_width * self.channel_folds * g.taps

    def buffer_actions(self) -> dict:
        """Energy actions of the line buffer per image: bits written and read, in a RAM of its capacity."""
        mem = self.inventory().memories[0]
        bits = self.lanes * self.in_type.width
        return {f"ram_access_{mem.width * mem.depth}b": (self.in_beats + self.reads) * bits}

    def inventory(self):
        g = self.geometry
        h, w, _ = self.layer.map_shape
        width = self.lanes * self.in_type.width
        rows = buffer_rows(g)
        depth = rows << ((w - 1).bit_length() + (self.channel_folds - 1).bit_length())
        # (hwnorm.hdl.window) the writer's and the reader's beat counts; the pixel (iy, ix); the
        # counters of the write address and of the read order; the room below the row limit and
        # the credits that move it; the reader's flags
        beat, room = self.beat_bits, counter_bits(h + 2 * rows + g.stride[0] + 4)
        pixel = counter_bits(h + g.stride[0] + g.kernel[0]) + counter_bits(w + g.stride[1] + g.kernel[1])
        counters = (2 * beat + pixel + counter_bits(w) + 2 * counter_bits(self.channel_folds)
                    + counter_bits(g.out_height) + counter_bits(g.out_width) + counter_bits(g.kernel[0])
                    + counter_bits(g.kernel[1]) + 2 * counter_bits(rows) + 3 * room)
        steps = 6  # the reader's steps: a sum per step for the beat count and the pixel, one mux
        data_register = (width + 4) * (self.read_stages - 2)  # pipelined: the RAM's data and four flags
        return Inventory(adder=steps * (beat + pixel) + 2 * beat + 4 * room + counters,
                         compare=counters, mux=2 * width + steps * (beat + pixel),
                         register=counters + 2 * width + 9 + data_register, memories=(MemoryUse("ram", width, depth),))


# ---- the same two kernels on packed bits (bipolar maps; never padded: ±1 has no 0)
@njit(cache=True, parallel=True)
def _im2col_bits(x, c, kh, kw, sh, sw, out):
    """x (B, H, W, words) with c bits per pixel; out (B, OH, OW, out words) zeroed: tap t's c bits
    land at bit t·c of the window (little-endian words, as hwnorm.bnn packs)."""
    b, h, w, nw = x.shape
    oh, ow = out.shape[1], out.shape[2]
    for i in prange(b):
        for oy in range(oh):
            for ox in range(ow):
                tap = 0
                for ky in range(kh):
                    for kx in range(kw):
                        base = tap * c
                        for j in range(nw):
                            word = x[i, oy * sh + ky, ox * sw + kx, j]
                            o = base + 64 * j
                            s = o & 63
                            out[i, oy, ox, o >> 6] |= word << np.uint64(s)
                            if s and (o >> 6) + 1 < out.shape[3]:
                                out[i, oy, ox, (o >> 6) + 1] |= word >> np.uint64(64 - s)
                        tap += 1


def im2col_bits(words: np.ndarray, channels: int, g: Geometry) -> np.ndarray:
    """Windows of packed bit maps ``words`` (B, H, W, ⌈C/64⌉) → packed rows (B·OH·OW, ⌈taps·C/64⌉)."""
    out = np.zeros((words.shape[0], g.out_height, g.out_width, words_for(g.taps * channels)), np.uint64)
    _im2col_bits(np.ascontiguousarray(words), channels, g.kernel[0], g.kernel[1], g.stride[0], g.stride[1], out)
    return out.reshape(-1, out.shape[3])


@njit(cache=True, parallel=True)
def _maxpool_bits(x, kh, kw, sh, sw, top, left, out):
    b, h, w, nw = x.shape
    oh, ow = out.shape[1], out.shape[2]
    for i in prange(b):
        for oy in range(oh):
            for ox in range(ow):
                for ky in range(kh):
                    y = oy * sh - top + ky
                    if y < 0 or y >= h:
                        continue
                    for kx in range(kw):
                        xx = ox * sw - left + kx
                        if xx < 0 or xx >= w:
                            continue
                        for j in range(nw):
                            out[i, oy, ox, j] |= x[i, y, xx, j]


def maxpool_bits(words: np.ndarray, g: Geometry) -> np.ndarray:
    """Max-pool of packed bit maps (B, H, W, words): bit 1 is +1, so max is OR; padding is skipped."""
    out = np.zeros((words.shape[0], g.out_height, g.out_width, words.shape[3]), np.uint64)
    _maxpool_bits(np.ascontiguousarray(words), g.kernel[0], g.kernel[1], g.stride[0], g.stride[1], g.pads[0],
                  g.pads[1], out)
    return out.reshape(-1, words.shape[3])
