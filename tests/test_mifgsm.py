"""MI-FGSM, the example of an attack kind added in one module and one registry line: every
iterate feasible, a linear model's closed-form worst case, the momentum against a plain loop, and
the name and record through which the suite runs it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jsnn import attacks
from jsnn.attacks import mifgsm as mifgsm_module

D = 6


def _linear(key):
  weights = jax.random.normal(key, (D, 2))
  bias = jnp.array([[2.0, 0.0]])   # Class 0 wins on most of the box.
  return weights, bias


def test_every_iterate_is_feasible_and_the_linear_worst_case_is_reached():
  key = jax.random.key(0)
  weights, bias = _linear(key)
  x = jax.random.uniform(jax.random.fold_in(key, 1), (4, D))
  x = x.at[0, :2].set(jnp.array([0.0, 1.0]))   # On the box's faces: clipping is active.
  y = jnp.zeros((4,), jnp.int32)
  epsilon, seen = 0.05, []

  def logits_fn(z):
    jax.debug.callback(lambda a: seen.append(np.asarray(a)), z, ordered=True)
    return z @ weights + bias

  x_adv = jax.jit(lambda x, y: mifgsm_module.mifgsm(logits_fn, x, y, epsilon=epsilon,
                                                    num_steps=5))(x, y)
  jax.effects_barrier()
  assert len(seen) == 5   # one gradient per step, from the clean image
  for z in seen + [np.asarray(x_adv)]:
    assert np.all(np.abs(z - np.asarray(x)) <= epsilon + 1e-7)
    assert np.all((z >= 0) & (z <= 1))
  # CE of class 0 rises along w1 − w0 alone, so every step has the same sign and k steps of ε/k
  # reach the corner clip01(x + ε·sign(w1 − w0)).
  direction = np.sign(np.asarray(weights[:, 1] - weights[:, 0]))
  np.testing.assert_allclose(x_adv, np.clip(np.asarray(x) + epsilon * direction, 0, 1), atol=1e-6)


def test_the_momentum_equals_a_plain_loop():
  # A model whose gradient changes sign along the path: the momentum decides the steps.
  w = jax.random.normal(jax.random.key(3), (D, 3))
  logits_fn = lambda z: jnp.sin(3 * z) @ w
  x = jax.random.uniform(jax.random.key(4), (2, D), minval=0.3, maxval=0.7)
  y = jnp.array([0, 2])
  epsilon, steps, mu = 0.2, 4, 0.7
  got = mifgsm_module.mifgsm(logits_fn, x, y, epsilon=epsilon, num_steps=steps, momentum=mu)

  loss = lambda z: jnp.sum(-jax.nn.log_softmax(logits_fn(z))[jnp.arange(2), y])
  x_k, g = np.asarray(x, np.float64), np.zeros((2, D))
  for _ in range(steps):
    grad = np.asarray(jax.grad(loss)(jnp.asarray(x_k, jnp.float32)), np.float64)
    for b in range(2):
      g[b] = mu * g[b] + grad[b] / (np.abs(grad[b]).sum() + 1e-12)
      step = x_k[b] + epsilon / steps * np.sign(g[b])
      x_k[b] = np.clip(np.clip(step, x[b] - epsilon, x[b] + epsilon), 0, 1)
  np.testing.assert_allclose(got, x_k, atol=1e-6)


def test_the_name_the_spec_and_its_passes():
  spec = attacks.parse_attack("mi-fgsm10", 8 / 255)
  assert isinstance(spec, mifgsm_module.MIFGSMSpec) and spec.num_steps == 10
  assert spec.passes() == (10, 10) and not spec.needs_key and spec.uses_gradients
  assert spec.step_size_at(8 / 255) == pytest.approx(0.8 / 255)
  assert spec.record() == {"kind": "mi-fgsm", "steps": 10, "momentum": 1.0, "loss": "ce",
                           "norm": "linf"}
  with pytest.raises(ValueError, match="number of steps must be >= 1"):
    attacks.parse_attack("mi-fgsm0")
  weights, bias = _linear(jax.random.key(5))
  x = jnp.full((3, D), 0.5)
  x_adv, stats = attacks.make_attack(spec, with_stats=True)(
      lambda z: z @ weights + bias, x, jnp.zeros(3, jnp.int32))
  assert float(jnp.max(jnp.abs(x_adv - x))) <= 8 / 255 + 1e-7
  np.testing.assert_array_equal(stats.forward, 10)
