"""Config helpers: paper rows selected by a config argument, big_vision style.

``python train.py --config configs/cifar10_vgg11.py:at_reg,rho=0,neuron=lif`` picks a row of the
paper's Table 1/2. The argument is a comma-separated list: a training mode (natural, gaussian, at,
at_reg) and ``key=value`` pairs for ``rho``, ``neuron``, ``distance``, ``placement``, ``seed``,
``epochs`` and ``sigma`` (the ``gaussian`` mode's noise std, ``training.gaussian_std``: e.g.
``gaussian,sigma=0.25`` for a model to certify at σ = 0.25 with ``evaluate.py --mode=certify``).
"""

import configs.default as default_lib

MODES = ("natural", "gaussian", "at", "at_reg")
_ROW_KEYS = {
    "rho": ("training", "rho", float),
    "neuron": ("model", "neuron", str),
    "distance": ("training", "distance", str),
    "placement": ("model", "dlif_placement", str),
    "seed": (None, "seed", int),
    "epochs": ("training", "epochs", int),
    "sigma": ("training", "gaussian_std", float),
}


def parse_arg(arg):
  """``"at,rho=1"`` → ``{"mode": "at", "rho": "1"}``."""
  out = {}
  for item in filter(None, (arg or "").split(",")):
    if "=" in item:
      key, value = item.split("=", 1)
      out[key.strip()] = value.strip()
    else:
      out["mode"] = item.strip()
  return out


def paper_config(model, dataset, arg, *, default_row="at,rho=1"):
  """The default config for ``model`` on ``dataset`` with the row given by ``arg`` applied."""
  config = default_lib.get_config()
  config.model.name = model
  config.data.name = dataset
  row = parse_arg(default_row)
  row.update(parse_arg(arg))
  mode = row.pop("mode")
  if mode not in MODES:
    raise ValueError(f"unknown training mode {mode!r} in config argument {arg!r}; expected one "
                     f"of {MODES}")
  config.training.mode = mode
  for key, value in row.items():
    if key not in _ROW_KEYS:
      raise ValueError(f"unknown key {key!r} in config argument {arg!r}; expected one of "
                       f"{sorted(_ROW_KEYS)}")
    section, name, cast = _ROW_KEYS[key]
    target = config if section is None else config[section]
    try:
      target[name] = cast(value)
    except ValueError:
      raise ValueError(f"{key}={value!r} in config argument {arg!r} is not a valid "
                       f"{cast.__name__}") from None
  if mode == "natural":
    config.training.rho = 0.0
  return config
