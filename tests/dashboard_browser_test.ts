// The live dashboard in a real browser (Debian's chromium, driven by playwright-core) during a
// run of real processes: the rows move from waiting to done without a reload, the page loads
// nothing from elsewhere, and screenshots land in test-artifacts/ (dashboard.png mid-run,
// dashboard-ended.png at the end).
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Page } from "playwright-core";
import { openHistory } from "../roles/master/mod.ts";
import { type Lab, makeLab, waitExit } from "./lab_kit.ts";

const MiB = 1024 * 1024;
const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("../test-artifacts/", import.meta.url));
const TOKEN = "lab-secret";
const PCS = ["pc-01", "pc-02", "pc-03", "pc-04", "pc-05"];

type PageGlobal = { document: { querySelectorAll(selector: string): { length: number } } };

const haveChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);

async function admin(url: string, action: string) {
  const res = await fetch(`${url}/api/v1/admin/${action}`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  const text = await res.text();
  assert.equal(res.status, 200, `${action}: ${text}`);
}

Deno.test({
  name: "dashboard: rows move from waiting to done live, in chromium (ignored without it)",
  ignore: !haveChromium,
  sanitizeResources: false, // playwright's pipes to chromium outlive the test's own bookkeeping
  sanitizeOps: false,
  async fn() {
    const lab = await makeLab(24 * MiB, 1 * MiB);
    const profile = await Deno.makeTempDir({ prefix: "cascade-chromium-" });
    const history = join(lab.dir, "history.sqlite");
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
    try {
      const url = await lab.master(["--token", TOKEN, "--linger", "1", "--history", history]);
      // Paused first, so every PC is seen waiting before anything moves.
      await admin(url, "pause");
      const page = (await browser).pages()[0] ?? await (await browser).newPage();
      try {
        await watchRun(lab, url, page);
      } catch (err) {
        // What the page showed and what the processes said, for whoever reads the failure.
        await Deno.mkdir(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: join(ARTIFACTS, "dashboard-failure.png") }).catch(() => {});
        throw new Error(`${(err as Error).message}\n${await lab.logs()}`, { cause: err });
      }
      assert.equal(await waitExit(lab, "master", 20_000), 0);
      for (const pc of PCS) {
        assert.equal(await waitExit(lab, pc, 20_000), 0, `${pc} exits 0 after the end`);
        assert.ok(await lab.matches(pc), `${pc}'s disk equals the golden image`);
      }
      // The run is in the history, each PC verified by read-back.
      const h = openHistory(history, { readOnly: true });
      try {
        const [run] = h.runs();
        assert.equal(run.endReason, "ended by an admin");
        assert.deepEqual(
          h.pcs(run.id).map((p) => [p.peer, p.verified, p.bytes > 0]).sort(),
          PCS.map((pc) => [pc, true, true]),
        );
      } finally {
        h.close();
      }
    } finally {
      await (await browser.catch(() => null))?.close();
      await lab.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});

async function watchRun(lab: Lab, url: string, page: Page) {
  const elsewhere: string[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(url)) elsewhere.push(r.url());
  });
  await page.goto(url);
  await page.waitForSelector("#conn.live", { timeout: 10_000 });

  // Each relay uploads at 6 MB/s: 18 MiB of non-zero chunks take about 3 s per PC.
  const peer = ["--rate-limit", "6MB/s"];
  lab.fake("fake-server", url, ["--capacity", "2", ...peer]);
  for (const pc of PCS) lab.client(pc, url, peer);
  const rows = (state: string) => `tr[data-state="${state}"][data-peer^="pc-"]`;
  // Runs in the page (this file is type-checked without the DOM library, hence the cast).
  const allRows = (state: string, timeout: number) =>
    page.waitForFunction(
      ([sel, n]) =>
        (globalThis as unknown as PageGlobal).document.querySelectorAll(sel).length === n,
      [rows(state), PCS.length] as const,
      { timeout },
    );
  await allRows("waiting", 20_000);
  await page.waitForSelector('tr[data-peer="fake-server"][data-state="serving"]', {
    timeout: 20_000,
  });
  assert.match(await page.locator(".run").textContent() ?? "", /Paused/);

  await admin(url, "resume");
  // Mid-run: some PC receiving, shown on the tree as a live edge.
  await page.waitForSelector(rows("receiving"), { timeout: 20_000 });
  await page.waitForSelector(".tree .edge.active", { state: "attached", timeout: 5_000 });
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  await page.waitForTimeout(1500); // let progress bars and rates fill in for the picture
  await page.screenshot({ path: join(ARTIFACTS, "dashboard.png") });

  // Verified PCs serve until the run ends; ending it by the admin API turns them done.
  await allRows("serving", 45_000);
  await admin(url, "end");
  await allRows("done", 10_000);
  await page.waitForSelector("#conn.ended", { timeout: 10_000 });
  assert.match(await page.locator(".run").textContent() ?? "", /Ended: ended by an admin/);
  assert.equal(await page.locator(".headline").textContent(), "5 of 5 PCs imaged100%");
  await page.screenshot({ path: join(ARTIFACTS, "dashboard-ended.png") });
  assert.deepEqual(elsewhere, [], "the dashboard loads nothing from outside the master");
}
