"""MiniGPT: a small GPT written from scratch in PyTorch, to train and talk to in a terminal.

The modules here are the ones that teach; read them in this order:

    tokenizer  text to token ids and back, a token per character
    bpe        byte-level BPE: tokens learned from the text
    data       the training and validation splits, and random batches
    model      the GPT itself: embeddings, attention, MLP, blocks, KV cache
    optim      how the weights move: AdamW or Muon, and the learning-rate schedule
    trainer    the training loop
    evaluate   how a model is scored: fixed windows during a run, the whole validation split at its end
    sampling   generation, token by token
    inspect    looking inside: attention, the logit lens

minigpt.plumbing holds what runs, stores and presents them (configuration,
checkpoints, logs, time budgets, many processes).
"""

__version__ = "0.1.0"
