"""The U-ResNet: sparse and dense variants are one architecture; shapes, empty inputs, learning."""

import pytest
import torch

from lartpcnet.models.layers import copy_sparse_to_dense
from lartpcnet.models.uresnet import UResNet
from lartpcnet.sparse import SparseTensor, StridedConv, TransposedConv, fold_batchnorm


@pytest.mark.parametrize("dim,shape", [(2, (16, 24)), (3, (8, 8, 16))])
@pytest.mark.parametrize("train", [True, False])
def test_sparse_equals_dense_when_every_site_is_active(dim, shape, train):
    torch.manual_seed(0)
    config = dict(dim=dim, depth=2, filters=4, reps=2, classes=3, leaky=0.1)
    sparse_net = UResNet(**config, sparse=True)
    dense_net = UResNet(**config, sparse=False, growth="linear")
    for module in sparse_net.modules():  # non-trivial BN statistics and affine parameters
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.2, 0.2)
    copy_sparse_to_dense(sparse_net, dense_net)
    sparse_net.train(train)
    dense_net.train(train)
    image = torch.randn((2, 1, *shape))
    out_dense = dense_net(image)
    x = SparseTensor.from_dense(image, mask=torch.ones((2, *shape), dtype=torch.bool))
    out_sparse = sparse_net(x)
    c = out_sparse.coords
    torch.testing.assert_close(out_sparse.feats, out_dense[(c[:, 0], slice(None), *c[:, 1:].unbind(1))],
                               rtol=1e-4, atol=1e-4)


def test_sparse_output_sites_are_the_input_sites_and_empty_events_work():
    net = UResNet(dim=2, depth=3, filters=4, classes=5).eval()
    coords = torch.tensor([[0, 1, 2], [0, 5, 5], [2, 31, 31]])  # event 1 is empty
    x = SparseTensor(coords, torch.ones(3, 1), (32, 32), batch_size=3)
    out = net(x)
    assert torch.equal(out.coords, coords) and out.feats.shape == (3, 5)
    empty = SparseTensor(torch.zeros((0, 3), dtype=torch.int64), torch.zeros(0, 1), (32, 32), batch_size=1)
    assert net(empty).feats.shape == (0, 5)


def test_depth_counts_levels_and_filters_grow():
    # SparseSSNet's "depth 5, 32 filters" (mlreco num_strides 5): five levels, four down-samplings
    net = UResNet(depth=5, filters=32)
    assert net.config.planes() == [32, 64, 96, 128, 160]
    assert sum(isinstance(m, StridedConv) for m in net.modules()) == 4
    assert sum(isinstance(m, TransposedConv) for m in net.modules()) == 4
    assert UResNet(depth=3, filters=16, growth="doubling").config.planes() == [16, 32, 64]
    assert UResNet(depth=6).padded_shape((1008, 3456)) == (1024, 3456)
    assert UResNet(depth=5).padded_shape((1000, 3456)) == (1008, 3456)


@pytest.mark.parametrize("sparse_net", [True, False])
def test_folded_batchnorm_predicts_like_the_network(sparse_net):
    torch.manual_seed(3)
    net = UResNet(dim=2, depth=3, filters=8, classes=5, sparse=sparse_net)
    for m in net.modules():  # trained-looking statistics, not the identity ones of a fresh net
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    net.eval()
    folded = fold_batchnorm(net)
    norms = [m for m in folded.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 2 + 2 + 1  # only those before a down, an up or the head remain
    coords = torch.tensor([[0, r, c] for r in range(16) for c in range(16) if (r * 7 + c * 3) % 5 < 2])
    x = SparseTensor(coords, torch.rand(len(coords), 1), (16, 16), batch_size=1)
    with torch.no_grad():
        if sparse_net:
            expected, got = net(x).feats, folded(x).feats
        else:
            expected, got = net(x.to_dense()), folded(x.to_dense())
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
