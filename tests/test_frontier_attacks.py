"""ASSG, PDSG and SA-PGD: the forward pass untouched, the backward passes against plain loops of
the papers' formulas on a tiny layer, SA-PGD's constraints at every step and its worst case on a
linear model, and the names and settings that select them."""

import dataclasses
import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default as default_config
from jsnn import attacks, evaluation, models, spiking
from jsnn.evaluation import steps
from jsnn.spiking import adaptive

# The package re-exports the function sapgd under the module's name.
sapgd_pieces = importlib.import_module("jsnn.attacks.sapgd")

LEAK, THRESHOLD = 0.9, 1.0
T, B, F = 3, 2, 5   # A dense layer [T, B, F]


def _currents(key):
  return jax.random.uniform(key, (T, B, F), minval=0.0, maxval=1.3)


def _bptt_by_hand(currents, weights, surrogate_at):
  """dL/dI for L = Σ w·s through v[t] = λ·u[t−1] + I[t], s = H(v − u_th), u = v·(1 − s), one
  neuron at a time in plain Python; ``surrogate_at(t, b, f, x)`` is the derivative at step t."""
  currents, weights = np.asarray(currents, np.float64), np.asarray(weights, np.float64)
  grad = np.zeros_like(currents)
  for b in range(B):
    for f in range(F):
      u, vs, ss = 0.0, [], []
      for t in range(T):
        v = LEAK * u + currents[t, b, f]
        s = float(v - THRESHOLD >= 0)
        u = v * (1 - s)
        vs.append(v)
        ss.append(s)
      du = 0.0
      for t in reversed(range(T)):
        grad_s = weights[t, b, f] - du * vs[t]       # u = v − v·s: the reset path's gradient
        grad_v = du * (1 - ss[t]) + grad_s * surrogate_at(t, b, f, vs[t] - THRESHOLD)
        grad[t, b, f] = grad_v
        du = LEAK * grad_v
  return grad


def _membranes(currents):
  """v[t] before each reset, [T, B, F] (float64)."""
  currents = np.asarray(currents, np.float64)
  u, out = np.zeros(currents.shape[1:]), []
  for t in range(T):
    v = LEAK * u + currents[t]
    out.append(v)
    u = v * (v < THRESHOLD)
  return np.stack(out)


def _assg_moments_by_hand(xs_per_pass, bound):
  """ASSG's sharpness at each pass, from the |x| of every pass so far (Wang et al., ASSGrad)."""
  first, second = np.ones_like(xs_per_pass[0]), np.zeros_like(xs_per_pass[0])
  a = 2 * math.tan(math.pi * bound) / math.pi
  sharpness = []
  for x in xs_per_pass:
    first = 0.9 * first + 0.1 * np.abs(x)
    second = 0.9 * second + 0.1 * np.abs(np.abs(x) - first)
    sharpness.append(a / (first + 1.5 * second + 1e-4))
  return sharpness


def test_assg_backward_equals_the_formula_over_two_forward_passes(key):
  k1, k2, k3 = jax.random.split(key, 3)
  first_currents, second_currents, weights = _currents(k1), _currents(k2), jax.random.normal(k3, (T, B, F))
  ones = jnp.ones((T,))
  bound = 0.42

  def loss(c, moments):
    spikes, moments = adaptive.assg_trace(c, ones, ones, moments, bound, leak=LEAK,
                                          threshold=THRESHOLD)
    return jnp.sum(weights * spikes), moments

  moments0 = adaptive.initial_moments((T, B, F))
  (_, moments1), grad1 = jax.value_and_grad(loss, has_aux=True)(first_currents, moments0)
  (_, moments2), grad2 = jax.value_and_grad(loss, has_aux=True)(second_currents, moments1)

  xs = [_membranes(c) - THRESHOLD for c in (first_currents, second_currents)]
  sharpness = _assg_moments_by_hand(xs, bound)
  for grad, currents, alpha in ((grad1, first_currents, sharpness[0]),
                                (grad2, second_currents, sharpness[1])):
    expected = _bptt_by_hand(
        currents, weights,
        lambda t, b, f, x, alpha=alpha: alpha[t, b, f] / 2 / (1 + (math.pi / 2 * alpha[t, b, f] * x) ** 2))
    np.testing.assert_allclose(grad, expected, rtol=2e-5, atol=1e-6)
  assert moments2.shape == (2, T, B, F) and not np.allclose(moments1, moments2)


def test_pdsg_backward_equals_the_formula(key):
  k1, k2 = jax.random.split(key)
  currents, weights = _currents(k1), jax.random.normal(k2, (T, B, F))
  grad = jax.grad(lambda c: jnp.sum(weights * spiking.lif(c, leak=LEAK, threshold=THRESHOLD,
                                                          estimator="pdsg")))(currents)
  v = _membranes(currents)
  # σ[t, b]: the unbiased std of v[0..t, b, :], as torch.std over time and the layer's units.
  sigma = np.array([[np.std(v[:t + 1, b], ddof=1) for b in range(B)] for t in range(T)])

  def gaussian(t, b, f, x):
    s = sigma[t, b]
    return math.exp(-((x - s / 2) / (math.sqrt(2) * s)) ** 2) / (math.sqrt(2 * math.pi) * s)

  np.testing.assert_allclose(grad, _bptt_by_hand(currents, weights, gaussian), rtol=2e-5,
                             atol=1e-6)


def test_pdsg_width_is_per_channel_for_a_convolution():
  assert adaptive.spread_axes(4) == (1, 2)     # [B, H, W, C]: over space, one σ per channel
  assert adaptive.spread_axes(2) == (1,)       # [B, F]: over every unit


@pytest.mark.parametrize("estimator", ["assg", "pdsg"])
def test_model_forward_is_bit_identical(estimator, key):
  kwargs = dict(num_classes=10, width=0.125, head_width=8)
  neuron = models.NeuronSpec(time_steps=2)
  model = models.create_model("vgg5", neuron=neuron, **kwargs)
  variant = models.create_model(
      "vgg5", neuron=dataclasses.replace(neuron, gradient_estimator=estimator), **kwargs)
  variables = models.init_model(model, key)
  x = jax.random.uniform(jax.random.fold_in(key, 1), (3, 32, 32, 3))
  reference = models.apply_model(model, variables, x, train=False)[0]
  np.testing.assert_array_equal(models.apply_model(variant, variables, x, train=False)[0],
                                reference)
  if estimator == "assg":
    state = models.assg_initial_state(variant, variables, x, 0.4)
    logits, new_state = models.apply_assg(variant, variables, x, state)
    np.testing.assert_array_equal(logits, reference)
    assert jax.tree_util.tree_structure(new_state) == jax.tree_util.tree_structure(state)


def test_assg_search_bounds():
  assert adaptive.assg_search_bounds(1) == (0.425,)
  assert adaptive.assg_search_bounds(3) == (0.35, 0.42, 0.49)
  for bad in (0, -1, 1.5, True):
    with pytest.raises(ValueError, match="search budget"):
      adaptive.assg_search_bounds(bad)


# ------------------------------------------------------------------------------------------------
# SA-PGD
# ------------------------------------------------------------------------------------------------

D = 6


def _linear(key):
  kw, kb = jax.random.split(key)
  weights = jax.random.normal(kw, (D, 2))
  bias = jnp.array([[2.0, 0.0]])   # Class 0 wins on most of the box.
  return weights, bias


def test_sapgd_stays_feasible_at_every_step_and_reaches_the_linear_worst_case(key):
  weights, bias = _linear(key)
  x = jax.random.uniform(jax.random.fold_in(key, 1), (4, D), minval=0.0, maxval=1.0)
  x = x.at[0, :2].set(jnp.array([0.0, 1.0]))   # On the box's faces: clipping is active.
  y = jnp.zeros((4,), jnp.int32)
  epsilon = 0.05
  seen = []

  def logits_fn(z):
    jax.debug.callback(lambda a: seen.append(np.asarray(a)), z, ordered=True)
    return z @ weights + bias

  run = jax.jit(lambda x, y, k: attacks.sapgd_run(logits_fn, x, y, key=k, epsilon=epsilon,
                                                   num_steps=20))
  result = run(x, y, jax.random.fold_in(key, 2))
  jax.effects_barrier()
  assert len(seen) == 21   # the start, then one gradient per step
  for z in seen:
    assert np.all(np.abs(z - np.asarray(x)) <= epsilon + 1e-7)
    assert np.all((z >= 0) & (z <= 1))
  # CE of class 0 on a linear two-class model rises along w1 − w0 alone: the worst case is the
  # corner clip01(x + ε·sign(w1 − w0)) (Madry et al.'s closed form for a linear model).
  direction = np.sign(np.asarray(weights[:, 1] - weights[:, 0]))
  worst = np.clip(np.asarray(x) + epsilon * direction, 0, 1)
  np.testing.assert_allclose(result.x_best, worst, atol=1e-6)


def test_sapgd_pieces():
  grad = jnp.array([[1.0, -3.0, 0.0, 2.0]])
  np.testing.assert_allclose(sapgd_pieces.l1_normalized(grad), grad / 1.5, rtol=1e-6)
  first, second = sapgd_pieces.update_moments(jnp.ones_like(grad), jnp.ones_like(grad), grad,
                                               jnp.bool_(True))
  np.testing.assert_allclose(first, grad / 1.5, rtol=1e-6)   # the first step forgets the init
  step = sapgd_pieces.clipped_step(first, second, 0.1)
  assert np.all(np.abs(step) <= 0.1 + 1e-9)
  assert sapgd_pieces.halving_schedule(10).nonzero()[0].tolist() == list(
      attacks.apgd_checkpoints(10))


def test_sapgd_spec_and_passes(key):
  spec = evaluation.parse_attack("sa-pgd7")
  assert (spec.kind, spec.num_steps, spec.needs_key, spec.uses_gradients) == ("sa-pgd", 7, True,
                                                                              True)
  assert attacks.attack_passes(spec) == (1 + 8, 8)
  weights, bias = _linear(key)
  x = jax.random.uniform(key, (3, D))
  attack = attacks.make_attack(spec, with_stats=True)
  x_adv, stats = attack(lambda z: z @ weights + bias, x, jnp.zeros((3,), jnp.int32), key=key,
                        epsilon=0.1)
  assert stats.forward.tolist() == [9] * 3 and stats.backward.tolist() == [8] * 3
  assert float(jnp.max(jnp.abs(x_adv - x))) <= 0.1 + 1e-7
  with pytest.raises(ValueError, match="number of steps must be >= 1"):
    evaluation.parse_attack("sa-pgd0")
  with pytest.raises(ValueError, match="unknown attack 'sa-pgdx'.*sa-pgd<k>"):
    evaluation.parse_attack("sa-pgdx")


def test_full_suite_adds_sapgd_assg_and_pdsg():
  config = default_config.get_config()
  config.eval.suite = "full"
  s = evaluation.settings_from_config(config)
  assert "sa-pgd100" in [spec.name for spec in s.specs]
  assert {"assg", "pdsg"} <= {e.name for e in s.estimators}
  assert s.assg_bounds == (0.35, 0.42, 0.49)
  config.eval.assg_search = 0
  with pytest.raises(ValueError, match="eval.assg_search.*got 0"):
    evaluation.settings_from_config(config)
  config.eval.assg_search = 1
  config.eval.estimators = "assg,pdgs"
  with pytest.raises(ValueError, match="unknown gradient estimator 'pdgs'"):
    evaluation.settings_from_config(config)


def test_assg_search_step_is_the_worst_case_over_bounds(key):
  kwargs = dict(num_classes=10, width=0.125, head_width=8)
  neuron = models.NeuronSpec(time_steps=2)
  model = models.create_model("vgg5", neuron=neuron, **kwargs)
  variant = models.create_model(
      "vgg5", neuron=dataclasses.replace(neuron, gradient_estimator="assg"), **kwargs)
  variables = models.init_model(model, key)
  images = np.asarray(jax.random.randint(key, (2, 32, 32, 3), 0, 256), np.uint8)
  labels = np.asarray(jnp.argmax(models.apply_model(
      model, variables, images.astype(np.float32) / 255, train=False)[0], -1), np.int32)
  spec = evaluation.parse_attack("pgd3")
  mask = jnp.ones((2,), bool)
  outs = {}
  for bounds in ((0.35,), (0.49,), (0.35, 0.49)):
    step = jax.jit(steps.make_attack_step(spec, model, variant, with_stats=True,
                                          assg_bounds=bounds))
    outs[bounds] = step(variables, images, labels, mask, key, jnp.float32(0.5))
  both = outs[(0.35, 0.49)]
  np.testing.assert_array_equal(both["correct"], outs[(0.35,)]["correct"]
                                & outs[(0.49,)]["correct"])
  assert both["backward"].tolist() == [6, 6] and both["forward"].tolist() == [7, 7]
