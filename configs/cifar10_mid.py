r"""Mid-scale protocol for a 2-core CPU: all of CIFAR-10, a VGG5 that learns, ρ = 0 against ρ = 1.

    python -m experiments.sweep --rows mid --protocol mid --root results/mid
    python train.py --config configs/cifar10_mid.py:at,rho=1,seed=0 --workdir runs/mid_at_rho1
    python evaluate.py --config configs/cifar10_mid.py --workdir runs/mid_at_rho1

Rows take configs/cifar10_vgg5.py's arguments (``natural``, ``at,rho=1``, ``placement=leak``,
``seed=``). Against the paper's Table 2 protocol: VGG5's layers at 1/4 width (convs 16-32-32), a
256-unit head, T = 4, 15 epochs of the 50,000 training images of ../shared/data/cifar10 at batch
64 (the cosine schedule over those epochs); the final checkpoint is evaluated (no selection on the
test set) on the first 2,000 test images: the paper's suite (FGSM, PGD-7/10/20/40, APGD-CE,
APGD-DLR) and the standard cascade APGD-CE-100 → APGD-T (3 targets × 100 steps, AutoAttack uses
9) → Square (1,000 queries, AutoAttack 5,000), SA-PGD-100, with the gradient-masking checks.

Expect 42–72 min of training per AT row (220–330 images/s on 2 AMD EPYC cores, by machine) and
55 min for the natural one, then 6–13 min of evaluation. Measured: natural 74.3 % clean; AT
ρ = 0 (3 seeds) 67.6 % clean, 19.2 % PGD-10, 7.4 % worst case; ρ = 1 66.5 / 20.5 / 8.6 %: below
the targets (natural 75 % clean, AT 25 % PGD-10). Pilot, rows and limits: docs/protocols.md.
"""

import os

from configs import common

DATA = os.path.normpath(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                     "..", "shared", "data", "cifar10"))
EPOCHS = 15


def get_config(arg=None):
  config = common.paper_config("vgg5", "cifar10", arg)
  config.model.width = 0.25
  config.model.head_width = 256
  config.model.time_steps = 4
  config.data.dir = DATA
  if "epochs=" not in (arg or ""):
    config.training.epochs = EPOCHS
  config.training.eval_batch_size = 500
  config.logging.progress_bar = False
  config.eval.checkpoint = "latest"     # the end of the cosine schedule, not the best test epoch
  config.eval.suite = "full"
  config.eval.estimators = "none"       # the paper's suite and the cascade, no estimator variants
  config.eval.num_examples = 2000
  config.eval.batch_size = 200
  config.eval.apgd_targets = 3
  config.eval.square_queries = 1000
  config.eval.progress_bar = False
  config.eval.sweep_epsilons = "2,4,8,12,16,24,32"
  return config
