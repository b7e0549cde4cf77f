r"""WRN-16-4 on CIFAR-100. Default row: DLIF, AT (RFGSM), ρ = 1.

    python train.py --config configs/cifar100_wrn16.py --workdir runs/c100_wrn16_at_rho1

The paper's §4.2 quotes the AT+Reg ρ=1 FGSM accuracy of WRN16 on CIFAR-100 as 33.56 %. Rows:
``:at,rho=0|1``, ``:at_reg,rho=0|1`` (β = 0.004, no weight decay).
"""

from configs import common


def get_config(arg=None):
  return common.paper_config("wrn16", "cifar100", arg)
