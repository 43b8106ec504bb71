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

__all__ = ["Geometry", "im2col", "maxpool"]


def _pair(value, what: str) -> tuple[int, int]:
    v = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(v) != 2 or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in v):
        raise ValueError(f"{what} must be two whole numbers, got {value!r}")
    return int(v[0]), int(v[1])


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
