// Drives the agent's status page in Debian's headless chromium (through
// playwright-core, which never downloads a browser of its own):
//   node status_page.mjs BASE_URL SINK OUT_DIR [TOKEN]
// Opens BASE_URL/ once, waits for live data, checks that the DOM holds what
// /status reports for SINK (input rate, table version, batch id), that the
// charts were full on opening (history, not only what came after), that the
// page updates, that a phone-sized window needs no sideways scrolling, and
// saves screenshots at 1280x800 and 390x844 into OUT_DIR. Prints one JSON
// report on stdout; exits 1 naming the first check that failed.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const require = createRequire(import.meta.url);
const modDir = process.env.EHDELTA_NODE_MODULES;
const { chromium } = require(modDir ? path.join(modDir, "playwright-core") : "playwright-core");

const [base, sink, outDir, token] = process.argv.slice(2);
if (!base || !sink || !outDir) {
  console.error("usage: node status_page.mjs BASE_URL SINK OUT_DIR [TOKEN]");
  process.exit(2);
}
const WAIT_MS = Number(process.env.STATUS_PAGE_WAIT_MS || 90000);
const qs = token ? "?token=" + encodeURIComponent(token) : "";
const report = { checks: [], screenshots: [] };
const fail = (what) => { throw new Error(what); };
const ok = (what) => report.checks.push(what);

async function status() {
  const r = await fetch(base + "/status" + qs);
  if (!r.ok) fail(`/status answered HTTP ${r.status}`);
  return r.json();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // root in CI: chromium refuses to start its sandbox as root
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
let code = 0;
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  const openedAt = Date.now();
  const resp = await page.goto(base + "/" + qs);
  if (!resp || resp.status() !== 200) fail(`GET / answered ${resp && resp.status()}`);
  const csp = resp.headers()["content-security-policy"] || "";
  if (!csp.includes("connect-src 'self'")) fail(`page served without its CSP (${csp})`);
  ok("GET / is 200 with a same-origin-only content security policy");

  const sel = (k) => `[data-testid="${k}-${sink}"]`;
  await page.waitForSelector(sel("table-version"), { timeout: WAIT_MS });
  ok("live data shown");

  // History: the charts hold points from before the page opened, which only the agent's
  // ring can have given it.
  const first = await page.evaluate(() => {
    const p = document.querySelector('[data-testid="chart-events"] path');
    return { points: Number(p.dataset.points), from: Number(p.dataset.from) };
  });
  report.firstRender = { ...first, openedAt };
  if (!(first.points >= 5 && first.from <= openedAt - 5000))
    fail(`events chart starts at ${first.from} with ${first.points} points; the page opened at ` +
         `${openedAt} (expected the agent's history: >= 5 points, from >= 5 s before)`);
  const rates = await page.$eval(`[data-testid="chart-rates-${sink}"] path`,
    (p) => ({ points: Number(p.dataset.points), from: Number(p.dataset.from) }));
  if (!(rates.points >= 1 && rates.from < openedAt))
    fail(`rates chart has no batch from before the page opened (${JSON.stringify(rates)})`);
  ok(`charts full on opening: samples from ${(openedAt - first.from) / 1000} s before, ` +
     `${rates.points} batches`);

  // The DOM against /status: read /status, wait until the page shows that batch, read the
  // DOM, read /status again; the two agree when no batch landed in between (retried until so).
  let agreed = null;
  const deadline = Date.now() + WAIT_MS;
  while (!agreed && Date.now() < deadline) {
    const s1 = await status();
    const p1 = s1.sinks[sink];
    if (!p1) { await page.waitForTimeout(500); continue; }
    try {
      await page.waitForFunction(([k, b]) => {
        const e = document.querySelector(k);
        return e && Number(e.dataset.value) >= b;
      }, [sel("batch-id"), p1.batchId], { timeout: 10000 });
    } catch { continue; }
    const dom = await page.evaluate(([a, b, c, d]) => ({
      batchId: Number(document.querySelector(a).dataset.value),
      inputRate: Number(document.querySelector(b).dataset.value),
      tableVersion: Number(document.querySelector(c).dataset.value),
      tableVersionText: document.querySelector(c).textContent,
      legendInput: document.querySelector(`${d} [data-series="input rows/s"]`).textContent,
      inputText: document.querySelector(b).textContent,
    }), [sel("batch-id"), sel("input-rate"), sel("table-version"), sel("chart-rates")]);
    const s2 = await status();
    const p2 = s2.sinks[sink];
    if (dom.batchId !== p1.batchId || p2.batchId !== p1.batchId) continue;
    if (dom.inputRate !== p1.inputRowsPerSecond)
      fail(`input rate in the DOM ${dom.inputRate}, /status ${p1.inputRowsPerSecond} (batch ${p1.batchId})`);
    if (dom.tableVersion !== p1.sink.tableVersion)
      fail(`table version in the DOM ${dom.tableVersion}, /status ${p1.sink.tableVersion}`);
    if (dom.legendInput !== dom.inputText)
      fail(`rates chart legend '${dom.legendInput}' differs from the figure '${dom.inputText}'`);
    agreed = { batchId: p1.batchId, inputRowsPerSecond: p1.inputRowsPerSecond,
               tableVersion: p1.sink.tableVersion, shown: dom };
  }
  if (!agreed) fail("the DOM never showed the batch /status reported");
  report.agreed = agreed;
  ok(`DOM = /status at batch ${agreed.batchId}: input ${agreed.inputRowsPerSecond} rows/s, table version ${agreed.tableVersion}`);

  // It updates: a later batch and a newer table version appear without a reload.
  await page.waitForFunction(([k, v]) => Number(document.querySelector(k).dataset.value) > v,
    [sel("table-version"), agreed.tableVersion], { timeout: WAIT_MS });
  const later = await page.$eval(sel("table-version"), (e) => Number(e.dataset.value));
  report.updatedTo = later;
  ok(`page updated by itself: table version ${agreed.tableVersion} -> ${later}`);

  const parts = await page.$$eval("[data-partition]", (v) => v.length);
  const s = await status();
  if (parts < s.partitions.length) fail(`${parts} partitions on the page, /status has ${s.partitions.length}`);
  ok(`every partition shown (${s.partitions.length})`);

  fs.mkdirSync(outDir, { recursive: true });
  const shot = async (name, full) => {
    const f = path.join(outDir, name);
    await page.screenshot({ path: f, fullPage: full });
    report.screenshots.push(f);
  };
  await shot("status-1280x800.png", false);
  await shot("status-1280x800-full.png", true);
  await page.setViewportSize({ width: 390, height: 844 });
  const polls = await page.evaluate(() => Number(document.body.dataset.polls));
  await page.waitForFunction((n) => Number(document.body.dataset.polls) > n, polls, { timeout: WAIT_MS });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  if (wide > 390) fail(`phone-sized window scrolls sideways (page is ${wide} px wide)`);
  ok("390 px wide window: no sideways scrolling");
  await shot("status-390x844.png", false);
  await shot("status-390x844-full.png", true);

  const foreign = requests.filter((u) => !u.startsWith(base));
  if (foreign.length) fail(`the page fetched elsewhere: ${foreign.join(" ")}`);
  ok(`${requests.length} requests, all to the agent`);
  if (errors.length) fail(`page errors: ${errors.join(" | ")}`);
  ok("no script error");
  report.openSeconds = (Date.now() - openedAt) / 1000;
} catch (e) {
  report.error = String(e && e.message ? e.message : e);
  code = 1;
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
process.exit(code);
