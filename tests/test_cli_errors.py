"""Every expected failure of the command line: one line on stderr, exit 2, nothing changed.

The table holds one case per bad input: the command and its arguments, the exit status, what
stderr must name (the bad value or file), and the directories whose files must be byte-identical
afterwards. One tiny run (two steps an epoch, T = 2), trained once per module to the end of the
first of its two epochs, serves every case; a case that damages it works on a copy. train.py and
evaluate.py run as subprocesses, since the entry point itself is under test; the experiment
commands are called in-process through their ``main``. The kill-and-resume tests kill a run
(``JSNN_FAULT``) between an epoch's records and its checkpoint, and check that the resumed run
holds one record per epoch, those of an uninterrupted run.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from configs import smoke
from experiments import calibrate, report, sweep, theorem31
from jsnn import metric_files, trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "configs/smoke.py:natural"   # natural: the cheapest step to compile
TINY = {"model.width": 0.0625, "model.head_width": 16, "model.time_steps": 2,
        "data.train_size": 64, "training.batch_size": 8, "training.steps_per_epoch": 2,
        "training.eval_batch_size": 64, "training.epochs": 2, "logging.progress_bar": False}
TRAIN_FLAGS = [f"--config.{k}={v}" for k, v in TINY.items()]
EVAL_FLAGS = ["--config.eval.attacks=clean", "--config.eval.num_examples=8",
              "--config.eval.batch_size=8", "--config.eval.progress_bar=False",
              "--config.eval.sanity_checks=False"]
# Timing fields differ between any two runs; every other field of a record must not.
TIMING = {"images_per_second", "elapsed_seconds"}


def tiny_config():
  config = smoke.get_config("natural")
  for key, value in TINY.items():
    section, name = key.split(".")
    config[section][name] = value
  return config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  """A run of the tiny config stopped after its first epoch (step 2) of two, as if preempted."""
  workdir = str(tmp_path_factory.mktemp("cli") / "run")
  trainer.train_and_evaluate(tiny_config(), workdir, stop_after_epoch=1)
  return workdir


@pytest.fixture
def run(run_dir, tmp_path):
  """A copy of the run, for a case that damages it."""
  path = str(tmp_path / "copy")
  shutil.copytree(run_dir, path)
  return path


def tree_hashes(path):
  """``{relative path: sha256}`` of every file under ``path`` ({} if there is no such path)."""
  out = {}
  for directory, _, files in os.walk(path):
    for name in files:
      full = os.path.join(directory, name)
      with open(full, "rb") as f:
        out[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
  return out


# Run before the entry point, in its process (then exec'd): the limits a case needs. Set there,
# not in a preexec_fn, which would fork this multithreaded (JAX) process.
LAUNCHERS = {
    # Root ignores file modes; without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH it does not.
    "read-only": ("import ctypes, os, sys\n"
                  "libc = ctypes.CDLL(None, use_errno=True)\n"
                  "if os.geteuid() == 0 and any(libc.prctl(24, c, 0, 0, 0) for c in (1, 2)):\n"
                  "  sys.exit(99)   # PR_CAPBSET_DROP refused\n"),
    # Every write past 16 KiB fails (EFBIG) instead of killing the process: a full disk.
    "small-files": ("import resource, signal\n"
                    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
                    "resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))\n"),
}


def run_entry_point(script, args, *, env=None, launcher=None):
  """Runs ``python <script> <args>`` from the repository root, with the tests' compiler settings."""
  extra, env = env or {}, dict(os.environ)
  env.pop("JSNN_DEBUG", None)
  env.update(JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS="1", **extra)
  command = [sys.executable, os.path.join(ROOT, script), *args]
  if launcher:
    code = LAUNCHERS[launcher] + "import os, sys\nos.execv(sys.executable, sys.argv[1:])\n"
    command = [sys.executable, "-c", code, *command]
  proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  if launcher == "read-only" and proc.returncode == 99:
    pytest.skip("running as root without CAP_SETPCAP: cannot make a directory read-only to root")
  return proc


def make_read_only(path):
  for directory, dirs, files in os.walk(path):
    for name in files:
      os.chmod(os.path.join(directory, name), 0o444)
  for directory, dirs, _ in sorted(os.walk(path), reverse=True):
    os.chmod(directory, 0o555)


def make_writable(path):
  for directory, dirs, files in os.walk(path):
    os.chmod(directory, 0o755)
    for name in files:
      os.chmod(os.path.join(directory, name), 0o644)


def write_npz_data(path, *, damage):
  """A .npz data directory like ../shared/data/cifar10 whose train_0.npz is damaged."""
  os.makedirs(path)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
  labels = np.arange(64) % 10
  np.savez(os.path.join(path, "test.npz"), x_test=images, y_test=labels)
  shard = os.path.join(path, "train_0.npz")
  np.savez(shard, x_train=images, y_train=labels)
  with open(shard, "rb") as f:
    content = f.read()
  with open(shard, "wb") as f:
    f.write(content[:len(content) // 2] if damage == "truncated" else b"\x00garbage" * 100)


def step_dir(workdir, which="latest", step=2):
  return os.path.join(workdir, "checkpoints", which, str(step))


def damage_state(workdir, which="latest"):
  """Overwrites the array data of a checkpoint with a few random bytes (a damaged disk)."""
  data = os.path.join(step_dir(workdir, which), "variables", "ocdbt.process_0", "d")
  for name in os.listdir(data):
    with open(os.path.join(data, name), "wb") as f:
      f.write(os.urandom(20))


def empty_meta(workdir, which="latest"):
  open(os.path.join(step_dir(workdir, which), "meta", "metadata"), "w").close()


def truncate_flags(workdir):
  path = os.path.join(workdir, "robustness_flags.npz")
  np.savez_compressed(path, **{"clean-0123": np.ones(8, bool)})
  with open(path, "rb") as f:
    content = f.read()
  with open(path, "wb") as f:
    f.write(content[:len(content) // 2])


# id: (script, arguments, set-up of the copy or None, what stderr names). In the arguments,
# {run} is the shared run (or, when there is a set-up, its damaged copy), {new} a workdir that
# does not exist yet, {data} the damaged data directory, {ro} a read-only directory.
CASES = {
    # Config flags: absl and ml_collections fail before main() runs.
    "train: misspelt key": ("train.py", ["--workdir={run}", "--config.training.rhoo=1"], None,
                            ["'training.rhoo'", "did you mean 'training.rho'?"]),
    "train: misspelt section": ("train.py", ["--workdir={run}", "--config.trainin.rho=1"], None,
                                ["'trainin.rho'", "did you mean 'training.rho'?"]),
    "train: bad value": ("train.py", ["--workdir={run}", "--config.training.rho=abc"], None,
                         ["--config.training.rho=abc", "'abc'"]),
    "train: unknown flag": ("train.py", ["--wokdir={run}"], None, ["'wokdir'"]),
    "train: missing config file": ("train.py", ["--workdir={run}", "--config=configs/nope.py"],
                                   None, ["'configs/nope.py'", "does not exist"]),
    "train: bad config argument": ("train.py", ["--workdir={run}",
                                                "--config=configs/smoke.py:natral"], None,
                                   ["configs/smoke.py:natral", "unknown training mode 'natral'"]),
    "train: bad value in config argument": (
        "train.py", ["--workdir={run}", "--config=configs/smoke.py:natural,rho=x"], None,
        ["rho='x'", "not a valid float"]),
    # Settings: validated before any work.
    "train: nan learning rate": ("train.py", ["--workdir={new}",
                                              "--config.training.learning_rate=nan"], None,
                                 ["training.learning_rate = nan", "finite"]),
    "train: chi out of range": ("train.py", ["--workdir={new}", "--config.training.chi=1.5"],
                                None, ["chi (χ) must be in [0, 1], got 1.5"]),
    "train: another config": ("train.py", ["--workdir={run}", "--config.training.rho=0.5"], None,
                              ["training.rho: 0.0 → 0.5", "allow_config_mismatch"]),
    # Files: data, checkpoints, the workdir.
    "train: garbage .npz": ("train.py", ["--workdir={new}", "--config.data.dir={data}"], "garbage",
                            ["train_0.npz", "not a .npz (zip) file"]),
    "train: truncated .npz": ("train.py", ["--workdir={new}", "--config.data.dir={data}"],
                              "truncated", ["train_0.npz", "damaged or truncated"]),
    "train: damaged latest checkpoint": ("train.py", ["--workdir={run}"], damage_state,
                                         ["cannot read the 'latest' checkpoint of step 2",
                                          "{step_dir}", "left untouched"]),
    "train: empty meta file": ("train.py", ["--workdir={run}"], empty_meta,
                               ["{step_dir}/meta/metadata is empty"]),
    "train: read-only workdir": ("train.py", ["--workdir={run}"], make_read_only,
                                 ["cannot write into {run}", "chmod -R u+w"]),
    "train: new workdir in a read-only directory": ("train.py", ["--workdir={ro}/new"],
                                                    "read-only parent",
                                                    ["cannot create {ro}/new"]),
    # evaluate.py: the same contract.
    "evaluate: misspelt key": ("evaluate.py", ["--workdir={run}", "--config.eval.rhoo=1"], None,
                               ["'eval.rhoo'"]),
    "evaluate: missing config file": ("evaluate.py", ["--workdir={run}",
                                                      "--config=configs/nope.py"], None,
                                      ["'configs/nope.py'", "does not exist"]),
    "evaluate: nan epsilon": ("evaluate.py", ["--workdir={run}", "--config.eval.epsilon=nan"],
                              None, ["eval.epsilon = nan"]),
    "evaluate: no checkpoint": ("evaluate.py", ["--workdir={new}"], None, ["train there first"]),
    "evaluate: empty meta file": ("evaluate.py", ["--workdir={run}"],
                                  lambda w: empty_meta(w, "best"),
                                  ["{best_dir}/meta/metadata is empty"]),
    "evaluate: damaged checkpoint": ("evaluate.py", ["--workdir={run}",
                                                     "--config.eval.checkpoint=latest"],
                                     damage_state, ["cannot restore the 'latest' checkpoint",
                                                    "damaged"]),
    "evaluate: truncated flags": ("evaluate.py", ["--workdir={run}"], truncate_flags,
                                  ["{run}/robustness_flags.npz", "truncated"]),
    "evaluate: read-only workdir": ("evaluate.py", ["--workdir={run}"], make_read_only,
                                    ["cannot write into {run}", "evaluate a copy"]),
    # The frontier attacks and certification (issue 17): bad names and budgets.
    "evaluate: unknown estimator": ("evaluate.py", ["--workdir={run}",
                                                    "--config.eval.estimators=assg,pdgs"], None,
                                    ["unknown gradient estimator 'pdgs'", "assg", "pdsg"]),
    "evaluate: unknown attack": ("evaluate.py", ["--workdir={run}",
                                                 "--config.eval.attacks=clean,sa-pgdx"], None,
                                 ["unknown attack 'sa-pgdx'", "sa-pgd<k>"]),
    "evaluate: ASSG search budget below 1": ("evaluate.py", ["--workdir={run}",
                                                             "--config.eval.assg_search=0"], None,
                                             ["eval.assg_search", "got 0"]),
    "evaluate: certify N0 above N": ("evaluate.py", ["--workdir={run}", "--mode=certify",
                                                     "--config.eval.certify_n0=2000"], None,
                                     ["eval.certify_n0 (2000) must not exceed eval.certify_n"]),
    "evaluate: certify alpha outside (0, 1)": ("evaluate.py", ["--workdir={run}", "--mode=certify",
                                                               "--config.eval.certify_alpha=1.5"],
                                               None, ["eval.certify_alpha", "got 1.5"]),
    "evaluate: certify sigma not positive": ("evaluate.py", ["--workdir={run}", "--mode=certify",
                                                             "--config.eval.certify_sigma=0"],
                                             None, ["eval.certify_sigma", "got 0.0"]),
    "train: gaussian sigma not positive": ("train.py", ["--workdir={new}",
                                                        "--config.training.mode=gaussian",
                                                        "--config.training.gaussian_std=0"],
                                           None, ["training.gaussian_std", "got 0.0"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case, run_dir, tmp_path):
  script, args, setup, names = CASES[case]
  workdir = run_dir
  places = {"new": str(tmp_path / "new"), "data": str(tmp_path / "data"),
            "ro": str(tmp_path / "ro")}
  read_only = setup in (make_read_only, "read-only parent")
  if callable(setup):
    workdir = str(tmp_path / "copy")
    shutil.copytree(run_dir, workdir)
    setup(workdir)
  elif setup in ("garbage", "truncated"):
    write_npz_data(places["data"], damage=setup)
  elif setup == "read-only parent":
    os.makedirs(places["ro"])
    make_read_only(places["ro"])
  places.update(run=workdir, step_dir=step_dir(workdir), best_dir=step_dir(workdir, "best"))
  watched = [workdir, places["data"], places["ro"]]
  before = [tree_hashes(p) for p in watched]
  args = [a.format(**places) for a in args]
  if not any(a.startswith("--config=") for a in args):
    args.insert(0, f"--config={CONFIG}")
  try:
    # A case's own setting of a key replaces the shared flags' one.
    own = {a.split("=")[0] for a in args}
    shared = [f for f in (TRAIN_FLAGS if script == "train.py" else EVAL_FLAGS)
              if f.split("=")[0] not in own]
    proc = run_entry_point(script, args + shared, launcher="read-only" if read_only else None)
  finally:
    if read_only:
      for path in (workdir, places["ro"]):
        if os.path.exists(path):
          make_writable(path)
  assert proc.returncode == 2, proc.stderr[-3000:]
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1, proc.stderr[-3000:]
  for name in names:
    assert name.format(**places) in errors[0], errors[0]
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  assert [tree_hashes(p) for p in watched] == before
  assert not os.path.exists(places["new"]) and not os.path.exists(os.path.join(places["ro"],
                                                                                 "new"))


def test_debug_adds_the_traceback(run_dir):
  for args, env in ((["--debug"], None), ([], {"JSNN_DEBUG": "1"})):
    proc = run_entry_point("train.py", [f"--config={CONFIG}", *TRAIN_FLAGS, f"--workdir={run_dir}",
                                        "--config.training.rho=abc", *args], env=env)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and "could not convert string to float" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("error: flag --config.training.rho")


def test_a_full_disk_is_one_error_and_keeps_the_checkpoints(run):
  """Writes fail as on a full disk (a 16 KiB file size limit: EFBIG, not ENOSPC) while the run
  resumes: orbax's save threads log nothing; the error surfaces once; the checkpoints stay."""
  before = tree_hashes(run)
  proc = run_entry_point("train.py", [f"--config={CONFIG}", *TRAIN_FLAGS, f"--workdir={run}"],
                         launcher="small-files")
  assert proc.returncode == 2, proc.stderr[-3000:]
  errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1 and "cannot write a checkpoint into" in errors[0], proc.stderr[-3000:]
  assert "File too large" in errors[0] and "rerun the same command" in errors[0]
  assert "Traceback" not in proc.stderr and "orbax" not in proc.stderr, proc.stderr[-3000:]
  after = tree_hashes(run)
  # The epoch's record was written before its save failed; resuming drops it (tested below).
  changed = {k for k in before if after.get(k) != before[k]}
  assert changed == {"metrics.jsonl"}
  with open(os.path.join(run, "metrics.jsonl")) as f:
    assert [json.loads(line)["step"] for line in f] == [2, 4]


def test_a_dropped_tensorstore_write_is_not_logged():
  """asyncio logs a write future that orbax dropped with TensorStore's error, which carries no
  Python frame of orbax, only the temporary folder it wrote into (seen once in CI)."""
  import logging   # pylint: disable=import-outside-toplevel
  from jsnn import cli   # pylint: disable=import-outside-toplevel
  error = ValueError('OUT_OF_RANGE: Error writing "rng/0" in OCDBT database at local file '
                     '"/w/checkpoints/latest/4.orbax-checkpoint-tmp/state.orbax-checkpoint-tmp/": '
                     'Failed to write 16664 bytes to file 12: File too large')
  dropped = logging.LogRecord("asyncio", logging.ERROR, "/usr/lib/python3.11/asyncio/base_events.py",
                              1771, "Future exception was never retrieved", None,
                              (ValueError, error, None))
  kept = logging.LogRecord("asyncio", logging.ERROR, "/usr/lib/python3.11/asyncio/base_events.py",
                           1771, "Future exception was never retrieved", None,
                           (ValueError, ValueError("an error of someone else"), None))
  assert not cli._QUIET_LOGS.filter(dropped)
  assert cli._QUIET_LOGS.filter(kept)


# -------------------------------------------------------------------------------------------------
# The experiment commands (in-process: their main is the entry point)
# -------------------------------------------------------------------------------------------------


def _main_fails(main, argv, capsys):
  with pytest.raises(SystemExit) as info:
    main(argv)
  err = capsys.readouterr().err
  assert info.value.code == 2, err
  lines = err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
  return lines[0]


@pytest.mark.parametrize("override,named", [
    ("training.rhoo=1", "unknown config key 'training.rhoo' in override 'training.rhoo=1'; did "
                        "you mean 'training.rho'?"),
    ("training.rho=abc", "'abc'"),
    ("training.rho", "'training.rho' is not of the form key=value"),
    ("training.learning_rate=inf", "training.learning_rate = inf"),
])
def test_sweep_set_with_a_bad_key_or_value(override, named, capsys, tmp_path):
  root = str(tmp_path / "root")
  line = _main_fails(sweep.main, ["--rows", "table2", "--seeds", "0", "--root", root, "--set",
                                  override], capsys)
  assert named in line
  assert not os.path.exists(root)


def test_report_on_a_corrupt_results_file(capsys, tmp_path):
  path = tmp_path / "results" / "table2_reduced" / "results.json"
  path.parent.mkdir(parents=True)
  path.write_text('{"rows": [')
  out = tmp_path / "docs"
  line = _main_fails(report.main, ["--results", str(tmp_path / "results"), "--out", str(out)],
                     capsys)
  assert f"cannot read {path}: not valid JSON" in line
  assert not out.exists() and path.read_text() == '{"rows": ['


def test_report_with_out_naming_a_file(capsys, tmp_path):
  out = tmp_path / "docs"
  out.write_text("a file")
  line = _main_fails(report.main, ["--results", os.path.join(ROOT, "results"), "--out", str(out)],
                     capsys)
  assert f"--out {str(out)!r} is a file" in line and out.read_text() == "a file"


def test_report_on_a_folder_without_results(capsys, tmp_path):
  (tmp_path / "results").mkdir()
  out = tmp_path / "docs"
  line = _main_fails(report.main, ["--results", str(tmp_path / "results"), "--out", str(out)],
                     capsys)
  assert "no results found in" in line and str(tmp_path / "results") in line
  assert not out.exists()


def test_other_commands_keep_the_contract(capsys, tmp_path):
  line = _main_fails(calibrate.main, ["--config", "configs/nope.py"], capsys)
  assert "config file 'configs/nope.py' does not exist" in line
  line = _main_fails(theorem31.main, ["--workdir", str(tmp_path / "none"), "--out",
                                      str(tmp_path / "out")], capsys)
  assert "no 'best' checkpoint" in line and not (tmp_path / "out").exists()


# -------------------------------------------------------------------------------------------------
# Killed between an epoch's records and its checkpoint, then resumed
# -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
  """The tiny config's two epochs without interruption."""
  workdir = str(tmp_path_factory.mktemp("cli") / "straight")
  trainer.train_and_evaluate(tiny_config(), workdir)
  return workdir


def records(workdir):
  """metrics.jsonl without its timing fields, and the TensorBoard scalars as (tag, step, value)."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    lines = [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in f]
  scalars = [s for s in metric_files.read_scalars(os.path.join(workdir, "tensorboard"))
             if s[0] not in TIMING]
  return lines, sorted(scalars)


@pytest.mark.parametrize("fault,start", [
    # Epoch 2's record is written, its checkpoint never started: resumes from step 2.
    ("after_metrics_write", "run"),
    # Epoch 1's best checkpoint has committed, its latest one not: starts afresh (orbax skips the
    # save of a step it holds). Slow: it trains from scratch twice.
    pytest.param("after_best_save", "new", marks=pytest.mark.slow),
])
def test_a_run_killed_between_its_records_and_checkpoint_resumes_to_one_record_per_epoch(
    fault, start, run, straight_run, tmp_path):
  workdir = run if start == "run" else str(tmp_path / "new")
  proc = run_entry_point("train.py", [f"--config={CONFIG}", *TRAIN_FLAGS, f"--workdir={workdir}"],
                         env={"JSNN_FAULT": fault})
  assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
  killed_lines, _ = records(workdir)
  # The kill left a record that the resumed run writes again: without the cut, a duplicate.
  # (Its TensorBoard events may or may not have reached the file: tensorboardX writes them from a
  # queue. test_events_after_the_resumed_step_are_dropped covers them.)
  redone = 4 if start == "run" else 2
  assert killed_lines[-1]["step"] == redone

  summary = trainer.train_and_evaluate(tiny_config(), workdir)
  assert summary["start_step"] == redone - 2
  lines, scalars = records(workdir)
  assert [r["step"] for r in lines] == [2, 4]
  tags = {tag for tag, _, _ in scalars}
  assert "test_accuracy" in tags
  assert sorted((tag, step) for tag, step, _ in scalars) == sorted(
      (tag, step) for tag in tags for step in (2, 4))
  assert (lines, scalars) == records(straight_run)


def test_events_after_the_resumed_step_are_dropped(tmp_path):
  """drop_events_after on files written by tensorboardX: later events go, the file stays valid."""
  from tensorboardX import SummaryWriter
  logdir = str(tmp_path / "tb")
  for steps in ((2, 4), (4, 6)):   # a killed run's file, then the next run's
    writer = SummaryWriter(logdir, filename_suffix=f".{steps[0]}")
    for step in steps:
      writer.add_scalar("ce", float(step), step)
    writer.close()
  first, second = sorted(os.listdir(logdir))
  with open(os.path.join(logdir, second), "ab") as f:
    f.write(b"\x10\x00\x00")   # a record a kill cut short
  assert sorted(metric_files.read_scalars(logdir)) == [
      ("ce", 2, 2.0), ("ce", 4, 4.0), ("ce", 4, 4.0), ("ce", 6, 6.0)]
  assert metric_files.drop_events_after(logdir, 2) == 3
  assert metric_files.read_scalars(logdir) == [("ce", 2, 2.0)]
  # Every byte left is a whole record with valid checksums: nothing follows the last one.
  for name in (first, second):
    path = os.path.join(logdir, name)
    records = list(metric_files.read_records(path))
    assert sum(16 + len(r) for r in records) == os.path.getsize(path)
  assert metric_files.drop_events_after(logdir, 2) == 0   # nothing left to drop: untouched


def test_records_after_the_resumed_step_are_dropped(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 2, "epoch": 1}\n{"step": 4, "epoch": 2}\n{"step": 4, "ep')
  assert metric_files.drop_records_after(str(path), 2) == 2
  assert path.read_text() == '{"step": 2, "epoch": 1}\n'
  before = os.stat(path).st_mtime_ns
  assert metric_files.drop_records_after(str(path), 2) == 0 and os.stat(path).st_mtime_ns == before
  assert metric_files.drop_records_after(str(path), 0) == 1 and path.read_text() == ""
