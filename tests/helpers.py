"""Helpers shared by several test modules (plain functions; the fixtures live in conftest.py)."""

from configs import default as default_config
from configs import smoke


def eval_config(attack_names: str, *, num_examples: int, batch_size: int, **eval_overrides):
  """configs/default.py's config with a small, quiet evaluation: no progress bar, no checks.

  `eval_overrides` set further `config.eval` fields (for example `sanity_checks=True`).
  """
  config = default_config.get_config()
  config.eval.attacks = attack_names
  config.eval.num_examples = num_examples
  config.eval.batch_size = batch_size
  config.eval.progress_bar = False
  config.eval.sanity_checks = False
  for key, value in eval_overrides.items():
    config.eval[key] = value
  return config


def tiny_train_config(mode=None, **training):
  """configs/smoke.py (with its argument ``mode``, say "gaussian") shrunk to a two-step run.

  `training` set further `config.training` fields (for example `epochs=1`).
  """
  config = smoke.get_config(mode)
  config.model.width = 0.0625
  config.model.head_width = 16
  config.model.time_steps = 2
  config.data.train_size = 64
  config.training.batch_size = 8
  config.training.steps_per_epoch = 2
  config.training.eval_batch_size = 64
  config.logging.progress_bar = False
  for key, value in training.items():
    config.training[key] = value
  return config
