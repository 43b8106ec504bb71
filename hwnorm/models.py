"""Where networks come from: a vendored model by name, a QONNX file, or a saved IR JSON."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_MODEL", "VENDORED", "load_network", "import_model", "model_path"]

DEFAULT_MODEL = "TFC_1W1A"
VENDORED = {"TFC_1W1A": "models/TFC_1W1A.onnx", "TFC_2W2A": "models/TFC_2W2A.onnx",
            "CNV_MNIST_1W1A": "models/CNV_MNIST_1W1A.onnx", "CNV_MNIST_2W2A": "models/CNV_MNIST_2W2A.onnx"}


def model_path(source: str | Path | None) -> Path:
    """The file of a model: a vendored model's by name (None: the default), else ``source`` itself."""
    from hwnorm import data

    name = DEFAULT_MODEL if source is None else str(source)
    return data.path(VENDORED[name]) if name in VENDORED else Path(source)


def import_model(source: str | Path | None = None, score_bits: int | None = None, activations=None):
    """The :class:`hwnorm.qonnx.Imported` of a vendored model (by name; None: the default) or a
    QONNX file: the network, its BN sites and activation sites."""
    from hwnorm.qonnx import interpret

    options = {k: v for k, v in (("score_bits", score_bits), ("activations", activations)) if v is not None}
    return interpret(model_path(source), **options)


def load_network(source: str | Path | None = None, score_bits: int | None = None, activations=None):
    """``(Network, label)`` of the vendored default (``None``), a vendored model by name, an IR JSON or
    a QONNX model. ``score_bits`` sets the width of an imported model's class scores (default 16);
    ``activations`` how its quantizers after accumulators are realized (see ``hwnorm.qonnx.interpret``)."""
    from hwnorm.ir import Network
    from hwnorm.io import load_json
    from hwnorm.qonnx import import_qonnx

    options = {k: v for k, v in (("score_bits", score_bits), ("activations", activations)) if v is not None}
    name = DEFAULT_MODEL if source is None else str(source)
    if name in VENDORED:
        label = f"embedded default: {name} (vendored)" if source is None else f"{name} (vendored)"
        return import_qonnx(model_path(name), **options), label
    if name.endswith(".json"):
        if options:
            raise ValueError(f"{name}: {', '.join(options)} apply to an ONNX model; an IR JSON is imported already")
        doc = load_json(name)
        try:
            return Network.from_dict(doc), name
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    return import_qonnx(name, **options), name
