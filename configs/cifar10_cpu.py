r"""A reduced protocol for 2 CPU cores: VGG5 at 1/4 width, 256-unit head, T = 4, CIFAR-10-mini.

    python train.py --config configs/cifar10_cpu.py:natural --workdir runs/cpu_natural
    python train.py --config configs/cifar10_cpu.py:at,rho=1 --workdir runs/cpu_at_rho1
    python evaluate.py --workdir runs/cpu_at_rho1

Same rows and arguments as configs/cifar10_vgg5.py (the paper's Table 2), on the 5,000-image
class-balanced CIFAR-10 subset in ../shared/data/cifar10-mini (evaluated on its 1,000 test images;
point ``--config.data.dir`` at ../shared/data/cifar10 for the full set). The architecture keeps the
paper's layer list, neurons, BN, pooling and readout; only widths, T and the data shrink. It shows
whether the pieces learn and how the rows compare at small scale, not the paper's absolute numbers.
"""

import os

from configs import common

MINI = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared",
                    "data", "cifar10-mini")


def get_config(arg=None):
  config = common.paper_config("vgg5", "cifar10", arg)
  config.model.width = 0.25
  config.model.head_width = 256
  config.model.time_steps = 4
  config.data.dir = os.path.normpath(MINI)
  config.training.epochs = 20
  config.training.eval_batch_size = 500
  config.eval.batch_size = 100
  return config
