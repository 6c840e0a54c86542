"""What a model writes for an input does not depend on what it is decoded with: for every
built-in task, 1,000 inputs decoded at batch sizes 1, 8 and 64, and in batches made as the
server makes them (requests of 1 to 6 inputs grouped at random), give the same texts,
labels and tags, greedy and in the beam. Numbers agree to one unit of the last printed
digit, or within 1e-6 of the values' scale (forecasts print 6 significant digits):
float32 matrix products round differently for different batch sizes (measured on the raw
scores: 1e-6 relative), which can move a printed value across a rounding edge. DRAW's
glimpses are the exception: a window a few tenths of a pixel wide, read with an intensity of
about 17, turns a difference of 1e-7 in where it falls into one of 1e-5 in what it reads,
and three glimpses compound it; on these 1,000 images the labels are the same and 5
probabilities move by up to 0.009 (the bound: 0.01)."""

import random
import re

import pytest

import seqcli
from cases import CASES, N, train_cases
from seqcli import inference

NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")
UNITS = {"digits-glimpses": 100}  # printed units a number may move by (1 elsewhere)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return train_cases(tmp_path_factory.mktemp("invariance-runs"))


def decimals(text: str) -> int:
    mantissa = text.split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def unit(text: str) -> float:
    """One unit in the last place `text` shows (6 significant digits: %.6g)."""
    value = float(text)
    exponent = int(text.split("e")[1]) if "e" in text else 0
    return 10.0 ** (exponent - decimals(text)) if value else 10.0 ** -decimals(text)


def same(recipe: str, ours: list[str], base: list[str]) -> None:
    assert len(ours) == len(base)
    for i, (a, b) in enumerate(zip(ours, base)):
        assert NUMBER.sub("#", a) == NUMBER.sub("#", b), (recipe, i, a, b)
        for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)):
            bound = max(UNITS.get(recipe, 1) * unit(y) * (1 + 1e-9), 1e-6 * max(1.0, abs(float(y))))
            assert abs(float(x) - float(y)) <= bound, (recipe, i, a, b)


def server_batches(n: int, seed: int) -> list[list[list[int]]]:
    """Requests of 1 to 6 inputs (input positions), grouped at random into batches of up to
    64 inputs, as the server's decoders take them."""
    rng = random.Random(seed)
    requests, i = [], 0
    while i < n:
        size = min(rng.randint(1, 6), n - i)
        requests.append(list(range(i, i + size)))
        i += size
    rng.shuffle(requests)
    groups, group = [], []
    for request in requests:
        if group and (sum(map(len, group)) + len(request) > 64 or rng.random() < 0.1):
            groups.append(group)
            group = []
        group.append(request)
    return groups + [group]


@pytest.mark.parametrize("recipe", [r for r in CASES if CASES[r][1] is not None])
def test_outputs_do_not_depend_on_the_batch(runs, recipe):
    _, make, options = CASES[recipe]
    inputs = make()
    assert len(inputs) == N
    loaded = seqcli.load(runs[recipe])
    for option in options:
        at = {size: [line for i in range(0, N, size) for line in loaded.predict(inputs[i : i + size], **option)]
              for size in (1, 8, 64)}
        same(recipe, at[1], at[64])
        same(recipe, at[8], at[64])
        values = inference.sample_options(loaded.task, loaded.recipe, {"inputs": ["x"], **option})
        served = [None] * N
        for group in server_batches(N, seed=len(option)):
            results = inference.sample_together(loaded.task, loaded.model, loaded.fields,
                                                [{**values, "inputs": [inputs[i] for i in r]} for r in group])
            for request, result in zip(group, results):
                for i, line in zip(request, result.lines):
                    served[i] = line
        same(recipe, served, at[64])


def test_a_language_model_s_greedy_text_does_not_depend_on_the_primes_beside_it(runs):
    from cases import rng

    loaded = seqcli.load(runs["char-lm"])
    vocab = loaded.fields["text"]
    primes = ["".join(rng.choice(vocab.tokens[1:], rng.integers(1, 6))) for _ in range(N)]
    values = inference.sample_options(loaded.task, loaded.recipe, {"prime": "x", "length": 12, "temperature": 0.0})
    alone = [inference.sample_together(loaded.task, loaded.model, loaded.fields, [{**values, "prime": p}])[0].lines
             for p in primes]
    for size in (8, 64):
        together = []
        for i in range(0, N, size):
            together += [r.lines for r in inference.sample_together(
                loaded.task, loaded.model, loaded.fields, [{**values, "prime": p} for p in primes[i : i + size]])]
        assert together == alone
