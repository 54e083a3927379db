// BullMQ's side of the arqd side-by-side benchmark: what bench/peers/common.py is for the
// Python peers. The job: with `t` in its payload, RPUSH its enqueue-to-start latency
// (seconds) to `k`, else one INCR on `k`. Both sides read the machine's monotonic clock.
import { Redis } from "ioredis";

export const settings = () => ({
  url: process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379/0",
  queue: process.env.BENCH_QUEUE ?? "bench",
  concurrency: Number(process.env.BENCH_CONCURRENCY ?? 1),
});

// Seconds on CLOCK_MONOTONIC, shared by every process of this machine.
export const now = () => Number(process.hrtime.bigint()) / 1e9;

export const connection = () => new Redis(settings().url, { maxRetriesPerRequest: null });
