"""Heaviside spike with a pluggable surrogate gradient (paper Eq. 18).

The forward pass is exact: ``H(x) = 1`` for ``x >= 0`` (the reference fires at ``v >= u_th``). The
backward pass replaces the Dirac delta by a surrogate derivative ``g(x)``. Surrogates are frozen
dataclasses so that they are hashable and can be passed to ``jax.custom_vjp`` as a static argument;
their hyper-parameters are Python floats, so a different width is a different (recompiled)
function, which is what an attack "through another surrogate" needs.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Triangle:
  """Triangle surrogate of paper Eq. 18: ``(1/ω²)·max(ω − |x|, 0)``, ω = ``width``."""
  width: float = 1.0

  def __call__(self, x):
    w = self.width
    return jnp.maximum(w - jnp.abs(x), 0.0) / (w * w)


@dataclasses.dataclass(frozen=True)
class Sigmoid:
  """Derivative of ``sigmoid(α·x)``: ``α·σ(αx)(1 − σ(αx))`` (Zenke & Ganguli style)."""
  alpha: float = 4.0

  def __call__(self, x):
    s = jax.nn.sigmoid(self.alpha * x)
    return self.alpha * s * (1.0 - s)


@dataclasses.dataclass(frozen=True)
class Arctan:
  """Derivative of ``arctan(π/2·α·x)/π + 1/2``: ``(α/2) / (1 + (π/2·α·x)²)`` (Fang et al. 2021)."""
  alpha: float = 2.0

  def __call__(self, x):
    return (self.alpha / 2.0) / (1.0 + (math.pi / 2.0 * self.alpha * x) ** 2)


@dataclasses.dataclass(frozen=True)
class Rectangular:
  """Box surrogate: ``1/width`` on ``|x| < width/2``, else 0 (Wu et al. 2018)."""
  width: float = 1.0

  def __call__(self, x):
    return jnp.where(jnp.abs(x) < self.width / 2.0, 1.0 / self.width, 0.0).astype(x.dtype)


@dataclasses.dataclass(frozen=True)
class StraightThrough:
  """Straight-through estimator: the gradient passes unchanged (derivative 1)."""

  def __call__(self, x):
    return jnp.ones_like(x)


SURROGATES: dict[str, Callable[..., Callable]] = {
    "triangle": Triangle,
    "sigmoid": Sigmoid,
    "arctan": Arctan,
    "rectangular": Rectangular,
    "straight_through": StraightThrough,
}


def get_surrogate(name: str, **kwargs) -> Callable:
  """Returns the surrogate called ``name`` (see ``SURROGATES``) built with ``kwargs``."""
  if name not in SURROGATES:
    raise ValueError(f"unknown surrogate {name!r}; expected one of {sorted(SURROGATES)}")
  try:
    return SURROGATES[name](**kwargs)
  except TypeError as e:
    raise ValueError(f"bad arguments {kwargs} for surrogate {name!r}: {e}") from None


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def heaviside(x: jax.Array, surrogate: Callable = Triangle()) -> jax.Array:
  """``H(x) = 1[x >= 0]`` in ``x.dtype``; its gradient is ``surrogate(x)`` (Eq. 18 by default)."""
  return (x >= 0).astype(x.dtype)


def _heaviside_fwd(x, surrogate):
  return heaviside(x, surrogate), x


def _heaviside_bwd(surrogate, x, g):
  return (g * surrogate(x).astype(g.dtype),)


heaviside.defvjp(_heaviside_fwd, _heaviside_bwd)


def spike(membrane: jax.Array, threshold=1.0, surrogate: Callable = Triangle()) -> jax.Array:
  """Spikes ``s = H(v − u_th)`` (paper Eq. 1, second line) with a surrogate gradient in ``v``."""
  return heaviside(membrane - threshold, surrogate)


# ------------------------------------------------------------------------------------------------
# Surrogates whose shape is an array (one value per neuron and time step), not a Python float.
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ShapedArctan:
  """The arctan surrogate with an array sharpness α: ``(α/2) / (1 + (π/2·α·x)²)``.

  ASSG's surrogate (Wang et al., 2025, ``atan1`` of the reference code); α is chosen per neuron
  and time step by :func:`jsnn.spiking.adaptive.assg_sharpness`.
  """

  def __call__(self, x, sharpness):
    return (sharpness / 2.0) / (1.0 + (math.pi / 2.0 * sharpness * x) ** 2)


@dataclasses.dataclass(frozen=True)
class ShiftedGaussian:
  """PDSG's surrogate with an array width σ (Lun et al., CVPR 2025, Eq. 9 of the paper):
  ``exp(−((x − σ/2)/(√2·σ))²) / (√(2π)·σ)``, a Gaussian of standard deviation σ centred at σ/2
  above the threshold."""

  def __call__(self, x, width):
    return jnp.exp(-jnp.square((x - 0.5 * width) / (math.sqrt(2.0) * width))) / (
        math.sqrt(2.0 * math.pi) * width)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def shaped_heaviside(x: jax.Array, shape: jax.Array, surrogate: Callable) -> jax.Array:
  """``H(x) = 1[x >= 0]``, exactly :func:`heaviside`'s forward pass; its gradient in ``x`` is
  ``surrogate(x, shape)`` with ``shape`` an array broadcastable to ``x`` (no gradient flows into
  the shape: ASSG and PDSG compute it from detached statistics)."""
  del shape, surrogate
  return (x >= 0).astype(x.dtype)


def _shaped_heaviside_fwd(x, shape, surrogate):
  return shaped_heaviside(x, shape, surrogate), (x, shape)


def _shaped_heaviside_bwd(surrogate, residuals, g):
  x, shape = residuals
  return g * surrogate(x, shape).astype(g.dtype), jnp.zeros_like(shape)


shaped_heaviside.defvjp(_shaped_heaviside_fwd, _shaped_heaviside_bwd)
