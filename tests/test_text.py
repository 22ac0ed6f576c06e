"""Text analysis (rag/text.py): search terms, content words, stemming, paragraphs, sentences."""

from __future__ import annotations

from rag.text import (
    INDEX_WORD, content_words, fts_query, is_stop_word, light_stem, paragraph_spans, search_terms, sentence_spans,
    sentences, support, word_forms, words,
)


def pieces(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[a:b] for a, b in spans]


def test_search_terms_drop_stop_and_one_letter_words_and_repeat_none():
    assert search_terms("What is the KV-cache, and why is a KV cache fast?") == ["kv", "cache", "fast"]
    assert search_terms("what is it?") == []
    assert search_terms("snake_case x2") == ["snake", "case", "x2"]  # "_" splits, as in SQLite's unicode61


def test_search_terms_keep_non_ascii_letters_whole():
    assert search_terms("Café naïve Größe") == ["café", "naïve", "größe"]
    assert search_terms("Ελληνικά ΣΑΣ") == ["ελληνικά", "σας"]
    assert search_terms("東京は日本の首都です") == ["東京は日本の首都です"]  # no spaces: one token, as FTS5 sees it
    assert INDEX_WORD.findall("Größe, 3.5") == ["Größe", "3", "5"]


def test_fts_query_quotes_and_ors_the_search_terms():
    assert fts_query('Why does "BM25" rank?') == '"bm25" OR "rank"'
    assert fts_query("Größe?") == '"größe"'
    assert fts_query("it is") == ""


def test_words_keep_inner_hyphens_apostrophes_and_decimals():
    assert words("GPT-3.5 doesn't use 0.5, ok.") == ["gpt-3.5", "doesn't", "use", "0.5", "ok"]
    assert words("GPT-3.5 costs 1.5x", decimals=False) == ["gpt-3", "5", "costs", "1", "5x"]


def test_words_split_at_non_ascii_letters():
    # Content words are ASCII: an accented letter ends the word on both sides of a comparison.
    assert words("Café Größe") == ["caf", "gr", "e"]
    assert words("Ελληνικά") == []


def test_stop_words_are_case_blind():
    assert is_stop_word("The") and is_stop_word("using")
    assert not is_stop_word("cache")


def test_light_stem_folds_plurals_and_verb_endings_of_long_enough_words():
    assert light_stem("scores") == light_stem("score") == light_stem("scored") == "scor"
    assert light_stem("announce") == light_stem("announced") == "announc"  # the silent "e" goes
    assert light_stem("size") == "size" and light_stem("degree") == "degree"  # short, or "ee"
    assert light_stem("appended") == light_stem("appending") == "append"
    assert light_stem("class") == "class"  # "ss" is no plural
    assert light_stem("bus") == "bus"  # too short to fold
    assert light_stem("used") == "used"  # "us" would be too short a stem


def test_content_words_and_word_forms():
    assert content_words("The model's scores were appended.") == {"model", "scor", "append"}
    assert content_words("What does it get?") == set()  # "does" is a stop word once its "s" goes
    assert word_forms("Tokenizers appended, tokenizer") == {"tokenizer": "tokenizers", "append": "appended"}
    assert content_words("Ça coûte") == {"co", "te"}  # non-ASCII letters split words (see words)


def test_support_is_the_share_of_the_sentences_content_words_in_the_source():
    source = "The cache stores keys and values for every token."
    # "key" and "value" are found, and "cached" meets "cache" (both "cach"); "evicted" is not there
    assert support("Keys and values are cached and evicted.", source) == 3 / 4
    assert support("The cache stores tokens.", source) == 1.0
    assert support("It is.", source) == 0.0  # no content words at all


def test_paragraphs_split_at_blank_lines_and_list_items():
    text = "a\n\n  b\n- c\n1. d\nplain\nline"
    assert pieces(text, paragraph_spans(text)) == ["a", "b", "- c", "1. d\nplain\nline"]
    assert paragraph_spans(text, 3, 6) == [(5, 6)]


def test_sentences_for_checking_know_abbreviations_lists_and_closing_marks():
    text = 'Mata v. Avianca was decided. He said "no." e.g. this one!\n- one\n- two\n\nNew para\nwrapped'
    assert sentences(text) == [
        "Mata v. Avianca was decided.", 'He said "no."', "e.g. this one!", "- one", "- two", "New para\nwrapped",
    ]


def test_sentences_for_chunking_end_only_before_a_capital_or_digit():
    text = 'He said "no." Then left. e.g. this one. Mr. Smith. 3 more.'
    assert pieces(text, sentence_spans(text, capital_next=True)) == [
        'He said "no.', "Then left. e.g. this one.", "Mr.", "Smith.", "3 more.",
    ]
    assert pieces(text, sentence_spans(text, 14, 39, capital_next=True)) == ["Then left. e.g. this one."]


def test_sentences_of_non_ascii_text():
    text = "Das ist gut. Über alles! Ça va? oui."
    assert sentences(text) == ["Das ist gut.", "Über alles!", "Ça va?", "oui."]
    # The chunker's capital is A-Z: it keeps "gut. Über" together rather than guess.
    assert pieces(text, sentence_spans(text, capital_next=True)) == [text]


def test_blank_text_has_no_sentences_or_paragraphs():
    assert sentences("  \n\n ") == []
    assert sentence_spans("", capital_next=True) == []
    assert paragraph_spans("\n\n") == []
