"""The event store's JSON transcoding, made safe for arbitrary client JSON.

The library marks its own types (UUID, datetime) as {"_type_": name, "_data_": value}, and
decodes EVERY two-key object of that shape as one. A client payload shaped like that would be
turned into something else, or fail to load at all. So client objects of that shape are
escaped on the way in as {"_type_": "jobtrail_object", "_data_": [[key, value], ...]} (lists
are never decoded as types) and restored on the way out.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

_MARK = '"_type_"'
_ESCAPED = "jobtrail_object"


class _EscapedObject(Transcoding):
    type = type(None)  # never chosen by type: only ever produced by _escape below
    name = _ESCAPED

    def encode(self, obj: Any) -> Any:
        raise NotImplementedError

    def decode(self, data: list[list[Any]]) -> dict[str, Any]:
        return {key: value for key, value in data}


class SafeJSONTranscoder(JSONTranscoder):
    def __init__(self) -> None:
        super().__init__()
        # As the library's, but refusing NaN and infinities (which it would write as bare
        # `NaN`/`Infinity`, not JSON): nothing that is not JSON is ever stored.
        self.encoder = json.JSONEncoder(
            default=self._encode_obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        self.names[_ESCAPED] = _EscapedObject()
        self._local = threading.local()

    def encode(self, obj: Any) -> bytes:
        self._local.typed = 0
        text = self.encoder.encode(obj)
        # Every library-typed value writes the key once; any other "_type_" is client data.
        # Rare, so the walk below is only paid when the text says it is needed.
        if text.count(_MARK) != self._local.typed:
            text = self.encoder.encode(_escape(obj))
        return text.encode("utf8")

    def _encode_obj(self, o: Any) -> dict[str, Any]:
        self._local.typed += 1
        return super()._encode_obj(o)


def _escape(value: Any) -> Any:
    if isinstance(value, dict):
        escaped = {key: _escape(item) for key, item in value.items()}
        if len(escaped) == 2 and "_type_" in escaped and "_data_" in escaped:
            return {"_type_": _ESCAPED, "_data_": [[k, v] for k, v in escaped.items()]}
        return escaped
    if isinstance(value, list | tuple):
        return [_escape(item) for item in value]
    return value
