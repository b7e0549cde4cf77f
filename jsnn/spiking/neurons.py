"""LIF and DLIF neurons (paper Eq. 1 and §3.3) as pure functions unrolled with ``lax.scan``.

Arrays are time-major: input currents ``I`` have shape ``[T, ...]`` (``[T, B, ...]`` in models),
and so do the returned spikes. Each function runs the membrane in float32 whatever the input dtype:
in bfloat16 the leak 0.99 would round to 0.98828125 and the membrane would drift.

DLIF comes in two placements of its trainable factor ``a[t]`` (one scalar per layer and time step):

* ``"leak"`` — the paper's §3.3:  ``v[t] = λ·a[t]·u[t−1] + I[t]``;
* ``"input"`` — the reference code (spec §1.3): ``v[t] = λ·u[t−1] + a[t]·I[t]``.

The configs that reproduce the paper's tables use ``"input"``, which produced them.

Gradient estimators. The forward pass is always the exact neuron; ``estimator`` picks the backward
pass an attack (or training) differentiates through:

* ``"surrogate"`` — backpropagation through time with the per-step surrogate derivative of the
  spike (Eq. 18's triangle unless another surrogate is given): what the paper trains and attacks
  with.
* ``"bptr"`` — backprop through rate (Ding et al., NeurIPS 2022, SNN-RAT's ``RateBp``): the layer
  is an ANN on firing rates with a ReLU-like rate function, ``∂L/∂J[t] = ∂L/∂s[t]·1[r > 0]``
  with ``r = mean_t s[t]`` the neuron's firing rate.
* ``"rga"`` — rate-gradient approximation (Bu et al., ICCV 2023): ``∂L/∂J[t] = ∂L/∂s[t]·r'(J̄)``
  where ``J̄ = mean_t J[t]`` and ``r'`` is the derivative of the reference code's piecewise-linear
  LIF rate function (:func:`rga_rate_derivative`).
* ``"hart"`` — HART's mix of rate and temporal information (Hao et al., ICLR 2024, the ``avg``
  mode of its code): the per-step surrogate at each step's membrane, without the gradient through
  the membrane's history, averaged over time:
  ``∂L/∂J[t] = mean_t' ∂L/∂s[t']·σ(v[t'] − u_th)``.
* ``"assg"``, ``"pdsg"`` — BPTT with a surrogate whose shape is set per neuron and time step from
  the membrane: ASSG's adaptive-sharpness arctan (Wang et al., 2025) and PDSG's
  potential-dependent Gaussian (Lun et al., CVPR 2025); see :mod:`jsnn.spiking.adaptive`. Called
  through :func:`lif`/:func:`dlif`, ASSG starts from fresh moments (one update); the running
  moments of an attack need :class:`jsnn.models.SpikingNeuron`'s ``assg_state`` collection.

``J[t]`` is the input current after DLIF's input factor (the membrane's input). The rate-based
estimators are one ``jax.custom_vjp`` over the whole layer; they give the DLIF factors of the
``"input"`` placement their gradient through ``J`` and the factors of the ``"leak"`` placement none
(zero), and they need Python-float ``leak`` and ``threshold``.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp

from jsnn.spiking import adaptive
from jsnn.spiking.surrogate import Triangle, spike

DLIF_PLACEMENTS = ("input", "leak")
GRADIENT_ESTIMATORS = ("surrogate", "bptr", "rga", "hart", "assg", "pdsg")
# Estimators whose surrogate's shape adapts to the membrane (jsnn.spiking.adaptive); ASSG's also
# carries moments from one forward pass to the next.
ADAPTIVE_ESTIMATORS = ("assg", "pdsg")

# The reference RGA code's rate function (SNN_attack_RGA models/layers.py ``RateBp``): slope
# RGA_GAMMA on [0, 1 − λ]·u_th, then linear up to rate RGA_RATE_MAX at (1 + RGA_EXTENT)·u_th.
RGA_GAMMA = 0.2
RGA_EXTENT = 1.0
RGA_RATE_MAX = 1.0

# The longest time loop that is unrolled. XLA:CPU runs each ``while`` iteration as separate
# thunks, copying the carry and the stacked outputs, and cannot fuse the neuron with the
# BatchNorm before it; unrolled, the whole (D)LIF layer becomes a few fusions (the 1/4-width VGG5
# AT step at T = 4 ran 2.1x faster, benchmarks/results). Past this length, compile time and
# program size grow faster than the loop overhead they save.
MAX_UNROLLED_TIME_STEPS = 16


def _check_leak(leak):
  if isinstance(leak, (int, float)) and not 0.0 < leak <= 1.0:
    raise ValueError(f"leak λ must be in (0, 1], got {leak}")


def _check_currents(currents):
  if currents.ndim < 1 or currents.shape[0] < 1:
    raise ValueError(
        f"currents must be time-major with T >= 1 steps, got shape {tuple(currents.shape)}")


def lif_step(membrane, current, *, leak=0.99, threshold=1.0, surrogate: Callable = Triangle(),
             leak_factor=1.0, input_factor=1.0):
  """One step of the (D)LIF neuron of Eq. 1 with a hard reset to 0.

  ``v = λ·leak_factor·u + input_factor·I``; ``s = H(v − u_th)``; ``u' = v·(1 − s)``. The spike is
  not stop-gradiented in the reset, as in the reference, so gradients also flow through the reset
  path.

  Args:
    membrane: ``u[t−1]``, the membrane after the previous reset.
    current: ``I[t]``, same shape.
    leak: λ. threshold: u_th. surrogate: spike surrogate (Eq. 18 triangle by default).
    leak_factor: DLIF's ``a[t]`` in the paper's placement (1 for LIF).
    input_factor: DLIF's ``a[t]`` in the reference's placement (1 for LIF).

  Returns:
    ``(u[t], s[t])``.
  """
  v = leak * leak_factor * membrane + input_factor * current
  s = spike(v, threshold, surrogate)
  return v * (1.0 - s), s


def check_estimator(estimator: str) -> str:
  if estimator not in GRADIENT_ESTIMATORS:
    raise ValueError(f"unknown gradient estimator {estimator!r}; expected one of "
                     f"{GRADIENT_ESTIMATORS}")
  return estimator


def rga_rate_derivative(mean_current, *, leak, threshold=1.0):
  """RGA's derivative of the firing rate with respect to the mean input current.

  The reference code's (written for u_th = 1; here the current is measured in units of u_th):
  with ``x = J̄/u_th``, slope ``γ = 0.2`` on ``0 ≤ x ≤ 1 − λ`` and
  ``(1 − γ + γλ)/(λ + 1)`` on ``1 − λ ≤ x ≤ 2`` (both where they meet, as in the reference),
  0 elsewhere; divided by u_th.

  Args:
    mean_current: ``J̄``, any shape.
    leak: λ. threshold: u_th.

  Returns:
    ``dr/dJ̄``, mean_current's shape.
  """
  x = mean_current / threshold
  upper = (RGA_RATE_MAX - RGA_GAMMA + RGA_GAMMA * leak) / (leak + RGA_EXTENT)
  slope = (jnp.where((x >= 1 - leak) & (x <= 1 + RGA_EXTENT), upper, 0.0)
           + jnp.where((x <= 1 - leak) & (x >= 0), RGA_GAMMA, 0.0))
  return (slope / threshold).astype(mean_current.dtype)


def time_unroll(time_steps: int, unroll=None):
  """The ``unroll`` argument of the neuron's ``lax.scan``: ``None`` picks a full unroll up to
  :data:`MAX_UNROLLED_TIME_STEPS` steps and a rolled loop beyond; a bool or int is kept."""
  if unroll is None:
    return time_steps <= MAX_UNROLLED_TIME_STEPS
  return unroll


def _trace(currents, leak_factors, input_factors, *, leak, threshold, surrogate, unroll=None):
  """The exact forward scan; returns spikes and each step's membrane before the reset, [T, ...]."""

  def step(membrane, inputs):
    current, leak_factor, input_factor = inputs
    # The same expression as lif_step, so the forward pass is bit-identical.
    v = leak * leak_factor * membrane + input_factor * current
    s = spike(v, threshold, surrogate)
    return v * (1.0 - s), (s, v)

  membrane0 = jnp.zeros(currents.shape[1:], jnp.float32)
  _, (spikes, membranes) = jax.lax.scan(step, membrane0,
                                        (currents, leak_factors, input_factors),
                                        unroll=time_unroll(currents.shape[0], unroll))
  return spikes, membranes


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6, 7))
def _rate_estimated(currents, leak_factors, input_factors, estimator, leak, threshold, surrogate,
                    unroll):
  """Spikes of the exact (D)LIF scan; the backward pass is the rate-based ``estimator``'s."""
  return _trace(currents, leak_factors, input_factors, leak=leak, threshold=threshold,
                surrogate=surrogate, unroll=unroll)[0]


def _rate_estimated_fwd(currents, leak_factors, input_factors, estimator, leak, threshold,
                        surrogate, unroll):
  spikes, membranes = _trace(currents, leak_factors, input_factors, leak=leak,
                             threshold=threshold, surrogate=surrogate, unroll=unroll)
  if estimator == "bptr":
    residual = jnp.mean(spikes, axis=0)
  elif estimator == "rga":
    residual = jnp.mean(_membrane_input(currents, input_factors), axis=0)
  else:  # hart
    residual = membranes
  return spikes, (residual, currents, leak_factors, input_factors)


def _membrane_input(currents, input_factors):
  """``J[t] = a[t]·I[t]`` (a = 1 for LIF and for the leak placement), [T, ...]."""
  return input_factors.reshape((-1,) + (1,) * (currents.ndim - 1)) * currents


def _rate_estimated_bwd(estimator, leak, threshold, surrogate, unroll, residuals, g):
  del unroll
  residual, currents, leak_factors, input_factors = residuals
  if estimator == "bptr":
    grad_j = g * (residual > 0).astype(g.dtype)[None]
  elif estimator == "rga":
    grad_j = g * rga_rate_derivative(residual, leak=leak, threshold=threshold)[None]
  else:  # hart: per-step surrogate, no path through the membrane's history, mean over time.
    per_step = g * surrogate(residual - threshold).astype(g.dtype)
    grad_j = jnp.broadcast_to(jnp.mean(per_step, axis=0, keepdims=True), g.shape)
  factors = input_factors.reshape((-1,) + (1,) * (currents.ndim - 1))
  grad_currents = factors * grad_j
  grad_input_factors = jnp.sum(currents * grad_j, axis=tuple(range(1, currents.ndim)))
  return grad_currents, jnp.zeros_like(leak_factors), grad_input_factors


_rate_estimated.defvjp(_rate_estimated_fwd, _rate_estimated_bwd)


def _run(currents, leak_factors, input_factors, *, leak, threshold, surrogate, remat,
         estimator="surrogate", unroll=None):
  _check_currents(currents)
  _check_leak(leak)
  check_estimator(estimator)
  out_dtype = currents.dtype
  currents = currents.astype(jnp.float32)
  if estimator == "pdsg":
    return adaptive.pdsg_trace(currents, leak_factors, input_factors, leak=leak,
                               threshold=threshold, unroll=unroll).astype(out_dtype)
  if estimator == "assg":
    spikes, _ = adaptive.assg_trace(currents, leak_factors, input_factors,
                                    adaptive.initial_moments(currents.shape), adaptive.ASSG_BOUND,
                                    leak=leak, threshold=threshold, unroll=unroll)
    return spikes.astype(out_dtype)
  if estimator != "surrogate":
    if not all(isinstance(v, (int, float)) for v in (leak, threshold)):
      raise ValueError(f"the {estimator!r} gradient estimator needs Python-number leak and "
                       f"threshold; got {leak!r}, {threshold!r}")
    return _rate_estimated(currents, leak_factors, input_factors, estimator, float(leak),
                           float(threshold), surrogate, unroll).astype(out_dtype)

  def step(membrane, inputs):
    current, leak_factor, input_factor = inputs
    return lif_step(membrane, current, leak=leak, threshold=threshold, surrogate=surrogate,
                    leak_factor=leak_factor, input_factor=input_factor)

  def run_scan(currents, leak_factors, input_factors):
    membrane0 = jnp.zeros(currents.shape[1:], jnp.float32)
    _, spikes = jax.lax.scan(step, membrane0, (currents, leak_factors, input_factors),
                             unroll=time_unroll(currents.shape[0], unroll))
    return spikes

  # Recomputation paid for the rolled scan, whose stored residuals XLA:CPU copied per step; the
  # unrolled loop's are cheaper to keep (benchmarks/results), so models default to remat=False.
  if remat:
    run_scan = jax.checkpoint(run_scan)
  return run_scan(currents, leak_factors, input_factors).astype(out_dtype)


def lif(currents, *, leak=0.99, threshold=1.0, surrogate: Callable = Triangle(), remat=False,
        estimator: str = "surrogate", unroll=None):
  """LIF neuron (paper Eq. 1) over time.

  Args:
    currents: input currents ``I``, shape ``[T, ...]``, time-major.
    leak: λ in (0, 1] (0.99 in the paper). threshold: u_th (1.0).
    surrogate: surrogate derivative for the spike (triangle of Eq. 18, ω = 1); also HART's.
    remat: recompute the scan in the backward pass instead of storing it (surrogate estimator).
    estimator: the backward pass, one of ``GRADIENT_ESTIMATORS`` (see the module docstring); the
      forward pass is the same for all.
    unroll: the time loop's ``lax.scan`` unroll; ``None`` unrolls it fully up to
      :data:`MAX_UNROLLED_TIME_STEPS` steps (:func:`time_unroll`). The values do not depend on it.

  Returns:
    Spikes ``s``, shape ``[T, ...]``, in ``currents.dtype`` (values exactly 0 or 1).
  """
  t = currents.shape[0] if currents.ndim else 0
  ones = jnp.ones((t,), jnp.float32)
  return _run(currents, ones, ones, leak=leak, threshold=threshold, surrogate=surrogate,
              remat=remat, estimator=estimator, unroll=unroll)


def dlif(currents, factors, *, placement="input", leak=0.99, threshold=1.0,
         surrogate: Callable = Triangle(), remat=False, estimator: str = "surrogate", unroll=None):
  """Dynamic LIF (paper §3.3) with one trainable factor per time step.

  ``placement="leak"`` is the paper's equation ``v[t] = λ·a[t]·u[t−1] + I[t]``;
  ``placement="input"`` is the reference code's ``v[t] = λ·u[t−1] + a[t]·I[t]`` (spec §1.3), which
  produced the paper's tables. With all factors 1 both equal :func:`lif`.

  Args:
    currents: ``[T, ...]`` time-major input currents.
    factors: ``a``, shape ``[T]``: one scalar per time step, shared by every neuron of the layer.
    placement: ``"input"`` or ``"leak"``.
    leak, threshold, surrogate, remat, estimator, unroll: as in :func:`lif`.

  Returns:
    Spikes, shape ``[T, ...]``.
  """
  _check_currents(currents)
  if placement not in DLIF_PLACEMENTS:
    raise ValueError(f"unknown DLIF placement {placement!r}; expected one of {DLIF_PLACEMENTS}")
  if factors.shape != (currents.shape[0],):
    raise ValueError(f"DLIF factors must have shape [T]=({currents.shape[0]},), "
                     f"got {tuple(factors.shape)}")
  factors = factors.astype(jnp.float32)
  ones = jnp.ones_like(factors)
  leak_factors, input_factors = (factors, ones) if placement == "leak" else (ones, factors)
  return _run(currents, leak_factors, input_factors, leak=leak, threshold=threshold,
              surrogate=surrogate, remat=remat, estimator=estimator, unroll=unroll)


def direct_encoding(images, time_steps: int):
  """Direct (constant) encoding: the same image at every one of ``time_steps`` steps, time-major."""
  if time_steps < 1:
    raise ValueError(f"time_steps must be >= 1, got {time_steps}")
  return jnp.broadcast_to(images[None], (time_steps,) + images.shape)


def poisson_encoding(key, images, time_steps: int):
  """Rate ("Poisson") encoding: pixel intensity p ∈ [0, 1] spikes at each step with probability p.

  Draws ``[T, B, ...]`` Bernoulli spike trains, independent over steps and pixels. The backward
  pass is the gradient of the expectation, E[s_t] = p, so ∂s_t/∂p = 1 (the straight-through
  estimator every rate-coded attack uses): without it the input gradient would be zero and a
  gradient attack would see nothing.

  A model with this encoding is stochastic: its prediction is a random variable, so it is scored
  by majority vote over draws and attacked with EOT (:mod:`jsnn.attacks.eot`).

  Args:
    key: PRNG key of this draw.
    images: ``[B, ...]`` intensities, normally in [0, 1] (below 0 never spikes, above 1 always).
    time_steps: T ≥ 1.

  Returns:
    ``[T, B, ...]`` spikes in {0, 1}, ``images``' dtype.
  """
  if time_steps < 1:
    raise ValueError(f"time_steps must be >= 1, got {time_steps}")
  expected = jnp.broadcast_to(images[None], (time_steps,) + images.shape)
  uniform = jax.random.uniform(key, expected.shape, jnp.float32)
  spikes = (uniform < expected).astype(images.dtype)
  return expected + jax.lax.stop_gradient(spikes - expected)


# Input encodings a model can use: the paper's direct encoding, or stochastic rate encoding.
ENCODINGS = ("direct", "poisson")
