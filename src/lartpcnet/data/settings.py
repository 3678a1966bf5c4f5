"""How a network's input is made from an event: one definition of each setting and its default.

A checkpoint carries these settings (``config.data``), so prediction prepares inputs the way the
network learned them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_ADC_WINDOW = (10.0, 300.0)  # SparseSSNet's mask: pixels outside it are not in the sparse set
DEFAULT_FEATURE_SCALE = 100.0  # input feature = ADC / 100: a MIP pixel becomes ~0.4


class InputSettings(BaseModel):
    """The input settings of a network (the ``data`` section of a training config)."""

    model_config = ConfigDict(extra="forbid")
    plane: int | None = Field(2, ge=0)  # wire plane (SparseSSNet trains one network per plane); None: 3D voxels
    adc_window: tuple[float, float] | None = DEFAULT_ADC_WINDOW  # None: every site
    feature_scale: float = Field(DEFAULT_FEATURE_SCALE, gt=0)  # 100 for ADC, 1 for MeV voxels
    # Michel/delta sites off the primary electron's own ionization become shower (Domine & Terao VI)
    relabel_secondaries: bool = False
    downsample: int = Field(1, ge=1)  # tagger: merge factor x factor pixels (2: the SBND paper's 50 % images)
    threshold: float | None = None  # tagger: pixels below this many ADC are not in the sparse set

    @model_validator(mode="after")
    def _window_in_order(self) -> InputSettings:
        if self.adc_window is not None and not self.adc_window[0] < self.adc_window[1]:
            raise ValueError(f"adc_window must be [low, high] with low < high, got {list(self.adc_window)}")
        return self

    @classmethod
    def of_checkpoint(cls, data: dict) -> InputSettings:
        """The settings stored in a checkpoint's ``config.data`` (training-only keys dropped)."""
        return cls.model_validate({k: v for k, v in data.items() if k in cls.model_fields})
