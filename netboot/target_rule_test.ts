import assert from "node:assert/strict";
import { join } from "node:path";
import { chooseTarget, parseTargetRule } from "./target_rule.ts";
import { readSysBlock } from "./sys_block.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

interface FixtureDisk {
  name: string;
  bytes: number;
  removable?: boolean;
  model?: string;
  /** Device path under devices/ the /sys/block entry links to (USB disks: through usbN). */
  device?: string;
}

/** A /sys/block tree as the kernel lays it out: entries are links into devices/. */
async function withSysBlock(disks: FixtureDisk[], f: (root: string) => void | Promise<void>) {
  const top = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(top, "block"));
    for (const d of disks) {
      const dev = join(top, "devices", d.device ?? `pci0000:00/0000:00:01.0/block/${d.name}`);
      await Deno.mkdir(join(dev, "device"), { recursive: true });
      await Deno.writeTextFile(join(dev, "size"), `${d.bytes / 512}\n`);
      await Deno.writeTextFile(join(dev, "removable"), d.removable ? "1\n" : "0\n");
      await Deno.writeTextFile(join(dev, "ro"), "0\n");
      if (d.model) await Deno.writeTextFile(join(dev, "device", "model"), `${d.model}   \n`);
      await Deno.symlink(dev, join(top, "block", d.name));
    }
    await f(join(top, "block"));
  } finally {
    await Deno.remove(top, { recursive: true });
  }
}

const LAB_PC: FixtureDisk[] = [
  { name: "loop0", bytes: 64 * MiB },
  {
    name: "sda",
    bytes: 16 * GiB,
    model: "Cruzer Blade",
    device: "pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sda",
  },
  { name: "sdb", bytes: 500 * GiB, model: "ST500DM002-1BD142" },
  { name: "nvme0n1", bytes: 256 * GiB, model: "Samsung SSD 970 EVO Plus 250GB" },
  { name: "mmcblk0", bytes: 32 * GiB, removable: true },
];

Deno.test("readSysBlock reads size, removable, model and the USB bus from a /sys/block tree", async () => {
  await withSysBlock(LAB_PC, (root) => {
    const disks = readSysBlock(root).sort((a, b) => a.name.localeCompare(b.name));
    assert.deepEqual(disks.map((d) => [d.name, d.size, d.kind, d.usb, d.removable, d.model]), [
      ["loop0", 64 * MiB, "other", false, false, ""],
      ["mmcblk0", 32 * GiB, "mmc", false, true, ""],
      ["nvme0n1", 256 * GiB, "nvme", false, false, "Samsung SSD 970 EVO Plus 250GB"],
      ["sda", 16 * GiB, "sata/scsi", true, false, "Cruzer Blade"],
      ["sdb", 500 * GiB, "sata/scsi", false, false, "ST500DM002-1BD142"],
    ]);
  });
});

Deno.test("auto: the first non-removable disk of at least the image's size, never USB", async () => {
  await withSysBlock(LAB_PC, (root) => {
    const c = chooseTarget(parseTargetRule("auto"), readSysBlock(root), 40 * GiB);
    assert.equal(c.path, "/dev/nvme0n1");
    assert.equal(
      c.reason,
      'Chose /dev/nvme0n1 (nvme, 256 GiB, "Samsung SSD 970 EVO Plus 250GB") by target rule "auto": ' +
        "the first non-removable disk of at least 40.0 GiB; passed over " +
        '/dev/sda: USB (the rule has no "usb"); /dev/mmcblk0: removable (the rule has no "usb")',
    );
    // The NVMe disk too small: the SATA disk is next, the USB stick never.
    const big = chooseTarget(parseTargetRule("auto"), readSysBlock(root), 300 * GiB);
    assert.equal(big.path, "/dev/sdb");
  });
});

Deno.test("rules by model, size, path, usb and largest", async () => {
  await withSysBlock(LAB_PC, (root) => {
    const disks = readSysBlock(root);
    const pick = (rule: string, size = GiB) =>
      chooseTarget(parseTargetRule(rule), disks, size).path;
    assert.equal(pick("model:ST500*"), "/dev/sdb");
    assert.equal(pick("model:samsung_ssd*"), "/dev/nvme0n1");
    assert.equal(pick("min:300GB"), "/dev/sdb");
    assert.equal(pick("max:100GiB"), null);
    assert.equal(pick("largest"), "/dev/sdb");
    assert.equal(pick("path:/dev/sdb"), "/dev/sdb");
    assert.equal(pick("path:/dev/sda"), null); // USB: only with "usb"
    assert.equal(pick("path:/dev/sda,usb"), "/dev/sda");
    assert.equal(pick("usb,max:20GiB"), "/dev/sda");
  });
});

Deno.test("no matching disk: a clear reason naming every disk passed over", async () => {
  await withSysBlock(LAB_PC.slice(0, 2), (root) => {
    const c = chooseTarget(parseTargetRule("auto"), readSysBlock(root), GiB);
    assert.equal(c.path, null);
    assert.equal(
      c.reason,
      'No disk matches target rule "auto" (the first non-removable disk of at least 1.0 GiB): ' +
        '1 disk(s) seen; passed over /dev/sda: USB (the rule has no "usb")',
    );
  });
  assert.equal(
    chooseTarget(parseTargetRule("auto"), [], 1).reason,
    'No disk matches target rule "auto" (the first non-removable disk of at least 1 B): no disk seen',
  );
});

Deno.test("bad target rules: one clear error naming the term", () => {
  const cases: [string, string][] = [
    ["", 'Bad target rule "": give "auto" or terms'],
    [
      "biggest",
      'Bad target rule "biggest": term "biggest" is unknown (known: auto, path:, model:, min:, max:, usb, largest)',
    ],
    ["min:lots", 'Bad target rule "min:lots": term "min:lots" has no size (e.g. min:64GB)'],
    ["model", 'Bad target rule "model": term "model" needs a value (e.g. model:Samsung*)'],
    [
      "path:/dev/../etc",
      'Bad target rule "path:/dev/../etc": term "path:/dev/../etc" must name a device such as /dev/nvme0n1',
    ],
    [
      "model:a b",
      'Bad target rule "model:a b": term "model:a b" may hold only A-Z a-z 0-9 * ? _ . + -',
    ],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseTargetRule(text), { name: "TypeError", message }, text);
  }
});
