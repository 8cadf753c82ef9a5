// The imagetools commands as a user runs them: `deno run -A cascade.ts <command> ...` in a child
// process, checking exit codes, stdout and the exact error lines.
import assert from "node:assert/strict";
import { createHash, randomFillSync } from "node:crypto";
import { join } from "node:path";
import { loadManifest } from "../imagetools/mod.ts";
import { chunkFileName, chunkLength } from "../imagetools/mod.ts";
import { sliceImage } from "../imagetools/mod.ts";
import { listDir, seededImage, withTempDir } from "../imagetools/testkit.ts";

const CASCADE = new URL("../cascade.ts", import.meta.url).pathname;
// Blank CASCADE_* variables read as unset, so the caller's environment cannot change results.
const ENV = { NO_COLOR: "1", CASCADE_CHUNK_SIZE: "", CASCADE_QUIET: "" };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cascade(
  args: string[],
  cwd?: string,
  env: Record<string, string> = {},
): Promise<Run> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CASCADE, ...args],
    cwd,
    env: { ...ENV, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: r.code, stdout: text(r.stdout), stderr: text(r.stderr) };
}

/** The last line a command wrote to stderr (its error line). */
const lastLine = (s: string) => s.trimEnd().split("\n").at(-1);

Deno.test("every imagetools command has --help with USAGE and OPTIONS", async () => {
  const runs = await Promise.all(
    ["slice", "verify", "assemble", "info"].map((c) => cascade([c, "--help"])),
  );
  for (const [i, r] of runs.entries()) {
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^cascade (slice|verify|assemble|info): /);
    assert.match(r.stdout, /\nUSAGE:\n {2}cascade (slice|verify|assemble|info) /, `command ${i}`);
    assert.match(r.stdout, /\nOPTIONS:\n/);
    assert.match(r.stdout, /-h, --help/);
  }
});

Deno.test("slice, info, verify and assemble from the command line", () =>
  withTempDir(async (dir) => {
    const data = seededImage(5 * 4096 + 10, 61, [[4096, 8192]]);
    await Deno.writeFile(join(dir, "g.img"), data);

    const s = await cascade(["slice", "g.img", "--chunk-size", "4K"], dir);
    assert.equal(s.code, 0, s.stderr);
    const manifestBytes = await Deno.readFile(join(dir, "g.img.cascade", "manifest.json"));
    const id = createHash("sha256").update(manifestBytes).digest("hex");
    assert.equal(
      s.stdout,
      `Sliced "g.img" (20.0 KiB) into 6 chunks: 1 zero, 5 stored (16.0 KiB; 16.0 KiB before zstd) in "g.img.cascade"\n` +
        `Image id: ${id}\n`,
    );
    assert.match(s.stderr, /^slice g\.img .*100\.0% 20\.0 KiB\/20\.0 KiB/m); // plain lines: piped

    const q = await cascade(["slice", "g.img", "--chunk-size", "4K", "--force", "--quiet"], dir);
    assert.deepEqual(q, { code: 0, stdout: `${id}\n`, stderr: "" });

    const info = await cascade(["info", "g.img.cascade"], dir);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /^Name: +g\.img\n/);
    assert.match(info.stdout, new RegExp(`\nImage id: +${id}\n`));
    const sha256 = createHash("sha256").update(data).digest("hex");
    const md5 = createHash("md5").update(data).digest("hex");
    assert.match(info.stdout, new RegExp(`\nImage SHA-256: +${sha256}\n`));
    assert.doesNotMatch(info.stdout, /Image MD5/); // only with --image-md5

    // The whole image's MD5 in, or its SHA-256 out, by flag or environment.
    for (
      const [args, env, want] of [
        [["--image-md5"], {}, { md5, sha256 }],
        [[], { CASCADE_IMAGE_MD5: "1" }, { md5, sha256 }],
        [["--no-image-sha256"], {}, {}],
        [[], { CASCADE_NO_IMAGE_SHA256: "1" }, {}],
      ] as const
    ) {
      const r = await cascade(
        ["slice", "g.img", "--chunk-size", "4K", "--force", "-q", ...args],
        dir,
        env,
      );
      assert.equal(r.code, 0, r.stderr);
      const m = JSON.parse(await Deno.readTextFile(join(dir, "g.img.cascade", "manifest.json")));
      assert.deepEqual({ md5: m.md5, sha256: m.sha256 }, {
        md5: undefined,
        sha256: undefined,
        ...want,
      });
    }

    const v = await cascade(["verify", "g.img", "g.img.cascade", "-q"], dir);
    assert.deepEqual(v, {
      code: 0,
      stdout:
        'OK: "g.img" matches "g.img.cascade/manifest.json" (6 chunks, 20.0 KiB, MD5 and SHA-256 checked)\n',
      stderr: "",
    });

    const a = await cascade(["assemble", "g.img.cascade", "back.img", "-q"], dir);
    assert.equal(a.code, 0, a.stderr);
    assert.deepEqual(await Deno.readFile(join(dir, "back.img")), data);
    const again = await cascade(["assemble", "g.img.cascade", "back.img", "-q"], dir);
    assert.equal(again.code, 1);
    assert.equal(
      again.stderr,
      'cascade assemble: Cannot assemble to "back.img": it already exists (use --force to overwrite it)\n',
    );

    // One flipped byte in chunk 2: verify names it and exits 1.
    const flipped = data.slice();
    flipped[2 * 4096 + 5] ^= 0x80;
    await Deno.writeFile(join(dir, "back.img"), flipped);
    const bad = await cascade(["verify", "back.img", "g.img.cascade", "--sha256", "-q"], dir);
    assert.equal(bad.code, 1);
    const sha = (b: Uint8Array) =>
      createHash("sha256").update(b.subarray(2 * 4096, 3 * 4096)).digest("hex");
    assert.equal(
      bad.stdout,
      `chunk 2 at offset 8192: expected SHA-256 "${sha(data)}", got "${sha(flipped)}"\n`,
    );
    assert.equal(
      bad.stderr,
      'cascade verify: Cannot verify "back.img" against "g.img.cascade/manifest.json": 1 of 6 chunks do not match\n',
    );
  }));

Deno.test("the commands print one exact error line and the right exit code", () =>
  withTempDir(async (dir) => {
    await Deno.writeFile(join(dir, "g.img"), seededImage(5000, 62));
    await Deno.mkdir(join(dir, "g.img.cascade"));
    await Deno.writeTextFile(join(dir, "g.img.cascade", "manifest.json"), "{}");
    const cases: [string[], number, string][] = [
      [
        ["slice", "missing.img"],
        1,
        'cascade slice: Cannot open image "missing.img": no such file or directory',
      ],
      [["slice", "."], 1, 'cascade slice: Cannot read image ".": it is a directory'],
      [["slice", "g.img/x"], 1, 'cascade slice: Cannot open image "g.img/x": not a directory'],
      [
        ["slice", "g.img"],
        1,
        'cascade slice: Cannot slice "g.img": output "g.img.cascade" already exists (use --force to replace it)',
      ],
      [["slice"], 2, "cascade slice: Missing <image> (usage: cascade slice <image> [options])"],
      [
        ["slice", "g.img", "--chunk-size", "1K"],
        2,
        'cascade slice: Invalid --chunk-size "1K": must be 4096..268435456 bytes',
      ],
      [
        ["verify", "g.img", "nowhere"],
        1,
        'cascade verify: Cannot open manifest "nowhere": no such file or directory',
      ],
      [
        ["info", "g.img.cascade"],
        1,
        'cascade info: Cannot load manifest "g.img.cascade/manifest.json": Invalid manifest: missing field "format"',
      ],
      [
        ["assemble", "g.img.cascade"],
        2,
        "cascade assemble: Missing <out-image-or-device> (usage: cascade assemble <slices-dir> <out-image-or-device> [options])",
      ],
    ];
    const runs = await Promise.all(cases.map(([args]) => cascade(args, dir)));
    for (const [i, r] of runs.entries()) {
      const [args, code, line] = cases[i];
      assert.equal(lastLine(r.stderr), line, `cascade ${args.join(" ")}`);
      assert.equal(r.code, code, `cascade ${args.join(" ")}`);
    }
    // Nothing was written by the failed runs.
    assert.deepEqual(await listDir(dir), ["g.img", "g.img.cascade"]);
  }));

/** A slices folder is consistent when its manifest parses and every chunk it names is there. */
async function assertConsistent(out: string) {
  const { manifest } = await loadManifest(out);
  for (const [i, c] of manifest.chunks.entries()) {
    if (c.zero) continue;
    const st = await Deno.stat(join(out, "chunks", chunkFileName(c)));
    assert.equal(st.size, chunkLength(manifest, i));
  }
  return manifest;
}

Deno.test("a slice killed halfway leaves the old slices or none, never a broken folder", () =>
  withTempDir(async (dir) => {
    // Many small chunks make the run long enough to be killed in the middle.
    const big = new Uint8Array(32 * 1024 * 1024);
    for (let o = 0; o < big.length; o += 65536) randomFillSync(big, o, 65536);
    await Deno.writeFile(join(dir, "big.img"), big);
    await Deno.writeFile(join(dir, "small.img"), seededImage(9000, 63));
    const out = join(dir, "slices");
    await sliceImage({ image: join(dir, "small.img"), out, chunkSize: 4096 });

    for (const force of [false, true]) {
      const target = force ? out : join(dir, "fresh");
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CASCADE, "slice", "big.img", "--out", target, "--chunk-size", "4K"]
          .concat(force ? ["--force"] : []),
        cwd: dir,
        env: ENV,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      // Kill it as soon as its first progress line shows it is under way.
      const reader = child.stderr.getReader();
      let seen = "";
      while (!seen.includes("slice big.img")) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += new TextDecoder().decode(value);
      }
      child.kill("SIGKILL");
      await child.status;
      reader.releaseLock();
      await child.stderr.cancel();

      if (force) {
        // The old slices are still whole (or, had the run finished, the new ones are).
        const m = await assertConsistent(out);
        assert.ok(m.name === "small.img" || m.name === "big.img");
      } else {
        const exists = await Deno.stat(target).then(() => true, () => false);
        if (exists) await assertConsistent(target);
      }
    }
    // The next run for an output removes what the killed one left beside it, and says so.
    const left = (await listDir(dir)).filter((n) => n.includes(".partial-"));
    const again = await cascade(["slice", "big.img", "--out", out, "--force"], dir);
    assert.equal(again.code, 0, again.stderr);
    for (const name of left.filter((n) => n.startsWith(".slices."))) {
      assert.ok(
        again.stderr.includes(`Removed what an interrupted run left: "${join(dir, name)}"`),
      );
    }
    assert.deepEqual(
      (await listDir(dir)).filter((n) => n.startsWith(".slices.")),
      [],
    );
    await assertConsistent(out);
  }));
