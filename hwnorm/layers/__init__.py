"""Layer kinds: one module per kind, one registry, one name per kind everywhere.

A layer kind is a frozen spec class (integers only) that also carries every view of itself,
FINN ``HWCustomOp``-style. Its ``kind`` name is the same in the IR JSON (``"kind"``), in design
TOML files (``kind = "mvu"``), in the manifest, the reports, the resource-cost keys and the
messages. Everything outside this package asks the registry (:func:`kind`, :func:`names`,
:func:`layer_from_dict`) or calls the layer's own methods — never ``isinstance`` on a layer class,
never a switch on the kind string.

The built-in kinds::

    thresholding.py   InputThreshold  elementwise multi-threshold of integers (e.g. pixel binarization)
    mvu.py            MVULayer        matrix-vector(-threshold) unit: ±1 or integer weights and inputs
    qbn.py            QuantBN         the exact quantized batch-norm (A·x + B) >> k
    window.py         SlidingWindow   a convolution's sliding-window input generator (line buffer)
    maxpool.py        MaxPool         max over windows of a feature map (OR for bits)
    add.py            Add             the weighted sum of two integer streams (a residual join)
    avgpool.py        AvgPool         window sums of a feature map (the average's division folds
                                      into the quantizer after it)
    depthwise.py      Depthwise       a depthwise convolution's per-channel dot products over windows
    concat.py         Concat          several streams side by side along the channels

Spatial layers stream feature maps channels last (``spatial.py``); the per-vector kinds take an
optional ``spatial = (H, W)`` and then process one vector per pixel (a convolution is a window
followed by an mvu over the ``OH · OW`` windows).

What a kind defines (the interface is :class:`hwnorm.layers.base.Layer`, with its docstrings):

    spec fields + validation     a frozen dataclass of ints and integer arrays
    tensors                      in_shape / out_shape (channels last), in_type / out_type
                                 (hwnorm.datatypes), in_range / out_range, vectors per image
    golden model                 run(x) on a batch (Numba kernels)
    JSON                         to_dict() / from_dict(d)
    folding                      folding_keys, foldings() (every legal one, cheapest first),
                                 auto_fold(prev_lanes, next_layer), preferred_in_lanes()
    hardware                     block(fold) → an hwnorm.blocks.Block: cycle model, resource
                                 inventory, the features its resource costs are fitted on
                                 (cost_features), and component() → the Amaranth component (hwnorm/hdl/)
    co-simulation                stimulus(n, rng): input vectors, corners first; the job is the
                                 golden output of run() on them
    energy                       energy_actions(fold) (action → count per inference, names from
                                 hwnorm.estimate.energy.ACTIONS), stored_bits() (what the weight
                                 buffer holds), has_weight_memory, mac_count()
    manifest                     describe(block): the design parameters of a one-layer top

How to add a layer kind
-----------------------
1. Write ``hwnorm/layers/<kind>.py``: a ``@register``-ed subclass of ``Layer`` with a unique
   ``kind`` name, and its ``Block`` subclass (cycle model, inventory, ``component()``).
2. Put its Amaranth component in a module of ``hwnorm/hdl/`` (kinds that share datapath parts
   share a module: ``mvu.py`` holds the MVU and the thresholding unit; ports ``i`` / ``o`` as
   ``amaranth.lib.stream`` signatures, built from the block).
3. Import the module in this file, so the kind registers when hwnorm loads (it registers
   with :mod:`hwnorm.layers.registry`, which sits below the kinds).
4. Timing (optional): a block reads ``self.timing`` (:mod:`hwnorm.timing`) to place registers for
   a design's target clock — ``timing.cuts`` / ``adder_tree_cuts`` on its chains of operations,
   ``memory_ranks`` after memory reads — counts them in its cycle model (``depth``) and builds
   them with ``hwnorm.hdl.common.Retime``. A block that ignores it keeps its own pipeline.
5. Tests: ``tests/test_layers.py`` shows a kind defined in a test file alone going through the
   golden model, Verilog, co-simulation on both simulators and every estimate. Until
   ``hwnorm estimate --calibrate`` has synthesized blocks of the new kind, its resources are
   costed with the generic (all-kinds) fit and say so.

Nothing else changes: IR JSON, design files (``kind = "<kind>"``, ``layer``, the folding keys),
generate, verify, estimate, report, flow, sweep and config all find the kind here.
"""

from __future__ import annotations

from hwnorm.layers.base import Layer
from hwnorm.layers.registry import (folding_keys, kind, layer_from_dict, names, register,
                                   unregister)

# The built-in kinds register themselves on import.
# (in this order: it is the order of the kinds in messages and listings)
from hwnorm.layers import thresholding, mvu, qbn, window, maxpool, add, avgpool, depthwise, concat  # noqa: E402,F401,I001

__all__ = ["Layer", "register", "unregister", "kind", "names", "layer_from_dict", "folding_keys"]
