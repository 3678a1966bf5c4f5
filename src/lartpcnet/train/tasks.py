"""What a training step and a validation pass do for each kind of model (the registry's ``task``).

- ``segmentation``: one image per entry (a wire plane or a voxel volume), per-site classes
  (U-ResNet, sparse or dense);
- ``tagging``: the planes of one event per entry, per-pixel background/cosmic/neutrino
  (the multi-plane cosmic tagger, sparse or dense).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lartpcnet.data.batching import dense_batch, sparse_batch
from lartpcnet.data.event import Event, SparseImage
from lartpcnet.data.labels import DENSE_CLASS_NAMES, NEUTRINO
from lartpcnet.data.tagging import downsample, tagger_batch
from lartpcnet.metrics.segmentation import SegmentationMetrics
from lartpcnet.metrics.tagging import TaggingMetrics


@dataclass
class TaggingItem:
    """The planes of one event at the network's resolution, with what the metrics break down by."""

    planes: list[SparseImage]
    kind: str | None  # nueCC, numuCC, NC, cosmic_only; None where the file does not say
    energy: float | None  # neutrino energy [MeV]


def tagging_item(event: Event, factor: int) -> TaggingItem:
    kind = energy = None
    if event.interactions is not None and len(event.interactions):
        nu = event.interactions[event.interactions["origin"] == NEUTRINO]
        if len(nu):
            kind, energy = nu["kind"][0].decode(), float(nu["energy"][0])
        elif event.meta.get("kind") == "cosmic_only":
            kind = "cosmic_only"
    return TaggingItem([downsample(p, factor) for p in event.planes], kind, energy)


# --- segmentation ---------------------------------------------------------------------------------

def segmentation_loss(model, net, loss_fn, images: list[SparseImage], data, device) -> torch.Tensor:
    stride = net.config.stride
    if net.config.sparse:
        batch = sparse_batch(images, data.adc_window, pad_to=stride, scale=data.feature_scale)
        return loss_fn(model(batch.tensor.to(device)), batch.semantic.to(device), batch.instance.to(device))
    dense = dense_batch(images, data.adc_window, pad_to=stride, scale=data.feature_scale)
    return loss_fn.dense(model(dense.image.to(device)), dense.labels.to(device), dense.instance.to(device),
                         dense.vertex.to(device))


def segmentation_validate(net, images: list[SparseImage], data, batch_size: int, device) -> dict:
    stride = net.config.stride
    sparse_net = net.config.sparse
    metrics = SegmentationMetrics() if sparse_net else SegmentationMetrics(DENSE_CLASS_NAMES, background=0)
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        if not sparse_net:
            dense = dense_batch(chunk, data.adc_window, pad_to=stride, scale=data.feature_scale)
            predicted = net(dense.image.to(device)).argmax(1).cpu()
            for b, image in enumerate(chunk):
                h, w = image.shape
                truth, pred = dense.labels[b, :h, :w], predicted[b, :h, :w]
                metrics.add(truth.reshape(-1).numpy(), pred.reshape(-1).numpy())
            continue
        batch = sparse_batch(chunk, data.adc_window, pad_to=stride, scale=data.feature_scale)
        predicted = net(batch.tensor.to(device)).feats.argmax(1).cpu()
        rows = batch.tensor.coords[:, 0]
        for b, image in enumerate(chunk):
            mine = rows == b
            metrics.add(batch.semantic[mine].numpy(), predicted[mine].numpy(),
                        batch.tensor.coords[mine, 1:].numpy(), image.shape)
    return metrics.summary()


# --- tagging --------------------------------------------------------------------------------------

def tagging_forward(model, net, items: list[TaggingItem], threshold: float | None, device):
    """(per-site or per-pixel logits, labels, image index, the batch); ``model`` runs the forward
    pass (``net`` itself, or its DDP wrapper), ``net`` says how it is built."""
    batch = tagger_batch([it.planes for it in items], sparse=net.config.sparse, pad_to=net.config.stride,
                         threshold=threshold)
    if net.config.sparse:
        out = model(batch.tensor.to(device))
        return out.feats, batch.labels.to(device), batch.tensor.coords[:, 0].to(device), batch
    out = model(batch.dense.to(device))
    n, c, h, w = out.shape
    logits = out.permute(0, 2, 3, 1).reshape(-1, c)
    image = torch.arange(n, device=device).repeat_interleave(h * w)
    return logits, batch.labels.reshape(-1).to(device), image, batch


def tagging_loss(model, net, loss_fn, items: list[TaggingItem], data, device) -> torch.Tensor:
    logits, labels, image, _ = tagging_forward(model, net, items, data.threshold, device)
    return loss_fn(logits, labels, image)


def tagging_predictions(net, items: list[TaggingItem], threshold: float | None, device) -> list[list[dict]]:
    """Per event, per plane: the labelled sites' coords, truth, predicted class and scores."""
    logits, labels, image, batch = tagging_forward(net, net, items, threshold, device)
    scores = torch.softmax(logits.float(), 1).cpu()
    predicted = scores.argmax(1).numpy()
    labels, image = labels.cpu().numpy(), image.cpu().numpy()
    h, w = batch.shape
    if net.config.sparse:
        coords = batch.tensor.coords[:, 1:].numpy()
    else:
        full = batch.labels.shape[-2:]
        grid = np.indices(full).reshape(2, -1).T
        coords = np.tile(grid, (batch.events * batch.planes, 1))
    inside = (coords[:, 0] < h) & (coords[:, 1] < w)  # not the padding
    out = []
    for e in range(batch.events):
        planes = []
        for p in range(batch.planes):
            mine = (image == e * batch.planes + p) & inside
            planes.append({"coords": coords[mine].astype(np.int32), "truth": labels[mine],
                           "label": predicted[mine].astype(np.int8), "scores": scores[mine].numpy()})
        out.append(planes)
    return out


def tagging_validate(net, items: list[TaggingItem], data, batch_size: int, device) -> dict:
    metrics = TaggingMetrics(len(items[0].planes) if items else 3)
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        for item, planes in zip(chunk, tagging_predictions(net, chunk, data.threshold, device), strict=True):
            for p, result in enumerate(planes):
                h, w = item.planes[p].shape
                metrics.add(p, result["truth"], result["label"], h * w, item.kind, item.energy)
    return metrics.summary()


TASKS = {"segmentation": (segmentation_loss, segmentation_validate),
         "tagging": (tagging_loss, tagging_validate)}
