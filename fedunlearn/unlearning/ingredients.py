"""The five ingredients by which the study's public code differs from its paper, and two presets.

Every ingredient is a setting of :class:`~fedunlearn.unlearning.UnlearnConfig`;
its first value is the paper's (METHOD.md section 4) and the default:

- ``schedule``: ``sequential`` (each epoch a forget pass, then a retain pass) or
  ``mixed`` (one shuffled pass over forget and retain rows together, as the
  code's ``ConcatDataset`` loader does on MedMNIST);
- ``forget_labels``: ``random`` (labels drawn uniformly) or ``true`` (the
  forget rows keep their true labels: the code writes the random labels to
  ``forget_dataset.targets`` while a MedMNIST object reads ``self.labels``);
- ``loss_weighting``: ``class`` (class-balanced cross-entropy counted on the
  retain set) or ``none`` (plain ``nn.CrossEntropyLoss()``);
- ``cra_scope``: ``malignant`` (SalUn-CRA's entropy term on malignant forget
  rows only) or ``all`` (on every forget row: the code maps ``RL_hibrid`` to
  ``RL_entropy``);
- ``mask_freeze``: ``restore`` (masked-out weights put back after every step)
  or ``gradient`` (only their gradients masked; weight decay and momentum
  still move them).

Presets: ``paper`` is the defaults; ``study-code`` is how the public code
behaves on MedMNIST (repository filipe-research/Salun_aug, ``Classification/``,
``unlearn/__init__.py`` at commit c9ee928, ``unlearn/RL.py`` at be0267f,
``unlearn/RL_entropy.py`` at 8066a90, ``main_forget_medical.py`` at 34e0ce9),
as read and verified in the README section "Does the study's claim reproduce?".

References
----------
METHOD.md sections 4 and 4b; arXiv:2604.23854; Fan et al., "SalUn", ICLR 2024.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Ingredient -> allowed values; the first value is the paper's and the default.
INGREDIENTS: dict[str, tuple[str, ...]] = {
    "schedule": ("sequential", "mixed"),
    "forget_labels": ("random", "true"),
    "loss_weighting": ("class", "none"),
    "cra_scope": ("malignant", "all"),
    "mask_freeze": ("restore", "gradient"),
}
INGREDIENT_NAMES: tuple[str, ...] = tuple(INGREDIENTS)

#: The ingredients each method reads; the others do not change what it does.
RELEVANT: dict[str, tuple[str, ...]] = {
    "retrain": (),
    "ft": ("loss_weighting",),
    "ga": (),
    "rl": ("schedule", "forget_labels", "loss_weighting"),
    "salun": ("schedule", "forget_labels", "loss_weighting", "mask_freeze"),
    "salun-cra": INGREDIENT_NAMES,
}

PAPER: dict[str, str] = {name: values[0] for name, values in INGREDIENTS.items()}

#: preset -> method -> ingredient values (methods absent read the paper's values).
PRESETS: dict[str, dict[str, dict[str, str]]] = {
    "paper": {method: {k: PAPER[k] for k in keys} for method, keys in RELEVANT.items()},
    "study-code": {
        "retrain": {},
        "ga": {},
        # FT.py: the script's criterion, nn.CrossEntropyLoss() without weights.
        "ft": {"loss_weighting": "none"},
        # RL.py (SalUn = RL with a mask): one ConcatDataset loader, labels never replaced, plain CE.
        "rl": {"schedule": "mixed", "forget_labels": "true", "loss_weighting": "none"},
        "salun": {
            "schedule": "mixed",
            "forget_labels": "true",
            "loss_weighting": "none",
            "mask_freeze": "gradient",
        },
        # RL_hibrid -> RL_entropy: entropy on the whole forget set, then class-weighted CE on the retain set.
        "salun-cra": {
            "schedule": "sequential",
            "forget_labels": "true",
            "loss_weighting": "class",
            "cra_scope": "all",
            "mask_freeze": "gradient",
        },
    },
}
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)


def check_ingredient(name: str, value: str) -> None:
    """Raise a one-line ValueError unless ``value`` is allowed for ingredient ``name``."""
    allowed = INGREDIENTS[name]
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def preset_values(preset: str, method: str) -> dict[str, str]:
    """The ingredient values ``preset`` gives ``method`` (the list of presets on a bad name)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESET_NAMES)}")
    return dict(PRESETS[preset].get(method, {}))


def effective(method: str, values: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The ingredient values that change what ``method`` does: two settings with the same key run the same.

    SalUn-CRA with ``cra_scope: all`` reads no forget label, so ``forget_labels`` drops out.
    """
    keys = [
        k
        for k in RELEVANT.get(method, ())
        if not (method == "salun-cra" and k == "forget_labels" and values.get("cra_scope") == "all")
    ]
    return tuple((k, values[k]) for k in keys)
