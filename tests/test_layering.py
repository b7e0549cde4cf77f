"""The floors' rules: one-way dependencies (STYLE.md §3), one name grammar, typed result keys."""

import os
import re
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
  code = ("import sys, jsnn.config_diff, experiments.report, experiments.report.__main__; "
          "from experiments import results, rows, sweep; "
          "from experiments.report import analysis, figures, mid, reading, scripts, tables; "
          "row = rows.make_rows('table2', 'reduced', [0])[0]; "
          "results.phases_due(row, '/nonexistent', rows.row_config(row)); "
          "bad = [m for m in sys.modules if m.split('.')[0] in ('jax', 'flax')]; "
          "assert not bad, bad")
  subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=REPO)


def _imports(path):
  """Every module an ``import`` or ``from ... import`` statement in ``path`` names (any depth)."""
  import ast
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
  return names


def _python_files(*folders):
  for folder in folders:
    for base, _, files in os.walk(os.path.join(REPO, folder)):
      yield from (os.path.join(base, f) for f in files if f.endswith(".py"))


def test_evaluation_and_experiments_stand_beside_the_trainer():
  # They read workdirs through jsnn.workdir; only train.py drives the training loop.
  offenders = {os.path.relpath(p, REPO): sorted(n for n in _imports(p) if n == "jsnn.trainer")
               for p in _python_files(os.path.join("jsnn", "evaluation"), "experiments")}
  assert not {p: n for p, n in offenders.items() if n}, offenders


def test_the_pure_step_imports_no_loop_workdir_or_data_source():
  names = _imports(os.path.join(REPO, "jsnn", "train_step.py"))
  assert not names & {"jsnn.trainer", "jsnn.workdir", "jsnn.checkpointing", "jsnn.evaluation",
                      "jsnn.data.sources"}
  assert {"jsnn.data.augmentation", "jsnn.data.batching"} <= names


def _source(path):
  with open(path) as f:
    return f.read()


def test_attack_names_are_parsed_in_the_registry_only():
  # One grammar: a regular expression over attack names anywhere else would be a second one.
  registry = os.path.join(REPO, "jsnn", "attacks", "registry.py")
  pattern = re.compile(r"re\.(compile|match|fullmatch|search)\(.*(pgd|apgd|square)")
  offenders = [os.path.relpath(p, REPO) for p in _python_files("jsnn", "experiments")
               if p != registry and pattern.search(_source(p))]
  assert not offenders, offenders


def test_result_keys_become_strings_only_in_the_plan():
  # TaskKey.name builds "<attack>@<variant>" and TaskKey.parse reads it back; nothing else may:
  # the report and the sweep read a result's attack and gradient from its record's fields.
  plan = os.path.join(REPO, "jsnn", "evaluation", "plan.py")
  pattern = re.compile(r"""["']@["']|["'][^"'\n]*\{[^}]*\}@|@\{""")
  offenders = [os.path.relpath(p, REPO)
               for p in _python_files(os.path.join("jsnn", "evaluation"), "experiments")
               if p != plan and pattern.search(_source(p))]
  assert not offenders, offenders
  assert pattern.search(_source(plan))   # the check itself finds what it looks for


def test_evaluation_never_switches_on_the_attack_kind():
  # Each spec says what it needs (needs_key, uses_gradients, passes, step_size_at, record).
  offenders = [os.path.relpath(p, REPO) for p in _python_files(os.path.join("jsnn", "evaluation"))
               if re.search(r"\.kind\s*(==|!=|in\b)", _source(p))]
  assert not offenders, offenders
