"""Checks the spconv backend adapter against the built-in engine using spconv's CPU build.

The product accepts spconv only on CUDA (tests/test_spconv_backend.py runs there). Without a GPU
this script still checks the adapter's weight layout, indice keys and inverse convs, running
spconv's CPU build single-threaded with its CUDA stream call patched, as the benchmark does:

    PYTHONPATH=src OMP_NUM_THREADS=1 benchmarks/.peers/spconv/bin/python benchmarks/check_spconv_backend.py
"""

import sys

import torch

torch.set_num_threads(1)
import spconv.pytorch  # noqa: E402, F401

for name, module in list(sys.modules.items()):
    if name.startswith("spconv") and hasattr(module, "get_current_stream"):
        module.get_current_stream = lambda: 0

from lartpcnet.sparse import (  # noqa: E402
    SparseTensor,
    StridedConv,
    SubmanifoldConv,
    TransposedConv,
    set_backend,
    spconv_backend,
)

spconv_backend.allow_cpu_for_checks = True
worst = 0.0
for dim, shape in ((2, (33, 40)), (3, (17, 20, 19))):
    g = torch.Generator().manual_seed(dim)
    coords = (torch.rand((2, *shape), generator=g) < 0.1).nonzero()
    feats = torch.randn((coords.shape[0], 4), generator=g)
    torch.manual_seed(0)
    net = torch.nn.Sequential(SubmanifoldConv(dim, 4, 8, 3), StridedConv(dim, 8, 8, 2, 2),
                              SubmanifoldConv(dim, 8, 8, 3), TransposedConv(dim, 8, 3, 2, 2))
    runs = {}
    for name in ("native", "spconv"):
        set_backend(name)
        leaf = feats.clone().requires_grad_(True)
        out = net(SparseTensor(coords, leaf, shape, batch_size=2))
        out.feats.square().sum().backward()
        runs[name] = (out, [p.grad.clone() for p in net.parameters()] + [leaf.grad])
        net.zero_grad()
    (a, grads_a), (b, grads_b) = runs["native"], runs["spconv"]
    assert torch.equal(a.coords, b.coords), "output sites differ"
    diffs = [float((a.feats - b.feats).detach().abs().max())]
    diffs += [float((x - y).abs().max()) for x, y in zip(grads_a, grads_b, strict=True)]
    print(f"{dim}D: max |native - spconv| output {diffs[0]:.2e}, gradients {max(diffs[1:]):.2e}")
    worst = max(worst, *diffs)
print("OK" if worst < 1e-4 else "MISMATCH")
sys.exit(0 if worst < 1e-4 else 1)
