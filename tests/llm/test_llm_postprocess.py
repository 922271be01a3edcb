"""Post-checks on generated text: leftovers, loops, credentials."""

from __future__ import annotations

import pytest

from llm.postprocess import (
    clean_generation,
    cut_at_stop,
    cut_repetition,
    find_credential,
    strip_markup,
    trim_unfinished,
)

STEPS = "1. Open the Company Portal.\n2. Click **Reset password**.\n3. Sign in again."


@pytest.mark.parametrize("raw", [
    f"<|im_start|>assistant\n{STEPS}<|im_end|>",
    f"Assistant: {STEPS}</s>",
    f"<s> assistant:\n{STEPS}",
    f"[/INST] {STEPS} </s>",
    f"{STEPS}<|im_end|>\n<|im_start|>user\nthanks<|im_end|>",
    f"{STEPS}\nUser: and my vpn?\nAssistant: sure",
    f"{STEPS}\n[INST] what else? [/INST]",
    f"<|start_header_id|>assistant<|end_header_id|>\n{STEPS}<|eot_id|>",
])
def test_role_tags_and_the_next_turn_written_by_the_model_are_removed(raw):
    assert strip_markup(raw) == STEPS


def test_text_that_merely_mentions_users_and_systems_is_kept():
    text = "1. Ask the user to sign out.\n2. Operating system: check for updates.\nUsername: your email address."
    assert strip_markup(text) == text


def test_control_characters_and_undecodable_bytes_are_dropped():
    assert strip_markup("Restart\x14 the\ufffd laptop.") == "Restart the laptop."


def test_stop_sequences_cut_at_the_first_one():
    assert cut_at_stop("one\nUser: two ### three", ("###", "\nUser:")) == "one"
    assert cut_at_stop("no stop here", ("###",)) == "no stop here"


def test_a_sentence_repeated_three_times_in_a_row_is_kept_once():
    text = "Restart the router. Check the cable. Check the cable. Check the cable. Check the cable."
    assert cut_repetition(text) == "Restart the router. Check the cable."


def test_a_repeated_block_of_lines_is_kept_once():
    block = "1. Open Settings.\n2. Click Wi-Fi.\n"
    assert cut_repetition("Try this:\n" + block * 4) == "Try this:\n1. Open Settings.\n2. Click Wi-Fi."


def test_a_phrase_loop_without_punctuation_is_cut():
    assert cut_repetition("then click OK click OK click OK click OK click OK") == "then click OK"
    assert cut_repetition("it is very very very very very slow") == "it is very"


def test_a_long_sentence_coming_back_a_third_time_is_cut():
    text = ("Contact the IT Helpdesk. Restart. Contact the IT Helpdesk. Sign in. "
            "Contact the IT Helpdesk. Done.")
    assert cut_repetition(text) == "Contact the IT Helpdesk. Restart. Contact the IT Helpdesk. Sign in."


def test_numbered_steps_and_tables_are_not_loops():
    table = "| Step | Action |\n| --- | --- |\n| 1 | Open |"
    assert cut_repetition(STEPS) == STEPS
    assert cut_repetition(table) == table
    assert cut_repetition("Click Next, then Next again.") == "Click Next, then Next again."


def test_an_answer_cut_by_the_token_limit_loses_its_unfinished_sentence():
    assert trim_unfinished("1. Restart.\n2. Open the portal and") == "1. Restart."
    assert trim_unfinished("1. Restart.\n2.") == "1. Restart."
    assert trim_unfinished("no sentence end at all") == "no sentence end at all"


@pytest.mark.parametrize("leak", [
    "Use the key AKIAABCDEFGHIJKLMNOP to sign in.",
    "Your token: xoxb-1234567890-abcdefghij",
    "The admin password is Summer2024! so use that.",
    "Your MFA code is 482913.",
    "api_key = sk-proj-abcdefghijklmnopqrstuvwx",
])
def test_an_answer_with_a_credential_is_refused_whole(leak):
    assert find_credential(leak)
    assert clean_generation(f"1. Open the portal.\n2. {leak}") is None


@pytest.mark.parametrize("prose", [
    "If you see this, someone may know your password: deny them and reset it.",
    "Use a passphrase: three or four words.",
    "Your new password: at least 14 characters.",
    "The security token is displayed in the Authenticator app.",
    "Never share your password. [REDACTED] was removed from your message.",
])
def test_prose_about_passwords_is_not_mistaken_for_a_credential(prose):
    assert find_credential(prose) is None
    assert clean_generation(prose) == prose


def test_clean_generation_applies_every_check():
    raw = f"<|im_start|>assistant\n{STEPS}\n3. Sign in again.\n3. Sign in again.\n3. Sign in again.<|im_end|>"
    assert clean_generation(raw) == STEPS
    assert clean_generation("<|im_end|>") is None
    assert clean_generation("   ") is None
