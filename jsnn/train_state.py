"""The training state: one pytree that holds everything a resumed run needs."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax


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
