// The TFTP side on loopback: a client written here against RFC 1350/2347 reads files served
// by a Hono-like fetch, with and without options, through a lost ACK, and is refused clearly.
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { encodeAck, encodeRequest, negotiate, OP, parseRequest, routeOf } from "./tftp.ts";
import { serveTftp } from "./tftp_server.ts";

Deno.test("parseRequest and encodeRequest agree; options are case-insensitive", () => {
  const r = parseRequest(encodeRequest("/boot/vmlinuz", { BLKSIZE: "1432", tsize: "0" }));
  assert.deepEqual(r, {
    kind: "read",
    filename: "/boot/vmlinuz",
    mode: "octet",
    options: new Map([["blksize", "1432"], ["tsize", "0"]]),
  });
  assert.throws(() => parseRequest(new Uint8Array([0, 3, 0, 1])), /Bad TFTP request: opcode 3/);
  assert.throws(() => parseRequest(new Uint8Array([0, 1, 65, 66])), /not NUL-terminated/);
});

Deno.test("negotiate caps blksize at one frame and answers tsize only when known", () => {
  const asked = new Map([["blksize", "65464"], ["tsize", "0"], ["windowsize", "8"]]);
  assert.deepEqual(negotiate(asked, 1000), {
    blksize: 1468,
    oack: new Map([["blksize", "1468"], ["tsize", "1000"]]),
  });
  assert.deepEqual(negotiate(new Map([["tsize", "0"]]), undefined), { blksize: 512, oack: null });
  assert.deepEqual(negotiate(new Map(), 5), { blksize: 512, oack: null });
});

Deno.test("routeOf takes only /boot/ and never climbs out", () => {
  assert.equal(routeOf("boot/grub/52:54:00:12:34:56"), "/boot/grub/52:54:00:12:34:56");
  assert.equal(routeOf("/boot/vmlinuz"), "/boot/vmlinuz");
  assert.equal(routeOf("/api/v1/status"), null);
  assert.equal(routeOf("boot/../api/v1/status"), null);
  assert.equal(routeOf("boot/x?mac=1"), null);
});

/** A TFTP client: read `file`, ACK every block (except `dropAck` once), return the bytes. */
async function tftpGet(
  port: number,
  file: string,
  options: Record<string, string> = {},
  dropAck?: number,
): Promise<{ data?: Uint8Array; error?: string; oack?: string }> {
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  const chunks: Uint8Array[] = [];
  let blksize = Number(options.blksize ?? 512);
  let oack: string | undefined;
  let dropped = false;
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("client timed out")), 10_000);
      sock.on("message", (m: Uint8Array, rinfo: { port: number }) => {
        const op = (m[0] << 8) | m[1];
        const block = (m[2] << 8) | m[3];
        if (op === OP.ERROR) {
          clearTimeout(timer);
          resolve({ error: new TextDecoder().decode(m.subarray(4, m.length - 1)) });
        } else if (op === OP.OACK) {
          oack = new TextDecoder().decode(m.subarray(2)).replaceAll("\0", " ").trim();
          const b = /blksize (\d+)/.exec(oack);
          if (b) blksize = Number(b[1]);
          sock.send(encodeAck(0), rinfo.port, "127.0.0.1");
        } else if (op === OP.DATA) {
          if (block === dropAck && !dropped) {
            dropped = true; // the server must send this block again
            return;
          }
          if (block === chunks.length + 1) chunks.push(m.slice(4));
          const last = m.length - 4 < blksize;
          // The last ACK must leave before the socket closes.
          sock.send(encodeAck(block), rinfo.port, "127.0.0.1", () => {
            if (!last) return;
            clearTimeout(timer);
            const data = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
            let at = 0;
            for (const c of chunks) (data.set(c, at), at += c.length);
            resolve({ data, oack });
          });
        }
      });
      sock.send(encodeRequest(file, options), port, "127.0.0.1");
    });
  } finally {
    sock.close();
  }
}

Deno.test("serveTftp streams /boot routes block by block, options or not, through a lost ACK", async () => {
  const body = crypto.getRandomValues(new Uint8Array(3 * 1468 + 100));
  const seen: string[] = [];
  const events: string[] = [];
  const server = await serveTftp({
    hostname: "127.0.0.1",
    port: 0,
    timeoutMs: 200,
    fetch: (path) => {
      seen.push(path);
      if (path === "/boot/initrd") {
        return Promise.resolve(
          new Response(body, { headers: { "content-length": String(body.length) } }),
        );
      }
      if (path === "/boot/grub/52:54:00:12:34:56") {
        return Promise.resolve(new Response("echo hi\n"));
      }
      if (path === "/boot/empty") return Promise.resolve(new Response(new Uint8Array(1024)));
      return Promise.resolve(new Response("No such route\n", { status: 404 }));
    },
    log: (event) => events.push(event),
  });
  try {
    const big = await tftpGet(server.port, "/boot/initrd", { blksize: "1468", tsize: "0" }, 2);
    assert.equal(big.oack, `blksize 1468 tsize ${body.length}`);
    assert.deepEqual(big.data, body);
    const small = await tftpGet(server.port, "boot/grub/52:54:00:12:34:56");
    assert.equal(new TextDecoder().decode(small.data), "echo hi\n");
    // GRUB asks tsize and reads a file of unknown size as empty: a rendered answer (no
    // content-length) is measured first.
    const sized = await tftpGet(server.port, "boot/grub/52:54:00:12:34:56", {
      blksize: "1024",
      tsize: "0",
    });
    assert.equal(sized.oack, "blksize 1024 tsize 8");
    assert.equal(new TextDecoder().decode(sized.data), "echo hi\n");
    // Exactly two blocks of 512: a third, empty DATA says the file ended.
    assert.equal((await tftpGet(server.port, "/boot/empty")).data?.length, 1024);
    assert.deepEqual(await tftpGet(server.port, "/boot/nothing"), {
      error: 'No file "/boot/nothing": No such route',
    });
    assert.deepEqual(await tftpGet(server.port, "/etc/passwd"), {
      error: 'No file "/etc/passwd": only boot/... is served',
    });
    assert.deepEqual(seen, [
      "/boot/initrd",
      "/boot/grub/52:54:00:12:34:56",
      "/boot/grub/52:54:00:12:34:56",
      "/boot/empty",
      "/boot/nothing",
    ]);
    assert.ok(events.includes("tftp_sent") && events.includes("tftp_not_found"), events.join());
  } finally {
    await server.close();
  }
});
