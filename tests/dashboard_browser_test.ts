// The live dashboard in a real browser (Debian's chromium, driven by playwright-core) against a
// real master process and 200 emulated PCs (scripts/emulate_pcs.ts: control sessions only):
// the room shows every PC as a tile, a failed PC is found with one filter click, its details
// say why, an admin signs in on the page and pauses and ends the run from it, and the page loads
// nothing from elsewhere. Screenshots land in test-artifacts/ (dashboard.png, dashboard-ended.png).
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Page } from "playwright-core";
import { emulatePcs, type Emulation } from "../scripts/emulate_pcs.ts";
import { type Lab, makeLab, waitExit } from "./lab_kit.ts";

const MiB = 1024 * 1024;
const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("../test-artifacts/", import.meta.url));
const TOKEN = "lab-secret";
const PCS = 200;
/** These PCs fail early (a bad chunk after 2 chunks), then leave. */
const FAIL = [7, 150];

type PageGlobal = { document: { querySelectorAll(selector: string): { length: number } } };

const haveChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);

Deno.test({
  name: "dashboard: 200 PCs at a glance, a failed one in one click, admin from the page (chromium)",
  ignore: !haveChromium,
  sanitizeResources: false, // playwright's pipes to chromium outlive the test's own bookkeeping
  sanitizeOps: false,
  async fn() {
    // 24 chunks at 1 chunk/s per PC: the run lasts long enough to act on it.
    const lab = await makeLab(24 * MiB, 1 * MiB);
    const profile = await Deno.makeTempDir({ prefix: "cascade-chromium-" });
    const browser = chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1920, height: 1080 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    let em: Emulation | undefined;
    try {
      const history = ["--history", join(lab.dir, "history.sqlite")];
      const url = await lab.master([
        "--token",
        TOKEN,
        "--linger",
        "1",
        ...history,
        // All 200 emulated PCs are on 127.0.0.1.
        "--max-per-address",
        "100000",
      ]);
      em = await emulatePcs({
        master: url,
        pcs: PCS,
        rate: 1,
        fail: FAIL,
        fake: true,
        slices: lab.slices,
      });
      const page = (await browser).pages()[0] ?? await (await browser).newPage();
      try {
        await watchRun(lab, url, page, em);
      } catch (err) {
        await Deno.mkdir(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: join(ARTIFACTS, "dashboard-failure.png") }).catch(() => {});
        throw new Error(`${(err as Error).message}\n${await lab.logs()}`, { cause: err });
      }
      assert.equal(await waitExit(lab, "master", 20_000), 0);
      await em.done;
      assert.deepEqual(em.stats.errors, [], "no protocol error");
      assert.equal(em.stats.dropped, 0, "no session dropped");
    } finally {
      em?.close();
      await (await browser.catch(() => null))?.close();
      await lab.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});

async function count(page: Page, sel: string): Promise<number> {
  return await page.evaluate(
    (s) => (globalThis as unknown as PageGlobal).document.querySelectorAll(s).length,
    sel,
  );
}

async function watchRun(lab: Lab, url: string, page: Page, em: Emulation) {
  const elsewhere: string[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(url)) elsewhere.push(r.url());
  });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForSelector("#conn.live", { timeout: 10_000 });
  // Every PC (and the fake server) is a tile; the failed ones turn up loud.
  await page.waitForFunction(
    ([sel, n]) => (globalThis as unknown as PageGlobal).document.querySelectorAll(sel).length === n,
    ["#room .t", PCS + 1] as const,
    { timeout: 20_000 },
  );
  await page.waitForFunction(
    ([sel, n]) => (globalThis as unknown as PageGlobal).document.querySelectorAll(sel).length === n,
    ["#room .t.st-failed", FAIL.length] as const,
    { timeout: 30_000 },
  );
  assert.ok(
    await count(page, "button.f.loud[data-filter=failed]") === 1,
    "the failed filter is loud",
  );
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, "dashboard.png") });

  // One click on "failed": the list holds exactly the failed PCs, the room dims the rest.
  await page.click("button[data-filter=failed]");
  await page.waitForFunction(
    (n) =>
      (globalThis as unknown as PageGlobal).document.querySelectorAll("#list tr[data-peer]")
        .length === n,
    FAIL.length,
    { timeout: 5_000 },
  );
  const ids = await page.locator("#list tr[data-peer]").evaluateAll((rows) =>
    rows.map((r) => (r as unknown as { dataset: { peer: string; state: string } }).dataset)
      .map((d) => `${d.peer} ${d.state}`)
  );
  assert.deepEqual(ids, FAIL.map((i) => `pc-${String(i).padStart(4, "0")} failed`));
  assert.equal(await count(page, "#room .t:not(.dim)"), FAIL.length);
  // Its details say why (from /api/v1/peers/:id).
  await page.click('#list tr[data-peer="pc-0007"]');
  await page.waitForSelector("#detail ol.fails li", { timeout: 5_000 });
  assert.match(await page.locator("#detail ol.fails").textContent() ?? "", /bad-chunk Chunk \d+/);
  // Search by MAC finds one PC.
  await page.click("button[data-filter=all]");
  await page.fill("#search", "52:54:00:ee:00:2a");
  await page.waitForFunction(
    () =>
      (globalThis as unknown as PageGlobal).document.querySelectorAll("#list tr[data-peer]")
        .length === 1,
    undefined,
    { timeout: 5_000 },
  );
  assert.equal(await page.locator("#list tr[data-peer]").getAttribute("data-peer"), "pc-0042");
  await page.fill("#search", "");

  // Admin from the page: a wrong credential is refused, the right one signs in, pause works.
  await page.fill('#signin input[name="who"]', "tester");
  await page.fill('#signin input[name="token"]', "wrong");
  await page.click("#signin button");
  await page.waitForFunction(
    () =>
      ((globalThis as unknown as PageGlobal).document as unknown as {
        getElementById(id: string): { textContent: string } | null;
      }).getElementById("adminmsg")?.textContent === "Wrong admin token",
    undefined,
    { timeout: 5_000 },
  );
  await page.fill('#signin input[name="token"]', TOKEN);
  await page.click("#signin button");
  await page.waitForSelector("#admin [data-act=pause]", { timeout: 5_000 });
  await page.click("#admin [data-act=pause]");
  await page.waitForSelector("#run.paused", { timeout: 5_000 });
  const s = await (await fetch(`${url}/api/v1/status`)).json();
  assert.equal(s.paused, true);
  assert.ok(
    s.recent.some((e: { event: string; fields: Record<string, string> }) =>
      e.event === "admin" && e.fields.action === "pause" && e.fields.by === "tester@127.0.0.1"
    ),
    "the run's events say who paused",
  );
  // The history kept it, with the sign-in it came from, and the page lists it.
  await page.waitForSelector("#adminlog:not([hidden]) li b", { timeout: 5_000 });
  assert.match(
    await page.locator("#adminlog li").first().textContent() ?? "",
    /pause by tester@127\.0\.0\.1 session:[0-9a-f]{12}/,
  );
  // The cookie is out of the page script's reach.
  assert.equal(
    await page.evaluate(() =>
      (globalThis as unknown as { document: { cookie: string } }).document.cookie
    ),
    "",
  );

  // End from the page (it asks for a reason).
  await page.click("#admin [data-act=resume]");
  page.once("dialog", (d) => d.accept("test over"));
  await page.click("#admin [data-act=end]");
  await page.waitForSelector("#conn.ended", { timeout: 10_000 });
  assert.match(await page.locator("#run").textContent() ?? "", /Ended: test over/);
  await page.screenshot({ path: join(ARTIFACTS, "dashboard-ended.png") });
  assert.deepEqual(elsewhere, [], "the dashboard loads nothing from outside the master");
  assert.deepEqual(errors, [], "no error in the page's script");
  assert.ok(em.stats.assigned >= PCS, `every PC was assigned (${em.stats.assigned})`);
  void lab;
}
