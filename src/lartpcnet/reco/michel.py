"""Michel electron reconstruction on U-ResNet output (Domine & Terao section VII).

Per event, on the sites the network labelled:

1. DBSCAN groups the predicted Michel sites (eps 2.8, min_samples 5) and the predicted MIP sites
   (eps 2.8, min_samples 5; see below).
2. A Michel cluster is a candidate if it is **attached** to a MIP cluster (nearest sites closer
   than 2.83 = 2 sqrt 2 px: the paper's "less than 1 px distance between the nearest pixels",
   with the 2 sqrt 2 its analysis code used) and sits at that cluster's **edge**: with the MIP
   sites within 15 px of the touching point removed, DBSCAN still finds exactly one cluster in
   the rest of that MIP cluster (or nothing is left: a short track touched anywhere).

One default differs from the paper: MIP min_samples is 5, not 10. On this simulator's voxels a
muon track is one to two voxels wide, with a median of 8 sites within 2.8 px of a track site, so
min_samples 10 leaves most track sites out of any cluster: with truth labels standing in for the
network, the ID efficiency falls below 50 % with 10 and is above 90 % with 5
(tests/test_michel.py; the code behind the paper later used 5 as well).
``--mip-min-samples 10`` restores the paper's value.

``--track-classes MIP,HIP`` counts HIP-predicted sites as track too. A stopping muon's last few
centimetres carry a Bragg rise, and a network that calls them HIP (the shipped 3D weights do)
leaves the Michel several voxels from the nearest MIP site, so the paper's MIP-only track
rejects it as detached. The default stays the paper's MIP.

``--michel-score P`` calls a site Michel when the network gives it Michel probability >= P
instead of taking its top class (the paper). Below 0.5 it keeps Michel electrons whole where the
network hesitates between Michel and shower, at some cost in cluster purity: an operating point
for calibration users to choose (purity for the spectrum's shape, efficiency for statistics).

``--bridge-classes shower`` joins Michel clusters that a path of Michel and shower-predicted sites
connects (steps of at most the Michel eps) before the attachment and edge tests. The network at
times calls a band across a Michel electron shower, which cuts the electron in two; the far piece,
detached from the muon, was lost. With truth labels the primary ionization is one cluster, so the
join restores what the network cut; a bremsstrahlung blob that touches the electron through shower
sites joins too, which costs cluster purity. The default is the paper's: no bridge.
3. Each candidate is matched to the true Michel cluster (the sites of one Michel electron's
   primary ionization) it overlaps most.

Metrics (the paper's definitions): ID efficiency = true clusters matched by a candidate / true
clusters; ID purity = candidates matched to a true cluster / candidates; cluster efficiency and
purity = overlap / true size and overlap / candidate size, averaged over matched candidates; each
with and without the quality cut (candidates, and true clusters, of at least 10 sites).

Coordinates are pixels (2D wire planes, energies in ADC) or voxels (3D, energies in MeV).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from lartpcnet.data.labels import MICHEL, SEMANTIC_NAMES, SHOWER

GOAL_MS = 50.0  # the reconstruction step's budget per 512^3 event on CPU (network excluded)


class MichelConfig(BaseModel):
    """Parameters of the reconstruction; defaults are the paper's."""

    model_config = ConfigDict(extra="forbid")
    michel_eps: float = Field(2.8, gt=0, description="DBSCAN eps for predicted Michel sites [px]")
    michel_min_samples: int = Field(5, ge=1, description="DBSCAN min_samples for predicted Michel sites")
    mip_eps: float = Field(2.8, gt=0, description="DBSCAN eps for predicted track sites [px]")
    mip_min_samples: int = Field(5, ge=1, description="DBSCAN min_samples for predicted track sites "
                                 "(the paper: 10; 5 suits one-to-two-site-wide tracks, see the module docstring)")
    track_classes: str = Field("MIP", description="predicted classes that make up the muon track, "
                               "comma-separated: MIP (the paper) or MIP,HIP")
    attach_distance: float = Field(2.83, gt=0, description="attached: nearest Michel-track site distance "
                                   "below this [px]")
    edge_radius: float = Field(15.0, gt=0, description="edge test: track sites this close to the touching "
                               "point are removed [px]")
    edge_min_samples: int = Field(5, ge=1, description="edge test: DBSCAN min_samples for the rest of the track")
    min_pixels: int = Field(10, ge=1, description="the quality cut [sites]")
    shower_radius: float = Field(50.0, gt=0, description="--add-showers: shower sites this close join a "
                                 "candidate's energy [px]")
    michel_score: float = Field(0.0, ge=0, lt=1, description="a site is Michel when its Michel probability is "
                                "at least this (0: its top class, the paper); below 0.5 trades cluster "
                                "purity for efficiency")
    bridge_classes: str = Field("", description="predicted classes through which Michel clusters join, "
                                "comma-separated ('': none, the paper; 'shower' keeps an electron the "
                                "network cut with a shower band whole)")

    @field_validator("track_classes", "bridge_classes")
    @classmethod
    def _known_classes(cls, value: str, info: ValidationInfo) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = [n for n in names if n not in SEMANTIC_NAMES]
        track = info.field_name == "track_classes"
        if (track and not names) or unknown or "Michel" in names:
            example = "'MIP' (the paper) or 'MIP,HIP'" if track else "'shower', or '' for none (the paper)"
            raise ValueError(f"{info.field_name} {value!r}: give comma-separated names among HIP, MIP, shower, "
                             f"delta (not Michel), e.g. {example}")
        return ",".join(names)

    def track_codes(self) -> list[int]:
        return _codes(self.track_classes)

    def bridge_codes(self) -> list[int]:
        return _codes(self.bridge_classes)

    def flags(self) -> str:
        """The ``lartpcnet michel`` flags that give this configuration (those off their default)."""
        return " ".join(f"--{name.replace('_', '-')} {value}"
                        for name, value in self.model_dump(exclude_defaults=True).items())


def _codes(classes: str) -> list[int]:
    return [SEMANTIC_NAMES.index(n) for n in classes.split(",") if n]


def recommended(model) -> MichelConfig:
    """The settings a model's config recommends for its outputs (``post: michel:``; the shipped
    3D weights': docs/models.md says why), else the paper's."""
    return MichelConfig.model_validate(model.settings.post.get("michel", {}))


CANDIDATE_DTYPE = np.dtype([
    ("event", "i8"), ("pixels", "i4"), ("energy", "f4"), ("attached", "?"), ("edge", "?"), ("accepted", "?"),
    ("distance", "f4"), ("mip_pixels", "i4"), ("matched", "i4"), ("overlap", "i4"), ("true_pixels", "i4"),
    ("true_energy", "f4"), ("true_kinetic", "f4"), ("shower_energy", "f4"),
])
TRUE_DTYPE = np.dtype([("event", "i8"), ("instance", "i4"), ("pixels", "i4"), ("energy", "f4"),
                       ("kinetic", "f4"), ("matched", "?"), ("matched_cut", "?")])


def _dbscan(coords: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    from sklearn.cluster import DBSCAN  # lazy: the CLI builds its parser from this module

    if len(coords) == 0:
        return np.zeros(0, np.int64)
    return DBSCAN(eps=eps, min_samples=min_samples).fit(coords).labels_


def find_candidates(coords: np.ndarray, predicted: np.ndarray, config: MichelConfig | None = None) -> list[dict]:
    """Predicted Michel clusters of one image with their attachment and edge tests.

    Returns one dict per Michel cluster: ``sites`` (indices into ``coords``), ``attached``,
    ``edge``, ``accepted`` (both), ``distance`` to the nearest MIP-cluster site and the size of
    that MIP cluster (``mip_pixels``, 0 when there is none)."""
    from scipy.spatial import cKDTree

    config = config or MichelConfig()
    coords = np.asarray(coords, np.float64)
    michel = np.nonzero(predicted == MICHEL)[0]
    mip = np.nonzero(np.isin(predicted, config.track_codes()))[0]
    michel_labels = _dbscan(coords[michel], config.michel_eps, config.michel_min_samples)
    if config.bridge_classes:
        michel_labels = _bridge(coords, predicted, michel, michel_labels, config)
    mip_labels = _dbscan(coords[mip], config.mip_eps, config.mip_min_samples)
    clustered_mip = mip[mip_labels >= 0]
    mip_cluster = mip_labels[mip_labels >= 0]
    tree = cKDTree(coords[clustered_mip]) if len(clustered_mip) else None
    out = []
    for label in np.unique(michel_labels[michel_labels >= 0]):
        sites = michel[michel_labels == label]
        record = {"sites": sites, "attached": False, "edge": False, "distance": np.inf, "mip_pixels": 0}
        if tree is not None:
            dist, nearest = tree.query(coords[sites])
            which = int(np.argmin(dist))
            record["distance"] = float(dist[which])
            record["attached"] = record["distance"] < config.attach_distance
            touching = coords[clustered_mip[nearest[which]]]
            track = clustered_mip[mip_cluster == mip_cluster[nearest[which]]]
            record["mip_pixels"] = len(track)
            if record["attached"]:
                far = track[np.linalg.norm(coords[track] - touching, axis=1) > config.edge_radius]
                rest = _dbscan(coords[far], config.mip_eps, config.edge_min_samples)
                # a cluster touching two track clusters sits between them: the network has cut a
                # track in two by calling its middle Michel, which is no track end
                touched = np.unique(mip_cluster[nearest[dist < config.attach_distance]])
                record["edge"] = len(touched) == 1 and (len(far) == 0 or len(np.unique(rest[rest >= 0])) == 1)
        record["accepted"] = record["attached"] and record["edge"]
        out.append(record)
    return out


def _bridge(coords: np.ndarray, predicted: np.ndarray, michel: np.ndarray, michel_labels: np.ndarray,
            config: MichelConfig) -> np.ndarray:
    """Michel cluster labels with clusters joined where a path of Michel and bridge-class sites
    (steps of at most ``michel_eps``) connects them; unclustered Michel sites stay unclustered."""
    if len(np.unique(michel_labels[michel_labels >= 0])) < 2:
        return michel_labels  # nothing to join: skip the DBSCAN over the (many) shower sites
    connected = np.nonzero(np.isin(predicted, [MICHEL, *config.bridge_codes()]))[0]
    component = _components(coords[connected], config.michel_eps)[np.searchsorted(connected, michel)]
    return np.where(michel_labels >= 0, component, -1)


def _components(coords: np.ndarray, eps: float) -> np.ndarray:
    """DBSCAN with ``min_samples`` 1 (every site a core site): the connected components of the
    graph joining sites at most ``eps`` apart. Built as that graph, it is several times faster
    than DBSCAN on the thousands of shower sites of a busy event."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pairs = cKDTree(coords).query_pairs(eps, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(len(coords),) * 2)
    return connected_components(graph, directed=False)[1]


def michel_at_score(predicted: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """The network's labels with every site of Michel probability >= ``threshold`` made Michel."""
    labels = np.array(predicted, copy=True)
    labels[np.asarray(scores)[:, MICHEL] >= threshold] = MICHEL
    return labels


def true_clusters(semantic: np.ndarray, instance: np.ndarray) -> dict[int, np.ndarray]:
    """Sites of each Michel electron's primary ionization, by particle id."""
    sites = np.nonzero((semantic == MICHEL) & (instance >= 0))[0]
    ids = instance[sites]
    return {int(i): sites[ids == i] for i in np.unique(ids)}


def candidates(prediction, config: MichelConfig | None = None) -> list[dict]:
    """The Michel electron candidates of one network answer (``LoadedModel.predict``; with a
    model's own settings: ``candidates(result, recommended(model))``). Per Michel cluster: its
    sites' ``coords``, ``pixels``, ``energy`` (the sum of the input's values there: MeV for voxels,
    ADC for wire planes), the attachment and edge tests, and ``accepted`` (both)."""
    from lartpcnet.errors import UserError

    if "Michel" not in prediction.classes or prediction.values is None:
        raise UserError(f"Michel candidates come from a segmentation network's answer, not from a "
                        f"{'/'.join(prediction.classes)} one")
    config = config or MichelConfig()
    predicted = prediction.label
    if config.michel_score > 0:
        predicted = michel_at_score(predicted, prediction.scores, config.michel_score)
    return [{"coords": prediction.coords[c["sites"]], "pixels": len(c["sites"]),
             "energy": float(prediction.values[c["sites"]].sum()),
             **{key: c[key] for key in ("attached", "edge", "accepted", "distance", "mip_pixels")}}
            for c in find_candidates(prediction.coords, predicted, config)]


def reconstruct_event(event: int, coords: np.ndarray, predicted: np.ndarray, values: np.ndarray,
                      semantic: np.ndarray, instance: np.ndarray, kinetic: dict[int, float],
                      config: MichelConfig | None = None, add_showers: bool = False) -> tuple[list, list, list]:
    """Candidates of one image matched to truth: (candidate rows, true-cluster rows, candidate
    sites). ``kinetic`` maps Michel electron ids to their initial kinetic energy [MeV]."""
    from scipy.spatial import cKDTree

    config = config or MichelConfig()
    candidates = find_candidates(coords, predicted, config)
    truth = true_clusters(semantic, instance)
    showers = np.nonzero(predicted == SHOWER)[0]
    shower_energy = np.zeros(len(candidates))
    accepted = [k for k, c in enumerate(candidates) if c["accepted"]]
    if add_showers and len(showers) and accepted:
        # each shower site joins the nearest accepted candidate within shower_radius
        owner = np.concatenate([np.full(len(candidates[k]["sites"]), k) for k in accepted])
        tree = cKDTree(np.asarray(coords, np.float64)[np.concatenate([candidates[k]["sites"] for k in accepted])])
        dist, nearest = tree.query(np.asarray(coords, np.float64)[showers], distance_upper_bound=config.shower_radius)
        near = np.isfinite(dist)
        np.add.at(shower_energy, owner[nearest[near]], values[showers[near]])
    rows, sites = [], []
    matched_true: dict[int, list[int]] = {}
    for k, c in enumerate(candidates):
        ids, counts = np.unique(instance[c["sites"]][semantic[c["sites"]] == MICHEL], return_counts=True)
        keep = ids >= 0
        ids, counts = ids[keep], counts[keep]
        match, overlap = (int(ids[np.argmax(counts)]), int(counts.max())) if len(ids) else (-1, 0)
        true_sites = truth.get(match, np.zeros(0, np.int64))
        rows.append((event, len(c["sites"]), float(values[c["sites"]].sum()), c["attached"], c["edge"], c["accepted"],
                     c["distance"], c["mip_pixels"], match, overlap, len(true_sites),
                     float(values[true_sites].sum()), kinetic.get(match, np.nan), shower_energy[k]))
        sites.append(np.asarray(coords)[c["sites"]])
        if c["accepted"] and match >= 0:
            matched_true.setdefault(match, []).append(len(c["sites"]))
    true_rows = []
    for i, s in truth.items():
        sizes = matched_true.get(i, [])
        true_rows.append((event, i, len(s), float(values[s].sum()), kinetic.get(i, np.nan), bool(sizes),
                          any(n >= config.min_pixels for n in sizes)))
    return rows, true_rows, sites


def metrics(candidates: np.ndarray, truth: np.ndarray, min_pixels: int = 10) -> dict:
    """The paper's metrics from candidate and true-cluster tables, without and with the quality cut."""
    report = {}
    for name, cut in (("all", 0), ("quality_cut", min_pixels)):
        cand = candidates[candidates["accepted"] & (candidates["pixels"] >= cut)]
        true = truth[truth["pixels"] >= cut]
        matched = cand[cand["matched"] >= 0]
        found = true["matched_cut"] if cut else true["matched"]
        efficiency = matched["overlap"] / np.maximum(matched["true_pixels"], 1)
        purity = matched["overlap"] / np.maximum(matched["pixels"], 1)
        report[name] = {
            "n_true": len(true), "n_candidates": len(cand), "n_matched": len(matched),
            "id_efficiency": float(found.mean()) if len(true) else None,
            "id_purity": float(len(matched) / len(cand)) if len(cand) else None,
            "cluster_efficiency": float(efficiency.mean()) if len(matched) else None,
            "cluster_purity": float(purity.mean()) if len(matched) else None,
            "both_above_95": float(((efficiency > 0.95) & (purity > 0.95)).mean()) if len(matched) else None,
        }
    return {**report["all"], "quality_cut": report["quality_cut"], "min_pixels": min_pixels}


# --- the lartpcnet michel command: network, reconstruction, output file, plots -------------------


def _kinetic_of_michels(particles: np.ndarray | None) -> dict[int, float]:
    if particles is None or len(particles) == 0:
        return {}
    decays = particles[particles["process"] == b"Decay"]
    return {int(i): float(e) for i, e in zip(decays["id"], decays["energy_init"], strict=True)}


def _truth_labels(semantic: np.ndarray, instance: np.ndarray, particles: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """Truth as primary-ionization Michel clusters (secondaries relabelled shower) where the
    particle table allows it; otherwise the labels as they are."""
    from lartpcnet.data.labels import relabel_secondaries

    if particles is None:
        return semantic, False
    return relabel_secondaries(semantic, instance, particles), True


FORMAT = "lartpcnet-michel"


def _tables(candidates: list, truth: list, sites: list, dim: int) -> dict[str, np.ndarray]:
    """The michel file layout: the candidate and true-cluster tables, and each candidate's
    sites by offsets."""
    coords = np.concatenate(sites).astype(np.int32) if sites else np.zeros((0, dim), np.int32)
    return {"candidates": np.array(candidates, dtype=CANDIDATE_DTYPE),
            "true_clusters": np.array(truth, dtype=TRUE_DTYPE), "sites/coords": coords,
            "sites/offsets": np.concatenate([[0], np.cumsum([len(x) for x in sites])]).astype(np.int64)}


def read_output(path) -> dict:
    """The tables (and candidate sites) of a ``lartpcnet michel`` output file."""
    from lartpcnet.io_utils import open_output

    with open_output(path, FORMAT, "lartpcnet michel output") as f:
        return {"candidates": f["candidates"][:], "true_clusters": f["true_clusters"][:],
                "coords": f["sites/coords"][:], "offsets": f["sites/offsets"][:],
                "config": f.attrs.get("config", "{}"), "job": f.attrs.get("job", "{}")}


def run(model_spec, out: str | None = None, input_path: str | None = None, sample: str | None = None,
        events: int = 100, seed: int = 12345, plane: int | None = None, config: MichelConfig | None = None,
        add_showers: bool = False, plots: str | None = None, part_size: int | None = None, progress: bool = True,
        tta: bool = False, batch_size: int = 4, overwrite: bool = False) -> dict:
    """``lartpcnet michel``: segmentation, reconstruction, matching, metrics. ``out``: the
    candidates, true clusters and candidate sites as a resumable HDF5 file (none when None)."""
    import json
    import sys
    import tempfile
    import time
    from pathlib import Path

    from tqdm import tqdm

    from lartpcnet import runner
    from lartpcnet.data.source import EventSource, command_line_source
    from lartpcnet.errors import UserError
    from lartpcnet.parts import PartsJob, read_tables

    config = config or MichelConfig()
    source = command_line_source(input_path, sample, events, seed)
    model = model_spec if isinstance(model_spec, runner.LoadedModel) else runner.load_model(model_spec, tta=tta)
    if "michel" not in model.task.post_steps:
        raise UserError(f"michel runs on segmentation networks; {model.settings.source} is a {model.task.name} model")
    if plane is not None:
        model = model.with_settings(plane=plane)
    if out is not None:
        runner.check_output(out, [input_path], overwrite)
    scratch = None if out is not None else tempfile.TemporaryDirectory(prefix="lartpcnet-michel-")
    target = Path(out) if out is not None else Path(scratch.name) / "michel.h5"
    _dbscan(np.zeros((1, 3)), 1.0, 1)  # imports scikit-learn now, not inside the timed reconstruction
    dim = model.output_dim
    record = {"model": model.settings.sha256, "source": source.model_dump(), "settings":
              model.settings.model_dump(include={"data", "precision", "tta"}), "config": config.model_dump(),
              "add_showers": add_showers, "input": runner.file_identity(input_path) if input_path else None}
    reco_seconds, reco_events, relabelled = 0.0, 0, True
    with EventSource(source) as event_source:
        n_events = len(event_source)
        job = PartsJob(target, record, n_events)
        todo = job.todo()
        bar = tqdm(total=n_events, initial=n_events - len(todo), desc="michel", unit="event", disable=not progress,
                   file=sys.stderr)

        def batches():
            nonlocal reco_seconds, reco_events, relabelled
            # one event at a time, so a part is closed as soon as it is full, mid-batch too
            for k, (i, event, _, output) in zip(todo, runner.predicted(model, event_source, todo, batch_size, bar),
                                                strict=True):
                predicted = output.label
                if config.michel_score > 0:
                    predicted = michel_at_score(predicted, output.scores, config.michel_score)
                semantic, ok = _truth_labels(output.truth, output.extra["instance"], event.particles)
                relabelled &= ok
                started = time.perf_counter()
                result = reconstruct_event(i, output.coords, predicted, output.extra["values"], semantic,
                                           output.extra["instance"], _kinetic_of_michels(event.particles), config,
                                           add_showers)
                reco_seconds += time.perf_counter() - started
                reco_events += 1
                yield [k], [result]

        def write(path, items, results):
            from lartpcnet.parts import write_tables

            write_tables(path, {"format": FORMAT}, _tables([r for res in results for r in res[0]],
                                                           [t for res in results for t in res[1]],
                                                           [c for res in results for c in res[2]], dim))

        job.run(batches(), write, part_size, runner.PART_SECONDS)
        bar.close()
    job_record = {"model": model.settings.source, "input": input_path and str(Path(input_path).resolve()),
                  "sample": sample, "seed": seed if sample else None, "events": n_events,
                  "plane": model.settings.data.plane, "tta": model.settings.tta}
    job.merge({"format": FORMAT, "config": json.dumps(config.model_dump()), "job": json.dumps(job_record)},
              _tables([], [], [], dim))
    tables = read_tables(target)
    if scratch is not None:
        scratch.cleanup()
    report = {"model": model.settings.source, "input": input_path, "sample": sample, "seed": seed if sample else None,
              "events": n_events, "out": out, "tta": model.settings.tta, "truth_relabelled": relabelled,
              "reco_ms_per_event": 1e3 * reco_seconds / reco_events if reco_events else None,
              **metrics(tables["candidates"], tables["true_clusters"], config.min_pixels)}
    if plots:
        report["plots"] = [str(p) for p in plot(tables["candidates"], Path(plots), add_showers, dim)]
    return report


def plot(candidates: np.ndarray, folder, add_showers: bool = False, dim: int = 3) -> list:
    """Fig. 14 (pixel counts, true vs candidate), Fig. 15 (primary-ionization energy, candidate
    vs true) and the reconstructed spectrum with the 52.3 MeV kinetic-energy edge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lartpcnet.sim.physics import MICHEL_KINETIC_ENDPOINT  # the kinetic-energy spectrum's edge (PDG masses)
    from lartpcnet.viz.plots import save_figure

    folder.mkdir(parents=True, exist_ok=True)
    unit = "MeV" if dim == 3 else "ADC"
    matched = candidates[candidates["accepted"] & (candidates["matched"] >= 0)]
    paths = []
    fig, ax = plt.subplots(figsize=(4.6, 4))
    top = max(int(matched["pixels"].max()) if len(matched) else 1, int(matched["true_pixels"].max()) if len(matched)
              else 1) + 5
    ax.hist2d(matched["true_pixels"], matched["pixels"], bins=40, range=[[0, top], [0, top]], cmin=1, cmap="viridis")
    ax.plot([0, top], [0, top], "r--", lw=0.8)
    ax.set_xlabel("matched true Michel cluster [pixels]")
    ax.set_ylabel("candidate Michel cluster [pixels]")
    paths.append(save_figure(fig, folder / "michel_pixels.png", title=f"{len(matched)} matched candidates"))
    fig, ax = plt.subplots(figsize=(5, 3.6))
    high = float(max(matched["energy"].max(), matched["true_energy"].max())) * 1.05 if len(matched) else 1.0
    bins = np.linspace(0, high, 40)
    ax.hist(matched["true_energy"], bins=bins, histtype="step", label="true (primary ionization)")
    ax.hist(matched["energy"], bins=bins, histtype="step", label="reconstructed candidates")
    ax.set_xlabel(f"Michel electron primary-ionization energy [{unit}]")
    ax.set_ylabel("clusters")
    ax.legend(fontsize=8)
    paths.append(save_figure(fig, folder / "michel_energy.png"))
    accepted = candidates[candidates["accepted"]]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    total = accepted["energy"] + (accepted["shower_energy"] if add_showers else 0)
    high = max(70.0, float(total.max()) * 1.05 if len(total) else 70.0) if dim == 3 else float(
        total.max() * 1.05 if len(total) else 1.0)
    bins = np.linspace(0, high, 36)
    ax.hist(accepted["energy"], bins=bins, histtype="step", label="candidates, primary ionization")
    if add_showers:
        ax.hist(total, bins=bins, histtype="step", label="plus nearby shower-labelled deposits")
    if dim == 3:
        kinetic = matched["true_kinetic"][np.isfinite(matched["true_kinetic"])]
        ax.hist(kinetic, bins=bins, histtype="step", ls="--", label="true Michel kinetic energy (matched)")
        ax.axvline(MICHEL_KINETIC_ENDPOINT, color="k", lw=0.8, ls=":")
        ax.text(MICHEL_KINETIC_ENDPOINT, ax.get_ylim()[1] * 0.9, f" {MICHEL_KINETIC_ENDPOINT:.1f} MeV", fontsize=7)
    ax.set_xlabel(f"reconstructed Michel energy [{unit}]")
    ax.set_ylabel("candidates")
    ax.legend(fontsize=7)
    paths.append(save_figure(fig, folder / "michel_spectrum.png"))
    return paths
