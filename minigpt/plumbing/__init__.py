"""The plumbing: what runs, stores and presents the teaching core, and teaches
nothing about GPTs itself. Read minigpt/ first; come here to see how a run is
configured and started, how files are kept safe, and how many processes agree.

    fields             settings declared once: their checks, TOML tables and flags
    config, settings   hyperparameters and sampling settings
    session, driver    opening a run; running it for a front end, with its log
    shape              the model shape that fits a time budget
    clock, distributed a run's time budget; the processes of a torchrun run
    checkpoint, training_state  the checkpoint file; a run's whole state in it
    runlog, runs       a run's metrics log, and the runs of a folder read back
    completions, history  the app's completions and prompt history
    corpus, paths      reading the training text; where a project keeps its files
    device, terminal   device and number format; text made safe for a terminal
    atomic, jsonlines  crash-safe writes; append-only JSON-lines files
    errors             the one exception type every expected failure derives from
"""
