"""bench michel on one event per sample: both samples, both label sources, the flags it timed."""

import json

from lartpcnet.bench import michel


def test_bench_michel_times_the_readme_command_on_both_samples(tmp_path):
    report = michel.run(events=1, threads=1, progress=False)
    assert [case["sample"] for case in report["cases"]] == list(michel.SAMPLES)
    # the README's command: the shipped weights' recommended settings, --tta and --add-showers
    assert report["flags"] == "--track-classes MIP,HIP --bridge-classes shower --tta --add-showers"
    for case in report["cases"]:
        assert case["voxels_median"] > 0
        assert case["truth_labels"]["median_ms"] > 0
        assert case["network_labels"]["median_ms"] > 0 and case["network"]["median_ms"] > 0  # weights ship
        assert case["network_tta"]["median_ms"] > 0
    written = michel.write(report, tmp_path, "lartpcnet bench michel --events 1")
    assert written == [tmp_path / "michel.md", tmp_path / "michel.json"]
    text = (tmp_path / "michel.md").read_text()
    assert "`lartpcnet bench michel --events 1`" in text and report["flags"] in text
    assert text.count("| michel |") == 2 and text.count("| pilarnet3d |") == 2
    assert json.loads((tmp_path / "michel.json").read_text())["flags"] == report["flags"]
