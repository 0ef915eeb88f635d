// The SRE dashboard in a real browser (Debian's chromium, headless) against the real
// server on loopback. Usage: node dashboard.mjs ADMIN_URL TOKEN SCREENSHOT_PATH
// Prints "N passed, 0 failed" at the end; any failed step stops the run with exit 1.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [admin, token, screenshot] = process.argv.slice(2);
if (!admin || !token || !screenshot) {
  console.error("usage: node dashboard.mjs ADMIN_URL TOKEN SCREENSHOT_PATH");
  process.exit(2);
}
const ZONES = ["gz-telecom", "sh-bgp", "bj-unicom", "hk-overseas"];
let passed = 0;
async function step(name, body) {
  const started = Date.now();
  await body();
  passed += 1;
  console.log(`ok ${passed} - ${name} (${Date.now() - started} ms)`);
}

async function api(method, path) {
  const response = await fetch(admin + path, { method, headers: { Authorization: `Bearer ${token}` } });
  return { status: response.status, body: await response.json() };
}
async function zone(name) {
  const { status, body } = await api("GET", "/admin/zones");
  assert.equal(status, 200);
  return body.zones.find((z) => z.zone === name);
}

const profile = mkdtempSync(join(tmpdir(), "httpdns-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1440, height: 900 },
  timeout: 60000,
});
const failures = [];
try {
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(10000);
  page.on("pageerror", (error) => failures.push(`page error: ${error.message}`));
  // Confirmation dialogs: accept, and answer prompts with the next queued answer.
  const answers = [];
  page.on("dialog", (dialog) => dialog.accept(dialog.type() === "prompt" ? answers.shift() ?? "" : undefined));
  // Only this server: any request elsewhere (CDN, fonts) fails the test.
  const foreign = [];
  page.on("request", (request) => { if (!request.url().startsWith(admin)) foreign.push(request.url()); });

  await step("the page carries no admin data before login", async () => {
    const html = await (await fetch(`${admin}/dashboard`)).text();
    for (const zone of ZONES) assert.ok(!html.includes(zone), `${zone} in the HTML`);
    assert.ok(!html.includes("203.0.113"), "endpoint IPs in the HTML");
    await page.goto(`${admin}/dashboard`);
    assert.ok(await page.isVisible("#login"));
    assert.equal(await page.locator("[data-zone]").count(), 0);
  });

  await step("a wrong token shows an error and no zones", async () => {
    await page.fill("#token", "not-the-token-0123456789");
    await page.click("#login-form button");
    await page.waitForSelector("#error:not([hidden])");
    assert.match(await page.textContent("#error"), /401/);
    assert.ok(await page.isVisible("#login"));
    assert.equal(await page.locator("[data-zone]").count(), 0);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("httpdns-admin-token")), null);
  });

  await step("logging in shows every example zone with its endpoints", async () => {
    await page.fill("#token", token);
    await page.click("#login-form button");
    for (const zone of ZONES) await page.waitForSelector(`[data-zone="${zone}"]`);
    assert.ok(await page.isHidden("#login"));
    assert.equal(await page.evaluate(() => sessionStorage.getItem("httpdns-admin-token")), token);
    assert.equal(await page.locator('[data-zone="gz-telecom"] tr[data-endpoint]').count(), 4);
    assert.match(await page.textContent("#epoch"), /epoch \d+/);
    assert.ok(await page.isHidden("#cluster"), "cluster section shown without cluster mode");
  });

  await step("draining a zone through the page drains it in the API", async () => {
    await page.click('[data-zone="sh-bgp"] [data-action="drain"]');
    await page.fill("#drain-weight", "0");
    await page.fill("#drain-reason", "browser test");
    await page.fill("#drain-over", "");
    await page.click("#drain-submit");
    await page.waitForSelector('[data-zone="sh-bgp"] [data-drain-state="drained"]');
    const sh = await zone("sh-bgp");
    assert.equal(sh.drains["*"].keep_weight_now, 0);
    assert.equal(sh.drains["*"].reason, "browser test");
    assert.equal(sh.keep_weight_all_domains, 0);
    assert.match(await page.textContent('[data-zone="sh-bgp"]'), /reason: browser test/);
  });

  await step("a refused action shows the API's error text", async () => {
    await page.click('[data-zone="bj-unicom"] [data-action="drain"]');
    await page.fill("#drain-weight", "10");
    await page.fill("#drain-reason", "bad ramp");
    await page.fill("#drain-over", "banana");
    await page.click("#drain-submit");
    await page.waitForSelector("#error:not([hidden])");
    const text = await page.textContent("#error");
    assert.match(text, /400/);
    assert.match(text, /banana/);
    assert.deepEqual((await zone("bj-unicom")).drains, {});
  });

  await step("undraining through the page restores the zone", async () => {
    answers.push("");
    await page.click('[data-zone="sh-bgp"] [data-action="undrain"]');
    await page.waitForSelector('[data-zone="sh-bgp"] [data-drain-state="serving"]');
    const sh = await zone("sh-bgp");
    assert.deepEqual(sh.drains, {});
    assert.equal(sh.keep_weight_all_domains, 100);
  });

  await step("the page refreshes on its own after a change made elsewhere", async () => {
    const drained = await fetch(`${admin}/admin/zones/hk-overseas/drain`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ weight: 0, reason: "drained by the CLI" }),
    });
    assert.equal(drained.status, 200);
    await page.waitForSelector('[data-zone="hk-overseas"] [data-drain-state="drained"]', { timeout: 15000 });
    assert.equal((await api("DELETE", "/admin/zones/hk-overseas/drain")).status, 200);
    await page.waitForSelector('[data-zone="hk-overseas"] [data-drain-state="serving"]', { timeout: 15000 });
  });

  await step("disabling an endpoint through the page disables it", async () => {
    answers.push("old NIC");
    await page.click('[data-zone="gz-telecom"] tr[data-endpoint="203.0.113.12"] button');
    await page.waitForFunction(() => document.querySelector('[data-zone="gz-telecom"] tr[data-endpoint="203.0.113.12"]')?.textContent.includes("disabled"));
    const gz = await zone("gz-telecom");
    assert.equal(gz.endpoints.find((e) => e.ip === "203.0.113.12").disabled.reason, "old NIC");
  });

  await step("a ramped partial drain shows its ramp, and explain shows a decision", async () => {
    await page.click('[data-zone="gz-telecom"] [data-action="drain"]');
    await page.fill("#drain-weight", "30");
    await page.fill("#drain-reason", "planned maintenance");
    await page.fill("#drain-over", "30m");
    await page.click("#drain-submit");
    await page.waitForSelector('[data-zone="gz-telecom"] [data-drain-state="drained"]');
    assert.equal((await zone("gz-telecom")).drains["*"].to_weight, 30);
    await page.fill("#explain-host", "api.example.com");
    await page.fill("#explain-ip", "202.96.128.86");
    await page.click("#explain-form button");
    await page.waitForSelector("#explain-result pre");
    assert.match(await page.textContent("#explain-result"), /api\.example\.com for 202\.96\.128\.86 → /);
  });

  await step("reload through the page reports success", async () => {
    await page.click("#summary button");
    await page.waitForFunction(() => document.querySelector("#reload-status")?.textContent.startsWith("reload ok"));
  });

  await step("cluster nodes show when /admin/cluster answers (cluster mode)", async () => {
    // Cluster mode is another branch's: answer /admin/cluster in its documented shape.
    const now = Date.now();
    const cluster = { node: "node-a", etcd: "http://127.0.0.1:2379", since_ms: now - 60000, revision: 42,
      zones_revision: 40, nodes: [{ node: "node-a", revision: 42, zones_revision: 40, last_seen_ms: now },
        { node: "node-b", revision: 41, zones_revision: 40, last_seen_ms: now - 5000 }] };
    await page.route("**/admin/cluster", (route) => route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(cluster) }));
    await page.reload();
    await page.waitForSelector("#cluster:not([hidden]) tbody tr");
    assert.equal(await page.locator("#cluster tbody tr").count(), 2);
    assert.match(await page.textContent("#cluster"), /node-b/);
    await page.unroute("**/admin/cluster");
    await page.reload();
    await page.waitForSelector('[data-zone="gz-telecom"]');
    await page.waitForSelector("#cluster", { state: "hidden" });
  });

  await step("screenshot for the README and CI artifacts", async () => {
    await page.fill("#explain-host", "api.example.com");
    await page.fill("#explain-ip", "202.96.128.86");
    await page.click("#explain-form button");
    await page.waitForSelector("#explain-result pre");
    await page.screenshot({ path: screenshot, fullPage: true });
  });

  await step("no request left this server", async () => {
    assert.deepEqual(foreign, []);
    assert.deepEqual(failures, []);
  });
} catch (error) {
  console.error(error);
  console.log(`${passed} passed, 1 failed`);
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
if (!process.exitCode) console.log(`${passed} passed, 0 failed`);
