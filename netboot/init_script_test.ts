import assert from "node:assert/strict";
import { parseCascadeCmdline } from "./cmdline.ts";
import { assertGolden } from "./golden.ts";
import { renderInit, renderUdhcpcScript } from "./init_script.ts";

const opts = {
  fallbackModules: ["e1000", "e1000e", "virtio_net"],
  earlyModules: ["usbhid", "hid_generic"],
};

async function sh(script: string, env: Record<string, string> = {}, args: string[] = []) {
  const out = await new Deno.Command("busybox", {
    args: ["sh", "-c", script, "sh", ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("rendered /init and udhcpc script match their golden files and parse", async () => {
  const init = renderInit(opts);
  await assertGolden("init.sh", init);
  await assertGolden("udhcpc.sh", renderUdhcpcScript());
  for (const text of [init, renderUdhcpcScript()]) {
    const r = await sh(`busybox sh -n /dev/stdin <<'EOF_SCRIPT'\n${text}\nEOF_SCRIPT`);
    assert.equal(r.code, 0, r.stderr);
  }
  assert.throws(() => renderInit({ fallbackModules: ["a;rm"] }), /Cannot put "a;rm" in \/init/);
});

Deno.test("/init reads settings from the command line as netboot/cmdline.ts does", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/init`, renderInit(opts));
    const ID = "0f".repeat(32);
    const lines = [
      `quiet cascade.master=http://10.0.0.1:8080 cascade.target=/dev/vda cascade.image=${ID}`,
      "cascade.master=http://m cascade.target=/dev/sda cascade.after=reboot cascade.token=t0k",
      "cascade.master=ftp://x cascade.image=ABC cascade.after=halt cascade.target=sda cascade.x=1",
      "quiet",
      `cascade.master=http://m cascade.target=/dev/../etc cascade.image=${ID}0`,
      "cascade.master=http://m cascade.target=auto,usb,min:64GB,model:Sam*",
      "cascade.master=http://m cascade.target=auto,biggest",
      "cascade.master=http://m cascade.target=/etc/passwd",
      "cascade.master=http://m cascade.target=auto cascade.lldp=31",
      "cascade.master=http://m cascade.target=auto cascade.lldp=30s",
    ];
    for (const line of lines) {
      const r = await sh(
        `. ${dir}/init; if read_settings "$1"; then ` +
          `echo "ok $MASTER|$TARGET|$IMAGE|$AFTER|$LLDP"; fi`,
        { CASCADE_INIT_LIB: "1" },
        [line],
      );
      let want: string;
      try {
        const s = parseCascadeCmdline(line);
        want = `ok ${s.master}|${s.target}|${s.imageId ?? ""}|${s.after}|${s.lldp ?? ""}`;
      } catch (e) {
        want = (e as Error).message;
      }
      assert.equal(r.stdout.trim(), want, line);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
