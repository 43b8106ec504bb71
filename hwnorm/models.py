"""Where networks come from: a vendored model by name, a QONNX file, or a saved IR JSON."""

from __future__ import annotations

from pathlib import Path

from hwnorm import data
from hwnorm.io import load_json
from hwnorm.ir import Network
from hwnorm.qonnx import import_qonnx, interpret

__all__ = ["DEFAULT_MODEL", "VENDORED", "load_network", "import_model", "model_path", "Model", "network_lines"]

DEFAULT_MODEL = "TFC_1W1A"
VENDORED = {"TFC_1W1A": "models/TFC_1W1A.onnx", "TFC_2W2A": "models/TFC_2W2A.onnx",
            "CNV_MNIST_1W1A": "models/CNV_MNIST_1W1A.onnx", "CNV_MNIST_2W2A": "models/CNV_MNIST_2W2A.onnx",
            "MOBILENET_MNIST_W4A4": "models/MOBILENET_MNIST_W4A4.onnx", "RESNET_MNIST_W4A4": "models/RESNET_MNIST_W4A4.onnx",
            "CNV_CIFAR_1W1A": "models/CNV_CIFAR_1W1A.onnx.gz", "CNV_CIFAR_2W2A": "models/CNV_CIFAR_2W2A.onnx.gz"}


def model_path(source: str | Path | None) -> Path:
    """The file of a model: a vendored model's by name (None: the default), else ``source`` itself."""
    name = DEFAULT_MODEL if source is None else str(source)
    return data.path(VENDORED[name]) if name in VENDORED else Path(source)


def import_model(source: str | Path | None = None, score_bits: int | None = None, activations=None):
    """The :class:`hwnorm.qonnx.Imported` of a vendored model (by name; None: the default) or a
    QONNX file: the network, its BN sites and activation sites."""
    options = {k: v for k, v in (("score_bits", score_bits), ("activations", activations)) if v is not None}
    return interpret(model_path(source), **options)


def load_network(source: str | Path | None = None, score_bits: int | None = None, activations=None):
    """``(Network, label)`` of the vendored default (``None``), a vendored model by name, an IR JSON or
    a QONNX model. ``score_bits`` sets the width of an imported model's class scores (default 16);
    ``activations`` how its quantizers after accumulators are realized (see ``hwnorm.qonnx.interpret``)."""
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


def network_lines(net, label: str) -> list[str]:
    """What ``hwnorm import`` prints: the network's layers, and how close the inputs came to a sign decision."""
    lines = [f"imported {label} → {len(net.layers)} integer layers (spec {net.spec_hash})",
             f"{'layer':<26}{'kind':<16}{'in':>6}{'out':>6}  detail"]
    for row in net.summary():
        detail = ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("name", "kind", "in", "out"))
        lines.append(f"{row['name'][:25]:<26}{row['kind']:<16}{row['in']:>6}{row['out']:>6}  {detail}")
    for node, margin in net.meta.get("threshold_margins", {}).items():
        lines.append(f"  {node}: nearest input is {margin:.3g} from its sign decision (decided exactly)")
    return lines


class Model:
    """A model file and its score width, imported once per activation realization: the flow's first
    product, which every later stage that needs a network (the plan, the comparison of both
    realizations, their costs in the report) asks instead of importing the file again.

    ``source`` is a vendored model's name, an ONNX path or an IR JSON path (imported already:
    it has one realization)."""

    def __init__(self, source: str | Path | None = None, score_bits: int | None = None):
        self.source, self.score_bits = source, score_bits
        self._imported: dict = {}
        self._ir_network = None

    @property
    def is_ir(self) -> bool:
        return str(self.source).endswith(".json")

    def imported(self, activations="thresholds"):
        """The :class:`hwnorm.qonnx.Imported` with ``activations`` realized (see :func:`import_model`)."""
        if self.is_ir:
            raise ValueError(f"{self.source}: activations apply to an ONNX model; an IR JSON is imported already")
        key = _realization_key(activations)
        if key not in self._imported:
            self._imported[key] = import_model(self.source, self.score_bits, activations)
        return self._imported[key]

    def network(self, activations=None):
        """The network (``activations`` None: the model's own, thresholds for an ONNX model)."""
        if self.is_ir:
            if activations is not None:
                self.imported(activations)  # the error
            if self._ir_network is None:
                self._ir_network = load_network(self.source, self.score_bits)[0]
            return self._ir_network
        return self.imported("thresholds" if activations is None else activations).network


def _realization_key(activations) -> str:
    """One key per distinct realization: a table whose every layer keeps thresholds is ``thresholds``."""
    if isinstance(activations, dict):
        if all(how == "thresholds" for how in activations.values()):
            return "thresholds"
        return repr(sorted(activations.items()))
    return repr(activations)
