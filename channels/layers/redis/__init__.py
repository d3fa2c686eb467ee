"""Channel layers on Redis, wire-compatible with channels_redis 4.x.

``RedisChannelLayer`` keeps messages in Redis sorted sets (sharding, capacity,
expiry, groups, optional encryption); ``RedisPubSubChannelLayer`` carries them
over Redis Pub/Sub. ``channels.layers.redis.serializers`` holds the registry of
serializer formats both use. They need the ``redis`` extra.
"""

from __future__ import annotations

from channels.layers.redis import serializers
from channels.layers.redis._serializers import MAX_MESSAGE_SIZE
from channels.layers.redis.core import LayerConnectionError, RedisChannelLayer
from channels.layers.redis.pubsub import RedisPubSubChannelLayer
from channels.layers.redis.serializers import MessageDecodeError

__all__ = [
    "MAX_MESSAGE_SIZE",
    "LayerConnectionError",
    "MessageDecodeError",
    "RedisChannelLayer",
    "RedisPubSubChannelLayer",
    "serializers",
]
