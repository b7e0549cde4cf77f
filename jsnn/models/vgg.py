"""Spiking VGG5 / VGG11 for 32×32 inputs, layer for layer as the reference (spec §2.1).

Each conv entry is conv 3×3 (bias) → BN → spiking neuron; ``"A"`` is 2×2 average pooling of the
spike maps (no max-pooling, no dropout). The head is flatten → FC 4096 → neuron → FC 4096 → neuron
(the last hidden spiking layer, whose input currents MS-MPPD uses) → FC classes, a non-spiking
readout whose per-step outputs are averaged over T.
"""

from __future__ import annotations

from typing import Sequence, Union

import flax.linen as nn
import jax.numpy as jnp

from jsnn.models import layers

VGG_CFGS = {
    "vgg5": (64, "A", 128, 128, "A"),
    "vgg11": (64, "A", 128, 256, "A", 512, 512, 512, "A", 512, 512),
}


class SpikingVGG(layers.SpikingNetwork):
  """Spiking VGG (direct or Poisson encoding over ``time_steps``).

  Attributes (besides :class:`layers.SpikingNetwork`'s):
    cfg: conv widths and ``"A"`` pooling markers (``VGG_CFGS``).
    head_width: hidden FC width (4096 in the paper).
  """
  cfg: Sequence[Union[int, str]] = VGG_CFGS["vgg11"]
  head_width: int = 4096

  @nn.compact
  def __call__(self, images, train: bool = False):
    """``images``: ``[B, 32, 32, 3]`` in [0, 1]. Returns logits ``[B, num_classes]``."""
    x = self.encode(images)
    # Under direct encoding x is static ([B, ...]) until the first neuron: the first conv+BN runs
    # once, not T times; BN statistics of T identical copies equal those of one.
    for entry in self.cfg:
      if entry == "A":
        x = layers.avg_pool(x, 2)
      else:
        x = layers.Conv(max(1, round(entry * self.width)), dtype=self.dtype)(x)
        x = layers.BatchNorm(dtype=self.dtype)(x, train)
        x = self.spiking_layer()(x)
    t, b = x.shape[:2]
    x = x.reshape(t, b, -1)
    x = self.spiking_layer()(layers.Dense(self.head_width, dtype=self.dtype)(x))
    x = self.spiking_layer(is_last=True)(layers.Dense(self.head_width, dtype=self.dtype)(x))
    # The readout is linear, so averaging its T outputs equals reading out the mean spike rate.
    logits = layers.Dense(self.num_classes, dtype=self.dtype)(jnp.mean(x, axis=0))
    return logits.astype(jnp.float32)
