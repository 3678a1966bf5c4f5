"""The ``lartpcnet`` command line.

Contract shared by every subcommand:
- ``--json`` prints exactly one JSON object on stdout; progress bars and logs go to stderr.
- A user error (bad file, event, field or argument: ``lartpcnet.errors.UserError``, a missing or
  unwritable file, a full disk) exits 2 with one line on stderr that names it, and no traceback.
  Anything else is a bug and keeps its traceback. ``LARTPCNET_DEBUG=1`` shows the traceback of a
  user error too.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

from lartpcnet.errors import UserError, one_line
from lartpcnet.runtime import configure_runtime

# OS errors that describe the user's disk or files, not a bug
USER_OS_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only file system",
                  errno.EDQUOT: "disk quota exceeded", errno.EACCES: "permission denied",
                  errno.ENOENT: "no such file or folder", errno.EISDIR: "is a folder",
                  errno.ENOTDIR: "not a folder"}


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's contract for errors: one line on stderr, exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    if value > 10**8:
        raise argparse.ArgumentTypeError(f"{text} is more than lartpcnet handles in one job (10^8); split it")
    return value


def seed_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer below 2^63, got {text}")
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


def cmd_models(args: argparse.Namespace) -> int:
    from lartpcnet.checkpoint import sha256, shipped_models, shipped_path

    rows = []
    for name, entry in shipped_models().items():
        path = shipped_path(name)
        row = {"name": name, **entry, "installed": path is not None}
        if args.verify and path is not None:
            row["sha256_ok"] = sha256(path) == entry["sha256"]
        rows.append(row)
    lines = []
    for r in rows:
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in r.get("metrics", {}).items())
        training = r.get("training", {})
        lines += [f"{r['name']} ({r['task']}, planes {r.get('planes')}): {r.get('description', '')}",
                  f"  trained on {training.get('data')}, {training.get('iterations')} iterations of "
                  f"{training.get('batch_size')}",
                  f"  {metrics} ({r.get('metrics_on', '')})",
                  f"  sha256 {r['sha256']}" + ("" if r["installed"] else "  (not installed)")
                  + ("" if "sha256_ok" not in r else "  ok" if r["sha256_ok"] else "  MISMATCH")]
    _emit({"models": rows}, args.json, "\n".join(lines) or "no shipped models in this installation")
    return 0 if all(r.get("sha256_ok", True) for r in rows) else 2


def cmd_display(args: argparse.Namespace) -> int:
    import lartpcnet.data as data
    from lartpcnet.data.larcv3 import Larcv3Events
    from lartpcnet.viz.event_display import draw_event

    with data.open(args.file) as reader:
        kind = reader.label_kind if isinstance(reader, Larcv3Events) else "semantic"
        event = reader[args.event]
    if args.predictions:
        from lartpcnet import predictions, tasks

        pred = predictions.read(args.predictions, args.event)
        pred.update(file=args.file, event=args.event)
        title = f"{Path(args.file).name}, event {args.event}: {Path(pred['model']).name}"
        path = tasks.by_name(pred["task"]).draw(event, pred, args.out, title)
    else:
        path = draw_event(event, args.out, f"{Path(args.file).name}, event {args.event}", kind)
    _emit({"file": args.file, "event": args.event, "out": str(path)}, args.json, f"wrote {path}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from lartpcnet.runner import check_output
    from lartpcnet.sim.run import simulate

    check_output(args.out, [], overwrite=True)  # a folder or an unwritable place: before any work
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
    from lartpcnet.runner import check_output

    check_output(args.out, [args.input], overwrite=args.overwrite)
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
    key = summary["headline"]
    text = (f"trained {config.name} for {summary['iterations']} iterations into {out}: "
            f"validation {key.replace('_', ' ')} {(summary.get('validation') or {}).get(key)}")
    _emit(summary, args.json, text)
    if summary.get("world_size", 1) > 1:
        # Under torchrun, now and then a rank aborted in interpreter teardown after the process group
        # was destroyed ("terminate called without an active exception"): everything is written,
        # so leave without running the C++ static destructors.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _model(args: argparse.Namespace):
    from lartpcnet.runner import load_model

    return load_model(args.model, args.device, args.precision, args.tta, getattr(args, "plane", None))


def cmd_predict(args: argparse.Namespace) -> int:
    from lartpcnet import runner

    if not Path(args.input).exists():
        raise FileNotFoundError(f"{args.input}: no such file")
    runner.check_output(args.out, [args.input], args.overwrite)  # before the weights are even loaded
    summary = runner.predict(_model(args), args.input, args.out, shard=args.shard, batch_size=args.batch_size,
                             part_size=args.part_size, progress=not args.no_progress, overwrite=args.overwrite,
                             format=args.format)
    _emit(summary, args.json, f"wrote predictions for {summary['events']} events to {summary['out']}"
          + (" (larcv3)" if args.format == "larcv3" else ""))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from lartpcnet import runner

    summary = runner.merge(args.out, args.shards, overwrite=args.overwrite)
    _emit(summary, args.json, f"merged {len(summary['shards'])} shards ({summary['events']} events) into "
          f"{summary['out']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lartpcnet import runner
    from lartpcnet.data.source import command_line_source

    model = _model(args)
    reports = [name for name in ("table", "scale_curve") if getattr(args, name)]
    if reports:
        result: dict = {"model": args.model}
        texts = []
        for name in reports:
            result.update(runner.report(model, name, out=args.out, events=args.events, seed=args.seed,
                                        progress=not args.no_progress, sample=args.sample))
            texts.append(model.task.reports[name].text(result))
        _emit(result, args.json, "\n".join(texts))
        return 0
    if (args.input is None) == (args.sample is None):
        raise UserError("give one of --in FILE or --sample NAME (or --table / --scale-curve)")
    source = command_line_source(args.input, args.sample, args.events, args.seed)
    summary = runner.evaluate(model, source, batch_size=args.batch_size, progress=not args.no_progress, out=args.out)
    _emit(summary, args.json, model.task.summary_text(summary))
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    from lartpcnet.reco.selection import select

    report = select(_model(args), input_path=args.input, sample=args.sample, events=args.events, seed=args.seed,
                    min_pixels=args.min_pixels, max_row_separation=args.max_row_separation, out=args.out,
                    batch_size=args.batch_size, progress=not args.no_progress)
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


def cmd_veto(args: argparse.Namespace) -> int:
    from lartpcnet.reco import veto

    report = veto.run(_model(args), events=args.events, seed=args.seed, out=args.out, batch_size=args.batch_size,
                      progress=not args.no_progress)
    lines = [f"cosmic-only veto, {args.events} events per sample: keep an event when its largest DBSCAN cluster "
             f"outside the cosmic masks is > X pixels", report["table"],
             *(f"AUC {name}: {value:.3f}" for name, value in report["auc"].items())]
    _emit(report, args.json, "\n".join(lines))
    return 0


def cmd_michel(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from lartpcnet.reco import michel

    try:
        config = michel.MichelConfig(**{name: getattr(args, name) for name in michel.MichelConfig.model_fields})
    except ValidationError as err:  # name the flag, not the pydantic model
        first = err.errors()[0]
        raise UserError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from err
    report = michel.run(_model(args), args.out, input_path=args.input, sample=args.sample, events=args.events,
                        seed=args.seed, config=config, add_showers=args.add_showers, plots=args.plots,
                        progress=not args.no_progress, batch_size=args.batch_size, overwrite=args.overwrite)

    def pct(v):
        return "—" if v is None else f"{100 * v:.1f}%"

    cut = report["quality_cut"]
    text = "\n".join([
        f"{report['events']} events: {report['n_true']} true Michel clusters, {report['n_candidates']} candidates"
        + (f" -> {report['out']}" if report["out"] else ""),
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
    progress = not args.no_progress
    if args.target == "uresnet":
        from lartpcnet.bench import uresnet as bench

        report = bench.run(quick=args.quick, threads=args.threads, progress=progress)
        files = bench.write(report, Path(args.out), command, stem="uresnet-quick" if args.quick else "uresnet")
    elif args.target == "cosmictagger":
        from lartpcnet.bench import cosmictagger as bench

        report = bench.run(quick=args.quick, threads=args.threads, progress=progress)
        files = bench.write(report, Path(args.out), command)
    elif args.target == "maskrcnn":
        from lartpcnet.bench import maskrcnn as bench

        report = bench.run(quick=args.quick, threads=args.threads, progress=progress)
        files = bench.write(report, Path(args.out), command, stem="maskrcnn-quick" if args.quick else "maskrcnn")
    elif args.target == "train":
        from lartpcnet.bench import train as bench

        report = bench.run(quick=args.quick, threads=args.threads, progress=progress)
        files = bench.write(report, Path(args.out), command, stem="train-quick" if args.quick else "train")
    elif args.target == "michel":
        from lartpcnet.bench import michel as bench

        report = bench.run(events=args.events or 20, threads=args.threads, progress=progress)
        files = bench.write(report, Path(args.out), command)
    elif args.target == "sim":
        from lartpcnet.bench import sim as bench

        report = bench.run(events=args.events or 20, progress=progress)
        files = bench.write(report, Path(args.out), command)
    else:
        from lartpcnet.bench import engine as bench

        report = bench.run(quick=args.quick, peers=args.peers, threads=args.threads, progress=progress)
        files = bench.write(report, Path(args.out), command, stem="engine-quick" if args.quick else "engine")
    print("wrote " + ", ".join(map(str, files)), file=sys.stderr)
    _emit(report, args.json, bench.markdown(report, command))
    return 0


# --- the parser: shared flag groups built once ---------------------------------------------------

TTA_HELP = ("test-time augmentation: average the class probabilities over the image and its mirror image along "
            "each axis (sparse networks; 1 + D network passes; the tagger mirrors all planes at once)")


def _sample_names() -> list[str]:
    """The shipped sample names, read off the folder (the help text does not import the simulator)."""
    folder = resources.files("lartpcnet") / "sim" / "samples"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _output_flags() -> argparse.ArgumentParser:
    group = argparse.ArgumentParser(add_help=False)
    group.add_argument("--json", action="store_true", help="print one JSON object")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    return group


def _model_flags(batch_default: int = 4) -> argparse.ArgumentParser:
    group = argparse.ArgumentParser(add_help=False)
    group.add_argument("--model", required=True, help="shipped name (lartpcnet models) or checkpoint")
    group.add_argument("--batch-size", type=positive_int, default=batch_default, help="events per forward pass")
    group.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                       help="bf16 is faster on CPUs with bf16 units and changes a few labels (see README)")
    group.add_argument("--device", default="auto", help="auto (GPU where there is one), cpu, cuda, cuda:1, ...")
    group.add_argument("--tta", action="store_true", help=TTA_HELP)
    return group


def _plane_flag() -> argparse.ArgumentParser:
    group = argparse.ArgumentParser(add_help=False)
    group.add_argument("--plane", type=int, default=None, help="wire plane (default: the model's)")
    return group


def _event_flags(required: bool) -> argparse.ArgumentParser:
    """``--in FILE`` or ``--sample NAME`` with ``--events`` and ``--seed``: where a command's events come from."""
    group = argparse.ArgumentParser(add_help=False)
    source = group.add_mutually_exclusive_group(required=required)
    source.add_argument("--in", dest="input", default=None, help="input file (any format lartpcnet reads)")
    source.add_argument("--sample", default=None, help="simulate events of this sample instead")
    group.add_argument("--events", type=positive_int, default=100, help="simulated events (default 100)")
    group.add_argument("--seed", type=seed_int, default=12345, help="simulation seed (default 12345)")
    return group


def _overwrite_flag() -> argparse.ArgumentParser:
    group = argparse.ArgumentParser(add_help=False)
    group.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return group


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lartpcnet", description="Sparse deep-learning reconstruction of LArTPC images.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    output, overwrite = _output_flags(), _overwrite_flag()

    def command(name: str, func: Callable, help_text: str, *parents: argparse.ArgumentParser):
        p = sub.add_parser(name, help=help_text, parents=[*parents, output])
        p.set_defaults(func=func)
        return p

    simulate = command("simulate", cmd_simulate, "simulate labelled LArTPC events into an HDF5 file")
    simulate.add_argument("--sample", required=True,
                          help=f"sample name ({', '.join(_sample_names())}) or a sample YAML file")
    simulate.add_argument("--events", type=positive_int, required=True, help="number of events")
    simulate.add_argument("--seed", type=seed_int, default=0, help="random seed (same seed, same bytes)")
    simulate.add_argument("--out", required=True, help="output HDF5 file")
    simulate.add_argument("--workers", type=positive_int, default=1, help="worker processes")
    simulate.add_argument("--part-size", type=positive_int, default=100, help="events per resumable part (default 100)")

    models = command("models", cmd_models, "the shipped weights: task, planes, training, headline metrics, sha256")
    models.add_argument("--verify", action="store_true", help="check every installed file against its sha256")

    info = command("info", cmd_info, "describe a data file (lartpcnet or larcv3 HDF5, larcv2 ROOT): products, events, "
                   "truth labels")
    info.add_argument("file", help="path of the data file")

    display = command("display", cmd_display, "event display: charge and labels of each wire plane")
    display.add_argument("file", help="path of the data file")
    display.add_argument("--event", type=int, default=0, help="event index (default 0)")
    display.add_argument("--out", required=True, help="image to write (.png, .pdf, .svg)")
    display.add_argument("--predictions", help="output of lartpcnet predict on this file: show input, truth, "
                         "prediction and mistakes")

    convert = command("convert", cmd_convert, "convert a data file to larcv3 HDF5 or lartpcnet HDF5", overwrite)
    convert.add_argument("input", help="any file lartpcnet reads")
    convert.add_argument("--to", choices=["larcv3", "lartpcnet"], required=True, help="output format")
    convert.add_argument("--out", required=True, help="output file")
    convert.add_argument("--producer", default="wire", help="larcv3 image producer name (default wire)")

    train = command("train", cmd_train, "train a network from a YAML config (runs under torchrun too)")
    train.add_argument("config", help="training YAML (see configs/)")
    train.add_argument("--out", default=None, help="run folder (default runs/<name>)")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    train.add_argument("--init-from", default=None, metavar="MODEL",
                       help="a fresh run starts from these weights (shipped name or checkpoint) and their iteration; "
                            "the optimizer starts anew")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config entry, e.g. --set iterations=100 --set optimizer.lr=1e-4")

    predict = command("predict", cmd_predict, "per-site class scores for every event of a file (resumable)",
                      _model_flags(), _plane_flag(), overwrite)
    predict.add_argument("--in", dest="input", required=True, help="input file (any format lartpcnet reads)")
    predict.add_argument("--out", required=True, help="output HDF5 of scores and labels")
    predict.add_argument("--format", choices=["lartpcnet", "larcv3"], default="lartpcnet",
                         help="lartpcnet: the prediction file (default); larcv3: the input's image products with "
                              "<image>_pred (label) and <image>_score_<class> products beside them")
    predict.add_argument("--shard", default=None, metavar="K/N", help="only events K, K+N, K+2N, ... (grid jobs)")
    predict.add_argument("--part-size", type=positive_int, default=None,
                         help="events per resumable part (default: a part every 3 minutes of work)")

    merge = command("merge", cmd_merge, "put the outputs of predict --shard K/N back together: one file, as an "
                    "unsharded predict writes it (checks that the shards are of one job and hold every event once)",
                    overwrite)
    merge.add_argument("out", metavar="OUT.h5", help="the merged prediction file")
    merge.add_argument("shards", nargs="+", metavar="SHARD.h5", help="the outputs of predict --shard K/N")

    evaluate = command("evaluate", cmd_evaluate, "the model's metrics on a file or fresh simulated events",
                       _model_flags(), _plane_flag(), _event_flags(required=False))
    evaluate.add_argument("--table", action="store_true",
                          help="metrics on fresh events of each benchmark sample (MicroBooNE 2019 Table I)")
    evaluate.add_argument("--scale-curve", action="store_true",
                          help="ICPF against a 0.75-1.25 pixel-value scale factor (default sample mpv)")
    evaluate.add_argument("--out", default=None, help="folder for the plots (confusion matrices, IoU vs energy)")

    select = command("select", cmd_select, "neutrino event selection with the cosmic tagger (SBND cosmic paper, "
                     "Table 3): efficiencies, cosmic-only rejection, ROC", _model_flags(batch_default=1),
                     _event_flags(required=True))
    select.add_argument("--min-pixels", type=int, default=100, help="neutrino pixels needed on every plane")
    select.add_argument("--max-row-separation", type=float, default=None,
                        help="largest difference of mean neutrino rows between planes (default 50 at the "
                             "paper's 640-row images, scaled with the image height)")
    select.add_argument("--out", default=None, help="folder for the ROC plot")

    veto = command("veto", cmd_veto, "cosmic-only event veto with sMask-RCNN (sMask-RCNN paper, section 5): signal "
                   "efficiency and cosmic-only rejection against the largest-cluster cut, beside a DBSCAN tagger",
                   _model_flags(batch_default=1))
    veto.add_argument("--events", type=positive_int, default=100, help="fresh events per sample (default 100)")
    veto.add_argument("--seed", type=seed_int, default=12345, help="simulation seed (default 12345)")
    veto.add_argument("--out", default=None, help="folder for the ROC plot")

    michel_cmd = command("michel", cmd_michel, "Michel electron reconstruction on U-ResNet output, with metrics "
                         "and spectra (Domine & Terao VII)", _model_flags(), _plane_flag(),
                         _event_flags(required=True), overwrite)
    michel_cmd.add_argument("--out", default=None, help="output HDF5: every candidate with its sites, energy, "
                            "matched truth (resumable; default: none)")
    michel_cmd.add_argument("--plots", default=None, help="folder for the pixel-count and energy plots")
    michel_cmd.add_argument("--add-showers", action="store_true",
                            help="add shower-labelled deposits within --shower-radius to each candidate's energy")
    from lartpcnet.reco.michel import MichelConfig

    for name, field in MichelConfig.model_fields.items():
        michel_cmd.add_argument("--" + name.replace("_", "-"), type=field.annotation, default=field.default,
                                help=f"{field.description} (default {field.default!r})")

    bench = command("bench", cmd_bench, "performance benchmarks (tables, plots, benchmarks/results/)")
    bench.add_argument("target", choices=["engine", "sim", "uresnet", "train", "michel", "cosmictagger",
                                           "maskrcnn"],
                       help="engine: one sparse conv layer vs dense and peers; sim: simulation speed per sample; "
                            "uresnet: SparseSSNet inference/training cost vs the dense U-ResNet; train: training "
                            "throughput and a profile of every shipped network; michel: the Michel "
                            "reconstruction step per 512^3 event; cosmictagger: full SBND events, sparse vs dense; "
                            "maskrcnn: sMask-RCNN backbone and detection on a full Y plane, sparse vs dense twin")
    bench.add_argument("--events", type=positive_int, default=None,
                       help="sim: events per sample; michel: events (default 20)")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions (< 3 min)")
    bench.add_argument("--threads", type=positive_int, default=2, help="torch threads for ours and dense (default 2)")
    bench.add_argument("--peers", default=None,
                       help="folder with the peers' venvs (default $LARTPCNET_PEERS or benchmarks/.peers)")
    bench.add_argument("--out", default="benchmarks/results", help="folder for the .md/.json/.png results")
    return parser


def _user_message(err: BaseException) -> str | None:
    """The one line a user error gets, or None for a bug (which keeps its traceback)."""
    if isinstance(err, UserError | FileNotFoundError | IsADirectoryError | NotADirectoryError | PermissionError):
        return one_line(err)
    if isinstance(err, OSError) and err.errno in USER_OS_ERRORS:
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{USER_OS_ERRORS[err.errno]}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # recorded beside results (benchmarks state the command that made them)
    configure_runtime(training=args.command == "train")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print(f"lartpcnet {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        message = _user_message(err)
        if message is None or os.environ.get("LARTPCNET_DEBUG"):
            raise
        print(f"lartpcnet {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
