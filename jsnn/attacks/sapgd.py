"""SA-PGD, the stabilised APGD of Wang et al. (arXiv 2512.22522, 2025; ``ASSG_SAPGD`` and
``SAPGD`` of the reference code), as small pieces on :mod:`jsnn.attacks.base`.

APGD's momentum on raw gradients is unstable on SNNs, whose surrogate gradients swing by orders of
magnitude from one step to the next. SA-PGD normalises each gradient by its per-example mean
magnitude before it enters an Adam-like pair of moments, and clips every coordinate of the step
to the step size:

.. math::

  m_k = 0.5\\,m_{k-1} + \\frac{g_k}{\\overline{|g_k|}}, \\qquad
  v_k = 0.8\\,v_{k-1} + \\frac{g_k^2}{\\overline{g_k^2}}, \\qquad
  x_{k+1} = P\\Big(x_k + \\mathrm{clip}_{[-η, η]}\\big(η\\,m_k/(\\sqrt{v_k} + 10^{-12})\\big)\\Big)

(m₀, v₀ are the first normalised terms alone; the bars are means over the example's pixels), P
the projection onto the L∞ ball and [0, 1]. The step size η starts at ε and is halved at each of
APGD's checkpoints (:func:`jsnn.attacks.apgd_checkpoints`), whatever the loss did: the reference
keeps APGD's schedule but neither its oscillation test nor its restarts from the best point.

The pieces (:func:`l1_normalized`, :func:`update_moments`, :func:`clipped_step`,
:func:`halving_schedule`) are pure and jit on their own; :func:`sapgd_run` is one rolled loop of
them with the schedule a static array indexed by the iteration counter, and no host round trip.
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
from jsnn.attacks.apgd import ApgdResult
from jsnn.attacks.apgd import _first_fooling_points
from jsnn.attacks.apgd import apgd_checkpoints
from jsnn.attacks.spec import AttackSpec

# The reference's decays of the first and second moments, and its initial step (η₀ = ε).
FIRST_MOMENT_DECAY = 0.5
SECOND_MOMENT_DECAY = 0.8
INITIAL_STEP = 1.0


def l1_normalized(grad: jax.Array) -> jax.Array:
  """``g / (mean |g| + 10⁻¹²)``, the mean over each example's entries: every example's gradient
  gets mean magnitude 1 (0 where the gradient is 0)."""
  axes = tuple(range(1, grad.ndim))
  scale = jnp.mean(jnp.abs(grad), axis=axes) + base.NORM_EPS
  return grad / base.per_example(scale, grad)


def update_moments(first: jax.Array, second: jax.Array, grad: jax.Array,
                   is_first: jax.Array) -> tuple[jax.Array, jax.Array]:
  """SA-PGD's moments after gradient ``grad``: ``m = 0.5·m + g/mean|g|``,
  ``v = 0.8·v + g²/mean g²``; at the first step (``is_first``, a traced bool) the new terms alone.
  """
  keep = jnp.where(is_first, 0.0, 1.0).astype(grad.dtype)
  first = keep * FIRST_MOMENT_DECAY * first + l1_normalized(grad)
  second = keep * SECOND_MOMENT_DECAY * second + l1_normalized(jnp.square(grad))
  return first, second


def clipped_step(first: jax.Array, second: jax.Array, step_size: ArrayLike) -> jax.Array:
  """``clip(η·m/(√v + 10⁻¹²), −η, η)`` per coordinate; η scalar or per example [B]."""
  eta = base.per_example(step_size, first)
  return jnp.clip(eta * first / (jnp.sqrt(second) + base.NORM_EPS), -eta, eta)


def halving_schedule(num_steps: int) -> np.ndarray:
  """Static [n] bool: whether η is halved after iteration i (APGD's checkpoints)."""
  halve = np.zeros(base.check_num_steps(num_steps), bool)
  halve[list(apgd_checkpoints(num_steps))] = True
  return halve


class _State(NamedTuple):
  x: jax.Array            # Current iterate [B, ...].
  grad: jax.Array         # Loss gradient at x.
  first: jax.Array        # m, x's shape.
  second: jax.Array       # v, x's shape.
  x_best: jax.Array
  loss_best: jax.Array    # [B]
  x_adv: jax.Array        # Latest misclassified iterate.
  fooled: jax.Array       # [B] bool
  step_size: jax.Array    # [B]
  model_state: Any = None  # A StatefulLogitsFn's state (ASSG's moments), else None.


def sapgd_run(
    logits_fn: base.LogitsFn,
    x: jax.Array,
    y: jax.Array,
    *,
    key: jax.Array,
    epsilon: ArrayLike,
    num_steps: int,
    loss: str | base.LossFn = "ce",
) -> ApgdResult:
  """One SA-PGD run (L∞) from a random point of the ε-sphere, on every example of the batch.

  One gradient at the start plus one per iteration: ``num_steps + 1`` in all. A
  :class:`jsnn.attacks.StatefulLogitsFn` (ASSG) carries its state from each gradient to the next.

  Args:
    logits_fn: images [B, ...] -> logits [B, C], or a StatefulLogitsFn.
    x: clean images [B, ...] in [0, 1].
    y: integer labels [B].
    key: PRNG key of the random start.
    epsilon: L∞ radius, traced (scalar).
    num_steps: iterations (static; the reference uses 100).
    loss: "ce", "dlr" or a per-example loss function.

  Returns:
    An :class:`jsnn.attacks.ApgdResult` (the best-loss point, its loss, the latest misclassified
    iterate, whether one was).
  """
  base.check_epsilon(epsilon)
  num_steps = base.check_num_steps(num_steps)
  loss_fn = base.get_loss(loss)
  epsilon = base.as_scalar(epsilon, x)
  halve = jnp.asarray(halving_schedule(num_steps))

  x_start = projections.linf_sphere_start(key, x, epsilon)
  grad, loss_start, logits, model_state = base.stateful_input_gradient(
      loss_fn, logits_fn, x_start, y, base.initial_state(logits_fn, x))
  zeros = jnp.zeros_like(x)
  state = _State(x=x_start, grad=grad, first=zeros, second=zeros, x_best=x_start,
                 loss_best=loss_start, x_adv=x_start, fooled=~losses.correct(logits, y),
                 step_size=jnp.full(x.shape[:1], INITIAL_STEP, x.dtype) * epsilon,
                 model_state=model_state)

  def body(i, s: _State) -> _State:
    first, second = update_moments(s.first, s.second, s.grad, i == 0)
    x_new = projections.clip_to_box(projections.project_linf(
        s.x + clipped_step(first, second, s.step_size), x, epsilon))
    grad, loss, logits, model_state = base.stateful_input_gradient(loss_fn, logits_fn, x_new, y,
                                                                   s.model_state)
    now_fooled = ~losses.correct(logits, y)
    improved = loss > s.loss_best
    return _State(
        x=x_new, grad=grad, first=first, second=second,
        x_best=jnp.where(base.per_example(improved, x), x_new, s.x_best),
        loss_best=jnp.where(improved, loss, s.loss_best),
        x_adv=jnp.where(base.per_example(now_fooled, x), x_new, s.x_adv),
        fooled=s.fooled | now_fooled,
        step_size=jnp.where(halve[i], s.step_size / 2, s.step_size),
        model_state=model_state)

  s = base.iterate(num_steps, body, state)
  return ApgdResult(x_best=s.x_best, loss_best=s.loss_best, x_adv=s.x_adv, fooled=s.fooled)


def sapgd(
    logits_fn: base.LogitsFn,
    x: jax.Array,
    y: jax.Array,
    *,
    key: jax.Array,
    epsilon: ArrayLike,
    num_steps: int,
    loss: str | base.LossFn = "ce",
    num_restarts: int = 1,
) -> jax.Array:
  """SA-PGD as the reference evaluates it: only the examples classified correctly at ``x`` are
  attacked, and each keeps the misclassified point of the first restart that fooled it (clean
  otherwise). Restarts (fresh random starts and, for ASSG, fresh moments) run in a ``lax.scan``
  with keys split from ``key``.

  Passes per example: 1 forward (which start out correct) + ``num_restarts·(num_steps + 1)``
  gradients.

  Args:
    logits_fn, x, y, key, epsilon, num_steps, loss: as in :func:`sapgd_run`.
    num_restarts: random starts (static; the reference uses 1).

  Returns:
    Adversarial images, x's shape and dtype.

  References:
    Wang et al., "Towards Reliable Evaluation of Adversarial Robustness for Spiking Neural
    Networks", arXiv 2512.22522, 2025.
  """
  base.check_num_steps(num_restarts, "num_restarts")
  initially_correct = losses.correct(logits_fn(x), y)

  def run(restart_key):
    return sapgd_run(logits_fn, x, y, key=restart_key, epsilon=epsilon, num_steps=num_steps,
                     loss=loss)

  return _first_fooling_points(x, ~initially_correct, run, jax.random.split(key, num_restarts))


@dataclasses.dataclass(frozen=True)
class SAPGDSpec(AttackSpec):
  """SA-PGD-k (Wang et al., 2025) as the suite runs it (:func:`sapgd`), L∞ only.

  Attributes:
    num_steps: iterations per restart (the paper: 100).
    loss: "ce" or "dlr".
    num_restarts: random starts.
  """
  num_steps: int = 100
  loss: str = "ce"
  num_restarts: int = 1
  kind = "sa-pgd"

  def __post_init__(self):
    super().__post_init__()
    base.check_num_steps(self.num_steps)
    base.check_num_steps(self.num_restarts, "num_restarts")
    base.get_loss(self.loss)

  def passes(self) -> tuple[int, int]:
    """Counted like APGD: 1 forward + R·(k + 1) gradients."""
    gradients = self.num_restarts * (self.num_steps + 1)
    return 1 + gradients, gradients

  def step_size_at(self, epsilon: float) -> float:
    return INITIAL_STEP * epsilon

  def record(self) -> dict:
    return {"kind": self.kind, "steps": self.num_steps, "loss": self.loss, "norm": "linf",
            "restarts": self.num_restarts}

  def run(self, logits_fn, x, y, *, key, epsilon, mask):
    del mask
    x_adv = sapgd(logits_fn, x, y, key=key, epsilon=epsilon, num_steps=self.num_steps,
                  loss=self.loss, num_restarts=self.num_restarts)
    return x_adv, self.constant_stats(x)
