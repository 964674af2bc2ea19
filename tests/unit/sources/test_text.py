"""``TextSource``: texts tokenized once at pack time into a ragged int32 field, with empty
and invalid lines counted, ``max_length`` checked and tokenizers' output checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.contracts.sources import assert_source_contract
from tests.text_data import bpe, texts, write_jsonl, write_txt

import loadwise
from loadwise.errors import ConfigError, SourceError
from loadwise.sources.text import TextSource
from loadwise.sources.tokenize import CharTokenizer, as_tokenizer

pytest.importorskip("tokenizers")


def test_text_source_keeps_the_contract(tmp_path: Path) -> None:
    assert_source_contract(
        TextSource(write_txt(tmp_path / "a.txt", texts(40)), bpe(), max_length=32)
    )


def test_jsonl_with_string_labels_and_a_class_folder(tmp_path: Path) -> None:
    samples = texts(6)
    jsonl = TextSource(write_jsonl(tmp_path / "a.jsonl", samples, ["b", "a", "b", "c", "a", "a"]))
    assert jsonl.categories == {"label": ("a", "b", "c")}
    assert [int(r["label"]) for _, r in jsonl] == [1, 0, 1, 2, 0, 0]
    for i, name in enumerate(["neg", "neg", "pos"]):
        (tmp_path / "tree" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / name / f"{i}.txt").write_text(samples[i])
    folder = TextSource(tmp_path / "tree")
    assert [(n, int(r["label"])) for n, r in folder] == [
        ("neg/0.txt", 0),
        ("neg/1.txt", 0),
        ("pos/2.txt", 1),
    ]


def test_token_ids_pack_into_a_ragged_field_with_int64_offsets(tmp_path: Path) -> None:
    samples = texts(50)
    loadwise.pack(TextSource(samples, bpe()), tmp_path / "p", progress=False)
    spec = loadwise.open(tmp_path / "p", "lazy").manifest.field("input_ids")
    assert (spec.kind, spec.dtype) == ("ragged", "int32")
    import pyarrow as pa

    shard = next((tmp_path / "p").glob("*.arrow"))
    column = pa.ipc.open_file(pa.memory_map(str(shard))).read_all().column("input_ids")
    assert column.type == pa.large_list(pa.int32())  # 64-bit offsets: no 2**31 overflow
    with loadwise.open(tmp_path / "p", "lazy", ragged="list") as packed:
        got = packed.get_batch([7])["input_ids"][0].tolist()
    assert got == bpe().encode(samples[7]).ids


def test_characters_by_default_code_points_or_bytes() -> None:
    assert [r["input_ids"].tolist() for _, r in TextSource(["hé☃"])] == [[104, 233, 9731]]
    byte_level = TextSource(["hé"], CharTokenizer("byte"))
    assert next(iter(byte_level))[1]["input_ids"].tolist() == [104, 195, 169]


def test_max_length_cuts_and_counts(tmp_path: Path) -> None:
    _, record = next(iter(TextSource(["abcdefgh"], max_length=3)))
    assert record["input_ids"].tolist() == [97, 98, 99] and record["num_tokens"] == 8


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_max_length_must_be_positive(bad: object) -> None:
    with pytest.raises(ConfigError, match="`max_length` must be an integer >= 1"):
        TextSource(["a"], max_length=bad)  # type: ignore[arg-type]


def test_empty_lines_are_left_out_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"first\n\n\r\nsecond\r\n\nthird")
    source = TextSource(path)
    assert [n for n, _ in source] == ["line 1 of a.txt", "line 4 of a.txt", "line 6 of a.txt"]
    assert source.describe()["empty_lines"] == 3


def test_invalid_utf8_lines_are_replaced_and_counted_or_raised(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"good\nbad \xff\xfe here\nfine\n")
    source = TextSource(path)
    assert source.describe()["invalid_utf8_lines"] == 1
    assert "\ufffd" in "".join(chr(c) for c in list(source)[1][1]["input_ids"].tolist())
    with pytest.raises(SourceError, match="line 2 of .*a.txt` is not valid UTF-8"):
        TextSource(path, errors="strict")


@pytest.mark.parametrize(
    ("tokenizer", "message"),
    [
        (lambda text: text.split(), r"returned \['[^]]*\] \(list\)"),
        (lambda text: "ids", r"returned 'ids' \(str\)"),
        (lambda text: [1.5, 2.0], r"returned \[1.5, 2.0\] \(list\)"),
        (lambda text: [-1], "ids from -1 to -1"),
        (lambda text: 7, r"returned 7 \(int\)"),
    ],
)
def test_a_tokenizer_that_returns_no_ints_is_refused(tokenizer: object, message: str) -> None:
    source = TextSource(["hello world", "two"], lambda text: [1, 2])
    source.tokenizer = as_tokenizer(tokenizer)
    with pytest.raises(SourceError, match=f"{message} for text `0`"):
        list(source)


def test_transformers_tokenizers_are_batch_encoded() -> None:
    transformers = pytest.importorskip("transformers")
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe())
    samples = texts(5)
    source = TextSource(samples, fast)
    assert type(source.tokenizer).__name__ == "TransformersTokenizer"
    assert [r["input_ids"].tolist() for _, r in source] == [bpe().encode(t).ids for t in samples]


def test_the_fingerprint_follows_the_tokenizer() -> None:
    samples = texts(3)
    same = TextSource(samples, bpe()).describe()["fingerprint"]
    assert TextSource(samples, bpe()).describe()["fingerprint"] == same
    assert TextSource(samples).describe()["fingerprint"] != same
    assert TextSource(samples, bpe(), max_length=9).describe()["fingerprint"] != same


def test_lengths_are_long_tailed() -> None:
    lengths = np.array([len(t) for t in texts(500)])
    assert np.percentile(lengths, 99) > 8 * np.median(lengths)
