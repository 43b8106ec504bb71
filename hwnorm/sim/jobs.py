"""Co-simulation jobs: stimulus and golden output beats for a block, as the testbench reads them.

A job (:class:`hwnorm.sim.job.Job`) holds packed input beats, packed expected output beats, the
output lane format (for lane-wise mismatch reports), the randomization seed and probabilities.
The golden models run here, in the ordinary Python process; the testbench in the simulator only
drives and compares.
"""

from __future__ import annotations

import numpy as np

from hwnorm.bnn import Bits
from hwnorm.sim.job import Job

__all__ = ["Job", "port_format", "pack_rows", "make_job", "lanes_job", "layer_job", "network_job",
           "stt_encoder_job", "stt_decoder_job"]


def port_format(block, port: str) -> tuple[int, int, bool]:
    """(lanes, element width, element signed) of a block's input (``"i"``) or output (``"o"``) stream."""
    element, lanes = (block.in_type, block.in_lanes) if port == "i" else (block.out_type, block.out_lanes)
    return lanes, element.width, element.signed


def pack_rows(rows, width: int) -> list[int]:
    """Beats (rows of lane values, two's complement) → one integer per beat, lane 0 lowest."""
    rows = np.asarray(rows, dtype=object)
    mask = (1 << width) - 1
    return [sum((int(v) & mask) << (width * k) for k, v in enumerate(row)) for row in rows]


def make_job(block, label: str, in_beats: list[int], out_beats: list[int], vectors: int, seed: int,
             p_valid: float = 0.8, p_ready: float = 0.7, vector_ids=None, vector_label: str = "vector",
             channel_label: str = "channel", **extra) -> Job:
    """A testbench job from packed input and expected output beats of a block's streams."""
    out_lanes, out_width, out_signed = port_format(block, "o")
    in_lanes, in_width, _ = port_format(block, "i")
    return Job(block=label, seed=int(seed), p_valid=p_valid, p_ready=p_ready, vectors=int(vectors),
               inputs=in_beats, expected=out_beats, in_bits=in_lanes * in_width,
               out_lanes=out_lanes, out_width=out_width, out_signed=out_signed,
               out_beats_per_vector=len(out_beats) // max(vectors, 1),
               vector_ids=list(range(vectors)) if vector_ids is None else [int(v) for v in vector_ids],
               vector_label=vector_label, channel_label=channel_label, **extra)


def lanes_job(block, label: str, in_rows, out_rows, vectors: int, seed: int, **kw) -> Job:
    """A job from lane values: ``in_rows`` (beats, in lanes), ``out_rows`` (beats, out lanes)."""
    in_lanes, in_width, _ = port_format(block, "i")
    out_lanes, out_width, _ = port_format(block, "o")
    return make_job(block, label, pack_rows(np.asarray(in_rows).reshape(-1, in_lanes), in_width),
                    pack_rows(np.asarray(out_rows).reshape(-1, out_lanes), out_width), vectors, seed, **kw)


def layer_job(block, x: np.ndarray, seed: int, **kw) -> Job:
    """A one-layer block (any layer kind): ``x`` (vectors, in_features) input values as stored
    (bits 0 / 1 for a bipolar input; whole maps for a spatial layer); the expected beats are the
    layer's golden output."""
    layer = block.layer
    out = layer.run(layer.golden_input(x))
    out = out.unpack() if isinstance(out, Bits) else out
    fold = ", ".join(f"{k.upper()} {v}" for k, v in block.fold.items())
    units = len(x) // layer.unit_vectors  # vectors, or whole maps for a layer that slides a window
    return lanes_job(block, f"{layer.kind} {layer.name} ({fold})", x, out, units, seed,
                     channel_label=layer.channel_label, vector_label="vector" if layer.unit_vectors == 1 else "map",
                     **kw)


def network_job(block, x: np.ndarray, seed: int, image_ids=None, **kw) -> Job:
    """A network (:class:`hwnorm.dataflow.NetworkBlock`): ``x`` (images, in_features) integers;
    argmax classes or raw scores."""
    net, argmax = block.net, block.output == "argmax"
    expected = net.predict(x)[:, None] if argmax else net.run(x)
    label = "class" if argmax else f"{net.layers[-1].name} channel"
    images = {} if image_ids is None else {"image_ids": [int(i) for i in image_ids]}  # MNIST test images
    return lanes_job(block, f"network {net.name} ({block.output})", x, expected, len(x), seed,
                     vector_ids=image_ids, vector_label="image", channel_label=label, argmax_output=argmax, **images,
                     **kw)


def stt_encoder_job(block, words: np.ndarray, seed: int, **kw) -> Job:
    """An STT encoder: ``words`` uint16 FP16 patterns, a multiple of the block size."""
    spec = block.spec
    blocks = words.reshape(-1, spec.block_words)
    cells = spec.encode(words.view(np.float16))
    return make_job(block, f"stt_encoder {spec.label}", pack_rows(blocks, 16), pack_rows(cells, 2),
                    len(blocks), seed, channel_label="block", **kw)


def stt_decoder_job(block, cells: np.ndarray, seed: int, **kw) -> Job:
    """An STT decoder: ``cells`` (blocks, cells_per_block) 2-bit states; words and status out."""
    spec = block.spec
    words, status = spec.decode(cells)
    w = words.view(np.uint16).reshape(len(cells), spec.block_words)
    expected = [wp | (int(s) << (16 * spec.block_words)) for wp, s in zip(pack_rows(w, 16), status)]
    return make_job(block, f"stt_decoder {spec.label}", pack_rows(cells, 2), expected, len(cells), seed,
                    channel_label="block", **kw)
