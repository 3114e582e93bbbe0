// The end-to-end tests' harness: the packaged extension installed into code-server on
// 127.0.0.1, a workspace of given files and settings, and headless Chromium (playwright-core)
// showing it; plus bounded waits and what the editor holds, for failure messages.
//
// Environment (set by e2e/run.sh):
//   TANDEM_BIN            the built `tandem` binary
//   TANDEM_VSIX           the packaged extension (scripts/package.sh)
//   CODE_SERVER           code-server's `out/node/entry.js`
//   CODE_SERVER_NODE      the node 24 binary code-server runs on
//   CHROMIUM              the browser (default /usr/bin/chromium)
//   TANDEM_E2E_ARTIFACTS  where screenshots and logs go (default <repo>/target/e2e-artifacts)
//   TANDEM_E2E_SCREENSHOTS a directory for the pictures docs/img shows (scripts/screenshots.sh)
// Nothing leaves the loopback interface: code-server's telemetry, update check and extension
// gallery are off or pointed at a closed loopback port, and Chromium's background networking is
// disabled.

import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../../..");
export const EXTENSION_ID = "tandem.tandem-vscode";

export function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run this test through editors/vscode/e2e/run.sh`);
  if (!fs.existsSync(value)) throw new Error(`${name}=${value} does not exist`);
  return value;
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes; then throws `explain()`. */
export async function waitUntil(timeoutMs, check, explain) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`after ${timeoutMs} ms: ${await explain()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts code-server on a free loopback port; resolves once it listens. */
async function startCodeServer({ node, entry, userDataDir, extensionsDir, configDir, workspace, env, log }) {
  const args = [
    entry,
    "--auth",
    "none",
    "--bind-addr",
    "127.0.0.1:0",
    "--disable-telemetry",
    "--disable-update-check",
    "--disable-workspace-trust",
    "--disable-getting-started-override",
    "--config",
    path.join(configDir, "code-server.yaml"),
    "--user-data-dir",
    userDataDir,
    "--extensions-dir",
    extensionsDir,
    workspace,
  ];
  // Its own process group, so stopping it also stops the extension host and `tandem`.
  const child = spawn(node, args, { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const onData = (d) => {
    output += d;
    log.write(d);
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  let exited = null;
  child.on("exit", (code, signal) => (exited = { code, signal }));
  const url = await waitUntil(
    60_000,
    () => {
      if (exited) throw new Error(`code-server exited (${JSON.stringify(exited)}) before listening:\n${output}`);
      return /HTTP server listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
    },
    () => `code-server did not say "HTTP server listening on http://127.0.0.1:…"; it printed:\n${output}`,
  );
  const stop = async () => {
    if (exited) return;
    const signal = (s) => {
      try {
        process.kill(-child.pid, s);
      } catch {
        // already gone
      }
    };
    signal("SIGTERM");
    try {
      await waitUntil(10_000, () => exited, () => "code-server did not stop on SIGTERM");
    } catch {
      signal("SIGKILL");
    }
  };
  return { url, stop };
}

/** The text of every line the editor shows, top to bottom (ghost text included). */
export async function visibleLines(page) {
  return page.evaluate(() => {
    const lines = document.querySelector(".editor-instance .monaco-editor .view-lines");
    if (!lines) return ["(no editor open)"];
    return [...lines.querySelectorAll(".view-line")]
      .map((line) => ({ top: parseFloat(line.style.top || "0"), text: line.textContent.replace(/\u00a0/g, " ") }))
      .sort((a, b) => a.top - b.top)
      .map((l) => l.text);
  });
}

/** The ghost text Monaco shows (inline suggestion decorations), joined. */
export async function ghostText(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll(".editor-instance .monaco-editor .ghost-text-decoration, .editor-instance .monaco-editor .ghost-text")]
      .map((el) => el.textContent.replace(/\u00a0/g, " "))
      .join(""),
  );
}

/** The Tandem status bar item: its text (icons as `$(name)`) and its ARIA label. */
export async function tandemStatus(page) {
  return page.evaluate((id) => {
    const item = document.getElementById(id);
    if (!item) return undefined;
    const text = [...item.querySelectorAll("a *, a")]
      .filter((el) => el.childNodes.length > 0)
      .flatMap((el) =>
        [...el.childNodes].map((n) => {
          if (n.nodeType === Node.TEXT_NODE) return n.textContent;
          const icon = [...(n.classList ?? [])].find((c) => c.startsWith("codicon-"));
          return icon ? `$(${icon.slice("codicon-".length)})` : "";
        }),
      )
      .join("")
      .trim();
    return { text, label: item.getAttribute("aria-label") ?? item.querySelector("a")?.getAttribute("aria-label") ?? "" };
  }, `${EXTENSION_ID}.tandem.status`);
}

function newestFile(dir, name) {
  const found = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === name) found.push(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return found.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
}

/** Settings every test gets: a quiet, loopback-only window in which nothing else claims keys. */
const BASE_SETTINGS = {
  "tandem.trace.server": "messages",
  "editor.inlineSuggest.enabled": true,
  // Nothing else may claim Tab or pop up over the ghost text.
  "editor.quickSuggestions": { other: "off", comments: "off", strings: "off" },
  "editor.suggestOnTriggerCharacters": false,
  "editor.wordBasedSuggestions": "off",
  "editor.parameterHints.enabled": false,
  "editor.hover.enabled": false,
  "editor.autoClosingBrackets": "never",
  "editor.autoClosingQuotes": "never",
  "editor.minimap.enabled": false,
  "files.autoSave": "off",
  "files.insertFinalNewline": false,
  "files.trimTrailingWhitespace": false,
  // Loopback only, and a quiet window.
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "extensions.ignoreRecommendations": true,
  "workbench.enableExperiments": false,
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "workbench.secondarySideBar.defaultVisibility": "hidden",
  "workbench.colorTheme": "Default Dark Modern",
  "chat.disableAIFeatures": true,
  "git.enabled": false,
  "npm.fetchOnlinePackageInfo": false,
  "security.workspace.trust.enabled": false,
  "window.commandCenter": false,
};

/**
 * Installs the packaged extension into a fresh code-server with `files` in its workspace and
 * `settings` (over BASE_SETTINGS; tandem.serverPath is the built binary), opens it in headless
 * Chromium and waits for the workbench. Everything is stopped and removed after the test `t`.
 * Artifacts are named `<prefix>-…` in the artifacts directory; the old ones are removed first.
 *
 * @returns {Promise<{ page: import("playwright-core").Page, dirs: Record<string, string>,
 *   artifacts: string, artifact: (name: string) => string, userSettings: string,
 *   outputText: () => string, state: (lines?: string[]) => Promise<string> }>}
 *   `state(lines)` copies the Tandem output channel, takes `<prefix>-failure.png` and describes
 *   the editor, the status bar item and `lines`, for failure messages.
 */
export async function launch(t, { prefix, files, settings }) {
  const tandemBin = required("TANDEM_BIN");
  const vsix = required("TANDEM_VSIX");
  const entry = required("CODE_SERVER");
  const node = required("CODE_SERVER_NODE");
  const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";
  const artifacts = process.env.TANDEM_E2E_ARTIFACTS || path.join(repo, "target", "e2e-artifacts");
  fs.mkdirSync(artifacts, { recursive: true });
  for (const f of fs.readdirSync(artifacts)) if (f.startsWith(`${prefix}-`)) fs.rmSync(path.join(artifacts, f));
  const artifact = (name) => path.join(artifacts, `${prefix}-${name}`);

  // Cleanups run last-registered first (the browser before code-server before the temp dir),
  // each even when an earlier one fails.
  const cleanups = [];
  const defer = (fn) => cleanups.push(fn);
  t.after(async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`cleanup: ${err}`);
      }
    }
  });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tandem-vscode-e2e-"));
  defer(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const dirs = Object.fromEntries(
    ["workspace", "user-data", "extensions", "config", "data", "cache"].map((d) => {
      const p = path.join(tmp, d);
      fs.mkdirSync(p, { recursive: true });
      return [d, p];
    }),
  );
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dirs.workspace, name)), { recursive: true });
    fs.writeFileSync(path.join(dirs.workspace, name), text);
  }

  // code-server is a remote window: machine-scoped keys (serverPath, backend.kind, backend.url)
  // count only in its Machine settings, the rest in User settings. Both get everything.
  const all = { ...BASE_SETTINGS, "tandem.serverPath": tandemBin, ...settings };
  for (const scope of ["User", "Machine"]) {
    fs.mkdirSync(path.join(dirs["user-data"], scope), { recursive: true });
    fs.writeFileSync(path.join(dirs["user-data"], scope, "settings.json"), JSON.stringify(all, null, 2));
  }

  const closed = "http://127.0.0.1:9";
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? tmp,
    LANG: "C.UTF-8",
    // Tandem reads no user config file of the person running the test; code-server writes none.
    XDG_CONFIG_HOME: dirs.config,
    XDG_DATA_HOME: dirs.data,
    XDG_CACHE_HOME: dirs.cache,
    // The gallery (Open VSX by default) pointed at a closed loopback port.
    EXTENSIONS_GALLERY: JSON.stringify({
      serviceUrl: `${closed}/gallery`,
      itemUrl: `${closed}/item`,
      resourceUrlTemplate: `${closed}/{publisher}/{name}/{version}/{path}`,
    }),
  };

  const installed = spawnSync(
    node,
    [entry, "--install-extension", vsix, "--extensions-dir", dirs.extensions, "--user-data-dir", dirs["user-data"], "--config", path.join(dirs.config, "code-server.yaml")],
    { env, encoding: "utf8", timeout: 60_000 },
  );
  if (installed.status !== 0 || !fs.readdirSync(dirs.extensions).some((d) => d.startsWith(`${EXTENSION_ID}-`))) {
    throw new Error(`code-server --install-extension ${vsix} failed (${installed.status}):\n${installed.stdout}\n${installed.stderr}`);
  }

  const serverLog = fs.createWriteStream(artifact("code-server.log"));
  defer(() => serverLog.end());
  const codeServer = await startCodeServer({
    node,
    entry,
    userDataDir: dirs["user-data"],
    extensionsDir: dirs.extensions,
    configDir: dirs.config,
    workspace: dirs.workspace,
    env,
    log: serverLog,
  });
  defer(() => codeServer.stop());

  const browser = await chromium.launch({
    executablePath: browserPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
  defer(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 960, height: 540 }, deviceScaleFactor: 1 });

  // The Tandem output channel (the client's log, the LSP trace and the server's stderr) goes to
  // the artifacts, pass or fail.
  const outputLog = artifact("tandem-output.log");
  const copyOutputLog = () => {
    const logFile = newestFile(path.join(dirs["user-data"], "logs"), "Tandem.log");
    if (logFile) fs.copyFileSync(logFile, outputLog);
    return logFile ? outputLog : "(none yet)";
  };
  defer(copyOutputLog);
  const outputText = () => {
    copyOutputLog();
    return fs.existsSync(outputLog) ? fs.readFileSync(outputLog, "utf8") : "";
  };
  const state = async (lines = []) => {
    const logFile = copyOutputLog();
    await page.screenshot({ path: artifact("failure.png") }).catch(() => undefined);
    const status = await tandemStatus(page).catch(() => undefined);
    return [
      `editor lines: ${JSON.stringify(await visibleLines(page).catch((e) => [String(e)]))}`,
      `ghost text: ${JSON.stringify(await ghostText(page).catch(() => ""))}`,
      `status bar item: ${JSON.stringify(status)}`,
      ...lines,
      `screenshot: ${artifact("failure.png")}; Tandem output: ${logFile}; code-server: ${artifact("code-server.log")}`,
    ].join("\n  ");
  };

  await page.goto(`${codeServer.url}/?folder=${encodeURIComponent(dirs.workspace)}`);
  await waitUntil(
    60_000,
    () => page.locator(".monaco-workbench .part.statusbar").isVisible(),
    async () => `the VS Code workbench did not load\n  ${await state()}`,
  );
  return { page, dirs, artifacts, artifact, userSettings: path.join(dirs["user-data"], "User", "settings.json"), outputText, state };
}

/** Copies an artifact to TANDEM_E2E_SCREENSHOTS/<name> when that is set (docs/img). */
export function publishScreenshot(file, name) {
  const dir = process.env.TANDEM_E2E_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(file, path.join(dir, name));
}

/** Waits for the Tandem status bar item to say ready ("$(sparkle) Tandem"). */
export async function waitReady(page, state) {
  await waitUntil(
    60_000,
    async () => (await tandemStatus(page))?.text === "$(sparkle) Tandem",
    async () => `expected the status bar item "$(sparkle) Tandem" (server ready)\n  ${await state()}`,
  );
}

/** Opens `name` from the explorer and waits until the editor shows `line`. */
export async function openFile(page, state, name, line) {
  await page.getByRole("treeitem", { name }).click();
  await waitUntil(
    30_000,
    async () => (await visibleLines(page)).includes(line),
    async () => `expected ${name} open in the editor, showing ${JSON.stringify(line)}\n  ${await state()}`,
  );
}
