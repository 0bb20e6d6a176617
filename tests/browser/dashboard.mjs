// Loads ringway's dashboard in headless Chromium (Debian's), checks what it shows, adds a
// router by writing a dynamic configuration file, and measures how long until the dashboard
// shows it. Prints one JSON line; exits non-zero on any failure.
//
// usage: node dashboard.mjs <dashboard URL> <file to write> <screenshot.png>
import { chromium } from "playwright-core";
import { writeFileSync } from "node:fs";

const [url, file, screenshot] = process.argv.slice(2);
if (!url || !file || !screenshot) {
  console.error("usage: node dashboard.mjs <url> <file> <screenshot.png>");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const result = {};
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  await page.goto(url);

  // What the configuration defines shows up.
  const row = (table, name) => `#${table} tr[data-router="${name}"], #${table} tr[data-service="${name}"], #${table} tr[data-middleware="${name}"]`;
  await page.waitForSelector(row("http-routers", "app@file"), { timeout: 10000 });
  await page.waitForSelector(row("http-services", "app@file"), { timeout: 5000 });
  await page.waitForSelector('[data-entrypoint="web"]', { timeout: 5000 });
  result.disabled_status = await page.getAttribute(row("http-routers", "broken@file"), "data-status");
  result.disabled_error = (await page.textContent('#http-routers tr[data-router="broken@file"] .errors')) || "";
  result.server_status = await page.getAttribute('#http-services [data-server="http://127.0.0.1:1"]', "class");
  result.middleware_status = await page.getAttribute(row("http-middlewares", "auth@file"), "data-status");
  result.tcp_router = (await page.$(row("tcp-routers", "redis@file"))) !== null;

  // Live rates: the test sends traffic to app@file before starting this script.
  await page.waitForFunction(() => {
    const cell = document.querySelector('#http-routers tr[data-router="app@file"] [data-rate]');
    return cell && Number(cell.textContent) > 0;
  }, null, { timeout: 10000 });
  result.rate = Number(await page.textContent('#http-routers tr[data-router="app@file"] [data-rate]'));

  // A router created from a file appears.
  const started = Date.now();
  writeFileSync(file, [
    "[http.routers.added]",
    'rule = "Host(`added.example`)"',
    'service = "app"',
    "",
  ].join("\n"));
  await page.waitForSelector(row("http-routers", "added@file"), { timeout: 10000 });
  result.appeared_ms = Date.now() - started;

  await page.screenshot({ path: screenshot, fullPage: true });
  result.console_errors = consoleErrors;
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
