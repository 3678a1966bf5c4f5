"""Validated training configuration (one YAML per published system, in configs/)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lartpcnet.errors import DataError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSection(_Strict):
    name: str = "uresnet"
    network: dict = {}
    loss: dict = {}


class DataSource(_Strict):
    """Events simulated on the fly from a sample (``sample``, ``seed``), from a weighted mixture of samples
    (``mix``: each event is drawn from one of them), or read from ``file``."""

    sample: str | None = None
    mix: dict[str, float] | None = None  # sample name -> relative weight, e.g. {pilarnet3d: 1, michel: 1}
    seed: int = 0
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


class DataSection(_Strict):
    train: DataSource
    validation: DataSource
    plane: int | None = 2  # wire plane to train on (SparseSSNet trains one network per plane); None: voxels
    adc_window: tuple[float, float] | None = (10.0, 300.0)
    feature_scale: float = Field(100.0, gt=0)  # input feature = value / scale (100 for ADC, 1 for MeV voxels)
    workers: int = Field(0, ge=0)  # processes simulating or reading training batches
    # Michel/delta sites off the primary electron's own ionization become shower (Domine & Terao VI)
    relabel_secondaries: bool = False
    downsample: int = Field(1, ge=1)  # tagger: merge factor x factor pixels (2: the SBND paper's 50 % images)
    threshold: float | None = None  # tagger: pixels below this many ADC are not in the sparse set

    @model_validator(mode="after")
    def _window_in_order(self) -> DataSection:
        if self.adc_window is not None and not self.adc_window[0] < self.adc_window[1]:
            raise ValueError(f"adc_window must be [low, high] with low < high, got {list(self.adc_window)}")
        return self


class OptimizerSection(_Strict):
    name: Literal["adam", "rmsprop", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)  # sgd only


class ScheduleSection(_Strict):
    name: Literal["constant", "step", "cosine"] = "constant"
    step_every: int = Field(10_000, ge=1)  # step: multiply the rate by gamma every so many iterations
    gamma: float = Field(0.1, gt=0)
    warmup: int = Field(0, ge=0)  # iterations of linear warm-up from lr / warmup to lr


class TrainConfig(_Strict):
    name: str
    model: ModelSection = ModelSection()
    data: DataSection
    optimizer: OptimizerSection = OptimizerSection()
    schedule: ScheduleSection = ScheduleSection()
    batch_size: int = Field(8, ge=1)
    accumulate: int = Field(1, ge=1)  # batches per optimiser step
    iterations: int = Field(1000, ge=1)  # optimiser steps
    validate_every: int = Field(250, ge=1)
    checkpoint_every: int = Field(250, ge=1)
    seed: int = 0
    amp: bool = False  # mixed precision: fp16 with loss scaling on GPU, bf16 on CPU (~1.6x faster with bf16 units)
    device: str = "auto"


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Reads a YAML config and applies ``key.sub=value`` overrides (values parsed as YAML)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise
    except yaml.YAMLError as err:
        raise DataError(f"not valid YAML ({err})", file=str(path)) from err
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set needs key=value, got {item!r}")
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        raise DataError(first["msg"], file=str(path), field=".".join(str(x) for x in first["loc"])) from err
