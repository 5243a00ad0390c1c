"""NiceGUI's question "does this change handler take arguments?" is answered once per method, with the answer
NiceGUI itself gives (kehu.ui.nicegui_speedups)."""

from __future__ import annotations

import functools

from nicegui.helpers.functions import expects_arguments as original  # NiceGUI's own (install patches helpers)

from kehu.ui import nicegui_speedups


class _Handlers:
    def takes_one(self, event: object) -> None: ...

    def takes_none(self) -> None: ...

    def takes_optional(self, event: object = None) -> None: ...

    def takes_any(self, *args: object, **kwargs: object) -> None: ...


def _plain(event: object) -> None: ...


def test_the_answers_are_niceguis_own():
    memoised = nicegui_speedups.memoised(original)
    first, second = _Handlers(), _Handlers()
    callables = [first.takes_one, second.takes_one, first.takes_none, first.takes_optional, first.takes_any, _plain,
                 lambda: None, lambda event: None, functools.partial(_plain, 1), print]
    for handler in callables * 2:  # asked twice: the kept answer is the same
        assert memoised(handler) == original(handler), handler


def test_each_method_is_inspected_once_however_many_elements_ask():
    asked: list[object] = []

    def counting(func):  # type: ignore[no-untyped-def]
        asked.append(func)
        return original(func)

    memoised = nicegui_speedups.memoised(counting)
    for _ in range(200):  # two hundred elements, each with its own bound handlers
        element = _Handlers()
        assert memoised(element.takes_one) is True
        assert memoised(element.takes_none) is False
    assert len(asked) == 2
    assert memoised(lambda event: None) is True and len(asked) == 3  # a lambda is asked as before
