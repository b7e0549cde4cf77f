"""Fixed-shape batches, so that nothing recompiles.

Training batches are drawn on the device from the epoch's permutation and wrap around it
(:func:`batch_indices`); evaluation batches are zero-padded with a mask (:func:`eval_batches`),
so every test example is counted exactly once.
"""

import math
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  """``ceil(num_examples / batch_size)``: the last, partial batch is kept (782 for CIFAR at 64)."""
  return math.ceil(num_examples / batch_size)


def epoch_permutation(key: jax.Array, num_examples: int) -> jax.Array:
  """A random order of ``range(num_examples)`` for one epoch; int32 [num_examples]."""
  return jax.random.permutation(key, num_examples).astype(jnp.int32)


def batch_indices(permutation: jax.Array, batch_size: int, step: jax.Array | int) -> jax.Array:
  """Indices of batch ``step`` (0-based, within the epoch) of a permutation.

  Batch ``s`` takes positions ``s*B … s*B+B-1`` of the permutation, modulo its length. So the last
  batch of an epoch is filled by wrapping around to the start of the same permutation: every batch
  has the same shape (no recompile), and in ``steps_per_epoch`` steps every example is seen at least
  once, the first ``steps*B - N`` of the permutation twice. The reference keeps the partial last
  batch instead; the step count per epoch is the same.

  Args:
    permutation: int [N], e.g. from ``epoch_permutation``.
    batch_size: static batch size B.
    step: step within the epoch; may be traced.

  Returns:
    int32 [B] indices into the dataset.
  """
  n = permutation.shape[0]
  positions = (step * batch_size + jnp.arange(batch_size)) % n
  return jnp.take(permutation, positions).astype(jnp.int32)


def epoch_batch_indices(key: jax.Array, num_examples: int, batch_size: int,
                        step: jax.Array | int) -> jax.Array:
  """Indices of global training step ``step``, derived from the step alone (resumable, jittable).

  Epoch ``e = step // steps_per_epoch`` uses the permutation from ``fold_in(key, e)``; within it,
  batches follow ``batch_indices``.

  Args:
    key: the data-order key of the run.
    num_examples: static N.
    batch_size: static B.
    step: global step; may be traced.

  Returns:
    int32 [B] indices into the dataset.
  """
  steps = steps_per_epoch(num_examples, batch_size)
  permutation = epoch_permutation(jax.random.fold_in(key, step // steps), num_examples)
  return batch_indices(permutation, batch_size, step % steps)


def eval_batches(images: np.ndarray, labels: np.ndarray,
                 batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """Yields fixed-size evaluation batches, in order, padding the last with zeros.

  Every example appears exactly once with ``mask`` True; padding rows have zero images, label 0
  and ``mask`` False, so sums of ``metric * mask`` count each real example once.

  Args:
    images: [N, ...].
    labels: [N].
    batch_size: B.

  Yields:
    ``(images [B, ...], labels [B], mask bool [B])``, ``ceil(N / B)`` times.
  """
  if len(images) != len(labels):
    raise ValueError(f"{len(images)} images but {len(labels)} labels")
  n = len(labels)
  for start in range(0, n, batch_size):
    x, y = images[start:start + batch_size], labels[start:start + batch_size]
    real = len(y)
    mask = np.arange(batch_size) < real
    if real < batch_size:
      x = np.concatenate([x, np.zeros((batch_size - real, *x.shape[1:]), x.dtype)])
      y = np.concatenate([y, np.zeros((batch_size - real,), y.dtype)])
    yield x, y, mask
