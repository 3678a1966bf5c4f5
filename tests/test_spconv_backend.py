"""spconv as an optional GPU backend gives the same outputs and gradients as the built-in engine.

Runs only where CUDA and spconv (spconv-cu12x) are installed; CI has neither.
"""

import importlib.util

import pytest
import torch

from lartpcnet.sparse import SparseTensor, StridedConv, SubmanifoldConv, TransposedConv, backend

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("spconv") is None,
    reason="needs a CUDA GPU and spconv",
)


@pytest.mark.parametrize("dim", [2, 3])
def test_spconv_backend_matches_native(dim, monkeypatch):
    g = torch.Generator().manual_seed(0)
    shape = (33, 40) if dim == 2 else (17, 20, 19)
    mask = torch.rand((2, *shape), generator=g) < 0.1
    coords = mask.nonzero().cuda()
    feats = torch.randn((coords.shape[0], 4), generator=g).cuda()
    torch.manual_seed(0)
    net = torch.nn.Sequential(SubmanifoldConv(dim, 4, 8), StridedConv(dim, 8, 8), SubmanifoldConv(dim, 8, 8),
                              TransposedConv(dim, 8, 3)).cuda()

    def run(name):
        monkeypatch.setenv("LARTPCNET_SPARSE_BACKEND", name)
        leaf = feats.clone().requires_grad_(True)
        out = net(SparseTensor(coords, leaf, shape, batch_size=2))
        out.feats.square().sum().backward()
        grads = [p.grad.clone() for p in net.parameters()] + [leaf.grad]
        net.zero_grad()
        return out, grads

    native, native_grads = run("native")
    theirs, their_grads = run("spconv")
    assert torch.equal(native.coords, theirs.coords)
    torch.testing.assert_close(theirs.feats, native.feats, rtol=1e-4, atol=1e-4)
    for a, b in zip(their_grads, native_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
    assert backend.active() == "spconv"

