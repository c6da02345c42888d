// Browser journeys in headless Chromium against the stage `deployer local`
// deployed: the real `bootstrap` behind the emulated API Gateway, the emulated
// Cognito, table and bucket. Run by scripts/test.sh (node --test).
//
// Every request that is not to this machine is aborted (map tiles included):
// nothing leaves 127.0.0.1. Screenshots go to tests/output/browser/.
//
// Every page the journey shows is checked with axe-core against the WCAG 2.1
// A and AA rules; the test fails on any violation and prints them all. Parts
// of it are done with the keyboard alone (Tab, Space, Enter), and every
// control it tabs through must show where the focus is.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
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
// axe-core from npm (package.json), evaluated in each page it checks.
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const wcagTags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
const tileHost = "tile.openstreetmap.org";

let local; // the `deployer local` process
let url; // the stage URL, ending in /local/
let browser;
let stateDir;
const violations = []; // every WCAG violation axe found, per page
const tileReferrers = []; // the Referer header of each map tile request

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
    { cwd: root, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, CI: "true", DEPLOYER_BUILD_PROFILE: "release" } },
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
  await context.route("**/*", async (route) => {
    const host = new URL(route.request().url()).hostname;
    if (isLocal(host)) return route.continue();
    if (host === tileHost) tileReferrers.push((await route.request().allHeaders())["referer"] ?? null);
    return route.abort();
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  return { context, page };
}

let shot = 0;
/** Saves a screenshot of the page and checks it with axe (see checkA11y). */
async function snap(page, name) {
  shot += 1;
  await page.screenshot({ path: path.join(shots, `${String(shot).padStart(2, "0")}-${name}.png`), fullPage: true });
  await checkA11y(page, name);
}

/**
 * Runs axe-core with the WCAG 2.1 A and AA rules on the page as it is now,
 * prints what it finds and keeps it for the final assertion, so one run
 * reports every page. `page.evaluate` is not subject to the page's CSP, which
 * forbids inline scripts.
 */
async function checkA11y(page, name) {
  await page.evaluate(axeSource);
  const found = await page.evaluate(async (tags) => {
    const results = await window.axe.run(document, {
      runOnly: { type: "tag", values: tags },
      resultTypes: ["violations"],
    });
    return results.violations.map((v) => ({
      rule: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary.replace(/\s+/g, " ")}`),
    }));
  }, wcagTags);
  for (const v of found) {
    const report = `${name} (${page.url()}): ${v.rule} [${v.impact}] ${v.help}\n    ${v.nodes.join("\n    ")}`;
    console.error(`axe: ${report}`);
    violations.push(report);
  }
}

/**
 * Presses Tab until the element matching `selector` has the focus (at most
 * `limit` times), checking on the way that each focused element shows a
 * focus indicator (an outline) where the keyboard user can see it.
 */
async function tabTo(page, selector, limit = 60) {
  for (let i = 0; i < limit; i += 1) {
    await page.keyboard.press("Tab");
    const focus = await page.evaluate((wanted) => {
      const el = document.activeElement;
      if (!el || el === document.body) return { here: false, visible: true, what: "body" };
      const style = getComputedStyle(el);
      const visible = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
      const what = `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : ""} "${(el.getAttribute("aria-label") || el.textContent || el.getAttribute("name") || "").trim().slice(0, 40)}"`;
      return { here: el.matches(wanted), visible, what };
    }, selector);
    assert.ok(focus.visible, `the keyboard focus is not visible on ${focus.what} (${page.url()})`);
    if (focus.here) return;
  }
  assert.fail(`\`${selector}\` was not reached with ${limit} presses of Tab on ${page.url()}`);
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

  // Upload a JPEG with GPS EXIF: straight to S3 with a presigned URL. With
  // the keyboard alone: Tab to the file picker, Space opens it, Tab to the
  // fields and type, Tab to the Upload button, Enter.
  await page.click("text=Upload");
  await page.waitForSelector("#upload-form");
  await snap(page, "upload-empty");
  const chooser = page.waitForEvent("filechooser");
  await tabTo(page, "#file");
  await page.keyboard.press("Space");
  await (await chooser).setFiles(fixture);
  await page.waitForSelector("#preview:not([hidden])");
  await tabTo(page, "input[name=tags]");
  await page.keyboard.type("Beach, Summer");
  await tabTo(page, "textarea[name=description]");
  await page.keyboard.type("Sunset by the palace");
  await snap(page, "upload");
  await tabTo(page, "#upload-button");
  await page.keyboard.press("Enter");
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
  // Tile requests carry the page's origin as their referrer (OpenStreetMap's
  // tile policy), though the pages' own policy is same-origin.
  assert.ok(tileReferrers.length > 0, "the maps requested tiles");
  const origin = `${new URL(url).origin}/`;
  assert.deepEqual([...new Set(tileReferrers)], [origin], "each tile request's Referer is the page's origin");
  assert.equal(
    await page.locator(".leaflet-control-attribution a[href='https://www.openstreetmap.org/copyright']").count(),
    1,
    "the map's attribution links to OpenStreetMap's copyright page",
  );

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

  // The profile page.
  await page.goto(`${url}profile`);
  await page.waitForSelector("input[name=name]");
  await snap(page, "profile");

  // Delete, with confirmation, with the keyboard alone.
  await page.goto(detailUrl);
  await tabTo(page, "a.danger");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/delete$/);
  await snap(page, "delete-confirm");
  await tabTo(page, "button.danger");
  await page.keyboard.press("Enter");
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
  await page.click("text=Forgot your password?");
  await page.waitForSelector("input[name=email]");
  await snap(page, "forgot");
  await ann.context.close();

  assert.ok(shot >= 18, `axe checked ${shot} pages`);
  assert.deepEqual(violations, [], `axe found WCAG 2.1 A/AA violations:\n${violations.join("\n")}`);
});
