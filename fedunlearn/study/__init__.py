"""The single-site (centralized) unlearning study that the simulator federates, and its ingredient ablation."""

from fedunlearn.study.ablation import AblationConfig, run_ablation
from fedunlearn.study.centralized import StudyConfig, run_study

__all__ = ["AblationConfig", "StudyConfig", "run_ablation", "run_study"]
