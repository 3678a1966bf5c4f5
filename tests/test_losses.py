"""The weighting schemes give known weights on constructed cases; the loss is a weighted CE."""

import pytest
import torch
import torch.nn.functional as F

from lartpcnet.models.losses import (
    SegmentationLoss,
    class_balanced_weights,
    cluster_weights,
    pl_weights,
    sparsessnet_weights,
    vertex_weights,
)
from lartpcnet.sparse import SparseTensor


def sites(points, shape=(20, 20)):
    coords = torch.tensor([[b, r, c] for b, r, c in points])
    return SparseTensor(coords, torch.ones(len(points), 1), shape, batch_size=int(coords[:, 0].max()) + 1)


def test_cluster_weights_are_inverse_size_within_the_range():
    batch = torch.tensor([0] * 3 + [0] + [1] * 2 + [0] * 150)
    instance = torch.tensor([7] * 3 + [8] + [7] * 2 + [9] * 150)
    w = cluster_weights(batch, instance)
    assert torch.allclose(w[:3], torch.full((3,), 0.02 / 3))  # 3-site cluster
    assert w[3] == pytest.approx(0.02)  # a single site: the 2e-2 ceiling
    assert torch.allclose(w[4:6], torch.full((2,), 0.01))  # same instance id in another image: own cluster
    assert torch.allclose(w[6:], torch.full((150,), 2e-4))  # 0.02 / 150 < 2e-4: the floor


def test_vertex_weight_marks_sites_within_three_pixels_of_another_label():
    # a row of label 1 at columns 0..9 and one label-2 site further along the same row
    run = [(0, 5, c) for c in range(10)]
    labels = torch.tensor([1] * 10 + [2])
    far = vertex_weights(sites([*run, (0, 5, 13)]), labels)  # 4 columns from the run: nothing marked
    assert torch.count_nonzero(far) == 0
    near = vertex_weights(sites([*run, (0, 5, 12)]), labels)  # 3 columns from column 9
    assert near[9] == pytest.approx(0.02) and near[10] == pytest.approx(0.02)
    assert torch.count_nonzero(near[:9]) == 0  # column 8 is 4 away
    diagonal = vertex_weights(sites([*run, (0, 8, 12)]), labels)  # 3 rows and 3 columns: the 7x7 box
    assert diagonal[9] == pytest.approx(0.02) and torch.count_nonzero(diagonal[:9]) == 0


def test_sparsessnet_weight_is_the_sum():
    points = [(0, 2, 2), (0, 2, 3), (0, 10, 10)]
    s = sites(points)
    labels = torch.tensor([0, 1, 1])
    instance = torch.tensor([4, 5, 5])
    w = sparsessnet_weights(s, labels, instance)
    assert torch.allclose(w, torch.tensor([0.02 + 0.02, 0.01 + 0.02, 0.01]))


def test_class_balanced():
    batch = torch.tensor([0, 0, 0, 1])
    labels = torch.tensor([2, 2, 4, 2])
    assert torch.allclose(class_balanced_weights(batch, labels, 5), torch.tensor([0.5, 0.5, 1.0, 1.0]))


def test_class_balance_power_softens_the_weights():
    batch = torch.tensor([0] * 4 + [0])
    labels = torch.tensor([1, 1, 1, 1, 4])  # four MIP sites and one Michel site
    half = class_balanced_weights(batch, labels, 5, power=0.5)
    assert torch.allclose(half, torch.tensor([0.5, 0.5, 0.5, 0.5, 1.0]))  # 4^-0.5 and 1^-0.5
    loss = SegmentationLoss("class_balanced", balance_power=0.5)
    assert torch.allclose(loss.site_weights(sites([(0, 0, k) for k in range(5)]), labels, torch.zeros(5)), half)
    with pytest.raises(ValueError, match="balance_power"):
        SegmentationLoss("class_balanced", balance_power=0.0)


def test_pl_weights_four_categories():
    labels = torch.zeros(1, 12, 12, dtype=torch.long)
    instance = torch.full((1, 12, 12), -1)
    labels[0, 6, 2:10] = 1  # a track of 8 pixels, particle 0
    instance[0, 6, 2:10] = 0
    vertex = torch.tensor([[6, 2]])
    w = pl_weights(labels, instance, vertex)
    near_vertex = 5  # columns 2..6 are within 4 of column 2
    rest_of_track = 3  # columns 7..9
    near_charge = 5 * 12 - 8 - (12 - 12)  # rows 4..8, all 12 columns (columns 0..11 within 2 of 2..9) minus the track
    far = 144 - near_charge - 8
    assert w[0, 6, 3] == pytest.approx(1 / near_vertex)
    assert w[0, 6, 8] == pytest.approx(1 / rest_of_track)
    assert w[0, 4, 5] == pytest.approx(1 / near_charge)
    assert w[0, 0, 0] == pytest.approx(1 / far)


def test_loss_is_the_weighted_cross_entropy_and_ignores_unlabelled_sites():
    torch.manual_seed(0)
    logits = torch.randn(6, 5)
    labels = torch.tensor([0, 1, 2, -1, 4, 3])
    weights = torch.tensor([1.0, 2.0, 0.5, 9.0, 1.0, 3.0])
    loss = SegmentationLoss().weighted(logits, labels, weights)
    keep = labels >= 0
    ce = F.cross_entropy(logits[keep], labels[keep], reduction="none")
    assert loss == pytest.approx(float((weights[keep] * ce).sum() / weights[keep].sum()))
    focal = SegmentationLoss(focal_gamma=2.0).weighted(logits, labels, torch.ones(6))
    p = torch.exp(-ce)
    assert focal == pytest.approx(float(((1 - p) ** 2 * ce).mean()))
    with pytest.raises(ValueError, match="weighting"):
        SegmentationLoss("median")


def test_dense_loss_sums_pl_weighted_ce_per_image_and_averages_images():
    torch.manual_seed(0)
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[0, 3, 1:6] = 1
    labels[1, 2:5, 4] = 2
    instance = torch.where(labels > 0, 0, -1)
    vertex = torch.tensor([[3, 1], [-1, -1]])
    logits = torch.randn(2, 3, 8, 8)
    loss = SegmentationLoss("pl", classes=3).dense(logits, labels, instance, vertex)
    w = pl_weights(labels, instance, vertex)
    ce = F.cross_entropy(logits, labels, reduction="none")
    assert loss == pytest.approx(float((w * ce).flatten(1).sum(1).mean()))
    # image 1 has no vertex: no pixel falls in the vertex category
    assert torch.allclose(w[1][labels[1] > 0], torch.full((3,), 1 / 3))


# --- every weighting with its inputs on another device ---------------------------------------------

META = torch.device("meta")


def _is_meta(x) -> bool:
    try:
        return isinstance(x, torch.device | str) and torch.device(x) == META
    except (RuntimeError, TypeError):
        return False


class OnOtherDevice(torch.Tensor):
    """A CPU tensor that says it lives on another device (what a GPU tensor is to CPU code)."""

    @property
    def device(self):
        return META


class OtherDeviceMode(torch.overrides.TorchFunctionMode):
    """Runs code as if its ``OnOtherDevice`` inputs were on a GPU: a tensor made with
    ``device=x.device`` (or moved with ``.to(x.device)``) joins them, and an op that mixes them
    with CPU tensors other than 0-d scalars fails, as on CUDA ("indices should be either on cpu
    or on the same device")."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        from torch.utils._pytree import tree_leaves, tree_map

        kwargs = dict(kwargs or {})
        moved = _is_meta(kwargs.get("device"))
        if moved:
            kwargs["device"] = "cpu"
        if func is torch.Tensor.to and any(_is_meta(a) for a in args[1:]):
            args, moved = tuple("cpu" if _is_meta(a) else a for a in args), True
        tensors = [x for x in tree_leaves((args, kwargs)) if isinstance(x, torch.Tensor)]
        if any(isinstance(x, OnOtherDevice) for x in tensors) and any(
                not isinstance(x, OnOtherDevice) and x.dim() > 0 for x in tensors):
            raise AssertionError(f"{getattr(func, '__name__', func)} mixes the other device's tensors with CPU ones")
        out = func(*args, **kwargs)
        return tree_map(lambda x: x.as_subclass(OnOtherDevice) if isinstance(x, torch.Tensor) else x, out) if moved \
            else out


def elsewhere(t: torch.Tensor) -> torch.Tensor:
    return t.as_subclass(OnOtherDevice)


@pytest.mark.parametrize("weighting", ["none", "sparsessnet", "class_balanced"])
def test_every_sparse_weighting_runs_with_its_inputs_on_another_device(weighting):
    torch.manual_seed(1)
    points = [(b, r, c) for b in range(2) for r in range(6) for c in range(6) if (r + c + b) % 3]
    labels = torch.tensor([(r // 2 + c) % 5 for _, r, c in points])
    instance = torch.tensor([r for _, r, _ in points])
    logits = torch.randn(len(points), 5)
    loss = SegmentationLoss(weighting)
    here = loss(SparseTensor(torch.tensor(points), logits, (6, 6), 2), labels, instance)
    with OtherDeviceMode():
        there = loss(SparseTensor(elsewhere(torch.tensor(points)), elsewhere(logits), (6, 6), 2, check=False),
                     elsewhere(labels), elsewhere(instance))
    assert isinstance(there, OnOtherDevice) and float(there) == pytest.approx(float(here))


def test_the_dense_pl_weighting_runs_with_its_inputs_on_another_device():
    torch.manual_seed(2)
    labels = torch.randint(0, 3, (2, 8, 8))
    instance = torch.where(labels > 0, labels, -1)
    vertex = torch.tensor([[3, 1], [-1, -1]])
    logits = torch.randn(2, 3, 8, 8)
    loss = SegmentationLoss("pl", classes=3)
    here = loss.dense(logits, labels, instance, vertex)
    with OtherDeviceMode():
        there = loss.dense(elsewhere(logits), elsewhere(labels), elsewhere(instance), elsewhere(vertex))
    assert float(there) == pytest.approx(float(here))


@pytest.mark.parametrize("weighting", ["boost", "balanced", "none"])
def test_every_tagger_weighting_runs_with_its_inputs_on_another_device(weighting):
    from lartpcnet.models.losses import TaggingLoss

    torch.manual_seed(3)
    labels, image, logits = torch.randint(0, 3, (40,)), torch.arange(40) // 20, torch.randn(40, 3)
    loss = TaggingLoss(weighting)
    here = loss(logits, labels, image)
    with OtherDeviceMode():
        there = loss(elsewhere(logits), elsewhere(labels), elsewhere(image))
    assert float(there) == pytest.approx(float(here))


def test_the_other_device_check_catches_the_old_cpu_weight_tables():
    labels = elsewhere(torch.tensor([0, 1, 2]))
    with OtherDeviceMode(), pytest.raises(AssertionError, match="mixes"):
        torch.tensor([1.0, 1.5, 10.0])[labels]  # the tagger's boost table before the fix
