"""SARChat-Bench: build, train, evaluate and report the SARChat-2M benchmark (arXiv 2502.08168)."""

__version__ = "0.8.1"
