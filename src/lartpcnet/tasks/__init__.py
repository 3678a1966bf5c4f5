"""The tasks: what each family of networks reads, learns, writes and is scored by.

Each registered model (``models.registry``) names one of these objects; prediction files record
its ``name``, which ``by_name`` turns back into the object that reads them.
"""

from __future__ import annotations

from lartpcnet.errors import DataError
from lartpcnet.tasks.base import Metrics, Output, Report, Task
from lartpcnet.tasks.instance import InstanceTask
from lartpcnet.tasks.segmentation import SegmentationTask
from lartpcnet.tasks.tagging import TaggingTask

SEGMENTATION = SegmentationTask()
TAGGING = TaggingTask()
INSTANCE = InstanceTask()
TASKS: dict[str, Task] = {task.name: task for task in (SEGMENTATION, TAGGING, INSTANCE)}


def by_name(name: str, file: str | None = None) -> Task:
    """The task a prediction file names."""
    if name not in TASKS:
        raise DataError(f"names a task {name!r} that this lartpcnet does not know ({', '.join(TASKS)})", file=file,
                        field="task")
    return TASKS[name]


__all__ = ["INSTANCE", "SEGMENTATION", "TAGGING", "TASKS", "Metrics", "Output", "Report", "Task", "by_name"]
