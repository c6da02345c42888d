// The repository stands on its own: no script, doc or code comment refers to
// a file outside it. Run by scripts/test.sh (node --test tests/repo/) before
// anything is built.
//
// What counts as a reference outside the repository:
// - a relative path that climbs above the repository root (`../../x` from a
//   file one level deep);
// - a Markdown file name (`NOTES.md`, `docs/x.md`) or a relative Markdown
//   link target that names no file of the repository, from the referring
//   file's folder or from the root;
// - a section reference to a design note kept elsewhere, such as `DESIGN 3.5`;
// - an absolute path into a person's or a machine's folders (`/work/…`,
//   `/home/…`, `/root/…`, `/Users/…`, `/mnt/…`, `file://`).
// System paths a program uses (`/usr/bin/chromium`, `/dev/null`) are fine.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const self = path.relative(root, fileURLToPath(import.meta.url)).split(path.sep).join("/");

// Folders that hold installed or generated files, never the project's own.
const skipDirs = new Set([".git", "target", "node_modules", ".tools", ".local-cloud", ".deployer", "output", "vendor"]);
// Generated lock files: package names and hashes, no prose.
const skipFiles = new Set(["Cargo.lock", "package-lock.json"]);

/** The repository's files, as paths relative to the root with `/`. */
export function repositoryFiles(dir = root) {
  try {
    const out = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
      cwd: dir,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    // Files deleted in the work tree but not yet in the index are gone.
    return out.split("\0").filter((f) => f && existsSync(path.join(dir, f)));
  } catch {
    // Not a git checkout (an exported tarball): walk the folders.
    const files = [];
    const walk = (rel) => {
      for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
        const child = rel ? `${rel}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          if (!skipDirs.has(entry.name)) walk(child);
        } else if (entry.isFile()) {
          files.push(child);
        }
      }
    };
    walk("");
    return files;
  }
}

const notes = /\b(?:DESIGN|EMULATOR|STYLE|BUILD|CLOUDALBUM)\s+(?:§\s*)?\d+(?:\.\d+)*/g;
const absolute = /(?:file:\/\/|(?<![\w.~-])\/(?:work|home|root|Users|mnt|srv)\/)[^\s"'`)>\]]*/g;
const climbing = /(?<![\w.-])(?:\.\.\/)+[\w.\-/]*/g;
const markdownName = /(?<![\w./-])(?:[\w.-]+\/)*[\w-]+\.md\b/g;
const markdownLink = /\]\(([^)\s#?]+)(?:#[^)\s]*)?\)/g;

/**
 * Every reference in `text` (the contents of `file`, relative to the root)
 * to something outside the repository, as `{ line, text, why }`.
 * `exists(relPath)` says whether the repository holds that path.
 */
export function outsideReferences(file, text, exists) {
  const found = [];
  const dir = path.posix.dirname(file);
  const inside = (rel) => !rel.startsWith("../") && rel !== "..";
  const resolves = (target) => {
    const fromFile = path.posix.normalize(path.posix.join(dir, target));
    const fromRoot = path.posix.normalize(target.replace(/^\.\//, ""));
    return [fromFile, fromRoot].some((p) => inside(p) && exists(p.replace(/\/$/, "")));
  };
  text.split("\n").forEach((content, index) => {
    const line = index + 1;
    const add = (match, why) => found.push({ line, text: match, why });
    for (const m of content.matchAll(notes)) add(m[0], "a section of a design note kept outside the repository");
    for (const m of content.matchAll(absolute)) add(m[0], "an absolute path outside the repository");
    // Handlebars climbs contexts, not folders: `{{../page.base}}`.
    const paths = file.endsWith(".hbs") ? content.replace(/\{\{[^}]*\}\}/g, "") : content;
    for (const m of paths.matchAll(climbing)) {
      const target = path.posix.normalize(path.posix.join(dir, m[0]));
      if (!inside(target)) add(m[0], "a relative path that leaves the repository");
    }
    for (const m of content.matchAll(markdownName)) {
      if (!resolves(m[0])) add(m[0], "a Markdown file that is not in the repository");
    }
    for (const m of content.matchAll(markdownLink)) {
      const target = m[1];
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      if (!resolves(decodeURI(target))) add(target, "a link to a file that is not in the repository");
    }
  });
  // One finding per line and text, even when two rules see it.
  const seen = new Set();
  return found.filter((f) => {
    const key = `${f.line}\0${f.text}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function isText(buffer) {
  return !buffer.subarray(0, 8000).includes(0);
}

test("no script, doc or code comment refers to a file outside the repository", () => {
  const files = repositoryFiles();
  assert.ok(files.includes("README.md"), "the repository's files were listed");
  const known = new Set(files);
  // A folder exists when some file lies under it.
  for (const f of files) {
    let d = path.posix.dirname(f);
    while (d !== ".") {
      known.add(d);
      d = path.posix.dirname(d);
    }
  }
  const exists = (p) => known.has(p) || p === ".";
  const problems = [];
  for (const file of files) {
    if (file === self || skipFiles.has(path.posix.basename(file))) continue;
    if (file.split("/").some((part) => skipDirs.has(part))) continue;
    const full = path.join(root, file);
    if (!statSync(full).isFile()) continue;
    const buffer = readFileSync(full);
    if (!isText(buffer)) continue;
    for (const f of outsideReferences(file, buffer.toString("utf8"), exists)) {
      problems.push(`${file}:${f.line}: \`${f.text}\` is ${f.why}`);
    }
  }
  assert.ok(
    problems.length === 0,
    `${problems.length} reference(s) to files outside the repository; point them at docs/ or at a file of the repository:\n` +
      problems.join("\n"),
  );
});

test("the check finds each kind of outside reference, and nothing in clean text", () => {
  const exists = (p) => ["README.md", "docs/emulator.md", "docs", "app/src/lib.rs", "templates/album.hbs"].includes(p);
  const kinds = (file, text) => outsideReferences(file, text, exists).map((f) => f.text);
  assert.deepEqual(kinds("app/src/a.rs", "// see ../shared/EMULATOR.md"), ["../shared/EMULATOR.md"]);
  assert.deepEqual(kinds("app/src/a.rs", "// see EMULATOR.md"), ["EMULATOR.md"]);
  assert.deepEqual(kinds("deployer/src/error.rs", "//! exit codes (DESIGN 3.5)."), ["DESIGN 3.5"]);
  assert.deepEqual(kinds("scripts/x.sh", "cat /work/shared/notes.txt"), ["/work/shared/notes.txt"]);
  assert.deepEqual(kinds("README.md", "[notes](../notes/x.txt)"), ["../notes/x.txt"]);
  assert.deepEqual(kinds("README.md", "[gone](docs/missing.md)"), ["docs/missing.md"]);
  assert.deepEqual(kinds("app/src/a.rs", 'include_str!("../../../x")'), ["../../../x"]);
  // Inside the repository, or not a file reference at all:
  assert.deepEqual(kinds("app/src/a.rs", 'include_str!("../../templates/album.hbs")'), []);
  assert.deepEqual(kinds("app/src/a.rs", "// see docs/emulator.md and README.md"), []);
  assert.deepEqual(kinds("docs/architecture.md", "[emulator](emulator.md) [readme](../README.md#exit-codes)"), []);
  assert.deepEqual(kinds("README.md", "[OSM](https://www.openstreetmap.org/copyright) [docs](docs/)"), []);
  assert.deepEqual(kinds("scripts/x.sh", "#!/usr/bin/env bash\nexec /usr/bin/chromium >/dev/null"), []);
  assert.deepEqual(kinds("README.md", "the DESIGN of the app; Rust 1.85"), []);
  assert.deepEqual(kinds("templates/album.hbs", '<a href="{{../../page.base}}/search">'), []);
});
