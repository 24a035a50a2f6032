"""The federated hospital simulator: scenarios, Flower apps, deletion-aware strategies.

Owns everything of one federated run: the scenario files (``scenario/``), the
sites' logic without Flower (``site.py``), the messages between ClientApp and
server (``protocol.py``, ``transport.py``), the ClientApp, the server's plan
and deletion-aware strategies, the ServerApp, deletion policies and ledgers,
round schedules, the run directory (``rundir.py``), checkpoints, the recorder
and the simulation launcher on Ray (``simulation.py``).
"""
