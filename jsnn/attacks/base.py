"""Shared pieces of the attacks: input gradients, step rules, argument checks.

Conventions for the whole package:

* An attack sees the model only through ``logits_fn(x) -> logits`` ([B, ...] -> [B, C]), a pure
  function (for a Flax model, ``functools.partial(model.apply, variables, train=False)``). Whatever
  gradient that function defines is the one the attack follows; for jsnn's SNNs that is the
  surrogate gradient. Attacks know nothing of SNNs.
* Images are [B, ...] in [0, 1]; labels are integer [B].
* ``epsilon`` and step sizes are *traced* values (Python floats are converted with ``jnp.asarray``),
  so one compiled attack serves every ε. Iteration counts, norms and loss names are static.
* Per-example quantities ([B]) are broadcast against images with :func:`per_example`, because the
  test suite runs with ``jax_numpy_rank_promotion="raise"``.
"""

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from jsnn import losses

LogitsFn = Callable[[jax.Array], jax.Array]
"""Maps images [B, ...] to logits [B, C]."""

LossFn = Callable[[jax.Array, jax.Array], jax.Array]
"""Maps (logits [B, C], labels [B]) to a per-example loss [B] that the attack maximises."""

NORMS = ("linf", "l2")

TargetedLossFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
"""Maps (logits [B, C], labels [B], targets [B]) to a per-example loss [B] to maximise."""

LOSSES: Mapping[str, LossFn] = {
    "ce": losses.cross_entropy,
    "dlr": losses.dlr_loss,
}

# The targeted versions of the same names (APGD-T): raise the target above the label.
TARGETED_LOSSES: Mapping[str, TargetedLossFn] = {
    "ce": losses.targeted_cross_entropy,
    "dlr": losses.targeted_dlr_loss,
}

# Added to per-example norms before dividing, as torchattacks/AutoAttack do (1e-12).
NORM_EPS = 1e-12


# ------------------------------------------------------------------------------------------------
# Argument checks. They run in Python before anything is traced; traced values are skipped.
# ------------------------------------------------------------------------------------------------


def _concrete(value: ArrayLike) -> np.ndarray | None:
  """The value as a NumPy array, or None when it is a tracer (its value is unknown until run)."""
  try:
    return np.asarray(value)
  except jax.errors.TracerArrayConversionError:
    return None


def check_norm(norm: str) -> str:
  if norm not in NORMS:
    raise ValueError(f"unknown norm {norm!r}; known norms: {', '.join(NORMS)}")
  return norm


def get_loss(loss: str | LossFn) -> LossFn:
  """Resolves a loss name ("ce", "dlr") to its per-example function; callables pass through."""
  if callable(loss):
    return loss
  if loss not in LOSSES:
    raise ValueError(f"unknown loss {loss!r}; known losses: {', '.join(LOSSES)}")
  return LOSSES[loss]


def get_targeted_loss(loss: str | TargetedLossFn) -> TargetedLossFn:
  """Resolves a targeted loss name ("ce", "dlr") to its function; callables pass through."""
  if callable(loss):
    return loss
  if loss not in TARGETED_LOSSES:
    raise ValueError(f"unknown targeted loss {loss!r}; known targeted losses: "
                     f"{', '.join(TARGETED_LOSSES)}")
  return TARGETED_LOSSES[loss]


def check_num_steps(num_steps: int, name: str = "num_steps") -> int:
  if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
    raise ValueError(f"{name} must be a Python int >= 1 (it is static); got {num_steps!r}")
  return int(num_steps)


def check_epsilon(epsilon: ArrayLike) -> None:
  """Raises ValueError when a concrete ε lies outside [0, 1] (images live in [0, 1])."""
  value = _concrete(epsilon)
  if value is not None and not np.all((value >= 0) & (value <= 1)):
    raise ValueError(f"epsilon must lie in [0, 1]; got {value}")


def check_positive(value: ArrayLike, name: str) -> None:
  """Raises ValueError when a concrete value is not > 0 (traced values are not checked)."""
  concrete = _concrete(value)
  if concrete is not None and not np.all(concrete > 0):
    raise ValueError(f"{name} must be > 0; got {concrete}")


def check_non_negative(value: ArrayLike, name: str) -> None:
  concrete = _concrete(value)
  if concrete is not None and not np.all(concrete >= 0):
    raise ValueError(f"{name} must be >= 0; got {concrete}")


def as_scalar(value: ArrayLike, x: jax.Array) -> jax.Array:
  """Converts a Python float or array to ``x``'s dtype, so no dtype promotion happens later."""
  return jnp.asarray(value, dtype=x.dtype)


# ------------------------------------------------------------------------------------------------
# Per-example helpers.
# ------------------------------------------------------------------------------------------------


def per_example(value: ArrayLike, x: jax.Array) -> jax.Array:
  """Reshapes a scalar or a [B] vector so that it broadcasts against ``x`` [B, ...]."""
  value = jnp.asarray(value)
  if value.ndim == 0:
    return value
  return value.reshape(value.shape[:1] + (1,) * (x.ndim - 1))


def l2_norm(x: jax.Array) -> jax.Array:
  """Per-example L2 norm over all non-batch axes: [B, ...] -> [B]."""
  return jnp.sqrt(jnp.sum(jnp.square(x), axis=tuple(range(1, x.ndim))))


def linf_norm(x: jax.Array) -> jax.Array:
  """Per-example L∞ norm over all non-batch axes: [B, ...] -> [B]."""
  return jnp.max(jnp.abs(x), axis=tuple(range(1, x.ndim)))


# ------------------------------------------------------------------------------------------------
# Gradients and step rules.
# ------------------------------------------------------------------------------------------------


def input_gradient(
    loss_fn: LossFn, logits_fn: LogitsFn, x: jax.Array, y: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Gradient of a per-example loss with respect to the input: what every attack ascends to
  approximate paper Eq. 2, ``argmax_{‖δ‖ ≤ ε} L(h(x + δ), y)``.

  The per-example losses are summed before differentiating, so example b's gradient is
  ∂loss_b/∂x_b whatever the batch size (a mean would scale it by 1/B).

  Args:
    loss_fn: per-example loss, (logits [B, C], labels [B]) -> [B].
    logits_fn: images [B, ...] -> logits [B, C].
    x: images [B, ...] at which to differentiate.
    y: integer labels [B].

  Returns:
    ``(grad, loss, logits)``: grad has x's shape, loss is [B], logits [B, C], all at ``x``.
  """

  def summed(x_):
    logits = logits_fn(x_)
    loss = loss_fn(logits, y)
    return jnp.sum(loss), (loss, logits)

  (_, (loss, logits)), grad = jax.value_and_grad(summed, has_aux=True)(x)
  return grad, loss, logits


@dataclasses.dataclass(frozen=True)
class StatefulLogitsFn:
  """A model whose gradient depends on a state the attack carries from one gradient to the next.

  ASSG's running moments are one (:mod:`jsnn.spiking.adaptive`): each forward pass updates them,
  and the next gradient starts from the updated ones. The loops of :func:`jsnn.attacks.pgd`,
  :func:`jsnn.attacks.apgd_run` and :func:`jsnn.attacks.sapgd_run` carry the state in their loop
  state (:func:`initial_state`, :func:`stateful_input_gradient`); called like a plain
  ``logits_fn(x)``, it runs from the initial state and forgets the update (a single gradient,
  FGSM's, or a forward pass that scores).

  Attributes:
    apply: ``(x, state) -> (logits, new_state)``, pure.
    init: ``x -> state``, the state before the attack's first forward pass.
  """
  apply: Callable[[jax.Array, Any], tuple[jax.Array, Any]]
  init: Callable[[jax.Array], Any]

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.apply(x, self.init(x))[0]


def initial_state(logits_fn: LogitsFn, x: jax.Array) -> Any:
  """The state an attack loop carries for ``logits_fn``: its ``init(x)``, or None (no leaves)."""
  return logits_fn.init(x) if isinstance(logits_fn, StatefulLogitsFn) else None


def stateful_input_gradient(
    loss_fn: LossFn, logits_fn: LogitsFn, x: jax.Array, y: jax.Array, state: Any
) -> tuple[jax.Array, jax.Array, jax.Array, Any]:
  """:func:`input_gradient` that also threads a :class:`StatefulLogitsFn`'s state.

  Returns:
    ``(grad, loss, logits, new_state)``; for a plain ``logits_fn`` the state passes through.
  """
  if not isinstance(logits_fn, StatefulLogitsFn):
    return (*input_gradient(loss_fn, logits_fn, x, y), state)

  def summed(x_):
    logits, new_state = logits_fn.apply(x_, state)
    loss = loss_fn(logits, y)
    return jnp.sum(loss), (loss, logits, new_state)

  (_, (loss, logits, new_state)), grad = jax.value_and_grad(summed, has_aux=True)(x)
  return grad, loss, logits, jax.lax.stop_gradient(new_state)


def sign_step(grad: jax.Array, step_size: ArrayLike) -> jax.Array:
  """The L∞ steepest-ascent step ``step_size · sign(grad)``.

  Args:
    grad: [B, ...] input gradient.
    step_size: scalar or per-example [B].

  Returns:
    The update, grad's shape.
  """
  return per_example(step_size, grad) * jnp.sign(grad)


def normalized_step(grad: jax.Array, step_size: ArrayLike) -> jax.Array:
  """The L2 steepest-ascent step ``step_size · grad / (‖grad‖₂ + 1e-12)``, norm per example.

  Args:
    grad: [B, ...] input gradient.
    step_size: scalar or per-example [B].

  Returns:
    The update, grad's shape; its per-example L2 norm is ``step_size`` (0 where grad is 0).
  """
  scale = step_size / (l2_norm(grad) + NORM_EPS)
  return per_example(scale, grad) * grad


def get_step(norm: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
  """The steepest-ascent step rule for a norm: ``sign_step`` (linf) or ``normalized_step`` (l2)."""
  return {"linf": sign_step, "l2": normalized_step}[check_norm(norm)]


def iterate(num_steps: int, body: Callable, init):
  """``lax.fori_loop(0, num_steps, body, init)``: one rolled loop on every backend.

  The loop compiles once whatever ``num_steps``. XLA:CPU once ran a model 2-7x slower in a loop
  body than unrolled; the cause was the layout of the input-gradient convolutions, which jsnn's
  models now fix where they convolve (``jsnn.models.layers.conv2d``), so a rolled loop costs no
  speed and saves compile time and memory (benchmarks/results).
  """
  return jax.lax.fori_loop(0, num_steps, body, init)
