"""Randomized smoothing (Cohen et al., 2019): the Clopper–Pearson bound against known values, the
certified radius of a linear classifier against its closed form σ·Φ⁻¹(p_A), abstention, PREDICT,
and the bad settings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from configs import default as default_config
from jsnn import evaluation
from jsnn.evaluation import certification


def test_clopper_pearson_against_known_values():
  # k = n: the one-sided bound solves p^n = α, so it is α^(1/n).
  np.testing.assert_allclose(evaluation.clopper_pearson_lower(100, 100, 0.001), 0.001 ** 0.01,
                             rtol=1e-10)
  assert evaluation.clopper_pearson_lower(0, 50, 0.05) == 0.0
  # One-sided at 1 − α is the two-sided exact interval at 1 − 2α.
  interval = stats.binomtest(70, 100).proportion_ci(confidence_level=0.9, method="exact")
  np.testing.assert_allclose(evaluation.clopper_pearson_lower(70, 100, 0.05), interval.low,
                             rtol=1e-10)
  # Cohen et al.'s running example scale: 990 of 1000 at α = 0.001.
  np.testing.assert_allclose(evaluation.clopper_pearson_lower(990, 1000, 0.001),
                             stats.beta.ppf(0.001, 990, 11), rtol=1e-12)


SIGMA = 0.25


def _linear_logits(x):
  """Two classes split by the hyperplane x₀ = 0.5 (unit normal): the distance to it is
  |x₀ − 0.5|, and under N(0, σ²I) noise p_A = Φ(|x₀ − 0.5|/σ)."""
  score = x[:, 0] - 0.5
  return jnp.stack([-score, score], axis=1)


def test_linear_classifier_radius_and_abstention(key):
  offsets = np.array([0.3, -0.2, 0.1, 0.0, 0.02])     # x₀ − 0.5
  x = jnp.asarray(np.stack([0.5 + offsets, np.full(5, 0.5), np.full(5, 0.5)], axis=1),
                  jnp.float32)
  n0, n, alpha = 100, 20000, 0.001
  count = jax.jit(lambda k, num: certification.class_counts(
      _linear_logits, x, k, sigma=SIGMA, num_draws=num, draws_per_pass=100, num_classes=2),
      static_argnums=1)
  select_key, estimate_key = jax.random.split(key)
  select, estimate = count(select_key, n0), count(estimate_key, n)
  assert np.all(np.asarray(estimate).sum(axis=1) == n)
  prediction, radius, p_lower = evaluation.certify_from_counts(select, estimate, sigma=SIGMA,
                                                               alpha=alpha)
  # The radius is σ·Φ⁻¹ of the bound; the bound lies below p_A, and at N = 20 000 close to it.
  p_true = stats.norm.cdf(np.abs(offsets) / SIGMA)
  certified = prediction != certification.ABSTAIN
  np.testing.assert_allclose(radius[certified], SIGMA * stats.norm.ppf(p_lower[certified]),
                             rtol=1e-12)
  assert np.all(p_lower[certified] <= p_true[certified] + 1e-9)
  # The closed form is the distance to the hyperplane, |x₀ − 0.5| = σ·Φ⁻¹(p_A).
  np.testing.assert_allclose(radius[:3], np.abs(offsets[:3]), atol=0.03)
  np.testing.assert_array_equal(prediction[:3], [1, 0, 1])
  # On the boundary p_A = ½: the bound is below ½, CERTIFY abstains (and PREDICT too).
  assert prediction[3] == certification.ABSTAIN and p_lower[3] < 0.5 and np.isnan(radius[3])
  assert evaluation.predict_from_counts(estimate, alpha=alpha)[3] == certification.ABSTAIN
  np.testing.assert_array_equal(evaluation.predict_from_counts(estimate, alpha=alpha)[:3],
                                [1, 0, 1])


def test_abstains_exactly_when_the_bound_is_at_most_a_half():
  estimate = np.array([[520, 480], [600, 400], [1000, 0]])
  select = np.array([[10, 0], [10, 0], [10, 0]])
  prediction, radius, p_lower = evaluation.certify_from_counts(select, estimate, sigma=0.5,
                                                               alpha=0.001)
  assert p_lower[0] < 0.5 and prediction[0] == certification.ABSTAIN
  assert p_lower[1] > 0.5 and prediction[1] == 0
  np.testing.assert_allclose(radius[2], 0.5 * stats.norm.ppf(0.001 ** 0.001), rtol=1e-10)
  accuracy = certification.certified_accuracy(prediction, radius, np.array([0, 0, 1]))
  assert accuracy["0"] == pytest.approx(1 / 3) and accuracy["1"] == 0.0


@pytest.mark.parametrize("key_name,value,named", [
    ("certify_sigma", 0.0, "eval.certify_sigma"),
    ("certify_sigma", -0.25, "-0.25"),
    ("certify_alpha", 1.0, "eval.certify_alpha must lie in (0, 1), got 1.0"),
    ("certify_alpha", 0.0, "got 0.0"),
    ("certify_n0", 2000, "eval.certify_n0 (2000) must not exceed eval.certify_n (1000)"),
    ("certify_n", 1005, "multiple of eval.certify_draws_per_pass"),
])
def test_bad_certify_settings(key_name, value, named):
  config = default_config.get_config()
  config.eval[key_name] = value
  with pytest.raises(ValueError) as info:
    evaluation.settings_from_config(config)
  assert named in str(info.value)


@pytest.fixture(scope="module")
def tiny_workdir(tmp_path_factory):
  from jsnn import trainer
  import helpers
  config = helpers.tiny_train_config("gaussian", gaussian_std=0.25, epochs=1)
  workdir = str(tmp_path_factory.mktemp("certify"))
  trainer.train_and_evaluate(config, workdir)
  return workdir


def test_certify_mode_writes_its_files_and_resumes(tiny_workdir):
  import json
  import os
  config = default_config.get_config()
  config.eval.update(num_examples=6, batch_size=4, progress_bar=False, certify_n0=10,
                     certify_n=20, certify_draws_per_pass=10)
  first = evaluation.certify_checkpoint(config, tiny_workdir)
  assert first["computed"] == [0, 1] and first["reused"] == []
  with open(os.path.join(tiny_workdir, evaluation.CERTIFY_FILE)) as f:
    results = json.load(f)
  assert results["complete"] and results["total"] == 6 and len(results["radius"]) == 6
  assert set(results["certified_accuracy"]) == {"0", "0.25", "0.5", "0.75", "1"}
  assert results["draws_per_image"] == 30 and results["forward_passes_per_image"] == 3
  assert results["training_gaussian_std"] == 0.25 and results["sigma"] == 0.25
  assert os.path.getsize(os.path.join(tiny_workdir, evaluation.CERTIFY_PLOT)) > 0
  again = evaluation.certify_checkpoint(config, tiny_workdir)
  assert again["computed"] == [] and again["reused"] == [0, 1]
  assert again["results"]["radius"] == results["radius"]
