"""models/segmentors."""
