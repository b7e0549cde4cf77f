"""Surrogates whose shape adapts to the membrane: ASSG and PDSG, the two newest SNN attack
gradients, as backward passes of the exact (D)LIF neuron.

Both differentiate through time like the ``"surrogate"`` estimator (BPTT, the reset path kept, as
everywhere in jsnn); what changes is the spike's surrogate derivative, whose shape is an array set
per neuron and time step from detached statistics of the membrane. The forward pass is the
expression of :func:`jsnn.spiking.neurons.lif_step`, so the spikes are bit-identical to the model's.

* ASSG, adaptive-sharpness surrogate gradient (Wang et al., "Towards Reliable Evaluation of
  Adversarial Robustness for Spiking Neural Networks", arXiv 2512.22522, 2025; ``ASSGrad`` of the
  reference code): the arctan surrogate ``(α/2)/(1 + (π/2·α·x)²)`` at ``x = v − u_th`` with a
  sharpness ``α = a/(M + r·D + 10⁻⁴)``, ``a = 2·tan(π·A)/π``, where M and D are exponential
  running means, over the attack's iterations, of ``|x|`` and of ``||x| − M|`` at that neuron
  and time step (β₁ = β₂ = 0.9, relaxation r = 1.5, M starts at 1 and D at 0). The bound A
  (0.35–0.49 in the reference's search) sets how much of the gradient may vanish. The moments are
  a state the attack carries from one gradient to the next (:class:`jsnn.attacks.StatefulLogitsFn`);
  each forward pass updates them first and then uses them.
* PDSG, potential-dependent surrogate gradient (Lun et al., "Towards Effective and Sparse
  Adversarial Attack on Spiking Neural Networks via Breaking Invisible Surrogate Gradients",
  CVPR 2025; ``PDSG`` of ``ryime/PDSG-SDA``): the Gaussian ``exp(−((x − σ/2)/(√2σ))²)/(√(2π)σ)``
  whose width σ is the standard deviation of the layer's membrane potentials ``v[0..t]`` up to
  the current step (per channel for a convolution, over the spatial positions; over all units of
  a dense layer), 1 where that spread is 0.

One difference from both reference codes, made so that examples never interact (jsnn's
evaluation relies on it, e.g. for padded batches): the statistics are per example. The reference
ASSG moments are already per example; the reference PDSG pools σ over the batch as well.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jsnn.spiking.surrogate import ShapedArctan, ShiftedGaussian, shaped_heaviside

# ASSG's defaults (the reference's ASSG_SAPGD): the bound A, relaxation r, moment decays.
ASSG_BOUND = 0.425
ASSG_RELAX = 1.5
ASSG_BETA1 = 0.9
ASSG_BETA2 = 0.9
# Added to M + r·D before dividing (the reference's 0.0001).
ASSG_EPS = 1e-4
# The interval the reference's ternary search over A explores (evaluate.py, ``assg-sapgd``).
ASSG_SEARCH_INTERVAL = (0.35, 0.49)


def assg_search_bounds(budget: int) -> tuple[float, ...]:
  """The bounds A that an ASSG search with ``budget`` candidates tries, per example.

  ``budget`` = 1 is the reference's default A = 0.425; more spread evenly over
  :data:`ASSG_SEARCH_INTERVAL` ([0.35, 0.49], the interval of the reference's ternary search),
  both ends included.

  Raises:
    ValueError: ``budget`` is not an integer >= 1.
  """
  if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
    raise ValueError(f"the ASSG search budget must be an integer >= 1, got {budget!r}")
  if budget == 1:
    return (ASSG_BOUND,)
  low, high = ASSG_SEARCH_INTERVAL
  return tuple(round(low + (high - low) * i / (budget - 1), 6) for i in range(budget))


def assg_scale(bound) -> jax.Array:
  """``a = 2·tan(π·A)/π``: the sharpness numerator for the bound A (ASSG's ``self.a``)."""
  return 2.0 * jnp.tan(math.pi * jnp.asarray(bound, jnp.float32)) / math.pi


def initial_moments(shape) -> jax.Array:
  """ASSG's moments before the first forward pass: ``[2, T, ...]``, M = 1 and D = 0."""
  return jnp.zeros((2,) + tuple(shape), jnp.float32).at[0].set(1.0)


def assg_update(first, second, x, *, beta1=ASSG_BETA1, beta2=ASSG_BETA2):
  """One forward pass's update of ASSG's moments at one time step, from ``x = v − u_th``.

  ``M ← β₁·M + (1 − β₁)·|x|``; ``D ← β₂·D + (1 − β₂)·||x| − M|`` with the new M.
  """
  magnitude = jax.lax.stop_gradient(jnp.abs(x))
  first = beta1 * first + (1.0 - beta1) * magnitude
  second = beta2 * second + (1.0 - beta2) * jnp.abs(magnitude - first)
  return first, second


def assg_sharpness(first, second, bound, *, relax=ASSG_RELAX):
  """``α = a/(M + r·D + 10⁻⁴)`` with ``a = 2·tan(π·A)/π`` (ASSG, per neuron and time step)."""
  return assg_scale(bound) / (first + relax * second + ASSG_EPS)


def _time_unroll(time_steps, unroll):
  from jsnn.spiking.neurons import time_unroll   # pylint: disable=import-outside-toplevel
  return time_unroll(time_steps, unroll)


def _factor(values, like):
  return values.reshape((-1,) + (1,) * (like.ndim - 1))


def assg_trace(currents, leak_factors, input_factors, moments, bound, *, leak, threshold,
               relax=ASSG_RELAX, beta1=ASSG_BETA1, beta2=ASSG_BETA2, unroll=None):
  """The exact (D)LIF scan with ASSG's backward pass, and the updated moments.

  Args:
    currents: ``[T, ...]`` float32 input currents.
    leak_factors, input_factors: ``[T]`` DLIF factors (ones for LIF).
    moments: ``[2, T, ...]``: M and D of the previous forward pass (:func:`initial_moments`).
    bound: A, a scalar (may be traced).
    leak, threshold: λ and u_th.
    relax, beta1, beta2: r, β₁, β₂.
    unroll: the scan's unroll (see :func:`jsnn.spiking.neurons.time_unroll`).

  Returns:
    ``(spikes [T, ...], moments [2, T, ...])``.
  """

  def step(membrane, inputs):
    current, leak_factor, input_factor, first, second = inputs
    # lif_step's expression, so the forward pass is bit-identical.
    v = leak * leak_factor * membrane + input_factor * current
    x = v - threshold
    first, second = assg_update(first, second, x, beta1=beta1, beta2=beta2)
    sharpness = assg_sharpness(first, second, bound, relax=relax)
    s = shaped_heaviside(x, sharpness, ShapedArctan())
    return v * (1.0 - s), (s, first, second)

  membrane0 = jnp.zeros(currents.shape[1:], jnp.float32)
  _, (spikes, first, second) = jax.lax.scan(
      step, membrane0, (currents, leak_factors, input_factors, moments[0], moments[1]),
      unroll=_time_unroll(currents.shape[0], unroll))
  return spikes, jax.lax.stop_gradient(jnp.stack([first, second]))


def spread_axes(ndim: int) -> tuple[int, ...]:
  """The axes of one time step's ``[B, ...]`` membrane that PDSG's σ pools: the spatial axes of a
  convolution's ``[B, H, W, C]`` (one σ per channel), every unit of anything else."""
  return tuple(range(1, ndim - 1)) if ndim >= 4 else tuple(range(1, ndim))


def pdsg_trace(currents, leak_factors, input_factors, *, leak, threshold, unroll=None):
  """The exact (D)LIF scan with PDSG's backward pass.

  σ[t] is the (unbiased, as ``torch.std``) standard deviation of ``v[0..t]`` over time and the
  :func:`spread_axes`, per example, merged step by step with Chan et al.'s pairwise update so
  that float32 keeps its precision; σ = 1 where it is 0 (or only one value was seen).

  Args:
    currents: ``[T, B, ...]`` float32; leak_factors, input_factors: ``[T]``.
    leak, threshold, unroll: as in :func:`assg_trace`.

  Returns:
    Spikes ``[T, B, ...]``.
  """
  axes = spread_axes(currents.ndim - 1)
  per_step = math.prod(currents.shape[1 + a] for a in axes)
  stat_shape = tuple(1 if i in axes else n for i, n in enumerate(currents.shape[1:]))

  def step(carry, inputs):
    membrane, count, mean, squares = carry
    current, leak_factor, input_factor = inputs
    v = leak * leak_factor * membrane + input_factor * current
    detached = jax.lax.stop_gradient(v)
    step_mean = jnp.mean(detached, axis=axes, keepdims=True)
    step_squares = jnp.sum(jnp.square(detached - step_mean), axis=axes, keepdims=True)
    total = count + per_step
    delta = step_mean - mean
    mean = mean + delta * (per_step / total)
    squares = squares + step_squares + jnp.square(delta) * (count * per_step / total)
    variance = squares / jnp.maximum(total - 1.0, 1.0)
    width = jnp.sqrt(variance)
    width = jnp.where((width > 0) & (total > 1), width, 1.0)
    s = shaped_heaviside(v - threshold, width, ShiftedGaussian())
    return (v * (1.0 - s), total, mean, squares), s

  zeros = jnp.zeros(stat_shape, jnp.float32)
  init = (jnp.zeros(currents.shape[1:], jnp.float32), jnp.float32(0.0), zeros, zeros)
  _, spikes = jax.lax.scan(step, init, (currents, leak_factors, input_factors),
                           unroll=_time_unroll(currents.shape[0], unroll))
  return spikes
