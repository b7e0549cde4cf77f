"""Auto-PGD (Croce & Hein, 2020) as in torchattacks v3 / the reference's ``attack/apgd.py``, and
APGD-T, AutoAttack's targeted version (:func:`apgd_targeted`), built on the same :func:`apgd_run`.

APGD is PGD with momentum and a step size that adapts per example: it starts at 2ε and is halved at
checkpoints where the loss has stopped rising, and the iterate then restarts from the best point
found so far. Everything is per example and vectorised: the iteration runs in one loop
(:func:`base.iterate`), the
checkpoint schedule is a static boolean mask indexed by the iteration counter, and the step-size
decisions are ``jnp.where`` selections, so the attack compiles once.

Differences from the reference, all of which leave the results unchanged: the whole batch is
iterated and the initially-misclassified examples are masked out at the end (the reference gathers
the correct ones first; examples do not interact when ``logits_fn`` treats them independently,
e.g. BatchNorm in eval mode), and ``eot_iter`` is fixed to 1 (the reference's setting; for
stochastic models wrap ``logits_fn`` with :func:`jsnn.attacks.expected_logits`).
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from jsnn import losses
from jsnn.attacks import base
from jsnn.attacks import projections
from jsnn.attacks.spec import AttackSpec

# Momentum weight on the new step after the first iteration (the reference's fixed 0.75).
MOMENTUM = 0.75


def apgd_checkpoints(num_steps: int) -> tuple[int, ...]:
  """The iterations (0-based) after which APGD checks whether to halve the step size.

  The first check comes after ``max(int(0.22·n), 1)`` iterations; each later interval is shorter by
  ``max(int(0.03·n), 1)`` but never below ``max(int(0.06·n), 1)``. For n = 10 the interval is 2,
  then 1: checks after iterations 1, 2, ..., 9.

  Args:
    num_steps: n, the number of APGD iterations.

  Returns:
    Increasing iteration indices in [0, n).
  """
  num_steps = base.check_num_steps(num_steps)
  interval = max(int(0.22 * num_steps), 1)
  min_interval = max(int(0.06 * num_steps), 1)
  decrement = max(int(0.03 * num_steps), 1)
  checkpoints, last = [], -1
  while last + interval < num_steps:
    last += interval
    checkpoints.append(last)
    interval = max(interval - decrement, min_interval)
  return tuple(checkpoints)


def _schedule(num_steps: int) -> tuple[np.ndarray, np.ndarray]:
  """Static arrays [n]: whether iteration i is a checkpoint, and the interval that ends there."""
  is_checkpoint = np.zeros(num_steps, bool)
  interval = np.zeros(num_steps, np.int32)
  last = -1
  for i in apgd_checkpoints(num_steps):
    is_checkpoint[i] = True
    interval[i] = i - last
    last = i
  return is_checkpoint, interval


def _check_args(epsilon, num_steps, loss, norm, rho) -> None:
  base.check_epsilon(epsilon)
  base.check_num_steps(num_steps)
  base.get_loss(loss)
  base.check_norm(norm)
  if not 0 <= rho <= 1:
    raise ValueError(f"rho must lie in [0, 1]; got {rho!r}")


class ApgdResult(NamedTuple):
  """The outcome of one APGD run (one random start).

  Attributes:
    x_best: [B, ...] the iterate with the highest loss seen (the start included).
    loss_best: [B] the loss at ``x_best``.
    x_adv: [B, ...] the latest misclassified iterate; the start where none was misclassified.
    fooled: [B] bool, whether the start or any iterate was misclassified.
  """
  x_best: jax.Array
  loss_best: jax.Array
  x_adv: jax.Array
  fooled: jax.Array


class _State(NamedTuple):
  x: jax.Array  # Current iterate [B, ...].
  x_prev: jax.Array  # The iterate before it, for the momentum term.
  grad: jax.Array  # Loss gradient at `x` (or at `x_best` after a restart).
  x_best: jax.Array
  grad_best: jax.Array
  loss_best: jax.Array  # [B]
  x_adv: jax.Array  # Latest misclassified iterate.
  fooled: jax.Array  # [B] bool
  step_size: jax.Array  # [B]
  loss_history: jax.Array  # [n, B] loss at each iteration; zeros until written.
  loss_best_last_check: jax.Array  # [B]
  reduced_last_check: jax.Array  # [B] bool
  model_state: Any = None  # A StatefulLogitsFn's state (ASSG's moments), else None.


def apgd_run(
    logits_fn: base.LogitsFn,
    x: jax.Array,
    y: jax.Array,
    *,
    key: jax.Array,
    epsilon: ArrayLike,
    num_steps: int,
    loss: str | base.LossFn = "ce",
    norm: str = "linf",
    rho: float = 0.75,
) -> ApgdResult:
  r"""One APGD run from one random start, on every example of the batch.

  With P the projection onto the ε-ball then [0, 1], and η the per-example step size:

  .. math::

    z = P(x_k + η\,\mathrm{step}(∇L(x_k))), \qquad
    x_{k+1} = P\big(x_k + α(z - x_k) + (1 - α)(x_k - x_{k-1})\big)

  with α = 1 on the first iteration and 0.75 after. η starts at 2ε. At each checkpoint (see
  :func:`apgd_checkpoints`) an example halves η and restarts from its best point when the loss rose
  in at most ``rho``·(interval) of the iterations since the last checkpoint, or when η was not
  halved at the last checkpoint and the best loss has not improved since.

  One gradient evaluation at the start plus one per iteration: ``num_steps + 1`` in all.

  Args:
    logits_fn: images [B, ...] -> logits [B, C].
    x: clean images [B, ...] in [0, 1].
    y: integer labels [B].
    key: PRNG key for the random start.
    epsilon: ball radius, traced (scalar).
    num_steps: number of iterations (static).
    loss: "ce", "dlr" or a per-example loss function (logits, labels) -> [B].
    norm: "linf" or "l2".
    rho: oscillation threshold (the reference's ``thr_decr``, 0.75).

  Returns:
    An :class:`ApgdResult`.

  References:
    Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020.
  """
  _check_args(epsilon, num_steps, loss, norm, rho)
  step_rule = base.get_step(norm)
  project = projections.get_projection(norm)
  loss_fn = base.get_loss(loss)

  epsilon = base.as_scalar(epsilon, x)
  is_checkpoint, interval = _schedule(num_steps)
  # An interval with at most this many loss increases counts as oscillating.
  max_increases = jnp.asarray(interval * rho, jnp.float32)
  is_checkpoint, interval = jnp.asarray(is_checkpoint), jnp.asarray(interval)

  def feasible(z):
    return projections.clip_to_box(project(z, x, epsilon))

  def expand(flags):
    return base.per_example(flags, x)

  start = projections.linf_sphere_start if norm == "linf" else projections.l2_sphere_start
  x_start = start(key, x, epsilon)
  grad, loss_start, logits, model_state = base.stateful_input_gradient(
      loss_fn, logits_fn, x_start, y, base.initial_state(logits_fn, x))
  state = _State(
      x=x_start,
      x_prev=x_start,
      grad=grad,
      x_best=x_start,
      grad_best=grad,
      loss_best=loss_start,
      x_adv=x_start,
      fooled=~losses.correct(logits, y),
      step_size=jnp.full(x.shape[:1], 2, x.dtype) * epsilon,
      loss_history=jnp.zeros((num_steps,) + loss_start.shape, loss_start.dtype),
      loss_best_last_check=loss_start,
      # True so that the first checkpoint never fires on "no improvement" alone.
      reduced_last_check=jnp.ones(x.shape[:1], bool),
      model_state=model_state,
  )

  def body(i, s: _State) -> _State:
    momentum = jnp.where(i > 0, MOMENTUM, 1.0).astype(x.dtype)
    z = feasible(s.x + step_rule(s.grad, s.step_size))
    x_new = feasible(s.x + momentum * (z - s.x) + (1 - momentum) * (s.x - s.x_prev))

    grad, loss, logits, model_state = base.stateful_input_gradient(loss_fn, logits_fn, x_new, y,
                                                                   s.model_state)
    now_fooled = ~losses.correct(logits, y)
    x_adv = jnp.where(expand(now_fooled), x_new, s.x_adv)
    improved = loss > s.loss_best
    x_best = jnp.where(expand(improved), x_new, s.x_best)
    grad_best = jnp.where(expand(improved), grad, s.grad_best)
    loss_best = jnp.where(improved, loss, s.loss_best)
    loss_history = s.loss_history.at[i].set(loss)

    # Count the increases L[j] > L[j-1] over the interval that ends at i. Like the reference, the
    # first comparison of the first interval reads L[-1], the last (still zero) history row.
    increased = loss_history > jnp.roll(loss_history, 1, axis=0)
    rows = jnp.arange(num_steps)
    in_interval = (rows <= i) & (rows > i - interval[i])
    num_increased = jnp.sum(increased & in_interval[:, None], axis=0)
    oscillating = num_increased.astype(jnp.float32) <= max_increases[i]
    stalled = ~s.reduced_last_check & (s.loss_best_last_check >= loss_best)
    reduce_now = oscillating | stalled
    reduce = is_checkpoint[i] & reduce_now

    return _State(
        x=jnp.where(expand(reduce), x_best, x_new),
        x_prev=s.x,
        grad=jnp.where(expand(reduce), grad_best, grad),
        x_best=x_best,
        grad_best=grad_best,
        loss_best=loss_best,
        x_adv=x_adv,
        fooled=s.fooled | now_fooled,
        step_size=jnp.where(reduce, s.step_size / 2, s.step_size),
        loss_history=loss_history,
        loss_best_last_check=jnp.where(is_checkpoint[i], loss_best, s.loss_best_last_check),
        reduced_last_check=jnp.where(is_checkpoint[i], reduce_now, s.reduced_last_check),
        model_state=model_state,
    )

  s = base.iterate(num_steps, body, state)
  return ApgdResult(x_best=s.x_best, loss_best=s.loss_best, x_adv=s.x_adv, fooled=s.fooled)


def apgd(
    logits_fn: base.LogitsFn,
    x: jax.Array,
    y: jax.Array,
    *,
    key: jax.Array,
    epsilon: ArrayLike,
    num_steps: int,
    loss: str | base.LossFn = "ce",
    norm: str = "linf",
    num_restarts: int = 1,
    rho: float = 0.75,
) -> jax.Array:
  """APGD-CE / APGD-DLR as the reference evaluates them (spec §5).

  Only examples that ``logits_fn`` classifies correctly at ``x`` are attacked; the others are
  returned unchanged. Each restart runs :func:`apgd_run` from a fresh random start (keys split from
  ``key``) and an example keeps the misclassified point of the first restart that fooled it.
  Examples never fooled are returned clean. Restarts run in a ``lax.scan``, so they compile once.

  Args:
    logits_fn: images [B, ...] -> logits [B, C].
    x: clean images [B, ...] in [0, 1].
    y: integer labels [B].
    key: PRNG key; split into one key per restart.
    epsilon: ball radius, traced (scalar).
    num_steps: iterations per restart (static; the paper uses 10).
    loss: "ce", "dlr" or a per-example loss function (logits, labels) -> [B].
    norm: "linf" or "l2".
    num_restarts: number of random starts (static; the reference uses 1).
    rho: oscillation threshold (0.75).

  Returns:
    Adversarial images, x's shape and dtype.
  """
  _check_args(epsilon, num_steps, loss, norm, rho)
  base.check_num_steps(num_restarts, "num_restarts")

  initially_correct = losses.correct(logits_fn(x), y)

  def run(restart_key):
    return apgd_run(
        logits_fn, x, y, key=restart_key, epsilon=epsilon, num_steps=num_steps, loss=loss,
        norm=norm, rho=rho)

  return _first_fooling_points(x, ~initially_correct, run, jax.random.split(key, num_restarts))


def _first_fooling_points(x, done, run, xs) -> jax.Array:
  """Runs ``run(xs[i])`` -> ApgdResult for each i in a ``lax.scan``; each example keeps the
  misclassified point of the first run that fooled it, and stays clean where ``done`` (already
  misclassified) or where no run fooled it."""

  def body(carry, inputs):
    x_out, done = carry
    result = run(inputs)
    newly_fooled = ~done & result.fooled
    x_out = jnp.where(base.per_example(newly_fooled, x), result.x_adv, x_out)
    return (x_out, done | result.fooled), None

  carry, _ = jax.lax.scan(body, (x, done), xs)
  return carry[0]


def target_classes(logits: jax.Array, labels: jax.Array, num_targets: int) -> jax.Array:
  """The ``num_targets`` classes other than the label with the largest logits, largest first.

  For a correctly classified example these are AutoAttack's APGD-T targets, the classes ranked
  2, 3, ..., k + 1 by clean logit; the label is excluded explicitly, so a misclassified example
  (which APGD-T leaves alone anyway) never gets its own label as a target.

  Args:
    logits: [B, C] clean logits.
    labels: [B] integer labels.
    num_targets: k, static, 1 <= k <= C - 1.

  Returns:
    [B, k] int32 target classes.

  Raises:
    ValueError: when k is not an int in [1, C - 1].
  """
  num_classes = logits.shape[-1]
  base.check_num_steps(num_targets, "num_targets")
  if num_targets > num_classes - 1:
    raise ValueError(f"num_targets must be at most the number of classes minus one "
                     f"({num_classes - 1}); got {num_targets}")
  is_label = jax.nn.one_hot(labels, num_classes, dtype=jnp.bool_)
  _, targets = jax.lax.top_k(jnp.where(is_label, -jnp.inf, logits), num_targets)
  return targets.astype(jnp.int32)


def apgd_targeted(
    logits_fn: base.LogitsFn,
    x: jax.Array,
    y: jax.Array,
    *,
    key: jax.Array,
    epsilon: ArrayLike,
    num_steps: int,
    num_targets: int = 9,
    loss: str | base.TargetedLossFn = "dlr",
    norm: str = "linf",
    num_restarts: int = 1,
    rho: float = 0.75,
) -> jax.Array:
  """APGD-T: APGD on a targeted loss, once per target among the top-k other classes.

  The targets are :func:`target_classes` of the clean logits. For each target (largest clean
  logit first) and each restart, :func:`apgd_run` maximises ``loss(logits, y, target)`` (the
  targeted DLR of :func:`jsnn.losses.targeted_dlr_loss` by default); an example counts as fooled
  when it is misclassified as *any* class, and keeps the misclassified point of the first run that
  fooled it: the per-example worst case over the targets. Examples misclassified at ``x`` are
  returned unchanged. Targets and restarts run in one ``lax.scan``, so they compile once.

  As in :func:`apgd`, every run iterates the whole batch and the examples fooled by an earlier
  target are masked out at the end rather than gathered out (AutoAttack gathers); the result is
  the same when ``logits_fn`` treats examples independently, and the number of gradient
  evaluations is exactly ``num_targets·num_restarts·(num_steps + 1)`` per example.

  Args:
    logits_fn: images [B, ...] -> logits [B, C].
    x: clean images [B, ...] in [0, 1].
    y: integer labels [B].
    key: PRNG key; split into one key per (target, restart).
    epsilon: ball radius, traced (scalar).
    num_steps: iterations per run (static; AutoAttack uses 100).
    num_targets: k, the number of target classes (static; AutoAttack uses 9), at most C - 1.
    loss: "dlr" (targeted DLR), "ce" (minus the target's CE) or a function
      (logits, labels, targets) -> [B].
    norm: "linf" or "l2".
    num_restarts: random starts per target (static; AutoAttack uses 1).
    rho: oscillation threshold (0.75).

  Returns:
    Adversarial images, x's shape and dtype.

  References:
    Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020.
  """
  loss_fn = base.get_targeted_loss(loss)
  _check_args(epsilon, num_steps, "ce", norm, rho)
  base.check_num_steps(num_restarts, "num_restarts")

  clean_logits = logits_fn(x)
  targets = target_classes(clean_logits, y, num_targets)   # [B, k]
  initially_correct = losses.correct(clean_logits, y)

  def run(inputs):
    target_index, run_key = inputs
    target = targets[:, target_index]
    return apgd_run(
        logits_fn, x, y, key=run_key, epsilon=epsilon, num_steps=num_steps,
        loss=lambda logits, labels: loss_fn(logits, labels, target), norm=norm, rho=rho)

  # Targets outer, restarts inner, as AutoAttack loops.
  target_indices = jnp.repeat(jnp.arange(num_targets), num_restarts)
  keys = jax.random.split(key, num_targets * num_restarts)
  return _first_fooling_points(x, ~initially_correct, run, (target_indices, keys))


@dataclasses.dataclass(frozen=True)
class APGDSpec(AttackSpec):
  """APGD-CE / APGD-DLR (Croce & Hein, 2020) as the suite runs them (:func:`apgd`).

  Attributes:
    num_steps: iterations per restart.
    loss: "ce" or "dlr".
    norm: "linf" or "l2".
    num_restarts: random starts.
    rho: the oscillation threshold of the step-size rule.
  """
  num_steps: int = 10
  loss: str = "ce"
  norm: str = "linf"
  num_restarts: int = 1
  rho: float = 0.75
  kind = "apgd"

  def __post_init__(self):
    super().__post_init__()
    _check_args(self.epsilon, self.num_steps, self.loss, self.norm, self.rho)
    base.check_num_steps(self.num_restarts, "num_restarts")

  def _gradients(self) -> int:
    return self.num_restarts * (self.num_steps + 1)

  def passes(self) -> tuple[int, int]:
    """One forward (which examples start out correct) + R·(k + 1) gradients."""
    return 1 + self._gradients(), self._gradients()

  def step_size_at(self, epsilon: float) -> float:
    return 2 * epsilon   # the initial step; the rule adapts it from there

  def record(self) -> dict:
    return {"kind": self.kind, "steps": self.num_steps, "loss": self.loss, "norm": self.norm,
            "restarts": self.num_restarts, "rho": self.rho}

  def run(self, logits_fn, x, y, *, key, epsilon, mask):
    del mask  # Fixed work per row: a mask would save nothing.
    x_adv = apgd(logits_fn, x, y, key=key, epsilon=epsilon, num_steps=self.num_steps,
                 loss=self.loss, norm=self.norm, num_restarts=self.num_restarts, rho=self.rho)
    return x_adv, self.constant_stats(x)


@dataclasses.dataclass(frozen=True)
class APGDTSpec(APGDSpec):
  """APGD-T: APGD on the targeted loss, once per target class (:func:`apgd_targeted`).

  Attributes:
    num_targets: the target classes, the top ones by clean logit other than the label.
  """
  loss: str = "dlr"
  num_targets: int = 9
  kind = "apgd-t"

  def __post_init__(self):
    super().__post_init__()
    base.check_num_steps(self.num_targets, "num_targets")

  def _gradients(self) -> int:
    return self.num_targets * super()._gradients()

  def record(self) -> dict:
    return {**super().record(), "targets": self.num_targets}

  def run(self, logits_fn, x, y, *, key, epsilon, mask):
    del mask
    x_adv = apgd_targeted(logits_fn, x, y, key=key, epsilon=epsilon, num_steps=self.num_steps,
                          num_targets=self.num_targets, loss=self.loss, norm=self.norm,
                          num_restarts=self.num_restarts, rho=self.rho)
    return x_adv, self.constant_stats(x)
