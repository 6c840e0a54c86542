"""What the built-in datasets' keys mean (a recipe's `dataset:` section). A dataset's own
docstring may say more (lines `` `key`: what it is ``); the documentation's reference of
recipe keys reads both, and a test fails where a key has no help."""

KEYS = {
    # where the examples are
    "path": "one file, split at line boundaries: the last test_fraction (or test_size lines) is test, the "
            "valid_fraction (valid_size) before it valid, the rest train",
    "train": "the training file (with valid and test files of their own, or fractions of it)",
    "valid": "the validation file",
    "test": "the test file",
    "format": "the file's form: tsv, csv or jsonl (auto: from its extension)",
    "source": "the column (name or number) that holds the source text",
    "target": "the column (name or number) that holds the target text",
    "input": "the column (name or number) that holds the input",
    "label": "the column (name or number) that holds the label",
    "input_type": "what an input is: text, or numbers ('a b; c d': steps of values)",
    "condition": "the input is a class to write from (a generate task's condition), not a sequence",
    "token_column": "the column of the token in each line of a CoNLL file",
    "tag_column": "the column of the tag in each line of a CoNLL file (-1: the last)",
    "columns": "the series' input columns (all numeric columns when not given)",
    "target_columns": "the columns to forecast (the input columns when not given)",
    # how text becomes tokens
    "level": "char, word (each line ends with <eos>), or a subword vocabulary learnt from the training split: "
             "bpe or unigram (pip install 'seqcli[subword]')",
    "tokenize": "how text becomes tokens: char, whitespace, word, or a learnt bpe or unigram vocabulary",
    "source_tokenize": "the source's tokenization, where it differs from tokenize",
    "target_tokenize": "the target's tokenization, where it differs from tokenize",
    "vocab_size": "the size of a learnt subword vocabulary (bpe, unigram)",
    "lowercase": "lowercase the text before it is read",
    "min_freq": "tokens seen fewer times in the training split become <unk>",
    "max_vocab": "keep only this many of the most frequent tokens (the rest become <unk>)",
    "cache": "keep the token arrays beside the data (keyed by its content and the options) so that the next "
             "run starts at once",
    # how much of it
    "valid_fraction": "the share of the examples held out for validation",
    "test_fraction": "the share of the examples held out for the test split",
    "valid_size": "lines held out for validation (in place of valid_fraction)",
    "test_size": "lines held out for the test split (in place of test_fraction)",
    "train_size": "examples generated for training",
    "seed": "the seed of the data's generation or shuffled split",
    # windows over a series
    "window": "steps each example reads",
    "horizon": "steps each example forecasts, after its window",
    "stride": "steps between the starts of consecutive windows",
    # generated problems
    "problem": "which problem is generated: copy, reverse, sort, addition, spell (numbers in words), copy_memory, "
               "adding or seasonal",
    "min_length": "the shortest sequence generated",
    "max_length": "the longest sequence generated",
    "symbols": "how many symbols the sequences are drawn from",
    "delay": "copy_memory: the blank steps between the symbols and the signal to recall them",
    "max_number": "addition and spell: the largest number",
    # scikit-learn's digits
    "read": "read each 8x8 image row by row (rows) or column by column (columns)",
    "caption": "pair each image with its digit's name to write (a generate task) instead of its label",
}
