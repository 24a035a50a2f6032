"""Replay, on a real medmnist 3.0.2 DermaMNIST object, the data handling the study's code applies.

Readings (b) and (a) of the README section "Does the study's claim reproduce?":
what does a MedMNIST object hand the training loop after the code writes
random labels to ``forget_dataset.targets``, and what do batches of a shuffled
``ConcatDataset`` of forget and retain rows hold? The steps below restate
(in our words, not the study's code) what filipe-research/Salun_aug does:
``dataset.py`` ``dermamnist_bin_dataloaders`` (binary labels stored in
``.labels``, forget rows marked as ``-label - 1``), ``main_forget_medical.py``
(forget / retain objects cut from copies by ``.imgs`` / ``.labels``),
``unlearn/RL.py`` (random labels assigned to ``.targets``; ConcatDataset,
shuffle=True) and ``unlearn/RL_hibrid.py`` (random labels for benign rows
assigned to ``.targets``). No torchvision: nothing is downloaded.

    python simulations/results/ablation-readings.py DATA_ROOT   # DATA_ROOT/dermamnist.npz
"""

from __future__ import annotations

import copy
import sys

import numpy as np
import torch
from medmnist import DermaMNIST

MALIGNANT = [0, 1, 4]


def main(root: str) -> None:
    rng = np.random.default_rng(0)
    train = DermaMNIST(split="train", root=root, download=False, size=28)
    train.labels = np.isin(np.asarray(train.labels).squeeze(), MALIGNANT).astype(
        np.int32
    )  # binary task
    n = len(train.labels)
    forget_idx = rng.choice(n, size=n // 5, replace=False)  # 20 % random forget set
    marked = train.labels.copy()
    marked[forget_idx] = -marked[forget_idx] - 1  # the code's marking of forget rows
    train.labels = marked

    forget = copy.deepcopy(train)
    is_f = forget.labels < 0
    forget.imgs, forget.labels = forget.imgs[is_f], -forget.labels[is_f] - 1
    forget.info["n_samples"]["train"] = len(forget.imgs)
    retain = copy.deepcopy(train)
    is_r = retain.labels >= 0
    retain.imgs, retain.labels = retain.imgs[is_r], retain.labels[is_r]
    retain.info["n_samples"]["train"] = len(retain.imgs)
    true = forget.labels.copy()

    # RL.py on MedMNIST: random labels assigned to an attribute the object never reads.
    rl = copy.deepcopy(forget)
    rl.targets = rng.integers(0, 2, size=rl.labels.shape)
    served = np.array([int(rl[i][1]) for i in range(len(rl))])
    print(
        f"RL: forget rows {len(rl)}; labels served by __getitem__ equal to the true labels: "
        f"{(served == true).mean():.1%}; equal to the random labels written to .targets: "
        f"{(served == rl.targets).mean():.1%}"
    )

    # RL_hibrid.py: benign rows get random labels in .targets, malignant rows keep theirs.
    hib = copy.deepcopy(forget)
    new = true.copy()
    new[true == 0] = rng.integers(0, 2, size=int((true == 0).sum()))
    hib.targets = new
    served_h = np.array([int(hib[i][1]) for i in range(len(hib))])
    benign = true == 0
    print(
        f"RL_hibrid: benign forget rows {int(benign.sum())}; served label = true label (benign) for "
        f"{(served_h[benign] == 0).mean():.1%}; rows whose written label was flipped to malignant: "
        f"{int((new[benign] == 1).sum())}, served as malignant: {int((served_h[benign] == 1).sum())}"
    )

    # RL.py's ConcatDataset loader: one shuffled pass over forget and retain rows together.
    both = torch.utils.data.ConcatDataset([rl, retain])
    order = torch.randperm(len(both), generator=torch.Generator().manual_seed(0))
    batches = [order[i : i + 256] for i in range(0, len(order), 256)]
    mixed = sum(bool((b < len(rl)).any() and (b >= len(rl)).any()) for b in batches)
    share = np.mean([float((b < len(rl)).float().mean()) for b in batches])
    print(
        f"ConcatDataset + shuffle=True, batch 256: {mixed}/{len(batches)} batches hold forget and retain rows "
        f"together; mean forget share per batch {share:.1%}"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/derma")
