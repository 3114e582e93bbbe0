// End-to-end: the packaged extension in a real VS Code (code-server on 127.0.0.1, driven by
// headless Chromium through playwright-core; e2e/harness.mjs) starts the real `tandem` binary,
// which streams a completion from a fake OpenAI-compatible model on 127.0.0.1. Typing shows it
// as ghost text, Tab accepts it, the saved file holds it, and the status bar shows the ready
// state. Run through `e2e/run.sh`.

import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { startFakeModel } from "./fake-model.mjs";
import { EXTENSION_ID, ghostText, launch, openFile, publishScreenshot, tandemStatus, visibleLines, waitReady, waitUntil } from "./harness.mjs";

const FILE_NAME = "area.py";
const BEFORE = "import math\n\n\ndef circle_area(radius):\n    ";
const TYPED = "return math.";
// Streamed in pieces, as a real engine does; Tandem joins them.
const CHUNKS = ["pi * ", "radius", " ** 2"];
const GHOST = CHUNKS.join("");
const AFTER = `${BEFORE}${TYPED}${GHOST}`;

test("VS Code shows Tandem's completion as ghost text, Tab accepts it, the status bar says ready and toggles", { timeout: 240_000 }, async (t) => {
  // Like a real model, it completes the line only where the line is unfinished: after the
  // accepted completion it has nothing to add, so no new ghost text appears.
  const model = await startFakeModel({
    answer: (prompt) => (typeof prompt === "string" && prompt.includes(`${TYPED}<fim_suffix>`) ? CHUNKS : []),
  });
  t.after(() => model.close());
  const { page, dirs, artifact, userSettings, outputText, state: describe } = await launch(t, {
    prefix: "vscode-ghost",
    files: { [FILE_NAME]: BEFORE },
    settings: {
      "tandem.backend.kind": "openai",
      "tandem.backend.url": model.url,
      "tandem.backend.model": "fake-coder",
      "tandem.backend.fim": "starcoder",
    },
  });
  const file = path.join(dirs.workspace, FILE_NAME);
  // What the editor held, for every failure message.
  const state = () =>
    describe([
      `file on disk: ${JSON.stringify(fs.readFileSync(file, "utf8"))}`,
      `model requests: ${JSON.stringify(model.requests.map((r) => `${r.method} ${r.path}`))}`,
    ]);

  // The extension activates on startup and the server says `ready` (docs/protocol.md).
  await waitReady(page, state);

  // Open the file from the explorer and type at its end.
  await openFile(page, state, FILE_NAME, "def circle_area(radius):");
  await page.locator(".editor-instance .monaco-editor .view-lines").first().click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type(TYPED, { delay: 20 });

  await waitUntil(
    30_000,
    async () => (await ghostText(page)) === GHOST,
    async () => `expected the ghost text ${JSON.stringify(GHOST)} after typing ${JSON.stringify(TYPED)}\n  ${await state()}`,
  );
  const shot = artifact("text.png");
  await page.screenshot({ path: shot });
  publishScreenshot(shot, "vscode-ghost-text.png");

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
  await page.screenshot({ path: artifact("accepted.png") });

  // Clicking the item toggles completions: the extension writes `tandem.completion.enabled`,
  // sends it to the server (workspace/didChangeConfiguration), and the server's status follows.
  const item = page.locator(`[id="${EXTENSION_ID}.tandem.status"]`);
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
  await waitUntil(
    15_000,
    () => initialized.test(outputText()) && !outputText().includes("\x1b"),
    async () => `expected the Tandem output channel to hold the server's "initialized" line at [info], without colour codes; it holds:\n${outputText()}`,
  );
  // Every document the server was told about was opened before it was changed or closed: VS
  // Code's own settings.json files (edited at startup and by the toggle above) included.
  const unpaired = outputText()
    .split("\n")
    .filter((l) => /closed a document that was not open|ignored an edit to a document that is not open/.test(l));
  if (unpaired.length > 0) {
    throw new Error(`expected every didChange/didClose to follow a didOpen; the server logged:\n${unpaired.join("\n")}`);
  }
});
