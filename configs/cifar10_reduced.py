r"""Reduced protocol for a 2-core CPU: Table 2's ablation, every row × 3 seeds, in about 2 hours.

!!! Not usable yet. Measured on 2026-11-28, the first row (DLIF, ρ = 0, seed 0) stayed at chance:
    train and test accuracy 10.0 % after its 4 epochs (the 64-unit head barely spikes at
    initialisation). configs/cifar10_cpu.py (1/4 width, 256-unit head, 20 epochs) does learn
    (54.9 % natural, 47.2 % AT) but costs about 26 minutes per AT run here; this protocol must be
    re-sized between the two, with a check that every row learns, before the sweep is run.

    python -m experiments.sweep --rows table2 --protocol reduced --seeds 0,1,2 \
        --root results/table2_reduced
    python train.py --config configs/cifar10_reduced.py:at,rho=1,seed=0 --workdir runs/reduced_rho1
    python evaluate.py --config configs/cifar10_reduced.py --workdir runs/reduced_rho1

Rows take the arguments of configs/cifar10_vgg5.py (``at,rho=0.5``, ``neuron=lif``,
``distance=tasad|std``, ``placement=leak``, ``seed=``) plus ``model=vgg11|wrn16`` for Table 1's
models at the same reduced scale (not timed; VGG11 and WRN16 cost several times VGG5).

What shrinks, against the paper's Table 2 protocol (configs/cifar10_vgg5.py):

* model: VGG5 at 1/8 width (convs 8-16-16 channels instead of 64-128-128), a 64-unit hidden head
  instead of 4096, T = 4 time steps instead of 8; same layers, neurons, BatchNorm, pooling,
  readout, λ, threshold and surrogate;
* data: the 5,000 class-balanced training images of ../shared/data/cifar10-mini (the full set has
  50,000), 4 epochs at batch 64 (316 steps) instead of 100, with the same augmentation and the same
  cosine schedule compressed to 4 epochs; the per-epoch clean accuracy uses the subset's 1,000 test
  images;
* evaluation: clean, FGSM, PGD-10 and APGD-CE (10 steps) at ε = 8/255 on the first 500 of those
  test images, plus jsnn.evaluation's gradient-masking checks (PGD-10 at ε = 64/255 and the
  zero-gradient count); PGD-7/20/40 and APGD-DLR are not run. Figure 3's ε sweep runs at
  ε ∈ {2, 4, 8, 16, 32}/255 (beyond 32/255 everything is at 0 at this scale).

Timing basis (``python -m experiments.calibrate --config configs/cifar10_reduced.py:at,rho=1``,
measured while another training run and a test suite shared the 2 cores — load average ≈ 3.5 —
so each process got about one core: CPU time ≈ wall time):

* RFGSM-AT training step (attack, two BN passes, MS-MPPD, SGD) at batch 64: 0.42–0.44 s, after a
  7.9 s compiling first call → training ≈ 8 + 315 × 0.43 + 4 clean test passes ≈ 147 s;
* per batch of 100 test images: clean 0.06 s, FGSM 0.27 s, PGD-10 3.36 s, APGD-CE 3.82 s (first,
  compiling calls 0.9 / 2.1 / 6.4 / 8.2 s) → the suite on 500 images ≈ 48 s, the sanity checks
  ≈ 23 s more;
* driver overhead (data loading, checkpoint saves and restores, measured on a 3-step row) ≈ 10–15 s;
* so ≈ 230 s ≈ 3.8 min per run, 33 runs ≈ 2 h 07 min, plus ≈ 90 s of ε sweep for each of the six
  Figure 3 rows (DLIF ρ = 0 and ρ = 1, three seeds) ≈ 9 min. Seeds 1 and 2 reuse the compiled
  programs through the driver's persistent compilation cache (train step 7.3 s → 2.0 s), and with
  the machine to itself PGD-10 ran at 2.0 s per 100 images (both cores), so expect a little under
  2 hours on an idle machine and ≈ 2 h 15 min on one shared like this.

What it can show: that every piece runs end to end on real CIFAR-10 images; how the rows compare
with each other at this scale, with a seed spread to judge the differences against; whether ρ > 0
lowers the MS-MPPD during training (Figure 5) and under attack (Figure 3); how far the DLIF
factors move from 1 (Figure 4); whether the DLIF placements differ; whether the evaluation shows
signs of gradient masking. What it cannot show: the paper's absolute accuracies (its VGG5 reaches
85% clean; these models are far smaller and far less trained); differences of the size the paper
reports between Table 2's rows (≈ 1 point — one accuracy on 500 images has a binomial standard
error of ≈ 1.6–2 points, and the seed spread adds to it); the PGD-7/20/40 and APGD-DLR columns;
effects that need long training, such as the clean-accuracy collapse of LIF at ρ = 2.
"""

import os

from configs import common

MINI = os.path.normpath(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                     "..", "shared", "data", "cifar10-mini"))
MODELS = ("vgg5", "vgg11", "wrn16")
# What the report states about this protocol (experiments/report.py reads it).
SCOPE = __doc__[__doc__.index("What it can show:"):].strip()


def get_config(arg=None):
  row = common.parse_arg(arg)
  model = row.pop("model", "vgg5")
  if model not in MODELS:
    raise ValueError(f"unknown model {model!r} in config argument {arg!r}; expected one of "
                     f"{MODELS}")
  config = common.paper_config(model, "cifar10", ",".join(
      value if key == "mode" else f"{key}={value}" for key, value in row.items()))
  config.model.width = 0.125
  config.model.head_width = 64
  config.model.time_steps = 4
  config.data.dir = MINI
  config.training.epochs = 4
  config.training.eval_batch_size = 500
  config.logging.progress_bar = False
  config.eval.attacks = "clean,fgsm,pgd10,apgd-ce"
  config.eval.num_examples = 500
  config.eval.batch_size = 100
  config.eval.progress_bar = False
  config.eval.sweep_epsilons = "2,4,8,16,32"
  return config
