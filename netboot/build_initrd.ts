// build-netboot's initramfs step: stream the cpio pieces through the zstd CLI into a file.

export async function writeCompressed(
  pieces: Iterable<Uint8Array>,
  level: number,
  dest: string,
): Promise<number> {
  const child = new Deno.Command("zstd", {
    args: [`-${level}`, "-T0", "-q", "-f", "-o", dest],
    stdin: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  let total = 0;
  for (const p of pieces) {
    await w.write(p);
    total += p.length;
  }
  await w.close();
  const out = await child.output();
  if (!out.success) {
    throw new Error(
      `Cannot compress the initramfs with zstd: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return total;
}
