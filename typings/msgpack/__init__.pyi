# Minimal stubs for the parts of msgpack that channels uses (msgpack ships no py.typed).
from typing import Any

# Packed values are arbitrary msgpack-serialisable objects.
def packb(o: Any, *, use_bin_type: bool = ..., strict_types: bool = ...) -> bytes: ...

# Unpacked values are whatever the bytes encode.
def unpackb(packed: bytes, *, raw: bool = ..., strict_map_key: bool = ..., use_list: bool = ...) -> Any: ...
