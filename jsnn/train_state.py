"""The training state: one pytree that holds everything a resumed run needs."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from jsnn import models


class TrainState(flax.struct.PyTreeNode):
  """Step counter, model variables, optimiser state and the run's PRNG key.

  ``rng`` is the raw key data (uint32) so that the state checkpoints as plain arrays; the step
  derives its keys with ``fold_in(rng, step)``, so a resumed run draws the same numbers as an
  uninterrupted one.
  """
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array

  @property
  def variables(self):
    return {"params": self.params, "batch_stats": self.batch_stats}

  @property
  def key(self):
    return jax.random.wrap_key_data(self.rng)


def create_train_state(model, tx, key) -> TrainState:
  """A fresh state: the model's initial variables, ``tx``'s state, step 0 and a run key."""
  init_key, run_key = jax.random.split(key)
  variables = models.init_model(model, init_key)
  return TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                    batch_stats=variables["batch_stats"], opt_state=tx.init(variables["params"]),
                    rng=jax.random.key_data(run_key))


def abstract_train_state(model, tx, sharding=None) -> TrainState:
  """Shapes, dtypes and shardings of :func:`create_train_state`'s state, without allocating it."""
  shapes = jax.eval_shape(lambda key: create_train_state(model, tx, key), jax.random.key(0))
  return jax.tree_util.tree_map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)
