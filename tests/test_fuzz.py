"""Fuzz: seeded random corruptions of a lartpcnet file, a larcv3 file, a larcv2 file and a
checkpoint each end as a valid read or a one-line error, never a crash, a hang or a traceback
(tests/fuzzing.py). A quick subset runs with the suite; the full run is marked slow:

    .venv/bin/python -m pytest tests/test_fuzz.py -m slow -q     # or: python -m tests.fuzzing run
"""

import json

import pytest

from tests.fuzzing import EXTRA_KINDS, FAILURES, KINDS, corrupt, counts, make_inputs, run

QUICK_CASES = 12  # per kind, with the suite
FULL_CASES = 300  # per kind, the slow run (docs/reliability.md has its counts)
SBND_CASES = 100  # of the real SBND file (3.6 MB), the slow run


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("fuzz"))


def failures(records: list[dict]) -> list[dict]:
    return [r for r in records if r["outcome"] in FAILURES]


def check(records: list[dict], cases: int, kinds=KINDS) -> None:
    bad = failures(records)
    assert not bad, json.dumps(bad[:5], indent=1)
    table = counts(records)
    for kind in kinds:
        assert table[kind]["cases"] == cases
        assert table[kind]["error"] > 0  # the corruptions do damage: the readers notice
        assert table[kind]["crash"] == table[kind]["hang"] == 0


def test_fuzz_quick(inputs):
    check(run(inputs, QUICK_CASES, seed=1), QUICK_CASES)


@pytest.mark.slow
def test_fuzz_full(inputs):
    check(run(inputs, FULL_CASES, seed=0), FULL_CASES)
    check(run(inputs, SBND_CASES, seed=0, kinds=EXTRA_KINDS), SBND_CASES, EXTRA_KINDS)


def test_same_seed_same_corruptions(inputs, tmp_path):
    for kind in KINDS:
        for index in range(6):
            made = []
            for seed in (5, 5):
                out = tmp_path / str(len(made)) / f"case{inputs[kind].suffix}"  # torch.save writes the name
                out.parent.mkdir(exist_ok=True)
                made.append((corrupt(inputs[kind], kind, index, seed, out), out.read_bytes()))
            assert made[0] == made[1]
        # another seed, other corruptions
        assert any(corrupt(inputs[kind], kind, i, 5, tmp_path / "a") != corrupt(inputs[kind], kind, i, 6,
                                                                                  tmp_path / "b") for i in range(6))


def test_a_crash_or_a_hang_is_recorded_and_the_run_goes_on(inputs):
    faults = {"lartpcnet:1": "crash", "larcv3:0": "hang", "larcv2:1": "stuck"}
    records = run(inputs, 2, seed=1, timeout=4, grace=3, kinds=("lartpcnet", "larcv3", "larcv2"), faults=faults)
    outcome = {f"{r['kind']}:{r['case']}": r for r in records}
    assert outcome["lartpcnet:1"]["outcome"] == "crash" and "SIGSEGV" in outcome["lartpcnet:1"]["message"]
    assert outcome["larcv3:0"]["outcome"] == "hang" and "alarm" in outcome["larcv3:0"]["message"]
    assert outcome["larcv2:1"]["outcome"] == "hang" and "worker killed" in outcome["larcv2:1"]["message"]
    for name in ("lartpcnet:0", "larcv3:1", "larcv2:0"):  # the cases around them still ran
        assert outcome[name]["outcome"] in ("valid", "error")
