"""Gradient estimators: each input gradient against its formula, computed by hand on one neuron.

The model is one LIF neuron (λ = 0.5, u_th = 1, T = 3) driven by the constant current ``J = w·x``
(direct encoding) and read out as ``logit = c·mean_t s[t]``. With w = c = 1 and x = 0.6 the
membrane before each reset is v = 0.6, 0.9, 1.05: it fires once, at t = 3 (rate 1/3), and
``∂logit/∂s[t] = 1/3``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jsnn import models, spiking

T, LEAK, X = 3, 0.5, 0.6
V = (0.6, 0.9, 1.05)   # Membrane before each reset.


def _triangle(u):
  """Eq. 18 with ω = 1, at u = v − u_th."""
  return max(1.0 - abs(u), 0.0)


def _bptt_by_hand(sigma):
  """dlogit/dx through the recurrence v[t] = λ·u[t−1] + x, s = H(v − 1), u = v·(1 − s)."""
  dv, du_prev, ds_total, u_prev = 0.0, 0.0, 0.0, 0.0
  for t in range(T):
    v = LEAK * u_prev + X
    dv = LEAK * du_prev + 1.0
    s = float(v >= 1.0)
    ds = sigma(v - 1.0) * dv
    du_prev = dv * (1 - s) - v * ds          # The reset path keeps its gradient (as the reference).
    u_prev = v * (1 - s)
    ds_total += ds
  return ds_total / T


# estimator (model field), surrogate (name, width), expected dlogit/dx.
CASES = {
    # 1/3·(0.6 + 0.9·1.32 + 0.95·1.1254): worked through in _bptt_by_hand with the triangle.
    "surrogate-triangle": ("surrogate", ("triangle", 1.0), (0.6 + 1.188 + 0.95 * 1.1254) / 3),
    "straight-through": ("surrogate", ("straight_through", None), (1.0 + 1.2 + 1.06) / 3),
    "surrogate-sigmoid": ("surrogate", ("sigmoid", 4.0),
                          _bptt_by_hand(lambda u: 4 * (s := 1 / (1 + np.exp(-4 * u))) * (1 - s))),
    # Rate 1/3 > 0: each step passes 1/3 on, and the three steps sum to 1.
    "bptr": ("bptr", ("triangle", 1.0), 1.0),
    # J̄ = 0.6 lies in [1 − λ, 2]: slope (1 − 0.2 + 0.2·0.5)/(0.5 + 1) = 0.6.
    "rga": ("rga", ("triangle", 1.0), 0.6),
    # mean_t (1/3)·σ(v[t] − 1) = (0.6 + 0.9 + 0.95)/9 per step, times 3 steps.
    "hart": ("hart", ("triangle", 1.0), (0.6 + 0.9 + 0.95) / 3),
}


def test_hand_values_agree_with_the_recurrence():
  assert _bptt_by_hand(_triangle) == pytest.approx(CASES["surrogate-triangle"][2])
  assert _bptt_by_hand(lambda u: 1.0) == pytest.approx(CASES["straight-through"][2])


def _one_neuron_logit(estimator, surrogate):
  """The one-layer, one-neuron model through the Flax layer the networks use."""
  name, width = surrogate
  layer = models.SpikingNeuron(models.NeuronSpec(
      kind="lif", time_steps=T, leak=LEAK, threshold=1.0, surrogate=name, surrogate_width=width,
      gradient_estimator=estimator, remat=False))

  def logit(x):
    currents = jnp.broadcast_to(x, (T, 1, 1))   # Direct encoding of one input, w = 1.
    spikes = layer.apply({}, currents)
    return jnp.mean(spikes)                     # c = 1.

  return logit


@pytest.mark.parametrize("case", list(CASES))
def test_input_gradient_equals_the_formula(case):
  estimator, surrogate, expected = CASES[case]
  logit = _one_neuron_logit(estimator, surrogate)
  value, grad = jax.value_and_grad(logit)(jnp.float32(X))
  assert value == pytest.approx(1 / 3)   # The forward pass is the same neuron for every estimator.
  np.testing.assert_allclose(grad, expected, rtol=1e-5)


def test_forward_is_bit_identical_and_gradients_differ(key):
  k1, k2, k3 = jax.random.split(key, 3)
  currents = jax.random.uniform(k1, (6, 4, 5), minval=-0.2, maxval=1.0)
  factors = jax.random.uniform(k2, (6,), minval=0.7, maxval=1.3)
  weights = jax.random.normal(k3, (6, 4, 5))
  reference = spiking.dlif(currents, factors)
  grads = {}
  for estimator in spiking.GRADIENT_ESTIMATORS:
    out = spiking.dlif(currents, factors, estimator=estimator)
    np.testing.assert_array_equal(out, reference)
    grads[estimator] = jax.grad(
        lambda c, a, e=estimator: jnp.sum(weights * spiking.dlif(c, a, estimator=e)),
        argnums=(0, 1))(currents, factors)
  for a in spiking.GRADIENT_ESTIMATORS:
    for b in spiking.GRADIENT_ESTIMATORS:
      if a < b:
        assert not np.allclose(grads[a][0], grads[b][0]), (a, b)


def test_rate_estimators_route_the_input_factor_through_the_membrane_input(key):
  """With the reference's DLIF placement J[t] = a[t]·I[t]: ∂L/∂I = a·∂L/∂J, ∂L/∂a = Σ I·∂L/∂J."""
  currents = jax.random.uniform(key, (4, 3), minval=0.0, maxval=1.5)
  factors = jnp.array([1.0, 0.5, 2.0, 1.5])
  loss = lambda c, a: jnp.sum(spiking.dlif(c, a, estimator="rga", leak=0.9) * jnp.arange(3.0)[None])
  grad_c, grad_a = jax.grad(loss, argnums=(0, 1))(currents, factors)
  mean_j = jnp.mean(factors[:, None] * currents, axis=0)
  grad_j = jnp.arange(3.0)[None] * spiking.rga_rate_derivative(mean_j, leak=0.9)[None]
  np.testing.assert_allclose(grad_c, factors[:, None] * grad_j, rtol=1e-6)
  np.testing.assert_allclose(grad_a, jnp.sum(currents * grad_j, axis=1), rtol=1e-6)


def test_rga_rate_derivative_pieces():
  x = jnp.array([-0.1, 0.005, 0.5, 1.9, 2.1])
  # λ = 0.99: slope 0.2 on [0, 0.01], (1 − 0.2 + 0.198)/1.99 on [0.01, 2], 0 elsewhere.
  np.testing.assert_allclose(spiking.rga_rate_derivative(x, leak=0.99),
                             [0, 0.2, 0.998 / 1.99, 0.998 / 1.99, 0], rtol=1e-6)
  # u_th = 2 rescales the current and the slope.
  np.testing.assert_allclose(spiking.rga_rate_derivative(2 * x, leak=0.99, threshold=2.0),
                             np.asarray(spiking.rga_rate_derivative(x, leak=0.99)) / 2, rtol=1e-6)


def test_model_option_and_bad_names():
  model = models.create_model("vgg5", num_classes=10, width=0.125, head_width=8,
                              neuron=models.NeuronSpec(time_steps=2, gradient_estimator="hart"))
  assert model.neuron.gradient_estimator == "hart"
  with pytest.raises(ValueError, match="unknown gradient estimator 'pgd'"):
    models.NeuronSpec(gradient_estimator="pgd")
  with pytest.raises(ValueError, match="unknown gradient estimator 'bptt'"):
    spiking.lif(jnp.ones((2, 3)), estimator="bptt")
