// Browser journeys in headless Chromium against the stage `deployer local`
// deployed: the real `bootstrap` behind the emulated API Gateway, the emulated
// Cognito, table and bucket. Run by scripts/test.sh (node --test).
//
// Every request that is not to this machine is aborted (map tiles included):
// nothing leaves 127.0.0.1. Screenshots go to tests/output/browser/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import net from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, "target");
const deployerBin = process.env.DEPLOYER_BIN || path.join(targetDir, "debug", "deployer");
const fixture = path.join(root, "tests/browser/fixtures/seoul.jpg");
const shots = path.join(root, "tests/output/browser");

let local; // the `deployer local` process
let url; // the stage URL, ending in /local/
let browser;
let stateDir;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

function isLocal(host) {
  return host === "127.0.0.1" || host === "localhost" || host.endsWith(".localhost");
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  stateDir = mkdtempSync(path.join(tmpdir(), "cloudalbum-browser-"));
  const port = await freePort();
  local = spawn(
    deployerBin,
    ["local", "--fresh", "--port", String(port), "--state-dir", stateDir, "--output", "json"],
    { cwd: root, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, CI: "true" } },
  );
  const lines = createInterface({ input: local.stdout });
  const report = await new Promise((resolve, reject) => {
    local.on("exit", (code) => reject(new Error(`deployer local exited ${code} before it was ready`)));
    lines.once("line", (line) => resolve(JSON.parse(line)));
  });
  url = report.url;
  assert.match(url, /^http:\/\/[a-z0-9]+\.execute-api\.localhost:\d+\/local\/$/);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
    ],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (local && local.exitCode === null) {
    local.kill("SIGINT");
    await new Promise((resolve) => local.once("exit", resolve));
  }
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

/** A browser context that only talks to this machine. */
async function newUser() {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  await context.route("**/*", (route) => {
    const host = new URL(route.request().url()).hostname;
    return isLocal(host) ? route.continue() : route.abort();
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  return { context, page };
}

let shot = 0;
async function snap(page, name) {
  shot += 1;
  await page.screenshot({ path: path.join(shots, `${String(shot).padStart(2, "0")}-${name}.png`), fullPage: true });
}

async function signUpAndIn(page, email, name) {
  await page.goto(url);
  assert.match(page.url(), /\/local\/signin/);
  await snap(page, `signin-${name}`);
  await page.click("text=Create an account");
  await page.fill("input[name=name]", name);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", "Passw0rd!x");
  await snap(page, `signup-${name}`);
  await page.click("main button[type=submit]");
  await page.waitForURL(/\/local\/confirm/);
  // The emulator accepts any code (docs/emulator.md); on AWS it comes by email.
  await page.fill("input[name=code]", "123456");
  await snap(page, `confirm-${name}`);
  await page.click("main button[type=submit]");
  await page.waitForURL(/\/local\/signin\?done=confirmed/);
  await page.fill("input[name=password]", "Passw0rd!x");
  await page.click("main button[type=submit]");
  await page.waitForURL(url);
  await page.waitForSelector(`text=Hello, ${name}`);
}

test("a user's whole journey, and a second user who sees none of it", async () => {
  const ann = await newUser();
  const page = ann.page;
  await signUpAndIn(page, `ann-${Date.now()}@example.com`, "Ann");
  await page.waitForSelector("text=No photos yet");
  await snap(page, "album-empty");

  // Upload a JPEG with GPS EXIF: straight to S3 with a presigned URL.
  await page.click("text=Upload");
  await page.setInputFiles("#file", fixture);
  await page.waitForSelector("#preview:not([hidden])");
  await page.fill("input[name=tags]", "Beach, Summer");
  await page.fill("textarea[name=description]", "Sunset by the palace");
  await snap(page, "upload");
  await page.click("#upload-button");
  await page.waitForURL(/\/local\/photos\/[0-9A-Z]{26}$/);
  const detailUrl = page.url();

  // The detail shows the EXIF values and the place from the gazetteer.
  for (const value of ["Canon", "EOS 5D", "2024-07-01T18:30:00", "640 × 427", "Seoul", "Korea"]) {
    await page.waitForSelector(`.badges >> text=${value}`);
  }
  const original = await page.$eval("figure img", (img) => img.naturalWidth);
  assert.equal(original, 640, "the original loads from its presigned URL");
  await snap(page, "detail");

  // The thumbnail appears in the album.
  await page.click("text=CloudAlbum");
  const thumb = await page.waitForSelector(".tile img");
  await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, thumb);
  // 640×427 fitted into the stage's 300×200 box.
  const [w, h] = await thumb.evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  assert.ok(w <= 300 && h <= 200 && (w >= 299 || h === 200), `thumbnail is ${w}×${h}`);
  await snap(page, "album");

  // Search finds it by tag, whatever the case; the query is shown once.
  await page.fill("input[name=q]", "BEACH");
  await page.press("input[name=q]", "Enter");
  await page.waitForSelector("text=1 photo(s) for “BEACH”");
  assert.equal(await page.locator(".tile").count(), 1);
  // The query is shown once, as typed (the original printed it char by char).
  const shown = await page.evaluate(() => document.body.innerText.split("BEACH").length - 1);
  assert.equal(shown, 1);
  await snap(page, "search");

  // The map shows its marker.
  await page.goto(`${detailUrl}/map`);
  await page.waitForSelector(".leaflet-marker-icon");
  await snap(page, "map-one");
  await page.goto(`${url}map`);
  assert.equal(await page.locator(".leaflet-marker-icon").count(), 1);
  await snap(page, "map-all");

  // Edit the description.
  await page.goto(detailUrl);
  await page.click("text=Edit");
  await page.fill("textarea[name=description]", "Evening at Deoksugung");
  // The location picker: a click on the map sets the coordinates.
  await page.waitForSelector("#picker .leaflet-marker-icon");
  const before = await page.inputValue("input[name=lat]");
  await page.click("#picker", { position: { x: 60, y: 60 } });
  const after = await page.inputValue("input[name=lat]");
  assert.notEqual(after, before);
  assert.ok(Math.abs(parseFloat(after) - 37.56) < 0.2, `picked ${after}`);
  await snap(page, "edit");
  await page.click("main button[type=submit]");
  await page.waitForURL(detailUrl);
  await page.waitForSelector("figcaption >> text=Evening at Deoksugung");

  // A second user cannot see it.
  const bob = await newUser();
  await signUpAndIn(bob.page, `bob-${Date.now()}@example.com`, "Bob");
  await bob.page.goto(detailUrl);
  await bob.page.waitForSelector("text=404");
  await snap(bob.page, "other-user-404");
  await bob.page.goto(url);
  await bob.page.waitForSelector("text=No photos yet");
  await bob.context.close();

  // Delete, with confirmation.
  await page.click("text=Delete");
  await snap(page, "delete-confirm");
  await page.click("button.danger");
  await page.waitForURL(url);
  await page.waitForSelector("text=No photos yet");

  // Sign out: the session is gone.
  await page.click("text=Sign out");
  await page.waitForURL(/signin\?done=signedout/);
  await snap(page, "signed-out");
  await page.goto(url);
  assert.match(page.url(), /\/local\/signin/);
  const cookies = await ann.context.cookies();
  assert.ok(!cookies.some((c) => c.name === "ca_id" || c.name === "ca_refresh"));
  await ann.context.close();
});
