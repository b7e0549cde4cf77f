"""Default configuration: every key, with what it means. Other configs override a few of them.

Run with ``python train.py --config configs/default.py --workdir runs/x``; override any key as
``--config.training.rho=0.5``. Keys are locked: a misspelt key fails at launch.
"""

import ml_collections

# Sentinels resolved by jsnn.workdir.resolve_config from the mode, dataset and model.
AUTO = -1.0


def get_config(arg=None):
  del arg
  config = ml_collections.ConfigDict()
  config.seed = 42                      # one seed: init, data order, augmentation, perturbations
  config.distributed = False            # call jax.distributed.initialize() (multi-host runs)
  config.allow_config_mismatch = False  # resume a workdir whose saved config differs (careful)

  config.model = ml_collections.ConfigDict()
  config.model.name = "vgg11"           # vgg5 | vgg11 | wrn16 (WRN-16-4)
  # The neuron (jsnn.workdir.neuron_spec makes a jsnn.spiking.NeuronSpec of them): the keys from
  # here to surrogate_width, and remat.
  config.model.neuron = "dlif"          # lif (paper Eq. 1) | dlif (§3.3, trainable a[t])
  config.model.dlif_placement = "input"  # input (reference; made the tables) | leak (paper)
  config.model.time_steps = 8           # T of direct encoding
  config.model.leak = 0.99              # λ
  config.model.threshold = 1.0          # u_th
  # triangle (Eq. 18) | sigmoid | arctan | rectangular | straight_through
  config.model.surrogate = "triangle"
  config.model.surrogate_width = 1.0    # ω of the triangle (α for sigmoid/arctan)
  config.model.width = 1.0              # channel multiplier (1.0 = the paper's model)
  config.model.head_width = 4096        # VGG hidden FC width (4096 in the paper)
  config.model.dtype = "float32"        # compute dtype: float32 | bfloat16 (params stay float32)
  # direct (the paper's) | poisson (rate-coded input spikes: stochastic, evaluate with EOT)
  config.model.encoding = "direct"
  config.model.remat = False            # recompute each neuron's time loop in the backward pass

  config.data = ml_collections.ConfigDict()
  config.data.name = "cifar10"          # cifar10 | cifar100 | synthetic
  config.data.dir = ""                  # directory (or file) of .npz arrays; "" = read TFDS
  config.data.tfds_data_dir = ""        # TFDS data dir; "" = TFDS's default (~/tensorflow_datasets)
  config.data.download = False          # let TFDS download and prepare (internet + TensorFlow)
  config.data.train_size = 0            # class-balanced training subset; 0 = all
  config.data.validation_size = 0       # training images held out for checkpoint selection
  config.data.crop = True               # random crop 32 with zero padding 4
  config.data.flip = True               # random horizontal flip
  config.data.cutout = True             # Cutout, one 16x16 hole (the reference's default)
  config.data.cutout_size = 16

  config.training = ml_collections.ConfigDict()
  config.training.mode = "at"           # natural | gaussian | at (RFGSM) | at_reg (RFGSM + SNN-RAT)
  config.training.chi = 0.5             # χ: weight of clean CE; (1-χ) on the perturbed CE (Eq. 16)
  config.training.rho = 1.0             # ρ: weight of the distance term (Eq. 17)
  config.training.distance = "ms_mppd"  # ms_mppd (Eq. 14) | tasad (Eq. 12) | std (Eq. 13)
  config.training.mppd_reduction = "mean"  # mean (reference code) | sum (paper's Eq. 14)
  config.training.gaussian_std = 8 / 255   # std of the gaussian mode's noise (not clipped)
  config.training.rfgsm_step = 4 / 255     # RFGSM sign step
  config.training.rfgsm_start_std = 0.001  # RFGSM Gaussian random start
  config.training.rat_beta = AUTO       # SNN-RAT β; AUTO = the paper's value for model/dataset
  config.training.rat_row_fraction = 0.3  # fraction of rows retracted in wide dense layers
  config.training.rat_min_rows = 200    # dense layers with at least this many rows are sampled
  config.training.epochs = 100
  config.training.batch_size = 64       # global batch, split over all devices
  config.training.learning_rate = 0.1   # SGD, cosine to 0 stepped once per epoch
  config.training.momentum = 0.9
  config.training.weight_decay = AUTO   # coupled L2; AUTO = 5e-4, or 0 in at_reg (reference)
  config.training.steps_per_epoch = 0   # 0 = ceil(train size / batch); > 0 caps it (smoke runs)
  config.training.select_on = "test"    # best checkpoint by test (reference) or validation accuracy
  config.training.eval_batch_size = 500  # clean-accuracy evaluation batch after each epoch

  config.logging = ml_collections.ConfigDict()
  config.logging.progress_bar = True    # per-epoch progress bar with ETA
  config.logging.log_every_steps = 50   # host sync for the progress bar's running loss
  config.logging.keep_checkpoints = 2   # latest checkpoints kept (the best one is kept apart)

  config.eval = ml_collections.ConfigDict()
  config.eval.checkpoint = "best"       # best | latest
  # paper (eval.attacks) | standard (clean, then APGD-CE → APGD-T → Square on what is left) | full
  config.eval.suite = "paper"           # full = paper ∪ standard ∪ eval.estimators' variants
  # The paper's suite (Table 1's columns); other step counts as pgd<k>, apgd-ce<k>, apgd-dlr<k>.
  config.eval.attacks = "clean,fgsm,pgd7,pgd10,pgd20,pgd40,apgd-ce,apgd-dlr"
  config.eval.epsilon = 8 / 255         # L∞ radius
  config.eval.batch_size = 64
  config.eval.num_examples = 0          # 0 = the full test split
  config.eval.seed = 0                  # attacks' random starts
  config.eval.surrogate = ""            # attack through another surrogate ("" = the model's)
  config.eval.surrogate_width = 0.0     # its width (0 = the surrogate's default)
  config.eval.cascade_steps = 100       # standard cascade: APGD-CE, APGD-T (per target) iterations
  config.eval.apgd_targets = 9          # APGD-T: target classes, the top-k others by clean logit
  config.eval.square_queries = 5000     # Square: query budget per image (>= 1), its start included
  # Also run every gradient attack through these (bptr, rga, hart, assg, pdsg, or a surrogate[:width]
  # such as sigmoid:4, straight_through), with the per-example worst case; "" = none ("full": all);
  # "none" = none, also in "full".
  config.eval.estimators = ""
  # Stochastic models (model.encoding=poisson): attack the expectation over this many draws (EOT)
  # and score by majority vote over as many; 1 on a stochastic model is warned about.
  config.eval.eot_draws = 1
  # Masking check: also craft each gradient attack on this run's model (another workdir, say the
  # same model trained with another surrogate) and count where the transfer beats white-box.
  config.eval.transfer_from = ""
  # ASSG (eval.estimators entry "assg"): its search budget, the bounds A tried per example, spread
  # over [0.35, 0.49] (1 = the reference's A = 0.425); each costs one more run of the attack.
  config.eval.assg_search = 3
  # --mode=certify, randomized smoothing (Cohen et al., 2019): noise σ in [0, 1] pixel units (train
  # with --config.training.mode=gaussian --config.training.gaussian_std=σ), N0 draws that pick the
  # class, N that bound its probability at level 1 − α, noisy copies per forward pass (divides both).
  config.eval.certify_sigma = 0.25
  config.eval.certify_n0 = 100
  config.eval.certify_n = 1000
  config.eval.certify_alpha = 0.001
  config.eval.certify_draws_per_pass = 10
  config.eval.sweep_epsilons = "10,20,30,40,50,60,70,80,90,100"  # Figure 3 sweep, in /255
  config.eval.sanity_checks = True      # also run PGD-10 at ε=64/255 and the zero-gradient count
  config.eval.progress_bar = True       # one progress bar per attack
  config.eval.data_dir = ""             # test .npz location; "" = the run's saved data.dir
  config.eval.tfds_data_dir = ""        # TFDS data dir; "" = the run's saved data.tfds_data_dir
  return config
