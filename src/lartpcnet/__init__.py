"""lartpcnet: sparse deep-learning reconstruction of LArTPC images."""

__version__ = "0.1.0"
