r"""VGG11 on CIFAR-100. Default row: DLIF, AT (RFGSM), ρ = 1.

    python train.py --config configs/cifar100_vgg11.py --workdir runs/c100_vgg11_at_rho1

The paper's CIFAR-100 rows are not in the reference spec's anchor tables; §4.2 of the paper quotes
the AT+Reg ρ=1 FGSM accuracy of VGG11 as 36.83 %. Rows: ``:natural``, ``:gaussian,rho=0|1``,
``:at,rho=0|1``, ``:at_reg,rho=0|1`` (β = 0.001, no weight decay). CIFAR-100 is not available
offline here; TFDS downloads it where there is internet.
"""

from configs import common


def get_config(arg=None):
  return common.paper_config("vgg11", "cifar100", arg)
