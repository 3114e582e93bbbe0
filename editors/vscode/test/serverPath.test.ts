import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { defaultIsExecutable, findOnPath, resolveServerPath } from "../src/serverPath";

const posix = (files: string[]) => ({ platform: "linux" as const, isExecutable: (f: string) => files.includes(f) });

test("tandem.serverPath wins when it exists", () => {
  const r = resolveServerPath({ ...posix(["/opt/t/tandem", "/usr/bin/tandem"]), configured: "/opt/t/tandem", envPath: "/usr/bin" });
  assert.deepEqual(r, { ok: true, path: "/opt/t/tandem" });
});

test("a missing tandem.serverPath is an error naming it, not a silent PATH fallback", () => {
  const r = resolveServerPath({ ...posix(["/usr/bin/tandem"]), configured: "/nope/tandem", envPath: "/usr/bin" });
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.message.includes("/nope/tandem"));
});

test("relative tandem.serverPath is rejected with a hint", () => {
  const r = resolveServerPath({ ...posix(["bin/tandem"]), configured: "bin/tandem", envPath: "" });
  assert.ok(!r.ok && /absolute path/.test(r.message));
});

test("~ expands to the home directory", () => {
  const r = resolveServerPath({ ...posix(["/home/u/.cargo/bin/tandem"]), configured: "~/.cargo/bin/tandem", homeDir: "/home/u" });
  assert.deepEqual(r, { ok: true, path: "/home/u/.cargo/bin/tandem" });
});

test("unset: the first PATH directory holding tandem", () => {
  const r = resolveServerPath({ ...posix(["/b/tandem", "/c/tandem"]), configured: "  ", envPath: "/a::/b:/c" });
  assert.deepEqual(r, { ok: true, path: "/b/tandem" });
});

test("neither: the message gives the install command", () => {
  const r = resolveServerPath({ ...posix([]), configured: null, envPath: "/usr/bin:/bin" });
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.message.includes("cargo install --path crates/tandem"));
  assert.ok(!r.ok && r.message.includes("tandem.serverPath"));
});

test("Windows: PATHEXT extensions and ; separators", () => {
  const found = findOnPath("tandem", {
    platform: "win32",
    envPath: "C:\\a;C:\\Users\\u\\.cargo\\bin",
    pathExt: ".COM;.EXE",
    isExecutable: (f) => f === "C:\\Users\\u\\.cargo\\bin\\tandem.exe",
  });
  assert.equal(found, "C:\\Users\\u\\.cargo\\bin\\tandem.exe");
});

test("defaultIsExecutable checks the file and its execute bit", { skip: process.platform === "win32" }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tandem-vscode-"));
  try {
    const exe = path.join(dir, "tandem");
    const plain = path.join(dir, "plain");
    fs.writeFileSync(exe, "#!/bin/sh\n", { mode: 0o755 });
    fs.writeFileSync(plain, "", { mode: 0o644 });
    assert.equal(defaultIsExecutable(exe), true);
    assert.equal(defaultIsExecutable(plain), false);
    assert.equal(defaultIsExecutable(dir), false);
    assert.equal(defaultIsExecutable(path.join(dir, "missing")), false);
    const r = resolveServerPath({ platform: process.platform, envPath: `${dir}`, isExecutable: defaultIsExecutable });
    assert.deepEqual(r, { ok: true, path: exe });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
