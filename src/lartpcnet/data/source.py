"""Where events come from: a file, a simulated sample, or a weighted mixture of samples.

One ``EventSource`` serves training (batches stream forever, a file cycles), validation,
``evaluate`` (``--in FILE`` or ``--sample NAME --events N --seed K``) and ``predict``. Event ``i``
of a sample is simulated from the seed and ``i`` alone, so any process makes the same event.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

import lartpcnet.data as data
from lartpcnet.data.event import Event
from lartpcnet.data.labels import PRIMARY_PROCESS, relabel_secondaries
from lartpcnet.errors import DataError, UserError

MIX_STREAM = 0x6D6978  # third seed word of the stream that picks a mixture's sample per event


class DataSource(BaseModel):
    """Events simulated on the fly from a sample (``sample``, ``seed``), from a weighted mixture of samples
    (``mix``: each event is drawn from one of them), or read from ``file``."""

    model_config = ConfigDict(extra="forbid")
    sample: str | None = None
    mix: dict[str, float] | None = None  # sample name -> relative weight, e.g. {pilarnet3d: 1, michel: 1}
    seed: int = Field(0, ge=0)
    file: str | None = None
    events: int | None = Field(None, ge=1)  # validation/evaluation size; training streams forever

    @model_validator(mode="after")
    def _one_source(self) -> DataSource:
        if sum(x is not None for x in (self.sample, self.mix, self.file)) != 1:
            raise ValueError("give exactly one of sample, mix or file")
        if self.mix is not None:
            if not self.mix:
                raise ValueError("mix names no sample; give sample names with relative weights")
            bad = {name: w for name, w in self.mix.items() if not w > 0}
            if bad:
                raise ValueError(f"mix weights must be positive, got {bad}")
        from lartpcnet.sim.samples import load_sample  # lazy: the simulator is only needed for samples

        for name in self.samples():  # here, not in a data-loader worker whose traceback hides the name
            load_sample(name)
        return self

    def samples(self) -> dict[str, float]:
        """The simulated samples events come from, with their relative weights (empty for a file)."""
        if self.mix is not None:
            return dict(self.mix)
        return {self.sample: 1.0} if self.sample is not None else {}

    def describe(self) -> str:
        """How errors and logs name this source."""
        if self.file is not None:
            return self.file
        if self.mix is not None:
            return "mix " + "+".join(self.mix)
        return f"sample {self.sample}"


def command_line_source(input_path: str | None, sample: str | None, events: int, seed: int) -> DataSource:
    """``--in FILE`` or ``--sample NAME --events N --seed K``."""
    if (input_path is None) == (sample is None):
        raise UserError("give exactly one of --in FILE or --sample NAME")
    if seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {seed}")
    if input_path is not None:
        return DataSource(file=input_path)
    return DataSource(sample=sample, seed=seed, events=events)


class EventSource:
    """Event ``i`` of a ``DataSource``; ``cycle``: a file repeats (training streams). ``relabel``:
    Michel/delta secondaries become shower, which a file's events need a particle table for
    (``relabel="where_possible"``: events without one keep their labels)."""

    def __init__(self, source: DataSource, relabel: bool | str = False, cycle: bool = False) -> None:
        from lartpcnet.sim.samples import load_sample

        if relabel not in (False, True, "where_possible"):
            raise ValueError(f"relabel must be False, True or 'where_possible', got {relabel!r}")
        self.source, self.relabel, self.cycle = source, relabel, cycle
        samples = source.samples()
        self._configs = [load_sample(name) for name in samples]
        if relabel:
            self._configs = [c.model_copy(update={"relabel_secondaries": True}) for c in self._configs]
        weights = np.array(list(samples.values()), dtype=float)
        self._weights = weights / weights.sum() if samples else weights
        self._reader = None

    @property
    def where(self) -> str:
        return self.source.describe()

    @property
    def is_file(self) -> bool:
        return self.source.file is not None

    def _file(self):
        if self._reader is None:  # opened lazily: each worker process opens its own
            self._reader = data.open(self.source.file)
        return self._reader

    def __len__(self) -> int:
        if self.is_file:
            return len(self._file()) if self.source.events is None else min(self.source.events, len(self._file()))
        if self.source.events is None:
            raise UserError(f"{self.where} streams without end; give its number of events")
        return self.source.events

    def indices(self) -> range:
        return range(len(self))

    def sample_of(self, index: int) -> int:
        """Which of the source's samples event ``index`` comes from (seeded by seed and index alone)."""
        if len(self._configs) == 1:
            return 0
        return int(np.random.default_rng([self.source.seed, index, MIX_STREAM]).choice(len(self._configs),
                                                                                     p=self._weights))

    def event(self, index: int) -> Event:
        if self._configs:
            from lartpcnet.sim.samples import generate_event

            return generate_event(self._configs[self.sample_of(index)], self.source.seed, index)
        reader = self._file()
        event = reader[index % len(reader) if self.cycle else index]
        if self.relabel and (self.relabel is True or can_relabel(event)):
            event = relabelled(event, self.where, index)
        return event

    def __iter__(self) -> Iterator[Event]:
        return (self.event(i) for i in self.indices())

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> EventSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:  # a worker process opens its own file
        return {**self.__dict__, "_reader": None}


def _images(event: Event) -> list:
    return ([event.voxels] if event.voxels is not None else []) + list(event.planes)


def can_relabel(event: Event) -> bool:
    """Whether the event's Michel/delta secondaries can be told apart: it has a particle table, or
    no Michel or delta site to relabel."""
    if event.particles is not None and len(event.particles):
        return True
    return not any(image.semantic is not None and np.isin(image.semantic, list(PRIMARY_PROCESS)).any()
                   for image in _images(event))


def relabelled(event: Event, file: str, index: int) -> Event:
    """The event with its Michel/delta secondaries labelled shower (needs the particle table)."""
    if not can_relabel(event):
        raise DataError("has Michel or delta sites but no particle table, which data.relabel_secondaries needs",
                        file=file, event=index, field="particles")
    if event.particles is None or not len(event.particles):
        return event  # nothing to relabel
    for image in _images(event):
        image.semantic = relabel_secondaries(image.semantic, image.instance, event.particles).astype(np.int8)
    return event
