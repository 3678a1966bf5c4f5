"""A tiny sparse U-ResNet overfits four fixed simulated images; the registry builds models."""

import pytest
import torch

from lartpcnet.data.batching import sparse_batch
from lartpcnet.models.registry import build
from lartpcnet.sim.samples import generate_event, load_sample


def test_tiny_network_overfits_four_images():
    torch.manual_seed(0)
    config = load_sample("1e1p").model_copy(update={"crop": (128, 128)})
    images = [generate_event(config, 3, i).planes[2] for i in range(4)]
    batch = sparse_batch(images, pad_to=8)
    labelled = batch.semantic >= 0
    assert labelled.sum() > 100
    net, loss_fn = build("uresnet", network=dict(depth=3, filters=8, reps=1, classes=5),
                         loss=dict(weighting="sparsessnet"))
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        optimiser.zero_grad()
        loss = loss_fn(net(batch.tensor), batch.semantic, batch.instance)
        loss.backward()
        optimiser.step()
    net.eval()
    with torch.no_grad():
        predicted = net(batch.tensor).feats.argmax(1)
    accuracy = (predicted[labelled] == batch.semantic[labelled]).float().mean()
    assert accuracy > 0.99


def test_registry():
    net, _ = build("uresnet_dense", network=dict(depth=2, filters=4))
    assert net.config.sparse is False and net.config.growth == "doubling"
    with pytest.raises(ValueError, match="unknown model 'unet'"):
        build("unet")
