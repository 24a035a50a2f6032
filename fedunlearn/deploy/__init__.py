"""Local deployments on Flower's Deployment Engine: the processes, their certificates and keys, the run.

The package owns ``fedunlearn deploy``:

- :mod:`~fedunlearn.deploy.certs`: a CA, the SuperLink's certificate and the
  SuperNodes' authentication keys (``cryptography``);
- :mod:`~fedunlearn.deploy.processes`: the processes started, their trees
  recorded, and every one of them stopped by PID;
- :mod:`~fedunlearn.deploy.launcher`: :class:`Deployment`, a SuperLink and its
  SuperNodes on 127.0.0.1 driven through the Flower CLI;
- :mod:`~fedunlearn.deploy.run`: :func:`deploy`, one scenario from validation
  to a complete run directory (or one line saying why not).

Which site a SuperNode is, and where its data and private state live, is the
hospital's node config, read by :mod:`fedunlearn.federated.nodes`.
"""

from __future__ import annotations

from fedunlearn.deploy.launcher import Deployment, DeployOptions
from fedunlearn.deploy.run import default_work_dir, deploy

__all__ = ["DeployOptions", "Deployment", "default_work_dir", "deploy"]
