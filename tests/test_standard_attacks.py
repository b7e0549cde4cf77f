"""APGD-T, Square and the attacks' pass counts: closed forms on linear models, counted passes.

Every model is a few lines of jnp (tiny "images" [B, 4, 4, 3]), so each test compiles in about a
second on CPU.
"""

import re
import threading

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jsnn import attacks
from jsnn import losses

SHAPE = (4, 4, 3)
DIM = int(np.prod(SHAPE))


def _linear_two_class(epsilon, batch=64):
  """A linear two-class model, its batch, and the closed-form L∞ worst case.

  For logits ``x·W`` the worst margin in the ε-ball is ``m(x) − ε·‖w_y − w_other‖₁`` (pixels stay
  in [0.3, 0.7] and ε < 0.3, so the box never binds).
  """
  kx, kw = jax.random.split(jax.random.key(5))
  x = jax.random.uniform(kx, (batch,) + SHAPE, minval=0.3, maxval=0.7)
  w = 0.1 * jax.random.normal(kw, (DIM, 2))
  logits_fn = lambda x: x.reshape(x.shape[0], -1) @ w
  y = jnp.argmax(logits_fn(x), axis=-1).at[::4].set(0)  # Some examples start out misclassified.
  w_diff = np.where(np.asarray(y)[:, None] == 0, w[:, 0] - w[:, 1], w[:, 1] - w[:, 0])
  margin = np.sum(w_diff * np.asarray(x).reshape(batch, -1), axis=1)
  worst_margin = margin - epsilon * np.abs(w_diff).sum(axis=1)
  return logits_fn, x, y, margin, worst_margin


def test_square_reaches_the_closed_form_worst_case_within_its_budget():
  eps, budget = 0.085, 1000
  logits_fn, x, y, margin, worst_margin = _linear_two_class(eps)
  robust = worst_margin > 0
  correct = margin > 0
  assert 10 < robust.sum() < correct.sum() - 10, "the test needs robust and non-robust examples"

  result = jax.jit(lambda x, y, key: attacks.square_run(
      logits_fn, x, y, key=key, epsilon=eps, num_queries=budget))(x, y, jax.random.key(1))
  delta = np.asarray(result.x_adv - x)
  assert np.abs(delta).max() <= eps + 1e-6
  # Robust accuracy equals the closed-form count ...
  np.testing.assert_array_equal(losses.correct(logits_fn(result.x_adv), y), robust)
  # ... and on the robust examples the search found the worst point of the ball itself.
  np.testing.assert_allclose(result.margin[robust], worst_margin[robust], rtol=1e-4)
  # Queries: none on the misclassified, all of the budget on the robust, fewer on the fooled.
  queries = np.asarray(result.queries)
  assert np.all(queries[~correct] == 0) and np.all(queries[robust] == budget)
  fooled = correct & ~robust
  assert np.all((queries[fooled] >= 1) & (queries[fooled] < budget))
  np.testing.assert_array_equal(result.x_adv[~correct], x[~correct])


def test_square_stops_when_every_example_is_fooled_and_leaves_the_rest_clean():
  eps = 0.2   # Every example falls within a few queries.
  logits_fn, x, y, margin, worst_margin = _linear_two_class(eps, batch=16)
  assert not np.any(worst_margin > 0)
  result = jax.jit(lambda x, y, key: attacks.square_run(
      logits_fn, x, y, key=key, epsilon=eps, num_queries=5000))(x, y, jax.random.key(2))
  assert int(result.num_iterations) < 1000   # Far from the 4,999 the budget allows.
  assert not np.any(losses.correct(logits_fn(result.x_adv), y) & (margin > 0))
  assert int(result.queries.max()) == int(result.num_iterations) + 1
  # Masked rows (a padded batch's filler) are left alone and spend nothing.
  mask = jnp.arange(16) < 8
  masked = jax.jit(lambda x, y, key: attacks.square_run(
      logits_fn, x, y, key=key, epsilon=eps, num_queries=5000, mask=mask))(
          x, y, jax.random.key(2))
  np.testing.assert_array_equal(masked.x_adv[8:], x[8:])
  np.testing.assert_array_equal(masked.queries[8:], 0)
  assert int(masked.num_iterations) <= int(result.num_iterations)


def test_square_schedule_follows_the_paper():
  # 10,000 queries: p halves after iterations 10, 50, 200, ... (p = 0.8 up to iteration 10).
  assert attacks.square_p(10, 10000) == 0.8 and attacks.square_p(11, 10000) == 0.4
  assert attacks.square_p(50, 10000) == 0.4 and attacks.square_p(51, 10000) == 0.2
  assert attacks.square_p(9000, 10000) == pytest.approx(0.8 / 512)
  # Other budgets rescale the counter: at 5,000 queries the first halving comes after 5.
  assert attacks.square_p(5, 5000) == 0.8 and attacks.square_p(6, 5000) == 0.4
  sizes = attacks.square_sizes(5000, 32, 32)
  assert sizes.shape == (4999,)
  assert sizes[0] == round(np.sqrt(0.8 * 1024)) == 29   # The first window covers 80 % of 32×32.
  assert sizes[-1] == 1 and np.all(np.diff(sizes) <= 0)


# ------------------------------------------------------------------------------------------------
# APGD-T.
# ------------------------------------------------------------------------------------------------


def test_target_classes_are_the_top_k_others_by_clean_logit():
  logits = jnp.array([[5.0, 1.0, 3.0, 2.0, 0.0],    # Correct: targets 2, 3, 1, 4.
                      [1.0, 4.0, 3.0, 0.0, 2.0]])   # Label 2 is not the top: 1, 4, 0, 3.
  labels = jnp.array([0, 2])
  np.testing.assert_array_equal(attacks.target_classes(logits, labels, 4),
                                [[2, 3, 1, 4], [1, 4, 0, 3]])
  np.testing.assert_array_equal(attacks.target_classes(logits, labels, 2), [[2, 3], [1, 4]])
  with pytest.raises(ValueError, match="at most the number of classes minus one \\(4\\); got 5"):
    attacks.target_classes(logits, labels, 5)


def _decoy_model(gain):
  """Label 0; class 1 is the clean runner-up but constant (no perturbation moves it); class 2,
  third by clean logit, rises by ``gain·mean(δ)``: only a run that targets class 2 can fool."""

  def logits_fn(x):
    s = gain * jnp.mean(x.reshape(x.shape[0], -1) - 0.5, axis=1)
    ones = jnp.ones_like(s)
    return jnp.stack([1.0 * ones, 0.9 * ones, 0.5 + s, 0.0 * ones], axis=1)

  return logits_fn


def test_apgd_t_tries_targets_in_order_and_keeps_the_worst_case():
  eps = 0.1
  logits_fn = _decoy_model(gain=10.0)   # Class 2 can reach 0.5 + 10·ε = 1.5 > 1.
  x = jnp.full((4,) + SHAPE, 0.5)
  y = jnp.zeros(4, jnp.int32)
  np.testing.assert_array_equal(attacks.target_classes(logits_fn(x), y, 3), [[1, 2, 3]] * 4)

  def run(num_targets):
    return jax.jit(lambda x, y, key: attacks.apgd_targeted(
        logits_fn, x, y, key=key, epsilon=eps, num_steps=5, num_targets=num_targets))(
            x, y, jax.random.key(3))

  # One target: class 1, which no perturbation moves; the targeted DLR then pushes class 2 *down*.
  np.testing.assert_array_equal(run(1), x)
  # Two targets: the second run (class 2) fools every example, as class 2.
  np.testing.assert_array_equal(jnp.argmax(logits_fn(run(2)), axis=-1), [2] * 4)
  assert np.abs(np.asarray(run(2) - x)).max() <= eps + 1e-6


def test_apgd_t_on_the_standard_cascade_spec_and_bad_inputs():
  cascade = attacks.standard_cascade()
  assert [s.name for s in cascade] == ["apgd-ce100", "apgd-t100", "square5000"]
  assert [(s.kind, s.num_steps, s.loss) for s in cascade[:2]] == [
      ("apgd", 100, "ce"), ("apgd-t", 100, "dlr")]
  assert cascade[1].num_targets == 9
  assert cascade[2].num_queries == 5000 and all(s.needs_key for s in cascade)
  x = jnp.full((2,) + SHAPE, 0.5)
  y = jnp.zeros(2, jnp.int32)
  with pytest.raises(ValueError, match=re.escape("num_queries must be a Python int >= 1")):
    attacks.SquareSpec(name="square0", num_queries=0)
  with pytest.raises(ValueError, match=re.escape("num_queries must be a Python int >= 1")):
    attacks.square(_decoy_model(1.0), x, y, key=jax.random.key(0), epsilon=0.1, num_queries=0)
  with pytest.raises(ValueError, match="'hinge'"):
    attacks.apgd_targeted(_decoy_model(1.0), x, y, key=jax.random.key(0), epsilon=0.1,
                          num_steps=2, loss="hinge")
  with pytest.raises(TypeError, match="norm"):
    attacks.SquareSpec(name="sq", norm="l2")   # Square is L∞ only: it has no norm to set
  with pytest.raises(ValueError, match="at least 4 classes"):
    two = lambda x: jnp.zeros((x.shape[0], 3))
    attacks.apgd_targeted(two, x, y, key=jax.random.key(0), epsilon=0.1, num_steps=2,
                          num_targets=2)


# ------------------------------------------------------------------------------------------------
# Pass counts: what the attack reports equals what ran.
# ------------------------------------------------------------------------------------------------


def _counted_linear_model(w):
  """Logits ``x·W`` that count, per row of the batch, the forward and backward passes they run."""
  counts = {"forward": 0, "backward": 0}
  # XLA:CPU may run independent callbacks on several threads at once, and ``+=`` on a dict entry
  # is a read-modify-write that a thread switch can split: without the lock a busy machine loses
  # counts.
  lock = threading.Lock()

  def add(kind, rows):
    with lock:
      counts[kind] += int(rows)

  def forward(x):
    jax.debug.callback(add, "forward", x.shape[0])
    return x.reshape(x.shape[0], -1) @ w

  @jax.custom_vjp
  def logits_fn(x):
    return forward(x)

  def fwd(x):
    return forward(x), x.shape

  def bwd(shape, g):
    jax.debug.callback(add, "backward", shape[0])
    return ((g @ w.T).reshape(shape),)

  logits_fn.defvjp(fwd, bwd)
  return logits_fn, counts


@pytest.mark.parametrize("spec", [
    attacks.CleanSpec(name="clean"),
    attacks.FGSMSpec(name="fgsm"),
    attacks.PGDSpec(name="pgd3", num_steps=3, random_start=True),
    attacks.APGDSpec(name="apgd-dlr3", num_steps=3, loss="dlr", num_restarts=2),
    attacks.APGDTSpec(name="apgd-t3", num_steps=3, loss="dlr", num_targets=2),
    attacks.SquareSpec(name="square50", num_queries=50, epsilon=0.02),
], ids=lambda s: s.name)
def test_reported_passes_equal_the_passes_that_ran(spec):
  batch = 6
  w = 0.3 * jax.random.normal(jax.random.key(7), (DIM, 5))
  logits_fn, counts = _counted_linear_model(w)
  x = jax.random.uniform(jax.random.key(8), (batch,) + SHAPE, minval=0.2, maxval=0.8)
  y = jnp.argmax(x.reshape(batch, -1) @ w, axis=-1).at[0].set(0)
  attack = attacks.make_attack(spec, with_stats=True)
  x_adv, stats = jax.jit(lambda x, y, key: attack(logits_fn, x, y, key=key))(
      x, y, jax.random.key(9))
  jax.effects_barrier()
  assert x_adv.shape == x.shape
  for field in ("forward", "backward"):
    per_row = np.asarray(getattr(stats, field))
    assert np.all(per_row == per_row[0]), "fixed shapes: every row runs every pass"
    assert counts[field] == per_row.sum(), field
  if spec.kind == "square":
    queries = np.asarray(stats.queries)
    assert np.all(queries <= spec.num_queries) and queries.max() >= 1
    assert stats.forward[0] <= attacks.attack_passes(spec)[0]
  else:
    assert tuple(int(v) for v in (stats.forward[0], stats.backward[0])) == \
        attacks.attack_passes(spec)
    np.testing.assert_array_equal(stats.queries, 0)


@pytest.mark.parametrize("name", ["apgd-t", "square"])
def test_new_attacks_compile_once_for_all_batches_and_epsilons(name):
  w = 0.3 * jax.random.normal(jax.random.key(10), (DIM, 5))
  logits_fn = lambda x: x.reshape(x.shape[0], -1) @ w
  spec = (attacks.APGDTSpec(name="t", num_steps=2, loss="dlr", num_targets=2)
          if name == "apgd-t" else attacks.SquareSpec(name="s", num_queries=20))
  attack = attacks.make_attack(spec)
  chex.clear_trace_counter()

  @jax.jit
  @chex.assert_max_traces(n=1)
  def run(x, y, key, epsilon):
    return attack(logits_fn, x, y, key=key, epsilon=epsilon)

  for seed, eps in ((11, 8 / 255), (12, 4 / 255), (13, 16 / 255)):
    x = jax.random.uniform(jax.random.key(seed), (4,) + SHAPE)
    y = jnp.argmax(logits_fn(x), axis=-1)
    x_adv = run(x, y, jax.random.key(seed), jnp.float32(eps))
    assert np.abs(np.asarray(x_adv - x)).max() <= eps + 1e-6
