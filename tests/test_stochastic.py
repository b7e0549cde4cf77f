"""Stochastic models and their evaluation: Poisson encoding, EOT, majority votes, transfer attacks.

The pure pieces are checked against closed forms; the evaluation end to end on two tiny runs
(VGG5 at 1/8 width, T = 2, two training steps): a Poisson-encoded one and a direct one trained
with another surrogate, the source of the transfer attacks.
"""

import json
import os
import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import smoke as smoke_config
import helpers
from jsnn import attacks, evaluation, models, parallel, spiking, trainer
from jsnn.attacks import eot


# -------------------------------------------------------------------------------------------------
# Pure pieces
# -------------------------------------------------------------------------------------------------


def test_poisson_encoding_rates_extremes_and_straight_through_gradient(key):
  p = jnp.array([[0.0, 0.25, 0.5, 1.0]])
  steps = 4000
  spikes = spiking.poisson_encoding(key, p, steps)
  assert spikes.shape == (steps, 1, 4)
  assert set(np.unique(np.asarray(spikes)).tolist()) <= {0.0, 1.0}
  rate = np.asarray(jnp.mean(spikes, axis=0))[0]
  # Bernoulli(p) means over 4000 draws: within 5 standard errors (≤ 0.04).
  np.testing.assert_allclose(rate, [0.0, 0.25, 0.5, 1.0], atol=5 * np.sqrt(0.25 / steps))
  assert rate[0] == 0.0 and rate[3] == 1.0
  # The backward pass is that of E[s_t] = p: d(Σ_t s_t)/dp = T for every pixel.
  grad = jax.grad(lambda q: jnp.sum(spiking.poisson_encoding(key, q, 8)))(p)
  np.testing.assert_array_equal(np.asarray(grad), np.full((1, 4), 8.0))
  with pytest.raises(ValueError, match="time_steps must be >= 1, got 0"):
    spiking.poisson_encoding(key, p, 0)


def _coin_model(probability_first: float):
  """Per draw, logits ``a`` with probability ``probability_first`` and ``b`` otherwise."""
  a, b = jnp.array([2.0, 0.0, -1.0]), jnp.array([-1.0, 1.0, 0.5])

  def fn(x, key):
    first = jax.random.bernoulli(key, probability_first, (x.shape[0], 1))
    return jnp.where(first, a, b) + 0.0 * jnp.sum(x, axis=1, keepdims=True)

  return fn, a, b


def test_expected_logits_is_the_log_of_the_mean_softmax(key):
  fn, a, b = _coin_model(0.5)
  x = jnp.zeros((2, 5))
  got = eot.expected_logits(fn, key, 4000)(x)
  want = jnp.log(0.5 * jax.nn.softmax(a) + 0.5 * jax.nn.softmax(b))
  # A mean of 4000 coin flips: its standard error is 0.008; softmax weights move the log less.
  np.testing.assert_allclose(np.asarray(got), np.broadcast_to(want, (2, 3)), atol=0.04)

  # One draw of a deterministic model: its log-softmax, which CE and DLR cannot tell from logits.
  logits = jnp.array([[1.0, 3.0, -2.0]])
  one = eot.expected_logits(lambda x, k: logits, key, 1)(x[:1])
  np.testing.assert_allclose(np.asarray(one), np.asarray(jax.nn.log_softmax(logits)), rtol=1e-6)


def test_each_new_point_gets_fresh_draws_and_the_same_point_the_same(key):
  noise = lambda x, k: jax.random.normal(k, (x.shape[0], 3))
  fn = eot.expected_logits(noise, key, 2)
  x = jnp.zeros((2, 4))
  np.testing.assert_array_equal(np.asarray(fn(x)), np.asarray(fn(x)))
  assert not np.allclose(np.asarray(fn(x)), np.asarray(fn(x.at[0, 1].set(0.5))))
  # Moving a value to another pixel is another point.
  assert not np.allclose(np.asarray(fn(x.at[0, 0].set(0.5))), np.asarray(fn(x.at[0, 1].set(0.5))))


def test_majority_vote_closed_forms(key):
  # Draws that predict class 1 with probability 0.8: 101 votes all but surely (P ≈ 1e-10) say 1.
  fn, _, _ = _coin_model(0.2)
  assert np.asarray(eot.majority_vote(fn, key, jnp.zeros((3, 2)), 101)).tolist() == [1, 1, 1]
  # Against a plain loop over the same draws: the most frequent class, ties to the lower one.
  noise = lambda x, k: jax.random.normal(k, (x.shape[0], 4))
  x = jnp.zeros((16, 2))
  per_draw = np.stack([np.argmax(noise(x, k), -1) for k in jax.random.split(key, 7)])
  want = [np.argmax(np.bincount(per_draw[:, i], minlength=4)) for i in range(16)]
  assert np.asarray(eot.majority_vote(noise, key, x, 7)).tolist() == want


def test_bad_draw_counts():
  for bad in (0, -1, 2.0, True):
    with pytest.raises(ValueError, match="number of EOT draws, must be an integer >= 1"):
      eot.check_num_draws(bad)


def test_a_poisson_model_needs_a_key_and_draws_with_it(key):
  model = models.create_model("vgg5", num_classes=10, width=0.125, head_width=16,
                              neuron=models.NeuronSpec(time_steps=2), encoding="poisson")
  assert models.is_stochastic(model)
  variables = models.init_model(model, key)
  x = jax.random.uniform(key, (3, 32, 32, 3))
  with pytest.raises(ValueError, match="'poisson' input encoding draws random spikes"):
    models.apply_model(model, variables, x, train=False)
  k1, k2 = jax.random.split(key)
  # The first layer's spikes (an untrained tiny head may not spike at all, so not the logits).
  out = lambda k: np.asarray(models.apply_model(model, variables, x, train=False, rng=k,
                                                capture=[models.SPIKES])[2][models.SPIKES][0])
  np.testing.assert_array_equal(out(k1), out(k1))
  assert out(k1).any() and not np.array_equal(out(k1), out(k2))
  # The direct model ignores a key, and its parameters are those it always had.
  direct = models.create_model("vgg5", num_classes=10, width=0.125, head_width=16,
                               neuron=models.NeuronSpec(time_steps=2))
  assert not models.is_stochastic(direct)
  dv = models.init_model(direct, key)
  np.testing.assert_array_equal(
      np.asarray(models.apply_model(direct, dv, x, train=False, rng=k1)[0]),
      np.asarray(models.apply_model(direct, dv, x, train=False)[0]))
  with pytest.raises(ValueError, match="unknown encoding 'rate'"):
    models.create_model("vgg5", num_classes=10, encoding="rate")


def test_eot_attack_step_traces_once_across_batches_and_epsilons():
  model = models.create_model("vgg5", num_classes=10, width=0.125, head_width=8,
                              neuron=models.NeuronSpec(time_steps=2), encoding="poisson")
  variables = models.init_model(model, jax.random.key(0))
  spec = attacks.PGDSpec(name="pgd2", num_steps=2, random_start=True)
  chex.clear_trace_counter()
  step = chex.assert_max_traces(evaluation.make_attack_step(spec, model, eot_draws=3), n=1)
  mesh = parallel.make_mesh()
  jitted = evaluation.jit_step(step, mesh)
  images = np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
  labels = np.arange(10, dtype=np.int32)
  variables = jax.device_put(variables, parallel.replicated(mesh))
  for epsilon in (2 / 255, 8 / 255):   # Three batches each; a second trace would raise.
    out = evaluation.run_batches(jitted, variables, images, labels, batch_size=4, mesh=mesh,
                                 key=jax.random.key(1), epsilon=epsilon)
    assert out.shape == (10,) and out.dtype == bool


# -------------------------------------------------------------------------------------------------
# Training and evaluation end to end
# -------------------------------------------------------------------------------------------------

NUM_EXAMPLES = 6
BATCH_SIZE = 4


def _train(tmp_path_factory, name, **model):
  config = smoke_config.get_config()
  config.model.time_steps = 2
  config.model.head_width = 16
  for k, v in model.items():
    config.model[k] = v
  config.training.mode = "at"      # RFGSM and MS-MPPD also see the encoding key.
  config.training.steps_per_epoch = 2
  config.data.train_size = 64
  config.logging.progress_bar = False
  workdir = str(tmp_path_factory.mktemp(name))
  summary = trainer.train_and_evaluate(config, workdir)
  return workdir, summary


@pytest.fixture(scope="module")
def poisson_run(tmp_path_factory):
  return _train(tmp_path_factory, "poisson", encoding="poisson")


@pytest.fixture(scope="module")
def sigmoid_run(tmp_path_factory):
  return _train(tmp_path_factory, "sigmoid", surrogate="sigmoid", surrogate_width=4.0)


def _copy(run, tmp_path):
  path = str(tmp_path / "run")
  shutil.copytree(run[0], path)
  return path


def _eval_config(attack_names="clean,fgsm", **overrides):
  # An override may replace the module's example count or batch size.
  return helpers.eval_config(attack_names, **{"num_examples": NUM_EXAMPLES,
                                              "batch_size": BATCH_SIZE, **overrides})


def _read(workdir):
  with open(os.path.join(workdir, evaluation.RESULTS_FILE)) as f:
    return json.load(f)


def test_poisson_model_trains_and_eot_evaluation_is_recorded_and_counted(poisson_run, tmp_path):
  workdir = _copy(poisson_run, tmp_path)
  summary = poisson_run[1]
  assert np.isfinite(summary["loss"]) and np.isfinite(summary["ms_mppd"])

  # Without EOT: a loud warning, printed and recorded.
  one = evaluation.evaluate_checkpoint(_eval_config(), workdir)
  assert "eval.eot_draws is 1" in one["table"]
  results = _read(workdir)
  assert results["stochastic"] is True and results["encoding"] == "poisson"
  assert any("overstates robustness" in w for w in results["setup_warnings"])

  # With 3 draws: another setting (recomputed), no warning, passes counted per draw.
  three = evaluation.evaluate_checkpoint(_eval_config(eot_draws=3), workdir)
  assert sorted(three["computed"]) == ["clean", "fgsm"]
  results = _read(workdir)
  assert results["eot_draws"] == 3 and results["setup_warnings"] == []
  assert "majority over 3 draws" in three["table"]
  fwd, bwd = evaluation.passes_per_image(attacks.get_attack_spec("fgsm"))
  fgsm = results["attacks"]["fgsm"]
  assert (fgsm["forward_passes_per_image"], fgsm["backward_passes_per_image"]) == (3 * fwd, 3 * bwd)
  assert results["attacks"]["clean"]["forward_passes_per_image"] == 3
  assert 0 <= fgsm["correct"] <= NUM_EXAMPLES


def test_eot_on_a_deterministic_model_is_ignored_with_a_note(sigmoid_run, tmp_path):
  workdir = _copy(sigmoid_run, tmp_path)
  out = evaluation.evaluate_checkpoint(_eval_config("clean", eot_draws=4), workdir)
  results = _read(workdir)
  assert results["stochastic"] is False and results["eot_draws"] is None
  assert "eot_draws = 4 ignored" in out["table"]
  assert results["attacks"]["clean"]["forward_passes_per_image"] == 1


@pytest.mark.parametrize("value", [0, -2])
def test_bad_eot_draws_raise_and_leave_results_untouched(poisson_run, tmp_path, value):
  workdir = _copy(poisson_run, tmp_path)
  with pytest.raises(ValueError, match=f"eval.eot_draws.*got {value}"):
    evaluation.evaluate_checkpoint(_eval_config(eot_draws=value), workdir)
  assert not os.path.exists(os.path.join(workdir, evaluation.RESULTS_FILE))


def test_transfer_attacks_from_another_surrogate_join_the_worst_case(poisson_run, sigmoid_run,
                                                                    tmp_path):
  target = _copy(poisson_run, tmp_path)
  out = evaluation.evaluate_checkpoint(
      _eval_config("clean,fgsm,pgd7", eot_draws=2, transfer_from=sigmoid_run[0]), target)
  results = _read(target)
  for name in ("fgsm@transfer", "pgd7@transfer"):
    entry = results["attacks"][name]
    assert entry["transfer_from"]["surrogate"] == "sigmoid"
    assert entry["transfer_from"]["workdir"] == os.path.abspath(sigmoid_run[0])
    # The source is deterministic: its passes count once, the target's votes twice.
    fwd, bwd = attacks.attack_passes(attacks.get_attack_spec(name.split("@")[0]))
    assert (entry["forward_passes_per_image"], entry["backward_passes_per_image"]) == (fwd + 2, bwd)
    assert results["worst_case"]["correct"] <= entry["correct"]
  masking = results["masking"]["transfer_vs_white_box"]
  assert masking["white_box"] == ["fgsm", "pgd7"]
  assert 0 <= masking["count"] <= NUM_EXAMPLES
  assert "transfer from" in out["table"]
  assert "transfer-vs-white-box" in [c.name for c in out["checks"]]

  with pytest.raises(ValueError, match="is the evaluated workdir itself"):
    evaluation.evaluate_checkpoint(_eval_config(transfer_from=target), target)
  with pytest.raises(ValueError, match="is not a directory"):
    evaluation.evaluate_checkpoint(_eval_config(transfer_from=str(tmp_path / "nope")), target)
