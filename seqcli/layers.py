"""The task toolkit: what the built-in tasks are made of, stable for plugin tasks alike.

    from seqcli.layers import Encoder, ExampleTask, Recurrent, batches, pad

Together with `seqcli.api` this is the whole stable surface a task plugin imports; the
built-in tasks import nothing else of seqcli. All tensors are time-major: (T, B, ...).

Model parts
    `Recurrent(cell_spec, input_size, hidden_size, num_layers, dropout, bidirectional)` runs
    any cell (a recipe's `CellSpec`), stacked and optionally bidirectional, masking padded
    steps (`lengths`) and taking the fused kernel where the cell names one; `.step(x_t,
    state)` runs one time step of a unidirectional stack (for sampling); `locked_dropout=`
    and `weight_drop=` are AWD-LSTM's regularisers. `Encoder(field, cell_spec, ...)` adds the
    input layer for a `Vocab` (embedding) or `Numeric` field (`Scale`d by the training
    statistics). `Decoder`, `Bridge` and `DecoderState` are the attentional decoder of the
    seq2seq tasks (`Attention` kinds: `AttentionKind`); `locked_dropout` and
    `embedding_dropout` the functional regularisers; `draw` the DRAW read and write windows.
    `VocabEmbedding(vocab, size)` embeds a `Vocab`'s tokens: the layers `model.embeddings`
    fills from a file of word vectors.

Data
    `batches(examples, batch_size, seed, epoch)` shuffled lists of examples; `pad` and `mask`
    turn variable-length sequences into padded batches (`IGNORE` marks padded targets);
    `ExampleTask` is a Task over separate examples that needs only `collate`, `loss` and
    `metrics`; `require(fields, task, input=Vocab)` fails clearly on a dataset without the
    fields a task reads; `encode_input(text, field, where)` and `user_batch(inputs, field,
    device, what)` encode a user's inputs the way the training data was (`stack_inputs` pads
    encoded ones). Vocabularies are built with `seqcli.api.Vocab.build`.

Decoding and metrics
    `next_token(logits, temperature, top_k, top_p)`; `beam_search` and `sample` over a
    `Decoder`; for `Task.ensemble`, `mean_probabilities(logits_list)` and the wrappers
    `MeanProbabilities` (classifiers, taggers), `MeanOutputs` (numbers) and `Writers`
    (sequence writers: their decoders stepped together); `macro_f1`, `text_scores` (exact
    match, WER, CER; BLEU and chrF with sacrebleu), `nearest` and `edit_distance`.

Pictures (matplotlib, the `plot` extra)
    `pyplot()` imports it (or says which extra to install); `save(fig, path)` writes a PNG
    whole or not at all, for a `Figure`'s drawing function.

Export (`Task.export`)
    `traceable(model)` is a copy of a model whose recurrent stacks exporters can trace over
    any input length; `sequence_inputs(field)` example inputs (x, lengths) of a graph that
    reads sequences; `states_of(rnn)` zero initial states; `EXAMPLE_BATCH` the batch size of
    example inputs.
"""

from seqcli.data.batching import (IGNORE, ExampleTask, batches, encode_input, mask, pad, require, stack_inputs,
                                  user_batch)
from seqcli.decoding.sampling import next_token
from seqcli.decoding.search import beam_search, sample
from seqcli.metrics import edit_distance, macro_f1, nearest, text_scores
from seqcli.nn import draw
from seqcli.nn.attention import Kind as AttentionKind
from seqcli.nn.decoder import Bridge, Decoder, DecoderState
from seqcli.nn.encoder import Encoder, Scale
from seqcli.nn.ensemble import MeanOutputs, MeanProbabilities, Writers, mean_probabilities
from seqcli.nn.export import BATCH as EXAMPLE_BATCH
from seqcli.nn.export import sequence_inputs, states_of, traceable
from seqcli.nn.pretrained import VocabEmbedding
from seqcli.nn.recurrent import Recurrent
from seqcli.nn.regularise import embedding_dropout, locked_dropout
from seqcli.plots import pyplot, save

__all__ = ["EXAMPLE_BATCH", "IGNORE", "AttentionKind", "Bridge", "Decoder", "DecoderState", "Encoder", "ExampleTask",
           "MeanOutputs", "MeanProbabilities", "Recurrent", "Scale", "VocabEmbedding", "Writers",
           "batches", "beam_search", "draw",
           "edit_distance", "embedding_dropout", "encode_input", "locked_dropout", "macro_f1", "mask",
           "mean_probabilities", "nearest", "next_token", "pad", "pyplot", "require", "sample", "save",
           "sequence_inputs", "stack_inputs", "states_of", "text_scores", "traceable", "user_batch"]
