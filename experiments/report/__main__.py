"""``python -m experiments.report --results results --out docs``."""

from experiments.report.document import main

if __name__ == "__main__":
  main()
