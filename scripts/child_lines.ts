// The benchmarks' children report on stdout, one JSON object a line.

/** A child's stdout, one JSON line at a time: `next(what)` fails if `who` exits first. */
export function jsonLines(
  lines: ReadableStreamDefaultReader<string>,
  who: string,
): (what: string) => Promise<Record<string, number | string>> {
  let buffered = "";
  return async (what) => {
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`${who} exited before it printed ${what}`);
      buffered += value;
    }
    const at = buffered.indexOf("\n");
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return JSON.parse(line);
  };
}
