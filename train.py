"""Trains a spiking network: ``python train.py --config configs/cifar10_vgg11.py --workdir X``.

Rerunning the same command resumes from the workdir's latest checkpoint. Override any config key
as ``--config.training.rho=0.5``; pick a paper row as
``--config configs/cifar10_vgg11.py:at_reg,rho=0``.
"""

import logging
import sys

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

import jsnn  # noqa: F401  (sets XLA:CPU flags before JAX starts)

config_flags.DEFINE_config_file("config", None, "Training config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the saved config.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  from jsnn import data, trainer
  # Orbax logs every checkpoint step at INFO; keep jsnn's own lines.
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger("jsnn").setLevel(logging.INFO)
  try:
    trainer.train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)
  except (data.DataUnavailableError, trainer.ConfigMismatch, trainer.TrainingDiverged,
          ValueError) as e:
    # Expected failures get their message, not a traceback.
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
