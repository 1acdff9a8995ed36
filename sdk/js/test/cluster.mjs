// Starts Tests/Cluster/cluster.py (a broker, a topic, gateway nodes and a
// steady producer) and drives it line by line.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

export class Cluster {
  #process;
  #lines;

  static async start({ nodes = 2, partitions = 4, overrides = {} } = {}) {
    const cluster = new Cluster();
    cluster.#process = spawn(path.join(ROOT, ".venv/bin/python"),
      [path.join(ROOT, "Tests/Cluster/cluster.py"), "--nodes", String(nodes), "--partitions", String(partitions),
        "--overrides", JSON.stringify(overrides)],
      { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
    cluster.#lines = createInterface({ input: cluster.#process.stdout })[Symbol.asyncIterator]();
    const description = await cluster.#next();
    Object.assign(cluster, description);
    return cluster;
  }

  async #next() {
    const { value, done } = await this.#lines.next();
    if (done) throw new Error("the cluster process ended");
    return JSON.parse(value);
  }

  /** Sends one command and returns its answer. */
  async command(body) {
    this.#process.stdin.write(JSON.stringify(body) + "\n");
    const answer = await this.#next();
    if (!answer.ok) throw new Error(`cluster: ${answer.error}`);
    return answer;
  }

  /** Stops everything; throws when a gateway's log holds a sanitizer report. */
  async stop() {
    const exited = new Promise((resolve) => this.#process.once("exit", resolve));
    this.#process.stdin.write(JSON.stringify({ cmd: "quit" }) + "\n");
    this.#process.stdin.end();
    const last = await this.#next();
    await exited;
    if (!last.ok) throw new Error(`cluster: ${last.error}`);
  }
}

/** Waits (polling every 10 ms) until `condition()` holds; throws naming `what` after `timeoutMs`. */
export async function until(what, condition, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
