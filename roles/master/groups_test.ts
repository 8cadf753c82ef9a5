import assert from "node:assert/strict";
import { parseGroups } from "./groups.ts";

const SCRIPTS: Record<string, string> = { "finish/hostname.sh": "echo $CASCADE_PC_NAME\n" };
const read = (p: string) => {
  if (!(p in SCRIPTS)) throw new Error(`No such file "${p}"`);
  return SCRIPTS[p];
};

Deno.test("parseGroups reads groups, MACs with names, rules, after, finish step and settings", () => {
  const g = parseGroups(
    `# Room 101
[room-101]
mac = 52:54:00:12:34:56 pc01   # the teacher's PC is not listed
macs = 52-54-00-12-34-57, 52:54:00:12:34:58
target = min:64GB,model:Samsung*
after = reboot
finish = finish/hostname.sh
set HOSTNAME_PREFIX = lab101

[spare]
macs = 52:54:00:00:00:01
`,
    "groups.conf",
    read,
  );
  assert.deepEqual(g.groups.map((x) => x.name), ["room-101", "spare"]);
  const room = g.groups[0];
  assert.deepEqual([...room.pcs], [
    ["52:54:00:12:34:56", "pc01"],
    ["52:54:00:12:34:57", ""],
    ["52:54:00:12:34:58", ""],
  ]);
  assert.equal(room.target, "min:64GB,model:Samsung*");
  assert.equal(room.after, "reboot");
  assert.deepEqual(room.finish, { name: "hostname.sh", script: "echo $CASCADE_PC_NAME\n" });
  assert.deepEqual(room.settings, { HOSTNAME_PREFIX: "lab101" });
  assert.equal(g.byMac.get("52:54:00:00:00:01")?.name, "spare");
  assert.equal(g.groups[1].target, undefined);
});

Deno.test("parseGroups: one clear error naming the line for each bad input", () => {
  const cases: [string, string][] = [
    ["mac = 52:54:00:12:34:56", 'line 1: "mac" comes before any "[group]" line'],
    ["[a b]", 'line 1: group name "a b" must be 1 to 64 of A-Z a-z 0-9 . _ -'],
    ["[a]\n[a]", 'line 2: group "a" is defined twice'],
    [
      "[a]\nmac = 52:54:00:12:34",
      'line 2: "52:54:00:12:34" is not a MAC address (expected aa:bb:cc:dd:ee:ff)',
    ],
    [
      "[a]\nmac = 52:54:00:12:34:56\n[b]\nmacs = x, 52-54-00-12-34-56",
      'line 4: "x" is not a MAC address (expected aa:bb:cc:dd:ee:ff)',
    ],
    [
      "[a]\nmac = 52:54:00:12:34:56\n[b]\nmacs = 52-54-00-12-34-56",
      'line 4: MAC "52:54:00:12:34:56" is already in group "a" (line 2)',
    ],
    [
      "[a]\ntarget = biggest",
      'line 2: Bad target "biggest": must be a device path such as /dev/sda or a target rule (term "biggest" is unknown (known: auto, path:, model:, min:, max:, usb, largest))',
    ],
    ["[a]\nafter = halt", 'line 2: Bad after "halt": must be one of serve, reboot, poweroff'],
    [
      "[a]\nfinish = nope.sh",
      'line 2: cannot read finishing step "nope.sh": No such file "nope.sh"',
    ],
    ["[a]\nset lower = 1", 'line 2: setting "lower" must be upper case (A-Z 0-9 _), not CASCADE_*'],
    [
      "[a]\nset CASCADE_MAC = 1",
      'line 2: setting "CASCADE_MAC" must be upper case (A-Z 0-9 _), not CASCADE_*',
    ],
    [
      "[a]\ncolour = red",
      'line 2: unknown key "colour" (known: mac, macs, target, after, image, finish, set)',
    ],
    ["[a]\njust words", 'line 2: "just words" is not "key = value" or "[group]"'],
    ["[a]\ntarget =", 'line 2: "target" has no value'],
    [
      "[a]\nmac = 52:54:00:12:34:56 pc01 extra",
      'line 2: "mac = 52:54:00:12:34:56 pc01 extra": expected a MAC and at most a PC name',
    ],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseGroups(text, "g.conf", read), {
      name: "SyntaxError",
      message: `Bad groups file "g.conf" ${message}`,
    }, text);
  }
});

Deno.test("parseGroups: a group names its image; a bad name is one clear error", () => {
  const g = parseGroups(
    "[office]\nimage = office-2026\nmacs = 52:54:00:00:00:02\n",
    "g.conf",
    () => "",
  );
  assert.equal(g.groups[0].image, "office-2026");
  assert.throws(
    () => parseGroups("[office]\nimage = my office\n", "g.conf", () => ""),
    /^SyntaxError: Bad groups file "g.conf" line 2: image "my office" must be an image name/,
  );
});
