"""Feature sets: which columns a detector sees and how each is encoded."""
