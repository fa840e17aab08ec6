"""The R lazy-load reader on the real janeaustenr files and on malformed ones; the character vocabulary."""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from spikeforge.data._rdata import RDataError
from spikeforge.data._rdata import read_rdx
from spikeforge.data._rdata import read_record
from spikeforge.data._rdata import unserialize
from spikeforge.data.text import AUSTEN_DIR
from spikeforge.data.text import AUSTEN_VALIDATION_CHARS
from spikeforge.data.text import CharVocab
from spikeforge.data.text import get_corpus
from spikeforge.data.text import read_austen_books

installed = pytest.mark.skipif(
    not Path(AUSTEN_DIR, "Rdata.rdx").is_file(),
    reason="needs the Debian package r-cran-janeaustenr (apt-get install r-cran-janeaustenr; .ci/run installs it)",
)


def _xdr_strings(values: list[str]) -> bytes:
    """An R XDR serialization (format 2) of a character vector, written by hand from R Internals."""
    out = b"X\n" + struct.pack(">iii", 2, 0x040201, 0x020300) + struct.pack(">ii", 16, len(values))
    for s in values:
        raw = s.encode()
        out += struct.pack(">ii", 9 | (1 << 15), len(raw)) + raw  # CHARSXP, UTF-8 flag
    return out


def test_unserialize_hand_written_vector_and_errors():
    assert unserialize(_xdr_strings(["Emma", "", "Woodhouse £"]), where="t") == ["Emma", "", "Woodhouse £"]
    with pytest.raises(RDataError, match="wrong magic"):
        unserialize(b"A\n" + _xdr_strings(["x"])[2:], where="t")
    with pytest.raises(RDataError, match="ends early"):
        unserialize(_xdr_strings(["abcdef"])[:-3], where="t")
    closure = b"X\n" + struct.pack(">iiii", 2, 0, 0, 3)  # CLOSXP: not text
    with pytest.raises(RDataError, match="type 3 is not supported"):
        unserialize(closure, where="t")


def test_record_truncated_and_bad_compression():
    payload = _xdr_strings(["a line"])
    rec = struct.pack(">I", len(payload)) + zlib.compress(payload)
    assert read_record(rec, 0, len(rec), 1, where="t") == ["a line"]
    with pytest.raises(RDataError, match="outside"):
        read_record(rec, 0, len(rec) + 1, 1, where="t")
    with pytest.raises(RDataError, match=r"truncated|corrupt"):
        read_record(rec[:-4], 0, len(rec) - 4, 1, where="t")
    with pytest.raises(RDataError, match="unknown record compression"):
        read_record(rec[:4] + b"Q" + rec[4:], 0, len(rec) + 1, 3, where="t")


def test_rdx_wrong_magic_and_truncated(tmp_path):
    bad = tmp_path / "bad.rdx"
    bad.write_bytes(b"PK\x03\x04 not gzip")
    with pytest.raises(RDataError, match="wrong magic"):
        read_rdx(bad)
    cut = tmp_path / "cut.rdx"
    cut.write_bytes(gzip.compress(_xdr_strings(["x"] * 50))[:30])
    with pytest.raises(RDataError, match=r"truncated|corrupt|ends early"):
        read_rdx(cut)
    with pytest.raises(FileNotFoundError, match="apt-get install r-cran-janeaustenr"):
        get_corpus("austen", data_dir=tmp_path)
    with pytest.raises(ValueError, match="valid choices: austen"):
        get_corpus("enwik8")


@installed
def test_real_package_files():
    books = read_austen_books()
    assert set(books) == {
        "sensesensibility",
        "prideprejudice",
        "mansfieldpark",
        "emma",
        "northangerabbey",
        "persuasion",
    }
    assert (
        books["prideprejudice"].split("\n")[9]
        == "It is a truth universally acknowledged, that a single man in possession"
    )
    assert sum(map(len, books.values())) > 3_900_000
    corpus = get_corpus("austen")
    assert corpus.test == books["persuasion"] and len(corpus.validation) == AUSTEN_VALIDATION_CHARS
    assert books["northangerabbey"].endswith(corpus.validation) and corpus.validation not in corpus.train
    assert set(corpus.test) <= set(corpus.vocab.chars) and len(corpus.vocab) == 81


def test_vocab_roundtrip_and_refusals():
    v = CharVocab.from_texts(["hello", "world"])
    assert v.chars == "dehlorw" and v.decode(v.encode("low")) == "low"
    assert CharVocab.from_dict(v.to_dict()) == v
    with pytest.raises(ValueError, match="not in the vocabulary"):
        v.encode("hex")
    with pytest.raises(ValueError, match="different vocabulary"):
        v.check_same(CharVocab("abc"), "checkpoint 'x'")
    with pytest.raises(ValueError, match="distinct"):
        CharVocab("aa")


@installed
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="needs R (Rscript) as the independent reader")
def test_real_package_files_match_r_itself(tmp_path):
    """R's own reader (janeaustenr loaded by Rscript, written out with writeLines) gives the same six texts."""
    script = (
        "library(janeaustenr); for (b in commandArgs(TRUE)[-1]) "
        "writeLines(get(b), file.path(commandArgs(TRUE)[1], paste0(b, '.txt')), useBytes = TRUE)"
    )
    books = read_austen_books()
    subprocess.run(["Rscript", "-e", script, str(tmp_path), *books], check=True, capture_output=True, timeout=120)
    for name, text in books.items():
        assert (tmp_path / f"{name}.txt").read_text(encoding="utf-8") == text + "\n", name
