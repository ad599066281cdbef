"""Watchlist matching: a table of positives and hard negatives in English and Vietnamese over the
shipped watchlist, and properties of folding and tokenising."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from d24watch.match import Matcher
from d24watch.text import fold_word, repair_text, tokenize
from d24watch.watchlist import load_watchlist

ROOT = Path(__file__).resolve().parents[1]
MATCHER = Matcher(load_watchlist(ROOT / "config" / "watchlist.toml"))

MOLISA = " He was the legal director at MOLISA."
ARREST = " He was arrested and detained under Article 117."
BINH = "nguyen-van-binh"
D24 = "directive-24"

# (text, entity expected to be found or None when it must not be, the entity that is checked)
CASES: list[tuple[str, str | None, str]] = [
    # --- Nguyễn Văn Bình: forms of the name ---
    ("Police arrested Nguyễn Văn Bình." + MOLISA, BINH, BINH),
    ("Police arrested Nguyen Van Binh." + MOLISA, BINH, BINH),
    ("POLICE ARRESTED NGUYỄN VĂN BÌNH." + MOLISA, BINH, BINH),
    ("nguyễn văn bình bị bắt, Bộ Lao động xác nhận.", BINH, BINH),
    (unicodedata.normalize("NFD", "Nguyễn Văn Bình bị bắt tại Bộ Lao động."), BINH, BINH),
    ("Nguyen-Van Binh's arrest shocked MOLISA staff.", BINH, BINH),
    ("Van Binh Nguyen, a MOLISA official, was detained.", BINH, BINH),
    ("Van-Binh Nguyen, a MOLISA official, was detained.", BINH, BINH),
    ("Nguyn Văn Bình, Vụ trưởng Vụ Pháp chế, bị bắt.", BINH, BINH),
    ("Nguyễn Văn Bìnhh of MOLISA was detained.", None, BINH),
    ("Nguyen Van Binh\nof MOLISA was detained.", BINH, BINH),
    ("Nguyen Van  Binh (MOLISA) detained.", BINH, BINH),
    ("Ông Nguyễn Văn Bình, Vụ trưởng Vụ Pháp chế Bộ LĐ-TB-XH, bị khởi tố theo Điều 337.", BINH, BINH),
    # --- Nguyễn Văn Bình: hard negatives ---
    ("Nguyen Vu Binh was sentenced." + MOLISA, None, BINH),
    ("Nguyen Van Binhminh spoke at MOLISA.", None, BINH),
    ("Former State Bank governor Nguyen Van Binh spoke about Decree 24 on gold.", None, BINH),
    ("Thống đốc Nguyễn Văn Bình phát biểu về Nghị định 24 về vàng.", None, BINH),
    ("Striker Nguyen Van Binh scored twice as Hanoi FC beat Viettel.", None, BINH),
    ("Cầu thủ Nguyễn Văn Bình ghi bàn thắng quyết định.", None, BINH),
    ("Nguyen Van Binh, chairman of Vietnam Phat, was arrested for bribery.", None, BINH),
    ("Nguyễn Văn Bính was seen at MOLISA.", BINH, BINH),  # folding is diacritics-insensitive by design
    ("Nguyen Van An of MOLISA was detained.", None, BINH),
    # --- Nguyễn Vũ Bình ---
    ("Journalist Nguyễn Vũ Bình was arrested in Hanoi.", "nguyen-vu-binh", "nguyen-vu-binh"),
    ("Nguyen Vu Binh was sentenced to seven years.", "nguyen-vu-binh", "nguyen-vu-binh"),
    ("Nhà báo Nguyễn Vũ B́nh bị bắt năm 2002.", "nguyen-vu-binh", "nguyen-vu-binh"),
    ("Nguyen Van Binh was sentenced to seven years." + MOLISA, None, "nguyen-vu-binh"),
    ("Nguyễn Vũ Bình chơi bóng đá rất giỏi.", None, "nguyen-vu-binh"),
    # --- Đặng Đình Bách ---
    ("Lawyer Đặng Đình Bách began a hunger strike.", "dang-dinh-bach", "dang-dinh-bach"),
    ("Lawyer Dang Dinh Bach began a hunger strike.", "dang-dinh-bach", "dang-dinh-bach"),
    ("RFA: Dang Din Bach began a hunger strike.", "dang-dinh-bach", "dang-dinh-bach"),
    ("ĐẶNG ĐÌNH BÁCH tuyệt thực.", "dang-dinh-bach", "dang-dinh-bach"),
    ("Đặng Đình Mạnh is a defence lawyer.", None, "dang-dinh-bach"),
    ("Dinh Bach Dang, an environmental lawyer, was jailed.", "dang-dinh-bach", "dang-dinh-bach"),
    ("Dang Dinh Bachh appears in a typo with an added letter.", None, "dang-dinh-bach"),
    # --- Ngô Thị Tố Nhiên ---
    ("Ngô Thị Tố Nhiên, director of VIETSE, was arrested.", "ngo-thi-to-nhien", "ngo-thi-to-nhien"),
    ("Ngo Thi To Nhien was sentenced.", "ngo-thi-to-nhien", "ngo-thi-to-nhien"),
    ("Energy expert To Nhien was detained.", "ngo-thi-to-nhien", "ngo-thi-to-nhien"),
    ("Ngo Thi To Nhi spoke.", None, "ngo-thi-to-nhien"),
    # --- Nguyễn Đức Hùng (common name, context) ---
    ("Facebooker Nguyễn Đức Hùng ở Hà Tĩnh bị bắt theo Điều 117.", "nguyen-duc-hung", "nguyen-duc-hung"),
    ("Nguyen Duc Hung, a Facebook commentator on Formosa, was jailed.", "nguyen-duc-hung", "nguyen-duc-hung"),
    ("Nguyễn Đức Hùng, giám đốc công ty xây dựng, phát biểu.", None, "nguyen-duc-hung"),
    ("Nguyen Duc Hung won the chess tournament.", None, "nguyen-duc-hung"),
    ("Nguyễn Đức Chung, former Hanoi chairman, was tried.", None, "nguyen-duc-hung"),
    # --- Nguyễn Lân Thắng ---
    ("Blogger Nguyễn Lân Thắng bị tuyên 6 năm tù.", "nguyen-lan-thang", "nguyen-lan-thang"),
    ("Nguyen Lan Thang was sentenced to six years.", "nguyen-lan-thang", "nguyen-lan-thang"),
    ("Nguyễn Lân Ké là bút danh khác.", "nguyen-lan-thang", "nguyen-lan-thang"),
    ("Nguyễn Lân Thăng is someone else entirely? folding says same.", "nguyen-lan-thang", "nguyen-lan-thang"),
    # --- Nguyễn Tường Thụy: old and new tone placement ---
    ("Nhà báo Nguyễn Tường Thụy bị bắt.", "nguyen-tuong-thuy", "nguyen-tuong-thuy"),
    ("Nhà báo Nguyễn Tường Thuỵ bị bắt.", "nguyen-tuong-thuy", "nguyen-tuong-thuy"),
    ("Nguyen Tuong Thuy was sentenced to 11 years.", "nguyen-tuong-thuy", "nguyen-tuong-thuy"),
    ("Nguyen Tuong Thuan spoke.", None, "nguyen-tuong-thuy"),
    ("Nguyen Tuong Thuy's old friend Nguyen Tuong Thu spoke.", "nguyen-tuong-thuy", "nguyen-tuong-thuy"),
    # --- Trương Duy Nhất ---
    ("Blogger Trương Duy Nhất was abducted in Bangkok.", "truong-duy-nhat", "truong-duy-nhat"),
    ("Truong Duy Nhat was jailed for ten years.", "truong-duy-nhat", "truong-duy-nhat"),
    ("Trương Văn Nhất, tên thật của blogger.", "truong-duy-nhat", "truong-duy-nhat"),
    ("Truong Duy Nhan opened a shop.", None, "truong-duy-nhat"),
    # --- extended list ---
    ("Ngụy Thị Khanh won the Goldman Prize.", "nguy-thi-khanh", "nguy-thi-khanh"),
    ("Nguỵ Thị Khanh won the Goldman Prize.", "nguy-thi-khanh", "nguy-thi-khanh"),
    ("Nguy Thi Kahnh was released.", "nguy-thi-khanh", "nguy-thi-khanh"),
    ("Nhà báo Phạm Đoan Trang bị kết án 9 năm tù.", "pham-doan-trang", "pham-doan-trang"),
    ("Phạm Thị Đoan Trang bị xét xử.", "pham-doan-trang", "pham-doan-trang"),
    ("Mẹ Nấm was released into exile.", "nguyen-ngoc-nhu-quynh", "nguyen-ngoc-nhu-quynh"),
    ("Blogger Mother Mushroom was freed.", "nguyen-ngoc-nhu-quynh", "nguyen-ngoc-nhu-quynh"),
    ("Bạch Hồng Dương bị bắt cùng Mai Phan Lợi.", "bach-hung-duong", "bach-hung-duong"),
    ("Bach Hong Duong was arrested with Mai Phan Loi.", "mai-phan-loi", "mai-phan-loi"),
    ("Nhà báo Huy Đức bị bắt giữ.", "truong-huy-san", "truong-huy-san"),
    ("Huy Đức là tên một cửa hàng.", None, "truong-huy-san"),
    ("Trần Đông Chấn là bút danh của Trần Huỳnh Duy Thức.", "tran-huynh-duy-thuc", "tran-huynh-duy-thuc"),
    ("Nguyễn Thúy Hạnh bị bắt theo Điều 117.", "nguyen-thuy-hanh", "nguyen-thuy-hanh"),
    ("Nguyễn Thuý Hạnh bị bắt theo Điều 117.", "nguyen-thuy-hanh", "nguyen-thuy-hanh"),
    ("Vũ Minh Tiến of the VGCL was arrested.", "vu-minh-tien", "vu-minh-tien"),
    ("Nguyễn Hòa Bình chaired the meeting.", None, BINH),
    ("Lưu Bình Nhưỡng was arrested for extortion.", None, BINH),
    # --- Directive 24 ---
    ("The Politburo's Directive 24 treats civil society as a threat.", D24, D24),
    ("Vietnam's Directive No. 24 was leaked by Project88 in 2024.", D24, D24),
    ("directive no 24, issued in 2023 by the Politburo", D24, D24),
    ("Chỉ thị 24-CT/TW của Bộ Chính trị về an ninh quốc gia.", D24, D24),
    ("chỉ thị số 24-CT/TW ngày 13/7/2023", D24, D24),
    ("Chỉ thị “mật” số 24 của Bộ Chính trị", D24, D24),
    ("BBC viết tắt là CT24; Bộ Chính trị ban hành.", D24, D24),
    ("Directive 24-CT/TW of the Politburo on national security", D24, D24),
    ("Directive 24 (no context at all) was mentioned.", None, D24),
    ("Chỉ thị 24-CT/TW ngày 4/7/2008 của Ban Bí thư khóa X về phát triển Đông y.", None, D24),
    ("Tổng kết 15 năm thực hiện Chỉ thị 24-CT/TW về y dược cổ truyền, năm 2023.", None, D24),
    ("Chỉ thị 24/CT-TTg năm 2023 của Thủ tướng về an ninh quốc gia.", None, D24),
    ("Homeland Security Presidential Directive 24 on biometrics and national security.", None, D24),
    ("Directive 2014/24/EU on public procurement, 2023 revision.", None, D24),
    ("Decree 24 on gold trading was amended in 2023 by the Politburo's request.", None, D24),
    ("Nguyễn Văn Bình bị bắt ngày 24/4/2024; chỉ thị của Bộ Chính trị.", None, D24),
    ("Article 24 of the Constitution; the Politburo met in 2023.", None, D24),
]


def test_the_table_has_enough_cases() -> None:
    assert len(CASES) >= 80


@pytest.mark.parametrize(("text", "expected", "entity"), CASES, ids=[f"{i:02d}" for i in range(len(CASES))])
def test_watchlist_case(text: str, expected: str | None, entity: str) -> None:
    found = {m.entity_id for m in MATCHER.match("", text)}
    if expected is None:
        assert entity not in found
    else:
        assert expected in found


def precision_recall() -> tuple[float, float]:
    tp = fp = fn = 0
    for text, expected, entity in CASES:
        found = entity in {m.entity_id for m in MATCHER.match("", text)}
        if expected is not None:
            tp += found
            fn += not found
        else:
            fp += found
    return tp / ((tp + fp) or 1), tp / ((tp + fn) or 1)


def test_offsets_point_at_the_matched_text_in_title_and_body() -> None:
    title = "Arrest of NGUYEN VAN BINH"
    text = "Hà Nội — Công an bắt ông Nguyễn Văn Bình (Bộ Lao động). Later Binh was charged. Thái Bình province."
    [match] = [m for m in MATCHER.match(title, text) if m.entity_id == BINH]
    hits = {(h.field, h.text) for h in match.hits}
    assert ("title", "NGUYEN VAN BINH") in hits and ("text", "Nguyễn Văn Bình") in hits
    assert ("text", "Binh") in hits  # a given-name reference after the full name
    assert all((title if h.field == "title" else text)[h.start : h.end] == h.text for h in match.hits)
    assert sum(1 for h in match.hits if h.text == "Bình") == 0  # "Thái Bình" is a province


def test_given_name_alone_counts_only_beside_a_descriptor_of_that_person() -> None:
    """`Binh` with context but no descriptor of a Bình is nobody; beside "MOLISA" (Nguyễn Văn
    Bình's ministry) in the same or the previous sentence it is him, and only him."""
    assert MATCHER.match("", "Binh went to the market and was arrested.") == []
    assert MATCHER.match("", "Binh went to MOLISA. Much later that year, the weather changed. Binh left.") != []
    far = "MOLISA published a report. Nothing else happened that week. Binh was arrested."
    assert MATCHER.match("", far) == []
    [match] = MATCHER.match("", "The MOLISA official was held. Binh was arrested.")
    assert match.entity_id == "nguyen-van-binh" and [h.text for h in match.hits] == ["Binh"]


def test_snippet_is_about_200_characters_around_the_hit() -> None:
    text = "word " * 200 + "Đặng Đình Bách" + " word" * 200
    [match] = [m for m in MATCHER.match("", text) if m.entity_id == "dang-dinh-bach"]
    snippet = match.hits[0].snippet
    assert "Đặng Đình Bách" in snippet and 150 <= len(snippet) <= 240


def test_matching_scales_with_an_automaton(tmp_path: Path) -> None:
    """A watchlist of 2,000 generated names compiles and still matches exactly the right one."""
    lines = []
    for i in range(2000):
        lines.append(
            f'[[entity]]\nid = "p{i}"\nlabel = "Person {i}"\nkind = "person"\nterms = ["Alpha{i} Beta{i} Gamma{i}"]\n'
        )
    path = tmp_path / "big.toml"
    path.write_text("\n".join(lines))
    matcher = Matcher(load_watchlist(path))
    found = matcher.match("", "noise Alpha1234 Beta1234 Gamma1234 noise Alpha7 Beta8 Gamma7")
    assert [m.entity_id for m in found] == ["p1234"]


# -- properties ----------------------------------------------------------------------------

vietnamese = st.text(
    alphabet=st.sampled_from(
        list(
            "aăâbcdđeêghiklmnoôơpqrstuưvxyAĂÂĐÊÔƠƯàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ .,;-’'\n0123456789\u0300\u0301\u0303\u0309\u0323"
        )
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(vietnamese)
def test_tokens_keep_offsets_true_to_the_original_text(text: str) -> None:
    for token in tokenize(text):
        piece = text[token.start : token.end]
        assert fold_word(piece) == token.folded
        assert (token.folded and token.folded.isascii()) or not piece.isascii()


@settings(max_examples=300, deadline=None)
@given(vietnamese)
def test_folding_is_the_same_for_nfc_and_nfd(text: str) -> None:
    nfc = [t.folded for t in tokenize(unicodedata.normalize("NFC", text))]
    nfd = [t.folded for t in tokenize(unicodedata.normalize("NFD", text))]
    assert nfc == nfd


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_matches_without_error_and_hits_are_real_slices(text: str) -> None:
    for match in MATCHER.match(text[:20], text):
        for hit in match.hits:
            source = text[:20] if hit.field == "title" else text
            assert source[hit.start : hit.end] == hit.text


def test_dj_folds_to_d() -> None:
    assert fold_word("Đặng") == "dang" and fold_word("đ") == "d"


# -- forms real sources use (issue: context that survives real text) --------------------------

FORMS = [
    # (text, entity expected, or None for no hit of that entity)
    ("Công an bắt giữ ông Bình, vụ trưởng Vụ Pháp chế Bộ Lao động.", "nguyen-van-binh"),
    ("Ông Bình, cựu Thống đốc Ngân hàng Nhà nước, phát biểu.", None),
    ("Bà Nhiên bị bắt về tội chiếm đoạt tài liệu theo Điều 342.", "ngo-thi-to-nhien"),
    ("Mr. Loi is the chairman of MEC, the Center for Media in Educating Community.", "mai-phan-loi"),
    ("Bdap is an ethnic Ede from the Central Highlands.", "y-quynh-bdap"),
    ("Ms. Doan Trang was sentenced to nine years in prison.", "pham-doan-trang"),
    ("Police detained Thái Văn Đường, a refugee, in Thailand.", "duong-van-thai"),
    ("Phan Mai Loi was convicted of tax evasion.", "mai-phan-loi"),
    ("The court sentenced Le Huu Minh and two other journalists.", "le-huu-minh-tuan"),
    ("Hieu Bui was arrested for his posts.", "bui-hieu-vo"),
    ("Hieu Bui scored twice on Sunday.", None),
    ("Nhiều năm trước, Anh Chí Râu Đen lập kênh Youtube.", "nguyen-chi-tuyen"),
    ("Environmental activist Hoàng ??c Bình was sentenced to 14 years in prison.", "hoang-duc-binh"),
    ("Nguyễn Văn Bình, nguyên V pháp chế B Lao động, bị khởi tố.", "nguyen-van-binh"),
    (
        "The document is dated July 13, 2023, and aims at national security in the context of integration.",
        "directive-24",
    ),
    ("The document is dated July 13, 2005, on national security.", None),
    ("A secret directive of the Communist Party of China on national security.", None),
    ("Được biết, TNLT đang tuyệt thực gồm có Đào Quang Thực, Trần Phi Dũng.", None),
    ("Lam's succession follows a career in the public security ministry watching activists.", None),
    ("Police detained Huynh, an admin of the Economic-Political Discussion group.", "huynh-anh-khoa"),
    ("Bach, who campaigned against coal, was jailed for tax evasion.", "dang-dinh-bach"),
    ("Thai said the Nguyen family moved on June 13.", None),
    ("Nguyeenx Vawn Binhf, an official of MOLISA, was arrested.", "nguyen-van-binh"),
    ("O^ng Nguye^~n Va(n Bi`nh cu?a MOLISA bi. ba('t.", "nguyen-van-binh"),
    ("Ddawngj DDinhf Bachs was jailed.", "dang-dinh-bach"),
    ("Don't use C++ (a+b) or ~5 as the name of Đặng Đình Bách.", "dang-dinh-bach"),
]


@pytest.mark.parametrize(("text", "entity"), FORMS)
def test_the_forms_real_sources_use(text: str, entity: str | None) -> None:
    """Short forms beside descriptors, reordered and shortened names beside context, pen names,
    damaged letters and context words, the directive by its date; and the namesakes they must not hit."""
    found = {m.entity_id for m in MATCHER.match("", text)}
    if entity is None:
        assert found == set()
    else:
        assert found == {entity}


def test_context_may_come_from_the_feeds_own_summary() -> None:
    """A page that names Nguyễn Văn Bình without his ministry counts when the feed's summary names it."""
    page = "Nguyễn Văn Bình was taken from his home in Cầu Giấy."
    assert MATCHER.match("", page) == []
    [match] = MATCHER.match("", page, context="A MOLISA official has been arrested.")
    assert match.entity_id == "nguyen-van-binh" and match.hits[0].text == "Nguyễn Văn Bình"


def test_mojibake_is_repaired_where_the_bytes_decide_it() -> None:
    """UTF-8 read as Latin-1 or cp1252 comes back whole; ordinary accented text is left alone."""
    text = "Nguyễn Văn Bình của Bộ Lao động bị bắt."
    assert repair_text(text.encode("utf-8").decode("latin-1")) == text
    cp1252 = repair_text(text.encode("utf-8").decode("cp1252", errors="replace"))
    assert {m.entity_id for m in MATCHER.match("", cp1252)} == {"nguyen-van-binh"}
    for clean in ("Thái Bình — “quoted” café", "Ánh sáng", "Í, Ì and Ã stand alone here"):
        assert repair_text(clean) == clean
