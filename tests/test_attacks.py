"""Attack invariants, closed forms on linear models, a reference port of APGD, and trace counts.

Every model here is a few lines of jnp, so each test compiles in well under a second on CPU.
"""

import functools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jsnn import attacks
from jsnn import losses

SHAPE = (4, 4, 3)  # Tiny "images": 48 pixels.
DIM = int(np.prod(SHAPE))
NUM_CLASSES = 5


def _mlp_logits_fn(params):
  def logits_fn(x):
    h = jnp.tanh(x.reshape(x.shape[0], -1) @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]
  return logits_fn


def _random_mlp(seed, dim=DIM, hidden=16, num_classes=NUM_CLASSES, scale=3.0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  return {
      "w1": scale * jax.random.normal(k1, (dim, hidden)) / np.sqrt(dim),
      "b1": jnp.zeros((1, hidden)),
      "w2": scale * jax.random.normal(k2, (hidden, num_classes)) / np.sqrt(hidden),
      "b2": jnp.zeros((1, num_classes)),
  }


RANDOM_MLP = _mlp_logits_fn(_random_mlp(0))


def _batch(seed, batch=8, logits_fn=RANDOM_MLP):
  """Random images, labelled by the model itself so that every example starts out correct."""
  x = jax.random.uniform(jax.random.key(seed), (batch,) + SHAPE)
  return x, jnp.argmax(logits_fn(x), axis=-1)


def _jit_call(attack, logits_fn, x, y, **kwargs):
  """``attack(logits_fn, x, y, **kwargs)`` under one jit: one compile instead of one per op."""
  return jax.jit(lambda x, y: attack(logits_fn, x, y, **kwargs))(x, y)


# name -> (attack(logits_fn, x, y, key, epsilon), norm, epsilon used in the invariant tests).
ATTACKS = {
    "fgsm": (lambda f, x, y, key, eps: attacks.fgsm(f, x, y, epsilon=eps), "linf", 0.1),
    "pgd_linf": (lambda f, x, y, key, eps: attacks.pgd(
        f, x, y, key=key, epsilon=eps, step_size=eps / 4, num_steps=5), "linf", 0.1),
    "pgd_l2": (lambda f, x, y, key, eps: attacks.pgd(
        f, x, y, key=key, epsilon=eps, step_size=eps / 4, num_steps=5, norm="l2"), "l2", 1.5),
    "apgd_ce": (lambda f, x, y, key, eps: attacks.apgd(
        f, x, y, key=key, epsilon=eps, num_steps=5), "linf", 0.1),
    "apgd_dlr_2restarts": (lambda f, x, y, key, eps: attacks.apgd(
        f, x, y, key=key, epsilon=eps, num_steps=5, loss="dlr", num_restarts=2), "linf", 0.1),
    "apgd_l2": (lambda f, x, y, key, eps: attacks.apgd(
        f, x, y, key=key, epsilon=eps, num_steps=5, norm="l2"), "l2", 1.5),
}
RANDOMISED = [name for name in ATTACKS if name != "fgsm"]


@functools.cache
def _jitted(name):
  attack = ATTACKS[name][0]
  return jax.jit(lambda x, y, key, eps: attack(RANDOM_MLP, x, y, key, eps))


def _per_example_norm(delta, norm):
  flat = np.asarray(delta).reshape(delta.shape[0], -1)
  return np.abs(flat).max(axis=1) if norm == "linf" else np.sqrt(np.sum(flat**2, axis=1))


@pytest.mark.parametrize("name", list(ATTACKS))
def test_output_is_in_the_ball_and_the_box(name):
  _, norm, eps = ATTACKS[name]
  x, y = _batch(1)
  x_adv = _jitted(name)(x, y, jax.random.key(2), jnp.float32(eps))
  assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
  assert np.all(_per_example_norm(x_adv - x, norm) <= eps + 1e-6)
  assert np.all((x_adv >= 0) & (x_adv <= 1))
  # The attack does something: most examples are fooled at this (large) ε.
  assert np.mean(losses.correct(RANDOM_MLP(x_adv), y)) < 0.5


@pytest.mark.parametrize("name", RANDOMISED)
def test_same_key_same_output_other_key_other_output(name):
  _, _, eps = ATTACKS[name]
  x, y = _batch(1)
  attack = _jitted(name)
  first = attack(x, y, jax.random.key(3), jnp.float32(eps))
  np.testing.assert_array_equal(attack(x, y, jax.random.key(3), jnp.float32(eps)), first)
  assert not np.allclose(attack(x, y, jax.random.key(4), jnp.float32(eps)), first)


# ------------------------------------------------------------------------------------------------
# Closed forms on a linear model.
# ------------------------------------------------------------------------------------------------


def test_linear_two_class_worst_case():
  """For logits = x·W the worst L∞ perturbation is δ = -ε·sign(w_y - w_other)."""
  eps = 0.05
  batch = 64
  kx, kw = jax.random.split(jax.random.key(5))
  # Pixels stay 2ε away from the box edges, so clipping to [0, 1] never binds.
  x = jax.random.uniform(kx, (batch,) + SHAPE, minval=0.3, maxval=0.7)
  w = 0.1 * jax.random.normal(kw, (DIM, 2))
  logits_fn = lambda x: x.reshape(x.shape[0], -1) @ w
  y = jnp.argmax(logits_fn(x), axis=-1).at[::4].set(0)  # Some examples start out misclassified.

  w_diff = np.where(np.asarray(y)[:, None] == 0, w[:, 0] - w[:, 1], w[:, 1] - w[:, 0])  # [B, d]
  worst_delta = -eps * np.sign(w_diff).reshape(x.shape)
  margin = np.sum(w_diff * np.asarray(x).reshape(batch, -1), axis=1)
  robust = margin > eps * np.abs(w_diff).sum(axis=1)
  assert 0 < robust.sum() < batch, "the test needs both robust and non-robust examples"

  key = jax.random.key(6)
  x_fgsm = _jit_call(attacks.fgsm, logits_fn, x, y, epsilon=eps)
  # 5 steps of ε/2 cross the ball (2ε) from any random start.
  x_pgd = _jit_call(attacks.pgd, logits_fn, x, y, key=key, epsilon=eps, step_size=eps / 2,
                    num_steps=5)
  for x_adv in (x_fgsm, x_pgd):
    np.testing.assert_allclose(x_adv - x, worst_delta, atol=1e-6)
    np.testing.assert_array_equal(losses.correct(logits_fn(x_adv), y), robust)
  # APGD returns misclassified points only, so compare robust accuracy, not the point.
  x_apgd = _jit_call(attacks.apgd, logits_fn, x, y, key=key, epsilon=eps, num_steps=3)
  np.testing.assert_array_equal(losses.correct(logits_fn(x_apgd), y), robust)


def test_apgd_leaves_misclassified_and_unfoolable_examples_clean():
  x, y = _batch(7)
  y = y.at[:3].set((y[:3] + 1) % NUM_CLASSES)  # Misclassified from the start.
  x_adv = _jit_call(attacks.apgd, RANDOM_MLP, x, y, key=jax.random.key(8), epsilon=1e-4,
                    num_steps=2)
  np.testing.assert_array_equal(x_adv[:3], x[:3])
  fooled = ~np.asarray(losses.correct(RANDOM_MLP(x_adv), y))
  np.testing.assert_array_equal(x_adv[~fooled], x[~fooled])


# ------------------------------------------------------------------------------------------------
# APGD on a small trained model: against a line-by-line port of the reference, and against PGD.
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
  """A 2-layer MLP trained (300 Adam steps, ~1 s) to tell three rings apart.

  The class is the tercile of ‖x - 0.5‖₂, so the decision boundaries are curved even inside a small
  ball. On near-linear problems PGD and APGD both end up at the same corner of the ball and tie.
  Returns the logits_fn and 64 of its training examples.
  """
  x = jax.random.uniform(jax.random.key(9), (512, 4, 4, 1))
  radius = jnp.sqrt(jnp.sum(jnp.square(x - 0.5), axis=(1, 2, 3)))
  y = jnp.digitize(radius, jnp.quantile(radius, jnp.array([1 / 3, 2 / 3]))).astype(jnp.int32)
  params = _random_mlp(10, dim=16, hidden=32, num_classes=3, scale=1.0)
  opt = optax.adam(1e-2)

  def step(carry, _):
    params, opt_state = carry
    loss_fn = lambda p: jnp.mean(losses.cross_entropy(_mlp_logits_fn(p)(x), y))
    updates, opt_state = opt.update(jax.grad(loss_fn)(params), opt_state)
    return (optax.apply_updates(params, updates), opt_state), None

  (params, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, length=300))((params, opt.init(params)))
  logits_fn = _mlp_logits_fn(params)
  assert np.mean(losses.correct(logits_fn(x), y)) > 0.9
  return logits_fn, x[:64], y[:64]


def _reference_apgd(grad_fn, x, y, x_start, eps, num_steps, rho=0.75):
  """torchattacks' APGD.attack_single_run (L∞) transcribed to NumPy, quirks included."""
  x, x_adv = np.array(x), np.array(x_start)
  batch = x.shape[0]
  n_2, n_min, size_decr = (max(int(0.22 * num_steps), 1), max(int(0.06 * num_steps), 1),
                           max(int(0.03 * num_steps), 1))
  x_best, x_best_adv = x_adv.copy(), x_adv.copy()
  loss_steps = np.zeros([num_steps, batch], np.float32)
  grad, loss_indiv, logits = grad_fn(x_adv)
  grad_best = grad.copy()
  acc = logits.argmax(1) == y
  loss_best = loss_indiv.copy()
  step_size = np.full([batch, 1, 1, 1], 2 * eps, np.float32)
  x_adv_old = x_adv.copy()
  k, counter3 = n_2, 0
  loss_best_last_check = loss_best.copy()
  reduced_last_check = np.ones(batch, bool)
  for i in range(num_steps):
    grad2 = x_adv - x_adv_old
    x_adv_old = x_adv.copy()
    a = 0.75 if i > 0 else 1.0
    x_adv_1 = np.clip(np.clip(x_adv + step_size * np.sign(grad), x - eps, x + eps), 0, 1)
    x_adv_1 = np.clip(
        np.clip(x_adv + (x_adv_1 - x_adv) * a + grad2 * (1 - a), x - eps, x + eps), 0, 1)
    x_adv = x_adv_1
    grad, loss_indiv, logits = grad_fn(x_adv)
    pred = logits.argmax(1) == y
    acc = np.minimum(acc, pred)
    x_best_adv[~pred] = x_adv[~pred]
    loss_steps[i] = loss_indiv
    ind = loss_indiv > loss_best
    x_best[ind], grad_best[ind], loss_best[ind] = x_adv[ind], grad[ind], loss_indiv[ind]
    counter3 += 1
    if counter3 == k:
      t = np.zeros(batch)
      for counter5 in range(k):  # Reads loss_steps[-1] (still zero) on the first check.
        t += loss_steps[i - counter5] > loss_steps[i - counter5 - 1]
      fl_oscillation = t <= k * rho
      fl_reduce_no_impr = ~reduced_last_check & (loss_best_last_check >= loss_best)
      fl_oscillation = fl_oscillation | fl_reduce_no_impr
      reduced_last_check = fl_oscillation.copy()
      loss_best_last_check = loss_best.copy()
      step_size[fl_oscillation] /= 2.0
      x_adv[fl_oscillation] = x_best[fl_oscillation]
      grad[fl_oscillation] = grad_best[fl_oscillation]
      counter3 = 0
      k = max(k - size_decr, n_min)
  return x_best, acc, loss_best, x_best_adv


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_apgd_matches_reference_port(trained, loss):
  logits_fn, x, y = trained
  eps, num_steps, key = 0.1, 10, jax.random.key(11)
  loss_fn = attacks.get_loss(loss)
  grad_fn = jax.jit(lambda x: attacks.input_gradient(loss_fn, logits_fn, x, y))
  numpy_grad_fn = lambda x: tuple(np.array(a) for a in grad_fn(x))
  x_start = attacks.linf_sphere_start(key, x, eps)  # apgd_run draws the same start from `key`.
  x_best, acc, loss_best, x_adv = _reference_apgd(
      numpy_grad_fn, x, np.asarray(y), x_start, np.float32(eps), num_steps)

  result = jax.jit(lambda x, y: attacks.apgd_run(
      logits_fn, x, y, key=key, epsilon=eps, num_steps=num_steps, loss=loss))(x, y)
  np.testing.assert_array_equal(result.fooled, ~acc)
  np.testing.assert_allclose(result.loss_best, loss_best, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(result.x_best, x_best, atol=1e-6)
  np.testing.assert_allclose(result.x_adv, x_adv, atol=1e-6)


def test_apgd_reaches_at_least_pgd_loss(trained):
  """With the same 11 gradient evaluations, APGD's best CE beats PGD's final CE, for every key."""
  logits_fn, x, y = trained
  eps = 0.1
  apgd_run = jax.jit(lambda key: attacks.apgd_run(
      logits_fn, x, y, key=key, epsilon=eps, num_steps=10))
  pgd_loss = jax.jit(lambda key: losses.cross_entropy(logits_fn(attacks.pgd(
      logits_fn, x, y, key=key, epsilon=eps, step_size=attacks.default_step_size(eps, 11),
      num_steps=11)), y))
  for seed in (12, 13, 14):
    result = apgd_run(jax.random.key(seed))
    np.testing.assert_allclose(
        result.loss_best, losses.cross_entropy(logits_fn(result.x_best), y), rtol=1e-5)
    assert np.mean(result.loss_best) >= np.mean(pgd_loss(jax.random.key(seed)))


# ------------------------------------------------------------------------------------------------
# Pieces.
# ------------------------------------------------------------------------------------------------


def test_input_gradient_is_per_example_whatever_the_batch():
  x, y = _batch(13, batch=4)
  input_gradient = functools.partial(attacks.input_gradient, losses.cross_entropy)
  grad, loss, logits = _jit_call(input_gradient, RANDOM_MLP, x, y)
  grad_0, loss_0, _ = _jit_call(input_gradient, RANDOM_MLP, x[:1], y[:1])
  np.testing.assert_allclose(grad[:1], grad_0, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(loss[:1], loss_0, rtol=1e-6)
  assert grad.shape == x.shape and loss.shape == (4,) and logits.shape == (4, NUM_CLASSES)


def test_step_rules():
  grad = jnp.array([[3.0, -4.0, 0.0], [0.0, 0.0, 0.0]])
  np.testing.assert_allclose(attacks.sign_step(grad, 0.5), [[0.5, -0.5, 0], [0, 0, 0]])
  np.testing.assert_allclose(attacks.normalized_step(grad, jnp.array([10.0, 1.0])),
                             [[6.0, -8.0, 0], [0, 0, 0]], rtol=1e-6)


def test_projections():
  x = jnp.full((2, 3), 0.5)
  x_adv = jnp.array([[0.9, 0.5, 0.2], [0.5, 0.6, 0.5]])
  np.testing.assert_allclose(attacks.project_linf(x_adv, x, 0.2), [[0.7, 0.5, 0.3],
                                                                  [0.5, 0.6, 0.5]], rtol=1e-6)
  # Row 0 (‖δ‖ = 0.5) is scaled onto the sphere of radius 0.25; row 1 (‖δ‖ = 0.1) is inside.
  np.testing.assert_allclose(attacks.project_l2(x_adv, x, 0.25), [[0.7, 0.5, 0.35],
                                                                 [0.5, 0.6, 0.5]], rtol=1e-6)
  np.testing.assert_array_equal(attacks.project_l2(x_adv, x, 0.0), x)
  np.testing.assert_array_equal(attacks.clip_to_box(jnp.array([-0.1, 0.5, 1.2])), [0, 0.5, 1])


def test_random_starts_lie_where_they_should():
  x = jnp.full((16,) + SHAPE, 0.5)
  key, eps = jax.random.key(14), 0.1
  np.testing.assert_allclose(_per_example_norm(attacks.linf_sphere_start(key, x, eps) - x, "linf"),
                             eps, rtol=1e-6)
  np.testing.assert_allclose(_per_example_norm(attacks.l2_sphere_start(key, x, eps) - x, "l2"),
                             eps, rtol=1e-5)
  assert np.all(_per_example_norm(attacks.uniform_linf_start(key, x, eps) - x, "linf") <= eps)
  assert np.all(_per_example_norm(attacks.l2_ball_start(key, x, eps) - x, "l2") <= eps + 1e-7)


def test_apgd_checkpoint_schedule():
  assert attacks.apgd_checkpoints(10) == tuple(range(1, 10))  # Intervals 2, then 1.
  assert attacks.apgd_checkpoints(100) == (21, 40, 56, 69, 79, 86, 92, 98)  # 22, 19, 16, ..., 6.
  assert attacks.apgd_checkpoints(1) == (0,)


def test_rfgsm_moves_each_pixel_by_at_most_the_step_plus_its_start_noise():
  x, y = _batch(15)
  x = x.at[0].set(0.0).at[1].set(1.0)  # Pixels on the box edges, where the start noise leaves it.
  key, start_std = jax.random.key(16), 0.01
  x_adv = _jit_call(attacks.rfgsm, RANDOM_MLP, x, y, key=key)
  x_adv_std = _jit_call(attacks.rfgsm, RANDOM_MLP, x, y, key=key, start_std=start_std)
  assert np.all((x_adv_std >= 0) & (x_adv_std <= 1))
  noise = start_std * jax.random.normal(key, x.shape)  # The same key's start noise.
  assert np.all(np.abs(x_adv_std - x) <= 4 / 255 + np.abs(noise) + 1e-6)
  assert np.max(np.abs(x_adv_std - x)) > 4 / 255  # No ε-ball projection, as in the reference.
  assert np.all(np.abs(x_adv - x) <= 4 / 255 + 0.001 * np.abs(jax.random.normal(key, x.shape))
                + 1e-6)
  # Training treats the perturbed batch as data.
  grad = jax.jit(jax.grad(lambda x: jnp.sum(attacks.rfgsm(RANDOM_MLP, x, y, key=key))))(x)
  np.testing.assert_array_equal(grad, 0)


def test_gaussian_noise():
  x = jnp.full((4,) + SHAPE, 0.5)
  key = jax.random.key(17)
  noisy = attacks.gaussian_noise(x, key=key, std=1.0)
  assert np.all((noisy >= 0) & (noisy <= 1)) and not np.allclose(noisy, x)
  unclipped = attacks.gaussian_noise(x, key=key, std=1.0, clip=False)
  np.testing.assert_allclose(unclipped, x + jax.random.normal(key, x.shape), rtol=1e-6)
  np.testing.assert_array_equal(attacks.gaussian_noise(x, key=key, std=0.0), x)


# ------------------------------------------------------------------------------------------------
# Registry and compilation.
# ------------------------------------------------------------------------------------------------


def test_paper_suite_matches_table_1():
  assert attacks.attack_names() == (
      "clean", "fgsm", "pgd7", "pgd10", "pgd20", "pgd40", "apgd-ce", "apgd-dlr")
  specs = {spec.name: spec for spec in attacks.PAPER_SUITE}
  assert all(spec.epsilon == 8 / 255 for spec in attacks.PAPER_SUITE)
  for name, steps, alpha in (("pgd7", 7, 2.55), ("pgd10", 10, 2), ("pgd20", 20, 1),
                             ("pgd40", 40, 0.5)):
    assert (specs[name].num_steps, specs[name].step_size * 255) == (steps, pytest.approx(alpha))
    assert specs[name].random_start
  assert (specs["apgd-dlr"].num_steps, specs["apgd-dlr"].loss, specs["apgd-dlr"].num_restarts,
          specs["apgd-dlr"].rho) == (10, "dlr", 1, 0.75)
  assert attacks.pgd_step_size(13, 8 / 255) == pytest.approx(2.5 * 8 / 255 / 13)
  assert attacks.get_attack_spec("pgd10", step_size=None).step_size is None


def test_clean_is_identity_and_pgd_sweep_uses_quarter_epsilon():
  x, y = _batch(18)
  np.testing.assert_array_equal(attacks.make_attack("clean")(RANDOM_MLP, x, y), x)
  key = jax.random.key(19)
  sweep = attacks.make_attack(attacks.get_attack_spec("pgd10", step_size=None))
  explicit = _jit_call(attacks.pgd, RANDOM_MLP, x, y, key=key, epsilon=0.2, step_size=0.05,
                       num_steps=10)
  np.testing.assert_allclose(sweep(RANDOM_MLP, x, y, key=key, epsilon=0.2), explicit, atol=1e-6)


@pytest.mark.parametrize("name", ["pgd10", "apgd-dlr"])
def test_attack_compiles_once_for_all_batches_and_epsilons(name):
  attack = attacks.make_attack(name)
  chex.clear_trace_counter()  # `run` below has the same code object in every parametrisation.

  @jax.jit
  @chex.assert_max_traces(n=1)
  def run(x, y, key, epsilon):
    return attack(RANDOM_MLP, x, y, key=key, epsilon=epsilon)

  for seed, eps in ((20, 8 / 255), (21, 4 / 255), (22, 16 / 255)):
    x, y = _batch(seed)
    x_adv = run(x, y, jax.random.key(seed), jnp.float32(eps))
    assert np.all(_per_example_norm(x_adv - x, "linf") <= eps + 1e-6)


PGD_ARGS = dict(epsilon=0.1, step_size=0.01, num_steps=2)

# (call(logits_fn, x, y, key), text the ValueError must contain).
BAD_CALLS = [
    (lambda f, x, y, key: attacks.pgd(f, x, y, key=key, **PGD_ARGS, norm="l3"), "'l3'"),
    (lambda f, x, y, key: attacks.pgd(f, x, y, key=key, **PGD_ARGS, loss="hinge"), "'hinge'"),
    (lambda f, x, y, key: attacks.pgd(f, x, y, key=key, **{**PGD_ARGS, "epsilon": -0.1}), "-0.1"),
    (lambda f, x, y, key: attacks.fgsm(f, x, y, epsilon=2.0), "2.0"),
    (lambda f, x, y, key: attacks.pgd(f, x, y, key=key, **{**PGD_ARGS, "num_steps": 0}),
     "num_steps must be a Python int >= 1 (it is static); got 0"),
    (lambda f, x, y, key: attacks.pgd(f, x, y, key=key, **{**PGD_ARGS, "step_size": 0.0}),
     "step_size must be > 0; got 0.0"),
    (lambda f, x, y, key: attacks.pgd(f, x, y, **PGD_ARGS), "key=None"),
    (lambda f, x, y, key: attacks.apgd(f, x, y, key=key, epsilon=0.1, num_steps=2,
                                       num_restarts=0),
     "num_restarts must be a Python int >= 1 (it is static); got 0"),
    (lambda f, x, y, key: attacks.apgd(f, x, y, key=key, epsilon=1.5, num_steps=2), "1.5"),
    (lambda f, x, y, key: attacks.get_attack_spec("pgd5"),
     "'pgd5'; known attacks: clean, fgsm, pgd7"),
    (lambda f, x, y, key: attacks.get_attack_spec("pgd7", num_steps=0), "got 0"),
    (lambda f, x, y, key: attacks.get_attack_spec("pgd7", stepsize=0.1), "['stepsize']"),
    (lambda f, x, y, key: attacks.get_attack_spec("fgsm", norm="l2"), "['norm'] of FGSMSpec"),
    (lambda f, x, y, key: attacks.parse_attack("cw"), "'cw'"),
    (lambda f, x, y, key: attacks.make_attack("apgd-ce")(f, x, y), "'apgd-ce'"),
    (lambda f, x, y, key: attacks.make_attack("pgd7")(f, x, y, key=key, epsilon=1.01), "1.01"),
]


@pytest.mark.parametrize("call,expected", BAD_CALLS, ids=[expected for _, expected in BAD_CALLS])
def test_bad_inputs_raise_value_error_naming_the_value(call, expected):
  x, y = _batch(23, batch=2)
  with pytest.raises(ValueError, match=re.escape(expected)):
    call(RANDOM_MLP, x, y, jax.random.key(24))

