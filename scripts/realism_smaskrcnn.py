"""Realism check of sMask-RCNN (issue 17): a simulator-trained network, unchanged, on the collection
plane (plane 2) of the real SBND larcv3 file, its masks scored against the file's particle clusters.

    .venv/bin/python scripts/realism_smaskrcnn.py --model NAME_OR_CHECKPOINT --out DIR [--events N]

Prints a table (sMask-RCNN beside the DBSCAN baseline of tasks/instance.py on the same truth) and
writes DIR/realism_smaskrcnn.json and one instance display per event (DIR/event_<k>.png). The file
is never trained or tuned on: the network and the baseline's parameters come from the simulator.

**Truth** (``merged_truth``). The file has ``cluster2d_sbndsegmerged`` (one pixel cluster per
simulated particle, ~1000 clusters per plane of which ~10-30 hold pixels; cluster values are
deposits, not ADC), ``sparse2d_sbnd_cosmicseg`` (per pixel 0 background, 1 cosmic, 2 neutrino, at
the image's sites) and ``particle_sbndneutrino``, which lists only the neutrino's GENIE particles
(ancestor ids unset, mct/mcst indices unset, no cosmic particle at all) and has no field that
names a cluster. So clusters cannot be merged by ancestor, parent or interaction: the file does
not say which cosmic muon a delta ray or a Compton electron came from. Merged by label instead:

- a pixel labelled neutrino (2) belongs to the one neutrino instance (id 0, class nue): the file
  holds one neutrino interaction per event (one neutrino in ``particle_sbndneutrino``);
- any other pixel that a cluster covers belongs to the cosmic instance of that cluster (id 1 +
  the cluster's index, class cosmic); a pixel in several clusters goes to the cluster that
  deposits most in it (ties: the lower cluster index);
- pixels in no cluster have no instance (-1; in this file exactly the pixels labelled background).

Each cosmic cluster is its own instance, so a cosmic muon and a delta ray it knocked out count as
two (the many tiny cosmic instances are such fragments); ``efficiency_large`` repeats the
efficiency over instances with at least ``LARGE`` pixels of >= 10 ADC.

**Input.** SBND's collection plane reads as 1280 x 2048 (tick, wire) here; the network trained on
MicroBooNE's 1008 x 3456. The sparse network takes any shape, so the plane goes in as it is (no
crop, padding, resampling or ADC rescaling); ``image_tensor`` drops pixels below the network's
threshold (10 ADC), as the metrics do (W = pixels >= 10 ADC). The file's own threshold is ~5 ADC,
so the pixels between 5 and 10 ADC are neither seen nor scored (their share is in the JSON).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import lartpcnet
import lartpcnet.data as data
from lartpcnet.data.labels import NEUTRINO
from lartpcnet.data.larcv3 import Larcv3File
from lartpcnet.metrics.instance import ADC_THRESHOLD, InstanceMetrics, InstancePredictions, dbscan_predictions
from lartpcnet.models.maskrcnn import COSMIC_CLASS, NUE
from lartpcnet.tasks.instance import BASELINE

REAL = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "sbnd_cosmic_tagging_5events.h5"
PLANE = 2  # SBND's collection plane
CLUSTERS = "sbndsegmerged"
NEUTRINO_INSTANCE = 0
LARGE = 50  # W pixels of a "large" true instance


def merged_truth(image, clusters) -> tuple[np.ndarray, np.ndarray, dict]:
    """Per site of ``image`` (a SparseImage with ``origin``): the merged true instance (-1 none),
    its class (NUE, COSMIC_CLASS; 0 where no instance) and counts; ``clusters`` are the plane's
    cluster2d Planes (``Larcv3File.cluster2d(...)[plane]``)."""
    n = len(image)
    keys = np.ravel_multi_index(tuple(np.asarray(image.coords, np.int64).T), image.shape) if n else np.zeros(0, int)
    order = np.argsort(keys)
    best_cluster = np.full(n, -1, np.int64)
    best_deposit = np.full(n, -np.inf)
    claims = np.zeros(n, np.int64)
    outside = 0
    for index, cluster in enumerate(clusters):
        if len(cluster.values) == 0:
            continue
        ck = np.ravel_multi_index(tuple(np.asarray(cluster.coords, np.int64).T), image.shape)
        pos = np.searchsorted(keys, ck, sorter=order) if n else np.zeros(len(ck), int)
        found = pos < n
        found[found] = keys[order[pos[found]]] == ck[found]
        outside += int((~found).sum())  # cluster pixels that are no site of the image (below its threshold)
        sites, deposit = order[pos[found]], cluster.values[found].astype(float)
        better = deposit > best_deposit[sites]  # strict: ties keep the lower cluster index
        best_cluster[sites[better]], best_deposit[sites[better]] = index, deposit[better]
        np.add.at(claims, sites, 1)
    neutrino = np.asarray(image.origin) == NEUTRINO
    truth = np.where(best_cluster >= 0, best_cluster + 1, -1)
    truth[neutrino] = NEUTRINO_INSTANCE
    cls = np.where(truth == NEUTRINO_INSTANCE, NUE, np.where(truth > 0, COSMIC_CLASS, 0)).astype(np.int64)
    w = np.asarray(image.values) >= ADC_THRESHOLD
    cosmic_ids = np.unique(truth[truth > 0])
    sizes = np.array([int((w & (truth == i)).sum()) for i in cosmic_ids])
    info = {"sites": n, "sites_w": int(w.sum()), "clusters_with_pixels": int(sum(len(c.values) > 0 for c in clusters)),
            "cluster_pixels_not_sites": outside, "sites_in_several_clusters": int((claims > 1).sum()),
            "sites_without_instance": int((truth < 0).sum()),
            "sites_without_instance_not_background": int(((truth < 0) & (np.asarray(image.origin) > 0)).sum()),
            "neutrino_sites": int(neutrino.sum()), "neutrino_sites_w": int((neutrino & w).sum()),
            "cosmic_instances": len(cosmic_ids), "cosmic_instances_w": int((sizes > 0).sum()),
            "cosmic_instances_large": int((sizes >= LARGE).sum())}
    return truth, cls, info


def _large_efficiency(metrics: InstanceMetrics, large: list[np.ndarray]) -> float | None:
    """Mean efficiency over true instances with >= LARGE W pixels (``score`` orders its truths by id)."""
    eff = [e.efficiency[m] for e, m in zip(metrics.events, large, strict=True)]
    eff = np.concatenate(eff) if eff else np.zeros(0)
    return float(eff.mean()) if eff.size else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a shipped sMask-RCNN name or a checkpoint")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--file", type=Path, default=REAL)
    parser.add_argument("--events", type=int, default=None, help="the first N events (default: all)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    model = lartpcnet.load_model(args.model, device=args.device)
    if model.settings.name != "smaskrcnn":
        parser.error(f"{args.model} is a {model.settings.name!r} network, not sMask-RCNN")
    from lartpcnet.viz.event_display import draw_instances

    network, baseline = InstanceMetrics(), InstanceMetrics()
    large, per_event = [], []
    with data.open(args.file) as events, Larcv3File(args.file) as raw:
        count = len(events) if args.events is None else min(args.events, len(events))
        for k in range(count):
            image = events[k].planes[PLANE]
            truth, truth_class, info = merged_truth(image, raw.cluster2d(CLUSTERS, k)[PLANE])
            det = model.net.predict([image])[0]
            ours = network.add(image.values, truth, truth_class, InstancePredictions.from_detections(det))
            theirs = baseline.add(image.values, truth, truth_class,
                                  dbscan_predictions(image.coords, image.values, BASELINE["eps"],
                                                     BASELINE["min_samples"]))
            w = image.values >= ADC_THRESHOLD
            ids = np.unique(truth[w & (truth >= 0)])
            large.append(np.array([(w & (truth == i)).sum() >= LARGE for i in ids], bool))
            picture = draw_instances(image, image.coords, det.site_instance.numpy(), truth,
                                     args.out / f"event_{k}.png",
                                     f"SBND event {k}, plane {PLANE}: sMask-RCNN ({Path(args.model).name}) "
                                     f"on the real file; truth merged by label")
            per_event.append({"event": k, **info, "shape": list(image.shape), "detections": len(det),
                              "sites_below_threshold": int((~w).sum()),
                              "smaskrcnn_efficiency": [float(x) for x in ours.efficiency],
                              "dbscan_efficiency": [float(x) for x in theirs.efficiency],
                              "truth_class": [int(x) for x in ours.truth_class], "display": str(picture)})
    ours, theirs = network.summary(), baseline.summary()
    ours["efficiency_large"], theirs["efficiency_large"] = (_large_efficiency(network, large),
                                                            _large_efficiency(baseline, large))
    report = {"model": args.model, "sha256": model.settings.sha256, "file": str(args.file), "plane": PLANE,
              "clusters": f"cluster2d_{CLUSTERS}", "truth": "merged by label: neutrino-labelled pixels one nue "
              "instance, every other clustered pixel its dominant cluster's cosmic instance",
              "large": LARGE, "events": per_event, "smaskrcnn": ours, "dbscan_baseline": {**theirs, **BASELINE}}
    (args.out / "realism_smaskrcnn.json").write_text(json.dumps(report, indent=1) + "\n")
    print(table(ours, theirs, len(per_event), sum(len(e["smaskrcnn_efficiency"]) for e in per_event)))
    return 0


def table(ours: dict, theirs: dict, events: int, truths: int) -> str:
    def fmt(v):
        return "—" if v is None else f"{v:.3f}"

    rows = [("efficiency", lambda s: s["efficiency"]), ("purity", lambda s: s["purity"]),
            ("covered (eff > 0.8)", lambda s: s["covered"]), ("missed (eff 0)", lambda s: s["missed"]),
            ("event efficiency", lambda s: s["event_efficiency"]), ("event purity", lambda s: s["event_purity"]),
            (f"efficiency, >= {LARGE} px", lambda s: s["efficiency_large"]),
            ("cosmic efficiency", lambda s: s["per_class"]["cosmic"]["efficiency"]),
            ("cosmic purity", lambda s: s["per_class"]["cosmic"]["purity"]),
            ("cosmic covered", lambda s: s["per_class"]["cosmic"]["covered"]),
            ("cosmic missed", lambda s: s["per_class"]["cosmic"]["missed"]),
            ("nue efficiency", lambda s: s["per_class"]["nue"]["efficiency"]),
            ("nue purity", lambda s: s["per_class"]["nue"]["purity"])]
    lines = [f"{events} SBND events, plane {PLANE}, {truths} true instances "
             f"({ours['per_class']['cosmic']['interactions']} cosmic, {ours['per_class']['nue']['interactions']} nue); "
             f"sMask-RCNN {ours['predictions']} counted detections",
             "| metric | sMask-RCNN | DBSCAN baseline |", "|---|---:|---:|"]
    lines += [f"| {name} | {fmt(get(ours))} | {fmt(get(theirs))} |" for name, get in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
