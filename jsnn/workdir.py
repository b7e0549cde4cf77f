"""What a training workdir describes: its resolved config, its model and its trained variables.

The training loop (:mod:`jsnn.trainer`) writes a workdir; evaluation, the experiments and
analysis read one through this module, which knows nothing of the loop or the optimiser:

* :func:`resolve_config` fills the config's AUTO values and validates it; :func:`step_settings`,
  :func:`neuron_spec` and :func:`model_from_config` turn it into the pure step's settings, the
  neuron and the Flax model;
* :func:`check_resume_config` refuses to resume a workdir that holds another config;
* :func:`restore_model` rebuilds ``(config, model, {params, batch_stats}, meta)`` from a
  checkpoint alone.
"""

from __future__ import annotations

import dataclasses
import os

import ml_collections

from jsnn import checkpointing, config_checks, config_diff, errors, models, parallel, train_step

AUTO = -1.0   # configs/default.py's sentinel: resolved here from the mode, dataset and model
# SNN-RAT β of the paper's Appendix C per (dataset, model); VGG5 uses the reference's -beta default.
RAT_BETA = {
    ("cifar10", "vgg11"): 5e-4, ("cifar10", "wrn16"): 4e-3,
    ("cifar100", "vgg11"): 1e-3, ("cifar100", "wrn16"): 4e-3,
}
DEFAULT_RAT_BETA = 5e-4


class ConfigMismatch(errors.Error, ValueError):
  """The workdir holds a run of a different config."""


class CheckpointNotFound(errors.Error, FileNotFoundError):
  """The workdir has no checkpoint of the requested kind."""


# -------------------------------------------------------------------------------------------------
# Config
# -------------------------------------------------------------------------------------------------


def resolve_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Fills the AUTO values from the mode/model/dataset and validates; returns a locked copy."""
  config = ml_collections.ConfigDict(config.to_dict())
  t = config.training
  if t.weight_decay == AUTO:
    # The reference reuses -beta as weight decay, and turns decay off in RAT mode (spec §4.4).
    t.weight_decay = 0.0 if t.mode == "at_reg" else 5e-4
  if t.rat_beta == AUTO:
    t.rat_beta = RAT_BETA.get((config.data.name, config.model.name), DEFAULT_RAT_BETA)
  if config.data.name == "synthetic" and config.data.dir:
    # configs/smoke.py: pointing data.dir at .npz CIFAR-10 switches the smoke run to real data.
    config.data.name = "cifar10"
  _validate(config)
  config.lock()
  return config


def _validate(config):
  config_checks.check_finite(config.to_dict())
  t = config.training
  step_settings(config)   # mode, χ, ρ, distance, reduction
  if t.epochs < 1:
    raise ValueError(f"training.epochs must be >= 1, got {t.epochs}")
  if t.learning_rate <= 0:
    raise ValueError(f"training.learning_rate must be > 0, got {t.learning_rate}")
  if t.weight_decay < 0 or t.rat_beta < 0:
    raise ValueError(f"weight_decay and rat_beta must be >= 0, got {t.weight_decay}, {t.rat_beta}")
  if t.select_on not in ("test", "validation"):
    raise ValueError(f"training.select_on must be 'test' or 'validation', got {t.select_on!r}")
  if t.select_on == "validation" and config.data.validation_size < 1:
    raise ValueError("training.select_on='validation' needs --config.data.validation_size > 0")
  if t.mode == "gaussian" and not t.gaussian_std > 0:
    raise ValueError(f"training.gaussian_std, the std σ of the gaussian mode's noise, must be > 0, "
                     f"got {t.gaussian_std!r}")
  if t.steps_per_epoch < 0:
    raise ValueError(f"training.steps_per_epoch must be >= 0, got {t.steps_per_epoch}")


def step_settings(config) -> train_step.StepSettings:
  """The pure training step's static settings from a config's training and data sections."""
  t, d = config.training, config.data
  return train_step.StepSettings(
      mode=t.mode, chi=t.chi, rho=t.rho, distance=t.distance, mppd_reduction=t.mppd_reduction,
      mppd_leak=config.model.leak, gaussian_std=t.gaussian_std, rfgsm_step=t.rfgsm_step,
      rfgsm_start_std=t.rfgsm_start_std, rat_beta=max(t.rat_beta, 0.0),
      rat_row_fraction=t.rat_row_fraction, rat_min_rows=t.rat_min_rows, batch_size=t.batch_size,
      crop=d.crop, flip=d.flip, cutout=d.cutout, cutout_size=d.cutout_size)


def neuron_spec(config, **overrides) -> models.NeuronSpec:
  """The neuron of ``config.model`` as a :class:`jsnn.spiking.NeuronSpec`.

  Args:
    config: a config with a ``model`` section (configs/default.py).
    **overrides: fields of the spec to replace, e.g. ``surrogate="sigmoid"``,
      ``surrogate_width=None`` (the surrogate's default) or ``gradient_estimator="rga"``.

  Returns:
    The validated spec.
  """
  m = config.model
  unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(models.NeuronSpec)})
  if unknown:
    raise ValueError(f"unknown neuron settings {unknown}; expected fields of "
                     f"jsnn.spiking.NeuronSpec")
  settings = dict(kind=m.neuron, time_steps=m.time_steps, dlif_placement=m.dlif_placement,
                  leak=m.leak, threshold=m.threshold, surrogate=m.surrogate,
                  surrogate_width=m.surrogate_width, gradient_estimator="surrogate",
                  remat=m.remat)
  return models.NeuronSpec(**{**settings, **overrides})


def model_from_config(config, num_classes: int, **neuron_overrides):
  """The Flax model of ``config.model``; ``neuron_overrides`` replace fields of its
  :func:`neuron_spec` (another surrogate or gradient estimator to attack through)."""
  m = config.model
  return models.create_model(
      m.name, num_classes=num_classes, neuron=neuron_spec(config, **neuron_overrides),
      width=m.width, head_width=m.head_width, dtype=m.dtype,
      normalization=(config.data.name if config.data.name in models.NORMALIZATION
                     else "cifar10"),
      encoding=m.get("encoding", "direct"))


def check_resume_config(workdir: str, config) -> None:
  """Refuses (:class:`ConfigMismatch`) a workdir whose latest checkpoint has another config."""
  if not os.path.isdir(os.path.join(workdir, "checkpoints", "latest")):
    return
  ckpt = checkpointing.Checkpoints(workdir, read_only=True)
  try:
    saved = ckpt.read_meta("latest")
  finally:
    ckpt.close()
  if saved is None:
    return
  diff = config_diff.config_differences(saved["config"], config.to_dict())
  if diff and not config.allow_config_mismatch:
    before, after = config_diff.flatten(saved["config"]), config_diff.flatten(config.to_dict())
    shown = ", ".join(f"{k}: {before.get(k)!r} → {after.get(k)!r}" for k in diff[:8])
    raise ConfigMismatch(
        f"{os.path.join(workdir, 'checkpoints')} holds a checkpoint of a different config "
        f"({shown}). Use a new --workdir, or resume anyway with "
        f"--config.allow_config_mismatch=True.")


# -------------------------------------------------------------------------------------------------
# Restoring a trained model (evaluation, analysis)
# -------------------------------------------------------------------------------------------------


def restore_model(workdir: str, which: str = "best", **neuron_overrides):
  """Rebuilds a trained model from its workdir alone (the checkpoint describes itself).

  Only the model's variables are read; no optimiser is rebuilt, so the result does not depend on
  the schedule the model was trained with.

  Args:
    workdir: a training workdir.
    which: ``"best"`` (best selection accuracy, as the reference evaluates) or ``"latest"``.
    **neuron_overrides: fields of the model's :func:`neuron_spec` to change, e.g. another
      ``surrogate`` to attack through (parameters do not depend on it).

  Returns:
    ``(config, model, variables, meta)`` with ``variables = {"params", "batch_stats"}``.
  """
  if which not in checkpointing.WHICH:
    raise ValueError(f"unknown checkpoint {which!r}; expected one of {checkpointing.WHICH}")
  workdir = os.path.abspath(workdir)
  if not os.path.isdir(os.path.join(workdir, "checkpoints", which)):
    raise CheckpointNotFound(f"no {which!r} checkpoint in {workdir}: train there first "
                             f"(python train.py --config ... --workdir {workdir})")
  ckpt = checkpointing.Checkpoints(workdir, read_only=True)
  try:
    meta = ckpt.read_meta(which)
    if meta is None:
      raise CheckpointNotFound(f"no {which!r} checkpoint in {workdir}")
    config = ml_collections.ConfigDict(meta["config"])
    model = model_from_config(config, meta["num_classes"], **neuron_overrides)
    try:
      variables, meta = ckpt.restore_variables(
          which, models.abstract_variables(model, parallel.replicated(parallel.make_mesh())))
    except Exception as e:  # noqa: BLE001 - orbax raises ValueError, OSError, Exception, ...
      raise ckpt.unreadable(which, ckpt.latest_step(which), e) from e
  finally:
    ckpt.close()
  return config, model, variables, meta
