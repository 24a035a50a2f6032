"""The federated hospital simulator: scenarios, Flower apps, deletion-aware strategies."""
