"""The embedded demo: synthetic motion clips that only motion tells apart, and the strip of frames a model sees."""
