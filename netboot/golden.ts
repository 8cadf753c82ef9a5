// Golden-file comparison for rendered texts: CASCADE_UPDATE_GOLDEN=1 rewrites the files (then
// review the diff); otherwise the whole text must match.
import assert from "node:assert/strict";

export async function assertGolden(name: string, actual: string): Promise<void> {
  const url = new URL(`./testdata/${name}.golden`, import.meta.url);
  if (Deno.env.get("CASCADE_UPDATE_GOLDEN") === "1") {
    await Deno.writeTextFile(url, actual);
    return;
  }
  let expected: string;
  try {
    expected = await Deno.readTextFile(url);
  } catch (cause) {
    throw new Error(
      `Cannot read golden file "testdata/${name}.golden": run with CASCADE_UPDATE_GOLDEN=1 once`,
      { cause },
    );
  }
  assert.equal(actual, expected, `rendered text differs from testdata/${name}.golden`);
}
