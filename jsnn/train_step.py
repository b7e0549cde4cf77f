"""The training objective and the jitted step: pure functions, no I/O, no host syncs.

Objective (paper Eqs. 16–17, reference spec §4):

    L = χ·CE(f(x), y) + (1 − χ)·CE(f(x̃), y) + ρ·D(x, x̃)

with ``x̃`` a Gaussian-noise (``gaussian``) or RFGSM (``at``, ``at_reg``) perturbation of the
augmented batch and ``D`` the MS-MPPD of the last spiking layer (Eq. 14), or TASAD (Eq. 12) / STD
(Eq. 13) for the Table 2 ablation. ``natural`` trains on ``CE(f(x), y)`` alone. The clean and the
perturbed batch go through BatchNorm separately, in that order, so each gets its own batch
statistics and the running averages are updated twice per step, as in the reference.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax
import jax.numpy as jnp
import optax

from jsnn import attacks, losses, models, perturbation, rat
from jsnn.data import augmentation
from jsnn.data import batching
from jsnn.train_state import TrainState

MODES = ("natural", "gaussian", "at", "at_reg")
DISTANCES = ("ms_mppd", "tasad", "std")


@dataclasses.dataclass(frozen=True)
class StepSettings:
  """Static settings of the training step (one compiled step per run).

  Attributes:
    mode: ``natural``, ``gaussian``, ``at`` (RFGSM) or ``at_reg`` (RFGSM + SNN-RAT retraction).
    chi: χ, weight of the clean cross-entropy (0.5).
    rho: ρ, weight of the distance term (1.0).
    distance: ``ms_mppd`` (the paper's), ``tasad`` or ``std``.
    mppd_reduction: ``mean`` (reference code) or ``sum`` (paper Eq. 14); see
      :func:`jsnn.perturbation.ms_mppd`.
    mppd_leak: λ of the MPPD recurrence (the model's leak, 0.99, also for DLIF — spec §3.1).
    gaussian_std: std of the additive Gaussian training noise, not clipped (8/255).
    rfgsm_step, rfgsm_start_std: RFGSM's sign step (4/255) and Gaussian start std (0.001).
    rat_beta, rat_row_fraction, rat_min_rows: the SNN-RAT retraction (``at_reg`` only).
    batch_size: global batch size.
    crop, flip, cutout, cutout_size: training augmentation (spec §4.5).
  """
  mode: str = "at"
  chi: float = 0.5
  rho: float = 1.0
  distance: str = "ms_mppd"
  mppd_reduction: str = "mean"
  mppd_leak: float = 0.99
  gaussian_std: float = 8 / 255
  rfgsm_step: float = 4 / 255
  rfgsm_start_std: float = 0.001
  rat_beta: float = 5e-4
  rat_row_fraction: float = 0.3
  rat_min_rows: int = 200
  batch_size: int = 64
  crop: bool = True
  flip: bool = True
  cutout: bool = True
  cutout_size: int = 16

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f"unknown training mode {self.mode!r}; expected one of {MODES}")
    if self.distance not in DISTANCES:
      raise ValueError(f"unknown distance {self.distance!r}; expected one of {DISTANCES}")
    if not 0.0 <= self.chi <= 1.0:
      raise ValueError(f"chi (χ) must be in [0, 1], got {self.chi}")
    if self.rho < 0:
      raise ValueError(f"rho (ρ) must be >= 0, got {self.rho}")
    if self.batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
    if self.mppd_reduction not in perturbation.MS_MPPD_REDUCTIONS:
      raise ValueError(f"unknown mppd_reduction {self.mppd_reduction!r}; expected one of "
                       f"{perturbation.MS_MPPD_REDUCTIONS}")


def learning_rate_schedule(base_lr: float, epochs: int, steps_per_epoch: int):
  """Cosine annealing to 0, stepped per epoch: ``lr_e = lr/2·(1 + cos(π·e/epochs))``, §4.4."""

  def schedule(step):
    epoch = step // steps_per_epoch
    return 0.5 * base_lr * (1.0 + jnp.cos(jnp.pi * epoch / epochs))

  return schedule


def make_optimizer(*, learning_rate: float, epochs: int, steps_per_epoch: int,
                   momentum: float = 0.9, weight_decay: float = 5e-4, nesterov: bool = False):
  """PyTorch-style SGD: weight decay added to the gradient before momentum (coupled), no dampening.

  Applies to every parameter (BN, biases, DLIF factors and convex weights included), as the
  reference's single parameter group does.
  """
  schedule = learning_rate_schedule(learning_rate, epochs, steps_per_epoch)
  tx = optax.sgd(schedule, momentum=momentum or None, nesterov=nesterov)
  if weight_decay:
    tx = optax.chain(optax.add_decayed_weights(weight_decay), tx)
  return tx, schedule


def perturb(settings: StepSettings, model, variables, images, labels, key, encoding_key=None):
  """The perturbed batch ``x̃`` for the training mode (no gradient flows through it).

  ``encoding_key`` is the input-encoding draw of a stochastic model (ignored otherwise)."""
  if settings.mode == "gaussian":
    # Additive N(0, σ²) per pixel, not clipped to [0, 1] (spec §4.1).
    return images + settings.gaussian_std * jax.random.normal(key, images.shape, images.dtype)
  # RFGSM with eval-mode BatchNorm (running statistics), as the reference switches to eval().
  logits_fn = lambda x: models.apply_model(model, variables, x, train=False, rng=encoding_key)[0]
  return attacks.rfgsm(logits_fn, images, labels, key=key, step_size=settings.rfgsm_step,
                       start_std=settings.rfgsm_start_std)


def distance_term(settings: StepSettings, clean, perturbed):
  """MS-MPPD / TASAD / STD between the captured last-layer activations (clean side constant)."""
  clean = jax.lax.stop_gradient(clean)
  if settings.distance == "ms_mppd":
    return perturbation.ms_mppd(clean["currents"] - perturbed["currents"], settings.mppd_leak,
                                settings.mppd_reduction)
  # Per-example Eq. 12/13 on the last layer's spikes (gradients through the surrogate), batch mean.
  fn = perturbation.tasad if settings.distance == "tasad" else perturbation.spike_train_distance
  return jnp.mean(fn(clean["spikes"], perturbed["spikes"]))


def loss_fn(params, batch_stats, model, settings: StepSettings, images, labels, perturbed_images,
            encoding_key=None):
  """The training objective: Eq. 16's task loss plus ρ times the distance (Eq. 17).

  Returns ``(loss, (new_batch_stats, metrics))``.

  For a stochastic model (Poisson input encoding) the clean and perturbed passes share the draw
  ``encoding_key`` (common random numbers), so that MS-MPPD measures the perturbation's effect on
  the membrane and not the difference between two independent encodings.
  """
  variables = {"params": params, "batch_stats": batch_stats}
  if settings.mode == "natural":
    logits, batch_stats, _ = models.apply_model(model, variables, images, train=True,
                                                rng=encoding_key)
    ce = jnp.mean(losses.cross_entropy(logits, labels))
    metrics = {"loss": ce, "ce": ce, "accuracy": jnp.mean(losses.correct(logits, labels))}
    return ce, (batch_stats, metrics)
  capture = [models.LAST_SPIKING_LAYER]
  logits, batch_stats, clean = models.apply_model(model, variables, images, train=True,
                                                  capture=capture, rng=encoding_key)
  logits_p, batch_stats, pert = models.apply_model(
      model, {"params": params, "batch_stats": batch_stats}, perturbed_images, train=True,
      capture=capture, rng=encoding_key)
  ce_clean = jnp.mean(losses.cross_entropy(logits, labels))
  ce_perturbed = jnp.mean(losses.cross_entropy(logits_p, labels))
  task = settings.chi * ce_clean + (1.0 - settings.chi) * ce_perturbed
  distance = distance_term(settings, clean[models.LAST_SPIKING_LAYER],
                           pert[models.LAST_SPIKING_LAYER])
  loss = task + settings.rho * distance
  metrics = {
      "loss": loss, "ce": task, "ce_clean": ce_clean, "ce_perturbed": ce_perturbed,
      settings.distance: distance, "accuracy": jnp.mean(losses.correct(logits, labels)),
      "accuracy_perturbed": jnp.mean(losses.correct(logits_p, labels)),
  }
  if settings.distance != "ms_mppd":
    # Logged for every perturbed mode, so that Figure 5 can compare the TASAD/STD rows too.
    metrics["ms_mppd"] = jax.lax.stop_gradient(distance_term(
        dataclasses.replace(settings, distance="ms_mppd"), clean[models.LAST_SPIKING_LAYER],
        pert[models.LAST_SPIKING_LAYER]))
  return loss, (batch_stats, metrics)


def train_step(state: TrainState, train_images, train_labels, *, model, tx, schedule,
               settings: StepSettings, batch_sharding: Optional[Any] = None):
  """One optimiser step on the batch that ``state.step`` selects from the resident training set.

  Args:
    state: the train state.
    train_images: uint8 ``[N, 32, 32, 3]``, the whole training set on the device(s).
    train_labels: int32 ``[N]``.
    model: the Flax model. tx: the optax optimiser. schedule: its learning-rate schedule.
    settings: static :class:`StepSettings`.
    batch_sharding: where the batch lives (sharded over the mesh's data axis), or None.

  Returns:
    ``(new_state, metrics)``; metrics are device scalars (no host sync here).
  """
  base = state.key
  data_key = jax.random.fold_in(base, 0)
  aug_key, perturb_key, rat_key = jax.random.split(
      jax.random.fold_in(jax.random.fold_in(base, 1), state.step), 3)
  # A separate stream, so that adding it left every other key of a step unchanged.
  encoding_key = jax.random.fold_in(jax.random.fold_in(base, 2), state.step)

  idx = batching.epoch_batch_indices(data_key, train_images.shape[0], settings.batch_size,
                                     state.step)
  images = augmentation.to_float(jnp.take(train_images, idx, axis=0))
  labels = jnp.take(train_labels, idx, axis=0)
  if batch_sharding is not None:
    images = jax.lax.with_sharding_constraint(images, batch_sharding)
    labels = jax.lax.with_sharding_constraint(labels, batch_sharding)
  images = augmentation.augment(aug_key, images, crop=settings.crop, flip=settings.flip,
                                cutout=settings.cutout, cutout_size=settings.cutout_size)

  perturbed = None
  if settings.mode != "natural":
    perturbed = perturb(settings, model, state.variables, images, labels, perturb_key,
                        encoding_key)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  (_, (batch_stats, metrics)), grads = grad_fn(state.params, state.batch_stats, model, settings,
                                               images, labels, perturbed, encoding_key)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  if settings.mode == "at_reg":
    params = rat.apply_rat(params, settings.rat_beta, rat_key,
                           row_fraction=settings.rat_row_fraction,
                           min_rows_for_sampling=settings.rat_min_rows)
  metrics["learning_rate"] = schedule(state.step)
  new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                            opt_state=opt_state)
  return new_state, metrics


def eval_step(variables, images, labels, mask, *, model, key=None):
  """Number of correctly classified real (``mask``) examples of a padded batch, clean inputs.

  ``key``: the input-encoding draw of a stochastic model (one draw; ``evaluate.py`` votes over
  several)."""
  logits = models.apply_model(model, variables, augmentation.to_float(images), train=False,
                              rng=key)[0]
  correct = losses.correct(logits, labels) & mask
  return {"correct": jnp.sum(correct.astype(jnp.int32)), "count": jnp.sum(mask.astype(jnp.int32))}
