"""sMask-RCNN (lartpcnet.models.maskrcnn): architecture, sparse/dense twins, targets, robustness."""

import numpy as np
import pytest
import torch

from lartpcnet.data.event import INTERACTION_DTYPE, PARTICLE_DTYPE, SparseImage
from lartpcnet.models import boxes as B
from lartpcnet.models.maskrcnn import (
    COSMIC_CLASS,
    ELECTRON,
    NUE,
    OTHER,
    PROTON,
    Backbone,
    Bottleneck,
    MaskRCNN,
    MaskRCNNConfig,
    MaskRCNNLoss,
    _balanced_bce,
    _mask_targets,
    _rpn_labels,
    _sample,
    _SparseOps,
    backbone_pair,
    copy_sparse_to_dense,
    image_tensor,
    instance_targets,
    interaction_classes,
)
from lartpcnet.sparse import SparseTensor

TINY = dict(stem=4, blocks=(1, 1, 1), bottlenecks=(4, 4, 8), widths=(8, 16, 16), head_blocks=1, head_bottleneck=8,
            head_width=16, mask_channels=8, anchor_sizes=(16, 32, 64), rpn_batch=32, roi_batch=16,
            train_pre_nms=200, train_post_nms=50, test_pre_nms=200, test_post_nms=50)


def test_defaults_are_the_papers_network():
    c = MaskRCNNConfig()
    assert (c.stem, c.blocks, c.bottlenecks, c.widths) == (64, (3, 4, 6), (64, 128, 256), (256, 512, 1024))
    assert (c.head_blocks, c.head_bottleneck, c.head_width, c.mask_channels) == (3, 512, 2048, 256)
    assert c.stride == 16 and c.num_anchors == 15 and c.roi_size == 14 and c.box_weights == (10, 10, 5, 5)
    assert c.class_weights[:2] == (1.0, 2.0) and c.class_weights[5] == 36.0 and c.detected_classes() == [1, 5]
    assert (c.train_pre_nms, c.train_nms, c.train_post_nms) == (6000, 0.1, 1000)
    assert (c.test_pre_nms, c.test_nms, c.test_post_nms) == (6000, 0.7, 1000)
    assert (c.rpn_batch, c.rpn_positive_fraction, c.roi_batch, c.roi_positive_fraction) == (256, 0.5, 512, 0.25)
    backbone = Backbone(_SparseOps(c.down_kernel), c)
    assert sum(isinstance(m, Bottleneck) for m in backbone.modules()) == 3 + 4 + 6
    net = MaskRCNN(blocks=(1, 1, 1), head_blocks=1)  # paper widths, fewer blocks: quick to build
    assert net.rpn.logits.out_channels == 15 and net.rpn.deltas.out_channels == 60
    assert net.heads.cls.out_features == 7 and net.heads.box.out_features == 28
    assert net.heads.mask_up.in_channels == 2048 and net.heads.mask_up.out_channels == 256
    assert net.heads.mask.out_channels == 7
    with pytest.raises(ValueError, match="one weight per class"):
        MaskRCNNConfig(class_weights=(1.0, 2.0))


@pytest.mark.parametrize("down_kernel", [1, 2])
@pytest.mark.parametrize("train", [True, False])
def test_sparse_backbone_equals_its_dense_twin(down_kernel, train):
    torch.manual_seed(0)
    config = MaskRCNNConfig(**{**TINY, "down_kernel": down_kernel})
    sparse_net, dense_net = backbone_pair(config)
    for m in sparse_net.modules():  # non-trivial batch-norm statistics and affine parameters
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.2, 0.2)
    sparse_net, dense_net = sparse_net.double(), dense_net.double()
    copy_sparse_to_dense(sparse_net, dense_net)
    sparse_net.train(train)
    dense_net.train(train)
    image = torch.randn((2, 1, 37, 70), dtype=torch.float64)
    x = SparseTensor.from_dense(image, mask=torch.ones((2, 37, 70), dtype=torch.bool))
    out_sparse = sparse_net(x)
    out_dense = dense_net(image)
    assert out_sparse.stride == (16, 16) and out_sparse.num_sites == out_dense[:, 0].numel()
    torch.testing.assert_close(out_sparse.to_dense(), out_dense, rtol=1e-9, atol=1e-9)


def horizontal_track(row: int, length: int = 200) -> SparseTensor:
    """A 2-pixel-thick isochronous track (rows ``row`` and ``row + 1``)."""
    coords = [(0, r, c) for r in (row, row + 1) for c in range(40, 40 + length)]
    return SparseTensor(torch.tensor(coords), torch.ones(len(coords), 1), (128, 512))


@pytest.mark.parametrize("offset", range(16))
def test_thin_tracks_survive_to_stride_16_with_the_kernel_2_down_sampling(offset):
    # the literal strided 1x1 reads input rows 16 i - 5 .. 16 i + 5 only: rows 16 i + 6 .. 16 i + 10 vanish
    kernel1 = Backbone(_SparseOps(1), MaskRCNNConfig(**TINY, down_kernel=1)).eval()
    kernel2 = Backbone(_SparseOps(2), MaskRCNNConfig(**TINY, down_kernel=2)).eval()
    with torch.no_grad():
        assert kernel2(horizontal_track(48 + offset)).num_sites > 0
        assert (kernel1(horizontal_track(48 + offset)).num_sites == 0) == (6 <= offset <= 9)


def test_every_charged_stride_16_cell_is_a_site_on_a_simulated_plane():
    from lartpcnet.sim.samples import generate_event, load_sample

    plane = generate_event(load_sample("uboone_nue_cosmics"), 11, 0).planes[2]
    x, _ = image_tensor([plane])
    charged = {tuple(c) for c in (plane.coords[plane.values >= 10] // 16).tolist()}
    for kernel, lowest in ((2, 1.0), (1, 0.0)):
        with torch.no_grad():
            out = Backbone(_SparseOps(kernel), MaskRCNNConfig(**TINY, down_kernel=kernel)).eval()(x)
        sites = {tuple(c) for c in out.coords[:, 1:].tolist()}
        coverage = len(charged & sites) / len(charged)
        assert coverage >= lowest if kernel == 2 else coverage < 0.6  # kernel 1: ~40 % on these events


def test_rpn_labels_on_constructed_boxes():
    config = MaskRCNNConfig(**TINY)
    anchors = B.anchors((8, 8), 16, (16, 32, 64), (0.5, 1.0, 2.0))
    gt = torch.stack([anchors[9 * 27 + 4], torch.tensor([100.0, 100.0, 104.0, 103.0])])  # an anchor; a tiny box
    labels, matched = _rpn_labels(anchors, gt, (128, 128), config)
    iou = B.box_iou(anchors, gt)
    assert labels[9 * 27 + 4] == 1 and matched[9 * 27 + 4] == 0  # IoU 1
    best_for_tiny = iou[:, 1].argmax()
    assert iou[best_for_tiny, 1] < 0.3 and labels[best_for_tiny] == 1 and matched[best_for_tiny] == 1  # its best
    inside = (anchors[:, 0] >= 0) & (anchors[:, 1] >= 0) & (anchors[:, 2] <= 128) & (anchors[:, 3] <= 128)
    assert (labels[~inside] == -1).all()  # anchors crossing the border are ignored in training
    best = iou.max(1).values
    assert (labels[inside & (best < 0.3) & (labels != 1)] == 0).all()
    assert (labels[inside & (best >= 0.3) & (best < 0.7)] != 0).all()
    torch.manual_seed(1)
    chosen = _sample(labels, 32, 0.5)
    assert len(chosen) == 32 and (labels[chosen] == 1).sum() == (labels == 1).sum() <= 16
    no_gt, _ = _rpn_labels(anchors, torch.zeros((0, 4)), (128, 128), config)
    assert (no_gt[inside] == 0).all()


def test_mask_targets_and_balanced_loss():
    image = SparseImage(np.array([[2, 3], [2, 4], [9, 9], [12, 1]], np.int32), np.array([50, 50, 50, 5], np.float32),
                        np.zeros(4, np.int8), np.zeros(4, np.int32), np.array([4, 4, 8, 8], np.int32),
                        np.ones(4, np.int8), (16, 16))
    t = instance_targets(image)
    assert t.ids.tolist() == [4, 8] and t.boxes.tolist() == [[3, 2, 5, 3], [9, 9, 10, 10]]  # pixel 12,1 < 10 ADC
    rois = torch.tensor([[0.0, 0.0, 8.0, 8.0], [8.0, 8.0, 16.0, 16.0]])
    m = _mask_targets(rois, torch.tensor([0, 1]), t, 2)
    assert m[0].tolist() == [[1.0, 1.0], [0.0, 0.0]] and m[1].tolist() == [[1.0, 0.0], [0.0, 0.0]]  # columns 3, 4 | 9
    # balanced: a confident right answer costs ~0, and the one on cell weighs as much as the three off ones
    logits = torch.tensor([[[0.0, 0.0], [0.0, 0.0]]])
    target = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert _balanced_bce(logits, target).item() == pytest.approx(np.log(2))
    wrong_on = torch.tensor([[[-3.0, -9.0], [-9.0, -9.0]]])
    wrong_off = torch.tensor([[[9.0, 9.0], [-9.0, -9.0]]])
    # one on cell wrong by 3 costs what one of three off cells wrong by 9 does (a plain mean: 0.76 vs 2.25)
    assert _balanced_bce(wrong_on, target).item() == pytest.approx(0.5 * np.log1p(np.exp(3.0)), rel=1e-3)
    assert _balanced_bce(wrong_off, target).item() == pytest.approx(0.5 * np.log1p(np.exp(9.0)) / 3, rel=1e-3)


def tables():
    particles = np.zeros(6, dtype=PARTICLE_DTYPE)
    # (id, parent, pdg, interaction): a cosmic muon and its delta, a nue, a cosmic proton, an e- and a numu
    for row, (pid, parent, pdg, inter) in enumerate([(0, -1, 13, 0), (1, 0, 11, 0), (2, -1, 12, 1), (3, -1, 2212, 2),
                                                     (4, -1, 11, 3), (5, -1, 14, 4)]):
        particles[row]["id"], particles[row]["parent"], particles[row]["pdg"] = pid, parent, pdg
        particles[row]["interaction"] = inter
    interactions = np.zeros(5, dtype=INTERACTION_DTYPE)
    for row, (iid, origin, kind) in enumerate([(0, 1, b"cosmic"), (1, 2, b"nueCC"), (2, 1, b"cosmic"),
                                               (3, 2, b"isolated"), (4, 2, b"numuCC")]):
        interactions[row]["id"], interactions[row]["origin"], interactions[row]["kind"] = iid, origin, kind
    return interactions, particles


def test_class_map_from_the_truth_tables():
    interactions, particles = tables()
    assert interaction_classes(interactions, particles) == {0: COSMIC_CLASS, 1: NUE, 2: PROTON, 3: ELECTRON,
                                                             4: OTHER}
    assert interaction_classes(interactions, None)[2] == COSMIC_CLASS  # no particle table: origin decides
    assert interaction_classes(None, None) == {}


def test_input_keeps_high_charge_and_drops_sub_threshold_pixels():
    image = SparseImage(np.array([[0, 0], [1, 1], [2, 2]], np.int32), np.array([9.0, 10.0, 2500.0], np.float32),
                        np.zeros(3, np.int8), np.zeros(3, np.int32), np.zeros(3, np.int32), np.ones(3, np.int8),
                        (8, 8))
    x, kept = image_tensor([image])
    assert kept[0].tolist() == [1, 2]
    torch.testing.assert_close(x.feats[:, 0], torch.tensor([0.1, 25.0]))  # 2500 ADC kept: no upper cut
    with pytest.raises(ValueError, match="all must be 2D planes"):
        image_tensor([image, SparseImage.empty((8, 9))])


def random_plane(n_instances: int, shape=(64, 96), seed=0) -> SparseImage:
    """Straight tracks, one instance each (cosmic or nue), some crossing."""
    rng = np.random.default_rng(seed)
    coords, inter = [], []
    for k in range(n_instances):
        r0, c0 = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        dr, dc = rng.normal(size=2)
        for t in range(int(rng.integers(1, 30))):
            r, c = int(r0 + t * dr), int(c0 + t * dc)
            if 0 <= r < shape[0] and 0 <= c < shape[1]:
                coords.append((r, c))
                inter.append(k)
    coords = np.array(coords, np.int32).reshape(-1, 2)
    keys = np.ravel_multi_index(tuple(coords.T), shape) if len(coords) else np.zeros(0, int)
    _, first = np.unique(keys, return_index=True)
    n = len(first)
    inter = np.array(inter, np.int32)[first]
    return SparseImage(coords[first], rng.uniform(20, 200, n).astype(np.float32), np.zeros(n, np.int8),
                       inter, inter, np.where(inter % 4 == 0, 2, 1).astype(np.int8), shape)


@pytest.mark.parametrize("sparse_net", [True, False])
def test_empty_images_no_instances_and_thousands_of_instances(sparse_net):
    torch.manual_seed(2)
    net = MaskRCNN(**TINY, sparse=sparse_net)
    empty = SparseImage.empty((64, 96))
    noise = random_plane(5)
    noise.interaction[:] = -1  # charge, but no instance
    crowded = random_plane(3000, shape=(128, 160))
    images = [empty, noise, crowded]
    targets = [instance_targets(im) for im in images]
    assert [len(t) for t in targets] == [0, 0, len(np.unique(crowded.interaction))] and len(targets[2]) > 1000
    x, _ = image_tensor(images[:2])  # one shape per batch
    x2, _ = image_tensor(images[2:])
    net.train()
    for batch, t in ((x, targets[:2]), (x2, targets[2:])):
        losses = net(batch if sparse_net else batch.to_dense(), t)
        total = MaskRCNNLoss()(losses)
        assert set(losses) == {"loss_rpn_cls", "loss_rpn_box", "loss_cls", "loss_box", "loss_mask"}
        assert torch.isfinite(total)
        total.backward()
    out = net.predict(images[:2]) + net.predict(images[2:])
    assert len(out[0]) == 0 and out[0].site_instance.numel() == 0  # nothing to detect in an empty image
    for d, im in zip(out, images, strict=True):
        assert d.site_instance.shape == (len(im),) and d.boxes.shape == (len(d), 4)
    with pytest.raises(ValueError, match="needs one InstanceTargets per image"):
        net.train()(x if sparse_net else x.to_dense())


def test_sparse_and_dense_networks_detect_the_same_with_every_site_active():
    torch.manual_seed(3)
    config = dict(TINY, score_threshold=0.0, mask_threshold=0.5)
    sparse_net = MaskRCNN(**config).double().eval()
    dense_net = MaskRCNN(**config, sparse=False).double().eval()
    copy_sparse_to_dense(sparse_net.backbone, dense_net.backbone)
    dense_net.rpn.load_state_dict(sparse_net.rpn.state_dict())
    dense_net.heads.load_state_dict(sparse_net.heads.state_dict())
    image = torch.rand((1, 1, 48, 80), dtype=torch.float64) + 0.1  # no zero pixel: every site active
    x = SparseTensor.from_dense(image)
    with torch.no_grad():
        a, b = sparse_net(x)[0], dense_net(image)[0]
    assert len(a) > 0
    torch.testing.assert_close(a.boxes, b.boxes)
    torch.testing.assert_close(a.scores, b.scores)
    assert torch.equal(a.site_instance, b.site_instance)
