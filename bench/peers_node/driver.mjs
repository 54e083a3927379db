// node bench/peers_node/driver.mjs enqueue|produce [--tasks N --mode one|batch --batch B
//   --rate R --seconds S --key K]: the commands of bench/peers/common.py, one JSON line out.
import { Queue } from "bullmq";
import { connection, now, settings } from "./common.mjs";

const WARMUP = 0.5;
const sleep = (s) => new Promise((resolve) => setTimeout(resolve, Math.max(0, s * 1000)));

function parse(argv) {
  const args = { tasks: 20000, mode: "one", batch: 1000, rate: 500, seconds: 10, key: "bench:counter" };
  args.command = argv[0];
  for (let i = 1; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, "");
    args[name] = ["mode", "key"].includes(name) ? argv[i + 1] : Number(argv[i + 1]);
  }
  return args;
}

const usedMemory = async (r) => Number(/used_memory:(\d+)/.exec(await r.info("memory"))[1]);

async function enqueue(queue, r, { tasks, mode, key, batch }) {
  await queue.add("job", { k: `${key}:warm` });
  const before = await usedMemory(r);
  const data = { k: key };
  const start = performance.now();
  if (mode === "batch") {
    for (let i = 0; i < tasks; i += batch) {
      const n = Math.min(batch, tasks - i);
      await queue.addBulk(Array.from({ length: n }, () => ({ name: "job", data })));
    }
  } else {
    for (let i = 0; i < tasks; i++) await queue.add("job", data);
  }
  const seconds = (performance.now() - start) / 1000;
  const grown = (await usedMemory(r)) - before;
  return { tasks, seconds, bytes_per_task: grown / tasks };
}

async function steady(queue, rate, seconds, key) {
  const total = Math.round(rate * seconds);
  let sent = 0;
  const start = performance.now() / 1000;
  while (sent < total && performance.now() / 1000 - start < seconds) {
    const due = Math.min(total, Math.floor((performance.now() / 1000 - start) * rate) + 1);
    if (due - sent > 1) {
      const data = { t: now(), k: key };
      await queue.addBulk(Array.from({ length: due - sent }, () => ({ name: "job", data })));
    } else if (due > sent) {
      await queue.add("job", { t: now(), k: key });
    }
    sent = Math.max(sent, due);
    await sleep(start + sent / rate - performance.now() / 1000);
  }
  return [sent, performance.now() / 1000 - start];
}

async function produce(queue, { rate, seconds, key }) {
  await steady(queue, rate, WARMUP, `${key}:warm`);
  const [sent, took] = await steady(queue, rate, seconds, key);
  return { sent, seconds: took };
}

const args = parse(process.argv.slice(2));
const queue = new Queue(settings().queue, { connection: connection() });
const r = connection();
const result = args.command === "enqueue" ? await enqueue(queue, r, args) : await produce(queue, args);
await queue.close();
await r.quit();
console.log(JSON.stringify(result));
process.exit(0); // the connection handed to the Queue is ours to close: do not wait on it
