"""setwise's own tables, its run records, and the journal of every changed row."""
