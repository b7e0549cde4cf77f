r"""VGG5 on CIFAR-10: the paper's Table 2 ablation (RFGSM AT, χ = 0.5). Default: DLIF, ρ = 1.

    python train.py --config configs/cifar10_vgg5.py:at,rho=0.5 --workdir runs/c10_vgg5_rho0.5

Rows (Clean / FGSM / PGD7 / PGD10 / PGD20 / PGD40 / APGD-CE / APGD-DLR, ε = 8/255):

  :at,rho=0                 DLIF ρ=0   85.32 / 38.61 / 27.28 / 26.27 / 25.78 / 25.72 / 22.37 / 26.43
  :at,rho=0.5               DLIF ρ=0.5 85.01 / 38.82 / 27.47 / 26.36 / 25.88 / 25.83 / 22.80 / 26.30
  :at,rho=1 (default)       DLIF ρ=1   85.21 / 39.63 / 28.33 / 27.34 / 26.98 / 26.36 / 23.94 / 27.70
  :at,rho=2                 DLIF ρ=2   85.15 / 39.41 / 27.35 / 26.29 / 25.62 / 25.53 / 22.95 / 26.71
  :at,rho=0,neuron=lif      LIF ρ=0    85.61 / 39.78 / 27.54 / 26.38 / 25.75 / 25.17 / 22.95 / 26.43
  :at,rho=1,neuron=lif      LIF ρ=1    85.11 / 40.15 / 27.92 / 26.81 / 26.00 / 25.87 / 23.30 / 27.05
  :at,rho=2,neuron=lif      LIF ρ=2    64.62 / 30.51 / 22.42 / 21.38 / 20.87 / 20.63 / 19.35 / 22.62
  :at,rho=1,distance=tasad  DLIF TASAD 85.28 / 39.26 / 27.80 / 26.85 / 26.12 / 25.92 / 22.92 / 26.85
  :at,rho=1,distance=std    DLIF STD   85.46 / 38.96 / 26.82 / 25.75 / 25.38 / 25.03 / 22.07 / 25.94

The reference code has no TASAD/STD training loss (spec §3.2): jsnn uses Eqs. 12/13 per example on
the last spiking layer's spikes, clean side constant, averaged over the batch. ``placement=leak``
trains the paper's form of DLIF instead of the reference code's.
"""

from configs import common


def get_config(arg=None):
  return common.paper_config("vgg5", "cifar10", arg)
