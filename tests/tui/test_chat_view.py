"""Pilot tests of the chat view (key m): the lesson, the turns streaming in and kept
beside the checkpoint, the memory line, the text the model read in Inspect, the actions
on a turn, who is who, and the message for a text without speakers."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input
from tui_helpers import Messages, make_app, wait_for, wait_loaded, write_settings

from minigpt.plumbing.conversations import Conversation, append_turn, load_newest, model_turn, user_turn
from minigpt.plumbing.settings import SamplingSettings
from tui.screens.roles import RolesScreen
from tui.views.chat import LESSON, ChatView
from tui.widgets.chat_turn import TurnCard
from tui.widgets.view_bar import ViewBar

PLAY = ("ROMEO:\nIs the day so young?\n\nJULIET:\nBut new struck nine. Good morrow, Farewell! Hi. Again?\n\n"
        "NURSE:\nMadam! Ay me. Peter, the quick brown fox jumps over the lazy dog.\n\n") * 40
FILE = "checkpoints/model.chat.jsonl"


def a_play(workdir: Path, settings: str = "[sampling]\nmax_new_tokens = 6\nseed = 4\n") -> None:
    (workdir / "data" / "input.txt").write_text(PLAY)
    write_settings(workdir, settings)


def kept(workdir: Path) -> list:
    return load_newest(workdir / FILE)[0].turns


def cards(app) -> list[TurnCard]:
    return list(app.query(TurnCard))


async def open_chat(pilot) -> ChatView:
    await wait_loaded(pilot)
    await pilot.press("m")
    chat = pilot.app.chat
    await wait_for(pilot, lambda: chat._speakers is not None, "the speakers")
    return chat


async def leave_input(pilot) -> None:
    await pilot.press("escape")
    await wait_for(pilot, lambda: pilot.app.focused is pilot.app.chat.list, "the list's focus")


async def say(pilot, text: str) -> None:
    """Type a turn and send it, waiting for the model's turn to end."""
    chat = pilot.app.chat
    await wait_for(pilot, lambda: pilot.app.focused is chat.input, "the chat input's focus")
    turns = len(chat.turns)
    await pilot.press(*text, "enter")
    await wait_for(pilot, lambda: len(chat.turns) == turns + 2 and chat._reply is None, "the model's turn")
    await wait_for(pilot, lambda: kept(Path.cwd()) == chat.turns, "the turns to be kept")


async def test_m_opens_the_chat_with_its_lesson_and_m_again_goes_back(workdir):
    a_play(workdir)
    app = make_app()
    async with app.run_test() as pilot:
        chat = await open_chat(pilot)
        assert app.current_view == "chat-view"
        await wait_for(pilot, lambda: app.focused is chat.input, "the chat input's focus")
        assert str(chat.query_one("#chat-lesson").render()) == LESSON
        assert chat.roles == ("ROMEO", "JULIET"), "the two who speak most; the first to speak is the user"
        await leave_input(pilot)
        await pilot.press("slash")  # back to the input, in the chat
        await wait_for(pilot, lambda: app.focused is chat.input, "the chat input's focus")
        await leave_input(pilot)
        await pilot.press("m")
        await wait_for(pilot, lambda: app.current_view == "train-view", "the train view")
        app.post_message(ViewBar.Selected("chat-view"))  # as a click on its name in the view bar does
        await wait_for(pilot, lambda: app.focused is chat.input, "the chat input's focus")


async def test_a_turn_streams_in_laid_out_in_the_play_s_format_and_is_kept(workdir):
    a_play(workdir)
    app = make_app()
    async with app.run_test() as pilot:
        await open_chat(pilot)
        await say(pilot, "Good morrow")
        user, model = kept(workdir)
        assert (user.role, user.tag, user.text) == ("user", "ROMEO:\n", "Good morrow")
        assert model.role == "model" and model.prompt == "ROMEO:\nGood morrow\n\nJULIET:\n"
        assert model.settings.seed == 4 and "\nROMEO:" in model.settings.stop and "\n\n" in model.settings.stop
        shown = cards(app)
        assert [card.title.split(" ·")[0] for card in shown] == ["ROMEO", "JULIET"]
        assert shown[1].text == model.text and shown[1].turn == model


async def test_whole_turns_drop_at_the_context_limit_and_a_line_marks_where_memory_begins(workdir):
    a_play(workdir)  # the tiny preset reads 32 tokens: 24 for the prompt
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        chat = await open_chat(pilot)
        await say(pilot, "Hi.")  # "ROMEO:\nHi.\n\n" 12 and the model's tag 8: 20 of 24
        assert not any(card.has_class("-forgotten") for card in cards(app))
        await say(pilot, "Ay.")
        second = kept(workdir)[3]
        assert second.prompt == "ROMEO:\nAy.\n\nJULIET:\n", "the first exchange no longer fits"
        shown = cards(app)
        assert [card.has_class("-forgotten") for card in shown] == [True, True, False, False]
        memory = shown[2].query_one(".memory")
        assert memory.display and "memory begins here: the 2 turns above do not fit in 32 tokens" in str(
            memory.render())
        assert not shown[0].query_one(".memory").display
        assert chat.turns == kept(workdir)


async def test_i_opens_the_text_the_model_read_in_the_inspect_view(workdir):
    a_play(workdir)
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await open_chat(pilot)
        await say(pilot, "Good morrow")
        await leave_input(pilot)
        await pilot.press("i")
        await wait_for(pilot, lambda: app.current_view == "inspect-view", "the inspect view")
        [request] = set(messages.of(ChatView.InspectRequested))  # one message, heard on its way up
        model = kept(workdir)[1]
        # The text read (28 characters), and as much of the turn (6) as fits beside it in the tiny model's 32.
        assert model.prompt == "ROMEO:\nGood morrow\n\nJULIET:\n" and len(model.text) == 6
        assert (request.prompt, request.text, request.settings) == (model.prompt, model.text[:4], model.settings)
        await wait_for(pilot, lambda: app.inspector.inspected is not None, "the inspection")
        inspection = app.inspector.inspected.inspection
        assert inspection.tokens == app.session.trainer.tokenizer.encode(model.prompt + model.text[:4])
        assert inspection.prompt_length == 28 and len(inspection.steps) == 4


async def test_regenerate_continue_and_copy_act_on_the_newest_turn(workdir):
    a_play(workdir)
    app = make_app()
    async with app.run_test() as pilot:
        chat = await open_chat(pilot)
        await say(pilot, "Good morrow")
        first = kept(workdir)[1]
        await leave_input(pilot)
        await pilot.press("r")  # the same prompt, a new seed
        await wait_for(pilot, lambda: len(kept(workdir)) == 2
                       and kept(workdir)[1].id != first.id and chat._reply is None, "the regenerated turn")
        again = kept(workdir)[1]
        assert again.prompt == first.prompt and again.replaces == first.id and again.settings.seed != 4
        await wait_for(pilot, lambda: len(cards(app)) == 2 and cards(app)[1].turn == again, "the old card gone")
        await pilot.press("c")  # more words in the same turn
        await wait_for(pilot, lambda: kept(workdir)[1].id != again.id and chat._reply is None, "the continuation")
        grown = kept(workdir)[1]
        assert grown.text.startswith(again.text) and len(kept(workdir)) == 2
        assert cards(app)[1].text == grown.text
        await pilot.press("y")
        copied = workdir / "checkpoints/model.copied.txt"
        await wait_for(pilot, copied.exists, "the copy")
        assert copied.read_text() == "JULIET:\n" + grown.text
        await pilot.press("up", "up")  # select the user's turn: it cannot be regenerated
        await wait_for(pilot, lambda: chat.list.selected is cards(app)[0], "the selection")
        assert chat.check_action("regenerate_completion", ()) is False
        assert chat.check_action("inspect_completion", ()) is False


async def test_the_conversation_is_shown_again_after_a_relaunch(workdir):
    a_play(workdir)
    async with make_app().run_test() as pilot:
        await open_chat(pilot)
        await say(pilot, "Good morrow")
        await say(pilot, "Farewell")
    app = make_app()
    async with app.run_test() as pilot:
        chat = await open_chat(pilot)
        shown = [turn.text for turn in kept(workdir)]
        await wait_for(pilot, lambda: [card.text for card in cards(app)] == shown, "the turns read back")
        assert chat.roles == ("ROMEO", "JULIET")
        await say(pilot, "Again")  # it goes on with the same conversation
        assert len(kept(workdir)) == 6 and kept(workdir)[5].prompt.endswith("ROMEO:\nAgain\n\nJULIET:\n")


async def test_w_chooses_who_is_who_any_name_can_be_typed(workdir):
    a_play(workdir)
    app = make_app()
    async with app.run_test() as pilot:
        chat = await open_chat(pilot)
        await leave_input(pilot)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, RolesScreen) and app.screen.query("#roles-speakers"),
                       "the roles dialog")
        assert "ROMEO 40 · JULIET 40 · NURSE 40" in str(app.screen.query_one("#roles-speakers").render())
        user = app.screen.query_one("#roles-user", Input)
        user.value = ""
        await pilot.press(*"NURSE", "enter")
        model = app.screen.query_one("#roles-model", Input)
        model.value = ""
        await pilot.press(*"Peter", "enter")  # a name the text never gives
        await wait_for(pilot, lambda: chat.roles == ("NURSE", "Peter"), "the new roles")
        await say(pilot, "Madam!")
        assert kept(workdir)[1].prompt == "NURSE:\nMadam!\n\nPeter:\n"


async def test_a_text_without_speakers_and_no_template_gets_its_message(workdir):
    app = make_app()  # the workdir's text is words without speakers
    async with app.run_test() as pilot:
        chat = await open_chat(pilot)
        message = str(chat.query_one("#chat-message").render())
        assert "data/input.txt has no speakers" in message and "[chat] user_prefix" in message
        assert chat.query_one("#chat-message").display and not chat.input.display
        assert chat.check_action("pick_roles", ()) is False


async def test_a_question_and_answer_template_from_the_settings(workdir):
    write_settings(workdir, '[sampling]\nmax_new_tokens = 4\n[chat]\nuser_prefix = "the "\nmodel_prefix = "a "\n')
    app = make_app()
    async with app.run_test() as pilot:
        chat = await open_chat(pilot)
        assert chat.template is not None and chat.template.user == "the "
        await say(pilot, "cat sat")
        assert kept(workdir)[1].prompt == "the cat sat\na "


async def test_a_damaged_conversations_file_warns_once_and_the_chat_goes_on(workdir):
    a_play(workdir)
    talk = Conversation().id
    path = workdir / FILE
    append_turn(path, user_turn(talk, "ROMEO:\n", "Hi."))
    append_turn(path, model_turn(talk, "JULIET:\n", "Ho.", "ROMEO:\nHi.\n\nJULIET:\n", 1, SamplingSettings(seed=1),
                                 "checkpoints/model.pt"))
    with path.open("ab") as f:
        f.write(b"\xff\xfe not a turn\n{\"v\": 1, \"conversation\": \"cut")
    before = path.read_bytes()
    messages = Messages()
    app = make_app()
    async with app.run_test(message_hook=messages.append) as pilot:
        await open_chat(pilot)
        await wait_for(pilot, lambda: len(cards(app)) == 2, "the turns that could be read")
        warnings = [n for n in messages.notices("warning") if "not chat turns" in n]
        assert len(warnings) == 1 and "2 of the newest 4 lines" in warnings[0]
        assert path.read_bytes() == before
        await say(pilot, "Ay.")
        assert [t.text for t in kept(workdir)][:3] == ["Hi.", "Ho.", "Ay."]
