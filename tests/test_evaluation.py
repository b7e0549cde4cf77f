"""The robustness evaluation: end to end on a tiny checkpoint, resume, padding, bad inputs, traces.

One tiny model (VGG5 at 1/8 width, T = 2) is trained for two steps once per module; each test
evaluates a copy of its workdir on ten test images in batches of four, so the last batch is padded.
"""

import json
import os
import shutil
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import smoke as smoke_config
import helpers
from jsnn import attacks, evaluation, models, parallel, trainer
from jsnn import workdir as workdir_lib

NUM_EXAMPLES = 10
BATCH_SIZE = 4   # 10 = 4 + 4 + 2: the last batch is padded with two masked rows.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
  config = smoke_config.get_config()
  config.model.time_steps = 2
  config.model.head_width = 16
  config.training.mode = "natural"   # The cheapest step to compile; the evaluation does not care.
  config.training.steps_per_epoch = 2
  config.data.train_size = 64
  config.logging.progress_bar = False
  workdir = str(tmp_path_factory.mktemp("run"))
  trainer.train_and_evaluate(config, workdir)
  return workdir


@pytest.fixture
def workdir(trained_workdir, tmp_path):
  """A fresh copy of the trained run, so that tests do not see each other's results."""
  path = str(tmp_path / "run")
  shutil.copytree(trained_workdir, path)
  return path


def _eval_config(attack_names="clean,fgsm,pgd7,apgd-ce", **overrides):
  # An override may replace the module's example count or batch size.
  return helpers.eval_config(attack_names, **{"num_examples": NUM_EXAMPLES,
                                              "batch_size": BATCH_SIZE, **overrides})


def _read(path):
  with open(path) as f:
    return json.load(f)


def test_end_to_end_then_resume_recomputes_only_the_missing_attack(workdir):
  names = ["clean", "fgsm", "pgd7", "apgd-ce"]
  summary = evaluation.evaluate_checkpoint(_eval_config(",".join(names), sanity_checks=True),
                                           workdir)
  results = _read(os.path.join(workdir, evaluation.RESULTS_FILE))

  assert summary["computed"] == names + ["large_epsilon", "zero_gradient"]
  # Every step compiled once for its three batches.
  assert set(summary["traces"].values()) == {1}
  for name in names:
    entry = results["attacks"][name]
    assert entry["total"] == NUM_EXAMPLES
    assert entry["accuracy"] == entry["correct"] / NUM_EXAMPLES
    assert results["worst_case"]["correct"] <= entry["correct"]
  assert results["worst_case"]["total"] == NUM_EXAMPLES
  assert results["attacks"]["pgd7"]["forward_passes_per_image"] == 8
  assert results["attacks"]["apgd-ce"]["backward_passes_per_image"] == 11
  assert [c["name"] for c in results["checks"]] == [
      "pgd-vs-fgsm", "large-epsilon", "zero-gradient"]
  assert list(summary["accuracies"]) == names + [evaluation.WORST_CASE]
  assert "| Clean | " in summary["table"] and "worst-case |" in summary["table"]
  with open(os.path.join(workdir, evaluation.CSV_FILE)) as f:
    rows = f.read().splitlines()
  assert [r.split(",")[0] for r in rows[1:]] == names + [evaluation.WORST_CASE]

  # Forget one attack: the rerun computes it alone and keeps the others' entries as they were.
  del results["attacks"]["fgsm"]
  with open(os.path.join(workdir, evaluation.RESULTS_FILE), "w") as f:
    json.dump(results, f)
  again = evaluation.evaluate_checkpoint(_eval_config(",".join(names), sanity_checks=True),
                                         workdir)
  assert again["computed"] == ["fgsm"]
  assert sorted(again["reused"]) == sorted(["clean", "pgd7", "apgd-ce", "large_epsilon",
                                            "zero_gradient"])
  rerun = _read(os.path.join(workdir, evaluation.RESULTS_FILE))
  for name in ("clean", "pgd7", "apgd-ce"):
    assert rerun["attacks"][name] == results["attacks"][name]
  assert rerun["attacks"]["fgsm"]["total"] == NUM_EXAMPLES
  assert rerun["worst_case"] == results["worst_case"]   # Same flags, same worst case.

  # A changed setting (ε) invalidates exactly the attacks that depend on it.
  third = evaluation.evaluate_checkpoint(_eval_config("clean,fgsm", epsilon=4 / 255), workdir)
  assert third["computed"] == ["fgsm"] and third["reused"] == ["clean"]


def test_padded_last_batch_is_counted_once_and_in_order():
  mesh = parallel.make_mesh()
  n = 10
  images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 32, 32, 3), np.uint8)
  labels = np.arange(n, dtype=np.int32)

  def step(variables, images, labels, mask, key, epsilon):
    del variables, key
    return {"label": labels, "mask": mask, "pixel": images[:, 0, 0, 0],
            "epsilon": jnp.broadcast_to(epsilon, labels.shape)}

  out = evaluation.run_batches(evaluation.jit_step(step, mesh), {}, images, labels,
                               batch_size=BATCH_SIZE, mesh=mesh, key=jax.random.key(0),
                               epsilon=0.5)
  np.testing.assert_array_equal(out["label"], labels)
  np.testing.assert_array_equal(out["pixel"], labels)
  assert out["mask"].all() and out["mask"].shape == (n,)
  np.testing.assert_allclose(out["epsilon"], 0.5)


def test_attack_step_traces_once_across_batches_and_epsilons():
  model = models.create_model("vgg5", num_classes=10, width=0.125, head_width=8,
                              neuron=models.NeuronSpec(time_steps=2))
  variables = models.init_model(model, jax.random.key(0))
  spec = attacks.PGDSpec(name="pgd2", num_steps=2, random_start=True)
  chex.clear_trace_counter()
  step = chex.assert_max_traces(evaluation.make_attack_step(spec, model), n=1)
  mesh = parallel.make_mesh()
  jitted = evaluation.jit_step(step, mesh)
  images = np.random.default_rng(0).integers(0, 256, (NUM_EXAMPLES, 32, 32, 3), dtype=np.uint8)
  labels = np.arange(NUM_EXAMPLES, dtype=np.int32) % 10
  variables = jax.device_put(variables, parallel.replicated(mesh))
  for epsilon in (2 / 255, 8 / 255, 0.0):   # Three batches each; a second trace would raise.
    out = evaluation.run_batches(jitted, variables, images, labels, batch_size=BATCH_SIZE,
                                 mesh=mesh, key=jax.random.key(1), epsilon=epsilon)
    assert out.shape == (NUM_EXAMPLES,) and out.dtype == bool


@pytest.mark.parametrize("overrides, named", [
    (dict(attacks="clean,pgd10,foo"), "'foo'"),
    (dict(attacks="pgd0"), "pgd0"),
    (dict(attacks="fgsm,fgsm"), "fgsm"),
    (dict(epsilon=-0.1), "-0.1"),
    (dict(epsilon=1.5), "1.5"),
    (dict(num_examples=10 ** 6), "1000000"),
    (dict(batch_size=0), "batch_size"),
    (dict(surrogate="bogus"), "'bogus'"),
    (dict(checkpoint="worst"), "'worst'"),
    (dict(sweep_epsilons="10,x"), "'x'"),
    (dict(suite="autoattack"), "'autoattack'"),
    (dict(estimators="rga,bptt"), "'bptt'"),
    (dict(estimators="rga,rga"), "eval.estimators lists"),
    (dict(estimators="sigmoid:x"), "'sigmoid:x'"),
    (dict(square_queries=0, suite="standard"),
     "query budget per image, must be an integer >= 1, got 0"),
    (dict(attacks="clean,square0"), "square0"),
    (dict(apgd_targets=10, suite="standard"), "at most classes − 1 = 9 targets"),
])
def test_bad_settings_raise_naming_the_value_and_leave_results_untouched(workdir, overrides, named):
  path = os.path.join(workdir, evaluation.RESULTS_FILE)
  with open(path, "w") as f:
    f.write('{"attacks": {}, "note": "earlier results"}\n')
  before = open(path, "rb").read()
  with pytest.raises(ValueError, match=named.replace("(", r"\(")) as info:
    evaluation.evaluate_checkpoint(_eval_config(**overrides), workdir)
  if "foo" in named:
    assert "pgd10" in str(info.value) and "apgd-t<k>" in str(info.value)
  assert open(path, "rb").read() == before
  assert not os.path.exists(os.path.join(workdir, evaluation.FLAGS_FILE))


def test_missing_or_mismatched_checkpoint_and_corrupt_results(workdir, tmp_path):
  with pytest.raises(workdir_lib.CheckpointNotFound, match="no 'best' checkpoint"):
    evaluation.evaluate_checkpoint(_eval_config(), str(tmp_path / "empty"))

  # A results file that is not ours is reported, not overwritten.
  path = os.path.join(workdir, evaluation.RESULTS_FILE)
  with open(path, "w") as f:
    f.write("not json")
  with pytest.raises(ValueError, match="cannot read the existing robustness results"):
    evaluation.evaluate_checkpoint(_eval_config("clean"), workdir)
  assert open(path).read() == "not json"

  # The saved config describes another model than the stored arrays.
  best = os.path.join(workdir, "checkpoints", "best")
  meta_path = os.path.join(best, os.listdir(best)[0], "meta", "metadata")
  meta = _read(meta_path)
  meta["config"]["model"]["head_width"] += 8
  with open(meta_path, "w") as f:
    json.dump(meta, f)
  with pytest.raises(evaluation.CheckpointMismatch, match="does not match"):
    evaluation.evaluate_checkpoint(_eval_config("clean"), workdir)
  assert open(path).read() == "not json"


def _cli(*args, devices=1):
  return subprocess.run(
      [sys.executable, os.path.join(REPO, "evaluate.py"), *args], capture_output=True, text=True,
      timeout=180, cwd=REPO,
      env={**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": str(devices)})


def test_cli_prints_error_and_exits_2_without_traceback(tmp_path):
  proc = _cli(f"--workdir={tmp_path}", "--config.eval.epsilon=2.0")
  assert proc.returncode == 2, proc.stderr
  assert "error: eval.epsilon must be a number in [0, 1]" in proc.stderr
  assert "2.0" in proc.stderr and "Traceback" not in proc.stderr


# slow: evaluation over several devices is also checked, against one process of four, in
# tests/test_multiprocess.py.
@pytest.mark.slow
def test_cli_shards_over_two_devices(workdir):
  proc = _cli(f"--workdir={workdir}", "--config.eval.batch_size=3", devices=2)
  assert proc.returncode == 2 and "batch_size 3 is not divisible by the 2 devices" in proc.stderr

  proc = _cli(f"--workdir={workdir}", "--config.eval.attacks=clean,fgsm",
              f"--config.eval.batch_size={BATCH_SIZE}",
              f"--config.eval.num_examples={NUM_EXAMPLES}",
              "--config.eval.sanity_checks=False", "--config.eval.progress_bar=False", devices=2)
  assert proc.returncode == 0, proc.stderr
  assert "| Clean |  FGSM | worst-case |" in proc.stdout
  results = _read(os.path.join(workdir, evaluation.RESULTS_FILE))
  assert results["attacks"]["fgsm"]["num_devices"] == 2
  assert results["attacks"]["fgsm"]["total"] == NUM_EXAMPLES


def test_sweep_writes_points_plots_and_resumes(workdir):
  config = _eval_config(sweep_epsilons="16,48", num_examples=6)
  out = evaluation.sweep_epsilon(config, workdir)
  assert out["traces"] == 1   # Both ε with one compilation.
  assert out["computed"] == [16 / 255, 48 / 255]
  sweep = _read(out["paths"]["json"])
  assert [p["epsilon_255"] for p in sweep["points"]] == pytest.approx([16, 48])
  for p in sweep["points"]:
    assert p["total"] == 6 and p["ms_mppd"] >= 0
    assert p["step_size"] == pytest.approx(p["epsilon"] / 4)
  assert os.path.getsize(out["paths"]["plot"]) > 0
  assert os.path.getsize(out["paths"]["mppd_plot"]) > 0
  assert evaluation.sweep_epsilon(config, workdir)["computed"] == []


def _entry(accuracy, total=1000):
  return {"accuracy": accuracy, "total": total, "correct": round(accuracy * total)}


def _table(**accuracies):
  names = {"apgd_ce": "apgd-ce", "apgd_dlr": "apgd-dlr"}
  return {"attacks": {names.get(k, k): _entry(v) for k, v in accuracies.items()}}


PAPER_ROW = dict(clean=0.8721, fgsm=0.4902, pgd7=0.3868, pgd10=0.3755, pgd20=0.3708, pgd40=0.3641,
                 apgd_ce=0.3325, apgd_dlr=0.3968)   # Table 1, VGG11 AT ρ=1.


def test_sanity_checks_pass_on_a_paper_row():
  results = _table(**PAPER_ROW)
  results["check_runs"] = {
      "large_epsilon": {"epsilon": 64 / 255, **_entry(0.001)},
      "zero_gradient": {"count": 0, "total": 1000}}
  checks = evaluation.sanity_checks(results)
  assert [c.name for c in checks] == [
      "pgd-vs-fgsm", "pgd-steps", "apgd-vs-pgd", "large-epsilon", "zero-gradient"]
  assert all(c.passed for c in checks), checks


@pytest.mark.parametrize("changes, failing", [
    (dict(pgd7=0.50), {"pgd-vs-fgsm"}),
    (dict(pgd20=0.40), {"pgd-steps"}),
    (dict(pgd40=0.3755 + 0.006), {"pgd-steps"}),          # Beyond 0.5 points of PGD-20.
    (dict(pgd40=0.3708 + 0.004), set()),                   # Within the tolerance.
    (dict(apgd_ce=0.3900), {"apgd-vs-pgd"}),
])
def test_sanity_checks_flag_masking_patterns(changes, failing):
  checks = evaluation.sanity_checks(_table(**{**PAPER_ROW, **changes}))
  assert {c.name for c in checks if not c.passed} == failing


def test_sanity_checks_tolerate_one_example_on_small_sets_and_flag_check_runs():
  # With 64 examples one example (1.56 %) is more than 0.5 points: PGD-10 one above PGD-7 passes.
  small = {"attacks": {"pgd7": _entry(10 / 64, 64), "pgd10": _entry(11 / 64, 64)}}
  assert all(c.passed for c in evaluation.sanity_checks(small))
  small["attacks"]["pgd10"] = _entry(12 / 64, 64)
  assert [c.name for c in evaluation.sanity_checks(small) if not c.passed] == ["pgd-steps"]

  runs = {"check_runs": {"large_epsilon": {"epsilon": 64 / 255, **_entry(0.2)},
                         "zero_gradient": {"count": 3, "total": 1000}}}
  checks = {c.name: c for c in evaluation.sanity_checks(runs)}
  assert not checks["large-epsilon"].passed and "20.00%" in checks["large-epsilon"].message
  assert not checks["zero-gradient"].passed and checks["zero-gradient"].message.startswith("3 of")


def test_attack_names_step_sizes_and_pass_counts():
  eps = 16 / 255
  assert evaluation.parse_attack("pgd10", eps).step_size == pytest.approx(4 / 255)
  assert evaluation.parse_attack("pgd7").step_size == pytest.approx(2.55 / 255)
  pgd15 = evaluation.parse_attack("pgd15", eps)
  assert (pgd15.num_steps, pgd15.step_size, pgd15.epsilon) == (15, None, eps)
  apgd = evaluation.parse_attack("apgd-dlr20")
  assert (apgd.kind, apgd.loss, apgd.num_steps) == ("apgd", "dlr", 20)
  with pytest.raises(ValueError, match="'pgd07'"):
    evaluation.parse_attack("pgd07")
  passes = {n: evaluation.passes_per_image(evaluation.parse_attack(n))
            for n in ("clean", "fgsm", "pgd10", "apgd-ce")}
  assert passes == {"clean": (1, 0), "fgsm": (2, 1), "pgd10": (11, 10), "apgd-ce": (13, 11)}
  assert evaluation.table_order(["apgd-ce", "pgd15", "clean", "pgd7"]) == [
      "clean", "pgd7", "apgd-ce", "pgd15"]
  np.testing.assert_array_equal(
      evaluation.worst_case({"a": np.array([1, 1, 0], bool), "b": np.array([1, 0, 1], bool)}),
      [True, False, False])


# -------------------------------------------------------------------------------------------------
# The standard cascade, the full suite, estimator variants, budgets
# -------------------------------------------------------------------------------------------------


@pytest.fixture
def relabelled(workdir, monkeypatch):
  """The workdir with a live model whose first test images are labelled by the model itself.

  The two-step model's spiking head never fires (its logits are the same for every input), so its
  saved threshold is lowered to 0.3 (the arrays do not change); and the images are labelled with
  its predictions, so that all start out correct and the cascade has something to attack.
  """
  best = os.path.join(workdir, "checkpoints", "best")
  meta_path = os.path.join(best, os.listdir(best)[0], "meta", "metadata")
  meta = _read(meta_path)
  meta["config"]["model"]["threshold"] = 0.3
  with open(meta_path, "w") as f:
    json.dump(meta, f)
  _, model, variables, _ = workdir_lib.restore_model(workdir, "best")
  real = evaluation.load_test_set

  def load_test_set(run_config, **kwargs):
    images, labels, source = real(run_config, **kwargs)
    x = jnp.asarray(images[:NUM_EXAMPLES], jnp.float32) / 255
    predictions = np.asarray(jnp.argmax(models.apply_model(model, variables, x, train=False)[0],
                                        axis=-1))
    return images, np.concatenate([predictions, labels[NUM_EXAMPLES:]]), source

  # prepare() looks it up in its own module's namespace.
  monkeypatch.setattr(evaluation.context, "load_test_set", load_test_set)
  return workdir


def test_standard_cascade_attacks_only_what_is_left_and_counts_its_budget(relabelled,
                                                                          monkeypatch):
  subsets = {}
  real_measure = evaluation.runner.measure

  def measure(step, ctx, *, subset=None, **kwargs):
    subsets[kwargs["desc"].split(" ")[0]] = None if subset is None else np.array(subset)
    return real_measure(step, ctx, subset=subset, **kwargs)

  monkeypatch.setattr(evaluation.runner, "measure", measure)
  config = _eval_config(suite="standard", cascade_steps=2, apgd_targets=3, square_queries=30,
                        epsilon=0.5 / 255)
  summary = evaluation.evaluate_checkpoint(config, relabelled)
  results = _read(os.path.join(relabelled, evaluation.RESULTS_FILE))
  cascade = results["cascades"]["standard"]
  stages = ["apgd-ce2", "apgd-t2", "square30"]
  assert cascade["order"] == stages and results["attacks"]["clean"]["accuracy"] == 1.0
  assert list(summary["accuracies"]) == ["clean", "standard", evaluation.WORST_CASE]
  assert summary["computed"] == ["clean"] + [f"standard/{n}" for n in stages]

  # Each stage attacked exactly the images every stage before it left correct.
  with np.load(os.path.join(relabelled, evaluation.FLAGS_FILE)) as archive:
    stored = {k: archive[k] for k in archive.files}
  before = np.ones(NUM_EXAMPLES, bool)
  for name in stages:
    stage = cascade["stages"][name]
    after = stored[stage["fingerprint"]]
    assert stage["attacked"] == before.sum() and stage["correct"] == after.sum()
    if before.any():
      np.testing.assert_array_equal(subsets[f"standard/{name}"], np.flatnonzero(before))
      assert summary["traces"][f"standard/{name}"] == 1   # One compilation for all its batches.
    assert not np.any(after & ~before)                    # Nothing comes back to life.
    before = after
  assert cascade["accuracy"] == before.mean() == summary["accuracies"]["standard"]
  assert summary["accuracies"][evaluation.WORST_CASE] <= min(
      summary["accuracies"]["clean"], summary["accuracies"]["standard"])
  assert cascade["stages"]["apgd-ce2"]["fooled"] > 0, "APGD-CE should fool a chance-level model"

  # Budgets: per attacked image as the attacks' structure says (APGD-CE2: 1 + 3 gradients +
  # 1 scoring; APGD-T2 with 3 targets: 1 + 9 + 1); per image of the test set, weighted by how many
  # were attacked; Square within its query budget.
  ce, targeted, square = (cascade["stages"][n] for n in stages)
  assert (ce["forward_passes_per_image_attacked"], ce["backward_passes_per_image_attacked"]) == (
      5, 3)
  assert ce["forward_passes_per_image"] == pytest.approx(5 * ce["attacked"] / NUM_EXAMPLES)
  if targeted["attacked"]:
    assert (targeted["forward_passes_per_image_attacked"],
            targeted["backward_passes_per_image_attacked"]) == (11, 9)
  if square["attacked"]:
    assert 1 <= square["queries_max"] <= 30 and square["backward_passes_per_image"] == 0
    assert square["forward_passes_per_image_attacked"] <= 2 + 29 + 1
  assert cascade["forward_passes_per_image"] == pytest.approx(
      1 + sum(st["forward_passes_per_image"] for st in (ce, targeted, square)))
  assert results["jsnn_version"] and results["suite"] == "standard" and results["norm"] == "linf"
  assert results["stochastic"] is False and "training" in results

  again = evaluation.evaluate_checkpoint(config, relabelled)
  assert again["computed"] == [] and sorted(again["reused"]) == sorted(summary["computed"])


def test_full_suite_adds_estimator_variants_their_worst_case_and_masking_checks(relabelled):
  config = _eval_config("clean,fgsm", suite="full", estimators="rga,sigmoid:4", cascade_steps=1,
                        apgd_targets=2, square_queries=5, sanity_checks=True)
  summary = evaluation.evaluate_checkpoint(config, relabelled)
  results = summary["results"]
  # The full suite adds SA-PGD at the cascade's step count, and its variants.
  assert [n for n in summary["computed"] if "@" in n] == [
      "fgsm@rga", "fgsm@sigmoid:4", "sa-pgd1@rga", "sa-pgd1@sigmoid:4", "zero_gradient@rga",
      "zero_gradient@sigmoid:4"]
  assert results["attacks"]["fgsm@rga"]["gradient_estimator"] == "rga"
  assert results["attacks"]["fgsm@sigmoid:4"]["surrogate"] == "sigmoid"
  per_attack = results["estimators"]["per_attack"]["fgsm"]
  assert per_attack["estimators"] == ["triangle", "rga", "sigmoid:4"]
  assert per_attack["worst_case_accuracy"] <= min(per_attack["accuracies"])
  accuracies = summary["accuracies"]
  assert accuracies[evaluation.WORST_CASE] <= min(v for k, v in accuracies.items())
  assert accuracies[evaluation.WORST_CASE] <= per_attack["worst_case_accuracy"]
  names = [c.name for c in summary["checks"]]
  assert {"zero-gradient", "zero-gradient@rga", "zero-gradient@sigmoid:4",
          "square-vs-white-box"} <= set(names)
  zero = results["masking"]["zero_gradient"]
  assert set(zero) == {"triangle", "rga", "sigmoid:4"}
  assert all(0 <= z["near_zero_fraction_of_correct"] <= 1 for z in zero.values())
  assert "per gradient estimator" in summary["table"]
  with open(os.path.join(relabelled, evaluation.CSV_FILE)) as f:
    rows = [r.split(",")[0] for r in f.read().splitlines()[1:]]
  assert rows == ["clean", "fgsm", "sa-pgd1", "fgsm@rga", "fgsm@sigmoid:4", "sa-pgd1@rga",
                  "sa-pgd1@sigmoid:4", "standard/apgd-ce1",
                  "standard/apgd-t1", "standard/square5", "standard", evaluation.WORST_CASE]


def test_new_attack_steps_trace_once_across_batches_and_epsilons():
  model = models.create_model("vgg5", num_classes=10, width=0.125, head_width=8,
                              neuron=models.NeuronSpec(time_steps=2))
  variables = models.init_model(model, jax.random.key(0))
  mesh = parallel.make_mesh()
  variables = jax.device_put(variables, parallel.replicated(mesh))
  images = np.random.default_rng(0).integers(0, 256, (NUM_EXAMPLES, 32, 32, 3), dtype=np.uint8)
  labels = np.arange(NUM_EXAMPLES, dtype=np.int32) % 10
  spec = attacks.SquareSpec(name="square8", num_queries=8)
  chex.clear_trace_counter()
  step = chex.assert_max_traces(evaluation.make_attack_step(spec, model, with_stats=True), n=1)
  jitted = evaluation.jit_step(step, mesh)
  for epsilon in (2 / 255, 8 / 255):
    out = evaluation.run_batches(jitted, variables, images, labels, batch_size=BATCH_SIZE,
                                 mesh=mesh, key=jax.random.key(1), epsilon=epsilon)
    assert out["correct"].shape == (NUM_EXAMPLES,) and np.all(out["queries"] <= 8)


def test_results_of_an_older_schema_are_moved_aside_and_evaluated_again(workdir):
  config = _eval_config("clean,fgsm")
  evaluation.evaluate_checkpoint(config, workdir)
  path = os.path.join(workdir, evaluation.RESULTS_FILE)
  old = _read(path)
  del old["schema"]   # as every robustness.json written before the schema field
  with open(path, "w") as f:
    json.dump(old, f)
  flags_before = open(os.path.join(workdir, evaluation.FLAGS_FILE), "rb").read()

  again = evaluation.evaluate_checkpoint(config, workdir)
  assert again["computed"] == ["clean", "fgsm"] and again["reused"] == []
  # Nothing written is lost: the older files sit beside the new ones, byte for byte.
  assert _read(os.path.join(workdir, "robustness_schema1.json")) == old
  with open(os.path.join(workdir, "robustness_flags_schema1.npz"), "rb") as f:
    assert f.read() == flags_before
  assert _read(path)["schema"] == evaluation.SCHEMA
  assert evaluation.evaluate_checkpoint(config, workdir)["reused"] == ["clean", "fgsm"]


def test_a_cascade_stage_is_reused_only_with_every_stage_before_it(workdir):
  def run(**overrides):
    settings = dict(suite="standard", cascade_steps=2, apgd_targets=2, square_queries=6,
                    epsilon=0.5 / 255)
    return evaluation.evaluate_checkpoint(_eval_config(**{**settings, **overrides}), workdir)

  stages = ["standard/apgd-ce2", "standard/apgd-t2", "standard/square6"]
  assert run()["computed"] == ["clean"] + stages
  # Square's budget is its own: the stages before it are reused.
  changed = run(square_queries=7)
  assert changed["reused"] == ["clean"] + stages[:2]
  assert changed["computed"] == ["standard/square7"]
  # APGD-T's targets change what Square attacks, so Square runs again after it.
  changed = run(square_queries=7, apgd_targets=3)
  assert changed["reused"] == ["clean", stages[0]]
  assert changed["computed"] == [stages[1], "standard/square7"]
  results = _read(os.path.join(workdir, evaluation.RESULTS_FILE))
  chain = results["cascades"]["standard"]
  assert chain["order"] == ["apgd-ce2", "apgd-t2", "square7"]
  assert chain["stages"]["apgd-t2"]["after"] == chain["stages"]["apgd-ce2"]["fingerprint"]
  assert chain["stages"]["square7"]["after"] == chain["stages"]["apgd-t2"]["fingerprint"]


def test_an_attack_kind_added_in_one_module_runs_everywhere(workdir):
  # MI-FGSM is jsnn/attacks/mifgsm.py and one line of the registry: nothing in the evaluation
  # names it, yet it runs, is counted, joins the estimators and the worst case, and resumes.
  config = _eval_config("clean,mi-fgsm3", estimators="bptr")
  summary = evaluation.evaluate_checkpoint(config, workdir)
  assert summary["computed"] == ["clean", "mi-fgsm3", "mi-fgsm3@bptr"]
  entry = summary["results"]["attacks"]["mi-fgsm3"]
  assert (entry["kind"], entry["steps"], entry["forward_passes_per_image"],
          entry["backward_passes_per_image"]) == ("mi-fgsm", 3, 4, 3)
  assert summary["results"]["worst_case"]["attacks"] == ["clean", "mi-fgsm3", "mi-fgsm3@bptr"]
  assert evaluation.evaluate_checkpoint(config, workdir)["computed"] == []
