"""Datasets: KDD Cup 99 built in, users' own tables; declarations, inspection, splits, labels."""
