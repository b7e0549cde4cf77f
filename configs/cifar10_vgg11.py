r"""VGG11 on CIFAR-10: the paper's Table 1 (top). Default row: DLIF, AT (RFGSM), ρ = 1.

    python train.py --config configs/cifar10_vgg11.py --workdir runs/c10_vgg11_at_rho1
    python evaluate.py --workdir runs/c10_vgg11_at_rho1

Rows (config argument after ``:``; paper's Clean / FGSM / PGD7 / PGD10 / PGD20 / PGD40 / APGD-CE /
APGD-DLR at ε = 8/255, CIFAR-10):

    :natural,neuron=lif  LIF natural   92.54 / 10.33 /  0.03 /  0.01 /  0.01 /  0.01 /  0.02 /  0.05
    :natural             DLIF natural  92.22 / 13.24 /  0.09 /  0.02 /  0.01 /  0.01 /  0.05 /  0.03
    :gaussian,rho=0      Gaussian ρ=0  92.43 / 11.30 /  0.18 /  0.10 /  0.08 /  0.06 /  0.08 /  0.09
    :gaussian,rho=1      Gaussian ρ=1  92.39 / 15.24 /  0.23 /  0.09 /  0.08 /  0.10 /  0.17 /  0.08
    :at,rho=0            AT ρ=0        90.07 / 43.54 / 30.57 / 29.06 / 28.53 / 28.00 / 23.05 / 29.88
    :at,rho=1 (default)  AT ρ=1        87.21 / 49.02 / 38.68 / 37.55 / 37.08 / 36.41 / 33.25 / 39.68
    :at_reg,rho=0        AT+Reg ρ=0    89.61 / 52.10 / 34.83 / 32.01 / 29.98 / 28.63 / 29.07 / 33.67
    :at_reg,rho=1        AT+Reg ρ=1    88.91 / 56.71 / 40.30 / 37.53 / 35.25 / 33.93 / 35.09 / 39.85

at_reg uses β = 0.0005 (paper Appendix C; the reference's main run list used 0.001, spec §7.8 —
``--config.training.rat_beta=0.001`` for that) and no weight decay. 100 epochs at batch 64 need a
GPU: on two CPU cores one AT epoch is about 9 hours (../shared/perf-baseline.md).
"""

from configs import common


def get_config(arg=None):
  return common.paper_config("vgg11", "cifar10", arg)
