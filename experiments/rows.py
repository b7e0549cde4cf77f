"""Every row of the paper's tables, defined once: its config, its figures, its comparisons.

A :class:`Setting` is one row of a paper table (``dlif-rho1``: DLIF, AT, ρ = 1, MS-MPPD) and its
config argument. A :class:`Table` is what the report knows about a table: its settings' figures and
the pairs its reading compares. A :class:`RowSet` is what ``python -m experiments.sweep --rows``
runs: settings of one table and the config file each protocol trains them with. A :class:`Row` is
one run of a setting, with one protocol and one seed, in the workdir ``<root>/<row.id>``.

The keys (``table2``, ``dlif-rho1``) are the keys of ``experiments/paper_numbers.json``. Nothing
here imports JAX.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional, Sequence


@dataclasses.dataclass(frozen=True)
class Setting:
  """One row of a paper table: its key in paper_numbers.json, label and config argument."""
  key: str
  label: str
  arg: str
  figure3: bool = False        # also run the ε sweep (Figure 3)
  in_paper: bool = True        # the paper has numbers for it
  seeds: tuple[int, ...] = ()  # only these of the sweep's seeds (empty: all of them)


@dataclasses.dataclass(frozen=True)
class Comparison:
  """Two settings the report's reading compares: ``other − baseline``."""
  label: str
  baseline: str
  other: str


@dataclasses.dataclass(frozen=True)
class Figures:
  """The settings each of Figures 3–5 draws, in the order of their legends."""
  figure3: tuple[str, ...]
  figure4: tuple[str, ...]
  figure5: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Table:
  """What the report knows about a table beyond its numbers."""
  figures: Figures
  comparisons: tuple[Comparison, ...] = ()
  claims: str = ""             # the paper's claims that the comparisons test


@dataclasses.dataclass(frozen=True)
class RowSet:
  """Some settings of one table and the config file each protocol trains them with."""
  table: str                                           # key in paper_numbers.json, or "mid"
  settings: tuple[Setting, ...]
  configs: Mapping[str, str]                           # protocol -> config file
  arg_prefix: Mapping[str, str] = dataclasses.field(default_factory=dict)  # protocol -> argument


@dataclasses.dataclass(frozen=True)
class Row:
  """One run: a setting of a table, trained with one protocol and one seed."""
  id: str
  table: str
  setting: str
  label: str
  config: str
  arg: str
  seed: int
  protocol: str
  figure3: bool
  paper_key: Optional[str]

  @property
  def spec(self) -> str:
    return f"{self.config}:{self.arg}"


# -------------------------------------------------------------------------------------------------
# The rows
# -------------------------------------------------------------------------------------------------

_TABLE1 = (
    Setting("lif-natural", "LIF, Natural", "natural,neuron=lif"),
    Setting("dlif-natural", "DLIF, Natural", "natural"),
    Setting("gaussian-rho0", "DLIF, Gaussian, ρ = 0", "gaussian,rho=0"),
    Setting("gaussian-rho1", "DLIF, Gaussian, ρ = 1", "gaussian,rho=1"),
    Setting("at-rho0", "DLIF, AT, ρ = 0", "at,rho=0", figure3=True),
    Setting("at-rho1", "DLIF, AT, ρ = 1", "at,rho=1", figure3=True),
    Setting("at_reg-rho0", "DLIF, AT+Reg, ρ = 0", "at_reg,rho=0", figure3=True),
    Setting("at_reg-rho1", "DLIF, AT+Reg, ρ = 1", "at_reg,rho=1", figure3=True),
)
_VGG5 = {"full": "configs/cifar10_vgg5.py", "reduced": "configs/cifar10_reduced.py"}
_MID = {"mid": "configs/cifar10_mid.py"}

ROW_SETS = {
    # Table 2 (VGG5, RFGSM AT): ρ, LIF vs DLIF, the distance, and the DLIF placement (the paper's
    # factor on the leak against the reference code's on the input current, which all other rows
    # use; the paper has no numbers for the leak rows).
    "table2": RowSet("table2", (
        Setting("dlif-rho0", "DLIF, AT, ρ = 0, MS-MPPD", "at,rho=0", figure3=True),
        Setting("dlif-rho0.5", "DLIF, AT, ρ = 0.5, MS-MPPD", "at,rho=0.5"),
        Setting("dlif-rho1", "DLIF, AT, ρ = 1, MS-MPPD", "at,rho=1", figure3=True),
        Setting("dlif-rho2", "DLIF, AT, ρ = 2, MS-MPPD", "at,rho=2"),
        Setting("lif-rho0", "LIF, AT, ρ = 0, MS-MPPD", "at,rho=0,neuron=lif"),
        Setting("lif-rho1", "LIF, AT, ρ = 1, MS-MPPD", "at,rho=1,neuron=lif"),
        Setting("lif-rho2", "LIF, AT, ρ = 2, MS-MPPD", "at,rho=2,neuron=lif"),
        Setting("dlif-rho1-tasad", "DLIF, AT, ρ = 1, TASAD", "at,rho=1,distance=tasad"),
        Setting("dlif-rho1-std", "DLIF, AT, ρ = 1, STD", "at,rho=1,distance=std"),
        Setting("dlif-leak-rho0", "DLIF (factor on the leak), AT, ρ = 0, MS-MPPD",
                "at,rho=0,placement=leak", in_paper=False),
        Setting("dlif-leak-rho1", "DLIF (factor on the leak), AT, ρ = 1, MS-MPPD",
                "at,rho=1,placement=leak", in_paper=False),
    ), _VGG5),
    # The paper's Table 2 row that the brief's set leaves out; same root as table2.
    "table2_extra": RowSet("table2", (
        Setting("lif-rho0.5", "LIF, AT, ρ = 0.5, MS-MPPD", "at,rho=0.5,neuron=lif"),
    ), _VGG5),
    "table1_vgg11": RowSet("table1_cifar10_vgg11", _TABLE1,
                           {"full": "configs/cifar10_vgg11.py",
                            "reduced": "configs/cifar10_reduced.py"},
                           {"reduced": "model=vgg11"}),
    "table1_wrn16": RowSet("table1_cifar10_wrn16", _TABLE1,
                           {"full": "configs/cifar10_wrn16.py",
                            "reduced": "configs/cifar10_reduced.py"},
                           {"reduced": "model=wrn16"}),
    # CIFAR-100 has no reduced protocol: ../shared/data holds only CIFAR-10, and the paper's
    # configs read CIFAR-100 through TFDS wherever it can be prepared.
    "table1_cifar100_vgg11": RowSet("table1_cifar100_vgg11", _TABLE1,
                                    {"full": "configs/cifar100_vgg11.py"}),
    "table1_cifar100_wrn16": RowSet("table1_cifar100_wrn16", _TABLE1,
                                    {"full": "configs/cifar100_wrn16.py"}),
    # The paper's question at a scale where the models learn (configs/cifar10_mid.py): DLIF AT
    # with ρ = 0 against ρ = 1, seeds paired; natural training once, as the baseline.
    "mid": RowSet("mid", (
        Setting("dlif-natural", "DLIF, Natural", "natural", seeds=(0,)),
        Setting("at-rho0", "DLIF, AT, ρ = 0", "at,rho=0", figure3=True),
        Setting("at-rho1", "DLIF, AT, ρ = 1", "at,rho=1", figure3=True),
    ), _MID),
    # What the mid protocol adds when time allows: ρ = 2 and the paper's DLIF placement.
    "mid_extra": RowSet("mid", (
        Setting("at-rho2", "DLIF, AT, ρ = 2", "at,rho=2"),
        Setting("leak-rho0", "DLIF (factor on the leak), AT, ρ = 0", "at,rho=0,placement=leak",
                in_paper=False),
        Setting("leak-rho1", "DLIF (factor on the leak), AT, ρ = 1", "at,rho=1,placement=leak",
                in_paper=False),
    ), _MID),
}
PROTOCOLS = ("reduced", "mid", "full")
# The reference trained with seed 42 (spec §6); the reduced and mid protocols need several seeds.
DEFAULT_SEEDS = {"reduced": (0, 1, 2), "mid": (0, 1, 2), "full": (42,)}


def make_rows(row_set: str, protocol: str, seeds: Sequence[int],
              only: Sequence[str] = ()) -> list[Row]:
  """The rows of ``row_set`` for ``protocol`` and ``seeds`` (settings filtered by ``only``).

  Raises:
    ValueError: an unknown row set, protocol (or one the row set has no config for) or setting.
  """
  if row_set not in ROW_SETS:
    raise ValueError(f"unknown row set {row_set!r}; expected one of {sorted(ROW_SETS)}")
  if protocol not in PROTOCOLS:
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
  rs = ROW_SETS[row_set]
  if protocol not in rs.configs:
    raise ValueError(f"row set {row_set!r} has no {protocol!r} protocol; expected one of "
                     f"{sorted(rs.configs)}")
  unknown = set(only) - {s.key for s in rs.settings}
  if unknown:
    raise ValueError(f"unknown settings {sorted(unknown)} for {row_set}; expected some of "
                     f"{[s.key for s in rs.settings]}")
  rows = []
  # Seed-major: a sweep stopped early still holds every setting of its first seeds.
  for seed in seeds:
    for s in rs.settings:
      if (only and s.key not in only) or (s.seeds and seed not in s.seeds):
        continue
      arg = ",".join(filter(None, [s.arg, rs.arg_prefix.get(protocol, ""), f"seed={seed}"]))
      rows.append(Row(id=f"{s.key}-s{seed}", table=rs.table, setting=s.key, label=s.label,
                      config=rs.configs[protocol], arg=arg, seed=seed, protocol=protocol,
                      figure3=s.figure3, paper_key=f"{rs.table}/{s.key}" if s.in_paper else None))
  return rows


def row_config(row: Row, overrides: Sequence[str] = ()):
  """The row's config, with the sweep's ``--set`` overrides applied (as train.py would)."""
  from experiments import common   # pylint: disable=import-outside-toplevel  (absl, no JAX)
  return common.load_config(row.spec, overrides)


def row_set_of(table: str) -> str:
  """The first row set that runs ``table`` (the one a reader is told to run)."""
  return next(name for name, rs in ROW_SETS.items() if rs.table == table)


# -------------------------------------------------------------------------------------------------
# What the report draws and compares
# -------------------------------------------------------------------------------------------------

# The paper's Figures 3–5 use VGG11 AT/AT+Reg at ρ ∈ {0, 1}; Table 2's reduced runs are VGG5.
_TABLE1_REPORT = Table(
    Figures(figure3=("at-rho0", "at-rho1", "at_reg-rho0", "at_reg-rho1"),
            figure4=("at-rho0", "at-rho1"),
            figure5=("at-rho0", "at-rho1", "at_reg-rho0", "at_reg-rho1")),
    comparisons=(
        Comparison("DLIF vs LIF, natural", "lif-natural", "dlif-natural"),
        Comparison("Gaussian ρ = 1 vs ρ = 0", "gaussian-rho0", "gaussian-rho1"),
        Comparison("AT ρ = 1 vs ρ = 0", "at-rho0", "at-rho1"),
        Comparison("AT+Reg ρ = 1 vs ρ = 0", "at_reg-rho0", "at_reg-rho1"),
        Comparison("AT ρ = 0 vs natural", "dlif-natural", "at-rho0"),
    ))

TABLES = {
    "table2": Table(
        Figures(figure3=("dlif-rho0", "dlif-rho1"), figure4=("dlif-rho0", "dlif-rho1"),
                figure5=("dlif-rho0", "dlif-rho0.5", "dlif-rho1", "dlif-rho2")),
        comparisons=(
            Comparison("DLIF ρ = 0.5 vs ρ = 0", "dlif-rho0", "dlif-rho0.5"),
            Comparison("DLIF ρ = 1 vs ρ = 0", "dlif-rho0", "dlif-rho1"),
            Comparison("DLIF ρ = 2 vs ρ = 0", "dlif-rho0", "dlif-rho2"),
            Comparison("LIF ρ = 1 vs ρ = 0", "lif-rho0", "lif-rho1"),
            Comparison("LIF ρ = 2 vs ρ = 0", "lif-rho0", "lif-rho2"),
            Comparison("DLIF vs LIF at ρ = 0", "lif-rho0", "dlif-rho0"),
            Comparison("DLIF vs LIF at ρ = 1", "lif-rho1", "dlif-rho1"),
            Comparison("TASAD vs MS-MPPD (DLIF ρ = 1)", "dlif-rho1", "dlif-rho1-tasad"),
            Comparison("STD vs MS-MPPD (DLIF ρ = 1)", "dlif-rho1", "dlif-rho1-std"),
            Comparison("factor on the leak vs on the input, ρ = 0", "dlif-rho0", "dlif-leak-rho0"),
            Comparison("factor on the leak vs on the input, ρ = 1", "dlif-rho1", "dlif-leak-rho1"),
            Comparison("leak placement: ρ = 1 vs ρ = 0", "dlif-leak-rho0", "dlif-leak-rho1"),
        ),
        claims="The paper's claims for Table 2: every ρ > 0 beats ρ = 0 in robustness, ρ = 1 "
               "is best, LIF loses clean accuracy as ρ grows while DLIF does not, and TASAD/STD "
               "training is less effective than MS-MPPD; the comparisons above test each at "
               "this scale. The paper's own differences between ρ values are ≈ 1 point."),
    "table1_cifar10_vgg11": _TABLE1_REPORT,
    "table1_cifar10_wrn16": _TABLE1_REPORT,
    "table1_cifar100_vgg11": _TABLE1_REPORT,
    "table1_cifar100_wrn16": _TABLE1_REPORT,
    "mid": Table(Figures(figure3=("at-rho0", "at-rho1"), figure4=("at-rho0", "at-rho1"),
                         figure5=("at-rho0", "at-rho1"))),
}


# The mid protocol's one question (configs/cifar10_mid.py): ρ = 1 against ρ = 0, paired by seed.
MID_TITLE = "Mid scale: full CIFAR-10, DLIF AT ρ = 0 against ρ = 1"
MID_PAIR = Comparison("ρ = 1 − ρ = 0", "at-rho0", "at-rho1")


@dataclasses.dataclass(frozen=True)
class PaperPair:
  """The same question in a paper table: ``comparison`` between two of ``table``'s rows."""
  label: str
  table: str
  comparison: Comparison


@dataclasses.dataclass(frozen=True)
class Target:
  """An accuracy (%) that the mid config was sized to reach, as a mean over seeds."""
  setting: str
  attack: str
  percent: float


# The paper's ρ = 0 → ρ = 1 pairs for DLIF AT.
MID_PAPER_PAIRS = (
    PaperPair("Table 1 VGG11", "table1_cifar10_vgg11", Comparison("", "at-rho0", "at-rho1")),
    PaperPair("Table 2 VGG5", "table2", Comparison("", "dlif-rho0", "dlif-rho1")),
)
MID_TARGETS = (Target("dlif-natural", "clean", 75.0), Target("at-rho0", "clean", 60.0),
               Target("at-rho0", "pgd10", 25.0))
