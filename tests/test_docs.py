"""The README and docs/ as a user reads them: every lartpcnet command in their code blocks parses
with today's command line and names models, samples and files that exist; the README's quick
commands and its Python blocks run as written."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lartpcnet.checkpoint import shipped_models
from lartpcnet.cli import build_parser
from lartpcnet.sim.samples import sample_names

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LARTPCNET = re.compile(r"^(?:\S*/)?lartpcnet$")  # lartpcnet, .venv/bin/lartpcnet, /shared/.../lartpcnet


def code_blocks(path: Path) -> list[tuple[str, str]]:
    return re.findall(r"^```(\w*)\n(.*?)^```", path.read_text(), re.S | re.M)


def shell_lines(body: str) -> list[str]:
    """Lines of a shell block, continuations joined, comments dropped."""
    text = body.replace("\\\n", " ")
    return [line for line in (raw.split(" #")[0].strip() for raw in text.splitlines()) if line and
            not line.startswith("#")]


def lartpcnet_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in DOCS:
        for lang, body in code_blocks(path):
            if lang not in ("", "sh", "bash"):
                continue
            for line in shell_lines(body):
                if not re.search(r"(?:^|[\s/])lartpcnet(?:\.cli)?\s", line):
                    continue
                lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
                lexer.whitespace_split = True
                tokens, parts = list(lexer), [[]]
                for token in tokens:
                    if token in (";", "&&", "||", "|", "&"):
                        parts.append([])
                    else:
                        parts[-1].append(token)
                for words in parts:
                    part = shlex.join(words)
                    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):  # OMP_NUM_THREADS=1 lartpcnet ...
                        words = words[1:]
                    wrappers = {"/usr/bin/time": 1, "timeout": 2, "nice": 1}  # the words each takes
                    while words and words[0] in wrappers:
                        words = words[wrappers[words[0]]:]
                        while words and (words[0].startswith("-") or words[0].isdigit()):  # -v, -n 19, 1860
                            words = words[1:]
                    if "lartpcnet.cli" in words:  # python -m lartpcnet.cli ..., torchrun ... -m lartpcnet.cli ...
                        words = words[words.index("lartpcnet.cli"):]
                    if words and (LARTPCNET.match(words[0]) or words[0] == "lartpcnet.cli"):
                        found.append((f"{path.name}: {part}", words[1:]))
    return found


COMMANDS = lartpcnet_commands()


def test_the_docs_hold_commands_to_check():
    assert len(COMMANDS) >= 15  # the extractor finds the commands (17 when written)


@pytest.mark.parametrize("where, args", COMMANDS, ids=[c[0][:90] for c in COMMANDS])
def test_each_documented_command_parses_and_names_what_exists(where, args, capsys):
    try:
        parsed = build_parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"{where}: {capsys.readouterr().err.strip()}")
    model = getattr(parsed, "model", None)
    if model is not None:
        assert model in shipped_models() or model.endswith(".pt"), f"{where}: no shipped model {model}"
    sample = getattr(parsed, "sample", None)
    if sample is not None:
        assert sample in sample_names() or (ROOT / sample).exists(), f"{where}: no sample {sample}"
    for word in args:
        if word.startswith(("tests/", "configs/", "benchmarks/", "scripts/")):
            assert (ROOT / word).exists(), f"{where}: {word} does not exist"


@pytest.fixture
def user_folder(tmp_path):
    """A folder as a user's checkout looks from the README: tests/ and .venv/ are the repository's."""
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    venv = ROOT / ".venv"
    if not (venv / "bin" / "lartpcnet").exists():
        pytest.skip("needs the make-built .venv")
    (tmp_path / ".venv").symlink_to(venv)
    return tmp_path


def readme_block(first_line_start: str) -> str:
    blocks = [body for lang, body in code_blocks(ROOT / "README.md") if body.startswith(first_line_start)]
    assert len(blocks) == 1, f"no single README block starts with {first_line_start!r}"
    return blocks[0]


@pytest.mark.parametrize("start", [".venv/bin/lartpcnet info tests/fixtures/",
                                   ".venv/bin/lartpcnet simulate --sample particle_bomb --events 4 "])
def test_the_readme_quick_commands_run_as_written(user_folder, start):
    script = readme_block(start)
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=user_folder, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for png in re.findall(r"--out (\S+\.png)", script):
        assert (user_folder / png).stat().st_size > 10_000, png  # an event display was drawn


def test_the_readme_python_api_runs_as_written(user_folder, monkeypatch):
    shutil.copy(ROOT / "tests" / "fixtures" / "sbnd_cosmic_tagging_5events.h5", user_folder / "your_file.h5")
    monkeypatch.chdir(user_folder)
    namespace: dict = {}
    exec(compile(readme_block("import lartpcnet\n"), "README.md", "exec"), namespace)
    result, plane = namespace["result"], namespace["plane"]
    sites = {tuple(c) for c in plane.coords.tolist()}
    assert 0 < len(result.coords) <= len(sites) and all(tuple(c) in sites for c in result.coords.tolist())
    assert result.scores.shape == (len(result.coords), len(result.classes))  # the sites in the ADC window
    assert set(np.unique(result.fields["two_class_label"])) <= {0, 1}


def test_the_readme_engine_example_runs_as_written():
    import torch

    rng = np.random.default_rng(0)
    wires = rng.choice(3456 * 1008, 500, replace=False)
    coords = torch.tensor(np.stack([np.zeros(500), wires // 3456, wires % 3456], 1), dtype=torch.int64)
    feats = torch.rand(500, 1)
    namespace = {"coords": coords, "feats": feats}  # the block's "given" inputs
    exec(compile(readme_block("import torch\nfrom lartpcnet.sparse"), "README.md", "exec"), namespace)
    x, y, u = namespace["x"], namespace["y"], namespace["u"]
    assert torch.equal(y.coords, x.coords) and torch.equal(u.coords, y.coords) and u.feats.shape == (500, 32)


def test_a_command_line_in_a_doc_is_found_with_its_continuations():
    lines = shell_lines(".venv/bin/lartpcnet michel --model m \\\n    --json  # a comment\n# only a comment\n")
    assert lines == [".venv/bin/lartpcnet michel --model m      --json"]


SKIPPED_BLOCKS = ("make demo", "scripts/train_background.sh")  # the set-up itself; a job left running


@pytest.mark.slow
def test_every_readme_shell_block_runs_as_written(user_folder):
    """All of them, in the README's order, in one folder as a user's (about 40 minutes on 2 cores)."""
    blocks = [body for lang, body in code_blocks(ROOT / "README.md")
              if lang == "sh" and not body.startswith(SKIPPED_BLOCKS)]
    assert len(blocks) >= 5
    for body in blocks:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=user_folder, capture_output=True,
                              text=True, timeout=3600)
        assert proc.returncode == 0, f"{body}\n{proc.stderr[-2000:]}"
