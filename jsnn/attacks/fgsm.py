"""Single-step attacks: FGSM (evaluation) and the reference's RFGSM (adversarial training)."""

import dataclasses

import jax
from jax.typing import ArrayLike

from jsnn import losses
from jsnn.attacks import base
from jsnn.attacks import projections
from jsnn.attacks.spec import AttackSpec


def fgsm(
    logits_fn: base.LogitsFn, x: jax.Array, y: jax.Array, *, epsilon: ArrayLike
) -> jax.Array:
  """Fast gradient sign method, paper Eq. 3: ``clip01(x + ε·sign ∇_x CE(logits_fn(x), y))``.

  No random start, as in the reference's evaluation (spec §5).

  Args:
    logits_fn: images [B, ...] -> logits [B, C].
    x: clean images [B, ...] in [0, 1].
    y: integer labels [B].
    epsilon: L∞ radius, traced (scalar).

  Returns:
    Adversarial images, x's shape and dtype.

  References:
    Goodfellow et al., "Explaining and harnessing adversarial examples", ICLR 2015.
  """
  base.check_epsilon(epsilon)
  grad, _, _ = base.input_gradient(losses.cross_entropy, logits_fn, x, y)
  return projections.clip_to_box(x + base.sign_step(grad, base.as_scalar(epsilon, x)))


def rfgsm(
    logits_fn: base.LogitsFn,
    x: jax.Array,
    y: jax.Array,
    *,
    key: jax.Array,
    step_size: ArrayLike = 4 / 255,
    start_std: ArrayLike = 0.001,
) -> jax.Array:
  """The reference's training perturbation: a Gaussian start and one sign step (spec §4.2).

  ``x0 = x + start_std·N(0, I)`` (not clipped), then ``clip01(x0 + step_size·sign ∇_x0 CE)``.
  There is no projection onto an ε-ball, so ``|x̃ - x|`` can exceed ``step_size`` by the start
  noise. The result is wrapped in ``stop_gradient``: training treats it as data.

  Note this is not Wong et al.'s FGSM-RS (uniform start, 1.25ε step), which the paper cites; the
  reference code does the above (spec §7.6).

  Args:
    logits_fn: images [B, ...] -> logits [B, C]; with BatchNorm, apply it in eval mode.
    x: clean images [B, ...] in [0, 1].
    y: integer labels [B].
    key: PRNG key for the start noise.
    step_size: sign-step size, traced (the reference's ``-eps 4``, i.e. 4/255).
    start_std: standard deviation of the Gaussian start, traced.

  Returns:
    Perturbed images, x's shape and dtype, with no gradient.
  """
  base.check_positive(step_size, "step_size")
  base.check_non_negative(start_std, "start_std")
  noise = jax.random.normal(key, x.shape, x.dtype)
  x0 = x + base.as_scalar(start_std, x) * noise
  grad, _, _ = base.input_gradient(losses.cross_entropy, logits_fn, x0, y)
  x_adv = projections.clip_to_box(x0 + base.sign_step(grad, base.as_scalar(step_size, x)))
  return jax.lax.stop_gradient(x_adv)


@dataclasses.dataclass(frozen=True)
class FGSMSpec(AttackSpec):
  """FGSM (Eq. 3) as the suite runs it: one L∞ sign step of size ε on CE, no random start."""
  kind = "fgsm"

  @property
  def needs_key(self) -> bool:
    return False

  def passes(self) -> tuple[int, int]:
    return 1, 1

  def step_size_at(self, epsilon: float) -> float:
    return epsilon

  def record(self) -> dict:
    return {"kind": self.kind, "steps": 1, "loss": "ce", "norm": "linf"}

  def run(self, logits_fn, x, y, *, key, epsilon, mask):
    del key, mask
    return fgsm(logits_fn, x, y, epsilon=epsilon), self.constant_stats(x)
