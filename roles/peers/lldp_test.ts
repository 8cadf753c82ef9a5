import assert from "node:assert/strict";
import { parseLldpFrame, pcapFrames, switchName } from "./lldp.ts";

// Frames lldpd 1.0.16 (Debian 12) sent from a network namespace, captured with tcpdump -w:
// lldpd -d -I eth0 -S "Lab switch 2", then lldpcli "configure system hostname lab-sw2",
// "configure lldp tx-interval 1", "configure ports eth0 lldp portdescription 'port 7'",
// "configure lldp portidsubtype ifname".
const testdata = (name: string) =>
  Deno.readFileSync(new URL(`./testdata/${name}`, import.meta.url));

Deno.test("lldp: lldpd's frames, as captured: chassis, port, TTL, names", () => {
  const [first, second] = pcapFrames(testdata("lldpd_mac.pcap"));
  assert.deepEqual(parseLldpFrame(first), {
    source: "52:54:00:0a:0b:0c",
    chassis: { subtype: 4, value: "52:54:00:0a:0b:0c" },
    port: { subtype: 3, value: "52:54:00:0a:0b:0c" },
    ttl: 120,
    systemName: "vm",
    systemDescription: "Lab switch 2",
    portDescription: "eth0",
  });
  const renamed = parseLldpFrame(second);
  assert.equal(renamed.systemName, "lab-sw2");
  assert.equal(renamed.ttl, 4);
  assert.equal(switchName(renamed), "lab-sw2");
  const [ifname] = pcapFrames(testdata("lldpd_ifname.pcap"));
  assert.deepEqual(parseLldpFrame(ifname), {
    source: "52:54:00:0a:0b:0c",
    chassis: { subtype: 4, value: "52:54:00:0a:0b:0c" },
    port: { subtype: 5, value: "eth0" },
    ttl: 4,
    systemName: "lab-sw2",
    systemDescription: "Lab switch 2",
    portDescription: "port 7",
  });
  // Without a system name the chassis ID names the switch.
  assert.equal(
    switchName({ ...parseLldpFrame(first), systemName: undefined }),
    "52:54:00:0a:0b:0c",
  );
});

Deno.test("lldp: a VLAN-tagged frame parses; broken frames say what is wrong", () => {
  const [frame] = pcapFrames(testdata("lldpd_ifname.pcap"));
  const tagged = new Uint8Array(frame.length + 4);
  tagged.set(frame.subarray(0, 12));
  tagged.set([0x81, 0x00, 0x00, 0x0a], 12);
  tagged.set(frame.subarray(12), 16);
  assert.equal(parseLldpFrame(tagged).port.value, "eth0");
  const bad: [Uint8Array, RegExp][] = [
    [frame.subarray(0, 10), /10 bytes is shorter than Ethernet/],
    [Uint8Array.from([...frame.subarray(0, 12), 0x08, 0x00, ...frame.subarray(14)]), /0x0800/],
    [frame.subarray(0, 40), /runs past the end|no End TLV/],
    // Port ID first: the chassis ID must lead.
    [Uint8Array.from([...frame.subarray(0, 14), 0x04, 0x01, 0x05, 0, 0]), /TLV 1 is type 2/],
  ];
  for (const [bytes, message] of bad) assert.throws(() => parseLldpFrame(bytes), message);
  assert.throws(() => pcapFrames(new Uint8Array(30)), /Invalid pcap: magic/);
});
