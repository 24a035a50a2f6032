"""The single-site (centralized) unlearning study that the simulator federates, and its ingredient ablation.

Owns the study (``centralized.py``, ``summary.py``) and the ablation: its plan
(``plan.py``), the run (``ablation.py``), its unit files (``units.py``), the
paired effects (``effects.py``), the figure (``figure.py``) and ``--trace``
(``trace.py``).
"""

from fedunlearn.study.ablation import AblationConfig, run_ablation
from fedunlearn.study.centralized import StudyConfig, run_study

__all__ = ["AblationConfig", "StudyConfig", "run_ablation", "run_study"]
