"""Spiking VGG5 / VGG11 for 32×32 inputs, layer for layer as the reference (spec §2.1).

Each conv entry is conv 3×3 (bias) → BN → spiking neuron; ``"A"`` is 2×2 average pooling of the
spike maps (no max-pooling, no dropout). The head is flatten → FC 4096 → neuron → FC 4096 → neuron
(the last hidden spiking layer, whose input currents MS-MPPD uses) → FC classes, a non-spiking
readout whose per-step outputs are averaged over T.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import flax.linen as nn
import jax.numpy as jnp

from jsnn import spiking
from jsnn.models import layers

VGG_CFGS = {
    "vgg5": (64, "A", 128, 128, "A"),
    "vgg11": (64, "A", 128, 256, "A", 512, 512, 512, "A", 512, 512),
}


class SpikingVGG(nn.Module):
  """Spiking VGG (direct encoding over ``time_steps``).

  Attributes:
    cfg: conv widths and ``"A"`` pooling markers.
    num_classes: output classes.
    time_steps: T.
    neuron, placement, leak, threshold, surrogate, remat: see :class:`layers.SpikingNeuron`.
    width: channel multiplier for the convs (1.0 is the paper's model).
    head_width: hidden FC width (4096 in the paper).
    mean, std: input normalisation inside the model (inputs are [0,1] pixels).
    dtype: compute dtype (parameters stay float32).
  """
  cfg: Sequence[Union[int, str]]
  num_classes: int
  time_steps: int = 8
  neuron: str = "dlif"
  placement: str = "input"
  leak: float = 0.99
  threshold: float = 1.0
  surrogate: Callable = spiking.Triangle()
  remat: bool = True
  width: float = 1.0
  head_width: int = 4096
  mean: Optional[tuple] = None
  std: Optional[tuple] = None
  dtype: Any = jnp.float32

  def _neuron(self, is_last=False):
    return layers.SpikingNeuron(
        time_steps=self.time_steps, neuron=self.neuron, placement=self.placement, leak=self.leak,
        threshold=self.threshold, surrogate=self.surrogate, is_last=is_last, remat=self.remat)

  @nn.compact
  def __call__(self, images, train: bool = False):
    """``images``: ``[B, 32, 32, 3]`` in [0, 1]. Returns logits ``[B, num_classes]``."""
    x = layers.normalize(images.astype(self.dtype), self.mean, self.std)
    # Until the first neuron x is static ([B, ...]): the first conv+BN runs once, not T times;
    # BN statistics of T identical copies equal those of one.
    for entry in self.cfg:
      if entry == "A":
        x = layers.avg_pool(x, 2)
      else:
        x = layers.Conv(max(1, round(entry * self.width)), dtype=self.dtype)(x)
        x = layers.BatchNorm(dtype=self.dtype)(x, train)
        x = self._neuron()(x)
    t, b = x.shape[:2]
    x = x.reshape(t, b, -1)
    x = self._neuron()(layers.Dense(self.head_width, dtype=self.dtype)(x))
    x = self._neuron(is_last=True)(layers.Dense(self.head_width, dtype=self.dtype)(x))
    # The readout is linear, so averaging its T outputs equals reading out the mean spike rate.
    logits = layers.Dense(self.num_classes, dtype=self.dtype)(jnp.mean(x, axis=0))
    return logits.astype(jnp.float32)
