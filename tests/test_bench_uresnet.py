"""Helpers of bench uresnet: the synthetic full plane and the report table."""

import numpy as np

from lartpcnet.bench import uresnet


def test_full_plane_comes_near_the_pixel_count_without_duplicates():
    plane = uresnet.full_plane(pixels=40_000, seed=1)
    in_window = (plane.values >= 10) & (plane.values <= 300)
    one_event = uresnet.full_plane(pixels=1, seed=1)  # the first overlay alone
    # the overlays stop where the count is nearest the target: within one event's pixels of it
    assert abs(int(in_window.sum()) - 40_000) <= len(one_event) and len(plane) > 2 * len(one_event)
    keys = plane.coords[:, 0] * 100_000 + plane.coords[:, 1]
    assert len(np.unique(keys)) == len(keys) and plane.shape == (1008, 3456)


def test_markdown_lists_every_case():
    timing = {"ms": 10.0, "min_ms": 9.0, "peak_mb": 5.0}
    report = {"cpu": "x", "torch": "t", "threads": 2, "network": uresnet.SPARSESSNET,
              "plane": {"sites": 20000, **timing}, "three_planes": {"ms": 30.0, "sites": [1, 2, 3]},
              "plane_bf16": timing, "three_planes_bf16": {"ms": 20.0},
              "stream": {"fp32": {"planes": 24, "median_sites": 20000, "ms": 250.0, "rss_growth_mb": 3.0},
                         "bf16": {"planes": 24, "median_sites": 20000, "ms": 210.0, "rss_growth_mb": -1.0}},
              "training": {"sites_per_image": 3500, "iterations_per_second": 2.5, **timing},
              "training_1500": {"sites_per_image": 1500, "iterations_per_second": 4.5, **timing},
              "bf16_accuracy": {"plane_labels_changed": 0.004, "crops": 16,
                                "crop_accuracy": {"fp32": 0.95, "bf16": 0.949}},
              "dense_plane": {"ms": 1000.0, "peak_mb": 3000.0},
              "batch_scan": [{"batch": 1, "sparse": timing, "dense": timing}, {"batch": 8, "sparse": timing}],
              "cube_scan": [{"size": 192, "voxels": 100, "sparse": timing, "dense": timing},
                            {"size": 512, "voxels": 300, "sparse": timing}]}
    text = uresnet.markdown(report, "lartpcnet bench uresnet")
    assert "20000 px" in text and "100× faster" in text and "4.50 it/s" in text and "2.50 it/s" in text
    assert "0.40% of the plane's labels change" in text and "95.00% (fp32) vs 94.90% (bf16)" in text
    assert ("24 different full planes one after another (median 20000 px), bf16: median per plane, RSS growth "
            "after the 4th | 210 ms | -1 |") in text
    assert "| 1 | 10 | 10 | 5 |" in text and "| 8 | 10 | — | |" in text
    assert "| 192³ | 100 | 10 | 10 | 5 |" in text and "| 512³ | 300 | 10 | — (does not fit in 24 GB) | |" in text
    report["cube_scan"][0]["dense"] = {"error": "MemoryError"}
    assert "| 192³ | 100 | 10 | failed: MemoryError | |" in uresnet.markdown(report, "lartpcnet bench uresnet")


def test_a_dense_case_runs_in_a_process_of_its_own():
    result = uresnet._dense_in_process("batch", 1, 1)
    assert "error" not in result, result
    assert result["ms"] > 0 and result["peak_mb"] is not None and result["peak_mb"] > 10  # a dense 512 x 512 U-ResNet
