// The house rules of the layout, checked on every file (`deno task ok` and tests/layout_test.ts):
// - a folder with a mod.ts is a room; from outside a room only its mod.ts is imported (and its
//   testkit.ts, from tests, testkits and scripts only);
// - imagetools imports nothing from roles or netboot, netboot nothing from roles;
// - no cycle between rooms (in the product's code; tests may reach back);
// - no product file over MAX_PRODUCT_LINES lines (split by concept rather than grow one).
// Pure: it takes each file's relative import specifiers and returns the broken rules, one line each.
import { dirname, join, normalize } from "node:path";

export interface SourceFile {
  /** Repository-relative path, e.g. "roles/master/app.ts". */
  path: string;
  /** The relative specifiers it imports or re-exports ("./x.ts", "../../imagetools/mod.ts"). */
  imports: string[];
  /** Its length in lines, when known (the size rule skips files without it). */
  lines?: number;
}

/** Product files stay under about 400 lines; past this one the check fails (tests and scripts
 *  are not the product). */
export const MAX_PRODUCT_LINES = 450;

const FORBIDDEN: [string, string][] = [
  ["imagetools/", "roles/"],
  ["imagetools/", "netboot/"],
  ["netboot/", "roles/"],
];

/** The room a file lives in: the deepest folder above it that has a mod.ts, else its top folder. */
export function roomOf(path: string, rooms: Set<string>): string {
  let dir = dirname(path);
  while (dir !== "." && !rooms.has(dir)) dir = dirname(dir);
  return dir === "." ? (path.includes("/") ? path.split("/")[0] : ".") : dir;
}

const isTestSide = (path: string) =>
  /_test\.ts$/.test(path) || /(^|\/)testkit\.ts$/.test(path) || /^(tests|scripts)\//.test(path);

export function checkLayout(files: SourceFile[]): string[] {
  const rooms = new Set(
    files.filter((f) => f.path.endsWith("/mod.ts")).map((f) => dirname(f.path)),
  );
  const problems: string[] = [];
  const edges = new Map<string, Set<string>>();
  for (const file of files) {
    if (file.lines !== undefined && file.lines > MAX_PRODUCT_LINES && !isTestSide(file.path)) {
      problems.push(
        `${file.path} has ${file.lines} lines, over the ${MAX_PRODUCT_LINES} a product file may have (split it by concept)`,
      );
    }
    const from = roomOf(file.path, rooms);
    for (const spec of file.imports) {
      const target = normalize(join(dirname(file.path), spec));
      for (const [a, b] of FORBIDDEN) {
        if (file.path.startsWith(a) && target.startsWith(b)) {
          problems.push(`${file.path} imports "${spec}": ${a} must import nothing from ${b}`);
        }
      }
      const to = roomOf(target, rooms);
      if (to === from || !rooms.has(to)) continue;
      const entry = target.slice(to.length + 1);
      const allowed = entry === "mod.ts" || (entry === "testkit.ts" && isTestSide(file.path));
      if (!allowed) {
        problems.push(
          `${file.path} imports "${spec}": outside ${to}/ import only ${to}/mod.ts` +
            (entry === "testkit.ts" ? " (its testkit.ts only from tests)" : ""),
        );
      }
      // The product's graph: tests and testkits may reach back (a sub-room's test uses its
      // parent's testkit) without making a cycle.
      if (rooms.has(from) && !isTestSide(file.path)) {
        if (!edges.has(from)) edges.set(from, new Set());
        edges.get(from)!.add(to);
      }
    }
  }
  for (const cycle of findCycles(edges)) problems.push(`rooms import each other: ${cycle}`);
  return problems;
}

/** Every cycle in the room graph, once each, as "a -> b -> a". */
function findCycles(edges: Map<string, Set<string>>): string[] {
  const found = new Set<string>();
  const visit = (node: string, stack: string[]) => {
    const at = stack.indexOf(node);
    if (at >= 0) {
      const cycle = stack.slice(at);
      const start = cycle.indexOf([...cycle].sort()[0]);
      const rotated = [...cycle.slice(start), ...cycle.slice(0, start)];
      found.add([...rotated, rotated[0]].join(" -> "));
      return;
    }
    for (const next of edges.get(node) ?? []) visit(next, [...stack, node]);
  };
  for (const node of edges.keys()) visit(node, []);
  return [...found];
}

/** Relative specifiers in a source text: static imports, re-exports and dynamic imports. */
export function relativeImports(text: string): string[] {
  const specs: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(?\s*)(["'])(\.\.?\/[^"']+)\1/g;
  for (const m of text.matchAll(re)) specs.push(m[2]);
  return specs;
}

/** Lines in a source text (a last line without its newline counts too). */
export function lineCount(text: string): number {
  if (text === "") return 0;
  return text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
}
