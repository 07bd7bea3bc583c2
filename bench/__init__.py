"""MiniGPT's benchmarks, run by hand from a clone of the repository (they are
not installed with the package, and the tests never time anything):

    python -m bench SUBCOMMAND [FLAGS]     # python -m bench --help lists them

They sit on top of everything else: the library (minigpt), the app (tui)
and minigpt-train (train_cli); none of those imports them.
"""
