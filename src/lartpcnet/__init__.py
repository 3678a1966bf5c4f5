"""lartpcnet: sparse deep-learning reconstruction of LArTPC images.

    import lartpcnet
    model = lartpcnet.load_model("sparsessnet_uboone")
    result = model.predict(event)
"""

from __future__ import annotations

__version__ = "0.1.0"


def load_model(spec: str, device: str = "auto", precision: str = "fp32", tta: bool = False,
               plane: int | None = None):
    """A shipped model by name or a checkpoint, ready to predict (``lartpcnet.runner.load_model``)."""
    from lartpcnet.runner import load_model as load  # lazy: importing lartpcnet stays cheap

    return load(spec, device, precision, tta, plane)
