"""regfs.model.digest: strict digest parsing, as go-digest's Parse + Validate."""

from __future__ import annotations

import hashlib
import re
import sys

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from regfs.model.digest import (
    ALGORITHMS,
    DigestError,
    is_hex_for,
    make_digest,
    parse_digest,
    short,
    split_digest,
)

HEX = "0123456789abcdef"
SHA = "sha256:" + hashlib.sha256(b"hello").hexdigest()
CANONICAL = re.compile(r"(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})")


@st.composite
def digests(draw: st.DrawFn) -> str:
    alg = draw(st.sampled_from(sorted(ALGORITHMS)))
    n = ALGORITHMS[alg]
    return alg + ":" + draw(st.text(HEX, min_size=n, max_size=n))


# --- canonical digests ----------------------------------------------------------------------


@given(digests())
def test_canonical_digest_is_accepted_unchanged_and_interned(d: str) -> None:
    # A fresh copy, so identity proves interning rather than literal sharing.
    copy = "".join(list(d))
    out = parse_digest(copy)
    assert out == d
    assert out is sys.intern(d)


def test_real_digest_examples() -> None:
    assert parse_digest(SHA) == SHA
    h384 = "sha384:" + hashlib.sha384(b"x").hexdigest()
    h512 = "sha512:" + hashlib.sha512(b"x").hexdigest()
    assert parse_digest(h384) == h384
    assert parse_digest(h512) == h512


# --- rejections and their kinds ---------------------------------------------------------------


@given(digests(), st.sampled_from(["\n", "\r\n", " ", "\t", "\x00"]))
def test_trailing_whitespace_or_newline_is_garbage(d: str, tail: str) -> None:
    with pytest.raises(DigestError) as exc:
        parse_digest(d + tail)
    assert exc.value.kind == "garbage"


@given(digests())
def test_leading_whitespace_is_garbage(d: str) -> None:
    with pytest.raises(DigestError) as exc:
        parse_digest(" " + d)
    assert exc.value.kind == "garbage"


@given(digests(), st.data())
def test_uppercase_hex_is_garbage(d: str, data: st.DataObject) -> None:
    alg, hexpart = split_digest(d)
    letters = [i for i, c in enumerate(hexpart) if c in "abcdef"]
    assume(letters)
    i = data.draw(st.sampled_from(letters))
    bad = alg + ":" + hexpart[:i] + hexpart[i].upper() + hexpart[i + 1 :]
    with pytest.raises(DigestError) as exc:
        parse_digest(bad)
    assert exc.value.kind == "garbage"
    assert "lowercase hex" in str(exc.value)


@given(digests())
def test_uppercase_algorithm_is_garbage(d: str) -> None:
    alg, hexpart = split_digest(d)
    with pytest.raises(DigestError) as exc:
        parse_digest(alg.upper() + ":" + hexpart)
    assert exc.value.kind == "garbage"


@given(st.sampled_from(sorted(ALGORITHMS)), st.integers(min_value=1, max_value=200), st.data())
def test_wrong_length_is_garbage(alg: str, n: int, data: st.DataObject) -> None:
    assume(n != ALGORITHMS[alg])
    hexpart = data.draw(st.text(HEX, min_size=n, max_size=n))
    with pytest.raises(DigestError) as exc:
        parse_digest(f"{alg}:{hexpart}")
    assert exc.value.kind == "garbage"
    assert str(ALGORITHMS[alg]) in str(exc.value)


@given(
    st.from_regex(re.compile(r"[a-z0-9]{1,10}(?:[.+_-][a-z0-9]{1,5})?"), fullmatch=True),
    st.text(HEX, min_size=1, max_size=130),
)
@example("md5", "d41d8cd98f00b204e9800998ecf8427e")
@example("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709")
@example("blake3", "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")
def test_unknown_algorithm_has_its_own_kind(alg: str, hexpart: str) -> None:
    assume(alg not in ALGORITHMS)
    with pytest.raises(DigestError) as exc:
        parse_digest(f"{alg}:{hexpart}")
    assert exc.value.kind == "unknown_algorithm"
    assert repr(alg) in str(exc.value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":",
        "sha256",
        "sha256:",
        ":" + "a" * 64,
        "sha256" + "a" * 64,
        "sha256::" + "a" * 64,
        "sha256:" + "g" * 64,
        "sha256:" + "a" * 63 + "\u0661",  # an Arabic-Indic digit is not hex
        "Sha256:" + "a" * 64,
        "sha256 :" + "a" * 64,
        "sha256:" + "a" * 64 + ":",
        "-sha256:" + "a" * 64,
    ],
)
def test_garbage_examples(text: str) -> None:
    with pytest.raises(DigestError) as exc:
        parse_digest(text)
    assert exc.value.kind == "garbage"
    assert isinstance(exc.value, ValueError)


def test_error_message_shows_the_text_and_truncates_long_ones() -> None:
    with pytest.raises(DigestError) as exc:
        parse_digest("hello")
    assert "'hello'" in str(exc.value)
    with pytest.raises(DigestError) as exc:
        parse_digest("x" * 500)
    assert str(exc.value).endswith("...")
    assert len(str(exc.value)) < 200


@given(st.text(max_size=140))
@example(SHA + "\n")
@example(SHA.upper())
def test_anything_is_either_canonical_or_rejected(text: str) -> None:
    try:
        out = parse_digest(text)
    except DigestError as exc:
        assert exc.kind in ("garbage", "unknown_algorithm")
        assert CANONICAL.fullmatch(text) is None
    else:
        assert out == text
        assert CANONICAL.fullmatch(text) is not None


# --- helpers ----------------------------------------------------------------------------------


@given(digests())
def test_split_make_roundtrip(d: str) -> None:
    alg, hexpart = split_digest(d)
    assert alg in ALGORITHMS
    assert len(hexpart) == ALGORITHMS[alg]
    assert is_hex_for(alg, hexpart)
    assert make_digest(alg, hexpart) == d
    assert make_digest(alg, hexpart) is sys.intern(d)


def test_is_hex_for() -> None:
    assert is_hex_for("sha256", "a" * 64)
    assert not is_hex_for("sha256", "A" * 64)
    assert not is_hex_for("sha256", "a" * 65)
    assert not is_hex_for("sha256", "a" * 96)
    assert is_hex_for("sha384", "a" * 96)
    assert not is_hex_for("md5", "a" * 32)
    assert not is_hex_for("sha256", "a" * 64 + "\n")


def test_short() -> None:
    assert short(SHA) == "sha256:" + SHA[7:19]
    assert short(SHA, 4) == "sha256:" + SHA[7:11]
