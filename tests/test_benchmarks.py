"""The prepared GPU check runs here in its --quick form, so that it cannot rot before a GPU run."""

import importlib.util
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "benchmarks",
                                                                   f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  # dataclasses look their module up in sys.modules to resolve string annotations.
  sys.modules[name] = module
  spec.loader.exec_module(module)
  return module


def test_gpu_check_refuses_a_machine_without_a_gpu(capsys):
  assert _load("gpu_check").main(["--out", "/nonexistent-never-written"]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: no GPU") and "--quick" in err


def test_gpu_check_quick_writes_every_part(tmp_path, cifar10_mini_path):
  assert _load("gpu_check").main(["--quick", "--out", str(tmp_path),
                                  "--data", cifar10_mini_path]) == 0
  out = json.loads((tmp_path / "gpu_check.json").read_text())
  assert {(s["mode"], s["dtype"]) for s in out["steps"]} == {
      (m, d) for m in ("natural", "at") for d in ("float32", "bfloat16")}
  for s in out["steps"]:
    assert s["images_per_s"] > 0 and s["flops_per_step"] > 0 and s["compile_s"] > 0
  assert [a["attack"] for a in out["attacks"]] == ["pgd10", "apgd-ce100"]
  real = out["real_data"]
  assert real["all_finite"] and real["steps"] == 20 and "npz" in real["data"]
  assert out["skipped"] == []


def test_gpu_check_names_missing_data(tmp_path, capsys):
  assert _load("gpu_check").main(["--quick", "--data", str(tmp_path / "none")]) == 2
  assert "none" in capsys.readouterr().err


def test_roofline_quick_projects_every_part(tmp_path):
  assert _load("roofline").main(["--quick", "--out", str(tmp_path / "r")]) == 0
  out = json.loads((tmp_path / "r.json").read_text())
  for row in out["rows"]:
    parts = row["parts"]
    assert set(parts) == {"training", "suite_gradients", "suite_forwards"}
    # Each part's roofline is at least its compute time at the peak.
    for p in parts.values():
      assert p["roofline_s"] >= p["flops"] / row["peak_flops"] * (1 - 1e-9) > 0
    assert row["roofline_s"] == pytest.approx(sum(p["roofline_s"] for p in parts.values()))
