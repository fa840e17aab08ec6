"""Text corpora for language models: a character vocabulary and the registered corpora (``austen``).

``austen``: Jane Austen's six completed novels from the Debian package ``r-cran-janeaustenr`` (Julia Silge's
CRAN package janeaustenr 1.0.0, MIT licence; the texts are Project Gutenberg's), read from its R lazy-load
database (``/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb`` + ``.rdx``) by :mod:`spikeforge.data._rdata`,
without R. Each novel is its lines joined with ``"\\n"`` (about 4.0 M characters, 81 distinct).

* test: *Persuasion* (the held-out book, 466,853 characters);
* validation: the last :data:`AUSTEN_VALIDATION_CHARS` characters of *Northanger Abbey*;
* train: the rest of the other five novels in the order *Sense and Sensibility*, *Pride and Prejudice*,
  *Mansfield Park*, *Emma*, *Northanger Abbey*, joined with ``"\\n\\n"``.

The vocabulary is fixed: the sorted characters of all six novels (so the test book has no unknown character).
A checkpoint stores it; :meth:`CharVocab.check_same` refuses a checkpoint whose vocabulary differs from the data.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from spikeforge.data._rdata import RDataError
from spikeforge.data._rdata import read_rdx
from spikeforge.data._rdata import read_record

__all__ = [
    "CharVocab", "TextCorpus", "get_corpus", "list_corpora", "load_austen", "read_austen_books", "AUSTEN_DIR",
    "AUSTEN_BOOKS", "AUSTEN_TEST_BOOK", "AUSTEN_VALIDATION_CHARS", "MAX_VOCAB_CHARS",
]  # fmt: skip

#: Where Debian installs the janeaustenr data (``apt-get install r-cran-janeaustenr``).
AUSTEN_DIR = "/usr/lib/R/site-library/janeaustenr/data"
#: The six novels (R object names), in publication order of the training split; the test book last.
AUSTEN_BOOKS: tuple[str, ...] = (
    "sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion",
)  # fmt: skip
AUSTEN_TEST_BOOK = "persuasion"
#: Characters at the end of *Northanger Abbey* held out for validation.
AUSTEN_VALIDATION_CHARS = 50_000
#: Largest character vocabulary (a checkpoint with more is refused).
MAX_VOCAB_CHARS = 4096


@dataclass(frozen=True)
class CharVocab:
    """A fixed character vocabulary: ``chars[i]`` is token ``i`` (distinct characters, in sorted order)."""

    chars: str

    def __post_init__(self) -> None:
        if not isinstance(self.chars, str) or not self.chars:
            raise ValueError("CharVocab.chars must be a non-empty string of distinct characters")
        if len(set(self.chars)) != len(self.chars) or len(self.chars) > MAX_VOCAB_CHARS:
            raise ValueError(f"CharVocab.chars must hold at most {MAX_VOCAB_CHARS} distinct characters")

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> CharVocab:
        return cls("".join(sorted(set().union(*map(set, texts)))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> Tensor:
        """``text`` -> int64 ids ``[len(text)]``; a character outside the vocabulary is refused."""
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise ValueError(
                f"characters {''.join(unknown)!r} are not in the vocabulary of {len(self)} characters; use only "
                f"these: {self.chars!r}"
            )
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, ids: Sequence[int] | Tensor) -> str:
        values = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        return "".join(self.chars[int(i)] for i in values)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "char", "chars": self.chars}

    @classmethod
    def from_dict(cls, data: Any) -> CharVocab:
        if not isinstance(data, dict) or data.get("kind") != "char" or not isinstance(data.get("chars"), str):
            raise ValueError("not a character vocabulary (expected {'kind': 'char', 'chars': '...'})")
        return cls(data["chars"])

    def check_same(self, other: CharVocab, what: str) -> None:
        """``ValueError`` unless ``other`` is this vocabulary (``what`` names the checkpoint)."""
        if other.chars != self.chars:
            extra, missing = sorted(set(other.chars) - set(self.chars)), sorted(set(self.chars) - set(other.chars))
            raise ValueError(
                f"{what} was trained with a different vocabulary ({len(other)} characters, vs {len(self)} of the "
                f"data; only in the checkpoint: {''.join(extra)!r}, only in the data: {''.join(missing)!r}); use a "
                "checkpoint trained on this corpus, or the corpus it was trained on"
            )


@dataclass(frozen=True)
class TextCorpus:
    """A corpus split into train/validation/test text, with its fixed vocabulary and a note on its source."""

    name: str
    train: str
    validation: str
    test: str
    vocab: CharVocab
    source: str

    def split(self, name: str) -> str:
        if name not in ("train", "validation", "test"):
            raise ValueError(f"unknown split {name!r}; valid choices: train, validation, test")
        return str(getattr(self, name))


def _austen_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    folder = Path(AUSTEN_DIR if data_dir is None else data_dir)
    if not (folder / "Rdata.rdx").is_file() or not (folder / "Rdata.rdb").is_file():
        raise FileNotFoundError(
            f"the Jane Austen corpus is not installed ({str(folder / 'Rdata.rdx')!r} not found); install it with "
            "'apt-get install r-cran-janeaustenr', or give --data-dir FOLDER holding its Rdata.rdb and Rdata.rdx"
        )
    return folder


def read_austen_books(data_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """The six novels as ``{R name: text}`` (lines joined with ``"\\n"``), read from the package's database."""
    from spikeforge.data._rdata import read_capped

    folder = _austen_dir(data_dir)
    index = read_rdx(folder / "Rdata.rdx")
    rdb = read_capped(folder / "Rdata.rdb")
    books = {}
    for name in AUSTEN_BOOKS:
        if name not in index:
            raise RDataError(f"{str(folder)!r} holds no novel {name!r}; reinstall r-cran-janeaustenr")
        offset, length, compression = index[name]
        lines = read_record(rdb, offset, length, compression, where=f"{str(folder / 'Rdata.rdb')!r} ({name})")
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            raise RDataError(f"{name!r} in {str(folder)!r} is not a character vector without NA")
        books[name] = "\n".join(lines)
    return books


def load_austen(data_dir: str | os.PathLike[str] | None = None) -> TextCorpus:
    """The ``austen`` corpus (module docstring)."""
    books = read_austen_books(data_dir)
    held = books["northangerabbey"]
    train_books = [books[n] for n in AUSTEN_BOOKS if n not in ("northangerabbey", AUSTEN_TEST_BOOK)]
    train = "\n\n".join([*train_books, held[:-AUSTEN_VALIDATION_CHARS]])
    return TextCorpus(
        name="austen",
        train=train,
        validation=held[-AUSTEN_VALIDATION_CHARS:],
        test=books[AUSTEN_TEST_BOOK],
        vocab=CharVocab.from_texts(list(books.values())),
        source="Debian r-cran-janeaustenr (CRAN janeaustenr 1.0.0, Project Gutenberg texts); test: Persuasion; "
        f"validation: the last {AUSTEN_VALIDATION_CHARS} characters of Northanger Abbey",
    )


#: Registered corpora: name -> loader(data_dir).
_CORPORA: MappingProxyType[str, Callable[[str | None], TextCorpus]] = MappingProxyType({"austen": load_austen})


def list_corpora() -> list[str]:
    return sorted(_CORPORA)


def get_corpus(name: str, *, data_dir: str | os.PathLike[str] | None = None) -> TextCorpus:
    """Load a registered corpus by name (``ValueError`` naming the valid ones otherwise)."""
    if name not in _CORPORA:
        raise ValueError(f"unknown corpus {name!r}; valid choices: {', '.join(list_corpora())}")
    return _CORPORA[name](None if data_dir is None else str(data_dir))
