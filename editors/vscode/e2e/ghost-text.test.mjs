// End-to-end: the packaged extension in a real VS Code (code-server on 127.0.0.1, driven by
// headless Chromium through playwright-core) starts the real `tandem` binary, which streams a
// completion from a fake OpenAI-compatible model on 127.0.0.1. Typing shows it as ghost text,
// Tab accepts it, the saved file holds it, and the status bar shows the ready state.
//
// Run through `e2e/run.sh`, which installs code-server, node 24 and Chromium and sets:
//   TANDEM_BIN            the built `tandem` binary
//   TANDEM_VSIX           the packaged extension (scripts/package.sh)
//   CODE_SERVER           code-server's `out/node/entry.js`
//   CODE_SERVER_NODE      the node 24 binary code-server runs on
//   CHROMIUM              the browser (default /usr/bin/chromium)
//   TANDEM_E2E_ARTIFACTS  where screenshots and logs go (default <repo>/target/e2e-artifacts)
//   TANDEM_E2E_SCREENSHOT an extra copy of the ghost-text screenshot (docs/img when regenerating)
// Nothing leaves the loopback interface: code-server's telemetry, update check and extension
// gallery are off or pointed at a closed loopback port, and Chromium's background networking is
// disabled.

import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startFakeModel } from "./fake-model.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../..");

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run this test through editors/vscode/e2e/run.sh`);
  if (!fs.existsSync(value)) throw new Error(`${name}=${value} does not exist`);
  return value;
}

const EXTENSION_ID = "tandem.tandem-vscode";
const FILE_NAME = "area.py";
const BEFORE = "import math\n\n\ndef circle_area(radius):\n    ";
const TYPED = "return math.";
// Streamed in pieces, as a real engine does; Tandem joins them.
const CHUNKS = ["pi * ", "radius", " ** 2"];
const GHOST = CHUNKS.join("");
const AFTER = `${BEFORE}${TYPED}${GHOST}`;

/** Polls `check` until it returns a truthy value or `timeoutMs` passes; then throws `explain()`. */
async function waitUntil(timeoutMs, check, explain) {
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
async function visibleLines(page) {
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
async function ghostText(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll(".editor-instance .monaco-editor .ghost-text-decoration, .editor-instance .monaco-editor .ghost-text")]
      .map((el) => el.textContent.replace(/\u00a0/g, " "))
      .join(""),
  );
}

/** The Tandem status bar item: its text (icons as `$(name)`) and its ARIA label. */
async function tandemStatus(page) {
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

test("VS Code shows Tandem's completion as ghost text, Tab accepts it, the status bar says ready and toggles", { timeout: 240_000 }, async (t) => {
  const tandemBin = required("TANDEM_BIN");
  const vsix = required("TANDEM_VSIX");
  const entry = required("CODE_SERVER");
  const node = required("CODE_SERVER_NODE");
  const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";
  const artifacts = process.env.TANDEM_E2E_ARTIFACTS || path.join(repo, "target", "e2e-artifacts");
  fs.mkdirSync(artifacts, { recursive: true });
  for (const f of fs.readdirSync(artifacts)) if (f.startsWith("vscode-")) fs.rmSync(path.join(artifacts, f));

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
  const file = path.join(dirs.workspace, FILE_NAME);
  fs.writeFileSync(file, BEFORE);

  // Like a real model, it completes the line only where the line is unfinished: after the
  // accepted completion it has nothing to add, so no new ghost text appears.
  const model = await startFakeModel({
    answer: (prompt) => (typeof prompt === "string" && prompt.includes(`${TYPED}<fim_suffix>`) ? CHUNKS : []),
  });
  defer(() => model.close());

  // code-server is a remote window: machine-scoped keys (serverPath, backend.kind, backend.url)
  // count only in its Machine settings, the rest in User settings. Both get everything.
  const settings = {
    "tandem.serverPath": tandemBin,
    "tandem.backend.kind": "openai",
    "tandem.backend.url": model.url,
    "tandem.backend.model": "fake-coder",
    "tandem.backend.fim": "starcoder",
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
  for (const scope of ["User", "Machine"]) {
    fs.mkdirSync(path.join(dirs["user-data"], scope), { recursive: true });
    fs.writeFileSync(path.join(dirs["user-data"], scope, "settings.json"), JSON.stringify(settings, null, 2));
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

  const serverLog = fs.createWriteStream(path.join(artifacts, "code-server.log"));
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
  const outputLog = path.join(artifacts, "vscode-tandem-output.log");
  const copyOutputLog = () => {
    const logFile = newestFile(path.join(dirs["user-data"], "logs"), "Tandem.log");
    if (logFile) fs.copyFileSync(logFile, outputLog);
    return logFile ? outputLog : "(none yet)";
  };
  defer(copyOutputLog);
  // What the editor held, for every failure message.
  const state = async () => {
    const logFile = copyOutputLog();
    await page.screenshot({ path: path.join(artifacts, "vscode-failure.png") }).catch(() => undefined);
    const status = await tandemStatus(page).catch(() => undefined);
    return [
      `editor lines: ${JSON.stringify(await visibleLines(page))}`,
      `ghost text: ${JSON.stringify(await ghostText(page).catch(() => ""))}`,
      `status bar item: ${JSON.stringify(status)}`,
      `file on disk: ${JSON.stringify(fs.readFileSync(file, "utf8"))}`,
      `model requests: ${JSON.stringify(model.requests.map((r) => `${r.method} ${r.path}`))}`,
      `screenshot: ${path.join(artifacts, "vscode-failure.png")}; Tandem output: ${logFile ?? "(none yet)"}; code-server: ${path.join(artifacts, "code-server.log")}`,
    ].join("\n  ");
  };

  await page.goto(`${codeServer.url}/?folder=${encodeURIComponent(dirs.workspace)}`);
  await waitUntil(
    60_000,
    () => page.locator(".monaco-workbench .part.statusbar").isVisible(),
    async () => `the VS Code workbench did not load\n  ${await state()}`,
  );

  // The extension activates on startup and the server says `ready` (docs/protocol.md).
  await waitUntil(
    60_000,
    async () => (await tandemStatus(page))?.text === "$(sparkle) Tandem",
    async () => `expected the status bar item "$(sparkle) Tandem" (server ready)\n  ${await state()}`,
  );

  // Open the file from the explorer and type at its end.
  await page.getByRole("treeitem", { name: FILE_NAME }).click();
  await waitUntil(
    30_000,
    async () => (await visibleLines(page)).includes("def circle_area(radius):"),
    async () => `expected ${FILE_NAME} open in the editor\n  ${await state()}`,
  );
  await page.locator(".editor-instance .monaco-editor .view-lines").first().click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type(TYPED, { delay: 20 });

  await waitUntil(
    30_000,
    async () => (await ghostText(page)) === GHOST,
    async () => `expected the ghost text ${JSON.stringify(GHOST)} after typing ${JSON.stringify(TYPED)}\n  ${await state()}`,
  );
  const shot = path.join(artifacts, "vscode-ghost-text.png");
  await page.screenshot({ path: shot });
  if (process.env.TANDEM_E2E_SCREENSHOT) {
    fs.mkdirSync(path.dirname(process.env.TANDEM_E2E_SCREENSHOT), { recursive: true });
    fs.copyFileSync(shot, process.env.TANDEM_E2E_SCREENSHOT);
  }

  // The model saw the typed text, through the real document sync and FIM prompt.
  const completions = model.requests.filter((r) => r.method === "POST" && r.path === "/v1/completions");
  const prompts = completions.map((r) => r.body?.prompt);
  const expectedPrefix = `${BEFORE}${TYPED}<fim_suffix>`;
  const fim = (p) => typeof p === "string" && p.startsWith("<fim_prefix>") && p.includes(expectedPrefix) && p.endsWith("<fim_middle>");
  if (!prompts.some(fim)) {
    throw new Error(
      `expected a StarCoder FIM prompt (<fim_prefix>…${JSON.stringify(expectedPrefix)}…<fim_middle>) at /v1/completions; the model got ${JSON.stringify(prompts)}`,
    );
  }

  await page.keyboard.press("Tab");
  const acceptedLine = `    ${TYPED}${GHOST}`;
  await waitUntil(
    15_000,
    async () => (await ghostText(page)) === "" && (await visibleLines(page)).includes(acceptedLine),
    async () => `expected Tab to accept the ghost text, leaving the line ${JSON.stringify(acceptedLine)} and no ghost text\n  ${await state()}`,
  );
  await page.keyboard.press("Control+S");
  await waitUntil(
    15_000,
    () => fs.readFileSync(file, "utf8") === AFTER,
    async () => `expected ${FILE_NAME} saved as ${JSON.stringify(AFTER)}\n  ${await state()}`,
  );

  // Back to ready once the completion is done, with the backend in the label.
  await waitUntil(
    15_000,
    async () => {
      const s = await tandemStatus(page);
      return s?.text === "$(sparkle) Tandem" && s.label.includes("Tandem: ready") && s.label.includes("Backend: openai (fake-coder)");
    },
    async () => `expected the status bar item "$(sparkle) Tandem" with "Tandem: ready" and "Backend: openai (fake-coder)" in its label after the completion\n  ${await state()}`,
  );
  await page.screenshot({ path: path.join(artifacts, "vscode-accepted.png") });

  // Clicking the item toggles completions: the extension writes `tandem.completion.enabled`,
  // sends it to the server (workspace/didChangeConfiguration), and the server's status follows.
  const item = page.locator(`[id="${EXTENSION_ID}.tandem.status"]`);
  const userSettings = path.join(dirs["user-data"], "User", "settings.json");
  const enabledSetting = () => JSON.parse(fs.readFileSync(userSettings, "utf8"))["tandem.completion.enabled"];
  await item.click();
  await waitUntil(
    15_000,
    async () => (await tandemStatus(page))?.text === "$(circle-slash) Tandem: off" && enabledSetting() === false,
    async () => `expected a click on the status bar item to show "$(circle-slash) Tandem: off" and set tandem.completion.enabled to false (it is ${enabledSetting()})\n  ${await state()}`,
  );
  await item.click();
  await waitUntil(
    15_000,
    async () => (await tandemStatus(page))?.text === "$(sparkle) Tandem" && enabledSetting() === true,
    async () => `expected a second click to show "$(sparkle) Tandem" again and set tandem.completion.enabled to true (it is ${enabledSetting()})\n  ${await state()}`,
  );

  // The server's stderr reaches the Tandem output channel at its own level, without colours.
  const initialized = /^\S+ \S+ \[info\] tandem_server::handlers::initialize: initialized /m;
  const outputText = () => {
    copyOutputLog();
    return fs.existsSync(outputLog) ? fs.readFileSync(outputLog, "utf8") : "";
  };
  await waitUntil(
    15_000,
    () => initialized.test(outputText()) && !outputText().includes("\x1b"),
    async () => `expected the Tandem output channel to hold the server's "initialized" line at [info], without colour codes; it holds:\n${outputText()}`,
  );
});
