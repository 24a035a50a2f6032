"""``python -m fedunlearn.federated.scenario > configs/README.md``: print the scenario reference."""

from fedunlearn.federated.scenario.reference import reference_markdown

print(reference_markdown(), end="")
