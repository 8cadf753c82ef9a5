// LLDP without tcpdump: a frame lldpd sent (captured in roles/peers/testdata) goes out of one end
// of a veth pair in a network namespace of this test's own, and listenLldp on the other end hears
// the switch and port through its packet socket (libc through Deno's FFI). Root only (netns,
// CAP_NET_RAW); the child runs inside the namespace.
import assert from "node:assert/strict";
import { listenLldp, LldpSocket, parseLldpFrame, pcapFrames } from "../roles/peers/mod.ts";

const ignore = Deno.build.os !== "linux" || Deno.uid() !== 0;
const capture = new URL("../roles/peers/testdata/lldpd_ifname.pcap", import.meta.url);

async function ip(...args: string[]) {
  const out = await new Deno.Command("ip", { args, stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

// Child mode (inside the namespace): listen on veth-b, send the captured frame on veth-a.
if (import.meta.main && Deno.args[0] === "--child") {
  const frame = pcapFrames(Deno.readFileSync(capture))[0];
  const lines: string[] = [];
  const heard = listenLldp("veth-b", 5, (event, fields) => {
    lines.push(`${event} ${JSON.stringify(fields)}`);
  });
  const tx = new LldpSocket("veth-a");
  setTimeout(() => tx.send(frame), 300);
  const n = await heard;
  tx.close();
  console.log(JSON.stringify({ neighbor: n, log: lines }));
  Deno.exit(0);
}

Deno.test({
  name: "LLDP: a packet socket hears the switch and port of a real lldpd frame (no tcpdump)",
  ignore,
  async fn() {
    const ns = `cascade-lldp-${Deno.pid}`;
    await ip("netns", "add", ns);
    try {
      await ip("-n", ns, "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b");
      await ip("-n", ns, "link", "set", "veth-a", "up");
      await ip("-n", ns, "link", "set", "veth-b", "up");
      const out = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns,
          Deno.execPath(),
          "run",
          "-A",
          new URL(import.meta.url).pathname,
          "--child",
        ],
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      const { neighbor, log } = JSON.parse(text);
      // The frame arrived whole: it reads as the captured one does (lldp_test.ts checks that).
      const sent = pcapFrames(Deno.readFileSync(capture))[0];
      assert.deepEqual(neighbor, parseLldpFrame(sent));
      assert.equal(neighbor.systemName, "lab-sw2");
      // Heard through the socket: no fallback to tcpdump.
      assert.deepEqual(log, [
        'lldp {"iface":"veth-b","chassis":"52:54:00:0a:0b:0c","port":"eth0","system":"lab-sw2"}',
      ]);
    } finally {
      await ip("netns", "del", ns);
    }
  },
});

Deno.test("LLDP: an interface that does not exist is one clear error naming it", () => {
  assert.throws(
    () => new LldpSocket("no-such-if0"),
    (e: unknown) =>
      (e as Error).message ===
        'Cannot find the interface for LLDP on "no-such-if0": No such device',
  );
});
