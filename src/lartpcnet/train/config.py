"""Validated training configuration (one YAML per published system, in configs/)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lartpcnet.data.settings import InputSettings
from lartpcnet.data.source import DataSource
from lartpcnet.errors import DataError, UserError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSection(_Strict):
    name: str = "uresnet"
    network: dict = {}
    loss: dict = {}

    @model_validator(mode="after")
    def _known_settings(self) -> ModelSection:
        """``network`` and ``loss`` checked against the registered model's settings, so a typo
        inside them names its field as the top-level keys do."""
        from lartpcnet.models.registry import spec

        entry = spec(self.name)
        for section, check in (("network", entry.network_config), ("loss", entry.loss_config)):
            values = {**(entry.network_defaults or {}), **self.network} if section == "network" else self.loss
            try:
                check.model_validate(values)
            except ValidationError as err:
                first = err.errors()[0]
                where = ".".join(str(x) for x in first["loc"])
                raise ValueError(f"{section}.{where}: {first['msg']}") from None
        return self


class DataSection(InputSettings):
    """Where training and validation events come from, and how inputs are made (InputSettings)."""

    train: DataSource
    validation: DataSource
    workers: int = Field(0, ge=0)  # processes simulating or reading training batches


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
    seed: int = Field(0, ge=0)
    amp: bool = False  # mixed precision: fp16 with loss scaling on GPU, bf16 on CPU (~1.6x faster with bf16 units)
    device: str = "auto"
    # settings of the reconstruction that runs on this network's output, stored with the weights
    # (e.g. michel: {track_classes: "MIP,HIP"}); each post step validates its own
    post: dict[str, dict] = {}

    @model_validator(mode="after")
    def _known_post_steps(self) -> TrainConfig:
        from lartpcnet.models.registry import spec

        offered = spec(self.model.name).task.post_steps
        unknown = sorted(set(self.post) - set(offered))
        if unknown:
            raise ValueError(f"post step(s) {unknown} do not run on {self.model.name!r} models (they offer: "
                             f"{', '.join(offered) or 'none'})")
        if "michel" in self.post:
            from lartpcnet.reco.michel import MichelConfig

            MichelConfig.model_validate(self.post["michel"])
        return self


def _set(raw: dict, item: str) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UserError(f"--set needs key=value, got {item!r}")
    node = raw
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"--set {item}: {'.'.join(parts[: depth + 1])} is {node!r}, not a section with keys")
    node[parts[-1]] = yaml.safe_load(value)


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Reads a YAML config and applies ``key.sub=value`` overrides (values parsed as YAML)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise DataError(f"not valid YAML ({str(err).splitlines()[0]})", file=str(path)) from err
    if not isinstance(raw, dict):
        raise DataError("is not a training config (a YAML mapping with name, model, data, ...)", file=str(path))
    for item in overrides or []:
        _set(raw, item)
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if where == "model" and message.startswith(("network.", "loss.")):  # the section named inside
            inner, message = message.split(": ", 1)
            where = f"model.{inner}"
        raise DataError(message, file=str(path), field=where) from err
