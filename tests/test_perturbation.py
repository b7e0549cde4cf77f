"""MPPD, MS-MPPD, TASAD, STD and the Theorem 3.1 bound against closed forms and plain loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jsnn import perturbation, spiking


def _sequential(delta, leak):
  eps, out = np.zeros(delta.shape[1:]), []
  for t in range(delta.shape[0]):
    eps = leak * eps + delta[t]
    out.append(eps)
  return np.stack(out)


@pytest.mark.parametrize("t", [1, 2, 7, 8, 13])
def test_associative_scan_equals_sequential_recurrence(key, t):
  delta = np.asarray(jax.random.normal(key, (t, 3, 4)))
  np.testing.assert_allclose(perturbation.membrane_perturbation(jnp.asarray(delta), 0.9),
                             _sequential(delta, 0.9), rtol=1e-5, atol=1e-6)


def test_constant_input_gives_the_closed_form():
  # ε[t] = (1 − λ^t)/(1 − λ)·J for a constant J (paper §3.2).
  j, leak, t = 0.7, 0.99, 30
  eps = perturbation.membrane_perturbation(jnp.full((t, 1), j), leak)[:, 0]
  expected = (1 - leak ** np.arange(1, t + 1)) / (1 - leak) * j
  np.testing.assert_allclose(eps, expected, rtol=1e-5)


def test_ms_mppd_reductions():
  delta = jnp.zeros((3, 2, 4)).at[0, 0, 0].set(1.0)     # one unit kick at t=1, example 0
  leak = 0.5
  # ε over time for that neuron: 1, 0.5, 0.25 → squares sum to 1.3125.
  assert perturbation.ms_mppd(delta, leak, "sum") == pytest.approx(1.3125 / 2)   # batch mean
  assert perturbation.ms_mppd(delta, leak, "mean") == pytest.approx(1.3125 / (3 * 2 * 4))
  assert perturbation.ms_mppd(jnp.zeros((3, 2, 4)), leak) == 0.0


def test_tasad_and_std_on_a_hand_worked_example():
  # T = 2, B = 1, three neurons.
  s = jnp.array([[[1.0, 0.0, 1.0]], [[1.0, 1.0, 0.0]]])
  s_tilde = jnp.array([[[0.0, 0.0, 1.0]], [[1.0, 0.0, 1.0]]])
  # Counts: s = (2, 1, 1), s̃ = (1, 0, 2) → diff/T = (0.5, 0.5, −0.5) → TASAD = sqrt(0.75).
  np.testing.assert_allclose(perturbation.tasad(s, s_tilde), [np.sqrt(0.75)], rtol=1e-6)
  # Per-step differences: t1 (1,0,0), t2 (0,1,−1) → STD = sqrt(1 + 2) = sqrt(3).
  np.testing.assert_allclose(perturbation.spike_train_distance(s, s_tilde), [np.sqrt(3.0)],
                             rtol=1e-6)
  # Same spike counts at shifted times: TASAD is 0, STD is not.
  shifted = s[::-1]
  assert perturbation.tasad(s, shifted)[0] == 0.0
  assert perturbation.spike_train_distance(s, shifted)[0] > 0


def test_distances_have_finite_zero_gradients_at_zero_distance():
  s = jnp.ones((2, 1, 3))
  for fn in (perturbation.tasad, perturbation.spike_train_distance):
    g = jax.grad(lambda x: fn(s, x).sum())(s)
    assert jnp.all(jnp.isfinite(g)) and jnp.all(g == 0)


@pytest.mark.parametrize("seed", range(5))
def test_theorem_3_1_bound_holds_on_random_weights_at_the_papers_setting(seed):
  k1, k2 = jax.random.split(jax.random.key(seed))
  w = jax.random.normal(k1, (6, 9))            # W: 9 inputs → 6 neurons
  delta_s = jax.random.normal(k2, (8, 9))      # T = 8 steps of Δs, λ = 0.99 as in the paper
  leak = 0.99
  eps = perturbation.membrane_perturbation(delta_s @ w.T, leak)
  norm_w = perturbation.spectral_norm_dense(w)
  ratio = jnp.linalg.norm(eps) / jnp.linalg.norm(delta_s)
  assert ratio <= perturbation.l2_gain(norm_w, leak, 8) <= perturbation.l2_gain_bound(norm_w, leak)


@pytest.mark.parametrize("leak,t", [(0.99, 17), (0.9, 8)])
def test_theorem_3_1_gamma_is_exceeded_by_the_worst_case_perturbation(leak, t):
  """The paper's γ = sqrt(1/(1−λ))·‖W‖ fails once ‖L_T‖ > sqrt(1/(1−λ)); l2_gain is attained."""
  w = jnp.diag(jnp.array([2.0, 1.0]))
  lags = np.subtract.outer(np.arange(t), np.arange(t))
  operator = np.where(lags >= 0, leak ** np.maximum(lags, 0), 0.0)
  top_time = np.linalg.svd(operator)[2][0]            # top right-singular vector of L_T
  delta_s = jnp.asarray(np.outer(top_time, [1.0, 0.0]), jnp.float32)   # along W's top direction
  eps = perturbation.membrane_perturbation(delta_s @ w.T, leak)
  ratio = jnp.linalg.norm(eps) / jnp.linalg.norm(delta_s)
  np.testing.assert_allclose(ratio, perturbation.l2_gain(2.0, leak, t), rtol=1e-4)
  assert ratio > perturbation.l2_gain_bound(2.0, leak)


def test_leak_operator_norm_is_below_the_sum_of_powers():
  for t in (1, 4, 8, 30):
    norm = perturbation.leak_operator_norm(0.99, t)
    assert norm <= (1 - 0.99 ** t) / (1 - 0.99) + 1e-4
  np.testing.assert_allclose(perturbation.leak_operator_norm(0.5, 1), 1.0, rtol=1e-6)


def test_bound_is_nearly_attained_by_the_top_singular_direction():
  # With λ → 0 the bound is ‖W‖ and Δs along the top right-singular vector attains it.
  w = jnp.diag(jnp.array([3.0, 1.0]))
  delta_s = jnp.array([[1.0, 0.0]])
  eps = perturbation.membrane_perturbation(delta_s @ w.T, 1e-6)
  gamma = perturbation.l2_gain_bound(perturbation.spectral_norm_dense(w), 1e-6)
  np.testing.assert_allclose(jnp.linalg.norm(eps), gamma * jnp.linalg.norm(delta_s), rtol=1e-4)


def test_power_iteration_matches_svd_for_a_dense_matrix(key):
  w = jax.random.normal(key, (12, 7))
  np.testing.assert_allclose(perturbation.spectral_norm_dense(w),
                             np.linalg.svd(np.asarray(w), compute_uv=False)[0], rtol=1e-4)


@pytest.mark.parametrize("strides", [(1, 1), (2, 2)])
def test_conv_spectral_norm_matches_its_dense_matrix(key, strides):
  kernel = jax.random.normal(key, (3, 3, 2, 3))
  shape = (5, 5, 2)

  def conv(x):
    return jax.lax.conv_general_dilated(x[None], kernel, strides, "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]

  matrix = jax.jacobian(lambda v: conv(v.reshape(shape)).ravel())(jnp.zeros(np.prod(shape)))
  expected = np.linalg.svd(np.asarray(matrix), compute_uv=False)[0]
  got = perturbation.spectral_norm_conv(kernel, shape, strides=strides, num_iters=300)
  np.testing.assert_allclose(got, expected, rtol=1e-3)


def test_figure_1a_membrane_difference_jitters_while_mppd_is_smooth():
  """Fig. 1(a) with the reference script's values: λ = 0.9, clean input 0.3, +0.1, 30 steps."""
  leak, steps = 0.9, 30
  u_clean = u_pert = jnp.float32(0.0)
  difference = []
  for _ in range(steps):
    v_clean = leak * u_clean + 0.3
    v_pert = leak * u_pert + 0.4
    difference.append(float(v_clean - v_pert))   # the true (unsimplified) perturbation
    u_clean, _ = spiking.lif_step(u_clean, jnp.float32(0.3), leak=leak)
    u_pert, _ = spiking.lif_step(u_pert, jnp.float32(0.4), leak=leak)
  difference = np.array(difference)
  mppd = np.asarray(perturbation.membrane_perturbation(jnp.full((steps,), -0.1), leak))
  # The true difference changes sign (resets at different times) ...
  assert difference.min() < 0 < difference.max()
  # ... while MPPD follows (1 − λ^t)/(1 − λ)·J monotonically, never changing sign.
  np.testing.assert_allclose(mppd, -0.1 * (1 - leak ** np.arange(1, steps + 1)) / (1 - leak),
                             rtol=1e-5)
  assert np.all(np.diff(np.abs(mppd)) > 0)


@pytest.mark.parametrize("call,match", [
    (lambda: perturbation.membrane_perturbation(jnp.ones((3, 2)), 1.2), "leak"),
    (lambda: perturbation.membrane_perturbation(jnp.ones(()), 0.9), r"\[T, ...\]"),
    (lambda: perturbation.ms_mppd(jnp.ones((3,)), 0.9), r"\[T, ...\]"),
    (lambda: perturbation.ms_mppd(jnp.ones((3, 2)), 0.9, "max"), "'max'"),
    (lambda: perturbation.tasad(jnp.ones((3, 2)), jnp.ones((3, 3))), "equal shapes"),
    (lambda: perturbation.l2_gain_bound(1.0, 1.0), "leak"),
    (lambda: perturbation.spectral_norm_dense(jnp.ones(3)), "2-D"),
    (lambda: perturbation.spectral_norm_conv(jnp.ones((3, 3, 2, 4)), (5, 5, 3)), "C_in"),
])
def test_bad_inputs_raise_value_errors(call, match):
  with pytest.raises(ValueError, match=match):
    call()
