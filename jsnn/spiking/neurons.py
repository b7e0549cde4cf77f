"""LIF and DLIF neurons (paper Eq. 1 and §3.3) as pure functions unrolled with ``lax.scan``.

Arrays are time-major: input currents ``I`` have shape ``[T, ...]`` (``[T, B, ...]`` in models),
and so do the returned spikes. Each function runs the membrane in float32 whatever the input dtype:
in bfloat16 the leak 0.99 would round to 0.98828125 and the membrane would drift.

DLIF comes in two placements of its trainable factor ``a[t]`` (one scalar per layer and time step):

* ``"leak"`` — the paper's §3.3:  ``v[t] = λ·a[t]·u[t−1] + I[t]``;
* ``"input"`` — the reference code (spec §1.3): ``v[t] = λ·u[t−1] + a[t]·I[t]``.

The configs that reproduce the paper's tables use ``"input"``, which produced them.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jsnn.spiking.surrogate import Triangle, spike

DLIF_PLACEMENTS = ("input", "leak")


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

  ``v = λ·leak_factor·u + input_factor·I``; ``s = H(v − u_th)``; ``u' = v·(1 − s)``. The spike is not
  stop-gradiented in the reset, as in the reference, so gradients also flow through the reset path.

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


def _run(currents, leak_factors, input_factors, *, leak, threshold, surrogate, remat):
  _check_currents(currents)
  _check_leak(leak)
  out_dtype = currents.dtype
  currents = currents.astype(jnp.float32)

  def step(membrane, inputs):
    current, leak_factor, input_factor = inputs
    return lif_step(membrane, current, leak=leak, threshold=threshold, surrogate=surrogate,
                    leak_factor=leak_factor, input_factor=input_factor)

  def unroll(currents, leak_factors, input_factors):
    membrane0 = jnp.zeros(currents.shape[1:], jnp.float32)
    _, spikes = jax.lax.scan(step, membrane0, (currents, leak_factors, input_factors))
    return spikes

  # Recomputing the scan in the backward pass is cheaper than storing its residuals on CPU
  # (perf-baseline.md, Experiment 4: 0.85x step time for VGG11).
  if remat:
    unroll = jax.checkpoint(unroll)
  return unroll(currents, leak_factors, input_factors).astype(out_dtype)


def lif(currents, *, leak=0.99, threshold=1.0, surrogate: Callable = Triangle(), remat=False):
  """LIF neuron (paper Eq. 1) over time.

  Args:
    currents: input currents ``I``, shape ``[T, ...]``, time-major.
    leak: λ in (0, 1] (0.99 in the paper). threshold: u_th (1.0).
    surrogate: surrogate derivative for the spike (triangle of Eq. 18, ω = 1).
    remat: recompute the scan in the backward pass instead of storing it.

  Returns:
    Spikes ``s``, shape ``[T, ...]``, in ``currents.dtype`` (values exactly 0 or 1).
  """
  t = currents.shape[0] if currents.ndim else 0
  ones = jnp.ones((t,), jnp.float32)
  return _run(currents, ones, ones, leak=leak, threshold=threshold, surrogate=surrogate,
              remat=remat)


def dlif(currents, factors, *, placement="input", leak=0.99, threshold=1.0,
         surrogate: Callable = Triangle(), remat=False):
  """Dynamic LIF (paper §3.3) with one trainable factor per time step.

  ``placement="leak"`` is the paper's equation ``v[t] = λ·a[t]·u[t−1] + I[t]``;
  ``placement="input"`` is the reference code's ``v[t] = λ·u[t−1] + a[t]·I[t]`` (spec §1.3), which
  produced the paper's tables. With all factors 1 both equal :func:`lif`.

  Args:
    currents: ``[T, ...]`` time-major input currents.
    factors: ``a``, shape ``[T]``: one scalar per time step, shared by every neuron of the layer.
    placement: ``"input"`` or ``"leak"``.
    leak, threshold, surrogate, remat: as in :func:`lif`.

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
              surrogate=surrogate, remat=remat)


def direct_encoding(images, time_steps: int):
  """Direct (constant) encoding: the same image at every one of ``time_steps`` steps, time-major."""
  if time_steps < 1:
    raise ValueError(f"time_steps must be >= 1, got {time_steps}")
  return jnp.broadcast_to(images[None], (time_steps,) + images.shape)
