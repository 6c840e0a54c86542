"""Task `language_model`: it learns, carries state, and samples reproducibly."""

import math

import pytest
import torch

from seqcli import registry
from seqcli.api import CellSpec
from seqcli.data.datasets.text import TextDataset
from seqcli.tasks.language_model import LanguageModel
from seqcli.config import TrainConfig
from seqcli.train.device import seed_everything
from seqcli.train.stepper import evaluate


def build(corpus, cell="lstm", **model):
    seed_everything(0)
    data = TextDataset(path=str(corpus)).load()
    task = LanguageModel()
    options = {"embedding_size": 16, "hidden_size": 48, "num_layers": 1, **model}
    return task, data, task.build_model(data, CellSpec(registry.load("cell", cell)), **options)


def train(task, data, model, steps, lr=0.01):
    config = TrainConfig(batch_size=16, seq_len=32, max_steps=steps)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    step = 0
    while step < steps:
        carry = None
        for batch in task.batches(data, config, 0):
            result = task.train_step(model, batch, carry)
            opt.zero_grad()
            result.loss.backward()
            opt.step()
            carry = result.carry
            step += 1
            if step == steps:
                break
    return evaluate(task, model, data, "valid", config)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_learns_a_simple_corpus(corpus, cell):
    task, data, model = build(corpus, cell)
    before = evaluate(task, model, data, "valid", TrainConfig(batch_size=16, seq_len=32))
    assert before["loss"] > 2.9  # about log(vocabulary size 26): nothing learnt yet
    after = train(task, data, model, 150)
    assert after["loss"] < 1.3, after  # the sentences are 60% predictable characters
    assert after["bpc"] == pytest.approx(after["loss"] / math.log(2))
    assert after["perplexity"] == pytest.approx(math.exp(after["loss"]))


def test_batches_continue_each_column(corpus):
    task, data, _ = build(corpus)
    config = TrainConfig(batch_size=4, seq_len=10)
    batches = list(task.batches(data, config, 0))
    (x0, y0), (x1, _) = batches[0], batches[1]
    assert x0.shape == (10, 4)
    assert torch.equal(x0[1:], y0[:-1])  # targets are the inputs shifted by one
    assert torch.equal(y0[-1], x1[0])  # the next batch continues where this one ended
    stream = data.splits["train"]
    column = stream.numel() // 4
    assert torch.equal(x0[:, 1], stream[column : column + 10])


def test_hidden_state_is_carried_and_detached(corpus):
    task, data, model = build(corpus)
    batches = task.batches(data, TrainConfig(batch_size=4, seq_len=10), 0)
    first = task.train_step(model, next(batches), None)
    assert all(not s.requires_grad for s in first.carry)
    second = task.train_step(model, next(batches), first.carry)
    fresh = task.train_step(model, next(task.batches(data, TrainConfig(batch_size=4, seq_len=10), 0)), None)
    assert not torch.equal(second.loss, fresh.loss)


def test_tied_weights_share_the_embedding(corpus):
    _, _, model = build(corpus, embedding_size=16, hidden_size=32, tie_weights=True)
    assert model.out.weight is model.embed.weight
    assert model.proj is not None  # hidden 32 -> embedding 16 before the tied output


def test_sampling_is_seeded_and_uses_the_prime(corpus):
    task, data, model = build(corpus)
    train(task, data, model, 60)
    model.eval()
    fields = data.fields
    a = task.sample(model, fields, prime="the ", length=40, seed=3, num_samples=2).lines
    b = task.sample(model, fields, prime="the ", length=40, seed=3, num_samples=2).lines
    c = task.sample(model, fields, prime="the ", length=40, seed=4, num_samples=2).lines
    assert a == b and a != c
    assert all(s.startswith("the ") and len(s) == 44 for s in a)
    greedy = task.sample(model, fields, prime="the ", length=40, temperature=0.0, num_samples=2, seed=1).lines
    assert greedy[0] == greedy[1]
    assert task.sample(model, fields, prime="the ", length=40, top_k=1, seed=9).lines == greedy[:1]
    assert task.sample(model, fields, prime="the ", length=40, top_p=1e-6, seed=9).lines == greedy[:1]


def test_sampling_carries_state_instead_of_rereading(corpus):
    """Step-by-step logits equal those of one pass over the whole sequence."""
    task, data, model = build(corpus, num_layers=2)
    model.eval()
    x = data.splits["valid"][:30].long().unsqueeze(1)
    with torch.no_grad():
        full, _ = model(x)
        logits, state = model(x[:1])
        steps = [logits[0]]
        for t in range(1, 30):
            logits, state = model.step(x[t], state)
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps), full, atol=1e-5, rtol=1e-5)


def test_prime_with_unseen_characters_is_refused(corpus):
    from seqcli.errors import DataError

    task, data, model = build(corpus)
    with pytest.raises(DataError, match=r"the prime has characters the model never saw in training: 'é', 'Z'"):
        task.sample(model, data.fields, prime="thé Zoo", length=5)
