import assert from "node:assert/strict";
import { addSecureBootChain, SIGNED_FILES } from "./build_secureboot.ts";
import { renderGrubFirstStage } from "./grub.ts";
import { fakePe } from "./pe_testkit.ts";

Deno.test("addSecureBootChain copies shim and GRUB under the names shim loads, with GRUB's first stage", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const src = `${dir}/signed`;
    for (const [name, rel] of Object.entries(SIGNED_FILES)) {
      await Deno.mkdir(`${src}/${rel.slice(0, rel.lastIndexOf("/"))}`, { recursive: true });
      await Deno.writeFile(`${src}/${rel}`, fakePe(1000, name));
    }
    await Deno.writeFile(`${dir}/vmlinuz`, fakePe(1500, "kernel"));
    const r = await addSecureBootChain(src, `${dir}/out`, "http://10.0.0.1:8080", `${dir}/vmlinuz`);
    assert.deepEqual(r.written, ["tftp/shimx64.efi", "tftp/grubx64.efi", "tftp/grub/grub.cfg"]);
    assert.deepEqual(
      await Deno.readFile(`${dir}/out/tftp/grubx64.efi`),
      fakePe(1000, "grubx64.efi"),
    );
    assert.equal(
      await Deno.readTextFile(`${dir}/out/tftp/grub/grub.cfg`),
      renderGrubFirstStage("http://10.0.0.1:8080"),
    );
    assert.deepEqual(Object.keys(r.inputs), ["shimx64", "grubx64"]);
    assert.match(r.inputs.shimx64.sha256, /^[0-9a-f]{64}$/);

    // An unsigned kernel, or a missing package, is refused with what to do.
    await Deno.writeFile(`${dir}/plain`, fakePe(0));
    await assert.rejects(
      addSecureBootChain(src, `${dir}/out`, "http://10.0.0.1:8080", `${dir}/plain`),
      /the kernel ".*\/plain" is not signed \(Secure Boot would refuse it\)/,
    );
    await assert.rejects(
      addSecureBootChain(`${dir}/none`, `${dir}/out`, "http://10.0.0.1:8080", `${dir}/vmlinuz`),
      /Cannot find "usr\/lib\/shim\/shimx64.efi.signed" in --secure-boot folder .*fetch_secureboot/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
