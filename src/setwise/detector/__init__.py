"""Find the loops that change rows one at a time: ``setwise.watch`` and the pytest plugin."""
