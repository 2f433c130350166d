"""The VADER Amazon review snippets as running text (behavioral/models/review_text.py)."""
import numpy as np
import pytest

from topkima.behavioral.models.review_text import N_AMAZON_SNIPPETS, amazon_review_text, fetch_amazon_snippets


def test_sentences_of_a_review_are_joined_in_order_and_reviews_split_by_lines(tmp_path):
    path = tmp_path / "snippets.txt"
    path.write_bytes("1_1\t0.5\tfirst one.\r\n1_2\t-1\tsecond, café.\r\n2_1\t2.0\tnext review.".encode())
    assert amazon_review_text(path) == "first one. second, café.\nnext review."


def test_malformed_line_is_named(tmp_path):
    path = tmp_path / "snippets.txt"
    path.write_bytes(b"1_1\t0.5\tfine.\r\n1_2\tno rating or text\r\n")
    with pytest.raises(ValueError, match="line 2: expected"):
        amazon_review_text(path)


@pytest.mark.data
def test_the_shipped_file_holds_3708_sentences_of_300_reviews():
    path = fetch_amazon_snippets()
    lines = path.read_bytes().decode("utf-8").split("\r\n")
    assert len(lines) == N_AMAZON_SNIPPETS
    text = amazon_review_text(path)
    assert text.count("\n") + 1 == len({line.split("_", 1)[0] for line in lines}) == 300
    assert np.all([sentence.split("\t")[2].strip() in text for sentence in lines[:50]])


def test_sentences_follow_their_numbers_not_the_file_order(tmp_path):
    path = tmp_path / "snippets.txt"
    path.write_bytes(b"7_1\t0\tone.\r\n7_3\t0\tthree.\r\n7_2\t0\ttwo.")
    assert amazon_review_text(path) == "one. two. three."


def test_token_windows_of_the_text_are_consecutive(tmp_path):
    from topkima.behavioral.models.review_text import amazon_token_windows
    path = tmp_path / "snippets.txt"
    path.write_bytes(b"1_1\t0\tabcdefghij.\r\n2_1\t0\tklmnopqrst.")
    windows = amazon_token_windows(lambda text: [ord(c) for c in text], window_tokens=5, n_windows=2,
                                   first_window=1, path=path)
    np.testing.assert_array_equal(windows, [[ord(c) for c in "fghij"], [ord(c) for c in ".\nklm"]])
