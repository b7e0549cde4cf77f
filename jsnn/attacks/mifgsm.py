"""MI-FGSM (Dong et al., CVPR 2018): iterative FGSM with a momentum of L1-normalised gradients.

.. math::

  g_{k+1} = μ\\,g_k + \\frac{∇_x L(x_k)}{\\lVert ∇_x L(x_k) \\rVert_1}, \\qquad
  x_{k+1} = P\\big(x_k + α\\,\\mathrm{sign}(g_{k+1})\\big)

with P the projection onto the L∞ ball of radius ε around x and onto [0, 1], α = ε/k, μ = 1
and g₀ = 0, from the clean image. The accumulated direction changes slowly,
which is why it transfers well between models (a surrogate-trained SNN to another gradient).
"""

import dataclasses

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jsnn.attacks import base
from jsnn.attacks import projections
from jsnn.attacks.spec import AttackSpec

MOMENTUM = 1.0   # μ of the paper


def mifgsm(
    logits_fn: base.LogitsFn,
    x: jax.Array,
    y: jax.Array,
    *,
    epsilon: ArrayLike,
    num_steps: int,
    momentum: float = MOMENTUM,
    loss: str | base.LossFn = "ce",
) -> jax.Array:
  """MI-FGSM, L∞: ``num_steps`` sign steps of ε/num_steps along the accumulated gradient.

  Args:
    logits_fn: images [B, ...] -> logits [B, C] (a stateful one carries its state).
    x: clean images [B, ...] in [0, 1].
    y: integer labels [B].
    epsilon: L∞ radius, traced (scalar).
    num_steps: iterations (static).
    momentum: μ, the decay of the accumulated direction (static).
    loss: "ce", "dlr" or a per-example loss function.

  Returns:
    The last iterate, x's shape and dtype.

  References:
    Dong et al., "Boosting adversarial attacks with momentum", CVPR 2018.
  """
  loss_fn = base.get_loss(loss)
  num_steps = base.check_num_steps(num_steps)
  base.check_epsilon(epsilon)
  epsilon = base.as_scalar(epsilon, x)
  step_size = epsilon / num_steps
  axes = tuple(range(1, x.ndim))

  def body(_, carry):
    x_adv, direction, state = carry
    grad, _, _, state = base.stateful_input_gradient(loss_fn, logits_fn, x_adv, y, state)
    l1 = jnp.sum(jnp.abs(grad), axis=axes, keepdims=True)
    direction = momentum * direction + grad / (l1 + base.NORM_EPS)
    x_adv = projections.project_linf(x_adv + base.sign_step(direction, step_size), x, epsilon)
    return projections.clip_to_box(x_adv), direction, state

  init = (x, jnp.zeros_like(x), base.initial_state(logits_fn, x))
  return base.iterate(num_steps, body, init)[0]


@dataclasses.dataclass(frozen=True)
class MIFGSMSpec(AttackSpec):
  """MI-FGSM-k as the suite runs it (name ``mi-fgsm<k>``).

  Attributes:
    num_steps: k.
    momentum: μ.
  """
  num_steps: int = 10
  momentum: float = MOMENTUM
  kind = "mi-fgsm"

  def __post_init__(self):
    super().__post_init__()
    base.check_num_steps(self.num_steps)
    base.check_non_negative(self.momentum, "momentum")

  @property
  def needs_key(self) -> bool:
    return False

  def passes(self) -> tuple[int, int]:
    return self.num_steps, self.num_steps

  def step_size_at(self, epsilon: float) -> float:
    return epsilon / self.num_steps

  def record(self) -> dict:
    return {"kind": self.kind, "steps": self.num_steps, "momentum": self.momentum, "loss": "ce",
            "norm": "linf"}

  def run(self, logits_fn, x, y, *, key, epsilon, mask):
    del key, mask
    x_adv = mifgsm(logits_fn, x, y, epsilon=epsilon, num_steps=self.num_steps,
                   momentum=self.momentum)
    return x_adv, self.constant_stats(x)
