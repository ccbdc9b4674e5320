"""What a run writes, behind one Writer protocol: set-based update, changeset merge, reversal."""
