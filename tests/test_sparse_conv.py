"""The sparse convolutions equal dense torch convolutions of the zero-filled image, forward and backward."""

import pytest
import torch
import torch.nn.functional as F

from lartpcnet.sparse import (
    SparseTensor,
    StridedConv,
    SubmanifoldConv,
    TransposedConv,
    functional,
    kernel_offsets,
)
from lartpcnet.sparse import kmap as kmap_module
from lartpcnet.sparse.functional import sparse_conv

DENSE_CONV = {2: F.conv2d, 3: F.conv3d}
DENSE_CONV_T = {2: F.conv_transpose2d, 3: F.conv_transpose3d}


def random_sparse(dim, batch, shape, channels, density, seed, dtype=torch.float32, borders=True):
    """Random active sites, always including image corners/borders when ``borders``."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand((batch, *shape), generator=g) < density
    if borders:
        for b in range(batch):
            mask[(b,) + (0,) * dim] = True
            mask[(b, *(s - 1 for s in shape))] = True
            mask[(b, 0, *(s - 1 for s in shape[1:]))] = True
    coords = mask.nonzero()
    feats = torch.randn((coords.shape[0], channels), generator=g, dtype=dtype)
    return SparseTensor(coords, feats, shape, batch_size=batch)


def dense_weight(weight, kernel_size, dim):
    """(K, C_in, C_out) in C-order offsets -> torch conv weight (C_out, C_in, *kernel)."""
    _, cin, cout = weight.shape
    return weight.permute(2, 1, 0).reshape(cout, cin, *(kernel_size,) * dim)


def dense_weight_transposed(weight, kernel_size, dim):
    """(K, C_in, C_out) -> torch conv_transpose weight (C_in, C_out, *kernel)."""
    _, cin, cout = weight.shape
    return weight.permute(1, 2, 0).reshape(cin, cout, *(kernel_size,) * dim)


def read_at(dense, coords):
    """Rows of a (B, C, *spatial) tensor at the given (N, 1 + D) coordinates."""
    c = coords.long()
    return dense[(c[:, 0], slice(None), *c[:, 1:].unbind(1))]


CASES = [
    # dim, batch, shape, density
    (2, 3, (13, 17), 0.15),
    (2, 2, (8, 31), 0.4),
    (2, 1, (1, 9), 0.5),
    (3, 2, (7, 9, 11), 0.08),
    (3, 3, (5, 6, 5), 0.3),
]


@pytest.fixture
def padded(request, monkeypatch):
    """Forces one of the two products: exact row counts (fp32 on CPU) or padded ones (bf16/fp16)."""
    monkeypatch.setattr(functional, "PAD_ROWS", request.param)
    return request.param


@pytest.mark.parametrize("dim,batch,shape,density", CASES)
@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("method", ["table", "sorted"])
@pytest.mark.parametrize("padded", [False, True], ids=["exact-rows", "padded-rows"], indirect=True)
def test_submanifold_matches_dense_forward_and_backward(dim, batch, shape, density, kernel_size, method, padded,
                                                        monkeypatch):
    monkeypatch.setattr(kmap_module, "LUT_MAX_CELLS", 1 << 40 if method == "table" else 0)
    monkeypatch.setattr(kmap_module, "LUT_CELLS_PER_SITE", 1 << 40 if method == "table" else 0)
    torch.manual_seed(0)
    x = random_sparse(dim, batch, shape, 4, density, seed=len(shape) * 7 + kernel_size)
    x.feats.requires_grad_(True)
    conv = SubmanifoldConv(dim, 4, 6, kernel_size, bias=True)
    out = conv(x)
    assert torch.equal(out.coords, x.coords)

    dense_in = x.to_dense()
    ref = DENSE_CONV[dim](dense_in, dense_weight(conv.weight, kernel_size, dim), conv.bias, padding=kernel_size // 2)
    ref_at = read_at(ref, x.coords)
    torch.testing.assert_close(out.feats, ref_at, rtol=1e-5, atol=1e-5)

    upstream = torch.randn_like(out.feats)
    grads = torch.autograd.grad((out.feats * upstream).sum(), [x.feats, conv.weight, conv.bias])
    ref_grads = torch.autograd.grad((ref_at * upstream).sum(), [x.feats, conv.weight, conv.bias])
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


STRIDED = [
    # kernel, stride, padding
    (2, 2, 0),
    (3, 2, 1),
    (3, 3, 0),
    (2, 1, 0),
]


@pytest.mark.parametrize("dim,batch,shape,density", CASES[:2] + CASES[3:])
@pytest.mark.parametrize("kernel_size,stride,padding", STRIDED)
@pytest.mark.parametrize("padded", [False, True], ids=["exact-rows", "padded-rows"], indirect=True)
def test_strided_matches_dense_and_transposed_inverts_it(dim, batch, shape, density, kernel_size, stride, padding,
                                                         padded):
    torch.manual_seed(1)
    x = random_sparse(dim, batch, shape, 3, density, seed=11 + kernel_size * stride)
    x.feats.requires_grad_(True)
    down = StridedConv(dim, 3, 5, kernel_size, stride, padding, bias=True)
    y = down(x)

    dense_in = x.to_dense()
    ref = DENSE_CONV[dim](
        dense_in, dense_weight(down.weight, kernel_size, dim), down.bias, stride=stride, padding=padding
    )
    assert y.spatial_shape == tuple(ref.shape[2:])
    # The output sites are exactly the cells whose receptive field holds an active input.
    ones = torch.ones((1, 1) + (kernel_size,) * dim)
    reach = DENSE_CONV[dim]((dense_in != 0).any(1, keepdim=True).float(), ones, stride=stride, padding=padding)
    want_sites = (reach[:, 0] > 0).nonzero()
    assert torch.equal(y.coords.long(), want_sites)
    y_ref = read_at(ref, y.coords)
    torch.testing.assert_close(y.feats, y_ref, rtol=1e-5, atol=1e-5)

    up = TransposedConv(dim, 5, 2, kernel_size, stride, padding, bias=True)
    z = up(y)
    assert torch.equal(z.coords, x.coords) and z.spatial_shape == x.spatial_shape
    # The dense transposed conv needs output_padding to reach the original size when the
    # down-sampling floor-divided an odd border away.
    natural = [(o - 1) * stride - 2 * padding + kernel_size for o in y.spatial_shape]
    output_padding = [want - got for want, got in zip(shape, natural, strict=True)]
    dense_up = DENSE_CONV_T[dim](
        y.to_dense(), dense_weight_transposed(up.weight, kernel_size, dim), up.bias,
        stride=stride, padding=padding, output_padding=output_padding,
    )
    z_ref = read_at(dense_up, x.coords)
    torch.testing.assert_close(z.feats, z_ref, rtol=1e-5, atol=1e-5)

    upstream = torch.randn_like(z.feats)
    params = [x.feats, down.weight, down.bias, up.weight, up.bias]
    grads = torch.autograd.grad((z.feats * upstream).sum(), params, retain_graph=True)
    ref_grads = torch.autograd.grad((z_ref * upstream).sum(), params)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("padded", [False, True], ids=["exact-rows", "padded-rows"], indirect=True)
def test_gradcheck_float64(dim, padded):
    shape = (5, 6) if dim == 2 else (4, 3, 5)
    x = random_sparse(dim, 2, shape, 2, 0.35, seed=3, dtype=torch.float64)
    sub = SubmanifoldConv(dim, 2, 3).double()
    down = StridedConv(dim, 3, 2).double()
    up = TransposedConv(dim, 2, 2).double()
    sub_map = kmap_module.submanifold_map(x.cache, x.level, 3)
    _, _, down_map = kmap_module.strided_map(x.cache, x.level, 2, 2, 0)

    def net(feats, w_sub, w_down, w_up):
        fine = sparse_conv(feats, w_sub, sub_map)
        coarse = sparse_conv(fine, w_down, down_map)
        return sparse_conv(coarse, w_up, down_map.transposed())

    inputs = (
        x.feats.clone().requires_grad_(True),
        sub.weight.detach().clone().requires_grad_(True),
        down.weight.detach().clone().requires_grad_(True),
        up.weight.detach().clone().requires_grad_(True),
    )
    assert torch.autograd.gradcheck(net, inputs, eps=1e-6, atol=1e-5)


def test_offsets_are_c_order():
    off = kernel_offsets(2, 3, centred=True)
    assert off[:4].tolist() == [[-1, -1], [-1, 0], [-1, 1], [0, -1]]
    assert off[4].tolist() == [0, 0]
    assert kernel_offsets(3, 2, centred=False)[:3].tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0]]
    with pytest.raises(ValueError, match="odd size"):
        kernel_offsets(2, 2, centred=True)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("padded", [False, True], ids=["exact-rows", "padded-rows"], indirect=True)
def test_empty_inputs(dim, padded):
    shape = (8,) * dim
    empty = SparseTensor(torch.zeros((0, dim + 1), dtype=torch.int64), torch.zeros((0, 4)), shape, batch_size=2)
    sub = SubmanifoldConv(dim, 4, 8)
    down = StridedConv(dim, 8, 8)
    up = TransposedConv(dim, 8, 3)
    out = up(down(sub(empty)))
    assert out.feats.shape == (0, 3) and out.coords.shape == (0, dim + 1)
    out.feats.sum().backward()
    assert sub.weight.grad is not None and torch.count_nonzero(sub.weight.grad) == 0


@pytest.mark.parametrize("dim", [2, 3])
def test_batch_with_one_empty_event_matches_events_alone(dim):
    shape = (9,) * dim
    one = random_sparse(dim, 1, shape, 3, 0.2, seed=5)
    # event 0 empty, event 1 holds the sites of `one`
    coords = one.coords.clone()
    coords[:, 0] = 1
    batch = SparseTensor(coords, one.feats, shape, batch_size=2)
    sub = SubmanifoldConv(dim, 3, 4)
    down = StridedConv(dim, 4, 4)
    up = TransposedConv(dim, 4, 2)

    def net(t):
        return up(down(sub(t)))

    torch.testing.assert_close(net(batch).feats, net(one).feats)


def test_kernel_maps_are_built_once_per_level_and_reused():
    x = random_sparse(2, 2, (16, 16), 4, 0.2, seed=8)
    a, b = SubmanifoldConv(2, 4, 4), SubmanifoldConv(2, 4, 4)
    down, up = StridedConv(2, 4, 4), TransposedConv(2, 4, 4)
    h = b(a(x))
    subm_maps = [v for k, v in x.cache.items() if k[0] == "subm"]
    assert len(subm_maps) == 1  # the second conv reused the first one's map
    coarse = down(h)
    fine = up(coarse)
    assert fine.cache is x.cache and fine.coords is x.coords  # the decoder lands on the encoder's sites
    assert [k for k in x.cache if k[0] == "down"] == [("down", (), (2, 2, 0))]


@pytest.mark.parametrize("dim", [2, 3])
def test_same_input_gives_bit_identical_results(dim):
    shape = (40, 50) if dim == 2 else (20, 20, 20)
    results = []
    for _ in range(2):
        x = random_sparse(dim, 2, shape, 8, 0.1, seed=21)
        x.feats.requires_grad_(True)
        torch.manual_seed(3)
        net = torch.nn.Sequential(SubmanifoldConv(dim, 8, 8), StridedConv(dim, 8, 16), TransposedConv(dim, 16, 8))
        out = net(x)
        out.feats.square().sum().backward()
        results.append((out.feats.detach(), x.feats.grad, net[0].weight.grad))
    for first, second in zip(*results, strict=True):
        assert torch.equal(first, second)


def test_autocast_runs_in_reduced_precision():
    # GPU fp16/bf16 autocast takes this same path; CPU bf16 autocast exercises it in CI.
    x = random_sparse(2, 1, (20, 20), 8, 0.3, seed=2)
    conv = SubmanifoldConv(2, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = conv(x).feats
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), conv(x).feats, rtol=3e-2, atol=3e-2)
