"""Robustness of a trained checkpoint: ``python evaluate.py --workdir runs/x``.

Runs Table 1's attack suite on the run's test set and writes ``robustness.json``, ``.csv`` and the
per-example flags into the workdir; rerunning resumes, computing only the attacks not yet there.
``--mode=sweep`` runs Figure 3's ε sweep instead (``eps_sweep.json`` and two plots), and
``--mode=certify`` randomized smoothing's CERTIFY and PREDICT (Cohen et al., 2019) with
``--config.eval.certify_sigma``, ``certify_n0``, ``certify_n``, ``certify_alpha``
(``certification.json``, ``.npz`` and ``.png``). Only the
config's ``eval`` section is read (the model comes from the checkpoint), e.g.
``--config.eval.attacks=fgsm,pgd10 --config.eval.epsilon=0.0313 --config.eval.num_examples=1000``.
``--config.eval.suite=standard`` runs the APGD-CE → APGD-T → Square cascade instead, ``full`` both
plus every gradient attack through the estimators of ``--config.eval.estimators`` (e.g.
``bptr,rga,hart``; all of them by default). An expected failure (a bad setting, no or a damaged
checkpoint, a read-only workdir) prints ``error: ...`` and exits with status 2, leaving earlier
results as they were; ``--debug`` adds the traceback.
"""

import logging
import os

from absl import flags
from absl import logging as absl_logging

import jsnn  # noqa: F401  (sets XLA:CPU flags before JAX starts)
from jsnn import cli

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "default.py")
cli.define_config_file("config", _DEFAULT_CONFIG, "Config file; only its eval section is read.",
                       lock_config=True)
flags.DEFINE_string("workdir", None, "Training workdir holding the checkpoint to evaluate.")
flags.DEFINE_enum("mode", "suite", ["suite", "sweep", "certify"],
                  "suite: the attack table; sweep: PGD-10 accuracy and MS-MPPD against ε; "
                  "certify: randomized smoothing's certified L2 accuracy (eval.certify_*).")
flags.DEFINE_bool("debug", False, "Print the traceback of an expected error too (or JSNN_DEBUG=1).")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  from jsnn import evaluation
  # Orbax logs every restore at INFO; keep jsnn's own lines.
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.getLogger("jsnn").setLevel(logging.INFO)
  run = {"suite": evaluation.evaluate_checkpoint, "sweep": evaluation.sweep_epsilon,
         "certify": evaluation.certify_checkpoint}[flags.FLAGS.mode]
  run(flags.FLAGS.config, flags.FLAGS.workdir)


if __name__ == "__main__":
  cli.run(main)
