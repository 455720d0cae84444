"""One line that names an exception: what a one-line error message quotes of it."""


def error_summary(error: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message`` (cut at ``limit`` characters)."""
    first = (str(error).splitlines() or [''])[0]
    return f'{type(error).__name__}: {first[:limit]}'
