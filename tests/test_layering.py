"""The pure-math layers never import Flax (STYLE.md §3: one-way dependencies)."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_pure_modules_do_not_import_flax():
  code = ("import sys, jsnn.spiking, jsnn.perturbation, jsnn.losses, jsnn.attacks; "
          "bad = [m for m in sys.modules if m.split('.')[0] == 'flax']; "
          "assert not bad, bad")
  subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=REPO)


def test_report_and_sweep_completion_checks_do_not_import_jax():
  # They read results files only, so they run on a machine without an accelerator stack.
  code = ("import sys, jsnn.config_diff, experiments.report; from experiments import sweep; "
          "row = sweep.make_rows('table2', 'reduced', [0])[0]; "
          "sweep.phases_due(row, '/nonexistent', sweep.row_config(row)); "
          "bad = [m for m in sys.modules if m.split('.')[0] in ('jax', 'flax')]; "
          "assert not bad, bad")
  subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=REPO)
