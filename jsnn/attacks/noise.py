"""Random (non-adversarial) perturbations."""

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jsnn.attacks import base
from jsnn.attacks import projections


def gaussian_noise(
    x: jax.Array, *, key: jax.Array, std: ArrayLike, clip: bool = True
) -> jax.Array:
  """Adds i.i.d. Gaussian noise ``std·N(0, I)`` to every pixel.

  The reference's Gaussian *training* mode (spec §4.1, std 8/255) does not clip; pass
  ``clip=False`` to reproduce it. As an evaluation perturbation, clipping keeps images valid.

  Args:
    x: images [B, ...] in [0, 1].
    key: PRNG key.
    std: noise standard deviation, traced (scalar or per-example [B]).
    clip: clip the result to [0, 1].

  Returns:
    Noisy images, x's shape and dtype.
  """
  base.check_non_negative(std, "std")
  noise = jax.random.normal(key, x.shape, x.dtype)
  x_noisy = x + base.per_example(jnp.asarray(std, x.dtype), x) * noise
  return projections.clip_to_box(x_noisy) if clip else x_noisy
