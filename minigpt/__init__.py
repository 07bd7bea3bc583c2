"""MiniGPT: a small GPT written from scratch in PyTorch, to train and talk to in a terminal."""

__version__ = "0.1.0"
