"""Trains a spiking network: ``python train.py --config configs/cifar10_vgg11.py --workdir X``.

Rerunning the same command resumes from the workdir's latest checkpoint. Override any config key
as ``--config.training.rho=0.5``; pick a paper row as
``--config configs/cifar10_vgg11.py:at_reg,rho=0``. An expected failure (a bad setting, missing or
damaged files) prints ``error: ...`` and exits with status 2; ``--debug`` adds the traceback.
"""

import logging

from absl import flags
from absl import logging as absl_logging

import jsnn  # noqa: F401  (sets XLA:CPU flags before JAX starts)
from jsnn import cli

cli.define_config_file("config", None, "Training config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the saved config.")
flags.DEFINE_bool("debug", False, "Print the traceback of an expected error too (or JSNN_DEBUG=1).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  from jsnn import trainer
  # Orbax logs every checkpoint step at INFO; keep jsnn's own lines.
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger("jsnn").setLevel(logging.INFO)
  trainer.train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)


if __name__ == "__main__":
  cli.run(main)
