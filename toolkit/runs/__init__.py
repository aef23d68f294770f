"""Run directories: their layout, training and resuming, loading, export, compression and inference."""
