"""The corpus of ``kairan bench search``: municipal-style Japanese messages, generated
deterministically (the first N messages are the same whatever the total), the fixed
queries, and the ground truth (which messages contain each query, by substring over the
normalised text)."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator, Sequence

SUBJECTS = [
    "地域防災計画", "避難所運営", "防災訓練", "道路補修工事", "水道管更新", "予算要求",
    "児童福祉", "介護保険料", "固定資産税", "住民票の写し", "消防団員", "公民館の利用",
    "保育所入所", "ハザードマップ", "マイナンバーカード", "ごみ収集日程", "都市計画道路",
    "土砂災害警戒区域", "除雪作業", "学校給食", "国民健康保険", "広報誌の原稿", "議会答弁",
    "選挙管理委員会", "防災行政無線", "ふるさと納税", "DX推進計画", "庁内Wi-Fi", "VPN接続",
    "定額給付金", "高齢者見守り", "空き家対策", "観光振興", "上下水道料金", "住民説明会",
]  # fmt: skip
DEPARTMENTS = [
    "総務課", "企画課", "税務課", "市民課", "福祉課", "健康推進課", "建設課", "都市計画課",
    "水道課", "教育委員会", "消防本部", "危機管理課", "情報政策課", "議会事務局",
]  # fmt: skip
ACTIONS = [
    "確認をお願いします", "修正しました", "共有します", "検討中です", "延期になりました",
    "予定どおり実施します", "回答が届きました", "資料を添付します", "至急対応してください",
    "集計が終わりました", "関係者に周知してください", "現地調査を行いました",
]  # fmt: skip
TEMPLATES = [
    "{s}の件、{d}から連絡がありました。{a}。",
    "{m}月{n}日の{s}について{d}と調整中。{a}",
    "【{d}】{s}に関する資料、{a}",
    "{s}と{t}の進捗を{d}で{a}",
    "本日{n}時から{s}の打合せ（{d}）。{a}。",
    "{t}：{s}の予算は{n}万円で{a}",
]  # fmt: skip

#: The fixed queries: 1 to 4 characters and longer, kanji, kana, katakana, Latin; common,
#: rare (12月30日: about 1 message in 2,000) and absent (令和).
QUERIES = [
    "防災", "避難", "道路", "予算", "福祉", "災", "消防団", "公民館", "保育所", "防災計画",
    "避難所運営", "都市計画", "住民説明", "土砂災害警戒", "地域防災計画", "ハザードマップ",
    "マイナンバー", "ふるさと", "DX推進", "wi-fi", "確認をお願い", "ごみ収集", "12月30日",
    "令和",
]  # fmt: skip


def messages(count: int, seed: int = 20261206) -> Iterator[str]:
    """``count`` messages, the same for the same seed (each from the ones before)."""
    rng = random.Random(seed)
    for _ in range(count):
        template = rng.choice(TEMPLATES)
        yield template.format(
            s=rng.choice(SUBJECTS),
            t=rng.choice(SUBJECTS),
            d=rng.choice(DEPARTMENTS),
            a=rng.choice(ACTIONS),
            m=rng.randint(1, 12),
            n=rng.randint(1, 30),
        )


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _words(query: str) -> list[str]:
    """The query's words: its runs of letters and digits (as a reader would split it)."""
    out, current = [], []
    for char in _normalise(query):
        if char.isalnum():
            current.append(char)
        elif current:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return out


def ground_truth(texts: Sequence[str], queries: Sequence[str]) -> dict[str, int]:
    """How many texts hold every word of each query (substring, normalised)."""
    words = {q: _words(q) for q in queries}
    counts = dict.fromkeys(queries, 0)
    for text in texts:
        normal = _normalise(text)
        for query, parts in words.items():
            if all(p in normal for p in parts):
                counts[query] += 1
    return counts


def holds(text: str, query: str) -> bool:
    normal = _normalise(text)
    return all(p in normal for p in _words(query))
