"""Where networks come from: the vendored default model, a QONNX file, or a saved IR JSON."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_MODEL", "load_network"]

DEFAULT_MODEL = "TFC_1W1A"


def load_network(source: str | Path | None = None):
    """``(Network, label)``: the vendored TFC_1W1A for ``None``, else an IR JSON or a QONNX model."""
    from hwnorm import data
    from hwnorm.ir import Network
    from hwnorm.io import load_json
    from hwnorm.qonnx import import_qonnx

    if source is None:
        return import_qonnx(data.path("models/TFC_1W1A.onnx")), f"embedded default: {DEFAULT_MODEL} (vendored)"
    source = str(source)
    if source.endswith(".json"):
        doc = load_json(source)
        try:
            return Network.from_dict(doc), source
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None
    return import_qonnx(source), source
