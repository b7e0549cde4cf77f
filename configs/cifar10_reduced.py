r"""Reduced protocol for a 2-core CPU: Table 2's ablation, every row × 4 seeds, in about 2¼ hours.

    python -m experiments.sweep --rows table2 --protocol reduced --seeds 0,1,2,3 \
        --root results/table2_reduced
    python train.py --config configs/cifar10_reduced.py:at,rho=1,seed=0 --workdir runs/reduced_rho1
    python evaluate.py --config configs/cifar10_reduced.py --workdir runs/reduced_rho1

Rows take the arguments of configs/cifar10_vgg5.py (``at,rho=0.5``, ``neuron=lif``,
``distance=tasad|std``, ``placement=leak``, ``seed=``) plus ``model=vgg11|wrn16`` for Table 1's
models. VGG5 at 1/8 width, a 256-unit head, T = 4, 4 epochs on the 5,000 images of CIFAR-10-mini;
clean, FGSM, PGD-10 and APGD-CE on 500 test images. Expect about 100 s of training and a minute of
evaluation per VGG5 row and 18–28 % clean accuracy (a run can stay at chance); a Table 1 row
takes 5–13 minutes. What shrinks,
the measurements behind the sizing, and the runs so far: docs/protocols.md; what this scale can
and cannot show: ``SCOPE`` below (the report quotes it).
"""

import os

from configs import common

MINI = os.path.normpath(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                     "..", "shared", "data", "cifar10-mini"))
MODELS = ("vgg5", "vgg11", "wrn16")
# What the report states about this protocol (experiments/report/tables.py quotes it).
SCOPE = (
    "What it can show: that every piece runs end to end on real CIFAR-10 images; how the rows "
    "compare with each other at this scale, with a seed spread to judge the differences against; "
    "whether ρ > 0 lowers the MS-MPPD during training (Figure 5) and under attack (Figure 3); how "
    "far the DLIF factors move from 1 (Figure 4); whether the DLIF placements differ; whether the "
    "evaluation shows signs of gradient masking. What it cannot show: the paper's absolute "
    "accuracies (its VGG5 reaches 85% clean; these models are far smaller and far less trained); "
    "differences of the size the paper reports between Table 2's rows (≈ 1 point — one accuracy "
    "on 500 images has a binomial standard error of ≈ 1.6–2 points, and the seed spread adds to "
    "it); the PGD-7/20/40 and APGD-DLR columns; effects that need long training, such as the "
    "clean-accuracy collapse of LIF at ρ = 2; Table 1's VGG11 at the reduced T = 4, whose spiking "
    "head does not leave chance (its rows run at the paper's T = 8); and, with one or two seeds "
    "per Table 1 row, any Table 1 difference below about 5 points (two binomial standard errors "
    "of the difference of two accuracies of 10–25 % on 500 images, before any seed spread).")


def get_config(arg=None):
  row = common.parse_arg(arg)
  model = row.pop("model", "vgg5")
  if model not in MODELS:
    raise ValueError(f"unknown model {model!r} in config argument {arg!r}; expected one of "
                     f"{MODELS}")
  config = common.paper_config(model, "cifar10", ",".join(
      value if key == "mode" else f"{key}={value}" for key, value in row.items()))
  config.model.width = 0.125
  config.model.head_width = 256
  config.model.time_steps = 4
  config.data.dir = MINI
  config.training.epochs = 4
  if model != "vgg5":
    # Table 1's deeper models at this width: measured (docs/protocols.md) to need twice the steps,
    # and VGG11's silent spiking head the paper's T = 8, to leave chance in 4 epochs.
    config.training.batch_size = 32
    if model == "vgg11":
      config.model.time_steps = 8
  config.training.eval_batch_size = 500
  config.logging.progress_bar = False
  config.eval.attacks = "clean,fgsm,pgd10,apgd-ce"
  config.eval.num_examples = 500
  config.eval.batch_size = 100
  config.eval.progress_bar = False
  config.eval.sweep_epsilons = "2,4,8,16,32"
  return config
