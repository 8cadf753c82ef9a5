import assert from "node:assert/strict";
import { Enrolment, type EnrolmentStore } from "./enrolment.ts";
import { parseGroups } from "./groups.ts";

const ID = "ab".repeat(32);
const groups = parseGroups(
  "[lab]\nmac = 52:54:00:00:00:01 pc01\ntarget = auto,usb\nafter = reboot\n" +
    "finish = f.sh\nset PREFIX = lab\n[other]\nmacs = 52:54:00:00:00:09\n",
  "g.conf",
  () => "echo done\n",
);

function store(): EnrolmentStore & { imaged: Map<string, string>; windows: Map<string, string> } {
  const imaged = new Map<string, string>();
  const windows = new Map<string, string>();
  return {
    imaged,
    windows,
    imagedWith: (mac) => imaged.get(mac) ?? null,
    enrolledAs: (mac) => windows.get(mac) ?? null,
    enrol: (mac, group) => void windows.set(mac, group),
  };
}

Deno.test("only enrolled PCs are imaged; strangers and imaged PCs boot their disk", () => {
  const s = store();
  const e = new Enrolment(groups, false, ID, s);
  assert.deepEqual(e.decide("52:54:00:00:00:01", 0), {
    action: "image",
    group: "lab",
    target: "auto,usb",
    after: "reboot",
  });
  assert.deepEqual(e.decide("52:54:00:00:00:09", 0), { action: "image", group: "other" });
  assert.deepEqual(e.decide("52:54:00:00:00:77", 0), { action: "local", reason: "not-enrolled" });
  s.imaged.set("52:54:00:00:00:01", ID);
  assert.deepEqual(e.decide("52:54:00:00:00:01", 0), { action: "local", reason: "imaged" });
  // Imaged with another image: imaged again.
  s.imaged.set("52:54:00:00:00:01", "cd".repeat(32));
  assert.equal(e.decide("52:54:00:00:00:01", 0).action, "image");
});

Deno.test("an enrolment window enrols every PC that boots before it closes, and remembers it", () => {
  const s = store();
  const e = new Enrolment(groups, false, ID, s);
  e.openWindow(600, "lab");
  assert.deepEqual(e.decide("52:54:00:00:00:50", 10), {
    action: "image",
    group: "lab",
    target: "auto,usb",
    after: "reboot",
  });
  assert.deepEqual([...s.windows], [["52:54:00:00:00:50", "lab"]]);
  // After the window: a new PC is a stranger, the one enrolled in it stays enrolled.
  assert.equal(e.decide("52:54:00:00:00:51", 601).action, "local");
  assert.equal(e.decide("52:54:00:00:00:50", 601).action, "image");
  assert.throws(() => e.openWindow(10, "nope"), /Unknown group "nope": not in the groups file/);
  e.openWindow(700);
  assert.deepEqual(e.decide("52:54:00:00:00:52", 650), { action: "image" });
});

Deno.test("--enrol all images every PC; finishing steps carry the group's settings", () => {
  const e = new Enrolment(undefined, true, ID, store());
  assert.deepEqual(e.decide("52:54:00:00:00:77", 0), { action: "image" });
  const g = new Enrolment(groups, false, ID, store());
  assert.deepEqual(g.finishStep("52:54:00:00:00:01"), {
    group: "lab",
    name: "f.sh",
    script: "echo done\n",
    env: { PREFIX: "lab", CASCADE_GROUP: "lab", CASCADE_PC_NAME: "pc01" },
  });
  assert.equal(g.finishStep("52:54:00:00:00:09"), undefined);
});
