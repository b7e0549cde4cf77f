"""Each attack kind's spec: what its name means, its closed-form passes and step sizes, and the
record that identifies its results. No model runs here."""

import dataclasses

import pytest

from jsnn import attacks
from jsnn.evaluation import TaskKey

EPS = 8 / 255


@pytest.mark.parametrize("name, spec_type, fields", [
    ("clean", attacks.CleanSpec, {}),
    ("fgsm", attacks.FGSMSpec, {}),
    ("pgd7", attacks.PGDSpec, {"num_steps": 7, "step_size": 2.55 / 255, "random_start": True}),
    ("pgd5", attacks.PGDSpec, {"num_steps": 5, "step_size": None, "random_start": True}),
    ("apgd-dlr20", attacks.APGDSpec, {"num_steps": 20, "loss": "dlr", "num_restarts": 1}),
    ("apgd-t100", attacks.APGDTSpec, {"num_steps": 100, "loss": "dlr", "num_targets": 4}),
    ("sa-pgd100", attacks.SAPGDSpec, {"num_steps": 100, "loss": "ce"}),
    ("square1000", attacks.SquareSpec, {"num_queries": 1000, "p_init": 0.8}),
])
def test_a_name_is_one_spec_with_its_fields(name, spec_type, fields):
  spec = attacks.parse_attack(name, EPS, num_targets=4)
  assert type(spec) is spec_type and spec.name == name and spec.epsilon == EPS
  assert {k: getattr(spec, k) for k in fields} == pytest.approx(fields)
  assert hash(spec) == hash(dataclasses.replace(spec))   # frozen: usable as a static argument


def test_passes_and_step_sizes_in_closed_form():
  parse = lambda name: attacks.parse_attack(name, EPS, num_targets=9)
  # (forward, backward) per image, scoring excluded: k gradients; APGD 1 + R·(k + 1) gradients.
  assert parse("clean").passes() == (0, 0)
  assert parse("fgsm").passes() == (1, 1)
  assert parse("pgd10").passes() == (10, 10)
  assert parse("apgd-ce").passes() == (1 + 11, 11)
  assert parse("apgd-t100").passes() == (1 + 9 * 101, 9 * 101)
  assert parse("sa-pgd100").passes() == (1 + 101, 101)
  assert parse("square5000").passes() == (1 + 5000, 0)
  # Step sizes: FGSM ε; PGD the reference's table scaled to ε, else 2.5·ε/k; APGD starts at 2ε.
  assert parse("fgsm").step_size_at(EPS) == EPS
  assert attacks.parse_attack("pgd10", 16 / 255).step_size_at(16 / 255) == pytest.approx(4 / 255)
  assert parse("pgd5").step_size_at(EPS) == pytest.approx(2.5 * EPS / 5)
  assert parse("apgd-dlr").step_size_at(EPS) == pytest.approx(2 * EPS)
  assert parse("square10").step_size_at(EPS) is None


def test_records_hold_only_their_own_kinds_fields():
  parse = lambda name: attacks.parse_attack(name, EPS, num_targets=3)
  assert parse("clean").record() == {"kind": "clean", "epsilon": 0.0}
  assert parse("pgd10").record() == {"kind": "pgd", "steps": 10, "loss": "ce", "norm": "linf",
                                     "random_start": True}
  assert parse("apgd-t2").record()["targets"] == 3
  assert "targets" not in parse("apgd-ce").record()
  assert set(parse("square9").record()) == {"kind", "loss", "norm", "queries", "p_init"}
  # Fields that cannot change the result are not in the record, so the fingerprint ignores them.
  assert parse("fgsm").needs_key is False and parse("square9").uses_gradients is False
  assert parse("square9").score_based and not parse("apgd-ce").score_based


@pytest.mark.parametrize("make, named", [
    (lambda: attacks.PGDSpec("p", num_steps=0), "num_steps"),
    (lambda: attacks.APGDSpec("a", rho=1.5), "rho"),
    (lambda: attacks.APGDTSpec("t", num_targets=0), "num_targets"),
    (lambda: attacks.SquareSpec("s", p_init=0.0), "p_init"),
    (lambda: attacks.SAPGDSpec("s", loss="hinge"), "'hinge'"),
    (lambda: attacks.PGDSpec("p", epsilon=1.5), "1.5"),
    (lambda: attacks.parse_attack("apgd-t0"), "number of steps must be >= 1"),
])
def test_bad_specs_raise_naming_the_value(make, named):
  with pytest.raises(ValueError, match=named):
    make()


@pytest.mark.parametrize("key, name", [
    (TaskKey("pgd10"), "pgd10"),
    (TaskKey("pgd10", "rga"), "pgd10@rga"),
    (TaskKey("fgsm", "sigmoid:4"), "fgsm@sigmoid:4"),
    (TaskKey("apgd-t100", cascade="standard"), "standard/apgd-t100"),
    (TaskKey("zero_gradient", "bptr"), "zero_gradient@bptr"),
])
def test_task_keys_name_and_parse_back(key, name):
  assert key.name == name and TaskKey.parse(name) == key
