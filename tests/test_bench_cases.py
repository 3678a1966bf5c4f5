"""The benchmarks whose cases run as code strings in fresh processes (so that neither ruff nor an
import sees them): each case runs with today's code and measures the image it names."""

from lartpcnet.bench import cosmictagger, maskrcnn


def test_the_cosmic_tagger_case_runs_on_a_simulated_sbnd_event():
    result = cosmictagger._case(sparse=True, factor=2, threads=1, repeats=1)
    assert "error" not in result, result
    assert result["shape"] == [640, 1024] and len(result["pixels"]) == 3 and min(result["pixels"]) > 0


def test_the_maskrcnn_cases_run_on_a_full_collection_plane():
    for backbone_only in (True, False):
        result = maskrcnn._case("light", sparse=True, backbone_only=backbone_only, threads=1, repeats=1)
        assert "error" not in result, result
        assert result["shape"] == [1008, 3456] and result["pixels"] > 1000


def test_the_maskrcnn_report_puts_sparse_and_dense_side_by_side():
    cases = [{"network": "light", "stage": stage, "sparse": sparse, "pixels": 9000, "shape": [1008, 3456],
              "ms": 100.0 if sparse else 2000.0, "peak_mb": 50.0} for stage in ("backbone", "detection")
             for sparse in (True, False)]
    text = maskrcnn.markdown({"cpu": "cpu", "threads": 2, "cases": cases}, "lartpcnet bench maskrcnn --quick")
    assert text.count("20.0×") == 2 and "lartpcnet bench maskrcnn --quick" in text
