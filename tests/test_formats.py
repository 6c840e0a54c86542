"""Reading users' files: each format's bad lines are named by file and line."""

import json

import pytest

from seqcli.data.datasets.conll import ConllDataset
from seqcli.data.datasets.labeled import LabeledDataset
from seqcli.data.datasets.pairs import PairsDataset
from seqcli.data.datasets.series import SeriesDataset
from seqcli.errors import DataError


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_pairs_formats_agree(tmp_path):
    rows = [("hello world", "bonjour le monde"), ("cat", "chat"), ("cat", "le chat")]
    tsv = write(tmp_path, "p.tsv", "".join(f"{s}\t{t}\n" for s, t in rows))
    csv = write(tmp_path, "p.csv", "en,fr\n" + "".join(f"{s},{t}\n" for s, t in rows))
    jsonl = write(tmp_path, "p.jsonl", "".join(json.dumps({"en": s, "fr": t}) + "\n" for s, t in rows))
    reads = [PairsDataset(path=tsv, source=0, target=1, tokenize="whitespace").read(tsv),
             PairsDataset(path=csv, source="en", target="fr", tokenize="whitespace").read(csv),
             PairsDataset(path=jsonl, source="en", target="fr", tokenize="whitespace").read(jsonl)]
    assert reads[0] == reads[1] == reads[2]
    assert reads[0][2] == (["cat"], ["le", "chat"])
    words = PairsDataset(path=tsv, source=0, target=1, tokenize="word")
    assert words.read(write(tmp_path, "w.tsv", "Hi, there!\tSalut !\n"))[0] == (["Hi", ",", "there", "!"], ["Salut", "!"])


@pytest.mark.parametrize("name,text,options,message", [
    ("bad.tsv", "a\tb\nonly-one-column\n", {"source": 0, "target": 1}, "bad.tsv:2: expected at least 2 TSV columns, found 1"),
    ("bad.jsonl", '{"source": "a", "target": "b"}\n{"source": "a", \n', {}, "bad.jsonl:2: invalid JSON"),
    ("bad.jsonl", '["a", "b"]\n', {}, "bad.jsonl:1: expected a JSON object per line, got list"),
    ("bad.jsonl", '{"src": "a", "target": "b"}\n', {}, "bad.jsonl:1: no key 'source' (keys: src, target); set dataset.source"),
    ("bad.csv", "en,de\na,b\n", {"source": "en", "target": "fr"}, "bad.csv:1: no column 'fr' in the header (en, de)"),
    ("bad.tsv", "a\t\n", {"source": 0, "target": 1}, "bad.tsv:1: the target is empty"),
])
def test_pairs_errors_name_file_and_line(tmp_path, name, text, options, message):
    path = write(tmp_path, name, text)
    with pytest.raises(DataError) as info:
        PairsDataset(path=path, **options).read(path)
    assert str(info.value).startswith(f"{path.rsplit('/', 1)[0]}/{message}")


def test_labeled_errors(tmp_path):
    train = write(tmp_path, "t.jsonl", '{"input": [[1, 2], [3, 4]], "label": "a"}\n{"input": [[1]], "label": "b"}\n')
    ds = LabeledDataset(train=train, valid=train, input_type="numbers")
    with pytest.raises(DataError, match="numeric inputs have different widths"):
        ds.load()
    bad = write(tmp_path, "b.jsonl", '{"input": "x y", "label": "a"}\n')
    with pytest.raises(DataError, match=r"b.jsonl:1: expected a non-empty sequence of numbers"):
        LabeledDataset(path=bad, input_type="numbers").read(bad)
    train = write(tmp_path, "t2.jsonl", '{"input": "x y", "label": "a"}\n')
    valid = write(tmp_path, "v2.jsonl", '{"input": "x", "label": "a"}\n{"input": "y", "label": "zzz"}\n')
    with pytest.raises(DataError, match=r"v2.jsonl:2: label 'zzz' does not occur in the training data"):
        LabeledDataset(train=train, valid=valid).load()


def test_conll_reading_and_errors(tmp_path):
    path = write(tmp_path, "c.conll", "-DOCSTART- O\n\nThe DT B-NP\ncat NN I-NP\n\n\nsat VBD O\n")
    sentences = ConllDataset(path=path).read(path)
    assert [(t, g) for _, t, g in sentences] == [(["The", "cat"], ["B-NP", "I-NP"]), (["sat"], ["O"])]
    assert sentences[1][0].endswith("c.conll:7")
    bad = write(tmp_path, "bad.conll", "The DT\ncat\n")
    with pytest.raises(DataError, match=r"bad.conll:2: expected a token in column 0 and a tag in column 1"):
        ConllDataset(path=bad, tag_column=1).read(bad)


def test_series_windows_stay_inside_their_split(tmp_path):
    path = write(tmp_path, "s.csv", "t,v\n" + "".join(f"{i},{i}\n" for i in range(100)))
    data = SeriesDataset(path=path, columns=["v"], window=5, horizon=2, valid_fraction=0.2, test_fraction=0.2).load()
    first_valid = data.splits["valid"][0]
    assert first_valid["input"][:, 0].tolist() == [60, 61, 62, 63, 64]  # valid rows are 60-79
    assert data.splits["train"][-1]["target"][:, 0].tolist() == [58, 59]  # no window crosses into valid
    assert len(data.splits["train"]) == 60 - 7 + 1
    assert data.fields["input"].mean == pytest.approx([29.5])  # statistics of the training rows only
    assert data.fields["target"].last_of == [0] and data.fields["target"].steps == 2
    bad = write(tmp_path, "b.csv", "t,v\n1,2\n2,oops\n")
    with pytest.raises(DataError, match=r"b.csv:3: column 'v': not a number: 'oops'"):
        SeriesDataset(path=bad).read(bad)
    short = write(tmp_path, "short.csv", "v\n" + "1\n" * 20)
    with pytest.raises(DataError, match=r"fewer than window \+ horizon"):
        SeriesDataset(path=short, window=10, horizon=2).load()


def test_data_that_is_wrong_in_ways_the_user_cannot_see(tmp_path):
    """Each of these once trained silently on something the file did not say."""
    conll = write(tmp_path, "c.conll", "The DT\ncat\n")
    with pytest.raises(DataError, match=r"c.conll:2: expected a token in column 0 and a tag in column -1, "
                                        r"found 1 column"):
        ConllDataset(path=conll).read(conll)
    jsonl = write(tmp_path, "l.jsonl", '{"input": "a b", "label": "x"}\n{"input": "a", "label": [1]}\n')
    with pytest.raises(DataError, match=r"l.jsonl:2: a label is a string or an integer, got \[1\]"):
        LabeledDataset(path=jsonl).read(jsonl)
    csv = write(tmp_path, "p.csv", "source,target\nab,ba\nabc,cba,extra\n")
    with pytest.raises(DataError, match=r"p.csv:3: 3 CSV columns, the header has 2"):
        PairsDataset(path=csv).read(csv)
    for cell in ("nan", "inf", "-inf", "1e39"):
        series = write(tmp_path, "s.csv", f"t,v\n1,2\n2,{cell}\n3,4\n")
        with pytest.raises(DataError, match=rf"s.csv:3: column 'v': '{cell}' is not a finite number"):
            SeriesDataset(path=series).read(series)
    wide = write(tmp_path, "w.csv", "t,v\n1,2\n2,3,4\n")
    with pytest.raises(DataError, match=r"w.csv:3: expected 2 columns \(the header's\), found 3"):
        SeriesDataset(path=wide).read(wide)
    (tmp_path / "bom.csv").write_bytes("\ufeffsource,target\nab,ba\n".encode("utf-8"))
    rows = PairsDataset(path=str(tmp_path / "bom.csv")).read(str(tmp_path / "bom.csv"))
    assert len(rows) == 1  # the byte-order mark is not part of the first column's name
