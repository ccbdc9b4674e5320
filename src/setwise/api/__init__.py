"""The public functions: check their arguments, build one RunOptions, hand over to the engine."""
