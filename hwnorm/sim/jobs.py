"""Co-simulation jobs: stimulus and golden output beats for a block, as the testbench reads them.

A job is plain JSON: packed input beats, packed expected output beats, the output lane format
(for lane-wise mismatch reports), the randomization seed and probabilities. The golden models
run here, in the ordinary Python process; the testbench in the simulator only drives and compares.
"""

from __future__ import annotations

import numpy as np

from hwnorm import bnn
from hwnorm.hdl.common import lane_format
from hwnorm.ir import Bits

__all__ = ["port_format", "pack_rows", "make_job", "first_vectors", "lanes_job", "bn_job", "mvu_job", "thresholding_job",
           "network_job", "stt_encoder_job", "stt_decoder_job"]


def port_format(component, port: str) -> tuple[int, int, bool]:
    """(lanes, element width, element signed) of a stream port's payload."""
    return lane_format(getattr(component, port).payload.shape())


def pack_rows(rows, width: int) -> list[int]:
    """Beats (rows of lane values, two's complement) → one integer per beat, lane 0 lowest."""
    rows = np.asarray(rows, dtype=object)
    mask = (1 << width) - 1
    return [sum((int(v) & mask) << (width * k) for k, v in enumerate(row)) for row in rows]


def make_job(component, block: str, in_beats: list[int], out_beats: list[int], vectors: int, seed: int,
             p_valid: float = 0.8, p_ready: float = 0.7, vector_ids=None, vector_label: str = "vector",
             channel_label: str = "channel") -> dict:
    """A testbench job from packed input and expected output beats."""
    out_lanes, out_width, out_signed = port_format(component, "o")
    in_lanes, in_width, _ = port_format(component, "i")
    return {
        "block": block, "seed": int(seed), "p_valid": p_valid, "p_ready": p_ready, "vectors": int(vectors),
        "inputs": in_beats, "expected": out_beats, "in_bits": in_lanes * in_width,
        "out_lanes": out_lanes, "out_width": out_width, "out_signed": out_signed,
        "out_beats_per_vector": len(out_beats) // max(vectors, 1),
        "vector_ids": list(range(vectors)) if vector_ids is None else [int(v) for v in vector_ids],
        "vector_label": vector_label, "channel_label": channel_label,
    }


def first_vectors(job: dict, n: int, **changes) -> dict:
    """The job cut to its first ``n`` vectors (e.g. a short full-rate timing run)."""
    n = min(n, job["vectors"])
    per_in = len(job["inputs"]) // job["vectors"]
    per_out = job["out_beats_per_vector"]
    return {**job, "vectors": n, "inputs": job["inputs"][:n * per_in], "expected": job["expected"][:n * per_out],
            "vector_ids": job["vector_ids"][:n], **changes}


def lanes_job(component, block: str, in_rows, out_rows, vectors: int, seed: int, **kw) -> dict:
    """A job from lane values: ``in_rows`` (beats, in lanes), ``out_rows`` (beats, out lanes)."""
    in_lanes, in_width, _ = port_format(component, "i")
    out_lanes, out_width, _ = port_format(component, "o")
    return make_job(component, block, pack_rows(np.asarray(in_rows).reshape(-1, in_lanes), in_width),
                    pack_rows(np.asarray(out_rows).reshape(-1, out_lanes), out_width), vectors, seed, **kw)


def bn_job(component, x: np.ndarray, seed: int, **kw) -> dict:
    """A ``BNRequant``: ``x`` (vectors, channels) integers."""
    spec = component.spec
    return lanes_job(component, f"BNRequant {spec.name}", x, spec.apply(x), len(x), seed, **kw)


def mvu_job(component, x: np.ndarray, seed: int, **kw) -> dict:
    """An ``MVU``: ``x`` (vectors, in_features) of 0/1 bits (binary) or integers."""
    layer = component.layer
    act = Bits(bnn.pack_bits(x), layer.in_features) if layer.in_bits == 1 else x
    out = layer.run(act)
    out = out.unpack() if isinstance(out, Bits) else out
    return lanes_job(component, f"MVU {layer.name} (PE {component.pe}, SIMD {component.simd})", x, out, len(x),
                     seed, channel_label="output row", **kw)


def thresholding_job(component, x: np.ndarray, seed: int, **kw) -> dict:
    """A ``Thresholding``: ``x`` (vectors, channels) integers."""
    layer = component.layer
    out = layer.run(x)
    out = out.unpack() if isinstance(out, Bits) else out
    return lanes_job(component, f"Thresholding {layer.name}", x, out, len(x), seed, **kw)


def network_job(component, x: np.ndarray, seed: int, image_ids=None, **kw) -> dict:
    """A ``NetworkTop``: ``x`` (images, in_features) integers; argmax classes or raw scores."""
    net = component.net
    expected = net.predict(x)[:, None] if component.output == "argmax" else net.run(x)
    label = "class" if component.output == "argmax" else f"{net.layers[-1].name} channel"
    return lanes_job(component, f"network {net.name} ({component.output})", x, expected, len(x), seed,
                     vector_ids=image_ids, vector_label="image", channel_label=label, **kw)


def stt_encoder_job(component, words: np.ndarray, seed: int, **kw) -> dict:
    """An ``STTEncoder``: ``words`` uint16 FP16 patterns, a multiple of the block size."""
    spec = component.spec
    blocks = words.reshape(-1, spec.block_words)
    cells = spec.encode(words.view(np.float16))
    return make_job(component, f"STTEncoder {spec.label}", pack_rows(blocks, 16), pack_rows(cells, 2),
                    len(blocks), seed, channel_label="block", **kw)


def stt_decoder_job(component, cells: np.ndarray, seed: int, **kw) -> dict:
    """An ``STTDecoder``: ``cells`` (blocks, cells_per_block) 2-bit states; words and status out."""
    spec = component.spec
    words, status = spec.decode(cells)
    w = words.view(np.uint16).reshape(len(cells), spec.block_words)
    expected = [wp | (int(s) << (16 * spec.block_words)) for wp, s in zip(pack_rows(w, 16), status)]
    return make_job(component, f"STTDecoder {spec.label}", pack_rows(cells, 2), expected, len(cells), seed,
                    channel_label="block", **kw)
