"""lartpcnet's sparse tensor engine: submanifold, strided and transposed convolutions in 2D and 3D.

Pure torch; runs on CPU and GPU. Checked against dense convolution in the test suite.
"""

from lartpcnet.sparse import spconv_backend
from lartpcnet.sparse.backend import set_backend
from lartpcnet.sparse.fuse import fold_batchnorm
from lartpcnet.sparse.kmap import KernelMap, kernel_offsets
from lartpcnet.sparse.modules import (
    Add,
    AvgPool,
    BatchNorm,
    Cat,
    Dropout,
    LeakyReLU,
    Linear,
    MaxPool,
    ReLU,
    StridedConv,
    SubmanifoldConv,
    TransposedConv,
    Unpool,
)
from lartpcnet.sparse.tensor import SparseTensor, add, cat

__all__ = [
    "Add",
    "AvgPool",
    "BatchNorm",
    "Cat",
    "Dropout",
    "KernelMap",
    "LeakyReLU",
    "Linear",
    "MaxPool",
    "ReLU",
    "SparseTensor",
    "StridedConv",
    "SubmanifoldConv",
    "TransposedConv",
    "Unpool",
    "add",
    "cat",
    "fold_batchnorm",
    "kernel_offsets",
    "set_backend",
    "spconv_backend",
]
