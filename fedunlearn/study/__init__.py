"""The single-site (centralized) unlearning study that the simulator federates."""

from fedunlearn.study.centralized import StudyConfig, run_study

__all__ = ["StudyConfig", "run_study"]
