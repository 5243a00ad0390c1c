"""Where the sign-in page sends a visitor afterwards: back to the page of this site they asked for, never to
another site (an open redirect would lend kehu's address to a phishing link)."""

from __future__ import annotations

import pytest

from kehu.ui.sign_in import NEXT_LENGTH, local_target, login_url


@pytest.mark.parametrize("asked", ["/customers", "/customers/12?tab=orders", "/leads?q=%E7%8E%8B", "/"])
def test_a_page_of_this_site_is_kept(asked: str) -> None:
    assert local_target(asked) == asked


@pytest.mark.parametrize("asked", [
    None, "", "customers", "https://evil.example/", "//evil.example", "///evil.example", "/\\evil.example",
    "/x\\y", "\\\\evil.example", "javascript:alert(1)", "/a\nb", "/a\x00b", "/a\x7fb", "/login",
    "/login/?next=/x", "/login?next=//evil.example", "/" + "a" * NEXT_LENGTH])
def test_anything_else_goes_home(asked: str | None) -> None:
    assert local_target(asked) == "/"


def test_the_sign_in_address_carries_the_page_to_come_back_to() -> None:
    assert login_url("/") == "/login"
    assert login_url(None, lang="en") == "/login?lang=en"
    assert login_url("/customers?q=王") == "/login?next=%2Fcustomers%3Fq%3D%E7%8E%8B"
    assert login_url("//evil.example", lang="zh") == "/login?lang=zh"
