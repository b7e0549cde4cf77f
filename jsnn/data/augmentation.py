"""The reference's training augmentation, pure JAX on the device, deterministic from a key.

``RandomCrop(32, padding=4)`` → ``RandomHorizontalFlip`` → Cutout (one 16×16 hole, zero-filled),
on ``[B, H, W, C]`` float32 in [0, 1] (reference-spec §4.5); normalisation lives in the model.
"""

import jax
import jax.numpy as jnp


def to_float(images: jax.Array) -> jax.Array:
  """uint8 [..., H, W, C] in 0..255 → float32 in [0, 1] (torchvision's ``ToTensor`` scaling)."""
  return jnp.asarray(images).astype(jnp.float32) / 255.0


def random_crop(key: jax.Array, images: jax.Array, padding: int = 4) -> jax.Array:
  """Zero-pads by ``padding`` and takes a random H×W window per example.

  Same as torchvision ``RandomCrop(32, padding=4)``: each offset is uniform in [0, 2·padding] on
  each axis, independently per example.

  Args:
    key: PRNG key.
    images: float [B, H, W, C].
    padding: static padding on each side of H and W.

  Returns:
    The cropped images, same shape and dtype.
  """
  b, h, w, c = images.shape
  padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  offsets = jax.random.randint(key, (b, 2), 0, 2 * padding + 1)

  def crop_one(image, offset):
    return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, c))

  return jax.vmap(crop_one)(padded, offsets)


def random_flip(key: jax.Array, images: jax.Array) -> jax.Array:
  """Mirrors each example left-right with probability 0.5.

  Args:
    key: PRNG key.
    images: [B, H, W, C].

  Returns:
    The images, same shape and dtype.
  """
  flip = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
  return jnp.where(flip, images[:, :, ::-1, :], images)


def random_cutout(key: jax.Array, images: jax.Array, size: int = 16) -> jax.Array:
  """Zeroes one ``size``×``size`` square per example (Cutout, DeVries & Taylor 2017).

  As in the reference (reference-spec §4.5): the centre is uniform over all pixels, the square
  spans ``[centre - size//2, centre + size//2)`` clipped at the borders (so holes near an edge are
  smaller), and it is zero-filled in [0, 1] space, before the model's normalisation.

  Args:
    key: PRNG key.
    images: [B, H, W, C].
    size: static side of the square.

  Returns:
    The images with the holes, same shape and dtype.
  """
  b, h, w, _ = images.shape
  row_key, col_key = jax.random.split(key)
  half = size // 2

  def span(key, length):
    centre = jax.random.randint(key, (b, 1), 0, length)
    start, stop = jnp.clip(centre - half, 0, length), jnp.clip(centre + half, 0, length)
    pixels = jnp.arange(length)[None, :]
    return (pixels >= start) & (pixels < stop)  # [B, length]

  in_rows, in_cols = span(row_key, h), span(col_key, w)
  hole = in_rows[:, :, None] & in_cols[:, None, :]  # [B, H, W]
  return jnp.where(hole[..., None], jnp.zeros((), images.dtype), images)


def augment(key: jax.Array, images: jax.Array, *, crop: bool = True, flip: bool = True,
            cutout: bool = True, padding: int = 4, cutout_size: int = 16) -> jax.Array:
  """The reference's training transform: random crop → horizontal flip → Cutout.

  Args:
    key: PRNG key; split into one key per transform.
    images: float32 [B, 32, 32, 3] in [0, 1] (see ``to_float``).
    crop, flip, cutout: static switches for each transform.
    padding: crop padding.
    cutout_size: side of the Cutout square.

  Returns:
    Augmented images, same shape and dtype, still in [0, 1].
  """
  crop_key, flip_key, cutout_key = jax.random.split(key, 3)
  if crop:
    images = random_crop(crop_key, images, padding)
  if flip:
    images = random_flip(flip_key, images)
  if cutout:
    images = random_cutout(cutout_key, images, cutout_size)
  return images
