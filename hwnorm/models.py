"""Where networks come from: the vendored default model, a QONNX file, or a saved IR JSON."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_MODEL", "load_network"]

DEFAULT_MODEL = "TFC_1W1A"


def load_network(source: str | Path | None = None, score_bits: int | None = None):
    """``(Network, label)``: the vendored TFC_1W1A for ``None``, else an IR JSON or a QONNX model.
    ``score_bits`` sets the width of an imported model's class scores (default 16)."""
    from hwnorm import data
    from hwnorm.ir import Network
    from hwnorm.io import load_json
    from hwnorm.qonnx import import_qonnx

    widths = {} if score_bits is None else {"score_bits": score_bits}
    if source is None:
        return (import_qonnx(data.path("models/TFC_1W1A.onnx"), **widths),
                f"embedded default: {DEFAULT_MODEL} (vendored)")
    source = str(source)
    if source.endswith(".json"):
        if widths:
            raise ValueError(f"{source}: score_bits applies to an ONNX model; an IR JSON has its widths already")
        doc = load_json(source)
        try:
            return Network.from_dict(doc), source
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None
    return import_qonnx(source, **widths), source
