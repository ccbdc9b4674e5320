"""The ``setwise`` command: a thin client of the library."""
