"""Which passwords kehu accepts: long enough and not on a list of passwords attackers try first.

The list is the 30,000 most common passwords of the Xato corpus (ten million leaked passwords) as the maintained
``zxcvbn`` package ships it (Dropbox's estimator, ported to Python), plus a few dozen that top the Chinese leaks
(CSDN, 12306, Tianya) and are missing from it. An offline list, not a breach API: dealers' servers may have no
way out to the internet, and a sign-up must not send anything of a password anywhere."""

from __future__ import annotations

import functools

from kehu.core.errors import invalid

MIN_LENGTH = 10  # NIST SP 800-63B asks for at least 8; 10 keeps every 8- and 9-digit date or phone tail out
MAX_LENGTH = 200

# Common in Chinese leaks and not in the Xato list: pinyin phrases, love-number codes, keyboard walks.
_CHINESE_COMMON = """
woaini1314 woaini520 woaini123 woaini1234 5201314520 1314520520 520131400 1314521521 iloveyou1314
aini1314520 wodemima woshishui 12345678910 123456789a a1234567890 147258369a 1472583690 123456789q
qwe1234567 asd1234567 zxc1234567 qaz1234567 1q2w3e4r5t 1qaz2wsx3edc qwertyuiop1 110110110110 nihao123456
zhang123456 wang123456 li123456789 liu123456789 chen123456 huang12345 zhanglei123 wangwei123 dearbook123
xiazhili123 88888888888 66666666666 1234512345 0123456789 9876543210 1111122222 1122334455 a123456789
""".split()


@functools.cache
def _common() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # 1 MB of lists: loaded when a password is first set

    return frozenset(FREQUENCY_LISTS["passwords"]) | frozenset(_CHINESE_COMMON)


def password_problem(password: str, *, email: str = "") -> str | None:
    """Why ``password`` is refused, or None. Case does not make a common password uncommon."""
    if len(password) < MIN_LENGTH:
        return f"at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"at most {MAX_LENGTH} characters"
    folded = password.casefold()
    if folded in _common():
        return "one of the most common passwords; choose another"
    local = email.casefold().partition("@")[0]
    if local and len(local) >= 4 and (folded == local or folded == email.casefold()):
        return "must not be the e-mail address"
    if len(set(folded)) < 3:
        return "too few different characters"
    return None


def check_new_password(password: str, *, email: str = "", field: str = "password") -> None:
    """Refuse a password a user may not choose (422 on ``field``)."""
    problem = password_problem(password, email=email)
    if problem is not None:
        raise invalid(field, problem, "weak_password")

