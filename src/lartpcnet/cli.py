"""The ``lartpcnet`` command line.

Contract shared by every subcommand:
- ``--json`` prints exactly one JSON object on stdout; progress bars and logs go to stderr.
- A user error (bad file, event, field or argument) exits non-zero with one line on stderr that
  names it, and no traceback. Set ``LARTPCNET_DEBUG=1`` to see the traceback anyway.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from lartpcnet.errors import DataError
from lartpcnet.runtime import configure_runtime

# Errors that describe bad input rather than a bug; everything else keeps its traceback.
USER_ERRORS = (DataError, ValueError, FileNotFoundError, IsADirectoryError, PermissionError)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _emit(payload: dict, as_json: bool, text: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def cmd_info(args: argparse.Namespace) -> int:
    from lartpcnet.data.info import describe, format_description

    desc = describe(args.file)
    _emit(desc, args.json, format_description(desc))
    return 0


def cmd_display(args: argparse.Namespace) -> int:
    import lartpcnet.data as data
    from lartpcnet.data.larcv3 import Larcv3Events
    from lartpcnet.viz.event_display import draw_event

    with data.open(args.file) as reader:
        kind = reader.label_kind if isinstance(reader, Larcv3Events) else "semantic"
        event = reader[args.event]
    if args.predictions:
        from lartpcnet.inference import read_predictions
        from lartpcnet.viz.event_display import draw_prediction

        pred = read_predictions(args.predictions, args.event)
        if pred["all_planes"]:  # the cosmic tagger: every plane at the network's resolution
            from lartpcnet.data.tagging import downsample
            from lartpcnet.viz.event_display import draw_tagging

            planes = [downsample(p, pred["downsample"]) for p in event.planes]
            path = draw_tagging(planes, pred["coords"], pred["label"], args.out,
                                f"{Path(args.file).name}, event {args.event}: {Path(pred['model']).name}")
            _emit({"file": args.file, "event": args.event, "out": str(path)}, args.json, f"wrote {path}")
            return 0
        image = event.voxels if pred["plane"] is None else event.planes[pred["plane"]]
        where = "voxels" if pred["plane"] is None else f"plane {pred['plane']}"
        path = draw_prediction(image, pred["coords"], pred["label"], args.out,
                               f"{Path(args.file).name}, event {args.event}, {where}: {Path(pred['model']).name}",
                               tuple(pred["classes"]))
    else:
        path = draw_event(event, args.out, f"{Path(args.file).name}, event {args.event}", kind)
    _emit({"file": args.file, "event": args.event, "out": str(path)}, args.json, f"wrote {path}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from lartpcnet.sim.run import simulate

    summary = simulate(args.sample, args.events, args.seed, args.out, args.workers, args.part_size,
                       progress=not args.no_progress)
    text = (f"wrote {summary['events']} {summary['sample']} events to {summary['file']} "
            f"({summary['events_per_second']} events/s, {summary['workers']} workers)")
    _emit(summary, args.json, text)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    import lartpcnet.data as data
    from lartpcnet.data.h5format import write_events
    from lartpcnet.data.larcv3 import write_larcv3

    with data.open(args.input) as reader:
        events = (reader[i] for i in range(len(reader)))
        if args.to == "larcv3":
            count = write_larcv3(args.out, events, image=args.producer)
        else:
            count = write_events(args.out, events, {"converted_from": str(args.input)})
    _emit({"input": args.input, "out": args.out, "format": args.to, "events": count}, args.json,
          f"wrote {count} events to {args.out} ({args.to})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from lartpcnet.train.config import load_config
    from lartpcnet.train.trainer import train

    config = load_config(args.config, args.set)
    out = args.out or f"runs/{config.name}"
    summary = train(config, out, resume=args.resume, progress=not args.no_progress, init_from=args.init_from,
                    explicit=[item.partition("=")[0] for item in args.set])
    val = summary.get("validation") or {}
    key = "mean_iou" if "mean_iou" in val else "nonzero_accuracy"
    text = (f"trained {config.name} for {summary['iterations']} iterations into {out}: "
            f"validation {key.replace('_', ' ')} {val.get(key)}")
    _emit(summary, args.json, text)
    if summary.get("world_size", 1) > 1:
        # Under torchrun, now and then a rank aborted in interpreter teardown after the process group
        # was destroyed ("terminate called without an active exception"): everything is written,
        # so leave without running the C++ static destructors.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from lartpcnet.inference import predict

    summary = predict(args.model, args.input, args.out, plane=args.plane, shard=args.shard,
                      batch_size=args.batch_size, progress=not args.no_progress, precision=args.precision,
                      device=args.device, tta=args.tta)
    _emit(summary, args.json, f"wrote predictions for {summary['events']} events to {summary['out']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lartpcnet import inference
    from lartpcnet.inference import evaluate

    if args.table or args.scale_curve:
        report: dict = {"model": args.model}
        parts = []
        if args.table:
            report["table"] = inference.sample_table(args.model, events=args.events, seed=args.seed,
                                                     progress=not args.no_progress)
            parts.append(inference.table_markdown(report["table"]))
        if args.scale_curve:
            report["scale_curve"] = inference.scale_curve(args.model, sample=args.sample or "mpv", events=args.events,
                                                          seed=args.seed, progress=not args.no_progress)
            parts.append("\n".join(f"scale {r['scale']}: ICPF mean {r['icpf_mean']:.4f}, 90% {r['icpf_q90']:.4f}"
                                   for r in report["scale_curve"]))
            if args.out:
                Path(args.out).mkdir(parents=True, exist_ok=True)
                inference.plot_scale_curve(report["scale_curve"], Path(args.out) / "icpf_vs_scale.png")
        _emit(report, args.json, "\n".join(parts))
        return 0
    if (args.input is None) == (args.sample is None):
        raise ValueError("give one of --in FILE or --sample NAME (or --table / --scale-curve)")

    summary = evaluate(args.model, input_path=args.input, sample=args.sample, events=args.events, seed=args.seed,
                       plane=args.plane, out=args.out, batch_size=args.batch_size, progress=not args.no_progress,
                       precision=args.precision, device=args.device, tta=args.tta)
    if "cosmic_iou" in summary:  # the cosmic tagger
        def fmt(v):
            return "—" if v is None else f"{v:.3f}"

        keys = ("accuracy", "nonbackground_accuracy", "cosmic_iou", "neutrino_iou", "mean_iou")
        lines = [f"{len(summary['events'])} events ({summary['images']} plane images)",
                 f"{'':24s}" + "".join(f"{k:>24s}" for k in keys),
                 *(f"{'plane ' + str(p):24s}" + "".join(f"{fmt(row[k]):>24s}" for k in keys)
                   for p, row in enumerate(summary["per_plane"])),
                 f"{'mean':24s}" + "".join(f"{fmt(summary[k]):>24s}" for k in keys)]
        if "neutrino_events" in summary:  # the paper's test set: a neutrino in every event
            lines.append(f"{'events with a neutrino':24s}"
                         + "".join(f"{fmt(summary['neutrino_events'][k]):>24s}" for k in keys))
        _emit(summary, args.json, "\n".join(lines))
        return 0
    lines = [f"{summary['images']} images; non-zero accuracy {summary['nonzero_accuracy']}; "
             f"two-class accuracy {summary['two_class_accuracy']}; ICPF mean {summary['icpf_mean']}, "
             f"90% {summary['icpf_q90']}"]
    lines += [f"  {name}: {value}" for name, value in summary["class_accuracy"].items()]
    _emit(summary, args.json, "\n".join(lines))
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    from lartpcnet.tagging import select

    report = select(args.model, input_path=args.input, sample=args.sample, events=args.events, seed=args.seed,
                    min_pixels=args.min_pixels, max_row_separation=args.max_row_separation, out=args.out,
                    progress=not args.no_progress, tta=args.tta)
    lines = [f"selection: >= {report['min_pixels']} neutrino pixels on every plane, mean rows within "
             f"{report['max_row_separation']:.0f}"]
    for kind, value in report.get("efficiency", {}).items():
        lines.append(f"  {kind:8s} efficiency {100 * value:.1f}% ({report['events'][kind]} events)")
    if "cosmic_only_rejection" in report:
        lines.append(f"  cosmic-only rejection {100 * report['cosmic_only_rejection']:.1f}% "
                     f"({report['cosmic_only_events']} events)")
    lines.append(f"  selected events: {report['selected']}")
    _emit(report, args.json, "\n".join(lines))
    return 0


def cmd_michel(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from lartpcnet.reco import michel

    try:
        config = michel.MichelConfig(**{name: getattr(args, name) for name in michel.MichelConfig.model_fields})
    except ValidationError as err:  # name the flag, not the pydantic model
        first = err.errors()[0]
        raise ValueError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from err
    report = michel.run(args.model, args.out, input_path=args.input, sample=args.sample, events=args.events,
                        seed=args.seed, plane=args.plane, config=config, add_showers=args.add_showers,
                        plots=args.plots, progress=not args.no_progress, tta=args.tta)

    def pct(v):
        return "—" if v is None else f"{100 * v:.1f}%"

    cut = report["quality_cut"]
    text = "\n".join([
        f"{report['events']} events: {report['n_true']} true Michel clusters, {report['n_candidates']} candidates "
        f"-> {report['out']}",
        f"                    all      >= {report['min_pixels']} px",
        *(f"{label:18s}  {pct(report[key]):>7s}  {pct(cut[key]):>7s}" for label, key in (
            ("ID efficiency", "id_efficiency"), ("ID purity", "id_purity"),
            ("cluster efficiency", "cluster_efficiency"), ("cluster purity", "cluster_purity"),
            ("both above 95%", "both_above_95"))),
        f"reconstruction (network excluded): {report['reco_ms_per_event']:.1f} ms/event"
        if report["reco_ms_per_event"] is not None else "no events"])
    _emit(report, args.json, text)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    command = "lartpcnet " + " ".join(shlex.quote(a) for a in args.argv)
    if args.target == "uresnet":
        from lartpcnet.bench import uresnet

        report = uresnet.run(quick=args.quick, threads=args.threads, progress=not args.no_progress)
        files = uresnet.write(report, Path(args.out), command, stem="uresnet-quick" if args.quick else "uresnet")
        text = uresnet.markdown(report, command)
    elif args.target == "cosmictagger":
        from lartpcnet.bench import cosmictagger

        report = cosmictagger.run(quick=args.quick, threads=args.threads, progress=not args.no_progress)
        files = cosmictagger.write(report, Path(args.out), command)
        text = cosmictagger.markdown(report, command)
    elif args.target == "michel":
        from lartpcnet.bench import michel

        report = michel.run(events=args.events or 20, threads=args.threads, progress=not args.no_progress)
        files = michel.write(report, Path(args.out), command)
        text = michel.markdown(report, command)
    elif args.target == "sim":
        from lartpcnet.bench import sim

        report = sim.run(events=args.events or 20, progress=not args.no_progress)
        files = sim.write(report, Path(args.out), command)
        text = sim.markdown(report, command)
    else:
        from lartpcnet.bench import engine

        report = engine.run(quick=args.quick, peers=args.peers, threads=args.threads, progress=not args.no_progress)
        files = engine.write(report, Path(args.out), command, stem="engine-quick" if args.quick else "engine")
        text = engine.markdown(report, command)
    print("wrote " + ", ".join(map(str, files)), file=sys.stderr)
    _emit(report, args.json, text)
    return 0


def _add_events(parser: argparse.ArgumentParser, in_help: str, sample_help: str, required: bool = True) -> None:
    """``--in FILE`` or ``--sample NAME`` with ``--events`` and ``--seed``: where a command's events come from."""
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument("--in", dest="input", default=None, help=in_help)
    source.add_argument("--sample", default=None, help=sample_help)
    parser.add_argument("--events", type=positive_int, default=100, help="simulated events (default 100)")
    parser.add_argument("--seed", type=int, default=12345, help="simulation seed (default 12345)")


TTA_HELP = ("test-time augmentation: average the class probabilities over the image and its mirror image along "
            "each axis (sparse networks; 1 + D network passes; the tagger mirrors all planes at once)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lartpcnet", description="Sparse deep-learning reconstruction of LArTPC images."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from lartpcnet.sim.samples import sample_names

    simulate = sub.add_parser("simulate", help="simulate labelled LArTPC events into an HDF5 file")
    simulate.add_argument("--sample", required=True,
                          help=f"sample name ({', '.join(sample_names())}) or a sample YAML file")
    simulate.add_argument("--events", type=positive_int, required=True, help="number of events")
    simulate.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    simulate.add_argument("--out", required=True, help="output HDF5 file")
    simulate.add_argument("--workers", type=positive_int, default=1, help="worker processes")
    simulate.add_argument("--part-size", type=positive_int, default=100,
                          help="events per resumable part (default 100)")
    simulate.add_argument("--json", action="store_true", help="print one JSON object")
    simulate.add_argument("--no-progress", action="store_true", help="no progress bar")
    simulate.set_defaults(func=cmd_simulate)

    info = sub.add_parser("info", help="describe a data file (lartpcnet or larcv3 HDF5)")
    info.add_argument("file", help="path of the data file")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_info)

    display = sub.add_parser("display", help="event display: charge and labels of each wire plane")
    display.add_argument("file", help="path of the data file")
    display.add_argument("--event", type=int, default=0, help="event index (default 0)")
    display.add_argument("--out", required=True, help="image to write (.png, .pdf, .svg)")
    display.add_argument("--predictions", help="output of lartpcnet predict on this file: show input, truth, "
                         "prediction and mistakes")
    display.add_argument("--json", action="store_true", help="print one JSON object")
    display.set_defaults(func=cmd_display)

    convert = sub.add_parser("convert", help="convert a data file to larcv3 HDF5 or lartpcnet HDF5")
    convert.add_argument("input", help="any file lartpcnet reads")
    convert.add_argument("--to", choices=["larcv3", "lartpcnet"], required=True, help="output format")
    convert.add_argument("--out", required=True, help="output file")
    convert.add_argument("--producer", default="wire", help="larcv3 image producer name (default wire)")
    convert.add_argument("--json", action="store_true", help="print one JSON object")
    convert.set_defaults(func=cmd_convert)

    train = sub.add_parser("train", help="train a network from a YAML config (runs under torchrun too)")
    train.add_argument("config", help="training YAML (see configs/)")
    train.add_argument("--out", default=None, help="run folder (default runs/<name>)")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    train.add_argument("--init-from", default=None, metavar="MODEL",
                       help="a fresh run starts from these weights (shipped name or checkpoint) and their iteration; "
                            "the optimizer starts anew")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config entry, e.g. --set iterations=100 --set optimizer.lr=1e-4")
    train.add_argument("--json", action="store_true", help="print one JSON object")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    predict = sub.add_parser("predict", help="per-site class scores for every event of a file (resumable)")
    predict.add_argument("--model", required=True, help="checkpoint from lartpcnet train")
    predict.add_argument("--in", dest="input", required=True, help="input file (any format lartpcnet reads)")
    predict.add_argument("--out", required=True, help="output HDF5 of scores and labels")
    predict.add_argument("--plane", type=int, default=None, help="wire plane (default: the model's)")
    predict.add_argument("--shard", default=None, metavar="K/N", help="only events K, K+N, K+2N, ... (grid jobs)")
    predict.add_argument("--batch-size", type=positive_int, default=4, help="events per forward pass")
    predict.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                         help="bf16 is faster on CPUs with bf16 units and changes a few labels (see README)")
    predict.add_argument("--device", default="auto", help="auto (GPU where there is one), cpu, cuda, cuda:1, ...")
    predict.add_argument("--tta", action="store_true", help=TTA_HELP)
    predict.add_argument("--json", action="store_true", help="print one JSON object")
    predict.add_argument("--no-progress", action="store_true", help="no progress bar")
    predict.set_defaults(func=cmd_predict)

    evaluate = sub.add_parser("evaluate", help="segmentation metrics on a file or fresh simulated events")
    evaluate.add_argument("--model", required=True, help="checkpoint from lartpcnet train")
    _add_events(evaluate, "labelled input file", "simulate this sample instead", required=False)
    evaluate.add_argument("--table", action="store_true",
                          help="metrics on fresh events of each benchmark sample (MicroBooNE 2019 Table I)")
    evaluate.add_argument("--scale-curve", action="store_true",
                          help="ICPF against a 0.75-1.25 pixel-value scale factor (default sample mpv)")
    evaluate.add_argument("--plane", type=int, default=None, help="wire plane (default: the model's)")
    evaluate.add_argument("--out", default=None, help="folder for confusion-matrix plots")
    evaluate.add_argument("--batch-size", type=positive_int, default=4, help="events per forward pass")
    evaluate.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="inference precision")
    evaluate.add_argument("--device", default="auto", help="auto (GPU where there is one), cpu, cuda, ...")
    evaluate.add_argument("--tta", action="store_true", help=TTA_HELP)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=cmd_evaluate)

    select_cmd = sub.add_parser("select", help="neutrino event selection with the cosmic tagger (SBND cosmic "
                                "paper, Table 3): efficiencies, cosmic-only rejection, ROC")
    select_cmd.add_argument("--model", required=True, help="shipped name (cosmictagger_sbnd) or checkpoint")
    _add_events(select_cmd, "input file", "simulate this sample instead (sbnd_cosmic)")
    select_cmd.add_argument("--min-pixels", type=int, default=100, help="neutrino pixels needed on every plane")
    select_cmd.add_argument("--max-row-separation", type=float, default=None,
                            help="largest difference of mean neutrino rows between planes (default 50 at the "
                                 "paper's 640-row images, scaled with the image height)")
    select_cmd.add_argument("--out", default=None, help="folder for the ROC plot")
    select_cmd.add_argument("--tta", action="store_true", help=TTA_HELP)
    select_cmd.add_argument("--json", action="store_true", help="print one JSON object")
    select_cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    select_cmd.set_defaults(func=cmd_select)

    michel_cmd = sub.add_parser("michel", help="Michel electron reconstruction on U-ResNet output, with metrics "
                                "and spectra (Domine & Terao VII)")
    michel_cmd.add_argument("--model", required=True, help="shipped name (uresnet3d_pilarnet) or checkpoint")
    _add_events(michel_cmd, "labelled input file", "simulate this sample (michel, pilarnet3d, michel_uboone)")
    michel_cmd.add_argument("--plane", type=int, default=None, help="wire plane for 2D models (default: the model's)")
    michel_cmd.add_argument("--out", default="michel.h5", help="output HDF5: every candidate with its sites, energy, "
                            "matched truth (resumable; default michel.h5)")
    michel_cmd.add_argument("--plots", default=None, help="folder for the pixel-count and energy plots")
    michel_cmd.add_argument("--tta", action="store_true", help=TTA_HELP)
    michel_cmd.add_argument("--add-showers", action="store_true",
                            help="add shower-labelled deposits within --shower-radius to each candidate's energy")
    from lartpcnet.reco.michel import MichelConfig

    for name, field in MichelConfig.model_fields.items():
        michel_cmd.add_argument("--" + name.replace("_", "-"), type=field.annotation, default=field.default,
                                help=f"{field.description} (default {field.default!r})")
    michel_cmd.add_argument("--json", action="store_true", help="print one JSON object")
    michel_cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    michel_cmd.set_defaults(func=cmd_michel)

    bench = sub.add_parser("bench", help="performance benchmarks (tables, plots, benchmarks/results/)")
    bench.add_argument("target", choices=["engine", "sim", "uresnet", "michel", "cosmictagger"],
                       help="engine: one sparse conv layer vs dense and peers; sim: simulation speed per sample; "
                            "uresnet: SparseSSNet inference/training cost vs the dense U-ResNet; michel: the Michel "
                            "reconstruction step per 512^3 event; cosmictagger: full SBND events, sparse vs dense")
    bench.add_argument("--events", type=positive_int, default=None,
                       help="sim: events per sample; michel: events (default 20)")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions (< 3 min)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--threads", type=positive_int, default=2, help="torch threads for ours and dense (default 2)")
    bench.add_argument("--peers", default=None,
                       help="folder with the peers' venvs (default $LARTPCNET_PEERS or benchmarks/.peers)")
    bench.add_argument("--out", default="benchmarks/results", help="folder for the .md/.json/.png results")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # recorded beside results (benchmarks state the command that made them)
    configure_runtime()
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except USER_ERRORS as err:
        if os.environ.get("LARTPCNET_DEBUG"):
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"lartpcnet {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lartpcnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
