"""The root of MiniGPT's own exceptions. Each one means bad input or a known
failure, and its message alone tells the user what to do; the CLI and the TUI
show it as one line instead of a traceback."""


class MiniGPTError(Exception):
    pass
