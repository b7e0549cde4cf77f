"""Membrane-potential perturbation dynamics (MPPD) and spike-train distances, pure JAX.

Implements, from Ding et al. (ICML 2024):

* :func:`membrane_perturbation` — the MPPD recurrence of Eq. 11, ``ε[t] = λ·ε[t−1] + ΔI[t]``,
  ``ε[0] = 0``, as a parallel prefix scan (``jax.lax.associative_scan``);
* :func:`ms_mppd` — the mean square of MPPD, Eq. 14, the training regulariser;
* :func:`tasad` (Eq. 12) and :func:`spike_train_distance` (STD, Eq. 13);
* :func:`l2_gain_bound` — γ = sqrt(1/(1−λ))·‖W‖ of Theorem 3.1, and :func:`l2_gain`, the tight
  gain ‖L_T‖·‖W‖ (the theorem's γ is not a bound for every T; see its docstring), with spectral
  norms of dense matrices and of convolutions (as linear operators, by power iteration).

All time axes are axis 0 (time-major ``[T, B, ...]``).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

MS_MPPD_REDUCTIONS = ("mean", "sum")


def _check_leak(leak):
  if isinstance(leak, (int, float)) and not 0.0 < leak <= 1.0:
    raise ValueError(f"leak λ must be in (0, 1], got {leak}")


def _check_time_major(name, x, min_ndim=1):
  if x.ndim < min_ndim or x.shape[0] < 1:
    raise ValueError(f"{name} must be time-major [T, ...] with T >= 1 and at least {min_ndim} "
                     f"dimensions, got shape {tuple(x.shape)}")


def membrane_perturbation(delta_current: jax.Array, leak=0.99) -> jax.Array:
  """The MPPD recurrence, paper Eq. 11: ``ε[t] = λ·ε[t−1] + ΔI[t]`` with ``ε[0] = 0``.

  Computed as a parallel scan over time: each step is the affine map ``e ↦ λ·e + ΔI[t]``, and
  affine maps compose associatively, ``(a₁, b₁) then (a₂, b₂) = (a₁a₂, a₂b₁ + b₂)``, so the whole
  sequence takes O(log T) depth instead of T sequential steps.

  Args:
    delta_current: ``ΔI`` (in the paper ``Σ_j w_ij Δs_j[t]``; in the reference code the clean minus
      perturbed input current of the layer), shape ``[T, ...]``.
    leak: λ in (0, 1]; a scalar.

  Returns:
    ``ε``, same shape as ``delta_current``: ``ε[t] = Σ_{k≤t} λ^{t−k} ΔI[k]``.
  """
  _check_time_major("delta_current", delta_current)
  _check_leak(leak)
  decay = jnp.full_like(delta_current, leak)

  def compose(earlier, later):
    a1, b1 = earlier
    a2, b2 = later
    return a1 * a2, a2 * b1 + b2

  _, eps = jax.lax.associative_scan(compose, (decay, delta_current), axis=0)
  return eps


def ms_mppd(delta_current: jax.Array, leak=0.99, reduction: str = "mean") -> jax.Array:
  """Mean square of the membrane-potential perturbation, paper Eq. 14.

  Args:
    delta_current: ``[T, B, ...]`` clean minus perturbed input currents of the last spiking layer.
    leak: λ of the recurrence. The reference uses the plain λ = 0.99 even for DLIF (spec §3.1).
    reduction: ``"mean"`` — the reference code's ``mean(ε²)`` over time, batch and neurons (this is
      what produced the paper's tables, and what ρ = 1 means there); ``"sum"`` — the paper's Eq. 14,
      ``Σ_i Σ_t ε_i[t]²`` per example, averaged over the batch. The two differ by a factor
      ``T·N_L``.

  Returns:
    A scalar.
  """
  _check_time_major("delta_current", delta_current, min_ndim=2)
  if reduction not in MS_MPPD_REDUCTIONS:
    raise ValueError(f"unknown MS-MPPD reduction {reduction!r}; expected one of "
                     f"{MS_MPPD_REDUCTIONS}")
  sq = jnp.square(membrane_perturbation(delta_current, leak).astype(jnp.float32))
  if reduction == "mean":
    return jnp.mean(sq)
  return jnp.mean(jnp.sum(sq.reshape(sq.shape[0], sq.shape[1], -1), axis=(0, 2)))


def _safe_sqrt(x):
  # sqrt has an infinite derivative at 0; identical clean and perturbed spikes must give a zero
  # gradient, not NaN.
  positive = x > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def tasad(spikes: jax.Array, perturbed_spikes: jax.Array) -> jax.Array:
  """Time-averaged spiking activity distance, paper Eq. 12 (Kundu et al. 2021).

  ``TASAD = ‖(Σ_t s[t] − Σ_t s̃[t]) / T‖₂`` over the neurons of each example.

  Args:
    spikes, perturbed_spikes: ``[T, B, ...]``.

  Returns:
    ``[B]``, one distance per example.
  """
  _check_pair(spikes, perturbed_spikes)
  t = spikes.shape[0]
  diff = (jnp.sum(spikes, 0) - jnp.sum(perturbed_spikes, 0)).astype(jnp.float32) / t
  return _safe_sqrt(jnp.sum(jnp.square(diff.reshape(diff.shape[0], -1)), axis=1))


def spike_train_distance(spikes: jax.Array, perturbed_spikes: jax.Array) -> jax.Array:
  """Spike train distance (STD), paper Eq. 13 (Ding et al. 2022).

  ``STD = sqrt(Σ_t ‖s[t] − s̃[t]‖₂²)`` per example.

  Args:
    spikes, perturbed_spikes: ``[T, B, ...]``.

  Returns:
    ``[B]``.
  """
  _check_pair(spikes, perturbed_spikes)
  diff = (spikes - perturbed_spikes).astype(jnp.float32)
  diff = jnp.moveaxis(diff, 1, 0).reshape(diff.shape[1], -1)
  return _safe_sqrt(jnp.sum(jnp.square(diff), axis=1))


def _check_pair(a, b):
  if a.shape != b.shape:
    raise ValueError(f"spike trains must have equal shapes, got {tuple(a.shape)} and "
                     f"{tuple(b.shape)}")
  _check_time_major("spikes", a, min_ndim=2)


def l2_gain_bound(spectral_norm, leak=0.99):
  """The paper's L2 gain of the perturbation dynamics, Theorem 3.1 (Eq. 15): ``sqrt(1/(1−λ))·‖W‖``.

  !!! The inequality ``‖ε[:T]‖_L2 ≤ γ·‖Δs[:T]‖_L2`` does **not** hold for every T: the proof's step
  from Eq. 26 to Eq. 27 bounds a squared sum of powers of λ by the sum itself. The tight gain is
  :func:`l2_gain` (``‖L_T‖·‖W‖``, with ``‖L_T‖ ≤ (1−λ^T)/(1−λ)``). At the paper's λ = 0.99
  and T = 8, ``‖L_T‖ = 5.26 ≤ sqrt(1/(1−λ)) = 10``, so the theorem holds for its models;
  at λ = 0.99 it fails from T = 17 on, and at λ = 0.9 already at T = 8 (4.11 > 3.16).

  Args:
    spectral_norm: ``‖W‖`` (see :func:`spectral_norm_dense`, :func:`spectral_norm_conv`).
    leak: λ in (0, 1).

  Returns:
    γ of Theorem 3.1.
  """
  if isinstance(leak, (int, float)) and not 0.0 < leak < 1.0:
    raise ValueError(f"the bound needs leak λ in (0, 1), got {leak}")
  return jnp.sqrt(1.0 / (1.0 - leak)) * spectral_norm


def leak_operator_norm(leak, time_steps: int):
  """``‖L_T‖₂`` of the map ``J ↦ ε`` of Eq. 11 on one neuron, ``L_T[t, k] = λ^{t−k}`` for k ≤ t.

  Exact (largest singular value of the T×T lower-triangular Toeplitz matrix); it grows with T
  towards ``1/(1−λ)``.
  """
  if not isinstance(time_steps, int) or time_steps < 1:
    raise ValueError(f"time_steps must be an integer >= 1, got {time_steps!r}")
  _check_leak(leak)
  t = jnp.arange(time_steps)
  lags = t[:, None] - t[None, :]
  operator = jnp.where(lags >= 0, jnp.power(leak, jnp.maximum(lags, 0).astype(jnp.float32)), 0.0)
  return jnp.linalg.norm(operator, ord=2)


def l2_gain(spectral_norm, leak, time_steps: int):
  """The tight L2 gain of MPPD with input ``W·Δs`` over T steps: ``‖L_T‖·‖W‖``.

  ``ε = (L_T ⊗ W)·Δs``, and the spectral norm of a Kronecker product is the product of the norms,
  so ``‖ε[:T]‖_L2 ≤ ‖L_T‖·‖W‖·‖Δs[:T]‖_L2`` for every Δs, with equality for the top singular
  vectors. This is what Theorem 3.1 should state (see :func:`l2_gain_bound`).
  """
  return leak_operator_norm(leak, time_steps) * spectral_norm


def _power_iteration(apply, apply_transpose, v0, num_iters):
  def body(_, v):
    u = apply_transpose(apply(v))
    return u / (jnp.linalg.norm(u) + 1e-30)

  v = jax.lax.fori_loop(0, num_iters, body, v0 / jnp.linalg.norm(v0))
  return jnp.linalg.norm(apply(v))


def spectral_norm_dense(weight: jax.Array, *, num_iters: int = 100, key=None) -> jax.Array:
  """Largest singular value of a dense weight ``[in, out]`` (or any matrix), by power iteration."""
  if weight.ndim != 2:
    raise ValueError(f"dense weight must be 2-D, got shape {tuple(weight.shape)}")
  key = jax.random.key(0) if key is None else key
  v0 = jax.random.normal(key, (weight.shape[1],), jnp.float32)
  w = weight.astype(jnp.float32)
  return _power_iteration(lambda v: w @ v, lambda u: w.T @ u, v0, num_iters)


def spectral_norm_conv(kernel: jax.Array, input_shape: Sequence[int], *, strides=(1, 1),
                       padding="SAME", num_iters: int = 100, key=None) -> jax.Array:
  """Spectral norm of a 2-D convolution as a linear operator on ``input_shape`` = (H, W, C_in).

  The operator norm depends on the input size and padding, not only on the kernel, so it is found
  by power iteration with the convolution and its transpose (the VJP of the convolution).

  Args:
    kernel: HWIO kernel ``[kh, kw, C_in, C_out]``.
    input_shape: ``(H, W, C_in)`` of one example.
    strides, padding: as in ``jax.lax.conv_general_dilated``.
    num_iters: power-iteration steps.
    key: PRNG key for the start vector.

  Returns:
    ``‖conv‖₂`` as a scalar.
  """
  if kernel.ndim != 4 or len(input_shape) != 3 or input_shape[2] != kernel.shape[2]:
    raise ValueError(f"expected an HWIO kernel and input_shape (H, W, C_in) with matching C_in, "
                     f"got kernel {tuple(kernel.shape)} and input_shape {tuple(input_shape)}")
  key = jax.random.key(0) if key is None else key
  k = kernel.astype(jnp.float32)

  def conv(x):
    return jax.lax.conv_general_dilated(x[None], k, tuple(strides), padding,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]

  v0 = jax.random.normal(key, tuple(input_shape), jnp.float32)

  def conv_t(u):
    return jax.vjp(conv, jnp.zeros(tuple(input_shape), jnp.float32))[1](u)[0]

  return _power_iteration(conv, conv_t, v0, num_iters)
