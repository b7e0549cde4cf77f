"""The report's beyond-paper sections on the frontier attacks and on certified robustness.

A small results tree is written by hand in tmp_path: a frontier model (its robustness.json before
and with SA-PGD and the ASSG variant), a mid row evaluated with the full suite but without SA-PGD,
and a randomized-smoothing certification. Every number asserted can be checked against the
fixture by hand.
"""

import os

import pytest

from experiments import report
from experiments.report import certified, frontier
from jsnn import _io
from jsnn.evaluation import certification, settings
from jsnn.spiking import neurons


def _attack(attack, accuracy, total=200, kind="pgd", fingerprint=None, estimator=None):
  record = {"attack": attack, "kind": kind, "accuracy": accuracy,
            "correct": round(accuracy * total), "total": total, "wall_time_s": 10.0,
            "fingerprint": fingerprint or f"{kind}{accuracy}"}
  if estimator:
    record["estimator"] = estimator
  return record


def _evaluation(attacks, correct, total, estimators, per_attack=None, suite="paper"):
  return {"attacks": attacks, "suite": suite, "epsilon": 8 / 255, "checkpoint_step": 316,
          "data": "cifar10 test", "model": {"name": "vgg5", "width": 0.125, "time_steps": 4},
          "training": {"mode": "at", "rho": 1.0, "epochs": 4},
          "worst_case": {"accuracy": correct / total, "correct": correct, "total": total},
          "estimators": {"estimators": estimators, "per_attack": per_attack or {}},
          "checks": [{"name": "pgd-vs-fgsm", "passed": True, "message": "ok"}]}


# Before: clean 25 %, FGSM 17.5 %, PGD10 16.5 % under the surrogate (triangle), FGSM 19.5 % under
# BPTR; worst case 27 of 200 = 13.5 %, the paper's attacks alone 14.5 %.
BEFORE_ATTACKS = {"clean": _attack("clean", 0.25, kind="clean"),
                  "fgsm": _attack("fgsm", 0.175, kind="fgsm"),
                  "pgd10": _attack("pgd10", 0.165),
                  "fgsm@bptr": _attack("fgsm", 0.195, kind="fgsm", estimator="bptr")}
BEFORE = _evaluation(BEFORE_ATTACKS, 27, 200, {
    "triangle": {"attacks": {"fgsm": 0.175, "pgd10": 0.165}, "worst_case_accuracy": 0.145,
                 "gradient_estimator": "surrogate"},
    "bptr": {"attacks": {"fgsm": 0.195}, "worst_case_accuracy": 0.195,
             "gradient_estimator": "bptr"}})
# With: SA-PGD-100 13 % (12 % under ASSG), FGSM under ASSG 16 %; worst case 23 of 200 = 11.5 %.
WITH = _evaluation(
    {**BEFORE_ATTACKS, "sa-pgd100": _attack("sa-pgd100", 0.13, kind="sa-pgd"),
     "fgsm@assg": _attack("fgsm", 0.16, kind="fgsm", estimator="assg"),
     "sa-pgd100@assg": _attack("sa-pgd100", 0.12, kind="sa-pgd", estimator="assg")}, 23, 200, {
         "triangle": {"attacks": {"fgsm": 0.175, "pgd10": 0.165, "sa-pgd100": 0.13},
                      "worst_case_accuracy": 0.13, "gradient_estimator": "surrogate"},
         "bptr": {"attacks": {"fgsm": 0.195}, "worst_case_accuracy": 0.195,
                  "gradient_estimator": "bptr"},
         "assg": {"attacks": {"fgsm": 0.16, "sa-pgd100": 0.12}, "worst_case_accuracy": 0.115,
                  "gradient_estimator": "assg"}},
    per_attack={"sa-pgd100": {"worst_case_accuracy": 0.115}})
# A mid row evaluated with the full suite before SA-PGD was part of it.
MID = _evaluation({"clean": _attack("clean", 0.7425, 2000, kind="clean"),
                   "pgd10": _attack("pgd10", 0.001, 2000)}, 0, 2000, {
    "triangle": {"attacks": {"pgd10": 0.001}, "worst_case_accuracy": 0.0,
                 "gradient_estimator": "surrogate"}}, suite="full")
CERTIFICATION = {"sigma": 0.25, "n0": 100, "n": 1000, "alpha": 0.001, "draws_per_image": 1100,
                 "certified": 500, "total": 500, "complete": True,
                 "radii": [0.0, 0.25, 0.5, 0.75, 1.0],
                 "certified_accuracy": {"0": 0.282, "0.25": 0.204, "0.5": 0.148, "0.75": 0.0,
                                        "1": 0.0},
                 "abstention_rate": 0.062, "predict_accuracy": 0.284, "wall_time_s": 395.8,
                 "model": {"name": "vgg5", "width": 0.125, "time_steps": 4},
                 "training_mode": "gaussian", "training_gaussian_std": 0.25}


@pytest.fixture
def results_tree(tmp_path):
  root = tmp_path / "results"
  at, gauss, mid = (root / "frontier_reduced" / "at-rho1-s0",
                    root / "frontier_reduced" / "gaussian-sigma0.25-s0",
                    root / "mid" / "dlif-natural-s0")
  _io.write_json(str(at / frontier.BEFORE_FILE), BEFORE)
  _io.write_json(str(at / "robustness.json"), WITH)
  _io.write_json(str(mid / "robustness.json"), MID)
  _io.write_json(str(gauss / certified.CERTIFY_FILE), CERTIFICATION)
  (gauss / certified.CERTIFY_PLOT).write_bytes(b"\x89PNG")
  return root


def _build(root):
  docs = os.path.join(os.path.dirname(root), "docs")
  return open(report.build([str(root)], docs)).read()


def test_the_names_match_what_the_evaluation_writes():
  assert frontier.FRONTIER_ESTIMATORS == neurons.ADAPTIVE_ESTIMATORS
  assert frontier.FRONTIER_KINDS == (settings.SAPGD,)
  assert (certified.CERTIFY_FILE, certified.CERTIFY_PLOT) == (certification.CERTIFY_FILE,
                                                              certification.CERTIFY_PLOT)


def test_read_model_holds_the_worst_cases_before_and_with_the_frontier(results_tree):
  m = frontier.read_model(str(results_tree / "frontier_reduced" / "at-rho1-s0"), "at")
  assert (m.before.correct, m.with_frontier.correct, m.num_images) == (27, 23, 200)
  assert (m.before.percent, m.with_frontier.percent, m.difference) == (13.5, 11.5, -2.0)
  # The paper's suite from the before file: the file with SA-PGD has it under the surrogate.
  assert m.paper_suite == pytest.approx(14.5) and m.clean == 25.0
  assert m.frontier_attacks == ("sa-pgd100",) and m.frontier_gradients == ("assg",)
  assert m.gradients == ("triangle", "bptr", "assg")
  assert m.accuracy[("sa-pgd100", "assg")] == 12.0 and m.mismatched == ()


def test_read_model_reads_which_attack_and_gradient_from_the_record_not_its_name(results_tree):
  at = results_tree / "frontier_reduced" / "at-rho1-s0"
  named = frontier.read_model(str(at), "at")
  opaque = dict(WITH, attacks={f"r{i}": r for i, r in enumerate(WITH["attacks"].values())})
  _io.write_json(str(at / "robustness.json"), opaque)
  os.remove(at / frontier.BEFORE_FILE)
  m = frontier.read_model(str(at), "at")
  assert m.accuracy == named.accuracy and m.gradients == named.gradients
  assert (m.frontier_attacks, m.frontier_gradients) == (("sa-pgd100",), ("assg",))


def test_a_sweep_rows_kept_suite_accuracies_give_the_paper_suite_with_and_without_sa_pgd(
    results_tree):
  from experiments import results as sweep_results
  # A mid AT row of the full suite: SA-PGD ran with the paper's attacks, no before file.
  row = results_tree / "mid" / "at-rho0-s0"
  robustness = dict(WITH, attacks={k: v for k, v in WITH["attacks"].items() if "@" not in k})
  _io.write_json(str(row / "robustness.json"), robustness)
  assert frontier.read_model(str(row), "mid").paper_suite is None   # the own gradient has SA-PGD
  basis = {"checkpoint_step": 316,
           "attacks": {n: a["accuracy"] for n, a in sorted(robustness["attacks"].items())}}
  _io.write_json(str(row / sweep_results.SUITES_FILE),
                 {"basis": basis, "suites": {"paper": 0.145, "sa_pgd": 0.12, "full": 0.115}})
  m = frontier.read_model(str(row), "mid")
  assert (m.paper_suite, m.paper_with_sa_pgd) == (pytest.approx(14.5), 12.0)
  assert "| mid/at-rho0-s0 | 200 | 25.00 | 14.50 | 12.00 | — | 11.50 (23) | — |" in _build(
      results_tree)
  assert ("SA-PGD alone takes the paper's suite from 14.50 % to 12.00 % (-2.50 points)."
          in frontier.frontier_reading(m))
  # Another evaluation in the same directory: the kept numbers no longer describe it.
  robustness["attacks"]["pgd10"] = dict(robustness["attacks"]["pgd10"], accuracy=0.16)
  _io.write_json(str(row / "robustness.json"), robustness)
  assert frontier.read_model(str(row), "mid").paper_with_sa_pgd is None


def test_report_renders_the_frontier_section(results_tree):
  text = _build(results_tree)
  assert f"## {frontier.TITLE}" in text
  assert ("| frontier_reduced/at-rho1-s0 | 200 | 25.00 | 14.50 | — | 13.50 (27) | 11.50 (23) | "
          "-2.00 |") in text
  assert "| attack | triangle | bptr | assg (new) | worst over gradients |" in text
  assert "| SA-PGD-100 (new) | 13.00 | — | 12.00 | 11.50 |" in text
  assert "| worst over attacks | 13.00 | 19.50 | 11.50 | |" in text
  assert ("with SA-PGD-100 and the assg gradients the worst case is 11.50 % (23 of 200 images), "
          "-2.00 points (4 images fewer) against 13.50 % before them, and -3.00 points against "
          "the paper's suite (14.50 %)") in text
  assert "The strongest single attack is SA-PGD-100 under assg (12.00 %)." in text
  assert "[Beyond the paper: frontier attacks](#beyond-the-paper-the-frontier-attacks-sa-pgd-" \
         "assg-and-pdsg)" in text


def test_a_full_suite_row_without_sa_pgd_is_absent_not_an_error(results_tree):
  text = _build(results_tree)
  # Its own worst case is the one before the frontier attacks: none of them ran.
  assert "| mid/dlif-natural-s0 | 2000 | 74.25 | 0.00 | — | 0.00 (0) | absent | — |" in text
  assert ("`mid/dlif-natural-s0`: SA-PGD and the ASSG and PDSG gradients are absent from its "
          "evaluation; its worst case is 0.00 % (0 of 2000 images).") in text


def test_report_renders_the_certification_section(results_tree):
  text = _build(results_tree)
  assert f"## {certified.TITLE}" in text
  assert "| frontier_reduced/gaussian-sigma0.25-s0 | 500 | 0.25 | 100 | 1000 | 0.001 | 1100 | " \
         "6.6 min |" in text
  assert "| model | r = 0 | r = 0.25 | r = 0.5 | r = 0.75 | r = 1 | abstention | " \
         "PREDICT accuracy |" in text
  assert "| frontier_reduced/gaussian-sigma0.25-s0 | 28.2 | 20.4 | 14.8 | 0.0 | 0.0 | 6.2 | " \
         "28.4 |" in text
  assert "](../results/frontier_reduced/gaussian-sigma0.25-s0/certification.png)" in text
  # 0.25·Φ⁻¹(0.001^(1/1000)) = 0.25·Φ⁻¹(0.99312) = 0.25·2.4633: every draw the top class.
  assert "σ·Φ⁻¹(α^(1/N)) = 0.616 can be certified, so r = 0.75, 1 are 0 by construction" in text


def test_largest_radius_is_sigma_times_the_quantile_of_the_all_hits_bound(results_tree):
  c = certified.read_certification(
      str(results_tree / "frontier_reduced" / "gaussian-sigma0.25-s0" / certified.CERTIFY_FILE),
      "g")
  assert c.certified_accuracy == pytest.approx({0.0: 28.2, 0.25: 20.4, 0.5: 14.8, 0.75: 0.0,
                                                1.0: 0.0})
  # The radius certification.json itself gives an image whose 1000 draws all hit its class.
  assert c.largest_radius == pytest.approx(0.615816, abs=1e-6)


def test_no_frontier_or_certification_files_no_sections(tmp_path):
  root = tmp_path / "results" / "table2_reduced"
  _io.write_json(str(root / "results.json"), {"runs": [], "rows": []})
  # A row evaluated with the paper's suite only is no frontier model.
  _io.write_json(str(root / "dlif-rho1-s0" / "robustness.json"),
                 _evaluation({"clean": _attack("clean", 0.25, kind="clean")}, 50, 200, {}))
  text = _build(tmp_path / "results")
  assert frontier.TITLE not in text and certified.TITLE not in text
  # Neither a heading nor a row of the summary table.
  assert not [line for line in text.splitlines() if "Beyond the paper" in line]


@pytest.mark.parametrize("name", ["robustness.json", frontier.BEFORE_FILE, "certification.json"])
def test_an_unreadable_file_is_a_one_line_error_naming_it(name, results_tree, capsys):
  directory = "gaussian-sigma0.25-s0" if name == "certification.json" else "at-rho1-s0"
  path = results_tree / "frontier_reduced" / directory / name
  path.write_text('{"attacks": [')
  out = results_tree.parent / "docs"
  with pytest.raises(SystemExit) as info:
    report.main(["--results", str(results_tree), "--out", str(out)])
  err = capsys.readouterr().err.strip().splitlines()
  assert info.value.code == 2 and len(err) == 1
  assert err[0].startswith(f"error: cannot read {path}: not valid JSON")
  assert not out.exists()


def test_a_certification_without_its_numbers_names_what_is_missing(results_tree):
  path = results_tree / "frontier_reduced" / "gaussian-sigma0.25-s0" / certified.CERTIFY_FILE
  _io.write_json(str(path), {"sigma": 0.25})
  with pytest.raises(ValueError, match=f"cannot read {path}: no n0, n, alpha, radii, "
                                       "certified_accuracy, total"):
    _build(results_tree)
