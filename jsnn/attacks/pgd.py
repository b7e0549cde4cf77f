"""Projected gradient descent (Madry et al., 2018) with the reference's settings (spec §5)."""

import dataclasses
from typing import Optional

import jax
from jax.typing import ArrayLike

from jsnn.attacks import base
from jsnn.attacks import projections
from jsnn.attacks.spec import AttackSpec

# The reference's PGD step sizes at ε = 8/255 (stable-snn standard.json), keyed by step count.
PAPER_PGD_STEP_SIZES = {7: 2.55 / 255, 10: 2 / 255, 20: 1 / 255, 40: 0.5 / 255}


def default_step_size(epsilon: ArrayLike, num_steps: int) -> ArrayLike:
  """``2.5·ε/num_steps`` (Madry et al.): the steps add up to 1.25 times the ball's diameter.

  For 10 steps this is ε/4, the step size of the reference's ε sweep (``pgd-eps.json``).

  Args:
    epsilon: ball radius, may be traced.
    num_steps: number of PGD iterations.

  Returns:
    The step size, traced if ε is.
  """
  return 2.5 * epsilon / base.check_num_steps(num_steps)


def pgd_step_size(num_steps: int, epsilon: ArrayLike = 8 / 255) -> ArrayLike:
  """The step size the reference uses for PGD with ``num_steps`` steps.

  For 7, 10, 20 and 40 steps this is the reference's table (2.55, 2, 1 and 0.5 /255, written for
  ε = 8/255; ``epsilon`` is then ignored). For any other count it is :func:`default_step_size`,
  ``2.5·ε/num_steps``.

  Args:
    num_steps: number of PGD iterations.
    epsilon: L∞ radius, may be traced; used only outside the table.

  Returns:
    The step size, a Python float from the table or ``2.5·ε/num_steps``.
  """
  num_steps = base.check_num_steps(num_steps)
  if num_steps in PAPER_PGD_STEP_SIZES:
    return PAPER_PGD_STEP_SIZES[num_steps]
  return default_step_size(epsilon, num_steps)


def pgd(
    logits_fn: base.LogitsFn,
    x: jax.Array,
    y: jax.Array,
    *,
    key: jax.Array | None = None,
    epsilon: ArrayLike,
    step_size: ArrayLike,
    num_steps: int,
    norm: str = "linf",
    random_start: bool = True,
    loss: str | base.LossFn = "ce",
) -> jax.Array:
  """PGD, paper Eq. 4: projected gradient ascent on a per-example loss in the ε-ball and [0, 1].

  L∞ (the reference, torchattacks ``PGD``): start at ``clip01(x + U[-ε, ε])``, then each step
  ``x ← clip01(x_clean + clip_[-ε, ε](x + α·sign ∇ − x_clean))``.
  L2 (torchattacks ``PGDL2``): start at a random point of the L2 ball, step ``α·∇/‖∇‖₂``, project
  onto the L2 ball, clip to [0, 1].

  The loop is :func:`base.iterate` (one rolled loop); ε and α are
  traced, so one compilation serves every ε and α.

  Args:
    logits_fn: images [B, ...] -> logits [B, C].
    x: clean images [B, ...] in [0, 1].
    y: integer labels [B].
    key: PRNG key for the random start; required when ``random_start``.
    epsilon: ball radius, traced (scalar).
    step_size: α, traced (scalar); see :func:`pgd_step_size`.
    num_steps: number of gradient steps (static).
    norm: "linf" or "l2".
    random_start: start from a random point of the ball instead of ``x``.
    loss: "ce", "dlr" or a per-example loss function (logits, labels) -> [B].

  Returns:
    The last iterate, x's shape and dtype.

  References:
    Madry et al., "Towards deep learning models resistant to adversarial attacks", ICLR 2018.
  """
  step_rule = base.get_step(norm)
  project = projections.get_projection(norm)
  loss_fn = base.get_loss(loss)
  num_steps = base.check_num_steps(num_steps)
  base.check_epsilon(epsilon)
  base.check_positive(step_size, "step_size")
  if random_start and key is None:
    raise ValueError("pgd with random_start=True needs a PRNG key; got key=None")

  epsilon = base.as_scalar(epsilon, x)
  step_size = base.as_scalar(step_size, x)
  if random_start:
    start = projections.uniform_linf_start if norm == "linf" else projections.l2_ball_start
    x_adv = start(key, x, epsilon)
  else:
    x_adv = x

  def body(_, carry):
    x_adv, state = carry
    grad, _, _, state = base.stateful_input_gradient(loss_fn, logits_fn, x_adv, y, state)
    x_adv = project(x_adv + step_rule(grad, step_size), x, epsilon)
    return projections.clip_to_box(x_adv), state

  # A stateful logits_fn (ASSG's moments) carries its state from step to step.
  x_adv, _ = base.iterate(num_steps, body, (x_adv, base.initial_state(logits_fn, x)))
  return x_adv


@dataclasses.dataclass(frozen=True)
class PGDSpec(AttackSpec):
  """PGD-k (Eq. 4) as the suite runs it.

  Attributes:
    num_steps: k, the gradient steps.
    step_size: α; None means ``2.5·ε/k`` at the ε of each call (:func:`default_step_size`).
    loss: "ce" or "dlr".
    norm: "linf" or "l2".
    random_start: start from a random point of the ball (the reference does).
  """
  num_steps: int = 10
  step_size: Optional[float] = None
  loss: str = "ce"
  norm: str = "linf"
  random_start: bool = False
  kind = "pgd"

  def __post_init__(self):
    super().__post_init__()
    base.check_num_steps(self.num_steps)
    base.check_norm(self.norm)
    base.get_loss(self.loss)
    if self.step_size is not None:
      base.check_positive(self.step_size, "step_size")

  @property
  def needs_key(self) -> bool:
    return self.random_start

  def passes(self) -> tuple[int, int]:
    return self.num_steps, self.num_steps

  def step_size_at(self, epsilon: float) -> float:
    return (self.step_size if self.step_size is not None
            else default_step_size(epsilon, self.num_steps))

  def record(self) -> dict:
    return {"kind": self.kind, "steps": self.num_steps, "loss": self.loss, "norm": self.norm,
            "random_start": self.random_start}

  def run(self, logits_fn, x, y, *, key, epsilon, mask):
    del mask  # Fixed work per row: a mask would save nothing.
    x_adv = pgd(logits_fn, x, y, key=key, epsilon=epsilon, step_size=self.step_size_at(epsilon),
                num_steps=self.num_steps, norm=self.norm, random_start=self.random_start,
                loss=self.loss)
    return x_adv, self.constant_stats(x)
