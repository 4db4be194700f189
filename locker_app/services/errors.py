class DomainError(Exception):
    """A refusal to show the person in plain language. ``field`` names the form field
    it belongs to, when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return str(self.message)


class SoldOut(DomainError):
    pass


class NotFound(DomainError):
    pass
