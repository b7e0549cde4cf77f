"""Tests of jsnn.data: npz/TFDS loading and validation, subsets, augmentation, batching."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jsnn import data


def _images(n, seed=0):
  """uint8 [n, 32, 32, 3]; pixel (0, 0) encodes the index so examples can be told apart."""
  x = np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
  x[:, 0, 0, 0] = np.arange(n) % 256
  x[:, 0, 0, 1] = np.arange(n) // 256
  return x


def _ids(images):
  return images[:, 0, 0, 0].astype(int) + 256 * images[:, 0, 0, 1].astype(int)


def _labels(n, num_classes=10):
  return np.arange(n) % num_classes


@pytest.fixture
def npz_dir(tmp_path):
  """A sharded directory like shared/data/cifar10: train_0 (20), train_1 (15), test (10)."""
  x, y = _images(35), _labels(35)
  np.savez(tmp_path / "train_0.npz", x_train=x[:20], y_train=y[:20])
  np.savez(tmp_path / "train_1.npz", x_train=x[20:], y_train=y[20:])
  np.savez(tmp_path / "test.npz", x_test=_images(10, seed=1), y_test=_labels(10))
  return tmp_path


# --- loading -------------------------------------------------------------------------------------


def test_unknown_name_lists_choices():
  with pytest.raises(ValueError, match=r"'mnist'.*cifar10.*cifar100.*synthetic"):
    data.load_dataset("mnist")


def test_npz_dir_concatenates_shards_in_order(npz_dir):
  ds = data.load_dataset("cifar10", data_dir=str(npz_dir))
  np.testing.assert_array_equal(_ids(ds.train_images), np.arange(35))
  np.testing.assert_array_equal(ds.train_labels, _labels(35))
  np.testing.assert_array_equal(ds.test_images, _images(10, seed=1))
  assert ds.train_images.dtype == np.uint8 and ds.train_labels.dtype == np.int32
  assert ds.test_labels.dtype == np.int32
  assert ds.validation_images.shape == (0, 32, 32, 3) and ds.validation_labels.shape == (0,)
  assert (ds.num_classes, ds.name) == (10, "cifar10")
  assert str(npz_dir) in ds.source


def test_shards_sort_numerically(tmp_path):
  x, y = _images(24), _labels(24)
  for k in range(12):  # train_10 must come after train_9, not after train_1.
    np.savez(tmp_path / f"train_{k}.npz", x_train=x[2 * k:2 * k + 2], y_train=y[2 * k:2 * k + 2])
  np.savez(tmp_path / "test.npz", x_test=x[:4], y_test=y[:4])
  x_train, _ = data.load_split("cifar10", "train", data_dir=str(tmp_path))
  np.testing.assert_array_equal(_ids(x_train), np.arange(24))


@pytest.mark.parametrize("as_file", [True, False])
def test_single_npz_file_or_dir(tmp_path, as_file):
  path = tmp_path / "mini.npz"
  np.savez(path, x_train=_images(30), y_train=_labels(30, 100), x_test=_images(8),
           y_test=_labels(8, 100), train_idx=np.arange(30))
  ds = data.load_dataset("cifar100", data_dir=str(path if as_file else tmp_path))
  assert ds.train_images.shape == (30, 32, 32, 3) and ds.test_labels.shape == (8,)
  assert ds.num_classes == 100
  x_test, y_test = data.load_split("cifar100", "test", data_dir=str(path))
  np.testing.assert_array_equal(x_test, _images(8))
  np.testing.assert_array_equal(y_test, _labels(8, 100))


def _write_single(tmp_path, **overrides):
  arrays = dict(x_train=_images(20), y_train=_labels(20), x_test=_images(6), y_test=_labels(6))
  arrays.update(overrides)
  arrays = {k: v for k, v in arrays.items() if v is not None}
  path = tmp_path / "bad.npz"
  np.savez(path, **arrays)
  return str(path)


@pytest.mark.parametrize("overrides, expected", [
    (dict(x_train=_images(20).astype(np.float32)), r"bad\.npz.*uint8.*float32"),
    (dict(x_train=_images(20).transpose(0, 3, 1, 2)), r"bad\.npz.*\(20, 3, 32, 32\)"),
    (dict(x_train=_images(20)[:, :28, :28]), r"bad\.npz.*\(20, 28, 28, 3\)"),
    (dict(y_train=np.where(_labels(20) == 3, 10, _labels(20))), r"bad\.npz.*\[0, 10\).*10"),
    (dict(y_train=_labels(20) - 1), r"bad\.npz.*\[0, 10\).*-1"),
    (dict(y_train=_labels(20).astype(np.float32)), r"bad\.npz.*integers.*float32"),
    (dict(y_train=_labels(20)[:, None]), r"bad\.npz.*1-D.*\(20, 1\)"),
    (dict(y_train=_labels(19)), r"bad\.npz.*20 images but 19 labels"),
    (dict(y_train=np.zeros(20, np.int64)), r"every label is 0"),
    (dict(x_test=_images(0), y_test=_labels(0)), r"empty"),
    (dict(y_test=None), r"bad\.npz.*\['y_test'\].*found \['x_test', 'x_train', 'y_train'\]"),
])
def test_validation_errors_name_file_and_value(tmp_path, overrides, expected):
  path = _write_single(tmp_path, **overrides)
  with pytest.raises(ValueError, match=expected):
    data.load_dataset("cifar10", data_dir=path)


def test_missing_directory(tmp_path):
  missing = str(tmp_path / "nope")
  with pytest.raises(ValueError, match="nope.*does not exist"):
    data.load_dataset("cifar10", data_dir=missing)


def test_npy_file_is_rejected(tmp_path):
  np.save(tmp_path / "x.npy", _images(3))
  with pytest.raises(ValueError, match=r"x\.npy.*not a \.npz"):
    data.load_dataset("cifar10", data_dir=str(tmp_path / "x.npy"))


def test_directory_without_data_lists_its_files(tmp_path):
  (tmp_path / "notes.txt").write_text("")
  with pytest.raises(ValueError, match=r"notes\.txt"):
    data.load_dataset("cifar10", data_dir=str(tmp_path))


def test_missing_test_file_and_shard_gap(npz_dir):
  os.remove(npz_dir / "test.npz")
  with pytest.raises(ValueError, match=r"no test\.npz"):
    data.load_split("cifar10", "test", data_dir=str(npz_dir))
  os.rename(npz_dir / "train_1.npz", npz_dir / "train_2.npz")
  with pytest.raises(ValueError, match=r"without gaps.*train_2\.npz"):
    data.load_split("cifar10", "train", data_dir=str(npz_dir))


def test_tfds_absent_says_how_to_get_the_data(tmp_path):
  empty = tmp_path / "tfds_empty"
  empty.mkdir()
  with pytest.raises(data.DataUnavailableError) as info:
    data.load_dataset("cifar10", tfds_data_dir=str(empty))
  message = str(info.value)
  assert isinstance(info.value, RuntimeError) and info.value.__cause__ is not None
  assert "--config.data.dir=/path/to/npz_dir" in message
  assert "train_0.npz" in message and "test.npz" in message
  assert "pip install -e '.[prepare]'" in message
  assert "download_and_prepare()" in message and "file_format='array_record'" in message
  assert str(empty) in message


@pytest.mark.parametrize("name, num_classes", [("cifar10", 10), ("cifar100", 100)])
def test_tfds_mock_data_without_tensorflow(tmp_path, name, num_classes):
  import tensorflow_datasets as tfds

  with tfds.testing.mock_data(num_examples=12):
    ds = data.load_dataset(name, tfds_data_dir=str(tmp_path))
    source = tfds.data_source(name, split="test", data_dir=str(tmp_path),
                              builder_kwargs={"file_format": "array_record"})
    records = [source[i] for i in range(len(source))]
  assert "tensorflow" not in sys.modules
  assert ds.train_images.shape == (12, 32, 32, 3) and ds.train_images.dtype == np.uint8
  assert ds.test_labels.shape == (12,) and ds.test_labels.dtype == np.int32
  assert ds.num_classes == num_classes and ds.source.startswith(f"tfds:{name}")
  # Reordered by id, not left in stored order.
  records.sort(key=lambda r: data.sources._id_key(r["id"]))
  np.testing.assert_array_equal(ds.test_images, np.stack([r["image"] for r in records]))
  np.testing.assert_array_equal(ds.test_labels, [int(r["label"]) for r in records])


def test_id_key_orders_numerically():
  ids = [b"train_10", b"train_9", "train_00002", b"train_00000"]
  assert sorted(ids, key=data.sources._id_key) == [b"train_00000", "train_00002", b"train_9",
                                                   b"train_10"]


def test_real_cifar10_mini(cifar10_mini_path):
  ds = data.load_dataset("cifar10", data_dir=cifar10_mini_path)
  assert ds.train_images.shape == (5000, 32, 32, 3) and ds.test_images.shape == (1000, 32, 32, 3)
  np.testing.assert_array_equal(np.bincount(ds.train_labels), [500] * 10)
  np.testing.assert_array_equal(np.bincount(ds.test_labels), [100] * 10)


def test_real_cifar10_test_split(cifar10_dir):
  # Only the test file: reading all train shards would be slow.
  images, labels = data.load_split("cifar10", "test", data_dir=cifar10_dir)
  assert images.shape == (10000, 32, 32, 3) and labels.dtype == np.int32
  np.testing.assert_array_equal(labels[:5], [3, 8, 8, 0, 6])
  np.testing.assert_array_equal(images[0, 0, 0], [158, 112, 49])


# --- subsets and validation split ----------------------------------------------------------------


def test_subset_and_validation_are_disjoint_balanced_deterministic(tmp_path):
  # Unbalanced source: class 0 has only 5 examples, the others 20 each.
  labels = np.concatenate([np.zeros(5, int), np.repeat(np.arange(1, 10), 20)])
  np.savez(tmp_path / "d.npz", x_train=_images(len(labels)), y_train=labels,
           x_test=_images(4), y_test=_labels(4))
  load = lambda seed: data.load_dataset("cifar10", data_dir=str(tmp_path / "d.npz"),
                                        train_size=53, validation_size=30, seed=seed)
  a, b, c = load(0), load(0), load(1)
  train_ids, val_ids = _ids(a.train_images), _ids(a.validation_images)
  assert len(train_ids) == 53 and len(val_ids) == 30
  assert not set(train_ids) & set(val_ids)
  np.testing.assert_array_equal(labels[train_ids], a.train_labels)
  np.testing.assert_array_equal(labels[val_ids], a.validation_labels)
  np.testing.assert_array_equal(np.bincount(a.validation_labels, minlength=10), [3] * 10)
  # Class 0 has 2 left after validation; the other classes share the rest evenly.
  train_counts = np.bincount(a.train_labels, minlength=10)
  assert train_counts[0] == 2 and set(train_counts[1:]) == {5, 6} and train_counts.sum() == 53
  np.testing.assert_array_equal(_ids(b.train_images), train_ids)
  np.testing.assert_array_equal(_ids(b.validation_images), val_ids)
  assert set(_ids(c.train_images)) != set(train_ids)
  assert "train subset 53 and validation 30 of 185" in a.source
  with pytest.raises(ValueError, match="train_size=160"):
    data.load_dataset("cifar10", data_dir=str(tmp_path / "d.npz"), train_size=160,
                      validation_size=30)


def test_synthetic_is_deterministic_and_learnable():
  ds = data.load_dataset("synthetic", validation_size=40)
  assert ds.train_images.shape == (512, 32, 32, 3) and ds.test_images.shape == (256, 32, 32, 3)
  assert ds.validation_images.shape == (40, 32, 32, 3) and ds.num_classes == 10
  counts = np.bincount(ds.train_labels, minlength=10)
  assert counts.max() - counts.min() <= 1
  again = data.load_dataset("synthetic", validation_size=40)
  np.testing.assert_array_equal(ds.train_images, again.train_images)
  np.testing.assert_array_equal(ds.test_images, again.test_images)
  # Nearest class mean (fitted on train) classifies flipped test images well above chance.
  x_train = ds.train_images.reshape(512, -1).astype(np.float32)
  means = np.stack([x_train[ds.train_labels == c].mean(0) for c in range(10)])
  x_test = ds.test_images[:, :, ::-1].reshape(256, -1).astype(np.float32)
  predicted = np.argmin(((x_test[:, None] - means[None]) ** 2).sum(-1), axis=1)
  assert np.mean(predicted == ds.test_labels) > 0.9
  assert data.load_dataset("synthetic", train_size=64).train_images.shape[0] == 64


# --- augmentation --------------------------------------------------------------------------------


@pytest.fixture
def float_images(key):
  # Strictly positive, so zeros can only come from padding or Cutout.
  return jax.random.uniform(key, (16, 32, 32, 3), minval=0.1, maxval=1.0)


def test_to_float():
  out = data.to_float(np.array([[0, 51, 255]], np.uint8))
  assert out.dtype == jnp.float32
  np.testing.assert_allclose(out, [[0.0, 0.2, 1.0]])


def test_random_crop_is_a_shifted_window(key, float_images):
  out = np.asarray(jax.jit(data.random_crop)(jax.random.fold_in(key, 1), float_images))
  padded = np.pad(np.asarray(float_images), ((0, 0), (4, 4), (4, 4), (0, 0)))
  offsets = []
  for b in range(len(out)):
    matches = [(dy, dx) for dy in range(9) for dx in range(9)
               if np.array_equal(padded[b, dy:dy + 32, dx:dx + 32], out[b])]
    assert len(matches) == 1, f"example {b}: {matches}"
    offsets.append(matches[0])
  assert len(set(offsets)) > 4  # Per-example offsets, not one for the batch.
  np.testing.assert_array_equal(data.random_crop(key, float_images, padding=0), float_images)


def test_random_flip(key, float_images):
  once = data.random_flip(key, float_images)
  np.testing.assert_array_equal(data.random_flip(key, once), float_images)
  flipped = [bool(jnp.array_equal(o, x[:, ::-1])) for o, x in zip(once, float_images)]
  kept = [bool(jnp.array_equal(o, x)) for o, x in zip(once, float_images)]
  assert all(f != k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_cutout_zeroes_one_clipped_square(key):
  images = jax.random.uniform(key, (64, 32, 32, 3), minval=0.1, maxval=1.0)
  out = np.asarray(jax.jit(data.random_cutout)(jax.random.fold_in(key, 2), images))
  zero = out == 0
  np.testing.assert_array_equal(out[~zero], np.asarray(images)[~zero])  # The rest is unchanged.
  hole = zero.all(-1)
  np.testing.assert_array_equal(zero, np.repeat(hole[..., None], 3, -1))  # All channels.
  areas = []
  for h in hole:
    rows, cols = np.flatnonzero(h.any(1)), np.flatnonzero(h.any(0))
    assert len(rows) <= 16 and len(cols) <= 16
    assert h.sum() == len(rows) * len(cols)  # A filled rectangle...
    assert np.array_equal(rows, np.arange(rows[0], rows[-1] + 1)) if len(rows) else True
    areas.append(h.sum())
  assert max(areas) == 256 and min(areas) < 256  # ...full-size, or clipped at a border.


def test_augment(key, float_images):
  fn = jax.jit(data.augment)
  out = fn(key, float_images)
  assert out.shape == float_images.shape and out.dtype == jnp.float32
  assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
  np.testing.assert_array_equal(out, fn(key, float_images))
  assert not np.array_equal(out, fn(jax.random.fold_in(key, 1), float_images))
  off = data.augment(key, float_images, crop=False, flip=False, cutout=False)
  np.testing.assert_array_equal(off, float_images)
  assert (np.asarray(out) == 0).any()  # Cutout ran.


# --- batching ------------------------------------------------------------------------------------


def test_steps_per_epoch():
  assert data.steps_per_epoch(50_000, 64) == 782
  assert data.steps_per_epoch(64, 64) == 1 and data.steps_per_epoch(65, 64) == 2


def test_batches_wrap_and_cover_every_example(key):
  n, batch = 10, 4
  perm = data.epoch_permutation(key, n)
  assert sorted(np.asarray(perm).tolist()) == list(range(n))
  traces = []

  @jax.jit
  def indices(step):
    traces.append(None)
    return data.batch_indices(perm, batch, step)

  steps = data.steps_per_epoch(n, batch)
  batches = [np.asarray(indices(jnp.int32(s))) for s in range(steps)]
  assert len(traces) == 1 and all(b.shape == (batch,) for b in batches)
  assert set(np.concatenate(batches)) == set(range(n))
  np.testing.assert_array_equal(batches[-1], np.asarray(perm)[[8, 9, 0, 1]])


def test_epoch_batch_indices_reshuffle_per_epoch(key):
  n, batch = 10, 4
  fn = jax.jit(data.epoch_batch_indices, static_argnums=(1, 2))
  epochs = [np.concatenate([fn(key, n, batch, jnp.int32(3 * e + s)) for s in range(3)])
            for e in range(2)]
  for e in epochs:
    assert set(e) == set(range(n))
  assert not np.array_equal(epochs[0], epochs[1])


@pytest.mark.parametrize("n", [10, 8])
def test_eval_batches_count_each_example_once(n):
  images, labels = _images(n), _labels(n) + 1
  batches = list(data.eval_batches(images, labels, 4))
  assert len(batches) == data.steps_per_epoch(n, 4)
  assert all(x.shape == (4, 32, 32, 3) and y.shape == (4,) and m.shape == (4,)
             for x, y, m in batches)
  x = np.concatenate([b[0] for b in batches])
  y = np.concatenate([b[1] for b in batches])
  mask = np.concatenate([b[2] for b in batches])
  assert mask.sum() == n
  np.testing.assert_array_equal(x[mask], images)
  np.testing.assert_array_equal(y[mask], labels)
  assert not x[~mask].any() and not y[~mask].any()
