"""The task interface: what a family of networks reads, learns, writes and is scored by.

The runner (``lartpcnet.runner``), the trainer and the CLI are the same for every network; they
ask the model's task for everything that differs. A task turns an event into an input *item*,
items into the loss (training) or into one :class:`Output` per item (inference): a table of the
sites the network labelled, with coordinates, class scores and labels, the truth where known,
and task-specific per-site arrays. Test-time augmentation, batching, precision, resumable
output files and the metrics loop are the runner's, built on these few methods.

Only ``lartpcnet.tasks`` knows which task runs: each registered model names its task object
(``models.registry``), and nothing else looks at task or model names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from lartpcnet.data.event import Event
from lartpcnet.data.settings import InputSettings


@dataclass
class Output:
    """The network's answer for one item: per-site arrays in one row order.

    ``coords`` are what the prediction file stores (``(row, column)`` of a plane, ``(x, y, z)``
    of voxels, ``(plane, row, column)`` for every plane of an event); ``truth`` holds the true
    class (-1 where none) or is None where the input has no truth; ``extra`` holds the task's
    own per-site (or per-item) arrays."""

    coords: np.ndarray
    scores: np.ndarray
    label: np.ndarray
    truth: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.label)


class Metrics(ABC):
    """Accumulates a task's metrics item by item; ``summary()`` is JSON-ready."""

    @abstractmethod
    def add(self, index: int, item: Any, output: Output) -> None: ...

    @abstractmethod
    def summary(self) -> dict: ...

    @property
    @abstractmethod
    def scored(self) -> bool:
        """Whether any truth was there to score against."""


@dataclass(frozen=True)
class Report:
    """A named evaluation of a task beyond ``evaluate``'s own (``evaluate --table``, ...):
    ``run(model, evaluate, events, seed, progress, sample)`` returns the report's JSON (``evaluate``
    is the runner's, passed in), ``text`` its table and ``plot(report, folder)`` its figure."""

    run: Callable[..., dict]
    text: Callable[[dict], str]
    plot: Callable[[dict, Path], Any] | None = None


class Task(ABC):
    """A family of networks. Subclasses give the class attributes and implement the methods."""

    name: ClassVar[str]  # recorded in prediction files; tasks.by_name reads it back
    headline: ClassVar[tuple[str, ...]]  # the metrics a one-line summary leads with, in order
    curves: ClassVar[dict[str, str]]  # validation metric -> its label in the learning curves
    reports: ClassVar[dict[str, Report]] = {}
    post_steps: ClassVar[tuple[str, ...]] = ()  # reconstruction commands that run on this task's output

    # --- inputs ---------------------------------------------------------------------------
    @abstractmethod
    def item(self, event: Event, settings: InputSettings, where: str, index: int) -> Any:
        """What one batch entry holds: the image(s) of ``event`` this task's networks read."""

    def check(self, item: Any, net: torch.nn.Module, where: str, index: int) -> None:  # noqa: B027
        """A one-line DataError (naming ``where`` and ``index``) for an item the network cannot take."""

    @abstractmethod
    def is_empty(self, items: Sequence[Any], settings: InputSettings) -> bool:
        """True when a batch holds no site the network would see (training skips it)."""

    # --- network --------------------------------------------------------------------------
    @abstractmethod
    def loss(self, model: torch.nn.Module, net: torch.nn.Module, loss_fn: torch.nn.Module, items: Sequence[Any],
             settings: InputSettings, device: torch.device) -> torch.Tensor:
        """The training loss of a batch; ``model`` runs the forward pass (``net`` or its DDP wrapper)."""

    @abstractmethod
    def outputs(self, net: torch.nn.Module, items: Sequence[Any], settings: InputSettings,
                device: torch.device) -> list[Output]:
        """One forward pass over a batch (the caller sets eval mode, no_grad and precision)."""

    # --- test-time augmentation -------------------------------------------------------------
    def supports_tta(self, net: torch.nn.Module) -> bool:
        return False

    def tta_axes(self, net: torch.nn.Module, item: Any) -> int:
        """How many mirror images of ``item`` test-time augmentation adds."""
        raise NotImplementedError

    def mirror(self, item: Any, axis: int) -> Any:
        raise NotImplementedError

    def unmirror(self, coords: np.ndarray, item: Any, axis: int) -> np.ndarray:
        """Output coordinates of the mirrored item's pass, mapped back onto ``item``."""
        raise NotImplementedError

    # --- results --------------------------------------------------------------------------
    @abstractmethod
    def classes(self, net: torch.nn.Module) -> tuple[str, ...]: ...

    @abstractmethod
    def metrics(self, net: torch.nn.Module, settings: InputSettings) -> Metrics: ...

    def site_fields(self, outputs: Sequence[Output], classes: int) -> dict[str, np.ndarray]:
        """Per-site arrays the prediction file stores beside coords, scores and labels."""
        return {}

    def event_fields(self, outputs: Sequence[Output]) -> dict[str, np.ndarray]:
        """Per-event tables the prediction file stores (``GROUP/name`` datasets with ``GROUP/offsets``)."""
        return {}

    def image_of(self, settings: InputSettings) -> str:
        """What the output's coordinates index, as the prediction file records it."""
        return "voxels" if settings.plane is None else f"plane {settings.plane}"

    def counts(self, outputs: Output, classes: tuple[str, ...]) -> Any:
        """``predict``'s per-event summary of its output (sites per predicted class)."""
        return {name: int((outputs.label == c).sum()) for c, name in enumerate(classes)}

    @abstractmethod
    def summary_text(self, summary: dict) -> str:
        """``evaluate``'s text table."""

    def evaluation_plots(self, metrics: Metrics, summary: dict, folder: Path) -> None:  # noqa: B027
        """``evaluate --out FOLDER``: the task's plots (and their data added to ``summary``)."""

    @abstractmethod
    def draw(self, event: Event, prediction: dict, path: str | Path, title: str) -> Path:
        """``display --predictions``: input, truth, prediction and mistakes of one event."""
