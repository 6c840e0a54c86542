"""What differs between two recipes, and which differences leave what is learnt as it was."""

from __future__ import annotations

# Keys a resumed run may change without --force: they do not change what is being learnt.
SAFE_CHANGES = ("description", "sample.", "train.max_steps", "train.max_epochs", "train.patience", "train.log_every",
                "train.eval_every", "train.eval_batches", "train.checkpoint_every", "train.keep_checkpoints",
                "train.nonfinite", "train.device", "train.tensorboard", "train.threads", "train.mlflow",
                "train.mlflow.")


def differences(old, new, prefix: str = "") -> list[tuple[str, object, object]]:
    """(dotted key, old value, new value) for every leaf that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            out += differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [(prefix[:-1], old, new)]


def safe(key: str) -> bool:
    """Whether changing `key` leaves what is learnt as it was."""
    return any(key == s or (s.endswith(".") and key.startswith(s)) for s in SAFE_CHANGES)


def unsafe(old: dict, new: dict) -> list[tuple[str, object, object]]:
    """The differences that change what is learnt."""
    return [c for c in differences(old, new) if not safe(c[0])]
