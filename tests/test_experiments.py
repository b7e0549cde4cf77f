"""The experiment scripts: the report's table, Figure 1's neuron, the sweep's skipping, Theorem 3.1.

All of it runs on fixtures or a tiny random model; nothing trains.
"""

import json
import math
import os

import jax
import numpy as np
import pytest

from experiments import common, figure1, stats, suites, sweep, theorem31
from experiments import results as sweep_results
from experiments import rows as rows_lib
from experiments import report
from experiments.report import analysis, reading
from jsnn import _io, attacks, models, perturbation

# -------------------------------------------------------------------------------------------------
# The report
# -------------------------------------------------------------------------------------------------


def _row(setting, seed, acc, worst=None, label=None):
  return {"id": f"{setting}-s{seed}", "table": "table2", "setting": setting,
          "label": label or setting, "config": "configs/cifar10_reduced.py",
          "arg": f"at,seed={seed}", "seed": seed, "protocol": "reduced",
          "paper_key": f"table2/{setting}", "status": "complete", "accuracies": acc,
          "worst_case": worst, "num_examples": 500, "wall_s": 200.0,
          "training": {"wall_s": 150.0}, "evaluation": {"wall_s": 50.0}, "checks": []}


def _table2_report(tmp_path, rows, runs=()):
  """The report's text for a Table 2 results file holding ``rows``."""
  root = tmp_path / "results" / "table2_reduced"
  root.mkdir(parents=True)
  _io.write_json(str(root / "results.json"), {"runs": list(runs), "rows": rows})
  return open(report.build([str(tmp_path / "results")], str(tmp_path / "docs"))).read()


def test_report_writes_the_table_with_paper_numbers_differences_and_std(tmp_path):
  rows = [
      _row("dlif-rho0", 0, {"clean": 0.40, "fgsm": 0.20, "pgd10": 0.10, "apgd-ce": 0.08}, 0.07,
           "DLIF, AT, ρ = 0, MS-MPPD"),
      _row("dlif-rho0", 1, {"clean": 0.42, "fgsm": 0.22, "pgd10": 0.12, "apgd-ce": 0.10}, 0.09,
           "DLIF, AT, ρ = 0, MS-MPPD"),
      _row("dlif-rho1", 0, {"clean": 0.41, "fgsm": 0.25, "pgd10": 0.15, "apgd-ce": 0.13}, 0.12,
           "DLIF, AT, ρ = 1, MS-MPPD"),
  ]
  text = _table2_report(tmp_path, rows,
                        runs=[{"command": "python -m experiments.sweep --rows table2"}])
  # Rows carry the paper's labels and order.
  lines = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()
           if line.startswith("| DLIF")}

  header = next(l for l in text.splitlines() if l.startswith("| setting | n |"))
  assert header == ("| setting | n | Clean | FGSM | PGD10 | APGD-CE | worst case (ours) |")
  # Two seeds: mean ± sample std; the paper's Table 2 value; ours − paper.
  assert lines["DLIF, AT, ρ = 0.0, MS-MPPD"] == (
      "| DLIF, AT, ρ = 0.0, MS-MPPD | 2 | 41.00 ± 1.41 / 85.32 / -44.32 | 21.00 ± 1.41 / 38.61 / "
      "-17.61 | 11.00 ± 1.41 / 26.27 / -15.27 | 9.00 ± 1.41 / 22.37 / -13.37 | 8.00 ± 1.41 |")
  # One seed: no std.
  assert lines["DLIF, AT, ρ = 1.0, MS-MPPD"].startswith(
      "| DLIF, AT, ρ = 1.0, MS-MPPD | 1 | 41.00 / 85.21 / -44.21 | 25.00 / 39.63 / -14.63 |")
  # Rows of the paper that did not run keep the paper's number.
  assert "| DLIF, AT, ρ = 2.0, MS-MPPD | 0 (not run) | — / 85.15 / — |" in text
  assert "DLIF ρ = 1 vs ρ = 0: robust accuracy higher under every attack" in text
  assert "Table 1 (CIFAR-100), VGG11: CIFAR-100 is not available offline" in text
  assert "`python -m experiments.sweep --rows table1_cifar100_vgg11 --protocol full`" in text


@pytest.mark.parametrize("schema", [1, 2])
def test_suite_accuracies_are_worst_cases_over_each_suites_flags(schema):
  t, f = True, False
  flags = {"clean-a": np.array([t, t, t, t, f]), "fgsm-b": np.array([t, t, t, f, f]),
           "fgsm@bptr-c": np.array([t, f, t, t, f]), "fgsm@transfer-d": np.array([t, t, f, t, f])}
  if schema == 2:   # flags keyed by the fingerprint alone
    flags = {k.rpartition("-")[2]: v for k, v in flags.items()}
  results = {"schema": schema, "attacks": {"clean": {"fingerprint": "a", "accuracy": 0.8},
                         "fgsm": {"fingerprint": "b", "accuracy": 0.6},
                         "fgsm@bptr": {"fingerprint": "c", "accuracy": 0.6},
                         "fgsm@transfer": {"fingerprint": "d", "accuracy": 0.6}},
             "cascades": {"standard": {"accuracy": 0.4}},
             "worst_case": {"accuracy": 0.2, "total": 5}}
  got = suites.suite_accuracies(results, flags)
  # paper: clean ∧ fgsm = [t t t f f]; with bptr [t f t f f]; transfer alone [t t f t f].
  assert got == {"clean": 0.8, "paper": 0.6, "standard": 0.4, "sa_pgd": None, "estimators": 0.4,
                 "transfer": 0.6, "full": 0.2, "total": 5}
  # SA-PGD, which the full suite adds, is not the paper's suite but counts with the estimators.
  results["attacks"]["sa-pgd9"] = {"fingerprint": "e", "accuracy": 0.4, "kind": "sa-pgd"}
  flags["sa-pgd9-e" if schema == 1 else "e"] = np.array([t, t, f, t, f])
  got = suites.suite_accuracies(results, flags)
  assert (got["paper"], got["sa_pgd"], got["estimators"]) == (0.6, 0.4, 0.2)


def test_report_renders_the_suite_comparison(tmp_path):
  root = tmp_path / "results" / "suites_reduced"
  root.mkdir(parents=True)
  model = {"label": "DLIF AT ρ=1", "data": "cifar10 test", "accuracies": {
      "clean": 0.30, "paper": 0.15, "standard": 0.12, "estimators": 0.14, "transfer": 0.25,
      "full": 0.11, "total": 500},
      "estimators": {"triangle": 0.15, "bptr": 0.2}, "cascade": {"apgd-ce": 0.13, "square": 0.12},
      "square_beats_white_box": 2, "transfer_beats_white_box": 0, "eval_wall_time_s": 300.0,
      "eval": {"attacks": "clean,fgsm", "epsilon": 8 / 255, "num_examples": 500,
               "cascade_steps": 100, "apgd_targets": 9, "square_queries": 5000, "seed": 0},
      "estimator_names": ["bptr"], "transfer_from": {"workdir": "runs/s", "surrogate": "sigmoid"}}
  _io.write_json(str(root / "suites.json"), {"command": "python -m experiments.suites",
                                               "models": [model]})
  text = open(report.build([str(tmp_path / "results")], str(tmp_path / "docs"))).read()
  assert ("| DLIF AT ρ=1 | 30.00 | 15.00 | 12.00 | 14.00 | 25.00 | 11.00 | 4.00 |") in text
  assert ("| DLIF AT ρ=1 | apgd-ce 13.00 → square 12.00 | triangle 15.00, bptr 20.00 | 2 | 0 |"
          in text)
  assert "the paper's suite reports 4.00 points more robust accuracy" in text
  assert "a sign of gradient masking there" in text


def test_mean_std_is_the_sample_std():
  mean, std, n = stats.mean_std([40.0, 42.0])
  assert (mean, n) == (41.0, 2) and math.isclose(std, math.sqrt(2))
  assert stats.mean_std([3.0])[1] == 0.0


# -------------------------------------------------------------------------------------------------
# Figure 1
# -------------------------------------------------------------------------------------------------


def _hand_loop(currents, leak, threshold, strict):
  u, vs, ss = 0.0, [], []
  for i in currents:
    v = leak * u + float(i)
    s = float(v > threshold if strict else v >= threshold)
    vs.append(v)
    ss.append(s)
    u = v * (1 - s)
  return np.array(vs), np.array(ss)


@pytest.mark.parametrize("name", sorted(figure1.SETTINGS))
def test_figure1_neuron_matches_closed_form_and_a_hand_loop(name):
  setting = figure1.SETTINGS[name]
  leak, strict = setting["leak"], setting["strict_threshold"]
  clean = np.full(figure1.STEPS, figure1.CLEAN_INPUT, np.float32)
  j = figure1.CONSTANT_PERTURBATION
  delta = np.full(figure1.STEPS, j, np.float32)
  sim = figure1.simulate(clean, clean + delta, leak=leak, strict=strict)
  curves = figure1.perturbation_curves(sim, delta, leak=leak)

  t = np.arange(1, figure1.STEPS + 1)
  np.testing.assert_allclose(curves["mppd"], (1 - leak ** t) / (1 - leak) * j, rtol=1e-5)
  v, s = _hand_loop(clean, leak, 1.0, strict)
  v_p, s_p = _hand_loop(clean + delta, leak, 1.0, strict)
  np.testing.assert_array_equal(sim["s"], s)
  np.testing.assert_array_equal(sim["s_perturbed"], s_p)
  np.testing.assert_allclose(curves["true_difference"], v_p - v, atol=1e-5)
  assert s.sum() > 0 and s_p.sum() > s.sum()   # Both fire; the true difference jumps.
  # The reference's running distances and the paper's Eq. 12/13 over each prefix.
  np.testing.assert_allclose(curves["tasad_running"], np.cumsum(s_p - s) / 30)
  np.testing.assert_allclose(curves["std_running"], np.cumsum(np.abs(s_p - s)) / 30)
  np.testing.assert_allclose(curves["tasad_eq12"], np.abs(np.cumsum(s - s_p)) / t)
  np.testing.assert_allclose(curves["std_eq13"], np.sqrt(np.cumsum((s - s_p) ** 2)))


def test_strict_threshold_fires_only_above():
  sim = figure1.simulate(np.array([1.0, 0.5], np.float32), np.array([1.0, 0.6], np.float32),
                         leak=1.0, strict=True)
  # Exactly at threshold: no spike under v > u_th; the next step crosses it.
  assert sim["s"].tolist() == [0.0, 1.0]


# -------------------------------------------------------------------------------------------------
# The sweep driver
# -------------------------------------------------------------------------------------------------


def _fake_complete_row(root, row):
  """Writes the files a finished row leaves, for the row's own config."""
  config = rows_lib.row_config(row)
  rowdir = os.path.join(root, row.id)
  os.makedirs(rowdir)
  _io.write_json(os.path.join(rowdir, sweep_results.ROW_FILE), {
      "row": {"id": row.id}, "config": config.to_dict(), "training": {"done": True},
      "status": "complete",
      "phases": {"train": {"calls": [{"wall_s": 100.0, "start_time": 0.0}], "done": True}}})
  e = config.eval
  _io.write_json(os.path.join(rowdir, _io.ROBUSTNESS_FILE), {
      "attacks": {name: {"accuracy": 0.25, "num_examples": e.num_examples, "epsilon": e.epsilon,
                         "checkpoint": e.checkpoint, "wall_time_s": 1.0}
                  for name in e.attacks.split(",")},
      "worst_case": {"accuracy": 0.2}, "check_runs": {"large_epsilon": {}}, "checks": []})
  _io.write_json(os.path.join(rowdir, _io.SWEEP_FILE), {"points": [
      {"epsilon_255": float(x), "total": e.num_examples, "accuracy": 0.1, "ms_mppd": 1.0}
      for x in e.sweep_epsilons.split(",")]})
  _io.write_json(os.path.join(rowdir, _io.FACTORS_FILE), {"factors": [[1.0]]})
  with open(os.path.join(rowdir, _io.METRICS_FILE), "w") as f:
    f.write(json.dumps({"epoch": 4, "step": 316, "test_accuracy": 0.3, "ce": 2.0}) + "\n")
  return rowdir


def test_collect_sorts_accuracies_by_gradient_from_the_records_fields(tmp_path):
  from jsnn.evaluation import settings
  assert sweep_results.TRANSFER == settings.TRANSFER
  rows = rows_lib.make_rows("table2", "reduced", [0], only=["dlif-rho1"])
  rowdir = _fake_complete_row(str(tmp_path), rows[0])
  path = os.path.join(rowdir, _io.ROBUSTNESS_FILE)
  robustness = _io.read_json(path)
  # Keys are the store's business: the report reads only the records' fields.
  robustness["attacks"].update({
      "k1": {"attack": "pgd10", "estimator": "bptr", "accuracy": 0.5},
      "k2": {"attack": "fgsm", "transfer_from": {"workdir": "runs/s"}, "accuracy": 0.75}})
  _io.write_json(path, robustness)
  (entry,) = sweep_results.collect(str(tmp_path))["rows"]
  assert entry["accuracies"] == {name: 0.25 for name in rows_lib.row_config(
      rows[0]).eval.attacks.split(",")}
  assert entry["variant_accuracies"] == {"bptr": {"pgd10": 0.5}, "transfer": {"fgsm": 0.75}}


def test_collect_keeps_a_rows_suite_accuracies_when_its_ignored_flags_are_gone(tmp_path):
  rows = rows_lib.make_rows("table2", "reduced", [0], only=["dlif-rho1"])
  root = str(tmp_path)
  rowdir = _fake_complete_row(root, rows[0])
  path = os.path.join(rowdir, _io.ROBUSTNESS_FILE)
  robustness = _io.read_json(path)
  robustness.update(schema=2, checkpoint_step=316, worst_case={"accuracy": 0.25, "total": 4},
                    cascades={"standard": {"accuracy": 0.5, "order": ["apgd-ce"],
                                           "stages": {"apgd-ce": {"accuracy": 0.5}}}})
  for i, entry in enumerate(robustness["attacks"].values()):
    entry["fingerprint"] = f"f{i}"
  _io.write_json(path, robustness)
  t, f = True, False
  # clean [t t t f]; every other attack [t f t f] but the last, [t f f f]: the paper's worst 1/4.
  flags = {f"f{i}": np.array([t, t, t, f] if name == "clean" else
                             [t, f, f, f] if i == len(robustness["attacks"]) - 1 else [t, f, t, f])
           for i, name in enumerate(robustness["attacks"])}
  np.savez(os.path.join(rowdir, _io.FLAGS_FILE), **flags)

  def suites_of():
    return sweep_results.collect(root)["rows"][0].get("suites")

  computed = suites_of()
  assert (computed["paper"], computed["standard"], computed["full"]) == (0.25, 0.5, 0.25)
  # A clean checkout has no flags (.gitignore): the row's suite_accuracies.json still has them.
  os.remove(os.path.join(rowdir, _io.FLAGS_FILE))
  assert suites_of() == computed
  # A root collected before that file existed: they come from the last results.json, once.
  os.remove(os.path.join(rowdir, sweep_results.SUITES_FILE))
  assert suites_of() == computed
  assert os.path.exists(os.path.join(rowdir, sweep_results.SUITES_FILE))
  # A new evaluation without flags: the old suites no longer describe it and are dropped.
  robustness["attacks"]["pgd10"]["accuracy"] = 0.125
  _io.write_json(path, robustness)
  assert suites_of() is None


def test_sweep_skips_complete_rows_and_reruns_only_missing_phases(tmp_path, monkeypatch):
  import jsnn.evaluation
  from experiments import figure4

  calls = []

  def forbidden(name):
    def fn(*args, **kwargs):
      calls.append(name)
      return {}
    return fn

  # Training runs train.py in its own process: the sweep's call of it is replaced.
  monkeypatch.setitem(sweep._RUN_PHASE, "train", forbidden("train"))
  monkeypatch.setattr(jsnn.evaluation, "evaluate_checkpoint", forbidden("evaluate"))
  monkeypatch.setattr(jsnn.evaluation, "sweep_epsilon", forbidden("sweep"))
  monkeypatch.setattr(figure4, "extract", forbidden("factors"))

  rows = rows_lib.make_rows("table2", "reduced", [0], only=["dlif-rho1"])
  assert [r.id for r in rows] == ["dlif-rho1-s0"] and rows[0].figure3
  root = str(tmp_path)
  rowdir = _fake_complete_row(root, rows[0])
  out = sweep.run_sweep(rows, root, log=lambda line: None)
  assert calls == [] and out["failed"] == []
  results = _io.read_json(os.path.join(root, sweep_results.RESULTS_FILE))
  (entry,) = results["rows"]
  assert entry["id"] == "dlif-rho1-s0" and entry["accuracies"]["pgd10"] == 0.25
  assert entry["training"]["final_test_accuracy"] == 0.3

  # One attack missing: only the evaluation runs again, not the training.
  path = os.path.join(rowdir, _io.ROBUSTNESS_FILE)
  robustness = _io.read_json(path)
  del robustness["attacks"]["apgd-ce"]
  _io.write_json(path, robustness)
  sweep.run_sweep(rows, root, log=lambda line: None)
  assert calls == ["evaluate"]

  # Another training config (more epochs): the row is not complete any more.
  calls.clear()
  sweep.run_sweep(rows, root, ["training.epochs=5"], log=lambda line: None)
  assert calls[0] == "train"


def test_load_config_parses_overrides_as_train_py_and_names_bad_ones():
  config = common.load_config("configs/cifar10_reduced.py:at,rho=1,model=wrn16",
                              ["training.batch_size=32", "eval.sanity_checks=false",
                               "training.rho=0.5"])
  assert (config.training.batch_size, config.eval.sanity_checks) == (32, False)
  assert config.training.rho == 0.5 and config.model.name == "wrn16"
  with pytest.raises(ValueError, match="unknown config key 'training.nope'"):
    common.load_config("configs/cifar10_reduced.py", ["training.nope=1"])
  with pytest.raises(ValueError, match="batch_size=x"):
    common.load_config("configs/cifar10_reduced.py", ["training.batch_size=x"])
  with pytest.raises(ValueError, match="not of the form key=value"):
    common.load_config("configs/cifar10_reduced.py", ["training.rho"])
  with pytest.raises(ValueError, match="unknown training mode 'bogus'"):
    common.load_config("configs/cifar10_reduced.py:bogus")
  with pytest.raises(ValueError, match="'configs/missing.py' does not exist"):
    common.load_config("configs/missing.py")


def test_a_key_added_after_a_row_trained_keeps_it_done_only_at_its_default():
  from jsnn import config_diff
  saved = {"model": {"width": 0.5, "cfg": [1, 2]}, "eval": {"seed": 0}}
  current = {"model": {"width": 0.5, "cfg": (1, 2), "encoding": "direct"}, "eval": {"seed": 7}}
  defaults = {"model": {"width": 1.0, "cfg": [1, 2], "encoding": "direct"}}
  # Tuples equal lists (as JSON stores them); eval never changes a trained model.
  assert config_diff.config_differences(saved, current, defaults) == []
  poisson = {"model": {**current["model"], "encoding": "poisson"}}
  assert config_diff.config_differences(saved, poisson, defaults) == ["model.encoding"]
  # Without defaults (the trainer's resume check) a key the run lacks is left out.
  assert config_diff.config_differences(saved, poisson) == []
  assert config_diff.config_differences(saved, {"model": {"width": 0.25, "cfg": [1, 2]}}) == [
      "model.width"]


def test_row_sets_cover_the_brief():
  table2 = rows_lib.make_rows("table2", "reduced", [0, 1, 2])
  assert len(table2) == 33
  assert {r.arg for r in table2 if r.seed == 0} >= {"at,rho=1,placement=leak,seed=0",
                                                     "at,rho=1,distance=tasad,seed=0"}
  full = rows_lib.make_rows("table1_vgg11", "full", [42])
  assert {r.config for r in full} == {"configs/cifar10_vgg11.py"} and len(full) == 8
  reduced = rows_lib.make_rows("table1_wrn16", "reduced", [0])
  config = rows_lib.row_config(reduced[0])
  assert config.model.name == "wrn16" and config.model.neuron == "lif"
  # Table 1's reduced models train with batch 32, VGG11 at T = 8; Table 2's VGG5 is unchanged.
  assert (config.training.batch_size, config.model.time_steps) == (32, 4)
  vgg11 = rows_lib.row_config(rows_lib.make_rows("table1_vgg11", "reduced", [0])[0])
  assert (vgg11.training.batch_size, vgg11.model.time_steps) == (32, 8)
  assert (rows_lib.row_config(table2[0]).training.batch_size, rows_lib.row_config(table2[0]).model
          .time_steps) == (64, 4)
  # CIFAR-100's Table 1 runs only at full scale (no offline data for a reduced one).
  c100 = rows_lib.make_rows("table1_cifar100_wrn16", "full", [42])
  assert {r.config for r in c100} == {"configs/cifar100_wrn16.py"} and len(c100) == 8
  assert rows_lib.row_config(c100[0]).data.name == "cifar100"
  with pytest.raises(ValueError, match="'table1_cifar100_vgg11' has no 'reduced' protocol"):
    rows_lib.make_rows("table1_cifar100_vgg11", "reduced", [0])


def test_sweep_command_line_names_a_bad_protocol_or_seed(capsys):
  with pytest.raises(SystemExit):
    sweep.main(["--rows", "table1_cifar100_vgg11", "--protocol", "reduced", "--list"])
  assert "has no 'reduced' protocol; expected one of ['full']" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    sweep.main(["--rows", "table2", "--seeds", "0,x", "--list"])
  assert "--seeds '0,x': expected comma-separated integers" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------------
# Theorem 3.1
# -------------------------------------------------------------------------------------------------


# slow: trains and attacks a model layer by layer (about 30 s); the bound itself is tested in
# tests/test_perturbation.py.
@pytest.mark.slow
def test_theorem31_ratios_stay_within_the_bounds_on_a_tiny_model():
  model = models.create_model("vgg5", num_classes=10, width=0.125, head_width=16,
                              neuron=models.NeuronSpec(time_steps=2))
  variables = models.init_model(model, jax.random.key(0))
  rng = np.random.default_rng(0)
  images = rng.random((4, 32, 32, 3), np.float32)
  labels = np.arange(4)
  spec = attacks.PGDSpec(name="pgd2", num_steps=2, random_start=True)
  result = theorem31.analyse(model, variables, images, labels, key=jax.random.key(1),
                             attack=spec)
  assert [r["layer"] for r in result["layers"]] == ["Conv_0", "Conv_1", "Conv_2", "Dense_0",
                                                     "Dense_1"]
  measured = 0
  for r in result["layers"]:
    for variant in ("pre_bn", "bn_folded"):
      if variant not in r:
        continue
      v = r[variant]
      assert v["exact_gain"] <= v["paper_bound"]   # T = 2 < 17 at λ = 0.99
      for ratio in v["ratios"]:
        assert ratio <= v["exact_gain"] * (1 + 1e-4)
        measured += 1
  assert measured > 0 and result["all_within_paper_bound"]
  # The paper's time factor sqrt(1/(1−λ)) = 10 stops bounding the exact gain at T = 17.
  assert theorem31.counterexample(0.99)["first_T_exceeding_paper_factor"] == 17
  assert perturbation.leak_operator_norm(0.99, 8) < 10 < perturbation.leak_operator_norm(0.99, 17)


def test_figure4_orders_dlif_factors_by_the_forward_pass():
  from experiments import figure4

  # WRN16 has 13 spiking layers, 12 inside the blocks and the last one at the top level; within
  # a module they are numbered _0, _1, …, _10, … which sort wrongly as strings.
  model = models.create_model("wrn16", num_classes=10, width=0.125, neuron=models.NeuronSpec(time_steps=2))
  variables = models.init_model(model, jax.random.key(0))
  order = figure4.spiking_layer_order(model, variables)
  assert len(order) == 13 and order[-1] == ("SpikingNeuron_0",)
  params = jax.tree_util.tree_map(np.asarray, variables["params"])
  for i, path in enumerate(order):
    node = params
    for name in path:
      node = node[name]
    node["dlif_factors"] = np.full(2, float(i))
  factors = figure4.factors_from_params(params, order)
  assert factors == [[float(i)] * 2 for i in range(13)]
  assert figure4.factors_from_params(params) == factors


def test_runs_that_stayed_at_chance_are_listed_and_left_out_of_the_means(tmp_path):
  # 500 images, 10 classes: chance + 3 standard errors = 10 + 3·1.34 = 14.02 %.
  rows = [_row("dlif-rho0", 0, {"clean": 0.30, "fgsm": 0.20}, 0.20),
          _row("dlif-rho0", 1, {"clean": 0.082, "fgsm": 0.082}, 0.082),
          _row("dlif-rho0", 2, {"clean": 0.141, "fgsm": 0.10}, 0.10)]
  assert [analysis.stayed_at_chance(r) for r in rows] == [False, True, False]
  text = _table2_report(tmp_path, rows)
  line = next(l for l in text.splitlines() if l.startswith("| DLIF, AT, ρ = 0.0, MS-MPPD |"))
  # Mean of 30.0 and 14.1 over the two runs that learned; the third is counted apart.
  assert line.startswith("| DLIF, AT, ρ = 0.0, MS-MPPD | 2 (+1) | 22.05 ± 11.24 / 85.32 /")
  assert "1 of 3 runs never left chance (`dlif-rho0-s1` 8.20%)" in text
  per_run = next(l for l in text.splitlines() if l.startswith("| dlif-rho0-s1 |"))
  assert per_run.endswith("| complete, stayed at chance |")


def test_a_run_that_failed_a_masking_check_is_marked_but_kept_in_the_mean(tmp_path):
  rows = [_row("dlif-rho0", 0, {"clean": 0.30, "fgsm": 0.20}, 0.20),
          _row("dlif-rho0", 1, {"clean": 0.20, "fgsm": 0.10}, 0.10),
          _row("dlif-rho1", 0, {"clean": 0.30, "fgsm": 0.20}, 0.20)]
  rows[1]["checks"] = [{"name": "pgd-vs-fgsm", "passed": True, "message": ""},
                       {"name": "zero-gradient", "passed": False, "message": "all-zero"}]
  text = _table2_report(tmp_path, rows)
  lines = text.splitlines()
  # Mean of 30 and 20: the masked run still counts.
  assert next(l for l in lines if l.startswith("| DLIF, AT, ρ = 0.0, MS-MPPD")).startswith(
      "| DLIF, AT, ρ = 0.0, MS-MPPD † | 2 | 25.00 ± 7.07 /")
  assert next(l for l in lines if l.startswith("| DLIF, AT, ρ = 1.0, MS-MPPD")).startswith(
      "| DLIF, AT, ρ = 1.0, MS-MPPD | 1 |")
  assert next(l for l in lines if l.startswith("| dlif-rho0-s1 |")).endswith(
      "| complete, masking check failed: zero-gradient |")
  assert "† The mean includes runs that learned but failed a gradient-masking check " \
         "(`dlif-rho0-s1`: zero-gradient)" in text


def test_a_comparison_whose_side_stayed_at_chance_says_so():
  learned = {"dlif-rho0": {"clean": analysis.Stat([30.0]), "fgsm": analysis.Stat([20.0])}}
  lines = reading.honest_reading("table2", learned, {}, ["clean", "fgsm"], [],
                                at_chance={"dlif-rho1"})
  assert "DLIF ρ = 1 vs ρ = 0: not compared — every run of dlif-rho1 stayed at chance." in lines
  # A setting that was never run is not a comparison to report.
  assert not any(l.startswith("DLIF ρ = 2 vs ρ = 0") for l in lines)


def test_a_difference_beyond_both_stds_is_starred_on_our_number_not_the_papers():
  stats = {"dlif-rho0": {"clean": analysis.Stat([20.0, 22.0]), "fgsm": analysis.Stat([10.0, 11.0])},
           "dlif-rho1": {"clean": analysis.Stat([20.0, 23.0]), "fgsm": analysis.Stat([15.0, 16.0])}}
  paper = {"dlif-rho0": {"values": {"clean": 85.0, "fgsm": 38.0}},
           "dlif-rho1": {"values": {"clean": 85.5, "fgsm": 39.0}}}
  (line,) = [l for l in reading.honest_reading("table2", stats, paper, ["clean", "fgsm"], [])
             if l.startswith("DLIF ρ = 1 vs ρ = 0")]
  # FGSM: Δ = 15.5 − 10.5 = 5 > max std 0.71; clean: Δ = 0.5 < 2.12.
  assert "Clean +0.50, paper +0.50;" in line and "FGSM +5.00 *, paper +1.00" in line
  assert "1 of 1 robust differences beyond one std" in line


def test_every_setting_the_report_names_is_a_row_of_its_table():
  # rows.TABLES' figures and comparisons name settings; each must be run by a row set of that
  # table (or be a paper row), or the report would silently draw or compare nothing.
  paper = _io.read_json(report.PAPER_NUMBERS)
  for table, spec in rows_lib.TABLES.items():
    settings = {s.key for rs in rows_lib.ROW_SETS.values() if rs.table == table
                for s in rs.settings}
    named = set(spec.figures.figure3 + spec.figures.figure4 + spec.figures.figure5)
    named |= {k for c in spec.comparisons for k in (c.baseline, c.other)}
    assert named <= settings, (table, named - settings)
    if table in paper["tables"]:
      in_paper = {s.key for rs in rows_lib.ROW_SETS.values() if rs.table == table
                  for s in rs.settings if s.in_paper}
      assert in_paper <= set(paper["tables"][table]["rows"]), table
  assert {rs.table for rs in rows_lib.ROW_SETS.values()} <= set(rows_lib.TABLES)


def test_table_runs_leave_chance_out_and_mark_masked_runs():
  rows = [_row("dlif-rho0", 0, {"clean": 0.30, "fgsm": 0.20}, 0.20),
          _row("dlif-rho0", 1, {"clean": 0.082, "fgsm": 0.082}, 0.082),
          _row("dlif-rho1", 0, {"clean": 0.20, "fgsm": 0.10}, 0.10),
          _row("dlif-rho1", 1, {}, None)]
  rows[2]["checks"] = [{"name": "zero-gradient", "passed": False, "message": "all-zero"}]
  runs = analysis.table_runs(rows, num_classes=10)
  assert [r["id"] for r in runs.done] == ["dlif-rho0-s0", "dlif-rho0-s1", "dlif-rho1-s0"]
  assert [r["id"] for r in runs.at_chance] == ["dlif-rho0-s1"]
  assert runs.masked == {"dlif-rho1-s0": ["zero-gradient"]}
  assert runs.masked_settings == {"dlif-rho1"}
  # Means in %, over the runs that learned only.
  assert runs.stats["dlif-rho0"]["fgsm"].n == 1 and runs.stats["dlif-rho0"]["fgsm"].mean == 20.0
  assert math.isclose(runs.stats["dlif-rho1"]["worst-case"].mean, 10.0)
