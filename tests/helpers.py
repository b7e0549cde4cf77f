"""Helpers shared by several test modules (plain functions; the fixtures live in conftest.py)."""

from configs import default as default_config


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
