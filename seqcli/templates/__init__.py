"""Skeletons written by `seqcli plugins new`."""
