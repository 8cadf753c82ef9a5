// A bare chunk server over a slices folder, without master or control session: for
// benchmarks and for poking at the data protocol by hand (`curl URL/v1/image > disk`).
//   deno run -A scripts/serve_slices.ts SLICES_DIR [--hostname H] [--port N] [--wait-ms N]
// Prints the URL on the first line of stdout once listening; SIGINT/SIGTERM close it gracefully.
import { parseArgs } from "node:util";
import { makeLogger, silentLogger } from "../imagetools/kit/mod.ts";
import { openSlicesSource } from "../roles/data/mod.ts";
import { startChunkServer } from "../roles/data/mod.ts";

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      hostname: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "0" },
      "wait-ms": { type: "string", default: "30000" },
      verbose: { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 1) {
    console.error(
      "usage: serve_slices.ts SLICES_DIR [--hostname H] [--port N] [--wait-ms N] [--verbose]",
    );
    Deno.exit(2);
  }
  const source = await openSlicesSource(positionals[0]);
  const server = await startChunkServer({
    source,
    hostname: values.hostname,
    port: Number(values.port),
    waitMs: Number(values["wait-ms"]),
    log: values.verbose ? makeLogger("serve") : silentLogger,
  });
  console.log(server.url);
  const stop = async () => {
    await server.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
