"""The SNN-RAT weight regulariser (Ding et al., NeurIPS 2022) as the reference applies it (§4.6).

Not a loss term: after every optimiser step, every conv and dense weight, seen as a matrix ``W`` of
shape ``[out, in·k·k]``, takes one step of the Parseval retraction ``W ← (1+β)W − β·W·Wᵀ·W``, which
pulls its singular values towards 1. Dense layers with at least 200 output rows update a fresh
random 30 % of their rows each step, with the Gram matrix of those rows only. The residual weights
of WRN's convex combinations are then projected onto the probability simplex.

Pure JAX on parameter pytrees; parameters are recognised by name (``kernel`` for conv/dense weights,
``convex_combination`` for WRN's residual weights).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

KERNEL = "kernel"
CONVEX_COMBINATION = "convex_combination"


def orthogonal_retraction(matrix, beta):
  """``W ← (1+β)W − β·W·Wᵀ·W`` for ``W`` of shape ``[rows, cols]``."""
  return (1.0 + beta) * matrix - beta * (matrix @ (matrix.T @ matrix))


def _kernel_as_matrix(kernel):
  # Flax kernels are [in, out] (dense) or [kh, kw, in, out] (conv); the reference's rows are
  # outputs.
  return kernel.reshape(-1, kernel.shape[-1]).T


def retract_kernel(kernel, beta, *, key=None, row_fraction=0.3, min_rows_for_sampling=200,
                   sample_rows=False):
  """One retraction step on a conv or dense kernel (Flax layout).

  Args:
    kernel: ``[in, out]`` or ``[kh, kw, in, out]``.
    beta: retraction strength β.
    key: PRNG key for the row sample (dense layers with ≥ ``min_rows_for_sampling`` outputs).
    row_fraction: fraction of rows updated in a sampled step (0.3 in the reference).
    min_rows_for_sampling: dense layers with at least this many output rows are sampled.
    sample_rows: whether this kernel is a dense layer eligible for row sampling.

  Returns:
    The updated kernel, same shape.
  """
  w = _kernel_as_matrix(kernel)
  rows = w.shape[0]
  if sample_rows and rows >= min_rows_for_sampling:
    count = int(row_fraction * rows)
    picked = jax.random.permutation(key, rows)[:count]
    w = w.at[picked].set(orthogonal_retraction(w[picked], beta))
  else:
    w = orthogonal_retraction(w, beta)
  return w.T.reshape(kernel.shape)


def project_to_simplex(v):
  """Euclidean projection onto ``{x : x ≥ 0, Σx = 1}`` (sort-based, Duchi et al. 2008)."""
  u = jnp.sort(v)[::-1]
  css = jnp.cumsum(u)
  k = jnp.arange(1, v.shape[0] + 1, dtype=v.dtype)
  rho = jnp.max(jnp.where(u * k > css - 1.0, k, 0.0))
  theta = (jnp.sum(jnp.where(k <= rho, u, 0.0)) - 1.0) / rho
  return jnp.maximum(v - theta, 0.0)


def apply_rat(params, beta, key, *, row_fraction=0.3, min_rows_for_sampling=200):
  """Applies the retraction to every kernel and the simplex projection to every convex weight.

  Args:
    params: a Flax parameter pytree (nested dicts).
    beta: β (0.0005–0.004 in the paper, per model and dataset).
    key: PRNG key; each sampled dense layer gets its own split.
    row_fraction, min_rows_for_sampling: the dense-row sampling of the reference.

  Returns:
    Updated parameters.
  """
  leaves = jax.tree_util.tree_leaves_with_path(params)
  keys = iter(jax.random.split(key, max(1, len(leaves))))

  def update(path, value):
    name = getattr(path[-1], "key", None)
    sub_key = next(keys)
    if name == KERNEL:
      return retract_kernel(value, beta, key=sub_key, row_fraction=row_fraction,
                            min_rows_for_sampling=min_rows_for_sampling,
                            sample_rows=value.ndim == 2)
    if name == CONVEX_COMBINATION:
      return project_to_simplex(value)
    return value

  return jax.tree_util.tree_map_with_path(update, params)
