"""The plumbing: what runs, stores and presents the teaching core, and teaches
nothing about GPTs itself. Read minigpt/ first; come here to see how a run is
configured and started, how files are kept safe, and how many processes agree.

    config, settings   hyperparameters and sampling settings: ranges, TOML, flags
    session, shape     opening a run; the model shape that fits a time budget
    clock, distributed a run's time budget; the processes of a torchrun run
    checkpoint         the checkpoint file
    runlog, runs       a run's metrics log, and the runs of a folder read back
    completions, history  the app's completions and prompt history
    corpus, paths      reading the training text; where a project keeps its files
    device, terminal   device and number format; text made safe for a terminal
    atomic, jsonlines  crash-safe writes; append-only JSON-lines files
    errors             the one exception type every expected failure derives from
"""
