// The layout rules hold on every file of the repository, and the checker catches each kind of
// break (a fixture tree per rule).
import assert from "node:assert/strict";
import {
  checkLayout,
  lineCount,
  MAX_PRODUCT_LINES,
  relativeImports,
} from "../scripts/layout_rules.ts";
import { repoSources } from "../scripts/check_layout.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("every file of the repository keeps the layout rules", async () => {
  assert.deepEqual(checkLayout(await repoSources(ROOT)), []);
});

const tree = (files: Record<string, string[]>) =>
  Object.entries(files).map(([path, imports]) => ({ path, imports }));

Deno.test("layout: a file outside a room imports only its mod.ts (testkit.ts from tests)", () => {
  const rooms = {
    "roles/data/mod.ts": ["./receiver.ts"],
    "roles/data/receiver.ts": [],
    "roles/data/testkit.ts": [],
    "roles/peers/mod.ts": [],
  };
  assert.deepEqual(
    checkLayout(tree({ ...rooms, "roles/peers/client.ts": ["../data/receiver.ts"] })),
    [
      'roles/peers/client.ts imports "../data/receiver.ts": outside roles/data/ import only roles/data/mod.ts',
    ],
  );
  assert.deepEqual(
    checkLayout(tree({ ...rooms, "roles/peers/client.ts": ["../data/mod.ts"] })),
    [],
  );
  assert.deepEqual(
    checkLayout(tree({ ...rooms, "roles/peers/client_test.ts": ["../data/testkit.ts"] })),
    [],
  );
  assert.equal(
    checkLayout(tree({ ...rooms, "roles/peers/client.ts": ["../data/testkit.ts"] })).length,
    1,
  );
});

Deno.test("layout: imagetools and netboot never import roles; rooms never import each other", () => {
  const problems = checkLayout(tree({
    "imagetools/mod.ts": [],
    "imagetools/slice.ts": ["../roles/master/mod.ts"],
    "netboot/mod.ts": ["../roles/master/mod.ts"],
    "roles/master/mod.ts": ["../peers/mod.ts"],
    "roles/peers/mod.ts": ["../master/mod.ts"],
  }));
  assert.deepEqual(problems, [
    'imagetools/slice.ts imports "../roles/master/mod.ts": imagetools/ must import nothing from roles/',
    'netboot/mod.ts imports "../roles/master/mod.ts": netboot/ must import nothing from roles/',
    "rooms import each other: roles/master -> roles/peers -> roles/master",
  ]);
});

Deno.test("layout: relativeImports finds static, type, re-export and dynamic imports only", () => {
  const text = [
    `import { a } from "./a.ts";`,
    `import type { B } from "../b/mod.ts";`,
    `export * from "./c.ts";`,
    `const d = await import("./d.ts");`,
    `import { Hono } from "hono";`,
    `const s = "./not-an-import.ts";`,
  ].join("\n");
  assert.deepEqual(relativeImports(text), ["./a.ts", "../b/mod.ts", "./c.ts", "./d.ts"]);
});

Deno.test("layout: a product file over the line limit is named; tests and scripts are not the product", () => {
  const over = MAX_PRODUCT_LINES + 1;
  const files = [
    { path: "roles/master/mod.ts", imports: ["./big.ts"], lines: 10 },
    { path: "roles/master/big.ts", imports: [], lines: over },
    { path: "roles/master/ok.ts", imports: [], lines: MAX_PRODUCT_LINES },
    { path: "roles/master/big_test.ts", imports: [], lines: over },
    { path: "roles/master/testkit.ts", imports: [], lines: over },
    { path: "scripts/bench_big.ts", imports: [], lines: over },
    { path: "tests/big_test.ts", imports: [], lines: over },
  ];
  assert.deepEqual(checkLayout(files), [
    `roles/master/big.ts has ${over} lines, over the ${MAX_PRODUCT_LINES} a product file may have (split it by concept)`,
  ]);
  assert.deepEqual([lineCount(""), lineCount("a\n"), lineCount("a\nb"), lineCount("a\nb\n")], [
    0,
    1,
    2,
    2,
  ]);
});
