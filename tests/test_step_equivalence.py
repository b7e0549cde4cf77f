"""Each speed lever leaves the training step and the attacks as they were (float32 tolerance).

The levers (benchmarks/results): the neuron's time loop unrolled, the convolution whose input
gradient is an ordinary HWIO convolution (``layers.conv2d``), no recomputation of the neuron
loop (``remat=False``), and rolled attack loops. Each test switches one lever back and compares
one jitted RFGSM-AT step (loss, metrics, new parameters and batch statistics) or one attack.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from jsnn import attacks, train_state, train_step, workdir
from jsnn.models import layers
from jsnn.spiking import neurons


def _at_step(remat=False):
  """One jitted RFGSM-AT step (ρ = 1) of a tiny DLIF VGG5: ``(metrics, new state)``."""
  config = default.get_config()
  config.model.name, config.model.time_steps = "vgg5", 4
  config.model.width, config.model.head_width, config.model.remat = 0.125, 32, remat
  config.training.batch_size = 8
  config = workdir.resolve_config(config)
  model = workdir.model_from_config(config, 10)
  tx, schedule = train_step.make_optimizer(learning_rate=0.1, epochs=2, steps_per_epoch=4)
  state = train_state.create_train_state(model, tx, jax.random.key(0))
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8))
  labels = jnp.asarray(rng.integers(0, 10, (32,), dtype=np.int32))
  step = jax.jit(functools.partial(train_step.train_step, model=model, tx=tx, schedule=schedule,
                                   settings=workdir.step_settings(config)))
  new_state, metrics = step(state, images, labels)
  return jax.device_get(metrics), jax.device_get((new_state.params, new_state.batch_stats))


def _assert_same_step(a, b):
  (metrics_a, state_a), (metrics_b, state_b) = a, b
  assert metrics_a.keys() == metrics_b.keys()
  for k in metrics_a:
    np.testing.assert_allclose(metrics_a[k], metrics_b[k], rtol=1e-5, atol=1e-6, err_msg=k)
  leaves_a, leaves_b = jax.tree_util.tree_leaves(state_a), jax.tree_util.tree_leaves(state_b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def fast_step():
  return _at_step()


def test_step_moves_the_parameters(fast_step):
  # Guards the comparisons below against comparing two steps that did nothing.
  metrics, _ = fast_step
  assert metrics["ce_perturbed"] > 0 and metrics["ms_mppd"] > 0


def test_unrolled_time_loop_gives_the_rolled_step(fast_step, monkeypatch):
  monkeypatch.setattr(neurons, "MAX_UNROLLED_TIME_STEPS", 0)   # every neuron scan rolled
  _assert_same_step(fast_step, _at_step())


def test_conv2d_gives_the_lax_convolution_step(fast_step, monkeypatch):
  monkeypatch.setattr(layers, "_flax_conv", jax.lax.conv_general_dilated)
  _assert_same_step(fast_step, _at_step())


def test_remat_gives_the_same_step(fast_step):
  _assert_same_step(fast_step, _at_step(remat=True))


@pytest.mark.parametrize("kernel,strides,dtype", [
    (3, 1, jnp.float32), (3, 2, jnp.float32), (1, 2, jnp.float32), (3, 1, jnp.bfloat16)])
def test_conv2d_and_its_gradients_equal_lax_conv(key, kernel, strides, dtype):
  kx, kw = jax.random.split(key)
  x = jax.random.normal(kx, (2, 9, 8, 3)).astype(dtype)
  w = jax.random.normal(kw, (kernel, kernel, 3, 5)).astype(dtype)
  padding = ((kernel // 2, kernel // 2),) * 2
  reference = lambda x, w: jax.lax.conv_general_dilated(
      x, w, (strides, strides), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
  ours = lambda x, w: layers.conv2d(x, w, (strides, strides), padding)
  tol = 1e-5 if dtype == jnp.float32 else 2e-2
  np.testing.assert_allclose(ours(x, w).astype(jnp.float32),
                             reference(x, w).astype(jnp.float32), rtol=tol, atol=tol)
  # A non-linear read-out, so that the output gradient differs from pixel to pixel.
  grads = [jax.grad(lambda x, w, f=f: jnp.sum(jnp.sin(f(x, w).astype(jnp.float32))),
                    argnums=(0, 1))(x, w) for f in (ours, reference)]
  for a, b in zip(*grads):
    assert a.dtype == b.dtype
    np.testing.assert_allclose(a.astype(jnp.float32), b.astype(jnp.float32), rtol=tol,
                               atol=tol)


def test_rolled_pgd_equals_a_python_loop_of_its_steps(key):
  """PGD-k through ``base.iterate`` (one rolled loop) equals k hand-written steps."""
  kx, kw = jax.random.split(key)
  weights = jax.random.normal(kw, (32 * 32 * 3, 10)) / 50
  logits_fn = lambda z: jnp.tanh(z.reshape(z.shape[0], -1) @ weights) * 5
  x = jax.random.uniform(kx, (3, 32, 32, 3))
  y = jnp.array([0, 1, 2])
  eps, alpha, steps = 8 / 255, 2 / 255, 3
  rolled = attacks.pgd(logits_fn, x, y, epsilon=eps, step_size=alpha, num_steps=steps,
                       random_start=False)
  x_adv = x
  for _ in range(steps):
    grad, _, _ = attacks.base.input_gradient(attacks.base.get_loss("ce"), logits_fn, x_adv, y)
    x_adv = jnp.clip(jnp.clip(x_adv + alpha * jnp.sign(grad), x - eps, x + eps), 0.0, 1.0)
  np.testing.assert_allclose(rolled, x_adv, atol=1e-6)
  assert float(jnp.max(jnp.abs(x_adv - x))) > 0
