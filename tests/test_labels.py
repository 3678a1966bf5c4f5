"""Label mappings between lartpcnet, track/shower, and larcv/SPINE codes."""

import numpy as np

from lartpcnet.data.labels import DELTA, HIP, MICHEL, MIP, SHOWER, to_spine, to_two_class


def test_five_classes_to_track_and_shower():
    semantic = np.array([HIP, MIP, SHOWER, DELTA, MICHEL])
    assert to_two_class(semantic).tolist() == [0, 0, 1, 1, 1]  # HIP, MIP are tracks


def test_to_spine_codes():
    # SPINE: shower 0, track 1, Michel 2, delta 3, low-energy 4
    assert to_spine(np.array([HIP, MIP, SHOWER, DELTA, MICHEL])).tolist() == [1, 1, 0, 3, 2]
