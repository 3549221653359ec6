"""The questions: which run produced an image, where it is stored and runs, and the reverse."""
