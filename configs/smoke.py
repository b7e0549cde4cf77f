r"""A tiny SNN that trains one short epoch on synthetic data: the end-to-end check.

    python train.py --config configs/smoke.py --workdir runs/smoke
    python train.py --config configs/smoke.py --workdir runs/smoke_real \
        --config.data.dir=../shared/data/cifar10-mini

VGG5 at 1/8 width with a 64-unit head, T = 4, RFGSM AT with MS-MPPD (ρ = 1): every piece of the
paper's method runs. On synthetic data it finishes in well under 2 minutes on 2 CPU cores.
"""

from configs import common


def get_config(arg=None):
  config = common.paper_config("vgg5", "synthetic", arg)
  config.model.width = 0.125
  config.model.head_width = 64
  config.model.time_steps = 4
  config.data.train_size = 512
  config.training.epochs = 1
  config.training.batch_size = 32
  config.training.eval_batch_size = 256
  config.logging.log_every_steps = 4
  config.eval.batch_size = 32
  config.eval.num_examples = 64
  return config
