"""Expectation over transformation (EOT) for stochastic models (Athalye et al., 2018).

A stochastic model, e.g. one with Poisson input encoding, is a function
``stochastic_logits_fn(x, key) -> logits`` whose output depends on a random draw. The attacks of
this package take a deterministic ``logits_fn(x)``; :func:`expected_logits` builds one from the
stochastic model, and :func:`majority_vote` gives the prediction such a model is scored by.

Fresh draws without threading a key through every attack: the draws of one call are keyed by the
base key folded with a hash of the query point's bits (:func:`point_key`). Each new iterate of an
attack gets new draws, as EOT needs, while the same point always gets the same ones, so the
function stays pure and an attack's bookkeeping (APGD's best loss, Square's margins) is
reproducible. The hash covers the whole batch, so the draws of an example also depend on the other
images of its batch.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jsnn.attacks import base

StochasticLogitsFn = Callable[[jax.Array, jax.Array], jax.Array]
"""Maps (images [B, ...], PRNG key) to logits [B, C] of one random draw."""


def check_num_draws(num_draws: int, name: str = "num_draws") -> int:
  """Raises ValueError unless ``num_draws`` is a Python int >= 1 (it sets array shapes)."""
  if (isinstance(num_draws, bool) or not isinstance(num_draws, (int, np.integer))
      or num_draws < 1):
    raise ValueError(f"{name}, the number of EOT draws, must be an integer >= 1; got "
                     f"{num_draws!r}")
  return int(num_draws)


def point_key(key: jax.Array, x: jax.Array) -> jax.Array:
  """``key`` folded with a hash of ``x``'s float32 bits (position-weighted, so that moving a value
  to another pixel changes it). Not differentiated through."""
  bits = jax.lax.bitcast_convert_type(jax.lax.stop_gradient(x).astype(jnp.float32), jnp.uint32)
  weights = (2 * jnp.arange(bits.size, dtype=jnp.uint32) + 1).reshape(bits.shape)
  return jax.random.fold_in(key, jnp.sum(bits * weights, dtype=jnp.uint32))


def expected_logits(stochastic_logits_fn: StochasticLogitsFn, key: jax.Array,
                    num_draws: int) -> base.LogitsFn:
  """The EOT model: ``x -> log((1/D) Σ_d softmax(f(x, k_d)))`` over ``D = num_draws`` draws.

  These are the log-probabilities of the model averaged over its randomness (the "smoothed"
  classifier), which is what a stochastic model's prediction estimates. Attacking their
  cross-entropy, −log E[p_y], rather than averaging the per-draw losses follows Salman et al.
  (2019), who found it the stronger attack on randomised classifiers; the per-draw gradients are
  averaged with weights p_y(k_d) / Σ p_y. Cross-entropy and DLR do not change when a per-example
  constant is added to the logits, so with ``D = 1`` this attacks exactly what the plain model
  would.

  The D draws run as one vmapped batch (memory D times a single pass); each call draws afresh
  (:func:`point_key`).

  Args:
    stochastic_logits_fn: ``(x, key) -> logits``, one draw.
    key: base PRNG key of the attack's draws.
    num_draws: D ≥ 1.

  Returns:
    ``logits_fn(x) -> [B, C]`` log-probabilities, for any attack of :mod:`jsnn.attacks`.
  """
  num_draws = check_num_draws(num_draws)

  def logits_fn(x):
    keys = jax.random.split(point_key(key, x), num_draws)
    logits = jax.vmap(lambda k: stochastic_logits_fn(x, k))(keys)        # [D, B, C]
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return jax.nn.logsumexp(log_probs, axis=0) - jnp.log(float(num_draws))

  return logits_fn


def majority_vote(stochastic_logits_fn: StochasticLogitsFn, key: jax.Array, x: jax.Array,
                  num_draws: int) -> jax.Array:
  """The class most of ``num_draws`` draws predict, per example (ties: the lowest class index).

  Args:
    stochastic_logits_fn: ``(x, key) -> logits``, one draw.
    key: PRNG key of the votes; keep it independent of the attack's draws, or the score reuses the
      very draws the attack optimised against.
    x: images [B, ...].
    num_draws: D ≥ 1.

  Returns:
    int32 [B] predicted classes.
  """
  num_draws = check_num_draws(num_draws)
  logits = jax.vmap(lambda k: stochastic_logits_fn(x, k))(jax.random.split(key, num_draws))
  votes = jax.nn.one_hot(jnp.argmax(logits, axis=-1), logits.shape[-1], dtype=jnp.int32)
  return jnp.argmax(jnp.sum(votes, axis=0), axis=-1).astype(jnp.int32)
