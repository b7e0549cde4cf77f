"""CIFAR data, by floor: where it comes from, how it is augmented, how it is batched.

* :mod:`jsnn.data.sources` — host side (NumPy): CIFAR-10/100 from ``.npz`` files or TFDS, the
  synthetic smoke set, class-balanced subsets; every array validated at load time;
* :mod:`jsnn.data.augmentation` — pure JAX on the device: the reference's crop → flip → Cutout;
* :mod:`jsnn.data.batching` — fixed-shape training batches drawn on the device and padded,
  masked evaluation batches.

The pure training step imports only the last two; the names of all three are re-exported here.
"""

from jsnn.data.augmentation import augment, random_crop, random_cutout, random_flip, to_float
from jsnn.data.batching import (batch_indices, epoch_batch_indices, epoch_permutation,
                                eval_batches, steps_per_epoch)
from jsnn.data.sources import (IMAGE_SHAPE, NUM_CLASSES, SPLITS, SYNTHETIC_TEST_SIZE,
                               SYNTHETIC_TRAIN_SIZE, DataUnavailableError, Dataset,
                               balanced_subset, load_dataset, load_split, make_synthetic)

__all__ = [
    "augment", "random_crop", "random_cutout", "random_flip", "to_float", "batch_indices",
    "epoch_batch_indices", "epoch_permutation", "eval_batches", "steps_per_epoch", "IMAGE_SHAPE",
    "NUM_CLASSES", "SPLITS", "SYNTHETIC_TEST_SIZE", "SYNTHETIC_TRAIN_SIZE",
    "DataUnavailableError", "Dataset", "balanced_subset", "load_dataset", "load_split",
    "make_synthetic",
]
