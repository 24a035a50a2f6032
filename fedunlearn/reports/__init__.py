"""Reports on federated runs: tables from the runs' files, figures, one HTML or Markdown file.

Owns reading finished runs (``load.py``), the paired statistics against the
control arm and Retrain (``paired.py``, ``contrasts.py``), the summary tables
(``tables.py``), the figures (``figures.py``) and the report itself
(``build.py``, ``render.py``).
"""

from fedunlearn.reports.build import FORMATS, build_report
from fedunlearn.reports.load import ReportError, RunData, load_runs

__all__ = ["FORMATS", "ReportError", "RunData", "build_report", "load_runs"]
