"""Writes tests/fixtures/larcv3_cluster3d.h5 with the official larcv3 library (larcv==3.5.1).

Two events of a 3D volume of 10 x 12 x 14 voxels: sparse3d 'voxels' and cluster3d 'voxels'
(two clusters in event 0, one in event 1). The voxel ids and values are fixed below, so the
test knows what the file holds. Run in the venv scripts/check_larcv3.sh builds:
    benchmarks/.peers/larcv3/bin/python scripts/make_larcv3_cluster_fixture.py
"""

import larcv

SHAPE = (10, 12, 14)
EVENTS = [
    {"tensor": {5: 1.5, 17: 2.0, 200: 0.5, 1679: 3.25}, "clusters": [{5: 1.5, 17: 2.0}, {200: 0.5, 1679: 3.25}]},
    {"tensor": {0: 4.0, 99: 1.0}, "clusters": [{0: 4.0, 99: 1.0}]},
]


def meta() -> "larcv.ImageMeta3D":
    m = larcv.ImageMeta3D()
    for dim, n in enumerate(SHAPE):
        m.set_dimension(dim, float(n), n)
    m.set_projection_id(0)
    return m


def voxel_set(values: dict) -> "larcv.VoxelSet":
    vs = larcv.VoxelSet()
    for index, value in values.items():
        vs.emplace(index, value, False)
    return vs


io = larcv.IOManager(larcv.IOManager.kWRITE)
io.set_out_file("tests/fixtures/larcv3_cluster3d.h5")
io.initialize()
for number, event in enumerate(EVENTS):
    io.set_id(1, 0, number)
    io.get_data("sparse3d", "voxels").set(voxel_set(event["tensor"]), meta())
    clusters = larcv.SparseCluster3D()
    clusters.meta(meta())
    for k, values in enumerate(event["clusters"]):
        vs = voxel_set(values)
        vs.id(k)
        clusters.insert(vs)
    io.get_data("cluster3d", "voxels").set(clusters)
    io.save_entry()
print("entries written:", io.get_n_entries_out())
io.finalize()
print("wrote tests/fixtures/larcv3_cluster3d.h5")
