"""Where NiceGUI spends a page's time on work whose answer never changes, that work is done once.

Every element NiceGUI makes has three observable collections (its classes, style and props), and each asks
``helpers.expects_arguments`` whether its change handler — the element's bound ``_update`` method — takes
arguments: a full ``inspect.signature`` of the same few methods for every element of every page. Under fifty API
clients that was 43 % of the home page's build (py-spy), and the page took 0.5–0.7 s to come back after a sign-in.
A bound method's signature is its function's less the first parameter, so the answer is kept per function; any
other callable (a lambda made per element, a partial) is asked as before."""

from __future__ import annotations

import types
import weakref
from collections.abc import Callable
from typing import Any

from nicegui import helpers

_installed = False


def memoised(original: Callable[[Callable[..., Any]], bool]) -> Callable[[Callable[..., Any]], bool]:
    """``original`` (``expects_arguments``) answering a bound method once per function it binds."""
    answers: weakref.WeakKeyDictionary[types.FunctionType, bool] = weakref.WeakKeyDictionary()

    def expects_arguments(func: Callable[..., Any]) -> bool:
        if not (isinstance(func, types.MethodType) and isinstance(func.__func__, types.FunctionType)):
            return original(func)
        known = answers.get(func.__func__)
        if known is None:
            known = answers[func.__func__] = original(func)
        return known

    return expects_arguments


def install() -> None:
    """Replace ``nicegui.helpers.expects_arguments`` (read as ``helpers.expects_arguments`` wherever NiceGUI calls
    it) with its ``memoised`` form; once per process."""
    global _installed
    if not _installed:
        helpers.expects_arguments = memoised(helpers.expects_arguments)  # type: ignore[assignment]
        _installed = True
