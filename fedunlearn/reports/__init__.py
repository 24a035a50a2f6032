"""Reports on federated runs: tables from the runs' files, figures, one HTML or Markdown file."""

from fedunlearn.reports.build import FORMATS, build_report
from fedunlearn.reports.load import ReportError, RunData, load_runs

__all__ = ["FORMATS", "ReportError", "RunData", "build_report", "load_runs"]
