from django.core.exceptions import ValidationError


class ConflictError(Exception):
    """The key already exists with different data: nothing was changed."""

    def __init__(self, message: str, *, field: str = "external_id") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ProtectedChange(ConflictError):
    """The change would undo an opt-out or a do-not-call: nothing was changed."""

    def __init__(self, refused: dict[str, str]) -> None:
        field, message = next(iter(refused.items()))
        super().__init__(" ".join(refused.values()), field=field)
        self.refused = refused


class ItemErrors(ValidationError):
    """Errors of a batch, each naming its item by index and field; nothing of the batch was written."""

    def __init__(self, errors: list[dict]) -> None:
        self.item_errors = sorted(errors, key=lambda e: (e["index"], e["field"]))
        super().__init__([f"item {e['index']}: {e['field']}: {e['message']}" for e in self.item_errors])

    @property
    def only_conflicts(self) -> bool:
        return all(e.get("code") == "conflict" for e in self.item_errors)
