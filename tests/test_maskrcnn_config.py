"""configs/smaskrcnn_uboone.yaml: a valid training config for the lighter CPU network."""

from pathlib import Path

from lartpcnet.models.maskrcnn import MaskRCNN, MaskRCNNConfig
from lartpcnet.train.config import load_config

PATH = Path(__file__).parents[1] / "configs" / "smaskrcnn_uboone.yaml"


def test_config_validates_and_builds_the_lighter_network():
    config = load_config(PATH)
    assert config.model.name == "smaskrcnn" and config.data.plane == 2 and config.data.adc_window is None
    assert config.data.train.sample == "uboone_smrcnn_nue" and config.data.train.seed != config.data.validation.seed
    assert (config.optimizer.name, config.optimizer.lr, config.optimizer.momentum) == ("sgd", 0.005, 0.9)
    assert config.optimizer.weight_decay == 1e-4 and config.schedule.warmup > 0
    network = MaskRCNNConfig(**config.model.network)
    paper = MaskRCNNConfig()
    # the same architecture, smaller: stages, strides, anchors, RoI size, classes and thresholds kept
    assert network.stride == paper.stride == 16 and len(network.blocks) == 3
    assert network.roi_size == paper.roi_size and network.class_weights == paper.class_weights
    assert network.anchor_sizes == paper.anchor_sizes and network.train_nms == paper.train_nms
    assert network.roi_batch < paper.roi_batch and network.widths[-1] < paper.widths[-1]
    assert sum(p.numel() for p in MaskRCNN(network).parameters()) < 5e6
