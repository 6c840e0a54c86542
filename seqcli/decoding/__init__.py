"""Turning a model's scores into tokens: greedy, temperature, top-k, top-p."""
