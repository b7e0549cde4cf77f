"""Spikes, surrogates, LIF and DLIF against hand computations and plain loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jsnn import spiking


def test_spike_forward_is_heaviside_and_fires_at_threshold():
  v = jnp.array([-1.0, 0.999, 1.0, 1.001, 3.0])
  np.testing.assert_array_equal(spiking.spike(v, 1.0), [0.0, 0.0, 1.0, 1.0, 1.0])


def test_spike_backward_is_triangle_of_eq18():
  # dS/dv = (1/ω²)·max(ω − |v − u_th|, 0), ω = 1, u_th = 1.
  v = jnp.array([1.0, 1.5, 0.2, 2.5, 0.0, 0.75])
  grad = jax.vmap(jax.grad(lambda x: spiking.spike(x, 1.0)))(v)
  np.testing.assert_allclose(grad, [1.0, 0.5, 0.2, 0.0, 0.0, 0.75], atol=1e-7)
  # Width ω = 2: peak 1/ω = 0.5, support |v − 1| < 2.
  grad2 = jax.vmap(jax.grad(lambda x: spiking.spike(x, 1.0, spiking.Triangle(2.0))))(v)
  np.testing.assert_allclose(grad2, [0.5, 0.375, 0.3, 0.125, 0.25, 0.4375], atol=1e-7)


@pytest.mark.parametrize("name,kwargs,x,expected", [
    ("sigmoid", {"alpha": 4.0}, 0.0, 1.0),             # α/4 at 0
    ("arctan", {"alpha": 2.0}, 0.0, 1.0),              # α/2 at 0
    ("rectangular", {"width": 1.0}, 0.4, 1.0),
    ("rectangular", {"width": 1.0}, 0.6, 0.0),
    ("straight_through", {}, 5.0, 1.0),
])
def test_other_surrogates_at_chosen_points(name, kwargs, x, expected):
  surrogate = spiking.get_surrogate(name, **kwargs)
  grad = jax.grad(lambda v: spiking.spike(v, 1.0, surrogate))(jnp.float32(1.0 + x))
  np.testing.assert_allclose(grad, expected, atol=1e-6)
  # The forward pass never depends on the surrogate.
  assert spiking.spike(jnp.float32(1.0 + x), 1.0, surrogate) == float(x >= 0)


def test_unknown_surrogate_is_a_value_error():
  with pytest.raises(ValueError, match="'gaussian'"):
    spiking.get_surrogate("gaussian")


def _loop_neuron(currents, leak, threshold, leak_factors, input_factors):
  """Eq. 1 written as a plain Python loop."""
  u = np.zeros(currents.shape[1:])
  out = []
  for t in range(currents.shape[0]):
    v = leak * leak_factors[t] * u + input_factors[t] * currents[t]
    s = (v >= threshold).astype(np.float64)
    u = v * (1 - s)
    out.append(s)
  return np.stack(out)


def test_lif_equals_a_plain_loop(key):
  currents = np.asarray(jax.random.uniform(key, (6, 3, 5), minval=-0.5, maxval=1.2))
  ones = np.ones(6)
  expected = _loop_neuron(currents, 0.9, 1.0, ones, ones)
  np.testing.assert_array_equal(spiking.lif(jnp.asarray(currents), leak=0.9), expected)
  assert expected.sum() > 0 and (1 - expected).sum() > 0   # both cases are exercised


@pytest.mark.parametrize("placement", ["input", "leak"])
def test_dlif_equals_a_plain_loop(key, placement):
  k1, k2 = jax.random.split(key)
  currents = np.asarray(jax.random.uniform(k1, (6, 4, 3), minval=-0.5, maxval=1.2))
  factors = np.asarray(jax.random.uniform(k2, (6,), minval=0.5, maxval=1.5))
  ones = np.ones(6)
  leak_f, input_f = (factors, ones) if placement == "leak" else (ones, factors)
  expected = _loop_neuron(currents, 0.99, 1.0, leak_f, input_f)
  got = spiking.dlif(jnp.asarray(currents), jnp.asarray(factors), placement=placement)
  np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("placement", ["input", "leak"])
def test_dlif_with_unit_factors_equals_lif(key, placement):
  currents = jax.random.uniform(key, (8, 2, 7), minval=0.0, maxval=1.0)
  np.testing.assert_array_equal(
      spiking.dlif(currents, jnp.ones(8), placement=placement), spiking.lif(currents))


@pytest.mark.parametrize("remat", [False, True])
@pytest.mark.parametrize("unroll", [False, True])
def test_scan_gradient_equals_unrolled_loop_gradient(key, remat, unroll):
  """BPTT through the scan, rolled or unrolled, with the gradient kept through the reset, equals
  a Python loop."""
  currents = jax.random.uniform(key, (5, 3), minval=0.0, maxval=1.0)
  factors = jnp.array([1.0, 0.9, 1.1, 1.0, 0.8])

  def scanned(c, a):
    return jnp.sum(spiking.dlif(c, a, remat=remat, unroll=unroll) * jnp.arange(1.0, 4.0)[None])

  def unrolled(c, a):
    u, total = jnp.zeros(3), 0.0
    for t in range(5):
      u, s = spiking.lif_step(u, c[t], input_factor=a[t])
      total = total + jnp.sum(s * jnp.arange(1.0, 4.0))
    return total

  g1 = jax.grad(scanned, argnums=(0, 1))(currents, factors)
  g2 = jax.grad(unrolled, argnums=(0, 1))(currents, factors)
  for a, b in zip(g1, g2):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert jnp.any(g1[0] != 0)


@pytest.mark.parametrize("estimator", ["surrogate", "hart"])
def test_short_time_loops_compile_without_a_while_loop(key, estimator):
  """Up to MAX_UNROLLED_TIME_STEPS the neuron is unrolled: its compiled forward and backward
  pass hold no ``while``; ``unroll=False`` keeps the rolled scan."""
  currents = jax.random.uniform(key, (8, 2, 3))
  factors = jnp.ones(8)

  def hlo(unroll):
    fn = lambda c, a: jnp.sum(spiking.dlif(c, a, estimator=estimator, unroll=unroll))
    return jax.jit(jax.grad(fn, argnums=(0, 1))).lower(currents, factors).compile().as_text()

  assert 8 <= spiking.neurons.MAX_UNROLLED_TIME_STEPS
  assert " while(" not in hlo(None)
  assert " while(" in hlo(False)


def test_bfloat16_currents_keep_a_float32_membrane():
  # 0.99 rounds to 0.98828125 in bfloat16; with a float32 membrane 100 steps of 0.0101 cross 1.0
  # at the same step as in float32.
  currents = jnp.full((120, 1), 0.0101)
  s32 = spiking.lif(currents)
  s16 = spiking.lif(currents.astype(jnp.bfloat16))
  assert s16.dtype == jnp.bfloat16
  np.testing.assert_array_equal(s16.astype(jnp.float32), s32)


def test_direct_encoding_repeats_the_image():
  x = jnp.arange(6.0).reshape(2, 3)
  enc = spiking.direct_encoding(x, 4)
  assert enc.shape == (4, 2, 3)
  np.testing.assert_array_equal(enc[3], x)


@pytest.mark.parametrize("call,match", [
    (lambda: spiking.lif(jnp.ones((4, 2)), leak=1.5), "leak"),
    (lambda: spiking.lif(jnp.ones((4, 2)), leak=0.0), "leak"),
    (lambda: spiking.lif(jnp.ones((0, 2))), "T >= 1"),
    (lambda: spiking.dlif(jnp.ones((4, 2)), jnp.ones(3)), r"\[T\]=\(4,\)"),
    (lambda: spiking.dlif(jnp.ones((4, 2)), jnp.ones(4), placement="membrane"), "'membrane'"),
    (lambda: spiking.direct_encoding(jnp.ones(3), 0), "time_steps"),
])
def test_bad_inputs_raise_value_errors(call, match):
  with pytest.raises(ValueError, match=match):
    call()
