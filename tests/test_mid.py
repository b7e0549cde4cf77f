"""The mid-scale protocol: its config, its rows, the paired statistics and the report section."""

import json
import math
import os

import pytest

from experiments import common, stats
from experiments import rows as rows_lib
from experiments import report
from experiments.report import mid as report_mid
from jsnn import _io


def test_mid_config_loads_and_validates():
  from jsnn import evaluation, workdir
  config = workdir.resolve_config(common.load_config("configs/cifar10_mid.py:at,rho=1,seed=2",
                                                     []))
  assert config.data.dir.endswith(os.path.join("shared", "data", "cifar10"))
  assert config.data.train_size == 0 and config.seed == 2 and config.training.rho == 1.0
  assert config.model.time_steps >= 4 and config.eval.checkpoint == "latest"
  settings = evaluation.settings_from_config(config)
  assert settings.num_examples >= 2000
  assert [s.name for s in settings.specs] == ["clean", "fgsm", "pgd7", "pgd10", "pgd20", "pgd40",
                                              "apgd-ce", "apgd-dlr", "sa-pgd100"]
  assert [s.kind for s in settings.cascade] == ["apgd", "apgd-t", "square"]
  assert settings.estimators == ()    # "none": the full suite without estimator variants


def test_mid_rows_train_natural_once_and_pair_the_at_seeds():
  rows = rows_lib.make_rows("mid", "mid", [0, 1, 2])
  assert [r.id for r in rows] == ["dlif-natural-s0", "at-rho0-s0", "at-rho1-s0", "at-rho0-s1",
                                  "at-rho1-s1", "at-rho0-s2", "at-rho1-s2"]
  assert {r.config for r in rows} == {"configs/cifar10_mid.py"}


def test_paired_difference_against_a_hand_computation():
  # d = (3, 2, 5): mean 10/3, s = sqrt(7/3), half width t(2) · s / sqrt(3) = 4.303 · 0.8819.
  d = stats.paired_difference({0: 20.0, 1: 22.0, 2: 21.0, 7: 1.0}, {0: 23.0, 1: 24.0, 2: 26.0})
  assert d.seeds == (0, 1, 2)
  assert math.isclose(d.mean, 10 / 3)
  assert math.isclose(d.std, math.sqrt(7 / 3))
  half = 4.303 * math.sqrt(7 / 3) / math.sqrt(3)
  assert math.isclose(d.low, 10 / 3 - half) and math.isclose(d.high, 10 / 3 + half)
  assert d.low < 0 < d.high and d.verdict == stats.WITHIN
  tight = stats.paired_difference({0: 0.0, 1: 0.0, 2: 0.0}, {0: 3.0, 1: 3.2, 2: 2.8})
  assert tight.low > 0 and tight.verdict == stats.EXCEEDS
  one = stats.paired_difference({0: 1.0}, {0: 2.0})
  assert one.low is None and one.mean == 1.0
  assert stats.paired_difference({0: 1.0}, {1: 2.0}) is None


def _row(setting, seed, clean, pgd10, paper, standard, full):
  accuracies = {a: pgd10 for a in report_mid.ATTACKS}
  accuracies["clean"] = clean
  return {"id": f"{setting}-s{seed}", "table": "mid", "setting": setting, "seed": seed,
          "label": setting, "protocol": "mid", "status": "complete", "num_examples": 2000,
          "model": {"width": 0.25, "head_width": 256, "time_steps": 4},
          "training_config": {"epochs": 15, "batch_size": 64},
          "accuracies": accuracies, "worst_case": full,
          "cascade": {"apgd-ce100": standard + 0.02, "apgd-t100": standard + 0.01,
                      "square1000": standard},
          "suites": {"paper": paper, "standard": standard, "full": full},
          "training": {"wall_s": 3600.0}, "evaluation": {"wall_s": 900.0}, "wall_s": 4500.0}


@pytest.fixture
def mid_results(tmp_path):
  rows = [_row("dlif-natural", 0, 0.78, 0.01, 0.005, 0.0, 0.0)]
  for seed, (p0, p1) in enumerate(((0.20, 0.23), (0.22, 0.24), (0.21, 0.26))):
    rows.append(_row("at-rho0", seed, 0.62, p0, p0 - 0.02, p0 - 0.04, p0 - 0.05))
    rows.append(_row("at-rho1", seed, 0.61, p1, p1 - 0.02, p1 - 0.04, p1 - 0.05))
  root = tmp_path / "results" / "mid"
  root.mkdir(parents=True)
  (root / "results.json").write_text(json.dumps({"rows": rows}))
  return tmp_path / "results", rows


def test_mid_analysis_of_a_fixture(mid_results):
  _, rows = mid_results
  a = report_mid.analyse(rows, _io.read_json(report.PAPER_NUMBERS))
  pgd = a["paired"]["pgd10"]
  assert math.isclose(pgd["mean"], 10 / 3) and pgd["verdict"] == stats.WITHIN
  assert math.isclose(a["means"]["at-rho0"]["pgd10"]["mean"], 21.0)
  assert math.isclose(a["means"]["at-rho0"]["pgd10"]["std"], 1.0)
  # Paper suite 18 %, worst case 15 % for at-rho0-s0: overstated by 3 points.
  assert math.isclose(a["overstatement"]["at-rho0-s0"]["overstates_by"], 3.0)
  paper_vgg5 = a["paper_differences"]["Table 2 VGG5"]["pgd10"]
  assert math.isclose(paper_vgg5, 27.34 - 26.27)
  targets = {(t["setting"], t["attack"]): t["met"] for t in a["targets"]}
  assert targets == {("dlif-natural", "clean"): True, ("at-rho0", "clean"): True,
                     ("at-rho0", "pgd10"): False}


def test_report_renders_the_mid_section(mid_results, tmp_path):
  results_dir, _ = mid_results
  path = report.build([str(results_dir)], str(tmp_path / "docs"))
  text = open(path).read()
  assert f"## {rows_lib.MID_TITLE}" in text
  section = text[text.index(rows_lib.MID_TITLE):]
  assert "| PGD10 | 3 | +3.33 [" in section and stats.WITHIN in section
  assert "at-rho0-s0" in section and "+3.00 |" in section


def test_one_seed_per_setting_reads_as_no_interval_yet(mid_results, tmp_path):
  results_dir, rows = mid_results
  first = [r for r in rows if r["seed"] == 0]
  (results_dir / "mid" / "results.json").write_text(json.dumps({"rows": first}))
  text = open(report.build([str(results_dir)], str(tmp_path / "docs"))).read()
  section = text[text.index(rows_lib.MID_TITLE):]
  assert "one seed: no interval" in section
  assert "there is no interval: the seed noise is not measured yet" in section
  assert "No difference exceeds the seed noise" not in section
