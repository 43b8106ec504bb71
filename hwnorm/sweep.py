"""``hwnorm sweep``: a design-space or fault-injection sweep, on local processes or a Dask cluster.

A sweep file (TOML) names its kind, the base settings and the axes; every combination of the
axes' values is one point::

    kind = "design"                # design | faults
    [base]                         # design: any `hwnorm flow` config key (see hwnorm/config.py)
    target = "ecp5"
    [axes]                         # design: throughput (images/s), lut_budget, clock_mhz, target, device, codec
    throughput = [1e5, 3e5, 1e6, 3e6]
    clock_mhz = [100, 150]

    kind = "faults"                # the FP16 MLP with its weights in the MLC STT-RAM buffer
    [base]                         # faults: cells (a cell table), and codec / ber / seed when not an axis
    cells = "default"
    [axes]                         # codec × bit-error rate × seed (as `hwnorm stt`)
    codec = ["none", "backup+rearrange"]
    ber = [1e-3, 1e-2]
    seed = [0, 1, 2]

    kind = "weights"               # a QNN's integer weight memories as MLC STT-RAM cells under faults
    [base]                         # weights: cells, test_images ("held-out": the 2,000 hwnorm's training
    images = 1000                  #   scripts leave out, the default; "all": the 10,000), images (≤ the
                                   #   set's size), and model / codec / ber / seed when not an axis
    [axes]                         # model × weight codec × bit-error rate × seed (as `hwnorm stt-weights`)
    model = ["TFC_1W1A", "CNV_MNIST_2W2A"]
    codec = ["none", "remap+backup"]
    ber = [1e-3, 1e-2]
    seed = [0, 1, 2]

Each point is evaluated by a pure function of the point (seeded), so local processes and a Dask
cluster (``--scheduler ADDRESS``) give identical results. Design points report the folding
chosen for them, clocks per image, throughput, the analytic LUT / FF / BRAM / DSP estimate on the
target and the energy per inference; fault points report accuracy, flipped bits and detected
blocks; weights points the golden model of the faulty hardware (its weight memories at the
automatic folding, encoded, hit by a seeded fault map, decoded on read): top-1 on the MNIST test
images beside the fault-free model's, and the bits flipped (the RTL check of the same faults
is ``hwnorm stt-weights --rtl``). Output: ``sweep.json``, ``sweep.csv``, ``sweep.md`` and a plot (``sweep_pareto.png`` —
throughput against LUTs, energy as colour, the Pareto front joined — or ``sweep_faults.png``).
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
from pathlib import Path

from hwnorm import data
from hwnorm.dataflow import check_folding
from hwnorm.defaults import DEFAULT_CELLS
from hwnorm.models import DEFAULT_MODEL, VENDORED, load_network
from hwnorm.stt.intcodec import INT_CODECS
from hwnorm.stt.store import WeightStore
from hwnorm.stt.weights_report import fault_accuracy, held_out

from hwnorm.io import load_toml, printable, write_atomic_set
from hwnorm.config import config_from_dict
from hwnorm.estimate.design import estimate_design
from hwnorm.estimate.energy import load_energy_table
from hwnorm.flow import import_stage, plan_stage
from hwnorm.stt import load_table, make_codec
from hwnorm.stt.buffer import inject
from hwnorm.stt.codecs import CODECS
from hwnorm.stt.mlp import split, FP16MLP

__all__ = ["load_sweep", "points", "evaluate", "run_sweep", "pareto", "write_sweep", "KINDS", "DESIGN_AXES",
           "WEIGHT_AXES"]

KINDS = ("design", "faults", "weights")
DESIGN_AXES = {"throughput": ("auto_folding", "throughput"), "lut_budget": ("auto_folding", "lut_budget"),
               "clock_mhz": (None, "clock_mhz"), "target": (None, "target"), "device": (None, "device"),
               "codec": ("stt", "codec")}
FAULT_AXES = ("codec", "ber", "seed")
FAULT_BASE = ("cells", *FAULT_AXES)
WEIGHT_AXES = ("model", "codec", "ber", "seed")
WEIGHT_BASE = ("cells", "images", "test_images", *WEIGHT_AXES)
WEIGHT_IMAGES = 1000  # MNIST test images per point unless the base says otherwise
WEIGHT_TEST_IMAGES = "held-out"  # the images hwnorm's own training scripts leave out (fair to the CNVs)
AXES = {"design": tuple(DESIGN_AXES), "faults": FAULT_AXES, "weights": WEIGHT_AXES}
BASES = {"faults": FAULT_BASE, "weights": WEIGHT_BASE}


def load_sweep(path) -> dict:
    """The validated sweep of a TOML file: {kind, base, axes, origin, base_dir}."""
    path = Path(path)
    doc = load_toml(path)
    unknown = set(doc) - {"kind", "base", "axes"}
    if unknown:
        raise ValueError(f"{path}: unknown key {sorted(unknown)[0]!r}; allowed: axes, base, kind")
    kind = doc.get("kind", "design")
    if kind not in KINDS:
        raise ValueError(f"{path}: kind = {kind!r} is not allowed; allowed: {', '.join(KINDS)}")
    base, axes = doc.get("base", {}), doc.get("axes")
    if not isinstance(base, dict):
        raise ValueError(f"{path}: [base] must be a table of flow config keys")
    if kind in BASES:  # a design's base is checked as a flow config, point by point, below
        for key in base:
            if key not in BASES[kind]:
                raise ValueError(f"{path}: unknown key base.{key} for a {kind} sweep; allowed: "
                                 f"{', '.join(BASES[kind])}")
        if "cells" in base:
            if not isinstance(base["cells"], str) or not base["cells"].strip():
                raise ValueError(f"{path}: base.cells must be a cell table name or file, got {base['cells']!r}")
            load_table(base["cells"])  # a file as the flow config reads it: relative to the working folder
    if not isinstance(axes, dict) or not axes:
        raise ValueError(f"{path}: [axes] must name at least one axis with a list of values")
    allowed = AXES[kind]
    for name, values in axes.items():
        if name not in allowed:
            raise ValueError(f"{path}: unknown axis {name!r} for a {kind} sweep; allowed: {', '.join(allowed)}")
        if not isinstance(values, list) or not values:
            raise ValueError(f"{path}: axes.{name} must be a non-empty list of values")
    sweep = {"kind": kind, "base": base, "axes": axes, "origin": str(path), "base_dir": str(path.parent)}
    for point in points(sweep):  # every point must be a valid config / fault scenario before anything runs
        if kind == "design":
            config_from_dict(_design_doc(sweep, point), f"{path} (point {point})", path.parent)
        elif kind == "weights":
            _check_weights_point({**base, **point}, str(path), path.parent)
        else:
            _check_fault_point({**base, **point}, str(path))
    return sweep


def points(sweep: dict) -> list[dict]:
    """Every combination of the axes' values, in a fixed order (the axes as written)."""
    names = list(sweep["axes"])
    return [dict(zip(names, combo)) for combo in itertools.product(*(sweep["axes"][n] for n in names))]


def _design_doc(sweep: dict, point: dict) -> dict:
    doc = json.loads(json.dumps(sweep["base"]))  # a deep copy of plain TOML data
    for axis, value in point.items():
        table, key = DESIGN_AXES[axis]
        (doc.setdefault(table, {}) if table else doc)[key] = value
        if axis == "device" and "target" not in point:  # a part names its family: the base target gives way
            doc.pop("target", None)
    return doc


def _check_fault_point(point: dict, origin: str) -> None:
    codec, ber, seed = point.get("codec", "none"), point.get("ber", 1e-3), point.get("seed", 0)
    if codec not in CODECS:
        raise ValueError(f"{origin}: codec {codec!r} is not allowed; allowed: {', '.join(CODECS)}")
    if isinstance(ber, bool) or not isinstance(ber, (int, float)) or not 0 < ber <= 0.5:
        raise ValueError(f"{origin}: ber must be in (0, 0.5], got {ber!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{origin}: seed must be a non-negative integer, got {seed!r}")


def _weights_model(point: dict, base_dir) -> str:
    """The point's model: a vendored name, or a file relative to the sweep file."""
    model = point.get("model", DEFAULT_MODEL)
    return model if model in VENDORED or Path(model).is_absolute() else str(Path(base_dir) / model)


def _check_weights_point(point: dict, origin: str, base_dir) -> None:
    model, codec = point.get("model", DEFAULT_MODEL), point.get("codec", "none")
    ber, seed, images = point.get("ber", 1e-3), point.get("seed", 0), point.get("images", WEIGHT_IMAGES)
    if not isinstance(model, str) or not (model in VENDORED or Path(_weights_model(point, base_dir)).is_file()):
        raise ValueError(f"{origin}: model {model!r} is neither a vendored model ({', '.join(VENDORED)}) nor a file")
    if codec not in INT_CODECS:
        raise ValueError(f"{origin}: codec {codec!r} is not a weight codec; allowed: {', '.join(INT_CODECS)}")
    if isinstance(ber, bool) or not isinstance(ber, (int, float)) or not 0 <= ber <= 0.5:
        raise ValueError(f"{origin}: ber must be in [0, 0.5], got {ber!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
        raise ValueError(f"{origin}: seed must be an integer in [0, 2^63), got {seed!r}")
    selection = point.get("test_images", WEIGHT_TEST_IMAGES)
    if selection not in data.TEST_IMAGE_SETS:
        raise ValueError(f"{origin}: test_images = {selection!r} is not allowed; allowed: "
                         f"{', '.join(data.TEST_IMAGE_SETS)}")
    size = len(data.mnist_ids(selection))
    if isinstance(images, bool) or not isinstance(images, int) or not 1 <= images <= size:
        raise ValueError(f"{origin}: images must be a whole number in 1..{size} (test_images = "
                         f"{selection!r} has {size} MNIST test images), got {images!r}")
    if "cells" in point:
        if not isinstance(point["cells"], str) or not point["cells"].strip():
            raise ValueError(f"{origin}: cells must be a cell table name or file, got {point['cells']!r}")
        load_table(point["cells"])


# ------------------------------------------------------------------ evaluation (pure, picklable)
def evaluate(task: tuple) -> dict:
    """One point: ``(sweep, point)`` → its figures. A module-level function of plain data, so a
    process pool or a Dask worker can run it."""
    sweep, point = task
    if sweep["kind"] == "design":
        return _design_point(sweep, point)
    if sweep["kind"] == "weights":
        return _weights_point({**sweep["base"], **point}, sweep["base_dir"], point)
    return _fault_point({**sweep["base"], **point})


def _design_point(sweep: dict, point: dict) -> dict:
    config = config_from_dict(_design_doc(sweep, point), sweep["origin"], Path(sweep["base_dir"]))
    plan, how = plan_stage(config, import_stage(config))
    block = plan.block
    est = estimate_design(plan, config.clock_mhz, config.images, load_energy_table(config.energy_table),
                          load_table(config.cells), targets=[config.target], buffer_codec=config.codec)
    cycles, resources, energy = est["cycles"], est["resources"][config.target]["estimate"], est["energy"]
    return {**point, "folding": block.folding, "folding_how": how,
            "clocks_per_image": cycles["design"]["cycles_per_vector"], "latency_clocks": cycles["design"]["latency"],
            "images_per_s": cycles["vectors_per_second"], "target": config.target,
            **({"device": config.device} if config.device else {}),
            "lut": resources["lut"], "ff": resources["ff"], "bram": resources["bram"], "dsp": resources["dsp"],
            "energy_pj": energy["total_pj_sram_buffer"], "energy_stt_buffer_pj": energy["total_pj_stt_buffer"]}


def _fault_point(point: dict) -> dict:
    import numpy as np


    codec, ber, seed = point.get("codec", "none"), float(point.get("ber", 1e-3)), int(point.get("seed", 0))
    table = load_table(point.get("cells"))
    spec = make_codec(codec, table)
    net = FP16MLP.load()
    _, _, ex, ey = split()
    weights = net.flat()
    cells = spec.encode(weights)
    bad, flips = inject(table.at_ber(ber), cells, seed=seed)
    decoded, status = spec.decode(bad, weights.size)
    return {**point, "accuracy": float(net.with_flat(decoded).accuracy(ex, ey)), "bit_flips": int(flips),
            "weights_changed": int(np.count_nonzero(decoded.view(np.uint16) != weights.view(np.uint16))),
            "blocks_detected": int(np.count_nonzero(status == 2))}


@functools.lru_cache(maxsize=4)
def _fault_free(model: str, images: int, selection: str):
    """(network, its automatic folding, held-out images, labels, fault-free top-1), once per
    model in a worker process: every point of a model shares them."""
    net = load_network(model)[0]
    if not data.takes_mnist(net):
        raise ValueError(f"{model}: a weights sweep judges top-1 on MNIST; this model takes {net.in_features} "
                         f"inputs, not {data.MNIST_PIXELS}")
    x, y, _ = held_out(images, selection)
    return net, check_folding(net, None), x, y, float((net.predict(x) == y).mean())


def _weights_point(setting: dict, base_dir, point: dict) -> dict:
    model = _weights_model(setting, base_dir)
    net, folding, x, y, clean = _fault_free(model, int(setting.get("images", WEIGHT_IMAGES)),
                                            setting.get("test_images", WEIGHT_TEST_IMAGES))
    store = WeightStore(setting.get("codec", "none"), setting.get("ber", 1e-3), int(setting.get("seed", 0)),
                        setting.get("cells", DEFAULT_CELLS))
    accuracy, flips = fault_accuracy(net, folding, x, y, store, store.table())
    return {**point, "accuracy": accuracy, "clean_accuracy": clean, "bit_flips": flips, "images": len(x),
            "test_images": setting.get("test_images", WEIGHT_TEST_IMAGES)}


CONNECT_TIMEOUT_S = 10
MAX_HANDSHAKE_BYTES = 1 << 20


def probe_scheduler(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Check that a ``tcp://host:port`` peer speaks first like a Dask scheduler, within ``timeout``.

    Dask's client waits for the scheduler's handshake without a time limit, and reads the first 8
    bytes as the length of what follows: a listener that never answers hangs it, and any other
    service (an HTTP server: "HTTP/1.1" is 3 EiB) makes it allocate that much. A scheduler sends
    its handshake on accept, a frame of a few hundred bytes."""
    import socket
    import struct
    from urllib.parse import urlsplit

    url = urlsplit(address if "://" in address else f"tcp://{address}")
    if url.scheme != "tcp":
        return  # tls:// and others: left to Dask
    try:
        host, port = url.hostname, url.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise ValueError(f"--scheduler {address!r}: expected tcp://HOST:PORT")
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            head = b""
            while len(head) < 8:
                chunk = sock.recv(8 - len(head))
                if not chunk:
                    raise ValueError(f"{address} closed the connection without a Dask handshake")
                head += chunk
    except socket.timeout:
        raise ValueError(f"{address} accepted the connection but sent nothing in {timeout:g} s: "
                         "not a Dask scheduler (or an unresponsive one)") from None
    except OSError as e:
        raise ValueError(f"cannot reach the Dask scheduler at {address}: {e.strerror or e}") from None
    (length,) = struct.unpack("<Q", head)
    if not 0 < length <= MAX_HANDSHAKE_BYTES:
        raise ValueError(f"{address} does not answer like a Dask scheduler (its first message would be "
                         f"{length:,} bytes)")


def run_sweep(sweep: dict, scheduler: str | None = None, workers: int = 2, progress=None) -> list[dict]:
    """Evaluate every point, in point order: on ``workers`` local processes, or on the Dask
    cluster whose scheduler listens at ``scheduler`` (``tcp://host:port``)."""
    tasks = [(sweep, p) for p in points(sweep)]
    results: list = [None] * len(tasks)
    if scheduler:
        try:
            from distributed import Client, as_completed
        except ImportError:
            raise ValueError("--scheduler needs Dask: pip install 'hwnorm[cluster]'") from None
        probe_scheduler(scheduler)
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError) as e:
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
        except Exception as e:  # a peer that answers but not as Dask does
            raise ValueError(f"{scheduler} does not answer like a Dask scheduler ({type(e).__name__})") from None
        with client:
            futures = {client.submit(evaluate, t, pure=False): k for k, t in enumerate(tasks)}
            for done, future in enumerate(as_completed(futures), 1):
                results[futures[future]] = future.result()
                if progress:
                    progress(done, len(tasks))
        return results
    from concurrent.futures import ProcessPoolExecutor, as_completed as local_completed
    import multiprocessing

    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(evaluate, t): k for k, t in enumerate(tasks)}
        for done, future in enumerate(local_completed(futures), 1):
            results[futures[future]] = future.result()
            if progress:
                progress(done, len(tasks))
    return results


# ------------------------------------------------------------------ output
def pareto(rows: list[dict]) -> list[int]:
    """Indices of the rows no other row beats on all of throughput (↑), LUTs (↓) and energy (↓)."""
    def beats(a, b):
        ge = a["images_per_s"] >= b["images_per_s"] and a["lut"] <= b["lut"] and a["energy_pj"] <= b["energy_pj"]
        gt = a["images_per_s"] > b["images_per_s"] or a["lut"] < b["lut"] or a["energy_pj"] < b["energy_pj"]
        return ge and gt
    return [k for k, r in enumerate(rows) if not any(beats(o, r) for o in rows)]


def _columns(kind: str, rows: list[dict]) -> list[str]:
    axes = [k for k in rows[0] if k in AXES[kind] or k == "target"]
    if kind == "design":
        return axes + [c for c in ("clocks_per_image", "images_per_s", "lut", "ff", "bram", "dsp", "energy_pj",
                                   "energy_stt_buffer_pj", "pareto") if c not in axes]
    if kind == "weights":
        return axes + ["accuracy", "clean_accuracy", "bit_flips"]
    return axes + ["accuracy", "bit_flips", "weights_changed", "blocks_detected"]


def _fmt(v) -> str:
    return f"{v:,.4g}" if isinstance(v, float) else str(v)


def write_sweep(sweep: dict, rows: list[dict], out_dir) -> list[str]:
    """The table (JSON, CSV, markdown) and plot of a finished sweep, written as one set."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    kind = sweep["kind"]
    if kind == "design":
        front = set(pareto(rows))
        rows = [{**r, "pareto": k in front} for k, r in enumerate(rows)]
    cols = _columns(kind, rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    md = [f"# hwnorm sweep ({kind}, {len(rows)} points)", "", f"From `{sweep['origin']}`; every figure is also in "
          "`sweep.json` and `sweep.csv`.", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(printable(_fmt(r.get(c, "")), markdown=True) for c in cols) + " |" for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if kind == "design":
        sc = ax.scatter([r["lut"] for r in rows], [r["images_per_s"] for r in rows],
                        c=[r["energy_pj"] for r in rows], cmap="viridis")
        fig.colorbar(sc, label="pJ per inference (SRAM buffer)")
        front, best = [], 0.0  # throughput vs LUTs: each point faster than every cheaper one
        for r in sorted(rows, key=lambda r: (r["lut"], -r["images_per_s"])):
            if r["images_per_s"] > best:
                front.append(r)
                best = r["images_per_s"]
        ax.step([r["lut"] for r in front], [r["images_per_s"] for r in front], "r--", lw=1, where="post",
                label="Pareto front (throughput vs LUTs)")
        marked = [r for r in rows if r["pareto"]]
        ax.scatter([r["lut"] for r in marked], [r["images_per_s"] for r in marked], s=120, facecolors="none",
                   edgecolors="red", label="Pareto-optimal incl. energy")
        ax.set_xlabel(f"LUTs (estimate, {rows[0]['target']})")
        ax.set_ylabel("images per second")
        ax.set_yscale("log")
        ax.legend()
        plot_name = "sweep_pareto.png"
    else:  # accuracy against the bit-error rate, a line per (model and) codec
        curves = dict.fromkeys((r.get("model", ""), r.get("codec", "none")) for r in rows)
        for model, codec in curves:
            mine = [r for r in rows if (r.get("model", ""), r.get("codec", "none")) == (model, codec)]
            bers = sorted({r.get("ber", 1e-3) for r in mine})
            means = [sum(r["accuracy"] for r in mine if r.get("ber", 1e-3) == b) /
                     sum(1 for r in mine if r.get("ber", 1e-3) == b) for b in bers]
            ax.plot(bers, means, "o-", label=f"{printable(model)} {codec}".strip())
        positive = [b for b in (r.get("ber", 1e-3) for r in rows) if b > 0]
        if len(positive) < len(rows):  # a fault-free point (ber 0) sits left of the log scale's first decade
            ax.set_xscale("symlog", linthresh=min(positive or [1e-3]))
        else:
            ax.set_xscale("log")
        ax.set_xlabel("bit-error rate")
        ax.set_ylabel("top-1 accuracy (mean over seeds)")
        ax.legend()
        plot_name = "sweep_faults.png" if kind == "faults" else "sweep_weights.png"
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    files = {"sweep.json": json.dumps({"sweep": {k: sweep[k] for k in ("kind", "base", "axes")}, "rows": rows},
                                      indent=1) + "\n",
             "sweep.csv": buf.getvalue(), "sweep.md": "\n".join(md) + "\n", plot_name: png.getvalue()}
    write_atomic_set(Path(out_dir), files)
    return sorted(files)
