"""Label codes and the mappings between lartpcnet's, track/shower, and larcv/SPINE's conventions.

Semantic classes (SparseSSNet, Domine & Terao): HIP 0, MIP 1, shower 2, delta 3, Michel 4;
background is the absence of a site (dense networks have their own background/track/shower).
Origins (the cosmic tagger's classes): background 0, cosmic 1, neutrino 2.

Overlap rule: a pixel or voxel takes the semantic class, particle and interaction of the deposit
that put the most charge into it; its origin is the highest origin code among all its deposits,
so neutrino (2) wins over cosmic (1) wins over background (0).
"""

from __future__ import annotations

import numpy as np

HIP, MIP, SHOWER, DELTA, MICHEL = 0, 1, 2, 3, 4
SEMANTIC_NAMES = ("HIP", "MIP", "shower", "delta", "Michel")

TRACK, SHOWER_2 = 0, 1
TWO_CLASS_NAMES = ("track", "shower")
# HIP and MIP are tracks; shower, delta and Michel electrons are showers (SparseSSNet's 5 -> 2).
SEMANTIC_TO_TWO_CLASS = np.array([TRACK, TRACK, SHOWER_2, SHOWER_2, SHOWER_2], dtype=np.int8)

# larcv / SPINE semantic codes: shower 0, track 1, Michel 2, delta 3, low-energy 4
SPINE_NAMES = ("shower", "track", "Michel", "delta", "low-energy")
SEMANTIC_TO_SPINE = np.array([1, 1, 0, 3, 2], dtype=np.int8)

ORIGIN_NAMES = ("background", "cosmic", "neutrino")
BACKGROUND_ORIGIN, COSMIC, NEUTRINO = 0, 1, 2


# classes of the dense MicroBooNE 2019 network: every pixel, background included
DENSE_CLASS_NAMES = ("background", "track", "shower")


def to_two_class(semantic: np.ndarray) -> np.ndarray:
    """HIP/MIP -> track (0); shower/delta/Michel -> shower (1)."""
    return SEMANTIC_TO_TWO_CLASS[np.asarray(semantic)]


def to_spine(semantic: np.ndarray) -> np.ndarray:
    """lartpcnet semantic codes -> larcv/SPINE codes."""
    return SEMANTIC_TO_SPINE[np.asarray(semantic)]


PRIMARY_PROCESS = {MICHEL: (b"Decay",), DELTA: (b"muIoni", b"hIoni")}


def relabel_secondaries(semantic: np.ndarray, instance: np.ndarray, particles: np.ndarray) -> np.ndarray:
    """Michel and delta sites not made by the Michel or delta electron itself (its bremsstrahlung
    photons' Compton electrons, pairs, ...) become shower (Domine & Terao section VI).

    ``particles`` is the event's particle table (``id`` and ``process`` fields); the primary
    Michel electron is the one created by ``Decay``, a primary delta ray by ``muIoni``/``hIoni``.
    """
    semantic = np.asarray(semantic).copy()
    instance = np.asarray(instance)
    if len(particles) == 0:
        return semantic
    process = np.full(int(particles["id"].max()) + 1, b"", dtype=particles["process"].dtype)
    process[particles["id"]] = particles["process"]
    for label, primaries in PRIMARY_PROCESS.items():
        sites = (semantic == label) & (instance >= 0)
        made_by = process[instance[sites]]
        secondary = ~np.isin(made_by, primaries)
        idx = np.nonzero(sites)[0][secondary]
        semantic[idx] = SHOWER
    return semantic
