"""The XLA:CPU flag that keeps convolutions off YNNPACK is in effect (jsnn/_xla.py)."""

import subprocess
import sys

import pytest

CODE = """
import jsnn, jax, jax.numpy as jnp
x = jnp.ones((8, 16, 16, 64)); k = jnp.ones((3, 3, 64, 64))
f = jax.jit(lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME',
            dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
print('YNN' if '__ynn_fusion' in f.lower(x, k).compile().as_text() else 'NO_YNN')
"""


def _run(env_extra):
  import os
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env.update(env_extra, JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True,
                       timeout=120, check=True)
  return out.stdout.strip().splitlines()[-1]


def test_convolutions_do_not_go_through_ynnpack():
  import jax
  if not jax.__version__.startswith("0.10."):
    pytest.skip(f"the flag is only set for jaxlib 0.10.x, this is {jax.__version__}")
  assert _run({}) == "NO_YNN"
  # The check can fail: without the flag this jaxlib does use YNNPACK for the same conv.
  assert _run({"JSNN_KEEP_YNN_CONV": "1"}) == "YNN"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
  from jsnn import _xla
  for name in ("XLA_FLAGS", "JAX_PLATFORMS", "JSNN_KEEP_YNN_CONV"):
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setattr(_xla, "PROBE_CACHE", str(tmp_path / "cache" / "xla_flags.json"))
  return _xla


def _never(calls):
  def probe():
    calls.append(1)
    raise AssertionError("a known jaxlib must not be probed")
  return probe


def test_a_known_jaxlib_gets_the_flag_without_a_probe(clean_env):
  calls = []
  assert clean_env.configure_cpu_flags(jaxlib_version="0.10.2", probe=_never(calls))
  assert clean_env.YNN_CONV_FLAG in clean_env.os.environ["XLA_FLAGS"] and not calls


@pytest.mark.parametrize("accepted", [True, False])
def test_an_unknown_jaxlib_is_probed_once_and_cached(clean_env, accepted, recwarn):
  calls = []

  def probe():
    calls.append(1)
    return accepted

  assert clean_env.configure_cpu_flags(jaxlib_version="0.12.0", probe=probe) == accepted
  assert (clean_env.YNN_CONV_FLAG in clean_env.os.environ.get("XLA_FLAGS", "")) == accepted
  warned = [w for w in recwarn if "does not accept" in str(w.message)]
  assert len(warned) == (0 if accepted else 1)
  clean_env.os.environ.pop("XLA_FLAGS", None)
  assert clean_env.configure_cpu_flags(jaxlib_version="0.12.0", probe=probe) == accepted
  assert calls == [1]   # the second decision came from the cache


def test_no_flag_when_jax_runs_on_an_accelerator_only(clean_env, monkeypatch):
  monkeypatch.setenv("JAX_PLATFORMS", "cuda")
  assert not clean_env.configure_cpu_flags(jaxlib_version="0.10.2", probe=_never([]))
  assert "XLA_FLAGS" not in clean_env.os.environ
  monkeypatch.setenv("JAX_PLATFORMS", "cuda,cpu")
  assert clean_env.configure_cpu_flags(jaxlib_version="0.10.2", probe=_never([]))


def test_a_users_own_setting_and_the_opt_out_are_kept(clean_env, monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=dot")
  assert not clean_env.configure_cpu_flags(jaxlib_version="0.10.2", probe=_never([]))
  assert clean_env.os.environ["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type=dot"
  monkeypatch.delenv("XLA_FLAGS")
  monkeypatch.setenv("JSNN_KEEP_YNN_CONV", "1")
  assert not clean_env.configure_cpu_flags(jaxlib_version="0.10.2", probe=_never([]))


def test_the_probe_tells_a_known_flag_from_an_unknown_one():
  import jax
  from jsnn import _xla
  if not jax.__version__.startswith("0.10."):
    pytest.skip(f"the flag was measured on jaxlib 0.10.x, this is {jax.__version__}")
  assert _xla.probe_flag(_xla.YNN_CONV_FLAG)
  # XLA aborts on a flag it does not know: the probe sees it fail.
  assert not _xla.probe_flag("--xla_jsnn_no_such_flag=1")
