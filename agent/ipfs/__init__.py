"""Content addressing and verified retrieval. Knows nothing of lists or alerts."""
