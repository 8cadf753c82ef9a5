// A latency probe in a worker of its own: GET a URL every `every` ms and keep each answer's
// time. bench_dashboard.ts runs it off its main thread, where 1,500 emulated PCs live: a probe
// timed there also timed that thread's own backlog, not only the master's.
//
//   const p = startProbe("http://127.0.0.1:8080/api/v1/image", 100);
//   p.reset(); ...; const { max, p99, median, n } = await p.end();

export interface ProbeFigures {
  max: number;
  p99: number;
  median: number;
  n: number;
}

/** The largest, 99th percentile and median of `times` (ms); a failed request is Infinity. */
export function latencyFigures(times: number[]): ProbeFigures {
  const s = [...times].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { max: s.at(-1) ?? NaN, p99: at(0.99), median: at(0.5), n: s.length };
}

export function startProbe(url: string, every: number) {
  const worker = new Worker(import.meta.url, { type: "module" });
  worker.postMessage({ type: "start", url, every });
  return {
    reset: () => worker.postMessage({ type: "reset" }),
    end: () =>
      new Promise<ProbeFigures>((resolve) => {
        worker.onmessage = (e: MessageEvent<number[]>) => {
          worker.terminate();
          resolve(latencyFigures(e.data));
        };
        worker.postMessage({ type: "end" });
      }),
  };
}

type ProbeMessage = { type: "start"; url: string; every: number } | { type: "reset" | "end" };

// In the worker: the loop itself.
if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  const scope = globalThis as unknown as {
    onmessage: ((e: MessageEvent<ProbeMessage>) => void) | null;
    postMessage(data: unknown): void;
  };
  let times: number[] = [];
  let stop = false;
  scope.onmessage = async (e) => {
    const m = e.data;
    if (m.type === "reset") times = [];
    if (m.type === "end") {
      stop = true;
      scope.postMessage(times);
    }
    if (m.type !== "start") return;
    while (!stop) {
      const t = performance.now();
      try {
        await (await fetch(m.url)).arrayBuffer();
        times.push(performance.now() - t);
      } catch {
        times.push(Infinity);
      }
      await new Promise((r) => setTimeout(r, m.every));
    }
  };
}
