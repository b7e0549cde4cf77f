"""Where the data comes from (host side, NumPy): CIFAR-10/100 files, TFDS, a synthetic set.

Reads CIFAR-10/100 from either

* NumPy ``.npz`` files (``data_dir``): a directory of ``train_0.npz … train_k.npz`` (arrays
  ``x_train``, ``y_train``) plus ``test.npz`` (``x_test``, ``y_test``), concatenated in order; or a
  single ``.npz`` holding all four arrays (a path to it, or a directory holding only it); or
* TFDS prepared as array_record, read with ``tfds.data_source`` so that TensorFlow is never imported
  (see ../shared/tfds-notes.md), reordered by ``id`` into the canonical CIFAR order;

or generates a small learnable ``"synthetic"`` set for smoke runs. Every array is validated, so a
bad file fails at load time with its name and the bad value rather than as a shape error in jit.
"""

import dataclasses
import os
import re
import zipfile
import zlib
import numpy as np

from jsnn import errors

NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "synthetic": 10}
IMAGE_SHAPE = (32, 32, 3)
SPLITS = ("train", "test")
# Default sizes of the synthetic set: big enough to learn from in one short epoch, small enough
# for a CPU smoke test.
SYNTHETIC_TRAIN_SIZE = 512
SYNTHETIC_TEST_SIZE = 256

_SHARD_RE = re.compile(r"^train_(\d+)\.npz$")


class DataUnavailableError(errors.Error, RuntimeError):
  """The requested dataset is neither prepared locally nor downloadable."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """An image-classification dataset held in host memory.

  Attributes:
    train_images: uint8 [N, 32, 32, 3], NHWC RGB.
    train_labels: int32 [N].
    test_images: uint8 [M, 32, 32, 3].
    test_labels: int32 [M].
    validation_images: uint8 [V, 32, 32, 3], held out from the training set (V may be 0).
    validation_labels: int32 [V].
    num_classes: number of classes; every label is in [0, num_classes).
    name: "cifar10", "cifar100" or "synthetic".
    source: where the arrays came from, and which subset was taken, for logs and results.
  """

  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  validation_images: np.ndarray
  validation_labels: np.ndarray
  num_classes: int
  name: str
  source: str

  def __repr__(self) -> str:
    # The default repr would print the arrays.
    return (f"Dataset(name={self.name!r}, train={len(self.train_labels)}, "
            f"validation={len(self.validation_labels)}, test={len(self.test_labels)}, "
            f"num_classes={self.num_classes}, source={self.source!r})")


# -------------------------------------------------------------------------------------------------
# Loading
# -------------------------------------------------------------------------------------------------


def load_dataset(name: str, *, data_dir: str | None = None, tfds_data_dir: str | None = None,
                 download: bool = False, train_size: int | None = None, validation_size: int = 0,
                 seed: int = 0) -> Dataset:
  """Loads CIFAR-10/100 (or the synthetic set) into host memory, validated.

  The validation split is drawn first from the full training set, then ``train_size`` examples
  from what remains, both class-balanced and seeded. So the validation set does not depend on
  ``train_size``, and it never overlaps the training subset: select checkpoints on it, not on test.

  Args:
    name: "cifar10", "cifar100" or "synthetic".
    data_dir: directory of ``.npz`` files, or one ``.npz`` file (see the module docstring). When
      None, TFDS is used. Ignored for "synthetic".
    tfds_data_dir: TFDS data directory; None means TFDS's default (``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``).
    download: let TFDS download and prepare the data (needs TensorFlow and internet).
    train_size: size of the training subset; None keeps all remaining training examples. For
      "synthetic" it is the number of training examples generated (default 512).
    validation_size: number of training examples held out as a validation split.
    seed: seed of the subset draws (and of the synthetic data).

  Returns:
    A ``Dataset``.

  Raises:
    ValueError: unknown name, missing or malformed files, or impossible sizes.
    DataUnavailableError: TFDS has no prepared copy and cannot download one.
  """
  _check_name(name)
  if validation_size < 0 or (train_size is not None and train_size <= 0):
    raise ValueError(f"train_size must be positive and validation_size non-negative, got "
                     f"train_size={train_size}, validation_size={validation_size}")
  num_classes = NUM_CLASSES[name]

  if name == "synthetic":
    size = SYNTHETIC_TRAIN_SIZE if train_size is None else train_size
    x_train, y_train = make_synthetic(size + validation_size, num_classes, seed=seed, split="train")
    x_test, y_test = make_synthetic(SYNTHETIC_TEST_SIZE, num_classes, seed=seed, split="test")
    source = f"synthetic(seed={seed})"
    train_size = size
  else:
    source = _describe_source(name, data_dir, tfds_data_dir)
    x_train, y_train = load_split(name, "train", data_dir=data_dir, tfds_data_dir=tfds_data_dir,
                                  download=download)
    x_test, y_test = load_split(name, "test", data_dir=data_dir, tfds_data_dir=tfds_data_dir,
                                download=download)

  num_full = len(y_train)
  rng = np.random.default_rng(seed)
  rest = np.arange(num_full)
  val_idx = rest[:0]
  if validation_size:
    val_idx = rest[balanced_subset(y_train, validation_size, num_classes, rng=rng)]
    rest = np.setdiff1d(rest, val_idx, assume_unique=True)
  if train_size is not None and train_size != len(rest):
    if train_size > len(rest):
      raise ValueError(f"train_size={train_size} is more than the {len(rest)} training examples "
                       f"left after holding out validation_size={validation_size} of {num_full}")
    rest = rest[balanced_subset(y_train[rest], train_size, num_classes, rng=rng)]
  if name != "synthetic" and (validation_size or len(rest) != num_full):
    source += (f"; train subset {len(rest)} and validation {len(val_idx)} of {num_full} "
               f"(class-balanced, seed {seed})")

  return Dataset(
      train_images=x_train[rest], train_labels=y_train[rest],
      test_images=x_test, test_labels=y_test,
      validation_images=x_train[val_idx], validation_labels=y_train[val_idx],
      num_classes=num_classes, name=name, source=source)


def load_split(name: str, split: str, *, data_dir: str | None = None,
               tfds_data_dir: str | None = None,
               download: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """Loads one split ("train" or "test") of CIFAR-10/100, validated.

  Useful when only the test set is needed (evaluation), which skips reading the training shards.

  Args:
    name: "cifar10" or "cifar100".
    split: "train" or "test".
    data_dir: directory of ``.npz`` files or one ``.npz`` file; None reads TFDS.
    tfds_data_dir: TFDS data directory (None: TFDS's default).
    download: let TFDS download and prepare the data.

  Returns:
    ``(images, labels)``: uint8 [N, 32, 32, 3] and int32 [N], in canonical CIFAR order.
  """
  _check_name(name)
  if name == "synthetic":
    raise ValueError("load_split reads stored data; use load_dataset('synthetic') instead")
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
  if data_dir is not None:
    return _load_npz_split(os.fspath(data_dir), split, NUM_CLASSES[name])
  return _load_tfds_split(name, split, tfds_data_dir, download)


def _check_name(name: str) -> None:
  if name not in NUM_CLASSES:
    raise ValueError(f"unknown dataset {name!r}; choose one of {tuple(NUM_CLASSES)}")


def _describe_source(name, data_dir, tfds_data_dir) -> str:
  if data_dir is not None:
    return f"npz:{os.path.abspath(os.fspath(data_dir))}"
  return f"tfds:{name} (array_record, data_dir={_tfds_dir(tfds_data_dir)})"


# --- .npz files ----------------------------------------------------------------------------------


def _npz_files(data_dir: str, split: str) -> list[str]:
  """The files holding `split`, in the order their arrays are concatenated."""
  if os.path.isfile(data_dir):
    return [data_dir]
  if not os.path.isdir(data_dir):
    raise ValueError(f"data directory or .npz file {data_dir!r} does not exist")
  names = sorted(os.listdir(data_dir))
  shards = sorted((int(m.group(1)), n) for n in names if (m := _SHARD_RE.match(n)))
  if shards or "test.npz" in names:
    if split == "train":
      if not shards:
        raise ValueError(f"no train_<k>.npz files in {data_dir!r} (found {names})")
      # Shards must be train_0 … train_k with none missing, else the training set would silently
      # shrink and shift.
      indices = [k for k, _ in shards]
      if indices != list(range(len(indices))):
        raise ValueError(f"train shards in {data_dir!r} are not numbered 0..k without gaps: "
                         f"{[n for _, n in shards]}")
      return [os.path.join(data_dir, n) for _, n in shards]
    if "test.npz" not in names:
      raise ValueError(f"no test.npz in {data_dir!r} (found {names})")
    return [os.path.join(data_dir, "test.npz")]
  single = [n for n in names if n.endswith(".npz")]
  if len(single) != 1:
    raise ValueError(
        f"{data_dir!r} holds neither train_<k>.npz + test.npz nor exactly one .npz with x_train, "
        f"y_train, x_test and y_test (found {names})")
  return [os.path.join(data_dir, single[0])]


# What NumPy raises for a truncated, damaged or foreign .npz file.
_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def _unreadable_npz(path: str, error: BaseException) -> str:
  try:
    with open(path, "rb") as f:
      head = f.read(4)
  except OSError:
    head = b""
  # Without a zip header NumPy guesses a pickle and says so, which misleads.
  why = "not a .npz (zip) file" if head != b"PK\x03\x04" else f"damaged or truncated ({error})"
  return (f"cannot read {path!r} as a .npz archive: {why}; replace it with a good copy of the "
          f"data")


def _load_npz_split(data_dir: str, split: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  x_key, y_key = f"x_{split}", f"y_{split}"
  images, labels = [], []
  for path in _npz_files(data_dir, split):
    try:
      archive = np.load(path, allow_pickle=False)
    except _NPZ_ERRORS as e:
      raise ValueError(_unreadable_npz(path, e)) from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
      raise ValueError(f"{path!r} is a single .npy array, not a .npz archive of named arrays")
    with archive:
      missing = [k for k in (x_key, y_key) if k not in archive.files]
      if missing:
        raise ValueError(f"{path!r} lacks array(s) {missing}; found {sorted(archive.files)}")
      try:
        # Members are read (and decompressed) only here: a damaged one fails here.
        x, y = archive[x_key], archive[y_key]
      except _NPZ_ERRORS as e:
        raise ValueError(_unreadable_npz(path, e)) from e
    _validate_arrays(x, y, num_classes, where=f"{path!r} ({x_key}, {y_key})", check_classes=False)
    images.append(x)
    labels.append(y)
  x, y = np.concatenate(images), np.concatenate(labels)
  return _validate_arrays(x, y, num_classes, where=f"{split} split of {data_dir!r}")


def _validate_arrays(images, labels, num_classes: int, *, where: str,
                     check_classes: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """Checks dtype, shape and label range; returns (uint8 images, int32 labels)."""
  if images.dtype != np.uint8:
    raise ValueError(f"{where}: images must be uint8 (0..255), got dtype {images.dtype}")
  if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
    raise ValueError(f"{where}: images must have shape [N, 32, 32, 3] (NHWC), got "
                     f"{images.shape}")
  if not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"{where}: labels must be integers, got dtype {labels.dtype}")
  if labels.ndim != 1:
    raise ValueError(f"{where}: labels must be 1-D [N], got shape {labels.shape}")
  if len(labels) != len(images):
    raise ValueError(f"{where}: {len(images)} images but {len(labels)} labels")
  if len(labels) == 0:
    raise ValueError(f"{where}: the split is empty")
  lo, hi = int(labels.min()), int(labels.max())
  if lo < 0 or hi >= num_classes:
    bad = labels[(labels < 0) | (labels >= num_classes)]
    raise ValueError(f"{where}: labels must be in [0, {num_classes}), found {bad[:5].tolist()} "
                     f"(min {lo}, max {hi})")
  # A constant label column means a broken conversion, not a dataset.
  if check_classes and lo == hi:
    raise ValueError(f"{where}: every label is {lo}; a classification split needs more than one "
                     "class")
  return images, labels.astype(np.int32)


# --- TFDS ----------------------------------------------------------------------------------------


def _tfds_dir(tfds_data_dir: str | None) -> str:
  if tfds_data_dir is not None:
    return os.fspath(tfds_data_dir)
  return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def _unavailable_message(name: str, tfds_data_dir: str | None, cause: BaseException) -> str:
  looked_in = _tfds_dir(tfds_data_dir)
  dir_arg = "" if tfds_data_dir is None else f", data_dir={looked_in!r}"
  return (
      f"dataset {name!r} is not available: TFDS found no prepared array_record copy in "
      f"{looked_in} and cannot download it here ({type(cause).__name__}: {cause}).\n"
      "Get the data in one of two ways:\n"
      "  1. Read NumPy files instead: pass --config.data.dir=/path/to/npz_dir, a directory holding "
      "train_0.npz ... train_k.npz (arrays x_train uint8 [n,32,32,3] and y_train int [n], "
      "concatenated in order) and test.npz (x_test, y_test), or one .npz file holding all four "
      "arrays.\n"
      "  2. Prepare TFDS once on a machine with TensorFlow and internet access:\n"
      "       pip install -e '.[prepare]'\n"
      "       python -c \"import tensorflow_datasets as tfds; "
      f"tfds.builder({name!r}{dir_arg}, file_format='array_record').download_and_prepare()\"\n"
      f"     then copy the resulting {name}/ folder into {looked_in} (or set "
      "--config.data.tfds_data_dir to the folder holding it). Training reads it without "
      "TensorFlow.")


def _load_tfds_split(name: str, split: str, tfds_data_dir: str | None,
                     download: bool) -> tuple[np.ndarray, np.ndarray]:
  import tensorflow_datasets as tfds  # Imported lazily: only this path needs it.

  try:
    source = tfds.data_source(name, split=split, data_dir=tfds_data_dir, download=download,
                              builder_kwargs={"file_format": "array_record"})
  except Exception as e:  # TFDS raises KeyError, FileNotFoundError, ImportError, ... here.
    raise DataUnavailableError(_unavailable_message(name, tfds_data_dir, e)) from e

  n = len(source)
  try:
    try:
      records = source.__getitems__(list(range(n)))
    except (TypeError, AttributeError, NotImplementedError):
      # `tfds.testing.mock_data` sources reject batched access; per-index access works everywhere.
      records = [source[i] for i in range(n)]
  except ImportError as e:
    raise DataUnavailableError(
        f"decoding TFDS {name!r} images needs Pillow (or OpenCV): pip install pillow ({e})") from e
  if not records:
    raise ValueError(f"TFDS {name!r} split {split!r} in {_tfds_dir(tfds_data_dir)} is empty")

  # The stored order is a deterministic shuffle; `id` ("train_00000", ...) is the canonical
  # position.
  ids = [_id_key(r["id"]) for r in records]
  order = sorted(range(n), key=ids.__getitem__)
  images = np.stack([np.asarray(records[i]["image"]) for i in order])
  labels = np.asarray([int(records[i]["label"]) for i in order])
  return _validate_arrays(images, labels, NUM_CLASSES[name],
                          where=f"TFDS {name!r} split {split!r}")


def _id_key(example_id) -> tuple[str, int]:
  """Sort key of a TFDS id: numeric on a trailing number, so order does not rely on zero padding."""
  if isinstance(example_id, bytes):
    example_id = example_id.decode()
  example_id = str(example_id)
  m = re.match(r"^(.*?)(\d+)$", example_id)
  return (m.group(1), int(m.group(2))) if m else (example_id, -1)


# --- subsets and the synthetic set ---------------------------------------------------------------


def balanced_subset(labels: np.ndarray, size: int, num_classes: int, *,
                    rng: np.random.Generator) -> np.ndarray:
  """Draws a class-balanced random subset of positions, without replacement.

  Per-class counts differ by at most one, except where a class has fewer examples than its share;
  the shortfall then goes to the other classes. Which classes get the extra one is random.

  Args:
    labels: int [N].
    size: number of positions to draw, at most N.
    num_classes: number of classes.
    rng: NumPy generator; the draw is deterministic given its state.

  Returns:
    Sorted int64 positions into ``labels``, shape [size].
  """
  if size > len(labels):
    raise ValueError(f"cannot draw {size} examples from {len(labels)}")
  by_class = [np.flatnonzero(labels == c) for c in range(num_classes)]
  # Fill the smallest classes first, each up to an equal share of what is left; ties are broken
  # at random so the classes receiving the remainder are not always the low-numbered ones.
  tie_break = rng.permutation(num_classes)
  order = sorted(range(num_classes), key=lambda c: (len(by_class[c]), tie_break[c]))
  quota = [0] * num_classes
  remaining = size
  for i, c in enumerate(order):
    quota[c] = min(len(by_class[c]), -(-remaining // (num_classes - i)))
    remaining -= quota[c]
  picks = [rng.choice(by_class[c], quota[c], replace=False) for c in range(num_classes)]
  return np.sort(np.concatenate(picks))


def make_synthetic(num_examples: int, num_classes: int = 10, *, seed: int = 0,
                   split: str = "train") -> tuple[np.ndarray, np.ndarray]:
  """A tiny learnable image set: a fixed smooth colour pattern per class, plus noise.

  Each class owns a random 4×4 RGB pattern, upsampled to 32×32 and made left-right symmetric, so
  random crops and flips keep the class recognisable. Examples add a random brightness shift and
  pixel noise. Train and test share the class patterns (set by ``seed``) but not the noise.

  Args:
    num_examples: number of examples, with labels balanced over classes.
    num_classes: number of classes.
    seed: seed of the class patterns and the noise.
    split: "train" or "test"; selects an independent noise stream.

  Returns:
    ``(images, labels)``: uint8 [N, 32, 32, 3] and int32 [N].
  """
  patterns = np.random.default_rng([seed, 0]).uniform(0.15, 0.85, (num_classes, 4, 4, 3))
  patterns = 0.5 * (patterns + patterns[:, :, ::-1])
  patterns = np.repeat(np.repeat(patterns, 8, axis=1), 8, axis=2)
  # Smooth the block edges with a 3-tap box filter (wrapping), keeping the pattern low-frequency.
  for axis in (1, 2):
    patterns = (np.roll(patterns, 1, axis) + patterns + np.roll(patterns, -1, axis)) / 3
  rng = np.random.default_rng([seed, 1 + SPLITS.index(split)])
  labels = rng.permutation(np.arange(num_examples) % num_classes).astype(np.int32)
  brightness = rng.uniform(-0.1, 0.1, (num_examples, 1, 1, 1))
  noise = rng.normal(0.0, 0.08, (num_examples, *IMAGE_SHAPE))
  images = np.clip(patterns[labels] + brightness + noise, 0.0, 1.0)
  return np.round(images * 255).astype(np.uint8), labels
