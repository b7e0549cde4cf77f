"""Per-example losses against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jsnn import losses

# Rows chosen so that each case of the DLR formula shows up: label on top, label second, label last.
LOGITS = np.array([[3.0, 1.0, 0.0, -1.0],
                   [3.0, 1.0, 0.0, -1.0],
                   [0.5, 2.5, 2.0, 1.0]], np.float32)
LABELS = np.array([0, 2, 3])


def test_cross_entropy_is_minus_log_softmax():
  z = LOGITS.astype(np.float64)
  log_softmax = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
  expected = -log_softmax[np.arange(3), LABELS]
  np.testing.assert_allclose(losses.cross_entropy(LOGITS, LABELS), expected, rtol=1e-6)


def test_margin_by_hand():
  # Row 0: 3 - 1; row 1: 0 - 3; row 2: 1 - 2.5.
  np.testing.assert_allclose(losses.margin(LOGITS, LABELS), [2.0, -3.0, -1.5])


def test_dlr_loss_by_hand():
  # -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12), with sorted rows (3, 1, 0, -1) twice
  # and (2.5, 2, 1, 0.5).
  expected = [-(3 - 1) / (3 - 0), -(0 - 3) / (3 - 0), -(1 - 2.5) / (2.5 - 1)]
  np.testing.assert_allclose(losses.dlr_loss(LOGITS, LABELS), expected, rtol=1e-6)


def test_dlr_loss_is_shift_and_scale_invariant():
  dlr = losses.dlr_loss(LOGITS, LABELS)
  np.testing.assert_allclose(losses.dlr_loss(7.0 * LOGITS - 3.0, LABELS), dlr, rtol=1e-5)


def test_dlr_and_margin_gradients_are_finite():
  for fn in (losses.dlr_loss, losses.margin):
    grad = jax.grad(lambda z, fn=fn: jnp.sum(fn(z, LABELS)))(jnp.asarray(LOGITS))
    assert np.all(np.isfinite(grad))


def test_correct():
  np.testing.assert_array_equal(losses.correct(LOGITS, LABELS), [True, False, False])
  np.testing.assert_array_equal(losses.correct(LOGITS, np.array([0, 0, 1])), [True, True, True])


def test_dlr_needs_three_classes():
  with pytest.raises(ValueError, match="at least 3 classes; got logits with 2 classes"):
    losses.dlr_loss(np.zeros((4, 2), np.float32), np.zeros(4, np.int32))


def test_mismatched_shapes_raise():
  with pytest.raises(ValueError, match=r"labels \(3,\)"):
    losses.cross_entropy(np.zeros((4, 5), np.float32), np.zeros(3, np.int32))


def test_targeted_dlr_loss_by_hand():
  # -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4)/2 + 1e-12); rows sorted (3, 1, 0, -1), (2.5, 2, 1, 0.5).
  targets = np.array([1, 3, 1])
  expected = [-(3 - 1) / (3 + 0.5), -(0 + 1) / (3 + 0.5), -(1 - 2.5) / (2.5 - 0.75)]
  np.testing.assert_allclose(losses.targeted_dlr_loss(LOGITS, LABELS, targets), expected,
                             rtol=1e-6)
  np.testing.assert_allclose(losses.targeted_dlr_loss(5.0 * LOGITS + 2.0, LABELS, targets),
                             expected, rtol=1e-5)
  np.testing.assert_allclose(losses.targeted_cross_entropy(LOGITS, LABELS, targets),
                             -losses.cross_entropy(LOGITS, targets), rtol=1e-6)
  with pytest.raises(ValueError, match="at least 4 classes"):
    losses.targeted_dlr_loss(LOGITS[:, :3], LABELS % 3, targets % 3)
