"""The csv and json source kinds: parsing, nulls, row references, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from oaamap.errors import DataErrors, ErrorCollector, SourceError
from oaamap.expressions import OaamapFunctions, compile_expression
from oaamap.sources import SOURCE_KINDS, PlanContext, ReadContext


def read(tmp_path: Path, config: dict, name: str = "src") -> list[tuple[str, dict]]:
    collector = ErrorCollector("m.yaml")
    functions = OaamapFunctions()
    ctx = PlanContext(
        base_dir=tmp_path, collector=collector, span_of=lambda p: None,
        key_span_of=lambda p: None,
        compile_expression=lambda text, path: compile_expression(text, functions))
    kind = next(k for k in config if k in SOURCE_KINDS)
    source = SOURCE_KINDS[kind](name, config, ctx)
    assert collector.errors == []
    read_ctx = ReadContext(render_context={"env": {}, "vars": {"d": "sub"}},
                           records_of=lambda n: [])
    return [(str(r.ref), r.data) for r in source.read(read_ctx)]


def test_csv_nulls_quotes_multiline_and_line_numbers(tmp_path: Path) -> None:
    """Empty cells are null; a quoted cell may span lines; refs name each row's first line."""
    (tmp_path / "u.csv").write_text('\ufeffid,name,note\n1,a,\n2,"b, c","two\nlines"\n\n3,d,x\n')
    rows = read(tmp_path, {"csv": "u.csv"})
    assert rows == [
        (f"{tmp_path / 'u.csv'}:2", {"id": "1", "name": "a", "note": None}),
        (f"{tmp_path / 'u.csv'}:3", {"id": "2", "name": "b, c", "note": "two\nlines"}),
        (f"{tmp_path / 'u.csv'}:6", {"id": "3", "name": "d", "note": "x"}),
    ]


def test_csv_delimiter_encoding_null_values_and_jinja_path(tmp_path: Path) -> None:
    """Options: delimiter, encoding, extra null markers; the path is a Jinja template."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "u.csv").write_bytes("id;name\n1;Zoë\n2;N/A\n".encode("latin-1"))
    rows = read(tmp_path, {"csv": "{{ vars.d }}/u.csv", "delimiter": ";",
                           "encoding": "latin-1", "null_values": ["N/A"]})
    assert [r[1] for r in rows] == [{"id": "1", "name": "Zoë"}, {"id": "2", "name": None}]


@pytest.mark.parametrize(("content", "message"), [
    ("", "the file is empty: a header row is required"),
    ("id,id\n1,2\n", "the header repeats the column `id`"),
])
def test_csv_errors_name_the_source_and_row(tmp_path: Path, content: str | bytes,
                                            message: str) -> None:
    """Files without a usable header are SourceErrors naming the source, file and row."""
    path = tmp_path / "u.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SourceError) as info:
        read(tmp_path, {"csv": "u.csv"})
    assert info.value.source == "src"
    assert message in str(info.value)


@pytest.mark.parametrize(("content", "line", "message"), [
    ("id,name\n1,a,extra\n", 2, "row has 3 cells but the header has 2"),
    (b"id\n\xff\xfe\n", 2, "cannot decode the line as utf-8-sig at byte 1"),
])
def test_malformed_csv_rows_are_data_errors(tmp_path: Path, content: str | bytes, line: int,
                                            message: str) -> None:
    """A malformed row is a data error naming the source and its line (issue 7: these were
    source errors, and a decoding error named an offset in a read chunk)."""
    path = tmp_path / "u.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataErrors) as info:
        read(tmp_path, {"csv": "u.csv"})
    error = info.value.errors[0]
    assert (error.ref.source, error.ref.row) == ("src", line)
    assert message in str(error)


def test_missing_file(tmp_path: Path) -> None:
    """A missing file says which source and which path."""
    with pytest.raises(SourceError, match=r"source `src` \(.*nope.csv\): cannot open the file"):
        read(tmp_path, {"csv": "nope.csv"})


def test_json_records_expression_and_index_refs(tmp_path: Path) -> None:
    """A document with a `records` JMESPath; refs are record indexes."""
    (tmp_path / "t.json").write_text('{"data": {"teams": [{"id": 1}, {"id": 2}]}}')
    rows = read(tmp_path, {"json": "t.json", "records": "data.teams"})
    assert rows == [(f"{tmp_path / 't.json'}[#0]", {"id": 1}),
                    (f"{tmp_path / 't.json'}[#1]", {"id": 2})]


def test_json_lines(tmp_path: Path) -> None:
    """JSON Lines (by suffix or `lines: true`); refs are line numbers."""
    (tmp_path / "t.jsonl").write_text('{"id": 1}\n\n{"id": 2}\n')
    assert read(tmp_path, {"json": "t.jsonl"})[1] == (f"{tmp_path / 't.jsonl'}:3", {"id": 2})


@pytest.mark.parametrize(("content", "config", "message"), [
    ("{nope", {}, "the file is not JSON"),
    ('{"a": 1}', {"records": "b"}, "`records: b` selects nothing (null)"),
    ("[1, 2]", {}, "the document is a list of 2 numbers, not a list of objects"),
])
def test_json_errors(tmp_path: Path, content: str, config: dict, message: str) -> None:
    """Malformed JSON documents are SourceErrors."""
    (tmp_path / "t.json").write_text(content)
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read(tmp_path, {"json": "t.json", **config})
