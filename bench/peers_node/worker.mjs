// One BullMQ Worker process: node bench/peers_node/worker.mjs (BENCH_CONCURRENCY slots).
import { Worker } from "bullmq";
import { connection, now, settings } from "./common.mjs";

const { queue, concurrency } = settings();
const redis = connection();

const worker = new Worker(
  queue,
  async (job) => {
    const started = now();
    const p = job.data;
    if (p.t !== undefined) await redis.rpush(p.k, started - p.t);
    else await redis.incr(p.k);
  },
  { connection: connection(), concurrency },
);

const stop = async () => {
  await worker.close();
  await redis.quit();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
