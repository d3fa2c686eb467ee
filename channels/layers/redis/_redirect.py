"""Commands on a Redis Cluster that follow slot migrations, which redis-py's client does not.

:func:`cluster_command` runs one command and :func:`cluster_pipeline` a batch
on one slot, at the node the client's slot map names, and follow the
redirections themselves: MOVED patches the map, TRYAGAIN waits a moment, and
ASK (a key a migration has moved already) sends ASKING and the command in
one write on one connection. redis-py 8.1's async client sends those two on
two connections of the target's pool: with more than one free, as under
concurrent traffic, the command arrives without ASKING (the target answers
MOVED back to the source until redis-py gives up with "TTL exhausted"), and
the stray ASKING lets a later, unrelated command write to a slot the target
does not own yet. A connection that cannot be made or is lost hands the
command to redis-py, which reloads the slot map and retries as for any
command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final, cast

from redis.asyncio.cluster import PipelineCommand, RedisCluster
from redis.crc import key_slot
from redis.exceptions import AskError, ClusterDownError, ClusterError, MovedError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["REFUSED", "cluster_command", "cluster_pipeline"]

REFUSED: Final = (AskError, TryAgainError, ClusterDownError)
"""What a node answers for a command it did not run: slot elsewhere (MOVED, ASK), moving, down."""

_REDIRECTIONS: Final = 16
"""Redirections :func:`cluster_command` follows for one command, as redis-py does."""
_TRY_AGAIN_PAUSE: Final = 0.05
"""Seconds before a command answered TRYAGAIN (a slot's keys half migrated) is sent again."""
_LOST: Final = (RedisConnectionError, RedisTimeoutError, OSError)
"""What a node that cannot be reached, or drops the connection, raises."""


async def cluster_command(cluster: RedisCluster, key: str, *args: str | bytes | float) -> object:
    """Run the command ``args``, whose keys share ``key``'s slot, on ``cluster``; its reply.

    The reply is as redis-py parses it. The command goes to the node the
    client's slot map names, and redirections are followed here: MOVED
    patches the map, TRYAGAIN waits a moment, and ASK (a key a slot
    migration has moved already) sends ASKING and the command in one write on
    one connection of the target. redis-py 8.1's async client sends the two
    on two connections of the target's pool: with more than one free, as
    under concurrent traffic, the command arrives without ASKING (the target
    answers MOVED back to the source, until redis-py gives up with "TTL
    exhausted"), and the ASKING left on the other connection lets a later,
    unrelated command write to a slot the target does not own yet. A
    connection that cannot be made or is lost hands the command to redis-py,
    which reloads the slot map and retries as it does for any command.
    """
    _ = await cluster.initialize()  # a no-op once the slot map is known
    slot = key_slot(key.encode("utf-8"))
    # redis-py leaves one optional parameter's type unresolved; it is not passed.
    node = cluster.nodes_manager.get_node_from_slot(slot)  # pyright: ignore[reportUnknownMemberType]
    asking = False
    for _ in range(_REDIRECTIONS):
        commands = [PipelineCommand(0, "ASKING")] if asking else []
        commands.append(PipelineCommand(len(commands), *args))
        try:
            _ = await node.execute_pipeline(commands)
        except _LOST:
            return cast(object, await cluster.execute_command(*args))
        # redis-py types a command's result as Any.
        result = cast(object, commands[-1].result)
        if isinstance(result, MovedError):
            await cluster.nodes_manager.move_slot(result)
            node = cluster.nodes_manager.get_node_from_slot(slot)  # pyright: ignore[reportUnknownMemberType]
            asking = False
        elif isinstance(result, AskError):
            # redis-py sets these in AskError.__init__, the host unannotated.
            host = cast(str, result.host)  # pyright: ignore[reportUnknownMemberType]
            target = cluster.get_node(host=host, port=result.port)
            if target is None:
                raise result
            node, asking = target, True
        elif isinstance(result, TryAgainError):
            await asyncio.sleep(_TRY_AGAIN_PAUSE)
        elif isinstance(result, _LOST):
            return cast(object, await cluster.execute_command(*args))
        elif isinstance(result, BaseException):
            raise result
        else:
            return result
    raise ClusterError(f"{args[0]!r} on slot {slot} was redirected {_REDIRECTIONS} times")


async def cluster_pipeline(
    cluster: RedisCluster, key: str, commands: Sequence[Sequence[str | bytes | float]]
) -> None:
    """Run ``commands``, all on ``key``'s slot, in one round trip to its node.

    A command the node redirected (MOVED,
    ASK, TRYAGAIN) had not run there, and runs again alone through
    :func:`cluster_command`; after a lost connection redis-py runs each
    command again, as it would retry any. Raises the first other error.
    """
    _ = await cluster.initialize()  # a no-op once the slot map is known
    # redis-py leaves one optional parameter's type unresolved; it is not passed.
    node = cluster.nodes_manager.get_node_from_slot(key_slot(key.encode("utf-8")))  # pyright: ignore[reportUnknownMemberType]
    batch = [PipelineCommand(position, *command) for position, command in enumerate(commands)]
    try:
        _ = await node.execute_pipeline(batch)
    except _LOST:
        for command in commands:
            _ = await cluster.execute_command(*command)
        return
    for command, done in zip(commands, batch, strict=True):
        # redis-py types a command's result as Any.
        result = cast(object, done.result)
        if isinstance(result, AskError | TryAgainError):  # MOVED is an AskError
            _ = await cluster_command(cluster, key, *command)
        elif isinstance(result, _LOST):
            _ = await cluster.execute_command(*command)
        elif isinstance(result, BaseException):
            raise result
