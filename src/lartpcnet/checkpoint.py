"""Checkpoints and shipped weights: tensors and plain values only, never code.

A checkpoint is one ``torch.save`` of a dict whose leaves are tensors, numbers, strings, bools and
None, in dicts and lists: the weights (``model``), the architecture (``network``) and the config
as plain dicts, and for ``lartpcnet train --resume`` the optimizer and scheduler state and the RNG
state as a tensor. Every load uses ``torch.load(weights_only=True)``, whose unpickler builds only
those types, so a file that a colleague sends or that sits on a shared disk cannot run code on
the machine that opens it (a pickle's ``__reduce__`` is refused before anything is called).

Shipped weights are listed in ``weights/models.json`` with the sha256 of their file, checked on
every load: a corrupt or replaced file is a one-line error, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from lartpcnet.errors import DataError
from lartpcnet.io_utils import atomic_path

FORMAT = "lartpcnet-checkpoint"
VERSION = 1
# what every checkpoint holds (weights, architecture, registered model name, config), and what
# a training checkpoint adds for --resume
REQUIRED = {"model": dict, "network": dict, "model_name": str, "config": dict}
TRAINING = {"optimizer": dict, "scheduler": dict, "iteration": int, "rng": torch.Tensor}


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Writes ``state`` atomically (a killed job leaves the previous file, never half of one)."""
    _check_plain(state, "checkpoint")
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", training: bool = False) -> dict[str, Any]:
    """The checkpoint at ``path`` on ``device``, checked: a one-line DataError for a file that is
    damaged, holds anything but tensors and plain values, or lacks what a checkpoint holds
    (``training``: also what ``--resume`` needs)."""
    path = Path(path)
    _check_archive(path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        if "global" not in str(err).lower():  # not a refused object (a GLOBAL): a damaged or foreign file
            raise DataError(f"cannot be read as a checkpoint ({_first_line(err)})", file=str(path)) from err
        raise DataError("refused: it holds Python objects, not only tensors and plain values, so loading it "
                        "could run code (lartpcnet checkpoints never do; do not open it with "
                        "torch.load with weights_only off unless you trust where it came from)",
                        file=str(path)) from err
    except Exception as err:  # torch.load fails in many ways on a damaged file (zip, EOF, storage sizes)
        raise DataError(f"cannot be read as a checkpoint ({_first_line(err)})", file=str(path)) from err
    if not isinstance(state, dict):
        raise DataError(f"not a lartpcnet checkpoint (holds a {type(state).__name__}, not a dict)", file=str(path))
    fmt, version = state.get("format", FORMAT), state.get("version", VERSION)
    if fmt != FORMAT:
        shown = repr(fmt)[:60] if isinstance(fmt, str) else f"a {type(fmt).__name__}"
        raise DataError(f"not a lartpcnet checkpoint (format {shown})", file=str(path), field="format")
    if not isinstance(version, int) or isinstance(version, bool):
        raise DataError(f"holds a {type(version).__name__} where the checkpoint version belongs", file=str(path),
                        field="version")
    if version > VERSION:
        raise DataError(f"written by a newer lartpcnet (checkpoint version {version}, this one reads "
                        f"up to {VERSION}); upgrade lartpcnet", file=str(path))
    expected = {**REQUIRED, **(TRAINING if training else {})}
    for key, kind in expected.items():
        if key not in state:
            what = "a training checkpoint to resume from" if key in TRAINING else "a lartpcnet checkpoint"
            raise DataError(f"not {what} (missing {key!r})", file=str(path), field=key)
        if not isinstance(state[key], kind) or (isinstance(state[key], bool) and kind is int):
            raise DataError(f"holds a {type(state[key]).__name__} where a {kind.__name__} belongs", file=str(path),
                            field=key)
    bad = [k for k, v in state["model"].items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise DataError(f"weights hold entries that are not tensors ({bad[:3]})", file=str(path), field="model")
    if not isinstance(state["config"].get("data", {}), dict):
        raise DataError("config.data is not a mapping", file=str(path), field="config.data")
    return state


def _check_archive(path: Path) -> None:
    """torch.save writes a zip archive whose members carry CRCs, which torch.load never checks: a
    flipped byte in the weights would load as other numbers. Every member is checked here."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as err:
        raise DataError(f"cannot be read as a checkpoint (not an intact zip archive: {_first_line(err)})",
                        file=str(path)) from err
    except Exception as err:  # zlib and struct errors of a damaged member
        raise DataError(f"cannot be read as a checkpoint (damaged: {_first_line(err)})", file=str(path)) from err
    if bad is not None:
        raise DataError(f"is damaged: its member {bad!r} fails its checksum", file=str(path))


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:200]}" if text else type(err).__name__


def _check_plain(value: Any, where: str) -> None:
    """Refuses to write what ``load_checkpoint`` would refuse to read."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_plain(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for k, v in enumerate(value):
            _check_plain(v, f"{where}[{k}]")
    elif not (value is None or isinstance(value, bool | int | float | str | torch.Tensor | torch.dtype
                                          | torch.device | torch.Size)):
        raise TypeError(f"{where} is a {type(value).__name__}; checkpoints hold only tensors and plain values")


# --- shipped weights ------------------------------------------------------------------------------

def weights_folder() -> Path:
    return Path(str(resources.files("lartpcnet") / "weights"))


@cache
def shipped_models() -> dict[str, dict]:
    """``weights/models.json``: each shipped model's file, sha256, task, planes, training and
    headline metrics (the model card's numbers; docs/models.md)."""
    path = weights_folder() / "models.json"
    return json.loads(path.read_text()) if path.exists() else {}


def shipped_path(name: str) -> Path | None:
    """The weights file of the shipped model ``name``, or None (no such name, or not installed)."""
    entry = shipped_models().get(name)
    if entry is None:
        return None
    path = weights_folder() / entry["file"]
    return path if path.exists() else None


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_shipped(name: str) -> Path:
    """The shipped file of ``name`` after checking its sha256 against ``models.json``."""
    path = shipped_path(name)
    if path is None:
        raise DataError(f"the shipped weights of {name!r} are not in this installation", file=str(weights_folder()))
    expected = shipped_models()[name]["sha256"]
    found = sha256(path)
    if found != expected:
        raise DataError(f"sha256 {found[:16]}... differs from the {expected[:16]}... that models.json lists: "
                        "the file is damaged or was replaced; reinstall lartpcnet", file=str(path))
    return path
