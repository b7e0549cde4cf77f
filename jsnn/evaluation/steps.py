"""Pure, jittable evaluation steps and the batched loop that runs them over a split.

Every step has the signature ``(variables, images, labels, mask, key, epsilon) -> per-example
outputs``; :func:`run_batches` feeds it padded, masked batches sharded over the mesh.
"""

from __future__ import annotations

import functools
import sys
import zlib
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jsnn import attacks, data, losses, models, parallel, perturbation, spiking
from jsnn.evaluation.settings import NEAR_ZERO_GRADIENT


def _logits(model, variables, x):
  return models.apply_model(model, variables, x, train=False)[0]


def _one_draw(model, variables) -> attacks.StochasticLogitsFn:
  """``(x, key) -> logits`` of one input-encoding draw of a stochastic model."""
  return lambda x, k: models.apply_model(model, variables, x, train=False, rng=k)[0]


class _Draws(NamedTuple):
  """How a step sees the model: through EOT and majority votes when it is stochastic.

  ``attack_key`` is the key the attack's random starts use (unchanged for a deterministic model,
  so adding EOT changed no stored result); ``eot_key`` keys the attack's EOT draws and
  ``vote_key`` the scoring votes, independent of them.
  """
  attack_key: jax.Array
  eot_key: Optional[jax.Array]
  vote_key: Optional[jax.Array]
  num_draws: int

  @classmethod
  def split(cls, model, key, eot_draws: int) -> "_Draws":
    if not models.is_stochastic(model):
      return cls(key, None, None, 1)
    attack_key, eot_key, vote_key = jax.random.split(key, 3)
    return cls(attack_key, eot_key, vote_key, eot_draws)

  def logits_fn(self, model, variables) -> attacks.LogitsFn:
    """What an attack differentiates: the model, or its EOT expectation."""
    if self.eot_key is None:
      return functools.partial(_logits, model, variables)
    return attacks.expected_logits(_one_draw(model, variables), self.eot_key, self.num_draws)

  def passes(self, stats: attacks.AttackStats, mask) -> dict:
    """The attack's per-example passes, each of its EOT draws counted; 0 on padding rows."""
    return {k: jnp.where(mask, v * (1 if k == "queries" else self.num_draws), 0)
            for k, v in stats._asdict().items()}

  def correct(self, model, variables, x, labels):
    """[B] bool: the prediction (a majority vote for a stochastic model) equals the label."""
    if self.vote_key is None:
      return losses.correct(_logits(model, variables, x), labels)
    return attacks.majority_vote(_one_draw(model, variables), self.vote_key, x,
                                 self.num_draws) == labels


def assg_logits_fn(model, variables, bound) -> attacks.StatefulLogitsFn:
  """ASSG's model as an attack sees it: a :class:`jsnn.attacks.StatefulLogitsFn` whose state is
  every spiking layer's running moments, fresh (M = 1, D = 0) at the attack's start, with bound A.
  """
  return attacks.StatefulLogitsFn(
      apply=lambda x, state: models.apply_assg(model, variables, x, state),
      init=lambda x: models.assg_initial_state(model, variables, x, bound))


def make_attack_step(spec: attacks.AttackSpec, model, attack_model=None, *,
                     with_stats: bool = False, eot_draws: int = 1,
                     assg_bounds: tuple = ()) -> Callable:
  """``step(variables, images, labels, mask, key, epsilon) -> correct [B] bool`` for one attack.

  Args:
    spec: the attack.
    model: scores the adversarial images (eval-mode BatchNorm).
    attack_model: gives the attack its gradients; the same forward pass as ``model`` with another
      surrogate or gradient estimator. Defaults to ``model``.
    with_stats: return ``{"correct", "forward", "backward", "queries"}`` ([B] each): the flags and
      what the attack ran on each example (:class:`jsnn.attacks.AttackStats`, the scoring forward
      excluded, each EOT draw counted as a pass), 0 on padding rows.
    eot_draws: for a stochastic model (:func:`jsnn.models.is_stochastic`), the attack follows
      the expectation over this many draws (:func:`jsnn.attacks.expected_logits`) and the score is
      a majority vote over as many fresh ones; ignored for a deterministic model.
    assg_bounds: for an ``attack_model`` with the ``"assg"`` estimator, ASSG's search: the attack
      runs once per bound A (in a ``lax.scan``, one compilation), each run carrying its own
      running moments from gradient to gradient, and an example counts as robust only if no run
      fooled it (the per-example worst case over the search). Empty: the default A alone.

  Returns:
    A pure function to jit: ``images`` uint8 [B, 32, 32, 3], ``labels`` int32 [B], ``mask`` bool
    [B] (False on padding rows), ``key`` a PRNG key, ``epsilon`` a float32 scalar. The output is
    True where the example is real and still classified correctly after the attack.
  """
  attack = attacks.make_attack(spec, with_stats=True)
  attack_model = model if attack_model is None else attack_model
  attacks.eot.check_num_draws(eot_draws, "eot_draws")
  stateful = (_gradient_estimator(attack_model) == "assg" and spec.uses_gradients
              and not models.is_stochastic(model))
  if stateful:
    return _assg_search_step(attack, model, attack_model, with_stats,
                             tuple(assg_bounds) or (spiking.adaptive.ASSG_BOUND,))

  def step(variables, images, labels, mask, key, epsilon):
    x = data.to_float(images)
    draws = _Draws.split(model, key, eot_draws)
    x_adv, stats = attack(draws.logits_fn(attack_model, variables), x, labels,
                          key=draws.attack_key, epsilon=epsilon, mask=mask)
    correct = draws.correct(model, variables, x_adv, labels) & mask
    if not with_stats:
      return correct
    return {"correct": correct, **draws.passes(stats, mask)}

  return step


def _gradient_estimator(model) -> str:
  """The spiking model's ``neuron.gradient_estimator``; "" for a model without spiking neurons."""
  neuron = getattr(model, "neuron", None)
  return "" if neuron is None else neuron.gradient_estimator


def _assg_search_step(attack, model, attack_model, with_stats: bool, bounds: tuple) -> Callable:
  """:func:`make_attack_step` for ASSG: one attack per bound A, the worst case per example.

  Every run starts from the same key (the same random start), so the runs differ only in A.
  Each run's result is scored, so the stats count ``len(bounds) − 1`` forwards beyond the one
  scoring forward the evaluation adds.
  """
  bounds = jnp.asarray(bounds, jnp.float32)

  def step(variables, images, labels, mask, key, epsilon):
    x = data.to_float(images)

    def run(fooled, bound):
      logits_fn = assg_logits_fn(attack_model, variables, bound)
      x_adv, stats = attack(logits_fn, x, labels, key=key, epsilon=epsilon, mask=mask)
      still_correct = losses.correct(_logits(model, variables, x_adv), labels)
      return fooled | ~still_correct, stats

    fooled, stats = jax.lax.scan(run, jnp.zeros(labels.shape, bool), bounds)
    correct = ~fooled & mask
    if not with_stats:
      return correct
    passes = {k: jnp.sum(v, axis=0) for k, v in stats._asdict().items()}
    passes["forward"] = passes["forward"] + (bounds.shape[0] - 1)
    return {"correct": correct, **{k: jnp.where(mask, v, 0) for k, v in passes.items()}}

  return step


def make_zero_gradient_step(model, attack_model=None, *, near_zero: bool = False,
                            eot_draws: int = 1) -> Callable:
  """Same signature; True where a correctly classified clean example has an all-zero gradient.

  The gradient is that of the cross-entropy with respect to the input, through ``attack_model``'s
  surrogate (of the EOT expectation for a stochastic model). An exactly zero gradient gives a
  gradient attack no direction at all (the surrogate's support missed every neuron, or the softmax
  saturated), so such examples look robust for free.

  With ``near_zero`` the step returns ``{"zero", "near_zero", "correct"}`` ([B] bool each): also
  whether the gradient's largest entry is below :data:`NEAR_ZERO_GRADIENT` (on correct examples),
  and which examples are classified correctly.
  """
  attack_model = model if attack_model is None else attack_model
  attacks.eot.check_num_draws(eot_draws, "eot_draws")

  def step(variables, images, labels, mask, key, epsilon):
    del epsilon  # At the clean point.
    draws = _Draws.split(model, key, eot_draws)
    x = data.to_float(images)
    grad, _, logits = attacks.input_gradient(losses.cross_entropy,
                                             draws.logits_fn(attack_model, variables), x, labels)
    axes = tuple(range(1, grad.ndim))
    if draws.vote_key is None and attack_model is model:
      correct = losses.correct(logits, labels) & mask
    else:
      correct = draws.correct(model, variables, x, labels) & mask
    zero = jnp.all(grad == 0, axis=axes) & correct
    if not near_zero:
      return zero
    return {"zero": zero, "near_zero": (jnp.max(jnp.abs(grad), axis=axes) < NEAR_ZERO_GRADIENT)
            & correct, "correct": correct}

  return step


def make_sweep_step(spec: attacks.AttackSpec, model, attack_model=None, *,
                    leak: float = 0.99, eot_draws: int = 1) -> Callable:
  """Same signature; returns ``{"correct": [B] bool, "ms_mppd": [B] float32}`` (Figure 3).

  ``ms_mppd`` is :func:`jsnn.perturbation.ms_mppd` of the clean minus adversarial input currents
  of the last spiking layer, per example (the mean over T and neurons), 0 on padding rows. Both
  forwards run in eval mode. For a stochastic model both use the same encoding draw (common random
  numbers, so the difference is the attack's), the attack uses EOT and the score a majority vote.
  """
  attack = attacks.make_attack(spec)
  attack_model = model if attack_model is None else attack_model
  capture = [models.LAST_SPIKING_LAYER]
  attacks.eot.check_num_draws(eot_draws, "eot_draws")

  def step(variables, images, labels, mask, key, epsilon):
    x = data.to_float(images)
    draws = _Draws.split(model, key, eot_draws)
    x_adv = attack(draws.logits_fn(attack_model, variables), x, labels, key=draws.attack_key,
                   epsilon=epsilon)
    _, _, clean = models.apply_model(model, variables, x, train=False, capture=capture,
                                     rng=draws.vote_key)
    _, _, adv = models.apply_model(model, variables, x_adv, train=False, capture=capture,
                                   rng=draws.vote_key)
    delta = (clean[models.LAST_SPIKING_LAYER]["currents"]
             - adv[models.LAST_SPIKING_LAYER]["currents"])    # [T, B, ...]
    per_example = jax.vmap(lambda d: perturbation.ms_mppd(d[:, None], leak), in_axes=1)(delta)
    return {"correct": draws.correct(model, variables, x_adv, labels) & mask,
            "ms_mppd": jnp.where(mask, per_example, 0.0)}

  return step


def make_transfer_step(spec: attacks.AttackSpec, model, source_model, *,
                       eot_draws: int = 1) -> Callable:
  """Like :func:`make_attack_step` (with stats), the attack crafted on another model.

  ``variables`` is ``{"target": ..., "source": ...}``: the attack follows ``source_model`` with
  the source variables (through EOT if it is stochastic) and the result is scored on ``model``.
  A transfer attack that fools an example every white-box attack left correct means the white-box
  gradients of ``model`` were masked (Athalye et al., 2018). The pass counts are the source's.
  """
  attack = attacks.make_attack(spec, with_stats=True)
  attacks.eot.check_num_draws(eot_draws, "eot_draws")

  def step(variables, images, labels, mask, key, epsilon):
    x = data.to_float(images)
    source = _Draws.split(source_model, key, eot_draws)
    target = _Draws.split(model, jax.random.fold_in(key, 1), eot_draws)
    x_adv, stats = attack(source.logits_fn(source_model, variables["source"]), x, labels,
                          key=source.attack_key, epsilon=epsilon, mask=mask)
    correct = target.correct(model, variables["target"], x_adv, labels) & mask
    return {"correct": correct, **source.passes(stats, mask)}

  return step


def jit_step(step: Callable, mesh) -> Callable:
  """Jits a step for ``mesh``; its outputs are replicated, so that every process can read them.

  The inputs carry their own shardings: batches split over the data axis (``parallel.put_batch``),
  variables replicated (as ``workdir.restore_model`` returns them).
  """
  return jax.jit(step, out_shardings=parallel.replicated(mesh))


def attack_key(seed: int, name: str) -> jax.Array:
  """The key of one attack: ``fold_in(key(seed), crc32(name))``.

  Folding in the name, not the attack's position in the suite, keeps an attack's random starts
  the same whatever else runs, so resumed and partial runs agree with a full one.
  """
  return jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()) & 0x7FFFFFFF)


def run_batches(step: Callable, variables, images: np.ndarray, labels: np.ndarray, *,
                batch_size: int, mesh, key: jax.Array, epsilon: float, desc: str = "",
                progress: bool = False):
  """Runs a jitted step over a split in padded, masked batches; each example counted once.

  Batch ``i`` gets the key ``fold_in(key, i)``. The host reads a batch's outputs while the next
  batch runs, so the device stays busy and the progress bar counts finished images.

  Args:
    step: a jitted ``(variables, images, labels, mask, key, epsilon) -> pytree of [B] arrays``.
    variables: model variables, replicated over the mesh.
    images: uint8 [N, 32, 32, 3] (host).
    labels: int32 [N] (host).
    batch_size: global batch size, divisible by the number of devices.
    mesh: the device mesh.
    key: PRNG key of this run.
    epsilon: the attack radius.
    desc: progress bar label.
    progress: show a tqdm bar.

  Returns:
    The step's outputs for the N real examples, as NumPy arrays [N] in the step's pytree.
  """
  from tqdm import tqdm

  parallel.check_batch_size(batch_size, mesh)
  epsilon = np.asarray(epsilon, np.float32)   # A strongly typed scalar: no retrace per value.
  outputs = []
  bar = tqdm(total=len(labels), desc=desc, unit="img", disable=not progress, leave=False,
             file=sys.stderr, dynamic_ncols=True, mininterval=1.0)

  def collect(pending):
    out, real = pending
    # Host sync: one batch's flags, while the next batch is already queued.
    outputs.append(jax.tree_util.tree_map(lambda a: np.asarray(a)[:real], jax.device_get(out)))
    bar.update(real)

  pending = None
  try:
    for i, (x, y, mask) in enumerate(data.eval_batches(images, labels, batch_size)):
      out = step(variables, parallel.put_batch(x, mesh), parallel.put_batch(y, mesh),
                 parallel.put_batch(mask, mesh), jax.random.fold_in(key, i), epsilon)
      if pending is not None:
        collect(pending)
      pending = (out, int(mask.sum()))
    if pending is not None:
      collect(pending)
  finally:
    bar.close()
  return jax.tree_util.tree_map(lambda *parts: np.concatenate(parts), *outputs)
