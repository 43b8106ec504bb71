"""Vendored model and data set (see README.md in this folder for origin and licenses)."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources
from pathlib import Path

import numpy as np

SHA256 = {
    "models/TFC_1W1A.onnx": "e875070d9b8af1ff55923ab03c7ed9dd8787d387cb3274872fe5fc6a2905b2db",
    "models/TFC_2W2A.onnx": "db8de1cba8f808b23a4993ceb770910d99cc217186c663a36771b55cfcf69a8c",
    "models/CNV_MNIST_1W1A.onnx": "8b8d32ec5797e51c91b19a5a9429afa5786a4cfdadc4bc9ed94035751403c694",
    "models/CNV_MNIST_2W2A.onnx": "5e80505f16c4f4ea82ecd3c498c8dd9998645d1c134eabe353cdca53d5039342",
    "models/MOBILENET_MNIST_W4A4.onnx": "b3a507977bd9a9e82a65a57f3252f9f448254d639080e33ece4f203a1597bb41",
    "models/RESNET_MNIST_W4A4.onnx": "7a86a5ad868a2eff4cfd8dfa70db76dec8b75575fd44def5e88382afeb421464",
    "models/CNV_CIFAR_1W1A.onnx.gz": "f3e5c38111809104efdef1e2e0dde04c4727b1c5a8c7ef1ea03e22ff9d1833bb",
    "models/CNV_CIFAR_2W2A.onnx.gz": "d190badfe14c3b63dba22de27aca81dff14abdb14c3493852c957705dbb70ecf",
    "models/calibration/skip_concat_pool.onnx": "068e83ab12a832e23b25967f77ea70e9e832911657d715289dc0eddebfe7e1f8",
    "mnist/t10k-images-idx3-ubyte.gz": "167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b",
    "mnist/t10k-labels-idx1-ubyte.gz": "fc607395669ec21321ea83e4b82c0544b7e8e63ff5b34337c06bc0a17cc0da3c",
}


def path(name: str) -> Path:
    """Filesystem path of a vendored file, e.g. ``path("models/TFC_1W1A.onnx")``."""
    if name not in SHA256:
        raise ValueError(f"unknown vendored file {name!r}; available: {', '.join(sorted(SHA256))}")
    return Path(str(resources.files(__name__).joinpath(name)))


# Which of the 10,000 MNIST test images a run uses. "held-out": the 2,000 whose index is a multiple
# of 5 — the models hwnorm trains itself (tests/models/make_*.py; MNIST's test set is the only data
# on these machines) learned from the other 8,000, so their accuracy is only meaningful on these.
TEST_IMAGE_SETS = ("all", "held-out")


def mnist_ids(selection: str = "all") -> np.ndarray:
    """Indices of the MNIST test images in ``selection`` (one of :data:`TEST_IMAGE_SETS`)."""
    if selection == "all":
        return np.arange(10_000)
    if selection == "held-out":
        return np.arange(0, 10_000, 5)
    raise ValueError(f"unknown test image set {selection!r}; allowed: {', '.join(TEST_IMAGE_SETS)}")


def verify(name: str) -> bool:
    return hashlib.sha256(path(name).read_bytes()).hexdigest() == SHA256[name]


def _read_idx(p: Path) -> np.ndarray:
    """Parse a gzip IDX file (big-endian header: magic 0x0000 08 NDIM, then NDIM uint32 sizes)."""
    raw = gzip.decompress(p.read_bytes())
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{p.name}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{p.name}: {data.size} bytes of data, header says {tuple(dims)}")
    return data.reshape(tuple(dims))


def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test images (uint8, 10000×28×28) and labels (uint8)."""
    images = _read_idx(path("mnist/t10k-images-idx3-ubyte.gz"))
    labels = _read_idx(path("mnist/t10k-labels-idx1-ubyte.gz"))
    return images, labels


MNIST_PIXELS = 28 * 28


def takes_mnist(net) -> bool:
    """Whether a network reads MNIST images: 784 inputs that take every 8-bit pixel value — the
    one rule that picks the vendored test images over seeded random inputs of its input range
    (energy, co-simulation jobs, accuracy). A 784-input network of another input type (a BIPOLAR
    annotated input) reads what its own preprocessing made, which hwnorm does not know."""
    lo, hi = net.in_range
    return net.in_features == MNIST_PIXELS and lo <= 0 and hi >= 255


def network_inputs(net, images: int) -> np.ndarray:
    """What a network's energy estimate runs on: its first ``images`` MNIST test images when it
    takes them, else seeded random integers of its input range (seed 0), as int64 rows."""
    if takes_mnist(net):
        return mnist_test()[0][:images].reshape(-1, net.in_features).astype(np.int64)
    lo, hi = net.in_range
    return np.random.default_rng(0).integers(lo, hi + 1, (images, net.in_features))
