"""Thin Flax wrappers: spiking neuron layer, conv/dense with the reference's initialisers, and the
time-folding helpers. The dynamics live in :mod:`jsnn.spiking`.

Activations are time-major ``[T, B, ...]``. Stateless layers (conv, BN, pooling, dense) run on the
time-folded ``[T·B, ...]`` view, so BatchNorm statistics pool over time and batch together with one
set of BN parameters shared across time steps, as in the reference (spec §1.1). An activation
without a time axis (``[B, ...]``) is a *static* input — under direct encoding, everything before
the first spiking layer sees T identical copies, so it is computed once and broadcast to T at the
first neuron.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from jsnn import spiking

# Flax collections a caller can make mutable to capture activations (they are no-ops otherwise).
SPIKES = "spikes"                    # every spiking layer's spikes, [T, B, ...] each
LAST_SPIKING_LAYER = "last_spiking_layer"   # {"currents", "spikes"} of the last hidden layer
# ASSG's state, per spiking layer: "moments" [2, T, B, ...] (M, D) and the bound "bound" (A). An
# attack passes it in and makes it mutable to carry the moments from one gradient to the next.
ASSG_STATE = "assg_state"

# The reference's initialisers (spec §2.1): conv weights Kaiming-normal fan_out (ReLU gain); dense
# weights PyTorch's default U(±1/sqrt(fan_in)); dense biases 0.
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
dense_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def uniform_bias_init(fan_in: int):
  """PyTorch's default bias init ``U(±1/sqrt(fan_in))`` (the reference never re-initialises it)."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def fold(x):
  """``[T, B, ...] -> [T·B, ...]``."""
  return x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:])


def unfold(x, time_steps: int):
  """``[T·B, ...] -> [T, B, ...]``."""
  return x.reshape((time_steps, x.shape[0] // time_steps) + x.shape[1:])


def is_static(x) -> bool:
  """True for an image-shaped ``[B, H, W, C]`` activation that has no time axis yet."""
  return x.ndim == 4


def apply_folded(fn: Callable, x):
  """Applies a stateless layer to a time-major or static activation."""
  if is_static(x) or x.ndim == 2:
    return fn(x)
  t = x.shape[0]
  return unfold(fn(fold(x)), t)


class SpikingNeuron(nn.Module):
  """A layer of LIF or DLIF neurons over time, as ``spec`` describes them.

  Attributes:
    spec: the neuron (:class:`jsnn.spiking.NeuronSpec`): kind, T, DLIF placement, λ, u_th,
      surrogate, gradient estimator, remat. Every estimator has the same forward pass; attacks
      pick one to differentiate through. ASSG reads its moments and bound from the
      ``assg_state`` collection when one is passed (fresh moments and the default bound
      otherwise) and writes the updated moments back when it is mutable.
    is_last: this is the last hidden spiking layer, whose input currents MS-MPPD uses.
  """
  spec: spiking.NeuronSpec
  is_last: bool = False

  @nn.compact
  def __call__(self, currents):
    """Spikes for ``currents`` ``[T, B, ...]`` (or static ``[B, H, W, C]``, broadcast to T)."""
    spec = self.spec
    if is_static(currents):
      currents = spiking.direct_encoding(currents, spec.time_steps)
    kwargs = dict(leak=spec.leak, threshold=spec.threshold, surrogate=spec.surrogate_fn(),
                  remat=spec.remat, estimator=spec.gradient_estimator)
    if spec.gradient_estimator == "assg":
      spikes = self._assg(currents)
    elif spec.kind == "dlif":
      # One factor per time step, shared by the whole layer, initialised to 1 (spec §1.3).
      factors = self.param("dlif_factors", nn.initializers.ones, (spec.time_steps,), jnp.float32)
      spikes = spiking.dlif(currents, factors, placement=spec.dlif_placement, **kwargs)
    else:
      spikes = spiking.lif(currents, **kwargs)
    self.sow(SPIKES, "spikes", spikes)
    if self.is_last:
      # Raw input currents, before the DLIF factor (spec §3.1).
      self.sow(LAST_SPIKING_LAYER, "currents", currents)
      self.sow(LAST_SPIKING_LAYER, "spikes", spikes)
    return spikes

  def _assg(self, currents):
    """ASSG's scan with the moments of the ``assg_state`` collection (Wang et al., 2025)."""
    spec = self.spec
    ones = jnp.ones((spec.time_steps,), jnp.float32)
    leak_factors = input_factors = ones
    if spec.kind == "dlif":
      factors = self.param("dlif_factors", nn.initializers.ones, (spec.time_steps,), jnp.float32)
      if spec.dlif_placement == "leak":
        leak_factors = factors
      else:
        input_factors = factors
    out_dtype = currents.dtype
    currents = currents.astype(jnp.float32)
    stateful = self.is_mutable_collection(ASSG_STATE) or self.has_variable(ASSG_STATE, "moments")
    if stateful:
      moments = self.variable(ASSG_STATE, "moments", spiking.adaptive.initial_moments,
                              currents.shape)
      bound = self.variable(ASSG_STATE, "bound", lambda: jnp.float32(spiking.adaptive.ASSG_BOUND))
      first_moments, bound_value = moments.value, bound.value
    else:
      first_moments = spiking.adaptive.initial_moments(currents.shape)
      bound_value = spiking.adaptive.ASSG_BOUND
    spikes, new_moments = spiking.adaptive.assg_trace(
        currents, leak_factors, input_factors, first_moments, bound_value, leak=spec.leak,
        threshold=spec.threshold)
    if stateful and self.is_mutable_collection(ASSG_STATE):
      moments.value = new_moments
    return spikes.astype(out_dtype)


_CONV_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def _conv_nhwc(x, kernel, strides, padding):
  return jax.lax.conv_general_dilated(x, kernel, strides, padding,
                                      dimension_numbers=_CONV_DIMENSIONS)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv2d(x, kernel, strides: tuple, padding: tuple):
  """2-D convolution, NHWC input and HWIO kernel, whose input gradient XLA:CPU runs fast in loops.

  Forward pass and both gradients equal ``lax.conv_general_dilated``'s. The input gradient is the
  convolution of the (dilated) output gradient with the spatially flipped kernel, in/out swapped.
  JAX's own transpose rule leaves that flip and swap to XLA, which folds the swap into the
  convolution's dimension numbers; inside a ``while`` body (a rolled attack loop) XLA:CPU then
  runs it through a generic loop nest, about 20x slower than its Eigen convolution (PGD-10 on the
  1/4-width VGG5 took 5.5 s rolled against 0.8 s unrolled). Materialising the flipped kernel
  behind an optimisation barrier keeps it an ordinary HWIO convolution.

  Args:
    x: ``[N, H, W, C]``.
    kernel: ``[kh, kw, C, F]``.
    strides: ``(sh, sw)``.
    padding: ``((lo, hi), (lo, hi))``, explicit.

  Returns:
    ``[N, H', W', F]``.
  """
  return _conv_nhwc(x, kernel, strides, padding)


def _conv2d_fwd(x, kernel, strides, padding):
  return _conv_nhwc(x, kernel, strides, padding), (x, kernel)


def _conv2d_bwd(strides, padding, residuals, g):
  x, kernel = residuals
  flipped = jax.lax.optimization_barrier(jnp.transpose(kernel[::-1, ::-1], (0, 1, 3, 2)))
  # Pad the stride-dilated gradient so that a VALID convolution with the flipped kernel gives
  # x's spatial size back.
  pads = []
  for size, out_size, k, s, (lo, _) in zip(x.shape[1:3], g.shape[1:3], kernel.shape[:2], strides,
                                            padding):
    pad_lo = k - 1 - lo
    pads.append((pad_lo, size + k - 1 - ((out_size - 1) * s + 1) - pad_lo))
  grad_x = jax.lax.conv_general_dilated(g, flipped, (1, 1), pads, lhs_dilation=strides,
                                        dimension_numbers=_CONV_DIMENSIONS)
  _, kernel_vjp = jax.vjp(lambda k: _conv_nhwc(x, k, strides, padding), kernel)
  (grad_kernel,) = kernel_vjp(g)
  return grad_x.astype(x.dtype), grad_kernel


conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


def _flax_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
               dimension_numbers=None, feature_group_count=1, precision=None):
  """:func:`conv2d` with ``nn.Conv``'s call signature (undilated, ungrouped convolutions)."""
  if any(d != 1 for d in (lhs_dilation or ()) + (rhs_dilation or ())) or feature_group_count != 1:
    raise ValueError("jsnn's conv2d takes undilated, ungrouped convolutions only")
  del dimension_numbers, precision   # nn.Conv's NHWC/HWIO, default precision
  return conv2d(lhs, rhs, tuple(window_strides), tuple(tuple(p) for p in padding))


class Conv(nn.Module):
  """3×3 (or k×k) convolution with the reference's initialisers, on static or time-major input."""
  features: int
  kernel_size: int = 3
  strides: int = 1
  use_bias: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    fan_in = x.shape[-1] * self.kernel_size * self.kernel_size
    k = self.kernel_size
    conv = nn.Conv(self.features, (k, k), strides=(self.strides, self.strides),
                   padding=[(k // 2, k // 2)] * 2, use_bias=self.use_bias,
                   kernel_init=conv_kernel_init, bias_init=uniform_bias_init(fan_in),
                   dtype=self.dtype, param_dtype=jnp.float32, conv_general_dilated=_flax_conv)
    return apply_folded(conv, x)


class BatchNorm(nn.Module):
  """BatchNorm with PyTorch's defaults (momentum 0.1, eps 1e-5), statistics over T·B·H·W.

  Flax keeps the biased running variance where PyTorch keeps the unbiased one; at T·B·H·W ≥ 512
  samples the difference is below 0.2 %.
  """
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    bn = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                      dtype=self.dtype, param_dtype=jnp.float32)
    return apply_folded(bn, x)


class Dense(nn.Module):
  """Linear layer with PyTorch's default weight init and zero bias (spec §2.1)."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    dense = nn.Dense(self.features, kernel_init=dense_kernel_init,
                     bias_init=nn.initializers.zeros, dtype=self.dtype, param_dtype=jnp.float32)
    return dense(x)


class SpikingNetwork(nn.Module):
  """Fields shared by the spiking VGG and WRN models.

  Attributes:
    num_classes: output classes.
    neuron: every spiking layer's neuron (:class:`jsnn.spiking.NeuronSpec`), T included.
    width: channel multiplier (1.0 is the paper's model).
    mean, std: input normalisation inside the model (inputs are [0, 1] pixels), for direct
      encoding.
    dtype: compute dtype (parameters stay float32).
    encoding: ``"direct"`` (the paper's: the normalised image at every step, deterministic) or
      ``"poisson"`` (rate-coded spike trains of the raw pixels, drawn from the ``"encoding"`` RNG
      stream: a stochastic model, see :func:`jsnn.spiking.poisson_encoding`).
  """
  num_classes: int = 10
  neuron: spiking.NeuronSpec = spiking.NeuronSpec()
  width: float = 1.0
  mean: Optional[tuple] = None
  std: Optional[tuple] = None
  dtype: Any = jnp.float32
  encoding: str = "direct"

  def encode(self, images):
    """The first layer's input: static normalised pixels ``[B, ...]`` (direct encoding; the
    first neuron broadcasts them over T) or Poisson spike trains ``[T, B, ...]``."""
    images = images.astype(self.dtype)
    if self.encoding == "poisson":
      return spiking.poisson_encoding(self.make_rng(ENCODING_RNG), images,
                                      self.neuron.time_steps)
    return normalize(images, self.mean, self.std)

  def spiking_layer(self, is_last: bool = False) -> SpikingNeuron:
    return SpikingNeuron(self.neuron, is_last=is_last)


# The Flax RNG stream a stochastic input encoding draws from (``rngs={ENCODING_RNG: key}``).
ENCODING_RNG = "encoding"


def avg_pool(x, window: int):
  return apply_folded(lambda y: nn.avg_pool(y, (window, window), (window, window)), x)


def normalize(images, mean: Optional[tuple], std: Optional[tuple]):
  """Per-channel ``(x − mean)/std`` inside the model, so attacks and noise act in [0,1] pixels."""
  if mean is None:
    return images
  shape = (1,) * (images.ndim - 1) + (-1,)
  mean = jnp.asarray(mean, images.dtype).reshape(shape)
  return (images - mean) / jnp.asarray(std, images.dtype).reshape(shape)
