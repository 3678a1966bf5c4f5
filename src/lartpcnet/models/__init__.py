"""Networks: U-ResNet (sparse and dense) and the model registry."""
