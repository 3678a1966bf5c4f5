"""A tiny sMask-RCNN overfits a few small simulated images: its loss falls and its efficiency rises."""

import numpy as np
import torch

from lartpcnet.metrics.instance import InstanceMetrics, InstancePredictions, image_truth
from lartpcnet.models.maskrcnn import MaskRCNN, MaskRCNNLoss, image_tensor, instance_targets
from lartpcnet.sim.samples import SampleConfig, generate_event

SMALL = dict(stem=8, blocks=(1, 1, 1), bottlenecks=(8, 8, 16), widths=(16, 32, 64), head_blocks=1,
             head_bottleneck=16, head_width=64, mask_channels=16, anchor_sizes=(16, 32, 64, 128), rpn_batch=64,
             roi_batch=32, train_pre_nms=400, train_post_nms=60, test_pre_nms=400, test_post_nms=60)


def crops():
    """128 x 192 crops of MicroBooNE planes around a nue CC vertex, with cosmics through the crop."""
    config = SampleConfig(name="crops", description="", geometry="microboone", outputs=["planes"], crop=(128, 192),
                          neutrino={"kinds": {"nueCC": 1}, "energy": (200, 600)},
                          cosmics={"count": (6, 8), "through_vertex_region": True})
    return [generate_event(config, 3, i) for i in range(2)]


def efficiency(net, events) -> float:
    metrics = InstanceMetrics()
    images = [e.planes[2] for e in events]
    for event, image, det in zip(events, images, net.predict(images), strict=True):
        truth, cls = image_truth(image, event.interactions, event.particles)
        metrics.add(image.values, truth, cls, InstancePredictions.from_detections(det))
    return metrics.summary()["efficiency"]


def test_tiny_network_overfits_small_simulated_images():
    events = crops()
    images = [e.planes[2] for e in events]
    targets = [instance_targets(im, e.interactions, e.particles) for im, e in zip(images, events, strict=True)]
    assert sum(len(t) for t in targets) >= 3 and any(5 in t.classes.tolist() for t in targets)  # nue and cosmics
    torch.manual_seed(0)
    net = MaskRCNN(**SMALL)
    before = efficiency(net, events)
    x, _ = image_tensor(images)
    optimizer = torch.optim.Adam(net.parameters(), 3e-3)
    loss_fn = MaskRCNNLoss()
    net.train()
    history = []
    for _ in range(100):
        loss = loss_fn(net(x, targets))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    after = efficiency(net, events)
    assert np.mean(history[-10:]) < 0.2 * np.mean(history[:5])
    assert before == 0.0 and after > 0.6, (before, after)  # untrained class scores (~1/7) are all below 0.4
