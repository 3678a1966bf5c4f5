"""Inference-time fusion: batch norms folded into the convolutions before them.

At eval a BatchNorm is a per-channel affine map, so ``conv -> BN`` equals one conv with scaled
weights and a bias, and the bias costs nothing: the centre offset's product becomes an ``addmm``.
SparseSSNet's residual blocks are conv-BN-act-conv-BN, so this removes most of the network's
batch norms from inference. The folding itself is torch's ``fuse_conv_bn_weights``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights

from lartpcnet.sparse.modules import BatchNorm, SparseConvBase

_DENSE_PAIRS = ((nn.Conv2d, nn.BatchNorm2d), (nn.Conv3d, nn.BatchNorm3d))


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` in which every batch norm that directly follows a
    convolution inside an ``nn.Sequential`` is folded into it (sparse and dense convs alike)."""
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
            for i in range(len(seq) - 1):
                conv, norm = seq[i], seq[i + 1]
                if isinstance(conv, SparseConvBase) and isinstance(norm, BatchNorm):
                    _fold_sparse(conv, norm)
                elif any(isinstance(conv, c) and isinstance(norm, b) for c, b in _DENSE_PAIRS):
                    seq[i] = fuse_conv_bn_eval(conv, norm)
                else:
                    continue
                seq[i + 1] = nn.Identity()
    return model


def _fold_sparse(conv: SparseConvBase, norm: BatchNorm) -> None:
    # fuse_conv_bn_weights wants output channels first; sparse weights are (K, C_in, C_out).
    as_dense = conv.weight.permute(2, 0, 1)
    weight, bias = fuse_conv_bn_weights(as_dense, conv.bias, norm.running_mean, norm.running_var, norm.eps,
                                        norm.weight, norm.bias)
    conv.weight = nn.Parameter(weight.detach().permute(1, 2, 0).contiguous(), requires_grad=False)
    conv.bias = nn.Parameter(bias.detach(), requires_grad=False)
