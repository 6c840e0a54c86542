"""Decoding: beam search against greedy decoding and against exhaustive search; batching
and padding never change a model's outputs."""

import itertools
import math

import pytest
import torch

from seqcli import registry
from seqcli.api import CellSpec, Data
from seqcli.vocab import BOS, EOS, UNK, Labels, Vocab
from seqcli.decoding.search import beam_search, length_penalty, sample
from seqcli.tasks.classify import Classify
from seqcli.tasks.seq2seq import Seq2Seq
from seqcli.tasks.tag import Tag


def tiny_seq2seq(attention="general", seed=0, steps=0):
    """A tiny model, trained for `steps` steps to map a->x, b->y (so the best output is not trivial)."""
    torch.manual_seed(seed)
    source = Vocab([UNK, "a", "b", "c"], "char")
    target = Vocab([UNK, EOS, BOS, "x", "y"], "char")
    task = Seq2Seq()
    model = task.build_model(Data({}, {"source": source, "target": target}), CellSpec(registry.load("cell", "gru")),
                             embedding_size=4, hidden_size=6, attention=attention)
    words = ["".join(w) for n in (1, 2, 3) for w in itertools.product("ab", repeat=n)]
    examples = [{"source": torch.tensor(source.encode(w)),
                 "target": torch.tensor(target.encode(w.replace("a", "x").replace("b", "y")))} for w in words]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        loss, _, _ = task.loss(model, task.batch(model, examples))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return task, model.eval(), source, target


def start(task, model, texts, source):
    x = [torch.tensor(source.encode(t)) for t in texts]
    return model.start(task.collate_inputs(x, torch.device("cpu")))


def exhaustive(model, task, source, target, text, max_length, alpha):
    """Score every sequence of up to max_length tokens by running the decoder on it."""
    eos, bos = target.eos, target.bos
    real = [i for i in range(len(target)) if i != eos]  # beam search may also emit <unk> or <bos>
    best = None
    for n in range(max_length + 1):
        for seq in itertools.product(real, repeat=n):
            steps = [bos, *seq] + ([eos] if n < max_length else [])
            state = start(task, model, [text], source)
            logprob = 0.0
            with torch.no_grad():
                for prev, nxt in zip(steps, steps[1:]):
                    logits, state, _ = model.decoder.step(torch.tensor([prev]), state)
                    logprob += logits.log_softmax(-1)[0, nxt].item()
            length = n + 1 if n < max_length else n
            score = logprob / length_penalty(length, alpha)
            if best is None or score > best[0] + 1e-9:
                best = (score, list(seq))
    return best


@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("steps,text", [(15, "ab"), (15, "bab"), (200, "ab"), (200, "bba")])
def test_wide_beam_finds_the_exhaustive_optimum(alpha, steps, text):
    task, model, source, target = tiny_seq2seq(steps=steps)
    state = start(task, model, [text], source)
    with torch.no_grad():
        (hyp,), = beam_search(model.decoder, state, 1, target.bos, target.eos, 4, beam_size=256, n_best=1, alpha=alpha)
    score, seq = exhaustive(model, task, source, target, text, 4, alpha)
    assert hyp.tokens == seq
    assert hyp.score == pytest.approx(score, abs=1e-5)
    if steps == 200:  # a trained model: the optimum is the mapped text
        assert target.decode(seq) == text.replace("a", "x").replace("b", "y")


@pytest.mark.parametrize("attention", ["none", "dot", "general", "additive"])
def test_beam_of_one_is_greedy_decoding(attention):
    task, model, source, target = tiny_seq2seq(attention)
    texts = ["abc", "a", "cabba", "bb"]
    with torch.no_grad():
        greedy = sample(model.decoder, start(task, model, texts, source), 4, target.bos, target.eos, 8)
        beams = beam_search(model.decoder, start(task, model, texts, source), 4, target.bos, target.eos, 8, 1)
    assert [g.tokens for g in greedy] == [b[0].tokens for b in beams]
    for g, (b,) in zip(greedy, beams):
        assert g.logprob == pytest.approx(b.logprob, abs=1e-5)


def test_beam_results_do_not_depend_on_the_batch():
    task, model, source, target = tiny_seq2seq("additive")
    texts = ["abc", "a", "cabba", "bb"]
    with torch.no_grad():
        together = beam_search(model.decoder, start(task, model, texts, source), 4, target.bos, target.eos, 6, 3, 3)
        for text, expected in zip(texts, together):
            (alone,) = beam_search(model.decoder, start(task, model, [text], source), 1, target.bos, target.eos, 6, 3, 3)
            assert [h.tokens for h in alone] == [h.tokens for h in expected]
            assert [h.score for h in alone] == pytest.approx([h.score for h in expected], abs=1e-5)
    for hyps in together:
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_seq2seq_loss_does_not_depend_on_padding():
    task, model, source, target = tiny_seq2seq("dot")
    examples = [{"source": torch.tensor(source.encode(s)), "target": torch.tensor(target.encode(t))}
                for s, t in [("abc", "xy"), ("a", "yyyx"), ("cabba", "x")]]
    with torch.no_grad():
        together, n, _ = task.loss(model, task.batch(model, examples))
        alone = [task.loss(model, task.batch(model, [e])) for e in examples]
    total = sum(loss.item() * count for loss, count, _ in alone)
    assert together.item() * n == pytest.approx(total, rel=1e-5)


@pytest.mark.parametrize("pooling", ["last", "mean", "attention"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_classifier_outputs_do_not_depend_on_the_batch(pooling, cell):
    torch.manual_seed(0)
    vocab = Vocab([UNK, "a", "b", "c"], "char")
    task = Classify()
    model = task.build_model(Data({}, {"input": vocab, "label": Labels(["p", "q", "r"])}),
                             CellSpec(registry.load("cell", cell)), embedding_size=5, hidden_size=7,
                             num_layers=2, pooling=pooling).eval()
    examples = [{"input": torch.tensor(vocab.encode(s)), "label": torch.tensor(0)} for s in ["abcab", "c", "bbc"]]
    with torch.no_grad():
        batch = task.batch(model, examples)
        together = model(batch["x"], batch["lengths"])
        for i, e in enumerate(examples):
            one = task.batch(model, [e])
            torch.testing.assert_close(model(one["x"], one["lengths"])[0], together[i], atol=1e-5, rtol=1e-5)


def test_tagger_outputs_do_not_depend_on_the_batch():
    torch.manual_seed(0)
    vocab = Vocab([UNK, "a", "b"], "char")
    task = Tag()
    model = task.build_model(Data({}, {"input": vocab, "tags": Labels(["x", "y"])}),
                             CellSpec(registry.load("cell", "lstm")), embedding_size=4, hidden_size=5).eval()
    examples = [{"input": torch.tensor(vocab.encode(s)), "tags": torch.zeros(len(s), dtype=torch.long)}
                for s in ["abab", "b", "aab"]]
    with torch.no_grad():
        batch = task.batch(model, examples)
        together = model(batch["x"], batch["lengths"])
        for i, e in enumerate(examples):
            one = task.batch(model, [e])
            n = len(e["input"])
            torch.testing.assert_close(model(one["x"], one["lengths"])[:n, 0], together[:n, i], atol=1e-5, rtol=1e-5)


def test_length_penalty():
    assert length_penalty(7, 0.0) == 1.0
    assert length_penalty(1, 1.0) == 1.0
    assert math.isclose(length_penalty(7, 0.6), 2 ** 0.6)


class Reading:
    """A decoder over 2 source positions whose attention follows the token it reads: <bos>
    and 'b' look at position 0, 'a' at position 1. From <bos>, 'a' and 'b' are equally
    likely; after either, <eos> is."""

    attending = True

    def step(self, tokens, state):
        logits = torch.full((len(tokens), 4), -20.0)
        first = tokens == 0
        logits[first, 2] = logits[first, 3] = math.log(0.45)
        logits[first, 1] = math.log(0.1)
        logits[~first, 1] = 0.0
        weights = torch.zeros(len(tokens), 2)
        weights[tokens == 2, 1] = 1.0
        weights[tokens != 2, 0] = 1.0
        return logits, state, weights


class Held:
    def __init__(self, rows):
        self.rnn = (torch.zeros(1, rows, 1),)
        self.mask = torch.ones(2, rows, dtype=torch.bool)

    def select(self, index):
        return Held(len(index))


def test_the_coverage_penalty_ranks_a_hypothesis_that_read_the_whole_source_first():
    plain = beam_search(Reading(), Held(1), 1, 0, 1, 4, beam_size=2, n_best=2)[0]
    assert plain[0].score == pytest.approx(plain[1].score)  # 'a' and 'b' alike by probability
    ranked = beam_search(Reading(), Held(1), 1, 0, 1, 4, beam_size=2, n_best=2, beta=0.2)[0]
    assert [h.tokens for h in ranked] == [[2], [3]]  # 'a' read both positions; 'b' only the first, twice
    assert ranked[0].score == pytest.approx(plain[0].score, abs=1e-6)  # full coverage costs nothing
    assert ranked[1].score == pytest.approx(plain[1].score + 0.2 * math.log(1e-10), abs=1e-4)


class Padded(Held):
    def __init__(self, mask):
        self.rnn, self.mask = (torch.zeros(1, mask.shape[1], 1),), mask

    def select(self, index):
        return Padded(self.mask[:, index])


def test_the_coverage_penalty_of_a_source_beside_a_longer_one_counts_its_own_positions():
    """In a batch, a shorter source is padded: the padding gets no attention and must not count
    as source left unread, so each input ranks and scores as it does alone."""
    class Wide(Reading):  # the same decoder over a third source position it never attends to
        def step(self, tokens, state):
            logits, state, weights = super().step(tokens, state)
            return logits, state, torch.cat([weights, torch.zeros(len(tokens), 1)], 1)

    alone = beam_search(Reading(), Held(1), 1, 0, 1, 4, beam_size=2, n_best=2, beta=0.2)[0]
    mask = torch.tensor([[True, True], [True, True], [False, True]])  # (S, rows): row 0 has 2 positions, row 1 has 3
    both = beam_search(Wide(), Padded(mask), 2, 0, 1, 4, beam_size=2, n_best=2, beta=0.2)
    assert [h.tokens for h in both[0]] == [h.tokens for h in alone]
    assert [h.score for h in both[0]] == pytest.approx([h.score for h in alone])
    assert both[1][0].score == pytest.approx(alone[0].score + 0.2 * math.log(1e-10), abs=1e-4)  # its own unread one


def test_the_coverage_penalty_needs_attention():
    class Blind(Reading):
        def step(self, tokens, state):
            return super().step(tokens, state)[0], state, None

    from seqcli.errors import ConfigError

    with pytest.raises(ConfigError, match="needs a model that attends"):
        beam_search(Blind(), Held(1), 1, 0, 1, 4, beam_size=2, beta=0.2)
