// `deno task check:layout`: the layout rules (scripts/layout_rules.ts) on every tracked .ts file:
// its imports and its length.
import { checkLayout, lineCount, relativeImports, type SourceFile } from "./layout_rules.ts";

export async function repoSources(root: string): Promise<SourceFile[]> {
  const out = await new Deno.Command("git", { args: ["ls-files", "*.ts"], cwd: root }).output();
  const paths = new TextDecoder().decode(out.stdout).split("\n").filter(Boolean);
  return await Promise.all(paths.map(async (path) => {
    const text = await Deno.readTextFile(`${root}/${path}`);
    return { path, imports: relativeImports(text), lines: lineCount(text) };
  }));
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname;
  const problems = checkLayout(await repoSources(root));
  for (const p of problems) console.error(p);
  if (problems.length) {
    console.error(`layout: ${problems.length} broken rule(s) (scripts/layout_rules.ts says them)`);
    Deno.exit(1);
  }
  console.log("layout: every import keeps the rules");
}
