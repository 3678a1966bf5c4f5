"""The engine benchmark harness: data generation, ratios, goals and result files (on tiny cases)."""

import json

import numpy as np
import pytest

from lartpcnet.bench import engine
from lartpcnet.cli import main


def test_track_sites_are_distinct_in_bounds_and_seeded():
    shape = (64, 200)
    a = engine.track_sites(shape, 500, seed=4)
    b = engine.track_sites(shape, 500, seed=4)
    assert a.shape == (500, 2) and np.array_equal(a, b)
    assert len({tuple(r) for r in a.tolist()}) == 500
    assert (a >= 0).all() and (a < np.array(shape)).all()
    assert not np.array_equal(a, engine.track_sites(shape, 500, seed=5))


@pytest.fixture
def tiny_cases(monkeypatch):
    cases = (
        engine.Case("2d_uboone_plane", "tiny 2D", (40, 60), 150, 4, 1, (40, 60)),
        engine.Case("3d_tiny", "tiny 3D", (24, 24, 24), 200, 4, 2, (12, 12, 12)),
    )
    monkeypatch.setattr(engine, "CASES", cases)
    return cases


def test_report_ratios_goals_and_files(tiny_cases, tmp_path, capsys):
    assert main(["bench", "engine", "--quick", "--json", "--no-progress",
                 "--peers", str(tmp_path / "no-peers"), "--out", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [c["case"] for c in report["cases"]] == [c.name for c in tiny_cases]
    for case in report["cases"]:
        assert case["spconv"] is None and case["minkowski"] is None  # not installed here
        ours, dense = case["ours"], case["dense"]
        assert case["ratios"]["forward_vs_dense"] == pytest.approx(dense["forward"]["ms"] / ours["forward"]["ms"])
        assert ours["forward"]["ms"] > 0 and ours["forward_backward"]["ms"] > 0
    assert report["cases"][1]["dense"]["scale"] == 8  # 24^3 / 12^3, stated in the report
    peer_goals = [g for g in report["goals"] if "spconv" in g["goal"] or "Minkowski" in g["goal"]]
    assert all(g["met"] is None for g in peer_goals)  # not measured is not "met"
    md = (tmp_path / "engine-quick.md").read_text()
    assert "lartpcnet bench engine --quick" in md and "not installed" in md
    assert (tmp_path / "engine-quick.png").stat().st_size > 0
