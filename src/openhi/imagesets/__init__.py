"""Image sets: the versioned unit of storage (normalized metadata + frames), grouping rules and reads."""
