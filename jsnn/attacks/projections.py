"""The threat-model sets: projections onto them and random starting points inside them.

An attack's feasible set is the intersection of a norm ball around the clean image and the image
box [0, 1]. Like the reference code (torchattacks), attacks project onto the ball first and then
clip to the box; the result is feasible for both, though not always the exact Euclidean projection
onto the intersection.
"""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from optax import projections as optax_projections

from jsnn.attacks import base


def clip_to_box(x: jax.Array, lower: ArrayLike = 0.0, upper: ArrayLike = 1.0) -> jax.Array:
  """Clips images to the box [lower, upper] (by default the valid image range [0, 1])."""
  return optax_projections.projection_box(x, lower, upper)


def project_linf(x_adv: jax.Array, x_clean: jax.Array, epsilon: ArrayLike) -> jax.Array:
  """Projects ``x_adv`` onto the L∞ ball of radius ε around ``x_clean``.

  Args:
    x_adv: [B, ...] images to project.
    x_clean: [B, ...] ball centres.
    epsilon: radius, a scalar or per-example [B].

  Returns:
    ``x_clean + clip(x_adv - x_clean, -ε, ε)``, x_adv's shape.
  """
  eps = base.per_example(epsilon, x_adv)
  return optax_projections.projection_box(x_adv, x_clean - eps, x_clean + eps)


def project_l2(x_adv: jax.Array, x_clean: jax.Array, epsilon: ArrayLike) -> jax.Array:
  """Projects ``x_adv`` onto the L2 ball of radius ε around ``x_clean``, per example.

  ``optax.projections.projection_l2_ball`` treats its whole input as one vector, and it divides
  0/0 when ε = 0; this version works per example and returns ``x_clean`` exactly when ε = 0.

  Args:
    x_adv: [B, ...] images to project.
    x_clean: [B, ...] ball centres.
    epsilon: radius, a scalar or per-example [B].

  Returns:
    ``x_clean + δ·min(1, ε/‖δ‖₂)`` with ``δ = x_adv - x_clean``, x_adv's shape.
  """
  delta = x_adv - x_clean
  norm = base.l2_norm(delta)
  outside = norm > epsilon
  # Divide only where the point is outside the ball, where the norm is > ε >= 0.
  factor = jnp.where(outside, epsilon / jnp.where(outside, norm, 1.0), 1.0)
  return x_clean + base.per_example(factor, delta) * delta


def get_projection(norm: str):
  """The ball projection for a norm: :func:`project_linf` or :func:`project_l2`."""
  return {"linf": project_linf, "l2": project_l2}[base.check_norm(norm)]


def uniform_linf_start(key: jax.Array, x: jax.Array, epsilon: ArrayLike) -> jax.Array:
  """A uniform random point of the L∞ ball, clipped to [0, 1] (PGD's random start).

  Args:
    key: PRNG key.
    x: [B, ...] clean images.
    epsilon: radius (scalar).

  Returns:
    ``clip01(x + U[-ε, ε])``, x's shape.
  """
  eps = base.as_scalar(epsilon, x)
  noise = jax.random.uniform(key, x.shape, x.dtype, minval=-1.0, maxval=1.0)
  return clip_to_box(x + eps * noise)


def l2_ball_start(key: jax.Array, x: jax.Array, epsilon: ArrayLike) -> jax.Array:
  """A random point of the L2 ball, clipped to [0, 1] (torchattacks PGDL2's random start).

  The direction is uniform on the sphere and the radius is ε·U[0, 1] (so points are not uniform
  in volume; this matches torchattacks).

  Args:
    key: PRNG key.
    x: [B, ...] clean images.
    epsilon: radius (scalar).

  Returns:
    ``clip01(x + δ)`` with ``‖δ‖₂ ≤ ε`` per example, x's shape.
  """
  direction_key, radius_key = jax.random.split(key)
  direction = jax.random.normal(direction_key, x.shape, x.dtype)
  radius = base.as_scalar(epsilon, x) * jax.random.uniform(radius_key, x.shape[:1], x.dtype)
  scale = radius / (base.l2_norm(direction) + base.NORM_EPS)
  return clip_to_box(x + base.per_example(scale, x) * direction)


def linf_sphere_start(key: jax.Array, x: jax.Array, epsilon: ArrayLike) -> jax.Array:
  """A random point on the L∞ sphere of radius ε, clipped to [0, 1] (APGD's L∞ start).

  A uniform direction in [-1, 1]^d is rescaled so that its largest entry has magnitude exactly ε,
  as in AutoAttack/torchattacks APGD.

  Args:
    key: PRNG key.
    x: [B, ...] clean images.
    epsilon: radius (scalar).

  Returns:
    ``clip01(x + ε·t/‖t‖∞)``, x's shape.
  """
  t = jax.random.uniform(key, x.shape, x.dtype, minval=-1.0, maxval=1.0)
  scale = base.as_scalar(epsilon, x) / base.linf_norm(t)
  return clip_to_box(x + base.per_example(scale, x) * t)


def l2_sphere_start(key: jax.Array, x: jax.Array, epsilon: ArrayLike) -> jax.Array:
  """A random point on the L2 sphere of radius ε, clipped to [0, 1] (APGD's L2 start).

  Args:
    key: PRNG key.
    x: [B, ...] clean images.
    epsilon: radius (scalar).

  Returns:
    ``clip01(x + ε·t/(‖t‖₂ + 1e-12))`` with t standard normal, x's shape.
  """
  t = jax.random.normal(key, x.shape, x.dtype)
  scale = base.as_scalar(epsilon, x) / (base.l2_norm(t) + base.NORM_EPS)
  return clip_to_box(x + base.per_example(scale, x) * t)
