"""SparseTensor construction and the non-convolution layers."""

import pytest
import torch
import torch.nn.functional as F

from lartpcnet.sparse import (
    Add,
    AvgPool,
    BatchNorm,
    Cat,
    Dropout,
    LeakyReLU,
    Linear,
    MaxPool,
    ReLU,
    SparseTensor,
    StridedConv,
    SubmanifoldConv,
    TransposedConv,
    set_backend,
)


def test_dense_round_trip():
    g = torch.Generator().manual_seed(0)
    dense = torch.randn((2, 3, 6, 7, 5), generator=g) * (torch.rand((2, 1, 6, 7, 5), generator=g) < 0.2)
    x = SparseTensor.from_dense(dense)
    assert x.num_sites == int((dense != 0).any(1).sum())
    torch.testing.assert_close(x.to_dense(), dense)


def test_from_events_merges_duplicates():
    coords = [torch.tensor([[1, 2], [1, 2], [0, 0]]), torch.tensor([[3, 3], [3, 3]])]
    feats = [torch.tensor([[1.0], [2.0], [5.0]]), torch.tensor([[4.0], [-1.0]])]
    summed = SparseTensor.from_events(coords, feats, (4, 4), reduce="sum")
    dense = summed.to_dense()
    assert summed.num_sites == 3
    assert dense[0, 0, 1, 2] == 3.0 and dense[0, 0, 0, 0] == 5.0 and dense[1, 0, 3, 3] == 3.0
    maxed = SparseTensor.from_events(coords, feats, (4, 4), reduce="max").to_dense()
    assert maxed[0, 0, 1, 2] == 2.0 and maxed[1, 0, 3, 3] == 4.0


def test_from_events_with_an_empty_event():
    coords = [torch.zeros((0, 3), dtype=torch.int64), torch.tensor([[1, 1, 1]])]
    feats = [torch.zeros((0, 2)), torch.ones((1, 2))]
    x = SparseTensor.from_events(coords, feats, (4, 4, 4))
    assert x.batch_size == 2 and x.num_sites == 1 and x.coords[0, 0] == 1


@pytest.mark.parametrize(
    "coords,shape,message",
    [
        (torch.tensor([[0, 5, 1]]), (5, 5), "spatial axis 0.*size is 5"),
        (torch.tensor([[0, 1, -1]]), (5, 5), "spatial axis 1"),
        (torch.tensor([[0, 1]]), (5, 5), r"shape \(N, 3\)"),
        (torch.tensor([[0.0, 1.0, 1.0]]), (5, 5), "integer"),
    ],
)
def test_bad_coordinates_are_named(coords, shape, message):
    with pytest.raises(ValueError, match=message):
        SparseTensor(coords, torch.zeros((coords.shape[0], 1)), shape)


def test_bad_event_in_batch_is_named():
    with pytest.raises(ValueError, match="event 1"):
        SparseTensor.from_events([torch.zeros((1, 2)), torch.zeros((2, 3))], [torch.zeros((1, 1))] * 2, (4, 4))


def masked_dense(x: SparseTensor, fill: float) -> torch.Tensor:
    dense = torch.full((x.batch_size, x.num_channels, *x.spatial_shape), fill)
    c = x.coords
    dense[(c[:, 0], slice(None), *c[:, 1:].unbind(1))] = x.feats
    return dense


@pytest.mark.parametrize("dim", [2, 3])
def test_pools_count_only_active_sites(dim):
    g = torch.Generator().manual_seed(dim)
    shape = (8,) * dim
    mask = torch.rand((2, *shape), generator=g) < 0.3
    coords = mask.nonzero()
    x = SparseTensor(coords, torch.randn((coords.shape[0], 3), generator=g), shape)

    mx = MaxPool(dim, 2)(x)
    pool = F.max_pool2d if dim == 2 else F.max_pool3d
    ref = pool(masked_dense(x, float("-inf")), 2)
    c = mx.coords
    torch.testing.assert_close(mx.feats, ref[(c[:, 0], slice(None), *c[:, 1:].unbind(1))])

    avg = AvgPool(dim, 2)(x)
    apool = F.avg_pool2d if dim == 2 else F.avg_pool3d
    total = apool(masked_dense(x, 0.0), 2, divisor_override=1)
    count = apool(mask[:, None].float(), 2, divisor_override=1)
    ref_avg = (total / count.clamp(min=1))[(c[:, 0], slice(None), *c[:, 1:].unbind(1))]
    torch.testing.assert_close(avg.feats, ref_avg)
    # a pooled tensor is a level that a transposed conv can invert
    up = TransposedConv(dim, 3, 2)(avg)
    assert torch.equal(up.coords, x.coords)


def test_pointwise_layers_and_batchnorm_act_on_features_only():
    torch.manual_seed(0)
    coords = torch.tensor([[0, 1, 1], [0, 2, 3], [1, 0, 0], [1, 3, 3]])
    x = SparseTensor(coords, torch.randn(4, 3), (4, 4))
    bn = BatchNorm(3)
    out = bn(x)
    ref = torch.nn.functional.batch_norm(x.feats, None, None, bn.weight, bn.bias, training=True)
    torch.testing.assert_close(out.feats, ref)
    assert out.coords is x.coords and out.cache is x.cache
    torch.testing.assert_close(ReLU()(x).feats, x.feats.clamp(min=0))
    torch.testing.assert_close(LeakyReLU(0.1)(x).feats, F.leaky_relu(x.feats, 0.1))
    lin = Linear(3, 5)
    torch.testing.assert_close(lin(x).feats, lin.module(x.feats))
    assert torch.equal(Dropout(0.5).eval()(x).feats, x.feats)
    both = Cat()(x, ReLU()(x))
    assert both.num_channels == 6
    torch.testing.assert_close(Add()(x, x).feats, 2 * x.feats)
    other = SparseTensor(coords.flip(0), torch.randn(4, 3), (4, 4))
    with pytest.raises(ValueError, match="same sites"):
        Add()(x, other)


def test_empty_tensor_through_every_layer():
    x = SparseTensor(torch.zeros((0, 3), dtype=torch.int64), torch.zeros((0, 4)), (6, 6), batch_size=1)
    layers = [SubmanifoldConv(2, 4, 4), BatchNorm(4), LeakyReLU(), Linear(4, 4), MaxPool(2), AvgPool(2)]
    for layer in layers:
        x = layer(x)
    assert x.num_sites == 0 and x.num_channels == 4


def test_transposed_conv_needs_its_down_sampling():
    x = SparseTensor(torch.tensor([[0, 1, 1]]), torch.ones(1, 2), (4, 4))
    with pytest.raises(ValueError, match="must invert the last down-sampling"):
        TransposedConv(2, 2, 2)(x)
    y = StridedConv(2, 2, 2, kernel_size=2, stride=2)(x)
    with pytest.raises(ValueError, match="must invert"):
        TransposedConv(2, 2, 2, kernel_size=3, stride=2)(y)


def test_unknown_backend_is_rejected(monkeypatch):
    with pytest.raises(ValueError, match="unknown sparse backend"):
        set_backend("cudnn")
    monkeypatch.setenv("LARTPCNET_SPARSE_BACKEND", "minkowski")
    with pytest.raises(ValueError, match="LARTPCNET_SPARSE_BACKEND"):
        SubmanifoldConv(2, 1, 1)(SparseTensor(torch.tensor([[0, 0, 0]]), torch.ones(1, 1), (2, 2)))


def test_spconv_backend_refuses_cpu_tensors(monkeypatch):
    monkeypatch.setenv("LARTPCNET_SPARSE_BACKEND", "spconv")
    x = SparseTensor(torch.tensor([[0, 1, 1]]), torch.ones(1, 2), (4, 4))
    with pytest.raises(ValueError, match="only on CUDA"):
        SubmanifoldConv(2, 2, 2)(x)
