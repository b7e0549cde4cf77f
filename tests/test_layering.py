"""The pure-math layers never import Flax (STYLE.md §3: one-way dependencies)."""

import subprocess
import sys


def test_pure_modules_do_not_import_flax():
  code = ("import sys, jsnn.spiking, jsnn.perturbation, jsnn.losses, jsnn.attacks; "
          "bad = [m for m in sys.modules if m.split('.')[0] == 'flax']; "
          "assert not bad, bad")
  subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
