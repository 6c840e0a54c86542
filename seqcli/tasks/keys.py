"""What the keys several built-in tasks share mean: their `model:` keys and sample options. A
task's own docstrings say what its other keys mean (lines `` `key`: what it is ``); the
documentation's reference of recipe keys reads both, and a test fails where a key has no help."""

SHARED = {
    # model: keys
    "embedding_size": "the size of each token's (or class's) embedding",
    "hidden_size": "the recurrent state's size (of each direction)",
    "num_layers": "recurrent layers stacked",
    "dropout": "dropout between the layers and on their outputs",
    "bidirectional": "also read each sequence backwards, the two directions' states joined",
    # sample options
    "inputs": "the inputs to decode, one text each (a recipe's are decoded at the end of training)",
    "beam_size": "hypotheses kept at each step of a beam search (1: greedy or sampled)",
    "n_best": "how many of the best outputs to give for each input, with their scores",
    "max_length": "the longest output, in tokens",
    "length_penalty": "GNMT's alpha: a beam's scores divided by ((5 + length) / 6) ** alpha (0: none)",
    "temperature": "0 chooses the likeliest token at each step; above 0, tokens are drawn, flatter as it grows",
    "top_k": "draw only from the k likeliest tokens",
    "top_p": "draw only from the likeliest tokens that hold this share of the probability (nucleus sampling)",
    "seed": "the seed of the draws: the same seed draws the same output",
    "prime": "the text the sample continues (empty: from a new line)",
    "length": "tokens to draw after the prime",
    "num_samples": "samples drawn from the prime, separated by a blank line",
}
