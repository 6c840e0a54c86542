"""Metrics the tasks report: accuracy, macro-F1, edit distance; and which way each is better."""

from __future__ import annotations

import math

from torch import Tensor

HIGHER, LOWER = "higher", "lower"  # a metric's direction: whether higher or lower values are better


def better(value: float, than: float | None, direction: str) -> bool:
    """Whether `value` is better than `than` (anything finite is better than None) for a metric
    whose direction is HIGHER or LOWER; a value that is not finite never is: how the tally
    (the best checkpoint, early stopping) and `seqcli plot` compare."""
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        return False
    if than is None:
        return True
    return value > than if direction == HIGHER else value < than


def best_of(values, direction: str):
    """The best of `values` (None when none is finite)."""
    best = None
    for value in values:
        if better(value, best, direction):
            best = value
    return best


def macro_f1(pred: Tensor, gold: Tensor, n_classes: int) -> float:
    """Mean F1 over the classes that occur in `gold` or `pred`."""
    scores = []
    for c in range(n_classes):
        tp = ((pred == c) & (gold == c)).sum().item()
        fp = ((pred == c) & (gold != c)).sum().item()
        fn = ((pred != c) & (gold == c)).sum().item()
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else 0.0


def edit_distance(a: list, b: list) -> int:
    """Levenshtein distance between two token lists."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def nearest(hyp: list, refs: list[list]) -> tuple[int, int]:
    """(edit distance, length) of the reference nearest to `hyp` (the shorter one on a tie)."""
    return min((edit_distance(hyp, r), len(r)) for r in refs)


def text_scores(hyps: list[str], refs: list[list[str]]) -> dict:
    """Scores of detokenised outputs, each against one or more references (a hypothesis is
    scored against the reference it is closest to): exact match, WER and CER (edit
    distances over words and characters, divided by the reference lengths), and BLEU and
    chrF as sacrebleu computes them, with their signatures, where sacrebleu is installed."""
    exact = words = word_errors = chars = char_errors = 0
    for hyp, options in zip(hyps, refs):
        exact += hyp in options
        errors, length = nearest(hyp.split(), [r.split() for r in options])
        word_errors, words = word_errors + errors, words + length
        errors, length = nearest(list(hyp), [list(r) for r in options])
        char_errors, chars = char_errors + errors, chars + length
    scores = {"exact_match": exact / max(len(hyps), 1), "wer": word_errors / max(words, 1),
              "cer": char_errors / max(chars, 1)}
    most = max((len(r) for r in refs), default=1)
    if most > 1:
        scores["references"] = f"up to {most} per source; an output matching any of them is right"
    try:
        from sacrebleu.metrics import BLEU, CHRF
    except ImportError:
        return scores
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(most)]
    for name, metric in (("bleu", BLEU()), ("chrf", CHRF())):
        scores[name] = metric.corpus_score(hyps, streams).score
        scores[f"{name}_signature"] = metric.get_signature().format()
    return scores
