"""The training objective, RAT regulariser and optimiser against hand computations."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jsnn import losses, models, rat, train_step


@pytest.fixture(scope="module")
def tiny():
  # T = 4 so that the last hidden layer receives spikes at initialisation.
  model = models.create_model("vgg5", num_classes=10, neuron=models.NeuronSpec(time_steps=4),
                              width=0.125, head_width=16)
  variables = models.init_model(model, jax.random.key(0))
  images = jax.random.uniform(jax.random.key(1), (4, 32, 32, 3))
  labels = jnp.array([0, 1, 2, 3])
  return model, variables, images, labels


def _loss(settings, tiny, perturbed):
  model, variables, images, labels = tiny
  loss, (_, metrics) = train_step.loss_fn(variables["params"], variables["batch_stats"], model,
                                          settings, images, labels, perturbed)
  return loss, metrics


def test_natural_loss_is_cross_entropy(tiny):
  model, variables, images, labels = tiny
  loss, _ = _loss(train_step.StepSettings(mode="natural"), tiny, None)
  logits = models.apply_model(model, variables, images, train=True)[0]
  np.testing.assert_allclose(loss, jnp.mean(losses.cross_entropy(logits, labels)), rtol=1e-6)


def test_chi_one_and_rho_zero_reduce_to_natural(tiny):
  natural, _ = _loss(train_step.StepSettings(mode="natural"), tiny, None)
  noisy = tiny[2] + 0.2 * jax.random.normal(jax.random.key(9), tiny[2].shape)
  mixed, metrics = _loss(train_step.StepSettings(mode="gaussian", chi=1.0, rho=0.0), tiny, noisy)
  np.testing.assert_allclose(mixed, natural, rtol=1e-6)
  assert metrics["ms_mppd"] > 0    # the perturbed branch did run


@pytest.mark.parametrize("distance", ["ms_mppd", "tasad", "std"])
def test_distance_is_zero_without_perturbation(tiny, distance):
  loss, metrics = _loss(train_step.StepSettings(mode="at", distance=distance), tiny, tiny[2])
  assert metrics[distance] == 0.0 and metrics["ms_mppd"] == 0.0
  np.testing.assert_allclose(loss, metrics["ce_clean"], rtol=1e-6)


def test_ms_mppd_term_is_rho_times_the_mean_square_perturbation(tiny):
  model, variables, images, labels = tiny
  perturbed = images + 0.2 * jax.random.normal(jax.random.key(9), images.shape)
  loss, metrics = _loss(train_step.StepSettings(mode="gaussian", rho=2.0), tiny, perturbed)
  _, stats, clean = models.apply_model(model, variables, images, train=True,
                                       capture=[models.LAST_SPIKING_LAYER])
  _, _, pert = models.apply_model(model, {"params": variables["params"], "batch_stats": stats},
                                  perturbed, train=True, capture=[models.LAST_SPIKING_LAYER])
  delta = (clean[models.LAST_SPIKING_LAYER]["currents"]
           - pert[models.LAST_SPIKING_LAYER]["currents"])
  eps, e = [], jnp.zeros_like(delta[0])
  for t in range(delta.shape[0]):
    e = 0.99 * e + delta[t]
    eps.append(e)
  expected = jnp.mean(jnp.stack(eps) ** 2)
  assert expected > 0
  np.testing.assert_allclose(metrics["ms_mppd"], expected, rtol=1e-5)
  np.testing.assert_allclose(loss, metrics["ce"] + 2.0 * expected, rtol=1e-6)


def test_clean_branch_is_constant_in_the_distance(tiny):
  """d/dθ of MS-MPPD flows only through the perturbed branch (spec §3.1)."""
  model, variables, images, labels = tiny
  settings = train_step.StepSettings(mode="gaussian", chi=0.5, rho=1.0)

  def distance_only(params, clean_params):
    _, stats, clean = models.apply_model(
        model, {"params": clean_params, "batch_stats": variables["batch_stats"]}, images,
        train=True, capture=[models.LAST_SPIKING_LAYER])
    _, _, pert = models.apply_model(model, {"params": params, "batch_stats": stats}, images + 0.05,
                                    train=True, capture=[models.LAST_SPIKING_LAYER])
    return train_step.distance_term(settings, clean[models.LAST_SPIKING_LAYER],
                                     pert[models.LAST_SPIKING_LAYER])

  grads = jax.grad(distance_only, argnums=1)(variables["params"], variables["params"])
  assert all(jnp.all(g == 0) for g in jax.tree_util.tree_leaves(grads))


def test_gaussian_perturbation_is_unclipped_noise(tiny):
  model, variables, images, labels = tiny
  settings = train_step.StepSettings(mode="gaussian", gaussian_std=8 / 255)
  key = jax.random.key(3)
  x = train_step.perturb(settings, model, variables, images, labels, key)
  np.testing.assert_allclose(x - images, 8 / 255 * jax.random.normal(key, images.shape), atol=1e-6)


def test_rfgsm_perturbation_stays_in_the_box_and_moves_at_most_one_step(tiny):
  model, variables, images, labels = tiny
  settings = train_step.StepSettings(mode="at")
  key = jax.random.key(4)
  x = train_step.perturb(settings, model, variables, images, labels, key)
  assert jnp.all((x >= 0) & (x <= 1))
  noise = 0.001 * jnp.abs(jax.random.normal(key, images.shape))
  assert jnp.all(jnp.abs(x - images) <= 4 / 255 + noise + 1e-6)


def test_rat_retraction_matches_the_formula():
  w = jax.random.normal(jax.random.key(0), (5, 3))          # dense kernel [in, out]
  beta = 0.01
  m = np.asarray(w).T                                       # rows = outputs
  expected = ((1 + beta) * m - beta * m @ m.T @ m).T
  np.testing.assert_allclose(rat.retract_kernel(w, beta), expected, rtol=1e-5)
  conv = jax.random.normal(jax.random.key(1), (3, 3, 2, 4))
  m = np.asarray(conv).reshape(-1, 4).T
  expected = ((1 + beta) * m - beta * m @ m.T @ m).T.reshape(3, 3, 2, 4)
  np.testing.assert_allclose(rat.retract_kernel(conv, beta), expected, rtol=1e-5)


def test_rat_samples_30_percent_of_rows_of_wide_dense_layers():
  w = jax.random.normal(jax.random.key(0), (8, 300)) * 0.1   # 300 output rows ≥ 200
  out = rat.retract_kernel(w, 0.1, key=jax.random.key(1), sample_rows=True)
  changed = np.any(np.asarray(out != w), axis=0)
  assert changed.sum() == int(0.3 * 300)
  # A narrow dense layer and every conv update every row.
  narrow = w[:, :10]
  assert np.all(np.any(np.asarray(rat.retract_kernel(narrow, 0.1, key=jax.random.key(1),
                                                      sample_rows=True) != narrow), axis=0))


@pytest.mark.parametrize("v,expected", [
    ([0.5, 0.5], [0.5, 0.5]), ([2.0, 0.0], [1.0, 0.0]), ([0.6, 0.6], [0.5, 0.5]),
    ([0.9, -0.4], [1.0, 0.0]), ([0.2, 0.1, 0.1], [0.4, 0.3, 0.3]),
])
def test_simplex_projection(v, expected):
  out = rat.project_to_simplex(jnp.array(v))
  np.testing.assert_allclose(out, expected, atol=1e-6)
  assert jnp.all(out >= 0) and abs(float(jnp.sum(out)) - 1) < 1e-6


def test_apply_rat_touches_kernels_and_convex_weights_only():
  params = {"Conv_0": {"kernel": jnp.ones((3, 3, 1, 2)) * 0.1, "bias": jnp.ones(2)},
            "Block": {"convex_combination": jnp.array([0.9, 0.7])},
            "Neuron": {"dlif_factors": jnp.ones(4)}}
  out = rat.apply_rat(params, 0.01, jax.random.key(0))
  assert not jnp.allclose(out["Conv_0"]["kernel"], params["Conv_0"]["kernel"])
  np.testing.assert_array_equal(out["Conv_0"]["bias"], params["Conv_0"]["bias"])
  np.testing.assert_allclose(out["Block"]["convex_combination"], [0.6, 0.4], atol=1e-6)
  np.testing.assert_array_equal(out["Neuron"]["dlif_factors"], params["Neuron"]["dlif_factors"])


def test_sgd_with_coupled_weight_decay_matches_a_hand_computation():
  lr, wd, mom, epochs, spe = 0.1, 5e-4, 0.9, 4, 2
  tx, schedule = train_step.make_optimizer(learning_rate=lr, epochs=epochs, steps_per_epoch=spe,
                                           momentum=mom, weight_decay=wd)
  p = jnp.array([1.0, -2.0])
  grads = [jnp.array([0.5, 0.25]), jnp.array([-1.0, 0.5]), jnp.array([0.1, 0.1])]
  state = tx.init(p)
  hand_p, buf = np.array([1.0, -2.0]), np.zeros(2)
  for step, g in enumerate(grads):
    updates, state = tx.update(g, state, p)
    p = optax.apply_updates(p, updates)
    # PyTorch SGD: d = g + wd·p; buf = mom·buf + d (buf = d at the first step); p -= lr_e·buf.
    epoch = step // spe
    lr_e = 0.5 * lr * (1 + np.cos(np.pi * epoch / epochs))
    d = np.asarray(g) + wd * hand_p
    buf = d if step == 0 else mom * buf + d
    hand_p = hand_p - lr_e * buf
    np.testing.assert_allclose(p, hand_p, rtol=1e-6)
    np.testing.assert_allclose(schedule(step), lr_e, rtol=1e-6)
  # Cosine stepped per epoch: constant within an epoch, 0.05·(1 + cos(π·e/E)).
  assert schedule(0) == schedule(1) == pytest.approx(lr)
  assert schedule(2) == pytest.approx(0.05 * (1 + np.cos(np.pi / 4)))


@pytest.mark.parametrize("kwargs,match", [
    ({"mode": "pgd"}, "'pgd'"), ({"rho": -1.0}, "rho"), ({"chi": 1.5}, "chi"),
    ({"distance": "l2"}, "'l2'"), ({"mppd_reduction": "max"}, "'max'"),
])
def test_bad_step_settings_raise_value_errors(kwargs, match):
  with pytest.raises(ValueError, match=match):
    train_step.StepSettings(**kwargs)
