"""Vocabularies, tokenisation, the default corpus, and the built-in datasets."""
