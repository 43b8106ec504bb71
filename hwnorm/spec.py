"""Identity of frozen specs: two specs are the same iff their serialized forms are."""

from __future__ import annotations

import hashlib
import json


def content_hash(doc: dict) -> str:
    """Short sha256 of a spec's canonical JSON (stable across runs and machines)."""
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class SpecIdentity:
    """Equality, hashing and ``spec_hash`` derived from ``to_dict()`` (for frozen spec dataclasses
    declared with ``eq=False``, whose numpy fields would break the generated ``__eq__``)."""

    def to_dict(self) -> dict:
        raise NotImplementedError

    @property
    def spec_hash(self) -> str:
        return content_hash(self.to_dict())

    def __eq__(self, other):
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(self.spec_hash)
