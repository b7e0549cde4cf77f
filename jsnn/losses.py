"""Per-example classification losses and metrics used by training and by the attacks.

Every function maps ``logits`` [B, C] and integer ``labels`` [B] to one value per example [B], so
that callers choose the reduction: training takes the mean, the attacks take the sum before
``jax.grad`` (the gradient of a sum is the per-example gradient, whatever the batch size).
"""

import jax
import jax.numpy as jnp
import optax

# Keeps the DLR denominator finite when the three largest logits are equal, as in the reference.
_DLR_DENOMINATOR_EPS = 1e-12


def _check_shapes(logits: jax.Array, labels: jax.Array, min_classes: int, what: str):
  if logits.ndim != 2 or labels.shape != logits.shape[:1]:
    raise ValueError(
        f"{what} expects logits [B, C] and labels [B]; got logits {logits.shape} and labels "
        f"{labels.shape}")
  if logits.shape[-1] < min_classes:
    raise ValueError(
        f"{what} needs at least {min_classes} classes; got logits with {logits.shape[-1]} classes "
        f"(shape {logits.shape})")


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Softmax cross-entropy with integer labels, per example.

  Args:
    logits: [B, C] unnormalised scores.
    labels: [B] integer class indices in [0, C).

  Returns:
    [B] ``-log softmax(logits)[label]``.
  """
  _check_shapes(logits, labels, 1, "cross_entropy")
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def _true_and_best_other(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Returns z_y and max_{i != y} z_i, each [B]."""
  is_label = jax.nn.one_hot(labels, logits.shape[-1], dtype=jnp.bool_)
  z_true = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
  # -inf where i == y; `where` passes no gradient to the masked entries, so no NaN appears.
  z_other = jnp.max(jnp.where(is_label, -jnp.inf, logits), axis=-1)
  return z_true, z_other


def margin(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Classification margin ``z_y - max_{i != y} z_i``, per example.

  Positive only when the label strictly beats every other class, so a positive margin implies a
  correct prediction.

  Args:
    logits: [B, C] with C >= 2.
    labels: [B] integer class indices.

  Returns:
    [B] margins.

  Raises:
    ValueError: on mismatched shapes or fewer than 2 classes.
  """
  _check_shapes(logits, labels, 2, "margin")
  z_true, z_other = _true_and_best_other(logits, labels)
  return z_true - z_other


def dlr_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
  r"""Difference-of-logits-ratio loss, per example (Croce & Hein, 2020).

  .. math::

    \mathrm{DLR}(z, y) = -\frac{z_y - \max_{i \ne y} z_i}{z_{\pi_1} - z_{\pi_3} + 10^{-12}}

  where :math:`z_{\pi_1} \ge z_{\pi_2} \ge z_{\pi_3}` are the three largest logits. It is invariant
  to shifting and scaling the logits, which is why APGD-DLR is robust to logit rescaling.

  Args:
    logits: [B, C] with C >= 3.
    labels: [B] integer class indices.

  Returns:
    [B] DLR losses; larger means closer to (or further past) misclassification.

  Raises:
    ValueError: on mismatched shapes or fewer than 3 classes (the denominator needs z_π3).

  References:
    Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020.
  """
  _check_shapes(logits, labels, 3, "dlr_loss")
  z_true, z_other = _true_and_best_other(logits, labels)
  top3, _ = jax.lax.top_k(logits, 3)
  return -(z_true - z_other) / (top3[:, 0] - top3[:, 2] + _DLR_DENOMINATOR_EPS)


def _check_targets(logits: jax.Array, targets: jax.Array, what: str):
  if targets.shape != logits.shape[:1]:
    raise ValueError(f"{what} expects targets [B] like the labels; got targets {targets.shape} for "
                     f"logits {logits.shape}")


def targeted_dlr_loss(logits: jax.Array, labels: jax.Array, targets: jax.Array) -> jax.Array:
  r"""Targeted difference-of-logits-ratio loss, per example (Croce & Hein, 2020; APGD-T).

  .. math::

    \mathrm{DLR}_t(z, y) = -\frac{z_y - z_t}{z_{\pi_1} - (z_{\pi_3} + z_{\pi_4})/2 + 10^{-12}}

  where :math:`z_{\pi_1} \ge \dots \ge z_{\pi_4}` are the four largest logits. Maximising it
  pushes the target logit above the label's; like DLR it is invariant to shifting and scaling the
  logits.

  Args:
    logits: [B, C] with C >= 4.
    labels: [B] integer class indices.
    targets: [B] integer target classes (each different from its label).

  Returns:
    [B] losses; positive once the target beats the label.

  Raises:
    ValueError: on mismatched shapes or fewer than 4 classes (the denominator needs z_π4).

  References:
    Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020 (AutoAttack's ``dlr_loss_targeted``).
  """
  _check_shapes(logits, labels, 4, "targeted_dlr_loss")
  _check_targets(logits, targets, "targeted_dlr_loss")
  z_true = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
  z_target = jnp.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
  top4, _ = jax.lax.top_k(logits, 4)
  denominator = top4[:, 0] - 0.5 * (top4[:, 2] + top4[:, 3]) + _DLR_DENOMINATOR_EPS
  return -(z_true - z_target) / denominator


def targeted_cross_entropy(logits: jax.Array, labels: jax.Array, targets: jax.Array) -> jax.Array:
  """Minus the cross-entropy of the target class, per example (AutoAttack's ``ce-targeted``).

  Args:
    logits: [B, C].
    labels: [B] integer class indices (unused: the loss depends on the target only; the argument
      keeps the signature of :func:`targeted_dlr_loss`).
    targets: [B] integer target classes.

  Returns:
    [B] ``log softmax(logits)[target]``; maximising it raises the target's probability.
  """
  _check_shapes(logits, labels, 2, "targeted_cross_entropy")
  _check_targets(logits, targets, "targeted_cross_entropy")
  return -cross_entropy(logits, targets)


def correct(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Whether the argmax prediction equals the label, per example.

  Args:
    logits: [B, C].
    labels: [B] integer class indices.

  Returns:
    [B] bool.
  """
  _check_shapes(logits, labels, 1, "correct")
  return jnp.argmax(logits, axis=-1) == labels
