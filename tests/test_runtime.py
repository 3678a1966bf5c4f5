"""Process settings: the oneDNN fp32 matmul switch is only kept when it preserves fp32 accuracy."""

import torch

from lartpcnet.runtime import configure_fp32_matmul, configure_malloc


def test_fast_fp32_matmul_keeps_fp32_accuracy():
    backend = torch.backends.mkldnn.matmul
    previous = backend.fp32_precision
    try:
        enabled = configure_fp32_matmul()
        a = torch.randn(300, 48, generator=torch.Generator().manual_seed(1))
        b = torch.randn(48, 40, generator=torch.Generator().manual_seed(2))
        error = float(((a @ b).double() - a.double() @ b.double()).abs().max())
        assert error < 1e-4  # fp32-level whichever path was chosen; bf16 rounding would be ~1e-1
        assert enabled == (backend.fp32_precision == "bf16")
    finally:
        backend.fp32_precision = previous


def test_malloc_setting_reports_whether_it_applied():
    assert isinstance(configure_malloc(), bool)
