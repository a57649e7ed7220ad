"""The directory's pure parts: local government codes, normalisation, the CSV reader."""

from __future__ import annotations

import pytest

from homeserver.municipal.directory import csvfile, rules
from tests.homeserver.municipal.directory.helpers import NEMURO, csv_bytes

SERVER = "kairan.nemuro.example.jp"


@pytest.mark.parametrize(
    "code",
    ["011002", "012238", "130001", "131016", "271403", "082015"],
)
def test_real_local_government_codes_pass_the_check_digit(code: str) -> None:
    # 札幌市, 根室市, 東京都, 千代田区, 堺市, 水戸市
    assert rules.org_code_error(code) is None


@pytest.mark.parametrize("code", ["012237", "01223", "0122388", "01223X", "１２３４５６"])
def test_wrong_codes_are_refused(code: str) -> None:
    assert rules.org_code_error(code) is not None


def test_check_digit_of_remainders_zero_and_one() -> None:
    # The last digit of 11 - remainder: 11 -> 1, 10 -> 0.
    assert rules.check_digit("47382") == 1  # 24+35+12+24+4 = 99 = 9*11
    assert rules.check_digit("20000") == 0  # 12 = 11+1
    assert rules.org_code_error("473821") is None and rules.org_code_error("200000") is None
    assert rules.org_code_error("473820") is not None


def test_normalise_and_readings() -> None:
    assert rules.normalise("ネムロ") == rules.normalise("ねむろ") == rules.normalise("ﾈﾑﾛ")
    assert rules.normalise(" 山田\u3000太郎\t") == "山田太郎"
    assert rules.normalise("ＡＢＣ１２") == "abc12"
    assert rules.normalise("a\x1fb\x00c") == "abc"
    assert rules.reading("根室") == "ねむろ"
    assert rules.reading("総務課") == "そうむか"


def test_query_terms_are_bounded() -> None:
    assert rules.query_terms("山田　太郎") == ["山田", "太郎"]
    assert rules.query_terms("   ") == []
    with pytest.raises(ValueError):
        rules.query_terms("あ" * 101)
    with pytest.raises(ValueError):
        rules.query_terms("a b c d e f")


def test_like_wildcards_are_escaped() -> None:
    assert rules.like_pattern("50%_\\") == "%50\\%\\_\\\\%"


def test_a_good_file_in_utf8_and_shift_jis() -> None:
    for encoding in ("utf-8", "utf-8-sig", "shift_jis", "cp932"):
        parsed = csvfile.parse(csv_bytes(NEMURO, encoding), SERVER)
        assert parsed.errors == [], encoding
        assert [r.name for r in parsed.rows] == ["山田 太郎", "佐藤 花子", "鈴木 一郎",
                                                 "高橋 美咲", "田中 健"]  # fmt: skip
        suzuki = parsed.rows[2]
        assert suzuki.department == ("総務部", "情報政策課")
        assert suzuki.user_id == f"@suzuki:{SERVER}"
        assert parsed.rows[1].reading == "さとうはなこ"
        assert parsed.rows[0].line == 2


def test_english_headers_and_other_columns() -> None:
    data = (
        "org_code,org_name,name,reading,department,title,extension,user_id,備考\n"
        "012238,根室市役所,山田 太郎,,総務部＞総務課,課長,１２０１,@yamada:" + SERVER + ",メモ\n"
    ).encode()
    parsed = csvfile.parse(data, SERVER)
    assert parsed.errors == []
    row = parsed.rows[0]
    assert (row.department, row.extension, row.user_id) == (
        ("総務部", "総務課"),
        "1201",
        f"@yamada:{SERVER}",
    )


def test_every_error_with_its_line_number() -> None:
    rows = [
        "012238,根室市役所,,総務課,山田 太郎,やまだ,課長,1201,yamada",  # line 2: fine
        "012237,根室市役所,,総務課,佐藤 花子,,主任,,",  # 3: check digit
        "01223,根室市役所,,総務課,佐藤 次郎,,,,",  # 4: five digits
        "012238,根室市役所,,総務課,,,,,",  # 5: no name
        "012238,根室市役所,,総務課,鈴木,すずきA,,,",  # 6: reading not kana
        "012238,根室市役所,,総務課,伊藤,,,,@ito:elsewhere.example",  # 7: another server
        "012238,根室市役所,,総務課,加藤,,,内線,",  # 8: extension
        "012238,根室市役所,,総務課,山田 次郎,,,,yamada",  # 9: same Matrix ID as line 2
        "012238,根室市役所,,総務課,Bad,,,,Bad Name",  # 10: localpart
    ]
    parsed = csvfile.parse(csv_bytes(rows), SERVER)
    lines = [int(e.split(":")[0].removeprefix("line ")) for e in parsed.errors]
    assert lines == [3, 4, 5, 6, 7, 8, 9, 10], parsed.errors
    assert "expected 012238" in parsed.errors[0]
    assert "line 2" in parsed.errors[6]


def test_file_level_errors() -> None:
    assert csvfile.parse(b"", SERVER).errors == [
        "line 1: the file is empty (a header row is needed)"
    ]
    missing = csvfile.parse("氏名,役職\n山田,課長\n".encode(), SERVER).errors
    assert len(missing) == 1 and "団体コード/org_code" in missing[0]
    assert missing[0].startswith("line 1:")
    binary = csvfile.parse(b"\xff\xfe\x00\x81\x00", SERVER).errors
    assert binary and "neither UTF-8 nor Shift_JIS" in binary[0]


def test_a_quoted_field_over_two_lines_keeps_line_numbers() -> None:
    rows = [
        '012238,根室市役所,,総務課,"山田\n太郎",,,,',  # lines 2-3
        "012238,根室市役所,,総務課,佐藤,,,x,",  # line 4: bad extension
    ]
    parsed = csvfile.parse(csv_bytes(rows), SERVER)
    assert [e.split(":")[0] for e in parsed.errors] == ["line 4"]
