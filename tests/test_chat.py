"""Chat as completion with a template (minigpt.chat): the speakers of a text and its
format, the exact text laid out for a conversation, whole turns dropped at the
context limit, and the model's turn ending at the next speaker."""

from __future__ import annotations

import pytest
import torch

from minigpt.chat import Speakers, Style, Template, TokenCounter, Turn, find_speakers, first_window, lay_out
from minigpt.model import ModelConfig
from minigpt.plumbing.settings import SamplingSettings
from minigpt.sampling import generate
from minigpt.tokenizer import CharTokenizer

# Tiny Shakespeare's format: the name alone on its line, a blank line between turns.
PLAY = """First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak.

ROMEO:
Is the day so young?

BENVOLIO:
But new struck nine.

ROMEO:
Ay me! sad hours seem long.
Was that my father that went hence so fast?

BENVOLIO:
It was. What sadness lengthens Romeo's hours?

ROMEO:
Not having that, which, having, makes them short.

JULIET:
Farewell.
Go to:
I will not.

ROMEO:
Farewell.

LADY CAPULET:
Farewell; and JULIET: mark me.

JULIET:
Ay.
"""

QA = """Q: What is two and two?
A: Four.
Q: Who wrote Hamlet?
A: Shakespeare, they say.
Q: Is the sky blue?
A: On a clear day.
Note: answers are short.
"""

PROSE = """Chapter I.

It was a bright cold day in April. Yes. The clocks were striking thirteen.
Mr. Smith said: nothing at all.
Usage:
    run it

Chapter II.

Example:
"""

TOKENIZER = CharTokenizer("".join(sorted(set(PLAY + QA + "|#0123456789"))))


def test_a_play_has_its_speakers_ranked_by_turns_and_its_style():
    speakers = find_speakers(PLAY)
    assert speakers.ranked[:3] == [("ROMEO", 4), ("BENVOLIO", 2), ("JULIET", 2)]
    assert all(name not in dict(speakers.ranked) for name in ("Farewell", "Go to", "All", "LADY CAPULET"))
    assert speakers.style == Style(":", own_line=True, separator="\n\n")


def test_tiny_shakespeare_crlf_is_read_as_the_same_play():
    assert find_speakers(PLAY.replace("\n", "\r\n")) == find_speakers(PLAY)


def test_a_question_and_answer_text_has_q_and_a_with_the_words_on_the_same_line():
    speakers = find_speakers(QA)
    assert speakers.ranked == [("Q", 3), ("A", 3)]
    assert speakers.style == Style(":", own_line=False, separator="\n")
    assert speakers.default_roles() == ("Q", "A")  # the one who speaks first asks
    assert speakers.template("Q", "A") == Template("Q: ", "A: ", "\n")


def test_a_play_written_name_dot_on_its_own_line():
    play = "ROMEO.\nIs the day so young?\n\nBENVOLIO.\nBut new struck nine.\n\n" * 3
    assert find_speakers(play).style == Style(".", own_line=True, separator="\n\n")


@pytest.mark.parametrize("text", [PROSE, "def f():\n    pass\n" * 50, "Q: one question alone\nA: no\n" + "x\n" * 500])
def test_prose_a_program_or_a_few_tags_in_a_long_text_have_no_speakers(text):
    speakers = find_speakers(text)
    assert speakers.style is None and speakers.ranked == []


def test_a_sentence_that_starts_with_a_capital_and_a_full_stop_is_not_a_turn():
    text = "Yes. I will go.\nNo. Not I.\n" * 20
    assert find_speakers(text).style is None


# --- the template ------------------------------------------------------------------------------


def romeo_and_juliet() -> Template:
    return find_speakers(PLAY).template("ROMEO", "JULIET")


def test_the_conversation_is_laid_out_exactly_in_the_text_s_own_format():
    template = romeo_and_juliet()
    turns = [Turn(template.user, "Is the day so young?"), Turn(template.model, "But new struck nine.\n"),
             Turn(template.user, "Ay me! sad hours seem long.")]
    prompt = lay_out(turns, template, context=1000, count=len)
    assert prompt.text == ("ROMEO:\nIs the day so young?\n\n"
                           "JULIET:\nBut new struck nine.\n\n"
                           "ROMEO:\nAy me! sad hours seem long.\n\n"
                           "JULIET:\n")
    assert prompt.first == 0 and not prompt.cut


def test_a_question_and_answer_template_from_the_settings_lays_out_on_single_lines():
    template = Template("Q: ", "A: ", "\n")
    prompt = lay_out([Turn("Q: ", "Who wrote Hamlet?")], template, context=100, count=len)
    assert prompt.text == "Q: Who wrote Hamlet?\nA: "


def test_whole_turns_are_dropped_oldest_first_to_leave_a_quarter_of_the_context_for_the_reply():
    template = romeo_and_juliet()
    turns = [Turn(template.user if i % 2 == 0 else template.model, f"turn {i}") for i in range(6)]
    full = lay_out(turns, template, context=1000, count=len)
    assert full.first == 0 and full.tokens == len(full.text)
    # 48 of 64 for the prompt: the model's tag (8), turn 5 with its separator (16), turn 4 (15); turn 3 (16) not
    prompt = lay_out(turns, template, context=64, count=len)
    assert prompt.first == 4 and prompt.tokens == 39 and not prompt.cut
    assert prompt.text == "ROMEO:\nturn 4\n\nJULIET:\nturn 5\n\nJULIET:\n"
    assert lay_out(turns, template, context=84, count=len).first == 3  # 63 of 84 fit turn 3 too
    assert full.text.endswith(prompt.text), "what is kept is laid out exactly as before"


def test_the_newest_turn_always_stays_and_a_turn_too_long_for_the_context_is_marked_cut():
    template = romeo_and_juliet()
    turns = [Turn(template.user, "short"), Turn(template.user, "x" * 100)]
    prompt = lay_out(turns, template, context=64, count=len)
    assert prompt.first == 1 and prompt.cut and prompt.text.startswith("ROMEO:\nxxx")


def test_laying_out_again_after_a_new_turn_encodes_only_that_turn():
    tokenizer = CharTokenizer(TOKENIZER.characters)
    template = romeo_and_juliet()
    counter = TokenCounter(tokenizer)
    encoded = []
    encode = tokenizer.encode
    tokenizer.encode = lambda text: encoded.append(text) or encode(text)
    turns = [Turn(template.user, f"Is the day so young? {i}") for i in range(50)]
    lay_out(turns, template, 10_000, counter)
    assert len(encoded) == 50 + 2  # every turn, the separator, the model's tag
    encoded.clear()
    turns.append(Turn(template.model, "But new struck nine."))
    assert lay_out(turns, template, 10_000, counter).first == 0
    assert encoded == ["JULIET:\nBut new struck nine."]


# --- where the model's turn ends ---------------------------------------------------------------


class Scripted(torch.nn.Module):
    """A stand-in for GPT that writes `script` token by token, whatever it reads."""

    def __init__(self, tokenizer: CharTokenizer, script: str) -> None:
        super().__init__()
        self.config = ModelConfig(vocab_size=tokenizer.vocab_size, block_size=256, d_model=8, n_heads=1, n_layers=1)
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # generate() asks a parameter for the device
        self.script = tokenizer.encode(script)
        self.written = 0

    def forward(self, idx: torch.Tensor, cache=None) -> tuple[torch.Tensor, None]:
        logits = torch.full((1, idx.size(1), self.config.vocab_size), -30.0)
        logits[0, -1, self.script[min(self.written, len(self.script) - 1)]] = 30.0
        self.written += 1
        return logits, None


def reply(script: str, template: Template, settings: SamplingSettings | None = None) -> str:
    tokenizer = TOKENIZER
    settings = template.reply_settings(settings or SamplingSettings(temperature=0, max_new_tokens=200))
    prompt = lay_out([Turn(template.user, "Is the day so young?")], template, 256, len).text
    return "".join(p.text for p in generate(Scripted(tokenizer, script).eval(), tokenizer, prompt, settings))


def test_the_model_s_turn_ends_at_the_next_speaker_s_tag():
    template = romeo_and_juliet()
    assert reply("But new struck nine.\nROMEO:\nAy me!", template) == "But new struck nine."
    assert reply("Farewell.\nBENVOLIO:\nIt was.", template) == "Farewell.", "at any speaker of the text"


def test_the_model_s_turn_ends_at_a_blank_line_and_at_the_settings_stop_strings():
    template = romeo_and_juliet()
    assert reply("Ay.\n\nAnd more.", template) == "Ay."
    settings = SamplingSettings(temperature=0, max_new_tokens=200, stop=("#",))
    assert reply("Ay me|\nyes#no", template, settings) == "Ay me|\nyes"
    assert reply("Ay me| and JULIET: no\n\n", template) == "Ay me| and JULIET: no", "a name inside a line is words"


def test_a_question_and_answer_turn_ends_at_the_next_question():
    template = find_speakers(QA).template("Q", "A")
    assert template.stop_strings() == ("\n\n", "\nQ:", "\nA:")
    assert reply("Four.\nQ: Five?", template) == "Four."


def test_no_speakers_means_no_template_from_the_text():
    from minigpt.chat import NoTemplateError

    with pytest.raises(NoTemplateError):
        Speakers([], None, []).template("ROMEO", "JULIET")


def test_the_first_window_holds_the_prompt_and_the_start_of_the_reply():
    prompt = "ROMEO:\nIs the day so young?\n\nJULIET:\n"  # 37 characters
    assert first_window(prompt, "But new struck nine.", TOKENIZER, 64) == "But new struck nine."
    assert first_window(prompt, "But new struck nine. Ay me!", TOKENIZER, 41) == "But "
    assert first_window(prompt * 3, "But", TOKENIZER, 40) == "B", "at least a token"
