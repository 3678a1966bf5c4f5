"""The canonical configs in configs/ validate and build their models (regression tests of the YAMLs)."""

from pathlib import Path

import pytest

from lartpcnet.models.registry import MODELS, build
from lartpcnet.sim.samples import load_sample
from lartpcnet.train.config import load_config

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_validates_and_builds(path):
    config = load_config(path)
    net, _ = build(config.model.name, config.model.network, config.model.loss)
    for source in (config.data.train, config.data.validation):
        for name in source.samples():
            sample = load_sample(name)
            image = MODELS[config.model.name].task.image_of(config.data)  # voxels, plane K or planes
            assert ("voxels" if image == "voxels" else "planes") in sample.outputs
    assert sum(p.numel() for p in net.parameters()) > 0


def test_sparsessnet_config_is_the_papers_network():
    config = load_config(Path(__file__).parents[1] / "configs" / "sparsessnet_uboone.yaml")
    net, loss = build(config.model.name, config.model.network, config.model.loss)
    assert net.config.depth == 5 and net.config.filters == 32 and net.config.classes == 5
    assert loss.weighting == "sparsessnet" and config.data.adc_window == (10, 300)


def test_sparsessnet_levels_and_microboone_2019_bottleneck():
    root = Path(__file__).parents[1] / "configs"
    sparse = load_config(root / "sparsessnet_uboone.yaml")
    net, _ = build(sparse.model.name, sparse.model.network)
    assert net.config.planes() == [32, 64, 96, 128, 160]  # mlreco's num_strides 5
    dense = load_config(root / "uresnet_uboone2019.yaml")
    net, _ = build(dense.model.name, dense.model.network)
    assert net.config.planes()[-1] == 1024 and 512 // net.config.stride == 16  # (16, 16, 1024)
