"""Spiking Wide-ResNet (WRN-16-4 in the paper) for 32×32 inputs (spec §2.2).

Pre-activation blocks (BN → neuron → conv), convs without bias, and a trainable convex combination
``y = c₀·shortcut + c₁·residual`` (initialised to (0.5, 0.5)) in place of a plain sum. The head is
BN → neuron (the last hidden spiking layer) → global average pool → FC classes, averaged over T.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jsnn import spiking
from jsnn.models import layers

CONVEX_COMBINATION = "convex_combination"   # parameter name; projected onto the simplex in RAT mode


class BasicBlock(nn.Module):
  """Pre-activation WRN block with a convex-combination residual (spec §2.2)."""
  features: int
  strides: int
  neuron: spiking.NeuronSpec
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    conv = lambda f, k, s: layers.Conv(f, kernel_size=k, strides=s, use_bias=False,
                                       dtype=self.dtype)
    bn = lambda: layers.BatchNorm(dtype=self.dtype)
    # The block's own children, so that their parameter paths stay BasicBlock_i/SpikingNeuron_j.
    neuron = lambda: layers.SpikingNeuron(self.neuron)
    comb = self.param(CONVEX_COMBINATION, nn.initializers.constant(0.5), (2,), jnp.float32)
    if x.shape[-1] != self.features:
      # The shortcut takes the *spiking* input here.
      x = neuron()(bn()(x, train))
      h = neuron()(bn()(conv(self.features, 3, self.strides)(x), train))
      h = conv(self.features, 3, 1)(h)
      shortcut = conv(self.features, 1, self.strides)(x)
    else:
      # The identity path carries the real-valued residual stream.
      a = neuron()(bn()(x, train))
      h = neuron()(bn()(conv(self.features, 3, 1)(a), train))
      h = conv(self.features, 3, 1)(h)
      shortcut = x if not layers.is_static(x) else spiking.direct_encoding(x, h.shape[0])
    return comb[0].astype(h.dtype) * shortcut + comb[1].astype(h.dtype) * h


class SpikingWideResNet(layers.SpikingNetwork):
  """Spiking WRN-depth-widen; ``width`` (of :class:`layers.SpikingNetwork`) multiplies every
  channel count.

  Attributes (besides :class:`layers.SpikingNetwork`'s):
    depth: 6n + 4 (16 in the paper).
    widen: widening factor k (4 in the paper).
  """
  depth: int = 16
  widen: int = 4

  @nn.compact
  def __call__(self, images, train: bool = False):
    """``images``: ``[B, 32, 32, 3]`` in [0, 1]. Returns logits ``[B, num_classes]``."""
    if (self.depth - 4) % 6:
      raise ValueError(f"WRN depth must be 6n+4, got {self.depth}")
    blocks_per_group = (self.depth - 4) // 6
    scale = lambda c: max(1, round(c * self.width))
    channels = [scale(16), scale(16 * self.widen), scale(32 * self.widen), scale(64 * self.widen)]
    x = self.encode(images)
    # The stem conv (no BN or neuron after it) and the first block's BN see T identical copies under
    # direct encoding, so they run once on the static [B, ...] input.
    x = layers.Conv(channels[0], use_bias=False, dtype=self.dtype)(x)
    for group, strides in zip(range(3), (1, 2, 2)):
      for i in range(blocks_per_group):
        x = BasicBlock(channels[group + 1], strides if i == 0 else 1, self.neuron,
                       dtype=self.dtype)(x, train)
    x = self.spiking_layer(is_last=True)(layers.BatchNorm(dtype=self.dtype)(x, train))
    x = jnp.mean(x, axis=(2, 3))   # global average pool of the spike maps: [T, B, C]
    logits = layers.Dense(self.num_classes, dtype=self.dtype)(jnp.mean(x, axis=0))
    return logits.astype(jnp.float32)
