"""Errors a user can fix. The CLI prints them as one clear message (never a traceback) and exits non-zero."""


class UserError(Exception):
    """Bad input: says what is wrong and how to fix it."""

    exit_code = 2

    def __init__(self, problem: str, fix: str = ""):
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}" + (f"\n  fix: {fix}" if fix else ""))


class GateFailed(UserError):
    """The data-validation gate found an error-level problem; downstream stages must not run."""

    exit_code = 3
