r"""WRN-16-4 on CIFAR-10: the paper's Table 1 (bottom). Default row: DLIF, AT (RFGSM), ρ = 1.

    python train.py --config configs/cifar10_wrn16.py --workdir runs/c10_wrn16_at_rho1
    python evaluate.py --workdir runs/c10_wrn16_at_rho1

Rows (Clean / FGSM / PGD7 / PGD10 / PGD20 / PGD40 / APGD-CE / APGD-DLR, ε = 8/255):

    :at,rho=0            AT ρ=0        90.16 / 48.09 / 33.70 / 32.37 / 31.33 / 30.99 / 27.94 / 32.39
    :at,rho=1 (default)  AT ρ=1        90.11 / 49.82 / 36.21 / 34.71 / 33.71 / 33.41 / 30.08 / 34.85
    :at_reg,rho=0        AT+Reg ρ=0    91.38 / 56.87 / 36.77 / 33.24 / 30.49 / 29.07 / 31.38 / 34.55
    :at_reg,rho=1        AT+Reg ρ=1    91.15 / 57.89 / 38.78 / 35.33 / 32.82 / 31.13 / 32.90 / 37.39

at_reg uses β = 0.004 and no weight decay.
"""

from configs import common


def get_config(arg=None):
  return common.paper_config("wrn16", "cifar10", arg)
