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

Deno.test("several images: a group's PCs get its image; imaged is judged against that image", () => {
  const OFFICE = "cd".repeat(32);
  const g = parseGroups(
    "[games]\nmac = 52:54:00:00:00:01\n[office]\nimage = office\nmacs = 52:54:00:00:00:02\n",
    "g.conf",
    () => "",
  );
  const images = new Map([["games", ID], ["office", OFFICE]]);
  const s = store();
  const e = new Enrolment(g, false, ID, s, images);
  assert.deepEqual(e.decide("52:54:00:00:00:01", 0), { action: "image", group: "games" });
  assert.deepEqual(e.decide("52:54:00:00:00:02", 0), {
    action: "image",
    group: "office",
    imageId: OFFICE,
  });
  assert.equal(e.imageOf("52:54:00:00:00:02"), OFFICE);
  // Imaged with the default image is not imaged with the office one.
  s.imaged.set("52:54:00:00:00:02", ID);
  assert.equal(e.decide("52:54:00:00:00:02", 0).action, "image");
  s.imaged.set("52:54:00:00:00:02", OFFICE);
  assert.deepEqual(e.decide("52:54:00:00:00:02", 0), { action: "local", reason: "imaged" });
  // A PC enrolled into the office group through a window is one of its members.
  s.windows.set("52:54:00:00:00:03", "office");
  assert.equal(e.imageOf("52:54:00:00:00:03"), OFFICE);
  assert.deepEqual(
    e.membersOf("office", (grp) => [...s.windows].filter(([, x]) => x === grp).map(([m]) => m)),
    ["52:54:00:00:00:02", "52:54:00:00:00:03"],
  );
  assert.throws(() => e.membersOf("art"), /Unknown group "art": not in the groups file/);
  assert.throws(
    () => new Enrolment(g, false, ID, s, new Map([["games", ID]])),
    /^TypeError: Group "office" names image "office", but this master serves "games" \(--image NAME=DIR\)$/,
  );
});
