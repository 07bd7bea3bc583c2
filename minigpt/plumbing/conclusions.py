"""The conclusion of an experiment, written from its measured results.

Each sentence's verdict (better, worse, or within the noise) and every
figure in it come from the results; the only fixed words are an
experiment's explanations (minigpt.plumbing.experiments), and each is said
only when the measurement agrees with it. Results are in bits per
character, the measure that compares tokenizers.

    conclude(experiment, {"full": 1.71, "no-mlp": 1.89, ...})
"""

from __future__ import annotations

from collections.abc import Mapping

from minigpt.plumbing.experiments import Experiment, Variant

# Two results closer than this (bits per character) are not told apart. Why this much: a result is
# the score of a variant's last weights on the whole validation split (minigpt.evaluate), which
# measures those weights all but exactly; what moves it is the run, most of all the steps the machine
# gives it in its time. The Lab's base model, one seed, ran as a variant of six built-in experiments
# on each of two texts, one minute each, in one sitting on a 2-core CPU: 1,207 to 1,609 steps, and
# results with a standard deviation of 0.042 bits/char (docs/lab.md, Reference results). The gap
# between two such runs then has a standard deviation of 0.059; twice that is the margin. (With
# --steps, a run is repeatable to the bit, and the margin is generous.)
NOISE_BPC = 0.12


def conclude(experiment: Experiment, bpc: Mapping[str, float], noise: float = NOISE_BPC) -> str:
    """One sentence or two (one per variant, for a reference experiment) from each variant's
    bits per character. Every variant of the experiment must have its result."""
    if missing := [v.name for v in experiment.variants if v.name not in bpc]:
        raise ValueError(f"no result for {', '.join(missing)}")
    if experiment.compare == "scale":
        return _along_a_scale(experiment, bpc, noise)
    return _against_the_reference(experiment, bpc, noise)


def _against_the_reference(experiment: Experiment, bpc: Mapping[str, float], noise: float) -> str:
    reference, *others = experiment.variants
    return " ".join(_compared(variant, bpc[variant.name] - bpc[reference.name], reference, noise)
                    for variant in others)


def _compared(variant: Variant, gap: float, reference: Variant, noise: float) -> str:
    """One sentence: how variant did against the reference, gap (bits/char) worse than it."""
    if abs(gap) <= noise:
        return _sentence(f"{variant.title} is within the noise of {reference.title} ({abs(gap):.2f} bits/char "
                         f"apart; the noise is ±{noise:.2f})")
    direction = "worse" if gap > 0 else "better"
    reason = variant.why if variant.expect == direction else variant.otherwise
    why = f": {reason}" if reason else ""
    return _sentence(f"{variant.title} is {abs(gap):.2f} bits/char {direction} than {reference.title}{why}")


def _along_a_scale(experiment: Experiment, bpc: Mapping[str, float], noise: float) -> str:
    variants = experiment.variants
    best = min(variants, key=lambda v: bpc[v.name])
    tied = [v for v in variants if bpc[v.name] - bpc[best.name] <= noise]  # best among them
    if len(tied) == len(variants):
        low, high = min(bpc.values()), max(bpc.values())
        return _sentence(f"All {len(variants)} are within the noise of each other ({low:.2f} to {high:.2f} "
                         "bits/char): at this time the difference between them is not measurable")
    with_it = [v.title for v in tied if v is not best]
    first = _sentence(f"{best.title} did best ({bpc[best.name]:.2f} bits/char"
                      + (f"; {_listed(with_it)} within the noise of it)" if with_it else ")"))
    return f"{first} {_trend(experiment, bpc, tied, best)}"


def _trend(experiment: Experiment, bpc: Mapping[str, float], tied: list[Variant], best: Variant) -> str:
    """Whether more of the knob helped: from where the best results lie along the scale."""
    smallest, largest = experiment.variants[0], experiment.variants[-1]

    def behind(variant: Variant) -> float:
        return bpc[variant.name] - bpc[best.name]

    if largest in tied and smallest not in tied:
        return _sentence(f"{smallest.title} is {behind(smallest):.2f} bits/char worse"
                         + _because(experiment.more_helps))
    if smallest in tied and largest not in tied:
        return _sentence(f"{largest.title} is {behind(largest):.2f} bits/char worse" + _because(experiment.more_hurts))
    if smallest in tied and largest in tied:
        return _sentence(f"{smallest.title} and {largest.title} are within the noise of each other: no clear trend")
    reasons = (f": up to a point {experiment.more_helps}; beyond it {experiment.more_hurts}"
               if experiment.more_helps and experiment.more_hurts else "")
    return _sentence(f"Both ends did worse, {smallest.title} by {behind(smallest):.2f} bits/char and "
                     f"{largest.title} by {behind(largest):.2f}{reasons}")


def _because(reason: str) -> str:
    return f": {reason}" if reason else ""


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."
