"""A producer in a process of its own, for test_dedupe_processes.py: connects as the
environment says (REDIS_URL, ARQD_KEY_PREFIX), says ``ready``, and on ``go`` (stdin)
fires ``argv[2]`` concurrent enqueues with the dedupe key ``argv[1]`` (until_finished),
then prints the ids it got back, one a line."""

import asyncio
import sys

from arqd.client import Client
from arqd.core.dedupe import Dedupe


async def main(key: str, count: int) -> None:
    async with Client.from_settings() as client:
        await client.store.redis.ping()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        once = Dedupe(key, "until_finished")
        tasks = await asyncio.gather(*(client.enqueue("job", n, dedupe=once) for n in range(count)))
        print("\n".join(task.id for task in tasks), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
