"""sparse3d and cluster3d from a file written by the official larcv3 library
(tests/fixtures/larcv3_cluster3d.h5, made by scripts/make_larcv3_cluster_fixture.py)."""

from pathlib import Path

import numpy as np

import lartpcnet.data as data
from lartpcnet.data.larcv3 import Larcv3File

FIXTURE = Path(__file__).parent / "fixtures" / "larcv3_cluster3d.h5"
SHAPE = (10, 12, 14)
# what the script wrote: voxel id -> value, and the clusters
EVENTS = [
    {"tensor": {5: 1.5, 17: 2.0, 200: 0.5, 1679: 3.25}, "clusters": [{5: 1.5, 17: 2.0}, {200: 0.5, 1679: 3.25}]},
    {"tensor": {0: 4.0, 99: 1.0}, "clusters": [{0: 4.0, 99: 1.0}]},
]


def coords_of(ids):
    return np.stack(np.unravel_index(np.array(list(ids)), SHAPE), 1)  # C order over number_of_voxels


def test_sparse3d_and_cluster3d_written_by_larcv3():
    with Larcv3File(FIXTURE) as f:
        assert len(f) == 2
        for number, expected in enumerate(EVENTS):
            volume = f.sparse3d("voxels", number)
            assert volume.shape == SHAPE
            assert np.array_equal(volume.coords, coords_of(expected["tensor"]))
            assert np.array_equal(volume.values, np.array(list(expected["tensor"].values()), np.float32))
            clusters = f.cluster3d("voxels", number)
            assert len(clusters) == len(expected["clusters"])
            for cluster, want in zip(clusters, expected["clusters"], strict=True):
                assert np.array_equal(cluster.coords, coords_of(want))
                assert np.array_equal(cluster.values, np.array(list(want.values()), np.float32))


def test_voxel_events_through_open():
    with data.open(FIXTURE) as f:
        event = f[0]
    assert event.planes == [] and event.voxels is not None and len(event.voxels) == 4
